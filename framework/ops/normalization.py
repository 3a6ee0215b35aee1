"""Normalization: batch_norm, instance_norm, layer_norm, group_norm, rms_norm (one fused op,
`Normalize`, with a hand-written backward), plus normalize and local_response_norm.

Every norm is the same computation on a view of the input: statistics over some axes `A` of
the view, an affine weight broadcast over the others. The view is chosen so that no
transposing copy is needed: batch norm over a channels-last activation reduces the rows of an
(M, C) matrix (sums are a BLAS gemv, sums of products an einsum), over an (N, C, *S) one it
reduces axes (0, 2) of (N, C, L). The backward is the closed form
    dx = invstd * (dxhat - mean_A(dxhat) - xhat * mean_A(dxhat * xhat)),  dxhat = dy * w,
on arrays; when a graph of the backward is wanted (create_graph) the same formula runs on
Tensors instead, so the norms are twice differentiable. On the CPU with numba, the layouts the
convolutions produce take compiled kernels: batch norm of channels-last rows, and instance,
group and batch norm of images-last (and group/instance of channels-last) activations through
`_Cells` (per-column moments of contiguous blocks, combined per group).

A bfloat16 input is normalized in float32 and the output rounded once to bfloat16
(`_bfloat16.bfloat16_in_float32`), with float32 weights and running statistics (autocast)
kept float32, as PyTorch's mixed-dtype CPU kernels do.
"""
from __future__ import annotations

import numpy as np

from .. import _cuda_kernels, _jit
from .._backend import xp_of
from .._parallel import JIT_PARALLEL_ELEMENTS, parallel_ranges
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from .conv import (empty_like_layout, from_channels_last, from_images_last, is_channels_last,
                   is_images_last, prod, to_channels_last, to_images_last)
from ._bfloat16 import bfloat16_in_float32
from ._functional_registry import register_functional
from ._util import refuse_complex_backward
from ..amp import _AutocastState, autocast_op

_make = Tensor._make
_AUTOCAST = _AutocastState.enabled
_LETTERS = "abcdefgh"


