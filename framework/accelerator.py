"""`framework.accelerator`: the device-generic API of torch.accelerator. Lantern's one
accelerator type is CUDA (through CuPy), so every function answers for 'cuda' through
`framework.cuda`.

Example scripts pick their device with it:

    device = framework.accelerator.current_accelerator() if framework.accelerator.is_available() \\
        else framework.device("cpu")

As in PyTorch, `current_accelerator()` names the accelerator this installation is built for
(here: CuPy imports) even when no GPU is present, `is_available()` says whether one can be
used, and the functions that need a device raise "Cannot access accelerator device when none
is available." without one.
"""
from __future__ import annotations

import warnings

from . import cuda as _cuda
from ._backend import cupy_module, device

__all__ = ["current_accelerator", "current_device_index", "current_device_idx",
           "current_stream", "device_count", "device_index", "empty_cache",
           "get_memory_info", "is_available", "max_memory_allocated", "memory_allocated",
           "memory_reserved", "memory_stats", "reset_peak_memory_stats", "set_device_index",
           "set_device_idx", "set_stream", "synchronize"]


def current_accelerator(check_available: bool = False) -> device | None:
    """device('cuda') when this installation has CuPy (with `check_available`, also a usable
    GPU), else None."""
    if cupy_module() is None:
        return None
    if check_available and not _cuda.is_available():
        return None
    return device("cuda")


def is_available() -> bool:
    """Whether an accelerator (a CUDA GPU through CuPy) can be used now."""
    return _cuda.is_available()


def device_count() -> int:
    """The number of usable accelerator devices (0 without one)."""
    return _cuda.device_count()


def _require() -> None:
    if not _cuda.is_available():
        raise RuntimeError("Cannot access accelerator device when none is available.")


def _index(dev) -> int | None:
    """The device index meant by an int, 'cuda:N', a device, or None (the current one)."""
    if dev is None:
        return None
    if isinstance(dev, int):
        return dev
    d = device(dev)
    if d.type != "cuda":
        raise ValueError(f"{d} is not an accelerator device (expected 'cuda')")
    return d.index


def current_device_index() -> int:
    _require()
    return _cuda.current_device()


def current_device_idx() -> int:
    warnings.warn("Use `current_device_index` instead.", FutureWarning, stacklevel=2)
    return current_device_index()


def set_device_index(dev, /) -> None:
    _require()
    idx = _index(dev)
    if idx is not None:
        _cuda.set_device(idx)


def set_device_idx(dev, /) -> None:
    warnings.warn("Use `set_device_index` instead.", FutureWarning, stacklevel=2)
    set_device_index(dev)


class device_index:
    """Context manager making device `idx` current for its body (None: no change)."""

    def __init__(self, idx: int | None, /) -> None:
        self.idx = idx
        self._ctx = None

    def __enter__(self) -> None:
        if self.idx is not None:
            _require()
            self._ctx = _cuda.device(self.idx)
            self._ctx.__enter__()

    def __exit__(self, *exc) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
            self._ctx = None


def synchronize(dev=None, /) -> None:
    """Wait for all work queued on the device (default: the current one) to finish."""
    _require()
    _cuda.synchronize(_index(dev))


def current_stream(dev=None, /):
    _require()
    return _cuda.current_stream(_index(dev))


def set_stream(stream) -> None:
    _require()
    _cuda.set_stream(stream)


def empty_cache() -> None:
    _require()
    _cuda.empty_cache()


def memory_allocated(dev=None, /) -> int:
    _require()
    return _cuda.memory_allocated(_index(dev))


def max_memory_allocated(dev=None, /) -> int:
    _require()
    return _cuda.max_memory_allocated(_index(dev))


def memory_reserved(dev=None, /) -> int:
    _require()
    return _cuda.memory_reserved(_index(dev))


def memory_stats(dev=None, /) -> dict:
    _require()
    return _cuda.memory_stats(_index(dev))


def reset_peak_memory_stats(dev=None, /) -> None:
    _require()
    _cuda.reset_peak_memory_stats(_index(dev))


def get_memory_info(dev=None, /) -> tuple:
    """(free, total) bytes of the device."""
    _require()
    return _cuda.mem_get_info(_index(dev))
