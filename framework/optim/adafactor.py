"""Adafactor (Shazeer & Stern, 2018), as `torch.optim.Adafactor`: a second moment factored into
row and column statistics for matrices (memory O(rows + cols) instead of O(rows * cols)), a
relative step size, and update clipping."""
from __future__ import annotations

import math

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from .optimizer import Optimizer, _arrays, _check_flags, _next_step, _scalar_state

__all__ = ["Adafactor"]


def _zeros(arr, shape):
    return Tensor._make(xp_of(arr).zeros(shape, arr.dtype), None, 0)


class Adafactor(Optimizer):
    r"""Adafactor, PyTorch's variant step for step. With :math:`\beta_{2,t} = 1 - t^{c}`
    (c = `beta2_decay`), for a gradient G with two or more dims the row and column means of
    :math:`G^2` are averaged (R, C) and :math:`\hat V = R C / \mathrm{mean}(R)`; for vectors
    :math:`\hat V` is the average of :math:`G^2` itself. The update
    :math:`U = G / \sqrt{\max(\hat V, \epsilon_1^2)}` is clipped to RMS `d` and applied with
    :math:`\alpha = \max(\epsilon_2, \mathrm{RMS}(\theta)) \min(\gamma, 1/\sqrt t)`; decoupled
    `weight_decay` shrinks the parameter by :math:`1 - \gamma\lambda` first.
    State: 'step', and 'row_var' and 'col_var' (two or more dims) or 'variance'."""

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8,
                 eps: tuple = (None, 1e-3), d: float = 1.0, weight_decay: float = 0.0, *,
                 foreach: bool | None = None, maximize: bool = False) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= float(lr):
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {"lr": lr, "beta2_decay": beta2_decay, "eps": eps, "d": d,
                    "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize}
        _check_flags(defaults)
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the loss and returns it."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr = float(group["lr"])
            eps1, eps2 = group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.is_complex():
                    raise RuntimeError("Adafactor does not support complex parameters")
                pa, ga = _arrays(p, p.grad)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _scalar_state(0.0)
                    if ga.ndim > 1:
                        state["row_var"] = _zeros(ga, ga.shape[:-1] + (1,))
                        state["col_var"] = _zeros(ga, ga.shape[:-2] + (1, ga.shape[-1]))
                    else:
                        state["variance"] = _zeros(ga, ga.shape)
                self._update(pa, ga, state, lr, group, eps1, eps2)
                p._bump()
        return loss

    @staticmethod
    def _update(pa, ga, state, lr, group, eps1, eps2):
        xp = xp_of(pa)
        t = pa.dtype.type
        g = -ga if group["maximize"] else ga
        e1 = float(np.finfo(pa.dtype).eps) if eps1 is None else float(eps1)
        step = _next_step(state)
        w = step ** group["beta2_decay"]  # 1 - beta2_t
        rho = min(lr, 1.0 / math.sqrt(step))
        alpha = max(eps2, float(xp.sqrt((pa * pa).sum())) / math.sqrt(pa.size)) * rho
        if group["weight_decay"] != 0:
            pa *= 1.0 - lr * group["weight_decay"]
        if g.ndim > 1:
            row, col = state["row_var"]._data, state["col_var"]._data
            row_mean = (g * g).sum(axis=-1, keepdims=True) / t(g.shape[-1])
            row += (row_mean - row) * t(w)  # row_var.lerp_(row_mean, w)
            col_mean = (g * g).sum(axis=-2, keepdims=True) / t(g.shape[-2])
            col += (col_mean - col) * t(w)
            var = row @ col
            var /= xp.maximum(row.mean(axis=-2, keepdims=True), t(e1))
        else:
            v = state["variance"]._data
            v += (g * g - v) * t(w)
            var = v.copy()
        update = 1.0 / xp.sqrt(xp.maximum(var, t(e1 * e1)))
        update *= g
        denom = max(1.0, float(xp.sqrt((update * update).sum())) /
                    (math.sqrt(update.size) * group["d"]))
        pa -= update * t(alpha / denom)
