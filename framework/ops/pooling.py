"""Pooling: max_pool1d/2d/3d (dilation, ceil_mode, return_indices), avg_pool1d/2d/3d
(ceil_mode, count_include_pad, divisor_override), adaptive avg/max pools, lp pools and
max_unpool.

Every window op here is a loop over the kernel's taps (at most kh*kw*kd iterations), each a
whole-tensor strided-slice op, never a loop over pixels; the tensor keeps its memory order
(channels-last inputs give channels-last outputs). Max pooling records, per output, which tap
won (int8): its backward routes the gradient back tap by tap, and that routing (`MaxPoolGrad`)
and its adjoint (`MaxPoolSelect`) are each other's backward, as are `AvgPool` and
`AvgPoolGrad`, so pooling is differentiable to any order.

bfloat16: max pooling runs on it as it is (a max is exact; overlapping windows sum their
gradients in float32), the average pools in float32 with one rounding at the end
(`_bfloat16.bfloat16_in_float32`).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from .conv import ConvGeom, _window_span, empty_like_layout, ntuple, prod
from ._bfloat16 import BFLOAT16_NP as _BF16, bfloat16_in_float32
from ._functional_registry import register_functional
from .resample import AxisGather, AxisMap, SpatialGather
from ..amp import _AutocastState, autocast_listed, autocast_op

_make = Tensor._make
_AUTOCAST = _AutocastState.enabled


# ============================================================================ helpers
def _taps(g: ConvGeom):
    return list(itertools.product(*[range(k) for k in g.ksize]))


def _tap_view(xb, tap, g: ConvGeom):
    return xb[(slice(None), slice(None)) + tuple(
        slice(k * dl, k * dl + s * (o - 1) + 1, s)
        for k, dl, s, o in zip(tap, g.dilation, g.stride, g.out_sp))]


def _padded(xp, x, g: ConvGeom, fill):
    """x (N, C, *S) inside an (N, C, *size) buffer of `fill` at offset pad_lo, size covering
    both the padded input and every window; x itself (or a crop of it) when nothing pads."""
    span = _window_span(g)
    if not any(g.pad_lo) and all(s <= n for s, n in zip(span, g.in_sp)):
        return x[(slice(None), slice(None)) + tuple(slice(0, s) for s in span)]
    size = tuple(max(p + n, s) for p, n, s in zip(g.pad_lo, g.in_sp, span))
    buf = empty_like_layout(xp, x, x.shape[:2] + size, fill=fill)
    buf[(slice(None), slice(None)) + tuple(slice(p, p + n) for p, n in
                                           zip(g.pad_lo, g.in_sp))] = x
    return buf


def _crop(buf, g: ConvGeom):
    return buf[(slice(None), slice(None)) + tuple(slice(p, p + n) for p, n in
                                                  zip(g.pad_lo, g.in_sp))]


def _grad_buffer(xp, like, g: ConvGeom, dtype=None):
    span = _window_span(g)
    size = tuple(max(p + n, s) for p, n, s in zip(g.pad_lo, g.in_sp, span))
    return empty_like_layout(xp, like, like.shape[:2] + size, dtype=dtype, fill=0)


def _overlapping(g: ConvGeom) -> bool:
    """Whether two windows can read the same input position."""
    return any(s < dl * (k - 1) + 1 for s, dl, k in zip(g.stride, g.dilation, g.ksize))


def _tiles(g: ConvGeom) -> bool:
    """Whether the windows tile the input exactly: stride == kernel, no padding or dilation,
    no partial window (MaxPool2d(2) on an even size). Every position is in one window."""
    return not any(g.pad_lo) and all(dl == 1 for dl in g.dilation) and \
        tuple(g.stride) == tuple(g.ksize) and \
        all(o * k == n for o, k, n in zip(g.out_sp, g.ksize, g.in_sp))


def _element_strides(a):
    return tuple(st // a.itemsize for st in a.strides)


def _first_max_tap(xp, views, out):
    """Per output, the index of the first tap view equal to the window maximum `out` (no
    NaN): arg = ne_0 * (1 + ne_1 * (1 + ... ne_{T-2})), ne_t = (view_t != out), in place on
    int8. Whole-array ops only, no masked copies (those are several times slower)."""
    arg = xp.not_equal(views[-2], out).view(np.int8)
    for v in reversed(views[:-2]):
        arg += 1
        arg *= xp.not_equal(v, out)
    return arg


def _pool_out(n, k, s, p, dl, ceil_mode):
    num = n + 2 * p - dl * (k - 1) - 1
    o = (num + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _batched(input: Tensor, d: int, opname: str):
    nd = input._data.ndim
    if nd == d + 2:
        return input, False
    if nd == d + 1:
        return input.unsqueeze(0), True
    raise RuntimeError(f"{opname}: Expected {d + 1}D or {d + 2}D input tensor, but got "
                       f"{nd}D input of size {list(input.shape)}")


def _pool_geom(x: Tensor, kernel_size, stride, padding, dilation, ceil_mode, d, opname,
               is_max):
    k = ntuple(kernel_size, d, "kernel_size", opname)
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else \
        ntuple(stride, d, "stride", opname)
    p = ntuple(padding, d, "padding", opname)
    dl = ntuple(dilation, d, "dilation", opname)
    if any(v <= 0 for v in k):
        raise RuntimeError(f"{opname}: kernel_size must be greater than zero, but got "
                           f"{list(k)}")
    if any(v <= 0 for v in s):
        raise RuntimeError(f"{opname}: stride must be greater than zero, but got {list(s)}")
    if any(v <= 0 for v in dl):
        raise RuntimeError(f"{opname}: dilation must be greater than zero, but got {list(dl)}")
    for pp, kk, dd in zip(p, k, dl):
        eff = (kk - 1) * dd + 1 if is_max else kk
        if pp < 0 or pp > eff // 2:
            raise RuntimeError(f"{opname}: pad should be at most half of effective kernel size, "
                               f"but got pad={pp}, kernel_size={kk} and dilation={dd}")
    in_sp = tuple(x._data.shape[2:])
    out = tuple(_pool_out(n, kk, ss, pp, dd, ceil_mode)
                for n, kk, ss, pp, dd in zip(in_sp, k, s, p, dl))
    if any(o <= 0 for o in out):
        raise RuntimeError(f"{opname}: Given input size: ({'x'.join(map(str, x.shape[1:]))}). "
                           f"Calculated output size: ({x.shape[1]}x{'x'.join(map(str, out))}). "
                           "Output size is too small")
    return ConvGeom(s, dl, p, 1, k, in_sp, out)


# ============================================================================ max pooling
def _is_float(dtype) -> bool:
    """Floating, bfloat16 (NumPy kind 'V') included: max pooling runs on it natively (a max
    is exact in any dtype)."""
    return dtype.kind == "f" or (dtype.kind == "V" and dtype == _BF16)


def _min_value(dtype):
    if _is_float(dtype):
        return -math.inf
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min


def _arg_dtype(n_taps):
    return np.int8 if n_taps < 128 else np.int32


class MaxPool(Op):
    """Max over each window; with `need_arg`, also which tap won (first maximum; NaN wins as
    in PyTorch)."""

    def forward(self, x):
        xp = xp_of(x)
        g = self.geom
        xb = _padded(xp, x, g, _min_value(x.dtype))
        taps = _taps(g)
        out = empty_like_layout(xp, x, x.shape[:2] + tuple(g.out_sp))
        views = [_tap_view(xb, tap, g) for tap in taps]
        if len(views) == 1:
            xp.copyto(out, views[0])
        elif not self.need_arg or (len(views) < 128 and _tiles(g)):
            xp.maximum(views[0], views[1], out=out)
            for v in views[2:]:
                xp.maximum(out, v, out=out)
        else:
            xp.copyto(out, views[0])
        if not self.need_arg:
            self.arg = self.arg_box = None
            return out
        if 1 < len(views) < 128 and _tiles(g):
            if not _is_float(x.dtype) or not bool(xp.isnan(out).any()):
                self.arg = arg = _first_max_tap(xp, views, out)
                self.arg_box.append(arg)
                self.arg_box = None
                return out
            xp.copyto(out, views[0])  # a NaN (wins, as in PyTorch): the general scan below
        arg = empty_like_layout(xp, x, out.shape, dtype=_arg_dtype(len(taps)), fill=0)
        nan_aware = _is_float(x.dtype) and not bool(xp.isfinite(x.sum()))
        for t, v in enumerate(views[1:], 1):
            m = v > out
            if nan_aware:
                m |= xp.isnan(v)
            xp.copyto(out, v, where=m)
            xp.copyto(arg, t, where=m)
        self.arg = arg
        self.arg_box.append(arg)
        self.arg_box = None
        return out

    def backward(self, gy):
        return (MaxPoolGrad.apply(gy, arg=self.arg, geom=self.geom),)

    def _release_extra(self):
        self.arg = None


class MaxPoolGrad(Op):
    """Routes each output gradient to the input position its window's maximum came from."""

    def forward(self, gy):
        xp = xp_of(gy)
        g = self.geom
        overlap = _overlapping(g)
        arg = self.arg
        if gy.shape == arg.shape and _element_strides(gy) != _element_strides(arg):
            # gy laid out unlike the forward (e.g. images-last pooling, gy from a Flatten):
            # copied into its layout first, as the per-tap products of mixed layouts run
            # several times slower than the copy and same-layout products together
            same = empty_like_layout(xp, arg, gy.shape, dtype=gy.dtype)
            same[...] = gy
            gy = same
        if not overlap:  # each input position in at most one window: one product per tap
            if _tiles(g):
                buf = empty_like_layout(xp, gy, gy.shape[:2] + tuple(g.in_sp))
            else:
                buf = _grad_buffer(xp, gy, g)
            for t, tap in enumerate(_taps(g)):
                xp.multiply(gy, arg == t, out=_tap_view(buf, tap, g))
            return _crop(buf, g)
        low = gy.dtype.kind == "V"  # bfloat16: the sums run in float32, rounded once
        buf = _grad_buffer(xp, gy, g, np.float32 if low else None)
        for t, tap in enumerate(_taps(g)):
            _tap_view(buf, tap, g)[...] += xp.where(arg == t, gy, 0)
        out = _crop(buf, g)
        return out.astype(gy.dtype) if low else out

    def backward(self, gg):
        return (MaxPoolSelect.apply(gg, arg=self.arg, geom=self.geom),)


