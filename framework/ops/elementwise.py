"""Elementwise ops: unary math, binary arithmetic with broadcasting, comparisons, logic,
where/clamp/lerp, casts and device moves. Each op's forward (on arrays) and backward (on
Tensors, from differentiable ops) sit side by side."""
from __future__ import annotations

import cmath
import math

import numpy as np

from .. import _dtype as D, _jit
from .._backend import special_fn, to_device_array, xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from ._util import binary_operands, broadcast_shape, ensure_tensor, float_input
from .registry import register
from .._parallel import MIN_PARALLEL_ELEMENTS, parallel_ranges, parallel_slices
from ..amp import LISTED_OPS, _AutocastState, autocast_op

_AUTOCAST = _AutocastState.enabled


# ============================================================================ reduce-to-shape
class SumTo(Op):
    """Sum a broadcast gradient back to `shape` (the backward of broadcasting)."""

    def forward(self, x):
        self.in_shape = x.shape
        return _sum_to_arr(x, self.shape)

    def backward(self, g):
        return (broadcast_to(g, self.in_shape),)


def _sum_to_arr(x, shape):
    nd = x.ndim - len(shape)
    axes = tuple(range(nd)) + tuple(i + nd for i, s in enumerate(shape)
                                    if s == 1 and x.shape[i + nd] != 1)
    if axes:
        if x.dtype.kind == "V":  # bfloat16: accumulated in float32, rounded once
            x = x.sum(axis=axes, keepdims=True, dtype=np.float32).astype(x.dtype)
        else:
            x = x.sum(axis=axes, keepdims=True)
        if nd:
            x = x.reshape(shape)
    return x


def sum_to(g: Tensor, shape) -> Tensor:
    if g._data.shape == shape:
        return g
    return SumTo.apply(g, shape=tuple(shape))


class BroadcastTo(Op):
    def forward(self, x):
        self.in_shape = x.shape
        return xp_of(x).broadcast_to(x, self.shape)

    def backward(self, g):
        return (sum_to(g, self.in_shape),)


@register(method=True)
def broadcast_to(input: Tensor, size) -> Tensor:
    size = tuple(size)
    if input._data.shape == size:
        return input
    try:
        np.broadcast_shapes(input._data.shape, size)
    except ValueError:
        raise RuntimeError(f"broadcast_to: the shape {list(input.shape)} cannot be broadcast to "
                           f"{list(size)}") from None
    out = BroadcastTo.apply(input, shape=size)
    out._vc = input._shared_vc()
    return out


# ============================================================================ casts and moves
class Cast(Op):
    def forward(self, x):
        self.in_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, g):
        if self.in_dtype.kind not in "fc" and self.in_dtype.name != "bfloat16":
            return (None,)  # integer/bool inputs get no gradient; bfloat16 (kind 'V') does
        if g._data.dtype.kind == "c" and self.in_dtype.kind != "c":
            g = g.real  # a real input promoted to complex: its gradient is the real part
        return (g.to(dtype=D.from_numpy_dtype(self.in_dtype)),)


class ToDevice(Op):
    def forward(self, x):
        from .._backend import device_of
        self.src = device_of(x)
        return to_device_array(x, self.device)

    def backward(self, g):
        return (g.to(self.src),)


# ============================================================================ unary ops
class _Unary(Op):
    """y = f(x). `_f(xp, x)` computes; `_df(self, x, g)` gives dL/dx from Tensors;
    `_complex_df` does for complex x (None: backward raises)."""

    save_inputs = (0,)
    _complex_df = None

    def forward(self, x):
        y = self._f(xp_of(x), x)
        if self._keep_out:
            self.y = y
        return y

    def out(self, x):
        """The output as a Tensor: recomputed with a graph under create_graph, else cached."""
        if _State.grad_enabled:
            return type(self).apply(x)
        return Tensor._make(self.saved_output(), None, 0)

    def backward(self, g):
        (x,) = self.saved_tensors
        if x._data.dtype.kind == "c":
            if self._complex_df is None:
                raise RuntimeError(f"{self._name}: backward is not implemented for complex "
                                   f"inputs (got {x.dtype.name})")
            return (self._complex_df(x, g),)
        return (self._df(x, g),)

    def _release_extra(self):
        self.y = None


def _holomorphic(s, x, g):
    """g * conj(f'(x)), PyTorch's gradient of a holomorphic f, from the real formula (which
    is linear in g): conj(df(x, conj(g)))."""
    return s._df(x, g.conj()).conj()


def _unary(name, f, df, keep_out=False, floating=True, differentiable=True, doc=""):
    cls = type(name.capitalize().replace("_", ""), (_Unary,), {
        "_f": staticmethod(f), "_df": df, "_keep_out": keep_out, "save_output": keep_out,
        "differentiable": differentiable, "__doc__": doc, "_name": name})

    if name in LISTED_OPS:  # on an autocast list (exp, log, ...): the guard is built in here,
        def fn(input: Tensor) -> Tensor:  # so that the other unary ops pay nothing for it
            if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
                out = autocast_op(name, fn, input)
                if out is not None:
                    return out
            if floating:
                input = float_input(input)
            return cls.apply(input)
    else:
        def fn(input: Tensor) -> Tensor:
            if floating:
                input = float_input(input)
            return cls.apply(input)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc or f"Elementwise {name}."
    fn.op = cls
    register(name, differentiable=differentiable)(fn)
    return fn


