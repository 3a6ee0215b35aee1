"""Special functions: lgamma, digamma, polygamma, erfinv, i0, sinc and logit. Values come from
scipy.special on the CPU and cupyx.scipy.special on the GPU (`special_fn`); each backward is
built from these same ops, so higher derivatives come free."""
from __future__ import annotations

import math

from .._backend import special_fn, xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ._util import float_input
from .elementwise import _unary, cos, exp, where
from .registry import register

_SQRT_PI_2 = math.sqrt(math.pi) / 2.0


def _special(name):
    """Array function: special_fn `name` on x, returned in x's dtype (SciPy answers some float32
    inputs in float64)."""
    def f(xp, x):
        return special_fn(xp, name)(x).astype(x.dtype, copy=False)
    return f


def _lgamma_f(xp, x):
    y = special_fn(xp, "gammaln")(x).astype(x.dtype, copy=False)
    return xp.where(xp.isneginf(x), xp.inf, y)  # lgamma(-inf) is +inf (C, PyTorch); SciPy: -inf


lgamma = _unary("lgamma", _lgamma_f, lambda s, x, g: g * digamma(x),
                doc="log|Gamma(x)|, elementwise.")
digamma = _unary("digamma", _special("digamma"), lambda s, x, g: g * polygamma(1, x),
                 doc="The logarithmic derivative of Gamma; -inf at 0, inf at -0.")
erfinv = _unary("erfinv", _special("erfinv"),
                lambda s, x, g: g * _SQRT_PI_2 * exp(s.out(x) ** 2), keep_out=True,
                doc="The inverse of erf on (-1, 1); +-inf at +-1, nan outside.")


class _I1(Op):
    """The modified Bessel function of the first kind, order 1: i0's derivative (private)."""

    save_inputs = (0,)

    def forward(self, x):
        return _special("i1")(xp_of(x), x)

    def backward(self, g):
        (x,) = self.saved_tensors
        # i1'(x) = i0(x) - i1(x) / x, whose limit at 0 is 1/2
        safe = where(x == 0, 1.0, x)
        return (g * where(x == 0, 0.5, i0(x) - _I1.apply(x) / safe),)


i0 = _unary("i0", _special("i0"), lambda s, x, g: g * _I1.apply(x),
            doc="The modified Bessel function of the first kind, order 0.")


def _sinc_f(xp, x):
    y = xp.where(x == 0, 1, x) * math.pi  # no 0/0 at x == 0, where the answer is 1
    return xp.where(x == 0, 1, xp.sin(y) / y).astype(x.dtype, copy=False)


def _sinc_df(s, x, g):
    # d/dx sin(pi x) / (pi x) = (cos(pi x) - sinc(x)) / x, and 0 at x == 0
    safe = where(x == 0, 1.0, x)
    return g * where(x == 0, 0.0, (cos(x * math.pi) - s.out(x)) / safe)


sinc = _unary("sinc", _sinc_f, _sinc_df, keep_out=True,
              doc="The normalized sinc, sin(pi x) / (pi x), with sinc(0) = 1.")


class Polygamma(Op):
    save_inputs = (0,)

    def forward(self, x):
        return special_fn(xp_of(x), "polygamma")(self.n, x).astype(x.dtype, copy=False)

    def backward(self, g):
        (x,) = self.saved_tensors
        return (g * polygamma(self.n + 1, x),)


@register(method=False)
def polygamma(n: int, input: Tensor) -> Tensor:
    """The n-th derivative of digamma (n = 0 is digamma itself)."""
    if n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    return Polygamma.apply(float_input(input), n=int(n))


def _polygamma_method(self, n: int) -> Tensor:
    """`x.polygamma(n)` is polygamma(n, x)."""
    return polygamma(n, self)


Tensor.polygamma = _polygamma_method


class Logit(Op):
    """log(x / (1 - x)) of x clamped to [eps, 1 - eps] when eps is given."""

    save_inputs = (0,)

    def forward(self, x):
        xp = xp_of(x)
        if self.eps is not None:
            x = xp.clip(x, self.eps, 1.0 - self.eps).astype(x.dtype, copy=False)
        return xp.log(x / (1 - x))

    def backward(self, g):
        (x,) = self.saved_tensors
        d = g / (x * (1.0 - x))
        eps = self.eps
        if eps is None:  # nan outside [0, 1], where the logit is undefined (as PyTorch)
            return (where((x < 0) | (x > 1), math.nan, d),)
        return (where((x < eps) | (x > 1.0 - eps), 0.0, d),)  # clamped: no gradient


@register()
def logit(input: Tensor, eps: float | None = None) -> Tensor:
    return Logit.apply(float_input(input), eps=eps)


# Tensor methods `name_` (bound in framework/ops/__init__.py): name -> out-of-place function
INPLACE = {"lgamma": lgamma, "digamma": digamma, "polygamma": _polygamma_method,
           "erfinv": erfinv, "i0": i0, "sinc": sinc, "logit": logit}
