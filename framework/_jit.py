"""Compiled CPU kernels for the row- and channel-wise work that NumPy does slowly.

NumPy runs a reduction over a short contiguous axis (softmax over 64 scores, layer norm over
128 features) and a broadcast of one value per row as one inner loop per row: a few hundred
nanoseconds of overhead per row, several times the cost of the arithmetic, and each step of
such a formula is its own pass over memory. The kernels in `_jit_kernels` do a whole row per
loop iteration and fuse the passes (a layer norm reads x once and writes y once); numba
compiles them on first use (and caches the machine code on disk), and they release the GIL,
so `parallel_ranges` runs row ranges of one call on several threads.

numba is a dependency, but an optional one at run time: without it (or with LANTERN_NO_JIT=1)
every op takes its NumPy formulation, which gives the same values to rounding. CuPy arrays
never come here. Kernels take float32 or float64 C-contiguous arrays; `eligible` says
whether a call qualifies.
"""
from __future__ import annotations

import os

import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_module = None  # the kernels module, or False once known to be unavailable
_enabled = not os.environ.get("LANTERN_NO_JIT")


def kernels():
    """The compiled-kernel module, or None (numba missing or the kernels switched off)."""
    global _module
    if not _enabled:
        return None
    if _module is None:
        try:
            from . import _jit_kernels
            _module = _jit_kernels
        except Exception:  # numba missing, or unable to load (e.g. built for another NumPy):
            _module = False  # the NumPy formulations serve
    return _module or None


def set_enabled(flag: bool) -> bool:
    """Switch the compiled kernels on or off (for tests and comparisons); returns the old state."""
    global _enabled
    old = _enabled
    _enabled = bool(flag)
    return old


def eligible(*arrays) -> bool:
    """True when every array is a C-contiguous NumPy float32/float64 array of one dtype."""
    first = arrays[0]
    dt = first.dtype
    if dt not in _FLOATS:
        return False
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != dt or not a.flags.c_contiguous:
            return False
    return True
