"""The numba kernels behind `framework._jit` (imported only through `_jit.kernels()`).

Conventions: every kernel works on rows [r0, r1) of C-contiguous 2-D arrays, so that
`parallel_ranges` can hand row ranges to several threads; kernels that reduce over rows
(batch-norm statistics, the affine gradients of layer norm) add into per-call accumulator
arrays that the caller sums. Statistics are accumulated in float64 whatever the input dtype
(a float32 running sum over 65,536 rows would lose three digits); elementwise results are
computed in the array's dtype: per-row and per-channel coefficients are first stored into
arrays of that dtype, so the inner loops stay in float32 for float32 data and vectorise.

fastmath is limited to reassociation and contraction (vectorised sums, fused multiply-adds):
NaN and infinity propagate as in the NumPy formulation.
"""
from __future__ import annotations

import math

import numba

_FM = {"reassoc", "contract"}
_jit = numba.njit(nogil=True, cache=True, fastmath=_FM)


# ---------------------------------------------------------------------------- softmax (last dim)
@_jit
def softmax_shift_rows(x, y, r0, r1):
    """y[i] = x[i] - max(x[i]) (then exp in place by NumPy, whose exp is vectorised)."""
    d = x.shape[1]
    for i in range(r0, r1):
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
    d = e.shape[1]
    for i in range(r0, r1):
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
    d = y.shape[1]
    for i in range(r0, r1):
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
    d = x.shape[1]
    for i in range(r0, r1):
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
    d = x.shape[1]
    for i in range(r0, r1):
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
    c = x.shape[1]
    for i in range(r0, r1):
        for j in range(c):
            t = x[i, j] - shift[j]
            s1[j] += t
            s2[j] += t * t


@_jit
def channel_affine(x, k, c0, y, r0, r1):
    """y = x * k + c0 per channel (k, c0 of x's dtype), rows [r0, r1)."""
    c = x.shape[1]
    for i in range(r0, r1):
        for j in range(c):
            y[i, j] = x[i, j] * k[j] + c0[j]


@_jit
def channel_grad_sums(g, x, mean, gsum, gdot, r0, r1):
    """gsum += sum(g), gdot += sum(g * (x - mean)) per channel over rows [r0, r1), float64."""
    c = x.shape[1]
    for i in range(r0, r1):
        for j in range(c):
            gj = g[i, j]
            gsum[j] += gj
            gdot[j] += gj * (x[i, j] - mean[j])


@_jit
def channel_affine2(g, x, a, bb, c0, y, r0, r1):
    """y = g * a + x * bb + c0 per channel (the batch-norm input gradient), rows [r0, r1)."""
    c = x.shape[1]
    for i in range(r0, r1):
        for j in range(c):
            y[i, j] = g[i, j] * a[j] + x[i, j] * bb[j] + c0[j]
