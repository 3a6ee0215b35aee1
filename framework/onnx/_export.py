"""`export`: trace a module once on example inputs, convert the recorded calls to an ONNX
graph (parameters as initializers under their state-dict names), check it, write it."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._tensor import Tensor
from ..autograd.grad_mode import enable_grad
from ._graph import ExportError, Graph
from ._ops import converter_for
from ._trace import Tracer, Value, _tensors

__all__ = ["export", "OnnxExporterError", "UnsupportedOperatorError"]

_MIN_OPSET = 13
_PROTOBUF_LIMIT = 2 ** 31 - 2 ** 24      # a serialized ModelProto must stay under 2 GiB


class OnnxExporterError(RuntimeError):
    """The model cannot be exported (as torch.onnx.errors.OnnxExporterError)."""


class UnsupportedOperatorError(OnnxExporterError):
    """An op that the model's outputs depend on has no ONNX conversion."""


def _ir_version(onnx, opset: int) -> int:
    """The oldest IR version that carries `opset`: runtimes accept a model whose IR version
    they know, so the newest one of the installed onnx package is not written."""
    return min(row[1] for row in onnx.helper.VERSION_TABLE if row[2] >= opset)


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("framework.onnx.export needs the onnx package: "
                          "pip install 'lantern[onnx]' (or pip install onnx)") from None
    return onnx


def _split_args(args) -> tuple[tuple, dict]:
    """PyTorch's `args`: a tensor, or a tuple of positional arguments whose last element
    may be a dict of keyword arguments."""
    if isinstance(args, Tensor):
        return (args,), {}
    if not isinstance(args, tuple):
        if isinstance(args, list):
            args = tuple(args)
        else:
            raise TypeError(f"framework.onnx.export: args must be a Tensor or a tuple of "
                            f"arguments, got {type(args).__name__}")
    if args and isinstance(args[-1], dict):
        return args[:-1], dict(args[-1])
    return args, {}


def _traced_inputs(obj, inputs: list, leaves: set):
    """`obj` with each tensor replaced by a copy to trace: float copies require grad
    (through a non-leaf, so the model may still change them in place), which lets the
    tracer tell a value computed from the inputs out of its sight from a constant."""
    if isinstance(obj, Tensor):
        base = obj.detach().clone()
        if base.is_floating_point():
            base.requires_grad_(True)
            leaves.add(id(base))
            t = base.clone()
        else:
            t = base
        inputs.append((t, base))       # base kept alive: the tracer knows the leaf by id
        return t
    if isinstance(obj, (list, tuple)):
        items = [_traced_inputs(o, inputs, leaves) for o in obj]
        return type(obj)(items) if type(obj) in (list, tuple) else type(obj)(*items)
    if isinstance(obj, dict):
        return {k: _traced_inputs(v, inputs, leaves) for k, v in obj.items()}
    return obj


def _names(given, count: int, default: str, what: str) -> list[str]:
    given = list(given or [])
    if len(given) > count:
        raise ValueError(f"framework.onnx.export: {len(given)} {what}_names for {count} "
                         f"{what}s")
    if len(set(given)) != len(given):
        raise ValueError(f"framework.onnx.export: {what}_names has duplicates: {given}")
    names = given + [default if count == 1 else f"{default}_{i}"
                     for i in range(len(given), count)]
    return names


def _dynamic_dims(dynamic_axes, name: str, rank: int) -> dict[int, str]:
    spec = (dynamic_axes or {}).get(name)
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        dims = {int(k): str(v) for k, v in spec.items()}
    else:
        dims = {int(k): f"{name}_dim{int(k)}" for k in spec}
    out = {}
    for k, v in dims.items():
        if not -rank <= k < rank:
            raise ValueError(f"framework.onnx.export: dynamic_axes[{name!r}] names axis {k} "
                             f"of a {rank}-D tensor")
        out[k % rank] = v
    return out


def _value_info(onnx, name: str, dtype, shape, dynamic: dict, known: bool = True):
    dims = [dynamic.get(i, int(s) if known else None) for i, s in enumerate(shape)]
    return onnx.helper.make_tensor_value_info(
        name, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), dims)


def _where(v: Value) -> str:
    return v.where or "the model"


