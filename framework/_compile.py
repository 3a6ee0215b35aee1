"""`framework.compile`: accepted so that PyTorch scripts calling torch.compile run; it
returns the module or function unchanged (Lantern has no graph compiler: every op runs
eagerly, as PyTorch does without compile).

Unlike torch.compile, a module is not wrapped: `compile(model)` *is* `model`, so its
state_dict keys carry no `_orig_mod.` prefix and `model._orig_mod` does not exist.
"""
from __future__ import annotations

from typing import Any, Callable

__all__ = ["compile"]

_MODES = ("default", "lite", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")


def compile(model: Callable | None = None, *, fullgraph: bool = False,  # noqa: A001
            dynamic: bool | None = None, backend: str | Callable | None = None,
            mode: str | None = None, options: dict[str, Any] | None = None,
            disable: bool = False, **kwargs: Any):
    """Return `model` unchanged (or, called without a model, a decorator that does). The
    arguments are checked as torch.compile checks them and otherwise ignored."""
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be "
                           "specified at the same time.")
    if mode is not None and mode not in _MODES:
        raise RuntimeError(f"Unrecognized mode={mode!r}, should be one of: {', '.join(_MODES)}")
    if model is None:
        return lambda fn: compile(fn, fullgraph=fullgraph, dynamic=dynamic, backend=backend,
                                  mode=mode, options=options, disable=disable, **kwargs)
    if not callable(model):
        raise RuntimeError("compile(): the model or function to compile must be callable, "
                           f"got {type(model).__name__}")
    return model
