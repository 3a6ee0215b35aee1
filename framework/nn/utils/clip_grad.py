"""Gradient clipping (torch.nn.utils.clip_grad): clip_grad_norm_, clip_grad_value_,
get_total_norm, clip_grads_with_norm_."""
from __future__ import annotations

import math

from ..._backend import device_of, to_device_array, xp_of
from ..._tensor import Tensor
from ...autograd.grad_mode import no_grad

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
           "clip_grads_with_norm_"]


def _tensor_list(tensors):
    if isinstance(tensors, Tensor):
        return [tensors]
    return list(tensors)


def _grads(parameters):
    return [p.grad for p in _tensor_list(parameters) if p.grad is not None]


def _array_norm(xp, a, norm_type: float):
    a = a.reshape(-1)
    if norm_type == math.inf:
        return xp.abs(a).max() if a.size else xp.zeros((), a.dtype)
    if norm_type == -math.inf:
        return xp.abs(a).min() if a.size else xp.zeros((), a.dtype)
    if norm_type == 2.0:
        return xp.sqrt(xp.dot(a, a)) if a.dtype.kind == "f" else xp.sqrt((a * a).sum())
    if norm_type == 1.0:
        return xp.abs(a).sum()
    if norm_type == 0.0:
        return (a != 0).sum().astype(a.dtype)
    return (xp.abs(a) ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """The `norm_type` norm of all `tensors` together (the norm of their norms)."""
    tensors = _tensor_list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        from ...creation import tensor
        return tensor(0.0)
    first = tensors[0]._data
    dev = device_of(first)
    xp = xp_of(first)
    norms = []
    for t in tensors:
        a = t._data
        n = _array_norm(xp_of(a), a, norm_type)
        if device_of(a) != dev:
            n = to_device_array(n, dev)
        norms.append(xp.asarray(n, dtype=a.dtype))
    stacked = xp.stack([n.astype(first.dtype, copy=False) for n in norms])
    total = _array_norm(xp, stacked, norm_type)
    total = xp.asarray(total, dtype=first.dtype)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` "
                           "is non-finite, so it cannot be clipped. To disable this error and "
                           "scale the gradients by the non-finite norm anyway, set "
                           "`error_if_nonfinite=False`")
    return Tensor._make(total, None, 0)


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor,
                          foreach=None) -> None:
    """Scale the gradients by min(1, max_norm / (total_norm + 1e-6)), in place."""
    grads = _grads(parameters)
    if not grads:
        return
    tn = total_norm._data if isinstance(total_norm, Tensor) else total_norm
    coef = float(max_norm) / (tn + 1e-6)
    xp = xp_of(tn) if isinstance(total_norm, Tensor) else None
    coef = xp.minimum(coef, 1.0) if xp is not None else min(coef, 1.0)
    if (xp is None or xp.__name__ == "numpy") and float(coef) == 1.0:
        return   # g * 1.0 == g bit for bit; on the host the check costs nothing (no sync)
    with no_grad():
        for g in grads:
            c = coef
            if xp is not None and device_of(g._data) != device_of(tn):
                c = to_device_array(c, device_of(g._data))
            g.mul_(Tensor._make(xp_of(g._data).asarray(c, dtype=g._data.dtype), None, 0))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Rescale the gradients of `parameters` so that their total `norm_type` norm is at most
    `max_norm`; returns the total norm before clipping."""
    parameters = _tensor_list(parameters)
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    if grads:
        clip_grads_with_norm_(parameters, max_norm, total, foreach)
    return total


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    import warnings
    warnings.warn("`nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient of `parameters` into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            d = g._writable()
            xp_of(d).clip(d, -clip_value, clip_value, out=d)
            g._bump()
