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
import sys

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


# ---------------------------------------------------------------------------- prange kernels
# Handing a range of rows to a thread of our pool (concurrent.futures) costs ~50-80 us on a VM
# (two futex wake-ups), more than a whole pass over a 2 MB activation, so the memory-bound
# kernels (norms, ReLU) ran on one thread and lost the second core's bandwidth and cache.
# numba's OpenMP threading layer keeps its threads spinning between parallel regions: a
# prange over two parts then costs a few microseconds (a 2 MB batch-norm affine pass: 0.125 ms
# on one thread, 0.047 ms on two), and thread i always takes part i, so consecutive kernels
# find their part of the data in their own core's cache. The `*_par` kernels use it where
# numba has the OpenMP layer (libgomp) and the process suits spinning threads (see
# _openmp_fits); in a forked child (libgomp is not fork-safe), with other layers or beside
# spinning OpenBLAS threads or PyTorch's OpenMP they are not used, and the kernels run on
# `parallel_ranges` as before.
_omp = None  # (pid, available) once checked
_omp_threads = 0


def omp_parts(load: bool = True) -> int:
    """Parts for a prange kernel: the intra-op thread count when the OpenMP layer serves
    them (and it is above 1), else 0 (use the kernels on `parallel_ranges`). With
    load=False, 0 unless the kernels are loaded already (an op that has a NumPy path
    need not load numba)."""
    global _omp, _omp_threads
    from ._parallel import get_num_threads
    n = get_num_threads()
    if n < 2 or (not load and not _module) or kernels() is None:
        return 0
    pid = os.getpid()
    if _omp is None:
        _omp = (pid, _omp_layer())
    elif _omp[0] != pid:  # a forked child (libgomp is not fork-safe): never here
        _omp = (pid, False)
    if not _omp[1]:
        return 0
    import numba
    n = min(n, numba.config.NUMBA_NUM_THREADS)
    if n != _omp_threads:
        numba.set_num_threads(n)
        _omp_threads = n
    return n if n > 1 else 0


def _openmp_fits() -> bool:
    """Whether spinning OpenMP threads can share this process: not beside OpenBLAS threads
    that busy-wait ~0.1 s after every GEMM (OPENBLAS_THREAD_TIMEOUT unset or above 20,
    which `import framework` leaves only when the user asks; measured: the U-Net step
    118 -> 149 ms), and not with
    PyTorch loaded (numba would then run on PyTorch's copy of libgomp, whose threads spin for
    milliseconds: the CNN benchmark's step ran 20% slower)."""
    timeout = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "")
    return timeout.isdigit() and int(timeout) <= 20 and "torch" not in sys.modules


# Spins of an idle OpenMP thread before it sleeps. libgomp's default (300,000, many
# milliseconds) keeps the second core busy long after a kernel, away from OpenBLAS's threads
# and from the pool threads of the other kernels (the CNN and Transformer benchmarks' steps
# ran 15-25% slower at 2 threads); 10,000 (a fraction of a millisecond) still bridges the gap
# between consecutive kernels of a step.
OMP_SPINCOUNT = "10000"


def _omp_layer() -> bool:
    """Whether numba's parallel kernels will run on OpenMP: chosen here unless the user set
    NUMBA_THREADING_LAYER (then only if it is 'omp'). numba's libgomp is loaded here with
    GOMP_SPINCOUNT=OMP_SPINCOUNT unless the user set it or OMP_WAIT_POLICY; the variable is
    removed again, so that another OpenMP runtime loaded later (PyTorch's) keeps its own
    default."""
    import numba
    wanted = os.environ.get("NUMBA_THREADING_LAYER", "")
    if wanted:
        return wanted == "omp"
    if not _openmp_fits():
        return False
    ours = not (os.environ.get("GOMP_SPINCOUNT") or os.environ.get("OMP_WAIT_POLICY"))
    if ours:
        os.environ["GOMP_SPINCOUNT"] = OMP_SPINCOUNT
    try:
        from numba.np.ufunc import omppool  # noqa: F401  (loads libgomp, which reads the env)
    except Exception:
        return False
    finally:
        if ours:
            del os.environ["GOMP_SPINCOUNT"]
    numba.config.THREADING_LAYER = "omp"
    return True


def omp_status() -> str:
    """Whether the prange kernels run on OpenMP in this process, and if not why (for
    `lantern doctor`)."""
    from ._parallel import get_num_threads
    if kernels() is None:
        return "off (numba unavailable or LANTERN_NO_JIT set)"
    if get_num_threads() < 2:
        return "off (one thread)"
    parts = omp_parts()
    if parts:
        return f"on ({parts} threads)"
    if "torch" in sys.modules:
        return "off (PyTorch is loaded: numba would share its OpenMP runtime)"
    timeout = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "")
    if not (timeout.isdigit() and int(timeout) <= 20):
        return ("off (OpenBLAS's idle threads spin ~0.1 s: OPENBLAS_THREAD_TIMEOUT is "
                f"{timeout or 'unset'}, 16 or less lets them sleep)")
    return "off (numba has no OpenMP threading layer here)"
