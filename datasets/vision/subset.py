"""A labelled view of part of an image data set (a train/val/test split), keeping the
`classes` / `class_to_idx` / `targets` interface that the full data sets have."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from framework.utils.data import Dataset

__all__ = ["ImageSubset"]


class ImageSubset(Dataset):
    """Samples `dataset[indices[i]]`, then this subset's own `transform` /
    `target_transform` (applied after any the parent data set has).

    `classes` and `class_to_idx` are the parent's (a split may lack some classes but keeps
    their numbering); `targets` (int64 array) are the parent's targets at `indices`.
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int],
                 transform: Callable | None = None, target_transform: Callable | None = None):
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"ImageSubset: indices span {idx.min()}..{idx.max()} but the data "
                             f"set has {n} samples")
        self.dataset = dataset
        self.indices = idx
        self.classes = list(dataset.classes)
        self.class_to_idx = dict(dataset.class_to_idx)
        self.targets = np.asarray(dataset.targets, dtype=np.int64)[idx]
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, index):
        image, target = self.dataset[int(self.indices[index])]
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        return f"ImageSubset({len(self)} of {self.dataset!r})"
