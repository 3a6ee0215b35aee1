"""framework.profiler: op and backward events, self vs total time, user ranges, averages,
the table and the Chrome trace, and that nothing stays patched after a profile."""
import json

import numpy as np
import pytest

import framework as fw
from framework import profiler
from framework.autograd import engine, function


def _step(x, w):
    y = (x * w).relu().sum()
    y.backward()
    return y


def test_forward_ops_and_backward_nodes_are_events():
    x = fw.randn(4, 5)
    w = fw.randn(4, 5, requires_grad=True)
    with profiler.profile() as prof:
        for _ in range(3):
            _step(x, w)
            prof.step()  # PyTorch's loops call it; every step is recorded
    counts = {a.key: a.count for a in prof.key_averages()}
    for name in ("Mul", "Relu", "Sum", "MulBackward0", "ReluBackward0", "SumBackward0"):
        assert counts.get(name) == 3, (name, counts)
    for ev in prof.events():
        assert ev.end_us >= ev.start_us and ev.self_cpu_time_total >= -1e-6


def test_self_time_excludes_children_and_ranges_nest():
    x = fw.randn(64, 64)
    with profiler.profile() as prof:
        with profiler.record_function("outer"):
            with profiler.record_function("inner"):
                x @ x
            x + 1
    events = {e.name: e for e in prof.events()}
    outer, inner = events["outer"], events["inner"]
    assert inner.start_us >= outer.start_us and inner.end_us <= outer.end_us
    assert events["MatMul"].end_us <= inner.end_us
    kids = inner.cpu_time_total + events["Add"].cpu_time_total
    assert outer.self_cpu_time_total == pytest.approx(outer.cpu_time_total - kids, abs=1e-6)
    assert inner.self_cpu_time_total == pytest.approx(
        inner.cpu_time_total - events["MatMul"].cpu_time_total, abs=1e-6)
    total = prof.key_averages().total_average()
    assert total.self_cpu_time_total == pytest.approx(outer.cpu_time_total, rel=1e-9)


def test_same_gradients_and_nothing_left_patched_after_an_error():
    x = fw.randn(3, 4)
    w = fw.randn(3, 4, requires_grad=True)
    _step(x, w)
    plain = w.grad.numpy().copy()
    w.grad = None
    apply_before = function.Op.__dict__["apply"].__func__
    with pytest.raises(KeyError):
        with profiler.profile():
            _step(x, w)
            raise KeyError("inside")
    np.testing.assert_array_equal(w.grad.numpy(), plain)
    assert function.Op.__dict__["apply"].__func__ is apply_before
    assert engine._profile_backward is None and profiler._active is None
    with profiler.record_function("outside"):  # no profile: a no-op
        pass


def test_profiles_do_not_nest_and_disabled_records_nothing():
    with profiler.profile():
        with pytest.raises(RuntimeError, match="already running"):
            with profiler.profile():
                pass
    apply = function.Op.__dict__["apply"].__func__
    with profiler.profile(enabled=False) as prof:
        assert function.Op.__dict__["apply"].__func__ is apply  # nothing patched
        fw.ones(2) + 1
    assert prof.events() == [] and profiler._active is None


def test_custom_functions_and_decorated_ranges():
    class Twice(fw.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    @profiler.record_function("decorated")
    def run(t):
        return Twice.apply(t).sum()

    x = fw.randn(3, requires_grad=True)
    with profiler.profile() as prof:
        run(x).backward()
    names = {e.name for e in prof.events()}
    assert {"decorated", "Twice", "TwiceBackward"} <= names, names
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 2.0, np.float32))


def test_table_shapes_and_chrome_trace(tmp_path):
    a, b = fw.randn(8, 16), fw.randn(16, 4)
    with profiler.profile(record_shapes=True) as prof:
        a @ b
        a[:2] @ b
        a @ b
    averages = prof.key_averages(group_by_input_shape=True)
    matmuls = {x.input_shapes: x.count for x in averages if x.key == "MatMul"}
    assert matmuls == {"[[8, 16], [16, 4]]": 2, "[[2, 16], [16, 4]]": 1}
    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=5)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["Name", "Self", "CPU"] and "MatMul" in table
    assert lines[-1].startswith("Self CPU time total:")
    with pytest.raises(ValueError, match="sort_by"):
        prof.key_averages().table(sort_by="no_such_field")
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    trace = json.loads(path.read_text())["traceEvents"]
    assert [e["name"] for e in trace].count("MatMul") == 3
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in trace)
    assert trace[0]["args"]["Input Dims"] == [[8, 16], [16, 4]]


def test_legacy_autograd_profiler_names():
    """Code written against torch.autograd.profiler runs on the same profiler."""
    with fw.autograd.profiler.profile(use_cuda=False) as prof:
        with fw.autograd.profiler.record_function("legacy"):
            fw.ones(3).sum()
    assert [e.name for e in prof.events()] == ["legacy", "Sum"]  # (ones() is no op)
