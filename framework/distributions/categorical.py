"""The categorical distribution over {0, ..., K-1}."""
from __future__ import annotations

import numpy as np

from .._dtype import finfo, float64, int64
from .._tensor import Size, Tensor
from ..autograd.grad_mode import no_grad
from ..creation import arange, full, rand
from . import constraints
from .distribution import Distribution
from .utils import lazy_property, logits_to_probs, probs_to_logits, to_size

__all__ = ["Categorical"]


class Categorical(Distribution):
    """Category k with probability probs[..., k] (normalized over the last dim) or
    softmax(logits)[..., k]; give exactly one. The last dim indexes the categories, the others
    are batch dims."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            if probs.dim() < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            if logits.dim() < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.shape[-1]
        batch_shape = self._param.shape[:-1] if self._param.dim() > 1 else Size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Categorical, _instance)
        batch_shape = to_size(batch_shape)
        param_shape = tuple(batch_shape) + (self._num_events,)
        if "probs" in self.__dict__:
            new.probs = self.probs.expand(*param_shape)
            new._param = new.probs
        if "logits" in self.__dict__:
            new.logits = self.logits.expand(*param_shape)
            new._param = new.logits
        new._num_events = self._num_events
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits)

    @property
    def param_shape(self) -> Size:
        return self._param.shape

    @property
    def mean(self) -> Tensor:
        return full(tuple(self._extended_shape()), float("nan"), dtype=self.probs.dtype,
                    device=self.probs.device)

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(-1)

    @property
    def variance(self) -> Tensor:
        return self.mean

    def sample(self, sample_shape=Size()) -> Tensor:
        """Indices drawn by inverting the cumulative probabilities at uniform noise from the
        framework generator (int64, shape sample_shape + batch_shape)."""
        sample_shape = to_size(sample_shape)
        with no_grad():
            cdf = self.probs.to(dtype=float64).cumsum(-1)
            u = rand(*sample_shape, *self._batch_shape, 1, dtype=float64, device=cdf.device)
            # the index is the number of cumulative sums at or below u * total: categories of
            # probability 0 (equal consecutive sums) are never drawn
            idx = (cdf <= u * cdf[..., -1:]).sum(-1)
            return idx.clamp(max=self._num_events - 1).to(dtype=int64)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        batch = np.broadcast_shapes(tuple(value.shape[:-1]), tuple(self.logits.shape[:-1]))
        log_pmf = self.logits.expand(*batch, self._num_events)
        return log_pmf.gather(-1, value.expand(*batch, 1)).squeeze(-1)

    def entropy(self) -> Tensor:
        logits = self.logits.clamp(min=finfo(self.logits.dtype).min)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = arange(self._num_events, dtype=int64, device=self._param.device)
        values = values.view((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + tuple(self._batch_shape)) if expand else values
