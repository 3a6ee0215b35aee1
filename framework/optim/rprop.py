"""Resilient backpropagation, as `torch.optim.Rprop`."""
from __future__ import annotations

from . import _functional as F
from .optimizer import Optimizer, _check_flags, _check_lr, _full_state, _scalar_state, _zeros_state

__all__ = ["Rprop"]


class Rprop(Optimizer):
    r"""Rprop: each element has its own step size, multiplied by `etas[1]` while the gradient
    keeps its sign and by `etas[0]` when it flips (then that element skips the step and its
    gradient is forgotten), clamped to `step_sizes`; the parameter moves by the step size against
    the gradient's sign. State: 'step', 'prev' (the last gradient used), 'step_size' (starting
    at `lr`). `foreach` and `capturable` are accepted for compatibility."""

    _param_shaped_state = ("prev", "step_size")

    def __init__(self, params, lr: float = 1e-2, etas: tuple = (0.5, 1.2),
                 step_sizes: tuple = (1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {"lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        _check_flags(defaults)
        super().__init__(params, defaults)

    @staticmethod
    def _init_state(p, state, group) -> None:
        lr = float(group["lr"])
        state["step"] = _scalar_state(0.0)
        state["prev"] = _zeros_state(p._data)
        # real and imaginary parts are stepped as two independent reals
        state["step_size"] = _full_state(
            p._data, complex(lr, lr) if p._data.dtype.kind == "c" else lr)

    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the loss and returns it."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            b = self._gather(group, self._init_state)
            if b is None:
                continue
            etaminus, etaplus = group["etas"]
            size_min, size_max = group["step_sizes"]
            F.rprop(b.params, b.grads, b.arrays("prev"), b.arrays("step_size"),
                    step_size_min=size_min, step_size_max=size_max, etaminus=etaminus,
                    etaplus=etaplus, maximize=group["maximize"])
            b.bump()
        return loss
