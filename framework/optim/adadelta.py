"""Adadelta, as `torch.optim.Adadelta`."""
from __future__ import annotations

from . import _functional as F
from .optimizer import (Optimizer, _check_flags, _check_lr, _check_nonneg, _scalar_state,
                        _zeros_state)

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta: :math:`v \leftarrow \rho v + (1-\rho) g^2`,
    :math:`\Delta = g \sqrt{u + \epsilon} / \sqrt{v + \epsilon}`,
    :math:`u \leftarrow \rho u + (1-\rho) \Delta^2`,
    :math:`\theta \leftarrow \theta - \gamma\Delta`.
    State: 'step', 'square_avg', 'acc_delta'."""

    _param_shaped_state = ("square_avg", "acc_delta")

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        _check_nonneg(eps, "epsilon value")
        _check_nonneg(weight_decay, "weight_decay value")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "capturable": capturable, "foreach": foreach,
                    "differentiable": differentiable}
        _check_flags(defaults)
        super().__init__(params, defaults)

    @staticmethod
    def _init_state(p, state, group) -> None:
        state["step"] = _scalar_state(0.0)
        state["square_avg"] = _zeros_state(p._data)
        state["acc_delta"] = _zeros_state(p._data)

    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the loss and returns it."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            b = self._gather(group, self._init_state)
            if b is None:
                continue
            F.adadelta(b.params, b.grads, b.arrays("square_avg"), b.arrays("acc_delta"),
                       lr=float(group["lr"]), rho=group["rho"], eps=group["eps"],
                       weight_decay=group["weight_decay"], maximize=group["maximize"])
            b.bump()
        return loss
