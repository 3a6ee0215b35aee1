"""Converters from recorded framework calls to ONNX nodes.

A converter gets the graph, the call's arguments bound by name to its PyTorch signature
(tensors as `Value`s: traced dtype and shape) and the call; it appends nodes and returns the
output name (a list for several outputs). It raises `ExportError` with the reason for an
argument combination ONNX cannot express. Names are the framework's op names: a Tensor
method, a `framework` function and an `nn.functional` function of one name share one
converter; `name_` (in place) uses the converter of `name`.
"""
from __future__ import annotations

import math

import numpy as np

from ._graph import ExportError, Graph
from ._trace import Call, SymInt, Value

__all__ = ["CONVERTERS", "converter_for"]

CONVERTERS: dict = {}
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def converter(*names):
    def deco(fn):
        for n in names:
            CONVERTERS[n] = fn
        return fn
    return deco


def converter_for(op: str):
    fn = CONVERTERS.get(op)
    if fn is None and op.endswith("_") and not op.startswith("_"):
        fn = CONVERTERS.get(op[:-1])
    return fn


# ================================================================================= helpers
def _opname(call: Call) -> str:
    """The op's name, in-place forms (add_) named as their op (add)."""
    op = call.op
    return op[:-1] if op.endswith("_") and op[:-1] in CONVERTERS else op


def _x(a: dict):
    """The tensor argument an op works on (named input, self or t by the signatures)."""
    for k in ("input", "self", "t", "tensor"):
        if k in a:
            return a[k]
    raise ExportError("no input tensor")


def _out(call: Call, i: int = 0) -> Value:
    return call.outputs[i]


def _axis(d, rank: int) -> int:
    d = int(d)
    return d + rank if d < 0 else d


def _axes(dims, rank: int):
    if dims is None:
        return None
    if isinstance(dims, (list, tuple)):
        return [_axis(d, rank) for d in dims]
    return [_axis(dims, rank)]


def _sizes(args) -> list:
    """A `*size` argument: (2, 3), ((2, 3),) or ([2, 3],) -> [2, 3]."""
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        return list(args[0])
    return list(args)


def _dims(g: Graph, v: Value) -> list:
    """v's dimensions: SymInts reading them at run time where v depends on dynamic
    inputs, else the traced ints."""
    if g.symbolic and not v.const:
        return [SymInt(n, ("dim", v, i)) for i, n in enumerate(v.shape)]
    return list(v.shape)


def _is_float(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def _ntuple(v, n: int) -> list:
    if isinstance(v, (list, tuple)):
        if len(v) == 1 and n > 1:
            return [int(v[0])] * n
        return [int(x) for x in v]
    return [int(v)] * n


def _value_tensor(g: Graph, value, dtype):
    return g.onnx.numpy_helper.from_array(np.asarray([value], dtype=dtype), "value")


def _batched(g: Graph, x: str, rank: int, want: int):
    """An unbatched input (rank want-1) gets a leading batch axis; returns (name, added)."""
    if rank == want - 1:
        return g.unsqueeze(x, [0]), True
    if rank != want:
        raise ExportError(f"expected a {want}-D (or {want - 1}-D unbatched) input, got "
                          f"{rank}-D")
    return x, False


def _unbatch(g: Graph, y: str, added: bool) -> str:
    return g.squeeze(y, [0]) if added else y


# ============================================================================= identities
@converter("contiguous", "clone", "detach", "cpu", "cuda", "resolve_conj", "resolve_neg")
def _identity(g, a, call):
    return g.op("Identity", [g.t(_x(a))])


@converter("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
           "feature_alpha_dropout")
def _dropout(g, a, call):
    if a.get("training", False) and a.get("p", 0.5) > 0:
        raise ExportError("dropout in training mode (export runs the model in eval mode; a "
                          "functional call must pass training=self.training)")
    return g.op("Identity", [g.t(_x(a))])


@converter("to", "float", "double", "half", "int", "long", "short", "char", "byte", "bool",
           "type", "type_as")
def _cast(g, a, call):
    x, out = _x(a), _out(call)
    if _opname(call) == "type" and a.get("dtype") is None:
        raise ExportError("Tensor.type() without a dtype returns a string")
    if out.dtype == x.dtype:
        return g.op("Identity", [g.t(x)])
    return g.cast(g.t(x), out.dtype)


# ============================================================================= elementwise
_UNARY = {"neg": "Neg", "abs": "Abs", "exp": "Exp", "log": "Log", "sqrt": "Sqrt",
          "reciprocal": "Reciprocal", "sin": "Sin", "cos": "Cos", "tan": "Tan", "asin": "Asin",
          "acos": "Acos", "atan": "Atan", "sinh": "Sinh", "cosh": "Cosh", "tanh": "Tanh",
          "sigmoid": "Sigmoid", "erf": "Erf", "sign": "Sign", "softsign": "Softsign",
          "floor": "Floor", "ceil": "Ceil", "isnan": "IsNaN", "isinf": "IsInf",
          "relu": "Relu", "logical_not": "Not"}


@converter(*_UNARY)
def _unary(g, a, call):
    x, out = _x(a), _out(call)
    if _opname(call) in ("floor", "ceil") and not _is_float(x.dtype):
        return g.op("Identity", [g.t(x)])
    if _opname(call) == "logical_not":
        return g.op("Not", [g.t(x, np.bool_)])
    dt = None if out.dtype == np.bool_ else out.dtype
    return g.op(_UNARY[_opname(call)], [g.t(x, dt)])


@converter("rsqrt")
def _rsqrt(g, a, call):
    return g.op("Reciprocal", [g.op("Sqrt", [g.t(_x(a), _out(call).dtype)])])


@converter("square")
def _square(g, a, call):
    x = g.t(_x(a), _out(call).dtype)
    return g.op("Mul", [x, x])


@converter("log1p", "expm1", "log2", "log10", "exp2")
def _log_exp(g, a, call):
    dt = _out(call).dtype
    x = g.t(_x(a), dt)
    if _opname(call) == "log1p":
        return g.op("Log", [g.op("Add", [x, g.scalar(1, dt)])])
    if _opname(call) == "expm1":
        return g.op("Sub", [g.op("Exp", [x]), g.scalar(1, dt)])
    if _opname(call) == "exp2":
        return g.op("Pow", [g.scalar(2, dt), x])
    base = 2.0 if _opname(call) == "log2" else 10.0
    return g.op("Div", [g.op("Log", [x]), g.scalar(math.log(base), dt)])


@converter("round")
def _round(g, a, call):
    x = _x(a)
    if not _is_float(x.dtype):
        return g.op("Identity", [g.t(x)])
    d = a.get("decimals", 0) or 0
    if not d:
        return g.op("Round", [g.t(x)])
    s = g.scalar(10.0 ** d, x.dtype)
    return g.op("Div", [g.op("Round", [g.op("Mul", [g.t(x), s])]), s])


@converter("invert", "bitwise_not")
def _invert(g, a, call):
    x = _x(a)
    if x.dtype == np.bool_:
        return g.op("Not", [g.t(x)])
    if g.opset < 18:
        raise ExportError("bitwise not of integers needs opset 18 or later")
    return g.op("BitwiseNot", [g.t(x)])


_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "maximum": "Max", "minimum": "Min",
           "fmax": "Max", "fmin": "Min"}


