"""Recording one forward pass as a list of framework-level op calls, for the ONNX exporter.

While a `Tracer` is active, every public op is reached through a recording wrapper: the
Tensor methods and operators, the functions of `framework` and `framework.nn.functional`,
and any module global (in the framework's nn modules and in the modules that define the
model's classes) or module attribute (`self.activation = F.gelu`) bound to one of those
functions. `Module.__call__` is wrapped too, to know which module made each call (the
recurrent layers are recorded whole). `Op.apply`, which every op's computation passes
through, marks what was computed from the inputs outside a recorded call (a function held
where no wrapper reaches it), so that using it is an error rather than a silent constant;
custom `autograd.Function`s are recorded as calls of their own. Everything is put back when
the tracer exits, so nothing is paid outside an export (no framework file has a hook); the
wrappers also ignore other threads.

A call is recorded with its arguments as given (tensors replaced by `Value`s), so a
converter sees PyTorch's signature and semantics. Only the outermost op is recorded: what an
op calls internally runs untouched. Ops whose output never reaches the model's outputs (a
validation's `int(x.max())`, say) are dropped later, so they need no conversion.

Dynamic axes: with `symbolic=True`, `Tensor.shape` and `Tensor.size()` of a value that
depends on the inputs return `SymInt`s, ints that remember which value's dimension they are
(and `+ - * //` of them), so that `x.reshape(x.shape[0], -1)` or `fw.ones(*ids.shape)`
export with the size read from the input at run time instead of the example's size.
"""
from __future__ import annotations

import inspect
import sys
import threading
from typing import Any

import numpy as np

from .._tensor import Size, Tensor

__all__ = ["SymInt", "Value", "Call", "Tracer", "current"]

_ACTIVE: "Tracer | None" = None


def current() -> "Tracer | None":
    """The tracer of the export in progress (None outside an export)."""
    return _ACTIVE


# ================================================================================= SymInt
def _expr(x):
    return x.expr if isinstance(x, SymInt) else int(x)


class SymInt(int):
    """An int read from a traced tensor's shape, carrying where it came from: `expr` is
    ("dim", value, axis), or (op, expr, expr) for + - * // of such ints."""

    expr: tuple

    def __new__(cls, value: int, expr):
        self = int.__new__(cls, value)
        self.expr = expr
        return self

    def _bin(self, other, op, fn, swap=False):
        if not isinstance(other, int) or isinstance(other, bool):
            return fn(int(self), other) if not swap else fn(other, int(self))
        a, b = (other, self) if swap else (self, other)
        return SymInt(fn(int(a), int(b)), (op, _expr(a), _expr(b)))

    def __add__(self, other):
        return self._bin(other, "add", int.__add__)

    def __radd__(self, other):
        return self._bin(other, "add", int.__add__, swap=True)

    def __sub__(self, other):
        return self._bin(other, "sub", int.__sub__)

    def __rsub__(self, other):
        return self._bin(other, "sub", int.__sub__, swap=True)

    def __mul__(self, other):
        return self._bin(other, "mul", int.__mul__)

    def __rmul__(self, other):
        return self._bin(other, "mul", int.__mul__, swap=True)

    def __floordiv__(self, other):
        return self._bin(other, "floordiv", int.__floordiv__)

    def __rfloordiv__(self, other):
        return self._bin(other, "floordiv", int.__floordiv__, swap=True)

    def __neg__(self):
        return SymInt(-int(self), ("neg", self.expr))

    def __repr__(self):
        return int.__repr__(self)

    __str__ = __repr__


def expr_values(expr, out: list) -> None:
    """The Values a SymInt expression reads the shape of (appended to `out`)."""
    if isinstance(expr, tuple):
        if expr[0] == "dim":
            out.append(expr[1])
        else:
            for e in expr[1:]:
                expr_values(e, out)


