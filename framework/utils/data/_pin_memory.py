"""Page-locked ("pinned") host memory for batches, so host-to-GPU copies can run
asynchronously. Pinning needs CuPy and a CUDA GPU; without them it is a silent no-op (there is
nothing to gain on a CPU-only machine)."""
from __future__ import annotations

import collections.abc
import copy

import numpy as np

from ..._tensor import Tensor


def pinning_available() -> bool:
    from ... import cuda
    return cuda.is_available()


def _pin_array(arr: np.ndarray) -> np.ndarray:
    from ..._backend import require_cupy
    cp = require_cupy()
    mem = cp.cuda.alloc_pinned_memory(max(arr.nbytes, 1))
    out = np.frombuffer(mem, arr.dtype, arr.size).reshape(arr.shape)  # keeps `mem` alive
    out[...] = arr
    return out


def pin_memory(data):
    """Copy every CPU tensor / NumPy array inside `data` into pinned host memory (recursing
    through mappings, namedtuples and sequences like `default_collate` does)."""
    if isinstance(data, Tensor):
        arr = data._data
        if not isinstance(arr, (np.ndarray, np.generic)):
            return data  # already on a GPU
        t = Tensor._make(_pin_array(np.asarray(arr)), None, 0)
        t._requires_grad = data._requires_grad and data._grad_fn is None
        return t
    if isinstance(data, np.ndarray):
        return _pin_array(data)
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update({k: pin_memory(v) for k, v in data.items()})
                return clone
            return type(data)({k: pin_memory(v) for k, v in data.items()})
        except TypeError:
            return {k: pin_memory(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(pin_memory(v) for v in data))
    if isinstance(data, tuple):
        return [pin_memory(v) for v in data]
    if isinstance(data, collections.abc.Sequence):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, v in enumerate(data):
                    clone[i] = pin_memory(v)
                return clone
            return type(data)([pin_memory(v) for v in data])
        except TypeError:
            return [pin_memory(v) for v in data]
    if hasattr(data, "pin_memory"):
        return data.pin_memory()
    return data
