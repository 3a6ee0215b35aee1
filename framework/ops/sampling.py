"""Resampling and rearranging: pad (constant/reflect/replicate/circular), interpolate
(nearest, nearest-exact, linear, bilinear, bicubic, trilinear, area), grid_sample, affine_grid,
pixel_shuffle / pixel_unshuffle and one_hot.

Interpolation is separable: each resized dim is one `AxisGather` (a sparse linear map with 1,
2 or 4 taps per output position), whose gradient is its adjoint `AxisScatter`; the
non-constant paddings are index maps on the same machinery. grid_sample is built from
differentiable Tensor ops (unnormalise, clip/reflect, corner weights, gathers), so it has
gradients for both the input and the grid.
"""
from __future__ import annotations

import math

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from .conv import empty_like_layout
from ._bfloat16 import bfloat16_in_float32
from ._functional_registry import register_functional
from .resample import AxisGather, AxisMap
from ..amp import _AutocastState, autocast_op

_make = Tensor._make
_AUTOCAST = _AutocastState.enabled


# ============================================================================ pad
class ConstantPad(Op):
    """Pad (or crop, for negative amounts) the trailing dims with a constant; the backward
    is the opposite crop/pad with zeros."""

    def forward(self, x):
        xp = xp_of(x)
        pads = self.pads  # ((lo, hi), ...) for the trailing len(pads) dims, in dim order
        lead = x.ndim - len(pads)
        shape = x.shape[:lead] + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[lead:], pads))
        if any(s < 0 for s in shape):
            raise RuntimeError(f"pad: the input size {list(x.shape)} padded by {list(pads)} "
                               f"gives a negative output size {list(shape)}")
        out = empty_like_layout(xp, x, shape, fill=self.value) if x.ndim >= 3 else \
            xp.full(shape, self.value, x.dtype)
        src = [slice(None)] * lead
        dst = [slice(None)] * lead
        for n, (lo, hi) in zip(x.shape[lead:], pads):
            src.append(slice(max(-lo, 0), n - max(-hi, 0)))
            dst.append(slice(max(lo, 0), max(lo, 0) + max(n - max(-lo, 0) - max(-hi, 0), 0)))
        if all(s.start < s.stop for s in dst[lead:]):
            out[tuple(dst)] = x[tuple(src)]
        return out

    def backward(self, g):
        return (ConstantPad.apply(g, pads=tuple((-lo, -hi) for lo, hi in self.pads), value=0),)


def _index_map(n, lo, hi, mode):
    i = np.arange(-lo, n + hi)
    if mode == "reflect":
        i = np.abs(i)
        i = np.where(i >= n, 2 * (n - 1) - i, i)
    elif mode == "replicate":
        i = np.clip(i, 0, n - 1)
    else:  # circular
        i = np.mod(i, n)
    return i


@register_functional("pad")
def pad(input, pad, mode="constant", value=None) -> Tensor:
    """Pad the last len(pad)//2 dims: pad = (left_last, right_last, left_prev, right_prev, ...).
    Negative amounts crop (constant mode)."""
    if (_AUTOCAST["cuda"] or _AUTOCAST["cpu"]) and mode in ("reflect", "replicate"):
        # the list names the aten kernel, which depends on the mode and the padded dims
        op = ("reflection_pad%dd" if mode == "reflect" else "replication_pad%dd") % (len(pad) // 2)
        out = autocast_op(op, _pad, input, pad, mode, value)
        if out is not None:
            return out
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    k = len(pad) // 2
    nd = input._data.ndim
    if k > nd:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(pad)} and input of dimension "
                           f"{nd}")
    pairs = tuple((pad[2 * (k - 1 - j)], pad[2 * (k - 1 - j) + 1]) for j in range(k))
    if mode == "constant":
        v = 0 if value is None else value
        if all(lo == 0 and hi == 0 for lo, hi in pairs):
            return input.clone()
        return ConstantPad.apply(input, pads=pairs, value=v)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if value is not None and value != 0:
        raise ValueError(f"Padding mode \"{mode}\" doesn't take in value argument")
    if k not in (1, 2, 3) or nd not in (k + 1, k + 2):
        raise NotImplementedError(f"Padding size {len(pad)} is not supported for {nd}D input "
                                  "tensor. Supported combinations for non-constant padding: 2D "
                                  "or 3D input: padding size = 2 (pads last dimension); 3D or 4D "
                                  "input: padding size = 4 (pads last 2 dimensions); 4D or 5D "
                                  "input: padding size = 6 (pads last 3 dimensions)")
    y = input
    for j, (lo, hi) in enumerate(pairs):
        axis = nd - k + j
        n = input._data.shape[axis]
        if mode == "reflect" and (lo >= n or hi >= n):
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding "
                               f"input dimension, but got: padding ({lo}, {hi}) at dimension "
                               f"{axis} of input {list(input.shape)}")
        if mode == "circular" and (lo > n or hi > n):
            raise RuntimeError(f"Padding value causes wrapping around more than once "
                               f"(padding ({lo}, {hi}) of dimension {axis} of size {n})")
        if mode == "replicate" and n == 0:
            raise RuntimeError(f"pad: replicate padding of an empty dimension {axis}")
        if lo == 0 and hi == 0:
            continue
        y = AxisGather.apply(y, amap=AxisMap(_index_map(n, lo, hi, mode)[None], None, n),
                             axis=axis)
    return y if y is not input else input.clone()


