"""Fetchers turn what the index sampler yields (an index, or a list of indices when batching)
into a collated batch, for map-style and iterable-style datasets alike."""
from __future__ import annotations

import numpy as np

from ..._tensor import Tensor
from ._collate import default_collate
from .dataset import IterableDataset, TensorDataset


class _MapDatasetFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        # A TensorDataset batch collated by default_collate is just [t[indices] for t]: one
        # fancy-indexing gather per tensor instead of B row views and a stack.
        self._gather = (auto_collation and type(dataset) is TensorDataset
                        and collate_fn is default_collate and len(dataset.tensors) > 0
                        and not any(t.requires_grad for t in dataset.tensors))
        getitems = getattr(dataset, "__getitems__", None)
        self._getitems = getitems if callable(getitems) else None

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        if self._gather and index:
            from ..._backend import xp_of
            out = []
            for t in self.dataset.tensors:
                xp = xp_of(t._data)
                out.append(Tensor._make(t._data[xp.asarray(index, dtype=np.int64)], None, 0))
            return out
        if self._getitems is not None:
            data = self._getitems(index)
        else:
            data = [self.dataset[i] for i in index]
        return self.collate_fn(data)


class _IterableDatasetFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.dataset_iter = iter(dataset)
        self.ended = False

    def fetch(self, index):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.dataset_iter))
        data = []
        for _ in index:
            try:
                data.append(next(self.dataset_iter))
            except StopIteration:
                self.ended = True
                break
        if not data or (self.drop_last and len(data) < len(index)):
            raise StopIteration
        return self.collate_fn(data)


def create_fetcher(dataset, auto_collation, collate_fn, drop_last):
    cls = _IterableDatasetFetcher if isinstance(dataset, IterableDataset) else _MapDatasetFetcher
    return cls(dataset, auto_collation, collate_fn, drop_last)
