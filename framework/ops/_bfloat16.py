"""bfloat16 through float32: the shared way ops accept bfloat16 (ml_dtypes) inputs.

NumPy has no bfloat16 arithmetic of its own: ml_dtypes' loops round after every step, and
kernels that test `dtype.kind == "f"` reject its 'V' kind. PyTorch's CPU kernels compute
bfloat16 in float32 and round once. An op decorated with `bfloat16_in_float32(...)` does the
same when its first argument is bfloat16: the named tensor arguments that are bfloat16 become
float32 copies, the op runs as it does for float32, and its float32 results are rounded once
to bfloat16. The casts are recorded ops, so a bfloat16 input receives a bfloat16 gradient
(computed in float32 and rounded once) and float32 arguments (a weight under autocast) keep
float32 gradients. Arguments left unnamed (running statistics updated in place) are passed
as they are. For float32 and other dtypes the cost is one call and one dtype-kind test.
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

from .. import _dtype as D
from .._tensor import Tensor

__all__ = ["BFLOAT16_NP", "is_bfloat16", "bfloat16_in_float32"]

BFLOAT16_NP = D.bfloat16.np  # None without ml_dtypes
_F32 = np.dtype(np.float32)


def is_bfloat16(t) -> bool:
    """Whether tensor t holds bfloat16 (a cheap kind test first: bfloat16 is NumPy kind 'V')."""
    dt = t._data.dtype
    return dt.kind == "V" and BFLOAT16_NP is not None and dt == BFLOAT16_NP


def _widen(a):
    if isinstance(a, Tensor):
        return a.float() if is_bfloat16(a) else a
    if isinstance(a, (list, tuple)) and any(isinstance(x, Tensor) for x in a):
        return type(a)(_widen(x) for x in a)
    return a


def _round(out):
    if isinstance(out, Tensor):
        return out.to(dtype=D.bfloat16) if out._data.dtype == _F32 else out
    if type(out) is tuple:  # (output, indices) pairs and the like
        return tuple(_round(o) for o in out)
    return out


def bfloat16_in_float32(*names: str):
    """Decorator: when the op's first argument is a bfloat16 tensor, the bfloat16 tensors among
    the arguments `names` (default: the first; also inside lists and tuples) are widened to
    float32, the op runs, and its float32 tensor results are rounded once to bfloat16. An
    `inplace=True` call then writes the rounded result into the input; a call with an explicit
    `dtype` (softmax's) runs as it is."""
    def deco(fn):
        sig = inspect.signature(fn)
        params = list(sig.parameters)
        first = params[0]
        widen = names or (first,)
        unknown = [n for n in widen if n not in params]
        if unknown:
            raise TypeError(f"bfloat16_in_float32: {fn.__name__} has no argument(s) {unknown}")
        has_inplace = "inplace" in params
        has_dtype = "dtype" in params

        def slow(args, kwargs):
            bound = sig.bind(*args, **kwargs)
            a = bound.arguments
            if has_dtype and a.get("dtype") is not None:
                return fn(*args, **kwargs)  # an explicit dtype chooses the computation's dtype
            x = a[first]
            inplace = has_inplace and bool(a.get("inplace", False))
            if inplace:
                a["inplace"] = False
            for n in widen:
                if n in a:
                    a[n] = _widen(a[n])
            out = _round(fn(*bound.args, **bound.kwargs))
            # the op ran on a float32 copy, so nothing it saved for backward aliases x
            return x._inplace_from(out) if inplace else out

        @functools.wraps(fn)
        def op(*args, **kwargs):
            x = args[0] if args else kwargs.get(first)
            d = getattr(x, "_data", None)
            if d is not None and d.dtype.kind == "V" and is_bfloat16(x):
                return slow(args, kwargs)
            return fn(*args, **kwargs)
        return op
    return deco
