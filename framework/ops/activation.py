"""Activation functions (leaky_relu, elu, selu, celu, gelu, silu, mish, hardswish,
hardsigmoid, softplus, hardtanh, relu6, logsigmoid, softsign, glu, prelu, rrelu, threshold,
the shrinks, softmin, gumbel_softmax).

Each fused activation is one Op that saves its input. Its backward is written twice: with
Tensor ops (used when a graph of the backward is recorded, so second derivatives work) and,
for the ones on hot paths, as a direct array expression used otherwise (fewer temporaries).
Gradients at the kinks follow PyTorch's formulas (e.g. hardtanh's is 0 at its bounds).
bfloat16 inputs are computed in float32 and rounded once (`_bfloat16.bfloat16_in_float32`);
hardtanh/relu6 and the shrinks run on bfloat16 as they are (clipping and selecting are exact).
"""
from __future__ import annotations

import math

import numpy as np

from .. import _cuda_kernels as _K
from .. import _jit
from .._parallel import MIN_PARALLEL_ELEMENTS, parallel_ranges, parallel_slices
from .._backend import special_fn, xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from ..random import default_generator_for
from .elementwise import _sigmoid_f, exp, sigmoid, tanh, where
from ._bfloat16 import bfloat16_in_float32
from ._functional_registry import register_functional
from ..amp import _AutocastState, autocast_op

_make = Tensor._make
_AUTOCAST = _AutocastState.enabled


def _float(x: Tensor, opname) -> Tensor:
    if x._data.dtype.kind not in "fc":
        raise RuntimeError(f"{opname}: expected a floating point input, got {x.dtype.name}")
    return x


def apply_inplace(input: Tensor, fn, inplace: bool) -> Tensor:
    """fn(input), written into `input` when inplace. When a graph is recorded, fn runs on a
    clone so that what its op saved for backward is not the memory being overwritten."""
    if not inplace:
        return fn(input)
    if _State.grad_enabled and input._requires_grad:
        return input._inplace_from(fn(input.clone()))
    return input._inplace_from(fn(input))


class _Act(Op):
    """y = f(x) elementwise; `_f(xp, x)` on arrays, `_df(x, g)` on Tensors, optional
    `_df_arr(xp, x, g)` on arrays."""

    save_inputs = (0,)
    _df_arr = None

    def forward(self, x):
        return self._f(xp_of(x), x)

    def backward(self, g):
        (x,) = self.saved_tensors
        if self._df_arr is not None and not _State.grad_enabled:
            return (_make(self._df_arr(xp_of(x._data), x._data, g._data), None, 0),)
        return (self._df(x, g),)


_sigmoid_arr = _sigmoid_f  # sigmoid on arrays (a compiled pass for large float32 ones)


# ---------------------------------------------------------------------------- relu family
def _large_cpu(*arrays) -> bool:
    """NumPy arrays of one shape, large enough to split between threads (parallel_slices)."""
    return all(type(a) is np.ndarray and a.shape == arrays[0].shape for a in arrays) and \
        arrays[0].ndim > 0 and arrays[0].size >= MIN_PARALLEL_ELEMENTS


def _omp_parts(*arrays) -> int:
    """Parts for the prange kernels (see _jit.omp_parts) over arrays of one dense layout."""
    from .elementwise import _relu_omp_parts
    first = arrays[0]
    if any(a.dtype != first.dtype or a.strides != first.strides for a in arrays[1:]):
        return 0
    return _relu_omp_parts(first)


