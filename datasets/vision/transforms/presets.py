"""Standard training and evaluation pipelines, rebuildable from a JSON-able spec.

`train_preset` / `eval_preset` return a `Compose` whose `spec` attribute is the dict (with
"preset": "train" / "eval") that `preset_from_spec` turns back into the same pipeline, so a
checkpoint can store how its inputs were made. They serve both ends:

    ImageNet-style RGB:  train_preset(224, IMAGENET_MEAN, IMAGENET_STD)
                         eval_preset(224, IMAGENET_MEAN, IMAGENET_STD, resize=256)
    MNIST-style digits:  train_preset(28, [0.1307], [0.3081], channels=1, crop_mode="affine",
                                      hflip=0.0)
                         eval_preset(28, [0.1307], [0.3081], channels=1)
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from .colour import ColorJitter
from .container import Compose
from .conversion import ConvertChannels, ToTensor
from .functional import interpolation_mode
from .geometry import CenterCrop, RandomAffine, RandomCrop, RandomHorizontalFlip, \
    RandomResizedCrop, Resize
from .tensor import Normalize, RandomErasing

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "train_preset", "eval_preset", "preset_from_spec"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CROP_MODES = ("resized", "pad", "affine")
_DEFAULT_AFFINE = {"degrees": 10.0, "translate": [0.1, 0.1]}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _check_common(name: str, crop: int, mean: Sequence[float], std: Sequence[float],
                  channels: int | None, interpolation: str) -> None:
    if not isinstance(crop, int) or crop < 1:
        raise ValueError(f"{name}: crop must be a positive int, got {crop!r}")
    if len(mean) != len(std) or len(mean) not in (1, 3):
        raise ValueError(f"{name}: mean and std must both have 1 or 3 values, got {list(mean)} "
                         f"and {list(std)}")
    if channels not in (None, 1, 3):
        raise ValueError(f"{name}: channels must be None, 1 or 3, got {channels!r}")
    if channels is not None and len(mean) not in (1, channels):
        raise ValueError(f"{name}: {len(mean)} mean/std values do not fit {channels}-channel "
                         f"images")
    interpolation_mode(interpolation)


def _finish(preset: str, steps: list, args: dict[str, Any]) -> Compose:
    pipeline = Compose([s for s in steps if s is not None])
    pipeline.spec = {"preset": preset, **_jsonable(args)}
    return pipeline


def train_preset(crop: int, mean: Sequence[float], std: Sequence[float], *,
                 channels: int | None = None, interpolation: str = "bilinear",
                 crop_mode: str = "resized", resize: int | None = None,
                 scale: Sequence[float] | None = None, ratio: Sequence[float] | None = None,
                 padding: int | None = None, affine: dict[str, Any] | None = None,
                 hflip: float = 0.5, color_jitter: float = 0.0,
                 erasing: float = 0.0) -> Compose:
    """Training pipeline: [ConvertChannels(channels)], a random crop to `crop` x `crop`,
    [RandomHorizontalFlip(hflip)], [ColorJitter(color_jitter x3)], ToTensor, Normalize,
    [RandomErasing(erasing)].

    crop_mode "resized": RandomResizedCrop(crop, scale, ratio) (torchvision's defaults when
    None); "pad": [Resize(resize)], RandomCrop(crop, padding (default 4), pad_if_needed);
    "affine": [Resize(resize)], RandomAffine(**affine) (default degrees=10, translate=0.1),
    CenterCrop(crop). Options of another mode must stay None. Use hflip=0 for digits."""
    args = {k: v for k, v in locals().items()}
    _check_common("train_preset", crop, mean, std, channels, interpolation)
    if crop_mode not in CROP_MODES:
        raise ValueError(f"train_preset: crop_mode must be one of {CROP_MODES}, got "
                         f"{crop_mode!r}")
    foreign = {"resized": ("resize", "padding", "affine"), "pad": ("scale", "ratio", "affine"),
               "affine": ("scale", "ratio", "padding")}[crop_mode]
    given = [k for k in foreign if args[k] is not None]
    if given:
        raise ValueError(f"train_preset: {', '.join(given)} do not apply to "
                         f"crop_mode={crop_mode!r}")
    pre = Resize(resize, interpolation) if resize is not None else None
    if crop_mode == "resized":
        geometry = [RandomResizedCrop(crop, scale or (0.08, 1.0), ratio or (3 / 4, 4 / 3),
                                      interpolation)]
    elif crop_mode == "pad":
        geometry = [pre, RandomCrop(crop, 4 if padding is None else padding, pad_if_needed=True)]
    else:
        options = dict(_DEFAULT_AFFINE if affine is None else affine)
        options.setdefault("interpolation", interpolation)
        geometry = [pre, RandomAffine(**options), CenterCrop(crop)]
    steps = [ConvertChannels(channels) if channels else None, *geometry,
             RandomHorizontalFlip(hflip) if hflip > 0 else None,
             ColorJitter(color_jitter, color_jitter, color_jitter) if color_jitter > 0 else None,
             ToTensor(), Normalize(mean, std),
             RandomErasing(erasing) if erasing > 0 else None]
    return _finish("train", steps, args)


def eval_preset(crop: int, mean: Sequence[float], std: Sequence[float], *,
                resize: int | None = None, channels: int | None = None,
                interpolation: str = "bilinear") -> Compose:
    """Evaluation pipeline: [ConvertChannels(channels)], Resize(resize, default crop) of the
    shorter side, CenterCrop(crop), ToTensor, Normalize(mean, std)."""
    args = {k: v for k, v in locals().items()}
    _check_common("eval_preset", crop, mean, std, channels, interpolation)
    if resize is not None and (not isinstance(resize, int) or resize < 1):
        raise ValueError(f"eval_preset: resize must be a positive int, got {resize!r}")
    steps = [ConvertChannels(channels) if channels else None,
             Resize(crop if resize is None else resize, interpolation), CenterCrop(crop),
             ToTensor(), Normalize(mean, std)]
    return _finish("eval", steps, args)


_PRESETS = {"train": train_preset, "eval": eval_preset}


def preset_from_spec(spec: dict[str, Any]) -> Compose:
    """Rebuild a preset from its spec: {"preset": "train" | "eval", **its keyword
    arguments}."""
    if not isinstance(spec, dict):
        raise TypeError(f"preset spec must be a dict, got {type(spec).__name__}")
    kind = spec.get("preset")
    if kind not in _PRESETS:
        raise ValueError(f"preset spec: 'preset' must be 'train' or 'eval', got {kind!r}")
    build = _PRESETS[kind]
    params = inspect.signature(build).parameters
    options = {k: v for k, v in spec.items() if k != "preset"}
    unknown = sorted(set(options) - set(params))
    missing = [k for k, p in params.items() if p.default is p.empty and k not in options]
    if unknown or missing:
        raise ValueError(f"preset spec for {kind!r}: unknown keys {unknown}, missing keys "
                         f"{missing}; allowed keys: {sorted(params)}")
    return build(**options)
