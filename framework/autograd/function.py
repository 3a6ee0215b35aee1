"""Graph vertices.

`Op` is the base of every built-in differentiable op: `forward` works on raw arrays of the
tensor's array module, `backward` receives and returns Tensors built from differentiable ops,
so running backward with grad mode on records a graph and higher-order gradients come free.
An op keeps only what its backward needs: the inputs it names in `save_inputs` and whatever
arrays `forward` stores on `self`. `Function` is PyTorch's user-facing custom-op API on top.
"""
from __future__ import annotations

import traceback

from .grad_mode import _State


class Node:
    """A recorded op. `next_edges[i]` is where the gradient of input i goes: the producing
    node itself when it has one output, `(node, output_index)` for an output of a multi-output
    node, the leaf tensor itself for a leaf that requires grad, `None` when no gradient is
    needed. (Edges are not wrapped in tuples in the common cases: every allocation of a
    container object here adds to the garbage collector's work on every op.)"""

    __slots__ = ("next_edges", "_saved", "_saved_versions", "__dict__", "__weakref__")
    _is_node = True
    n_out = 1
    _freed = False
    _hooks = None  # {output_index: [hook, ...]} from Tensor.register_hook on non-leaf outputs
    _trace = None

    def name(self) -> str:
        return type(self).__name__ + "Backward0"

    @property
    def needs_input_grad(self):
        """Per input: whether a gradient is wanted (derived from the edges when asked)."""
        return [e is not None for e in self.next_edges]

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"

    @property
    def next_functions(self):
        out = []
        for e in self.next_edges:
            if e is None:
                out.append((None, 0))
            elif e.__class__ is tuple:
                out.append(e)
            elif e._is_node:
                out.append((e, 0))
            else:
                out.append((AccumulateGrad(e), 0))
        return tuple(out)

    @property
    def saved_tensors(self):
        if self._freed:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (or directly access saved "
                f"tensors after they have already been freed) in {self.name()}. Saved intermediate "
                "values of the graph are freed when you call .backward() or autograd.grad(). "
                "Specify retain_graph=True if you need to backward through the graph a second time "
                "or if you need to access saved tensors after calling backward.")
        saved = self._saved
        if saved is None:
            return ()
        versions = self._saved_versions
        if versions is None:  # every saved tensor was at version 0
            for t in saved:
                if t._vc[0]:
                    break
            else:
                return saved
            versions = [0] * len(saved)
        else:
            for t, v in zip(saved, versions):
                if t._vc[0] != v:
                    break
            else:
                return saved
        for i, (t, v) in enumerate(zip(saved, versions)):
            if t._vc[0] != v:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: [{t.dtype.name} tensor of shape {tuple(t.shape)}], which is "
                    f"input {i} saved by {self.name()}, is at version {t._vc[0]}; expected version {v} "
                    "instead. Hint: replace the in-place op with its out-of-place form, or clone() "
                    "the tensor before modifying it.")
        return saved

    def release(self):
        """Drop what backward needed (called after backward unless retain_graph)."""
        self._freed = True
        self._saved = None
        if self._release_extra is not None:
            self._release_extra()

    _release_extra = None  # subclasses that keep arrays on self define it to drop them

    def register_hook(self, idx, hook):
        if self._hooks is None:
            self._hooks = {}
        hooks = self._hooks.setdefault(idx, [])
        if hooks and getattr(hooks[-1], "_retains_grad", False):
            hooks.insert(len(hooks) - 1, hook)  # retain_grad sees the grad after every hook
        else:
            hooks.append(hook)


