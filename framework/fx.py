"""`framework.fx`: importing works, so that scripts which mention torch.fx load; Lantern has
no graph capture or transformation, so using anything in it raises NotImplementedError
naming the feature. The public names of torch.fx are here as placeholders: they can be
imported, subclassed and used in isinstance checks (always False), and raise when called or
instantiated. `wrap` and `has_side_effect`, which only mark functions for the tracer (often
at a module's top level), return their argument."""
from __future__ import annotations

__all__ = ["symbolic_trace", "Tracer", "wrap", "Graph", "GraphModule", "Interpreter",
           "Transformer", "Node", "Proxy", "replace_pattern", "has_side_effect", "map_arg"]


class FxUnavailableError(NotImplementedError, AttributeError):
    """What using torch.fx raises here: a NotImplementedError that is also an AttributeError,
    so `hasattr(fx, name)` and `getattr(fx, name, default)` answer instead of raising."""


def _missing(name: str) -> NotImplementedError:
    return FxUnavailableError(
        f"framework.fx.{name}: torch.fx (symbolic tracing and graph transformation) is not "
        "implemented in Lantern; modules run eagerly only")


class _Unavailable(type):
    """Metaclass of the placeholder classes: instantiating one raises."""

    def __call__(cls, *args, **kwargs):
        raise _missing(cls.__name__)

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise _missing(f"{cls.__name__}.{name}")

    def __instancecheck__(cls, obj) -> bool:
        return False


def _placeholder_class(name: str) -> type:
    return _Unavailable(name, (), {"__module__": __name__,
                                   "__doc__": f"Not available in Lantern (torch.fx.{name})."})


def _placeholder_function(name: str):
    def fn(*args, **kwargs):
        raise _missing(name)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Not available in Lantern (torch.fx.{name})."
    return fn


Tracer = _placeholder_class("Tracer")
Graph = _placeholder_class("Graph")
GraphModule = _placeholder_class("GraphModule")
Interpreter = _placeholder_class("Interpreter")
Transformer = _placeholder_class("Transformer")
Node = _placeholder_class("Node")
Proxy = _placeholder_class("Proxy")
symbolic_trace = _placeholder_function("symbolic_trace")
replace_pattern = _placeholder_function("replace_pattern")
map_arg = _placeholder_function("map_arg")


def wrap(fn_or_name):
    """Marks a function as a leaf for tracing (often at a module's top level): without
    tracing there is nothing to mark, so it returns its argument."""
    return fn_or_name


def has_side_effect(fn):
    """Marks a function as impure for tracing: returns it (nothing is traced)."""
    return fn


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    raise _missing(name)
