"""Collectives on tensors, with PyTorch's names and semantics: each works in place on the
tensors it is given, blocks by default, and with `async_op=True` returns a `Work` to `wait()`.

Host tensors go through MPI's nonblocking operations on the tensor's own memory when it is
contiguous (else on a contiguous copy written back at the end). With the "nccl" backend, CUDA
tensors go through NCCL; otherwise they are staged through host memory. float16 and bfloat16
are reduced in float32 on the host; bool SUM/PRODUCT are logical or/and (as PyTorch's NCCL).
"""
from __future__ import annotations

import enum

import numpy as np

from .._backend import is_cuda_array
from .._tensor import Tensor
from . import _mpi
from .process_group import Work, _check_group_arg, _completed, _require_group

__all__ = ["ReduceOp", "all_reduce", "broadcast", "all_gather", "all_gather_into_tensor",
           "reduce_scatter", "reduce_scatter_tensor", "send", "recv", "isend", "irecv",
           "barrier"]


class ReduceOp(enum.Enum):
    SUM = "SUM"
    AVG = "AVG"
    PRODUCT = "PRODUCT"
    MIN = "MIN"
    MAX = "MAX"
    BAND = "BAND"
    BOR = "BOR"
    BXOR = "BXOR"


_MPI_OPS = {"SUM": "SUM", "AVG": "SUM", "PRODUCT": "PROD", "MIN": "MIN", "MAX": "MAX",
            "BAND": "BAND", "BOR": "BOR", "BXOR": "BXOR"}


def _check_tensor(t, what: str = "tensor") -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{what} must be a framework Tensor, got {type(t).__name__}")


def _reduction(op, dtype: np.dtype, name: str) -> tuple[str, np.dtype]:
    """(the op as applied, the dtype it is applied in) for reducing `dtype` with `op`."""
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{name}: op must be a framework.distributed.ReduceOp, got {op!r}")
    op = op.value
    kind = dtype.kind
    if kind == "b":
        if op == "AVG":
            raise TypeError(f"{name}: ReduceOp.AVG needs a floating-point tensor, got bool")
        # as PyTorch's NCCL: the sum of booleans is "any", the product "all"
        return {"SUM": "MAX", "PRODUCT": "MIN"}.get(op, op), np.dtype(np.uint8)
    if op in ("BAND", "BOR", "BXOR") and kind not in "iu":
        raise TypeError(f"{name}: ReduceOp.{op} needs an integer or bool tensor, got {dtype}")
    if op == "AVG" and kind in "iu":
        raise TypeError(f"{name}: ReduceOp.AVG needs a floating-point tensor, got {dtype}")
    if op in ("MIN", "MAX") and kind == "c":
        raise TypeError(f"{name}: ReduceOp.{op} is not defined for complex tensors")
    if _mpi.mpi_type(dtype) is not None:
        return op, dtype
    if dtype.name in ("float16", "bfloat16"):
        return op, np.dtype(np.float32)   # MPI has no half-precision arithmetic
    raise TypeError(f"{name}: cannot reduce tensors of dtype {dtype}")


def _host_array(t: Tensor, dtype: np.dtype | None = None) -> tuple[np.ndarray, bool]:
    """A C-contiguous host array with the tensor's values (in `dtype`), and whether it is a
    copy (which must be written back for the tensor to see the result)."""
    arr = t._data
    if not is_cuda_array(arr):
        arr = t._writable()
        if arr.flags.c_contiguous and arr.flags.writeable and (dtype is None or
                                                                arr.dtype == dtype):
            return arr, False
        return np.ascontiguousarray(arr, dtype=dtype), True
    host = arr.get()
    return (np.ascontiguousarray(host, dtype=dtype) if dtype is not None else
            np.ascontiguousarray(host)), True


def _write_back(t: Tensor, host: np.ndarray) -> None:
    """Copy `host` (the tensor's shape or flat) into the tensor's memory, in its dtype."""
    arr = t._data if is_cuda_array(t._data) else t._writable()
    values = host.reshape(arr.shape)
    if values.dtype != arr.dtype:
        values = values.astype(arr.dtype)
    if is_cuda_array(arr):
        from .._backend import xp_of
        arr[...] = xp_of(arr).asarray(values)
    else:
        arr[...] = values


