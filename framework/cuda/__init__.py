"""`framework.cuda`: GPU availability, selection, synchronisation, streams, events and memory
statistics, answered through CuPy when it is installed and a GPU is present (and harmlessly
otherwise: counts are 0, synchronize and empty_cache do nothing).

Devices are never assumed to be device 0: every function taking `device` accepts None (the
current device), an int, 'cuda:N' or a `framework.device`.

Memory statistics come from CuPy's memory pool (the allocator every CuPy array uses):
`memory_allocated` is the bytes held by live arrays, `memory_reserved` the bytes the pool
holds from the driver. The exact peak (`max_memory_allocated`) needs a hook on every pool
allocation, which costs a few microseconds each; it is installed by the first call of
`reset_peak_memory_stats()` (or `track_peak_memory(True)`), after which the peak is exact;
before that, `max_memory_allocated` is the largest value seen by the statistics queries.
"""
from __future__ import annotations

from .._backend import cupy_module, require_cupy

_peak: dict = {}  # device index -> sampled peak (when no hook is installed)
_hook = None


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


def _index(device=None) -> int:
    """The device index meant by `device` (None: the current device)."""
    if device is None:
        return require_cupy().cuda.runtime.getDevice()
    if isinstance(device, int):
        return device
    if isinstance(device, str):
        from .._backend import device as _device
        device = _device(device)
    idx = getattr(device, "index", None)
    if idx is None:
        if getattr(device, "type", "cuda") != "cuda":
            raise ValueError(f"expected a CUDA device, got {device}")
        return require_cupy().cuda.runtime.getDevice()
    return int(idx)


def set_device(device) -> None:
    require_cupy().cuda.Device(_index(device)).use()


class device:
    """Context manager that makes a device current, as torch.cuda.device:

        with framework.cuda.device(1):
            x = framework.zeros(3, device="cuda")   # on cuda:1
    """

    def __init__(self, device):
        self.idx = -1 if device is None or (isinstance(device, int) and device < 0) \
            else _index(device)

    def __enter__(self):
        if self.idx >= 0:
            cp = require_cupy()
            self.prev = cp.cuda.runtime.getDevice()
            cp.cuda.runtime.setDevice(self.idx)
        return self

    def __exit__(self, *exc):
        if self.idx >= 0:
            require_cupy().cuda.runtime.setDevice(self.prev)
        return False