# ================================================================================= records
class Value:
    """One tensor value of the trace. kind: "input", "param" (a parameter or buffer, `name`
    its state-dict key), "constant" (a tensor made outside the trace, or made by a
    constant op), "output" (of a recorded call) or "escaped" (computed from the inputs by
    something the tracer did not see). `const`: independent of the graph inputs."""

    __slots__ = ("tensor", "shape", "dtype", "kind", "name", "const", "producer", "version",
                 "frozen", "index", "where")

    def __init__(self, tensor: Tensor, kind: str, index: int, *, const: bool,
                 producer: "Call | None" = None, name: str | None = None, where: str = ""):
        self.tensor = tensor
        self.shape = tuple(int(s) for s in tensor._data.shape)
        self.dtype = np.dtype(tensor._data.dtype)
        self.kind = kind
        self.name = name
        self.const = const
        self.producer = producer
        self.version = tensor._vc[0]
        self.frozen = None          # a host copy taken before the tensor was changed in place
        self.index = index
        self.where = where

    def host(self) -> np.ndarray:
        """The value as a host NumPy array (as it was when the trace made it)."""
        if self.frozen is not None:
            return self.frozen
        return np.array(self.tensor.numpy(force=True), copy=True)

    def __repr__(self):
        return f"Value(%{self.index} {self.kind} {self.dtype}{list(self.shape)})"


class Call:
    """One recorded op call: `op` (the public name), the function whose signature binds
    `args`/`kwargs` (tensors in them replaced by Values), the input and output Values, the
    module that made it (`scope`: dotted path, `module_type`), and `error` when the call
    cannot be exported whatever converter it has."""

    __slots__ = ("op", "sig_fn", "args", "kwargs", "inputs", "outputs", "scope",
                 "module_type", "symbolic", "sym_values", "error", "index", "bound_cache")

    def __init__(self, op: str, sig_fn, args, kwargs, index: int):
        self.op = op
        self.sig_fn = sig_fn
        self.args = args
        self.kwargs = kwargs
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.scope = ""
        self.module_type = ""
        self.symbolic = False
        self.sym_values: list[Value] = []
        self.error: str | None = None
        self.index = index
        self.bound_cache = None

    def where(self) -> str:
        if not self.scope and not self.module_type:
            return "the model's top level"
        if not self.scope:
            return f"the top-level module ({self.module_type})"
        return f"module '{self.scope}' ({self.module_type})"

    def bound(self) -> dict:
        """The call's arguments by parameter name, defaults filled in."""
        if self.bound_cache is None:
            if isinstance(self.sig_fn, dict):      # operators: bound when recorded
                self.bound_cache = dict(self.sig_fn)
            else:
                sig = _signature(self.sig_fn)
                b = sig.bind(*self.args, **self.kwargs)
                b.apply_defaults()
                self.bound_cache = dict(b.arguments)
        return self.bound_cache


_SIGS: dict = {}


def _signature(fn) -> inspect.Signature:
    sig = _SIGS.get(fn)
    if sig is None:
        sig = _SIGS[fn] = inspect.signature(fn)
    return sig


# ============================================================================ the tracer
# Ops that draw random numbers: never folded into constants.
RANDOM_OPS = frozenset({"rand", "randn", "randint", "rand_like", "randn_like", "randint_like",
                        "bernoulli", "multinomial", "normal", "randperm", "normal_", "uniform_",
                        "bernoulli_", "random_", "exponential_", "geometric_", "cauchy_",
                        "log_normal_", "rrelu", "gumbel_softmax"})

# Tensor methods that return a tensor (or tensors) besides the registered ops.
_EXTRA_METHODS = ("to", "float", "double", "half", "bfloat16", "int", "long", "short", "char",
                  "byte", "bool", "type", "type_as", "detach", "cpu", "cuda", "new_zeros",
                  "new_ones", "new_full", "new_empty", "new_tensor")
# In-place methods that are bookkeeping, not ops on the values.
_NOT_OPS = frozenset({"requires_grad_", "share_memory_", "retain_grad", "detach_",
                      "pin_memory", "register_hook"})
