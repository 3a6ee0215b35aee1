"""Helpers shared by the distributions: parameter broadcasting, probabilities <-> logits, lazily
computed parameters, and sums over the rightmost dims."""
from __future__ import annotations

import numbers
from functools import update_wrapper

import numpy as np

from .. import _dtype as D
from .._tensor import Size, Tensor
from ..autograd.grad_mode import enable_grad
from ..creation import randn, tensor

__all__ = ["broadcast_all", "probs_to_logits", "logits_to_probs", "clamp_probs",
           "lazy_property", "sum_rightmost"]


def broadcast_all(*values) -> tuple[Tensor, ...]:
    """Tensors of one broadcast shape from tensors and Python numbers. Numbers take the dtype
    and device of the first tensor (the default float dtype when all are numbers)."""
    first = next((v for v in values if isinstance(v, Tensor)), None)
    out = []
    for v in values:
        if isinstance(v, Tensor):
            out.append(v)
        elif isinstance(v, numbers.Number):
            out.append(tensor(v, dtype=first.dtype if first is not None else
                              D.get_default_dtype(),
                              device=first.device if first is not None else None))
        else:
            raise ValueError("Input arguments must all be instances of numbers.Number or "
                             f"framework.Tensor, got {type(v).__name__}")
    shape = np.broadcast_shapes(*(tuple(v.shape) for v in out))
    return tuple(v if tuple(v.shape) == shape else v.expand(*shape) for v in out)


def standard_normal(shape, dtype, device) -> Tensor:
    """N(0, 1) noise from the framework generator of `device`."""
    return randn(*shape, dtype=dtype, device=device)


def clamp_probs(probs: Tensor) -> Tensor:
    """Probabilities clamped to [eps, 1 - eps] of their dtype (finite logits)."""
    eps = D.finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """log-odds (binary) or log-probabilities (categorical) of clamped probabilities."""
    p = clamp_probs(probs)
    return (p.log() - (-p).log1p()) if is_binary else p.log()


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """sigmoid (binary) or softmax over the last dim (categorical)."""
    return logits.sigmoid() if is_binary else logits.softmax(-1)


def sum_rightmost(value, dim: int):
    """`value` summed over its `dim` rightmost dims (unchanged when dim is 0)."""
    if dim == 0:
        return value
    if not isinstance(value, Tensor):  # a Python number stands for a broadcast constant
        return value
    return value.reshape(*value.shape[:value.dim() - dim], -1).sum(-1)


def to_size(shape) -> Size:
    return shape if isinstance(shape, Size) else Size(tuple(shape))


class lazy_property:  # noqa: N801  (PyTorch's name)
    """A parameter computed from another on first access and then stored on the instance (as
    `probs` from `logits`). It is always computed with gradients enabled, so a value first
    needed under no_grad (while sampling) still carries its graph later."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        update_wrapper(self, wrapped)

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        with enable_grad():
            value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value