def get_device_name(device=None) -> str:
    cp = require_cupy()
    name = cp.cuda.runtime.getDeviceProperties(_index(device))["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def get_device_capability(device=None) -> tuple:
    props = require_cupy().cuda.runtime.getDeviceProperties(_index(device))
    return int(props["major"]), int(props["minor"])


def get_device_properties(device=None) -> dict:
    """CuPy's property dict of the device (name, totalGlobalMem, major, minor, ...)."""
    return dict(require_cupy().cuda.runtime.getDeviceProperties(_index(device)))


def mem_get_info(device=None) -> tuple:
    """(free, total) bytes of the device, as the driver reports them."""
    cp = require_cupy()
    with cp.cuda.Device(_index(device)):
        return tuple(int(v) for v in cp.cuda.runtime.memGetInfo())


def synchronize(device=None) -> None:
    """Wait for all kernels on `device` (default: the current one) to finish."""
    if not is_available():
        return
    cp = require_cupy()
    if device is None:
        cp.cuda.Device().synchronize()
    else:
        cp.cuda.Device(_index(device)).synchronize()


def manual_seed(seed: int) -> None:
    from ..random import default_generator_for
    from .._backend import device as _device
    for i in range(device_count()):
        default_generator_for(_device("cuda", i)).manual_seed(seed + i)


manual_seed_all = manual_seed


def is_bf16_supported() -> bool:
    return is_available() and get_device_capability()[0] >= 8


# ============================================================================ memory
class _PeakHook:
    """A CuPy memory hook keeping, per device, the bytes in use in the pool and their peak
    (the same rounded sizes the pool's used_bytes() counts)."""

    def __init__(self, cp):
        base = cp.cuda.MemoryHook

        class Hook(base):
            name = "LanternPeakHook"

            def __init__(hook):
                hook.cur, hook.peak = {}, {}

            def malloc_postprocess(hook, **kw):
                d = kw["device_id"]
                c = hook.cur.get(d, 0) + kw["mem_size"]
                hook.cur[d] = c
                if c > hook.peak.get(d, 0):
                    hook.peak[d] = c

            def free_postprocess(hook, **kw):
                d = kw["device_id"]
                hook.cur[d] = hook.cur.get(d, 0) - kw["mem_size"]

        self.hook = Hook()
        self.hook.__enter__()  # registered for this thread until uninstalled

    def reset(self, dev, used):
        self.hook.cur[dev] = used
        self.hook.peak[dev] = used

    def close(self):
        self.hook.__exit__(None, None, None)


def track_peak_memory(enable: bool = True) -> None:
    """Install (or remove) the allocation hook that makes `max_memory_allocated` exact."""
    global _hook
    if enable and _hook is None and is_available():
        cp = require_cupy()
        _hook = _PeakHook(cp)
        pool = cp.get_default_memory_pool()
        for i in range(device_count()):
            with cp.cuda.Device(i):
                _hook.reset(i, pool.used_bytes())
    elif not enable and _hook is not None:
        _hook.close()
        _hook = None


def memory_allocated(device=None) -> int:
    """Bytes held by live arrays in CuPy's memory pool on `device` (0 without a GPU)."""
    if not is_available():
        return 0
    cp = require_cupy()
    idx = _index(device)
    with cp.cuda.Device(idx):
        used = cp.get_default_memory_pool().used_bytes()
    if used > _peak.get(idx, 0):
        _peak[idx] = used
    return used


def max_memory_allocated(device=None) -> int:
    """The peak of `memory_allocated` since the last `reset_peak_memory_stats` (exact once
    that has been called; see the module docstring)."""
    if not is_available():
        return 0
    used = memory_allocated(device)
    idx = _index(device)
    if _hook is not None:
        return max(_hook.hook.peak.get(idx, 0), used)
    return _peak.get(idx, 0)


def reset_peak_memory_stats(device=None) -> None:
    """Start a new peak from the current usage; installs the exact peak tracking hook."""
    if not is_available():
        return
    track_peak_memory(True)
    idx = _index(device)
    used = memory_allocated(idx)
    _peak[idx] = used
    if _hook is not None:
        _hook.reset(idx, used)


reset_max_memory_allocated = reset_peak_memory_stats


def memory_reserved(device=None) -> int:
    """Bytes CuPy's pool holds from the driver on `device` (used + cached free blocks)."""
    if not is_available():
        return 0
    cp = require_cupy()
    with cp.cuda.Device(_index(device)):
        return cp.get_default_memory_pool().total_bytes()


max_memory_reserved = memory_reserved


def memory_stats(device=None) -> dict:
    return {"allocated_bytes.all.current": memory_allocated(device),
            "allocated_bytes.all.peak": max_memory_allocated(device),
            "reserved_bytes.all.current": memory_reserved(device)}


def empty_cache() -> None:
    """Return the pool's cached free blocks (device and pinned host memory) to the driver."""
    if is_available():
        cp = require_cupy()
        cp.get_default_memory_pool().free_all_blocks()
        cp.get_default_pinned_memory_pool().free_all_blocks()


# ============================================================================ streams
class Stream:
    """A CUDA stream (a thin wrapper of CuPy's), usable as a context manager: kernels
    launched inside `with s:` (or `with framework.cuda.stream(s):`) run on it."""

    def __init__(self, device=None, priority=0, **kwargs):
        cp = require_cupy()
        self.device_index = _index(device)
        with cp.cuda.Device(self.device_index):
            try:
                self._s = cp.cuda.Stream(non_blocking=True, priority=priority) if priority \
                    else cp.cuda.Stream(non_blocking=True)
            except TypeError:  # an older CuPy without stream priorities
                self._s = cp.cuda.Stream(non_blocking=True)

    @classmethod
    def _wrap(cls, s, device_index):
        obj = cls.__new__(cls)
        obj._s, obj.device_index = s, device_index
        return obj

    @property
    def cuda_stream(self) -> int:
        return self._s.ptr

    def synchronize(self):
        self._s.synchronize()

    def query(self) -> bool:
        return bool(self._s.done)

    def record_event(self, event=None):
        event = event if event is not None else Event()
        event.record(self)
        return event

    def wait_event(self, event):
        self._s.wait_event(event._e)

    def wait_stream(self, stream):
        self.wait_event(stream.record_event())

    def __enter__(self):
        cp = require_cupy()
        self._prev_dev = cp.cuda.runtime.getDevice()
        if self._prev_dev != self.device_index:
            cp.cuda.runtime.setDevice(self.device_index)
        self._s.__enter__()
        return self

    def __exit__(self, *exc):
        r = self._s.__exit__(*exc)
        if self._prev_dev != self.device_index:
            require_cupy().cuda.runtime.setDevice(self._prev_dev)
        return r

    def __eq__(self, other):
        return isinstance(other, Stream) and self._s.ptr == other._s.ptr and \
            self.device_index == other.device_index

    def __hash__(self):
        return hash((self._s.ptr, self.device_index))

    def __repr__(self):
        return f"<framework.cuda.Stream device=cuda:{self.device_index} " \
               f"cuda_stream={self._s.ptr:#x}>"


def current_stream(device=None) -> Stream:
    cp = require_cupy()
    idx = _index(device)
    with cp.cuda.Device(idx):
        return Stream._wrap(cp.cuda.get_current_stream(), idx)


def default_stream(device=None) -> Stream:
    cp = require_cupy()
    idx = _index(device)
    with cp.cuda.Device(idx):
        return Stream._wrap(cp.cuda.Stream.null, idx)


class _NullStreamCtx:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def stream(s):
    """Context manager making `s` the current stream (None: no change), torch.cuda.stream."""
    return _NullStreamCtx() if s is None else s


def set_stream(s) -> None:
    s._s.use()


class Event:
    """A CUDA event (CuPy's): record on a stream, wait, time between two events."""

    def __init__(self, enable_timing=False, blocking=False, interprocess=False):
        cp = require_cupy()
        self._e = cp.cuda.Event(block=blocking, disable_timing=not enable_timing,
                                interprocess=interprocess)

    def record(self, stream=None):
        self._e.record(stream._s if stream is not None else None)

    def wait(self, stream=None):
        (stream if stream is not None else current_stream()).wait_event(self)

    def query(self) -> bool:
        return bool(self._e.done)

    def synchronize(self):
        self._e.synchronize()

    def elapsed_time(self, end) -> float:
        """Milliseconds from this event to `end` (both recorded, timing enabled)."""
        return float(require_cupy().cuda.get_elapsed_time(self._e, end._e))


# ============================================================================ legacy types
# framework.cuda.FloatTensor & co (see framework/_legacy.py): build tensors on the GPU, and
# isinstance(t, framework.cuda.FloatTensor) asks for a float32 CUDA tensor.
from .._legacy import CUDA_LEGACY_TYPES as _CUDA_LEGACY_TYPES  # noqa: E402

globals().update(_CUDA_LEGACY_TYPES)

from . import amp  # noqa: E402,F401  (framework.cuda.amp: deprecated aliases, as torch.cuda.amp)
