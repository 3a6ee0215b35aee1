"""The Optimizer base class: parameter groups, per-parameter state, hooks and checkpoints.

Layout and behaviour follow `torch.optim.Optimizer` so that training code and checkpoints port:
`state_dict()` gives ``{'state': {0: {...}, 1: {...}}, 'param_groups': [{..., 'params': [0, 1]}]}``
with parameters numbered in group order, and every state value is a Tensor under PyTorch's key
name ('step', 'exp_avg', 'momentum_buffer', ...). A PyTorch optimizer state_dict converted
tensor by tensor (``framework.tensor(t.numpy())``) loads into the matching Lantern optimizer, and
the other way round.

Updates run on the raw arrays (NumPy or CuPy, through the array module of each parameter) with
in-place ufuncs, so a step records no graph and allocates few temporaries. State tensors wrap
arrays that each step updates in place; 'step' (and NAdam's 'mu_product') are CPU float32
scalars, as in PyTorch when neither `capturable` nor `fused` is set.

Denormals: NumPy has no flush-to-zero switch, and Adam/momentum state of dead units decays into
the denormal range after a few hundred steps, which makes float32 updates about twice as slow.
Training loops on the CPU should call ``framework.set_flush_denormal(True)`` once (as PyTorch
users do with ``torch.set_flush_denormal``); optimizers never change that switch themselves.
"""
from __future__ import annotations

import functools
import warnings
from collections import OrderedDict, defaultdict
from copy import deepcopy
from itertools import chain
from typing import Any, Callable

import numpy as np

from .. import _dtype as D
from .._backend import device_of, on_device, to_device_array, xp_of
from .._tensor import Tensor
from ..autograd.grad_mode import enable_grad

__all__ = ["Optimizer", "required", "register_optimizer_step_pre_hook",
           "register_optimizer_step_post_hook"]


