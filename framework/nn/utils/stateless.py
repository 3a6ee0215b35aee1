"""`functional_call` (as torch.func.functional_call): call a module with other tensors in
place of its parameters and buffers, e.g. to differentiate a loss with respect to a dict of
weights (`framework.func.grad`)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..._tensor import Tensor
from ..modules.module import Module

__all__ = ["functional_call"]

_MISSING = object()  # an attribute the module did not have before the call


def functional_call(module: Module,
                    parameter_and_buffer_dicts: Mapping[str, Tensor]
                    | Sequence[Mapping[str, Tensor]],
                    args: Any = None, kwargs: dict[str, Any] | None = None, *,
                    tie_weights: bool = True, strict: bool = False) -> Any:
    """`module(*args, **kwargs)` with the tensors in `parameter_and_buffer_dicts` (one dict,
    or several with disjoint keys) in place of the parameters, buffers or attributes of those
    dotted names; everything is put back afterwards, also when the call raises.

    `args` that is not a tuple is the single positional argument. With `tie_weights`, a
    value given for one name of a tensor the module holds under several names (tied weights)
    replaces all of them; `strict` requires the names to be exactly the module's parameters
    and buffers. In-place updates the module makes (batch-norm statistics) land in the given
    tensors, and when one dict is given, tensors the module rebinds are written back into it.
    """
    if isinstance(parameter_and_buffer_dicts, dict):
        values = parameter_and_buffer_dicts
    elif isinstance(parameter_and_buffer_dicts, (list, tuple)):
        if not all(isinstance(d, dict) for d in parameter_and_buffer_dicts):
            raise ValueError("Expected all elements of parameter_and_buffer_dicts to be "
                             "dictionaries")
        values, repeated = {}, []
        for d in parameter_and_buffer_dicts:
            for k, v in d.items():
                if k in values and k not in repeated:
                    repeated.append(k)
                values[k] = v
        if repeated:
            raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of "
                             "functional call is ambiguous")
    else:
        raise ValueError("Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of "
                         f"dicts, but got {type(parameter_and_buffer_dicts)}")
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    if kwargs is None:
        kwargs = {}

    swap = _untie(module, values) if tie_weights else dict(values)
    if strict:
        _check_keys(module, swap)
    originals = _swap_all(module, swap)
    try:
        return module(*args, **kwargs)
    finally:
        current = _swap_all(module, originals)
        for k in values:
            values[k] = current[k]


def _named_tensors(module: Module):
    yield from module.named_parameters(remove_duplicate=False)
    yield from module.named_buffers(remove_duplicate=False)


def _untie(module: Module, values: dict) -> dict:
    """`values` extended to every name of each tied tensor given under one of its names."""
    names_of: dict[int, list[str]] = {}
    for name, t in _named_tensors(module):
        names_of.setdefault(id(t), []).append(name)
    tied = {n: names for names in names_of.values() if len(names) > 1 for n in names}
    out = dict(values)
    for name in values:
        names = tied.get(name)
        if names is None:
            continue
        if len({id(values[n]) for n in names if n in values}) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(names)}, "
                             "which are tied. Consider using tie_weights=False")
        for n in names:
            out[n] = values[name]
    return out


def _check_keys(module: Module, values: dict) -> None:
    valid = {name for name, _ in _named_tensors(module)}
    unexpected, missing = sorted(set(values) - valid), sorted(valid - set(values))
    msgs = []
    if unexpected:
        msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
    if missing:
        msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
    if msgs:
        raise RuntimeError(f"Error(s) in reparametrizing for {module._get_name()}:\n\t"
                           + "\n\t".join(msgs))


def _swap_all(module: Module, values: dict) -> dict:
    """Put each value in place; return what was there (undoing every swap if one fails)."""
    old: dict = {}
    try:
        for name, value in values.items():
            old[name] = _swap(module, name, value)
    except BaseException:
        for name, value in reversed(list(old.items())):
            _swap(module, name, value)
        raise
    return old


def _swap(root: Module, path: str, value):
    prefix, _, attr = path.rpartition(".")
    mod = root
    if prefix:
        for i, part in enumerate(prefix.split(".")):
            if not hasattr(mod, part):
                raise AttributeError(f"{mod._get_name()} has no attribute `{part}`")
            sub = getattr(mod, part)
            if not isinstance(sub, Module):
                where = ".".join(prefix.split(".")[:i + 1])
                raise TypeError(f"submodule `{where}` is a {type(sub).__name__}, not an "
                                "instance of framework.nn.Module")
            mod = sub
    if value is not _MISSING and value is not None and not isinstance(value, Tensor):
        raise TypeError(f"functional_call: the value for `{path}` is a {type(value).__name__}, "
                        "not a Tensor")
    # Parameters and buffers are swapped in their dicts: setattr would insist on a Parameter.
    for table in (mod._parameters, mod._buffers):
        if attr in table:
            old = table[attr]
            if value is _MISSING:
                del table[attr]
            else:
                table[attr] = value
            return old
    old = getattr(mod, attr, _MISSING)
    if old is not _MISSING and old is not None and not isinstance(old, Tensor):
        raise TypeError(f"attribute `{attr}` of {mod._get_name()} is a {type(old).__name__}, "
                        "not a Tensor")
    if value is _MISSING:
        delattr(mod, attr)
    else:
        setattr(mod, attr, value)
    return old
