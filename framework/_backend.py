"""The one place that decides which array module (NumPy or CuPy) holds a tensor's data.

Every op asks `xp_of(array)` instead of naming NumPy, so the same code runs on the GPU.
CuPy is optional: importing framework never requires it, and asking for 'cuda' without it
fails with a message that says what is missing and how to install it.
"""
from __future__ import annotations

import numpy as np

_cupy = None
_cupy_error = None
_cupy_checked = False
# More than one GPU: `xp_of` then makes the device of the array it is asked about the
# current one (CuPy launches kernels on the current device), so an op runs on the device of
# its inputs, as in PyTorch, without a per-op device guard on single-GPU machines.
_MULTI_GPU = False
# Called with the cupy module once it has been imported (settings made before that, such as
# framework.backends.cuda.matmul.allow_tf32, are applied then).
_on_cupy_import: list = []


def cupy_module():
    """Return the cupy module, or None when it cannot be imported (cached)."""
    global _cupy, _cupy_error, _cupy_checked, _MULTI_GPU
    if not _cupy_checked:
        _cupy_checked = True
        try:
            import cupy
            _cupy = cupy
        except Exception as exc:  # ImportError, or a CUDA library failing to load
            _cupy_error = exc
        else:
            try:
                _MULTI_GPU = cupy.cuda.runtime.getDeviceCount() > 1
            except Exception:  # no driver or no GPU: CuPy imports, nothing runs
                _MULTI_GPU = False
            for fn in _on_cupy_import:
                fn(cupy)
    return _cupy


def when_cupy_imported(fn) -> None:
    """Call `fn(cupy)` now if CuPy is loaded, else right after it is (never imports it)."""
    if _cupy is not None:
        fn(_cupy)
    elif not _cupy_checked and fn not in _on_cupy_import:
        _on_cupy_import.append(fn)


def require_cupy():
    cp = cupy_module()
    if cp is None:
        raise RuntimeError(
            "device 'cuda' needs CuPy, which could not be imported "
            f"({type(_cupy_error).__name__}: {_cupy_error}). Install it with "
            "`pip install 'lantern[cuda12]'` (or `pip install cupy-cuda12x`) on a machine "
            "with an NVIDIA GPU and CUDA 12 drivers.")
    try:
        n = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:
        raise RuntimeError(f"CuPy is installed but no CUDA GPU is usable: {exc}") from None
    if n == 0:
        raise RuntimeError("CuPy is installed but this machine has no CUDA GPU")
    return cp


def xp_of(arr):
    """The array module of `arr`: numpy for ndarrays and NumPy scalars, else cupy. With
    several GPUs it also makes `arr`'s device the current one (see _MULTI_GPU)."""
    if type(arr) is np.ndarray or isinstance(arr, (np.ndarray, np.generic)):
        return np
    cp = _cupy if _cupy is not None else cupy_module()
    if _MULTI_GPU:
        follow_device(arr)
    return cp


def follow_device(arr) -> None:
    """Make the GPU holding CuPy array `arr` the current device (no-op for other objects)."""
    dev = getattr(getattr(arr, "data", None), "device_id", None)
    if dev is not None and dev != _cupy.cuda.runtime.getDevice():
        _cupy.cuda.runtime.setDevice(dev)


def plain_ndarray(arr):
    """`arr` as a base-class ndarray sharing its memory (and its read-only flag).

    Tensors hold only plain ndarrays on the CPU: a subclass (np.memmap from np.load(...,
    mmap_mode=...) or joblib, np.matrix, ...) changes the result types of NumPy functions,
    which the ops compare to tell devices apart and to pick their fast paths."""
    return arr if type(arr) is np.ndarray else arr.view(np.ndarray)


def is_cuda_array(arr) -> bool:
    return not isinstance(arr, (np.ndarray, np.generic))


