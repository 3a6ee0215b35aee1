"""`framework.cuda`: GPU availability, selection, synchronisation and memory statistics,
answered through CuPy when it is installed and a GPU is present (and harmlessly otherwise)."""
from __future__ import annotations

from ._backend import cupy_module, require_cupy

_peak = {}


def is_available() -> bool:
    cp = cupy_module()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def device_count() -> int:
    return require_cupy().cuda.runtime.getDeviceCount() if is_available() else 0


def current_device() -> int:
    return require_cupy().cuda.runtime.getDevice()


def set_device(device) -> None:
    idx = device if isinstance(device, int) else (getattr(device, "index", None) or 0)
    require_cupy().cuda.Device(idx).use()


def get_device_name(device=None) -> str:
    cp = require_cupy()
    idx = 0 if device is None else (device if isinstance(device, int) else device.index or 0)
    return cp.cuda.runtime.getDeviceProperties(idx)["name"].decode()


def synchronize(device=None) -> None:
    """Wait for all kernels on `device` (default: current) to finish."""
    if not is_available():
        return
    cp = require_cupy()
    if device is None:
        cp.cuda.Device().synchronize()
    else:
        idx = device if isinstance(device, int) else (getattr(device, "index", None) or 0)
        cp.cuda.Device(idx).synchronize()


def manual_seed(seed: int) -> None:
    from .random import default_generator_for
    from ._backend import device as _device
    for i in range(device_count()):
        default_generator_for(_device("cuda", i)).manual_seed(seed + i)


manual_seed_all = manual_seed


def memory_allocated(device=None) -> int:
    """Bytes held by live arrays in CuPy's default memory pool (0 without a GPU)."""
    if not is_available():
        return 0
    used = require_cupy().get_default_memory_pool().used_bytes()
    _peak[0] = max(_peak.get(0, 0), used)
    return used


def max_memory_allocated(device=None) -> int:
    """The largest `memory_allocated` observed since the last reset (sampled at each query)."""
    memory_allocated(device)
    return _peak.get(0, 0)


def reset_peak_memory_stats(device=None) -> None:
    _peak[0] = memory_allocated(device) if is_available() else 0


def memory_reserved(device=None) -> int:
    if not is_available():
        return 0
    return require_cupy().get_default_memory_pool().total_bytes()


def empty_cache() -> None:
    if is_available():
        require_cupy().get_default_memory_pool().free_all_blocks()
        require_cupy().get_default_pinned_memory_pool().free_all_blocks()


class Stream:
    """A CUDA stream (CuPy's), usable as a context manager."""

    def __init__(self, device=None, priority=0):
        self._s = require_cupy().cuda.Stream(non_blocking=True)

    def synchronize(self):
        self._s.synchronize()

    def __enter__(self):
        self._s.__enter__()
        return self

    def __exit__(self, *exc):
        return self._s.__exit__(*exc)


def current_stream(device=None):
    s = Stream.__new__(Stream)
    s._s = require_cupy().cuda.get_current_stream()
    return s


def stream(s):
    return s