class LeakyRelu(_Act):
    def _f(self, xp, x):
        omp = _omp_parts(x) if _large_cpu(x) and 0.0 <= self.slope <= 1.0 else 0
        if omp:  # one pass on numba's OpenMP threads (the convolutions' threads)
            out = np.empty_like(x)
            _jit.kernels().leaky_relu_forward_par(x.ravel("K"), out.ravel("K"),
                                                  x.dtype.type(self.slope), omp)
            return out
        if _large_cpu(x) and 0.0 <= self.slope <= 1.0:
            # max(x, slope * x) is x for x > 0 and slope * x otherwise (NaN stays NaN), in two
            # passes per block, blocks on several threads, in x's layout
            out = np.empty_like(x)

            def part(xs, os_):
                np.multiply(xs, self.slope, out=os_)
                np.maximum(xs, os_, out=os_)
            parallel_slices(part, [x, out])
            return out
        return xp.where(x > 0, x, x * self.slope)

    def _df(self, x, g):
        return where(x > 0, g, g * self.slope)

    def _df_arr(self, xp, x, g):
        omp = _omp_parts(x, g) if _large_cpu(x, g) and 0.0 <= self.slope <= 1.0 else 0
        if omp:
            out = np.empty_like(x)
            _jit.kernels().leaky_relu_backward_par(x.ravel("K"), g.ravel("K"), out.ravel("K"),
                                                   x.dtype.type(self.slope), omp)
            return out
        if _large_cpu(x, g) and g.dtype == x.dtype and 0.0 <= self.slope <= 1.0:
            out = np.empty_like(x)

            def part(xs, gs, os_):
                # g * max([x > 0], slope), exactly g or g * slope, in branch-free passes: a
                # select on the sign (np.where, copyto with where=) mispredicts on every other
                # element and runs 6x slower on activations of random sign
                np.maximum(np.greater(xs, 0), self.slope, out=os_)
                os_ *= gs
            parallel_slices(part, [x, g, out])
            return out
        return xp.where(x > 0, g, g * self.slope)


@register_functional("leaky_relu")
@bfloat16_in_float32()
def leaky_relu(input, negative_slope=0.01, inplace=False) -> Tensor:
    _float(input, "leaky_relu")
    return apply_inplace(input, lambda t: LeakyRelu.apply(t, slope=float(negative_slope)),
                         inplace)


class Hardtanh(_Act):
    def _f(self, xp, x):
        return xp.clip(x, self.lo, self.hi).astype(x.dtype, copy=False)

    def _df(self, x, g):
        inside = (x > self.lo) & (x < self.hi)
        return where(inside, g, 0.0)

    def _df_arr(self, xp, x, g):
        return g * ((x > self.lo) & (x < self.hi))


@register_functional("hardtanh")
def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False) -> Tensor:
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return apply_inplace(input, lambda t: Hardtanh.apply(t, lo=min_val, hi=max_val), inplace)


