"""Sorting and selection: sort, argsort, topk, kthvalue, unique. Values are gathered through
the (non-differentiable) indices, so their gradient flows back to the picked elements."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ._util import norm_dim
from .indexing import gather
from .registry import register

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _argsort_arr(x, dim, descending, stable):
    xp = xp_of(x)
    if descending:
        # stable descending order: sort ascending on negated keys
        if x.dtype.kind == "b":
            x = x.astype(np.int8)
        key = -x if x.dtype.kind in "fi" else (x.max() - x)
        if x.dtype.kind == "f" and bool(xp.isnan(x).any()):
            key = xp.where(xp.isnan(x), -xp.inf, key)  # NaN counts as the largest, as in PyTorch
        idx = xp.argsort(key, axis=dim, kind="stable")
    else:
        idx = xp.argsort(x, axis=dim, kind="stable")
    return idx.astype(np.int64, copy=False)


@register()
def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    if input._data.ndim == 0:
        return ValuesIndices(input.clone(), Tensor._make(np.asarray(0), None, 0))
    d = norm_dim(dim, input._data.ndim, "sort")
    idx = Tensor._make(_argsort_arr(input._data, d, descending, stable), None, 0)
    return ValuesIndices(gather(input, d, idx), idx)


@register(differentiable=False)
def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    if input._data.ndim == 0:
        return Tensor._make(np.asarray(0), None, 0)
    d = norm_dim(dim, input._data.ndim, "argsort")
    return Tensor._make(_argsort_arr(input._data, d, descending, stable), None, 0)


@register()
def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    d = norm_dim(dim, input._data.ndim, "topk") if input._data.ndim else 0
    n = input._data.shape[d] if input._data.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk(): selected index k ({k}) out of range for dimension {d} of size "
                           f"{n}")
    if input._data.ndim == 0:
        return ValuesIndices(input.clone(), Tensor._make(np.asarray(0), None, 0))
    order = _argsort_arr(input._data, d, largest, True)
    xp = xp_of(order)
    idx = Tensor._make(xp.ascontiguousarray(
        order[(slice(None),) * d + (slice(0, k),)]), None, 0)
    return ValuesIndices(gather(input, d, idx), idx)


@register()
def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    d = norm_dim(dim, input._data.ndim, "kthvalue")
    order = _argsort_arr(input._data, d, False, True)
    idx = Tensor._make(order[(slice(None),) * d + (slice(k - 1, k),)].copy(), None, 0)
    vals = gather(input, d, idx)
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return ValuesIndices(vals, idx)


@register()
def median(input: Tensor, dim=None, keepdim: bool = False):
    """The lower median (as PyTorch); with `dim`, (values, indices)."""
    if dim is None:  # the gradient is shared among tied elements, as PyTorch's
        from .statistics import MedianAll
        return MedianAll.apply(input)
    d = norm_dim(dim, input._data.ndim, "median")
    return kthvalue(input, (input._data.shape[d] + 1) // 2, d, keepdim)


@register(differentiable=False)
def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim=None):
    xp = xp_of(input._data)
    if dim is None:
        res = xp.unique(input._data.reshape(-1), return_inverse=return_inverse,
                        return_counts=return_counts)
    else:
        # CuPy has no unique along an axis: that case runs on the host and comes back
        host = input._data if xp is np else input._data.get()
        res = np.unique(host, axis=norm_dim(dim, input._data.ndim), return_inverse=True,
                        return_counts=True)
        if xp is not np:
            res = tuple(xp.asarray(r) for r in res)
        res = (res[0],) + ((res[1].reshape(-1),) if return_inverse else ()) + \
            ((res[2],) if return_counts else ())
    if not isinstance(res, tuple):
        return Tensor._make(res, None, 0)
    out = [Tensor._make(res[0], None, 0)]
    i = 1
    if return_inverse:
        inv = res[i].astype(np.int64)
        out.append(Tensor._make(inv.reshape(input._data.shape) if dim is None else inv, None, 0))
        i += 1
    if return_counts:
        out.append(Tensor._make(res[i].astype(np.int64), None, 0))
    return tuple(out)
