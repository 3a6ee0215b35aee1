"""`framework.func` (as torch.func): function transforms on reverse-mode autograd.

`functional_call`, `grad`, `grad_and_value`, `vjp`, `jacrev`, `jacfwd` and `hessian`, with
torch.func's signatures; primals, outputs, cotangents and aux values may be pytrees (nested
tuples, lists and dicts of tensors).

There is no `vmap`: `jacrev` runs one backward pass per output element, and `jacfwd` is
`jacrev` (same result computed in reverse mode, so it is slow for functions with many
outputs). Transforms nest (`jacrev(jacrev(f))`, `grad(grad(f))`) and compose with ordinary
autograd as in PyTorch: a result stays differentiable with respect to whatever outside the
transform required grad (primals that require grad, parameters `func` reads) and is cut from
the graph otherwise.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from ._tensor import Tensor
from .autograd import grad as _autograd_grad
from .autograd.grad_mode import _State, enable_grad
from .creation import zeros, zeros_like
from .nn.utils.stateless import functional_call  # noqa: F401  (exported)
from .ops.shape import stack

__all__ = ["functional_call", "grad", "grad_and_value", "vjp", "jacrev", "jacfwd", "hessian"]


# ------------------------------------------------------------------------------ pytrees
# A spec is None for a leaf, else (container type, dict keys or None, child specs).

def _tree_flatten(tree: Any) -> tuple[list, Any]:
    """The leaves of `tree` in order, and its structure: tuples (named ones too), lists and
    dicts are containers, anything else is a leaf."""
    if isinstance(tree, (tuple, list)):
        leaves, specs = [], []
        for x in tree:
            sub, spec = _tree_flatten(x)
            leaves += sub
            specs.append(spec)
        return leaves, (type(tree), None, specs)
    if isinstance(tree, dict):
        leaves, specs = [], []
        for x in tree.values():
            sub, spec = _tree_flatten(x)
            leaves += sub
            specs.append(spec)
        return leaves, (type(tree), list(tree), specs)
    return [tree], None


def _tree_unflatten(leaves: list, spec: Any) -> Any:
    it = iter(leaves)
    return _build(it, spec)


def _build(it, spec):
    if spec is None:
        return next(it)
    kind, keys, specs = spec
    children = [_build(it, s) for s in specs]
    if keys is not None:  # dict subclasses other than OrderedDict come back as dicts
        return (kind if kind in (dict, OrderedDict) else dict)(zip(keys, children))
    if hasattr(kind, "_fields"):  # a namedtuple takes its fields as arguments
        return kind(*children)
    return kind(children)


def _spec_str(spec) -> str:
    """PyTorch's notation for a structure: `*` a leaf, `(*, *)` a tuple, `{'a': *}` a dict."""
    if spec is None:
        return "*"
    kind, keys, specs = spec
    parts = [_spec_str(s) for s in specs]
    if keys is not None:
        return "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(keys, parts)) + "}"
    if issubclass(kind, list):
        return "[" + ", ".join(parts) + "]"
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


# ------------------------------------------------------------------------------ one level
class _Level:
    """One application of a transform: the stand-ins `func` sees for the primals' tensors,
    and whether its results stay attached to a graph outside the transform.

    A primal that requires grad while grad mode is on is replaced by a view of itself; the
    view's node is cut from the primal (`_cut`) while this level's gradients are taken, so the
    walk stops there and the primal's own history is neither run nor freed, and is joined
    again afterwards, so the gradients (built with create_graph) are differentiable with
    respect to the primal. Any other primal is replaced by a fresh leaf."""

    def __init__(self, primals):
        self.outer = _State.grad_enabled
        self.inputs: list[Tensor] = []
        self.specs = []
        self.cut = []
        self.substituted = []
        for p in primals:
            leaves, spec = _tree_flatten(p)
            stand = []
            for t in leaves:
                if not isinstance(t, Tensor):
                    raise ValueError(f"Thing passed to transform API must be Tensor, got {type(t)}")
                if self.outer and t._requires_grad:
                    a = t.view_as(t)
                    self.cut.append(a._grad_fn)
                else:
                    a = t.detach().requires_grad_(True)
                stand.append(a)
            self.inputs += stand
            self.specs.append((spec, len(stand)))
            self.substituted.append(_tree_unflatten(stand, spec))
        self.attached = False

    def finish(self, outputs: list[Tensor]) -> None:
        """Decide, once `func` has run, whether results stay attached to an outer graph."""
        self.attached = self.outer and (bool(self.cut) or _reaches_outside(
            outputs, {id(a) for a in self.inputs}))

    def grads(self, roots, cotangents, retain_graph=False, create_graph=None) -> list[Tensor]:
        """d(roots)/d(stand-ins) contracted with `cotangents` (None: ones for a scalar root);
        zeros for stand-ins the roots do not depend on."""
        if create_graph is None:
            create_graph = self.attached
        pairs = [(r, c) for r, c in zip(roots, cotangents) if r._requires_grad]
        if not pairs:
            return [zeros_like(a) for a in self.inputs]
        with _cut(self.cut):
            return list(_autograd_grad([r for r, _ in pairs], self.inputs,
                                       [c for _, c in pairs],
                                       retain_graph=retain_graph or create_graph,
                                       create_graph=create_graph, materialize_grads=True))

    def per_primal(self, flat: list) -> list:
        """Split values given per stand-in back into one pytree per primal."""
        out, i = [], 0
        for spec, n in self.specs:
            out.append(_tree_unflatten(flat[i:i + n], spec))
            i += n
        return out

    def result(self, tree):
        """A value computed inside the transform, as handed back to the caller: cut from this
        level's stand-ins unless it stays attached to an outer graph."""
        leaves, spec = _tree_flatten(tree)
        for x in leaves:
            if not isinstance(x, Tensor):
                raise RuntimeError(f"Expected tensors, got unsupported type {type(x)}")
        if self.attached:
            return tree
        return _tree_unflatten([x.detach() for x in leaves], spec)