@converter("add", "sub", "mul", "maximum", "minimum", "subtract", "multiply")
def _binary(g, a, call):
    op = {"subtract": "sub", "multiply": "mul"}.get(_opname(call), _opname(call))
    dt = _out(call).dtype
    x, y = _x(a), a["other"]
    alpha = a.get("alpha", 1)
    if dt == np.bool_ and op in ("add", "mul"):      # bool + bool is or, bool * bool is and
        return g.op("Or" if op == "add" else "And", [g.t(x, np.bool_), g.t(y, np.bool_)])
    yn = g.t(y, dt)
    if alpha is not None and alpha != 1:
        yn = g.op("Mul", [yn, g.scalar(alpha, dt)])
    return g.op(_BINARY[op], [g.t(x, dt), yn])


@converter("div", "true_divide", "divide", "floor_divide")
def _div(g, a, call):
    dt = _out(call).dtype
    x, y = _x(a), a["other"]
    mode = "floor" if _opname(call) == "floor_divide" else a.get("rounding_mode")
    if mode is None:
        return g.op("Div", [g.t(x, dt), g.t(y, dt)])
    if mode not in ("floor", "trunc"):
        raise ExportError(f"rounding_mode={mode!r}")
    # integers are divided in float64 (exact below 2**53), rounded, then cast back
    work = dt if _is_float(dt) else np.dtype(np.float64)
    q = g.op("Div", [g.t(x, work), g.t(y, work)])
    q = g.op("Floor", [q]) if mode == "floor" else _trunc(g, q)
    return q if work == dt else g.cast(q, dt)


def _trunc(g, q: str) -> str:
    # trunc(q) = sign(q) * floor(|q|)
    return g.op("Mul", [g.op("Sign", [q]), g.op("Floor", [g.op("Abs", [q])])])


@converter("remainder", "fmod")
def _remainder(g, a, call):
    dt = _out(call).dtype
    x, y = g.t(_x(a), dt), g.t(a["other"], dt)
    if _opname(call) == "fmod":
        return g.op("Mod", [x, y], fmod=1)
    if not _is_float(dt):
        return g.op("Mod", [x, y], fmod=0)
    # Python's remainder: x - floor(x / y) * y (the sign of the divisor)
    return g.op("Sub", [x, g.op("Mul", [g.op("Floor", [g.op("Div", [x, y])]), y])])


@converter("pow", "float_power")
def _pow(g, a, call):
    dt = _out(call).dtype
    base = _x(a)
    exp = a.get("exponent", a.get("other"))
    if not isinstance(exp, Value) and exp == 2:
        b = g.t(base, dt)
        return g.op("Mul", [b, b])
    return g.op("Pow", [g.t(base, dt), g.t(exp, dt)])


def _compare_dtype(*args):
    tensors = [v.dtype for v in args if isinstance(v, Value)]
    floats = [d for d in tensors if _is_float(d)]
    if floats:
        return max(floats, key=lambda d: d.itemsize)
    if any(isinstance(v, float) for v in args):
        return np.dtype(np.float32)
    ints = [d for d in tensors if d != np.bool_]
    if ints:
        return max(ints, key=lambda d: d.itemsize)
    if any(isinstance(v, int) and not isinstance(v, bool) for v in args):
        return np.dtype(np.int64)
    return np.dtype(np.bool_)


_COMPARE = {"eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
            "ge": "GreaterOrEqual", "less": "Less", "less_equal": "LessOrEqual",
            "greater": "Greater", "greater_equal": "GreaterOrEqual"}


@converter("eq", "ne", "lt", "le", "gt", "ge", "not_equal", "less", "less_equal", "greater",
           "greater_equal")
def _compare(g, a, call):
    x, y = _x(a), a["other"]
    dt = _compare_dtype(x, y)
    op = "ne" if _opname(call) == "not_equal" else _opname(call)
    if op == "ne":
        return g.op("Not", [g.op("Equal", [g.t(x, dt), g.t(y, dt)])])
    return g.op(_COMPARE[op], [g.t(x, dt), g.t(y, dt)])


@converter("logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
           "bitwise_xor")
def _logical(g, a, call):
    x, y = _x(a), a["other"]
    kind = _opname(call).split("_")[1]
    if _opname(call).startswith("logical") or _out(call).dtype == np.bool_:
        op = {"and": "And", "or": "Or", "xor": "Xor"}[kind]
        return g.op(op, [g.t(x, np.bool_), g.t(y, np.bool_)])
    if g.opset < 18:
        raise ExportError("bitwise ops on integers need opset 18 or later")
    dt = _out(call).dtype
    op = {"and": "BitwiseAnd", "or": "BitwiseOr", "xor": "BitwiseXor"}[kind]
    return g.op(op, [g.t(x, dt), g.t(y, dt)])


@converter("where")
def _where(g, a, call):
    if "self" in a:        # the method: x.where(condition, other)
        a = {**a, "input": a["self"]}
    if a.get("input") is None:
        raise ExportError("where(condition) with one argument (nonzero: a data-dependent "
                          "shape)")
    dt = _out(call).dtype
    return g.op("Where", [g.t(a["condition"], np.bool_), g.t(a["input"], dt),
                          g.t(a["other"], dt)])


@converter("masked_fill")
def _masked_fill(g, a, call):
    x = _x(a)
    return g.op("Where", [g.t(a["mask"], np.bool_), g.t(a["value"], x.dtype), g.t(x)])


@converter("clamp", "clip", "clamp_min", "clamp_max")
def _clamp(g, a, call):
    x = _x(a)
    dt = _out(call).dtype
    lo = a.get("min") if _opname(call) != "clamp_max" else None
    hi = a.get("max") if _opname(call) != "clamp_min" else None
    y = g.t(x, dt)
    if isinstance(lo, Value) or isinstance(hi, Value):
        if lo is not None:
            y = g.op("Max", [y, g.t(lo, dt)])
        if hi is not None:
            y = g.op("Min", [y, g.t(hi, dt)])
        return y
    return g.op("Clip", [y, None if lo is None else g.scalar(lo, dt),
                         None if hi is None else g.scalar(hi, dt)])


# ============================================================================= activations
@converter("relu6")
def _relu6(g, a, call):
    x = _x(a)
    return g.op("Clip", [g.t(x), g.scalar(0, x.dtype), g.scalar(6, x.dtype)])


@converter("hardtanh")
def _hardtanh(g, a, call):
    x = _x(a)
    return g.op("Clip", [g.t(x), g.scalar(a["min_val"], x.dtype),
                         g.scalar(a["max_val"], x.dtype)])


@converter("leaky_relu")
def _leaky_relu(g, a, call):
    return g.op("LeakyRelu", [g.t(_x(a))], alpha=float(a["negative_slope"]))


@converter("elu")
def _elu(g, a, call):
    return g.op("Elu", [g.t(_x(a))], alpha=float(a["alpha"]))


@converter("celu")
def _celu(g, a, call):
    x = _x(a)
    if x.dtype != np.float32:
        raise ExportError("celu exports for float32 only (ONNX Celu)")
    return g.op("Celu", [g.t(x)], alpha=float(a["alpha"]))


@converter("selu")
def _selu(g, a, call):
    return g.op("Selu", [g.t(_x(a))], alpha=1.6732632423543772848170429916717,
                gamma=1.0507009873554804934193349852946)


