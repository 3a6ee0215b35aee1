"""Adamax (Adam with an infinity-norm second moment), as `torch.optim.Adamax`."""
from __future__ import annotations

from . import _functional as F
from .optimizer import (Optimizer, _check_betas, _check_flags, _check_lr, _check_nonneg,
                        _scalar_state, _zeros_state)

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Adamax: :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
    :math:`u \leftarrow \max(\beta_2 u, |g| + \epsilon)`,
    :math:`\theta \leftarrow \theta - \frac{\gamma}{1-\beta_1^t} m / u`, with `weight_decay` an L2
    penalty added to the gradient. State: 'step', 'exp_avg', 'exp_inf'.
    `foreach` and `capturable` are accepted for compatibility and compute the same update."""

    _param_shaped_state = ("exp_avg", "exp_inf")

    def __init__(self, params, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        _check_lr(lr)
        _check_nonneg(eps, "epsilon value")
        betas = _check_betas(betas)
        _check_nonneg(weight_decay, "weight_decay value")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        _check_flags(defaults)
        super().__init__(params, defaults)

    @staticmethod
    def _init_state(p, state, group) -> None:
        state["step"] = _scalar_state(0.0)
        state["exp_avg"] = _zeros_state(p._data)
        state["exp_inf"] = _zeros_state(p._data)

    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the loss and returns it."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            b = self._gather(group, self._init_state)
            if b is None:
                continue
            beta1, beta2 = group["betas"]
            F.adamax(b.params, b.grads, b.arrays("exp_avg"), b.arrays("exp_inf"), b.steps,
                     beta1=float(beta1), beta2=float(beta2), lr=float(group["lr"]),
                     weight_decay=group["weight_decay"], eps=group["eps"],
                     maximize=group["maximize"])
            b.bump()
        return loss
