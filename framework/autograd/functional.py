"""Functional higher-order helpers built on `grad`: vjp, jacobian, hessian, hvp."""
from __future__ import annotations


def _tuple(x):
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def vjp(func, inputs, v=None, create_graph=False):
    from . import grad
    ins = tuple(i.detach().requires_grad_(True) for i in _tuple(inputs))
    out = func(*ins)
    g = grad(out, ins, grad_outputs=v, create_graph=create_graph, allow_unused=True,
             materialize_grads=True)
    return out, (g if isinstance(inputs, (list, tuple)) else g[0])


def jacobian(func, inputs, create_graph=False):
    """Jacobian of a single-output function, row by row with vector-Jacobian products."""
    from . import grad
    from ..creation import zeros
    from ..ops.shape import stack
    single = not isinstance(inputs, (list, tuple))
    ins = tuple(i.detach().requires_grad_(True) for i in _tuple(inputs))
    out = func(*ins)
    flat = out.reshape(-1)
    rows = [[] for _ in ins]
    for k in range(flat.shape[0]):
        gs = grad(flat[k], ins, retain_graph=True, create_graph=create_graph, allow_unused=True,
                  materialize_grads=True)
        for r, g in zip(rows, gs):
            r.append(g)
    jac = []
    for r, x in zip(rows, ins):
        j = stack(r) if r else zeros(0, *x.shape)
        jac.append(j.reshape(tuple(out.shape) + tuple(x.shape)))
    return jac[0] if single else tuple(jac)


def hessian(func, inputs, create_graph=False):
    from . import grad

    def gradient(*xs):
        return grad(func(*xs), xs, create_graph=True)[0]
    return jacobian(gradient, inputs, create_graph=create_graph)


def hvp(func, inputs, v, create_graph=False):
    """Hessian-vector product through double backward."""
    from . import grad
    ins = tuple(i.detach().requires_grad_(True) for i in _tuple(inputs))
    vs = _tuple(v)
    out = func(*ins)
    g = grad(out, ins, create_graph=True)
    dot = sum((gi * vi).sum() for gi, vi in zip(g, vs))
    hv = grad(dot, ins, create_graph=create_graph, allow_unused=True, materialize_grads=True)
    return out, (hv if isinstance(inputs, (list, tuple)) else hv[0])
