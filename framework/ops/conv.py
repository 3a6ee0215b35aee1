"""Dense layers and convolutions: linear, bilinear, conv1d/2d/3d, conv_transpose1d/2d/3d,
unfold (im2col) and fold (col2im).

Memory layout. A convolution works channels-last inside: the input is read as (N, *spatial, C),
the column buffer is (N * output pixels, taps * C) and one GEMM with the (taps * C, O) weight
matrix gives the output as (N, *out, O) in memory. It is returned as an (N, O, *out) tensor, the
shape PyTorch gives, whose strides are channels-last. Elementwise ops keep that memory order
and the norms and pools here work in it, so the next convolution reads its input without a
transposing copy (such a copy of a 64x32x32x32 activation costs more than the GEMM after it).

On the CPU the columns of a large layer (tens of MB, that would go out to DRAM and back) are
built a cache-sized chunk at a time, each chunk's GEMM reading it while it is in L2, and built
again for the weight gradient rather than kept; only small layers build (and keep) them whole.
2-D kernels with unit stride down the rows go further (_conv_rows_gemm): the columns hold only
the kernel's width (kw*C values per pixel and input row) and each kernel row is a GEMM over a
row-shifted block of them, a third of the copying for 3x3.

On the CPU, one-group convolutions whose channels fill SIMD vectors (16-128 channels: U-Nets,
VGG- and ResNet-style layers) skip the columns altogether: register-blocked direct kernels
generated per block shape (framework/_conv_blocked.py) read the channels-last input and write
the channels-last output, with the forward, dx and dw each near the CPU's multiply-add peak
(strided layers: the forward and dw; see "blocked direct" below).

Gradients. With y = conv(x, w): dx = conv_input_grad(dy, w) and dw = conv_weight_grad(x, dy),
a GEMM of the columns of x with dy. For stride 1, dx is itself a convolution of dy (padded,
kernel flipped); in a plain backward (no graph of it wanted) dx and dw then come from one pass
over the windows of dy (conv_input_and_weight_grad). With stride == kernel (ConvTranspose2d(2,
stride=2)) dx is one GEMM and an interleaving copy; otherwise one GEMM per kernel tap is added
into the pixels it reaches (col2im). All three are Ops whose backward is again made of these
three Ops, so the convolutions are differentiable to any order; conv_transpose is
conv_input_grad itself (ConvTranspose when it has a bias).
"""
from __future__ import annotations

import functools
import itertools
from collections import namedtuple

import numpy as np

from .. import _cudnn, _jit
from .._backend import device_of, xp_of
from .._parallel import parallel_parts, parallel_ranges
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from ._functional_registry import register_functional
from ._util import refuse_complex_backward
from ..amp import _AutocastState, autocast_op, run_without_autocast

_make = Tensor._make
_AUTOCAST = _AutocastState.enabled

# Geometry of one convolution, from the point of view of the forward convolution x -> y:
# in_sp / out_sp are the spatial sizes of x / y, pad_lo the zeros before x on each spatial dim
# (the zeros after it follow from the sizes).
ConvGeom = namedtuple("ConvGeom", "stride dilation pad_lo groups ksize in_sp out_sp")


# ============================================================================ small helpers
def ntuple(value, n: int, name: str, opname: str) -> tuple:
    """An int or a sequence of n ints as a tuple of n ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    vals = tuple(int(v) for v in value)
    if len(vals) == 1 and n > 1:
        return vals * n
    if len(vals) != n:
        raise RuntimeError(f"{opname}: expected {name} to be a single integer value or a list of "
                           f"{n} values to match the convolution dimensions, but got "
                           f"{name}={list(vals)}")
    return vals


def prod(values) -> int:
    p = 1
    for v in values:
        p *= int(v)
    return p


def to_channels_last(x):
    """(N, C, *S) array -> (N, *S, C) view."""
    return x.transpose((0,) + tuple(range(2, x.ndim)) + (1,))


def from_channels_last(y):
    """(N, *S, C) array -> (N, C, *S) view."""
    nd = y.ndim
    return y.transpose((0, nd - 1) + tuple(range(1, nd - 1)))


def is_channels_last(x) -> bool:
    """True when an (N, C, *S) array is laid out as a C-contiguous (N, *S, C) array and not
    also as a C-contiguous (N, C, *S) one."""
    return x.ndim >= 3 and not x.flags.c_contiguous and to_channels_last(x).flags.c_contiguous


def to_images_last(x):
    """(N, C, *S) array -> (C, *S, N) view."""
    return x.transpose(tuple(range(1, x.ndim)) + (0,))


def from_images_last(y):
    """(C, *S, N) array -> (N, C, *S) view."""
    nd = y.ndim
    return y.transpose((nd - 1,) + tuple(range(nd - 1)))


def is_images_last(x) -> bool:
    """True when an (N, C, *S) array (N > 1) is laid out as a C-contiguous (C, *S, N) array,
    the layout of the direct convolutions (see _conv_direct), and not also as a C-contiguous
    (N, C, *S) one."""
    return x.ndim >= 3 and x.shape[0] > 1 and not x.flags.c_contiguous and \
        to_images_last(x).flags.c_contiguous


def empty_like_layout(xp, like, shape, dtype=None, fill=None):
    """A new (N, C, *S) array of `shape` with `like`'s memory order (channels-last, images
    last or plain)."""
    dtype = like.dtype if dtype is None else dtype
    if len(shape) == like.ndim and like.ndim >= 3:
        if is_channels_last(like):
            cl_shape = (shape[0],) + tuple(shape[2:]) + (shape[1],)
            buf = xp.empty(cl_shape, dtype) if fill is None else xp.full(cl_shape, fill, dtype)
            return from_channels_last(buf)
        if is_images_last(like) and shape[0] > 1:
            il_shape = tuple(shape[1:]) + (shape[0],)
            buf = xp.empty(il_shape, dtype) if fill is None else xp.full(il_shape, fill, dtype)
            return from_images_last(buf)
    return xp.empty(shape, dtype) if fill is None else xp.full(shape, fill, dtype)


def as_strided(xp, arr, shape, strides):
    return xp.lib.stride_tricks.as_strided(arr, shape=shape, strides=strides)


def channel_sum(arr):
    """Sum of an (N, C, *S) array over every dim but 1, fast for either memory order."""
    xp = xp_of(arr)
    if arr.ndim == 2:
        rows = arr
    else:
        cl = to_channels_last(arr)
        if cl.flags.c_contiguous:
            rows = cl.reshape(-1, arr.shape[1])
        elif is_images_last(arr):  # each channel one contiguous block: a gemv of the blocks
            blocks = to_images_last(arr).reshape(arr.shape[1], -1)
            if arr.dtype.kind == "f":
                return blocks @ xp.ones(blocks.shape[1], arr.dtype)
            return blocks.sum(axis=1)
        else:
            return arr.sum(axis=(0,) + tuple(range(2, arr.ndim)))
    if rows.flags.c_contiguous and rows.dtype.kind == "f" and rows.shape[0] > 1:
        return xp.ones(rows.shape[0], rows.dtype) @ rows  # a BLAS gemv: 4x a strided sum
    return rows.sum(axis=0)


def _window_span(g: ConvGeom):
    """Input extent read by the windows of each spatial dim (padding included)."""
    return tuple((o - 1) * s + d * (k - 1) + 1
                 for o, s, d, k in zip(g.out_sp, g.stride, g.dilation, g.ksize))


# ============================================================================ array kernels
def _padded_input_cl(xp, x, g: ConvGeom):
    """x (N, C, *S) as an (N, *span, C) array: x placed at offset pad_lo among zeros, cropped
    where the windows end before x does. No copy when nothing is padded and x is already
    channels-last."""
    xcl = to_channels_last(x)
    span = _window_span(g)
    if not any(g.pad_lo) and all(n >= s for n, s in zip(g.in_sp, span)):
        if tuple(span) != tuple(g.in_sp):
            xcl = xcl[(slice(None),) + tuple(slice(0, s) for s in span)]
        if xcl.shape[-1] > 1 and xcl.strides[-1] != xcl.itemsize:
            xcl = xp.ascontiguousarray(xcl)  # channels must be the inner dim of the columns
        return xcl
    n, c = x.shape[0], x.shape[1]
    buf = xp.zeros((n,) + tuple(span) + (c,), x.dtype)
    dst, src = [slice(None)], [slice(None)]
    for p, size, s in zip(g.pad_lo, g.in_sp, span):
        m = min(size, s - p)
        if m <= 0:
            return buf
        dst.append(slice(p, p + m))
        src.append(slice(0, m))
    buf[tuple(dst)] = xcl[tuple(src)]
    return buf


def _im2col(xp, xb, g: ConvGeom):
    """Columns of the padded channels-last input xb: (M, taps*C) for one group, else
    (groups, M, taps*Cg); a column's entries are ordered (kernel offsets..., channel)."""
    n, c = xb.shape[0], xb.shape[-1]
    d = len(g.ksize)
    m = n * prod(g.out_sp)
    taps = prod(g.ksize)
    grp = g.groups
    cg = c // grp
    if taps == 1 and all(s == 1 for s in g.stride):
        cols = xb.reshape(m, c)
        if grp == 1:
            return cols
        return xp.ascontiguousarray(cols.reshape(m, grp, cg).transpose(1, 0, 2))
    st = xb.strides
    win = (st[0],) + tuple(st[1 + i] * g.stride[i] for i in range(d)) + \
        tuple(st[1 + i] * g.dilation[i] for i in range(d))
    if grp == 1:
        view = as_strided(xp, xb, (n,) + tuple(g.out_sp) + tuple(g.ksize) + (c,),
                          win + (st[-1],))
        return view.reshape(m, taps * c)  # the one copy of the forward pass
    view = as_strided(xp, xb, (n,) + tuple(g.out_sp) + tuple(g.ksize) + (grp, cg),
                      win + (st[-1] * cg, st[-1]))
    perm = (1 + 2 * d,) + tuple(range(1 + 2 * d)) + (2 + 2 * d,)
    return xp.ascontiguousarray(view.transpose(perm)).reshape(grp, m, taps * cg)