@register_functional("relu6")
def relu6(input, inplace=False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


class Elu(_Act):
    """scale * (x if x > 0 else alpha * (exp(x * input_scale) - 1)): elu, selu and celu."""

    def _f(self, xp, x):
        neg = xp.expm1(xp.minimum(x, 0) * self.iscale) * (self.alpha * self.scale)
        return xp.where(x > 0, x * self.scale, neg).astype(x.dtype, copy=False)

    def _df(self, x, g):
        k = self.alpha * self.scale * self.iscale
        return where(x > 0, g * self.scale, g * (exp(x.clamp(max=0.0) * self.iscale) * k))

    def _df_arr(self, xp, x, g):
        k = self.alpha * self.scale * self.iscale
        return xp.where(x > 0, g * self.scale,
                        g * (xp.exp(xp.minimum(x, 0) * self.iscale) * k)).astype(g.dtype,
                                                                                copy=False)


@register_functional("elu")
@bfloat16_in_float32()
def elu(input, alpha=1.0, inplace=False) -> Tensor:
    _float(input, "elu")
    return apply_inplace(input, lambda t: Elu.apply(t, alpha=float(alpha), scale=1.0,
                                                    iscale=1.0), inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@register_functional("selu")
@bfloat16_in_float32()
def selu(input, inplace=False) -> Tensor:
    _float(input, "selu")
    return apply_inplace(input, lambda t: Elu.apply(t, alpha=_SELU_ALPHA, scale=_SELU_SCALE,
                                                    iscale=1.0), inplace)


@register_functional("celu")
@bfloat16_in_float32()
def celu(input, alpha=1.0, inplace=False) -> Tensor:
    _float(input, "celu")
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    return apply_inplace(input, lambda t: Elu.apply(t, alpha=float(alpha), scale=1.0,
                                                    iscale=1.0 / alpha), inplace)


# ---------------------------------------------------------------------------- smooth gates
_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_K = math.sqrt(2.0 / math.pi)
_TANH_C = 0.044715


def _erf_kernels(*arrays) -> bool:
    """Whether the compiled float32 erf-GELU kernels (_jit_kernels) take these arrays."""
    return arrays[0].dtype == np.float32 and _jit.eligible(*arrays) and \
        _jit.kernels() is not None


def _flat_ranges(kernel, *arrays) -> None:
    """kernel(*flat arrays, i0, i1) over every element, split between threads when large."""
    flat = [a.reshape(-1) for a in arrays]
    parallel_ranges(lambda i0, i1: kernel(*flat, i0, i1), flat[0].size, flat[0].size,
                    1 << 18)


class Gelu(_Act):
    """On CuPy arrays of a supported float dtype, forward and plain backward are one fused
    kernel each (framework/_cuda_kernels.py); elsewhere the array expressions below."""

    def _f(self, xp, x):
        if xp is not np and x.dtype in _K._FLOATS:
            return _K.gelu_forward(x, self.approximate)
        if self.approximate == "none" and _erf_kernels(x):
            y = np.empty_like(x)
            _flat_ranges(_jit.kernels().gelu_erf_forward, x, y)
            return y
        if self.approximate == "tanh":
            t = xp.tanh((x + _TANH_C * x * x * x) * _TANH_K)
            t += 1.0
            t *= x
            t *= 0.5
            return t
        cdf = special_fn(xp, "erf")(x * (1.0 / _SQRT_2)).astype(x.dtype, copy=False)
        cdf += 1.0
        cdf *= x
        cdf *= 0.5
        return cdf

    def _df(self, x, g):
        if self.approximate == "tanh":
            x2 = x * x
            t = tanh((x + x2 * x * _TANH_C) * _TANH_K)
            dt = (1.0 - t * t) * ((x2 * (3.0 * _TANH_C) + 1.0) * _TANH_K)
            return g * (0.5 * (t + 1.0) + 0.5 * x * dt)
        from .elementwise import erf
        cdf = 0.5 * (erf(x * (1.0 / _SQRT_2)) + 1.0)
        pdf = exp(x * x * -0.5) * _INV_SQRT_2PI
        return g * (cdf + x * pdf)

    def _df_arr(self, xp, x, g):
        if xp is not np and _K.supports(x, g):
            return _K.gelu_backward(x, g, self.approximate)
        if self.approximate == "none" and _erf_kernels(x, g):
            dx = np.empty_like(x)
            _flat_ranges(_jit.kernels().gelu_erf_backward, x, g, dx)
            return dx
        if self.approximate == "tanh":
            x2 = x * x
            t = xp.tanh((x + x2 * x * _TANH_C) * _TANH_K)
            d = (1.0 - t * t) * ((x2 * (3.0 * _TANH_C) + 1.0) * (0.5 * _TANH_K))
            d *= x
            d += 0.5 * (t + 1.0)
            d *= g
            return d
        cdf = special_fn(xp, "erf")(x * (1.0 / _SQRT_2)).astype(x.dtype, copy=False)
        cdf += 1.0
        cdf *= 0.5
        pdf = xp.exp(x * x * -0.5)
        pdf *= x
        pdf *= _INV_SQRT_2PI
        cdf += pdf
        cdf *= g
        return cdf


@register_functional("gelu")
@bfloat16_in_float32()
def gelu(input, approximate="none") -> Tensor:
    """x * Phi(x); approximate='tanh' uses the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got "
                           f"{approximate!r}")
    _float(input, "gelu")
    return Gelu.apply(input, approximate=approximate)


class Silu(_Act):
    """Fused CuPy kernels on the GPU, as Gelu."""

    def _f(self, xp, x):
        if xp is not np and x.dtype in _K._FLOATS:
            return _K.silu_forward(x)
        return x * _sigmoid_arr(xp, x)

    def _df(self, x, g):
        s = sigmoid(x)
        return g * (s * (x * (1.0 - s) + 1.0))

    def _df_arr(self, xp, x, g):
        if xp is not np and _K.supports(x, g):
            return _K.silu_backward(x, g)
        s = _sigmoid_arr(xp, x)
        d = 1.0 - s
        d *= x
        d += 1.0
        d *= s
        d *= g
        return d


@register_functional("silu")
@bfloat16_in_float32()
def silu(input, inplace=False) -> Tensor:
    _float(input, "silu")
    return apply_inplace(input, lambda t: Silu.apply(t), inplace)


def _softplus_arr(xp, x):
    return xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(x, 0)


class Mish(_Act):
    def _f(self, xp, x):
        return x * xp.tanh(_softplus_arr(xp, x))

    def _df(self, x, g):
        t = tanh(softplus(x))
        return g * (t + x * sigmoid(x) * (1.0 - t * t))

    def _df_arr(self, xp, x, g):
        t = xp.tanh(_softplus_arr(xp, x))
        return g * (t + x * _sigmoid_arr(xp, x) * (1.0 - t * t))


@register_functional("mish")
@bfloat16_in_float32()
def mish(input, inplace=False) -> Tensor:
    _float(input, "mish")
    return apply_inplace(input, lambda t: Mish.apply(t), inplace)


class Hardswish(_Act):
    def _f(self, xp, x):
        return x * (xp.clip(x + 3.0, 0.0, 6.0) / 6.0).astype(x.dtype, copy=False)

    # PyTorch's kinks: 0 at x = -3, 1 at x = 3 (the outer pieces' slopes)
    def _df(self, x, g):
        mid = where(x < 3.0, x / 3.0 + 0.5, 1.0)
        return where(x <= -3.0, 0.0, g * mid)

    def _df_arr(self, xp, x, g):
        d = xp.where(x <= -3.0, 0.0, xp.where(x < 3.0, x / 3.0 + 0.5, 1.0))
        return (g * d).astype(g.dtype, copy=False)


@register_functional("hardswish")
@bfloat16_in_float32()
def hardswish(input, inplace=False) -> Tensor:
    _float(input, "hardswish")
    return apply_inplace(input, lambda t: Hardswish.apply(t), inplace)


class Hardsigmoid(_Act):
    def _f(self, xp, x):
        return (xp.clip(x + 3.0, 0.0, 6.0) / 6.0).astype(x.dtype, copy=False)

    def _df(self, x, g):
        return where((x > -3.0) & (x < 3.0), g * (1.0 / 6.0), 0.0)

    def _df_arr(self, xp, x, g):
        return g * (((x > -3.0) & (x < 3.0)) * (1.0 / 6.0)).astype(g.dtype, copy=False)


@register_functional("hardsigmoid")
@bfloat16_in_float32()
def hardsigmoid(input, inplace=False) -> Tensor:
    _float(input, "hardsigmoid")
    return apply_inplace(input, lambda t: Hardsigmoid.apply(t), inplace)


class Softplus(_Act):
    def _f(self, xp, x):
        bx = x * self.beta
        soft = (_softplus_arr(xp, bx) / self.beta).astype(x.dtype, copy=False)
        return xp.where(bx > self.threshold, x, soft)

    def _df(self, x, g):
        bx = x * self.beta
        return where(bx > self.threshold, g, g * sigmoid(bx))

    def _df_arr(self, xp, x, g):
        bx = x * self.beta
        return xp.where(bx > self.threshold, g, g * _sigmoid_arr(xp, bx))


@register_functional("softplus")
@bfloat16_in_float32()
def softplus(input, beta=1.0, threshold=20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, linear where beta * x > threshold."""
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("softplus", softplus, input, beta, threshold)
        if out is not None:
            return out
    _float(input, "softplus")
    return Softplus.apply(input, beta=float(beta), threshold=float(threshold))


class Logsigmoid(_Act):
    def _f(self, xp, x):
        return (xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))).astype(x.dtype, copy=False)

    def _df(self, x, g):
        return g * sigmoid(-x)

    def _df_arr(self, xp, x, g):
        return g * _sigmoid_arr(xp, -x)


