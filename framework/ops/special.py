"""Special functions: lgamma, digamma, polygamma, erfinv, i0, sinc and logit, and the
Gamma(concentration, 1) sampler with its reparameterisation gradient. Values come from
scipy.special on the CPU and cupyx.scipy.special on the GPU (`special_fn`); each backward is
built from these same ops, so higher derivatives come free (except through the sampler's
gradient, as in PyTorch)."""
from __future__ import annotations

import math

import numpy as np

from .._backend import device_of, special_fn, xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ..random import default_generator_for
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


# ---------------------------------------------------------------------------- Gamma sampling
# Gauss-Legendre rule for the tail integrals of _gamma_quantile_derivative: 8 panels of 12 nodes
_GL_X, _GL_W = (v.tolist() for v in np.polynomial.legendre.leggauss(12))
_GL_PANELS = 8
_TAIL_LOG_CUTOFF = -45.0  # integrands are cut where they fall below e^-45 of their start


def _quantile_derivative_series(xp, a, x):
    """-dx/da by the series of P(a, x) / p(x; a) = sum_n x^(n+1) / (a (a+1) ... (a+n)),
    differentiated term by term (each term times log x - digamma(a + n + 1)). Converges for
    every x; used where x is not far above the mode, so the terms do not cancel."""
    logx = xp.log(x)
    term = x / a
    psi = special_fn(xp, "digamma")(a + 1.0)
    total = term * (logx - psi)
    n = 0
    while n < 4096:  # a < 50 and x < a + 4 sqrt(a) + 4 converge within a few hundred terms
        n += 1
        term = term * x / (a + n)
        psi = psi + 1.0 / (a + n)
        step = term * (logx - psi)
        total = total + step
        # past the largest term (n > x - a) the terms shrink geometrically
        if n % 8 == 0 and bool(xp.all((n > x - a) & (xp.abs(step) <= 1e-17 * xp.abs(total)))):
            break
    return total


def _quantile_derivative_tail(xp, a, x, upper: bool):
    """dx/da as an integral over the tail on x's side away from the mode, where p(t)/p(x) <= 1:
    dx/da = +integral_x^inf (log t - digamma(a)) p(t)/p(x) dt (upper) or
    -integral_0^x (...) dt (lower); composite Gauss-Legendre up to where p(t)/p(x) < e^-45."""
    sgn = 1.0 if upper else -1.0
    am1 = a - 1.0

    def log_ratio(u):  # log p(x + sgn u) / p(x)
        return -sgn * u + am1 * xp.log1p(sgn * u / x)

    with np.errstate(divide="ignore", invalid="ignore"):
        hi = xp.full(x.shape, 64.0) if upper else xp.minimum(64.0, x)
        for _ in range(64):  # grow the interval until it holds the integrand
            grow = log_ratio(hi) > _TAIL_LOG_CUTOFF
            if not upper:
                grow &= hi < x
            if not bool(grow.any()):
                break
            hi = xp.where(grow, hi * 2.0, hi)
            if not upper:
                hi = xp.minimum(hi, x)
        lo = xp.zeros_like(hi)
        for _ in range(24):  # then shrink it by bisection to about where it falls below
            mid = 0.5 * (lo + hi)
            inside = log_ratio(mid) > _TAIL_LOG_CUTOFF
            lo, hi = xp.where(inside, mid, lo), xp.where(inside, hi, mid)
    psi = special_fn(xp, "digamma")(a)
    width = hi / _GL_PANELS
    total = xp.zeros_like(x)
    for panel in range(_GL_PANELS):
        for node, weight in zip(_GL_X, _GL_W):
            u = width * (panel + 0.5 * (node + 1.0))
            total = total + (0.5 * weight) * (xp.log(x + sgn * u) - psi) * xp.exp(log_ratio(u))
    return sgn * total * width


