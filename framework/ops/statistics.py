"""Statistics and counting: aminmax, nanmedian, quantile and nanquantile, mode, cov, corrcoef,
renorm, trapezoid, diff, histc and bincount. The differentiable ones are built from
differentiable ops (values are gathered through non-differentiable indices, so their gradient
goes to the picked elements, as PyTorch's)."""
from __future__ import annotations

import builtins
import math
import warnings
from collections import namedtuple

import numpy as np

from ..amp import autocast_listed
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ._util import check_same_device, ensure_tensor, float_input, norm_dim
from .elementwise import clamp, lerp, logical_xor, sqrt, where
from .indexing import gather
from .linalg import matmul
from .reduction import amax, amin, mean, norm, sum
from .registry import register
from .shape import cat, diagonal, movedim
from .sorting import _argsort_arr, sort

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])
_MinMax = namedtuple("aminmax", ["min", "max"])


def _index(arr) -> Tensor:
    return Tensor._make(arr, None, 0)


def _zero_index(x: Tensor) -> Tensor:
    return _index(xp_of(x._data).zeros((), np.int64))


# ============================================================================ aminmax
@register()
def aminmax(input: Tensor, *, dim=None, keepdim: bool = False):
    """(min, max) over `dim`, or over all elements when dim is None."""
    if dim is None:
        if input._data.size == 0:
            raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the "
                               "operation has no identity.")
        dims = ()
    else:
        d = norm_dim(dim, input._data.ndim, "aminmax")
        if input._data.ndim and input._data.shape[d] == 0:
            raise IndexError(f"aminmax(): Expected reduction dim {d} to have non-zero size.")
        dims = d
    return _MinMax(amin(input, dims, keepdim), amax(input, dims, keepdim))


