"""Helpers shared by the op modules: operand coercion, broadcasting, dims, device checks."""
from __future__ import annotations

import builtins

import numpy as np

from .. import _dtype as D
from .._backend import device_of, xp_of
from .._tensor import Tensor

_SCALARS = (builtins.int, builtins.float, builtins.bool, complex, np.number, np.bool_)


def scalar_tensor_like(value, like: Tensor, np_dtype) -> Tensor:
    """A 0-d constant on `like`'s device and of `np_dtype`."""
    xp = xp_of(like._data)
    try:
        arr = np.asarray(value, dtype=np_dtype)
    except OverflowError:  # an int out of the dtype's range wraps around, as in PyTorch
        arr = np.asarray(value).astype(np_dtype)
    if xp is np:
        return Tensor._make(arr, None, 0)
    with xp.cuda.Device(like._data.device.id):
        return Tensor._make(xp.asarray(arr), None, 0)


_CPU_ARRAYS = (np.ndarray, np.generic)


def check_same_device(a: Tensor, b: Tensor, opname: str):
    da, db = a._data, b._data
    a_cpu, b_cpu = isinstance(da, _CPU_ARRAYS), isinstance(db, _CPU_ARRAYS)
    if a_cpu and b_cpu:
        return
    if not a_cpu and not b_cpu and da.device.id == db.device.id:
        return
    if (a_cpu and not b_cpu and da.ndim == 0) or (b_cpu and not a_cpu and db.ndim == 0):
        return  # PyTorch lets a 0-d CPU tensor join a CUDA op (as a scalar)
    raise RuntimeError(f"{opname}: expected all tensors to be on the same device, but found "
                       f"at least two devices, {device_of(da)} and {device_of(db)}")


def _align_devices(a: Tensor, b: Tensor):
    """Move a 0-d CPU operand to the other operand's GPU (after check_same_device)."""
    a_cpu, b_cpu = isinstance(a._data, _CPU_ARRAYS), isinstance(b._data, _CPU_ARRAYS)
    if a_cpu and not b_cpu:
        a = _move_scalar(a, b)
    elif b_cpu and not a_cpu:
        b = _move_scalar(b, a)
    return a, b


def binary_operands(a, b, opname: str):
    """Coerce (Tensor|scalar, Tensor|scalar) to two Tensors of the promoted dtype."""
    ta, tb = type(a) is Tensor or isinstance(a, Tensor), type(b) is Tensor or isinstance(b, Tensor)
    if ta and tb:
        if a._data.dtype == b._data.dtype:
            if type(a._data) is not type(b._data) or type(a._data) is not np.ndarray:
                check_same_device(a, b, opname)
                a, b = _align_devices(a, b)
            return a, b
        check_same_device(a, b, opname)
        rt = D.result_type(a, b)
        if a._data.dtype != rt.np:
            a = a.to(dtype=rt)
        if b._data.dtype != rt.np:
            b = b.to(dtype=rt)
        return _align_devices(a, b)
    if ta:
        if not isinstance(b, _SCALARS):
            if hasattr(b, "__array__") or isinstance(b, (list, tuple)):
                from ..creation import as_tensor
                return binary_operands(a, as_tensor(b, device=a.device), opname)
            raise TypeError(f"{opname}: unsupported operand type {type(b).__name__}")
        rt = D.result_type(a, b)
        if a._data.dtype != rt.np:
            a = a.to(dtype=rt)
        return a, scalar_tensor_like(b, a, rt.np)
    if tb:
        if not isinstance(a, _SCALARS):
            if hasattr(a, "__array__") or isinstance(a, (list, tuple)):
                from ..creation import as_tensor
                return binary_operands(as_tensor(a, device=b.device), b, opname)
            raise TypeError(f"{opname}: unsupported operand type {type(a).__name__}")
        rt = D.result_type(a, b)
        if b._data.dtype != rt.np:
            b = b.to(dtype=rt)
        return scalar_tensor_like(a, b, rt.np), b
    raise TypeError(f"{opname}: expected at least one Tensor operand")


def _move_scalar(s: Tensor, like: Tensor) -> Tensor:
    from .._backend import device_of as dev_of
    return s.to(dev_of(like._data))


def broadcast_shape(sa, sb, opname: str):
    try:
        return np.broadcast_shapes(sa, sb)
    except ValueError:
        raise RuntimeError(f"{opname}: shapes {list(sa)} and {list(sb)} cannot be broadcast "
                           "together") from None


def norm_dim(dim: int, ndim: int, opname: str = "op") -> int:
    n = builtins.max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{opname}: Dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim % n


def norm_dims(dim, ndim: int, opname: str = "op"):
    """None -> all dims; int or sequence -> sorted tuple of non-negative dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (builtins.int, np.integer)):
        return (norm_dim(builtins.int(dim), ndim, opname),) if ndim else ()
    dims = tuple(norm_dim(builtins.int(d), ndim, opname) for d in dim) if ndim else ()
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"{opname}: dim {list(dim)} appears multiple times in the list of dims")
    return tuple(sorted(dims))


def ensure_tensor(x, like: Tensor | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    from ..creation import as_tensor
    return as_tensor(x, device=like.device if like is not None else None)


def float_input(x: Tensor) -> Tensor:
    """Integer/bool inputs of floating ops are promoted to the default float dtype."""
    if x._data.dtype.kind in "biu":
        return x.to(dtype=D.get_default_dtype())
    return x


def refuse_complex_backward(g, opname: str) -> None:
    """Raise for a complex gradient in an op whose backward formula is written for real
    inputs (a clear error instead of an unconjugated, wrong gradient)."""
    if g._data.dtype.kind == "c":
        raise RuntimeError(f"{opname}: backward is not implemented for complex inputs (got "
                           f"{g._data.dtype})")
