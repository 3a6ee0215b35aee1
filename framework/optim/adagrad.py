"""Adagrad, as `torch.optim.Adagrad`."""
from __future__ import annotations

from . import _functional as F
from .optimizer import (Optimizer, _check_flags, _check_lr, _check_nonneg, _full_state,
                        _scalar_state)

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
                self._init_state(p, self.state[p], group)

    @staticmethod
    def _init_state(p, state, group) -> None:
        init_value = group["initial_accumulator_value"]
        state["step"] = _scalar_state(0.0)
        if p._data.dtype.kind == "c":
            init_value = complex(init_value, init_value)
        state["sum"] = _full_state(p._writable(), init_value)

    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the loss and returns it."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            b = self._gather(group, self._init_state)  # init: a group added after construction
            if b is None:
                continue
            F.adagrad(b.params, b.grads, b.arrays("sum"), b.steps, lr=float(group["lr"]),
                      weight_decay=group["weight_decay"], lr_decay=group["lr_decay"],
                      eps=group["eps"], maximize=group["maximize"])
            b.bump()
        return loss