def _nccl_for(g, *tensors, op: str | None = None):
    """The NCCL transport when every tensor is a CUDA tensor it can handle, else None."""
    if g.nccl is None or not all(is_cuda_array(t._data) for t in tensors):
        return None
    if not all(g.nccl.supports(op, t._data.dtype) for t in tensors):
        return None
    return g.nccl


def _cuda_contiguous(t: Tensor):
    arr = t._data
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def _finish(work: Work, async_op: bool):
    if async_op:
        return work
    work.wait()
    return None


def _comm_work(name: str, requests, finish=None) -> Work:
    return Work(name, lambda: _mpi.testall(requests), finish)


def _nccl_work(name: str, test, complete, finish=None) -> Work:
    def done():
        complete()
        if finish is not None:
            return finish()
        return None
    g = _require_group()
    return Work(name, test, done, on_timeout=g.nccl.abort)


# ============================================================================== reductions
def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None,
               async_op: bool = False) -> Work | None:
    """Reduce `tensor` across all ranks with `op`; every rank gets the result, in place."""
    _check_group_arg(group)
    _check_tensor(tensor)
    g = _require_group()
    dtype = np.dtype(tensor._data.dtype)
    opname, work_dtype = _reduction(op, dtype, "all_reduce")
    if g.size == 1:
        return _finish(_completed("all_reduce"), async_op)
    nccl = _nccl_for(g, tensor, op=op.value)
    if nccl is not None:
        arr = _cuda_contiguous(tensor)
        test, complete, divide = nccl.all_reduce(arr, op.value)

        def finish():
            if divide:
                arr[...] = arr / g.size
            if arr is not tensor._data:
                tensor._data[...] = arr
        return _finish(_nccl_work("all_reduce", test, complete, finish), async_op)
    buf, copied = _host_array(tensor, work_dtype)
    req = g.comm.Iallreduce(_mpi.mpi_op("IN_PLACE"), [buf, _mpi.mpi_type(buf.dtype)],
                            _mpi.mpi_op(_MPI_OPS[opname]))

    def finish():
        if op is ReduceOp.AVG:
            np.divide(buf, g.size, out=buf)
        if copied:
            _write_back(tensor, buf)
    return _finish(_comm_work("all_reduce", [req], finish), async_op)


def reduce_scatter(output: Tensor, input_list: list[Tensor], op: ReduceOp = ReduceOp.SUM,
                   group=None, async_op: bool = False) -> Work | None:
    """`output` on rank r becomes the reduction over ranks of `input_list[r]`."""
    _check_group_arg(group)
    g = _require_group()
    _check_tensor(output, "output")
    if len(input_list) != g.size:
        raise ValueError(f"reduce_scatter: input_list has {len(input_list)} tensors, the world "
                         f"size is {g.size}")
    for i, t in enumerate(input_list):
        _check_tensor(t, f"input_list[{i}]")
        if tuple(t.shape) != tuple(output.shape) or t.dtype != output.dtype:
            raise ValueError(f"reduce_scatter: input_list[{i}] is {t.dtype} {tuple(t.shape)}, "
                             f"the output {output.dtype} {tuple(output.shape)}")
    from ..ops.shape import cat
    flat = cat([t.detach().reshape(-1) for t in input_list]) if input_list else None
    return _reduce_scatter(output, flat, op, async_op, "reduce_scatter")


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM,
                          group=None, async_op: bool = False) -> Work | None:
    """`input` holds world-size chunks of `output`'s size, in rank order; `output` on rank r
    becomes the reduction over ranks of chunk r."""
    _check_group_arg(group)
    g = _require_group()
    _check_tensor(output, "output")
    _check_tensor(input, "input")
    if input.numel() != g.size * output.numel() or input.dtype != output.dtype:
        raise ValueError(f"reduce_scatter_tensor: input is {input.dtype} with {input.numel()} "
                         f"elements; expected {output.dtype} with world size ({g.size}) x "
                         f"{output.numel()}")
    return _reduce_scatter(output, input, op, async_op, "reduce_scatter_tensor")


