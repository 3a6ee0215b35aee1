"""All built-in ops. Importing this package registers them and binds the Tensor methods,
operators and in-place variants."""
from __future__ import annotations

from .._tensor import Tensor
from ..autograd.grad_mode import _State
from . import elementwise, indexing, linalg, reduction, shape, sorting  # noqa: F401
from .elementwise import (add, bitwise_and, bitwise_left_shift, bitwise_not, bitwise_or,
                          bitwise_right_shift, bitwise_xor, div, eq,
                          floor_divide, ge, gt, le, logical_not, lt, mul, ne, neg, pow, remainder,
                          sub)
from .indexing import getitem, setitem
from .linalg import matmul
from .registry import OPS, install_methods

__all__ = ["OPS"]


def _rev(fn):
    def r(self, other):
        return fn(other, self)
    r.__name__ = "__r" + fn.__name__ + "__"
    return r


def _invert(self):
    return logical_not(self) if self._data.dtype.kind == "b" else bitwise_not(self)


_DUNDERS = {
    "__add__": add, "__radd__": _rev(add), "__sub__": sub, "__rsub__": _rev(sub),
    "__mul__": mul, "__rmul__": _rev(mul), "__truediv__": div, "__rtruediv__": _rev(div),
    "__floordiv__": floor_divide, "__rfloordiv__": _rev(floor_divide),
    "__mod__": remainder, "__rmod__": _rev(remainder), "__pow__": pow, "__rpow__": _rev(pow),
    "__matmul__": matmul, "__rmatmul__": _rev(matmul), "__neg__": neg,
    "__pos__": lambda self: self, "__abs__": elementwise.abs, "__invert__": _invert,
    "__and__": bitwise_and, "__or__": bitwise_or, "__xor__": bitwise_xor,
    "__rand__": _rev(bitwise_and), "__ror__": _rev(bitwise_or), "__rxor__": _rev(bitwise_xor),
    "__lshift__": bitwise_left_shift, "__rshift__": bitwise_right_shift,
    "__rlshift__": _rev(bitwise_left_shift), "__rrshift__": _rev(bitwise_right_shift),
    "__eq__": eq, "__ne__": ne, "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge,
    "__getitem__": getitem, "__setitem__": setitem,
}


def _inplace(fn, name):
    """`x.name_(...)`: compute out of place, then write into x's memory and take its history."""
    def method(self, *args, **kwargs):
        recording = _State.grad_enabled and (
            self._requires_grad or any(isinstance(a, Tensor) and a._requires_grad for a in args))
        if not recording:
            res = fn(self, *args, **kwargs)
            return self._inplace_from(res)
        self._check_inplace()
        # The op runs on a snapshot of the old value, so what it saves for backward is not
        # overwritten; other nodes that saved `self` see the version bump and complain.
        old = Tensor._make(self._data.copy(), self._grad_fn, self._out_idx)
        old._requires_grad = self._requires_grad
        return self._inplace_from(fn(old, *args, **kwargs))
    method.__name__ = name + "_"
    method.__doc__ = f"In-place {name}."
    return method


def _inplace_view(fn, name):
    """`x.t_()`, `x.unsqueeze_(0)`, ...: x itself becomes the view (new shape, same memory)
    and takes the view op's place in the graph."""
    def method(self, *args, **kwargs):
        self._check_inplace()
        res = fn(self, *args, **kwargs)
        self._data = res._data
        if self._base is not None:  # still a view of its base, one step further
            self._view_fn = res._view_fn if res._base is self._base else None
        if res._grad_fn is not None:
            self._grad_fn, self._out_idx, self._requires_grad = res._grad_fn, res._out_idx, True
        self._bump()
        return self
    method.__name__ = name + "_"
    method.__doc__ = f"In-place {name}: changes this tensor's shape, not its memory."
    return method


def _not_implemented_on_type_error(fn):
    """`t == None` or `t != "a"` is False/True (Python's fallback), as in PyTorch, not an error."""
    def dunder(self, other):
        try:
            return fn(self, other)
        except TypeError:
            return NotImplemented
    dunder.__name__ = fn.__name__
    return dunder


def _fast_arith(ufunc_name, fn):
    """add_/sub_/mul_/div_ without a graph use the array module's ufunc with out=self."""
    def method(self, other, *, alpha=None, **kwargs):
        if kwargs:  # div_(x, rounding_mode=...)
            return _inplace(fn, ufunc_name)(self, other, **kwargs)
        if _State.grad_enabled and (self._requires_grad or (isinstance(other, Tensor) and
                                                            other._requires_grad)):
            return _slow(self, other, alpha)
        d = self._writable()
        o = other._data if isinstance(other, Tensor) else other
        if alpha is not None and alpha != 1:
            o = o * alpha
        if type(o) is not type(d) and isinstance(other, Tensor) and other._data.ndim:
            from ._util import check_same_device
            check_same_device(self, other, ufunc_name + "_")
        try:
            getattr(type(d), "__i" + ufunc_name + "__")(d, o)
        except TypeError:
            return _slow(self, other, alpha)
        except ValueError:
            self._write_target()  # read-only memory: says so
            raise RuntimeError(f"output with shape {list(d.shape)} doesn't match the broadcast "
                               f"shape {list(getattr(o, 'shape', ()))}") from None
        self._bump()
        return self
    _slow = _inplace(lambda s, o, a: fn(s, o, alpha=a) if a is not None else fn(s, o),
                     ufunc_name)
    method.__name__ = ufunc_name + "_"
    return method