class AccumulateGrad:
    """Stand-in shown by `grad_fn.next_functions` for a leaf; holds the leaf as `.variable`."""

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {id(self):#x}>"


def _edge(t):
    fn = t._grad_fn
    if fn is not None:
        return fn if fn.n_out == 1 else (fn, t._out_idx)
    if t._requires_grad:
        return t
    return None


class Op(Node):
    """Base of built-in ops. Subclasses define:

    - ``forward(self, *arrays)`` returning an array (or a tuple of arrays when ``n_out > 1``);
      keyword arguments given to ``apply`` are set as attributes before it runs;
    - ``backward(self, *grads)`` returning one Tensor-or-None per input, written with
      differentiable Tensor ops;
    - ``save_inputs``: indexes of the inputs whose Tensors backward needs (version-checked),
      or "all".
    """

    save_inputs = ()
    differentiable = True
    # True when backward reads the forward's output array (kept as self.y): the op then
    # holds the output's version counter, and `saved_output` refuses an output modified in
    # place since, as PyTorch does for a saved result.
    save_output = False

    @classmethod
    def apply(cls, *inputs, **params):
        op = _new(cls)
        if params:
            op.__dict__.update(params)
        n = len(inputs)
        if n == 2:
            a, b = inputs
            out = op.forward(a._data, b._data)
        elif n == 1:
            out = op.forward(inputs[0]._data)
        else:
            out = op.forward(*[t._data for t in inputs])
        if _State.grad_enabled and cls.differentiable:
            record = False
            if n == 2:
                fn = a._grad_fn
                if fn is not None:
                    ea = fn if fn.n_out == 1 else (fn, a._out_idx)
                    record = True
                elif a._requires_grad:
                    ea = a
                    record = True
                else:
                    ea = None
                fn = b._grad_fn
                if fn is not None:
                    eb = fn if fn.n_out == 1 else (fn, b._out_idx)
                    record = True
                elif b._requires_grad:
                    eb = b
                    record = True
                else:
                    eb = None
                edges = (ea, eb)
            else:
                edges = []
                for t in inputs:
                    fn = t._grad_fn
                    if fn is not None:
                        edges.append(fn if fn.n_out == 1 else (fn, t._out_idx))
                        record = True
                    elif t._requires_grad:
                        edges.append(t)
                        record = True
                    else:
                        edges.append(None)
            if record:
                op.next_edges = edges
                si = cls.save_inputs
                if si:
                    saved = inputs if si == "all" else tuple([inputs[i] for i in si])
                    op._saved = saved
                    for t in saved:
                        if t._vc is not _ZERO_VC:
                            op._saved_versions = [t._vc[0] for t in saved]
                            break
                    else:
                        op._saved_versions = None
                else:
                    op._saved = None
                if _State.anomaly:
                    op._trace = traceback.format_stack()[:-2]
                if cls.n_out == 1:
                    t = _make(out, op, 0)
                    if cls.save_output:
                        op._out_vc = t._shared_vc()
                    return t
                return tuple([_make(o, op, i) for i, o in enumerate(out)])
        if cls.n_out == 1:
            return _make(out, None, 0)
        return tuple([_make(o, None, i) for i, o in enumerate(out)])

    def inputs_saved(self):
        return self.saved_tensors

    def saved_output(self):
        """The forward's output array (self.y), after checking that the output tensor was not
        modified in place since (see save_output)."""
        vc = self.__dict__.get("_out_vc")
        if vc is not None and vc[0]:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: the output of {self.name()} is at version {vc[0]}; expected "
                "version 0 instead. Hint: replace the in-place op with its out-of-place form, or "
                "clone() the result before modifying it.")
        return self.y


_new = object.__new__
_ZERO_VC = (0,)  # replaced by the tensor module's sentinel in _bind_tensor


def _make(arr, fn, idx):  # replaced by Tensor._make once the tensor module is loaded
    from .._tensor import Tensor
    return Tensor._make(arr, fn, idx)


def _bind_tensor():
    global _make, _ZERO_VC
    from .. import _tensor
    _make = _tensor.Tensor._make
    _ZERO_VC = _tensor._ZERO_VC


class FunctionCtx:
    """The `ctx` handed to a custom Function's forward and backward."""

    def save_for_backward(self, *tensors):
        self._to_save = tensors

    def mark_non_differentiable(self, *tensors):
        self._non_diff = {id(t) for t in tensors}

    def set_materialize_grads(self, value: bool):
        self._materialize = bool(value)

    def mark_dirty(self, *tensors):
        self._dirty = tensors


