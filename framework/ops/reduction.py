"""Reductions over a dim or a tuple of dims (keepdim as in PyTorch), scans and softmax."""
from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from .. import _dtype as D
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from ._bfloat16 import bfloat16_in_float32
from ._util import float_input, norm_dim, norm_dims, refuse_complex_backward
from .elementwise import broadcast_to, exp, log, sqrt, where, zeros_scalar
from .registry import register
from .. import _jit
from .._parallel import JIT_PARALLEL_ELEMENTS, parallel_ranges
from ..amp import _AutocastState, autocast_op, run_without_autocast

_AUTOCAST = _AutocastState.enabled


def _make_t(arr):
    return Tensor._make(arr, None, 0)

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _keep_shape(shape, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


class Sum(Op):
    def forward(self, x):
        self.in_shape = x.shape
        dt = self.out_dtype
        if (x.dtype if dt is None else np.dtype(dt)).kind == "V":
            # bfloat16: NumPy would add one element at a time in bfloat16; PyTorch
            # accumulates in float32 and rounds once
            return x.sum(axis=self.dims, keepdims=self.keepdim, dtype=np.float32).astype(
                x.dtype if dt is None else dt)
        out = x.sum(axis=self.dims, keepdims=self.keepdim, dtype=dt)
        return out

    def backward(self, g):
        if not self.keepdim:
            g = g.reshape(_keep_shape(self.in_shape, self.dims))
        return (broadcast_to(g, self.in_shape),)


def _sum_dtype(x: Tensor, dtype):
    if dtype is not None:
        return D.to_dtype(dtype).np
    if x._data.dtype.kind in "biu":
        return np.int64
    return None


@register()
def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A001
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("sum", sum, input, dim, keepdim, dtype=dtype)
        if out is not None:
            return out
    dims = norm_dims(dim, input._data.ndim, "sum")
    if dim is not None and not isinstance(dim, int) and len(dim) == 0:
        dims = tuple(range(input._data.ndim))
    return Sum.apply(input, dims=dims, keepdim=keepdim, out_dtype=_sum_dtype(input, dtype))


@register()
def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if input._data.dtype.kind in "biu" and dtype is None:
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a "
                           f"floating point or complex dtype. Got: {input.dtype.name}")
    if dtype is not None:
        input = input.to(dtype=dtype)
    dims = norm_dims(dim, input._data.ndim, "mean")
    if dim is not None and not isinstance(dim, int) and len(dim) == 0:
        dims = tuple(range(input._data.ndim))
    return Mean.apply(input, dims=dims, keepdim=keepdim)


class Mean(Op):
    def forward(self, x):
        self.in_shape = x.shape
        self.n = 1
        for d in self.dims:
            self.n *= x.shape[d]
        if self.n == 0:
            return xp_of(x).full(_keep_shape(x.shape, self.dims) if self.keepdim else tuple(
                s for i, s in enumerate(x.shape) if i not in self.dims), float("nan"), x.dtype)
        if x.dtype.kind == "V":  # bfloat16: accumulated in float32, rounded once (as Sum)
            return x.mean(axis=self.dims, keepdims=self.keepdim, dtype=np.float32).astype(
                x.dtype)
        return x.mean(axis=self.dims, keepdims=self.keepdim)

    def backward(self, g):
        if not self.keepdim:
            g = g.reshape(_keep_shape(self.in_shape, self.dims))
        return (broadcast_to(g * (1.0 / builtins.max(self.n, 1)), self.in_shape),)


