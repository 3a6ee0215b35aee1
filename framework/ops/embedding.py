"""Embedding lookups: embedding (padding_idx, max_norm renormalising rows in place,
scale_grad_by_freq) and embedding_bag (sum/mean/max over bags given by offsets or by the rows
of a 2-D input, per_sample_weights, padding_idx).

A lookup is a gather of weight rows; its gradient is the adjoint row scatter (a segment sum
over the sorted indices, see `resample.axis_scatter`). Both are Ops, each the other's
backward, so lookups are differentiable to any order.
"""
from __future__ import annotations

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ._functional_registry import register_functional
from .resample import AxisMap, AxisScatter, take

_make = Tensor._make


def _row_map(flat_idx, n_rows, row_scale=None):
    return AxisMap(flat_idx[None], None if row_scale is None else row_scale[None], n_rows)


def _renorm_rows(weight: Tensor, idx, max_norm, norm_type):
    """Rescale (in place, without autograd) the rows of weight at idx whose norm exceeds
    max_norm to norm max_norm, as PyTorch's embedding_renorm_."""
    xp = xp_of(weight._data)
    rows = xp.unique(idx.reshape(-1))
    w = weight._writable()
    sel = w[rows]
    if norm_type == float("inf"):
        norms = xp.abs(sel).max(axis=1)
    else:
        norms = (xp.abs(sel) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    big = norms > max_norm
    if bool(big.any()):
        scale = (max_norm / (norms[big] + 1e-7)).astype(w.dtype)
        w[rows[big]] = sel[big] * scale[:, None]
        weight._bump()


def _check_indices(input: Tensor, n_rows, opname):
    idx = input._data
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"{opname}: Expected tensor for argument #1 'indices' to have one of "
                           f"the following scalar types: Long, Int; but got {input.dtype.name} "
                           "instead")
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= n_rows:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{opname}: index {bad} is out of range for a weight with "
                             f"{n_rows} rows")
    return idx


@register_functional("embedding")
def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False) -> Tensor:
    """weight[input]: rows of `weight` (num_embeddings, D) for integer `input` of any shape.
    The row `padding_idx` gets no gradient; with max_norm, the looked-up rows of weight are
    renormalised in place first."""
    if weight._data.ndim != 2:
        raise RuntimeError(f"embedding: 'weight' must be 2-D, got shape {list(weight.shape)}")
    n_rows = weight._data.shape[0]
    idx = _check_indices(input, n_rows, "embedding")
    if padding_idx is not None:
        if padding_idx >= 0:
            if padding_idx >= n_rows:
                raise AssertionError("Padding_idx must be within num_embeddings")
        else:
            if padding_idx < -n_rows:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = n_rows + padding_idx
    if max_norm is not None:
        _renorm_rows(weight, idx, float(max_norm), float(norm_type))
    xp = xp_of(idx)
    flat = idx.reshape(-1).astype(np.int64, copy=False)
    host = flat if xp is np else flat.get()
    scale = None
    if padding_idx is not None or scale_grad_by_freq:
        scale = np.ones(host.shape[0])
        if scale_grad_by_freq:
            counts = np.bincount(host, minlength=n_rows)
            scale = scale / counts[host]
        if padding_idx is not None:
            scale = np.where(host == padding_idx, 0.0, scale)
    out_shape = tuple(idx.shape) + (weight._data.shape[1],)
    return _Lookup.apply(weight, idx=host, idx_dev=flat, n_rows=n_rows, grad_scale=scale,
                         out_shape=out_shape)


class _Lookup(Op):
    """The forward lookup (unscaled rows); its gradient is scaled per entry by `grad_scale`
    (0 for padding_idx, 1/frequency with scale_grad_by_freq)."""

    def forward(self, w):
        out = take(xp_of(w), w, self.idx_dev, 0)
        return out.reshape(self.out_shape)

    def backward(self, g):
        amap = _row_map(self.idx, self.n_rows, self.grad_scale)
        g2 = g.reshape(-1, self.out_shape[-1])
        return (AxisScatter.apply(g2, amap=amap, axis=0),)