_INPLACE = ["neg", "abs", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin",
            "cos", "tan", "tanh", "sigmoid", "relu", "erf", "sign", "floor", "ceil", "round",
            "trunc", "pow", "remainder", "fmod", "clamp", "clamp_min", "clamp_max", "clip",
            "masked_fill", "lerp", "scatter", "scatter_add", "index_add", "maximum", "minimum",
            "square", "atan2", "floor_divide", "tril", "triu", "logical_not", "logical_and",
            "logical_or", "nan_to_num", "cumsum",
            "exp2", "log2", "log10", "frac", "asin", "acos", "atan", "sinh", "cosh", "xlogy",
            "asinh", "acosh", "atanh"]

# NumPy-style and long names PyTorch keeps beside its short ones: framework.<alias> and
# Tensor.<alias>(_) are the canonical op's.
ALIASES = {"absolute": "abs", "arcsin": "asin", "arccos": "acos", "arctan": "atan",
           "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh", "arctan2": "atan2",
           "divide": "div", "true_divide": "div", "multiply": "mul", "subtract": "sub",
           "negative": "neg", "clip": "clamp", "greater": "gt", "greater_equal": "ge",
           "less": "lt", "less_equal": "le", "not_equal": "ne", "fix": "trunc"}


def install():
    install_methods(Tensor)
    for k, v in _DUNDERS.items():
        setattr(Tensor, k, v)
    for name in _INPLACE:
        entry = OPS.get(name)
        fn = entry["fn"] if entry else getattr(elementwise, name, None)
        if fn is not None:
            setattr(Tensor, name + "_", _inplace(fn, name))
    for name in ("t", "transpose", "squeeze", "unsqueeze", "swapaxes"):
        setattr(Tensor, name + "_", _inplace_view(OPS[name]["fn"], name))
    Tensor.swapdims_ = Tensor.swapaxes_
    Tensor.__eq__ = _not_implemented_on_type_error(eq)
    Tensor.__ne__ = _not_implemented_on_type_error(ne)
    for ufunc_name, fn in (("add", add), ("sub", sub), ("mul", mul), ("truediv", div)):
        m = _fast_arith(ufunc_name, fn)
        setattr(Tensor, {"truediv": "div"}.get(ufunc_name, ufunc_name) + "_", m)
    Tensor.subtract_ = Tensor.sub_
    Tensor.multiply_ = Tensor.mul_
    Tensor.divide_ = Tensor.div_
    Tensor.__iadd__ = Tensor.add_
    Tensor.__isub__ = Tensor.sub_
    Tensor.__imul__ = Tensor.mul_
    Tensor.__itruediv__ = Tensor.div_
    Tensor.T = property(lambda self: self.permute(*reversed(range(self.ndim))))
    Tensor.mT = property(lambda self: self.transpose(-2, -1))
    Tensor.H = Tensor.T
    Tensor.mH = Tensor.mT
    from . import fill  # noqa: F401  (in-place fills and random fills)


install()

# Ops defined in modules that register after install() ran (complex numbers; the shape,
# indexing, linalg and search extras; math and statistics): bind their Tensor methods and
# in-place forms here. The complex module binds its own methods (.real, .imag, .conj(), ...).
from . import complex as _complex  # noqa: E402,F401
from . import indexing_extra, linalg_extra, search, shape_extra  # noqa: E402,F401
from . import elementwise_extra, scans, special, statistics  # noqa: E402,F401

install_methods(Tensor)
for _name in ("index_put", "masked_scatter", "scatter_reduce", "index_reduce", "baddbmm",
              "addbmm", "addmv", "addr"):
    setattr(Tensor, _name + "_", _inplace(OPS[_name]["fn"], _name))
Tensor.as_strided_ = _inplace_view(OPS["as_strided"]["fn"], "as_strided")
for _mod in (elementwise_extra, special, statistics):
    for _name, _fn in _mod.INPLACE.items():
        setattr(Tensor, _name + "_", _inplace(_fn, _name))
del _mod, _name, _fn
for _alias, _name in ALIASES.items():
    for _suffix in ("", "_"):
        if not hasattr(Tensor, _alias + _suffix) and hasattr(Tensor, _name + _suffix):
            setattr(Tensor, _alias + _suffix, getattr(Tensor, _name + _suffix))
del _alias, _name, _suffix
