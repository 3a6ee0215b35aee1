"""Process-level tunings applied once at `import framework`, each switchable by environment.

1. Allocator (LANTERN_NO_MALLOPT=1 to skip). Keep freed large arrays in the process heap
   instead of returning them to the OS.

glibc serves allocations above its mmap threshold (128 KiB, adapting up to 32 MiB) with fresh
mmap'ed pages, and trims freed heap memory back to the OS. A training step allocates and
frees the same few-MB activations, columns and gradients every step, so each step pays the
page faults of touching fresh memory again (about 15% of a small CNN's step on this code
base). Raising the mmap and trim thresholds makes glibc reuse those pages, the effect a
caching allocator has in PyTorch. Memory freed by the process is kept for reuse rather than
returned to the OS (like PyTorch's allocator). Set LANTERN_NO_MALLOPT=1 to leave glibc's
defaults; a no-op on other C libraries.

2. OpenBLAS's idle threads (LANTERN_NO_BLAS_SPIN_TUNING=1 to skip). After each multi-threaded
   GEMM, OpenBLAS's worker threads busy-wait for the next one for 2^28 cycles (~0.1 s) before
   sleeping. Lantern's own kernels (the direct convolutions, the norms, the elementwise ops)
   run on its own threads between GEMMs, and a spinning BLAS worker takes a core from them:
   on 2 cores a 3D U-Net step ran at the speed of one thread (measured: 1 thread 350 ms, 2
   threads 355 ms; with a spin of 2^16 cycles, ~20 us, 245 ms), and the 2D CNN, Transformer
   and MiniLM steps were as fast or faster too. OPENBLAS_THREAD_TIMEOUT=16 is set when it is
   unset. OpenBLAS reads it when it loads; when NumPy (and with it OpenBLAS) was imported
   before framework, the loaded library is told too: it re-reads its environment
   (`openblas_read_env`) and its worker threads are stopped (`blas_thread_shutdown_`, the
   call OpenBLAS makes itself around fork), so that the next multi-threaded GEMM starts them
   again with the short timeout (measured in such a process, the 2D U-Net step at 2 threads:
   125-140 ms before, 78 ms after, the OpenMP kernels of framework/_jit.py then running too).
   OpenBLAS builds that do not export those two calls keep their spin.

3. Garbage collector (LANTERN_NO_GC_TUNING=1 to skip). Every recorded op creates a few Python
   objects (the node, its edge tuple, the output tensor) that live until backward. With
   CPython's default first-generation threshold of 700 allocations, those graphs get promoted
   to the oldest generation and trigger full collections, whose cost grows with everything
   else alive in the process: with torch imported beside us this made the per-op benchmark
   50% slower. A first-generation threshold of 10,000 removes that cost (measured equal to
   running with the collector off) while still collecting reference cycles promptly.
"""
from __future__ import annotations

import os
import sys

import gc

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def tune_allocator(mmap_threshold: int = 1 << 30, trim_threshold: int = 1 << 30) -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if applied."""
    global _done
    if _done:
        return True
    if os.environ.get("LANTERN_NO_MALLOPT") or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
    except (OSError, AttributeError):
        return False
    _done = ok
    return ok


def tune_blas_spin(exponent: int = 16) -> bool:
    """Default OpenBLAS's busy-wait to 2^exponent cycles (see 2. above); True if set here."""
    if os.environ.get("LANTERN_NO_BLAS_SPIN_TUNING") or \
            "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(int(exponent))
    if "numpy" in sys.modules:
        return _restart_loaded_openblas() > 0
    return True


def _loaded_openblas_paths() -> list[str]:
    """Files of the OpenBLAS libraries mapped into this process (NumPy's, SciPy's)."""
    paths = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rstrip("\n").split(None, 5)[-1]
                if "openblas" in os.path.basename(path).lower() and path not in paths and \
                        path.startswith("/"):
                    paths.append(path)
    except OSError:  # not Linux
        pass
    return paths


def _restart_loaded_openblas() -> int:
    """Make loaded OpenBLAS libraries re-read OPENBLAS_THREAD_TIMEOUT: re-read the
    environment and stop the worker threads, which the next threaded call starts again with
    the new timeout. Called at import, when no BLAS call is running. Returns how many
    libraries took it."""
    import ctypes
    done = 0
    for path in _loaded_openblas_paths():
        try:
            lib = ctypes.CDLL(path)
            read_env, shutdown = lib.openblas_read_env, lib.blas_thread_shutdown_
        except (OSError, AttributeError):  # another build, or the symbols are not exported
            continue
        read_env()
        shutdown()
        done += 1
    return done


_GC_GEN0_THRESHOLD = 10_000


def tune_gc() -> bool:
    """Raise the collector's first-generation threshold (only if it is lower); True if applied."""
    if os.environ.get("LANTERN_NO_GC_TUNING"):
        return False
    g0, g1, g2 = gc.get_threshold()
    if 0 < g0 < _GC_GEN0_THRESHOLD:
        gc.set_threshold(_GC_GEN0_THRESHOLD, g1, g2)
    return True