class MaxPoolSelect(Op):
    """Reads, per window, the value at the recorded maximum's position (MaxPoolGrad's adjoint)."""

    def forward(self, x):
        xp = xp_of(x)
        g = self.geom
        xb = _padded(xp, x, g, 0)
        out = empty_like_layout(xp, x, x.shape[:2] + tuple(g.out_sp), fill=0)
        for t, tap in enumerate(_taps(g)):
            xp.copyto(out, _tap_view(xb, tap, g), where=self.arg == t)
        return out

    def backward(self, gy):
        return (MaxPoolGrad.apply(gy, arg=self.arg, geom=self.geom),)


def _flat_indices(xp, arg, g: ConvGeom):
    """Per output: the flat index (over the input's spatial dims) of its window's maximum."""
    table = np.array(_taps(g), dtype=np.int64).reshape(-1, len(g.ksize))
    d = len(g.ksize)
    idx = None
    argi = arg.astype(np.int64)
    for i in range(d):
        koff = xp.asarray(table[:, i] * g.dilation[i])[argi]
        shape = [1] * (2 + d)
        shape[2 + i] = g.out_sp[i]
        base = (xp.arange(g.out_sp[i], dtype=np.int64) * g.stride[i] - g.pad_lo[i]).reshape(shape)
        pos = base + koff
        idx = pos if idx is None else idx * g.in_sp[i] + pos
    return xp.ascontiguousarray(idx)