@register()
def nansum(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:  # one kernel in PyTorch: sum's cast must not apply
        return run_without_autocast(nansum, input, dim, keepdim)
    return sum(where(input != input, zeros_scalar(input), input), dim, keepdim)


@register()
def nanmean(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    valid = (input == input)
    return nansum(input, dim, keepdim) / sum(valid, dim, keepdim).to(dtype=input.dtype)


class Prod(Op):
    save_inputs = (0,)
    save_output = True

    def forward(self, x):
        self.y = x.prod(axis=self.dim, keepdims=True)
        return self.y if self.keepdim else self.y.squeeze(axis=self.dim)

    def backward(self, g):
        refuse_complex_backward(g, "prod")
        (x,) = self.saved_tensors
        if not self.keepdim:
            g = g.unsqueeze(self.dim)
        xp = xp_of(x._data)
        if not bool((x._data == 0).any()):
            y = Prod.apply(x, dim=self.dim, keepdim=True) if _State.grad_enabled else \
                Tensor._make(self.saved_output(), None, 0)
            return (g * y / x,)
        # With zeros: product of all other elements = exclusive cumprods from both sides.
        d = self.dim
        n = x.shape[d]
        ones = Tensor._make(xp.ones(_keep_shape(x.shape, (d,)), x._data.dtype), None, 0)
        from .shape import cat, flip
        left = cumprod(cat([ones, x.narrow(d, 0, n - 1)], d), d)
        xr = flip(x, (d,))
        right = flip(cumprod(cat([ones, xr.narrow(d, 0, n - 1)], d), d), (d,))
        return (g * left * right,)

    def _release_extra(self):
        self.y = None


@register()
def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("prod", prod, input, dim, keepdim, dtype=dtype)
        if out is not None:
            return out
    if dtype is not None:
        input = input.to(dtype=dtype)
    elif input._data.dtype.kind in "biu":
        input = input.to(dtype=D.int64)
    if dim is None:
        return Prod.apply(input.reshape(-1), dim=0, keepdim=False)
    d = norm_dim(dim, input._data.ndim, "prod")
    if input._data.ndim == 0:
        return input.clone()
    return Prod.apply(input, dim=d, keepdim=keepdim)


class _ArgReduce(Op):
    differentiable = False

    def forward(self, x):
        xp = xp_of(x)
        f = xp.argmax if self.largest else xp.argmin
        if self.dim is None:
            out = xp.asarray(f(x.reshape(-1)), dtype=np.int64)
            return out.reshape((1,) * x.ndim) if self.keepdim else out
        out = f(x, axis=self.dim)
        if self.keepdim:
            out = xp.expand_dims(out, self.dim)
        return out.astype(np.int64, copy=False)


class ArgMax(_ArgReduce):
    largest = True


class ArgMin(_ArgReduce):
    largest = False


@register(differentiable=False)
def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    d = None if dim is None or input._data.ndim == 0 else norm_dim(dim, input._data.ndim, "argmax")
    return ArgMax.apply(input, dim=d, keepdim=keepdim)


@register(differentiable=False)
def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    d = None if dim is None or input._data.ndim == 0 else norm_dim(dim, input._data.ndim, "argmin")
    return ArgMin.apply(input, dim=d, keepdim=keepdim)


class Amax(Op):
    """max over dims; the gradient is shared evenly among tied maxima (as PyTorch's amax)."""

    save_inputs = (0,)
    largest = True

    def forward(self, x):
        xp = xp_of(x)
        f = xp.max if self.largest else xp.min
        if x.size == 0:
            name = "amax" if self.largest else "amin"
            if len(self.dims) == x.ndim:
                raise IndexError(f"{name}(): Expected reduction dim to be specified for "
                                 "input.numel() == 0.")
            for d in self.dims:
                if x.shape[d] == 0:
                    raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero "
                                     "size.")
        self.yk = f(x, axis=self.dims, keepdims=True)
        return self.yk if self.keepdim else xp.squeeze(self.yk, axis=self.dims)

    def backward(self, g):
        (x,) = self.saved_tensors
        yk = Tensor._make(self.yk, None, 0)
        mask = (x == yk).to(g.dtype)
        count = mask.sum(self.dims, keepdim=True)
        if not self.keepdim:
            g = g.reshape(self.yk.shape)
        return (g * mask / count,)

    def _release_extra(self):
        self.yk = None


class Amin(Amax):
    largest = False


@register()
def amax(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    dims = norm_dims(None if dim == () or dim is None else dim, input._data.ndim, "amax")
    return Amax.apply(input, dims=dims, keepdim=keepdim)


@register()
def amin(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    dims = norm_dims(None if dim == () or dim is None else dim, input._data.ndim, "amin")
    return Amin.apply(input, dims=dims, keepdim=keepdim)


def _max_min(input, dim, keepdim, other, largest):
    name = "max" if largest else "min"
    if isinstance(dim, Tensor) and other is None:
        other, dim = dim, None
    if other is not None:
        from .elementwise import maximum, minimum
        return maximum(input, other) if largest else minimum(input, other)
    if dim is None:
        return (Amax if largest else Amin).apply(input, dims=tuple(range(input._data.ndim)),
                                                 keepdim=False)
    d = norm_dim(dim, input._data.ndim, name)
    if input._data.ndim == 0:
        return ValuesIndices(input.clone(), Tensor._make(np.asarray(0), None, 0))
    if input._data.shape[d] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
    idx = (ArgMax if largest else ArgMin).apply(input, dim=d, keepdim=True)
    from .indexing import gather
    values = gather(input, d, idx)
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return ValuesIndices(values, idx)


@register()
def max(input: Tensor, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    """max(x) -> the largest value; max(x, dim) -> (values, indices); max(x, other) -> maximum."""
    return _max_min(input, dim, keepdim, other, True)


@register()
def min(input: Tensor, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    return _max_min(input, dim, keepdim, other, False)


@register()
def var(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """Variance with Bessel's `correction` (default 1; `unbiased=False` means 0)."""
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:  # one kernel in PyTorch: sum's cast must not apply
        return run_without_autocast(var, input, dim, unbiased, keepdim, correction=correction)
    input = float_input(input)
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    dims = norm_dims(dim, input._data.ndim, "var")
    n = 1
    for d in dims:
        n *= input._data.shape[d]
    mu = mean(input, dims, keepdim=True)
    dev = input - mu
    sq = dev.real * dev.real + dev.imag * dev.imag if input.is_complex() else dev * dev
    return sum(sq, dims, keepdim=keepdim) / builtins.max(n - correction, 0)


@register()
def std(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return sqrt(var(input, dim, unbiased, keepdim, correction=correction))


@register()
def var_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


@register()
def std_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


class Norm2(Op):
    """Euclidean norm; its gradient at the zero vector is 0 (a subgradient), as PyTorch's."""

    save_inputs = (0,)

    def forward(self, x):
        xp = xp_of(x)
        self.yk = xp.sqrt((x * x).sum(axis=self.dims, keepdims=True))
        return self.yk if self.keepdim else xp.squeeze(self.yk, axis=self.dims)

    def backward(self, g):
        (x,) = self.saved_tensors
        yk = Norm2.apply(x, dims=self.dims, keepdim=True) if _State.grad_enabled else \
            Tensor._make(self.yk, None, 0)
        if not self.keepdim:
            g = g.reshape(self.yk.shape)
        safe = where(yk == 0, 1.0, yk)
        return (where(yk == 0, 0.0, g * x / safe),)

    def _release_extra(self):
        self.yk = None


@register()
@bfloat16_in_float32()  # sums of bfloat16 squares need float32
def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Vector p-norm over `dim` (all elements when None); 'fro' is the 2-norm of the entries."""
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("norm", norm, input, p, dim, keepdim, dtype=dtype)
        if out is not None:
            return out
    input = float_input(input)
    if dtype is not None:
        input = input.to(dtype=dtype)
    dims = norm_dims(dim, input._data.ndim, "norm")
    from .elementwise import abs as abs_
    if p in ("fro", 2, 2.0, None):
        return Norm2.apply(abs_(input) if input.is_complex() else input, dims=dims,
                           keepdim=keepdim)
    a = abs_(input)
    if p in (float("inf"), "inf"):
        return amax(a, dims, keepdim)
    if p in (float("-inf"), "-inf"):
        return amin(a, dims, keepdim)
    if p == 0:
        return sum((a != 0).to(dtype=input.dtype), dims, keepdim)
    if p == 1:
        return sum(a, dims, keepdim)
    if isinstance(p, str):
        raise RuntimeError(f"norm: unsupported p={p!r}")
    return sum(a ** p, dims, keepdim) ** (1.0 / p)


@register()
def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("logsumexp", logsumexp, input, dim, keepdim)
        if out is not None:
            return out
    input = float_input(input)
    dims = norm_dims(dim, input._data.ndim, "logsumexp")
    xp = xp_of(input._data)
    if input._data.size == 0:
        return log(sum(exp(input), dims, keepdim))
    m = xp.max(input._data, axis=dims, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    mt = Tensor._make(m, None, 0)
    out = log(sum(exp(input - mt), dims, keepdim=True)) + mt
    return out if keepdim else out.squeeze(dims) if dims else out


class Cumsum(Op):
    def forward(self, x):
        return xp_of(x).cumsum(x, axis=self.dim, dtype=self.out_dtype)

    def backward(self, g):
        from .shape import flip
        return (flip(cumsum(flip(g, (self.dim,)), self.dim), (self.dim,)),)


@register()
def cumsum(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("cumsum", cumsum, input, dim, dtype=dtype)
        if out is not None:
            return out
    if input._data.ndim == 0:
        return input.clone()
    d = norm_dim(dim, input._data.ndim, "cumsum")
    return Cumsum.apply(input, dim=d, out_dtype=_sum_dtype(input, dtype))


class Cumprod(Op):
    save_inputs = (0,)
    save_output = True

    def forward(self, x):
        self.y = xp_of(x).cumprod(x, axis=self.dim)
        return self.y

    def backward(self, g):
        refuse_complex_backward(g, "cumprod")
        (x,) = self.saved_tensors
        from .shape import flip
        d = self.dim
        if bool((x._data == 0).any()):
            return (_cumprod_grad_with_zeros(x, g, d),)
        y = cumprod(x, d) if _State.grad_enabled else Tensor._make(self.saved_output(), None, 0)
        rev = flip(cumsum(flip(g * y, (d,)), d), (d,))
        return (rev / x,)

    def _release_extra(self):
        self.y = None


def _cumprod_grad_with_zeros(x, g, d):
    """dL/dx_k = sum_{i>=k} g_i * prod_{j<=i, j!=k} x_j, computed one position at a time."""
    from .shape import cat
    n = x.shape[d]
    cols = []
    for k in range(n):
        before = prod(x.narrow(d, 0, k), d, keepdim=True) if k else None
        rest = x.narrow(d, k + 1, n - k - 1)
        tail = cumprod(rest, d) if n - k - 1 else None
        first = g.narrow(d, k, 1) if before is None else g.narrow(d, k, 1) * before
        total = first
        if tail is not None:
            t = tail if before is None else tail * before
            total = total + sum(g.narrow(d, k + 1, n - k - 1) * t, d, keepdim=True)
        cols.append(total)
    return cat(cols, d) if cols else g * 0.0


@register()
def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("cumprod", cumprod, input, dim, dtype=dtype)
        if out is not None:
            return out
    if dtype is not None:
        input = input.to(dtype=dtype)
    if input._data.ndim == 0:
        return input.clone()
    d = norm_dim(dim, input._data.ndim, "cumprod")
    return Cumprod.apply(input, dim=d)


class _Logical(Op):
    differentiable = False

    def forward(self, x):
        f = x.all if self.is_all else x.any
        if self.dims is None:
            return xp_of(x).asarray(f())
        return f(axis=self.dims, keepdims=self.keepdim)


@register(differentiable=False)
def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    dims = None if dim is None else norm_dims(dim, input._data.ndim, "all")
    return _Logical.apply(input, is_all=True, dims=dims, keepdim=keepdim)


@register(differentiable=False)
def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    dims = None if dim is None else norm_dims(dim, input._data.ndim, "any")
    return _Logical.apply(input, is_all=False, dims=dims, keepdim=keepdim)


@register(differentiable=False)
def count_nonzero(input: Tensor, dim=None) -> Tensor:
    return sum(input != 0, dim)


# ============================================================================ softmax family
class Softmax(Op):
    save_inputs = (0,)
    save_output = True

    def forward(self, x):
        xp = xp_of(x)
        d = self.dim
        if xp is not np or d == 0 or x.ndim < 2:
            e = xp.exp(x - x.max(axis=d, keepdims=True))
            self.y = e / e.sum(axis=d, keepdims=True)
            return self.y
        jk = _jit.kernels()
        if jk is not None and d == x.ndim - 1 and _jit.eligible(x):
            self.y = _softmax_last_dim(jk, x)
            return self.y
        y = np.empty_like(x)

        def rows(a, b):  # rows along axis 0 are independent: several threads, in place
            xs, e = x[a:b], y[a:b]
            np.subtract(xs, xs.max(axis=d, keepdims=True), out=e)
            np.exp(e, out=e)
            e /= e.sum(axis=d, keepdims=True)
        parallel_ranges(rows, x.shape[0], x.size)
        self.y = y
        return y

    def backward(self, g):
        (x,) = self.saved_tensors
        if _State.grad_enabled:  # differentiable form, for double backward
            y = softmax(x, self.dim)
            gy = g * y
            return (gy - y * gy.sum(self.dim, keepdim=True),)
        y, ga, d = self.saved_output(), g._data, self.dim
        if xp_of(y) is not np or d == 0 or y.ndim < 2:
            gy = ga * y
            return (_make_t(gy - y * gy.sum(axis=d, keepdims=True)),)
        jk = _jit.kernels()
        if jk is not None and d == y.ndim - 1 and _jit.eligible(y, ga):
            y2, g2 = y.reshape(-1, y.shape[-1]), ga.reshape(-1, y.shape[-1])
            gx = np.empty_like(y2)
            dot = np.empty(y2.shape[0], y.dtype)
            parallel_ranges(lambda a, b: jk.softmax_backward_rows(y2, g2, gx, dot, a, b),
                            y2.shape[0], y.size, JIT_PARALLEL_ELEMENTS)
            return (_make_t(gx.reshape(y.shape)),)
        gx = np.empty_like(y)

        def rows(a, b):  # gx = y * (g - sum(g * y)), row range by row range
            ys, out = y[a:b], gx[a:b]
            np.multiply(ga[a:b], ys, out=out)
            s = out.sum(axis=d, keepdims=True)
            np.subtract(ga[a:b], s, out=out)
            out *= ys
        parallel_ranges(rows, y.shape[0], y.size)
        return (_make_t(gx),)

    def _release_extra(self):
        self.y = None


def _softmax_last_dim(jk, x):
    """Softmax over the last dim of a C-contiguous float array with the compiled row kernels:
    shift by the row max, exp (NumPy's vectorised exp, in place), divide by the row sum."""
    x2 = x.reshape(-1, x.shape[-1])
    y = np.empty_like(x2)
    inv = np.empty(x2.shape[0], x.dtype)

    def rows(a, b):
        jk.softmax_shift_rows(x2, y, a, b)
        np.exp(y[a:b], out=y[a:b])
        jk.softmax_normalize_rows(y, inv, a, b)
    parallel_ranges(rows, x2.shape[0], x.size)
    return y.reshape(x.shape)


class LogSoftmax(Op):
    save_inputs = (0,)
    save_output = True

    def forward(self, x):
        xp = xp_of(x)
        z = x - x.max(axis=self.dim, keepdims=True)
        self.y = z - xp.log(xp.exp(z).sum(axis=self.dim, keepdims=True))
        return self.y

    def backward(self, g):
        if _State.grad_enabled:
            (x,) = self.saved_tensors
            y = log_softmax(x, self.dim)
        else:
            y = Tensor._make(self.saved_output(), None, 0)
        return (g - exp(y) * g.sum(self.dim, keepdim=True),)

    def _release_extra(self):
        self.y = None


@register()
@bfloat16_in_float32()  # the row sums of bfloat16 exponentials need float32
def softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("softmax", softmax, input, dim, dtype=dtype)
        if out is not None:
            return out
    if dtype is not None:
        input = input.to(dtype=dtype)
    input = float_input(input)
    d = norm_dim(dim, input._data.ndim, "softmax")
    if input._data.ndim == 0:  # CuPy refuses axis 0 on a 0-d array
        return Softmax.apply(input.reshape(1), dim=0).reshape(())
    return Softmax.apply(input, dim=d)


@register()
@bfloat16_in_float32()  # the row sums of bfloat16 exponentials need float32
def log_softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("log_softmax", log_softmax, input, dim, dtype=dtype)
        if out is not None:
            return out
    if dtype is not None:
        input = input.to(dtype=dtype)
    input = float_input(input)
    d = norm_dim(dim, input._data.ndim, "log_softmax")
    if input._data.ndim == 0:
        return LogSoftmax.apply(input.reshape(1), dim=0).reshape(())
    return LogSoftmax.apply(input, dim=d)
