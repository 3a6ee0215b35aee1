"""Stochastic gradient descent, optionally with (Nesterov) momentum, as `torch.optim.SGD`."""
from __future__ import annotations

from .._tensor import Tensor
from . import _functional as F
from .optimizer import Optimizer, _check_flags, _check_lr, _check_nonneg, _sarr

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent (optionally with momentum).

    With momentum :math:`\mu`, dampening :math:`\tau` and weight decay :math:`\lambda`:
    :math:`g \leftarrow g + \lambda\theta`; :math:`b \leftarrow \mu b + (1-\tau) g` (:math:`b = g`
    at the first step); :math:`g \leftarrow g + \mu b` (Nesterov) or :math:`b`;
    :math:`\theta \leftarrow \theta - \gamma g`. State: 'momentum_buffer' (when momentum != 0).
    `foreach` and `fused` are accepted for compatibility; every path computes the same update.
    """

    _param_shaped_state = ("momentum_buffer",)

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        _check_lr(lr)
        _check_nonneg(momentum, "momentum value")
        _check_nonneg(weight_decay, "weight_decay value")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": foreach, "differentiable": differentiable, "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        _check_flags(defaults)
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the loss and returns it."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            momentum = group["momentum"]
            # SGD keeps no step count, and no state at all without momentum
            b = self._gather(group, count_step=False, with_state=momentum != 0)
            if b is None:
                continue
            bufs = []
            if momentum != 0:  # made by the first update (a copy of the gradient)
                bufs = [None if st.get("momentum_buffer") is None else
                        _sarr(st["momentum_buffer"]) for st in b.states]
                new = [buf is None for buf in bufs]
            F.sgd(b.params, b.grads, bufs, lr=float(group["lr"]),
                  weight_decay=group["weight_decay"], momentum=momentum,
                  dampening=group["dampening"], nesterov=group["nesterov"],
                  maximize=group["maximize"])
            b.bump()
            if momentum != 0:
                for k, p in enumerate(b.tensors):
                    if new[k]:
                        b.states[k]["momentum_buffer"] = Tensor._make(
                            bufs[k].reshape(p._data.shape), None, 0)
        return loss
