"""Format conversions: ToTensor (HWC image -> CHW framework.Tensor) and ConvertChannels
(1 <-> 3 channels)."""
from __future__ import annotations

import warnings

import numpy as np

import framework

from . import functional as F
from .container import Transform
from .functional import ImageLike

__all__ = ["ToTensor", "ConvertChannels"]


class ToTensor(Transform):
    """HWC image -> CHW `framework.Tensor`; uint8 becomes float32 in [0, 1], other dtypes keep
    their values; an (H, W) array becomes 1 x H x W."""

    def __call__(self, pic: ImageLike) -> framework.Tensor:
        return F.to_tensor(pic)


class ConvertChannels(Transform):
    """Give the image `channels` (1 or 3) channels. RGB -> gray is Pillow's convert('L') luma;
    gray -> RGB repeats the channel and warns once per instance, since a grayscale image fed to
    an RGB model is usually a data-set mix-up worth knowing about."""
    _repr_fields = ("channels",)

    def __init__(self, channels: int) -> None:
        if channels not in (1, 3):
            raise ValueError(f"ConvertChannels: channels must be 1 or 3, got {channels}")
        self.channels = channels
        self._warned = False

    def __call__(self, img: ImageLike) -> np.ndarray:
        arr = F.to_array(img)
        if arr.shape[2] == 1 and self.channels == 3 and not self._warned:
            self._warned = True
            warnings.warn("ConvertChannels: a grayscale image was given to an RGB model (3 "
                          "channels); it was converted to RGB by repeating its channel. This "
                          "warning is shown once per transform.", UserWarning, stacklevel=2)
        return F.convert_channels(arr, self.channels)
