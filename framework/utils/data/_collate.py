"""Batch assembly: `default_collate` stacks a list of samples into a batch, `default_convert`
turns one sample's arrays into tensors (used when automatic batching is off).

Types map to collate functions through `default_collate_fn_map` (exact type first, then the
first `isinstance` match in insertion order), so `collate(batch, collate_fn_map=...)` can be
extended for custom element types as in PyTorch."""
from __future__ import annotations

import collections.abc
import copy
import re
from typing import Callable

import numpy as np

from ..._backend import xp_of
from ..._tensor import Tensor

__all__ = ["collate", "default_collate", "default_convert", "default_collate_fn_map"]

_STR_OBJ_DTYPE = re.compile(r"[SaUO]")
_ERR_FORMAT = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
               "lists; found {}")


def _array_to_tensor(arr) -> Tensor:
    from ...creation import as_tensor
    return as_tensor(arr)


def collate(batch, *, collate_fn_map: dict | None = None):
    """Collate `batch` (a list of samples of one structure) element by element."""
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        fn = collate_fn_map.get(elem_type)
        if fn is not None:
            return fn(batch, collate_fn_map=collate_fn_map)
        for collate_type, fn in collate_fn_map.items():
            if isinstance(elem, collate_type):
                return fn(batch, collate_fn_map=collate_fn_map)

    def sub(samples):
        return collate(samples, collate_fn_map=collate_fn_map)

    if isinstance(elem, collections.abc.Mapping):
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                # a copy keeps any extra attributes of the mapping type
                clone = copy.copy(elem)
                clone.update({key: sub([d[key] for d in batch]) for key in elem})
                return clone
            return elem_type({key: sub([d[key] for d in batch]) for key in elem})
        except TypeError:  # the mapping type can't be copied / built from a dict
            return {key: sub([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(sub(samples) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch))
        if isinstance(elem, tuple):
            return [sub(samples) for samples in transposed]  # tuples become lists, as torch
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, samples in enumerate(transposed):
                    clone[i] = sub(samples)
                return clone
            return elem_type([sub(samples) for samples in transposed])
        except TypeError:  # e.g. range: not buildable from a list
            return [sub(samples) for samples in transposed]
    raise TypeError(_ERR_FORMAT.format(elem_type))


def _check_same_shape(shapes):
    ref = shapes[0]
    for i, s in enumerate(shapes):
        if s != ref:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(ref)} "
                               f"at entry 0 and {list(s)} at entry {i}")


def collate_tensor_fn(batch, *, collate_fn_map=None):
    if any(t.requires_grad for t in batch):
        from ...ops.shape import stack
        return stack(batch, 0)  # keeps the graph, as torch.stack does
    arrays = [t._data for t in batch]
    _check_same_shape([a.shape for a in arrays])
    return Tensor._make(xp_of(arrays[0]).stack(arrays), None, 0)


def collate_numpy_array_fn(batch, *, collate_fn_map=None):
    elem = batch[0]
    if _STR_OBJ_DTYPE.search(elem.dtype.str) is not None:
        raise TypeError(_ERR_FORMAT.format(elem.dtype))
    _check_same_shape([a.shape for a in batch])
    return _array_to_tensor(np.stack(batch))


def collate_numpy_scalar_fn(batch, *, collate_fn_map=None):
    return _array_to_tensor(np.array(batch))


def collate_float_fn(batch, *, collate_fn_map=None):
    return Tensor._make(np.array(batch, dtype=np.float64), None, 0)


def collate_int_fn(batch, *, collate_fn_map=None):
    # as torch.tensor(batch): bool for bools, int64 for ints, the default float once a Python
    # float appears
    if all(type(b) is bool for b in batch):
        return Tensor._make(np.array(batch, dtype=np.bool_), None, 0)
    if all(isinstance(b, int) for b in batch):
        return Tensor._make(np.array(batch, dtype=np.int64), None, 0)
    if all(isinstance(b, (int, float)) and not isinstance(b, np.generic) for b in batch):
        from ..._dtype import get_default_dtype
        return Tensor._make(np.array(batch, dtype=get_default_dtype().np), None, 0)
    from ...creation import tensor
    return tensor(batch)


def collate_str_fn(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map: dict[type | tuple, Callable] = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def default_collate(batch):
    """Stack a list of samples into a batch, recursively: tensors and NumPy arrays are stacked
    along a new first dimension, Python floats become a float64 tensor and ints an int64
    tensor, strings stay a list, dicts/namedtuples keep their type with collated values, and
    tuples/lists are transposed (a list of samples of `(x, y)` gives `[X, Y]`)."""
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data):
    """Turn the NumPy arrays inside one sample into tensors (no batching): used as the
    collate function when `batch_size=None`."""
    if isinstance(data, Tensor):
        return data
    elem_type = type(data)
    if isinstance(data, (np.ndarray, np.generic)) and not isinstance(data, (np.str_, np.bytes_)):
        if isinstance(data, np.ndarray) and _STR_OBJ_DTYPE.search(data.dtype.str) is not None:
            return data
        if isinstance(data, np.ndarray) or data.shape == ():
            return _array_to_tensor(data)
        return data
    if isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update({key: default_convert(data[key]) for key in data})
                return clone
            return elem_type({key: default_convert(data[key]) for key in data})
        except TypeError:
            return {key: default_convert(data[key]) for key in data}
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return elem_type(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]  # tuples become lists, as torch
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return elem_type([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
