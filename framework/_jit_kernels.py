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
_par = numba.njit(nogil=True, cache=True, fastmath=_FM, error_model="numpy", parallel=True)


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


# The same over `parts` row ranges on numba's OpenMP threads (see _jit.omp_parts); the sums
# go to acc[part] (parts, 2, C), added in part order by the caller.
@_par
def channel_moments_par(x, shift, acc, parts):
    m = x.shape[0]
    for i in numba.prange(parts):
        channel_moments(x, shift, acc[i, 0], acc[i, 1], m * i // parts, m * (i + 1) // parts)


@_par
def channel_affine_par(x, k, c0, y, parts):
    m = x.shape[0]
    for i in numba.prange(parts):
        channel_affine(x, k, c0, y, m * i // parts, m * (i + 1) // parts)


@_par
def channel_grad_sums_par(g, x, mean, acc, parts):
    m = x.shape[0]
    for i in numba.prange(parts):
        channel_grad_sums(g, x, mean, acc[i, 0], acc[i, 1], m * i // parts,
                          m * (i + 1) // parts)


@_par
def channel_affine2_par(g, x, a, bb, c0, y, parts):
    m = x.shape[0]
    for i in numba.prange(parts):
        channel_affine2(g, x, a, bb, c0, y, m * i // parts, m * (i + 1) // parts)


# ---------------------------------------------------------------------------- ReLU (flat)
@_par
def relu_forward_par(x, y, mask, parts):
    """y = max(x, 0) as np.maximum gives it (NaN kept, -0.0 to 0.0), mask = not x <= 0 (true
    at NaN, as PyTorch's backward passes it), over flat arrays in `parts` ranges on numba's
    OpenMP threads."""
    n = x.size
    for i in numba.prange(parts):
        for j in range(n * i // parts, n * (i + 1) // parts):
            v = x[j]
            keep = not v <= 0
            mask[j] = keep
            y[j] = v if keep else 0


@_par
def mask_multiply_par(g, mask, out, parts):
    """out = g * mask (a bool mask as 1.0 / 0.0, as NumPy multiplies it), flat arrays."""
    n = g.size
    for i in numba.prange(parts):
        for j in range(n * i // parts, n * (i + 1) // parts):
            out[j] = g[j] * (1.0 if mask[j] else 0.0)


@_par
def leaky_relu_forward_par(x, y, slope, parts):
    """y = max(x, x * slope) as np.maximum gives it (slope in [0, 1]), flat arrays."""
    n = x.size
    for i in numba.prange(parts):
        for j in range(n * i // parts, n * (i + 1) // parts):
            v = x[j]
            u = v * slope
            y[j] = v if (v >= u or v != v) else u


@_par
def leaky_relu_backward_par(x, g, out, slope, parts):
    """out = g * max([x > 0], slope): g where x > 0, else g * slope, flat arrays."""
    n = x.size
    for i in numba.prange(parts):
        for j in range(n * i // parts, n * (i + 1) // parts):
            out[j] = g[j] * (1.0 if x[j] > 0 else slope)


# ---------------------------------------------------------------------------- group norm (blocks)
# Instance and group norm of an images-last (C, S, N) or channels-last (N, S, C) activation
# (the layouts the convolutions produce): x viewed as blocks (B, K, L), every cell (b, l) a
# column of K values; the cells' statistics and coefficients are (B, L) arrays. Each block is
# the batch-norm problem above with L channels.
@_jit
def block_moments(x, shift, s1, s2, b0, b1):
    """channel_moments of every block b in [b0, b1) of x (B, K, L)."""
    for b in range(b0, b1):
        channel_moments(x[b], shift[b], s1[b], s2[b], 0, x.shape[1])


@_jit
def block_affine(x, k, c0, y, b0, b1):
    """y = x * k + c0 per cell, blocks [b0, b1)."""
    for b in range(b0, b1):
        channel_affine(x[b], k[b], c0[b], y[b], 0, x.shape[1])


@_jit
def block_grad_sums(g, x, mean, gsum, gdot, b0, b1):
    """channel_grad_sums of every block b in [b0, b1)."""
    for b in range(b0, b1):
        channel_grad_sums(g[b], x[b], mean[b], gsum[b], gdot[b], 0, x.shape[1])


@_jit
def block_affine2(g, x, a, bb, c0, y, b0, b1):
    """y = g * a + x * bb + c0 per cell, blocks [b0, b1)."""
    for b in range(b0, b1):
        channel_affine2(g[b], x[b], a[b], bb[b], c0[b], y[b], 0, x.shape[1])


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


# ---------------------------------------------------------------------------- direct convolution
# Images innermost: an (N, C, H, W) batch held as a C-contiguous (C, H, W, N) array, flat. A row
# (W, N) of one channel is then W*N contiguous values, and for a stride-1 2-D convolution the
# kernel tap t = (c, i, j) reads, for output row h, the run x[base[h] + off[t]:][:Wo*N] with
# off[t] = c*H*W*N + i*dh*W*N + j*dw*N and base[h] = h*W*N: every output pixel of the row, of
# every image, at once. So output row (o, h) is b[o] + sum_t w[o, t] * run_t, long contiguous
# runs that vectorise, with no columns built and nothing computed twice or for padding
# columns. In 3-D (C, D, H, W, N) the output rows are the (d, h) pairs, base = d*H*W*N +
# h*W*N, and a tap (c, i, j, k) adds i*dd*H*W*N to the offset: the kernels see only rows.
# The runs are summed 8 taps at a time into two output rows (each x value loaded once for
# both), so a pass over an output row does 16 multiply-adds per value stored.

@_jit
def _taps8_into2(a0, a1, x, base, offs, t, w0, w1):
    """a0 += sum_{k<8} w0[t+k] * x[base+offs[t+k]:], a1 likewise with w1 (rows of len(a0))."""
    u0, u1, u2, u3 = w0[t], w0[t + 1], w0[t + 2], w0[t + 3]
    u4, u5, u6, u7 = w0[t + 4], w0[t + 5], w0[t + 6], w0[t + 7]
    v0, v1, v2, v3 = w1[t], w1[t + 1], w1[t + 2], w1[t + 3]
    v4, v5, v6, v7 = w1[t + 4], w1[t + 5], w1[t + 6], w1[t + 7]
    x0, x1 = x[base + offs[t]:], x[base + offs[t + 1]:]
    x2, x3 = x[base + offs[t + 2]:], x[base + offs[t + 3]:]
    x4, x5 = x[base + offs[t + 4]:], x[base + offs[t + 5]:]
    x6, x7 = x[base + offs[t + 6]:], x[base + offs[t + 7]:]
    for p in range(a0.shape[0]):
        e0, e1, e2, e3 = x0[p], x1[p], x2[p], x3[p]
        e4, e5, e6, e7 = x4[p], x5[p], x6[p], x7[p]
        a0[p] += (u0 * e0 + u1 * e1 + u2 * e2 + u3 * e3 +
                  u4 * e4 + u5 * e5 + u6 * e6 + u7 * e7)
        a1[p] += (v0 * e0 + v1 * e1 + v2 * e2 + v3 * e3 +
                  v4 * e4 + v5 * e5 + v6 * e6 + v7 * e7)


@_jit
def _taps8_into1(a0, x, base, offs, t, w0):
    u0, u1, u2, u3 = w0[t], w0[t + 1], w0[t + 2], w0[t + 3]
    u4, u5, u6, u7 = w0[t + 4], w0[t + 5], w0[t + 6], w0[t + 7]
    x0, x1 = x[base + offs[t]:], x[base + offs[t + 1]:]
    x2, x3 = x[base + offs[t + 2]:], x[base + offs[t + 3]:]
    x4, x5 = x[base + offs[t + 4]:], x[base + offs[t + 5]:]
    x6, x7 = x[base + offs[t + 6]:], x[base + offs[t + 7]:]
    for p in range(a0.shape[0]):
        a0[p] += (u0 * x0[p] + u1 * x1[p] + u2 * x2[p] + u3 * x3[p] +
                  u4 * x4[p] + u5 * x5[p] + u6 * x6[p] + u7 * x7[p])


@_jit
def _taps4_into2(a0, a1, x, base, offs, t, w0, w1):
    u0, u1, u2, u3 = w0[t], w0[t + 1], w0[t + 2], w0[t + 3]
    v0, v1, v2, v3 = w1[t], w1[t + 1], w1[t + 2], w1[t + 3]
    x0, x1 = x[base + offs[t]:], x[base + offs[t + 1]:]
    x2, x3 = x[base + offs[t + 2]:], x[base + offs[t + 3]:]
    for p in range(a0.shape[0]):
        e0, e1, e2, e3 = x0[p], x1[p], x2[p], x3[p]
        a0[p] += u0 * e0 + u1 * e1 + u2 * e2 + u3 * e3
        a1[p] += v0 * e0 + v1 * e1 + v2 * e2 + v3 * e3


@_jit
def _taps4_into1(a0, x, base, offs, t, w0):
    u0, u1, u2, u3 = w0[t], w0[t + 1], w0[t + 2], w0[t + 3]
    x0, x1 = x[base + offs[t]:], x[base + offs[t + 1]:]
    x2, x3 = x[base + offs[t + 2]:], x[base + offs[t + 3]:]
    for p in range(a0.shape[0]):
        a0[p] += u0 * x0[p] + u1 * x1[p] + u2 * x2[p] + u3 * x3[p]


@_jit
def _tap1_into2(a0, a1, x, base, offs, t, w0, w1):
    u0, v0 = w0[t], w1[t]
    x0 = x[base + offs[t]:]
    for p in range(a0.shape[0]):
        e0 = x0[p]
        a0[p] += u0 * e0
        a1[p] += v0 * e0


@_jit
def _tap1_into1(a0, x, base, offs, t, w0):
    u0 = w0[t]
    x0 = x[base + offs[t]:]
    for p in range(a0.shape[0]):
        a0[p] += u0 * x0[p]


@_jit
def conv_taps_forward(x, wt, offs, bias, out, bases, h0, h1):
    """Rows [h0, h1) of out (O, Ho, R): out[o, h] = bias[o] + sum_t wt[o, t] *
    x[bases[h] + offs[t]:][:R], x the flat images-last input (see above), wt (O, T), offs (T,)
    and bases (Ho,) int64. Every tap is summed exactly (no padding taps: a zero weight times an
    infinite input would be NaN). The taps are the outer loop: a group's runs of x are read
    by every output channel while they are in cache, and the output rows of one h stay there
    (with thousands of taps, re-reading all of x for each output channel is cache-bound)."""
    n_out, _, r = out.shape
    n_taps = wt.shape[1]
    t8 = n_taps - n_taps % 8
    t4 = n_taps - n_taps % 4
    o2 = n_out - n_out % 2
    for h in range(h0, h1):
        base = bases[h]
        for o in range(n_out):
            a0, b0 = out[o, h], bias[o]
            for p in range(r):
                a0[p] = b0
        for t in range(0, t8, 8):
            for o in range(0, o2, 2):
                _taps8_into2(out[o, h], out[o + 1, h], x, base, offs, t, wt[o], wt[o + 1])
            if o2 < n_out:
                _taps8_into1(out[o2, h], x, base, offs, t, wt[o2])
        if t4 > t8:
            for o in range(0, o2, 2):
                _taps4_into2(out[o, h], out[o + 1, h], x, base, offs, t8, wt[o], wt[o + 1])
            if o2 < n_out:
                _taps4_into1(out[o2, h], x, base, offs, t8, wt[o2])
        for t in range(t4, n_taps):
            for o in range(0, o2, 2):
                _tap1_into2(out[o, h], out[o + 1, h], x, base, offs, t, wt[o], wt[o + 1])
            if o2 < n_out:
                _tap1_into1(out[o2, h], x, base, offs, t, wt[o2])


@_jit
def conv_taps_weight_grad(x, dy, offs, acc, bases, h0, h1):
    """acc[o, t] += sum over rows h in [h0, h1) of dy[o, h] . x[bases[h] + offs[t]:][:R]
    (the weight gradient of conv_taps_forward), dy (O, Ho, R), acc (O, T) float64 with T a
    multiple of 8 (offs padded with zeros: those sums are discarded). Each row's products
    are summed in x's dtype, 2 outputs x 8 taps at once (16 running sums over the row)."""
    n_out, _, r = dy.shape
    n_taps = acc.shape[1]
    for h in range(h0, h1):
        base = bases[h]
        for t in range(0, n_taps, 8):  # taps outer: as in conv_taps_forward
            x0, x1 = x[base + offs[t]:], x[base + offs[t + 1]:]
            x2, x3 = x[base + offs[t + 2]:], x[base + offs[t + 3]:]
            x4, x5 = x[base + offs[t + 4]:], x[base + offs[t + 5]:]
            x6, x7 = x[base + offs[t + 6]:], x[base + offs[t + 7]:]
            for o in range(0, n_out, 2):
                o1 = o + 1 if o + 1 < n_out else o  # an odd last output: summed twice, kept once
                d0, d1 = dy[o, h], dy[o1, h]
                z = d0[0]
                z -= z  # zero in x's dtype (a literal 0 would make the sums float64)
                s00 = s01 = s02 = s03 = s04 = s05 = s06 = s07 = z
                s10 = s11 = s12 = s13 = s14 = s15 = s16 = s17 = z
                for p in range(r):
                    f0, f1 = d0[p], d1[p]
                    e0, e1, e2, e3 = x0[p], x1[p], x2[p], x3[p]
                    e4, e5, e6, e7 = x4[p], x5[p], x6[p], x7[p]
                    s00 += f0 * e0
                    s01 += f0 * e1
                    s02 += f0 * e2
                    s03 += f0 * e3
                    s04 += f0 * e4
                    s05 += f0 * e5
                    s06 += f0 * e6
                    s07 += f0 * e7
                    s10 += f1 * e0
                    s11 += f1 * e1
                    s12 += f1 * e2
                    s13 += f1 * e3
                    s14 += f1 * e4
                    s15 += f1 * e5
                    s16 += f1 * e6
                    s17 += f1 * e7
                acc[o, t] += s00
                acc[o, t + 1] += s01
                acc[o, t + 2] += s02
                acc[o, t + 3] += s03
                acc[o, t + 4] += s04
                acc[o, t + 5] += s05
                acc[o, t + 6] += s06
                acc[o, t + 7] += s07
                if o1 != o:
                    acc[o1, t] += s10
                    acc[o1, t + 1] += s11
                    acc[o1, t + 2] += s12
                    acc[o1, t + 3] += s13
                    acc[o1, t + 4] += s14
                    acc[o1, t + 5] += s15
                    acc[o1, t + 6] += s16
                    acc[o1, t + 7] += s17


# ---------------------------------------------------------------------------- GELU (erf), float32
# erf(z) as z * P(z^2) / Q(z^2) on z clamped to [-4, 4] (a rational minimax fit; erf(4) is 1
# in float32): within 1e-6 of the exact GELU, as close as PyTorch's vectorised float32 GELU,
# and unlike a libm call per element it vectorises (0.25 ms for 786k values against 6.8 ms).
# float64 keeps the exact erf (finite-difference checks need every digit).
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
          -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
          -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
          -7.37332916720468e-03, -1.42647390514189e-02)


@_jit
def _erf_f32(z):
    z = min(max(z, np.float32(-4.0)), np.float32(4.0))
    z2 = z * z
    p = z2 * np.float32(_ERF_P[0]) + np.float32(_ERF_P[1])
    p = z2 * p + np.float32(_ERF_P[2])
    p = z2 * p + np.float32(_ERF_P[3])
    p = z2 * p + np.float32(_ERF_P[4])
    p = z2 * p + np.float32(_ERF_P[5])
    p = z2 * p + np.float32(_ERF_P[6])
    q = z2 * np.float32(_ERF_Q[0]) + np.float32(_ERF_Q[1])
    q = z2 * q + np.float32(_ERF_Q[2])
    q = z2 * q + np.float32(_ERF_Q[3])
    q = z2 * q + np.float32(_ERF_Q[4])
    return z * p / q


@_jit
def gelu_erf_forward(x, y, i0, i1):
    """y = x * Phi(x) over the flat float32 range [i0, i1)."""
    xs = x[i0:i1]
    ys = y[i0:i1]
    for i in range(xs.shape[0]):
        v = xs[i]
        ys[i] = np.float32(0.5) * v * (np.float32(1.0) +
                                        _erf_f32(v * np.float32(0.7071067811865476)))


# 2^-k for k = 0 .. 126 (2^-126: float32's smallest normal number)
_POW2_NEG = np.array([2.0 ** -k for k in range(127)], dtype=np.float32)
_EXP_MIN = -87.3  # exp(-87.3) is 1.2e-38, just above float32's smallest normal number


@_jit
def _exp_nonpositive_f32(t):
    """exp(t) for t <= 0 in float32 arithmetic that vectorises: 2^-k exp(r) with
    k = floor(-t / ln 2) from a table and exp(r), r in (-ln 2, 0], by its Taylor series to
    r^9: within 1.6e-7 relative near 0 and 3.3e-7 at the far end (k ln 2 rounded to float32);
    0 below t = -87.3 (where float32 turns subnormal); NaN stays NaN."""
    below = t < np.float32(_EXP_MIN)
    t = max(t, np.float32(_EXP_MIN))
    # (a NaN t converts to some integer: k is clamped to the table, r stays NaN)
    k = min(max(np.int32(t * np.float32(-1.4426950408889634)), np.int32(0)), np.int32(126))
    r = t + np.float32(k) * np.float32(0.6931471805599453)
    e = r * np.float32(1.0 / 362880.0) + np.float32(1.0 / 40320.0)
    e = r * e + np.float32(1.0 / 5040.0)
    e = r * e + np.float32(1.0 / 720.0)
    e = r * e + np.float32(1.0 / 120.0)
    e = r * e + np.float32(1.0 / 24.0)
    e = r * e + np.float32(1.0 / 6.0)
    e = r * e + np.float32(0.5)
    e = r * e + np.float32(1.0)
    e = r * e + np.float32(1.0)
    return np.float32(0.0) if below else e * _POW2_NEG[k]


@_jit
def sigmoid_f32(x, y, i0, i1):
    """y = 1 / (1 + exp(-x)) over the flat float32 range [i0, i1), as exp(-|x|) so that no
    exp overflows: 1 / (1 + e) for x >= 0, e / (1 + e) below."""
    xs = x[i0:i1]
    ys = y[i0:i1]
    for i in range(xs.shape[0]):
        v = xs[i]
        e = _exp_nonpositive_f32(-abs(v))
        ys[i] = (np.float32(1.0) if v >= np.float32(0.0) else e) / (np.float32(1.0) + e)


@_jit
def gelu_erf_backward(x, g, dx, i0, i1):
    """dx = g * (Phi(x) + x * phi(x)) over the flat float32 range [i0, i1)."""
    xs = x[i0:i1]
    gs = g[i0:i1]
    ds = dx[i0:i1]
    for i in range(xs.shape[0]):
        v = xs[i]
        cdf = np.float32(0.5) * (np.float32(1.0) + _erf_f32(v * np.float32(0.7071067811865476)))
        pdf = _exp_nonpositive_f32(v * v * np.float32(-0.5)) * np.float32(0.3989422804014327)
        ds[i] = gs[i] * (cdf + v * pdf)


# ---------------------------------------------------------------------------- LSTM steps, float32
# tanh(z) as z * P(u) / Q(u), u = (z / 9)^2, on z clamped to [-9, 9] (tanh(9) is 1 in float32;
# a rational fit made for Lantern by weighted least squares: within 3.3e-7 of tanh everywhere
# in float32, relative 2.7e-7 near 0), clamped to [-1, 1]; sigmoid(z) = (1 + tanh(z / 2)) / 2.
# Like the erf above, it vectorises where a libm call per element does not.
_TANH_P = (0.9999999689277546, 10.594117262548473, 20.33022274548472, 5.8999226777843585,
           -0.8621932474560494, 0.18105269303676702, -0.023416021701486815)
_TANH_Q = (1.0, 37.59410666366092, 160.5721580501974, 134.91110214349465)


@_jit
def _tanh_f32(z):
    z = min(max(z, np.float32(-9.0)), np.float32(9.0))
    u = z * z * np.float32(1.0 / 81.0)
    p = u * np.float32(_TANH_P[6]) + np.float32(_TANH_P[5])
    p = u * p + np.float32(_TANH_P[4])
    p = u * p + np.float32(_TANH_P[3])
    p = u * p + np.float32(_TANH_P[2])
    p = u * p + np.float32(_TANH_P[1])
    p = u * p + np.float32(_TANH_P[0])
    q = u * np.float32(_TANH_Q[3]) + np.float32(_TANH_Q[2])
    q = u * q + np.float32(_TANH_Q[1])
    q = u * q + np.float32(_TANH_Q[0])
    return min(max(z * p / q, np.float32(-1.0)), np.float32(1.0))


@_jit
def _sigmoid_f32(z):
    return np.float32(0.5) + np.float32(0.5) * _tanh_f32(z * np.float32(0.5))


@_jit
def _sigmoid_add(a, x):
    """a = sigmoid(a + x), elementwise over 1-D views."""
    for j in range(a.shape[0]):
        a[j] = _sigmoid_f32(a[j] + x[j])


@_jit
def _tanh_add(a, x):
    for j in range(a.shape[0]):
        a[j] = _tanh_f32(a[j] + x[j])


# Each loop below touches at most five arrays: with more, LLVM gives up the run-time overlap
# checks that let it vectorise (measured: one loop over all of a step's arrays ran 5x slower).
@_jit
def lstm_step_forward(a, xw, c, tc, h, hs):
    """One LSTM step on n rows: a (n, 4H) holds h_prev @ W_hh^T on entry and the gate
    activations i, f, g, o on exit (xw, the input products, added first); c (n, H), the cell
    state, is updated in place; tc = tanh(c'), h = o * tc."""
    for r in range(a.shape[0]):
        ar = a[r]
        xr = xw[r]
        _sigmoid_add(ar[:2 * hs], xr[:2 * hs])
        _tanh_add(ar[2 * hs:3 * hs], xr[2 * hs:3 * hs])
        _sigmoid_add(ar[3 * hs:], xr[3 * hs:])
        ig = ar[:hs]
        fg = ar[hs:2 * hs]
        gg = ar[2 * hs:3 * hs]
        og = ar[3 * hs:]
        cr = c[r]
        tr = tc[r]
        hr = h[r]
        for j in range(hs):
            cr[j] = fg[j] * cr[j] + ig[j] * gg[j]
        for j in range(hs):
            t = _tanh_f32(cr[j])
            tr[j] = t
            hr[j] = og[j] * t


@_jit
def lstm_step_backward(act, c_prev, tc, dh, dout, has_dout, dc, dgates, hs):
    """The gradients of one LSTM step on n rows: dh (n, H), the gradient reaching h' from the
    later steps (plus dout, the output's own, when has_dout); dc (n, H), that of c', replaced by
    that of c_prev; dgates (n, 4H) receives the gate pre-activations'. dh is left holding
    dh + dout."""
    one = np.float32(1.0)
    for r in range(act.shape[0]):
        ar = act[r]
        ig = ar[:hs]
        fg = ar[hs:2 * hs]
        gg = ar[2 * hs:3 * hs]
        og = ar[3 * hs:]
        dgr = dgates[r]
        dgi = dgr[:hs]
        dgf = dgr[hs:2 * hs]
        dgg = dgr[2 * hs:3 * hs]
        dgo = dgr[3 * hs:]
        dhr = dh[r]
        dcr = dc[r]
        tr = tc[r]
        if has_dout:
            dor = dout[r]
            for j in range(hs):
                dhr[j] += dor[j]
        for j in range(hs):
            t = tr[j]
            o = og[j]
            dgo[j] = dhr[j] * t * o * (one - o)
            dcr[j] += dhr[j] * o * (one - t * t)
        for j in range(hs):
            i = ig[j]
            g = gg[j]
            dgi[j] = dcr[j] * g * i * (one - i)
            dgg[j] = dcr[j] * i * (one - g * g)
        cp = c_prev[r]
        for j in range(hs):
            f = fg[j]
            dgf[j] = dcr[j] * cp[j] * f * (one - f)
            dcr[j] *= f


@_jit
def gru_step_forward(gh, xw, h, gates, out, hs):
    """One GRU step on n rows: gh (n, 3H) = h @ W_hh^T + b_hh, xw (n, 3H) the input products;
    gates (n, 3H) receives r, z, n = sigmoid(x_r + gh_r), sigmoid(x_z + gh_z),
    tanh(x_n + r * gh_n); out = n + z * (h - n)."""
    for r in range(gh.shape[0]):
        ghr = gh[r]
        xr = xw[r]
        gr = gates[r]
        rg = gr[:hs]
        zg = gr[hs:2 * hs]
        ng = gr[2 * hs:]
        for j in range(2 * hs):
            gr[j] = _sigmoid_f32(xr[j] + ghr[j])
        ghn = ghr[2 * hs:]
        xn = xr[2 * hs:]
        for j in range(hs):
            ng[j] = _tanh_f32(xn[j] + rg[j] * ghn[j])
        hr = h[r]
        orow = out[r]
        for j in range(hs):
            orow[j] = ng[j] + zg[j] * (hr[j] - ng[j])


@_jit
def gru_step_backward(gates, ghn, h_prev, dh, dout, has_dout, dxw, dgh, dhz, hs):
    """The gradients of one GRU step on n rows: dh (n, H), the gradient reaching h' from the
    later steps (plus dout when has_dout; dh is left holding the sum); dxw and dgh (n, 3H)
    receive those of the input products and of gh = h @ W_hh^T + b_hh, dhz (n, H) that of
    h_prev through z (h_prev's other part is dgh @ W_hh)."""
    one = np.float32(1.0)
    for r in range(gates.shape[0]):
        gr = gates[r]
        rg = gr[:hs]
        zg = gr[hs:2 * hs]
        ng = gr[2 * hs:]
        xr = dxw[r]
        dxr = xr[:hs]
        dxz = xr[hs:2 * hs]
        dxn = xr[2 * hs:]
        hr = dgh[r]
        dhr_ = hr[:hs]
        dhz_ = hr[hs:2 * hs]
        dhn_ = hr[2 * hs:]
        dhv = dh[r]
        if has_dout:
            dor = dout[r]
            for j in range(hs):
                dhv[j] += dor[j]
        for j in range(hs):
            n = ng[j]
            dxn[j] = dhv[j] * (one - zg[j]) * (one - n * n)
        ghr = ghn[r]
        for j in range(hs):
            rv = rg[j]
            dxr[j] = dxn[j] * ghr[j] * rv * (one - rv)
        for j in range(hs):
            dhn_[j] = dxn[j] * rg[j]
            dhr_[j] = dxr[j]
        hp = h_prev[r]
        for j in range(hs):
            z = zg[j]
            dxz[j] = dhv[j] * (hp[j] - ng[j]) * z * (one - z)
        dzr = dhz[r]
        for j in range(hs):
            dhz_[j] = dxz[j]
            dzr[j] = dhv[j] * zg[j]


# The block kernels over `parts` ranges of blocks on numba's OpenMP threads (each block owns
# its rows of the per-cell arrays: nothing to add up).
@_par
def block_moments_par(x, shift, s1, s2, parts):
    nb = x.shape[0]
    for i in numba.prange(parts):
        block_moments(x, shift, s1, s2, nb * i // parts, nb * (i + 1) // parts)


@_par
def block_affine_par(x, k, c0, y, parts):
    nb = x.shape[0]
    for i in numba.prange(parts):
        block_affine(x, k, c0, y, nb * i // parts, nb * (i + 1) // parts)


@_par
def block_grad_sums_par(g, x, mean, gsum, gdot, parts):
    nb = x.shape[0]
    for i in numba.prange(parts):
        block_grad_sums(g, x, mean, gsum, gdot, nb * i // parts, nb * (i + 1) // parts)


@_par
def block_affine2_par(g, x, a, bb, c0, y, parts):
    nb = x.shape[0]
    for i in numba.prange(parts):
        block_affine2(g, x, a, bb, c0, y, nb * i // parts, nb * (i + 1) // parts)
