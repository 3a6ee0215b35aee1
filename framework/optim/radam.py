"""RAdam (rectified Adam), as `torch.optim.RAdam`."""
from __future__ import annotations

from . import _functional as F
from .optimizer import (Optimizer, _check_betas, _check_flags, _check_lr, _check_nonneg,
                        _scalar_state, _zeros_state)

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""RAdam (Liu et al.): Adam whose adaptive step is multiplied by a variance rectification
    term once the approximated SMA length :math:`\rho_t` exceeds 5, and plain bias-corrected
    momentum SGD before that. `decoupled_weight_decay=True` gives RAdamW.
    State: 'step', 'exp_avg', 'exp_avg_sq'."""

    _param_shaped_state = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        _check_lr(lr)
        _check_nonneg(eps, "epsilon value")
        betas = _check_betas(betas)
        _check_nonneg(weight_decay, "weight_decay value")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "decoupled_weight_decay": decoupled_weight_decay,
                    "differentiable": differentiable}
        _check_flags(defaults)
        super().__init__(params, defaults)

    @staticmethod
    def _init_state(p, state, group) -> None:
        state["step"] = _scalar_state(0.0)
        state["exp_avg"] = _zeros_state(p._data)
        state["exp_avg_sq"] = _zeros_state(p._data)

    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the loss and returns it."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            b = self._gather(group, self._init_state)
            if b is None:
                continue
            beta1, beta2 = group["betas"]
            F.radam(b.params, b.grads, b.arrays("exp_avg"), b.arrays("exp_avg_sq"), b.steps,
                    beta1=float(beta1), beta2=float(beta2), lr=float(group["lr"]),
                    weight_decay=group["weight_decay"], eps=group["eps"],
                    decoupled_weight_decay=group["decoupled_weight_decay"],
                    maximize=group["maximize"])
            b.bump()
        return loss
