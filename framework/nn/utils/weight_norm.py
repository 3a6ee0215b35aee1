"""The legacy hook form of weight normalisation (torch.nn.utils.weight_norm): parameters
`<name>_g` and `<name>_v`, and a forward pre-hook recomputing `<name>` before each call.
Superseded by `parametrizations.weight_norm`; kept for checkpoints and code that use it."""
from __future__ import annotations

import warnings

from ..modules.module import Module
from ..parameter import Parameter
from .parametrizations import _norm_except_dim, _weight_norm

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]


class WeightNorm:
    """The forward pre-hook that sets `module.<name>` = g * v / ||v||."""

    def __init__(self, name: str, dim: int | None) -> None:
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module: Module):
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"),
                            self.dim)

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> "WeightNorm":
        warnings.warn("`framework.nn.utils.weight_norm` is deprecated in favor of "
                      "`framework.nn.utils.parametrizations.weight_norm`.", FutureWarning,
                      stacklevel=3)
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same "
                                   f"parameter {name}")
        fn = WeightNorm(name, dim)
        weight = getattr(module, name)
        _check_initialized(weight, "WeightNorm", "weight normalization")
        del module._parameters[name]
        module.register_parameter(name + "_g",
                                  Parameter(_norm_except_dim(weight, fn.dim).detach()))
        module.register_parameter(name + "_v", Parameter(weight.detach()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module))


def _check_initialized(weight, owner: str, what: str) -> None:
    from ..modules.lazy import UninitializedParameter
    if isinstance(weight, UninitializedParameter):
        raise ValueError(f"The module passed to `{owner}` can't have uninitialized parameters. "
                         f"Make sure to run the dummy forward before applying {what}")


def _remove_pre_hook(module: Module, hook_id: int) -> None:
    del module._forward_pre_hooks[hook_id]
    module._forward_pre_hooks_with_kwargs.pop(hook_id, None)
    module._refresh_hook_flag()  # back to the hook-free call path when this was the last


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Replace parameter `<name>` by `<name>_g` (the norms over every dim but `dim`; dim=None:
    the whole tensor) and `<name>_v` (the direction), recombined before every forward."""
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo `weight_norm`: `<name>` is a plain parameter again, holding the current value."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            _remove_pre_hook(module, k)
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module._get_name()}")
