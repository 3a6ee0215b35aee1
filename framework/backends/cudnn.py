"""`framework.backends.cudnn`: cuDNN's switches, as torch.backends.cudnn. Setting
`framework.backends.cudnn.benchmark = True` (or `deterministic`, `allow_tf32`, `enabled`)
changes how the next convolution on the GPU runs: the flags are framework/_cudnn.py's
`_options`, which its $LANTERN_CUDNN* environment variables initialise.

Lantern's defaults follow its environment: `allow_tf32` is False unless
$LANTERN_ALLOW_TF32=1 (PyTorch's default is True), so float32 convolutions stay exact.
"""
from __future__ import annotations

import sys
import types
from contextlib import contextmanager

from .. import _dtype as D
from .. import _cudnn

__all__ = ["is_available", "version", "is_acceptable", "flags", "set_flags", "enabled",
           "benchmark", "deterministic", "allow_tf32", "benchmark_limit"]

# Accepted for scripts that set it; cuDNN's v7 API that Lantern uses has no limit to apply.
benchmark_limit = 10


def is_available() -> bool:
    """Whether a cuDNN library can be used (CuPy installed and cuDNN found)."""
    return _cudnn.available()


def version() -> int | None:
    """cuDNN's version number (e.g. 90100), or None when cuDNN is not available."""
    impl = _cudnn._backend()
    return None if impl is None else int(impl.version)


def is_acceptable(tensor) -> bool:
    """Whether cuDNN would take a convolution on `tensor` (a float CUDA tensor)."""
    return bool(_cudnn._options["enabled"] and tensor.is_cuda and
                tensor.dtype in (D.float16, D.float32, D.float64) and is_available())


def set_flags(_enabled=None, _benchmark=None, _benchmark_limit=None, _deterministic=None,
              _allow_tf32=None) -> tuple:
    """Set the given flags (None: leave as is); returns the previous ones, in this order."""
    global benchmark_limit
    o = _cudnn._options
    previous = (o["enabled"], o["benchmark"], benchmark_limit, o["deterministic"],
                o["allow_tf32"])
    if _enabled is not None:
        _cudnn.set_enabled(_enabled)
    if _benchmark is not None:
        _cudnn.set_benchmark(_benchmark)
    if _benchmark_limit is not None:
        benchmark_limit = int(_benchmark_limit)
    if _deterministic is not None:
        _cudnn.set_deterministic(_deterministic)
    if _allow_tf32 is not None:
        _cudnn.set_allow_tf32(_allow_tf32)
    return previous


@contextmanager
def flags(enabled=False, benchmark=False, benchmark_limit=10, deterministic=False,
          allow_tf32=True):
    """Set the flags for the body of a with statement, then restore them (PyTorch's
    defaults, enabled=False included)."""
    previous = set_flags(enabled, benchmark, benchmark_limit, deterministic, allow_tf32)
    try:
        yield
    finally:
        set_flags(*previous)


def _flag(name: str, setter):
    return property(lambda self: _cudnn._options[name], lambda self, v: setter(v))


class _CudnnModule(types.ModuleType):
    # Module attributes backed by _cudnn._options: `cudnn.benchmark = True` calls the setter.
    enabled = _flag("enabled", _cudnn.set_enabled)
    benchmark = _flag("benchmark", _cudnn.set_benchmark)
    deterministic = _flag("deterministic", _cudnn.set_deterministic)
    allow_tf32 = _flag("allow_tf32", _cudnn.set_allow_tf32)


sys.modules[__name__].__class__ = _CudnnModule