def _zero_grad(self, x, g):
    return g * 0.0


_SQRT_PI_2 = 2.0 / math.sqrt(math.pi)

def _neg_f(xp, x):
    if x.dtype.kind == "b":
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If you "
                           "are trying to invert a mask, use the `~` or `logical_not()` operator "
                           "instead.")
    return -x


neg = _unary("neg", _neg_f, lambda s, x, g: -g, floating=False)
negative = neg
abs = _unary("abs", lambda xp, x: xp.abs(x), lambda s, x, g: g * sign(x), floating=False)  # noqa: A001
exp = _unary("exp", lambda xp, x: xp.exp(x), lambda s, x, g: g * s.out(x), keep_out=True)
exp2 = _unary("exp2", lambda xp, x: xp.exp2(x),
              lambda s, x, g: g * s.out(x) * math.log(2.0), keep_out=True)
log = _unary("log", lambda xp, x: xp.log(x), lambda s, x, g: g / x)
log2 = _unary("log2", lambda xp, x: xp.log2(x), lambda s, x, g: g / (x * math.log(2.0)))
log10 = _unary("log10", lambda xp, x: xp.log10(x), lambda s, x, g: g / (x * math.log(10.0)))
log1p = _unary("log1p", lambda xp, x: xp.log1p(x), lambda s, x, g: g / (x + 1.0))
expm1 = _unary("expm1", lambda xp, x: xp.expm1(x), lambda s, x, g: g * (s.out(x) + 1.0),
               keep_out=True)
sqrt = _unary("sqrt", lambda xp, x: xp.sqrt(x), lambda s, x, g: g / (2.0 * s.out(x)),
              keep_out=True)
rsqrt = _unary("rsqrt", lambda xp, x: 1.0 / xp.sqrt(x),
               lambda s, x, g: g * (-0.5) * s.out(x) ** 3, keep_out=True)
reciprocal = _unary("reciprocal", lambda xp, x: 1.0 / x,
                    lambda s, x, g: -g * s.out(x) ** 2, keep_out=True)
square = _unary("square", lambda xp, x: x * x if x.dtype.kind != "b" else x.astype(np.int64),
                lambda s, x, g: g * 2.0 * x, floating=False)
sin = _unary("sin", lambda xp, x: xp.sin(x), lambda s, x, g: g * cos(x))
cos = _unary("cos", lambda xp, x: xp.cos(x), lambda s, x, g: -g * sin(x))
tan = _unary("tan", lambda xp, x: xp.tan(x), lambda s, x, g: g * (1.0 + s.out(x) ** 2),
             keep_out=True)
asin = _unary("asin", lambda xp, x: xp.arcsin(x), lambda s, x, g: g * rsqrt(1.0 - x * x))
acos = _unary("acos", lambda xp, x: xp.arccos(x), lambda s, x, g: -g * rsqrt(1.0 - x * x))
atan = _unary("atan", lambda xp, x: xp.arctan(x), lambda s, x, g: g / (1.0 + x * x))
sinh = _unary("sinh", lambda xp, x: xp.sinh(x), lambda s, x, g: g * cosh(x))
cosh = _unary("cosh", lambda xp, x: xp.cosh(x), lambda s, x, g: g * sinh(x))
asinh = _unary("asinh", lambda xp, x: xp.arcsinh(x), lambda s, x, g: g * rsqrt(x * x + 1.0))
acosh = _unary("acosh", lambda xp, x: xp.arccosh(x), lambda s, x, g: g * rsqrt(x * x - 1.0))
atanh = _unary("atanh", lambda xp, x: xp.arctanh(x), lambda s, x, g: g / (1.0 - x * x))
tanh = _unary("tanh", lambda xp, x: xp.tanh(x), lambda s, x, g: g * (1.0 - s.out(x) ** 2),
              keep_out=True)


# Elements from which float32 sigmoid takes its compiled kernel: below, NumPy's passes cost
# microseconds, and a small model need not load numba for them.
_SIGMOID_KERNEL_MIN = 4096


def _sigmoid_f(xp, x):
    if x.dtype.kind == "c":  # the real-only formula below compares and takes abs
        return 1.0 / (1.0 + xp.exp(-x))
    if x.dtype == np.float32 and x.size >= _SIGMOID_KERNEL_MIN and _jit.eligible(x) and \
            _jit.kernels() is not None:
        # one compiled pass with a vectorising exp (the formula below takes eight passes)
        y = np.empty_like(x)
        flat_x, flat_y = x.reshape(-1), y.reshape(-1)
        parallel_ranges(lambda i0, i1: _jit.kernels().sigmoid_f32(flat_x, flat_y, i0, i1),
                        flat_x.size, flat_x.size, 1 << 18)
        return y
    # exp of a non-positive number only: no overflow for large |x|
    z = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)