_CREATION = ("zeros", "ones", "full", "empty", "arange", "zeros_like", "ones_like",
             "full_like", "empty_like", "tensor", "as_tensor", "asarray", "scalar_tensor",
             "eye", "linspace", "logspace", "rand", "randn", "randint", "rand_like",
             "randn_like", "randint_like", "bernoulli", "multinomial", "normal", "randperm",
             "tril_indices", "triu_indices", "from_numpy")

# operator -> (op name, whether the operands are swapped); a name ending in _ is in place
_DUNDERS = {
    "__add__": ("add", False), "__radd__": ("add", True), "__iadd__": ("add_", False),
    "__sub__": ("sub", False), "__rsub__": ("sub", True), "__isub__": ("sub_", False),
    "__mul__": ("mul", False), "__rmul__": ("mul", True), "__imul__": ("mul_", False),
    "__truediv__": ("div", False), "__rtruediv__": ("div", True),
    "__itruediv__": ("div_", False),
    "__floordiv__": ("floor_divide", False), "__rfloordiv__": ("floor_divide", True),
    "__mod__": ("remainder", False), "__rmod__": ("remainder", True),
    "__pow__": ("pow", False), "__rpow__": ("pow", True),
    "__matmul__": ("matmul", False), "__rmatmul__": ("matmul", True),
    "__and__": ("bitwise_and", False), "__rand__": ("bitwise_and", True),
    "__or__": ("bitwise_or", False), "__ror__": ("bitwise_or", True),
    "__xor__": ("bitwise_xor", False), "__rxor__": ("bitwise_xor", True),
    "__eq__": ("eq", False), "__ne__": ("ne", False), "__lt__": ("lt", False),
    "__le__": ("le", False), "__gt__": ("gt", False), "__ge__": ("ge", False),
    "__lshift__": ("bitwise_left_shift", False), "__rshift__": ("bitwise_right_shift", False),
}
_UNARY_DUNDERS = {"__neg__": "neg", "__abs__": "abs", "__invert__": "invert"}