def _weight_matrix(w, groups):
    """(O, Cg, *K) weight -> (groups, taps*Cg, O/groups), rows ordered as the columns."""
    o, cg = w.shape[0], w.shape[1]
    k = w.shape[2:]
    d = len(k)
    wg = w.reshape((groups, o // groups, cg) + tuple(k))
    perm = (0,) + tuple(range(3, 3 + d)) + (2, 1)
    return wg.transpose(perm).reshape(groups, prod(k) * cg, o // groups)


def _weight_from_matrix(xp, wm, w_shape, groups):
    o, cg = w_shape[0], w_shape[1]
    k = tuple(w_shape[2:])
    d = len(k)
    a = wm.reshape((groups,) + k + (cg, o // groups))
    perm = (0, d + 2, d + 1) + tuple(range(1, 1 + d))
    return xp.ascontiguousarray(a.transpose(perm)).reshape(w_shape)


def _grad_rows(xp, dy):
    """dy (N, O, *S) as channels-last rows (M, O) (no copy when dy is channels-last)."""
    cl = to_channels_last(dy)
    return cl.reshape(-1, dy.shape[1])


# Bytes of column buffer per GEMM on the CPU. The columns of a 64x64 map are tens of MB: built
# whole they go out to DRAM and back, and OpenBLAS reads them once more to pack them, so the
# GEMM runs at memory speed. Built a few image rows at a time, a chunk stays in the L2 cache
# between the copy that writes it and the GEMM that reads it (about 2x faster for 16-32
# channels at 64x64). On a GPU the columns are built whole.
_CHUNK_BYTES = 1 << 20


def _sum_in_order(parts):
    """The sum of per-thread partial results, added in chunk order (deterministic)."""
    total = parts[0]
    for p in parts[1:]:
        total += p
    return total


def _window_view(xp, xb, g: ConvGeom):
    """The windows of the padded channels-last input xb as an (N, *out, *k, C) strided view
    (groups == 1): row-major, it is the column matrix."""
    d = len(g.ksize)
    st = xb.strides
    win = (st[0],) + tuple(st[1 + i] * g.stride[i] for i in range(d)) + \
        tuple(st[1 + i] * g.dilation[i] for i in range(d))
    return as_strided(xp, xb, (xb.shape[0],) + tuple(g.out_sp) + tuple(g.ksize) +
                      (xb.shape[-1],), win + (st[-1],))


def _column_chunks(xp, n, g: ConvGeom, row_bytes):
    """Index tuples into (N, *out) splitting it into pieces whose columns take about
    _CHUNK_BYTES: whole images when an image fits, else runs of the first spatial dim of one
    image. None when the columns are to be built whole (small layer, not on the CPU, or a
    1x1 stride-1 kernel whose columns are the input itself)."""
    out_sp = tuple(g.out_sp)
    per_img = prod(out_sp) * row_bytes
    if xp is not np or n * per_img <= 2 * _CHUNK_BYTES or not out_sp or \
            (prod(g.ksize) == 1 and all(s == 1 for s in g.stride)):
        return None
    if per_img <= _CHUNK_BYTES:
        step = _CHUNK_BYTES // per_img
        return [(slice(i, min(n, i + step)),) for i in range(0, n, step)]
    h = out_sp[0]
    step = max(1, _CHUNK_BYTES // (prod(out_sp[1:]) * row_bytes))
    return [(i, slice(j, min(h, j + step))) for i in range(n) for j in range(0, h, step)]


def _use_row_windows(g: ConvGeom, c: int) -> bool:
    """Whether a 2-D convolution (one group, on the CPU, big enough to chunk) should use the
    row-window GEMMs of _conv_rows_gemm: unit stride down the rows, a kernel taller than one
    row, rows of at least 48 values (C >= 16 for 3 taps; shorter GEMMs are slow) and maps of
    at least 16x16 (on smaller ones the per-image GEMMs are too short)."""
    return len(g.ksize) == 2 and g.stride[0] == 1 and g.ksize[0] > 1 and \
        g.ksize[1] * c >= 48 and g.out_sp[0] * g.out_sp[1] >= 256


def _row_chunks(n, g: ConvGeom, rows_in: int, row_bytes: int):
    """(n0, n1, h0, h1) pieces of the output (rows h0:h1 of images n0:n1) whose row windows
    (with the kernel's extra rows) take about _CHUNK_BYTES: whole images when one fits."""
    ho, wo = g.out_sp
    halo = g.dilation[0] * (g.ksize[0] - 1)
    per_img = rows_in * wo * row_bytes
    if per_img <= _CHUNK_BYTES:
        step = max(1, _CHUNK_BYTES // per_img)
        return [(i, min(n, i + step), 0, ho) for i in range(0, n, step)]
    step = max(1, _CHUNK_BYTES // (wo * row_bytes) - halo)
    return [(i, i + 1, j, min(ho, j + step)) for i in range(n) for j in range(0, ho, step)]


def _row_windows(xp, xcl, g: ConvGeom, n0, n1, r0, r1, stage, scratch, windows):
    """Rows r0:r1 (of the padded input) of images n0:n1 as (images, rows * Wo, kw*C): for each
    input row and output column, the kw taps along the row, copied into scratch. xcl is the
    unpadded (N, H, W, C) input: the rows are first placed in `stage`, a zero-bordered
    (images, rows, padded W, C) buffer that stays in cache (whose border columns are never
    written; `windows` is its window view), so no padded copy of the whole input goes through
    memory."""
    ni, nr = n1 - n0, r1 - r0
    h, w = xcl.shape[1], xcl.shape[2]
    ph, pw = g.pad_lo
    st = stage[:ni, :nr]
    wcnt = min(w, st.shape[2] - pw)  # columns of x inside the padded width
    v0 = min(max(ph - r0, 0), nr)  # local rows [v0, v1) hold rows of x; the rest are padding
    v1 = max(min(ph + h - r0, nr), v0)
    if wcnt > 0:
        if v0 > 0:
            st[:, :v0, pw:pw + wcnt] = 0
        if v1 < nr:
            st[:, v1:, pw:pw + wcnt] = 0
        if v1 > v0:
            st[:, v0:v1, pw:pw + wcnt] = xcl[n0:n1, r0 + v0 - ph:r0 + v1 - ph, :wcnt]
    view = windows[:ni, :nr]
    a = scratch[:view.size].reshape(view.shape)
    a[...] = view
    return a.reshape(ni, nr * view.shape[2], view.shape[3] * view.shape[4])


def _row_buffers(xp, xcl, g: ConvGeom, chunks):
    """The stage and scratch buffers of _row_windows, sized for the largest of the chunks
    (a thread's share may start with an image's short last chunk), and the (images, rows,
    Wo, kw, C) window view of the stage (made once: as_strided is slow to call)."""
    ni = max(n1 - n0 for n0, n1, _, _ in chunks)
    kh, kw = g.ksize
    rows = max(h1 - h0 for _, _, h0, h1 in chunks) + g.dilation[0] * (kh - 1)
    c = xcl.shape[-1]
    wo = g.out_sp[1]
    stage = xp.zeros((ni, rows, _window_span(g)[1], c), xcl.dtype)
    scratch = xp.empty(ni * rows * wo * kw * c, xcl.dtype)
    ss = stage.strides
    windows = as_strided(xp, stage, (ni, rows, wo, kw, c),
                         (ss[0], ss[1], ss[2] * g.stride[1], ss[2] * g.dilation[1], ss[3]))
    return stage, scratch, windows


def _conv_rows_gemm(xp, xcl, g: ConvGeom, wm, other=None):
    """_conv_gemm for 2-D, unit row stride (see _use_row_windows), from the unpadded
    channels-last input xcl: the columns are built for the kernel's width only (kw*C values
    per pixel and input row, a third of the im2col copy for 3x3), and the kh kernel rows are
    kh GEMMs over row-shifted blocks of them, summed: out[h] = sum_t A[h + t*dilation] @ W_t.

    With `other`, a contiguous (N, *out, C2) array, also returns R (kh, kw*C, C2) with
    R_t = sum over pixels of A_t^T @ other, from the same windows (see
    conv_input_and_weight_grad)."""
    n, c = xcl.shape[0], xcl.shape[-1]
    kh, kw = g.ksize
    dh = g.dilation[0]
    wo = g.out_sp[1]
    o = wm.shape[1]
    wt = wm.reshape(kh, kw * c, o)
    out = xp.empty((n,) + tuple(g.out_sp) + (o,), xcl.dtype)
    chunks = _row_chunks(n, g, _window_span(g)[0], kw * c * xcl.itemsize)

    def run(part_chunks):  # a contiguous share of the chunks, with its own buffers
        bufs = _row_buffers(xp, xcl, g, part_chunks)
        part = xp.empty(max((n1 - n0) * (h1 - h0) for n0, n1, h0, h1 in part_chunks) * wo * o,
                        xcl.dtype)
        acc = None if other is None else xp.zeros((kh, kw * c, other.shape[-1]), xcl.dtype)
        for n0, n1, h0, h1 in part_chunks:
            ni, hr = n1 - n0, h1 - h0
            a = _row_windows(xp, xcl, g, n0, n1, h0, h1 + dh * (kh - 1), *bufs)
            o3 = out[n0:n1, h0:h1].reshape(ni, hr * wo, o)
            p3 = part[:o3.size].reshape(o3.shape)
            for t in range(kh):
                at = a[:, t * dh * wo:(t * dh + hr) * wo]
                if t == 0:
                    xp.matmul(at, wt[0], out=o3)
                else:
                    xp.matmul(at, wt[t], out=p3)
                    o3 += p3
            if acc is not None:
                _accumulate_row_products(xp, acc, a, other[n0:n1, h0:h1], dh, hr, wo)
        return acc
    # the chunks split between threads, each running its copies and single-threaded GEMMs
    # (with OpenBLAS's threads per GEMM, the copies between them ran on one core)
    accs = parallel_parts(run, chunks) if xp is np else [run(chunks)]
    return out if other is None else (out, _sum_in_order(accs))


def _accumulate_row_products(xp, acc, a, oth, dh, hr, wo):
    """acc[t] += sum over the chunk's pixels of A_t^T @ oth, A_t the row-shifted windows."""
    ni = a.shape[0]
    o3 = oth.reshape(ni, hr * wo, oth.shape[-1])
    for t in range(acc.shape[0]):
        at = a[:, t * dh * wo:(t * dh + hr) * wo]
        if ni == 1:
            acc[t] += at[0].T @ o3[0]
        else:
            acc[t] += xp.matmul(at.transpose(0, 2, 1), o3).sum(0)


def _conv_rows_weight_gemm(xp, xcl, g: ConvGeom, dycl):
    """_conv_weight_gemm with the row windows of _conv_rows_gemm: dW_t = sum A_t^T @ dy."""
    n, c = xcl.shape[0], xcl.shape[-1]
    kh, kw = g.ksize
    dh = g.dilation[0]
    wo = g.out_sp[1]
    o = dycl.shape[-1]
    chunks = _row_chunks(n, g, _window_span(g)[0], kw * c * xcl.itemsize)
    bufs = _row_buffers(xp, xcl, g, chunks)
    acc = xp.zeros((kh, kw * c, o), xcl.dtype)
    # one thread: the chunks split between threads as in _conv_rows_gemm measured 4-8% slower
    # on the U-Net benchmark at 2 threads (each thread then sums its own (kh, kw*C, O) result)
    for n0, n1, h0, h1 in chunks:
        a = _row_windows(xp, xcl, g, n0, n1, h0, h1 + dh * (kh - 1), *bufs)
        _accumulate_row_products(xp, acc, a, dycl[n0:n1, h0:h1], dh, h1 - h0, wo)
    return acc.reshape(kh * kw * c, o)


def _conv_gemm(xp, x, g: ConvGeom, wm, keep_cols=False):
    """out (N, *out, O) = columns(x) @ wm for one group, x the (N, C, *S) input (unpadded),
    wm (taps*C, O); also the columns when they were built whole and keep_cols (the weight
    gradient will want them), else None. Chunked columns are not kept: the weight gradient
    rebuilds them (measured on the U-Net and CNN benchmarks: keeping whole columns, written
    to and read back from DRAM, is slower even for 64-128 output channels)."""
    n = x.shape[0]
    k = wm.shape[0]
    o = wm.shape[1]
    chunks = _column_chunks(xp, n, g, k * x.itemsize)
    if chunks is not None and _use_row_windows(g, x.shape[1]):
        return _conv_rows_gemm(xp, to_channels_last(x), g, wm), None
    xb = _padded_input_cl(xp, x, g)
    if chunks is None:
        cols = _im2col(xp, xb, g)
        out = (cols @ wm).reshape((n,) + tuple(g.out_sp) + (o,))
        return out, (cols if keep_cols else None)
    view = _window_view(xp, xb, g)
    out = xp.empty((n,) + tuple(g.out_sp) + (o,), xb.dtype)

    def run(part):
        scratch = xp.empty(max(view[idx].size for idx in part), xb.dtype)
        for idx in part:
            src = view[idx]
            rows = src.size // k
            buf = scratch[:rows * k].reshape(src.shape)
            buf[...] = src
            xp.matmul(buf.reshape(rows, k), wm, out=out[idx].reshape(rows, o))
    parallel_parts(run, chunks)
    return out, None


def _conv_weight_gemm(xp, x, g: ConvGeom, dycl):
    """columns(x)^T @ dy for one group: (taps*C, O), x the unpadded (N, C, *S) input, dycl
    the (N, *out, O) contiguous channels-last gradient; the columns are built chunk by chunk
    as in _conv_gemm and the per-chunk products summed (rebuilding them beats keeping
    whole-layer columns from the forward pass, which must come back from DRAM)."""
    n, c = x.shape[0], x.shape[1]
    o = dycl.shape[-1]
    k = prod(g.ksize) * c
    chunks = _column_chunks(xp, n, g, k * x.itemsize)
    if chunks is not None and _use_row_windows(g, c):
        return _conv_rows_weight_gemm(xp, to_channels_last(x), g, dycl)
    xb = _padded_input_cl(xp, x, g)
    if chunks is None:
        return _im2col(xp, xb, g).T @ dycl.reshape(-1, o)
    view = _window_view(xp, xb, g)

    def run(chunk_list):
        # a part may start with an image's short last chunk: size for its largest
        scratch = xp.empty(max(view[idx].size for idx in chunk_list), xb.dtype)
        acc = part = None
        for idx in chunk_list:
            src = view[idx]
            rows = src.size // k
            buf = scratch[:rows * k].reshape(src.shape)
            buf[...] = src
            if acc is None:
                acc = buf.reshape(rows, k).T @ dycl[idx].reshape(rows, o)
                part = xp.empty_like(acc)
            else:
                xp.matmul(buf.reshape(rows, k).T, dycl[idx].reshape(rows, o), out=part)
                acc += part
        return acc
    return _sum_in_order(parallel_parts(run, chunks))


# ---------------------------------------------------------------------------- direct kernels
# Few output channels make a skinny GEMM (LeNet's (N*28*28, 25) @ (25, 6)): OpenBLAS runs it at
# a fraction of its speed and the column copy costs as much again. A 2-D or 3-D stride-1
# convolution with at most _DIRECT_MAX_OUT output channels is then summed directly by compiled
# kernels (_jit_kernels.conv_taps_forward) in the images-last layout, (C, *S, N) in memory: one
# output row of every image is a sum of C*prod(k) shifted contiguous runs of the input, with no
# columns. Measured against the GEMM path (1 thread): LeNet's conv 1->6 5x5 on 28x28 at batch
# 128, 3.8 -> 0.5 ms; its conv 6->16 5x5 on 14x14, 1.7 -> 0.9 ms; their weight gradients 4-5x
# faster; the MRI U-Net's 3x3x3 8->8 on 4x32^3, forward + dx + dw 31 -> 62 ms for the GEMMs.
# The threads split the output rows, so the kernels scale with cores where the GEMM path's
# small GEMMs do not. The output stays images-last (ReLU, leaky ReLU, the norms and max
# pooling keep the layout, and the next direct convolution reads it without a copy).
_DIRECT_MAX_OUT = 16
# Input values per output value (C*kh*kw): with thousands (e.g. 64 -> 16 channels 3x3 on 8x8
# maps) the GEMM's blocking wins, 1.3-1.5x faster there; LeNet's layers have 25 and 150 (400
# for the input gradient of the second).
_DIRECT_MAX_TAPS = 512
_DIRECT_MIN_RUN = 64  # output pixels per row * images: shorter runs do not vectorise well
_DIRECT_RUN = 1024  # values per run of the direct kernels (see _direct_runs)
# 3-D: the input planes that one output plane reads (C * kd planes of the window span) must
# fit in the L2 cache, or every run of taps comes from memory and the GEMM path wins (1
# thread: 16 -> 16 channels on 2x64^3, 1.7 MB of planes: direct 230 ms, GEMM 146 ms; on
# 2x32^3, 0.4 MB: 20 ms both; 8 -> 8 on 4x32^3: direct 10, GEMM 20 ms).
_DIRECT_MAX_PLANES_BYTES = 1 << 20
_DIRECT_PARALLEL_WORK = 1 << 22  # multiply-adds below which one thread does the whole layer


def _direct_ok(x, n, c, o, g: ConvGeom) -> bool:
    """Whether a convolution of n images of x's kind (array type and dtype), c -> o channels
    with geometry g, suits the direct kernels: 2-D or 3-D (input planes within the cache),
    one group, stride 1, a kernel of more than one tap, few output channels and input values
    per output, and a layer that the GEMM path would not run as row-window GEMMs (wide rows
    on large maps, where those are as fast and keep the channels-last layout that batch norm
    and the next GEMM read)."""
    return type(x) is np.ndarray and x.dtype in _jit._FLOATS and len(g.ksize) in (2, 3) and \
        g.groups == 1 and all(s == 1 for s in g.stride) and prod(g.ksize) > 1 and \
        o <= _DIRECT_MAX_OUT and c * prod(g.ksize) <= _DIRECT_MAX_TAPS and \
        n * g.out_sp[-1] >= _DIRECT_MIN_RUN and _jit.kernels() is not None and \
        (len(g.ksize) == 2 or c * g.ksize[0] * prod(_window_span(g)[1:]) * n * x.itemsize <=
         _DIRECT_MAX_PLANES_BYTES) and \
        not (_use_row_windows(g, c) and
             _column_chunks(np, n, g, prod(g.ksize) * c * x.itemsize) is not None)


def _use_direct(x, o, g: ConvGeom, need_dx=False) -> bool:
    """Whether the forward convolution of x to o channels takes the direct kernels. When the
    input gradient will be wanted (need_dx) it must take them too: it receives dy in the
    output's images-last layout, which the GEMM path reads through transposing copies (2x
    slower on a 32x8x32x32 batch than dy channels-last)."""
    n, c = x.shape[:2]
    if not _direct_ok(x, n, c, o, g):
        return False
    if need_dx:
        g_t = _input_grad_geom(g)
        return g_t is not None and _direct_ok(x, n, o, c, g_t)
    return True


def _use_direct_grad(dy, o, c, g: ConvGeom) -> bool:
    """Whether a gradient computation of geometry g from dy (c -> o channels, as a
    convolution) takes the direct kernels: as the forward would, unless dy is channels-last
    (then the forward ran on the GEMM path, whose layout its gradients keep)."""
    return _direct_ok(dy, dy.shape[0], c, o, g) and not is_channels_last(dy)


def _images_last_input(xp, x, g: ConvGeom):
    """x (N, C, *S) as a flat C-contiguous (C, *span, N) array: x at offset pad_lo among
    zeros, cropped where the windows end before x does, followed by the zeros that the last
    run of the direct kernels reads past the end (see _direct_runs); x itself when it is laid
    out so and nothing pads."""
    n, c = x.shape[:2]
    span = _window_span(g)
    il = to_images_last(x)
    tail = (span[-1] - g.out_sp[-1]) * n
    if not tail and not any(g.pad_lo) and tuple(span) == tuple(g.in_sp) and \
            il.flags.c_contiguous:
        return il.reshape(-1)
    flat = xp.zeros(c * prod(span) * n + tail, x.dtype)
    buf = flat[:c * prod(span) * n].reshape((c,) + tuple(span) + (n,))
    dst, src = [slice(None)], [slice(None)]
    for p, size, s in zip(g.pad_lo, g.in_sp, span):
        m = min(size, s - p)
        if m <= 0:
            return flat
        dst.append(slice(p, p + m))
        src.append(slice(0, m))
    _copy_images_last(buf[tuple(dst)], il[tuple(src)])
    return flat


def _direct_runs(n, g: ConvGeom):
    """(bases, length): the runs of output the direct kernels compute, as offsets of their
    first window into the images-last input and their common length. A run covers r whole
    rows of the window span's width (Ws*N values, so the last Ws-Wo positions of each row
    are computed and thrown away): runs of one output row alone (Wo*N values) are too short
    to vectorise well on small batches (64 values for 2 images of 32 pixels, where the call
    overhead per tap group dominates). r is the largest divisor of the output height that
    keeps a run within _DIRECT_RUN values."""
    span = _window_span(g)
    ho, row = g.out_sp[-2], span[-1] * n
    r = max([k for k in range(1, ho + 1) if ho % k == 0 and k * row <= _DIRECT_RUN] or [1])
    bases = np.zeros(1, np.int64)
    for i, size in enumerate(g.out_sp[:-2]):
        step = prod(span[i + 1:]) * n
        bases = (bases[:, None] + np.arange(size, dtype=np.int64)[None, :] * step).reshape(-1)
    bases = (bases[:, None] + np.arange(0, ho, r, dtype=np.int64)[None, :] * row).reshape(-1)
    return bases, r * row


def _from_runs(xp, out, n, g: ConvGeom):
    """The (O, runs, length) output of the direct kernels as an images-last (N, O, *out)
    array: the positions past each row's Wo dropped (one copy), if there are any."""
    ws, wo = _window_span(g)[-1], g.out_sp[-1]
    full = out.reshape((out.shape[0],) + tuple(g.out_sp[:-1]) + (ws, n))
    if ws != wo:
        y = xp.empty(full.shape[:-2] + (wo, n), out.dtype)
        y[...] = full[..., :wo, :]
        full = y
    return from_images_last(full)


def _to_runs(xp, dy, g: ConvGeom, runs: int, length: int):
    """dy (N, O, *out) as the (O, runs, length) array of _direct_runs: images-last, each row
    widened to the window span with zeros (their products with x add nothing)."""
    n, o = dy.shape[:2]
    ws, wo = _window_span(g)[-1], g.out_sp[-1]
    il = to_images_last(dy)
    if ws == wo and il.flags.c_contiguous:
        buf = il
    else:
        buf = xp.zeros((o,) + tuple(g.out_sp[:-1]) + (ws, n), dy.dtype)
        _copy_images_last(buf[..., :wo, :], il)
    return buf.reshape(o, runs, length)


def _copy_images_last(dst, src):
    """dst[...] = src for (C, *S, N) arrays, dst images-last: when src is not, a block of 16
    images at a time. (Gathering each image's value of a pixel from an image-major array
    reads with a stride of the image size, often a multiple of 4 KiB whose cache lines
    evict each other; 16 images at a time is 3x faster on a 64x64x8x8 batch.)"""
    if src.strides[-1] == src.itemsize or src.shape[-1] <= 16:
        dst[...] = src
        return
    for i in range(0, src.shape[-1], 16):
        dst[..., i:i + 16] = src[..., i:i + 16]


def _tap_offsets(c, n, g: ConvGeom, multiple=1):
    """Flat offsets of the kernel taps (c, *k), in the weight's order, into an images-last
    input of the windows' span; padded with zeros to a multiple of `multiple`."""
    span = _window_span(g)
    d = len(span)
    offs = np.arange(c, dtype=np.int64).reshape((c,) + (1,) * d) * (prod(span) * n)
    for i, (k, dl) in enumerate(zip(g.ksize, g.dilation)):
        shape = [1] * (1 + d)
        shape[1 + i] = k
        offs = offs + np.arange(k, dtype=np.int64).reshape(shape) * (dl * prod(span[i + 1:]) * n)
    offs = offs.reshape(-1)
    pad = -offs.size % multiple
    return np.concatenate([offs, np.zeros(pad, np.int64)]) if pad else offs


def _direct_rows(fn, rows: int, work: int):
    """fn(h0, h1) over output rows [0, rows), split between threads when the layer has work
    (multiply-adds) enough to pay for waking them."""
    parallel_ranges(fn, rows, work, _DIRECT_PARALLEL_WORK)


def _conv_direct(xp, x, w, b, g: ConvGeom):
    """y = conv(x, w) + b by conv_taps_forward, returned images-last."""
    jk = _jit.kernels()
    n, c = x.shape[:2]
    o = w.shape[0]
    xf = _images_last_input(xp, x, g)
    offs = _tap_offsets(c, n, g)
    bases, length = _direct_runs(n, g)
    wt = np.ascontiguousarray(w.reshape(o, -1), dtype=x.dtype)
    bias = np.zeros(o, x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    out = np.empty((o, bases.size, length), x.dtype)

    def rows(h0, h1):
        jk.conv_taps_forward(xf, wt, offs, bias, out, bases, h0, h1)
    _direct_rows(rows, bases.size, out.size * offs.size)
    return _from_runs(xp, out, n, g)


def _conv_direct_weight_grad(xp, x, dy, g: ConvGeom, w_shape):
    """dw of y = conv(x, w) by conv_taps_weight_grad (the direct path's weight gradient)."""
    jk = _jit.kernels()
    n, c = x.shape[:2]
    o = dy.shape[1]
    xf = _images_last_input(xp, x, g)
    offs = _tap_offsets(c, n, g, 8)
    bases, length = _direct_runs(n, g)
    dyc = _to_runs(xp, dy, g, bases.size, length)
    parts = []

    def rows(h0, h1):
        acc = np.zeros((o, offs.size))
        jk.conv_taps_weight_grad(xf, dyc, offs, acc, bases, h0, h1)
        parts.append((h0, acc))
    _direct_rows(rows, bases.size, dyc.size * offs.size)
    acc = _sum_in_order([a for _, a in sorted(parts, key=lambda p: p[0])])
    taps = prod(w_shape[1:])
    return acc[:, :taps].astype(x.dtype).reshape(w_shape)


def _conv_direct_input_grad(xp, dy, w, g: ConvGeom):
    """dx of a stride-1 convolution as the direct convolution of dy (see
    _conv_input_grad_as_conv) with the kernel flipped and its channels swapped."""
    d = w.ndim - 2
    wf = w.swapaxes(0, 1)[(slice(None), slice(None)) + (slice(None, None, -1),) * d]
    return _conv_direct(xp, dy, wf, None, _input_grad_geom(g))


# ============================================================================ blocked direct
# The register-blocked kernels of _conv_blocked (CPU, float32/float64, one group; a strided
# layer's forward and dw only, its dx being a transposed convolution):
# channels-last in and out, the vectorised channels (O for the forward and dw, C for dx) a
# multiple of a vector. Against the GEMM path on 16-128 channels they skip the column copies
# and OpenBLAS's packing of small matrices, and run at about the CPU's multiply-add peak.
# Blocks of rows of the output split between threads.
_BLOCKED_CHUNK_BYTES = 1 << 18  # input + gradient rows per chunk of the weight gradient
# Input channels below which a layer whose dx cannot be blocked still runs its forward and dw
# blocked (an image network's first layer, whose dx is seldom wanted; see _blocked_plan).
_BLOCKED_FIRST_LAYER_C = 4
# Output rows narrower than this keep a strided layer on the GEMM path: with a few pixels a
# row the pixel blocks are short (measured, forward + dw of 256 -> 512 channels, 8x8 -> 4x4,
# batch 64: 67 ms blocked, 58 ms by GEMMs; at 16x16 -> 8x8 and wider, blocked was faster).
_BLOCKED_STRIDED_MIN_WIDTH = 8
# Stride-1 layers with rows that narrow and at least this many input channels keep the GEMM
# path too: there GEMMs have long rows of taps x channels (measured, 512 -> 512 channels on
# 4x4, batch 64, float32, 2 threads: forward 36 ms by GEMMs, 50-53 ms blocked; ResNet-18's
# CIFAR training step 2-4% faster). The U-Nets' narrow layers (at most 64 channels on 4-wide
# rows in the lesion recipe) stay blocked, where it was faster in their whole steps.
_BLOCKED_NARROW_MAX_C = 256


def _blocked_lanes(x, channels: int, g: ConvGeom) -> int:
    """The vector lanes of the blocked kernels for a convolution of x (as its input) with
    `channels` vectorised channels and geometry g, or 0 when they do not apply."""
    if type(x) is not np.ndarray or x.dtype not in _jit._FLOATS or g.groups != 1 or \
            prod(g.ksize) == 1 or _jit.kernels() is None:
        return 0
    from .. import _conv_blocked
    return _conv_blocked.lanes_for(x.itemsize, channels)


def _blocked_plan(x, o: int, c: int, g: ConvGeom) -> tuple:
    """(lanes of the forward and dw, lanes of dx) of the blocked kernels for a layer of x's
    kind (array type and dtype), c -> o channels, geometry g; 0 where the layer keeps the
    older paths. A layer runs blocked when forward, dx and dw all can, or, as a first layer
    (c < _BLOCKED_FIRST_LAYER_C), its forward and dw; a strided layer runs its forward and
    dw blocked and its dx (a transposed convolution) on the GEMM path; layers with output rows
    narrower than _BLOCKED_STRIDED_MIN_WIDTH run on GEMMs when strided or, stride 1, with at
    least _BLOCKED_NARROW_MAX_C input channels. The plan depends on
    neither grad mode nor layouts, so every pass of a layer agrees (a checkpointed rerun
    gives the same bits)."""
    lanes_o = _blocked_lanes(x, o, g)
    if not lanes_o:
        return 0, 0
    if any(s != 1 for s in g.stride):
        return (lanes_o, 0) if g.out_sp[-1] >= _BLOCKED_STRIDED_MIN_WIDTH else (0, 0)
    if g.out_sp[-1] < _BLOCKED_STRIDED_MIN_WIDTH and c >= _BLOCKED_NARROW_MAX_C:
        return 0, 0
    g_t = _input_grad_geom(g)
    lanes_c = _blocked_lanes(x, c, g_t) if g_t is not None else 0
    if lanes_c:
        return lanes_o, lanes_c
    return (lanes_o, 0) if c < _BLOCKED_FIRST_LAYER_C else (0, 0)


@functools.lru_cache(maxsize=256)
def _blocked_geometry(n: int, g: ConvGeom):
    """The row and tap tables of the blocked kernels (see _conv_blocked) for n images:
    (rbase (R*J,), J, trow, tcol, wlo, whi, wl, wr), rows R ordered (N, *out[:-1]) and tap
    rows J (*k[:-1]). Cached (read-only arrays): a training step asks for the same few
    geometries over and over."""
    d = len(g.ksize)
    base = (np.arange(n, dtype=np.int64) * prod(g.in_sp))[:, None]
    valid = np.ones((n, 1), bool)
    for m in range(d - 1):
        rows = np.arange(g.out_sp[m])[:, None] * g.stride[m] + \
            np.arange(g.ksize[m])[None, :] * g.dilation[m] - g.pad_lo[m]
        # (the input row of each (output row, tap row) along dim m)
        inside = (rows >= 0) & (rows < g.in_sp[m])
        r, j = base.shape
        base = (base[:, None, :, None] + (rows * prod(g.in_sp[m + 1:]))[None, :, None, :]) \
            .reshape(r * rows.shape[0], j * rows.shape[1])
        valid = (valid[:, None, :, None] & inside[None, :, None, :]).reshape(base.shape)
    rbase = np.where(valid, base, -1).ravel()
    kw, wo, w_in, sw = g.ksize[-1], g.out_sp[-1], g.in_sp[-1], g.stride[-1]
    taps = prod(g.ksize)
    trow = np.arange(taps, dtype=np.int64) // kw
    tcol = (np.arange(taps, dtype=np.int64) % kw) * g.dilation[-1] - g.pad_lo[-1]
    # output columns p whose input column p * sw + tcol lies inside [0, w_in)
    wlo = np.clip(-(tcol // sw), 0, wo)
    whi = np.clip(-((tcol - w_in) // sw), 0, wo)
    wl = int(wlo.max())
    wr = max(int(whi.min()), wl)
    for a in (rbase, trow, tcol, wlo, whi):
        a.flags.writeable = False
    return rbase, valid.shape[1], trow, tcol, wlo, whi, wl, wr


def _channels_last_rows(x):
    """x (N, C, *S) as its flat C-contiguous channels-last data (no copy when it is laid out
    so)."""
    return np.ascontiguousarray(to_channels_last(x)).reshape(-1)


def _blocked_conv(x, wt, b, g: ConvGeom, lanes: int):
    """conv(x) + b as (N, *out, O) contiguous, wt the (T, C, O) weights; output rows split
    between numba's OpenMP threads where they serve (see _jit.omp_parts), else the pool's."""
    from .. import _conv_blocked
    n, c = x.shape[:2]
    o = wt.shape[2]
    rbase, n_trows, trow, tcol, wlo, whi, wl, wr = _blocked_geometry(n, g)
    wo = g.out_sp[-1]
    plan = _conv_blocked.forward_plan(o, lanes, wr - wl)
    out = np.empty((n,) + tuple(g.out_sp) + (o,), x.dtype)
    bias = np.zeros(o, x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    args = (_channels_last_rows(x), np.ascontiguousarray(wt, dtype=x.dtype).reshape(-1), bias,
            rbase, trow, tcol, wlo, whi, out.reshape(-1), c, o, wo, wl, wr, n_trows)
    rows, work = rbase.size // n_trows, out.size * trow.size * c
    omp = _jit.omp_parts() if work >= _DIRECT_PARALLEL_WORK else 0
    sw = g.stride[-1]
    if omp:
        _conv_blocked.forward_kernel_par(*plan, lanes, sw)(*args, rows, omp)
    else:
        kernel = _conv_blocked.forward_kernel(*plan, lanes, sw)
        parallel_ranges(lambda r0, r1: kernel(*args, r0, r1), rows, work, _DIRECT_PARALLEL_WORK)
    return out


def _blocked_weight_grad(x, dy, g: ConvGeom, w_shape, lanes: int):
    """dw of y = conv(x, w) by the blocked kernel: each thread's part of the output rows
    summed in float64 (chunk by chunk), the parts added in row order."""
    from .. import _conv_blocked
    n, c = x.shape[:2]
    o = dy.shape[1]
    rbase, n_trows, trow, tcol, wlo, whi, _, _ = _blocked_geometry(n, g)
    wo = g.out_sp[-1]
    plan = _conv_blocked.weight_grad_plan(o, lanes)
    dyf = _channels_last_rows(dy)
    args = (_channels_last_rows(x), dyf, rbase, trow, tcol, wlo, whi)
    chunk = max(1, _BLOCKED_CHUNK_BYTES // (wo * (c + o) * x.itemsize))
    rows, work = rbase.size // n_trows, dyf.size * trow.size * c
    omp = _jit.omp_parts() if work >= _DIRECT_PARALLEL_WORK else 0
    if omp:
        per_part = np.zeros((omp, trow.size * c * o))
        _conv_blocked.weight_grad_kernel_par(*plan, lanes, g.stride[-1])(
            *args, per_part, c, o, wo, n_trows, rows, chunk, omp)
        parts = list(per_part)
    else:
        kernel = _conv_blocked.weight_grad_kernel(*plan, lanes, g.stride[-1])
        found = []

        def part(r0, r1):
            acc = np.zeros(trow.size * c * o)
            kernel(*args, acc, c, o, wo, n_trows, r0, r1, chunk)
            found.append((r0, acc))
        parallel_ranges(part, rows, work, _DIRECT_PARALLEL_WORK)
        parts = [a for _, a in sorted(found, key=lambda p: p[0])]
    acc = _sum_in_order(parts)
    return acc.reshape(trow.size, c, o).transpose(2, 1, 0).reshape(w_shape).astype(x.dtype)


def _taps_weight(w):
    """(O, C, *K) -> (T, C, O): the blocked forward's weight layout."""
    return w.reshape(w.shape[0], w.shape[1], -1).transpose(2, 1, 0)


def _flipped_taps_weight(w):
    """(O, C, *K) -> (T, O, C), the kernel flipped: the weights of dx as a convolution of dy."""
    return w.reshape(w.shape[0], w.shape[1], -1)[:, :, ::-1].transpose(2, 0, 1)


def conv_forward(x, w, b, g: ConvGeom, keep_cols=False, need_dx=True):
    """y = conv(x, w) + b; also returns the column buffer when keep_cols (for dw). need_dx:
    whether dx will be wanted (it steers the choice of kernels, see _use_direct)."""
    xp = xp_of(x)
    if xp is not np:
        p = _cudnn.params_from_geom(g)
        y = _cudnn.conv_forward(x, w, b, *p) if p is not None else None
        if y is not None:
            return y, None
    n, o = x.shape[0], w.shape[0]
    lanes = _blocked_plan(x, o, x.shape[1], g)[0] if xp is np else 0
    if lanes:  # (LeNet's 6 -> 16 keeps the direct images-last kernels: its dx cannot be blocked)
        return from_channels_last(_blocked_conv(x, _taps_weight(w), b, g, lanes)), None
    if xp is np and _use_direct(x, o, g, need_dx):
        return _conv_direct(xp, x, w, b, g), None
    m = n * prod(g.out_sp)
    wm = _weight_matrix(w, g.groups)
    if g.groups == 1:
        out, cols = _conv_gemm(xp, x, g, wm[0], keep_cols)
        y = from_channels_last(out)
        if b is not None:
            add_channel_bias(y, b)
        return y, cols
    cols = _im2col(xp, _padded_input_cl(xp, x, g), g)
    og = o // g.groups
    out = xp.empty((m, g.groups, og), x.dtype)
    xp.matmul(cols, wm, out=out.transpose(1, 0, 2))
    out = out.reshape(m, o)
    if b is not None:
        out += b
    y = from_channels_last(out.reshape((n,) + tuple(g.out_sp) + (o,)))
    return y, (cols if keep_cols else None)


def conv_input_grad(dy, w, g: ConvGeom):
    """dx of y = conv(x, w) for x of spatial size g.in_sp (the transposed convolution): a
    convolution of dy for stride 1, one GEMM and an interleave when stride == kernel, else
    dcols = dy @ W^T and col2im (one strided add of each kernel tap's columns)."""
    xp = xp_of(dy)
    if xp is not np:
        p = _cudnn.params_from_geom(g)
        x_shape = (dy.shape[0], w.shape[1] * g.groups) + tuple(g.in_sp)
        dx = _cudnn.conv_backward_data(dy, w, x_shape, *p) if p is not None else None
        if dx is not None:
            return dx
    g_t = _input_grad_geom(g)
    lanes = _blocked_plan(dy, w.shape[0], w.shape[1], g)[1] if xp is np else 0
    if lanes:
        return from_channels_last(_blocked_conv(dy, _flipped_taps_weight(w), None, g_t, lanes))
    if g_t is not None and xp is np and _use_direct_grad(dy, w.shape[1], w.shape[0], g_t):
        return _conv_direct_input_grad(xp, dy, w, g)
    n = dy.shape[0]
    grp = g.groups
    c = w.shape[1] * grp
    o = w.shape[0]
    m = n * prod(g.out_sp)
    d = len(g.ksize)
    rows = _grad_rows(xp, dy)
    wm = _weight_matrix(w, grp)
    span = _window_span(g)
    size = tuple(max(p + s, sp) for p, s, sp in zip(g.pad_lo, g.in_sp, span))
    taps = prod(g.ksize)
    if grp == 1 and taps > 1 and all(s == 1 for s in g.stride) and \
            all(p <= dl * (k - 1) for p, dl, k in zip(g.pad_lo, g.dilation, g.ksize)):
        return _conv_input_grad_as_conv(xp, dy, w, g)
    if grp == 1 and taps > 1 and tuple(g.stride) == tuple(g.ksize) and \
            all(dl == 1 for dl in g.dilation):
        return _conv_input_grad_disjoint(xp, rows, wm[0], g, n, c, size)
    if grp == 1 and taps > 1:
        return _conv_input_grad_by_tap(xp, rows, wm[0], g, n, c, size)
    if grp == 1:
        dcols = rows @ wm[0].T
    else:
        dcols = xp.matmul(rows.reshape(m, grp, o // grp).transpose(1, 0, 2),
                          wm.transpose(0, 2, 1))
    if taps == 1 and all(s == 1 for s in g.stride) and not any(g.pad_lo) and \
            tuple(g.out_sp) == tuple(g.in_sp):
        if grp == 1:
            dx = dcols.reshape((n,) + tuple(g.in_sp) + (c,))
        else:
            dx = xp.ascontiguousarray(dcols.transpose(1, 0, 2)).reshape(
                (n,) + tuple(g.in_sp) + (c,))
        return from_channels_last(dx)
    buf = xp.zeros((n,) + size + (c,), dy.dtype)
    if grp == 1:
        src = dcols.reshape((n,) + tuple(g.out_sp) + tuple(g.ksize) + (c,))
        dst = buf
    else:
        cg = c // grp
        src = dcols.reshape((grp, n) + tuple(g.out_sp) + tuple(g.ksize) + (cg,))
        src = xp.moveaxis(src, 0, -2)
        dst = buf.reshape((n,) + size + (grp, cg))
    lead = (slice(None),) * (1 + d)
    for tap in itertools.product(*[range(k) for k in g.ksize]):
        sl = (slice(None),) + tuple(slice(k * dl, k * dl + s * (os_ - 1) + 1, s)
                                    for k, dl, s, os_ in zip(tap, g.dilation, g.stride,
                                                             g.out_sp))
        dst[sl] += src[lead + tap]
    crop = (slice(None),) + tuple(slice(p, p + s) for p, s in zip(g.pad_lo, g.in_sp))
    return from_channels_last(buf[crop])


def _input_grad_geom(g: ConvGeom):
    """The geometry of dx as a convolution of dy (see _conv_input_grad_as_conv), or None
    when dx is not one (stride > 1, groups, a 1x1 kernel, padding beyond the kernel)."""
    if g.groups != 1 or prod(g.ksize) == 1 or any(s != 1 for s in g.stride) or \
            any(p > dl * (k - 1) for p, dl, k in zip(g.pad_lo, g.dilation, g.ksize)):
        return None
    d = len(g.ksize)
    pad = tuple(dl * (k - 1) - p for p, dl, k in zip(g.pad_lo, g.dilation, g.ksize))
    return ConvGeom((1,) * d, tuple(g.dilation), pad, 1, tuple(g.ksize), tuple(g.out_sp),
                    tuple(g.in_sp))


def _flipped_weight_matrix(w):
    """(O, C, *K) weight -> (taps*O, C): the kernel flipped, in/out channels swapped."""
    d = w.ndim - 2
    wf = w[(slice(None), slice(None)) + (slice(None, None, -1),) * d]
    return wf.transpose(tuple(range(2, 2 + d)) + (0, 1)).reshape(prod(w.shape[2:]) * w.shape[0],
                                                                   w.shape[1])


def conv_input_and_weight_grad(x, dy, w, g: ConvGeom):
    """(dx, dw) of y = conv(x, w) together, or None where this path does not apply (it needs
    the row-window kernel for dx: 2-D, stride 1, a layer big enough to chunk, on the CPU).
    dw comes from the windows of dy that dx is built from: with t' the flipped kernel
    offsets, dw[o, c, t] = sum_pixels x[p, c] * dy_padded[p + t', o], so no windows of x are
    built (the separate weight gradient would build them from x all over again)."""
    xp = xp_of(dy)
    g_t = _input_grad_geom(g)
    if g_t is None or len(g.ksize) != 2 or (xp is np and _use_direct(x, w.shape[0], g, True)):
        return None
    if xp is np and any(_blocked_plan(x, w.shape[0], w.shape[1], g)):
        return None  # the blocked kernels, separately
    o, c = w.shape[0], w.shape[1]
    k = prod(g.ksize) * o
    if _column_chunks(xp, dy.shape[0], g_t, k * dy.itemsize) is None or \
            not _use_row_windows(g_t, o):
        return None
    xcl = xp.ascontiguousarray(to_channels_last(x))
    dx, r = _conv_rows_gemm(xp, to_channels_last(dy), g_t, _flipped_weight_matrix(w), other=xcl)
    kh, kw = g.ksize
    # r[t', (j', o), c] with (t', j') the flipped offsets -> w's (O, C, kh, kw) order
    dw = xp.ascontiguousarray(r.reshape(kh, kw, o, c)[::-1, ::-1].transpose(2, 3, 0, 1))
    return from_channels_last(dx), dw


def _conv_input_grad_as_conv(xp, dy, w, g: ConvGeom):
    """dx for a stride-1 convolution: itself a stride-1 convolution, of dy padded by
    dilation*(k-1) - pad before (so that every tap that reaches a pixel of x is a window
    position) with the kernel flipped and its in/out channels swapped. One GEMM over
    (taps*O)-long columns, built in cache-sized chunks; a col2im of per-tap GEMMs instead
    moves every pixel's C values in and out of memory once per tap, and its GEMMs have only
    O terms to sum (several times slower for 16-64 channels)."""
    out, _ = _conv_gemm(xp, dy, _input_grad_geom(g), _flipped_weight_matrix(w))
    return from_channels_last(out)


def _conv_input_grad_disjoint(xp, rows, wm, g: ConvGeom, n, c, size):
    """dx when stride == kernel size (no dilation), e.g. ConvTranspose2d(k=2, s=2): the taps of
    different dy pixels land on disjoint blocks of dx, so there is nothing to sum: one GEMM
    gives every block, one copy interleaves the blocks (out, k) into pixels."""
    d = len(g.ksize)
    dcols = rows @ wm.T  # (M, taps*C), ordered (kernel offsets..., channel)
    blocks = dcols.reshape((n,) + tuple(g.out_sp) + tuple(g.ksize) + (c,))
    perm = (0,) + tuple(v for i in range(d) for v in (1 + i, 1 + d + i)) + (1 + 2 * d,)
    full = tuple(o_ * k for o_, k in zip(g.out_sp, g.ksize))
    buf = xp.ascontiguousarray(blocks.transpose(perm)).reshape((n,) + full + (c,))
    if full != tuple(size):  # output_padding: zeros past the last block
        grown = xp.zeros((n,) + tuple(size) + (c,), buf.dtype)
        grown[(slice(None),) + tuple(slice(0, f) for f in full)] = buf
        buf = grown
    if any(g.pad_lo) or tuple(g.in_sp) != tuple(size):
        buf = buf[(slice(None),) + tuple(slice(p, p + sz) for p, sz in zip(g.pad_lo, g.in_sp))]
    return from_channels_last(buf)


def _conv_input_grad_by_tap(xp, rows, wm, g: ConvGeom, n, c, size):
    """col2im one kernel tap at a time: tap t's columns are rows @ W_t, a dense (M, C)
    block. With stride 1 it is added into a window of the buffer that is contiguous along
    (W, C). With stride s, the buffer is split into its s**d phases (positions congruent mod
    s), each its own dense array: a tap adds into one phase at an offset, again with long
    contiguous runs on both sides, and the phases are interleaved into the result once at the
    end. (With one (M, taps*C) GEMM the source of every add would be strided by taps*C and,
    with a stride, the target too: several times slower.)"""
    taps = list(itertools.product(*[range(k) for k in g.ksize]))
    wt = wm.reshape(len(taps), c, -1)
    s = g.stride
    unit = all(v == 1 for v in s)
    pos = [tuple(k * dl for k, dl in zip(tap, g.dilation)) for tap in taps]
    if unit:
        buf = xp.zeros((n,) + size + (c,), rows.dtype)
        targets = [(buf, p) for p in pos]
    else:
        psize = tuple(-(-sz // st) for sz, st in zip(size, s))  # ceil(size / stride)
        phases = {}
        targets = []
        for p in pos:
            key = tuple(a % st for a, st in zip(p, s))
            if key not in phases:
                phases[key] = xp.zeros((n,) + psize + (c,), rows.dtype)
            targets.append((phases[key], tuple(a // st for a, st in zip(p, s))))
    per_img = prod(g.out_sp)

    def run(images):  # the taps of images [n0, n1): disjoint rows of every target
        n0, n1 = images[0], images[-1] + 1
        rows_i = rows[n0 * per_img:n1 * per_img]
        tmp = xp.empty((rows_i.shape[0], c), rows.dtype)
        blk = (n1 - n0,) + tuple(g.out_sp) + (c,)
        for t, (dst, off) in enumerate(targets):
            xp.matmul(rows_i, wt[t].T, out=tmp)
            sl = (slice(n0, n1),) + tuple(slice(a, a + o) for a, o in zip(off, g.out_sp))
            dst[sl] += tmp.reshape(blk)
    if xp is np:
        parallel_parts(run, list(range(n)))
    else:  # one stream of GPU work: no host threads
        run(list(range(n)))
    if unit:
        crop = (slice(None),) + tuple(slice(p, p + sz) for p, sz in zip(g.pad_lo, g.in_sp))
        return from_channels_last(buf[crop])
    # interleave the phases straight into the unpadded result (a dense array, so the next
    # layer's backward reads it in one pass): phase key k along a dim holds the padded
    # positions k + st*q, i.e. x positions k + st*q - pad, of which those inside x are kept
    full = len(phases) == prod(s)
    out = (xp.empty if full else xp.zeros)((n,) + tuple(g.in_sp) + (c,), rows.dtype)
    for key, ph in phases.items():
        dst, src = [slice(None)], [slice(None)]
        for k, st, p, sz in zip(key, s, g.pad_lo, g.in_sp):
            q0 = max(0, -(-(p - k) // st))  # first q with k + st*q >= p
            q1 = (p + sz - 1 - k) // st  # last q with k + st*q < p + sz
            count = min(q1, ph.shape[len(dst)] - 1) - q0 + 1
            if count <= 0:
                break
            u0 = k + st * q0 - p
            dst.append(slice(u0, u0 + st * (count - 1) + 1, st))
            src.append(slice(q0, q0 + count))
        else:
            out[tuple(dst)] = ph[tuple(src)]
    return from_channels_last(out)


def conv_weight_grad(x, dy, g: ConvGeom, w_shape, cols=None):
    """dw of y = conv(x, w): the columns of x (reused from the forward pass when given)
    times dy, one GEMM per group."""
    xp = xp_of(dy)
    if xp is not np:
        p = _cudnn.params_from_geom(g)
        dw = _cudnn.conv_backward_filter(x, dy, w_shape, *p) if p is not None else None
        if dw is not None:
            return dw
    lanes = _blocked_plan(x, dy.shape[1], x.shape[1], g)[0] \
        if xp is np and type(dy) is np.ndarray else 0
    if lanes:
        return _blocked_weight_grad(x, dy, g, tuple(w_shape), lanes)
    if xp is np and type(x) is np.ndarray and \
            _use_direct_grad(dy, dy.shape[1], x.shape[1], g):
        return _conv_direct_weight_grad(xp, x, dy, g, tuple(w_shape))
    if g.groups == 1:
        if cols is not None:
            dwm = cols.T @ _grad_rows(xp, dy)
        else:
            dycl = xp.ascontiguousarray(to_channels_last(dy))
            dwm = _conv_weight_gemm(xp, x, g, dycl)
        return _weight_from_matrix(xp, dwm[None], tuple(w_shape), g.groups)
    if cols is None:
        cols = _im2col(xp, _padded_input_cl(xp, x, g), g)
    rows = _grad_rows(xp, dy)
    m, o = rows.shape
    dwm = xp.matmul(cols.transpose(0, 2, 1),
                    rows.reshape(m, g.groups, o // g.groups).transpose(1, 0, 2))
    return _weight_from_matrix(xp, dwm, tuple(w_shape), g.groups)


# ============================================================================ ops
def add_channel_bias(y, b):
    """y += b over dim 1 of an (N, C, *S) array, in place. Channels-last, the C values of a
    pixel are contiguous and a plain broadcast runs one inner loop of C elements per pixel;
    pixels are taken r at a time (rows of r*C, b tiled r times) so the loops are long."""
    xp = xp_of(y)
    c = y.shape[1]
    cl = to_channels_last(y)
    if y.ndim > 2 and cl.flags.c_contiguous:
        m = y.size // c
        r = 1
        while r * c < 512 and m % (2 * r) == 0:
            r *= 2
        rows = cl.reshape(m // r, r * c)
        rows += xp.tile(b.reshape(c), r) if r > 1 else b.reshape(c)
    else:
        y += b.reshape((1, c) + (1,) * (y.ndim - 2))


def _bias_grad(g: Tensor) -> Tensor:
    if _State.grad_enabled:
        return g.sum((0,) + tuple(range(2, g.ndim)))
    return _make(channel_sum(g._data), None, 0)


class ConvNd(Op):
    """y = conv(x, w) [+ b]; inputs (x, w) or (x, w, b)."""

    save_inputs = (0, 1)
    need_dx = True  # whether dx will be wanted (see _use_direct); ConvNd.apply may say not

    def forward(self, x, w, b=None):
        y, self.cols = conv_forward(x, w, b, self.geom, self.keep_cols, self.need_dx)
        return y

    def backward(self, g):
        refuse_complex_backward(g, "conv")
        x, w = self.saved_tensors
        edges = self.next_edges
        both = None
        if not _State.grad_enabled and edges[0] is not None and edges[1] is not None and \
                self.cols is None:  # no graph of the backward wanted: dx and dw in one pass
            both = conv_input_and_weight_grad(x._data, g._data, w._data, self.geom)
        if both is not None:
            gx, gw = _make(both[0], None, 0), _make(both[1], None, 0)
        else:
            gx = ConvInputGrad.apply(g, w, geom=self.geom) if edges[0] is not None else None
            gw = None
            if edges[1] is not None:
                cols = None if _State.grad_enabled else self.cols
                gw = ConvWeightGrad.apply(x, g, geom=self.geom, w_shape=w._data.shape,
                                          cols=cols)
        if len(edges) == 3:
            return gx, gw, (_bias_grad(g) if edges[2] is not None else None)
        return gx, gw

    def _release_extra(self):
        self.cols = None


class ConvInputGrad(Op):
    """dx = T(dy, w), the adjoint of x -> conv(x, w); also the transposed convolution."""

    save_inputs = (0, 1)

    def forward(self, dy, w):
        return conv_input_grad(dy, w, self.geom)

    def backward(self, gg):
        dy, w = self.saved_tensors
        e_dy, e_w = self.next_edges
        g_dy = ConvNd.apply(gg, w, geom=self.geom, keep_cols=False) if e_dy is not None else None
        g_w = ConvWeightGrad.apply(gg, dy, geom=self.geom, w_shape=w._data.shape,
                                   cols=None) if e_w is not None else None
        return g_dy, g_w


class ConvTranspose(Op):
    """y = conv_transpose(x, w) + b: ConvInputGrad with the bias added in place (its
    gradient is then a channel sum, not the SumTo of a broadcast add)."""

    save_inputs = (0, 1)

    def forward(self, dy, w, b):
        y = conv_input_grad(dy, w, self.geom)  # a fresh array: safe to add into
        add_channel_bias(y, b)
        return y

    def backward(self, gg):
        dy, w = self.saved_tensors
        e_dy, e_w, e_b = self.next_edges
        g_dy = ConvNd.apply(gg, w, geom=self.geom, keep_cols=False) if e_dy is not None else None
        g_w = ConvWeightGrad.apply(gg, dy, geom=self.geom, w_shape=w._data.shape,
                                   cols=None) if e_w is not None else None
        return g_dy, g_w, (_bias_grad(gg) if e_b is not None else None)


class ConvWeightGrad(Op):
    """dw = W(x, dy), the adjoint of w -> conv(x, w)."""

    save_inputs = (0, 1)

    def forward(self, x, dy):
        cols, self.cols = self.cols, None  # the forward's columns: used once, not kept
        return conv_weight_grad(x, dy, self.geom, self.w_shape, cols)

    def backward(self, gw):
        x, dy = self.saved_tensors
        e_x, e_dy = self.next_edges
        g_x = ConvInputGrad.apply(dy, gw, geom=self.geom) if e_x is not None else None
        g_dy = ConvNd.apply(x, gw, geom=self.geom, keep_cols=False) if e_dy is not None else None
        return g_x, g_dy


# ============================================================================ argument checks
def _in_float32(fn, *tensors):
    """fn over float32 copies of bfloat16 tensors, the result cast back to bfloat16: NumPy has
    no bfloat16 BLAS (PyTorch's CPU kernels also accumulate bfloat16 products in float32)."""
    out = fn(*[t.float() if isinstance(t, Tensor) else t for t in tensors])
    return out.to(dtype=tensors[0].dtype)


def _is_bfloat16(t) -> bool:
    return t._data.dtype.name == "bfloat16"


def _check_float_pair(input: Tensor, weight: Tensor, bias, opname):
    if input._data.dtype.kind not in "fc" and not _is_bfloat16(input):
        raise RuntimeError(f"{opname}: expected a floating point input, got {input.dtype.name}")
    if weight._data.dtype != input._data.dtype:
        raise RuntimeError(f"{opname}: Input type ({input.dtype.name}) and weight type "
                           f"({weight.dtype.name}) should be the same")
    if bias is not None and bias._data.dtype != input._data.dtype:
        raise RuntimeError(f"{opname}: Input type ({input.dtype.name}) and bias type "
                           f"({bias.dtype.name}) should be the same")
    if type(input._data) is not type(weight._data) and \
            device_of(input._data) != device_of(weight._data):
        raise RuntimeError(f"{opname}: Input ({input.device}) and weight ({weight.device}) must "
                           "be on the same device")


def _batched(input: Tensor, d: int, opname: str):
    """(input with a batch dim, whether one was added) for an op over d spatial dims."""
    nd = input._data.ndim
    if nd == d + 2:
        return input, False
    if nd == d + 1:
        return input.unsqueeze(0), True
    raise RuntimeError(f"{opname}: Expected {d + 1}D (unbatched) or {d + 2}D (batched) input to "
                       f"{opname}, but got input of size: {list(input.shape)}")


def _check_conv_args(input, weight, bias, groups, d, opname):
    """Shared argument checks of the convolutions: (batched input, was-unbatched, groups)."""
    _check_float_pair(input, weight, bias, opname)
    x, unbatched = _batched(input, d, opname)
    if weight._data.ndim != d + 2:
        raise RuntimeError(f"{opname}: Expected {d + 2}-dimensional weight for {d + 2}-dimensional "
                           f"input {list(x.shape)}, but got {weight._data.ndim}-dimensional weight "
                           f"of size {list(weight.shape)}")
    groups = int(groups)
    if groups <= 0:
        raise RuntimeError(f"{opname}: non-positive groups is not supported")
    return x, unbatched, groups


def _conv(input, weight, bias, stride, padding, dilation, groups, d, opname):
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op(opname, _conv, input, weight, bias, stride, padding, dilation, groups,
                          d, opname)
        if out is not None:
            return out
    x, unbatched, groups = _check_conv_args(input, weight, bias, groups, d, opname)
    if _is_bfloat16(input):
        return _in_float32(lambda i, w, b: _conv(i, w, b, stride, padding, dilation, groups, d,
                                                 opname), input, weight, bias)
    o, cg = weight._data.shape[:2]
    ksize = tuple(weight._data.shape[2:])
    n, c = x._data.shape[:2]
    in_sp = tuple(x._data.shape[2:])
    if c != cg * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {cg * groups} channels, but got {c} "
                           "channels instead")
    if o % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} "
                           f"at dimension 0, but got weight of size {list(weight.shape)} instead")
    if bias is not None and tuple(bias._data.shape) != (o,):
        raise RuntimeError(f"Given weight of size {list(weight.shape)}, expected bias to be "
                           f"1-dimensional with {o} elements, but got bias of size "
                           f"{list(bias.shape)} instead")
    stride = ntuple(stride, d, "stride", opname)
    dilation = ntuple(dilation, d, "dilation", opname)
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"{opname}: non-positive stride is not supported")
    if any(v <= 0 for v in dilation):
        raise RuntimeError(f"{opname}: dilation should be greater than zero")
    if isinstance(padding, str):
        if padding == "valid":
            lo = hi = (0,) * d
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise RuntimeError(f"{opname}: padding='same' is not supported for strided "
                                   "convolutions")
            total = tuple(dl * (k - 1) for dl, k in zip(dilation, ksize))
            lo = tuple(t // 2 for t in total)
            hi = tuple(t - t // 2 for t in total)
        else:
            raise RuntimeError(f"{opname}: Invalid padding string '{padding}', should be one of "
                               "'valid' or 'same'")
    else:
        lo = hi = ntuple(padding, d, "padding", opname)
        if any(p < 0 for p in lo):
            raise RuntimeError(f"{opname}: negative padding is not supported")
    eff = tuple(dl * (k - 1) + 1 for dl, k in zip(dilation, ksize))
    padded = tuple(s + a + b for s, a, b in zip(in_sp, lo, hi))
    if any(p < e for p, e in zip(padded, eff)):
        raise RuntimeError(f"{opname}: Calculated padded input size per channel: "
                           f"({' x '.join(map(str, padded))}). Kernel size: "
                           f"({' x '.join(map(str, eff))}). Kernel size can't be greater than "
                           "actual input size")
    out_sp = tuple((p - e) // s + 1 for p, e, s in zip(padded, eff, stride))
    geom = ConvGeom(stride, dilation, lo, groups, ksize, in_sp, out_sp)
    keep_cols = _State.grad_enabled and weight._requires_grad
    need_dx = _State.grad_enabled and x._requires_grad
    args = (x, weight) if bias is None else (x, weight, bias)
    y = ConvNd.apply(*args, geom=geom, keep_cols=keep_cols, need_dx=need_dx)
    return y.squeeze(0) if unbatched else y


def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, d,
                    opname):
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op(opname, _conv_transpose, input, weight, bias, stride, padding,
                          output_padding, groups, dilation, d, opname)
        if out is not None:
            return out
    x, unbatched, groups = _check_conv_args(input, weight, bias, groups, d, opname)
    if _is_bfloat16(input):
        return _in_float32(lambda i, w, b: _conv_transpose(
            i, w, b, stride, padding, output_padding, groups, dilation, d, opname),
            input, weight, bias)
    cin, cout_g = weight._data.shape[:2]
    ksize = tuple(weight._data.shape[2:])
    c = x._data.shape[1]
    if c != cin:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {cin} channels, but got {c} channels "
                           "instead")
    if cin % groups:
        raise RuntimeError(f"{opname}: weight of size {list(weight.shape)} must have a first "
                           f"dimension divisible by groups={groups}")
    cout = cout_g * groups
    if bias is not None and tuple(bias._data.shape) != (cout,):
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"bias to be 1-dimensional with {cout} elements, but got bias of size "
                           f"{list(bias.shape)} instead")
    if isinstance(padding, str):
        raise RuntimeError(f"{opname}: padding must be an int or a tuple of ints (string padding "
                           "is not supported for transposed convolutions)")
    stride = ntuple(stride, d, "stride", opname)
    pad = ntuple(padding, d, "padding", opname)
    opad = ntuple(output_padding, d, "output_padding", opname)
    dilation = ntuple(dilation, d, "dilation", opname)
    if any(s <= 0 for s in stride) or any(v <= 0 for v in dilation):
        raise RuntimeError(f"{opname}: stride and dilation should be greater than zero")
    if any(p < 0 for p in pad) or any(p < 0 for p in opad):
        raise RuntimeError(f"{opname}: negative padding is not supported")
    for op_, s, dl in zip(opad, stride, dilation):
        if op_ >= s and op_ >= dl:
            raise RuntimeError(f"{opname}: output padding must be smaller than either stride or "
                               f"dilation, but got output_padding={list(opad)}, "
                               f"stride={list(stride)}, dilation={list(dilation)}")
    in_sp = tuple(x._data.shape[2:])
    out_sp = tuple((i - 1) * s - 2 * p + dl * (k - 1) + op_ + 1
                   for i, s, p, dl, k, op_ in zip(in_sp, stride, pad, dilation, ksize, opad))
    if any(v <= 0 for v in out_sp):
        raise RuntimeError(f"{opname}: Given input size per channel: {list(in_sp)}, calculated "
                           f"output size per channel: {list(out_sp)}. Output size is too small")
    # the transposed conv is the input-gradient of the conv that maps its output to its input
    geom = ConvGeom(stride, dilation, pad, groups, ksize, out_sp, in_sp)
    if bias is not None:
        y = ConvTranspose.apply(x, weight, bias, geom=geom)
    else:
        y = ConvInputGrad.apply(x, weight, geom=geom)
    return y.squeeze(0) if unbatched else y


# ============================================================================ public API
@register_functional("conv1d")
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """1-D convolution over (N, C, L) (or unbatched (C, L)) input, as torch's."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


@register_functional("conv2d")
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D convolution over (N, C, H, W) input; padding an int, a pair, 'same' or 'valid'."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


@register_functional("conv3d")
def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    return _conv(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


@register_functional("conv_transpose1d")
def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1, "conv_transpose1d")


@register_functional("conv_transpose2d")
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    """Transposed 2-D convolution; weight (C_in, C_out/groups, kH, kW)."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2, "conv_transpose2d")


@register_functional("conv_transpose3d")
def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 3, "conv_transpose3d")


# ---------------------------------------------------------------------------- linear
class Linear(Op):
    """y = x @ w.T [+ b] over the last dim of x; one GEMM on the flattened leading dims."""

    save_inputs = (0, 1)

    def forward(self, x, w, b=None):
        lead = x.shape[:-1]
        y = x.reshape(-1, x.shape[-1]) @ w.T
        if b is not None:
            y += b
        return y.reshape(lead + (w.shape[0],))

    def backward(self, g):
        refuse_complex_backward(g, "linear")
        x, w = self.saved_tensors
        edges = self.next_edges
        has_b = len(edges) == 3
        if _State.grad_enabled:
            gx = g.matmul(w) if edges[0] is not None else None
            g2 = g.reshape(-1, g.shape[-1])
            gw = g2.t().matmul(x.reshape(-1, x.shape[-1])) if edges[1] is not None else None
            gb = g2.sum(0) if has_b and edges[2] is not None else None
        else:
            ga = g._data
            g2 = ga.reshape(-1, ga.shape[-1])
            xa = x._data
            gx = gw = gb = None
            if edges[0] is not None:  # one GEMM over the flattened leading dims
                gx = _make((g2 @ w._data).reshape(xa.shape), None, 0)
            if edges[1] is not None:
                gw = _make(g2.T @ xa.reshape(-1, xa.shape[-1]), None, 0)
            if has_b and edges[2] is not None:
                gb = _make(_column_sum(g2), None, 0)
        return (gx, gw, gb) if has_b else (gx, gw)


def _column_sum(m):
    """Sum of the rows of a matrix: a BLAS gemv when contiguous (a strided numpy sum over
    axis 0 of a wide matrix is several times slower)."""
    if m.flags.c_contiguous and m.dtype.kind == "f" and m.shape[0] > 1:
        return xp_of(m).ones(m.shape[0], m.dtype) @ m
    return m.sum(axis=0)


@register_functional("linear")
def linear(input, weight, bias=None) -> Tensor:
    """y = input @ weight.T + bias, weight (out_features, in_features)."""
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("linear", linear, input, weight, bias)
        if out is not None:
            return out
    _check_float_pair(input, weight, bias, "linear")
    if _is_bfloat16(input):
        return _in_float32(linear, input, weight, bias)
    if weight._data.ndim not in (1, 2):
        raise RuntimeError(f"linear: weight must be 1-D or 2-D, got shape {list(weight.shape)}")
    if input._data.ndim == 0:
        raise RuntimeError("linear: input must have at least one dimension")
    in_f = weight._data.shape[-1]
    if input._data.shape[-1] != in_f:
        shape_a = "x".join(map(str, (prod(input.shape[:-1]), input.shape[-1])))
        shape_b = "x".join(map(str, tuple(reversed(weight.shape))))
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({shape_a} and {shape_b})")
    if weight._data.ndim == 1:
        y = (input * weight).sum(-1)
        return y + bias if bias is not None else y
    if bias is not None and tuple(bias._data.shape) != (weight._data.shape[0],):
        if bias._data.ndim == 0 or bias._data.size == 1:
            return Linear.apply(input, weight) + bias
        raise RuntimeError(f"linear: bias of shape {list(bias.shape)} does not match "
                           f"out_features={weight.shape[0]}")
    if input._data.ndim == 1:
        out = Linear.apply(input.unsqueeze(0), weight, *(() if bias is None else (bias,)))
        return out.squeeze(0)
    return Linear.apply(input, weight, *(() if bias is None else (bias,)))


@register_functional("bilinear")
def bilinear(input1, input2, weight, bias=None) -> Tensor:
    """y_k = input1^T W_k input2 + b_k over the last dims; weight (out, in1, in2)."""
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("bilinear", bilinear, input1, input2, weight, bias)
        # off the CPU's list: one kernel in PyTorch, so matmul's cast must not apply inside
        return out if out is not None else run_without_autocast(bilinear, input1, input2,
                                                                weight, bias)
    if weight._data.ndim != 3:
        raise RuntimeError(f"bilinear: expected a 3-D weight, got shape {list(weight.shape)}")
    o, i1, i2 = weight._data.shape
    if input1._data.shape[-1] != i1 or input2._data.shape[-1] != i2:
        raise RuntimeError(f"bilinear: input1 {list(input1.shape)} and input2 "
                           f"{list(input2.shape)} do not match weight {list(weight.shape)} in "
                           "their last dims")
    if input1._data.shape[:-1] != input2._data.shape[:-1]:
        raise RuntimeError(f"bilinear: input1 {list(input1.shape)} and input2 "
                           f"{list(input2.shape)} must have the same leading dims")
    lead = tuple(input1._data.shape[:-1])
    a = input1.reshape(-1, i1)
    bmat = input2.reshape(-1, 1, i2)
    # (B, i1) @ (i1, o*i2) -> (B, o, i2), then the contraction with input2 over i2
    t = a.matmul(weight.permute(1, 0, 2).reshape(i1, o * i2)).reshape(-1, o, i2)
    y = (t * bmat).sum(-1)
    if bias is not None:
        y = y + bias
    return y.reshape(lead + (o,))


# ---------------------------------------------------------------------------- unfold / fold
class Unfold(Op):
    """(N, C, H, W) -> (N, C*kh*kw, L) sliding blocks, channel-major as torch's."""

    def forward(self, x):
        xp = xp_of(x)
        g = self.geom
        n, c = x.shape[:2]
        span = _window_span(g)
        xb = x
        if any(g.pad_lo) or tuple(span) != tuple(g.in_sp):
            size = tuple(max(p + s, sp) for p, s, sp in zip(g.pad_lo, g.in_sp, span))
            xb = xp.zeros((n, c) + size, x.dtype)
            xb[(slice(None), slice(None)) + tuple(slice(p, p + s) for p, s in
                                                  zip(g.pad_lo, g.in_sp))] = x
        st = xb.strides
        shape = (n, c) + tuple(g.ksize) + tuple(g.out_sp)
        strides = (st[0], st[1]) + tuple(st[2 + i] * g.dilation[i] for i in range(2)) + \
            tuple(st[2 + i] * g.stride[i] for i in range(2))
        view = as_strided(xp, xb, shape, strides)
        return view.reshape(n, c * prod(g.ksize), prod(g.out_sp))

    def backward(self, g):
        return (Fold.apply(g, geom=self.geom),)


class Fold(Op):
    """(N, C*kh*kw, L) -> (N, C, H, W), summing overlapping values (col2im)."""

    def forward(self, cols):
        xp = xp_of(cols)
        g = self.geom
        n = cols.shape[0]
        taps = prod(g.ksize)
        c = cols.shape[1] // taps
        span = _window_span(g)
        size = tuple(max(p + s, sp) for p, s, sp in zip(g.pad_lo, g.in_sp, span))
        buf = xp.zeros((n, c) + size, cols.dtype)
        src = cols.reshape((n, c) + tuple(g.ksize) + tuple(g.out_sp))
        for tap in itertools.product(*[range(k) for k in g.ksize]):
            sl = (slice(None), slice(None)) + tuple(
                slice(k * dl, k * dl + s * (o - 1) + 1, s)
                for k, dl, s, o in zip(tap, g.dilation, g.stride, g.out_sp))
            buf[sl] += src[(slice(None), slice(None)) + tap]
        return buf[(slice(None), slice(None)) + tuple(slice(p, p + s) for p, s in
                                                      zip(g.pad_lo, g.in_sp))]

    def backward(self, gg):
        return (Unfold.apply(gg, geom=self.geom),)


def _fold_geom(in_sp, kernel_size, dilation, padding, stride, opname):
    k = ntuple(kernel_size, 2, "kernel_size", opname)
    dl = ntuple(dilation, 2, "dilation", opname)
    p = ntuple(padding, 2, "padding", opname)
    s = ntuple(stride, 2, "stride", opname)
    if any(v <= 0 for v in k + dl + s) or any(v < 0 for v in p):
        raise RuntimeError(f"{opname}: kernel_size, dilation and stride must be positive and "
                           f"padding non-negative, got kernel_size={list(k)}, dilation={list(dl)}, "
                           f"padding={list(p)}, stride={list(s)}")
    out = tuple((i + 2 * pp - d_ * (kk - 1) - 1) // ss + 1
                for i, pp, d_, kk, ss in zip(in_sp, p, dl, k, s))
    if any(o <= 0 for o in out):
        raise RuntimeError(f"{opname}: Given input with spatial size {list(in_sp)}, "
                           f"kernel_size={list(k)}, dilation={list(dl)}, padding={list(p)}, "
                           f"calculated shape of the array of sliding blocks as {list(out)}, but "
                           "its components must be at least one.")
    return ConvGeom(s, dl, p, 1, k, tuple(in_sp), out)


@register_functional("unfold")
def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Extract sliding local blocks: (N, C, H, W) -> (N, C*prod(kernel_size), L)."""
    if input._data.ndim not in (3, 4):
        raise RuntimeError(f"Input Error: Only 3D or 4D input Tensors are supported (got "
                           f"{input._data.ndim}D)")
    x, unbatched = (input.unsqueeze(0), True) if input._data.ndim == 3 else (input, False)
    g = _fold_geom(tuple(x._data.shape[2:]), kernel_size, dilation, padding, stride, "unfold")
    y = Unfold.apply(x, geom=g)
    return y.squeeze(0) if unbatched else y


@register_functional("fold")
def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Combine sliding local blocks into a tensor: (N, C*prod(k), L) -> (N, C, *output_size)."""
    if input._data.ndim not in (2, 3):
        raise RuntimeError(f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are "
                           f"supported (got {input._data.ndim}D)")
    x, unbatched = (input.unsqueeze(0), True) if input._data.ndim == 2 else (input, False)
    osz = ntuple(output_size, 2, "output_size", "fold")
    g = _fold_geom(osz, kernel_size, dilation, padding, stride, "fold")
    taps = prod(g.ksize)
    if x._data.shape[1] % taps:
        raise RuntimeError(f"Expected size of input's dimension 1 to be divisible by the product "
                           f"of kernel_size, but got input.size(1)={x._data.shape[1]} and "
                           f"kernel_size={list(g.ksize)}")
    if x._data.shape[2] != prod(g.out_sp):
        raise RuntimeError(f"Given output_size={list(osz)}, kernel_size={list(g.ksize)}, "
                           f"dilation={list(g.dilation)}, padding={list(g.pad_lo)}, "
                           f"stride={list(g.stride)}, expected size of input's dimension 2 to "
                           f"match the calculated number of sliding blocks "
                           f"{' * '.join(map(str, g.out_sp))} = {prod(g.out_sp)}, but got "
                           f"input.size(2)={x._data.shape[2]}.")
    y = Fold.apply(x, geom=g)
    return y.squeeze(0) if unbatched else y


__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "linear", "bilinear", "unfold", "fold"]