def _sigmoid_df(s, x, g):
    y = s.out(x)
    return g * y * (1.0 - y)


sigmoid = _unary("sigmoid", _sigmoid_f, _sigmoid_df, keep_out=True)


# The complex formulas below stay complex throughout: a real operand would be promoted by a
# Cast, whose backward (second derivatives) casts complex to real with a NumPy warning.
def _safe_abs(x):
    """(|z| + 0j, z == 0), |z| replaced by 1 at 0 so that no 0/0 enters second derivatives."""
    sq = x * x.conj()  # |z|^2 with an exactly zero imaginary part
    at0 = sq == 0
    return where(at0, ones_scalar(sq), sq).sqrt(), at0


def _abs_complex_df(s, x, g):
    # |z| grows along z/|z|: z.grad = g * z/|z|, 0 at z = 0
    from .complex import Complex  # complex.py imports this module
    return Complex.apply(g, zeros_scalar(g)) * x / _safe_abs(x)[0]


def _sgn_complex_df(s, x, g):
    # sgn z = z/|z| moves only with the angle: z.grad = (g - Re(g conj(sgn z)) sgn z) / |z|,
    # 0 at z = 0 (PyTorch's sgn backward)
    a, at0 = _safe_abs(x)
    sg = x / a
    w = g * sg.conj()
    return where(at0, zeros_scalar(g), (g - (w + w.conj()) * 0.5 * sg) / a)


abs.op._complex_df = _abs_complex_df
neg.op._complex_df = neg.op._df  # linear with a real coefficient
# Holomorphic: their real formulas give f'(z) at complex z too (principal branches)
for _fn in (exp, exp2, log, log2, log10, log1p, expm1, sqrt, rsqrt, reciprocal, square, sin,
            cos, tan, asin, acos, atan, sinh, cosh, tanh, asinh, acosh, atanh, sigmoid):
    _fn.op._complex_df = _holomorphic
del _fn