@converter("gelu")
def _gelu(g, a, call):
    x = _x(a)
    approx = a.get("approximate", "none")
    xn = g.t(x)
    if g.opset >= 20:
        return g.op("Gelu", [xn], approximate=approx)
    dt = x.dtype
    half = g.op("Mul", [xn, g.scalar(0.5, dt)])
    if approx == "tanh":
        # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.op("Mul", [g.op("Mul", [xn, xn]), xn])
        inner = g.op("Add", [xn, g.op("Mul", [cube, g.scalar(0.044715, dt)])])
        t = g.op("Tanh", [g.op("Mul", [inner, g.scalar(math.sqrt(2 / math.pi), dt)])])
    else:
        # 0.5 x (1 + erf(x / sqrt(2)))
        t = g.op("Erf", [g.op("Div", [xn, g.scalar(math.sqrt(2.0), dt)])])
    return g.op("Mul", [half, g.op("Add", [t, g.scalar(1.0, dt)])])


@converter("silu")
def _silu(g, a, call):
    x = g.t(_x(a))
    return g.op("Mul", [x, g.op("Sigmoid", [x])])


@converter("mish")
def _mish(g, a, call):
    x = g.t(_x(a))
    return g.op("Mul", [x, g.op("Tanh", [g.op("Softplus", [x])])])


@converter("hardswish")
def _hardswish(g, a, call):
    x = g.t(_x(a))
    if g.opset >= 14:
        return g.op("HardSwish", [x])
    return g.op("Mul", [x, g.op("HardSigmoid", [x], alpha=1.0 / 6, beta=0.5)])


@converter("hardsigmoid")
def _hardsigmoid(g, a, call):
    return g.op("HardSigmoid", [g.t(_x(a))], alpha=1.0 / 6, beta=0.5)


@converter("softplus")
def _softplus(g, a, call):
    x = _x(a)
    dt = x.dtype
    beta, threshold = float(a["beta"]), float(a["threshold"])
    xn = g.t(x)
    bx = xn if beta == 1 else g.op("Mul", [xn, g.scalar(beta, dt)])
    sp = g.op("Softplus", [bx])
    if beta != 1:
        sp = g.op("Div", [sp, g.scalar(beta, dt)])
    # above the threshold PyTorch returns x itself (as it computes in a stable way)
    return g.op("Where", [g.op("Greater", [bx, g.scalar(threshold, dt)]), xn, sp])


@converter("logsigmoid")
def _logsigmoid(g, a, call):
    return g.op("Neg", [g.op("Softplus", [g.op("Neg", [g.t(_x(a))])])])


@converter("tanhshrink")
def _tanhshrink(g, a, call):
    x = g.t(_x(a))
    return g.op("Sub", [x, g.op("Tanh", [x])])


@converter("hardshrink", "softshrink")
def _shrink(g, a, call):
    lambd = float(a.get("lambd", 0.5))
    bias = lambd if _opname(call) == "softshrink" else 0.0
    return g.op("Shrink", [g.t(_x(a))], lambd=lambd, bias=bias)


@converter("threshold")
def _threshold(g, a, call):
    x = _x(a)
    xn = g.t(x)
    return g.op("Where", [g.op("Greater", [xn, g.scalar(a["threshold"], x.dtype)]), xn,
                          g.scalar(a["value"], x.dtype)])


@converter("prelu")
def _prelu(g, a, call):
    x, w = _x(a), a["weight"]
    wn = g.t(w, x.dtype)
    rank = len(x.shape)
    if len(w.shape) == 1 and w.shape[0] > 1 and rank >= 3:
        # (C,) slopes apply along axis 1; ONNX broadcasts from the right
        wn = g.unsqueeze(wn, list(range(1, rank - 1)))
    return g.op("PRelu", [g.t(x), wn])


@converter("glu")
def _glu(g, a, call):
    x = _x(a)
    axis = _axis(a["dim"], len(x.shape))
    half = x.shape[axis] // 2
    first, second = g.split(g.t(x), [half, half], axis)
    return g.op("Mul", [first, g.op("Sigmoid", [second])])


def _softmax_axis(a, x):
    dim = a.get("dim")
    if dim is None:
        dim = 0 if len(x.shape) in (0, 1, 3) else 1
    return _axis(dim, len(x.shape))


@converter("softmax", "log_softmax", "softmin")
def _softmax(g, a, call):
    x = _x(a)
    xn = g.t(x, a.get("dtype") and _out(call).dtype)
    axis = _softmax_axis(a, x)
    if _opname(call) == "softmin":
        xn = g.op("Neg", [xn])
    return g.op("LogSoftmax" if _opname(call) == "log_softmax" else "Softmax", [xn], axis=axis)


# ============================================================================== linear
@converter("matmul", "mm", "bmm", "mv", "dot", "inner")
def _matmul(g, a, call):
    dt = _out(call).dtype
    other = a.get("other", a.get("mat2", a.get("vec", a.get("tensor"))))
    if _opname(call) == "inner" and len(other.shape) > 1:
        raise ExportError("inner with a matrix second operand")
    return g.op("MatMul", [g.t(_x(a), dt), g.t(other, dt)])


@converter("linear")
def _linear(g, a, call):
    x, w, b = _x(a), a["weight"], a.get("bias")
    dt = _out(call).dtype
    if len(x.shape) == 2 and len(w.shape) == 2:
        return g.op("Gemm", [g.t(x, dt), g.t(w, dt), None if b is None else g.t(b, dt)],
                    transB=1)
    wt = g.op("Transpose", [g.t(w, dt)], perm=[1, 0]) if len(w.shape) == 2 else g.t(w, dt)
    y = g.op("MatMul", [g.t(x, dt), wt])
    return y if b is None else g.op("Add", [y, g.t(b, dt)])


@converter("addmm")
def _addmm(g, a, call):
    dt = _out(call).dtype
    return g.op("Gemm", [g.t(a["mat1"], dt), g.t(a["mat2"], dt), g.t(_x(a), dt)],
                alpha=float(a.get("alpha", 1)), beta=float(a.get("beta", 1)))


@converter("outer", "ger")
def _outer(g, a, call):
    dt = _out(call).dtype
    other = a.get("vec2", a.get("other"))
    return g.op("Mul", [g.unsqueeze(g.t(_x(a), dt), [1]), g.unsqueeze(g.t(other, dt), [0])])


@converter("einsum")
def _einsum(g, a, call):
    ops = a["operands"]
    if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
        ops = ops[0]
    dt = _out(call).dtype
    return g.op("Einsum", [g.t(o, dt) for o in ops], equation=a["equation"].replace(" ", ""))


