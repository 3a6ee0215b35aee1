"""Labelled text data sets: `TextDataset` (texts held in memory) and `TextSubset` (a split of
one). Both give `(text: str, target: int)` samples and carry `texts`, `targets` (int64),
`classes` and `class_to_idx`; they hold only strings and arrays, so they pickle cleanly into
DataLoader workers."""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from framework.utils.data import Dataset

__all__ = ["TextDataset", "TextSubset", "classes_from_labels"]

_INT_LABEL = re.compile(r"[+-]?\d+")


def classes_from_labels(labels: Sequence[str], where: str = "labels") -> list[str]:
    """The sorted distinct labels; numerically sorted (and written without leading zeros)
    when every label is an integer, so labels 0..K-1 keep their values as targets."""
    distinct = set(labels)
    if distinct and all(_INT_LABEL.fullmatch(x) for x in distinct):
        by_value = {int(x): x for x in distinct}
        if len(by_value) != len(distinct):
            raise ValueError(f"{where}: integer labels written two ways (e.g. '1' and '01'): "
                             f"{sorted(distinct)}")
        return [str(v) for v in sorted(by_value)]
    return sorted(distinct)


def _canonical(label: str, int_classes: bool) -> str:
    """`label` as it appears in an integer class list ("01" -> "1")."""
    return str(int(label)) if int_classes and _INT_LABEL.fullmatch(label) else label


class TextDataset(Dataset):
    """Texts with integer targets indexing `classes`; `dataset[i]` is `(text, target)`.

    Attributes: `texts` (list[str]), `targets` (int64 array), `classes`, `class_to_idx`,
    `source` (where the texts came from, for messages), `skipped_empty` (how many empty
    texts a reader skipped).
    """

    def __init__(self, texts: Sequence[str], targets, classes: Sequence[str], *,
                 source: str | None = None, skipped_empty: int = 0):
        name = source or type(self).__name__
        self.texts = [str(t) for t in texts]
        self.classes = [str(c) for c in classes]
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"{name}: duplicate class names in {self.classes}")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        t = np.asarray(targets)
        if t.shape != (len(self.texts),):
            raise ValueError(f"{name}: {t.shape} targets for {len(self.texts)} texts; expected "
                             "one label each")
        if t.size and t.dtype.kind not in "iu":
            raise ValueError(f"{name}: targets must be integers, got dtype {t.dtype}")
        t = t.astype(np.int64, copy=False)
        if t.size and (t.min() < 0 or t.max() >= len(self.classes)):
            raise ValueError(f"{name}: targets span {t.min()}..{t.max()}, outside 0.."
                             f"{len(self.classes) - 1} for {len(self.classes)} classes")
        self.targets = t
        self.source = source
        self.skipped_empty = int(skipped_empty)

    @classmethod
    def from_labels(cls, texts: Sequence[str], labels: Sequence[str],
                    classes: Sequence[str] | None = None, *, source: str | None = None,
                    lines: Sequence[int | None] | None = None,
                    skipped_empty: int = 0) -> "TextDataset":
        """A data set from string labels. Without `classes` they are
        `classes_from_labels(labels)`; with them (e.g. the training set's classes) a label
        outside the list is an error naming the label and, when `lines` are given, its
        line."""
        where = source or "labels"
        if classes is None:
            classes = classes_from_labels(labels, where)
        classes = [str(c) for c in classes]
        int_classes = bool(classes) and all(_INT_LABEL.fullmatch(c) for c in classes)
        index = {_canonical(c, int_classes): i for i, c in enumerate(classes)}
        targets = np.empty(len(labels), dtype=np.int64)
        for k, label in enumerate(labels):
            i = index.get(_canonical(label, int_classes))
            if i is None:
                line = lines[k] if lines is not None else None
                at = f"{where}:{line}" if line is not None else where
                raise ValueError(f"{at}: label {label!r} is not one of the training classes "
                                 f"{classes}")
            targets[k] = i
        return cls(texts, targets, classes, source=source, skipped_empty=skipped_empty)

    def with_classes(self, classes: Sequence[str]) -> "TextDataset":
        """The same texts numbered by `classes` (which must contain every class name here),
        e.g. to evaluate with the class order a model was trained with."""
        classes = [str(c) for c in classes]
        if classes == self.classes:
            return self
        index = {c: i for i, c in enumerate(classes)}
        missing = [c for c in self.classes if c not in index]
        if missing:
            raise ValueError(f"{self.source or type(self).__name__}: classes {missing} are not "
                             f"among the given classes {classes}")
        remap = np.asarray([index[c] for c in self.classes], dtype=np.int64)
        return TextDataset(self.texts, remap[self.targets], classes, source=self.source,
                           skipped_empty=self.skipped_empty)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index):
        return self.texts[index], int(self.targets[index])

    def __repr__(self) -> str:
        where = f"{self.source!r}, " if self.source else ""
        return f"{type(self).__name__}({where}{len(self)} texts, {len(self.classes)} classes)"


class TextSubset(Dataset):
    """Samples `dataset[indices[i]]` with the parent's `classes` / `class_to_idx` (a split may
    lack some classes but keeps their numbering); `texts` and `targets` are the parent's at
    `indices`."""

    def __init__(self, dataset, indices: Sequence[int]):
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"TextSubset: indices span {idx.min()}..{idx.max()} but the data "
                             f"set has {n} samples")
        self.dataset = dataset
        self.indices = idx
        self.classes = list(dataset.classes)
        self.class_to_idx = dict(dataset.class_to_idx)
        self.texts = [dataset.texts[i] for i in idx.tolist()]
        self.targets = np.asarray(dataset.targets, dtype=np.int64)[idx]
        self.source = getattr(dataset, "source", None)

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, index):
        return self.texts[index], int(self.targets[index])

    def __repr__(self) -> str:
        return f"TextSubset({len(self)} of {self.dataset!r})"
