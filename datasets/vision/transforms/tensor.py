"""Transforms on CHW tensors (after ToTensor): Normalize and RandomErasing. They use
framework ops, so they work on tensors on any device."""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import framework

from . import _rng
from . import functional as F
from .container import Transform

__all__ = ["Normalize", "RandomErasing"]


class Normalize(Transform):
    """(x - mean) / std per channel of a float CHW tensor (or float NumPy CHW array)."""
    _repr_fields = ("mean", "std")

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> None:
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        if len(self.mean) != len(self.std):
            raise ValueError(f"Normalize: mean and std must have the same length, got "
                             f"{len(self.mean)} and {len(self.std)}")
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: std must not contain zeros, got {self.std}")
        self.inplace = inplace

    def __call__(self, tensor: Any) -> Any:
        return F.normalize(tensor, self.mean, self.std, self.inplace)


class RandomErasing(Transform):
    """With probability p, set a random box of a CHW tensor to `value` (a number, one value
    per channel, or "random" for standard-normal noise). The box covers an area fraction
    uniform in `scale` with a log-uniform aspect ratio in `ratio`; after 10 draws that do not
    fit, the tensor is left unchanged."""
    _repr_fields = ("p", "scale", "ratio", "value", "inplace")

    def __init__(self, p: float = 0.5, scale: Sequence[float] = (0.02, 0.33),
                 ratio: Sequence[float] = (0.3, 3.3), value: float | str | Sequence[float] = 0,
                 inplace: bool = False) -> None:
        if not isinstance(value, (numbers.Number, str, tuple, list)):
            raise TypeError("Argument value should be either a number or str or a sequence")
        if isinstance(value, str) and value != "random":
            raise ValueError("If value is str, it should be 'random'")
        if len(scale) != 2 or len(ratio) != 2:
            raise ValueError(f"scale and ratio should be (min, max) pairs, got {scale}, {ratio}")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            warnings.warn("Scale and ratio should be of kind (min, max)")
        if scale[0] < 0 or scale[1] > 1:
            raise ValueError("Scale should be between 0 and 1")
        if p < 0 or p > 1:
            raise ValueError("Random erasing probability should be between 0 and 1")
        self.p, self.scale, self.ratio = p, scale, ratio
        self.value, self.inplace = value, inplace

    @staticmethod
    def get_params(img: framework.Tensor, scale: Sequence[float], ratio: Sequence[float],
                   value: Sequence[float] | None = None) -> tuple[int, int, int, int, Any]:
        """(top, left, height, width, fill) of the box; fill is a (C or 1, 1, 1) tensor, or
        (C, h, w) noise when `value` is None. Without a fitting box: the whole image and
        the image itself (so erasing changes nothing)."""
        img_c, img_h, img_w = (int(s) for s in img.shape[-3:])
        area = img_h * img_w
        log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
        for _ in range(10):
            erase_area = area * _rng.uniform(scale[0], scale[1])
            aspect = math.exp(_rng.uniform(log_lo, log_hi))
            h = int(round(math.sqrt(erase_area * aspect)))
            w = int(round(math.sqrt(erase_area / aspect)))
            if not (h < img_h and w < img_w):
                continue
            if value is None:
                v = framework.randn(img_c, h, w, dtype=framework.float32, device=img.device)
            else:
                v = framework.tensor(list(value), dtype=framework.float32,
                                     device=img.device).view(-1, 1, 1)
            return _rng.randint(0, img_h - h + 1), _rng.randint(0, img_w - w + 1), h, w, v
        return 0, 0, img_h, img_w, img

    def __call__(self, img: framework.Tensor) -> framework.Tensor:
        if not isinstance(img, framework.Tensor) or img.ndim < 3:
            raise TypeError(f"RandomErasing expects a (..., C, H, W) framework.Tensor (apply it "
                            f"after ToTensor), got {type(img).__name__}"
                            f"{tuple(getattr(img, 'shape', ()))}")
        if not _rng.coin(self.p):
            return img
        if isinstance(self.value, str):
            value = None
        elif isinstance(self.value, numbers.Number):
            value = [float(self.value)]
        else:
            value = [float(v) for v in self.value]
        if value is not None and len(value) not in (1, int(img.shape[-3])):
            raise ValueError(f"If value is a sequence, it should have either a single value or "
                             f"{int(img.shape[-3])} (number of input channels)")
        i, j, h, w, v = self.get_params(img, self.scale, self.ratio, value)
        return F.erase(img, i, j, h, w, v, self.inplace)