def _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, d,
              opname):
    x, unbatched = _batched(input, d, opname)
    g = _pool_geom(x, kernel_size, stride, padding, dilation, ceil_mode, d, opname, True)
    need_arg = return_indices or (_State.grad_enabled and x._requires_grad)
    box = []
    out = MaxPool.apply(x, geom=g, need_arg=need_arg, arg_box=box)
    if return_indices:
        idx = _make(_flat_indices(xp_of(x._data), box[0], g), None, 0)
        if unbatched:
            return out.squeeze(0), idx.squeeze(0)
        return out, idx
    return out.squeeze(0) if unbatched else out


@register_functional("max_pool1d")
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                     1, "max_pool1d")


@register_functional("max_pool2d")
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling; with return_indices also the flat (h*W + w) index of each maximum."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                     2, "max_pool2d")


@register_functional("max_pool3d")
def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("max_pool3d", max_pool3d, input, kernel_size, stride, padding, dilation,
                          ceil_mode, return_indices)
        if out is not None:
            return out
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                     3, "max_pool3d")


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


# ============================================================================ average pooling
class AvgPool(Op):
    def forward(self, x):
        xp = xp_of(x)
        g = self.geom
        xb = _padded(xp, x, g, 0)
        taps = _taps(g)
        out = empty_like_layout(xp, x, x.shape[:2] + tuple(g.out_sp))
        xp.copyto(out, _tap_view(xb, taps[0], g))
        for tap in taps[1:]:
            out += _tap_view(xb, tap, g)
        out *= _scale_on(xp, self.scale, x.dtype)
        return out

    def backward(self, gy):
        return (AvgPoolGrad.apply(gy, geom=self.geom, scale=self.scale),)


