"""Mixed precision: autocast's casting policy and GradScaler's dynamic loss scaling."""
import numpy as np
import pytest

import framework as fw


def test_autocast_casts_matmul_and_restores(device):
    a = fw.randn(4, 4, device=device)
    dev = "cpu" if device == "cpu" else "cuda"
    with fw.autocast(dev, dtype=fw.float16):
        assert (a @ a).dtype is fw.float16
        with fw.autocast(dev, enabled=False):
            assert (a @ a).dtype is fw.float32
    assert (a @ a).dtype is fw.float32
    assert not fw.amp.is_autocast_enabled(dev)


def test_autocast_backward_reaches_float32_leaves(device):
    dev = "cpu" if device == "cpu" else "cuda"
    w = fw.randn(3, 3, device=device, requires_grad=True)
    x = fw.randn(2, 3, device=device)
    with fw.autocast(dev, dtype=fw.float16):
        y = (x @ w).float().sum()
    y.backward()
    assert w.grad.dtype is fw.float32
    expected = np.broadcast_to(x.cpu().numpy().sum(0)[:, None], (3, 3))
    np.testing.assert_allclose(w.grad.cpu().numpy(), expected, rtol=2e-3, atol=2e-3)


def test_autocast_rejects_bad_arguments():
    with pytest.raises(ValueError, match="device_type"):
        fw.autocast("tpu")
    with pytest.raises(ValueError, match="float16 and bfloat16"):
        fw.autocast("cpu", dtype=fw.float64)


class _Opt:
    def __init__(self, params):
        self.param_groups = [{"params": params}]
        self.steps = 0

    def step(self):
        self.steps += 1


def _run_scaler(lib, grads_seq, **kw):
    """Drive a scaler through a scripted gradient sequence; record scale and skipped steps."""
    p = lib.zeros(3, requires_grad=True)
    if lib is fw:
        scaler, opt = fw.amp.GradScaler("cpu", **kw), _Opt([p])
    else:
        scaler = lib.amp.GradScaler("cpu", **kw)
        opt = lib.optim.SGD([p], lr=0.0)
    scales, stepped = [], []
    for g in grads_seq:
        scaler.scale(lib.tensor(1.0))  # torch's scaler initialises its scale lazily here
        p.grad = lib.tensor(np.asarray(g, np.float32) * scaler.get_scale())
        before = getattr(opt, "steps", None)
        scaler.step(opt)
        if lib is fw:
            stepped.append(opt.steps != before)
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, stepped, p.grad


def test_grad_scaler_backoff_growth_and_skip():
    seq = [[1, 2, 3], [np.inf, 0, 0], [1, 1, 1], [1, 1, 1], [np.nan, 1, 1], [1, 1, 1]]
    scales, stepped, grad = _run_scaler(fw, seq, init_scale=8.0, growth_interval=2)
    assert scales == [8.0, 4.0, 4.0, 8.0, 4.0, 4.0]
    assert stepped == [True, False, True, True, False, True]
    np.testing.assert_allclose(grad.numpy(), [1, 1, 1])  # unscaled before the step


def test_grad_scaler_matches_torch():
    torch = pytest.importorskip("torch")
    seq = [[1, 2, 3], [np.inf, 0, 0], [1, 1, 1], [1, 1, 1], [np.nan, 1, 1], [1, 1, 1], [2, 2, 2]]
    ours, _, _ = _run_scaler(fw, seq, init_scale=16.0, growth_interval=2)
    theirs, _, _ = _run_scaler(torch, seq, init_scale=16.0, growth_interval=2)
    assert ours == theirs


def test_grad_scaler_state_dict_round_trip_and_double_unscale():
    s = fw.amp.GradScaler("cpu", init_scale=4.0)
    s._growth_tracker = 3
    t = fw.amp.GradScaler("cpu")
    t.load_state_dict(s.state_dict())
    assert t.get_scale() == 4.0 and t._growth_tracker == 3
    p = fw.ones(2, requires_grad=True)
    p.grad = fw.ones(2)
    opt = _Opt([p])
    t.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        t.unscale_(opt)


def test_disabled_scaler_is_a_pass_through():
    s = fw.amp.GradScaler("cpu", enabled=False)
    x = fw.tensor(3.0)
    assert s.scale(x) is x and s.get_scale() == 1.0
