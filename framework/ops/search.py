"""Searching sorted data: searchsorted, bucketize, unique_consecutive. Their outputs are
indices and counts (no gradient)."""
from __future__ import annotations

import builtins

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ._util import norm_dim
from .registry import register


def _rows_search(xp, seq, vals, side: str):
    """Insertion points of each row of `vals` in the same row of the row-sorted `seq` (the
    array modules search 1-d arrays only). Every value is replaced by its rank among all the
    values, which keeps order and ties, and row r's ranks are shifted past row r-1's, so one
    1-d search over the flattened rows does all rows at once."""
    n = seq.shape[-1]
    rows = builtins.int(np.prod(seq.shape[:-1]))
    if n == 0 or vals.size == 0:
        return xp.zeros(vals.shape, np.int64)
    both = xp.concatenate([seq.reshape(-1), vals.reshape(-1)])
    rank = xp.unique(both, return_inverse=True)[1].reshape(-1).astype(np.int64)
    shift = (xp.arange(rows, dtype=np.int64) * both.size).reshape(rows, 1)
    keys = rank[:seq.size].reshape(rows, n) + shift
    queries = rank[seq.size:].reshape(rows, -1) + shift
    pos = xp.searchsorted(keys.reshape(-1), queries.reshape(-1), side=side).reshape(rows, -1)
    return (pos - xp.arange(rows, dtype=np.int64).reshape(rows, 1) * n).reshape(vals.shape)


@register(method=False, differentiable=False)
def searchsorted(sorted_sequence: Tensor, input, *, out_int32: bool = False,
                 right: bool = False, side: str | None = None, sorter=None) -> Tensor:
    """For each value of `input`, the index where it would be inserted into the last dim of
    `sorted_sequence` to keep it sorted: before equal elements (side='left'), or after them
    (side='right' or right=True). An N-d sequence is searched row by row, a row per leading
    index of `input`; `sorter` gives the order that sorts an unsorted sequence."""
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"searchsorted(): side can only be 'left' or 'right' but got "
                               f"{side}")
        if right and side == "left":
            raise RuntimeError("searchsorted(): side and right can't be set to opposites, got "
                               "side of left while right was True")
        right = side == "right"
    seq = sorted_sequence._data
    xp = xp_of(seq)
    if seq.ndim == 0:
        raise RuntimeError("searchsorted(): boundaries tensor should have positive dimension, but "
                           "got 0 dimension")
    vals = xp.asarray(input._data if isinstance(input, Tensor) else input)
    if seq.ndim > 1:
        if vals.ndim == 0:
            raise RuntimeError(f"searchsorted(): input value can be a scalar only when boundaries "
                               f"tensor dimension is 1, but we got boundaries tensor dim"
                               f"({seq.ndim}) and input value's dim(0) numel(1)")
        if vals.ndim != seq.ndim or vals.shape[:-1] != seq.shape[:-1]:
            raise RuntimeError(f"searchsorted(): boundaries tensor should be 1 dimension or the "
                               f"first N-1 dimensions of boundaries tensor and input value tensor "
                               f"must match, but we got boundaries tensor {list(seq.shape)} and "
                               f"input value tensor {list(vals.shape)}")
    if sorter is not None:
        s = sorter._data if isinstance(sorter._data, type(seq)) else xp.asarray(sorter._data)
        if s.shape != seq.shape:
            raise RuntimeError(f"searchsorted(): boundary and sorter must have the same size, but "
                               f"got boundary tensor {list(seq.shape)} and got sorter tensor "
                               f"{list(s.shape)}")
        if s.dtype != np.int64:
            raise RuntimeError(f"searchsorted(): sorter must be a tensor of long dtype but got "
                               f"dtype {sorter.dtype.name}")
        if s.size and (builtins.int(s.min()) < 0 or builtins.int(s.max()) >= seq.shape[-1]):
            raise RuntimeError("searchsorted(): sorter index out of range")
        seq = xp.take_along_axis(seq, s, -1)
    side = "right" if right else "left"
    pos = xp.searchsorted(seq, vals, side=side) if seq.ndim == 1 else \
        _rows_search(xp, seq, vals, side)
    return Tensor._make(xp.asarray(pos).astype(np.int32 if out_int32 else np.int64), None, 0)


@register(method=False, differentiable=False)
def bucketize(input, boundaries: Tensor, *, out_int32: bool = False,
              right: bool = False) -> Tensor:
    """For each value v, the index i of its bucket among the 1-d sorted `boundaries`:
    boundaries[i-1] < v <= boundaries[i], or boundaries[i-1] <= v < boundaries[i] with
    right=True."""
    if boundaries._data.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim"
                           f"({boundaries._data.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


@register(differentiable=False)
def unique_consecutive(input: Tensor, return_inverse: bool = False, return_counts: bool = False,
                       dim=None):
    """Collapse each run of equal consecutive elements (slices along `dim`, when given) to one;
    optionally also the run each element falls in (inverse) and the runs' lengths (counts)."""
    x = input._data
    xp = xp_of(x)
    if dim is None:
        rows = x.reshape(-1, 1)
        inv_shape = x.shape
    else:
        if x.ndim == 0:
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
        d = norm_dim(dim, x.ndim, "unique_consecutive")
        if x.size == 0 and x.shape[d] != 0:
            raise RuntimeError("There are 0 sized dimensions, and they aren't selected, so unique "
                               "cannot be applied")
        moved = xp.moveaxis(x, d, 0)
        rows = moved.reshape(moved.shape[0], builtins.int(np.prod(moved.shape[1:])))
        inv_shape = (moved.shape[0],)
    n = rows.shape[0]
    start = xp.ones(n, bool)
    if n > 1:
        start[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    if dim is None:
        values = x.reshape(-1)[start]
    else:
        values = xp.moveaxis(moved[start], 0, d)
    out = [Tensor._make(values, None, 0)]
    if return_inverse:
        inverse = (xp.cumsum(start) - 1).astype(np.int64)
        out.append(Tensor._make(inverse.reshape(inv_shape), None, 0))
    if return_counts:
        firsts = xp.nonzero(start)[0]
        ends = xp.concatenate([firsts[1:], xp.asarray([n], firsts.dtype)]) if n else firsts
        out.append(Tensor._make((ends - firsts).astype(np.int64), None, 0))
    return out[0] if len(out) == 1 else tuple(out)