# ================================================================================ conv
def _conv_geometry(a, n: int, kernel):
    stride = _ntuple(a.get("stride", 1) or 1, n)
    dilation = _ntuple(a.get("dilation", 1), n)
    padding = a.get("padding", 0)
    if isinstance(padding, str):
        if padding == "valid":
            pads = [0] * (2 * n)
        elif padding == "same":
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]
            # PyTorch puts the odd element of the padding on the right
            pads = [t // 2 for t in total] + [t - t // 2 for t in total]
        else:
            raise ExportError(f"padding={padding!r}")
    else:
        p = _ntuple(padding, n)
        pads = p + p
    return stride, dilation, pads


@converter("conv1d", "conv2d", "conv3d")
def _conv(g, a, call):
    x, w, b = _x(a), a["weight"], a.get("bias")
    n = len(w.shape) - 2
    kernel = list(w.shape[2:])
    stride, dilation, pads = _conv_geometry(a, n, kernel)
    xn, added = _batched(g, g.t(x), len(x.shape), n + 2)
    y = g.op("Conv", [xn, g.t(w), None if b is None else g.t(b)], kernel_shape=kernel,
             strides=stride, dilations=dilation, pads=pads, group=int(a.get("groups", 1)))
    return _unbatch(g, y, added)


@converter("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
def _conv_transpose(g, a, call):
    x, w, b = _x(a), a["weight"], a.get("bias")
    n = len(w.shape) - 2
    kernel = list(w.shape[2:])
    stride, dilation, pads = _conv_geometry(a, n, kernel)
    out_pad = _ntuple(a.get("output_padding", 0), n)
    xn, added = _batched(g, g.t(x), len(x.shape), n + 2)
    y = g.op("ConvTranspose", [xn, g.t(w), None if b is None else g.t(b)],
             kernel_shape=kernel, strides=stride, dilations=dilation, pads=pads,
             output_padding=out_pad, group=int(a.get("groups", 1)))
    return _unbatch(g, y, added)


# ========================================================================= normalization
def _channel_const(g, value, c: int, dtype) -> str:
    return g.const(np.full((c,), value, dtype=dtype))


@converter("batch_norm")
def _batch_norm(g, a, call):
    x = _x(a)
    dt = x.dtype
    c = x.shape[1]
    w, b = a.get("weight"), a.get("bias")
    wn = g.t(w, dt) if w is not None else _channel_const(g, 1, c, dt)
    bn = g.t(b, dt) if b is not None else _channel_const(g, 0, c, dt)
    mean, var = a.get("running_mean"), a.get("running_var")
    eps = float(a["eps"])
    if not a.get("training") and mean is not None and var is not None:
        return g.op("BatchNormalization", [g.t(x), wn, bn, g.t(mean, dt), g.t(var, dt)],
                    epsilon=eps)
    # normalised with the statistics of the batch itself (no running statistics)
    axes = [0] + list(range(2, len(x.shape)))
    return _normalize_axes(g, g.t(x), axes, eps, dt, wn, bn, channel_axis=1,
                           rank=len(x.shape))


def _normalize_axes(g, xn, axes, eps, dt, wn=None, bn=None, *, channel_axis=None, rank=0):
    mean = g.reduce("ReduceMean", xn, axes, True)
    d = g.op("Sub", [xn, mean])
    var = g.reduce("ReduceMean", g.op("Mul", [d, d]), axes, True)
    y = g.op("Div", [d, g.op("Sqrt", [g.op("Add", [var, g.scalar(eps, dt)])])])
    if channel_axis is not None:     # (C,) -> (C, 1, ...) to broadcast along channel_axis
        shape_axes = list(range(1, rank - channel_axis))
        if wn is not None:
            wn = g.unsqueeze(wn, shape_axes) if shape_axes else wn
        if bn is not None:
            bn = g.unsqueeze(bn, shape_axes) if shape_axes else bn
    if wn is not None:
        y = g.op("Mul", [y, wn])
    if bn is not None:
        y = g.op("Add", [y, bn])
    return y


@converter("layer_norm")
def _layer_norm(g, a, call):
    x = _x(a)
    dt = x.dtype
    shape = a["normalized_shape"]
    shape = [int(shape)] if isinstance(shape, int) else [int(s) for s in shape]
    k = len(shape)
    w, b = a.get("weight"), a.get("bias")
    eps = float(a["eps"])
    if g.opset >= 17:
        wn = g.t(w, dt) if w is not None else g.const(np.ones(shape, dtype=dt))
        return g.op("LayerNormalization", [g.t(x), wn, None if b is None else g.t(b, dt)],
                    axis=-k, epsilon=eps)
    rank = len(x.shape)
    return _normalize_axes(g, g.t(x), list(range(rank - k, rank)), eps, dt,
                           None if w is None else g.t(w, dt), None if b is None else g.t(b, dt))


@converter("group_norm")
def _group_norm(g, a, call):
    x = _x(a)
    dt = x.dtype
    groups = int(a["num_groups"])
    rank = len(x.shape)
    xn = g.t(x)
    # (N, C, *) -> (N, G, C/G * prod(*)): instance norm over the last axis of each group
    grouped = g.op("Reshape", [xn, g.i64([0, groups, -1])])
    normed = g.op("InstanceNormalization", [grouped, _channel_const(g, 1, groups, dt),
                                            _channel_const(g, 0, groups, dt)],
                  epsilon=float(a["eps"]))
    shape = g.shape_of(xn) if g.symbolic and not x.const else g.i64(x.shape)
    y = g.op("Reshape", [normed, shape])
    w, b = a.get("weight"), a.get("bias")
    axes = list(range(1, rank - 1))
    if w is not None:
        y = g.op("Mul", [y, g.unsqueeze(g.t(w, dt), axes) if axes else g.t(w, dt)])
    if b is not None:
        y = g.op("Add", [y, g.unsqueeze(g.t(b, dt), axes) if axes else g.t(b, dt)])
    return y


@converter("instance_norm")
def _instance_norm(g, a, call):
    x = _x(a)
    dt = x.dtype
    c = x.shape[1]
    w, b = a.get("weight"), a.get("bias")
    wn = g.t(w, dt) if w is not None else _channel_const(g, 1, c, dt)
    bn = g.t(b, dt) if b is not None else _channel_const(g, 0, c, dt)
    eps = float(a["eps"])
    if a.get("use_input_stats", True):
        return g.op("InstanceNormalization", [g.t(x), wn, bn], epsilon=eps)
    return g.op("BatchNormalization", [g.t(x), wn, bn, g.t(a["running_mean"], dt),
                                       g.t(a["running_var"], dt)], epsilon=eps)


@converter("rms_norm")
def _rms_norm(g, a, call):
    x = _x(a)
    dt = x.dtype
    shape = a["normalized_shape"]
    k = 1 if isinstance(shape, int) else len(shape)
    eps = a.get("eps")
    eps = float(np.finfo(dt).eps) if eps is None else float(eps)
    rank = len(x.shape)
    xn = g.t(x)
    ms = g.reduce("ReduceMean", g.op("Mul", [xn, xn]), list(range(rank - k, rank)), True)
    y = g.op("Mul", [xn, g.op("Reciprocal", [g.op("Sqrt", [
        g.op("Add", [ms, g.scalar(eps, dt)])])])])
    w = a.get("weight")
    return y if w is None else g.op("Mul", [y, g.t(w, dt)])


@converter("normalize")
def _normalize(g, a, call):
    x = _x(a)
    dt = x.dtype
    axis = _axis(a["dim"], len(x.shape))
    p = float(a["p"])
    xn = g.t(x)
    if p == 2:
        norm = g.reduce("ReduceL2", xn, [axis], True)
    elif p == 1:
        norm = g.reduce("ReduceL1", xn, [axis], True)
    else:
        s = g.reduce("ReduceSum", g.op("Pow", [g.op("Abs", [xn]), g.scalar(p, dt)]), [axis],
                     True)
        norm = g.op("Pow", [s, g.scalar(1.0 / p, dt)])
    return g.op("Div", [xn, g.op("Max", [norm, g.scalar(float(a["eps"]), dt)])])


# ============================================================================ embeddings
@converter("embedding")
def _embedding(g, a, call):
    if a.get("max_norm") is not None:
        raise ExportError("embedding with max_norm (it renormalises the table in place)")
    return g.op("Gather", [g.t(a["weight"]), g.t(_x(a))], axis=0)


@converter("embedding_bag")
def _embedding_bag(g, a, call):
    ids, w = _x(a), a["weight"]
    if len(ids.shape) != 2 or a.get("offsets") is not None:
        raise ExportError("embedding_bag exports for 2-D input (one bag per row) without "
                          "offsets")
    if a.get("max_norm") is not None:
        raise ExportError("embedding_bag with max_norm")
    dt = w.dtype
    mode = a.get("mode", "mean")
    rows = g.op("Gather", [g.t(w), g.t(ids)], axis=0)          # (N, L, D)
    psw = a.get("per_sample_weights")
    if psw is not None:
        if mode != "sum":
            raise ExportError("per_sample_weights need mode='sum'")
        rows = g.op("Mul", [rows, g.unsqueeze(g.t(psw, dt), [2])])
    pad = a.get("padding_idx")
    keep = None
    if pad is not None:
        pad = int(pad) % w.shape[0]
        keep = g.op("Not", [g.op("Equal", [g.t(ids), g.scalar(pad, ids.dtype)])])  # (N, L)
        fill = g.scalar(-np.inf if mode == "max" else 0, dt)
        rows = g.op("Where", [g.unsqueeze(keep, [2]), rows, fill])
    if mode == "sum":
        return g.reduce("ReduceSum", rows, [1], False)
    if mode == "max":
        return g.reduce("ReduceMax", rows, [1], False)
    if keep is None:
        return g.reduce("ReduceMean", rows, [1], False)
    total = g.reduce("ReduceSum", rows, [1], False)
    count = g.reduce("ReduceSum", g.cast(keep, dt), [1], True)
    return g.op("Div", [total, g.op("Max", [count, g.scalar(1, dt)])])


# ================================================================================ pooling
def _pool_dims(op: str) -> int:
    return int(op.rstrip("d")[-1])


def _pool_ceil(x: Value, out: Value, kernel, stride, pads, dilation, ceil_mode: bool, n: int):
    """ONNX's ceil_mode that reproduces the traced output size (PyTorch drops a last
    window that would start in the right padding; ONNX's rule differs there)."""
    if not ceil_mode:
        return 0
    spatial_in = x.shape[-n:]
    spatial_out = out.shape[-n:]
    floor_sizes, ceil_sizes = [], []
    for i in range(n):
        span = spatial_in[i] + pads[i] + pads[i + n] - dilation[i] * (kernel[i] - 1) - 1
        floor_sizes.append(span // stride[i] + 1)
        ceil_sizes.append(-(-span // stride[i]) + 1)
    if list(spatial_out) == floor_sizes:
        return 0
    if list(spatial_out) == ceil_sizes:
        return 1
    raise ExportError("ceil_mode pooling whose last window starts in the padding (PyTorch "
                      "and ONNX size it differently)")


@converter("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d",
           "avg_pool3d")
def _pool(g, a, call):
    x = _x(a)
    n = _pool_dims(_opname(call))
    if a.get("return_indices"):
        raise ExportError("max pooling with return_indices")
    kernel = _ntuple(a["kernel_size"], n)
    stride = a.get("stride")
    stride = kernel if stride is None or stride == [] or stride == () else _ntuple(stride, n)
    p = _ntuple(a.get("padding", 0), n)
    pads = p + p
    is_max = _opname(call).startswith("max")
    dilation = _ntuple(a.get("dilation", 1), n) if is_max else [1] * n
    xn, added = _batched(g, g.t(x), len(x.shape), n + 2)
    ceil = _pool_ceil(x, _out(call), kernel, stride, pads, dilation,
                      bool(a.get("ceil_mode")), n)
    if is_max:
        y = g.op("MaxPool", [xn], kernel_shape=kernel, strides=stride, pads=pads,
                 dilations=dilation, ceil_mode=ceil)
    else:
        if a.get("divisor_override") is not None:
            raise ExportError("avg pooling with divisor_override")
        y = g.op("AveragePool", [xn], kernel_shape=kernel, strides=stride, pads=pads,
                 ceil_mode=ceil, count_include_pad=int(bool(a.get("count_include_pad", True))))
    return _unbatch(g, y, added)


@converter("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")
def _adaptive_pool(g, a, call):
    x = _x(a)
    n = _pool_dims(_opname(call))
    if a.get("return_indices"):
        raise ExportError("adaptive max pooling with return_indices")
    is_max = "max" in _opname(call)
    xn, added = _batched(g, g.t(x), len(x.shape), n + 2)
    in_sizes = list(x.shape[-n:])
    out_sizes = list(_out(call).shape[-n:])
    if all(o == 1 for o in out_sizes):
        y = g.op("GlobalMaxPool" if is_max else "GlobalAveragePool", [xn])
    elif all(i % o == 0 for i, o in zip(in_sizes, out_sizes)):
        k = [i // o for i, o in zip(in_sizes, out_sizes)]
        y = g.op("MaxPool" if is_max else "AveragePool", [xn], kernel_shape=k, strides=k)
    else:
        # bins of unequal size: one reduction per output position, axis by axis
        y = xn
        reduce = "ReduceMax" if is_max else "ReduceMean"
        for j, (i_size, o_size) in enumerate(zip(in_sizes, out_sizes)):
            if i_size == o_size:
                continue
            axis = 2 + j
            pieces = []
            for o in range(o_size):
                start = (o * i_size) // o_size
                end = -(-((o + 1) * i_size) // o_size)
                pieces.append(g.reduce(reduce, g.slice(y, [start], [end], [axis]), [axis],
                                       True))
            y = g.op("Concat", pieces, axis=axis)
    return _unbatch(g, y, added)


# ============================================================================ resampling
@converter("interpolate", "upsample", "upsample_nearest", "upsample_bilinear")
def _interpolate(g, a, call):
    x, out = _x(a), _out(call)
    mode = {"upsample_nearest": "nearest", "upsample_bilinear": "bilinear"}.get(
        _opname(call), a.get("mode", "nearest"))
    align = True if _opname(call) == "upsample_bilinear" else bool(a.get("align_corners"))
    if a.get("antialias"):
        raise ExportError("interpolate with antialias=True")
    n = len(x.shape) - 2
    attrs = {}
    if mode == "nearest":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    elif mode == "nearest-exact":
        attrs = dict(mode="nearest", coordinate_transformation_mode="half_pixel",
                     nearest_mode="round_prefer_ceil")
    elif mode in ("linear", "bilinear", "trilinear", "bicubic"):
        attrs = dict(mode="cubic" if mode == "bicubic" else "linear",
                     coordinate_transformation_mode="align_corners" if align
                     else "pytorch_half_pixel")
        if mode == "bicubic":
            attrs["cubic_coeff_a"] = -0.75
    else:
        raise ExportError(f"interpolate mode {mode!r}")
    scale = a.get("scale_factor")
    if scale is not None and not a.get("recompute_scale_factor"):
        # PyTorch maps coordinates with the given scale, not with out/in: pass the scales
        scales = [1.0, 1.0] + [float(s) for s in _ntuple_float(scale, n)]
        return g.op("Resize", [g.t(x), "", g.const(np.asarray(scales, dtype=np.float32))],
                    **attrs)
    dims = _dims(g, x)[:2] + list(out.shape[2:])
    return g.op("Resize", [g.t(x), "", "", g.shape_vector(dims)], **attrs)


def _ntuple_float(v, n):
    if isinstance(v, (list, tuple)):
        return list(v) if len(v) == n else [v[0]] * n
    return [v] * n


@converter("pad")
def _pad(g, a, call):
    x = _x(a)
    rank = len(x.shape)
    pad = [int(p) for p in a["pad"]]
    if len(pad) % 2 or len(pad) // 2 > rank:
        raise ExportError(f"pad of length {len(pad)} for a {rank}-D input")
    begins, ends = [0] * rank, [0] * rank
    for i in range(len(pad) // 2):
        axis = rank - 1 - i
        begins[axis], ends[axis] = pad[2 * i], pad[2 * i + 1]
    mode = a.get("mode", "constant")
    onnx_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
                 "circular": "wrap"}.get(mode)
    if onnx_mode is None:
        raise ExportError(f"pad mode {mode!r}")
    if onnx_mode == "wrap" and g.opset < 19:
        raise ExportError("circular padding needs opset 19 or later")
    value = a.get("value")
    ins = [g.t(x), g.i64(begins + ends)]
    if onnx_mode == "constant":
        ins.append(g.scalar(0 if value is None else value, x.dtype))
    return g.op("Pad", ins, mode=onnx_mode)


@converter("pixel_shuffle")
def _pixel_shuffle(g, a, call):
    x = _x(a)
    if len(x.shape) != 4:
        raise ExportError("pixel_shuffle exports for 4-D input")
    return g.op("DepthToSpace", [g.t(x)], blocksize=int(a["upscale_factor"]), mode="CRD")


@converter("pixel_unshuffle")
def _pixel_unshuffle(g, a, call):
    x = _x(a)
    if len(x.shape) != 4:
        raise ExportError("pixel_unshuffle exports for 4-D input")
    r = int(a["downscale_factor"])
    _, c, h, w = x.shape
    y = g.op("Reshape", [g.t(x), g.i64([0, c, h // r, r, w // r, r])])
    y = g.op("Transpose", [y], perm=[0, 1, 3, 5, 2, 4])
    return g.op("Reshape", [y, g.i64([0, c * r * r, h // r, w // r])])


# ============================================================================== attention
@converter("scaled_dot_product_attention")
def _sdpa(g, a, call):
    q, k, v = a["query"], a["key"], a["value"]
    dt = q.dtype
    if a.get("dropout_p", 0.0):
        raise ExportError("scaled_dot_product_attention with dropout_p > 0 (training mode)")
    if a.get("enable_gqa") and q.shape[-3] != k.shape[-3]:
        raise ExportError("scaled_dot_product_attention with grouped-query heads")
    scale = a.get("scale")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    rank = len(k.shape)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    kt = g.op("Transpose", [g.t(k)], perm=perm)
    scores = g.op("MatMul", [g.op("Mul", [g.t(q), g.scalar(scale, dt)]), kt])
    mask = a.get("attn_mask")
    if a.get("is_causal"):
        if mask is not None:
            raise ExportError("scaled_dot_product_attention with both attn_mask and is_causal")
        qd, kd = _dims(g, q), _dims(g, k)
        if not any(isinstance(d, SymInt) for d in (qd[-2], kd[-2])):
            blocked = np.triu(np.ones((q.shape[-2], k.shape[-2]), dtype=bool), 1)
            scores = g.op("Add", [scores, g.const(np.where(blocked, -np.inf, 0).astype(dt))])
        else:
            if g.opset < 14:
                raise ExportError("is_causal with a dynamic length needs opset 14 (Trilu)")
            size = g.shape_vector([qd[-2], kd[-2]])
            neg = g.op("ConstantOfShape", [size], value=_value_tensor(g, -np.inf, dt))
            upper = g.op("Trilu", [neg, g.const(np.asarray(1, dtype=np.int64))], upper=1)
            scores = g.op("Add", [scores, upper])
    elif mask is not None:
        if mask.dtype == np.bool_:
            add = g.op("Where", [g.t(mask), g.scalar(0.0, dt), g.scalar(-np.inf, dt)])
        else:
            add = g.t(mask, dt)
        scores = g.op("Add", [scores, add])
        # a row masked everywhere gives zeros, not the nan of a softmax over -inf (as the
        # framework and PyTorch's math kernel)
        row_max = g.reduce("ReduceMax", scores, [-1], True)
        dead = g.op("IsInf", [row_max], detect_positive=0)
        weights = g.op("Softmax", [g.op("Where", [dead, g.scalar(0.0, dt), scores])], axis=-1)
        weights = g.op("Where", [dead, g.scalar(0.0, dt), weights])
        return g.op("MatMul", [weights, g.t(v)])
    weights = g.op("Softmax", [scores], axis=-1)
    return g.op("MatMul", [weights, g.t(v)])


# ================================================================================ shapes
@converter("reshape", "view")
def _reshape(g, a, call):
    x = _x(a)
    shape = _sizes(a["shape"])
    if len(shape) == 1 and not isinstance(shape[0], int):
        raise ExportError("view(dtype) (a reinterpretation of the bytes)")
    return g.op("Reshape", [g.t(x), g.shape_vector(shape)])


@converter("reshape_as", "view_as")
def _reshape_as(g, a, call):
    x, other = _x(a), a["other"]
    shape = g.shape_of(g.t(other)) if g.symbolic and not other.const else g.i64(other.shape)
    return g.op("Reshape", [g.t(x), shape])


@converter("flatten")
def _flatten(g, a, call):
    x = _x(a)
    rank = len(x.shape)
    if rank == 0:
        return g.op("Reshape", [g.t(x), g.i64([1])])
    start, end = _axis(a["start_dim"], rank), _axis(a["end_dim"], rank)
    if start == end:
        return g.op("Identity", [g.t(x)])
    if start == 1 and end == rank - 1:
        return g.op("Flatten", [g.t(x)], axis=1)
    dims = _dims(g, x)
    shape = [0] * start + [-1] + dims[end + 1:]
    return g.op("Reshape", [g.t(x), g.shape_vector(shape)])


@converter("unflatten")
def _unflatten(g, a, call):
    x = _x(a)
    rank = len(x.shape)
    dim = _axis(a["dim"], rank)
    dims = _dims(g, x)
    shape = [0] * dim + list(a["sizes"]) + dims[dim + 1:]
    return g.op("Reshape", [g.t(x), g.shape_vector(shape)])


@converter("permute")
def _permute(g, a, call):
    x = _x(a)
    dims = _sizes(a["dims"])
    return g.op("Transpose", [g.t(x)], perm=[_axis(d, len(x.shape)) for d in dims])


@converter("transpose", "swapaxes", "swapdims", "t", "movedim", "moveaxis")
def _transpose(g, a, call):
    x = _x(a)
    rank = len(x.shape)
    perm = list(range(rank))
    if _opname(call) == "t":
        if rank < 2:
            return g.op("Identity", [g.t(x)])
        perm = [1, 0]
    elif _opname(call) in ("movedim", "moveaxis"):
        src, dst = a["source"], a["destination"]
        src = _axes(src, rank)
        dst = _axes(dst, rank)
        perm = [n for n in range(rank) if n not in src]
        for d, s_ in sorted(zip(dst, src)):
            perm.insert(d, s_)
    else:
        d0 = _axis(a.get("dim0", a.get("axis0")), rank)
        d1 = _axis(a.get("dim1", a.get("axis1")), rank)
        perm[d0], perm[d1] = perm[d1], perm[d0]
    return g.op("Transpose", [g.t(x)], perm=[int(p) for p in perm])


@converter("squeeze")
def _squeeze(g, a, call):
    x = _x(a)
    rank = len(x.shape)
    dim = a.get("dim")
    axes = list(range(rank)) if dim is None else _axes(dim, rank)
    axes = [ax for ax in axes if x.shape[ax] == 1]   # PyTorch leaves other sizes alone
    if not axes:
        return g.op("Identity", [g.t(x)])
    return g.squeeze(g.t(x), axes)


@converter("unsqueeze")
def _unsqueeze(g, a, call):
    x = _x(a)
    return g.unsqueeze(g.t(x), [_axis(a["dim"], len(x.shape) + 1)])


@converter("expand", "broadcast_to")
def _expand(g, a, call):
    x = _x(a)
    sizes = _sizes(a["sizes"]) if "sizes" in a else list(a["size"])
    # ONNX Expand broadcasts both ways: a 1 keeps the input's size, as PyTorch's -1 does
    sizes = [1 if (not isinstance(s, SymInt) and int(s) == -1) else s for s in sizes]
    return g.op("Expand", [g.t(x), g.shape_vector(sizes)])


@converter("expand_as")
def _expand_as(g, a, call):
    x, other = _x(a), a["other"]
    shape = g.shape_of(g.t(other)) if g.symbolic and not other.const else g.i64(other.shape)
    return g.op("Expand", [g.t(x), shape])


@converter("cat", "concat", "concatenate")
def _cat(g, a, call):
    tensors = [t for t in a["tensors"] if not (len(t.shape) == 1 and t.shape[0] == 0)]
    out = _out(call)
    axis = _axis(a.get("dim", a.get("axis", 0)), len(out.shape))
    if len(tensors) == 1:
        return g.op("Identity", [g.t(tensors[0], out.dtype)])
    return g.op("Concat", [g.t(t, out.dtype) for t in tensors], axis=axis)


@converter("stack")
def _stack(g, a, call):
    out = _out(call)
    axis = _axis(a.get("dim", 0), len(out.shape))
    parts = [g.unsqueeze(g.t(t, out.dtype), [axis]) for t in a["tensors"]]
    return parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=axis)


@converter("split", "chunk", "tensor_split")
def _split(g, a, call):
    x = _x(a)
    axis = _axis(a.get("dim", 0), len(x.shape))
    sizes = [o.shape[axis] for o in call.outputs]
    if sum(sizes) != x.shape[axis]:
        raise ExportError("split whose pieces do not cover the axis")
    if len(sizes) == 1:
        return [g.op("Identity", [g.t(x)])]
    return g.split(g.t(x), sizes, axis)


@converter("unbind")
def _unbind(g, a, call):
    x = _x(a)
    axis = _axis(a.get("dim", 0), len(x.shape))
    n = x.shape[axis]
    parts = g.split(g.t(x), [1] * n, axis) if n > 1 else [g.t(x)]
    return [g.squeeze(p, [axis]) for p in parts]


@converter("narrow")
def _narrow(g, a, call):
    x = _x(a)
    axis = _axis(a["dim"], len(x.shape))
    start = a["start"]
    return g.slice(g.t(x), [start], [start + a["length"]], [axis])


@converter("select")
def _select(g, a, call):
    x = _x(a)
    axis = _axis(a["dim"], len(x.shape))
    return g.op("Gather", [g.t(x), g.const(np.asarray(int(a["index"]), dtype=np.int64))],
                axis=axis)


@converter("index_select")
def _index_select(g, a, call):
    x = _x(a)
    return g.op("Gather", [g.t(x), g.t(a["index"])], axis=_axis(a["dim"], len(x.shape)))


@converter("gather", "take_along_dim")
def _gather(g, a, call):
    x = _x(a)
    index = a.get("index", a.get("indices"))
    dim = a.get("dim")
    if dim is None:
        raise ExportError("take_along_dim without dim")
    return g.op("GatherElements", [g.t(x), g.t(index)], axis=_axis(dim, len(x.shape)))


@converter("repeat", "tile")
def _repeat(g, a, call):
    x = _x(a)
    reps = _sizes(a.get("sizes", a.get("dims")))
    rank = len(x.shape)
    xn = g.t(x)
    if len(reps) > rank:
        xn = g.unsqueeze(xn, list(range(len(reps) - rank)))
    elif len(reps) < rank:
        reps = [1] * (rank - len(reps)) + reps
    return g.op("Tile", [xn, g.shape_vector(reps)])


@converter("flip")
def _flip(g, a, call):
    x = _x(a)
    axes = _axes(a["dims"], len(x.shape))
    return g.slice(g.t(x), [-1] * len(axes), [INT64_MIN] * len(axes), axes, [-1] * len(axes))


def _triangle(g, x: Value, diagonal: int, upper: bool) -> str:
    """Where(triangle mask, x, 0): the mask a constant when the last two sizes are static,
    else Trilu (opset 14)."""
    if not g.symbolic or x.const:
        n, m = x.shape[-2:]
        keep = (np.triu if upper else np.tril)(np.ones((n, m), dtype=bool), diagonal)
        return g.op("Where", [g.const(keep), g.t(x), g.scalar(0, x.dtype)])
    if g.opset < 14:
        raise ExportError("a triangle of dynamic size needs opset 14 or later (Trilu)")
    k = g.const(np.asarray(int(diagonal), dtype=np.int64))
    return g.op("Trilu", [g.t(x), k], upper=int(upper))


@converter("tril", "triu")
def _tri(g, a, call):
    return _triangle(g, _x(a), int(a.get("diagonal", 0)), _opname(call) == "triu")


@converter("cumsum")
def _cumsum(g, a, call):
    x = _x(a)
    dt = _out(call).dtype
    axis = g.const(np.asarray(_axis(a["dim"], len(x.shape)), dtype=np.int64))
    return g.op("CumSum", [g.t(x, dt), axis])


# ================================================================================ getitem
@converter("getitem")
def _getitem(g, a, call):
    x, index = _x(a), a["index"]
    rank = len(x.shape)
    items = list(index) if isinstance(index, tuple) else [index]
    items = [_ListIndex(i) if isinstance(i, list) else i for i in items]
    consumed = sum(1 for i in items if i is not None and i is not Ellipsis
                   and not isinstance(i, bool))
    if any(isinstance(i, bool) for i in items):
        raise ExportError("indexing with a Python bool")
    if sum(1 for i in items if i is Ellipsis) > 1:
        raise ExportError("an index with more than one Ellipsis")
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items = items[:k] + [slice(None)] * (rank - consumed) + items[k + 1:]
    else:
        items = items + [slice(None)] * (rank - consumed)
    starts, ends, axes, steps = [], [], [], []
    squeeze, unsqueeze_at, gathers = [], [], []
    in_axis, out_pos = 0, 0
    for it in items:
        if it is None:
            unsqueeze_at.append(out_pos)
            out_pos += 1
        elif isinstance(it, slice):
            if any(isinstance(b, Value) for b in (it.start, it.stop, it.step)):
                raise ExportError("slicing with tensor bounds (use Python ints)")
            if not (it.start is None and it.stop is None and it.step in (None, 1)):
                step = 1 if it.step is None else it.step
                if int(step) <= 0:
                    raise ExportError("slicing with a step below 1")
                starts.append(0 if it.start is None else it.start)
                ends.append(INT64_MAX if it.stop is None else it.stop)
                axes.append(in_axis)
                steps.append(int(step))
            in_axis += 1
            out_pos += 1
        elif isinstance(it, Value) or isinstance(it, _ListIndex):
            if it.dtype == np.bool_:
                raise ExportError("boolean-mask indexing (a data-dependent shape)")
            gathers.append((in_axis, it))
            in_axis += 1
            out_pos += len(it.shape)
        else:                                          # an int
            i = it
            starts.append(i)
            ends.append(INT64_MAX if (not isinstance(i, SymInt) and int(i) == -1) else i + 1)
            axes.append(in_axis)
            steps.append(1)
            squeeze.append(in_axis)
            in_axis += 1
    if len(gathers) > 1:
        raise ExportError("advanced indexing with several tensor indices")
    if gathers and unsqueeze_at:
        raise ExportError("a tensor index together with None")
    y = g.t(x)
    if axes:
        y = g.slice(y, starts, ends, axes, steps)
    if squeeze:
        y = g.squeeze(y, squeeze)
    if gathers:
        axis, idx = gathers[0]
        iname = idx.name_in(g) if isinstance(idx, _ListIndex) else g.t(idx)
        k = axis - sum(1 for s_ in squeeze if s_ < axis)
        # integers are selects before the gather (PyTorch's rule, and Lantern's), so the
        # gathered dims stay where the tensor index was
        y = g.op("Gather", [y, iname], axis=k)
    if unsqueeze_at:
        y = g.unsqueeze(y, unsqueeze_at)
    if y == g.names.get(x):
        y = g.op("Identity", [y])
    return y


class _ListIndex:
    """A Python list of ints used as an index (an int64 constant)."""

    def __init__(self, values):
        self.array = np.asarray(values, dtype=np.int64)
        self.dtype = self.array.dtype
        self.shape = self.array.shape

    def name_in(self, g) -> str:
        return g.const(self.array)


# ============================================================================ reductions
def _reduce_axes(a, rank: int, key: str = "dim"):
    dim = a.get(key)
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return None
    return _axes(dim, rank)


_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "prod": "ReduceProd",
           "amax": "ReduceMax", "amin": "ReduceMin", "logsumexp": "ReduceLogSumExp"}


@converter("sum", "mean", "prod", "amax", "amin", "logsumexp")
def _reduce(g, a, call):
    x, out = _x(a), _out(call)
    axes = _reduce_axes(a, len(x.shape))
    xn = g.t(x, out.dtype)
    if axes is None and _opname(call) in ("sum", "mean", "prod") and len(x.shape) == 0:
        return g.op("Identity", [xn])
    return g.reduce(_REDUCE[_opname(call)], xn, axes if axes is not None else
                    list(range(len(x.shape))), a.get("keepdim", False))


@converter("max", "min")
def _max_min(g, a, call):
    x = _x(a)
    other = a.get("other")
    dim = a.get("dim")
    if isinstance(dim, Value):                       # max(input, other_tensor) positionally
        other, dim = dim, None
    if other is not None:
        dt = _out(call).dtype
        return g.op("Max" if _opname(call) == "max" else "Min", [g.t(x, dt), g.t(other, dt)])
    rank = len(x.shape)
    reduce = "ReduceMax" if _opname(call) == "max" else "ReduceMin"
    if dim is None:
        return g.reduce(reduce, g.t(x), list(range(rank)), False)
    axis = _axis(dim, rank)
    keep = int(bool(a.get("keepdim", False)))
    values = g.reduce(reduce, g.t(x), [axis], keep)
    indices = g.op("ArgMax" if _opname(call) == "max" else "ArgMin", [g.t(x)], axis=axis,
                   keepdims=keep)
    return [values, indices]


@converter("argmax", "argmin")
def _argmax(g, a, call):
    x = _x(a)
    op = "ArgMax" if _opname(call) == "argmax" else "ArgMin"
    dim = a.get("dim")
    if dim is None:
        flat = g.op("Reshape", [g.t(x), g.i64([-1])])
        y = g.op(op, [flat], axis=0, keepdims=0)
        if a.get("keepdim"):
            y = g.op("Reshape", [y, g.i64([1] * len(x.shape))])
        return y
    return g.op(op, [g.t(x)], axis=_axis(dim, len(x.shape)),
                keepdims=int(bool(a.get("keepdim", False))))


@converter("var", "std")
def _var(g, a, call):
    x, out = _x(a), _out(call)
    rank = len(x.shape)
    axes = _reduce_axes(a, rank) or list(range(rank))
    correction = a.get("correction")
    if correction is None:
        correction = 0 if a.get("unbiased") is False else 1
    n = int(np.prod([x.shape[i] for i in axes]))
    dt = out.dtype
    xn = g.t(x, dt)
    d = g.op("Sub", [xn, g.reduce("ReduceMean", xn, axes, True)])
    s = g.reduce("ReduceSum", g.op("Mul", [d, d]), axes, a.get("keepdim", False))
    v = g.op("Div", [s, g.scalar(max(n - float(correction), 0.0), dt)])
    return g.op("Sqrt", [v]) if _opname(call) == "std" else v


@converter("all", "any")
def _all_any(g, a, call):
    x = _x(a)
    rank = len(x.shape)
    axes = _reduce_axes(a, rank) or list(range(rank))
    xn = g.cast(g.t(x, np.bool_), np.int32)
    r = g.reduce("ReduceMin" if _opname(call) == "all" else "ReduceMax", xn, axes,
                 a.get("keepdim", False))
    return g.cast(r, np.bool_)


@converter("norm")
def _norm(g, a, call):
    x = _x(a)
    p = a.get("p", "fro")
    rank = len(x.shape)
    axes = _reduce_axes(a, rank) or list(range(rank))
    keep = a.get("keepdim", False)
    if p in ("fro", 2, 2.0, None):
        return g.reduce("ReduceL2", g.t(x), axes, keep)
    if p in (1, 1.0):
        return g.reduce("ReduceL1", g.t(x), axes, keep)
    raise ExportError(f"norm with p={p!r}")


# =============================================================================== creation
def _fill_value(call: Call, a) -> float:
    if _opname(call) in ("zeros", "zeros_like", "new_zeros", "empty", "empty_like", "new_empty"):
        return 0
    if _opname(call) in ("ones", "ones_like", "new_ones"):
        return 1
    return a["fill_value"]


@converter("zeros", "ones", "empty", "full", "new_zeros", "new_ones", "new_empty", "new_full")
def _creation(g, a, call):
    out = _out(call)
    size = list(a["size"]) if _opname(call) in ("full", "new_full") else _sizes(a["size"])
    if not size and "size" in (a.get("kw") or {}):        # zeros(size=(2, 3))
        size = _sizes((a["kw"]["size"],))
    if not any(isinstance(s, SymInt) for s in size):
        return g.const(out.host())
    value = _fill_value(call, a)
    if isinstance(value, Value):
        raise ExportError("full with a tensor fill value")
    return g.op("ConstantOfShape", [g.shape_vector(size)],
                value=_value_tensor(g, value, out.dtype))


@converter("zeros_like", "ones_like", "empty_like", "full_like")
def _creation_like(g, a, call):
    out, t = _out(call), _x(a)
    if t.const or not g.symbolic:
        return g.const(out.host())
    return g.op("ConstantOfShape", [g.shape_of(g.t(t))],
                value=_value_tensor(g, _fill_value(call, a), out.dtype))


@converter("arange")
def _arange(g, a, call):
    out = _out(call)
    start, end, step = a["start"], a.get("end"), a.get("step", 1)
    if end is None:
        start, end = 0, start
    if not any(isinstance(v, SymInt) for v in (start, end, step)):
        return g.const(out.host())
    ints = [g.op("Squeeze", [g.int_input(v)]) for v in (start, end, step)]
    r = g.op("Range", ints)
    return r if out.dtype == np.int64 else g.cast(r, out.dtype)


@converter("tensor", "as_tensor", "asarray", "scalar_tensor", "eye", "linspace", "logspace",
           "tril_indices", "triu_indices", "from_numpy", "new_tensor")
def _constant(g, a, call):
    if call.symbolic:
        raise ExportError("a constant whose size depends on a dynamic axis")
    return g.const(_out(call).host())