# ============================================================================ interpolate
_LINEAR_MODES = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def _cubic_weights(t):
    a = -0.75

    def c1(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def c2(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.stack([c2(t + 1.0), c1(t), c1(1.0 - t), c2(2.0 - t)])


def _axis_map(n_in, n_out, mode, align_corners, scale, np_dtype):
    """The taps of one resized dim, computed with PyTorch's index arithmetic (in float32 for
    float32 inputs, as its kernels do)."""
    o = np.arange(n_out)
    if mode in ("nearest", "nearest-exact"):
        sc = np.float32(1.0 / scale) if scale else np.float32(n_in) / np.float32(n_out)
        of = o.astype(np.float32)
        src = np.floor((of + np.float32(0.5)) * sc if mode == "nearest-exact" else of * sc)
        idx = np.minimum(src.astype(np.int64), n_in - 1)
        return AxisMap(idx[None], None, n_in)
    ft = np.float32 if np_dtype == np.float32 else np.float64
    if align_corners:
        sc = ft(n_in - 1) / ft(n_out - 1) if n_out > 1 else ft(0)
    else:
        sc = ft(1.0 / scale) if scale else ft(n_in) / ft(n_out)
    of = o.astype(ft)
    if mode == "bicubic":
        src = sc * of if align_corners else sc * (of + ft(0.5)) - ft(0.5)
        base = np.floor(src)
        t = (src - base).astype(np.float64)
        idx = np.clip(base.astype(np.int64)[None] + np.arange(-1, 3)[:, None], 0, n_in - 1)
        return AxisMap(idx, _cubic_weights(t), n_in)
    src = sc * of if align_corners else np.maximum(sc * (of + ft(0.5)) - ft(0.5), ft(0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    l1 = (src - i0).astype(np.float64)
    return AxisMap(np.stack([i0, i1]), np.stack([1.0 - l1, l1]), n_in)


def _aa_filter(mode):
    if mode == "bilinear":
        return lambda x: np.maximum(0.0, 1.0 - np.abs(x))
    a = -0.5  # antialiased bicubic follows PIL's a = -0.5 (plain bicubic uses -0.75)

    def cubic(x):
        x = np.abs(x)
        near = ((a + 2) * x - (a + 3)) * x * x + 1
        far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))
    return cubic


def _aa_axis_map(n_in, n_out, mode, align_corners, scale):
    """The taps of one dim resized with antialias=True (PyTorch's separable AA kernels, as
    PIL's): on downscaling the filter is stretched by the scale, so every input pixel under an
    output pixel's footprint contributes; weights are normalised to sum to 1."""
    if align_corners:
        sc = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        sc = 1.0 / scale if scale else n_in / n_out
    interp = 2 if mode == "bilinear" else 4
    support = interp * 0.5 * sc if sc >= 1.0 else interp * 0.5
    invscale = 1.0 / sc if sc >= 1.0 else 1.0
    center = sc * (np.arange(n_out) + 0.5)
    xmin = np.maximum((center - support + 0.5).astype(np.int64), 0)
    xsize = np.minimum((center + support + 0.5).astype(np.int64), n_in) - xmin
    taps = max(int(xsize.max()), 1)
    j = np.arange(taps)[:, None]
    w = _aa_filter(mode)((j + xmin - center + 0.5) * invscale)
    w = np.where(j < xsize, w, 0.0)
    total = w.sum(axis=0)
    w = np.where(total != 0, w / np.where(total != 0, total, 1.0), w)
    idx = np.minimum(xmin + j, n_in - 1)
    return AxisMap(idx, w, n_in)


@register_functional("interpolate")
@bfloat16_in_float32()
def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False) -> Tensor:
    """Resize the spatial dims of (N, C, *S): to `size`, or by `scale_factor`."""
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:  # the aten kernel (list entry) depends on mode
        out = autocast_op("upsample_" + str(mode), interpolate, input, size, scale_factor, mode,
                          align_corners, recompute_scale_factor, antialias)
        if out is not None:
            return out
    d = input._data.ndim - 2
    if d < 1:
        raise ValueError(f"interpolate: expected a 3D, 4D or 5D input, got {list(input.shape)}")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    elif mode in _LINEAR_MODES:
        if _LINEAR_MODES[mode] != d:
            raise NotImplementedError(f"Got {d + 2}D input, but {mode} mode needs "
                                      f"{_LINEAR_MODES[mode] + 2}D input")
        align_corners = bool(align_corners) if align_corners is not None else False
    else:
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported "
                                  f"(got {d + 2}D) for the modes: nearest | linear | bilinear | "
                                  f"bicubic | trilinear | area | nearest-exact (got {mode})")
    if antialias and (mode not in ("bilinear", "bicubic") or d != 2):
        raise ValueError("Anti-alias option is restricted to bilinear and bicubic modes and "
                         f"requires a 4-D tensor as input (got mode {mode!r}, input "
                         f"{list(input.shape)})")
    in_sp = tuple(input._data.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
        sizes = (int(size),) * d if isinstance(size, (int, np.integer)) else \
            tuple(int(s) for s in size)
        if len(sizes) != d:
            raise ValueError(f"Input and output must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of "
                             f"{list(in_sp)} and output size of {list(sizes)}. Please provide "
                             "input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                             "(o1, o2, ...,oK) format.")
        scales = (None,) * d
    elif scale_factor is not None:
        sf = (float(scale_factor),) * d if isinstance(scale_factor, (int, float)) else \
            tuple(float(s) for s in scale_factor)
        if len(sf) != d:
            raise ValueError(f"Input and scale_factor must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of "
                             f"{list(in_sp)} and scale_factor of shape {list(sf)}.")
        sizes = tuple(int(math.floor(n * s)) for n, s in zip(in_sp, sf))
        scales = (None,) * d if recompute_scale_factor else sf
    else:
        raise ValueError("either size or scale_factor should be defined")
    if any(s <= 0 for s in sizes):
        raise RuntimeError(f"interpolate: output size {list(sizes)} must be positive "
                           f"(input {list(input.shape)})")
    if mode == "area":
        from .pooling import adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d
        return (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[d - 1](input,
                                                                                       sizes)
    x = input
    if x._data.dtype.kind not in "fc" and mode not in ("nearest", "nearest-exact"):
        raise RuntimeError(f"interpolate: {mode} mode needs a floating point input, got "
                           f"{x.dtype.name}")
    np_dtype = x._data.dtype
    for i, (n_in, n_out, sc) in enumerate(zip(in_sp, sizes, scales)):
        # PyTorch's CPU kernels: a (bi/tri)linear dim of unchanged size is copied as is, even
        # when an explicit scale_factor would place the samples elsewhere; nearest and
        # bicubic always follow the scale
        if n_in == n_out and (mode in ("linear", "bilinear", "trilinear") or sc in (None, 1.0)):
            continue
        amap = _aa_axis_map(n_in, n_out, mode, align_corners, sc) if antialias else \
            _axis_map(n_in, n_out, mode, align_corners, sc, np_dtype)
        x = AxisGather.apply(x, amap=amap, axis=2 + i)
    return x if x is not input else input.clone()


_pad = pad  # for pad's own body, where the name `pad` is its argument


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ============================================================================ grid_sample
def _unnormalize(coord, size, align_corners):
    if align_corners:
        return (coord + 1.0) * ((size - 1) / 2.0)
    return ((coord + 1.0) * size - 1.0) / 2.0


def _reflect(x, twice_low, twice_high):
    """Reflect coordinates into [twice_low/2, twice_high/2] (PyTorch's reflect_coordinates)."""
    from .elementwise import fmod, where
    if twice_low == twice_high:
        return x * 0.0
    mn = twice_low / 2.0
    span = (twice_high - twice_low) / 2.0
    x = (x - mn).abs()
    extra = fmod(x, span)
    xp = xp_of(x._data)
    flips = xp.floor(x._data / span)
    even = _make(xp.remainder(flips, 2) == 0, None, 0)
    return where(even, extra + mn, (extra * -1.0) + (span + mn))


def _source_coords(coord, size, padding_mode, align_corners):
    x = _unnormalize(coord, size, align_corners)
    if padding_mode == "border":
        x = x.clamp(0, size - 1)
    elif padding_mode == "reflection":
        x = _reflect(x, 0, 2 * (size - 1)) if align_corners else _reflect(x, -1, 2 * size - 1)
        x = x.clamp(0, size - 1)
    return x


def _reflect_int(xp, i, size, align_corners):
    """Integer tap positions through the reflection padding (for bicubic taps)."""
    if align_corners:
        lo2, hi2 = 0, 2 * (size - 1)
    else:
        lo2, hi2 = -1, 2 * size - 1
    if lo2 == hi2:
        return xp.zeros_like(i)
    mn, span = lo2 / 2.0, (hi2 - lo2) / 2.0
    x = xp.abs(i - mn)
    extra = xp.fmod(x, span)
    flips = xp.floor(x / span)
    r = xp.where(flips % 2 == 0, extra + mn, span - extra + mn)
    return xp.clip(r, 0, size - 1)


def _gather_points(input, idx_arrays):
    """input (N, C, *S) at integer positions idx_arrays[k] (N, *O) per spatial dim ->
    (N, C, *O)."""
    xp = xp_of(input._data)
    n = input._data.shape[0]
    out_nd = idx_arrays[0].ndim
    nidx = xp.arange(n).reshape((n,) + (1,) * (out_nd - 1))
    vals = input[(nidx, slice(None)) + tuple(idx_arrays)]  # (N, *O, C)
    return vals.movedim(-1, 1)


@register_functional("grid_sample")
def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sample input (N, C, H, W) (or (N, C, D, H, W)) at grid (N, Ho, Wo, 2) locations in
    [-1, 1] (x first); bilinear/nearest/bicubic, padding zeros/border/reflection."""
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("grid_sample", grid_sample, input, grid, mode, padding_mode,
                          align_corners)
        if out is not None:
            return out
    d = input._data.ndim - 2
    if d not in (2, 3):
        raise RuntimeError(f"grid_sampler(): expected 4D or 5D input and grid with same number "
                           f"of dimensions, but got input with sizes {list(input.shape)}")
    if grid._data.ndim != d + 2 or grid._data.shape[-1] != d or \
            grid._data.shape[0] != input._data.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid to have size {d} in last dimension "
                           f"and batch size {input.shape[0]}, but got grid with sizes "
                           f"{list(grid.shape)} (input {list(input.shape)})")
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', "
                         f"'nearest' or 'bicubic', but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', "
                         f"'border', or 'reflection', but got: '{padding_mode}'")
    if mode == "bicubic" and d != 2:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
    if grid._data.dtype != input._data.dtype:
        raise RuntimeError(f"grid_sampler(): expected input and grid to have the same dtype, "
                           f"but input has {input.dtype.name} and grid has {grid.dtype.name}")
    ac = bool(align_corners) if align_corners is not None else False
    xp = xp_of(input._data)
    sizes = [input._data.shape[-1 - k] for k in range(d)]  # size for coordinate k (x, y, z)
    coords = [grid[..., k] for k in range(d)]
    dims_order = list(range(d - 1, -1, -1))  # spatial dim j of input is coordinate d-1-j
    if mode == "bicubic":
        return _grid_bicubic(input, coords, sizes, padding_mode, ac)
    src = [_source_coords(c, s, padding_mode, ac) for c, s in zip(coords, sizes)]
    dt = input._data.dtype
    if mode == "nearest":
        idx = [xp.rint(s._data).astype(np.int64) for s in src]
        valid = None
        for i, s in zip(idx, sizes):
            ok = (i >= 0) & (i < s)
            valid = ok if valid is None else valid & ok
        safe = [xp.clip(i, 0, s - 1) for i, s in zip(idx, sizes)]
        vals = _gather_points(input, [safe[k] for k in dims_order])
        mask = _make(valid[:, None].astype(dt), None, 0)
        return vals * mask
    base = [xp.floor(s._data) for s in src]
    frac = [s - _make(b, None, 0) for s, b in zip(src, base)]
    out = None
    for corner in range(2 ** d):
        bits = [(corner >> k) & 1 for k in range(d)]
        weight = None
        valid = None
        safe = []
        for k in range(d):
            i = base[k].astype(np.int64) + bits[k]
            ok = (i >= 0) & (i < sizes[k])
            valid = ok if valid is None else valid & ok
            safe.append(xp.clip(i, 0, sizes[k] - 1))
            wk = frac[k] if bits[k] else (frac[k] * -1.0) + 1.0
            weight = wk if weight is None else weight * wk
        weight = weight * _make(valid.astype(dt), None, 0)
        vals = _gather_points(input, [safe[k] for k in dims_order])
        term = vals * weight.unsqueeze(1)
        out = term if out is None else out + term
    return out


def _grid_bicubic(input, coords, sizes, padding_mode, ac):
    xp = xp_of(input._data)
    dt = input._data.dtype
    ix = _unnormalize(coords[0], sizes[0], ac)
    iy = _unnormalize(coords[1], sizes[1], ac)
    fx, fy = xp.floor(ix._data), xp.floor(iy._data)
    tx, ty = ix - _make(fx, None, 0), iy - _make(fy, None, 0)

    def coeffs(t):
        a = -0.75

        def c1(x):
            return ((x * (a + 2)) - (a + 3)) * x * x + 1.0

        def c2(x):
            return ((x * a - 5 * a) * x + 8 * a) * x - 4 * a
        return [c2(t + 1.0), c1(t), c1((t * -1.0) + 1.0), c2((t * -1.0) + 2.0)]

    cx, cy = coeffs(tx), coeffs(ty)
    out = None
    for j in range(4):
        for i in range(4):
            px = fx.astype(np.int64) - 1 + i
            py = fy.astype(np.int64) - 1 + j
            if padding_mode == "border":
                vx, vy = xp.clip(px, 0, sizes[0] - 1), xp.clip(py, 0, sizes[1] - 1)
                valid = None
            elif padding_mode == "reflection":
                vx = _reflect_int(xp, px, sizes[0], ac).astype(np.int64)
                vy = _reflect_int(xp, py, sizes[1], ac).astype(np.int64)
                valid = None
            else:
                valid = (px >= 0) & (px < sizes[0]) & (py >= 0) & (py < sizes[1])
                vx, vy = xp.clip(px, 0, sizes[0] - 1), xp.clip(py, 0, sizes[1] - 1)
            vals = _gather_points(input, [vy, vx])
            w = cx[i] * cy[j]
            if valid is not None:
                w = w * _make(valid.astype(dt), None, 0)
            term = vals * w.unsqueeze(1)
            out = term if out is None else out + term
    return out


def _linspace_coords(xp, n, align_corners, dtype):
    if n <= 1:
        return xp.zeros(max(n, 1), dtype)
    v = xp.linspace(-1.0, 1.0, n, dtype=np.float64)
    if not align_corners:
        v = v * (n - 1) / n
    return v.astype(dtype)


@register_functional("affine_grid")
def affine_grid(theta, size, align_corners=None) -> Tensor:
    """Sampling grid (N, H, W, 2) (or (N, D, H, W, 3)) for grid_sample from affine matrices
    theta (N, 2, 3) (or (N, 3, 4))."""
    ac = bool(align_corners) if align_corners is not None else False
    size = tuple(int(s) for s in size)
    if theta._data.dtype.kind != "f":
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    xp = xp_of(theta._data)
    dt = theta._data.dtype
    if len(size) == 4:
        n, _, h, w = size
        if tuple(theta._data.shape) != (n, 2, 3):
            raise ValueError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size "
                             f"{list(size)}. Got {list(theta.shape)}.")
        base = xp.empty((h, w, 3), dt)
        base[..., 0] = _linspace_coords(xp, w, ac, dt)[None, :]
        base[..., 1] = _linspace_coords(xp, h, ac, dt)[:, None]
        base[..., 2] = 1
        grid = _make(base.reshape(1, h * w, 3), None, 0).matmul(theta.transpose(1, 2))
        return grid.reshape(n, h, w, 2)
    if len(size) == 5:
        n, _, dd, h, w = size
        if tuple(theta._data.shape) != (n, 3, 4):
            raise ValueError(f"Expected a batch of 3D affine matrices of shape Nx3x4 for size "
                             f"{list(size)}. Got {list(theta.shape)}.")
        base = xp.empty((dd, h, w, 4), dt)
        base[..., 0] = _linspace_coords(xp, w, ac, dt)[None, None, :]
        base[..., 1] = _linspace_coords(xp, h, ac, dt)[None, :, None]
        base[..., 2] = _linspace_coords(xp, dd, ac, dt)[:, None, None]
        base[..., 3] = 1
        grid = _make(base.reshape(1, dd * h * w, 4), None, 0).matmul(theta.transpose(1, 2))
        return grid.reshape(n, dd, h, w, 3)
    raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine "
                              f"transforms, respectively. Got size {list(size)}.")


# ============================================================================ pixel shuffle
@register_functional("pixel_shuffle")
def pixel_shuffle(input, upscale_factor) -> Tensor:
    """(*, C*r^2, H, W) -> (*, C, H*r, W*r)."""
    r = int(upscale_factor)
    if input._data.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got "
                           f"input with {input._data.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    *batch, c, h, w = input._data.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but input.size(-3)={c} "
                           f"is not divisible by {r * r}")
    nb = len(batch)
    oc = c // (r * r)
    x = input.reshape(*batch, oc, r, r, h, w)
    perm = tuple(range(nb)) + (nb, nb + 3, nb + 1, nb + 4, nb + 2)
    return x.permute(*perm).reshape(*batch, oc, h * r, w * r)


@register_functional("pixel_unshuffle")
def pixel_unshuffle(input, downscale_factor) -> Tensor:
    """(*, C, H*r, W*r) -> (*, C*r^2, H, W)."""
    r = int(downscale_factor)
    if input._data.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but "
                           f"got input with {input._data.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    *batch, c, h, w = input._data.shape
    if h % r or w % r:
        raise RuntimeError(f"pixel_unshuffle expects height and width to be divisible by "
                           f"downscale_factor, but input.size(-2)={h}, input.size(-1)={w} and "
                           f"downscale_factor={r}")
    nb = len(batch)
    x = input.reshape(*batch, c, h // r, r, w // r, r)
    perm = tuple(range(nb)) + (nb, nb + 2, nb + 4, nb + 1, nb + 3)
    return x.permute(*perm).reshape(*batch, c * r * r, h // r, w // r)


# ============================================================================ one_hot
@register_functional("one_hot", differentiable=False)
def one_hot(tensor, num_classes=-1) -> Tensor:
    """int64 (..., num_classes) one-hot encoding of an integer tensor."""
    t = tensor._data
    if t.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    xp = xp_of(t)
    if num_classes == -1:
        if t.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(t.max()) + 1
    if t.size:
        if int(t.min()) < 0:
            raise RuntimeError("Class values must be non-negative.")
        if int(t.max()) >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    out = (t[..., None] == xp.arange(num_classes)).astype(np.int64)
    return _make(out, None, 0)


__all__ = ["pad", "interpolate", "upsample", "upsample_nearest", "upsample_bilinear",
           "grid_sample", "affine_grid", "pixel_shuffle", "pixel_unshuffle", "one_hot"]

