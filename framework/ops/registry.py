"""The op registry: every public op is registered once, here, with whether it is
differentiable and which Tensor method name it is bound to. Tests check that each
differentiable op appears in their table; docs list the registry."""
from __future__ import annotations

OPS: dict[str, dict] = {}


def register(name: str | None = None, *, method: str | bool | None = True,
             differentiable: bool = True, function: bool = True):
    """Register `fn` as public op `name`; `method` is the Tensor method name (True: same name,
    False/None: none); `function` False for method-only ops."""
    def deco(fn):
        n = name or fn.__name__
        m = n if method is True else (method or None)
        OPS[n] = {"fn": fn, "method": m, "differentiable": differentiable, "function": function}
        return fn
    return deco


def install_methods(tensor_cls):
    for entry in OPS.values():
        m = entry["method"]
        if m and not hasattr(tensor_cls, m):
            setattr(tensor_cls, m, entry["fn"])
