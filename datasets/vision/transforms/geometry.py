"""Geometric transforms: resizing, cropping, flipping, rotating and affine warps, with
torchvision's arguments, defaults and parameter sampling."""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _rng
from . import functional as F
from .container import Transform
from .functional import Fill, ImageLike, InterpolationMode

__all__ = ["Resize", "CenterCrop", "RandomCrop", "RandomResizedCrop", "RandomHorizontalFlip",
           "RandomVerticalFlip", "RandomRotation", "RandomAffine"]

def _size_hw(size: int | Sequence[int], owner: str) -> tuple[int, int]:
    if not isinstance(size, (numbers.Number, Sequence)):
        raise TypeError(f"{owner}: size should be an int or a sequence, got {type(size).__name__}")
    return F._two(size, f"{owner} size")


def _range(value: Any, name: str, sizes: tuple[int, ...] = (2,)) -> list[float]:
    """[-v, v] for a non-negative number v, else the sequence as floats (torchvision's rule for
    `degrees` and `shear`)."""
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"If {name} is a single number, it must be positive, got {value}")
        return [-float(value), float(value)]
    values = [float(v) for v in value]
    if len(values) not in sizes:
        raise ValueError(f"{name} should be a number or a sequence of length "
                         f"{' or '.join(map(str, sizes))}, got {value}")
    return values


def _check_fill(fill: Fill) -> Fill:
    if fill is None:
        return 0
    if not isinstance(fill, (numbers.Number, Sequence)):
        raise TypeError(f"fill should be a number or a sequence, got {type(fill).__name__}")
    return fill


class Resize(Transform):
    """Resize: an int sets the shorter side (aspect kept, longer side at most `max_size`),
    (h, w) sets both."""
    _repr_fields = ("size", "interpolation", "max_size", "antialias")

    def __init__(self, size: int | Sequence[int] | None,
                 interpolation: InterpolationMode | str = InterpolationMode.BILINEAR,
                 max_size: int | None = None, antialias: bool | None = True) -> None:
        if size is None and max_size is None:
            raise ValueError("Resize: size=None needs max_size")
        if size is not None and not isinstance(size, numbers.Number):
            if not isinstance(size, Sequence) or len(size) not in (1, 2):
                raise ValueError(f"Resize: size should be an int or a sequence of 1 or 2 values, "
                                 f"got {size}")
        self.size = size
        self.interpolation = F.interpolation_mode(interpolation)
        self.max_size = max_size
        self.antialias = antialias

    def __call__(self, img: ImageLike) -> np.ndarray:
        return F.resize(img, self.size, self.interpolation, self.max_size, self.antialias)


class CenterCrop(Transform):
    """Crop the centre (zero-padding an image smaller than the crop)."""
    _repr_fields = ("size",)

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _size_hw(size, "CenterCrop")

    def __call__(self, img: ImageLike) -> np.ndarray:
        return F.center_crop(img, self.size)


class RandomCrop(Transform):
    """Crop at a uniformly random position, after optional `padding` and, with
    `pad_if_needed`, padding a side shorter than the crop (by the shortfall on both ends)."""
    _repr_fields = ("size", "padding")

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] | None = None,
                 pad_if_needed: bool = False, fill: Fill = 0,
                 padding_mode: str = "constant") -> None:
        self.size = _size_hw(size, "RandomCrop")
        if padding is not None:
            F._ltrb(padding)  # validates
        if padding_mode not in F._PAD_MODES:
            raise ValueError(f"RandomCrop: padding_mode must be one of {F._PAD_MODES}, got "
                             f"{padding_mode!r}")
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    @staticmethod
    def get_params(img: ImageLike, output_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(top, left, height, width) of a random crop of `output_size`."""
        _, h, w = F.get_dimensions(img)
        th, tw = output_size
        if h < th or w < tw:
            raise ValueError(f"Required crop size {(th, tw)} is larger than input image size "
                             f"{(h, w)}")
        if (h, w) == (th, tw):
            return 0, 0, h, w
        return _rng.randint(0, h - th + 1), _rng.randint(0, w - tw + 1), th, tw

    def __call__(self, img: ImageLike) -> np.ndarray:
        arr = F.to_array(img)
        if self.padding is not None:
            arr = F.pad(arr, self.padding, self.fill, self.padding_mode)
        if self.pad_if_needed and arr.shape[1] < self.size[1]:
            arr = F.pad(arr, [self.size[1] - arr.shape[1], 0], self.fill, self.padding_mode)
        if self.pad_if_needed and arr.shape[0] < self.size[0]:
            arr = F.pad(arr, [0, self.size[0] - arr.shape[0]], self.fill, self.padding_mode)
        return F.crop(arr, *self.get_params(arr, self.size))


class RandomResizedCrop(Transform):
    """Crop a random area fraction `scale` with a random aspect ratio `ratio` (log-uniform),
    then resize it to `size`; after 10 failed draws, a central crop clamped to `ratio`."""
    _repr_fields = ("size", "scale", "ratio", "interpolation", "antialias")

    def __init__(self, size: int | Sequence[int], scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
                 interpolation: InterpolationMode | str = InterpolationMode.BILINEAR,
                 antialias: bool | None = True) -> None:
        self.size = _size_hw(size, "RandomResizedCrop")
        if not isinstance(scale, Sequence) or not isinstance(ratio, Sequence) or \
                len(scale) != 2 or len(ratio) != 2:
            raise TypeError(f"RandomResizedCrop: scale and ratio should be (min, max) pairs, got "
                            f"{scale} and {ratio}")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            warnings.warn("Scale and ratio should be of kind (min, max)")
        self.scale = tuple(float(s) for s in scale)
        self.ratio = tuple(float(r) for r in ratio)
        self.interpolation = F.interpolation_mode(interpolation)
        self.antialias = antialias

    @staticmethod
    def get_params(img: ImageLike, scale: Sequence[float],
                   ratio: Sequence[float]) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the crop."""
        _, height, width = F.get_dimensions(img)
        area = height * width
        log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
        for _ in range(10):
            target_area = area * _rng.uniform(scale[0], scale[1])
            aspect = math.exp(_rng.uniform(log_lo, log_hi))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return _rng.randint(0, height - h + 1), _rng.randint(0, width - w + 1), h, w
        in_ratio = width / height
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            w, h = int(round(height * max(ratio))), height
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img: ImageLike) -> np.ndarray:
        arr = F.to_array(img)
        top, left, h, w = self.get_params(arr, self.scale, self.ratio)
        return F.resized_crop(arr, top, left, h, w, self.size, self.interpolation,
                              self.antialias)


