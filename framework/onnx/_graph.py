"""The ONNX graph under construction: nodes, initializers and the helpers converters share
(constants, shapes from SymInts, casts, and the ops whose form changed between opsets)."""
from __future__ import annotations

import numpy as np

from ._trace import SymInt, Value

__all__ = ["Graph", "ExportError"]


class ExportError(RuntimeError):
    """A call the exporter cannot express in ONNX (raised by converters with the reason;
    the exporter adds the op and the module)."""


class Graph:
    def __init__(self, onnx, opset: int, value_names: dict):
        self.onnx = onnx
        self.helper = onnx.helper
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self.names = value_names            # Value -> ONNX name
        self.scope = ""                     # "/features/0" while converting that module's call
        self.symbolic = False               # dynamic axes: shapes read at run time
        self._count = 0
        self._consts: dict = {}
        self._shapes: dict = {}
        self._sym: dict = {}
        self._used_names: set = set()

    # ------------------------------------------------------------------ names and nodes
    def fresh(self, base: str) -> str:
        self._count += 1
        name = f"{self.scope}/{base}_{self._count}"
        return name

    def op(self, op_type: str, inputs, outputs: int = 1, **attrs):
        """Append a node; returns its output name (a list when outputs > 1). None inputs are
        omitted optional inputs; None attributes are left out."""
        node_name = self.fresh(op_type)
        outs = [f"{node_name}_output_{i}" for i in range(outputs)]
        ins = ["" if i is None else i for i in inputs]
        while ins and ins[-1] == "":
            ins.pop()
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, ins, outs, name=node_name, **attrs))
        return outs[0] if outputs == 1 else outs

    def reserve(self, names) -> None:
        """Names that constants must not take (the parameters', named when first used)."""
        self._used_names.update(names)

    def initializer(self, array: np.ndarray, name: str) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        self._used_names.add(name)
        return name

    def const(self, array, dtype=None) -> str:
        """A constant (an initializer, shared between equal small constants)."""
        arr = np.asarray(array, dtype=dtype)
        if arr.dtype == np.float64 and dtype is None and not isinstance(array, np.ndarray):
            arr = arr.astype(np.float32)
        key = None
        if arr.size <= 16:
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            hit = self._consts.get(key)
            if hit is not None:
                return hit
        self._count += 1
        name = f"const_{self._count}"
        while name in self._used_names:       # a parameter may be called that
            self._count += 1
            name = f"const_{self._count}"
        self.initializer(arr, name)
        if key is not None:
            self._consts[key] = name
        return name

    def i64(self, values) -> str:
        return self.const(np.asarray([int(v) for v in values], dtype=np.int64))

    def scalar(self, value, dtype) -> str:
        return self.const(np.asarray(value, dtype=dtype))

    # ------------------------------------------------------------------ values
    def name(self, v: Value) -> str:
        return self.names[v]

    def t(self, x, dtype=None) -> str:
        """A Value's name (cast to `dtype` if given), or a Python number as a constant of
        `dtype` (float32 / int64 / bool by its type when dtype is None)."""
        if isinstance(x, Value):
            n = self.names[x]
            return n if dtype is None or np.dtype(dtype) == x.dtype else self.cast(n, dtype)
        if dtype is None:
            dtype = (np.bool_ if isinstance(x, (bool, np.bool_)) else
                     np.int64 if isinstance(x, (int, np.integer)) else np.float32)
        return self.scalar(x, dtype)

    def cast(self, name: str, dtype) -> str:
        return self.op("Cast", [name], to=self.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))

    # ------------------------------------------------------------------ shapes
    def shape_of(self, name: str) -> str:
        s = self._shapes.get(name)
        if s is None:
            s = self._shapes[name] = self.op("Shape", [name])
        return s

    def sym(self, expr) -> str:
        """A 1-element int64 tensor computing a SymInt expression at run time."""
        if not isinstance(expr, tuple):
            return self.i64([expr])
        key = _expr_key(expr)
        hit = self._sym.get(key)
        if hit is not None:
            return hit
        kind = expr[0]
        if kind == "dim":
            v, axis = expr[1], expr[2]
            out = self.op("Gather", [self.shape_of(self.names[v]), self.i64([axis])], axis=0)
        elif kind == "neg":
            out = self.op("Neg", [self.sym(expr[1])])
        else:
            op = {"add": "Add", "sub": "Sub", "mul": "Mul", "floordiv": "Div"}[kind]
            out = self.op(op, [self.sym(expr[1]), self.sym(expr[2])])
        self._sym[key] = out
        return out

    def shape_vector(self, dims) -> str:
        """A 1-D int64 shape from ints and SymInts (a constant when there is no SymInt)."""
        dims = list(dims)
        if not any(isinstance(d, SymInt) for d in dims):
            return self.i64(dims)
        parts, run = [], []
        for d in dims:
            if isinstance(d, SymInt):
                if run:
                    parts.append(self.i64(run))
                    run = []
                parts.append(self.sym(d.expr))
            else:
                run.append(int(d))
        if run:
            parts.append(self.i64(run))
        return parts[0] if len(parts) == 1 else self.op("Concat", parts, axis=0)

    def int_input(self, value) -> str:
        """A 1-element int64 tensor holding an int or SymInt argument."""
        return self.sym(value.expr) if isinstance(value, SymInt) else self.i64([value])

    # ------------------------------------------------------------------ opset-dependent ops
    def reduce(self, op: str, x: str, axes, keepdims: bool) -> str:
        """Reduce* over `axes` (None: all). The axes became an input in opset 18 (13 for
        ReduceSum)."""
        as_input = self.opset >= (13 if op == "ReduceSum" else 18)
        k = int(bool(keepdims))
        if axes is None:
            return self.op(op, [x], keepdims=k)
        axes = [int(a) for a in axes]
        if as_input:
            return self.op(op, [x, self.i64(axes)], keepdims=k)
        return self.op(op, [x], axes=axes, keepdims=k)

    def unsqueeze(self, x: str, axes) -> str:
        return self.op("Unsqueeze", [x, self.i64(axes)])

    def squeeze(self, x: str, axes=None) -> str:
        if axes is None:
            return self.op("Squeeze", [x])
        return self.op("Squeeze", [x, self.i64(axes)])

    def split(self, x: str, sizes, axis: int) -> list:
        out = self.op("Split", [x, self.i64(sizes)], outputs=len(sizes), axis=axis)
        return out if isinstance(out, list) else [out]

    def slice(self, x: str, starts, ends, axes, steps=None) -> str:
        ins = [x, self.shape_vector(starts), self.shape_vector(ends), self.i64(axes)]
        if steps is not None:
            ins.append(self.i64(steps))
        return self.op("Slice", ins)


def _expr_key(expr):
    if isinstance(expr, tuple):
        if expr[0] == "dim":
            return ("dim", id(expr[1]), expr[2])
        return (expr[0],) + tuple(_expr_key(e) for e in expr[1:])
    return expr