class AvgPoolGrad(Op):
    def forward(self, gy):
        xp = xp_of(gy)
        g = self.geom
        gs = gy * _scale_on(xp, self.scale, gy.dtype)
        buf = _grad_buffer(xp, gy, g)
        overlap = _overlapping(g)
        for tap in _taps(g):
            dst = _tap_view(buf, tap, g)
            if overlap:
                dst += gs
            else:
                dst[...] = gs
        return _crop(buf, g)

    def backward(self, gg):
        return (AvgPool.apply(gg, geom=self.geom, scale=self.scale),)


def _scale_on(xp, scale, dtype):
    if isinstance(scale, float):
        return scale
    return xp.asarray(scale.astype(dtype, copy=False))


def _avg_scale(g: ConvGeom, count_include_pad, divisor_override):
    """1/divisor per output: a float, or an array (1, 1, *out) when it varies."""
    if divisor_override is not None:
        if divisor_override == 0:
            raise RuntimeError("avg_pool: divisor must be not zero")
        return 1.0 / float(divisor_override)
    d = len(g.ksize)
    div = np.ones((1, 1) + (1,) * d)
    for i, (n, k, s, p, o) in enumerate(zip(g.in_sp, g.ksize, g.stride, g.pad_lo, g.out_sp)):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        size = end - start if count_include_pad else \
            np.minimum(end, n) - np.maximum(start, 0)
        shape = [1] * (2 + d)
        shape[2 + i] = o
        div = div * size.reshape(shape)
    if np.all(div == div.flat[0]):
        return 1.0 / float(div.flat[0])
    return 1.0 / div


def _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override, d, opname):
    x, unbatched = _batched(input, d, opname)
    if x._data.dtype.kind not in "fc":
        raise RuntimeError(f"{opname}: \"avg_pool\" not implemented for '{x.dtype.name}'")
    g = _pool_geom(x, kernel_size, stride, padding, 1, ceil_mode, d, opname, False)
    scale = _avg_scale(g, count_include_pad, divisor_override)
    out = AvgPool.apply(x, geom=g, scale=scale)
    return out.squeeze(0) if unbatched else out


@register_functional("avg_pool1d")
@bfloat16_in_float32()
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1,
                     "avg_pool1d")


@register_functional("avg_pool2d")
@bfloat16_in_float32()
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2, "avg_pool2d")


@register_functional("avg_pool3d")
@autocast_listed("avg_pool3d")  # outside: the fp32 policy's output stays float32
@bfloat16_in_float32()
def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 3, "avg_pool3d")


# ============================================================================ adaptive pooling
def _adaptive_sizes(x: Tensor, output_size, d, opname):
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size,) * d
    output_size = tuple(output_size)
    if len(output_size) == 1 and d > 1:
        output_size = output_size * d
    if len(output_size) != d:
        raise RuntimeError(f"{opname}: output_size must be {d} values, got {list(output_size)}")
    in_sp = tuple(x._data.shape[2:])
    out = tuple(n if o is None else int(o) for o, n in zip(output_size, in_sp))
    if any(o < 0 for o in out):
        raise RuntimeError(f"{opname}: elements of output_size must be greater than or equal to "
                           f"0 but received {list(out)}")
    if any(n == 0 for n in in_sp):
        raise RuntimeError(f"{opname}: Expected input to have non-zero size for non-batch "
                           f"dimensions, but input has sizes {list(x.shape)}")
    return in_sp, out