class _RandomFlip(Transform):
    """Apply `_flip` with probability p."""
    _repr_fields = ("p",)
    _flip: Callable[[ImageLike], np.ndarray]

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: ImageLike) -> np.ndarray:
        return self._flip(img) if _rng.coin(self.p) else F.to_array(img)


class RandomHorizontalFlip(_RandomFlip):
    """Mirror left-right with probability p."""
    _flip = staticmethod(F.hflip)


class RandomVerticalFlip(_RandomFlip):
    """Mirror top-bottom with probability p."""
    _flip = staticmethod(F.vflip)


class RandomRotation(Transform):
    """Rotate by an angle uniform in `degrees` ((-d, d) for a number d)."""
    _repr_fields = ("degrees", "interpolation", "expand", "center", "fill")

    def __init__(self, degrees: float | Sequence[float],
                 interpolation: InterpolationMode | str = InterpolationMode.NEAREST,
                 expand: bool = False, center: Sequence[float] | None = None,
                 fill: Fill = 0) -> None:
        self.degrees = _range(degrees, "degrees")
        self.interpolation = F.interpolation_mode(interpolation)
        self.expand = expand
        if center is not None and len(center) != 2:
            raise ValueError(f"center should be a sequence of length 2, got {center}")
        self.center = center
        self.fill = _check_fill(fill)

    @staticmethod
    def get_params(degrees: Sequence[float]) -> float:
        """The rotation angle."""
        return _rng.uniform(degrees[0], degrees[1])

    def __call__(self, img: ImageLike) -> np.ndarray:
        return F.rotate(img, self.get_params(self.degrees), self.interpolation, self.expand,
                        self.center, self.fill)


class RandomAffine(Transform):
    """Random rotation (`degrees`), translation (at most a `translate` fraction of width and
    height, rounded to whole pixels), `scale` and `shear` (x range, or x and y ranges), about
    the image centre; the output keeps the input's size."""
    _repr_fields = ("degrees", "translate", "scale", "shear", "interpolation", "fill", "center")

    def __init__(self, degrees: float | Sequence[float],
                 translate: Sequence[float] | None = None,
                 scale: Sequence[float] | None = None,
                 shear: float | Sequence[float] | None = None,
                 interpolation: InterpolationMode | str = InterpolationMode.NEAREST,
                 fill: Fill = 0, center: Sequence[float] | None = None) -> None:
        self.degrees = _range(degrees, "degrees")
        if translate is not None:
            if len(translate) != 2 or not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError(f"translate should be 2 fractions in [0, 1], got {translate}")
        if scale is not None:
            if len(scale) != 2 or not all(s > 0 for s in scale):
                raise ValueError(f"scale should be 2 positive values, got {scale}")
        self.translate = translate
        self.scale = scale
        self.shear = None if shear is None else _range(shear, "shear", (2, 4))
        self.interpolation = F.interpolation_mode(interpolation)
        self.fill = _check_fill(fill)
        if center is not None and len(center) != 2:
            raise ValueError(f"center should be a sequence of length 2, got {center}")
        self.center = center

    @staticmethod
    def get_params(degrees: Sequence[float], translate: Sequence[float] | None,
                   scale_ranges: Sequence[float] | None, shears: Sequence[float] | None,
                   img_size: Sequence[int]) -> tuple[float, tuple[int, int], float,
                                                     tuple[float, float]]:
        """(angle, (tx, ty), scale, (shear_x, shear_y)) for an image of (width, height)
        `img_size`."""
        angle = _rng.uniform(degrees[0], degrees[1])
        tx = ty = 0
        if translate is not None:
            max_dx, max_dy = translate[0] * img_size[0], translate[1] * img_size[1]
            tx = int(round(_rng.uniform(-max_dx, max_dx)))
            ty = int(round(_rng.uniform(-max_dy, max_dy)))
        scale = 1.0 if scale_ranges is None else _rng.uniform(scale_ranges[0], scale_ranges[1])
        shear_x = shear_y = 0.0
        if shears is not None:
            shear_x = _rng.uniform(shears[0], shears[1])
            if len(shears) == 4:
                shear_y = _rng.uniform(shears[2], shears[3])
        return angle, (tx, ty), scale, (shear_x, shear_y)

    def __call__(self, img: ImageLike) -> np.ndarray:
        arr = F.to_array(img)
        angle, translate, scale, shear = self.get_params(
            self.degrees, self.translate, self.scale, self.shear, [arr.shape[1], arr.shape[0]])
        return F.affine(arr, angle, translate, scale, shear, self.interpolation, self.fill,
                        self.center)
