"""The numba kernels behind `framework._jit` (imported only through `_jit.kernels()`).

Conventions: every kernel works on rows [r0, r1) of C-contiguous 2-D arrays, so that
`parallel_ranges` can hand row ranges to several threads; kernels that reduce over rows
(batch-norm statistics, the affine gradients of layer norm) add into per-call accumulator
arrays that the caller sums. Statistics are accumulated in float64 whatever the input dtype
(a float32 running sum over 65,536 rows would lose three digits); elementwise results are
computed in the array's dtype: per-row and per-channel coefficients are first stored into
arrays of that dtype, so the inner loops stay in float32 for float32 data and vectorise.

fastmath is limited to reassociation and contraction (vectorised sums, fused multiply-adds):
NaN and infinity propagate as in the NumPy formulation. Two habits keep LLVM vectorising:
error_model="numpy" (a float division by zero gives inf/NaN instead of raising, which would
put a branch in every loop), and loops over views sliced to the range, counted from 0 (an
index that may be negative carries a wraparound branch).
"""
from __future__ import annotations

import math

import numba
import numpy as np

_FM = {"reassoc", "contract"}
_jit = numba.njit(nogil=True, cache=True, fastmath=_FM, error_model="numpy")


# ---------------------------------------------------------------------------- softmax (last dim)
@_jit
def softmax_shift_rows(x, y, r0, r1):
    """y[i] = x[i] - max(x[i]) (then exp in place by NumPy, whose exp is vectorised)."""
    x, y = x[r0:r1], y[r0:r1]
    d = x.shape[1]
    for i in range(x.shape[0]):
        m = x[i, 0]
        for j in range(1, d):
            v = x[i, j]
            if v > m:  # a NaN anywhere in the row makes the whole row NaN below anyway
                m = v
        for j in range(d):
            y[i, j] = x[i, j] - m


@_jit
def softmax_normalize_rows(e, inv, r0, r1):
    """e[i] /= sum(e[i]) in place; inv is a scratch vector of e's dtype (one per row)."""
    e, inv = e[r0:r1], inv[r0:r1]
    d = e.shape[1]
    for i in range(e.shape[0]):
        s = 0.0
        for j in range(d):
            s += e[i, j]
        inv[i] = 1.0 / s
        k = inv[i]
        for j in range(d):
            e[i, j] *= k


@_jit
def softmax_backward_rows(y, g, gx, dot, r0, r1):
    """gx[i] = y[i] * (g[i] - sum(g[i] * y[i])); dot is a scratch vector of y's dtype."""
    y, g, gx, dot = y[r0:r1], g[r0:r1], gx[r0:r1], dot[r0:r1]
    d = y.shape[1]
    for i in range(y.shape[0]):
        s = 0.0
        for j in range(d):
            s += g[i, j] * y[i, j]
        dot[i] = s
        k = dot[i]
        for j in range(d):
            gx[i, j] = y[i, j] * (g[i, j] - k)


# ---------------------------------------------------------------------------- layer / RMS norm
@_jit
def norm_rows_forward(x, w, b, y, mean, rstd, eps, center, r0, r1):
    """Row-wise normalisation of x (R, D): mean[i], rstd[i] = 1/sqrt(var + eps) (biased
    variance; mean 0 and the mean square when not `center`, as RMS norm), then
    y[i] = (x[i] - mean[i]) * rstd[i] * w + b. w and b are (D,) arrays (ones and zeros
    when the norm has none)."""
    x, y, mean, rstd = x[r0:r1], y[r0:r1], mean[r0:r1], rstd[r0:r1]
    d = x.shape[1]
    for i in range(x.shape[0]):
        mu = 0.0
        if center:
            s = 0.0
            for j in range(d):
                s += x[i, j]
            mu = s / d
        q = 0.0
        for j in range(d):
            t = x[i, j] - mu
            q += t * t
        mean[i] = mu
        rstd[i] = 1.0 / math.sqrt(q / d + eps)
        m, r = mean[i], rstd[i]
        for j in range(d):
            y[i, j] = (x[i, j] - m) * r * w[j] + b[j]