def _adaptive_bounds(n, o):
    j = np.arange(o)
    start = (j * n) // o
    end = -((-(j + 1) * n) // o)  # ceil((j+1) * n / o)
    return start, end


def _adaptive_avg(input, output_size, d, opname):
    x, unbatched = _batched(input, d, opname)
    in_sp, out_sp = _adaptive_sizes(x, output_size, d, opname)
    if all(o > 0 and n % o == 0 for n, o in zip(in_sp, out_sp)):
        if all(o == 1 for o in out_sp):
            y = x.mean(tuple(range(2, 2 + d)), keepdim=True)
        else:
            k = tuple(n // o for n, o in zip(in_sp, out_sp))
            g = ConvGeom(k, (1,) * d, (0,) * d, 1, k, in_sp, out_sp)
            y = AvgPool.apply(x, geom=g, scale=1.0 / prod(k))
    else:
        y = x
        for i, (n, o) in enumerate(zip(in_sp, out_sp)):
            if n == o:
                continue
            start, end = _adaptive_bounds(n, o)
            length = end - start
            taps = int(length.max()) if o else 1
            idx = np.minimum(start[None, :] + np.arange(taps)[:, None], n - 1)
            w = np.where(np.arange(taps)[:, None] < length[None, :], 1.0 / length[None, :], 0.0)
            y = AxisGather.apply(y, amap=AxisMap(idx, w, n), axis=2 + i)
    return y.squeeze(0) if unbatched else y


@register_functional("adaptive_avg_pool1d")
@bfloat16_in_float32()
def adaptive_avg_pool1d(input, output_size):
    return _adaptive_avg(input, output_size, 1, "adaptive_avg_pool1d")


@register_functional("adaptive_avg_pool2d")
@bfloat16_in_float32()
def adaptive_avg_pool2d(input, output_size):
    return _adaptive_avg(input, output_size, 2, "adaptive_avg_pool2d")


@register_functional("adaptive_avg_pool3d")
@autocast_listed("adaptive_avg_pool3d")  # outside: the fp32 policy's output stays float32
@bfloat16_in_float32()
def adaptive_avg_pool3d(input, output_size):
    return _adaptive_avg(input, output_size, 3, "adaptive_avg_pool3d")


def _adaptive_max(input, output_size, return_indices, d, opname):
    x, unbatched = _batched(input, d, opname)
    in_sp, out_sp = _adaptive_sizes(x, output_size, d, opname)
    xp = xp_of(x._data)
    # per dim: (o, L) window positions, short windows padded by repeating their last position
    # (a repeat never changes the max nor the first argmax)
    wins, lens = [], []
    for n, o in zip(in_sp, out_sp):
        start, end = _adaptive_bounds(n, o)
        L = int((end - start).max()) if o else 1
        wins.append(np.minimum(start[:, None] + np.arange(L)[None, :], end[:, None] - 1))
        lens.append(L)
    index = []
    for i, w in enumerate(wins):
        shape = [1] * (2 * d)
        shape[2 * i], shape[2 * i + 1] = w.shape
        index.append(xp.asarray(w.reshape(shape)))
    xa = x._data
    win = xa[(slice(None), slice(None)) + tuple(index)]  # (N, C, o1, L1, o2, L2, ...)
    perm = (0, 1) + tuple(2 + 2 * i for i in range(d)) + tuple(3 + 2 * i for i in range(d))
    n_, c_ = xa.shape[:2]
    win = win.transpose(perm).reshape((n_, c_) + tuple(out_sp) + (-1,))
    best = xp.argmax(win, axis=-1)  # first maximum; NaN counts as the largest
    # flat input index of each winner
    flat = None
    rem = best
    sub = []
    for L in reversed(lens):
        sub.append(rem % L)
        rem = rem // L
    sub = sub[::-1]
    for i, (w, n) in enumerate(zip(wins, in_sp)):
        oshape = [1] * (2 + d)
        oshape[2 + i] = out_sp[i]
        o_idx = xp.arange(out_sp[i]).reshape(oshape)
        pos = xp.asarray(w)[o_idx, sub[i]]
        flat = pos if flat is None else flat * n + pos
    flat = xp.ascontiguousarray(flat.astype(np.int64))
    out = SpatialGather.apply(x, flat=flat)
    if unbatched:
        out, flat = out.squeeze(0), flat[0]
    if return_indices:
        return out, _make(flat, None, 0)
    return out


@register_functional("adaptive_max_pool1d")
def adaptive_max_pool1d(input, output_size, return_indices=False):
    return _adaptive_max(input, output_size, return_indices, 1, "adaptive_max_pool1d")


@register_functional("adaptive_max_pool2d")
def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _adaptive_max(input, output_size, return_indices, 2, "adaptive_max_pool2d")


@register_functional("adaptive_max_pool3d")
def adaptive_max_pool3d(input, output_size, return_indices=False):
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("adaptive_max_pool3d", adaptive_max_pool3d, input, output_size,
                          return_indices)
        if out is not None:
            return out
    return _adaptive_max(input, output_size, return_indices, 3, "adaptive_max_pool3d")


# ============================================================================ lp pool, unpool
def _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, d, opname):
    k = ntuple(kernel_size, d, "kernel_size", opname)
    avg = {1: avg_pool1d, 2: avg_pool2d, 3: avg_pool3d}[d]
    out = avg(input.pow(norm_type), k, stride if stride is not None else k, 0, ceil_mode)
    return (out.sign() * out.abs().relu()).mul(prod(k)).pow(1.0 / norm_type)


@register_functional("lp_pool1d")
def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 1, "lp_pool1d")