class device:
    """A device: 'cpu' or 'cuda:N'. Equal to its string form, like torch.device."""

    __slots__ = ("type", "index")

    def __init__(self, type_or_str, index: int | None = None):
        if isinstance(type_or_str, device):
            self.type, self.index = type_or_str.type, type_or_str.index
            return
        s = str(type_or_str)
        if ":" in s:
            s, idx = s.split(":", 1)
            if not idx.isdigit():
                raise RuntimeError(f"invalid device string: {type_or_str!r}")
            index = int(idx)
        if s not in ("cpu", "cuda"):
            raise RuntimeError(f"unsupported device {type_or_str!r}: Lantern knows 'cpu' and 'cuda[:N]'")
        if s == "cpu":
            index = None
        self.type, self.index = s, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}')" if self.index is None else \
            f"device(type='{self.type}', index={self.index})"

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, device):
            return NotImplemented
        if self.type != other.type:
            return False
        a = 0 if self.type == "cuda" and self.index is None else self.index
        b = 0 if other.type == "cuda" and other.index is None else other.index
        return a == b

    def __hash__(self):
        return hash((self.type, self.index or 0))


CPU = device("cpu")
_cuda_devices: dict[int, device] = {}


def device_of(arr) -> device:
    if isinstance(arr, (np.ndarray, np.generic)):
        return CPU
    i = arr.device.id
    d = _cuda_devices.get(i)
    if d is None:
        d = _cuda_devices[i] = device("cuda", i)
    return d


def resolve_device(dev) -> device:
    """Normalise a user device argument; checks that 'cuda' can be served."""
    if dev is None:
        return CPU
    if isinstance(dev, int):
        dev = device("cuda", dev)
    d = dev if isinstance(dev, device) else device(dev)
    if d.type == "cuda":
        cp = require_cupy()
        n = cp.cuda.runtime.getDeviceCount()
        idx = d.index if d.index is not None else cp.cuda.runtime.getDevice()
        if idx >= n:
            raise RuntimeError(f"device cuda:{idx} requested but only {n} CUDA device(s) exist")
        d = device("cuda", idx)
    return d


def xp_for(dev: device):
    return np if dev.type == "cpu" else require_cupy()


class _NullCtx:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NULL = _NullCtx()


def on_device(dev: device):
    """Context that makes `dev` current for CuPy allocations (no-op on the CPU); a 'cuda'
    device without an index means the current device."""
    if dev.type == "cpu":
        return _NULL
    return require_cupy().cuda.Device(dev.index)


def to_device_array(arr, dev: device):
    """Copy (or pass through) an array onto `dev`: host to device, device to host, or from
    one GPU to another (a peer copy after the source's pending work has finished)."""
    if dev.type == "cpu":
        if isinstance(arr, (np.ndarray, np.generic)):
            return arr
        return arr.get()
    cp = require_cupy()
    if not isinstance(arr, (np.ndarray, np.generic)):
        src = arr.data.device_id
        if dev.index is None or src == dev.index:
            return arr
        with cp.cuda.Device(src):
            arr = cp.ascontiguousarray(arr)
            cp.cuda.get_current_stream().synchronize()
        with cp.cuda.Device(dev.index):
            out = cp.empty(arr.shape, arr.dtype)
            if arr.nbytes:
                out.data.copy_from_device(arr.data, arr.nbytes)
        return out
    with cp.cuda.Device(dev.index):
        return cp.asarray(arr)


def special_fn(xp, name: str):
    """scipy.special (CPU) or cupyx.scipy.special (GPU) function `name`, e.g. 'erf'."""
    if xp is np:
        import scipy.special as sp
    else:
        import cupyx.scipy.special as sp
    return getattr(sp, name)


def scatter_add_into(xp, out, index_tuple, values):
    """out[index_tuple] += values, summing duplicates (np.add.at / cupyx.scatter_add)."""
    if xp is np:
        np.add.at(out, index_tuple, values)
    elif hasattr(xp.add, "at"):  # CuPy >= 13 (cupyx.scatter_add is deprecated there)
        xp.add.at(out, index_tuple, values)
    else:
        import cupyx
        cupyx.scatter_add(out, index_tuple, values)