class _cut:
    """Disconnect nodes from their inputs for the duration of a `with` block."""

    def __init__(self, nodes):
        self.nodes = list({id(n): n for n in nodes}.values())  # each once, or it stays cut

    def __enter__(self):
        self.saved = [n.next_edges for n in self.nodes]
        for n in self.nodes:
            n.next_edges = (None,) * len(n.next_edges)

    def __exit__(self, *exc):
        for n, e in zip(self.nodes, self.saved):
            n.next_edges = e
        return False


def _reaches_outside(outputs, private: set) -> bool:
    """Whether the graph of `outputs` reaches a tensor requiring grad other than `private`."""
    stack, seen = [], set()
    for t in outputs:
        if t._grad_fn is not None:
            stack.append(t._grad_fn)
        elif t._requires_grad and id(t) not in private:
            return True
    while stack:
        node = stack.pop()
        for e in node.next_edges:
            if e is None:
                continue
            if e.__class__ is tuple:
                e = e[0]
            elif not e._is_node:
                if id(e) not in private:
                    return True
                continue
            if id(e) not in seen:
                seen.add(id(e))
                stack.append(e)
    return False


def _argnums(argnums, nargs: int) -> tuple[int, ...]:
    if isinstance(argnums, int) and not isinstance(argnums, bool):
        nums = (argnums,)
    elif isinstance(argnums, tuple):
        if not argnums:
            raise RuntimeError("argnums must be non-empty")
        for a in argnums:
            if not isinstance(a, int) or isinstance(a, bool):
                raise RuntimeError(f"argnum must be int, got: {type(a)}")
        nums = argnums
    else:
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    out = []
    for a in nums:
        if not -nargs <= a < nargs:
            raise RuntimeError(f"Got argnum={a}, but only {nargs} positional inputs")
        out.append(a % nargs)
    if len(set(out)) != len(out):
        raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    return tuple(out)


def _call(func, args, kwargs, argnums):
    """Run `func` with the primals at `argnums` replaced by stand-ins; (level, output)."""
    nums = _argnums(argnums, len(args))
    level = _Level([args[i] for i in nums])
    call_args = list(args)
    for i, sub in zip(nums, level.substituted):
        call_args[i] = sub
    with enable_grad():
        out = func(*call_args, **kwargs)
    return level, out


def _split_aux(out, has_aux: bool, api: str):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{api}: output of function f should be a tuple: (output, aux) if "
                           "has_aux is True")
    return out


# ------------------------------------------------------------------------------ transforms
def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0,
                   has_aux: bool = False) -> Callable:
    """A function returning `(gradient, value)` of `func`, whose output must be a scalar
    tensor, with respect to the positional arguments `argnums` (`(gradient, (value, aux))`
    with has_aux)."""
    api = "grad_and_value(f)(*args)"

    def wrapper(*args, **kwargs):
        level, out = _call(func, args, kwargs, argnums)
        out, aux = _split_aux(out, has_aux, api)
        if not isinstance(out, Tensor):
            raise RuntimeError(f"{api}: Expected f(*args) to return a Tensor, got {type(out)}")
        if out.dim() != 0:
            raise RuntimeError(f"{api}: Expected f(*args) to return a scalar Tensor, got tensor "
                               f"with {out.dim()} dims. Maybe you wanted to use the vjp or "
                               "jacrev APIs instead?")
        level.finish([out])
        g = level.per_primal(level.grads([out], [None]))
        g = g[0] if isinstance(argnums, int) else tuple(g)
        value = level.result(out)
        if has_aux:
            return g, (value, level.result(aux))
        return g, value
    return wrapper


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """A function returning the gradient of `func` (scalar output) with respect to the
    positional arguments `argnums` (`(gradient, aux)` with has_aux)."""
    gv = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        return (g, value[1]) if has_aux else g
    return wrapper


