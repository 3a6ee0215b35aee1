"""RMSprop, as `torch.optim.RMSprop`."""
from __future__ import annotations

from . import _functional as F
from .optimizer import (Optimizer, _check_flags, _check_lr, _check_nonneg, _scalar_state,
                        _zeros_state)

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop: :math:`v \leftarrow \alpha v + (1-\alpha) g^2`; with `centered`, also
    :math:`\bar g \leftarrow \alpha \bar g + (1-\alpha) g` and :math:`v - \bar g^2` under the root;
    :math:`\theta \leftarrow \theta - \gamma g / (\sqrt{v} + \epsilon)`, or through a momentum
    buffer :math:`b \leftarrow \mu b + g / (\sqrt{v} + \epsilon)`.
    State: 'step', 'square_avg', 'momentum_buffer' (momentum > 0), 'grad_avg' (centered)."""

    _param_shaped_state = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_lr(lr)
        _check_nonneg(eps, "epsilon value")
        _check_nonneg(momentum, "momentum value")
        _check_nonneg(weight_decay, "weight_decay value")
        _check_nonneg(alpha, "alpha value")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay,
                    "capturable": capturable, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable}
        _check_flags(defaults)
        super().__init__(params, defaults)

    @staticmethod
    def _init_state(p, state, group) -> None:
        state["step"] = _scalar_state(0.0)
        state["square_avg"] = _zeros_state(p._data)
        if group["momentum"] > 0:
            state["momentum_buffer"] = _zeros_state(p._data)
        if group["centered"]:
            state["grad_avg"] = _zeros_state(p._data)

    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the loss and returns it."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            b = self._gather(group, self._init_state)
            if b is None:
                continue
            momentum, centered = group["momentum"], group["centered"]
            F.rmsprop(b.params, b.grads, b.arrays("square_avg"),
                      b.arrays("grad_avg") if centered else [],
                      b.arrays("momentum_buffer") if momentum > 0 else [],
                      lr=float(group["lr"]), alpha=group["alpha"], eps=group["eps"],
                      weight_decay=group["weight_decay"], momentum=momentum, centered=centered,
                      maximize=group["maximize"])
            b.bump()
        return loss
