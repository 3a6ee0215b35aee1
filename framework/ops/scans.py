"""Scans along a dim: logcumsumexp, and cummax / cummin with the indices of their values."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from ._util import norm_dim
from .elementwise import abs as abs_, exp, log, where
from .indexing import gather
from .registry import register
from .shape import flip


def scan(xp, ufunc: str, x, axis: int):
    """Inclusive scan of the associative binary ufunc `ufunc` along `axis`. NumPy runs
    ufunc.accumulate (one sequential pass, as PyTorch's CPU kernels); CuPy has accumulate only
    for add and multiply, so there it is a doubling (Hillis-Steele) scan: log2(n) passes over
    the whole array instead of n small kernel launches."""
    f = getattr(xp, ufunc)
    if xp is np:
        return f.accumulate(x, axis=axis)
    out = x.copy()
    n = x.shape[axis]
    lead = (slice(None),) * axis
    k = 1
    while k < n:
        out[lead + (slice(k, None),)] = f(out[lead + (slice(0, n - k),)],
                                          out[lead + (slice(k, None),)])
        k *= 2
    return out


# ============================================================================ logcumsumexp
class LogCumSumExp(Op):
    save_inputs = (0,)
    save_output = True

    def forward(self, x):
        self.y = scan(xp_of(x), "logaddexp", x, self.dim)
        return self.y

    def backward(self, g):
        (x,) = self.saved_tensors
        d = self.dim
        y = LogCumSumExp.apply(x, dim=d) if _State.grad_enabled else \
            Tensor._make(self.saved_output(), None, 0)
        # dx_j = sum_{i >= j} g_i exp(x_j - y_i). The sum runs in log space (a reversed
        # logcumsumexp), once over the positive and once over the negative part of g, so that
        # neither exp overflows; the dtype's lowest finite value stands for log(0).
        lowest = float(np.finfo(x._data.dtype).min)
        a = abs_(g)
        log_a = log(where(a == 0, 1.0, a))

        def rev_lcse(t):
            return flip(LogCumSumExp.apply(flip(t, (d,)), dim=d), (d,))

        pos = rev_lcse(where(g > 0, log_a, lowest) - y)
        neg = rev_lcse(where(g < 0, log_a, lowest) - y)
        return (exp(pos + x) - exp(neg + x),)

    def _release_extra(self):
        self.y = None


@register()
def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """log(cumsum(exp(input), dim)), computed without overflow."""
    if input._data.dtype.kind != "f":
        raise NotImplementedError(f"\"logcumsumexp\" not implemented for '{input.dtype.name}'")
    if input._data.ndim == 0:
        norm_dim(dim, 0, "logcumsumexp")
        return input.clone()
    return LogCumSumExp.apply(input, dim=norm_dim(dim, input._data.ndim, "logcumsumexp"))


# ============================================================================ cummax / cummin
ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _cum_extreme(input: Tensor, dim: int, largest: bool, name: str):
    if input._data.ndim == 0:
        norm_dim(dim, 0, name)
        xp = xp_of(input._data)
        return ValuesIndices(input.clone(), Tensor._make(xp.zeros((), np.int64), None, 0))
    d = norm_dim(dim, input._data.ndim, name)
    x = input._data
    xp = xp_of(x)
    n = x.shape[d]
    lead = (slice(None),) * d
    run = scan(xp, "maximum" if largest else "minimum", x, d)  # nan propagates
    # The running value before each position (the first position compares with itself).
    prev = xp.concatenate([x[lead + (slice(0, 1),)], run[lead + (slice(0, n - 1),)]], axis=d)
    # A position takes over when it is >= the running max (<= the running min): ties go to the
    # later index, as in PyTorch; a nan takes over and then holds, since x >= nan is False.
    take = x >= prev if largest else x <= prev
    if x.dtype.kind == "f":
        take |= xp.isnan(x)
    pos = xp.arange(n, dtype=np.int64).reshape((n,) + (1,) * (x.ndim - d - 1))
    idx = scan(xp, "maximum", xp.where(take, pos, 0), d)
    idx_t = Tensor._make(idx, None, 0)
    return ValuesIndices(gather(input, d, idx_t), idx_t)


@register()
def cummax(input: Tensor, dim: int):
    """(values, indices): the running maximum along `dim` and where it was found; a nan
    becomes the maximum from its position on. The gradient goes to the found elements."""
    return _cum_extreme(input, dim, True, "cummax")


@register()
def cummin(input: Tensor, dim: int):
    """(values, indices): the running minimum along `dim` and where it was found."""
    return _cum_extreme(input, dim, False, "cummin")