@register_functional("logsigmoid")
@bfloat16_in_float32()
def logsigmoid(input) -> Tensor:
    _float(input, "logsigmoid")
    return Logsigmoid.apply(input)


# ---------------------------------------------------------------------------- composites
@register_functional("softsign")
@bfloat16_in_float32()
def softsign(input) -> Tensor:
    return input / (input.abs() + 1.0)


@register_functional("tanhshrink")
@bfloat16_in_float32()
def tanhshrink(input) -> Tensor:
    return input - tanh(input)


@register_functional("softshrink")
def softshrink(input, lambd=0.5) -> Tensor:
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return where(input > lambd, input - lambd, where(input < -lambd, input + lambd, 0.0))


@register_functional("hardshrink")
def hardshrink(input, lambd=0.5) -> Tensor:
    return where((input >= -lambd) & (input <= lambd), 0.0, input)


@register_functional("threshold")
def threshold(input, threshold, value, inplace=False) -> Tensor:
    """x where x > threshold, else value."""
    return apply_inplace(input, lambda t: where(t > threshold, t, value), inplace)


@register_functional("glu")
@bfloat16_in_float32()
def glu(input, dim=-1) -> Tensor:
    """a * sigmoid(b) for the two halves a, b of `dim`."""
    if input._data.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    nd = input._data.ndim
    d = dim % nd
    n = input._data.shape[d]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {n}")
    a = input.narrow(d, 0, n // 2)
    b = input.narrow(d, n // 2, n // 2)
    return a * sigmoid(b)


@register_functional("prelu")
@bfloat16_in_float32("input", "weight")
def prelu(input, weight) -> Tensor:
    """x if x > 0 else weight * x; weight has 1 or C (= input.size(1)) elements."""
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("prelu", prelu, input, weight)
        if out is not None:
            return out
    nd = input._data.ndim
    k = weight._data.size
    if k != 1:
        c = input._data.shape[1] if nd >= 2 else (input._data.shape[0] if nd == 1 else 1)
        if k != c:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found "
                               f"parameter numbers = {k} and channel size = {c}.")
        w = weight.reshape((1, k) + (1,) * (nd - 2)) if nd >= 2 else weight.reshape(k)
    else:
        w = weight.reshape(())
    return where(input > 0, input, input * w)


@register_functional("rrelu")
@bfloat16_in_float32()
def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False) -> Tensor:
    """Leaky ReLU with a random slope in [lower, upper] per element when training, the mean
    slope otherwise."""
    _float(input, "rrelu")
    if not training:
        return leaky_relu(input, (lower + upper) / 2.0, inplace)
    gen = default_generator_for(input.device)
    u = gen._uniform(input._data.shape, input._data.dtype, input.device)
    slope = _make((u * (upper - lower) + lower).astype(input._data.dtype, copy=False), None, 0)
    return apply_inplace(input, lambda t: where(t >= 0, t, t * slope), inplace)


