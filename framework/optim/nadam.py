"""NAdam (Adam with Nesterov momentum and momentum decay), as `torch.optim.NAdam`."""
from __future__ import annotations

from . import _functional as F
from .optimizer import (Optimizer, _check_betas, _check_flags, _check_lr, _check_nonneg,
                        _scalar_state, _zeros_state)

__all__ = ["NAdam"]


class NAdam(Optimizer):
    r"""NAdam (Dozat): Adam whose first moment gets a Nesterov look-ahead with the momentum
    schedule :math:`\mu_t = \beta_1 (1 - \frac12 0.96^{t\psi})` (:math:`\psi` = momentum_decay).
    `decoupled_weight_decay=True` gives NAdamW. State: 'step', 'mu_product' (a float32 scalar, as in
    PyTorch), 'exp_avg', 'exp_avg_sq'."""

    _param_shaped_state = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        _check_lr(lr)
        _check_nonneg(eps, "epsilon value")
        betas = _check_betas(betas)
        _check_nonneg(weight_decay, "weight_decay value")
        _check_nonneg(momentum_decay, "momentum_decay value")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        _check_flags(defaults)
        super().__init__(params, defaults)

    @staticmethod
    def _init_state(p, state, group) -> None:
        state["step"] = _scalar_state(0.0)
        state["mu_product"] = _scalar_state(1.0)
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
            F.nadam(b.params, b.grads, b.arrays("exp_avg"), b.arrays("exp_avg_sq"),
                    b.values("mu_product"), b.steps, beta1=float(beta1), beta2=float(beta2),
                    lr=float(group["lr"]), weight_decay=group["weight_decay"],
                    momentum_decay=group["momentum_decay"], eps=group["eps"],
                    decoupled_weight_decay=group["decoupled_weight_decay"],
                    maximize=group["maximize"])
            b.bump()
        return loss
