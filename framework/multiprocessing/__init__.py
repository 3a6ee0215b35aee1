"""`framework.multiprocessing`: Python's multiprocessing, with tensors that processes share,
as torch.multiprocessing.

Everything of `multiprocessing` is here (Process, Queue, Pool, get_context, ...). On top:

- `Tensor.share_memory_()` moves a CPU tensor's data into shared memory (in place; the
  tensor object stays the same), `Tensor.is_shared()` tells, and `Module.share_memory()` does
  it for every parameter, gradient and buffer. A forked child inherits the mapping; a
  shared tensor sent through a queue, pipe or the arguments of a spawned process travels as
  a handle to the same memory (see `reductions`). That is Hogwild training: the parent
  shares the model, each process runs its own optimizer on it, all update the same weights.
- `spawn(fn, args, nprocs)` / `start_processes`: run `fn(i, *args)` in `nprocs` processes and
  raise in the parent if one fails (ProcessRaisedException with the child's traceback).
- `set_sharing_strategy` / `get_sharing_strategy`: both of PyTorch's names are accepted; the
  memory is always named POSIX shared memory (PyTorch's 'file_system' strategy).

CUDA tensors are not shared: `share_memory_()` leaves them as they are and sending one to
another process copies it.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import sys
import traceback
from multiprocessing import *  # noqa: F401,F403

from .reductions import init_reductions

__all__ = list(multiprocessing.__all__) + [
    "spawn", "start_processes", "ProcessContext", "ProcessException", "ProcessRaisedException",
    "ProcessExitedException", "set_sharing_strategy", "get_sharing_strategy",
    "get_all_sharing_strategies"]

init_reductions()

_STRATEGIES = {"file_descriptor", "file_system"}
_strategy = "file_system"


def set_sharing_strategy(new_strategy: str) -> None:
    """Accepts PyTorch's strategy names; Lantern always shares through named shared memory."""
    global _strategy
    if new_strategy not in _STRATEGIES:
        raise ValueError(f"unknown sharing strategy {new_strategy!r}; expected one of "
                         f"{sorted(_STRATEGIES)}")
    _strategy = new_strategy


def get_sharing_strategy() -> str:
    return _strategy


def get_all_sharing_strategies() -> set:
    return set(_STRATEGIES)


# ============================================================================ spawn
class ProcessException(Exception):
    def __init__(self, msg: str, error_index: int, pid: int):
        super().__init__(msg)
        self.msg = msg
        self.error_index = error_index
        self.pid = pid

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid)


class ProcessRaisedException(ProcessException):
    """A spawned process raised: the message holds its traceback."""


class ProcessExitedException(ProcessException):
    """A spawned process exited with a non-zero code (or was killed by a signal)."""

    def __init__(self, msg: str, error_index: int, error_pid: int, exit_code: int,
                 signal_name: str | None = None):
        super().__init__(msg, error_index, error_pid)
        self.exit_code = exit_code
        self.signal_name = signal_name

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid, self.exit_code,
                            self.signal_name)


def _run(fn, i, args, errors) -> None:
    try:
        fn(i, *args)
    except KeyboardInterrupt:
        pass
    except Exception:
        errors.put((i, traceback.format_exc()))
        sys.exit(1)


class ProcessContext:
    """The processes started by `start_processes`; `join()` waits for them."""

    def __init__(self, processes: list, errors) -> None:
        self.processes = processes
        self.errors = errors
        self.sentinels = {p.sentinel: i for i, p in enumerate(processes)}

    def pids(self) -> list:
        return [p.pid for p in self.processes]

    def join(self, timeout: float | None = None) -> bool:
        """Wait (up to `timeout` seconds) for a process to end; True once all ended cleanly.
        When one failed, the others are terminated and the failure is raised here."""
        if not self.sentinels:
            return True
        ready = multiprocessing.connection.wait(list(self.sentinels), timeout=timeout)
        failed = None
        for s in ready:
            i = self.sentinels.pop(s)
            p = self.processes[i]
            p.join()
            if p.exitcode != 0 and failed is None:
                failed = i
        if failed is None:
            return not self.sentinels
        for p in self.processes:
            if p.is_alive():
                p.terminate()
            p.join()
        p = self.processes[failed]
        if not self.errors.empty():
            i, tb = self.errors.get()
            raise ProcessRaisedException(f"\n\n-- Process {i} terminated with the following "
                                         f"error:\n{tb}", i, self.processes[i].pid)
        code = p.exitcode
        if code < 0:
            name = signal.Signals(-code).name
            raise ProcessExitedException(f"process {failed} terminated with signal {name}",
                                         failed, p.pid, code, name)
        raise ProcessExitedException(f"process {failed} terminated with exit code {code}",
                                     failed, p.pid, code)


def start_processes(fn, args=(), nprocs: int = 1, join: bool = True, daemon: bool = False,
                    start_method: str = "spawn"):
    """Run `fn(i, *args)` for i in range(nprocs), each in a process of `start_method`.
    With `join`, wait for all and raise if one failed; else return the ProcessContext."""
    ctx = multiprocessing.get_context(start_method)
    errors = ctx.SimpleQueue()
    processes = []
    for i in range(nprocs):
        p = ctx.Process(target=_run, args=(fn, i, args, errors), daemon=daemon)
        p.start()
        processes.append(p)
    context = ProcessContext(processes, errors)
    if not join:
        return context
    while not context.join():
        pass
    return None


def spawn(fn, args=(), nprocs: int = 1, join: bool = True, daemon: bool = False,
          start_method: str = "spawn"):
    """`start_processes` with the 'spawn' start method by default, as torch.multiprocessing."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)
