"""Intra-op parallelism for NumPy elementwise work.

NumPy's ufuncs run on one thread but release the GIL inside their loops, so a large
elementwise kernel split into row ranges runs on several cores from a small thread pool.
BLAS calls are already multi-threaded by the BLAS library. `set_num_threads` sets both, as
torch.set_num_threads does; the default is OMP_NUM_THREADS if set, else the CPUs this process
may use. Kernels opt in by calling `parallel_ranges`; CuPy arrays never go through here.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

# Below this many elements per call, handing work to another thread costs more than it saves.
MIN_PARALLEL_ELEMENTS = 1 << 18
# The same for the compiled kernels of _jit, which fuse several passes per element.
JIT_PARALLEL_ELEMENTS = 1 << 20


def _default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_num_threads = _default_threads()
_pool: ThreadPoolExecutor | None = None
_pool_pid = None


def get_num_threads() -> int:
    return _num_threads


def set_num_threads(n: int) -> None:
    """Threads for intra-op work: Lantern's elementwise kernels and the BLAS library."""
    global _num_threads, _pool
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads expects a positive integer, got {n}")
    _num_threads = n
    if _pool is not None:
        _pool.shutdown(wait=False)
        _pool = None
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n, user_api="blas")
    except ImportError:
        pass


def _get_pool() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():  # a forked child (DataLoader worker) has none
        _pool = ThreadPoolExecutor(max_workers=max(_num_threads - 1, 1),
                                   thread_name_prefix="lantern-intraop")
        _pool_pid = os.getpid()
    return _pool


def parallel_ranges(fn, n: int, elements: int | None = None,
                    min_elements: int = MIN_PARALLEL_ELEMENTS) -> None:
    """Call fn(start, stop) over a split of range(n) on up to `get_num_threads()` threads
    (the calling thread takes the first part). `elements` is the total work (default n);
    below `min_elements` of it everything runs on the calling thread. Waking a pool thread
    costs tens of microseconds on a VM, so a kernel that does an element in well under a
    nanosecond (the compiled ones of _jit) passes a larger cutoff."""
    k = _num_threads
    work = n if elements is None else elements
    if k <= 1 or n < 2 or work < min_elements:
        fn(0, n)
        return
    k = min(k, n, max(1, work // (min_elements // 4)))
    bounds = [n * i // k for i in range(k + 1)]
    pool = _get_pool()
    futures = [pool.submit(fn, bounds[i], bounds[i + 1]) for i in range(1, k)]
    try:
        fn(bounds[0], bounds[1])
    finally:
        for f in futures:
            f.result()


def _outer_axis(arrays):
    """The axis along which all arrays (one shape) are laid out outermost (largest stride,
    the same for all), so that a range of it is one contiguous block of each; None if they
    disagree."""
    first = arrays[0]
    axis = max(range(first.ndim), key=lambda i: (abs(first.strides[i]), -i))
    for a in arrays[1:]:
        if max(range(a.ndim), key=lambda i: (abs(a.strides[i]), -i)) != axis:
            return None
    return axis


def parallel_slices(fn, arrays: list, min_elements: int = MIN_PARALLEL_ELEMENTS) -> None:
    """fn(*parts) over parts of equally shaped arrays, split along their outermost memory
    axis (so that each thread works on contiguous blocks of all of them, whatever the
    layout: channels-last, images-last or plain); one call on the whole arrays when they are
    small, disagree on the layout, or the split axis has one element."""
    first = arrays[0]
    axis = _outer_axis(arrays) if first.ndim and first.size >= min_elements else None
    if axis is None or first.shape[axis] < 2:
        fn(*arrays)
        return
    lead = (slice(None),) * axis
    parallel_ranges(lambda a, b: fn(*(arr[lead + (slice(a, b),)] for arr in arrays)),
                    first.shape[axis], first.size, min_elements)


_blas_libs = None


def _blas_controllers():
    """threadpoolctl's controllers of the loaded BLAS libraries (found once), or []."""
    global _blas_libs
    if _blas_libs is None:
        try:
            from threadpoolctl import ThreadpoolController
            _blas_libs = [lib for lib in ThreadpoolController().lib_controllers
                          if lib.user_api == "blas"]
        except Exception:  # threadpoolctl missing or unable to inspect this process
            _blas_libs = []
    return _blas_libs


def parallel_parts(fn, items: list, min_items: int = 2) -> list:
    """Split `items` into up to `get_num_threads()` contiguous parts and return
    [fn(part) for each part], the parts running on the pool (the calling thread takes the
    first). Meanwhile the BLAS library runs on one thread, so that each part's GEMMs run in
    the thread that calls them: for a layer made of many medium GEMMs with copies between
    them (the chunks of a convolution), splitting the chunks between threads also splits the
    copies, which a multi-threaded BLAS leaves on one core. Without a way to set the BLAS
    thread count (threadpoolctl), or with fewer than `min_items` items, it runs serially."""
    k = min(_num_threads, len(items))
    libs = _blas_controllers() if k > 1 and len(items) >= min_items else []
    if not libs:
        return [fn(items)]
    bounds = [len(items) * i // k for i in range(k + 1)]
    parts = [items[bounds[i]:bounds[i + 1]] for i in range(k)]
    old = [lib.num_threads for lib in libs]
    for lib in libs:
        lib.set_num_threads(1)
    try:
        pool = _get_pool()
        futures = [pool.submit(fn, p) for p in parts[1:]]
        try:
            first = fn(parts[0])
        finally:
            rest = [f.result() for f in futures]
    finally:
        for lib, n in zip(libs, old):
            lib.set_num_threads(n)
    return [first] + rest
