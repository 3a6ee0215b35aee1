"""Where a program's time goes, op by op: `framework.profiler.profile`, after torch.profiler.

    with framework.profiler.profile() as prof:
        with framework.profiler.record_function("step"):
            loss = model(x).sum()
            loss.backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")     # chrome://tracing or ui.perfetto.dev

Each op's forward is an event named after its class (`ConvNd`, `Relu`, ...), each backward
an event named as its graph node (`ConvNdBackward0`, ...; the ops a backward runs are its
children), and `record_function(name)` adds a range of your own. An event's self time
excludes its children's. Times are host wall-clock times: on CUDA an op's event covers its
launch, not its run on the GPU, unless the code synchronises (CuPy launches asynchronously).

While a profile is active, `Op.apply` and `Function.apply` are replaced by timed versions and
the autograd engine times each node's backward; outside one nothing is timed, and the only
cost is one check per backward node.
"""
from __future__ import annotations

import enum
import json
import os
import threading
import time
from dataclasses import dataclass

__all__ = ["profile", "record_function", "ProfilerActivity", "FunctionEvent",
           "FunctionEventAvg", "EventList"]


class ProfilerActivity(enum.Enum):
    CPU = "cpu"
    CUDA = "cuda"


@dataclass
class FunctionEvent:
    """One timed range: times in microseconds from the profile's start."""
    name: str
    start_us: float
    end_us: float = 0.0
    thread: int = 0
    children_us: float = 0.0
    input_shapes: list | None = None

    @property
    def cpu_time_total(self) -> float:
        return self.end_us - self.start_us

    @property
    def self_cpu_time_total(self) -> float:
        return self.cpu_time_total - self.children_us


@dataclass
class FunctionEventAvg:
    """The events of one name (and, with group_by_input_shape, one input shape) together."""
    key: str
    count: int = 0
    cpu_time_total: float = 0.0
    self_cpu_time_total: float = 0.0
    input_shapes: str = ""

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / self.count if self.count else 0.0

    @property
    def self_cpu_time(self) -> float:
        return self.self_cpu_time_total / self.count if self.count else 0.0