@register_functional("lp_pool2d")
def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 2, "lp_pool2d")


@register_functional("lp_pool3d")
def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 3, "lp_pool3d")


def _max_unpool(input, indices, kernel_size, stride, padding, output_size, d, opname):
    x, unbatched = _batched(input, d, opname)
    idx = indices.unsqueeze(0) if unbatched else indices
    if tuple(idx._data.shape) != tuple(x._data.shape):
        raise RuntimeError(f"{opname}: Expected shape of indices to be same as that of the input "
                           f"tensor ({list(x.shape)}) but got indices tensor with shape: "
                           f"{list(indices.shape)}")
    k = ntuple(kernel_size, d, "kernel_size", opname)
    s = k if stride is None else ntuple(stride, d, "stride", opname)
    p = ntuple(padding, d, "padding", opname)
    in_sp = tuple(x._data.shape[2:])
    default = tuple((i - 1) * ss - 2 * pp + kk for i, ss, pp, kk in zip(in_sp, s, p, k))
    if output_size is None:
        out_sp = default
    else:
        osz = tuple(int(v) for v in output_size)
        if len(osz) == d + 2:
            osz = osz[2:]
        elif len(osz) == d + 1:
            osz = osz[1:]
        if len(osz) != d:
            raise ValueError(f"{opname}: output_size should be a sequence containing {d} or "
                             f"{d + 2} elements, but it has a length of '{len(output_size)}'")
        for o, dv, ss in zip(osz, default, s):
            if not dv - ss < o < dv + ss:
                raise ValueError(f"{opname}: invalid output_size {list(osz)} (dim size must be "
                                 f"between {dv - ss} and {dv + ss})")
        out_sp = osz
    flat = idx._data
    total = prod(out_sp)
    if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= total):
        raise RuntimeError(f"{opname}: Found an invalid max index: {int(flat.max())} (output "
                           f"volumes are of size {'x'.join(map(str, out_sp))})")
    out = MaxUnpool.apply(x, flat=xp_of(flat).ascontiguousarray(flat.astype(np.int64)),
                          in_sp=out_sp)
    return out.squeeze(0) if unbatched else out


class MaxUnpool(Op):
    """Writes each value at its flat index among zeros (an index given twice keeps one of
    the values, as PyTorch); the gradient reads the output gradient back at the indices."""

    def forward(self, x):
        xp = xp_of(x)
        n, c = x.shape[:2]
        out = xp.zeros((n, c, prod(self.in_sp)), x.dtype)
        xp.put_along_axis(out, self.flat.reshape(n, c, -1), x.reshape(n, c, -1), axis=2)
        return out.reshape((n, c) + tuple(self.in_sp))

    def backward(self, g):
        return (SpatialGather.apply(g, flat=self.flat),)


@register_functional("max_unpool1d")
def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1,
                       "max_unpool1d")