def _reduce_scatter(output: Tensor, flat: Tensor, op, async_op, name):
    g = _require_group()
    dtype = np.dtype(output._data.dtype)
    opname, work_dtype = _reduction(op, dtype, name)
    if g.size == 1:
        _write_back(output, flat._data if not is_cuda_array(flat._data) else flat._data.get())
        return _finish(_completed(name), async_op)
    nccl = _nccl_for(g, output, flat, op=op.value)
    if nccl is not None:
        send = _cuda_contiguous(flat)
        recv = _cuda_contiguous(output)
        test, complete, divide = nccl.reduce_scatter(send, recv, op.value)

        def finish():
            if divide:
                recv[...] = recv / g.size
            if recv is not output._data:
                output._data[...] = recv
        return _finish(_nccl_work(name, test, complete, finish), async_op)
    send, _ = _host_array(flat, work_dtype)
    recv = np.empty(output.numel(), work_dtype)
    req = g.comm.Ireduce_scatter_block([send, _mpi.mpi_type(work_dtype)],
                                       [recv, _mpi.mpi_type(work_dtype)],
                                       _mpi.mpi_op(_MPI_OPS[opname]))

    def finish():
        send.shape   # keep the send buffer alive until the operation is done
        if op is ReduceOp.AVG:
            np.divide(recv, g.size, out=recv)
        _write_back(output, recv)
    return _finish(_comm_work(name, [req], finish), async_op)


# ============================================================================== data movement
def broadcast(tensor: Tensor, src: int, group=None, async_op: bool = False) -> Work | None:
    """Every rank's `tensor` becomes rank `src`'s, in place."""
    _check_group_arg(group)
    _check_tensor(tensor)
    g = _require_group()
    _check_rank(src, g, "src")
    if g.size == 1:
        return _finish(_completed("broadcast"), async_op)
    nccl = _nccl_for(g, tensor)
    if nccl is not None:
        arr = _cuda_contiguous(tensor)
        test, complete = nccl.broadcast(arr, src)

        def finish():
            if arr is not tensor._data:
                tensor._data[...] = arr
        return _finish(_nccl_work("broadcast", test, complete, finish), async_op)
    buf, copied = _host_array(tensor)
    req = g.comm.Ibcast([_mpi.as_bytes(buf), _mpi.mpi_op("BYTE")], root=src)

    def finish():
        if copied and g.rank != src:
            _write_back(tensor, buf)
    return _finish(_comm_work("broadcast", [req], finish), async_op)


def all_gather(tensor_list: list[Tensor], tensor: Tensor, group=None,
               async_op: bool = False) -> Work | None:
    """`tensor_list[r]` becomes rank r's `tensor` (all the same shape and dtype)."""
    _check_group_arg(group)
    _check_tensor(tensor)
    g = _require_group()
    if len(tensor_list) != g.size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors, the world "
                         f"size is {g.size}")
    for i, t in enumerate(tensor_list):
        _check_tensor(t, f"tensor_list[{i}]")
        if tuple(t.shape) != tuple(tensor.shape) or t.dtype != tensor.dtype:
            raise ValueError(f"all_gather: tensor_list[{i}] is {t.dtype} {tuple(t.shape)}, the "
                             f"tensor {tensor.dtype} {tuple(tensor.shape)}")
    from ..creation import empty
    flat = empty(g.size * tensor.numel(), dtype=tensor.dtype, device=tensor.device)
    work = _all_gather(flat, tensor, "all_gather", lambda: _split_into(flat, tensor_list))
    return _finish(work, async_op)


def _split_into(flat: Tensor, outs: list[Tensor]) -> None:
    n = flat.numel() // max(len(outs), 1)
    for r, out in enumerate(outs):
        piece = flat._data[r * n:(r + 1) * n]
        if is_cuda_array(out._data):
            out._data[...] = piece.reshape(out._data.shape)
        else:
            _write_back(out, piece if not is_cuda_array(piece) else piece.get())


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group=None,
                           async_op: bool = False) -> Work | None:
    """`output_tensor` (world size x the input's elements) becomes every rank's input,
    concatenated in rank order."""
    _check_group_arg(group)
    _check_tensor(output_tensor, "output_tensor")
    _check_tensor(input_tensor, "input_tensor")
    g = _require_group()
    if output_tensor.numel() != g.size * input_tensor.numel() or \
            output_tensor.dtype != input_tensor.dtype:
        raise ValueError(f"all_gather_into_tensor: output is {output_tensor.dtype} with "
                         f"{output_tensor.numel()} elements; expected {input_tensor.dtype} with "
                         f"world size ({g.size}) x {input_tensor.numel()}")
    return _finish(_all_gather(output_tensor, input_tensor, "all_gather_into_tensor"), async_op)


