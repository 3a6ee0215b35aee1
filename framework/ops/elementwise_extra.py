"""More binary elementwise math, as in PyTorch: hypot, logaddexp, logaddexp2, copysign, ldexp
and frexp (differentiable); nextafter, heaviside, gcd and lcm (no gradient)."""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from .. import _dtype as D
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from ._util import binary_operands, broadcast_shape, ensure_tensor, float_input, \
    scalar_tensor_like
from .elementwise import _Binary, pow, sigmoid, sum_to
from .registry import register

_LN2 = math.log(2.0)


def _operands(input, other, name: str, kinds: str):
    """Promote (input, other) to one dtype, check it is of `kinds`, check broadcasting."""
    a, b = binary_operands(input, other, name)
    if a._data.dtype.kind not in kinds:
        raise NotImplementedError(f'"{name}" not implemented for \'{a.dtype.name}\'')
    if a._data.shape != b._data.shape:
        broadcast_shape(a._data.shape, b._data.shape, name)
    return a, b


# ============================================================================ differentiable
class Hypot(_Binary):
    save_inputs = "all"
    save_output = True

    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        self.y = xp_of(a).hypot(a, b)
        return self.y

    def backward(self, g):
        a, b = self.saved_tensors
        y = Hypot.apply(a, b) if _State.grad_enabled else Tensor._make(self.saved_output(), None, 0)
        ea, eb = self.next_edges
        return (sum_to(g * a / y, self.sa) if ea is not None else None,
                sum_to(g * b / y, self.sb) if eb is not None else None)

    def _release_extra(self):
        self.y = None


@register()
def hypot(input: Tensor, other) -> Tensor:
    """sqrt(input**2 + other**2) without overflow; the gradient at (0, 0) is nan, as PyTorch's."""
    return Hypot.apply(*_operands(input, other, "hypot", "f"))


class LogAddExp(_Binary):
    """log(exp(a) + exp(b)), or with `base2` log2(2**a + 2**b)."""

    save_inputs = "all"

    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        xp = xp_of(a)
        return xp.logaddexp2(a, b) if self.base2 else xp.logaddexp(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        ea, eb = self.next_edges
        s = _LN2 if self.base2 else 1.0
        # d/da = exp(a) / (exp(a) + exp(b)) = sigmoid(a - b), with no overflow for large |a - b|
        return (sum_to(g * sigmoid((a - b) * s), self.sa) if ea is not None else None,
                sum_to(g * sigmoid((b - a) * s), self.sb) if eb is not None else None)


@register()
def logaddexp(input: Tensor, other) -> Tensor:
    return LogAddExp.apply(*_operands(input, other, "logaddexp", "f"), base2=False)


@register()
def logaddexp2(input: Tensor, other) -> Tensor:
    return LogAddExp.apply(*_operands(input, other, "logaddexp2", "f"), base2=True)


class Copysign(_Binary):
    """|a| with the sign of b; no gradient reaches b (PyTorch sends zeros)."""

    save_inputs = "all"

    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        return xp_of(a).copysign(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        xp = xp_of(a._data)
        ad = a._data
        # +1 where the sign is kept, -1 where it flips, 0 at a == 0 (as PyTorch)
        ratio = xp.where(ad == 0, 0, xp.where(xp.signbit(ad) == xp.signbit(b._data), 1, -1))
        ea, eb = self.next_edges
        ga = sum_to(g * Tensor._make(ratio.astype(g._data.dtype), None, 0), self.sa) \
            if ea is not None else None
        gb = Tensor._make(xp.zeros(self.sb, g._data.dtype), None, 0) if eb is not None else None
        return ga, gb


@register()
def copysign(input: Tensor, other) -> Tensor:
    """Integer and bool operands are promoted to the default float dtype."""
    a, b = binary_operands(input, other, "copysign")
    a, b = float_input(a), float_input(b)
    broadcast_shape(a._data.shape, b._data.shape, "copysign")
    return Copysign.apply(a, b)


@register()
def ldexp(input: Tensor, other) -> Tensor:
    """input * 2**other, computed in the promoted floating dtype (so float64 keeps its range)."""
    input, other = ensure_tensor(input), ensure_tensor(other, input)
    rt = D.result_type(input, other)
    if not rt.is_floating_point:
        rt = D.get_default_dtype()
    return input.to(dtype=rt) * pow(2.0, other.to(dtype=rt))


_FrexpResult = namedtuple("frexp", ["mantissa", "exponent"])


class Mantissa(Op):
    """frexp's mantissa, input * 2**-exponent for the exponent `e` found by `frexp`."""

    def forward(self, x):
        return xp_of(x).ldexp(x, -self.e)

    def backward(self, g):
        scale = xp_of(self.e).exp2(-self.e.astype(g._data.dtype))
        return (g * Tensor._make(scale, None, 0),)

    def _release_extra(self):
        self.e = None


@register()
def frexp(input: Tensor):
    """(mantissa, exponent) with input = mantissa * 2**exponent, |mantissa| in [0.5, 1); the
    exponent is int32 and carries no gradient."""
    if input._data.dtype.kind != "f":
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    e = xp_of(input._data).frexp(input._data)[1]
    exponent = Tensor._make(e.astype(np.int32, copy=False), None, 0)
    return _FrexpResult(Mantissa.apply(input, e=e), exponent)


# ============================================================================ no gradient
class _NoGradBinary(Op):
    differentiable = False

    def forward(self, a, b):
        return self._f(xp_of(a), a, b)


def _nograd_binary(name, kinds, f, doc):
    cls = type(name.capitalize(), (_NoGradBinary,), {"_f": staticmethod(f)})

    def fn(input: Tensor, other) -> Tensor:
        return cls.apply(*_operands(input, other, name, kinds))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    register(name, differentiable=False)(fn)
    return fn


nextafter = _nograd_binary("nextafter", "f", lambda xp, a, b: xp.nextafter(a, b),
                           "The next floating-point value after input towards other.")
gcd = _nograd_binary("gcd", "iu", lambda xp, a, b: xp.gcd(a, b),
                     "Greatest common divisor (non-negative; gcd(0, 0) = 0) of integer tensors.")
lcm = _nograd_binary("lcm", "iu", lambda xp, a, b: xp.lcm(a, b),
                     "Least common multiple (non-negative) of integer tensors.")


class Heaviside(Op):
    differentiable = False

    def forward(self, x, values):
        # 0 below zero (and at nan, as PyTorch), `values` at zero, 1 above
        return xp_of(x).where(x == 0, values, x > 0).astype(x.dtype, copy=False)


@register(differentiable=False)
def heaviside(input: Tensor, values) -> Tensor:
    if not isinstance(values, Tensor):
        values = scalar_tensor_like(values, input, input._data.dtype)
    if values._data.dtype != input._data.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes.")
    a, b = binary_operands(input, values, "heaviside")
    broadcast_shape(a._data.shape, b._data.shape, "heaviside")
    return Heaviside.apply(a, b)


# Tensor methods `name_` (bound in framework/ops/__init__.py): name -> out-of-place function
INPLACE = {"hypot": hypot, "copysign": copysign, "ldexp": ldexp, "nextafter": nextafter,
           "heaviside": heaviside, "gcd": gcd, "lcm": lcm}
