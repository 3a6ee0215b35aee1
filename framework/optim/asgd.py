"""Averaged stochastic gradient descent, as `torch.optim.ASGD`."""
from __future__ import annotations

from . import _functional as F
from .optimizer import (Optimizer, _check_flags, _check_lr, _check_nonneg, _scalar_np_dtype,
                        _scalar_state, _zeros_state)

__all__ = ["ASGD"]


class ASGD(Optimizer):
    r"""ASGD (Polyak and Juditsky): :math:`\theta \leftarrow \theta(1 - \lambda\eta) - \eta g`,
    then the running average :math:`a \leftarrow a + \mu(\theta - a)`, with the schedules
    :math:`\eta_t = \gamma / (1 + \lambda\gamma t)^\alpha` and
    :math:`\mu_t = 1 / \max(1, t - t_0)` (averaging starts after step `t0`).
    State: 'step', 'eta', 'mu' (0-d float32 tensors, as in PyTorch) and 'ax' (the average).
    `foreach` and `capturable` are accepted for compatibility and compute the same update."""

    _param_shaped_state = ("ax",)

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75,
                 t0: float = 1e6, weight_decay: float = 0, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        _check_lr(lr)
        _check_nonneg(weight_decay, "weight_decay value")
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0,
                    "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}
        _check_flags(defaults)
        super().__init__(params, defaults)

    @staticmethod
    def _init_state(p, state, group) -> None:
        state["step"] = _scalar_state(0.0)
        state["eta"] = _scalar_state(float(group["lr"]))
        state["mu"] = _scalar_state(1.0)
        state["ax"] = _zeros_state(p._data)

    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the loss and returns it."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            b = self._gather(group, self._init_state)
            if b is None:
                continue
            F.asgd(b.params, b.grads, b.arrays("ax"), b.values("mu"), b.values("eta"), b.steps,
                   lambd=group["lambd"], lr=float(group["lr"]), t0=group["t0"],
                   alpha=group["alpha"], weight_decay=group["weight_decay"],
                   maximize=group["maximize"], scalar_type=_scalar_np_dtype())
            b.bump()
        return loss
