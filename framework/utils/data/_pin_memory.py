"""Page-locked ("pinned") host memory for batches, so host-to-GPU copies can run
asynchronously. Pinning uses CuPy's pinned memory pool (`cupyx.empty_pinned`, or
`cupy.cuda.alloc_pinned_memory` on CuPy versions without it) and needs a CUDA GPU; without
CuPy or a GPU it is a documented no-op: `pin_memory` hands the data back unchanged (there is
nothing to gain on a CPU-only machine), and DataLoader(pin_memory=True) works as without it."""
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
    try:
        import cupyx
        out = cupyx.empty_pinned(arr.shape, arr.dtype)
    except (ImportError, AttributeError):
        mem = cp.cuda.alloc_pinned_memory(max(arr.nbytes, 1))
        out = np.frombuffer(mem, arr.dtype, arr.size).reshape(arr.shape)  # keeps `mem` alive
    out[...] = arr
    return out


def is_pinned_array(arr) -> bool:
    """True when NumPy array `arr` (or an array it views) lives in CuPy's pinned memory."""
    from ..._backend import cupy_module
    cp = cupy_module()
    if cp is None or not isinstance(arr, np.ndarray):
        return False
    pinned = cp.cuda.PinnedMemoryPointer
    base = arr
    while base is not None:
        if isinstance(base, (pinned, getattr(cp.cuda, "PinnedMemory", pinned))):
            return True
        base = getattr(base, "base", None) if not isinstance(base, memoryview) else base.obj
    return False


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