def _format_us(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


class EventList(list):
    """A list of events (or of averages) with torch's `table`."""

    def table(self, sort_by: str | None = None, row_limit: int = 100,
              max_name_column_width: int = 55) -> str:
        rows = list(self)
        if sort_by is not None:
            if rows and not hasattr(rows[0], sort_by):
                raise ValueError(f"sort_by={sort_by!r}: not a field of {type(rows[0]).__name__}")
            rows.sort(key=lambda r: getattr(r, sort_by), reverse=True)
        if row_limit is not None and row_limit >= 0:
            rows = rows[:row_limit]
        total_self = sum(r.self_cpu_time_total for r in self)
        shapes = any(getattr(r, "input_shapes", "") for r in rows)
        w = max([len("Name")] + [min(len(_key(r)), max_name_column_width) for r in rows])
        head = (f"{'Name':<{w}}  {'Self CPU %':>10}  {'Self CPU':>12}  {'CPU total':>12}  "
                f"{'CPU time avg':>12}  {'# of Calls':>10}" + ("  Input Shapes" if shapes else ""))
        lines = [head, "-" * len(head)]
        for r in rows:
            count = getattr(r, "count", 1)
            share = 100 * r.self_cpu_time_total / (total_self or 1.0)
            line = (f"{_key(r)[:w]:<{w}}  {share:>9.2f}%  "
                    f"{_format_us(r.self_cpu_time_total):>12}  "
                    f"{_format_us(r.cpu_time_total):>12}  "
                    f"{_format_us(r.cpu_time_total / max(count, 1)):>12}  {count:>10}")
            if shapes:
                line += f"  {r.input_shapes}"
            lines.append(line)
        lines.append("-" * len(head))
        lines.append(f"Self CPU time total: {_format_us(total_self)}")
        return "\n".join(lines)

    def total_average(self) -> FunctionEventAvg:
        avg = FunctionEventAvg("Total")
        for r in self:
            avg.count += getattr(r, "count", 1)
            avg.cpu_time_total += r.cpu_time_total
            avg.self_cpu_time_total += r.self_cpu_time_total
        return avg


def _key(r) -> str:
    return r.key if isinstance(r, FunctionEventAvg) else r.name


_active: "profile | None" = None
_lock = threading.Lock()


class profile:
    """Record the ops run inside `with profile(...)` (see the module doc). Arguments as
    torch.profiler.profile's; `record_shapes` keeps each op's input shapes (for
    `key_averages(group_by_input_shape=True)`). One profile at a time per process."""

    def __init__(self, activities=None, *, record_shapes: bool = False,
                 profile_memory: bool = False, with_stack: bool = False,
                 enabled: bool = True, **unused):
        self.activities = set(activities or (ProfilerActivity.CPU,))
        self.record_shapes = record_shapes
        self.enabled = enabled
        self._events: list[FunctionEvent] = []
        self._stacks = threading.local()
        self._t0 = 0.0
        self._saved = None

    # -- the timing of one range (an op, a backward node, a user range)
    def _open(self, name: str, shapes=None) -> FunctionEvent:
        stack = getattr(self._stacks, "s", None)
        if stack is None:
            stack = self._stacks.s = []
        ev = FunctionEvent(name, (time.perf_counter() - self._t0) * 1e6,
                           thread=threading.get_ident(), input_shapes=shapes)
        stack.append(ev)
        return ev

    def _close(self, ev: FunctionEvent) -> None:
        ev.end_us = (time.perf_counter() - self._t0) * 1e6
        stack = self._stacks.s
        stack.pop()
        if stack:
            stack[-1].children_us += ev.cpu_time_total
        self._events.append(ev)

    def _shapes(self, args):
        return [list(a.shape) if hasattr(a, "shape") else [] for a in args]

    def _install(self) -> None:
        from .autograd import engine, function
        op_apply = function.Op.__dict__["apply"].__func__
        fn_apply = function.Function.__dict__["apply"].__func__
        prof = self

        def timed(original):
            def apply(cls, *args, **kwargs):
                ev = prof._open(cls.__name__,
                                prof._shapes(args) if prof.record_shapes else None)
                try:
                    return original(cls, *args, **kwargs)
                finally:
                    prof._close(ev)
            return classmethod(apply)

        def backward(node, grads):
            ev = prof._open(node.name())
            try:
                return node.backward(*grads)
            finally:
                prof._close(ev)

        self._saved = (op_apply, fn_apply)
        function.Op.apply = timed(op_apply)
        function.Function.apply = timed(fn_apply)
        engine._profile_backward = backward

    def _uninstall(self) -> None:
        from .autograd import engine, function
        op_apply, fn_apply = self._saved
        function.Op.apply = classmethod(op_apply)
        function.Function.apply = classmethod(fn_apply)
        engine._profile_backward = None

    def __enter__(self) -> "profile":
        global _active
        if not self.enabled:
            return self
        with _lock:
            if _active is not None:
                raise RuntimeError("a framework.profiler.profile is already running in this "
                                   "process; profiles do not nest")
            _active = self
        self._events = []
        self._t0 = time.perf_counter()
        self._install()
        return self

    def __exit__(self, *exc) -> None:
        global _active
        if not self.enabled:
            return
        self._uninstall()
        with _lock:
            _active = None

    def step(self) -> None:
        """Kept for PyTorch's training loops (`prof.step()`); there is no schedule here:
        every step inside the profile is recorded."""

    # -- results
    def events(self) -> EventList:
        """Every recorded event, in order of start."""
        return EventList(sorted(self._events, key=lambda e: e.start_us))

    def key_averages(self, group_by_input_shape: bool = False) -> EventList:
        """One FunctionEventAvg per event name (and input shapes, if asked), in order of
        first occurrence."""
        groups: dict = {}
        for ev in self.events():
            shapes = str(ev.input_shapes) if group_by_input_shape and ev.input_shapes else ""
            k = (ev.name, shapes)
            avg = groups.get(k)
            if avg is None:
                avg = groups[k] = FunctionEventAvg(ev.name, input_shapes=shapes)
            avg.count += 1
            avg.cpu_time_total += ev.cpu_time_total
            avg.self_cpu_time_total += ev.self_cpu_time_total
        return EventList(groups.values())

    def export_chrome_trace(self, path) -> None:
        """The events as Chrome's trace format (complete events, microseconds), written
        atomically; open it in chrome://tracing or ui.perfetto.dev."""
        pid = os.getpid()
        trace = {"traceEvents": [
            {"name": e.name, "ph": "X", "ts": round(e.start_us, 3),
             "dur": round(e.cpu_time_total, 3), "pid": pid, "tid": e.thread, "cat": "cpu_op",
             **({"args": {"Input Dims": e.input_shapes}} if e.input_shapes else {})}
            for e in self.events()], "displayTimeUnit": "ms"}
        path = os.fspath(path)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(trace, f)
        os.replace(tmp, path)


class record_function:
    """A named range of your own inside a profile (a no-op outside one); a context manager
    or a decorator."""

    def __init__(self, name: str, args: str | None = None):
        self.name = name
        self._event = None

    def __enter__(self) -> "record_function":
        prof = _active
        if prof is not None:
            self._event = (prof, prof._open(self.name))
        return self

    def __exit__(self, *exc) -> None:
        if self._event is not None:
            prof, ev = self._event
            prof._close(ev)
            self._event = None

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with record_function(self.name):
                return fn(*args, **kwargs)
        return wrapped
