"""Define-by-run reverse-mode autodiff: `backward`, `grad`, grad modes, custom Functions,
anomaly detection and numerical gradient checks."""
from __future__ import annotations

from .function import Function, FunctionCtx, Node, once_differentiable
from .grad_mode import (detect_anomaly, enable_grad, inference_mode, is_anomaly_enabled,
                        is_grad_enabled, is_inference_mode_enabled, no_grad, set_detect_anomaly,
                        set_grad_enabled)
from .engine import run_backward
from .gradcheck import gradcheck, gradgradcheck
from . import profiler  # noqa: E402  (PyTorch's legacy torch.autograd.profiler)

__all__ = ["backward", "grad", "Function", "FunctionCtx", "Node", "once_differentiable",
           "no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled", "detect_anomaly", "set_detect_anomaly",
           "is_anomaly_enabled", "gradcheck", "gradgradcheck", "functional"]


def _as_list(x):
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _root_grads(outputs, grad_outputs, create_graph):
    from .._tensor import Tensor
    from ..creation import ones_like
    grads = []
    for i, out in enumerate(outputs):
        g = grad_outputs[i] if grad_outputs is not None else None
        if g is None:
            if out._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs "
                                   f"(output {i} has shape {list(out.shape)}); pass gradient=")
            g = ones_like(out)
        elif not isinstance(g, Tensor):
            from ..creation import tensor
            g = tensor(g, dtype=out.dtype, device=out.device)
        if tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                               f"{list(g.shape)} and output[{i}] has a shape of {list(out.shape)}.")
        if not create_graph and g._grad_fn is not None:
            g = g.detach()
        grads.append(g)
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(tensors)/d(leaf) into each leaf's `.grad`."""
    outs = _as_list(tensors)
    gos = _as_list(grad_tensors)
    if retain_graph is None:
        retain_graph = create_graph
    for o in outs:
        if not o._requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                               "grad_fn")
    grads = _root_grads(outs, gos, create_graph)
    if inputs is not None:
        inputs = _as_list(inputs)
        res = run_backward(outs, grads, retain_graph, create_graph, inputs=inputs,
                           allow_unused=True)
        for t, g in zip(inputs, res):
            if g is None:
                continue
            from .engine import _accumulate
            _accumulate(t, g, create_graph, set())
            if t._post_acc_hooks:
                for hook in tuple(t._post_acc_hooks):
                    hook(t)
        return
    run_backward(outs, grads, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False, materialize_grads=False):
    """Return d(outputs)/d(inputs) without touching any `.grad`."""
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    gos = _as_list(grad_outputs)
    if retain_graph is None:
        retain_graph = create_graph
    for i, t in enumerate(ins):
        if not t._requires_grad:
            raise RuntimeError(f"One of the differentiated Tensors (input {i}) does not require "
                               "grad")
    for o in outs:
        if not o._requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                               "grad_fn")
    grads = _root_grads(outs, gos, create_graph)
    res = run_backward(outs, grads, retain_graph, create_graph, inputs=ins,
                       allow_unused=allow_unused or materialize_grads)
    if materialize_grads:
        from ..creation import zeros_like
        res = [zeros_like(t) if g is None else g for t, g in zip(ins, res)]
    return tuple(res)


from . import functional  # noqa: E402,F401