class _CustomNode(Node, FunctionCtx):
    """Graph vertex of a user-defined `Function`; it is also the ctx object."""

    _materialize = True
    needs_input_grad = None  # per forward argument, set by Function.apply
    _to_save = ()
    _non_diff = frozenset()

    def __init__(self, fn_cls):
        self._fn_cls = fn_cls

    def name(self):
        return self._fn_cls.__name__ + "Backward"

    def backward(self, *grads):
        from .._tensor import Tensor
        if self._materialize:
            grads = tuple(g if g is not None else Tensor._make(
                o_zero(meta), None, 0) for g, meta in zip(grads, self._out_meta))
        res = self._fn_cls.backward(self, *grads)
        if not isinstance(res, tuple):
            res = (res,)
        n = len(self._arg_is_tensor)
        if len(res) < n:
            raise RuntimeError(f"function {self.name()} returned an incorrect number of gradients "
                               f"(expected {n}, got {len(res)})")
        out = []
        for is_t, g in zip(self._arg_is_tensor, res[:n]):
            if is_t:
                out.append(g)
        return tuple(out)


def o_zero(meta):
    xp, shape, dt = meta
    return xp.zeros(shape, dt)


class _FunctionMeta(type):
    pass


class Function(metaclass=_FunctionMeta):
    """User-defined differentiable op, as torch.autograd.Function:

        class Square(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x
            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 2 * x * g

        y = Square.apply(x)

    `forward` runs with grad mode off; `backward` runs with grad mode on only when the caller
    asked for create_graph, so a backward written with Tensor ops is twice differentiable.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("a Function subclass must define backward(ctx, *grads)")

    @classmethod
    def apply(cls, *args, **kwargs):
        from .._tensor import Tensor
        from .._backend import xp_of
        node = _CustomNode(cls)
        is_t = tuple(isinstance(a, Tensor) for a in args)
        tensors = [a for a in args if isinstance(a, Tensor)]
        node.needs_input_grad = tuple(a._requires_grad if isinstance(a, Tensor) else False
                                      for a in args)
        prev = _State.grad_enabled
        _State.grad_enabled = False
        try:
            outs = cls.forward(node, *args, **kwargs)
        finally:
            _State.grad_enabled = prev
        single = not isinstance(outs, tuple)
        outs_t = (outs,) if single else outs
        record = prev and any(t._requires_grad for t in tensors)
        if not record:
            return outs
        node._arg_is_tensor = is_t
        node.next_edges = tuple(_edge(t) for t in tensors)
        node.n_out = len(outs_t)
        node._out_meta = tuple((xp_of(o._data), o._data.shape, o._data.dtype) for o in outs_t)
        saved = tuple(node._to_save)
        node._saved = saved or None
        node._saved_versions = [t._vc[0] for t in saved] if saved else None
        if _State.anomaly:
            node._trace = traceback.format_stack()[:-1]
        wrapped = []
        input_ids = {id(t) for t in tensors}
        for i, o in enumerate(outs_t):
            if not isinstance(o, Tensor):
                wrapped.append(o)
                continue
            if id(o) in node._non_diff:
                wrapped.append(o)
                continue
            if id(o) in input_ids:  # returned an input as is: give back a fresh alias
                o = Tensor._make(o._data, None, 0)
            o._grad_fn, o._out_idx, o._requires_grad = node, i, True
            wrapped.append(o)
        node._to_save = ()
        return wrapped[0] if single else tuple(wrapped)


def once_differentiable(fn):
    """Run a custom backward with grad mode off (it is then not twice differentiable)."""
    import functools

    @functools.wraps(fn)
    def wrapper(ctx, *grads):
        prev = _State.grad_enabled
        _State.grad_enabled = False
        try:
            return fn(ctx, *grads)
        finally:
            _State.grad_enabled = prev
    return wrapper
