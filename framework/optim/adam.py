"""Adam (and the AdamW variant through `decoupled_weight_decay`), as `torch.optim.Adam`."""
from __future__ import annotations

import numpy as np

from .._backend import device_of, on_device, xp_of
from .._tensor import Tensor
from . import _functional as F
from .optimizer import (Optimizer, _check_betas, _check_flags, _check_lr, _check_nonneg,
                        _param_array, _scalar_state, _zeros_state)

# With foreach=None, a group takes the flat path when its tensors hold at most this many
# elements on average: below it the per-call overhead of ~12 ufuncs per tensor outweighs the
# extra pass that gathering the gradients costs.
_FLAT_MEAN_NUMEL = 16384

__all__ = ["Adam"]


class Adam(Optimizer):
    r"""Adam: :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
    :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`,
    :math:`\theta \leftarrow \theta - \gamma \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} +
    \epsilon}` (with :math:`\max` of all :math:`v` so far under `amsgrad`).

    `weight_decay` is an L2 penalty added to the gradient, or with
    `decoupled_weight_decay=True` (AdamW) a shrink
    :math:`\theta \leftarrow \theta(1-\gamma\lambda)`.
    State: 'step', 'exp_avg', 'exp_avg_sq' and, with amsgrad, 'max_exp_avg_sq'.

    `foreach` picks the flat path, which updates a whole parameter group with a dozen array
    calls on flat buffers instead of a dozen per tensor (the values are identical): True uses it
    whenever the group qualifies (every tensor has a gradient; one real dtype, device and step
    count), None (the default) also requires small tensors (it pays for many small ones, e.g.
    1.6x faster for a 4-128-128-2 MLP on the CPU, 3x with CuPy), False never uses it. `fused` and
    `capturable` are accepted for compatibility and compute the same update.
    """

    _param_shaped_state = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False) -> None:
        _check_lr(lr)
        _check_nonneg(eps, "epsilon value")
        betas = _check_betas(betas)
        _check_nonneg(weight_decay, "weight_decay value")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                    "capturable": capturable, "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        _check_flags(defaults)
        super().__init__(params, defaults)

    @staticmethod
    def _init_state(p, state, group) -> None:
        state["step"] = _scalar_state(0.0)
        state["exp_avg"] = _zeros_state(p._data)
        state["exp_avg_sq"] = _zeros_state(p._data)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = _zeros_state(p._data)

    def step(self, closure=None):
        """Perform a single optimization step; `closure` re-evaluates the loss and returns it."""
        loss = self._eval_closure(closure)
        for gi, group in enumerate(self.param_groups):
            if group["foreach"] is not False and self._flat_step(gi, group):
                continue
            b = self._gather(group, self._init_state)
            if b is None:
                continue
            amsgrad = group["amsgrad"]
            beta1, beta2 = group["betas"]
            F.adam(b.params, b.grads, b.arrays("exp_avg"), b.arrays("exp_avg_sq"),
                   b.arrays("max_exp_avg_sq") if amsgrad else [], b.steps, amsgrad=amsgrad,
                   beta1=float(beta1), beta2=float(beta2), lr=float(group["lr"]),
                   weight_decay=group["weight_decay"], eps=group["eps"],
                   maximize=group["maximize"],
                   decoupled_weight_decay=group["decoupled_weight_decay"])
            b.bump()
        return loss

    # ------------------------------------------------------------------ flat ("foreach") path
    def _flat_step(self, gi: int, group: dict) -> bool:
        """Update the whole group with ~12 ufunc calls on flat buffers; False (and nothing
        changed) when the group does not qualify this step.

        exp_avg/exp_avg_sq of the group live in one flat array each (the state tensors hold
        views of it); the gradients are gathered into a flat scratch array and the result is
        subtracted from each parameter. The arithmetic is element for element that of the
        per-tensor path, so both give identical values. It needs every parameter of the group to
        have a gradient, one real floating dtype and device, and one step count.
        """
        params = group["params"]
        caches = self.__dict__.setdefault("_flat_cache", {})
        c = caches.get(gi)
        if c is None or c.foreach != group["foreach"] or c.amsgrad != group["amsgrad"] \
                or len(c.params) != len(params) \
                or any(a is not b for a, b in zip(c.params, params)):
            c = caches[gi] = _FlatAdam.plan(params, group)
        if c.views is None and not c.eligible:
            return False
        state_of = self.state
        amsgrad = c.amsgrad
        grads = []
        step = None
        rebuild = c.views is None
        for i, p in enumerate(params):
            g = p.grad
            if g is None:
                return False
            ga = g._data
            if ga.shape != c.shapes[i] or ga.dtype != c.dtype or p._data.shape != c.shapes[i]:
                return False
            _param_array(p)  # read-only memory: refuse before any state changes
            grads.append(ga)
            st = state_of.get(p)
            if not st:
                if step not in (None, 0.0):
                    return False
                step, rebuild = 0.0, True
                continue
            s = float(st["step"]._data)
            if step is None:
                step = s
            elif s != step:
                return False
            if not rebuild:
                views = c.views[i]
                if st["exp_avg"]._data is not views[0] or st["exp_avg_sq"]._data is not views[1] \
                        or (amsgrad and st.get("max_exp_avg_sq") is None) \
                        or (amsgrad and st["max_exp_avg_sq"]._data is not views[2]):
                    rebuild = True
        if rebuild and not c.build(params, state_of):
            return False
        xp = c.xp
        G = c.G
        xp.concatenate([g.reshape(-1) for g in grads], out=G)
        lr = float(group["lr"])
        wd = group["weight_decay"]
        decoupled = group["decoupled_weight_decay"]
        if group["maximize"]:
            xp.negative(G, out=G)
        if wd != 0 and not decoupled:
            P = c.scratch_p()
            xp.concatenate([p._data.reshape(-1) for p in params], out=P)
            P *= wd
            G += P
        step += 1.0
        for p in params:
            st = state_of[p]["step"]
            st._data = st._data + 1
        beta1, beta2 = group["betas"]
        F.adam_direction(xp, G, c.M, c.V, c.VMAX if amsgrad else None, c.T, step,
                         float(beta1), float(beta2), lr, group["eps"])
        shrink = 1.0 - lr * wd if (wd != 0 and decoupled) else None
        for p, views in zip(params, c.views):
            pa = p._writable()
            if shrink is not None:
                pa *= shrink
            pa -= views[3]
            p._bump()
        return True