# ============================================================================ views
class _View:
    """How a norm sees its input: `rows(arr)` gives the view (same memory order every call,
    copying only when an array's layout differs), `back(v)` restores the input's shape;
    `axes` are the statistics axes, `aff` the affine weight's broadcast shape in the view."""

    def __init__(self, kind, shape, axes, aff, groups=1):
        self.kind, self.shape, self.axes, self.aff, self.groups = kind, tuple(shape), axes, \
            tuple(aff), groups
        self.red = tuple(i for i, s in enumerate(self.aff) if s == 1)

    def rows(self, arr):
        xp = xp_of(arr)
        k = self.kind
        if k == "flat":  # (R, D): rows of the trailing normalized dims
            return arr.reshape(-1, self.aff[-1])
        if k == "bn2d":
            return arr
        if k == "bncl":
            cl = to_channels_last(arr)
            if not cl.flags.c_contiguous:
                cl = xp.ascontiguousarray(cl)
            return cl.reshape(-1, arr.shape[1])
        if k == "bnnc":
            return arr.reshape(arr.shape[0], arr.shape[1], -1)
        if k == "gncl":
            cl = to_channels_last(arr)
            if not cl.flags.c_contiguous:
                cl = xp.ascontiguousarray(cl)
            n, c = arr.shape[:2]
            return cl.reshape(n, -1, self.groups, c // self.groups)
        if k == "gnnc":
            n, c = arr.shape[:2]
            return arr.reshape(n, self.groups, c // self.groups, -1)
        raise AssertionError(k)

    def back(self, v):
        k = self.kind
        if k in ("bncl", "gncl"):
            n, c = self.shape[:2]
            return from_channels_last(v.reshape((n,) + self.shape[2:] + (c,)))
        return v.reshape(self.shape)

    def stat_count(self, vshape):
        return prod(vshape[a] for a in self.axes)


def _bn_view(x, logical=False):
    n, c = x.shape[:2]
    if x.ndim == 2:
        return _View("bn2d", x.shape, (0,), (1, c))
    if not logical and is_channels_last(x):
        return _View("bncl", x.shape, (0,), (1, c))
    return _View("bnnc", x.shape, (0, 2), (1, c, 1))


def _gn_view(x, groups, logical=False):
    n, c = x.shape[:2]
    if not logical and is_channels_last(x):
        return _View("gncl", x.shape, (1, 3), (1, 1, groups, c // groups), groups)
    return _View("gnnc", x.shape, (2, 3), (1, groups, c // groups, 1), groups)


class _Cells:
    """A norm's statistics on the layouts the convolutions produce, for the compiled kernels:
    x viewed as contiguous blocks (B, K, L) whose columns ("cells", a (B, L) grid) each lie in
    one statistics group and one channel. Per-cell moments and sums come from the kernels;
    this maps them to groups and channels and back:
    - "gn_il": group/instance norm, images-last (C, *S, N): blocks (C, S, N), cell (c, n);
    - "gn_cl": group/instance norm, channels-last (N, *S, C): blocks (N, S, C), cell (n, c);
    - "bn_il": batch norm, images-last: blocks (C, S', W*N), cell (c, l), one group per c.
    Groups are (N, G) for group norm and (C,) for batch norm."""

    def __init__(self, kind, shape, groups):
        self.kind, self.shape, self.groups = kind, tuple(shape), groups

    @staticmethod
    def of(arr, batch: bool, groups: int = 1):
        """The cells of `arr` for batch (or else group) norm, or None for other layouts."""
        if type(arr) is not np.ndarray or arr.ndim < 3 or arr.dtype not in _jit._FLOATS:
            return None
        if is_images_last(arr):
            return _Cells("bn_il" if batch else "gn_il", arr.shape, groups)
        if not batch and is_channels_last(arr):
            return _Cells("gn_cl", arr.shape, groups)
        return None

    def blocks(self, arr):
        n, c = self.shape[:2]
        if self.kind == "gn_cl":
            return to_channels_last(arr).reshape(n, -1, c)
        il = to_images_last(arr)
        if self.kind == "gn_il":
            return il.reshape(c, -1, n)
        return il.reshape(c, -1, self.shape[-1] * n)

    def layout_of(self, arr) -> bool:
        """Whether arr (of this shape) is laid out as the cells' blocks read it."""
        return is_channels_last(arr) if self.kind == "gn_cl" else is_images_last(arr)

    def back(self, blocks):
        n, c = self.shape[:2]
        if self.kind == "gn_cl":
            return from_channels_last(blocks.reshape((n,) + self.shape[2:] + (c,)))
        return from_images_last(blocks.reshape(self.shape[1:] + (n,)))

    def members(self, cells):
        """Per-cell values (B, L) as (*groups, members of a group)."""
        if self.kind == "bn_il":
            return cells
        n, c = self.shape[:2]
        nc = cells.T if self.kind == "gn_il" else cells
        return nc.reshape(n, self.groups, c // self.groups)

    def expand(self, per_group, dtype=np.float64):
        """Per-group values as a contiguous (B, L) array of `dtype` (each cell its group's)."""
        if self.kind == "bn_il":
            b, l_ = self.blocks_shape()
            return np.ascontiguousarray(np.broadcast_to(per_group[:, None], (b, l_)), dtype)
        nc = np.repeat(per_group, self.shape[1] // self.groups, axis=1)
        return np.ascontiguousarray(nc.T if self.kind == "gn_il" else nc, dtype)

    def channel(self, per_channel):
        """Per-channel values (C,) broadcast over the cells (B, L)."""
        return per_channel[None, :] if self.kind == "gn_cl" else per_channel[:, None]

    def channel_sum(self, cells):
        """Per-cell values summed over the cells of each channel: (C,)."""
        return cells.sum(0) if self.kind == "gn_cl" else cells.sum(1)

    def blocks_shape(self):
        n, c = self.shape[:2]
        if self.kind == "gn_cl":
            return n, c
        return (c, n) if self.kind == "gn_il" else (c, self.shape[-1] * n)


def _flat_view(x, d):
    return _View("flat", x.shape, (1,), (1, d))


# ============================================================================ reductions
def _rsum(v, axes):
    """Sum over `axes` (no keepdims); a gemv for the rows or columns of a matrix."""
    xp = xp_of(v)
    if v.ndim == 2 and v.flags.c_contiguous and v.dtype.kind == "f" and v.size:
        if axes == (0,):
            return xp.ones(v.shape[0], v.dtype) @ v
        if axes == (1,):
            return v @ xp.ones(v.shape[1], v.dtype)
    return v.sum(axis=axes)


def _rdot(a, b, axes):
    """sum(a * b) over `axes` without materialising the product (einsum)."""
    xp = xp_of(a)
    sub = _LETTERS[:a.ndim]
    out = "".join(ch for i, ch in enumerate(sub) if i not in axes)
    return xp.einsum(f"{sub},{sub}->{out}", a, b)


def _ordered_sum(parts):
    """Sum per-thread partial results (keyed by the start of their row range) in row order,
    so that the result does not depend on which thread finished first."""
    keys = sorted(parts)
    total = parts[keys[0]]
    for k in keys[1:]:
        total = total + parts[k]
    return total


# Elements from which a memory-bound pass splits between numba's OpenMP threads (a few
# microseconds to start; see _jit.omp_parts).
OMP_MIN_ELEMENTS = 1 << 15


def _omp_parts(v) -> int:
    """Parts for the prange kernels over the rows of v, or 0."""
    return _jit.omp_parts() if v.size >= OMP_MIN_ELEMENTS and v.shape[0] > 1 else 0


def _wide_factor(m):
    for r in (64, 32, 16, 8, 4, 2):
        if m % r == 0 and m // r >= 16:
            return r
    return 1


def _fold(v, wide, c):
    return v.reshape(wide, c).sum(axis=0) if wide > 1 else v


def _tile(xp, v, wide):
    return xp.tile(v, wide) if wide > 1 else v


def _keep(v, vshape, axes):
    return v.reshape(tuple(1 if i in axes else s for i, s in enumerate(vshape)))


# ============================================================================ the fused op
class Normalize(Op):
    """y = (x - mean) * invstd * w + b over a view of x (see `_View`); inputs (x[, w][, b]).

    Params: view, eps, center (False: RMS norm), has_w, has_b, fixed (None, or (mean, var)
    arrays over the view's non-statistics axes: normalize with given statistics, as batch
    norm in eval mode), running (None, or a callback receiving the batch mean and biased
    variance to update running statistics)."""

    save_inputs = "all"
    wide = 0  # > 0: batch-norm rows kept as a (M/wide, wide*C) array (see _bn_rows_forward)
    jit = None  # "rows" / "channels": the forward ran the compiled kernels (see _jit)
    stats = None  # with `jit`: the (mean, invstd) arrays the backward needs

    def forward(self, x, *wb):
        xp = xp_of(x)
        view = self.view
        v = view.rows(x)
        axes = view.axes
        w = wb[0] if self.has_w else None
        b = wb[-1] if self.has_b else None
        if self.fixed is None and self.center and view.kind in ("gnnc", "gncl", "bnnc"):
            cells = _Cells.of(x, view.kind == "bnnc", view.groups)
            jk = _jit.kernels()
            if cells is not None and jk is not None:
                blocks = cells.blocks(x)
                if blocks.shape[1] > 1:
                    return self._cells_forward_jit(jk, cells, blocks, w, b)
        if self.fixed is None and self.center and view.kind in ("bncl", "bn2d") and v.ndim == 2:
            jk = _jit.kernels()
            if jk is not None and v.shape[0] > 1 and _jit.eligible(v):
                return self._channels_forward_jit(jk, v, w, b)
            return self._bn_rows_forward(xp, v, w, b)
        if self.fixed is None and view.kind == "flat" and v.size and xp is not np and \
                self.center:
            res = _cuda_kernels.layer_norm_forward(v, w, b, self.eps)
            if res is not None:  # one fused kernel on the GPU
                y, mean, rstd = res
                self.jit, self.stats, self.invstd = "cuda_rows", (mean, rstd), rstd
                return view.back(y)
        if self.fixed is None and view.kind == "flat" and v.size:
            jk = _jit.kernels()
            if jk is not None and _jit.eligible(v):
                return self._rows_forward_jit(jk, v, w, b)
        if w is not None:
            w = w.reshape(view.aff)
        if b is not None:
            b = b.reshape(view.aff)
        if self.fixed is None:
            n = view.stat_count(v.shape)
            if self.center:
                mean = _rsum(v, axes) / n
                xc = v - _keep(mean, v.shape, axes)
            else:
                mean, xc = None, v
            var = _rdot(xc, xc, axes) / n
            invstd = 1.0 / xp.sqrt(var + self.eps)
            if self.running is not None:
                self.running(mean, var, n)
            inv_k = _keep(invstd, v.shape, axes)
            self.xc = self.xhat = None
            if self.center and view.red == axes:
                # batch norm: keep x - mean; y = (x - mean) * (invstd * w) + b in two passes
                self.xc = xc
                k = inv_k * w if w is not None else inv_k
                y = xc * k
                if b is not None:
                    y += b
            else:
                if self.center:
                    xc *= inv_k  # xc is ours: becomes xhat in place
                    xhat = xc
                else:
                    xhat = v * inv_k
                self.xhat = xhat
                if w is not None:
                    y = xhat * w
                    if b is not None:
                        y += b
                else:
                    y = xhat + b if b is not None else xhat.copy()
        else:
            mean, var = self.fixed
            invstd = 1.0 / xp.sqrt(var + self.eps)
            shape = tuple(view.aff)
            inv_k = invstd.reshape(shape)
            k = inv_k * w if w is not None else inv_k
            shift = -mean.reshape(shape) * k
            if b is not None:
                shift = shift + b
            y = v * k
            y += shift
            self.mean = mean.reshape(shape)
        self.invstd = invstd
        return view.back(y)

    # ------------------------------------------------------------------ compiled kernels
    def _rows_forward_jit(self, jk, v, w, b):
        """Layer / RMS norm over the rows of v (R, D) in one fused pass per row."""
        r, d = v.shape
        dt = v.dtype
        wv = np.ascontiguousarray(w.reshape(d), dtype=dt) if w is not None else np.ones(d, dt)
        bv = np.ascontiguousarray(b.reshape(d), dtype=dt) if b is not None else np.zeros(d, dt)
        y = np.empty_like(v)
        mean, rstd = np.empty(r, dt), np.empty(r, dt)
        eps, center = self.eps, self.center
        parallel_ranges(lambda a, e: jk.norm_rows_forward(v, wv, bv, y, mean, rstd, eps,
                                                          center, a, e), r, v.size,
                        JIT_PARALLEL_ELEMENTS)
        self.jit, self.stats, self.invstd = "rows", (mean, rstd), rstd
        return self.view.back(y)

    def _rows_backward_jit(self, x, w, g, want_x, want_w, want_b):
        jk = _jit.kernels()
        view = self.view
        v = view.rows(x._data)
        gv = np.ascontiguousarray(view.rows(g._data), dtype=v.dtype)
        r, d = v.shape
        dt = v.dtype
        wv = np.ascontiguousarray(w._data.reshape(d)) if w is not None else np.ones(d, dt)
        mean, rstd = self.stats
        gx = np.empty_like(v) if want_x else v  # v: a placeholder the kernel never writes
        proj = np.empty((r, 2), dt)
        parts = {}
        center = self.center

        def rows(a, e):
            acc = np.zeros((2, d))
            jk.norm_rows_backward(v, gv, wv, mean, rstd, gx, acc[0], acc[1], proj, center,
                                  want_x, a, e)
            parts[a] = acc
        parallel_ranges(rows, r, v.size, JIT_PARALLEL_ELEMENTS)
        acc = _ordered_sum(parts)
        gw = _make(acc[0].astype(dt).reshape(w._data.shape), None, 0) if want_w else None
        gb = _make(acc[1].astype(dt).reshape(self.b_shape), None, 0) if want_b else None
        gx = _make(view.back(gx), None, 0) if want_x else None
        return gx, gw, gb

    def _channels_forward_jit(self, jk, v, w, b):
        """Batch norm of channels-last rows v (M, C): one pass for the per-channel moments
        (float64, shifted by the first row), one for y = x * k + c."""
        m, c = v.shape
        dt = v.dtype
        shift = v[0].copy()
        omp = _omp_parts(v)
        if omp:
            per_part = np.zeros((omp, 2, c))
            jk.channel_moments_par(v, shift, per_part, omp)
            acc = _ordered_sum(dict(enumerate(per_part)))
        else:
            parts = {}

            def moments(a, e):
                acc = np.zeros((2, c))
                jk.channel_moments(v, shift, acc[0], acc[1], a, e)
                parts[a] = acc
            parallel_ranges(moments, m, v.size, JIT_PARALLEL_ELEMENTS)
            acc = _ordered_sum(parts)
        d1 = acc[0] / m
        mean = shift + d1
        var = np.maximum(acc[1] / m - d1 * d1, 0.0)
        invstd = 1.0 / np.sqrt(var + self.eps)
        if self.running is not None:
            self.running(mean.astype(dt), var.astype(dt), m)
        k = invstd * w.reshape(c) if w is not None else invstd
        c0 = -mean * k
        if b is not None:
            c0 += b.reshape(c)
        y = np.empty_like(v)
        k, c0 = k.astype(dt), c0.astype(dt)
        if omp:
            jk.channel_affine_par(v, k, c0, y, omp)
        else:
            parallel_ranges(lambda a, e: jk.channel_affine(v, k, c0, y, a, e), m, v.size,
                            JIT_PARALLEL_ELEMENTS)
        self.jit, self.stats, self.invstd = "channels", (mean, invstd), invstd.astype(dt)
        return self.view.back(y)

    def _channels_backward_jit(self, x, w, g, want_x, want_w, want_b):
        jk = _jit.kernels()
        view = self.view
        v = view.rows(x._data)
        gv = np.ascontiguousarray(view.rows(g._data), dtype=v.dtype)
        m, c = v.shape
        dt = v.dtype
        mean, inv = self.stats
        mean_dt = mean.astype(dt)
        omp = _omp_parts(v)
        if omp:
            per_part = np.zeros((omp, 2, c))
            jk.channel_grad_sums_par(gv, v, mean_dt, per_part, omp)
            gsum, gdot = _ordered_sum(dict(enumerate(per_part)))
        else:
            parts = {}

            def sums(a, e):
                acc = np.zeros((2, c))
                jk.channel_grad_sums(gv, v, mean_dt, acc[0], acc[1], a, e)
                parts[a] = acc
            parallel_ranges(sums, m, v.size, JIT_PARALLEL_ELEMENTS)
            gsum, gdot = _ordered_sum(parts)
        gw = _make((gdot * inv).astype(dt).reshape(w._data.shape), None, 0) if want_w else None
        gb = _make(gsum.astype(dt).reshape(self.b_shape), None, 0) if want_b else None
        gx = None
        if want_x:
            wv = w._data.reshape(c).astype(np.float64) if w is not None else 1.0
            k1 = wv * inv
            k2 = wv * gdot * (inv * inv * inv / m)
            k3 = wv * gsum * (inv / m)
            a_, bb, c0 = (np.broadcast_to(k1, (c,)).astype(dt), (-k2).astype(dt),
                          (mean * k2 - k3).astype(dt))
            dx = np.empty_like(v)
            if omp:
                jk.channel_affine2_par(gv, v, a_, bb, c0, dx, omp)
            else:
                parallel_ranges(lambda a, e: jk.channel_affine2(gv, v, a_, bb, c0, dx, a, e),
                                m, v.size, JIT_PARALLEL_ELEMENTS)
            gx = _make(view.back(dx), None, 0)
        return gx, gw, gb

    def _cells_forward_jit(self, jk, cells, blocks, w, b):
        """Group, instance or batch norm of an images-last or channels-last x on the blocks
        of `cells` (see _Cells): per-cell moments in float64 (one pass, shifted by the
        cell's first value), combined per group (equal counts: the mean of the means, the
        mean of variance + squared deviation from the group mean), then y = x * k + c0 with
        per-cell coefficients (one pass). It keeps x's layout."""
        nb, k_, nl = blocks.shape
        dt = blocks.dtype
        shift = blocks[:, 0, :].copy()
        s1, s2 = np.zeros((nb, nl)), np.zeros((nb, nl))
        omp = _omp_parts(blocks)
        if omp:
            jk.block_moments_par(blocks, shift, s1, s2, omp)
        else:
            parallel_ranges(lambda a, e: jk.block_moments(blocks, shift, s1, s2, a, e), nb,
                            blocks.size, JIT_PARALLEL_ELEMENTS)
        d1 = s1 / k_
        cm = cells.members(shift + d1)
        cv = cells.members(np.maximum(s2 / k_ - d1 * d1, 0.0))
        mean = cm.mean(axis=-1)
        var = (cv + (cm - mean[..., None]) ** 2).mean(axis=-1)
        invstd = 1.0 / np.sqrt(var + self.eps)
        if self.running is not None:
            self.running(mean.astype(dt), var.astype(dt), k_ * cm.shape[-1])
        mean_c, inv_c = cells.expand(mean), cells.expand(invstd)  # (B, L)
        k = inv_c * cells.channel(w.reshape(-1)) if w is not None else inv_c
        c0 = -mean_c * k
        if b is not None:
            c0 += cells.channel(b.reshape(-1))
        y = np.empty_like(blocks)
        kb, c0b = k.astype(dt), c0.astype(dt)
        if omp:
            jk.block_affine_par(blocks, kb, c0b, y, omp)
        else:
            parallel_ranges(lambda a, e: jk.block_affine(blocks, kb, c0b, y, a, e), nb,
                            blocks.size, JIT_PARALLEL_ELEMENTS)
        self.jit, self.stats, self.invstd = "cells", (cells, mean_c, inv_c), invstd.astype(dt)
        return cells.back(y)

    def _cells_backward_jit(self, x, w, g, want_x, want_w, want_b):
        """The backward of _cells_forward_jit: per-cell sums of dy and dy * (x - mean) in
        one pass, folded into per-channel (dw, db) and per-group sums, then dx = dy * a +
        x * bb + c0 with per-cell coefficients in a second (the closed form of the module
        docstring, with M values per group)."""
        jk = _jit.kernels()
        cells, mean_c, inv_c = self.stats
        xa, ga = x._data, g._data
        if ga.dtype != xa.dtype or not cells.layout_of(ga):
            gl = empty_like_layout(np, xa, xa.shape)  # dy in x's layout
            np.copyto(gl, ga)
            ga = gl
        blocks, gblocks = cells.blocks(xa), cells.blocks(ga)
        nb, k_, nl = blocks.shape
        dt = blocks.dtype
        meanb = mean_c.astype(dt)
        gsum, gdot = np.zeros((nb, nl)), np.zeros((nb, nl))
        omp = _omp_parts(blocks)
        if omp:
            jk.block_grad_sums_par(gblocks, blocks, meanb, gsum, gdot, omp)
        else:
            parallel_ranges(lambda a, e: jk.block_grad_sums(gblocks, blocks, meanb, gsum,
                                                            gdot, a, e), nb, blocks.size,
                            JIT_PARALLEL_ELEMENTS)
        gw = _make(cells.channel_sum(gdot * inv_c).astype(dt).reshape(w._data.shape), None,
                   0) if want_w else None
        gb = _make(cells.channel_sum(gsum).astype(dt).reshape(self.b_shape), None, 0) \
            if want_b else None
        gx = None
        if want_x:
            wv = cells.channel(w._data.reshape(-1).astype(np.float64)) if w is not None \
                else 1.0
            members = cells.members(wv * gsum)
            m = k_ * members.shape[-1]
            s1 = cells.expand(members.sum(-1))
            d = cells.expand(cells.members(wv * gdot).sum(-1))
            k1 = wv * inv_c
            k2 = inv_c ** 3 * d / m
            k3 = inv_c * s1 / m
            a_, bb, c0 = k1.astype(dt), (-k2).astype(dt), (mean_c * k2 - k3).astype(dt)
            dx = np.empty_like(blocks)
            if omp:
                jk.block_affine2_par(gblocks, blocks, a_, bb, c0, dx, omp)
            else:
                parallel_ranges(lambda a, e: jk.block_affine2(gblocks, blocks, a_, bb, c0, dx,
                                                              a, e), nb, blocks.size,
                                JIT_PARALLEL_ELEMENTS)
            gx = _make(cells.back(dx), None, 0)
        return gx, gw, gb

    def _bn_rows_forward(self, xp, v, w, b):
        """Batch norm of (M, C) rows (channels-last activations). Per-channel broadcasts over
        rows of only C elements run at a fraction of memory speed (one inner loop per row), so
        the rows are viewed `wide` at a time as (M/wide, wide*C) with coefficients tiled
        `wide` times, and reductions fold the wide*C partial sums back to C."""
        m, c = v.shape
        wide = _wide_factor(m) if v.flags.c_contiguous else 1
        vw = v.reshape(m // wide, wide * c)
        mean = _fold(_rsum(vw, (0,)), wide, c) / m
        xc = vw - _tile(xp, mean, wide)
        var = _fold(_rdot(xc, xc, (0,)), wide, c) / m
        invstd = 1.0 / xp.sqrt(var + self.eps)
        if self.running is not None:
            self.running(mean, var, m)
        k = invstd * w.reshape(c) if w is not None else invstd
        y = xc * _tile(xp, k, wide)
        if b is not None:
            y += _tile(xp, b.reshape(c), wide)
        self.xc, self.xhat, self.wide, self.invstd = xc, None, wide, invstd
        return self.view.back(y.reshape(m, c))

    def _bn_rows_backward(self, w, g, want_x, want_w, want_b):
        view = self.view
        xp = xp_of(g._data)
        gv = view.rows(g._data)
        m, c = gv.shape
        wide = self.wide
        gw_ = gv.reshape(m // wide, wide * c)
        xc = self.xc
        inv = self.invstd
        dotc = _fold(_rdot(gw_, xc, (0,)), wide, c)
        gsum = _fold(_rsum(gw_, (0,)), wide, c)
        gx = gw = gb = None
        if want_w:
            gw = _make((dotc * inv).reshape(w._data.shape), None, 0)
        if want_b:
            gb = _make(gsum.reshape(self.b_shape), None, 0)
        if want_x:
            wv = w._data.reshape(c) if w is not None else 1.0
            k1 = wv * inv
            k2 = wv * dotc * (inv * inv * inv / m)
            k3 = wv * gsum * (inv / m)
            dx = gw_ * _tile(xp, k1, wide)
            dx -= xc * _tile(xp, k2, wide)
            dx -= _tile(xp, k3, wide)
            gx = _make(view.back(dx.astype(gv.dtype, copy=False).reshape(m, c)), None, 0)
        return gx, gw, gb

    def backward(self, g):
        refuse_complex_backward(g, "normalization")
        saved = self.saved_tensors
        x = saved[0]
        w = saved[1] if self.has_w else None
        edges = self.next_edges
        want_x = edges[0] is not None
        want_w = self.has_w and edges[1] is not None
        want_b = self.has_b and edges[-1] is not None
        if _State.grad_enabled:
            gx, gw, gb = self._backward_graph(x, w, g, want_x, want_w, want_b)
        elif self.jit == "cuda_rows":
            view = self.view
            mean, rstd = self.stats
            dx, dw, db = _cuda_kernels.layer_norm_backward(
                view.rows(g._data), view.rows(x._data), mean, rstd,
                w._data.reshape(-1) if w is not None else None, want_w, want_b)
            gx = _make(view.back(dx), None, 0) if want_x else None
            gw = _make(dw.reshape(w._data.shape), None, 0) if want_w and dw is not None else None
            gb = _make(db.reshape(self.b_shape), None, 0) if want_b and db is not None else None
        elif self.jit == "rows":
            gx, gw, gb = self._rows_backward_jit(x, w, g, want_x, want_w, want_b)
        elif self.jit == "channels":
            gx, gw, gb = self._channels_backward_jit(x, w, g, want_x, want_w, want_b)
        elif self.jit == "cells":
            gx, gw, gb = self._cells_backward_jit(x, w, g, want_x, want_w, want_b)
        elif self.wide:
            gx, gw, gb = self._bn_rows_backward(w, g, want_x, want_w, want_b)
        else:
            gx, gw, gb = self._backward_arrays(x, w, g, want_x, want_w, want_b)
        out = [gx]
        if self.has_w:
            out.append(gw)
        if self.has_b:
            out.append(gb)
        return tuple(out)

    def _backward_arrays(self, x, w, g, want_x, want_w, want_b):
        view = self.view
        gv = view.rows(g._data)
        red = view.red
        axes = view.axes
        wa = w._data.reshape(view.aff) if w is not None else None
        gx = gw = gb = None
        if self.fixed is None and self.xc is not None:
            # statistics and affine share their axes (batch norm): per-channel coefficients
            xp = xp_of(gv)
            xc = self.xc
            inv = self.invstd
            dotc = _rdot(gv, xc, red)  # sum dy * (x - mean)
            gsum = _rsum(gv, red)
            if want_w:
                gw = _make((dotc * inv).reshape(w._data.shape), None, 0)
            if want_b:
                gb = _make(gsum.reshape(self.b_shape), None, 0)
            if want_x:
                n = view.stat_count(gv.shape)
                wv = wa.reshape(inv.shape) if wa is not None else 1.0
                k1 = wv * inv
                k2 = wv * dotc * (inv * inv * inv / n)
                k3 = wv * gsum * (inv / n)
                dx = gv * _keep(k1, gv.shape, axes)
                dx -= xc * _keep(k2, gv.shape, axes)
                dx -= _keep(k3, gv.shape, axes)
                gx = _make(view.back(dx.astype(gv.dtype, copy=False)), None, 0)
        elif self.fixed is None:
            xhat = self.xhat
            xp = xp_of(gv)
            if want_w:
                gw = _make(_rdot(gv, xhat, red).reshape(w._data.shape), None, 0)
            if want_b:
                gb = _make(_rsum(gv, red).reshape(self.b_shape), None, 0)
            if want_x:
                n = view.stat_count(gv.shape)
                dxhat = gv * wa if wa is not None else gv
                proj = _rdot(dxhat, xhat, axes)
                dx = xhat * _keep(proj / n, gv.shape, axes)
                if self.center:
                    dx += _keep(_rsum(dxhat, axes) / n, gv.shape, axes)
                xp.subtract(dxhat, dx, out=dx)
                dx *= _keep(self.invstd, gv.shape, axes)
                gx = _make(view.back(dx), None, 0)
        else:
            inv_k = self.invstd.reshape(view.aff)
            if want_w or want_b:
                gsum = _rsum(gv, red)
                if want_b:
                    gb = _make(gsum.reshape(self.b_shape), None, 0)
                if want_w:
                    v = view.rows(x._data)
                    dot = _rdot(gv, v, red)
                    mean = self.mean.reshape(dot.shape)
                    gw = _make(((dot - mean * gsum) * inv_k.reshape(dot.shape)).reshape(
                        w._data.shape), None, 0)
            if want_x:
                k = inv_k * wa if wa is not None else inv_k
                gx = _make(view.back(gv * k), None, 0)
        return gx, gw, gb

    def _backward_graph(self, x, w, g, want_x, want_w, want_b):
        """The same gradients from differentiable Tensor ops (for create_graph)."""
        lv = self.logical
        axes, aff = lv.axes, lv.aff
        red = lv.red
        xv = x.reshape(lv.tshape)
        gv = g.reshape(lv.tshape)
        wv = w.reshape(aff) if w is not None else None
        if self.fixed is None:
            if self.center:
                xc = xv - xv.mean(axes, keepdim=True)
            else:
                xc = xv
            invstd = ((xc * xc).mean(axes, keepdim=True) + self.eps).rsqrt()
            xhat = xc * invstd
            dxhat = gv * wv if wv is not None else gv
            gx = None
            if want_x:
                inner = dxhat - xhat * (dxhat * xhat).mean(axes, keepdim=True)
                if self.center:
                    inner = inner - dxhat.mean(axes, keepdim=True)
                gx = (invstd * inner).reshape(x.shape)
        else:
            xp = xp_of(x._data)
            mean = _make(xp.asarray(self.mean).reshape(aff), None, 0)
            invstd = _make(xp.asarray(self.invstd).reshape(aff), None, 0)
            xhat = (xv - mean) * invstd
            gx = (gv * (invstd * wv if wv is not None else invstd)).reshape(x.shape) \
                if want_x else None
        gw = (gv * xhat).sum(red).reshape(w.shape) if want_w else None
        gb = gv.sum(red).reshape(self.b_shape) if want_b else None
        return gx, gw, gb

    def _release_extra(self):
        self.xhat = self.xc = self.stats = None


class _Logical:
    """The view of a norm in logical (NC*) terms, for the Tensor-op backward."""

    def __init__(self, tshape, axes, aff):
        self.tshape, self.axes, self.aff = tuple(tshape), tuple(axes), tuple(aff)
        self.red = tuple(i for i, s in enumerate(self.aff) if s == 1)


def _affine_inputs(x, weight, bias, expect, opname):
    args = [x]
    for t, name in ((weight, "weight"), (bias, "bias")):
        if t is None:
            continue
        if tuple(t._data.shape) != tuple(expect) and t._data.size != prod(expect):
            raise RuntimeError(f"{opname}: expected {name} of shape {list(expect)}, got "
                               f"{list(t.shape)} (input {list(x.shape)})")
        if t._data.dtype != x._data.dtype:
            t = t.to(dtype=x.dtype)
        args.append(t)
    return args


def _float(x: Tensor, opname):
    if x._data.dtype.kind not in "fc":
        raise RuntimeError(f"{opname}: expected a floating point input, got {x.dtype.name}")
    return x


# ============================================================================ batch norm
def _running_updater(running_mean, running_var, momentum, unbias=True, per_instance=None):
    """A callback that folds the batch statistics into the running ones, in place (no grad),
    with PyTorch's unbiased running variance."""
    def update(mean, var, n):
        xp = xp_of(var)
        if per_instance is not None:  # instance norm: average the per-instance statistics
            mean = mean.reshape(per_instance).mean(axis=0) if mean is not None else None
            var = var.reshape(per_instance).mean(axis=0)
        if running_mean is not None and mean is not None:
            _blend(running_mean, mean, momentum)
        if running_var is not None:
            _blend(running_var, var * (n / (n - 1)) if unbias and n > 1 else var, momentum)
        del xp
    return update


def _blend(running, stat, momentum):
    """running = (1 - momentum) * running + momentum * stat, in place."""
    d = running._writable()
    if d.dtype.kind == "f":
        d *= 1.0 - momentum
        d += (momentum * stat).astype(d.dtype, copy=False).reshape(d.shape)
    else:  # bfloat16 statistics: blended in float32 and rounded once, as PyTorch's
        blend = d.astype(np.float32) * (1.0 - momentum) + momentum * stat.reshape(d.shape)
        d[...] = blend.astype(d.dtype)
    running._bump()


@register_functional("batch_norm")
@bfloat16_in_float32("input", "weight", "bias")
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-05) -> Tensor:
    """Batch normalization over dim 1 of (N, C, *S); in training mode the running
    statistics (when given) are updated in place with `momentum` and the unbiased variance."""
    x = _float(input, "batch_norm")
    if x._data.ndim < 2:
        raise ValueError(f"batch_norm: expected 2D or more input (got {x._data.ndim}D input)")
    c = x._data.shape[1]
    for t, name in ((running_mean, "running_mean"), (running_var, "running_var")):
        if t is not None and t._data.size != c:
            raise RuntimeError(f"batch_norm: {name} should contain {c} elements not "
                               f"{t._data.size}")
    if momentum is None:
        momentum = 0.0
    if training:
        n = x._data.size // max(c, 1)
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {list(x.shape)}")
        fixed = None
        running = _running_updater(running_mean, running_var, momentum) \
            if (running_mean is not None or running_var is not None) else None
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("batch_norm: running_mean and running_var must be defined in "
                               "evaluation mode")
        fixed = (running_mean._data.astype(x._data.dtype, copy=False),
                 running_var._data.astype(x._data.dtype, copy=False))
        running = None
    args = _affine_inputs(x, weight, bias, (c,), "batch_norm")
    view = _bn_view(x._data)
    lshape = (x._data.shape[0], c, -1) if x._data.ndim > 2 else (x._data.shape[0], c, 1)
    return Normalize.apply(*args, view=view, eps=float(eps), center=True,
                           has_w=weight is not None, has_b=bias is not None, fixed=fixed,
                           running=running, b_shape=(c,),
                           logical=_Logical(lshape, (0, 2), (1, c, 1)))


@register_functional("instance_norm")
@bfloat16_in_float32("input", "weight", "bias")
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-05) -> Tensor:
    """Normalization of each (sample, channel) over its spatial dims."""
    x = _float(input, "instance_norm")
    if x._data.ndim < 3:
        raise ValueError(f"instance_norm: expected 3D or more input (got {x._data.ndim}D input)")
    n, c = x._data.shape[:2]
    if not use_input_stats:
        return batch_norm(x, running_mean, running_var, weight, bias, False, momentum, eps)
    spatial = prod(x._data.shape[2:])
    if spatial <= 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                         f"{list(x.shape)}")
    running = None
    if running_mean is not None or running_var is not None:
        running = _running_updater(running_mean, running_var,
                                   0.0 if momentum is None else momentum, per_instance=(n, c))
    args = _affine_inputs(x, weight, bias, (c,), "instance_norm")
    view = _gn_view(x._data, c)
    return Normalize.apply(*args, view=view, eps=float(eps), center=True,
                           has_w=weight is not None, has_b=bias is not None, fixed=None,
                           running=running, b_shape=(c,),
                           logical=_Logical((n, c, 1, -1), (2, 3), (1, c, 1, 1)))


@register_functional("group_norm")
@bfloat16_in_float32("input", "weight", "bias")
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05) -> Tensor:
    """Statistics over each group of channels (and the spatial dims) of each sample."""
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("group_norm", group_norm, input, num_groups, weight, bias, eps)
        if out is not None:
            return out
    x = _float(input, "group_norm")
    if x._data.ndim < 2:
        raise RuntimeError(f"group_norm: expected at least 2 dims, got input {list(x.shape)}")
    n, c = x._data.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, "
                           f"but got input of shape {list(x.shape)} and num_groups={num_groups}")
    args = _affine_inputs(x, weight, bias, (c,), "group_norm")
    view = _gn_view(x._data, num_groups) if x._data.ndim > 2 else \
        _View("gnnc", x._data.shape, (2, 3), (1, num_groups, c // num_groups, 1), num_groups)
    cg = c // num_groups
    return Normalize.apply(*args, view=view, eps=float(eps), center=True,
                           has_w=weight is not None, has_b=bias is not None, fixed=None,
                           running=None, b_shape=(c,),
                           logical=_Logical((n, num_groups, cg, -1), (2, 3),
                                            (1, num_groups, cg, 1)))


def _normalized_shape(x, normalized_shape, opname):
    ns = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else \
        tuple(int(s) for s in normalized_shape)
    k = len(ns)
    if k == 0 or tuple(x._data.shape[x._data.ndim - k:]) != ns or x._data.ndim < k:
        raise RuntimeError(f"Given normalized_shape={list(ns)}, expected input with shape "
                           f"[*, {', '.join(map(str, ns))}], but got input of size "
                           f"{list(x.shape)}")
    return ns


@register_functional("layer_norm")
@bfloat16_in_float32("input", "weight", "bias")
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05) -> Tensor:
    """Normalization over the trailing `normalized_shape` dims."""
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("layer_norm", layer_norm, input, normalized_shape, weight, bias, eps)
        if out is not None:
            return out
    x = _float(input, "layer_norm")
    ns = _normalized_shape(x, normalized_shape, "layer_norm")
    d = prod(ns)
    args = _affine_inputs(x, weight, bias, ns, "layer_norm")
    return Normalize.apply(*args, view=_flat_view(x._data, d), eps=float(eps), center=True,
                           has_w=weight is not None, has_b=bias is not None, fixed=None,
                           running=None, b_shape=ns, logical=_Logical((-1, d), (1,), (1, d)))


@register_functional("rms_norm")
@bfloat16_in_float32("input", "weight")
def rms_norm(input, normalized_shape, weight=None, eps=None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the trailing dims; eps defaults to the
    dtype's machine epsilon, as PyTorch's."""
    x = _float(input, "rms_norm")
    ns = _normalized_shape(x, normalized_shape, "rms_norm")
    d = prod(ns)
    if eps is None:
        eps = float(np.finfo(x._data.dtype).eps)
    args = _affine_inputs(x, weight, None, ns, "rms_norm")
    return Normalize.apply(*args, view=_flat_view(x._data, d), eps=float(eps), center=False,
                           has_w=weight is not None, has_b=False, fixed=None, running=None,
                           b_shape=ns, logical=_Logical((-1, d), (1,), (1, d)))


@register_functional("normalize")
def normalize(input, p=2.0, dim=1, eps=1e-12, out=None) -> Tensor:
    """input / max(||input||_p over dim, eps)."""
    denom = input.norm(p, dim, keepdim=True).clamp_min(eps).expand_as(input)
    res = input / denom
    if out is not None:
        out.copy_(res)
        return out
    return res


@register_functional("local_response_norm")
def local_response_norm(input, size, alpha=0.0001, beta=0.75, k=1.0) -> Tensor:
    """x / (k + alpha/size * sum of squares over `size` neighbouring channels) ** beta."""
    from .pooling import avg_pool2d, avg_pool3d
    from .sampling import pad
    dim = input._data.ndim
    if dim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {dim} dimensions)")
    if input._data.size == 0:
        return input
    div = (input * input).unsqueeze(1)
    if dim == 3:
        div = pad(div, (0, 0, size // 2, (size - 1) // 2))
        div = avg_pool2d(div, (size, 1), stride=1).squeeze(1)
    else:
        sizes = input.shape
        div = div.reshape(sizes[0], 1, sizes[1], sizes[2], -1)
        div = pad(div, (0, 0, 0, 0, size // 2, (size - 1) // 2))
        div = avg_pool3d(div, (size, 1, 1), stride=1).squeeze(1)
        div = div.reshape(sizes)
    div = (div * alpha + k) ** beta
    return input / div


__all__ = ["batch_norm", "instance_norm", "group_norm", "layer_norm", "rms_norm", "normalize",
           "local_response_norm"]