@register_functional("max_unpool2d")
def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of max_pool2d: places each value at its index among zeros."""
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("max_unpool2d", max_unpool2d, input, indices, kernel_size, stride,
                          padding, output_size)
        if out is not None:
            return out
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2,
                       "max_unpool2d")


@register_functional("max_unpool3d")
def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("max_unpool3d", max_unpool3d, input, indices, kernel_size, stride,
                          padding, output_size)
        if out is not None:
            return out
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3,
                       "max_unpool3d")


__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "lp_pool1d",
           "lp_pool2d", "lp_pool3d", "max_unpool1d", "max_unpool2d", "max_unpool3d",
           "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices"]


# ============================================================================ fractional max
def _fractional_max(input, kernel_size, output_size, output_ratio, return_indices,
                    _random_samples, d, opname):
    """Fractional max pooling (Graham, 2014) as PyTorch's: per (batch, channel) plane, window
    starts along each dim from one uniform sample u, start_i = int((i + u) * alpha) -
    int(u * alpha) with alpha = (in - k) / (out - 1) (in the input's dtype), the last window
    ending at the input's end; the max of each window, its flat input index kept for the
    gradient."""
    x, unbatched = _batched(input, d, opname)
    k = ntuple(kernel_size, d, "kernel_size", opname)
    in_sp = tuple(x._data.shape[2:])
    if (output_size is None) == (output_ratio is None):
        raise ValueError(f"{opname} requires specifying either an output size, or a pooling "
                         "ratio")
    if output_size is not None:
        out_sp = ntuple(output_size, d, "output_size", opname)
    else:
        ratio = tuple(float(r) for r in (output_ratio if isinstance(output_ratio, (tuple, list))
                                         else (output_ratio,) * d))
        if len(ratio) != d or not all(0 < r < 1 for r in ratio):
            raise ValueError(f"{opname}: output_ratio must be between 0 and 1 (got "
                             f"{output_ratio})")
        out_sp = tuple(int(n * r) for n, r in zip(in_sp, ratio))
    for n, o, kk in zip(in_sp, out_sp, k):
        if o + kk - 1 > n:
            raise RuntimeError(f"{opname}(): pool size {list(k)} with output size "
                               f"{list(out_sp)} is too large relative to input size "
                               f"{list(in_sp)} (input {list(x.shape)})")
    xp = xp_of(x._data)
    nb, c = x._data.shape[:2]
    dt = x._data.dtype
    if _random_samples is None:
        from ..creation import rand
        samples = rand(nb, c, d, dtype=x.dtype, device=x.device)._data
    else:
        samples = _random_samples._data
        if tuple(samples.shape) != (nb, c, d):
            raise RuntimeError(f"{opname}: expected _random_samples of shape {[nb, c, d]}, got "
                               f"{list(samples.shape)}")
    # PyTorch's sample order: 2-D uses sample 0 for W and 1 for H; 3-D uses 0, 1, 2 for T, H, W
    order = (1, 0) if d == 2 else tuple(range(d))
    flat = None
    win_shape = (nb, c) + tuple(out_sp) + tuple(k)
    for i, (n, o, kk) in enumerate(zip(in_sp, out_sp, k)):
        u = samples[:, :, order[i]].astype(dt)[..., None]  # (N, C, 1)
        if o > 1:
            alpha = dt.type(n - kk) / dt.type(o - 1)
            idx = xp.arange(o - 1, dtype=dt)
            seq = ((idx + u) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)
            starts = xp.concatenate([seq, xp.full((nb, c, 1), n - kk, np.int64)], axis=2)
        else:
            starts = xp.full((nb, c, 1), n - kk, np.int64)
        shape = [nb, c] + [1] * (2 * d)
        shape[2 + i] = o
        pos = starts.reshape(shape) + xp.arange(kk).reshape([1] * (2 + d + i) + [kk] +
                                                           [1] * (d - 1 - i))
        flat = pos if flat is None else flat * n + pos
    flat = xp.broadcast_to(flat, win_shape).reshape((nb, c) + tuple(out_sp) + (-1,))
    vals = xp.take_along_axis(x._data.reshape(nb, c, -1), flat.reshape(nb, c, -1), axis=2)
    best = xp.argmax(vals.reshape(flat.shape), axis=-1)[..., None]
    winner = xp.ascontiguousarray(xp.take_along_axis(flat, best, axis=-1)[..., 0])
    out = SpatialGather.apply(x, flat=winner)
    if unbatched:
        out, winner = out.squeeze(0), winner[0]
    if return_indices:
        return out, _make(winner, None, 0)
    return out


@register_functional("fractional_max_pool2d")
@autocast_listed("fractional_max_pool2d")
def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    return _fractional_max(input, kernel_size, output_size, output_ratio, return_indices,
                           _random_samples, 2, "fractional_max_pool2d")


@register_functional("fractional_max_pool3d")
@autocast_listed("fractional_max_pool3d")
def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    return _fractional_max(input, kernel_size, output_size, output_ratio, return_indices,
                           _random_samples, 3, "fractional_max_pool3d")