def _all_gather(out: Tensor, inp: Tensor, name: str, then=None) -> Work:
    g = _require_group()
    if g.size == 1:
        _write_back(out, inp._data if not is_cuda_array(inp._data) else inp._data.get())
        if then is not None:
            then()
        return _completed(name)
    nccl = _nccl_for(g, out, inp)
    if nccl is not None:
        send = _cuda_contiguous(inp)
        recv = _cuda_contiguous(out)
        test, complete = nccl.all_gather(send, recv)

        def finish():
            if recv is not out._data:
                out._data[...] = recv.reshape(out._data.shape)
            if then is not None:
                then()
        return _nccl_work(name, test, complete, finish)
    send, _ = _host_array(inp)
    recv, copied = _host_array(out)
    req = g.comm.Iallgather([_mpi.as_bytes(send), _mpi.mpi_op("BYTE")],
                            [_mpi.as_bytes(recv), _mpi.mpi_op("BYTE")])

    def finish():
        send.shape   # keep the send buffer alive until the operation is done
        if copied:
            _write_back(out, recv)
        if then is not None:
            then()
    return _comm_work(name, [req], finish)


# ============================================================================== point to point
def _check_rank(r, g, what: str) -> None:
    if not isinstance(r, (int, np.integer)) or not 0 <= r < g.size:
        raise ValueError(f"{what}={r!r} is not a rank of this group (0..{g.size - 1})")


def isend(tensor: Tensor, dst: int, group=None, tag: int = 0) -> Work:
    """Send `tensor` to rank `dst` without waiting; returns a Work."""
    _check_group_arg(group)
    _check_tensor(tensor)
    g = _require_group()
    _check_rank(dst, g, "dst")
    if dst == g.rank:
        raise ValueError("Invalid destination rank: should not be the same as rank of the "
                         "current process.")
    nccl = _nccl_for(g, tensor)
    if nccl is not None:
        arr = _cuda_contiguous(tensor)
        test, complete = nccl.send(arr, dst)
        return _nccl_work("send", test, complete, lambda: arr.shape)
    buf, _ = _host_array(tensor)
    req = g.comm.Isend([_mpi.as_bytes(buf), _mpi.mpi_op("BYTE")], dest=dst, tag=tag)
    return _comm_work("send", [req], lambda: buf.shape)


def irecv(tensor: Tensor, src: int | None = None, group=None, tag: int = 0) -> Work:
    """Receive into `tensor` from rank `src` (any rank when None) without waiting; the
    Work's `result()` is the sender's rank."""
    _check_group_arg(group)
    _check_tensor(tensor)
    g = _require_group()
    if src is not None:
        _check_rank(src, g, "src")
        if src == g.rank:
            raise ValueError("Invalid source rank: should not be the same as rank of the "
                             "current process.")
    nccl = _nccl_for(g, tensor)
    if nccl is not None:
        if src is None:
            raise ValueError("recv from any source is not supported by NCCL: pass src=")
        arr = _cuda_contiguous(tensor)
        test, complete = nccl.recv(arr, src)

        def finish_nccl():
            if arr is not tensor._data:
                tensor._data[...] = arr
            return src
        return _nccl_work("recv", test, complete, finish_nccl)
    MPI = _mpi._mod()
    buf, copied = _host_array(tensor)
    status = MPI.Status()
    req = g.comm.Irecv([_mpi.as_bytes(buf), MPI.BYTE],
                       source=MPI.ANY_SOURCE if src is None else src, tag=tag)

    def finish():
        if copied:
            _write_back(tensor, buf)
        return status.Get_source()
    return Work("recv", lambda: req.Test(status), finish)


def send(tensor: Tensor, dst: int, group=None, tag: int = 0) -> None:
    """Send `tensor` to rank `dst` (blocks until it has been handed over)."""
    isend(tensor, dst, group, tag).wait()


def recv(tensor: Tensor, src: int | None = None, group=None, tag: int = 0) -> int:
    """Receive into `tensor` from rank `src` (any rank when None); returns the sender."""
    return irecv(tensor, src, group, tag).result()


def barrier(group=None, async_op: bool = False, device_ids=None) -> Work | None:
    """Wait until every rank has reached the barrier."""
    _check_group_arg(group)
    g = _require_group()
    if g.size == 1:
        return _finish(_completed("barrier"), async_op)
    req = g.comm.Ibarrier()
    return _finish(_comm_work("barrier", [req]), async_op)
