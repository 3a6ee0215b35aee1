"""Fixed sparse linear maps along one axis, and flat-index gathers over the spatial dims.

`AxisGather` computes out = sum_t take(x, idx[t], axis) * weight[t]: with one tap and unit
weights it is a reindexing (nearest-neighbour resize, reflect/replicate/circular padding), with
two or four taps a linear or cubic interpolation, with a window of taps an adaptive average.
`AxisScatter` is its adjoint (the gradient), summing each output back into the positions it
was read from; the pair are each other's backward, so everything built on them is
differentiable to any order. The adjoint of a take is a segment sum (`np.add.reduceat` over
the positions sorted by index), not a Python loop or an unbuffered `np.add.at`.

`SpatialGather` / `SpatialScatter` do the same for flat indices into the spatial dims of an
(N, C, *S) tensor (adaptive max pooling, max_unpool).
"""
from __future__ import annotations

import numpy as np

from .. import _jit
from .._backend import scatter_add_into, xp_of
from ..autograd.function import Op
from .conv import from_channels_last, is_channels_last, to_channels_last


class AxisMap:
    """The taps of a sparse map along one axis: `idx` (taps, n_out) int positions into an
    axis of length `n_in`, `weight` (taps, n_out) floats or None for ones. The segment-sum
    plan of the adjoint is precomputed once per tap (on the host: index arrays are small)."""

    def __init__(self, idx, weight, n_in):
        self.idx = np.asarray(idx, dtype=np.int64).reshape(-1, np.shape(idx)[-1])
        self.weight = None if weight is None else \
            np.asarray(weight, dtype=np.float64).reshape(self.idx.shape)
        self.n_in = int(n_in)
        self.n_out = self.idx.shape[1]
        self._plans = None
        self._dev = {}

    def plans(self):
        if self._plans is None:
            plans = []
            for row in self.idx:
                if np.all(row[1:] >= row[:-1]):
                    order = None
                    srt = row
                else:
                    order = np.argsort(row, kind="stable")
                    srt = row[order]
                uniq, starts = np.unique(srt, return_index=True)
                plans.append((order, uniq, starts))
            self._plans = plans
        return self._plans

    def on(self, xp, dtype):
        """(idx, weight) arrays on the array module `xp` (cached per dtype)."""
        key = (xp.__name__, np.dtype(dtype).str)
        hit = self._dev.get(key)
        if hit is None:
            w = None if self.weight is None else xp.asarray(self.weight.astype(dtype))
            hit = self._dev[key] = (xp.asarray(self.idx), w)
        return hit


def take(xp, a, idx, axis):
    """xp.take along `axis`; NumPy's mode='clip' skips the bounds-check buffering (the
    indices here are valid by construction). CuPy's take has no mode."""
    if xp is np:
        return np.take(a, idx, axis=axis, mode="clip")
    return xp.take(a, idx, axis=axis)


def _bshape(ndim, axis, n):
    s = [1] * ndim
    s[axis] = n
    return tuple(s)


def _cl_axis(axis, ndim):
    """The axis of an (N, C, *S) array's dim `axis` in its channels-last (N, *S, C) view."""
    return 0 if axis == 0 else ndim - 1 if axis == 1 else axis - 1


def axis_gather(x, amap: AxisMap, axis: int):
    if is_channels_last(x):  # gather in the channels-last view: rows of C stay contiguous
        return from_channels_last(axis_gather(to_channels_last(x), amap, _cl_axis(axis, x.ndim)))
    xp = xp_of(x)
    idx, w = amap.on(xp, x.dtype)
    out = None
    for t in range(idx.shape[0]):
        v = take(xp, x, idx[t], axis)
        if w is not None:
            v *= w[t].reshape(_bshape(x.ndim, axis, amap.n_out))
        if out is None:
            out = v
        else:
            out += v
    return out


def axis_scatter(g, amap: AxisMap, axis: int):
    if is_channels_last(g):
        return from_channels_last(axis_scatter(to_channels_last(g), amap, _cl_axis(axis, g.ndim)))
    xp = xp_of(g)
    shape = list(g.shape)
    shape[axis] = amap.n_in
    out = xp.zeros(tuple(shape), g.dtype)
    idx, w = amap.on(xp, g.dtype)
    jk = _jit.kernels() if axis == 0 and w is None and g.ndim else None
    if jk is not None and _jit.eligible(g, out):
        g2, out2 = g.reshape(g.shape[0], -1), out.reshape(out.shape[0], -1)
        for t in range(idx.shape[0]):  # a row scatter-add in index order: no sort
            jk.scatter_add_rows(out2, idx[t], g2)
        return out
    lead = (slice(None),) * axis
    for t in range(idx.shape[0]):
        v = g if w is None else g * w[t].reshape(_bshape(g.ndim, axis, amap.n_out))
        if xp is np:
            order, uniq, starts = amap.plans()[t]
            if order is not None:
                v = np.take(v, order, axis=axis, mode="clip")
            if len(uniq) == amap.n_out:
                seg = v  # every index appears once: no sums to form
            else:
                seg = np.add.reduceat(v, starts, axis=axis)
            out[lead + (uniq,)] += seg  # unique targets: a buffered add is exact
        else:
            scatter_add_into(xp, out, lead + (idx[t],), v)
    return out


class AxisGather(Op):
    def forward(self, x):
        return axis_gather(x, self.amap, self.axis)

    def backward(self, g):
        return (AxisScatter.apply(g, amap=self.amap, axis=self.axis),)


class AxisScatter(Op):
    def forward(self, g):
        return axis_scatter(g, self.amap, self.axis)

    def backward(self, gg):
        return (AxisGather.apply(gg, amap=self.amap, axis=self.axis),)


# ---------------------------------------------------------------------------- flat spatial
def spatial_gather(x, flat):
    """x (N, C, *S), flat (N, C, *O) int64 positions in prod(S) -> (N, C, *O)."""
    xp = xp_of(x)
    n, c = x.shape[:2]
    src = x.reshape(n, c, -1)
    out = xp.take_along_axis(src, flat.reshape(n, c, -1), axis=2)
    return out.reshape(flat.shape)


def spatial_scatter(g, flat, in_sp):
    """Adjoint of spatial_gather: sums g into zeros (N, C, *in_sp) at the flat positions."""
    xp = xp_of(g)
    n, c = g.shape[:2]
    size = 1
    for s in in_sp:
        size *= int(s)
    rows = xp.arange(n * c, dtype=np.int64).reshape(n, c, *([1] * (flat.ndim - 2))) * size
    target = (flat + rows).reshape(-1)
    vals = g.reshape(-1)
    if g.dtype.kind == "f":
        out = xp.bincount(target, weights=vals, minlength=n * c * size).astype(g.dtype,
                                                                               copy=False)
    else:
        out = xp.zeros(n * c * size, g.dtype)
        scatter_add_into(xp, out, (target,), vals)
    return out.reshape((n, c) + tuple(in_sp))


class SpatialGather(Op):
    def forward(self, x):
        self.in_sp = x.shape[2:]
        return spatial_gather(x, self.flat)

    def backward(self, g):
        return (SpatialScatter.apply(g, flat=self.flat, in_sp=self.in_sp),)


class SpatialScatter(Op):
    def forward(self, g):
        return spatial_scatter(g, self.flat, self.in_sp)

    def backward(self, gg):
        return (SpatialGather.apply(gg, flat=self.flat),)
