"""Batch transforms with torchvision.transforms.v2 semantics: MixUp and CutMix. Each pairs
every sample with the previous one in the batch (the batch rolled by one), draws lambda from
Beta(alpha, alpha) and returns the mixed images with soft labels (N, num_classes), which
`framework.nn.functional.cross_entropy(logits, soft_labels)` accepts. Framework ops only, so
the batch may live on any device."""
from __future__ import annotations

import math
from typing import Any

import framework
import framework.nn.functional as NF

from . import _rng
from .container import Transform

__all__ = ["MixUp", "CutMix"]


class _MixBatch(Transform):
    """Shared checks, lambda draw and label mixing; subclasses mix the images."""
    _repr_fields = ("alpha", "num_classes")

    def __init__(self, *, alpha: float = 1.0, num_classes: int | None = None) -> None:
        if not alpha > 0:
            raise ValueError(f"{type(self).__name__}: alpha must be positive, got {alpha}")
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f"{type(self).__name__}: num_classes must be a positive int, got "
                             f"{num_classes!r}")
        self.alpha = float(alpha)
        self.num_classes = num_classes

    def sample_lambda(self) -> float:
        """lambda ~ Beta(alpha, alpha), seeded from the framework's generator."""
        return float(_rng.numpy_generator().beta(self.alpha, self.alpha))

    def _check(self, images: Any, labels: Any) -> None:
        name = type(self).__name__
        if not isinstance(images, framework.Tensor) or images.ndim != 4:
            raise ValueError(f"{name}: images must be a batched (N, C, H, W) framework.Tensor, "
                             f"got {type(images).__name__}{tuple(getattr(images, 'shape', ()))}")
        if not framework.is_floating_point(images):
            raise TypeError(f"{name}: images must be a float tensor (apply ToTensor first), got "
                            f"{images.dtype}")
        if not isinstance(labels, framework.Tensor) or labels.ndim not in (1, 2):
            raise ValueError(f"{name}: labels must be a framework.Tensor of class indices (N,) or "
                             f"probabilities (N, num_classes), got {type(labels).__name__}"
                             f"{tuple(getattr(labels, 'shape', ()))}")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{name}: the batch size of the images does not match that of the "
                             f"labels: {images.shape[0]} != {labels.shape[0]}")
        if labels.ndim == 2:
            if not framework.is_floating_point(labels):
                raise TypeError(f"{name}: 2-D labels must be float probabilities, got "
                                f"{labels.dtype}")
            if self.num_classes is not None and labels.shape[1] != self.num_classes:
                raise ValueError(f"{name}: 2-D labels have {labels.shape[1]} classes but "
                                 f"num_classes is {self.num_classes}")
            return
        if labels.dtype != framework.int64:
            raise TypeError(f"{name}: class-index labels must be int64, got {labels.dtype}")
        if self.num_classes is None:
            raise ValueError(f"{name}: num_classes must be given for class-index (1-D) labels")
        if labels.numel() and (int(labels.min().item()) < 0
                               or int(labels.max().item()) >= self.num_classes):
            raise ValueError(f"{name}: labels must be in [0, {self.num_classes}), got "
                             f"[{int(labels.min().item())}, {int(labels.max().item())}]")

    def _mix_labels(self, labels: framework.Tensor, lam: float) -> framework.Tensor:
        soft = labels if labels.ndim == 2 else NF.one_hot(labels, self.num_classes)
        if not framework.is_floating_point(soft):
            soft = soft.to(dtype=framework.float32)
        return soft.roll(1, 0).mul(1.0 - lam).add_(soft.mul(lam))

    def _mix_images(self, images: framework.Tensor) -> tuple[framework.Tensor, float]:
        raise NotImplementedError

    def __call__(self, *inputs: Any) -> tuple[framework.Tensor, framework.Tensor]:
        """`(images, labels)` -> `(mixed images, soft labels)`; also accepts one tuple."""
        if len(inputs) == 1 and isinstance(inputs[0], (tuple, list)):
            inputs = tuple(inputs[0])
        if len(inputs) != 2:
            raise TypeError(f"{type(self).__name__} expects (images, labels), got {len(inputs)} "
                            f"arguments")
        images, labels = inputs
        self._check(images, labels)
        mixed, lam = self._mix_images(images)
        return mixed, self._mix_labels(labels, lam)


class MixUp(_MixBatch):
    """images * lam + rolled images * (1 - lam), labels likewise."""

    def _mix_images(self, images: framework.Tensor) -> tuple[framework.Tensor, float]:
        lam = self.sample_lambda()
        return images.roll(1, 0).mul(1.0 - lam).add_(images.mul(lam)), lam


class CutMix(_MixBatch):
    """Paste a box of the rolled images into the images. The box is centred at a uniform
    random pixel with sides sqrt(1 - lam) times the image's (clipped at the borders); the
    labels are mixed with lambda corrected to the unpasted area fraction."""

    def get_box(self, lam: float, height: int, width: int) -> tuple[int, int, int, int]:
        """(x1, y1, x2, y2) of the pasted box."""
        cx, cy = _rng.randint(0, width), _rng.randint(0, height)
        r = 0.5 * math.sqrt(1.0 - lam)
        half_w, half_h = int(r * width), int(r * height)
        return (max(cx - half_w, 0), max(cy - half_h, 0),
                min(cx + half_w, width), min(cy + half_h, height))

    def _mix_images(self, images: framework.Tensor) -> tuple[framework.Tensor, float]:
        height, width = int(images.shape[-2]), int(images.shape[-1])
        x1, y1, x2, y2 = self.get_box(self.sample_lambda(), height, width)
        out = images.clone()
        out[..., y1:y2, x1:x2] = images.roll(1, 0)[..., y1:y2, x1:x2]
        return out, 1.0 - (x2 - x1) * (y2 - y1) / (width * height)