# ============================================================================ nanmedian
class NanMedianAll(Op):
    """The lower median of the non-nan elements (nan when there are none); the gradient is
    shared evenly among the elements equal to it, as PyTorch's."""

    save_inputs = (0,)

    def forward(self, x):
        xp = xp_of(x)
        flat = x.reshape(-1)
        if flat.size == 0:
            if x.dtype.kind != "f":
                raise RuntimeError("nanmedian(): cannot take the median of an empty integer "
                                   "tensor")
            self.v = xp.asarray(math.nan, x.dtype)
            return self.v
        s = xp.sort(flat)  # nan sorts last
        valid = flat.size - builtins.int(xp.isnan(flat).sum()) if x.dtype.kind == "f" \
            else flat.size
        self.v = s[builtins.max((valid - 1) // 2, 0)]
        return self.v

    def backward(self, g):
        (x,) = self.saved_tensors
        xa, v = x._data, self.v
        xp = xp_of(xa)
        hit = xp.isnan(xa) if xa.dtype.kind == "f" and bool(xp.isnan(v)) else xa == v
        share = hit / builtins.max(builtins.int(hit.sum()), 1)
        return (g * _index(share.astype(g._data.dtype, copy=False)),)

    def _release_extra(self):
        self.v = None


class MedianAll(NanMedianAll):
    """The lower median of all elements, nan when any is nan (torch.median without a dim);
    the gradient is shared evenly among the elements equal to it, as PyTorch's."""

    def forward(self, x):
        xp = xp_of(x)
        flat = x.reshape(-1)
        if flat.size == 0:
            raise IndexError("median() input tensor cannot be empty")
        if x.dtype.kind == "f" and bool(xp.isnan(flat).any()):
            self.v = xp.asarray(math.nan, x.dtype)
        else:
            self.v = xp.sort(flat)[(flat.size - 1) // 2]
        return self.v


@register()
def nanmedian(input: Tensor, dim=None, keepdim: bool = False):
    """The median ignoring nan (the lower of the two middle values); with `dim`,
    (values, indices)."""
    if dim is None:
        return NanMedianAll.apply(input)
    x = input._data
    if x.ndim == 0:
        norm_dim(dim, 0, "nanmedian")
        return ValuesIndices(input.clone(), _zero_index(input))
    d = norm_dim(dim, x.ndim, "nanmedian")
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"nanmedian(): Expected reduction dim {d} to have non-zero size.")
    xp = xp_of(x)
    order = _argsort_arr(x, d, False, True)  # nan last
    if x.dtype.kind == "f":
        valid = (~xp.isnan(x)).sum(axis=d, keepdims=True)
    else:
        valid = xp.full(x.shape[:d] + (1,) + x.shape[d + 1:], n, np.int64)
    k = xp.maximum((valid - 1) // 2, 0)
    idx = _index(xp.take_along_axis(order, k, axis=d))
    values = gather(input, d, idx)
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return ValuesIndices(values, idx)


# ============================================================================ quantile
_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(input: Tensor, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool,
              name: str) -> Tensor:
    if input._data.dtype.kind != "f":
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(f"{name}() interpolation must be one of linear, lower, higher, "
                           f"midpoint or nearest, but got {interpolation}")
    xp = xp_of(input._data)
    dt = input._data.dtype
    if isinstance(q, Tensor):
        if q._data.ndim > 1:
            raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
        if q._data.dtype != dt:
            raise RuntimeError(f"{name}() q tensor must be same dtype as the input tensor")
        check_same_device(input, q, name)
        scalar_q = q._data.ndim == 0
        qa = xp.asarray(q._data).reshape(-1)
        if qa.size and (builtins.bool(qa.min() < 0) or builtins.bool(qa.max() > 1)):
            raise RuntimeError(f"{name}() q values must be in the range [0, 1]")
    else:
        if not 0 <= q <= 1:
            raise RuntimeError(f"{name}() q must be in the range [0, 1] but got {q}")
        scalar_q = True
        qa = xp.asarray([q], dtype=dt)
    if input._data.size == 0:
        raise RuntimeError(f"{name}() input tensor must be non-empty")
    ndim = input._data.ndim
    if dim is None or ndim == 0:
        if dim is not None:
            norm_dim(dim, 0, name)
        x, d = input.reshape(-1), 0
    else:
        x, d = input, norm_dim(dim, ndim, name)
    s = movedim(sort(x, d).values, d, -1)  # (..., n), nan last
    sd = s._data
    n = sd.shape[-1]
    isnan = xp.isnan(sd)
    valid = (~isnan).sum(axis=-1, keepdims=True) if ignore_nan else n
    # Ranks in the input's dtype, as PyTorch (it decides where floor/ceil/round land). A slice
    # whose answer is nan points at a nan: for nanquantile an all-nan slice at its first
    # element, for quantile a slice with a nan at its last one (sorting put the nan there).
    rank = qa * (xp.asarray(valid) - 1).astype(dt)
    if ignore_nan:
        rank = xp.maximum(rank, 0)
    else:
        rank = xp.where(isnan.any(axis=-1, keepdims=True), dt.type(n - 1), rank)
    rank = xp.broadcast_to(rank, sd.shape[:-1] + qa.shape)  # (..., Q)

    def pick(pos):
        return gather(s, -1, _index(pos.astype(np.int64)))

    if interpolation == "lower":
        out = pick(xp.floor(rank))
    elif interpolation == "higher":
        out = pick(xp.ceil(rank))
    elif interpolation == "nearest":
        out = pick(xp.round(rank))  # half to even, as PyTorch
    else:
        below = xp.floor(rank)
        w = rank - below if interpolation == "linear" else xp.full_like(rank, 0.5)
        out = lerp(pick(below), pick(xp.ceil(rank)), _index(w))
    out = movedim(out, -1, 0)  # (Q, ...)
    if keepdim and ndim:
        if dim is None:
            out = out.reshape((out.shape[0],) + (1,) * ndim)
        else:
            out = out.unsqueeze(d + 1)
    return out.squeeze(0) if scalar_q else out


@register()
@autocast_listed("quantile")
def quantile(input: Tensor, q, dim=None, keepdim: bool = False, *,
             interpolation: str = "linear") -> Tensor:
    """The q-th quantiles (q a float or a 1-D tensor, whose values become the first dim) over
    `dim`, or over all elements when dim is None; nan when a slice holds a nan."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


@register()
@autocast_listed("nanquantile")
def nanquantile(input: Tensor, q, dim=None, keepdim: bool = False, *,
                interpolation: str = "linear") -> Tensor:
    """quantile ignoring nan (nan only for a slice of nothing but nan)."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


# ============================================================================ mode
@register()
def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """(values, indices): the most frequent value along `dim` (the smallest one on a tie) and
    the index of its last occurrence."""
    x = input._data
    if x.ndim == 0:
        norm_dim(dim, 0, "mode")
        return ValuesIndices(input.clone(), _zero_index(input))
    d = norm_dim(dim, x.ndim, "mode")
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"mode(): Expected reduction dim {d} to have non-zero size.")
    xp = xp_of(x)
    x2 = xp.moveaxis(x, d, -1).reshape(-1, n)
    rows = x2.shape[0]
    order = xp.argsort(x2, axis=1, kind="stable")
    s = xp.take_along_axis(x2, order, axis=1)
    # Runs of equal values in each sorted row (a nan equals nothing: each is its own run).
    # count[i] = position within its run, from 1; every row starts a run.
    starts = xp.ones((rows, n), dtype=bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    flat = starts.reshape(-1)
    first = xp.flatnonzero(flat)
    count = xp.arange(rows * n) - first[xp.cumsum(flat) - 1] + 1
    # The first maximum of count ends the longest run of the smallest value; the stable sort
    # put that value's last occurrence there.
    best = xp.argmax(count.reshape(rows, n), axis=1)
    idx = order[xp.arange(rows), best].astype(np.int64, copy=False)
    idx = _index(xp.expand_dims(idx.reshape(xp.moveaxis(x, d, -1).shape[:-1]), d))
    values = gather(input, d, idx)
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return ValuesIndices(values, idx)


# ============================================================================ cov / corrcoef
def _check_weights(w: Tensor, name: str, n_obs: int, integral: bool):
    if w._data.ndim > 1:
        raise RuntimeError(f"cov(): expected {name} to have one or fewer dimensions but got "
                           f"{name} with {w._data.ndim} dimensions")
    if integral and w._data.dtype.kind not in "iu":
        raise RuntimeError(f"cov(): expected {name} to have integral dtype but got {name} with "
                           f"{w.dtype.name} dtype")
    if not integral and w._data.dtype.kind != "f":
        raise RuntimeError(f"cov(): expected {name} to have floating point dtype but got {name} "
                           f"with {w.dtype.name} dtype")
    if w._data.size != n_obs:
        raise RuntimeError(f"cov(): expected {name} to have the same numel as there are "
                           f"observations in the input but got {w._data.size} != {n_obs}")
    if w._data.size and builtins.bool((w._data < 0).any()):
        raise RuntimeError(f"cov(): {name} cannot be negative")


@register()
def cov(input: Tensor, *, correction: int = 1, fweights: Tensor | None = None,
        aweights: Tensor | None = None) -> Tensor:
    """Covariance matrix of the variables in the rows of `input` (a 1-D input is one
    variable), with frequency and/or observation weights."""
    if input._data.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an "
                           f"input with {input._data.ndim} dimensions")
    x = float_input(input)
    if x._data.ndim < 2:
        x = x.reshape(1, -1)
    n_obs = x._data.shape[1]
    w = None
    if fweights is not None:
        _check_weights(fweights, "fweights", n_obs, True)
        w = fweights
    if aweights is not None:
        _check_weights(aweights, "aweights", n_obs, False)
        w = aweights if w is None else w * aweights
    if w is None:
        avg = mean(x, 1)
        norm_factor = n_obs - correction
    else:
        w_sum = sum(w)
        avg = sum(x * w, 1) / w_sum
        if correction == 0:
            norm_factor = w_sum
        elif aweights is None:
            norm_factor = w_sum - correction
        else:
            norm_factor = w_sum - correction * sum(w * aweights) / w_sum
    if builtins.bool(norm_factor <= 0):
        warnings.warn("cov(): degrees of freedom is <= 0. Correction should be strictly less "
                      "than the number of observations.", stacklevel=2)
        norm_factor = norm_factor * 0
    xm = x - avg.unsqueeze(1)
    c = matmul(xm if w is None else xm * w, xm.t()) / norm_factor
    return c.squeeze()


@register()
def corrcoef(input: Tensor) -> Tensor:
    """Pearson correlation coefficients of the variables in the rows of `input`, clipped to
    [-1, 1]."""
    if input._data.ndim > 2:
        raise RuntimeError(f"corrcoef(): expected input to have two or fewer dimensions but got "
                           f"an input with {input._data.ndim} dimensions")
    c = cov(input)
    if c._data.ndim == 0:
        return c / c  # one variable: 1, or nan without variance
    sd = sqrt(diagonal(c))
    return clamp(c / sd.unsqueeze(1) / sd.unsqueeze(0), -1.0, 1.0)


# ============================================================================ renorm
@register()
@autocast_listed("renorm")
def renorm(input: Tensor, p, dim: int, maxnorm) -> Tensor:
    """Scale each slice `input.select(dim, i)` whose p-norm exceeds `maxnorm` down to that
    norm (exactly: maxnorm / (norm + 1e-7), as PyTorch)."""
    ndim = input._data.ndim
    if ndim <= 1:
        raise RuntimeError(f"renorm: input needs at least 2 dimensions, got {ndim} dimensions")
    if p <= 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    if input._data.dtype.kind != "f":
        raise RuntimeError(f"renorm: expected a floating point tensor as input, got "
                           f"{input.dtype.name}")
    d = norm_dim(dim, ndim, "renorm")
    nrm = norm(input, p, tuple(i for i in range(ndim) if i != d), keepdim=True)
    return input * where(nrm > maxnorm, maxnorm / (nrm + 1e-7), 1.0)


# ============================================================================ trapezoid / diff
@register(method=False)
def trapezoid(y: Tensor, x: Tensor | None = None, *, dx=None, dim: int = -1) -> Tensor:
    """Trapezoidal rule along `dim`: sample points `x` (1-D, or broadcasting with y), or a
    constant spacing `dx` (default 1)."""
    if y._data.ndim == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    if x is not None and dx is not None:
        raise TypeError("trapezoid() takes the sample points x or the spacing dx, not both")
    y = float_input(y)
    d = norm_dim(dim, y._data.ndim, "trapezoid")
    n = y._data.shape[d]
    if n == 0:  # zeros, with no graph (as PyTorch)
        return Tensor._make(xp_of(y._data).zeros(y._data.shape[:d] + y._data.shape[d + 1:],
                                                 y._data.dtype), None, 0)
    if x is None:
        ends = y.narrow(d, 0, 1) + y.narrow(d, n - 1, 1)
        return (sum(y, d) - ends.squeeze(d) * 0.5) * (1 if dx is None else dx)
    x = ensure_tensor(x, y)
    if x._data.ndim == 1:
        if x._data.shape[0] != n:
            raise RuntimeError("trapezoid: There must be one `x` value for each sample point")
        step = diff(x).reshape(tuple(n - 1 if i == d else 1 for i in range(y._data.ndim)))
    else:
        step = diff(x, dim=dim)
    return sum(step * (y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1)), d) / 2


@register()
def diff(input: Tensor, n: int = 1, dim: int = -1, prepend: Tensor | None = None,
         append: Tensor | None = None) -> Tensor:
    """The n-th forward difference along `dim` (for bool tensors: `!=` of neighbours), after
    joining `prepend` and `append` to the input."""
    ndim = input._data.ndim
    if ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    d = norm_dim(dim, ndim, "diff")
    parts = []
    for extra in (prepend, input, append):
        if extra is None:
            continue
        extra = ensure_tensor(extra, input)
        if extra._data.ndim != ndim:
            raise RuntimeError("diff expects prepend or append to be the same dimension as input")
        parts.append(extra)
    x = cat(parts, d) if len(parts) > 1 else input
    for _ in range(n):
        m = x._data.shape[d]
        if m == 0:
            break
        hi, lo = x.narrow(d, 1, m - 1), x.narrow(d, 0, m - 1)
        x = logical_xor(hi, lo) if x._data.dtype.kind == "b" else hi - lo
    return x.clone() if x is input else x


# ============================================================================ counting
@register(differentiable=False)
def histc(input: Tensor, bins: int = 100, min=0, max=0) -> Tensor:  # noqa: A002
    """Histogram of all elements in `bins` equal bins over [min, max] (the data's range when
    min == max); elements outside, and nan, are not counted."""
    a = input._data
    if a.dtype.kind != "f":
        raise NotImplementedError(f"\"histc\" not implemented for '{input.dtype.name}'")
    if bins <= 0:
        raise RuntimeError(f"torch.histc(): bins must be > 0, but got {bins}")
    xp = xp_of(a)
    flat = a.reshape(-1)
    lo, hi = float(min), float(max)
    if lo == hi and flat.size:
        lo, hi = float(flat.min()), float(flat.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RuntimeError(f"torch.histc: range of [{lo}, {hi}] is not finite")
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError("torch.histc: max must be larger than min")
    left, right = a.dtype.type(lo), a.dtype.type(hi)
    keep = flat[(flat >= left) & (flat <= right)]
    # The bin position in the input's dtype and in PyTorch's order of operations, so that
    # values on a bin edge land where PyTorch puts them; `max` itself goes in the last bin.
    pos = xp.floor((keep - left) * bins / (right - left)).astype(np.int64)
    pos = xp.minimum(pos, bins - 1)
    return _index(xp.bincount(pos, minlength=bins).astype(a.dtype))


@register(differentiable=False)
def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """Counts of each value of a 1-D non-negative integer tensor (sums of `weights` instead
    when given); the length is max(input) + 1, at least `minlength`."""
    a = input._data
    if a.dtype.kind not in "iu":
        raise NotImplementedError(f"\"bincount\" not implemented for '{input.dtype.name}'")
    xp = xp_of(a)
    if a.ndim != 1 or (a.size and builtins.int(a.min()) < 0):
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if weights is None:
        return _index(xp.bincount(a, minlength=minlength).astype(np.int64, copy=False))
    weights = ensure_tensor(weights, input)
    wd = weights._data
    if wd.ndim != 1 or wd.shape[0] != a.shape[0]:
        raise RuntimeError("weights should be 1-d and have the same length as input")
    # float32 and float64 weights keep their dtype; any other dtype counts in float64
    out_dtype = wd.dtype if wd.dtype in (np.dtype(np.float32), np.dtype(np.float64)) \
        else np.dtype(np.float64)
    return _index(xp.bincount(a, weights=wd.astype(np.float64), minlength=minlength)
                  .astype(out_dtype, copy=False))


# Tensor methods `name_` (bound in framework/ops/__init__.py): name -> out-of-place function
INPLACE = {"renorm": renorm}