class Tracer:
    """Context manager: installs the recording wrappers for one forward pass."""

    def __init__(self, model, *, symbolic: bool, param_names: dict, module_names: dict,
                 input_leaves: set):
        self.model = model
        self.symbolic = symbolic
        self.param_names = param_names      # id(tensor) -> state-dict name
        self.module_names = module_names    # id(module) -> dotted path
        self.input_leaves = input_leaves    # ids of the leaves behind the traced inputs
        self.thread = threading.get_ident()
        self.depth = 0
        self.scope: list = []               # (path, class name) of the modules being run
        self.values: list[Value] = []
        self.by_tensor: dict[int, Value] = {}
        self.calls: list[Call] = []
        self._patches: list = []
        # ids of tensors computed from the inputs by ops run outside any recorded call (a
        # function held from before the export, or a framework-internal import): using one
        # in the graph is an error, not a silent constant
        self.tainted: dict[int, Tensor] = {}

    # ------------------------------------------------------------------ values
    def _new(self, t: Tensor, kind: str, **kw) -> Value:
        v = Value(t, kind, len(self.values), **kw)
        self.values.append(v)
        self.by_tensor[id(t)] = v
        return v

    def add_input(self, t: Tensor, name: str) -> Value:
        return self._new(t, "input", const=False, name=name)

    def _where(self) -> str:
        if not self.scope:
            return "the model's top level"
        path, cls = self.scope[-1]
        return f"module '{path}' ({cls})" if path else f"the top-level module ({cls})"

    def value_of(self, t: Tensor) -> Value:
        """The Value a tensor holds now: known, a parameter, or first seen (a constant, or
        'escaped' when it was computed from the inputs out of the tracer's sight)."""
        v = self.by_tensor.get(id(t))
        if v is not None:
            if t._vc[0] != v.version and v.kind != "param":
                # changed in place by something not recorded (through a view, or by an op
                # the tracer did not see): the recorded value is stale
                v = self._new(t, "escaped", const=False, where=self._where())
            return v
        name = self.param_names.get(id(t))
        if name is not None:
            return self._new(t, "param", const=True, name=name)
        if id(t) in self.tainted or (t._grad_fn is not None and self._reaches_inputs(t)):
            return self._new(t, "escaped", const=False, where=self._where())
        return self._new(t, "constant", const=True)

    def _is_tainted(self, t) -> bool:
        if not isinstance(t, Tensor):
            return False
        v = self.by_tensor.get(id(t))
        return (v is not None and not v.const) or id(t) in self.tainted

    def _reaches_inputs(self, t: Tensor) -> bool:
        stack, seen = [t._grad_fn], set()
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            for e in getattr(node, "next_edges", None) or ():
                if e is None:
                    continue
                if e.__class__ is tuple:
                    e = e[0]
                if getattr(e, "_is_node", False):
                    stack.append(e)
                elif id(e) in self.input_leaves:
                    return True
        return False

    def _refs(self, obj, call: Call):
        """`obj` with every Tensor replaced by its Value (recorded in call.inputs) and every
        SymInt noted (call.symbolic)."""
        if isinstance(obj, Tensor):
            v = self.value_of(obj)
            call.inputs.append(v)
            return v
        if isinstance(obj, SymInt):
            call.symbolic = True
            expr_values(obj.expr, call.sym_values)
            return obj
        if isinstance(obj, (list, tuple)):
            items = [self._refs(o, call) for o in obj]
            if isinstance(obj, Size):
                return tuple(items)
            if type(obj) in (list, tuple):
                return type(obj)(items)
            try:
                return type(obj)(*items)     # a NamedTuple
            except TypeError:
                return tuple(items)
        if isinstance(obj, dict):
            return {k: self._refs(o, call) for k, o in obj.items()}
        if isinstance(obj, slice):
            return slice(self._refs(obj.start, call), self._refs(obj.stop, call),
                         self._refs(obj.step, call))
        return obj

    # ------------------------------------------------------------------ recording
    def record(self, op: str, fn, sig_fn, inplace: bool, args, kwargs):
        call = Call(op, sig_fn, (), {}, len(self.calls))
        if isinstance(sig_fn, dict):          # an operator: its arguments come named
            call.sig_fn = self._refs(sig_fn, call)
        else:
            call.args = self._refs(args, call)
            call.kwargs = self._refs(kwargs, call)
        if self.scope:
            call.scope, call.module_type = self.scope[-1]
        target = args[0] if inplace and args and isinstance(args[0], Tensor) else None
        if target is not None:
            # the op overwrites the target: keep its old value for constant folding. Other
            # tensors sharing its memory (views) see their version change, so a later use
            # of their recorded value is caught as stale (see value_of).
            v = self.by_tensor.get(id(target))
            if v is not None and v.const and v.frozen is None:
                v.frozen = np.array(target.numpy(force=True), copy=True)
        self.depth += 1
        try:
            out = fn(*args, **kwargs)
        finally:
            self.depth -= 1
        outs: list = []
        _tensors(out, outs)
        const = (not call.symbolic and op not in RANDOM_OPS
                 and all(v.const for v in call.inputs))
        call.outputs = [self._new(t, "output", const=const, producer=call) for t in outs]
        self.calls.append(call)
        return out

    # ------------------------------------------------------------------ patching
    def _patch(self, owner, name: str, new) -> None:
        if isinstance(owner, type):      # the raw attribute: a classmethod stays one
            own = name in vars(owner)
            old = vars(owner)[name] if own else None
        else:
            own, old = True, getattr(owner, name)
        self._patches.append((owner, name, old, own))
        setattr(owner, name, new)

    def _wrapper(self, op: str, fn, sig_fn=None, inplace: bool = False):
        tracer = self
        sig = sig_fn or fn

        def traced(*args, **kwargs):
            if tracer.depth or threading.get_ident() != tracer.thread:
                return fn(*args, **kwargs)
            return tracer.record(op, fn, sig, inplace, args, kwargs)
        traced.__name__ = getattr(fn, "__name__", op)
        traced.__doc__ = getattr(fn, "__doc__", None)
        traced.__wrapped__ = fn
        return traced

    def _operator(self, dunder: str, fn):
        tracer = self
        if dunder in _UNARY_DUNDERS:
            op = _UNARY_DUNDERS[dunder]

            def traced(self_, *rest):
                if tracer.depth or threading.get_ident() != tracer.thread:
                    return fn(self_, *rest)
                return tracer.record(op, fn, {"input": self_}, False, (self_, *rest), {})
        elif dunder in ("__getitem__", "__setitem__"):
            op = dunder.strip("_")

            def traced(self_, *rest):
                if tracer.depth or threading.get_ident() != tracer.thread:
                    return fn(self_, *rest)
                names = ("input", "index", "value")
                sig = dict(zip(names, (self_, *rest)))
                if op == "setitem":
                    tracer.record(op, _setitem_returning(fn), sig, True, (self_, *rest), {})
                    return None
                return tracer.record(op, fn, sig, False, (self_, *rest), {})
        else:
            op, swap = _DUNDERS[dunder]
            inplace = op.endswith("_")

            def traced(self_, other):
                if tracer.depth or threading.get_ident() != tracer.thread:
                    return fn(self_, other)
                a, b = (other, self_) if swap else (self_, other)
                return tracer.record(op, fn, {"input": a, "other": b}, inplace,
                                     (self_, other), {})
        traced.__name__ = dunder
        return traced

    def _shape_property(self):
        tracer = self

        def shape(t):
            s = t._data.shape
            if tracer.depth or threading.get_ident() != tracer.thread:
                return Size(s)
            v = tracer.by_tensor.get(id(t))
            if v is None or v.const:
                return Size(s)
            return Size(SymInt(n, ("dim", v, i)) for i, n in enumerate(s))
        return property(shape)

    def _size_method(self):
        def size(t, dim=None):
            s = t.shape
            return s if dim is None else s[dim]
        return size

    def __enter__(self):
        global _ACTIVE
        if _ACTIVE is not None:
            raise RuntimeError("framework.onnx.export: an export is already in progress")
        from ..autograd.function import Function, Op
        from ..nn.modules.module import Module
        from ..ops.registry import OPS
        import framework
        import framework.nn.functional as F

        wrappers: dict[int, Any] = {}       # id(original function) -> its wrapper
        originals: dict[int, Any] = {}

        def wrap(name: str, fn):
            w = wrappers.get(id(fn))
            if w is None:
                w = wrappers[id(fn)] = self._wrapper(name, fn)
                originals[id(fn)] = fn
            return w
        try:
            # the functions of framework, framework.nn.functional and the creation ops
            op_names = {n for n, e in OPS.items() if e["function"] and "." not in n}
            for name in sorted(op_names | set(_CREATION)):
                fn = getattr(framework, name, None)
                if inspect.isfunction(fn):
                    self._patch(framework, name, wrap(name, fn))
            for name in dir(F):
                fn = getattr(F, name)
                if not name.startswith("_") and inspect.isfunction(fn):
                    self._patch(F, name, wrap(name, fn))
            # Tensor methods: the registered ops, conversions, in-place forms, operators
            methods = {e["method"] for e in OPS.values() if e["method"]} | set(_EXTRA_METHODS)
            for name in sorted(vars(Tensor)):
                fn = vars(Tensor)[name]
                if not inspect.isfunction(fn):
                    continue
                if name in _DUNDERS or name in _UNARY_DUNDERS or \
                        name in ("__getitem__", "__setitem__"):
                    self._patch(Tensor, name, self._operator(name, fn))
                elif name in methods:
                    self._patch(Tensor, name, self._wrapper(name, fn))
                elif name.endswith("_") and not name.startswith("_") and name not in _NOT_OPS:
                    base = getattr(Tensor, name[:-1], None)
                    sig = base if inspect.isfunction(base) else fn
                    self._patch(Tensor, name, self._wrapper(name, fn, sig, inplace=True))
            if self.symbolic:
                self._patch(Tensor, "shape", self._shape_property())
                self._patch(Tensor, "size", self._size_method())
            # module globals bound to an op: the framework's nn modules and the model's own
            mod_names = {m.__module__ for m in _model_classes(self.model)}
            mod_names |= {n for n in sys.modules if n.startswith("framework.nn.")}
            for mod_name in sorted(mod_names):
                mod = sys.modules.get(mod_name)
                if mod is None or mod is F or mod is framework:
                    continue
                for name, obj in list(vars(mod).items()):
                    if id(obj) in wrappers and originals[id(obj)] is obj:
                        self._patch(mod, name, wrappers[id(obj)])
            # functions held as module attributes (self.activation = F.gelu)
            for m in self.model.modules():
                for name, obj in list(vars(m).items()):
                    if callable(obj) and id(obj) in wrappers and originals[id(obj)] is obj:
                        self._patches.append((m.__dict__, name, obj, "item"))
                        m.__dict__[name] = wrappers[id(obj)]
            self._patch(Module, "__call__", self._module_call(Module.__call__))
            self._patch(Op, "apply", self._op_apply(vars(Op)["apply"].__func__))
            self._patch(Function, "apply", self._function_apply(vars(Function)["apply"].__func__))
        except BaseException:
            self._restore()
            raise
        _ACTIVE = self
        return self

    def _module_call(self, original):
        """Module.__call__ keeps the stack of modules running (for names and errors). The
        recurrent layers run their steps with framework internals: each call of one is
        recorded as one op named after its class (which has no conversion)."""
        tracer = self
        from ..nn.modules.rnn import RNNBase, RNNCellBase
        atomic = (RNNBase, RNNCellBase)

        def __call__(module, *args, **kwargs):
            if tracer.depth or threading.get_ident() != tracer.thread:
                return original(module, *args, **kwargs)
            tracer.scope.append((tracer.module_names.get(id(module), ""),
                                 type(module).__name__))
            try:
                if isinstance(module, atomic):
                    return tracer.record(type(module).__name__,
                                         lambda *a, **k: original(module, *a, **k),
                                         module.forward, False, args, kwargs)
                return original(module, *args, **kwargs)
            finally:
                tracer.scope.pop()
        return __call__

    def _op_apply(self, original):
        """Op.apply (every op's autograd node) notes outputs computed from the inputs
        outside a recorded call, so that using them fails clearly."""
        tracer = self

        def apply(cls, *inputs, **params):
            out = original(cls, *inputs, **params)
            if not tracer.depth and threading.get_ident() == tracer.thread and \
                    any(tracer._is_tainted(t) for t in inputs):
                for t in (out if isinstance(out, tuple) else (out,)):
                    tracer.tainted[id(t)] = t
            return out
        return classmethod(apply)

    def _function_apply(self, original):
        """A custom autograd.Function is recorded as one call (named after its class),
        which has no conversion."""
        tracer = self

        def apply(cls, *args, **kwargs):
            if tracer.depth or threading.get_ident() != tracer.thread:
                return original(cls, *args, **kwargs)
            return tracer.record(f"{cls.__name__}.apply (a custom autograd.Function)",
                                 lambda *a, **k: original(cls, *a, **k), original, False,
                                 args, kwargs)
        return classmethod(apply)

    def _restore(self) -> None:
        for owner, name, old, own in reversed(self._patches):
            if own == "item":
                owner[name] = old
            elif own:
                setattr(owner, name, old)
            else:
                delattr(owner, name)
        self._patches.clear()

    def __exit__(self, *exc):
        global _ACTIVE
        _ACTIVE = None
        self._restore()
        return False


def _setitem_returning(fn):
    def setitem(t, index, value):
        fn(t, index, value)
        return t
    return setitem


def _tensors(obj, out: list) -> None:
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _tensors(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _tensors(o, out)


def _model_classes(model) -> set:
    classes = set()
    for m in model.modules():
        for cls in type(m).__mro__:
            if cls is not object:
                classes.add(cls)
    return classes