def _gamma_quantile_derivative(xp, a, x):
    """dx/da at fixed P(a, x) (the regularized lower incomplete gamma function): the implicit
    reparameterisation gradient of a Gamma(a, 1) draw x, -(dP/da)(a, x) / p(x; a), in float64.
    Accurate to about 1e-12 relative (series near and below the mode for a < 50, tail
    integrals elsewhere); 0 at x = 0 (for a > 0)."""
    a, x = xp.broadcast_arrays(a.astype(np.float64), x.astype(np.float64))
    out = xp.zeros(a.shape, np.float64)
    pos = (x > 0) & (a > 0) & xp.isfinite(x) & xp.isfinite(a)
    series = pos & (a < 50.0) & (x < a + 4.0 * xp.sqrt(xp.abs(a)) + 4.0)
    upper = pos & ~series & (x >= a - 1.0)
    lower = pos & ~series & (x < a - 1.0)
    if bool(series.any()):
        out[series] = -_quantile_derivative_series(xp, a[series], x[series])
    if bool(upper.any()):
        out[upper] = _quantile_derivative_tail(xp, a[upper], x[upper], True)
    if bool(lower.any()):
        out[lower] = _quantile_derivative_tail(xp, a[lower], x[lower], False)
    valid = pos | ((x == 0) & (a > 0) & xp.isfinite(a))
    return xp.where(valid, out, np.nan)  # nan for a <= 0 and for non-finite inputs


class StandardGammaGrad(Op):
    """dx/da of a Gamma(a, 1) draw x at fixed CDF value; its own derivative is not provided
    (as in PyTorch)."""

    def forward(self, a, x):
        return _gamma_quantile_derivative(xp_of(a), a, x).astype(a.dtype, copy=False)

    def backward(self, g):
        raise RuntimeError("the derivative for '_standard_gamma_grad' is not implemented.")


@register(method=False, differentiable=False)
def _standard_gamma_grad(input: Tensor, output: Tensor) -> Tensor:
    """The reparameterisation gradient d output / d input of Gamma(input, 1) draws `output`."""
    a = float_input(input)
    return StandardGammaGrad.apply(a, output.to(dtype=a.dtype))


class StandardGamma(Op):
    """Gamma(a, 1) draws by the inverse CDF of uniform noise, x = P^-1(a, u) (for a >= 1 the
    upper half as Q^-1(a, 1 - u)). Each draw is then a smooth function of a, and its
    derivative is the implicit reparameterisation gradient."""

    save_inputs = (0,)
    save_output = True

    def forward(self, a):
        xp = xp_of(a)
        dev = device_of(a)
        gen = self.generator or default_generator_for(dev)
        u = gen._uniform(a.shape, np.float64, dev)
        a64 = a.astype(np.float64)
        # both inverses give the same quantile (to ~1e-13); SciPy's inverse of Q is the faster
        # one in the upper half for a >= 1, and many times slower than P's for a < 1
        by_p = (u < 0.5) | (a64 < 1.0)
        x = xp.empty(a.shape, np.float64)
        x[by_p] = special_fn(xp, "gammaincinv")(a64[by_p], u[by_p])
        x[~by_p] = special_fn(xp, "gammainccinv")(a64[~by_p], 1.0 - u[~by_p])
        # draws that underflow become the smallest normal number, as PyTorch's sampler does
        self.y = xp.maximum(x, np.finfo(a.dtype).tiny).astype(a.dtype, copy=False)
        return self.y

    def backward(self, g):
        (a,) = self.saved_tensors
        x = Tensor._make(self.saved_output(), None, 0)
        return (g * StandardGammaGrad.apply(a, x),)

    def _release_extra(self):
        self.y = None


@register(method=False)
def _standard_gamma(input: Tensor, generator=None) -> Tensor:
    """Gamma(input, 1) draws, differentiable w.r.t. the concentration `input`."""
    if input._data.dtype.kind != "f":
        raise RuntimeError(f"_standard_gamma: expected a floating point tensor, got "
                           f"{input.dtype.name}")
    return StandardGamma.apply(input, generator=generator)


# Tensor methods `name_` (bound in framework/ops/__init__.py): name -> out-of-place function
INPLACE = {"lgamma": lgamma, "digamma": digamma, "polygamma": _polygamma_method,
           "erfinv": erfinv, "i0": i0, "sinc": sinc, "logit": logit}