class _FlatAdam:
    """The flat buffers of one parameter group (see Adam._flat_step)."""

    __slots__ = ("params", "foreach", "amsgrad", "eligible", "shapes", "dtype", "xp", "device",
                 "M", "V", "VMAX", "G", "T", "P", "views")

    @classmethod
    def plan(cls, params, group):
        c = cls()
        c.params = list(params)
        c.foreach = group["foreach"]
        c.amsgrad = group["amsgrad"]
        c.views = None
        c.shapes = [p._data.shape for p in params]
        first = params[0]._data if params else None
        c.eligible = False
        if c.foreach is False or len(params) < 2 or first.dtype.kind != "f":
            return c
        c.dtype, c.xp, c.device = first.dtype, xp_of(first), device_of(first)
        total = 0
        for p in params:
            d = p._data
            if d.dtype != c.dtype or device_of(d) != c.device:
                return c
            total += d.size
        if len({id(p) for p in params}) != len(params):
            return c
        if c.foreach is None and total > _FLAT_MEAN_NUMEL * len(params):
            return c
        c.eligible = True
        return c

    def build(self, params, state_of) -> bool:
        """(Re)make the flat buffers, moving any existing state into them; False when the
        existing state does not fit (then the per-tensor path runs and reports problems)."""
        xp, dt = self.xp, self.dtype
        sizes = [int(np.prod(s)) for s in self.shapes]
        total = sum(sizes)
        for p, shape in zip(params, self.shapes):
            st = state_of.get(p)
            if st:
                keys = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())
                for k in keys:
                    t = st.get(k)
                    if not isinstance(t, Tensor) or t._data.shape != shape or \
                            t._data.dtype != dt or device_of(t._data) != self.device:
                        return False
        with on_device(self.device):
            self.M = xp.zeros(total, dt)
            self.V = xp.zeros(total, dt)
            self.VMAX = xp.zeros(total, dt) if self.amsgrad else None
            self.G = xp.empty(total, dt)
            self.T = xp.empty(total, dt)
        self.P = None
        views = []
        o = 0
        for p, shape, n in zip(params, self.shapes, sizes):
            sl = slice(o, o + n)
            o += n
            m, v, t = (self.M[sl].reshape(shape), self.V[sl].reshape(shape),
                       self.T[sl].reshape(shape))
            vmax = self.VMAX[sl].reshape(shape) if self.amsgrad else None
            views.append((m, v, vmax, t))
            st = state_of[p]
            if not st:
                st["step"] = _scalar_state(0.0)
                st["exp_avg"] = Tensor._make(m, None, 0)
                st["exp_avg_sq"] = Tensor._make(v, None, 0)
                if self.amsgrad:
                    st["max_exp_avg_sq"] = Tensor._make(vmax, None, 0)
                continue
            pairs = [(st["exp_avg"], m), (st["exp_avg_sq"], v)]
            if self.amsgrad:
                pairs.append((st["max_exp_avg_sq"], vmax))
            for t_state, view in pairs:
                if xp is np:
                    np.copyto(view, t_state._data)
                else:
                    view[...] = t_state._data
                t_state._data = view
        self.views = views
        return True

    def scratch_p(self):
        if self.P is None:
            with on_device(self.device):
                self.P = self.xp.empty(self.M.shape[0], self.dtype)
        return self.P