@_jit
def norm_rows_backward(x, g, w, mean, rstd, gx, gw_acc, gb_acc, proj, center, want_x, r0, r1):
    """Gradients of norm_rows_forward for rows [r0, r1): gx (when want_x) and the affine
    gradients added into the float64 accumulators gw_acc += sum_i g[i] * xhat[i],
    gb_acc += sum_i g[i]. proj is a (R, 2) scratch array of x's dtype."""
    x, g, mean, rstd, proj = x[r0:r1], g[r0:r1], mean[r0:r1], rstd[r0:r1], proj[r0:r1]
    if want_x:
        gx = gx[r0:r1]
    d = x.shape[1]
    for i in range(x.shape[0]):
        m, r = mean[i], rstd[i]
        a = 0.0
        c = 0.0
        for j in range(d):
            xh = (x[i, j] - m) * r
            gj = g[i, j]
            gw_acc[j] += gj * xh
            gb_acc[j] += gj
            dxh = gj * w[j]
            a += dxh * xh
            c += dxh
        if want_x:
            proj[i, 0] = a / d
            proj[i, 1] = c / d if center else 0.0
            pa, pc = proj[i, 0], proj[i, 1]
            for j in range(d):
                xh = (x[i, j] - m) * r
                gx[i, j] = r * (g[i, j] * w[j] - pc - xh * pa)


# ---------------------------------------------------------------------------- batch norm (rows)
@_jit
def channel_moments(x, shift, s1, s2, r0, r1):
    """For the rows [r0, r1) of x (M, C): s1 += sum(x - shift), s2 += sum((x - shift)**2) per
    channel, in float64 (shift, a typical value per channel, keeps the variance formula
    s2/n - (s1/n)**2 free of cancellation)."""
    x = x[r0:r1]
    c = x.shape[1]
    for i in range(x.shape[0]):
        for j in range(c):
            t = x[i, j] - shift[j]
            s1[j] += t
            s2[j] += t * t


@_jit
def channel_affine(x, k, c0, y, r0, r1):
    """y = x * k + c0 per channel (k, c0 of x's dtype), rows [r0, r1)."""
    x, y = x[r0:r1], y[r0:r1]
    c = x.shape[1]
    for i in range(x.shape[0]):
        for j in range(c):
            y[i, j] = x[i, j] * k[j] + c0[j]


@_jit
def channel_grad_sums(g, x, mean, gsum, gdot, r0, r1):
    """gsum += sum(g), gdot += sum(g * (x - mean)) per channel over rows [r0, r1), float64."""
    g, x = g[r0:r1], x[r0:r1]
    c = x.shape[1]
    for i in range(x.shape[0]):
        for j in range(c):
            gj = g[i, j]
            gsum[j] += gj
            gdot[j] += gj * (x[i, j] - mean[j])


@_jit
def channel_affine2(g, x, a, bb, c0, y, r0, r1):
    """y = g * a + x * bb + c0 per channel (the batch-norm input gradient), rows [r0, r1)."""
    g, x, y = g[r0:r1], x[r0:r1], y[r0:r1]
    c = x.shape[1]
    for i in range(x.shape[0]):
        for j in range(c):
            y[i, j] = g[i, j] * a[j] + x[i, j] * bb[j] + c0[j]


# ---------------------------------------------------------------------------- row scatter-add
@_jit
def scatter_add_rows(out, idx, g):
    """out[idx[i]] += g[i] for the rows of g (n, D) in order (the adjoint of a row gather,
    e.g. an embedding lookup): one pass, no sort."""
    d = g.shape[1]
    for i in range(g.shape[0]):
        r = idx[i]
        for j in range(d):
            out[r, j] += g[i, j]


# ---------------------------------------------------------------------------- optimizers
@numba.njit(nogil=True, cache=True, error_model="numpy")  # no contraction: NumPy's roundings
def adam_update(p, g, m, v, shrink, w1, beta2, w2, eps, step_size, bc2_sqrt, i0, i1):
    """One Adam/AdamW step over elements [i0, i1) of flat parameter, gradient and state
    arrays, in place, in the order of operations of `optim._functional._adam_one` (PyTorch's
    single-tensor update) for its common case: no maximize, no L2 weight decay (shrink =
    1 - lr * weight_decay is the decoupled one, 1 without), no amsgrad and 1 - beta1 < 0.5.
    The scalars are computed by the caller in float64 and passed in the arrays' dtype, as
    NumPy casts a Python float, so float32 state is updated in float32 as there."""
    p, g, m, v = p[i0:i1], g[i0:i1], m[i0:i1], v[i0:i1]
    for i in range(p.size):
        gi, mi, vi = g[i], m[i], v[i]
        pi = p[i] * shrink
        mi = mi + (gi - mi) * w1  # exp_avg.lerp_(grad, 1 - beta1)
        vi = vi * beta2 + gi * w2 * gi
        pi -= mi / (np.sqrt(vi) / bc2_sqrt + eps) * step_size
        p[i], m[i], v[i] = pi, mi, vi
