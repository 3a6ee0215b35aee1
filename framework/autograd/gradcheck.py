"""Numerical gradient checks: compare analytical vector-Jacobian products with central finite
differences, in float64 (as torch.autograd.gradcheck)."""
from __future__ import annotations

import numpy as np


class GradcheckError(RuntimeError):
    pass


def _flatten_outputs(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _numerical_jacobian(fn, inputs, i, eps):
    """d(all outputs flattened)/d(inputs[i]) as a (n_out, n_in) array."""
    from .._backend import xp_of
    x = inputs[i]
    # Perturb the input's own memory element by element: `reshape(-1)` would silently copy a
    # non-contiguous array (or a NumPy scalar), and the perturbation would never reach `fn`.
    arr = x._writable()
    xp = xp_of(arr)
    cols = []
    for pos in np.ndindex(*arr.shape):
        orig = arr[pos].item()
        arr[pos] = orig + eps
        plus = [o._data.astype(np.float64).reshape(-1) for o in _flatten_outputs(fn(*inputs))
                if o._data.dtype.kind in "fc"]
        arr[pos] = orig - eps
        minus = [o._data.astype(np.float64).reshape(-1) for o in _flatten_outputs(fn(*inputs))
                 if o._data.dtype.kind in "fc"]
        arr[pos] = orig
        cols.append(xp.concatenate([(p - m) / (2 * eps) for p, m in zip(plus, minus)])
                    if plus else xp.zeros(0))
    if not cols:
        return None
    return xp.stack(cols, axis=1)


def _analytical_jacobian(fn, inputs, diff_idx):
    from . import grad
    from .._backend import xp_of
    from ..creation import zeros_like
    outs = [o for o in _flatten_outputs(fn(*inputs)) if o._data.dtype.kind in "fc"]
    n_out = sum(o._data.size for o in outs)
    xp = xp_of(inputs[diff_idx[0]]._data)
    jac = {i: xp.zeros((n_out, inputs[i]._data.size)) for i in diff_idx}
    row = 0
    for o in outs:
        for k in range(o._data.size):
            if not o._requires_grad:
                row += 1
                continue
            go = zeros_like(o)
            go._data.reshape(-1)[k] = 1.0
            gs = grad([o], [inputs[i] for i in diff_idx], grad_outputs=[go], retain_graph=True,
                      allow_unused=True)
            for i, g in zip(diff_idx, gs):
                if g is not None:
                    jac[i][row] = g._data.reshape(-1)
            row += 1
    return jac


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              nondet_tol=0.0, check_undefined_grad=False, fast_mode=False) -> bool:
    """Check `func`'s gradients w.r.t. every input that requires grad (use float64 inputs)."""
    from .._tensor import Tensor
    inputs = tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)
    diff_idx = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t._requires_grad]
    if not diff_idx:
        raise ValueError("gradcheck expects at least one input tensor to require gradient")
    for i in diff_idx:
        if inputs[i]._data.dtype != np.float64:
            import warnings
            warnings.warn(f"gradcheck: input {i} is {inputs[i].dtype.name}, not float64; the "
                          "check is likely to fail from rounding", stacklevel=2)
    from .grad_mode import no_grad
    analytical = _analytical_jacobian(func, inputs, diff_idx)
    with no_grad():
        for i in diff_idx:
            num = _numerical_jacobian(func, inputs, i, eps)
            ana = analytical[i]
            if num is None:
                continue
            num_np = num if isinstance(num, np.ndarray) else num.get()
            ana_np = ana if isinstance(ana, np.ndarray) else ana.get()
            if not np.allclose(ana_np, num_np, rtol=rtol, atol=atol):
                err = np.abs(ana_np - num_np).max()
                msg = (f"Jacobian mismatch for output 0 with respect to input {i} "
                       f"(max abs difference {err:.3e}),\nnumerical:{num_np}\n"
                       f"analytical:{ana_np}\n")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True) -> bool:
    """Check second derivatives: gradcheck of (inputs, grad_outputs) -> vjp(func)."""
    from . import grad
    from .._tensor import Tensor
    from ..creation import randn
    inputs = tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)
    # Integer outputs (indices of max/sort/topk) carry no gradient: only float ones count.
    outs = [o for o in _flatten_outputs(func(*inputs)) if o._data.dtype.kind in "fc"]
    if grad_outputs is None:
        grad_outputs = tuple(randn(*o.shape, dtype=o.dtype, device=o.device).requires_grad_(True)
                             for o in outs)
    else:
        grad_outputs = tuple(grad_outputs) if isinstance(grad_outputs, (list, tuple)) else \
            (grad_outputs,)
    n_in = len(inputs)
    diff_idx = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t._requires_grad]

    from .grad_mode import enable_grad

    def first_order(*args):
        xs, gos = args[:n_in], args[n_in:]
        with enable_grad():  # the numerical pass runs under no_grad
            o = [o for o in _flatten_outputs(func(*xs)) if o._data.dtype.kind in "fc"]
            gs = grad(o, [xs[i] for i in diff_idx], grad_outputs=list(gos), create_graph=True,
                      allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_order, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
