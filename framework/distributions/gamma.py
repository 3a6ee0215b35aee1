"""The gamma distribution, with reparameterised draws."""
from __future__ import annotations

from numbers import Number

from .._dtype import finfo
from .._tensor import Size, Tensor
from ..ops.elementwise import xlogy
from ..ops.special import _standard_gamma
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, to_size

__all__ = ["Gamma"]


class Gamma(Distribution):
    """Gamma(concentration, rate): density rate^c x^(c-1) e^(-rate x) / Gamma(c) on x >= 0.

    `rsample` is differentiable w.r.t. both parameters: through the rate exactly (x = g / rate)
    and through the concentration by implicit reparameterisation (framework._standard_gamma).
    """

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args: bool | None = None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        both_numbers = isinstance(concentration, Number) and isinstance(rate, Number)
        super().__init__(Size() if both_numbers else self.concentration.shape,
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Gamma, _instance)
        batch_shape = to_size(batch_shape)
        new.concentration = self.concentration.expand(*batch_shape)
        new.rate = self.rate.expand(*batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.rate

    @property
    def mode(self) -> Tensor:
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self) -> Tensor:
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=Size()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        value = _standard_gamma(self.concentration.expand(*shape)) / self.rate.expand(*shape)
        # keep draws positive, as PyTorch does, without touching the gradient
        value.detach().clamp_(min=finfo(value.dtype).tiny)
        return value

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        c, r = self.concentration, self.rate
        return xlogy(c, r) + xlogy(c - 1, value) - r * value - c.lgamma()

    def entropy(self) -> Tensor:
        c = self.concentration
        return c - self.rate.log() + c.lgamma() + (1.0 - c) * c.digamma()