def vjp(func: Callable, *primals, has_aux: bool = False):
    """`(output, vjp_fn)` (`(output, vjp_fn, aux)` with has_aux): `vjp_fn(cotangents)`, with
    cotangents shaped as the output, returns one vector-Jacobian product per primal. It may be
    called several times."""
    api = "vjp(f, *primals)"
    level = _Level(primals)
    with enable_grad():
        out = func(*level.substituted)
    out, aux = _split_aux(out, has_aux, api)
    outs, spec = _tree_flatten(out)
    for o in outs:
        if not isinstance(o, Tensor):
            raise RuntimeError(f"{api}: expected f(*primals) to return only tensors, got "
                               f"unsupported type {type(o)}")
    level.finish(outs)

    def vjp_fn(cotangents, retain_graph: bool = True, create_graph: bool | None = None):
        cots, cspec = _tree_flatten(cotangents)
        if cspec != spec:
            raise RuntimeError("Expected pytree structure of cotangents to be the same as pytree "
                               "structure of outputs to the function. cotangents: "
                               f"{_spec_str(cspec)}, primal output: {_spec_str(spec)}")
        for c in cots:
            if not isinstance(c, Tensor):
                raise TypeError(f"gradients can be either Tensors or None, but got "
                                f"{type(c).__name__}")
        if create_graph is None:
            create_graph = _State.grad_enabled and (
                level.attached or any(c._requires_grad for c in cots))
        return tuple(level.per_primal(level.grads(outs, cots, retain_graph, create_graph)))

    result = level.result(out)
    if has_aux:
        return result, vjp_fn, level.result(aux)
    return result, vjp_fn


def jacrev(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           chunk_size: int | None = None) -> Callable:
    """A function returning the Jacobian of `func` with respect to the positional arguments
    `argnums`: for an output of shape S and an input of shape T, a tensor of shape S + T;
    pytree outputs give the same structure of Jacobians, a tuple `argnums` a tuple per output.
    One backward pass per output element (`chunk_size` is accepted for PyTorch compatibility;
    without vmap there is nothing to chunk)."""
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")
    api = "jacrev(f, argnums)(*args)"

    def wrapper(*args, **kwargs):
        level, out = _call(func, args, kwargs, argnums)
        out, aux = _split_aux(out, has_aux, api)
        outs, spec = _tree_flatten(out)
        for o in outs:
            if not isinstance(o, Tensor):
                raise RuntimeError(f"{api}: expected f(*args) to return only tensors, got "
                                   f"unsupported type {type(o)}")
        level.finish(outs)
        per_output = []
        for o in outs:
            n = o.numel()
            rows = [[] for _ in level.inputs]
            for k in range(n):
                onehot = zeros(n, dtype=o.dtype, device=o.device)
                onehot[k] = 1
                gs = level.grads([o], [onehot.reshape(o.shape)], retain_graph=True)
                for r, g in zip(rows, gs):
                    r.append(g)
            jacs = []
            for r, a in zip(rows, level.inputs):
                shape = tuple(o.shape) + tuple(a.shape)
                jacs.append(stack(r).reshape(shape) if r else
                            zeros(shape, dtype=a.dtype, device=a.device))
            j = level.per_primal(jacs)
            per_output.append(j[0] if isinstance(argnums, int) else tuple(j))
        jac = _tree_unflatten(per_output, spec)
        return (jac, level.result(aux)) if has_aux else jac
    return wrapper


def jacfwd(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:
    """torch.func.jacfwd's signature and result, computed by `jacrev` (reverse mode: Lantern
    has no forward-mode autograd). `randomness` only matters under vmap, which Lantern lacks;
    it is validated and otherwise ignored."""
    if randomness not in ("error", "different", "same"):
        raise RuntimeError("Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")
    return jacrev(func, argnums, has_aux=has_aux)


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """A function returning the Hessian of `func` (scalar output) with respect to the
    positional arguments `argnums`: the Jacobian of its gradient."""
    return jacfwd(jacrev(func, argnums), argnums)