def _element_strides(a):
    return tuple(st // a.itemsize for st in a.strides)


def _relu_omp_parts(x) -> int:
    """Parts for ReLU's prange kernels: a large float32/float64 image or volume activation
    (4-D or 5-D, between convolutions and norms that run on the same OpenMP threads) laid
    out densely in some order (channels-last, images-last or plain), with the compiled
    kernels already loaded. (Between two GEMMs, as in a Transformer's feed-forward block,
    an OpenMP thread still spinning after the ReLU would take a core from OpenBLAS.)"""
    if type(x) is not _ndarray or x.dtype not in _jit._FLOATS or x.ndim < 4 or \
            x.size < MIN_PARALLEL_ELEMENTS // 4 or not _is_dense(x):
        return 0
    return _jit.omp_parts(load=False)


def _is_dense(a) -> bool:
    """Whether a's elements fill one block of memory (its strides a permutation of a
    C-contiguous array's), so that ravel("K") is a view."""
    if a.flags.c_contiguous:
        return True
    order = sorted(range(a.ndim), key=lambda i: -a.strides[i])  # (negative: not dense)
    return a.transpose(order).flags.c_contiguous


class Relu(Op):
    """max(x, 0); keeps only the boolean mask for backward, true where x <= 0 is false, so that
    a NaN input passes its gradient as PyTorch's does. (NumPy, not a compiled kernel: a
    ReLU-only model then never loads numba, whose compiler costs ~110 MiB of memory once, for
    a kernel only ~25% faster than these two passes.)"""

    def forward(self, x):
        if x.dtype.kind == "b":
            self.mask = x
            return x
        omp = _relu_omp_parts(x)
        if omp:  # one pass on numba's OpenMP threads (the convolutions' threads use them)
            mask, out = np.empty_like(x, dtype=bool), np.empty_like(x)
            _jit.kernels().relu_forward_par(x.ravel("K"), out.ravel("K"), mask.ravel("K"), omp)
            self.mask = mask
            return out
        if type(x) is _ndarray and x.ndim and x.size >= MIN_PARALLEL_ELEMENTS:
            mask, out = np.empty_like(x, dtype=bool), np.empty_like(x)  # keep x's layout

            def part(xs, ms, os_):  # a large activation: blocks on several threads
                np.less_equal(xs, 0, out=ms)
                np.logical_not(ms, out=ms)
                np.maximum(xs, 0, out=os_)
            parallel_slices(part, [x, mask, out])
            self.mask = mask
            return out
        self.mask = ~(x <= 0)
        # maximum, not x * mask: a negative x times False would give -0.0
        return xp_of(x).maximum(x, 0)

    def backward(self, g):
        mask = self.mask
        if _State.grad_enabled:
            return (g * Tensor._make(mask, None, 0),)
        ga = g._data  # one pass: the array module multiplies by a bool mask
        if type(ga) is _ndarray and ga.ndim and ga.size >= MIN_PARALLEL_ELEMENTS and \
                ga.shape == mask.shape:
            if _element_strides(ga) == _element_strides(mask):
                src, gx = ga, np.empty_like(ga)
            else:
                # g strided unlike the mask (a cropped or broadcast view): copied into the
                # mask's layout first; NumPy's mixed-layout multiply by a bool mask is several
                # times slower than the copy and a same-layout multiply together
                gx = np.empty_like(mask, dtype=ga.dtype)
                np.copyto(gx, ga)
                src = gx
            omp = _relu_omp_parts(src)  # (src is in the mask's layout)
            if omp:
                _jit.kernels().mask_multiply_par(src.ravel("K"), mask.ravel("K"),
                                                 gx.ravel("K"), omp)
            else:
                parallel_slices(lambda s_, m_, o_: np.multiply(s_, m_, out=o_),
                                [src, mask, gx])
            return (_make(gx, None, 0),)
        return (_make(ga * mask, None, 0),)

    def _release_extra(self):
        self.mask = None


@register()
def relu(input: Tensor) -> Tensor:
    return Relu.apply(input)


erf = _unary("erf", lambda xp, x: special_fn(xp, "erf")(x).astype(x.dtype, copy=False),
             lambda s, x, g: g * _SQRT_PI_2 * exp(-(x * x)))
erfc = _unary("erfc", lambda xp, x: special_fn(xp, "erfc")(x).astype(x.dtype, copy=False),
              lambda s, x, g: -g * _SQRT_PI_2 * exp(-(x * x)))
sign = _unary("sign", lambda xp, x: xp.sign(x) if x.dtype.kind != "b" else x.copy(), _zero_grad,
             floating=False)
sgn = sign
sign.op._complex_df = _sgn_complex_df
erf.op._complex_df = erfc.op._complex_df = _holomorphic
floor = _unary("floor", lambda xp, x: xp.floor(x), _zero_grad, floating=False)
ceil = _unary("ceil", lambda xp, x: xp.ceil(x), _zero_grad, floating=False)
trunc = _unary("trunc", lambda xp, x: xp.trunc(x), _zero_grad, floating=False)
fix = trunc
frac = _unary("frac", lambda xp, x: x - xp.trunc(x), lambda s, x, g: g)


class Round(Op):
    def forward(self, x):
        return xp_of(x).round(x, self.decimals)

    def backward(self, g):
        return (g * 0.0,)


@register()
def round(input: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001
    return Round.apply(input, decimals=decimals)


# ============================================================================ binary ops
class _Binary(Op):
    __slots__ = ("sa", "sb")  # no per-op __dict__: fewer allocations on the hottest ops

    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        return self._f(a, b)


_ndarray = np.ndarray
_make = Tensor._make
_NUMPY_CLASSES = {np.ndarray, np.float32, np.float64, np.float16, np.int64, np.int32, np.int16,
                  np.int8, np.uint8, np.bool_}


def _call_binary(cls, input, other, name):
    """Run binary op `cls`. Fast path: two NumPy tensors of one dtype, or a float tensor and a
    Python float; without a graph to record, the array op runs directly."""
    if input.__class__ is Tensor:
        da = input._data
        oc = other.__class__
        if oc is Tensor:
            db = other._data
            if da.__class__ in _NUMPY_CLASSES and db.__class__ in _NUMPY_CLASSES and \
                    da.dtype == db.dtype:
                try:
                    if not (_State.grad_enabled and (input._requires_grad or
                                                     other._requires_grad)):
                        return _make(cls._f(da, db), None, 0)
                    return cls.apply(input, other)
                except ValueError:
                    broadcast_shape(da.shape, db.shape, name)
                    raise
        elif oc is float and da.__class__ in _NUMPY_CLASSES and da.dtype.kind == "f":
            if not (_State.grad_enabled and input._requires_grad):
                return _make(cls._f(da, other), None, 0)
            return cls.apply(input, _make(np.asarray(other, da.dtype), None, 0))
    a, b = binary_operands(input, other, name)
    _check_shapes(a, b, name)
    return cls.apply(a, b)


class Add(_Binary):
    @staticmethod
    def _f(a, b):
        return a + b

    def backward(self, g):
        ea, eb = self.next_edges
        na, nb = ea is not None, eb is not None
        return (sum_to(g, self.sa) if na else None, sum_to(g, self.sb) if nb else None)


class Sub(_Binary):
    @staticmethod
    def _f(a, b):
        return a - b

    def backward(self, g):
        ea, eb = self.next_edges
        na, nb = ea is not None, eb is not None
        return (sum_to(g, self.sa) if na else None, sum_to(-g, self.sb) if nb else None)


class Mul(_Binary):
    save_inputs = "all"

    @staticmethod
    def _f(a, b):
        return a * b

    def backward(self, g):
        a, b = self.saved_tensors
        ea, eb = self.next_edges
        na, nb = ea is not None, eb is not None
        if a._data.dtype.kind == "c":  # g * conj(other factor), PyTorch's complex convention
            return (sum_to(g * b.conj(), self.sa) if na else None,
                    sum_to(g * a.conj(), self.sb) if nb else None)
        return (sum_to(g * b, self.sa) if na else None, sum_to(g * a, self.sb) if nb else None)


class Div(_Binary):
    save_inputs = "all"

    @staticmethod
    def _f(a, b):
        return a / b

    def backward(self, g):
        a, b = self.saved_tensors
        ea, eb = self.next_edges
        na, nb = ea is not None, eb is not None
        if a._data.dtype.kind == "c":  # g * conj(d(a/b)): the real formula at conj(a), conj(b)
            a, b = a.conj(), b.conj()
        ga = sum_to(g / b, self.sa) if na else None
        gb = sum_to(-g * a / (b * b), self.sb) if nb else None
        return ga, gb


class Pow(_Binary):
    save_inputs = "all"

    @staticmethod
    def _f(a, b):
        return a ** b

    def backward(self, g):
        a, b = self.saved_tensors
        ea, eb = self.next_edges
        na, nb = ea is not None, eb is not None
        if a._data.dtype.kind == "c":
            return self._complex_backward(g, a, b, na, nb)
        ga = sum_to(g * b * a ** (b - 1.0), self.sa) if na else None
        gb = None
        if nb:
            safe_log = log(where(a > 0, a, ones_scalar(a)))
            gb = sum_to(where((a == 0) & (b >= 0), zeros_scalar(g), g * a ** b * safe_log),
                        self.sb)
        return ga, gb

    def _complex_backward(self, g, a, b, na, nb):
        # g * conj(df), masked as PyTorch: d/da is 0 where b == 0, d/db is 0 where a == 0
        # and b is real and >= 0 (log(0) would give nan there)
        zero = zeros_scalar(g)
        ga = gb = None
        if na:
            ga = sum_to(where(b == 0, zero, g * (b * a ** (b - 1.0)).conj()), self.sa)
        if nb:
            at0 = a == 0
            log_a = log(where(at0, ones_scalar(a), a))
            gb = sum_to(where(at0 & (b.imag == 0) & (b.real >= 0), zero,
                              g * (a ** b * log_a).conj()), self.sb)
        return ga, gb


class PowScalar(Op):
    """x ** p for a Python number p (the common case; no graph edge for the exponent)."""

    save_inputs = (0,)

    def forward(self, x):
        return x ** self.p

    def backward(self, g):
        (x,) = self.saved_tensors
        p = self.p
        if p == 0:
            return (g * 0.0,)
        if p == 1:
            return (g,)
        if x._data.dtype.kind == "c":  # g * conj(f'(x)); p is real
            return (g * (x ** (p - 1)).conj() * p,)
        if p == 2:
            return (g * 2.0 * x,)
        return (g * p * x ** (p - 1),)


class RPowScalar(Op):
    """c ** x for a Python number c."""

    save_inputs = (0,)
    save_output = True

    def forward(self, x):
        self.y = self.c ** x
        return self.y

    def backward(self, g):
        (x,) = self.saved_tensors
        y = RPowScalar.apply(x, c=self.c) if _State.grad_enabled else \
            Tensor._make(self.saved_output(), None, 0)
        if x._data.dtype.kind == "c" and self.c != 0:  # g * conj(y log c), log c complex if c < 0
            return (g * y.conj() * cmath.log(self.c).conjugate(),)
        return (g * y * math.log(self.c) if self.c > 0 else g * 0.0,)

    def _release_extra(self):
        self.y = None


class Maximum(_Binary):
    save_inputs = "all"

    @staticmethod
    def _f(a, b):
        return xp_of(a).maximum(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        wa = (a > b).to(g.dtype) + (a == b).to(g.dtype) * 0.5
        ea, eb = self.next_edges
        na, nb = ea is not None, eb is not None
        return (sum_to(g * wa, self.sa) if na else None,
                sum_to(g * (1.0 - wa), self.sb) if nb else None)


class Minimum(_Binary):
    save_inputs = "all"

    @staticmethod
    def _f(a, b):
        return xp_of(a).minimum(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        wa = (a < b).to(g.dtype) + (a == b).to(g.dtype) * 0.5
        ea, eb = self.next_edges
        na, nb = ea is not None, eb is not None
        return (sum_to(g * wa, self.sa) if na else None,
                sum_to(g * (1.0 - wa), self.sb) if nb else None)


class Atan2(_Binary):
    save_inputs = "all"

    @staticmethod
    def _f(a, b):
        return xp_of(a).arctan2(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        den = a * a + b * b
        ea, eb = self.next_edges
        na, nb = ea is not None, eb is not None
        return (sum_to(g * b / den, self.sa) if na else None,
                sum_to(-g * a / den, self.sb) if nb else None)


class Remainder(_Binary):
    save_inputs = "all"

    @staticmethod
    def _f(a, b):
        return xp_of(a).remainder(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        ea, eb = self.next_edges
        na, nb = ea is not None, eb is not None
        return (sum_to(g, self.sa) if na else None,
                sum_to(-g * floor(a / b), self.sb) if nb else None)


class Fmod(_Binary):
    save_inputs = "all"

    @staticmethod
    def _f(a, b):
        return xp_of(a).fmod(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        ea, eb = self.next_edges
        na, nb = ea is not None, eb is not None
        return (sum_to(g, self.sa) if na else None,
                sum_to(-g * trunc(a / b), self.sb) if nb else None)


class FloorDivide(_Binary):
    differentiable = False

    @staticmethod
    def _f(a, b):
        return xp_of(a).floor_divide(a, b)


def zeros_scalar(like: Tensor) -> Tensor:
    from ._util import scalar_tensor_like
    return scalar_tensor_like(0, like, like._data.dtype)


def ones_scalar(like: Tensor) -> Tensor:
    from ._util import scalar_tensor_like
    return scalar_tensor_like(1, like, like._data.dtype)


def _check_shapes(a, b, name):
    sa, sb = a._data.shape, b._data.shape
    if sa != sb:
        broadcast_shape(sa, sb, name)


@register()
def add(input, other, *, alpha=1) -> Tensor:
    if alpha != 1:
        other = mul(other, alpha)
    return _call_binary(Add, input, other, "add")


@register()
def sub(input, other, *, alpha=1) -> Tensor:
    if alpha != 1:
        other = mul(other, alpha)
    if input.__class__ is Tensor and input._data.dtype.kind != "b" and other is not True and \
            other is not False and (other.__class__ is not Tensor or
                                    other._data.dtype is not _BOOL):
        return _call_binary(Sub, input, other, "sub")
    a, b = binary_operands(input, other, "sub")
    if a._data.dtype.kind == "b":
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    if _is_bool(input) or _is_bool(other):  # PyTorch refuses a bool operand even if promoted
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                           "If you are trying to invert a mask, use the `~` or `logical_not()` "
                           "operator instead.")
    _check_shapes(a, b, "sub")
    return Sub.apply(a, b)


subtract = sub


_BOOL = np.dtype(bool)


def _is_bool(x) -> bool:
    return isinstance(x, (bool, np.bool_)) or (isinstance(x, Tensor) and x._data.dtype.kind == "b")


@register()
def mul(input, other) -> Tensor:
    return _call_binary(Mul, input, other, "mul")


multiply = mul


@register()
def div(input, other, *, rounding_mode=None) -> Tensor:
    """True division; rounding_mode 'floor' or 'trunc' rounds (no gradient then)."""
    if rounding_mode is None and input.__class__ is Tensor and input._data.dtype.kind == "f":
        return _call_binary(Div, input, other, "div")
    a, b = binary_operands(input, other, "div")
    _check_shapes(a, b, "div")
    if rounding_mode is None:
        if a._data.dtype.kind in "biu":
            a, b = a.to(dtype=D.get_default_dtype()), b.to(dtype=D.get_default_dtype())
        return Div.apply(a, b)
    if a._data.dtype.kind == "b":
        raise RuntimeError(f"div with rounding_mode={rounding_mode!r} is not implemented for "
                           "bool tensors")
    if rounding_mode == "floor":
        if a._data.dtype.kind in "biu":
            return FloorDivide.apply(a, b)
        return floor(Div.apply(a, b))
    if rounding_mode == "trunc":
        if a._data.dtype.kind in "biu":
            q = FloorDivide.apply(a, b)
            r = a - q * b
            return where((r != 0) & ((a < 0) ^ (b < 0)), q + 1, q)
        return trunc(Div.apply(a, b))
    raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but "
                     f"found '{rounding_mode}'")


divide = true_divide = div


@register()
def floor_divide(input, other) -> Tensor:
    return div(input, other, rounding_mode="floor")


@register()
def pow(input, exponent) -> Tensor:  # noqa: A001
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("pow", pow, input, exponent)
        if out is not None:
            return out
    if isinstance(input, Tensor) and isinstance(exponent, (int, float)) and \
            not isinstance(exponent, bool):
        kind = input._data.dtype.kind
        if kind in "biu":
            if isinstance(exponent, float):
                input = input.to(dtype=D.get_default_dtype())
            elif exponent < 0:
                raise RuntimeError("Integers to negative integer powers are not allowed.")
            elif kind == "b":  # bool ** int is int64 (NumPy would give int8)
                input = input.to(dtype=D.int64)
        return PowScalar.apply(input, p=exponent)
    if not isinstance(input, Tensor) and isinstance(input, (int, float)):
        exponent = float_input(exponent) if isinstance(input, float) else exponent
        return RPowScalar.apply(exponent, c=input)
    a, b = binary_operands(input, exponent, "pow")
    if a._data.dtype.kind == "b":
        raise RuntimeError('"pow" is not implemented for two bool tensors')
    _check_shapes(a, b, "pow")
    return Pow.apply(a, b)


def float_power(input, exponent) -> Tensor:
    """pow computed in double precision (float64), as torch.float_power."""
    if isinstance(input, Tensor):
        input = input.to(dtype=D.float64)
    if isinstance(exponent, Tensor):
        exponent = exponent.to(dtype=D.float64)
    elif not isinstance(input, Tensor):
        input = float(input)
    return pow(input, exponent)


@register()
def maximum(input, other) -> Tensor:
    a, b = binary_operands(input, other, "maximum")
    _check_shapes(a, b, "maximum")
    return Maximum.apply(a, b)


@register()
def minimum(input, other) -> Tensor:
    a, b = binary_operands(input, other, "minimum")
    _check_shapes(a, b, "minimum")
    return Minimum.apply(a, b)


fmax, fmin = maximum, minimum


@register()
def atan2(input, other) -> Tensor:
    a, b = binary_operands(input, other, "atan2")
    if a._data.dtype.kind in "biu":
        a, b = float_input(a), float_input(b)
    _check_shapes(a, b, "atan2")
    return Atan2.apply(a, b)


arctan2 = atan2


@register()
def remainder(input, other) -> Tensor:
    a, b = binary_operands(input, other, "remainder")
    _no_bool(a, "remainder")
    return Remainder.apply(a, b)


def _no_bool(a: Tensor, name: str):
    if a._data.dtype.kind == "b":
        raise RuntimeError(f'"{name}" is not implemented for bool tensors')


@register()
def fmod(input, other) -> Tensor:
    a, b = binary_operands(input, other, "fmod")
    _no_bool(a, "fmod")
    return Fmod.apply(a, b)


# ============================================================================ where / clamp
class Where(Op):
    def forward(self, cond, a, b):
        self.cond = cond
        self.sa, self.sb = a.shape, b.shape
        return xp_of(a).where(cond, a, b)

    def backward(self, g):
        c = Tensor._make(self.cond, None, 0)
        z = zeros_scalar(g)
        _, ea, eb = self.next_edges
        na, nb = ea is not None, eb is not None
        return (None, sum_to(where(c, g, z), self.sa) if na else None,
                sum_to(where(c, z, g), self.sb) if nb else None)

    def _release_extra(self):
        self.cond = None


@register(method=False)
def where(condition, input=None, other=None):
    """where(cond, a, b) picks elementwise; where(cond) is nonzero(cond, as_tuple=True)."""
    if input is None and other is None:
        from .indexing import nonzero
        return nonzero(condition, as_tuple=True)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):  # where(c, 1.0, 0.0)
        from ._util import scalar_tensor_like
        c = ensure_tensor(condition)
        rt = D.result_type(input, other).np
        input, other = scalar_tensor_like(input, c, rt), scalar_tensor_like(other, c, rt)
    a, b = binary_operands(input, other, "where")
    cond = ensure_tensor(condition, a)
    if cond._data.dtype.kind != "b":
        cond = cond.to(dtype=D.bool)
    return Where.apply(cond, a, b)


@register("Tensor.where", method="where", function=False)
def _where_method(self, condition, other):
    """`x.where(cond, y)`: x where cond holds, else y (PyTorch's argument order: the tensor
    is the values, not the condition)."""
    return where(condition, self, other)


class Clamp(Op):
    save_inputs = ()

    def forward(self, x):
        xp = xp_of(x)
        lo, hi = self.lo, self.hi
        self.mask = xp.ones(x.shape, dtype=bool)
        if lo is not None:
            self.mask &= x >= lo
        if hi is not None:
            self.mask &= x <= hi
        return xp.clip(x, lo, hi).astype(x.dtype, copy=False)

    def backward(self, g):
        # where, not g * mask: a nan/inf gradient of a clamped-away element is 0, as torch
        return (where(Tensor._make(self.mask, None, 0), g, zeros_scalar(g)),)

    def _release_extra(self):
        self.mask = None


@register()
def clamp(input: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = where(out < min, min, out)
        if max is not None:
            out = where(out > max, max, out)
        return out
    if input._data.dtype.kind in "iu" and (isinstance(min, float) or isinstance(max, float)):
        input = input.to(dtype=D.get_default_dtype())
    return Clamp.apply(input, lo=min, hi=max)


clip = clamp


@register()
def clamp_min(input, min):  # noqa: A002
    return clamp(input, min=min)


@register()
def clamp_max(input, max):  # noqa: A002
    return clamp(input, max=max)


@register()
def lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    return input + weight * (end - input)


@register()
def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError("masked_fill only supports a 0-dimensional value tensor, but got tensor "
                           f"with {value.ndim} dimension(s).")
    mask = ensure_tensor(mask, input)
    if mask._data.dtype.kind != "b":
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{mask.dtype.name}")
    broadcast_shape(input._data.shape, mask._data.shape, "masked_fill")
    if isinstance(value, Tensor):
        value = value.to(dtype=input.dtype)
    else:
        from ._util import scalar_tensor_like
        value = scalar_tensor_like(value, input, input._data.dtype)
    out = Where.apply(mask, value, input)
    if out._data.shape != input._data.shape:
        raise RuntimeError(f"masked_fill: mask of shape {list(mask.shape)} must broadcast to the "
                           f"input's shape {list(input.shape)}")
    return out


@register()
def clone(input: Tensor, *, memory_format=None) -> Tensor:
    return Clone.apply(input)


class Clone(Op):
    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return (g,)


@register(method=False)
def xlogy(input, other) -> Tensor:
    a, b = binary_operands(input, other, "xlogy")
    return where(a == 0, zeros_scalar(a), a * log(b))


# ============================================================================ comparisons, logic
class _Compare(Op):
    differentiable = False

    def forward(self, a, b):
        return self._f(a, b)


def _compare(name, f, symbol):
    cls = type(name.capitalize(), (_Compare,), {"_f": staticmethod(f)})

    def fn(input, other) -> Tensor:
        a, b = binary_operands(input, other, name)
        _check_shapes(a, b, name)
        return cls.apply(a, b)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise `{symbol}` as a bool tensor."
    register(name, differentiable=False)(fn)
    return fn


eq = _compare("eq", lambda a, b: a == b, "==")
ne = _compare("ne", lambda a, b: a != b, "!=")
lt = _compare("lt", lambda a, b: a < b, "<")
le = _compare("le", lambda a, b: a <= b, "<=")
gt = _compare("gt", lambda a, b: a > b, ">")
ge = _compare("ge", lambda a, b: a >= b, ">=")
less, less_equal, greater, greater_equal, not_equal = lt, le, gt, ge, ne
logical_and = _compare("logical_and", lambda a, b: xp_of(a).logical_and(a, b), "and")
logical_or = _compare("logical_or", lambda a, b: xp_of(a).logical_or(a, b), "or")
logical_xor = _compare("logical_xor", lambda a, b: xp_of(a).logical_xor(a, b), "xor")


class _Bitwise(Op):
    differentiable = False

    def forward(self, a, b):
        return self._f(a, b)


def _bitwise(name, f):
    cls = type(name.title().replace("_", ""), (_Bitwise,), {"_f": staticmethod(f)})

    def fn(input, other) -> Tensor:
        a, b = binary_operands(input, other, name)
        if a._data.dtype.kind not in "biu":
            raise RuntimeError(f"{name} is only supported for integer and bool tensors, got "
                               f"{a.dtype.name}")
        return cls.apply(a, b)
    fn.__name__ = fn.__qualname__ = name
    register(name, differentiable=False)(fn)
    return fn


bitwise_and = _bitwise("bitwise_and", lambda a, b: a & b)
bitwise_or = _bitwise("bitwise_or", lambda a, b: a | b)
bitwise_xor = _bitwise("bitwise_xor", lambda a, b: a ^ b)
bitwise_left_shift = _bitwise("bitwise_left_shift", lambda a, b: a << b)
bitwise_right_shift = _bitwise("bitwise_right_shift", lambda a, b: a >> b)


@register(differentiable=False)
def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False):
    """Whether each element of `elements` is in `test_elements` (a bool tensor)."""
    e = ensure_tensor(elements, test_elements if isinstance(test_elements, Tensor) else None)
    t = ensure_tensor(test_elements, e)
    xp = xp_of(e._data)
    return Tensor._make(xp.isin(e._data, t._data, assume_unique=assume_unique, invert=invert),
                        None, 0)


class _UnaryNoGrad(Op):
    differentiable = False

    def forward(self, x):
        return self._f(xp_of(x), x)


def _unary_nograd(name, f):
    cls = type(name.title().replace("_", ""), (_UnaryNoGrad,), {"_f": staticmethod(f)})

    def fn(input: Tensor) -> Tensor:
        return cls.apply(input)
    fn.__name__ = fn.__qualname__ = name
    register(name, differentiable=False)(fn)
    return fn


logical_not = _unary_nograd("logical_not", lambda xp, x: xp.logical_not(x))
bitwise_not = _unary_nograd("bitwise_not", lambda xp, x: ~x)
isnan = _unary_nograd("isnan", lambda xp, x: xp.isnan(x))
isinf = _unary_nograd("isinf", lambda xp, x: xp.isinf(x))
isfinite = _unary_nograd("isfinite", lambda xp, x: xp.isfinite(x))
isposinf = _unary_nograd("isposinf", lambda xp, x: xp.isposinf(x))
isneginf = _unary_nograd("isneginf", lambda xp, x: xp.isneginf(x))
signbit = _unary_nograd("signbit", lambda xp, x: xp.signbit(x))


@register(differentiable=False)
def isclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> Tensor:
    a, b = binary_operands(input, other, "isclose")
    xp = xp_of(a._data)
    return Tensor._make(xp.isclose(a._data, b._data, rtol=rtol, atol=atol, equal_nan=equal_nan),
                        None, 0)


@register(differentiable=False)
def allclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    return bool(isclose(input, other, rtol, atol, equal_nan).all())


@register(differentiable=False)
def equal(input, other) -> bool:
    return tuple(input.shape) == tuple(other.shape) and bool(eq(input, other).all())


@register(method=False)
def nan_to_num(input: Tensor, nan=0.0, posinf=None, neginf=None) -> Tensor:
    fi = np.finfo(input._data.dtype) if input._data.dtype.kind == "f" else None
    if fi is None:
        return input.clone()
    posinf = float(fi.max) if posinf is None else posinf
    neginf = float(fi.min) if neginf is None else neginf
    out = where(isnan(input), nan, input)
    out = where(isposinf(input), posinf, out)
    return where(isneginf(input), neginf, out)