class _RequiredParameter:
    """Marks a hyperparameter that every parameter group must give (e.g. SGD's lr in old code)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()

_global_step_pre_hooks: "OrderedDict[int, Callable]" = OrderedDict()
_global_step_post_hooks: "OrderedDict[int, Callable]" = OrderedDict()


class RemovableHandle:
    """Returned by the register_*_hook methods; `remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: "OrderedDict[int, Callable]"):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _add_hook(table, hook, prepend=False) -> RemovableHandle:
    handle = RemovableHandle(table)
    table[handle.id] = hook
    if prepend:
        table.move_to_end(handle.id, last=False)
    return handle


def register_optimizer_step_pre_hook(hook: Callable) -> RemovableHandle:
    """A hook run before every optimizer's step: ``hook(optimizer, args, kwargs)``."""
    return _add_hook(_global_step_pre_hooks, hook)


def register_optimizer_step_post_hook(hook: Callable) -> RemovableHandle:
    """A hook run after every optimizer's step: ``hook(optimizer, args, kwargs)``."""
    return _add_hook(_global_step_post_hooks, hook)


def _with_step_hooks(step):
    """Wrap a subclass's `step` so that step hooks run and schedulers can tell it was called."""

    @functools.wraps(step)
    def wrapper(*args, **kwargs):
        self = args[0]
        self._opt_called = True
        if _global_step_pre_hooks or self._optimizer_step_pre_hooks:
            for hook in chain(_global_step_pre_hooks.values(),
                              self._optimizer_step_pre_hooks.values()):
                result = hook(self, args, kwargs)
                if result is not None:
                    if isinstance(result, tuple) and len(result) == 2:
                        args, kwargs = result
                    else:
                        raise RuntimeError(f"{step} must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {result}.")
        out = step(*args, **kwargs)
        if _global_step_post_hooks or self._optimizer_step_post_hooks:
            for hook in chain(self._optimizer_step_post_hooks.values(),
                              _global_step_post_hooks.values()):
                hook(self, args, kwargs)
        return out

    wrapper._hooked = True
    return wrapper


def _scalar_np_dtype():
    """dtype of the 'step' counters: float32, or float64 when that is the default dtype."""
    return np.float64 if D.get_default_dtype() is D.float64 else np.float32


def _scalar_state(value: float) -> Tensor:
    """A CPU 0-d state tensor (like 'step'); its data is a NumPy scalar replaced on update."""
    return Tensor._make(_scalar_np_dtype()(value), None, 0)


def _zeros_state(param_arr) -> Tensor:
    """A state tensor of zeros shaped and typed like the parameter, on its device."""
    xp = xp_of(param_arr)
    if xp is np:
        return Tensor._make(np.zeros(param_arr.shape, param_arr.dtype), None, 0)
    with on_device(device_of(param_arr)):
        return Tensor._make(xp.zeros(param_arr.shape, param_arr.dtype), None, 0)


def _full_state(param_arr, value) -> Tensor:
    xp = xp_of(param_arr)
    if xp is np:
        return Tensor._make(np.full(param_arr.shape, value, param_arr.dtype), None, 0)
    with on_device(device_of(param_arr)):
        return Tensor._make(xp.full(param_arr.shape, value, param_arr.dtype), None, 0)


def _param_array(p: Tensor):
    """The parameter's data as an array that the update can write in place; a clear error
    for read-only memory (NumPy's own says only 'output array is read-only')."""
    pa = p._writable()
    if pa.__class__ is np.ndarray and not pa.flags.writeable:
        raise RuntimeError(
            f"cannot update a parameter of shape {tuple(pa.shape)} in place: its memory is "
            "read-only (a NumPy array marked read-only, or np.load/np.memmap with mode 'r'). "
            "Give it memory of its own (framework.tensor(array) or .clone()), or map the file "
            "with mode 'r+' or 'c'")
    return pa


def _arrays(p: Tensor, g: Tensor):
    """The writable data of a parameter and its gradient's data, checked against each other;
    0-d ones as 1-element views so that in-place ufuncs with out= work on them."""
    pa = _param_array(p)
    ga = g._data
    if ga.shape != pa.shape or ga.dtype != pa.dtype:
        raise RuntimeError(
            f"the gradient of a parameter of shape {tuple(pa.shape)} and dtype {pa.dtype} has "
            f"shape {tuple(ga.shape)} and dtype {ga.dtype}; they must match")
    if pa.ndim == 0:
        return pa.reshape(1), ga.reshape(1)
    return pa, ga


def _sarr(t: Tensor):
    """The array of a parameter-shaped state tensor, as a view that in-place ufuncs can write."""
    a = t._data
    if a.ndim == 0:
        a = t._writable().reshape(1)
    return a


def _next_step(state: dict) -> float:
    """Advance the state's 'step' counter (a scalar tensor) and return the new count."""
    st = state["step"]
    st._data = st._data + 1
    return float(st._data)


class _Batch:
    """The parameters of one group that have a gradient, gathered for one functional update
    (`Optimizer._gather`): the Tensors, their writable arrays, their gradients' arrays, their
    state dicts and, where counted, their new step counts."""

    __slots__ = ("tensors", "params", "grads", "states", "steps")

    def __init__(self) -> None:
        self.tensors, self.params, self.grads, self.states, self.steps = [], [], [], [], []

    def arrays(self, key: str) -> list:
        """Each parameter's parameter-shaped state `key`, as arrays written in place."""
        return [_sarr(st[key]) for st in self.states]

    def values(self, key: str) -> list:
        """Each parameter's (scalar) state tensor `key`."""
        return [st[key] for st in self.states]

    def bump(self) -> None:
        """Mark the parameters as modified in place (their version counters)."""
        for p in self.tensors:
            p._bump()


def _check_nonneg(value, what: str) -> None:
    if not 0.0 <= float(value):
        raise ValueError(f"Invalid {what}: {value}")


def _check_lr(lr) -> None:
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= float(lr):
        raise ValueError(f"Invalid learning rate: {lr}")


def _check_betas(betas) -> tuple:
    try:
        b0, b1 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    b0 = float(b0.item()) if isinstance(b0, Tensor) else b0
    b1 = float(b1.item()) if isinstance(b1, Tensor) else b1
    if not 0.0 <= b0 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {b0}")
    if not 0.0 <= b1 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {b1}")
    return (b0, b1)


def _check_flags(defaults: dict) -> None:
    if defaults.get("differentiable"):
        raise NotImplementedError(
            "differentiable=True (autograd through the optimizer step) is not supported by "
            "Lantern's optimizers; their updates run on raw arrays without a graph")
    if defaults.get("fused") and defaults.get("foreach"):
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


_SET_MESSAGE = ("optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead.")


class Optimizer:
    """Base class of all optimizers (as `torch.optim.Optimizer`).

    Args:
        params: an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts (parameter
            groups, each with a 'params' entry and optional per-group options).
        defaults: the default value of every option, used where a group does not set it.

    Subclasses implement `step(closure=None)`; every step runs the registered step hooks.
    """

    # State keys whose tensors have the parameter's shape (checked on load_state_dict).
    _param_shaped_state: tuple = ()

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: OrderedDict = OrderedDict()
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__} (a single Tensor; "
                            "pass [tensor] or model.parameters())")
        if isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE)
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_hooked", False):
            cls.step = _with_step_hooks(step)

    # ------------------------------------------------------------------ pickling and printing
    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks",
                     "_optimizer_state_dict_pre_hooks", "_optimizer_state_dict_post_hooks",
                     "_optimizer_load_state_dict_pre_hooks",
                     "_optimizer_load_state_dict_post_hooks"):
            if name not in self.__dict__:
                setattr(self, name, OrderedDict())
        self.defaults.setdefault("differentiable", False)
        # Options that an older checkpoint (or another library's) lacks take our defaults.
        for group in self.param_groups:
            for key, value in self.defaults.items():
                if value is not required:
                    group.setdefault(key, value)
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if st and "step" in st and not isinstance(st["step"], Tensor):
                    st["step"] = _scalar_state(float(st["step"]))

    def __repr__(self) -> str:
        s = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    s += f"    {key}: {group[key]}\n"
        return s + ")"

    # ------------------------------------------------------------------ parameter groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (with its own options) to `param_groups`."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("a parameter group needs a 'params' entry (the tensors to optimize)")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE)
        else:
            params = list(params)
        tensors, names = [], []
        for p in params:
            if isinstance(p, tuple):
                if len(p) != 2:
                    raise TypeError("named parameters must be (name, Tensor) pairs")
                names.append(p[0])
                tensors.append(p[1])
            else:
                tensors.append(p)
        param_group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError("all optimizer params should be with/without names. Some param "
                                 "names are missing")
            param_group["param_names"] = names
        for i, p in enumerate(tensors):
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params "
                                f"(index {i}) is {type(p).__name__}")
            if not (p.is_leaf or p.retains_grad):
                raise ValueError(f"can't optimize a non-leaf Tensor (parameter {i} of the group "
                                 f"was made by {type(p.grad_fn).__name__}); pass a leaf, e.g. "
                                 "t.detach().requires_grad_()")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)
        if "lr" in param_group:
            _check_lr(param_group["lr"])
        ids = [id(p) for p in tensors]
        if len(ids) != len(set(ids)):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "in future, this will cause an error; see "
                          "github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {which} to the optimizer")
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ gradients
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: set them to None (default) or fill them with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g._requires_grad = False
                    g._writable()[...] = 0
                    g._bump()

    def step(self, closure: Callable[[], Any] | None = None):
        """Perform one optimization step (re-evaluating the loss with `closure` if given)."""
        raise NotImplementedError

    def _gather(self, group: dict, init=None, count_step: bool = True,
                with_state: bool = True) -> _Batch | None:
        """The group's parameters that have a gradient, as a _Batch (None when there is none).
        A parameter without state gets `init(p, state, group)` first; with `count_step`, its
        'step' counter is advanced and the new count recorded. Without `with_state` no state
        entry is made (states are None), as PyTorch's SGD without momentum keeps none."""
        batch = _Batch()
        state_of = self.state
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            pa, ga = _arrays(p, g)
            state = state_of[p] if with_state else None
            if init is not None and len(state) == 0:
                init(p, state, group)
            batch.tensors.append(p)
            batch.params.append(pa)
            batch.grads.append(ga)
            batch.states.append(state)
            if count_step:
                batch.steps.append(_next_step(state))
        return batch if batch.params else None

    @staticmethod
    def _eval_closure(closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ------------------------------------------------------------------ hooks
    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs)`` before step."""
        return _add_hook(self._optimizer_step_pre_hooks, hook)

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None`` after step."""
        return _add_hook(self._optimizer_step_post_hooks, hook)

    def register_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """``hook(optimizer) -> None`` before `state_dict()` builds its result."""
        return _add_hook(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """``hook(optimizer, state_dict) -> state_dict or None`` after `state_dict()`."""
        return _add_hook(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """``hook(optimizer, state_dict) -> state_dict or None`` before loading."""
        return _add_hook(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """``hook(optimizer) -> None`` after loading."""
        return _add_hook(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as ``{'state': {id: {...}}, 'param_groups': [...]}``.

        Parameters are numbered 0, 1, ... in group order; the state tensors are the live ones
        (as in PyTorch): serialise or copy them before stepping again if they must not change.
        """
        for hook in self._optimizer_state_dict_pre_hooks.values():
            hook(self)
        mapping: dict[int, int] = {}
        start = 0

        def pack(group):
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        groups = [pack(g) for g in self.param_groups]
        packed_state = {(mapping[id(k)] if isinstance(k, Tensor) else k): v
                        for k, v in self.state.items()}
        sd = {"state": packed_state, "param_groups": groups}
        for hook in self._optimizer_state_dict_post_hooks.values():
            result = hook(self, sd)
            if result is not None:
                sd = result
        return sd

    def _cast_state_value(self, param: Tensor, key, value, pid):
        """A copy of a loaded state value, on the parameter's device (and in its dtype for
        floating tensors other than 'step', which stays as saved, as in PyTorch)."""
        if isinstance(value, Tensor):
            arr = value._data
            if key == "step":
                return Tensor._make(arr.copy() if hasattr(arr, "copy") else arr, None, 0)
            if key in self._param_shaped_state and tuple(arr.shape) != tuple(param.shape):
                raise ValueError(f"loaded state '{key}' of parameter {pid} has shape "
                                 f"{tuple(arr.shape)} but the parameter has shape "
                                 f"{tuple(param.shape)}")
            dev = device_of(param._data)
            arr = to_device_array(arr, dev)
            xp = xp_of(arr)
            if param.is_floating_point() and arr.dtype.kind in "fc":
                out = xp.array(arr, dtype=param._data.dtype, copy=True)
            else:
                out = xp.array(arr, copy=True)
            return Tensor._make(out, None, 0)
        if isinstance(value, dict):
            return {k: self._cast_state_value(param, k, v, pid) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._cast_state_value(param, None, v, pid) for v in value)
        return deepcopy(value)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state produced by `state_dict()` (ours or a converted PyTorch one).

        Groups are matched by position and parameters by their position within the groups;
        state tensors are copied onto each parameter's device and dtype.
        """
        state_dict = dict(state_dict)
        for hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        if "state" not in state_dict or "param_groups" not in state_dict:
            raise KeyError("an optimizer state_dict needs 'state' and 'param_groups' entries, "
                           f"got keys {sorted(map(str, state_dict))}")
        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than the optimizer ({len(groups)})")
        for i, (g, sg) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match "
                                 f"the size of optimizer's group: group {i} has "
                                 f"{len(sg['params'])} parameters in the state dict and "
                                 f"{len(g['params'])} in the optimizer")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            key = int(k) if isinstance(k, str) and k.isdigit() else k
            if key in id_map:
                param = id_map[key]
                state[param] = self._cast_state_value(param, None, v, key)
            else:
                state[k] = v

        def update_group(group, new_group):
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            return new_group

        param_groups = [update_group(g, ng) for g, ng in zip(groups, saved_groups)]
        self.__setstate__({"state": state, "param_groups": param_groups})
        for hook in self._optimizer_load_state_dict_post_hooks.values():
            hook(self)
