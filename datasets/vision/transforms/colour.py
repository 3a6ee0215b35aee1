"""Colour transforms: ColorJitter, Grayscale, RandomGrayscale, GaussianBlur."""
from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from . import _rng
from . import functional as F
from .container import Transform
from .functional import ImageLike

__all__ = ["ColorJitter", "Grayscale", "RandomGrayscale", "GaussianBlur"]


def _jitter_range(value: float | Sequence[float], name: str, center: float = 1.0,
                  bound: tuple[float, float] = (0.0, float("inf")),
                  clip_first_on_zero: bool = True) -> tuple[float, float] | None:
    """torchvision's ColorJitter rule: a number v means [center - v, center + v] (the low end
    clipped at 0 for factors), a pair is taken as is; the range must lie in `bound`; a range
    that is exactly {center} means 'off' (None)."""
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"If {name} is a single number, it must be non negative.")
        lo, hi = center - float(value), center + float(value)
        if clip_first_on_zero:
            lo = max(lo, 0.0)
    elif isinstance(value, Sequence) and len(value) == 2:
        lo, hi = float(value[0]), float(value[1])
    else:
        raise TypeError(f"{name} should be a single number or a list/tuple with length 2.")
    if not bound[0] <= lo <= hi <= bound[1]:
        raise ValueError(f"{name} values should be between {bound}, but got {[lo, hi]}.")
    return None if lo == hi == center else (lo, hi)


class ColorJitter(Transform):
    """Random brightness, contrast, saturation and hue changes, applied in a random order with
    factors drawn uniformly from their ranges (hue in [-0.5, 0.5])."""
    _repr_fields = ("brightness", "contrast", "saturation", "hue")
    _ADJUST = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)

    def __init__(self, brightness: float | Sequence[float] = 0,
                 contrast: float | Sequence[float] = 0,
                 saturation: float | Sequence[float] = 0,
                 hue: float | Sequence[float] = 0) -> None:
        self.brightness = _jitter_range(brightness, "brightness")
        self.contrast = _jitter_range(contrast, "contrast")
        self.saturation = _jitter_range(saturation, "saturation")
        self.hue = _jitter_range(hue, "hue", center=0.0, bound=(-0.5, 0.5),
                                 clip_first_on_zero=False)

    @staticmethod
    def get_params(brightness: Sequence[float] | None, contrast: Sequence[float] | None,
                   saturation: Sequence[float] | None, hue: Sequence[float] | None
                   ) -> tuple[list[int], float | None, float | None, float | None, float | None]:
        """(order of the four adjustments, brightness, contrast, saturation and hue factors;
        None for an adjustment that is off)."""
        order = _rng.permutation(4)
        factors = [None if r is None else _rng.uniform(r[0], r[1])
                   for r in (brightness, contrast, saturation, hue)]
        return (order, *factors)

    def __call__(self, img: ImageLike) -> np.ndarray:
        order, *factors = self.get_params(self.brightness, self.contrast, self.saturation,
                                          self.hue)
        arr = F.to_array(img)
        for i in order:
            if factors[i] is not None:
                arr = self._ADJUST[i](arr, factors[i])
        return arr


class Grayscale(Transform):
    """Convert to grayscale (ITU-R 601-2 luma) with 1 or 3 output channels."""
    _repr_fields = ("num_output_channels",)

    def __init__(self, num_output_channels: int = 1) -> None:
        if num_output_channels not in (1, 3):
            raise ValueError(f"num_output_channels must be 1 or 3, got {num_output_channels}")
        self.num_output_channels = num_output_channels

    def __call__(self, img: ImageLike) -> np.ndarray:
        return F.rgb_to_grayscale(img, self.num_output_channels)


class RandomGrayscale(Transform):
    """Convert to grayscale with probability p, keeping the number of channels."""
    _repr_fields = ("p",)

    def __init__(self, p: float = 0.1) -> None:
        self.p = p

    def __call__(self, img: ImageLike) -> np.ndarray:
        arr = F.to_array(img)
        return F.rgb_to_grayscale(arr, arr.shape[2]) if _rng.coin(self.p) else arr


class GaussianBlur(Transform):
    """Gaussian blur with an odd `kernel_size` and a sigma drawn uniformly from `sigma`
    ((min, max), or a fixed number)."""
    _repr_fields = ("kernel_size", "sigma")

    def __init__(self, kernel_size: int | Sequence[int],
                 sigma: float | Sequence[float] = (0.1, 2.0)) -> None:
        self.kernel_size = F._two(kernel_size, "kernel_size")
        if any(k <= 0 or k % 2 == 0 for k in self.kernel_size):
            raise ValueError("Kernel size value should be an odd and positive number.")
        if isinstance(sigma, numbers.Number):
            if sigma <= 0:
                raise ValueError("If sigma is a single number, it must be positive.")
            sigma = (float(sigma), float(sigma))
        elif isinstance(sigma, Sequence) and len(sigma) == 2:
            if not 0.0 < sigma[0] <= sigma[1]:
                raise ValueError("sigma values should be positive and of the form (min, max).")
            sigma = (float(sigma[0]), float(sigma[1]))
        else:
            raise ValueError("sigma should be a single number or a list/tuple with length 2.")
        self.sigma = sigma

    @staticmethod
    def get_params(sigma_min: float, sigma_max: float) -> float:
        """The blur's standard deviation."""
        return _rng.uniform(sigma_min, sigma_max)

    def __call__(self, img: ImageLike) -> np.ndarray:
        sigma = self.get_params(*self.sigma)
        return F.gaussian_blur(img, self.kernel_size, [sigma, sigma])
