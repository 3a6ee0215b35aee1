"""L-BFGS with an optional strong-Wolfe line search, as `torch.optim.LBFGS`.

The parameters are handled as one flat vector (the concatenated gradients, with complex
parameters as pairs of reals). Vectors are arrays of the parameters' array module; the scalars
that PyTorch keeps as 0-d tensors (dot products, step lengths, curvature ratios) are NumPy scalars
of the parameters' dtype here, whose promotion rules against Python floats are PyTorch's, so
float32 problems round their scalars as PyTorch does. The state (on the first parameter, as in
PyTorch) holds them as 0-d Tensors, so a PyTorch LBFGS state_dict converts tensor by tensor.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ._functional import _real
from .optimizer import Optimizer, _arrays, _check_lr, _param_array

__all__ = ["LBFGS"]


def _host(x):
    """A reduction's result (NumPy scalar, or 0-d CuPy array) as a NumPy scalar of its dtype."""
    return x if isinstance(x, np.generic) else x.dtype.type(x.item())


def _dot(a, b):
    return _host(xp_of(a).dot(a, b))


def _absmax(a):
    return _host(xp_of(a).abs(a).max())


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1, slope g1) and (x2, f2, slope g2), clamped to
    `bounds` (default: between x1 and x2); their midpoint when the cubic has no minimum."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    # 0-d tensor arithmetic in PyTorch gives inf/nan here without a warning
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
        d2_square = d1 ** 2 - g1 * g2
        if d2_square >= 0:
            d2 = np.sqrt(d2_square)
            if x1 <= x2:
                min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
            else:
                min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
            return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """Line search along `d` from the point `x` (loss f, flat gradient g, slope gtd) for a step
    t satisfying the strong Wolfe conditions (bracketing, then zooming by cubic interpolation);
    returns (loss, flat gradient, t, function evaluations)."""
    d_norm = _absmax(d)
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = _dot(g_new, d)

    # bracket an interval containing a point satisfying the Wolfe criteria
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        # extrapolate
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _dot(g_new, d)
        ls_iter += 1

    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # zoom: shrink the bracket until a point satisfies the conditions
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        # A t close to an end of the bracket makes little progress: when that happens twice
        # in a row, or t is outside the bracket, move it to 0.1 of the bracket's length inside.
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _dot(g_new, d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            # Armijo condition not satisfied or not lower than the lowest point
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                # the old high end becomes the new low end
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new

    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


def _boxed(v):
    """A state value as stored: arrays and NumPy scalars as Tensors, lists element-wise."""
    if isinstance(v, list):
        return [_boxed(x) for x in v]
    if v is None or (isinstance(v, (int, float)) and not isinstance(v, np.generic)):
        return v
    return Tensor._make(v, None, 0)


def _unboxed(v):
    """A stored state value for computing: Tensors as arrays (0-d ones as NumPy scalars)."""
    if isinstance(v, list):
        return [_unboxed(x) for x in v]
    if isinstance(v, Tensor):
        a = v._data
        return _host(a) if a.ndim == 0 else a
    return v


class LBFGS(Optimizer):
    """L-BFGS (after minFunc): each `step(closure)` runs up to `max_iter` iterations of
    quasi-Newton directions from the last `history_size` curvature pairs, with step length
    `lr` (the first ever scaled down to at most 1 / sum|g|), or a strong-Wolfe line search with
    ``line_search_fn="strong_wolfe"``. It stops early after `max_eval` evaluations of the
    closure, when max|g| <= `tolerance_grad`, or when the step or the loss changes by less than
    `tolerance_change`.

    As in PyTorch: one parameter group only, all parameters on one device, and `closure`
    (which must re-evaluate the loss, backpropagate and return the loss) is required. The state
    lives on the first parameter: 'func_evals', 'n_iter', 'd', 't', 'old_dirs', 'old_stps',
    'ro', 'H_diag', 'prev_flat_grad', 'prev_loss' and (after the second iteration) 'al'.
    """

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None) -> None:
        _check_lr(lr)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {"lr": lr, "max_iter": max_iter, "max_eval": max_eval,
                    "tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change,
                    "history_size": history_size, "line_search_fn": line_search_fn}
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

    @property
    def _params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def _gather_flat_grad(self):
        views = []
        for p in self._params:
            if p.grad is None:
                pa = _param_array(p)
                views.append(xp_of(pa).zeros(2 * pa.size if pa.dtype.kind == "c" else pa.size,
                                             _real(pa).dtype))
            else:
                views.append(_real(_arrays(p, p.grad)[1]).reshape(-1))
        return xp_of(views[0]).concatenate(views)

    def _add_grad(self, step_size, update) -> None:
        step_size = float(step_size)  # PyTorch's `alpha=`: a Python number
        offset = 0
        for p in self._params:
            pa = _real(_param_array(p))
            n = pa.size
            pa += update[offset:offset + n].reshape(pa.shape) * step_size
            offset += n
            p._bump()

    def _clone_param(self) -> list:
        return [p._writable().copy() for p in self._params]

    def _set_param(self, params_data) -> None:
        for p, data in zip(self._params, params_data):
            _param_array(p)[...] = data
            p._bump()

    def _directional_evaluate(self, closure, x, t, d):
        self._add_grad(t, d)
        loss = float(self._eval_closure(closure))
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    def step(self, closure: Callable[[], Any]):
        """Run up to `max_iter` L-BFGS iterations; `closure` re-evaluates the model (zeroing the
        gradients and backpropagating) and returns the loss. Returns the loss at the start."""
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        if closure is None:
            raise TypeError("LBFGS.step needs a closure that re-evaluates the model and returns "
                            "the loss")
        group = self.param_groups[0]
        lr = group["lr"]
        lr = lr.item() if isinstance(lr, Tensor) else lr  # kept an int if given one, as PyTorch
        max_iter = group["max_iter"]
        max_eval = group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        line_search_fn = group["line_search_fn"]
        history_size = group["history_size"]
        if line_search_fn not in (None, "strong_wolfe"):
            raise RuntimeError("only 'strong_wolfe' is supported")

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = self._eval_closure(closure)
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1

        flat_grad = self._gather_flat_grad()
        opt_cond = _absmax(flat_grad) <= tolerance_grad
        if opt_cond:
            return orig_loss

        d = _unboxed(state.get("d"))
        t = _unboxed(state.get("t"))
        old_dirs = _unboxed(state.get("old_dirs"))
        old_stps = _unboxed(state.get("old_stps"))
        ro = _unboxed(state.get("ro"))
        H_diag = _unboxed(state.get("H_diag"))
        prev_flat_grad = _unboxed(state.get("prev_flat_grad"))
        prev_loss = state.get("prev_loss")
        al = _unboxed(state.get("al"))

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # the descent direction
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                # update the curvature memory
                y = flat_grad - prev_flat_grad
                s = d * float(t)
                ys = _dot(y, s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    # scale of the initial inverse-Hessian approximation
                    H_diag = ys / _dot(y, y)
                # the two-loop recursion: d = -H g with the approximate inverse Hessian H
                num_old = len(old_dirs)
                if al is None:
                    al = [None] * history_size
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = _dot(old_stps[i], q) * ro[i]
                    q += old_dirs[i] * float(-al[i])
                d = r = q * float(H_diag)
                for i in range(num_old):
                    be_i = _dot(old_dirs[i], r) * ro[i]
                    r += old_stps[i] * float(al[i] - be_i)

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                prev_flat_grad[...] = flat_grad
            prev_loss = loss

            # the step length: the first ever is scaled down by the gradient's size
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / _host(xp_of(flat_grad).abs(flat_grad).sum())) * lr
            else:
                t = lr
            gtd = _dot(flat_grad, d)
            if gtd > -tolerance_change:  # not a descent direction (to tolerance)
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = self._clone_param()

                def obj_func(x, t, d):
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    obj_func, x_init, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = _absmax(flat_grad) <= tolerance_grad
            else:
                self._add_grad(t, d)
                if n_iter != max_iter:
                    # re-evaluate only if another iteration follows (as PyTorch: in a stochastic
                    # setting the last evaluation would be wasted)
                    loss = float(self._eval_closure(closure))
                    flat_grad = self._gather_flat_grad()
                    opt_cond = _absmax(flat_grad) <= tolerance_grad
                    ls_func_evals = 1

            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if _absmax(d * float(t)) <= tolerance_change:  # lack of progress
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state["d"] = _boxed(d)
        state["t"] = _boxed(t)
        state["old_dirs"] = _boxed(old_dirs)
        state["old_stps"] = _boxed(old_stps)
        state["ro"] = _boxed(ro)
        state["H_diag"] = _boxed(H_diag)
        state["prev_flat_grad"] = _boxed(prev_flat_grad)
        state["prev_loss"] = prev_loss
        if al is not None:
            state["al"] = _boxed(al)
        return orig_loss