# ---------------------------------------------------------------------------- embedding_bag
@register_functional("embedding_bag")
def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False,
                  mode="mean", sparse=False, per_sample_weights=None, include_last_offset=False,
                  padding_idx=None) -> Tensor:
    """Sums, means or maxima of bags of embeddings: bags are the rows of a 2-D input, or the
    segments of a 1-D input starting at `offsets`."""
    if weight._data.ndim != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension "
                         f"{weight._data.ndim}")
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. "
                                  f"per_sample_weights is only supported for mode='sum' (got "
                                  f"mode='{mode}'). Please open a feature request on GitHub.")
    n_rows, dim = weight._data.shape
    idx = _check_indices(input, n_rows, "embedding_bag")
    xp = xp_of(idx)
    host = idx if xp is np else idx.get()
    if host.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated "
                             "is a mini-batch of fixed length sequences.")
        n_bags, length = host.shape
        flat = host.reshape(-1).astype(np.int64)
        bag_of = np.repeat(np.arange(n_bags), length)
    elif host.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        off = offsets._data if xp is np else offsets._data.get()
        off = np.asarray(off, dtype=np.int64).reshape(-1)
        if off.ndim != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        if off.size and off[0] != 0:
            raise RuntimeError(f"offsets[0] has to be 0, i.e., the first sequence in the "
                               f"mini-batch has to start from position 0. However, got "
                               f"{int(off[0])}")
        flat = host.astype(np.int64)
        bounds = off if include_last_offset else np.concatenate([off, [flat.size]])
        if np.any(np.diff(bounds) < 0) or (bounds.size and bounds[-1] > flat.size):
            raise RuntimeError("offsets must be non-decreasing and within the input's length")
        n_bags = bounds.size - 1
        bag_of = np.repeat(np.arange(n_bags), np.diff(bounds))
        flat = flat[:bag_of.size]
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{host.ndim}")
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += n_rows
        if not 0 <= padding_idx < n_rows:
            raise AssertionError("padding_idx must be within num_embeddings")
    if max_norm is not None:
        _renorm_rows(weight, idx, float(max_norm), float(norm_type))
    keep = np.ones(flat.size, bool) if padding_idx is None else flat != padding_idx
    counts = np.bincount(bag_of[keep], minlength=n_bags).astype(np.float64)
    dev_flat = xp.asarray(flat)
    gscale = None
    if scale_grad_by_freq:
        freq = np.bincount(flat, minlength=n_rows)
        gscale = 1.0 / freq[flat]
    rows = _Lookup.apply(weight, idx=flat, idx_dev=dev_flat, n_rows=n_rows,
                         grad_scale=gscale, out_shape=(flat.size, dim))
    if mode == "max":
        return _bag_max(rows, bag_of, keep, n_bags, dim, xp)
    w = keep.astype(np.float64)
    if mode == "mean":
        w = w / np.maximum(counts, 1.0)[bag_of]
    if per_sample_weights is not None:
        psw = per_sample_weights
        if tuple(psw._data.shape) != tuple(input._data.shape):
            raise ValueError(f"embedding_bag: per_sample_weights {list(psw.shape)} must have the "
                             f"shape of input {list(input.shape)}")
        rows = rows * psw.reshape(-1, 1).to(dtype=weight.dtype)
    # one row per entry -> one per bag: a segment sum (the adjoint of a gather by bag)
    amap = AxisMap(bag_of[None], w[None], n_bags)
    return AxisScatter.apply(rows, amap=amap, axis=0)


def _bag_max(rows, bag_of, keep, n_bags, dim, xp):
    """Per bag, the elementwise max of its rows (0 for an empty bag); the gradient goes to
    the row that held each maximum."""
    from .resample import SpatialGather
    data = rows._data
    n = data.shape[0]
    order = np.argsort(bag_of, kind="stable")
    sel = order[keep[order]]
    bags = bag_of[sel]
    # positions inside each bag (bags are contiguous after the stable sort)
    starts = np.searchsorted(bags, np.arange(n_bags))
    pos = np.arange(sel.size) - starts[bags] if sel.size else np.zeros(0, np.int64)
    lmax = int(pos.max()) + 1 if sel.size else 1
    neg = -np.inf if data.dtype.kind == "f" else np.iinfo(data.dtype).min
    dense = xp.full((n_bags, lmax, dim), neg, data.dtype)
    dense[xp.asarray(bags), xp.asarray(pos)] = data[xp.asarray(sel)]
    best = xp.argmax(dense, axis=1)  # (n_bags, dim) position inside the bag
    src = np.full((n_bags, lmax), -1, np.int64)
    src[bags, pos] = sel
    winner = xp.asarray(src)[xp.arange(n_bags)[:, None], best]  # row of `rows` per (bag, d)
    empty = np.bincount(bags, minlength=n_bags) == 0
    winner = xp.where(xp.asarray(empty)[:, None], 0, winner)
    # gather rows[winner[b, d], d]: flat positions into (n, dim) seen as (1, 1, n*dim)
    flat = (winner * dim + xp.arange(dim)[None, :]).reshape(1, 1, n_bags, dim)
    out = SpatialGather.apply(rows.reshape(1, 1, n * dim), flat=flat).reshape(n_bags, dim)
    if bool(empty.any()):
        out = out * _make(xp.asarray(~empty)[:, None].astype(data.dtype), None, 0)
    return out


__all__ = ["embedding", "embedding_bag"]