@register_functional("softmin")
def softmin(input, dim=None, _stacklevel=3, dtype=None) -> Tensor:
    from .reduction import softmax
    if dim is None:
        dim = 0 if input._data.ndim in (0, 1, 3) else 1
    return softmax(-input, dim, dtype=dtype)


@register_functional("gumbel_softmax")
def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1) -> Tensor:
    """Samples from the Gumbel-softmax distribution; `hard` returns one-hot samples with the
    soft sample's gradient (straight-through)."""
    from .reduction import softmax
    xp = xp_of(logits._data)
    gen = default_generator_for(logits.device)
    u = gen._uniform(logits._data.shape, logits._data.dtype, logits.device)
    e = -xp.log1p(-u)  # Exp(1) draws
    gumbels = _make((-xp.log(e)).astype(logits._data.dtype, copy=False), None, 0)
    y_soft = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    d = dim % logits._data.ndim
    idx = xp.argmax(y_soft._data, axis=d)
    hard_arr = xp.zeros_like(y_soft._data)
    xp.put_along_axis(hard_arr, xp.expand_dims(idx, d), 1.0, axis=d)
    return _make(hard_arr, None, 0) - y_soft.detach() + y_soft


__all__ = ["leaky_relu", "hardtanh", "relu6", "elu", "selu", "celu", "gelu", "silu", "mish",
           "hardswish", "hardsigmoid", "softplus", "logsigmoid", "softsign", "tanhshrink",
           "softshrink", "hardshrink", "threshold", "glu", "prelu", "rrelu", "softmin",
           "gumbel_softmax", "apply_inplace"]

