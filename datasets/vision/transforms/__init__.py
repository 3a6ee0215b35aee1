"""Image transforms for the vision application, with torchvision's names and semantics, on
NumPy and Pillow (no torch at run time).

Before `ToTensor`, transforms take a PIL image or an (H, W) / (H, W, C) array (uint8, or float
in [0, 1]) and return an (H, W, C) uint8 array, C in {1, 3}. `ToTensor` makes a CHW float32
`framework.Tensor`; `Normalize` and `RandomErasing` work on those; `MixUp` / `CutMix` work on
batches. Random transforms draw only from the framework's global generator, so
`framework.manual_seed` and the DataLoader's per-worker seeds make them reproducible.
"""
from . import functional
from .batch import CutMix, MixUp
from .colour import ColorJitter, GaussianBlur, Grayscale, RandomGrayscale
from .container import Compose, Lambda, RandomApply, RandomChoice, Transform
from .conversion import ConvertChannels, ToTensor
from .functional import InterpolationMode
from .geometry import (CenterCrop, RandomAffine, RandomCrop, RandomHorizontalFlip,
                       RandomResizedCrop, RandomRotation, RandomVerticalFlip, Resize)
from .presets import IMAGENET_MEAN, IMAGENET_STD, eval_preset, preset_from_spec, train_preset
from .tensor import Normalize, RandomErasing

__all__ = ["functional", "InterpolationMode", "Transform", "Compose", "Lambda", "RandomApply",
           "RandomChoice", "Resize", "CenterCrop", "RandomCrop", "RandomResizedCrop",
           "RandomHorizontalFlip", "RandomVerticalFlip", "RandomRotation", "RandomAffine",
           "ColorJitter", "Grayscale", "RandomGrayscale", "GaussianBlur", "ToTensor",
           "ConvertChannels", "Normalize", "RandomErasing", "MixUp", "CutMix",
           "IMAGENET_MEAN", "IMAGENET_STD", "train_preset", "eval_preset", "preset_from_spec"]
