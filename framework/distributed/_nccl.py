"""GPU transport: NCCL through CuPy (`cupy.cuda.nccl`).

The communicator is bootstrapped over MPI (rank 0 makes the unique id, MPI broadcasts its 128
bytes). Operations run on a stream of their own that first waits for the work queued so far
on the caller's stream, so gradient buckets are reduced while backward keeps computing; the
returned event tells when an operation is done, and completing it makes the caller's stream
wait for it.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["NcclTransport"]

_DTYPES = {"float16": "NCCL_FLOAT16", "bfloat16": "NCCL_BFLOAT16", "float32": "NCCL_FLOAT32",
           "float64": "NCCL_FLOAT64", "int8": "NCCL_INT8", "uint8": "NCCL_UINT8",
           "bool": "NCCL_UINT8", "int32": "NCCL_INT32", "uint32": "NCCL_UINT32",
           "int64": "NCCL_INT64", "uint64": "NCCL_UINT64"}
_COMPLEX_PART = {"complex64": "float32", "complex128": "float64"}
_OPS = {"SUM": "NCCL_SUM", "PRODUCT": "NCCL_PROD", "MAX": "NCCL_MAX", "MIN": "NCCL_MIN",
        "AVG": "NCCL_AVG"}


def _local_rank(comm) -> int:
    """This process's index among the job's processes on its machine."""
    for name in ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                 "SLURM_LOCALID"):
        v = os.environ.get(name)
        if v not in (None, ""):
            return int(v)
    from mpi4py import MPI
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_rank()
    finally:
        node.Free()


class NcclTransport:
    def __init__(self, comm, rank: int, size: int):
        try:
            import cupy
            from cupy.cuda import nccl
        except Exception as exc:  # noqa: BLE001 - ImportError or a CUDA library failing
            raise RuntimeError(f"backend='nccl' needs CuPy with NCCL ({type(exc).__name__}: "
                               f"{exc}): pip install 'lantern[cuda12]' nvidia-nccl-cu12") from None
        if not getattr(nccl, "available", False):
            raise RuntimeError("backend='nccl': CuPy cannot load the NCCL library; "
                               "pip install nvidia-nccl-cu12 (or use backend='mpi')")
        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # noqa: BLE001 - no driver
            raise RuntimeError(f"backend='nccl' needs a CUDA GPU: {exc}") from None
        if n == 0:
            raise RuntimeError("backend='nccl' needs a CUDA GPU; this machine has none")
        self._cp, self._nccl = cupy, nccl
        self.device = _local_rank(comm) % n
        cupy.cuda.Device(self.device).use()
        uid = np.zeros(128, np.int64)
        if rank == 0:
            raw = nccl.get_unique_id()
            uid[:len(raw)] = raw
        comm.Bcast(uid, root=0)
        with cupy.cuda.Device(self.device):
            self.comm = nccl.NcclCommunicator(size, tuple(int(v) for v in uid), rank)
            self.stream = cupy.cuda.Stream(non_blocking=True)
        self.size = size

    # ------------------------------------------------------------------ capabilities
    def supports(self, op: str | None, dtype: np.dtype) -> bool:
        """Whether NCCL itself can run `op` (None: data movement) on `dtype`."""
        name = np.dtype(dtype).name
        if name in _COMPLEX_PART:
            return op in (None, "SUM", "AVG")
        if name == "bool" and op in ("SUM", "PRODUCT", "AVG"):
            return False   # the caller maps them to MAX/MIN
        if op is not None and op not in _OPS:
            return False   # bitwise ops: NCCL has none
        return _DTYPES.get(name) is not None and hasattr(self._nccl, _DTYPES[name])

    def _typed(self, arr):
        """(NCCL datatype, element count) of a contiguous array; complex as real pairs."""
        name = arr.dtype.name
        if name in _COMPLEX_PART:
            return getattr(self._nccl, _DTYPES[_COMPLEX_PART[name]]), arr.size * 2
        return getattr(self._nccl, _DTYPES[name]), arr.size

    def _op(self, op: str):
        """The NCCL op, and whether the result must still be divided by the world size
        (NCCL before 2.10 has no average)."""
        if op == "AVG" and not hasattr(self._nccl, "NCCL_AVG"):
            return self._nccl.NCCL_SUM, True
        return getattr(self._nccl, _OPS[op]), False

    # ------------------------------------------------------------------ launching
    def _launch(self, fn):
        """Run `fn(stream_ptr)` on the NCCL stream after the caller's queued work; returns
        (test, complete) for a Work."""
        cp = self._cp
        caller = cp.cuda.get_current_stream()
        self.stream.wait_event(caller.record())
        fn(self.stream.ptr)
        done = self.stream.record()
        comm = self.comm

        def test() -> bool:
            if done.done:
                return True
            if hasattr(comm, "check_async_error"):
                try:
                    comm.check_async_error()
                except Exception as exc:  # noqa: BLE001 - NCCL saw a peer fail
                    from .process_group import DistBackendError
                    raise DistBackendError(f"NCCL reported an error: {exc}") from None
            return False

        def complete() -> None:
            caller.wait_event(done)
        return test, complete

    def all_reduce(self, arr, op: str):
        dt, count = self._typed(arr)
        nop, divide = self._op(op)
        ptr = arr.data.ptr
        test, complete = self._launch(
            lambda s: self.comm.allReduce(ptr, ptr, count, dt, nop, s))
        return test, complete, divide

    def broadcast(self, arr, root: int):
        ptr, nbytes = arr.data.ptr, arr.nbytes
        return self._launch(
            lambda s: self.comm.bcast(ptr, nbytes, self._nccl.NCCL_UINT8, root, s))

    def all_gather(self, send, recv):
        sptr, rptr, nbytes = send.data.ptr, recv.data.ptr, send.nbytes
        return self._launch(
            lambda s: self.comm.allGather(sptr, rptr, nbytes, self._nccl.NCCL_UINT8, s))

    def reduce_scatter(self, send, recv, op: str):
        dt, count = self._typed(recv)
        nop, divide = self._op(op)
        sptr, rptr = send.data.ptr, recv.data.ptr
        test, complete = self._launch(
            lambda s: self.comm.reduceScatter(sptr, rptr, count, dt, nop, s))
        return test, complete, divide

    def send(self, arr, peer: int):
        ptr, nbytes = arr.data.ptr, arr.nbytes
        return self._launch(
            lambda s: self.comm.send(ptr, nbytes, self._nccl.NCCL_UINT8, peer, s))

    def recv(self, arr, peer: int):
        ptr, nbytes = arr.data.ptr, arr.nbytes
        return self._launch(
            lambda s: self.comm.recv(ptr, nbytes, self._nccl.NCCL_UINT8, peer, s))

    # ------------------------------------------------------------------ teardown
    def abort(self) -> None:
        try:
            self.comm.abort()
        except Exception:  # noqa: BLE001 - already torn down
            pass

    def destroy(self) -> None:
        self.comm.destroy()