def _needed_calls(outputs: list[Value]) -> list:
    """The recorded calls the outputs depend on, in recording order."""
    seen, calls = set(), []
    stack = list(outputs)
    while stack:
        v = stack.pop()
        c = v.producer
        if c is None or id(c) in seen:
            continue
        seen.add(id(c))
        calls.append(c)
        stack.extend(c.inputs)
        stack.extend(c.sym_values)
    return sorted(calls, key=lambda c: c.index)


def _fail(call, reason: str, cls=UnsupportedOperatorError):
    return cls(f"framework.onnx.export: {call.op!r} called in {call.where()} cannot be "
               f"exported: {reason}")


def export(model, args, f, *, input_names: Sequence[str] | None = None,
           output_names: Sequence[str] | None = None,
           dynamic_axes: Mapping[str, Any] | None = None, opset_version: int = 17,
           do_constant_folding: bool = True) -> None:
    """Export `model` to ONNX by running it once on `args` (as torch.onnx.export's
    tracing exporter).

    args: a Tensor, or a tuple of positional arguments whose last element may be a dict
    of keyword arguments; their tensors become the graph inputs, in order. f: a path
    (written atomically) or a binary file object. input_names / output_names: names of the
    graph inputs and outputs (defaults "input"/"input_0".., "output"/"output_0"..).
    dynamic_axes: {name: [axis, ...] or {axis: "dim_name"}} for axes whose size may change
    at run time. opset_version: 13 to the newest the installed onnx knows.
    do_constant_folding: replace computations that depend only on parameters and constants
    by their traced value.

    The model runs in eval mode (its modes are restored after). Parameters and buffers
    become initializers named by their state-dict keys. An op that the outputs depend on
    and that has no conversion raises UnsupportedOperatorError naming the op and the module
    that called it.
    """
    onnx = _require_onnx()
    from ..nn.modules.module import Module
    if not isinstance(model, Module):
        raise TypeError(f"framework.onnx.export: model must be a framework.nn.Module, got "
                        f"{type(model).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if not _MIN_OPSET <= int(opset_version) <= newest:
        raise ValueError(f"framework.onnx.export: opset_version {opset_version} is not "
                         f"supported (use {_MIN_OPSET} to {newest}, the newest the installed "
                         f"onnx knows)")
    opset = int(opset_version)
    pos, kw = _split_args(args)

    inputs: list = []
    leaves: set = set()
    with enable_grad():
        pos_t = tuple(_traced_inputs(a, inputs, leaves) for a in pos)
        kw_t = {k: _traced_inputs(v, inputs, leaves) for k, v in kw.items()}
    if not inputs:
        raise ValueError("framework.onnx.export: args hold no tensor to make a graph input of")
    in_names = _names(input_names, len(inputs), "input", "input")
    dynamic_axes = dict(dynamic_axes or {})
    symbolic = any(name in in_names for name in dynamic_axes)

    param_names: dict[int, str] = {}
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        param_names.setdefault(id(t), name)
    module_names = {id(m): name for name, m in model.named_modules()}
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with enable_grad(), Tracer(model, symbolic=symbolic, param_names=param_names,
                                   module_names=module_names, input_leaves=leaves) as tracer:
            in_values = [tracer.add_input(t, n) for (t, _), n in zip(inputs, in_names)]
            result = model(*pos_t, **kw_t)
    finally:
        for m, training in modes:
            m.training = training
    out_tensors: list = []
    _tensors(result, out_tensors)
    if not out_tensors:
        raise OnnxExporterError("framework.onnx.export: the model returned no tensor")
    out_values = [tracer.value_of(t) for t in out_tensors]
    out_names = _names(output_names, len(out_values), "output", "output")
    if set(in_names) & set(out_names):
        raise ValueError(f"framework.onnx.export: {sorted(set(in_names) & set(out_names))} "
                         f"named both an input and an output")
    unknown = set(dynamic_axes) - set(in_names) - set(out_names)
    if unknown:
        raise ValueError(f"framework.onnx.export: dynamic_axes names {sorted(unknown)}, which "
                         f"are neither input_names {in_names} nor output_names {out_names}")

    g = Graph(onnx, opset, {})
    g.symbolic = symbolic
    g.reserve(list(param_names.values()) + in_names + out_names)
    graph_inputs = []
    for v, name in zip(in_values, in_names):
        g.names[v] = name
        graph_inputs.append(_value_info(onnx, name, v.dtype, v.shape,
                                        _dynamic_dims(dynamic_axes, name, len(v.shape))))
    for v in in_values:
        if v.dtype.kind not in "fiub":
            raise OnnxExporterError(f"framework.onnx.export: input {g.names[v]!r} has dtype "
                                    f"{v.dtype}, which ONNX export does not support")

    def name_of(v: Value) -> str:
        n = g.names.get(v)
        if n is not None:
            return n
        if v.kind == "param":
            n = g.initializer(v.host(), v.name)
        elif v.kind == "constant":
            n = g.const(v.host())
        elif v.kind == "escaped":
            raise OnnxExporterError(
                f"framework.onnx.export: a tensor used in {_where(v)} was computed from the "
                f"inputs by something the exporter did not see (a function imported from "
                f"framework internals, or an in-place change made through another view of "
                f"the same memory); call the public op instead")
        else:
            raise OnnxExporterError(f"framework.onnx.export: internal error: {v} unnamed")
        g.names[v] = n
        return n

    for call in _needed_calls(out_values):
        if call.error:
            raise _fail(call, call.error)
        g.scope = "/" + call.scope.replace(".", "/") if call.scope else ""
        if do_constant_folding and call.outputs and all(o.const for o in call.outputs):
            for o in call.outputs:      # made an initializer if something reads it
                o.kind = "constant"
            continue
        for v in call.inputs + call.sym_values:
            name_of(v)
        conv = converter_for(call.op)
        if conv is None:
            raise _fail(call, "no ONNX conversion for this op (the supported ops are listed "
                              "in docs/differences.md, 'ONNX export')")
        try:
            res = conv(g, call.bound(), call)
        except ExportError as exc:
            raise _fail(call, str(exc)) from None
        res = res if isinstance(res, list) else [res]
        if len(res) != len(call.outputs):
            raise _fail(call, f"the conversion made {len(res)} outputs for "
                              f"{len(call.outputs)}", OnnxExporterError)
        for o, n in zip(call.outputs, res):
            g.names[o] = n
    g.scope = ""

    graph_outputs = []
    for v, name in zip(out_values, out_names):
        g.nodes.append(onnx.helper.make_node("Identity", [name_of(v)], [name],
                                             name=f"/output/{name}"))
        dyn = _dynamic_dims(dynamic_axes, name, len(v.shape))
        graph_outputs.append(_value_info(onnx, name, v.dtype, v.shape, dyn,
                                         known=not symbolic))

    used = {i for node in g.nodes for i in node.input}
    initializers = [t for t in g.initializers if t.name in used]
    graph = onnx.helper.make_graph(g.nodes, f"lantern_{type(model).__name__}", graph_inputs,
                                   graph_outputs, initializer=initializers)
    from .. import __version__
    proto = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", opset)], producer_name="lantern",
        producer_version=__version__, ir_version=_ir_version(onnx, opset))
    if symbolic:
        _fill_output_shapes(onnx, proto)
    size = proto.ByteSize()
    if size > _PROTOBUF_LIMIT:
        raise OnnxExporterError(f"framework.onnx.export: the model is {size / 2**30:.2f} GiB, "
                                f"over protobuf's 2 GiB limit for one ONNX file")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise OnnxExporterError(f"framework.onnx.export: the exported graph does not pass "
                                f"onnx.checker: {exc}") from None
    _write(proto.SerializeToString(), f)


def _fill_output_shapes(onnx, proto) -> None:
    """With dynamic axes, output sizes not declared dynamic come from ONNX shape inference
    (a size the trace saw may depend on a dynamic input size)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:       # inference is an aid here; the checker below is the judge
        return
    found = {o.name: o for o in inferred.graph.output}
    for out in proto.graph.output:
        src = found.get(out.name)
        if src is None or not src.type.tensor_type.HasField("shape"):
            continue
        dims = out.type.tensor_type.shape.dim
        for d, s in zip(dims, src.type.tensor_type.shape.dim):
            if not d.HasField("dim_param") and s.HasField("dim_value"):
                d.dim_value = s.dim_value


def _write(data: bytes, f) -> None:
    if hasattr(f, "write"):
        f.write(data)
        return
    path = Path(os.fspath(f))
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # created with mode 0666 less the umask, as open() would make the file itself
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
