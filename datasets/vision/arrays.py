"""The common base of the in-memory image data sets (MNIST, CIFAR, the hub sources, Shapes):
images held as one uint8 array, samples returned as `(image (H, W, C) uint8, int target)`."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from framework.utils.data import Dataset

__all__ = ["ArrayImageDataset", "check_targets"]


def check_targets(targets, n: int, num_classes: int, where: str) -> np.ndarray:
    """`targets` as an int64 array of length n with values in [0, num_classes)."""
    t = np.asarray(targets)
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"{where}: {t.shape} targets for {n} images; expected one label each")
    if n and t.dtype.kind not in "iu":
        if t.dtype.kind == "f" and np.all(t == np.round(t)):
            t = t.astype(np.int64)
        else:
            raise ValueError(f"{where}: targets must be integers, got dtype {t.dtype}")
    t = t.astype(np.int64, copy=False)
    if n and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(f"{where}: labels span {t.min()}..{t.max()}, outside 0.."
                         f"{num_classes - 1} for {num_classes} classes")
    return t


class ArrayImageDataset(Dataset):
    """Images (N, H, W) or (N, H, W, C) uint8, C in {1, 3}, with integer targets (N,) that
    index `classes`. `dataset[i]` is `(image, target)`: a fresh copy of image i as (H, W, C)
    (so transforms may modify it in place) and a Python int, each passed through
    `transform` / `target_transform` when given.

    Attributes: `data` (N, H, W, C) uint8, `targets` int64 array, `classes`, `class_to_idx`.
    """

    def __init__(self, images: np.ndarray, targets, classes: Sequence[str],
                 transform: Callable | None = None, target_transform: Callable | None = None):
        images = np.asarray(images)
        name = type(self).__name__
        if images.dtype != np.uint8:
            raise TypeError(f"{name}: images must be uint8, got {images.dtype}")
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[3] not in (1, 3):
            raise ValueError(f"{name}: images must be (N, H, W) or (N, H, W, C) with C 1 or 3, "
                             f"got shape {images.shape}")
        self.classes = [str(c) for c in classes]
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"{name}: duplicate class names in {self.classes}")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.targets = check_targets(targets, images.shape[0], len(self.classes), name)
        self.data = images
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index):
        image = np.array(self.data[index])  # IndexError for out-of-range indices
        if image.ndim != 3:
            raise TypeError(f"{type(self).__name__} indices must be integers, got "
                            f"{type(index).__name__}")
        target = int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        h, w, c = self.data.shape[1:]
        return (f"{type(self).__name__}({len(self)} images {h}x{w}x{c}, "
                f"{len(self.classes)} classes)")
