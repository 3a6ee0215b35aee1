"""Data types: PyTorch-named wrappers over NumPy dtypes, and PyTorch's type-promotion rules.

A `dtype` is what users see (`framework.float32`); the array module only ever sees the
NumPy dtype in `dtype.np`. CuPy accepts the same NumPy dtypes, so one table serves both.
"""
from __future__ import annotations

import builtins as _b

import numpy as np

__all__ = ["dtype", "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32",
           "int64", "uint8", "bool", "half", "float", "double", "short", "int", "long",
           "get_default_dtype", "set_default_dtype", "promote_types", "result_type", "to_dtype",
           "from_numpy_dtype", "finfo", "iinfo"]

_CATEGORY_BOOL, _CATEGORY_INT, _CATEGORY_FLOAT, _CATEGORY_COMPLEX = 0, 1, 2, 3


class dtype:
    """A tensor element type. Compares equal only to itself; `.np` is the array dtype."""

    __slots__ = ("name", "np", "category", "itemsize")

    def __init__(self, name: str, np_dtype, category: int):
        self.name = name
        self.np = np.dtype(np_dtype) if np_dtype is not None else None
        self.category = category
        self.itemsize = self.np.itemsize if self.np is not None else 2

    @property
    def is_floating_point(self) -> bool:
        return self.category == _CATEGORY_FLOAT

    @property
    def is_complex(self) -> bool:
        return self.category == _CATEGORY_COMPLEX

    @property
    def is_signed(self) -> bool:
        return self.name not in ("uint8", "bool")

    def to_real(self):
        return self

    def __repr__(self) -> str:
        return f"framework.{self.name}"

    def __reduce__(self):
        return self.name


def _bfloat16_np():
    try:  # ml_dtypes gives NumPy a real bfloat16; optional.
        import ml_dtypes
        return ml_dtypes.bfloat16
    except ImportError:
        return None


float16 = half = dtype("float16", np.float16, _CATEGORY_FLOAT)
float32 = float = dtype("float32", np.float32, _CATEGORY_FLOAT)
float64 = double = dtype("float64", np.float64, _CATEGORY_FLOAT)
bfloat16 = dtype("bfloat16", _bfloat16_np(), _CATEGORY_FLOAT)
complex64 = dtype("complex64", np.complex64, _CATEGORY_COMPLEX)
complex128 = dtype("complex128", np.complex128, _CATEGORY_COMPLEX)
int8 = dtype("int8", np.int8, _CATEGORY_INT)
int16 = short = dtype("int16", np.int16, _CATEGORY_INT)
int32 = int = dtype("int32", np.int32, _CATEGORY_INT)
int64 = long = dtype("int64", np.int64, _CATEGORY_INT)
uint8 = dtype("uint8", np.uint8, _CATEGORY_INT)
bool = dtype("bool", np.bool_, _CATEGORY_BOOL)  # noqa: A001 - mirrors torch.bool

_ALL = [float16, float32, float64, bfloat16, complex64, complex128, int8, int16, int32, int64,
        uint8, bool]
_FROM_NP = {d.np: d for d in _ALL if d.np is not None}

_default_float = float32


def get_default_dtype() -> dtype:
    return _default_float


def set_default_dtype(d: dtype) -> None:
    global _default_float
    if not isinstance(d, dtype) or not d.is_floating_point:
        raise TypeError(f"set_default_dtype expects a floating dtype, got {d!r}")
    _default_float = d


def from_numpy_dtype(np_dtype) -> dtype:
    try:
        return _FROM_NP[np_dtype]
    except KeyError:
        d = np.dtype(np_dtype)
        if d in _FROM_NP:
            return _FROM_NP[d]
        raise TypeError(f"arrays of dtype {d} are not supported; supported: "
                        f"{', '.join(x.name for x in _ALL if x.np is not None)}") from None


def to_dtype(d) -> dtype:
    """Accept a framework dtype, a NumPy dtype (or its name) or a Python type."""
    if isinstance(d, dtype):
        if d.np is None:
            raise TypeError(f"{d!r} needs the optional package 'ml_dtypes' (pip install ml_dtypes)")
        return d
    if d is builtins_float:
        return _default_float
    if d is builtins_int:
        return int64
    if d is builtins_bool:
        return bool
    return from_numpy_dtype(np.dtype(d))


builtins_float, builtins_int, builtins_bool = _b.float, _b.int, _b.bool


def promote_types(a: dtype, b: dtype) -> dtype:
    """PyTorch's promotion of two dtypes: the higher category (bool < int < float < complex)
    wins outright (int64 with float32 is float32, unlike NumPy's float64); within one
    category the wider type wins (uint8 with int8 is int16)."""
    if a is b:
        return a
    if a.category != b.category:
        hi, lo = (a, b) if a.category > b.category else (b, a)
        if hi.category == _CATEGORY_COMPLEX and lo is float64:
            return complex128
        return hi
    if a is bfloat16 or b is bfloat16:
        other = b if a is bfloat16 else a
        if other.category <= _CATEGORY_INT:
            return bfloat16
        if other is float16:
            return float32
        return other
    return _FROM_NP[np.promote_types(a.np, b.np)]


def _scalar_category(x) -> int:
    if isinstance(x, builtins_bool):
        return _CATEGORY_BOOL
    if isinstance(x, builtins_int):
        return _CATEGORY_INT
    if isinstance(x, complex):
        return _CATEGORY_COMPLEX
    return _CATEGORY_FLOAT


def _default_for_category(cat: int) -> dtype:
    if cat == _CATEGORY_FLOAT:
        return _default_float
    if cat == _CATEGORY_INT:
        return int64
    if cat == _CATEGORY_BOOL:
        return bool
    return complex128 if _default_float is float64 else complex64


def result_type(*operands) -> dtype:
    """PyTorch's promotion: dimensioned tensors > zero-dim tensors > Python scalars, by category.

    Each operand is a Tensor or a Python scalar. The highest category present wins; within it,
    only the operands of the highest priority class take part.
    """
    best = None  # (category, priority) -> list of dtypes
    groups = {}
    for x in operands:
        if hasattr(x, "_data"):
            d = x.dtype
            cat = d.category
            prio = 2 if x._data.ndim else 1
        else:
            d = None
            cat = _scalar_category(x)
            prio = 0
        key = (cat, prio)
        groups.setdefault(key, []).append(d)
        if best is None or key > best:
            best = key
    cat, prio = best
    ds = groups[best]
    if prio == 0:
        return _default_for_category(cat)
    out = ds[0]
    for d in ds[1:]:
        out = promote_types(out, d)
    return out


class finfo:
    def __init__(self, d: dtype = None):
        d = to_dtype(d or _default_float)
        fi = np.finfo(d.np)
        self.bits, self.eps, self.max, self.min = fi.bits, _b.float(fi.eps), _b.float(fi.max), _b.float(fi.min)
        self.tiny = self.smallest_normal = _b.float(fi.tiny)
        self.resolution = _b.float(fi.resolution)
        self.dtype = d.name


class iinfo:
    def __init__(self, d: dtype):
        ii = np.iinfo(to_dtype(d).np)
        self.bits, self.max, self.min = ii.bits, _b.int(ii.max), _b.int(ii.min)
        self.dtype = to_dtype(d).name
