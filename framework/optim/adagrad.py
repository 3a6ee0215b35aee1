"""Adagrad, as `torch.optim.Adagrad`."""
from __future__ import annotations

from . import _functional as F
from .optimizer import (Optimizer, _arrays, _check_flags, _check_lr, _check_nonneg, _full_state,
                        _next_step, _sarr, _scalar_state)

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad: :math:`s \leftarrow s + g^2`,
    :math:`\theta \leftarrow \theta - \frac{\gamma}{1 + (t-1)\eta}\, g / (\sqrt{s} + \epsilon)`
    with learning-rate decay :math:`\eta`. The state ('step', 'sum' starting at
    `initial_accumulator_value`) is created for every parameter at construction, as PyTorch does.
    """

    _param_shaped_state = ("sum",)

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        _check_lr(lr)
        _check_nonneg(lr_decay, "lr_decay value")
        _check_nonneg(weight_decay, "weight_decay value")
        _check_nonneg(initial_accumulator_value,
                      "initial_accumulator_value value")
        _check_nonneg(eps, "epsilon value")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        _check_flags(defaults)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, initial_accumulator_value)

    def _init_state(self, p, init_value) -> dict:
        state = self.state[p]
        state["step"] = _scalar_state(0.0)
        if p._data.dtype.kind == "c":
            init_value = complex(init_value, init_value)
        state["sum"] = _full_state(p._writable(), init_value)
        return state

    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the loss and returns it."""
        loss = self._eval_closure(closure)
        state_of = self.state
        for group in self.param_groups:
            params, grads, sums, steps, touched = [], [], [], [], []
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                pa, ga = _arrays(p, g)
                state = state_of[p]
                if len(state) == 0:  # a group added after construction
                    state = self._init_state(p, self.defaults["initial_accumulator_value"])
                params.append(pa)
                grads.append(ga)
                sums.append(_sarr(state["sum"]))
                steps.append(_next_step(state))
                touched.append(p)
            if not params:
                continue
            F.adagrad(params, grads, sums, steps, lr=float(group["lr"]),
                      weight_decay=group["weight_decay"], lr_decay=group["lr_decay"],
                      eps=group["eps"], maximize=group["maximize"])
            for p in touched:
                p._bump()
        return loss
