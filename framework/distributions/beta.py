"""The beta distribution on [0, 1], with reparameterised draws."""
from __future__ import annotations

from numbers import Number

from .._tensor import Size, Tensor
from ..ops.elementwise import where, xlogy
from ..ops.special import _standard_gamma
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, to_size

__all__ = ["Beta"]


class Beta(Distribution):
    """Beta(concentration1, concentration0): density x^(c1-1) (1-x)^(c0-1) / B(c1, c0).

    `rsample` draws X / (X + Y) from independent Gamma(c1, 1) and Gamma(c0, 1) draws, so its
    gradient flows through both by implicit reparameterisation.
    """

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args: bool | None = None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        both_numbers = isinstance(concentration1, Number) and isinstance(concentration0, Number)
        super().__init__(Size() if both_numbers else self.concentration1.shape,
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Beta, _instance)
        batch_shape = to_size(batch_shape)
        new.concentration1 = self.concentration1.expand(*batch_shape)
        new.concentration0 = self.concentration0.expand(*batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self) -> Tensor:
        c1, c0 = self.concentration1, self.concentration0
        a, b = (c1 - 1).clamp(min=0), (c0 - 1).clamp(min=0)
        # both below 1 the density is infinite at both ends: PyTorch answers 1, so do we (the
        # masked 0/0 is kept out of the gradient)
        both = (c1 < 1) & (c0 < 1)
        return where(both, 1.0, a / where(both, 1.0, a + b))

    @property
    def variance(self) -> Tensor:
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=Size()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        x = _standard_gamma(self.concentration1.expand(*shape))
        y = _standard_gamma(self.concentration0.expand(*shape))
        return x / (x + y)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        c1, c0 = self.concentration1, self.concentration0
        return (xlogy(c1 - 1, value) + xlogy(c0 - 1, 1 - value)
                + (c1 + c0).lgamma() - c1.lgamma() - c0.lgamma())

    def entropy(self) -> Tensor:
        c1, c0 = self.concentration1, self.concentration0
        total = c1 + c0
        return (c1.lgamma() + c0.lgamma() - total.lgamma() - (2 - total) * total.digamma()
                - (c1 - 1) * c1.digamma() - (c0 - 1) * c0.digamma())
