"""Adamax (Adam with an infinity-norm second moment), as `torch.optim.Adamax`."""
from __future__ import annotations

from . import _functional as F
from .optimizer import (Optimizer, _arrays, _check_betas, _check_flags, _check_lr, _check_nonneg,
                        _next_step, _sarr, _scalar_state, _zeros_state)

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

    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the loss and returns it."""
        loss = self._eval_closure(closure)
        state_of = self.state
        for group in self.param_groups:
            params, grads, ms, us, steps, touched = [], [], [], [], [], []
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                pa, ga = _arrays(p, g)
                state = state_of[p]
                if len(state) == 0:
                    state["step"] = _scalar_state(0.0)
                    state["exp_avg"] = _zeros_state(p._data)
                    state["exp_inf"] = _zeros_state(p._data)
                params.append(pa)
                grads.append(ga)
                ms.append(_sarr(state["exp_avg"]))
                us.append(_sarr(state["exp_inf"]))
                steps.append(_next_step(state))
                touched.append(p)
            if not params:
                continue
            beta1, beta2 = group["betas"]
            F.adamax(params, grads, ms, us, steps, beta1=float(beta1), beta2=float(beta2),
                     lr=float(group["lr"]), weight_decay=group["weight_decay"], eps=group["eps"],
                     maximize=group["maximize"])
            for p in touched:
                p._bump()
        return loss
