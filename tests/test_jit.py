"""The compiled CPU kernels (framework._jit) against the NumPy formulations and PyTorch.

Ops that have a compiled path (softmax over the last dim, layer and RMS norm, batch norm over
channels-last or 2-D inputs, instance and group norm over the images-last and channels-last
activations that the convolutions produce) run here twice, kernels on and off, and must agree with each
other, with torch (float32 as used, float64 tightly), and pass gradcheck in float64 through the
compiled path. Skipped when numba is not installed (the NumPy paths are then the only ones,
and the rest of the suite covers them)."""
from __future__ import annotations

import numpy as np
import pytest

import framework
import framework.nn.functional as F
from conftest import torch_or_skip
from framework import _jit
from framework.autograd import gradcheck

pytestmark = pytest.mark.skipif(_jit.kernels() is None, reason="numba is not installed")
RNG = np.random.default_rng(7)


@pytest.fixture(params=[True, False], ids=["jit", "numpy"])
def jit_mode(request):
    old = _jit.set_enabled(request.param)
    yield request.param
    _jit.set_enabled(old)


def _channels_last(t):
    return t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)


def _images_last(t):
    nd = t.ndim
    return t.permute(*range(1, nd), 0).contiguous().permute(nd - 1, *range(nd - 1))


def _any_channels_last(t):
    nd = t.ndim
    return t.permute(0, *range(2, nd), 1).contiguous().permute(0, nd - 1, *range(1, nd - 1))


def _instance_norm(x, w, b, layout):
    return F.instance_norm(layout(x), None, None, w, b, eps=1e-5)


def _softmax(x, w=None, b=None):
    return F.softmax(x, dim=-1)


def _layer_norm(x, w, b):
    return F.layer_norm(x, x.shape[-1:], w, b, eps=1e-5)


def _rms_norm(x, w, b):
    return F.rms_norm(x, x.shape[-1:], w, eps=1e-6)


def _batch_norm(x, w, b, channels_last=False, images_last=False):
    rm = framework.zeros(x.shape[1], dtype=x.dtype)
    rv = framework.ones(x.shape[1], dtype=x.dtype)
    if channels_last:
        x = _channels_last(x)
    if images_last:
        x = _images_last(x)
    return F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)


# (name, fn, input shape, affine size or None, torch fn)
CASES = [
    ("softmax", _softmax, (6, 3, 17), None),
    ("layer_norm", _layer_norm, (5, 4, 33), 33),
    ("layer_norm_noaffine", lambda x, w, b: F.layer_norm(x, x.shape[-1:]), (7, 40), None),
    ("rms_norm", _rms_norm, (5, 4, 33), 33),
    ("batch_norm_2d", _batch_norm, (9, 12), 12),
    ("batch_norm_cl", lambda x, w, b: _batch_norm(x, w, b, True), (3, 8, 5, 6), 8),
    ("batch_norm_il", lambda x, w, b: _batch_norm(x, w, b, images_last=True), (3, 5, 4, 6, 7), 5),
    ("instance_norm_il", lambda x, w, b: _instance_norm(x, w, b, _images_last), (3, 4, 5, 6, 7), 4),
    ("instance_norm_cl", lambda x, w, b: _instance_norm(x, w, b, _any_channels_last),
     (2, 6, 5, 9), 6),
    ("group_norm_il", lambda x, w, b: F.group_norm(_images_last(x), 2, w, b), (3, 6, 4, 5, 6), 6),
    ("group_norm_cl", lambda x, w, b: F.group_norm(_any_channels_last(x), 3, w, b), (2, 6, 7, 5),
     6),
]


def _torch_ref(torch, name, x, w, b):
    tF = torch.nn.functional
    if name == "softmax":
        return tF.softmax(x, -1)
    if name == "layer_norm":
        return tF.layer_norm(x, x.shape[-1:], w, b, eps=1e-5)
    if name == "layer_norm_noaffine":
        return tF.layer_norm(x, x.shape[-1:])
    if name == "rms_norm":
        return tF.rms_norm(x, x.shape[-1:], w, eps=1e-6)
    if name.startswith("group_norm"):
        return tF.group_norm(x, 2 if name.endswith("il") else 3, w, b)
    if name.startswith("instance_norm"):
        return tF.instance_norm(x, None, None, w, b, eps=1e-5)
    rm = torch.zeros(x.shape[1], dtype=x.dtype)
    rv = torch.ones(x.shape[1], dtype=x.dtype)
    return tF.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)


def _inputs(shape, n_aff, dtype, requires_grad=True):
    x = framework.tensor((RNG.standard_normal(shape) * 2 + 0.5).astype(dtype),
                         requires_grad=requires_grad)
    if n_aff is None:
        return x, None, None
    w = framework.tensor((RNG.standard_normal(n_aff) * 0.5 + 1).astype(dtype),
                         requires_grad=requires_grad)
    b = framework.tensor(RNG.standard_normal(n_aff).astype(dtype), requires_grad=requires_grad)
    return x, w, b


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_forward_backward_match_torch(jit_mode, case, dtype):
    torch = torch_or_skip()
    name, fn, shape, n_aff = case
    x, w, b = _inputs(shape, n_aff, dtype)
    y = fn(x, w, b)
    gy = RNG.standard_normal(y.shape).astype(dtype)
    y.backward(framework.tensor(gy))
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    tw = torch.tensor(w.detach().numpy(), requires_grad=True) if w is not None else None
    tb = torch.tensor(b.detach().numpy(), requires_grad=True) if b is not None else None
    ty = _torch_ref(torch, name, tx, tw, tb)
    ty.backward(torch.tensor(gy))
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **tol)
    if w is not None:
        np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), **tol)
    if b is not None and tb.grad is not None:
        np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), **tol)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_gradcheck_through_kernels(case):
    name, fn, shape, n_aff = case
    x, w, b = _inputs(shape, n_aff, np.float64)
    inputs = tuple(t for t in (x, w, b) if t is not None)

    def f(*args):
        return fn(*args, *([None] * (3 - len(args))))
    assert gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_kernels_are_taken_and_agree_with_numpy():
    """The compiled path is the one taken (its marker is set), and it agrees with the NumPy
    path on a large channels-last batch norm and a large layer norm, where the float64
    accumulation of the statistics matters."""
    x = (RNG.standard_normal((16, 32, 40, 40)) * 3 + 100).astype(np.float32)
    outs = {}
    for flag in (True, False):
        old = _jit.set_enabled(flag)
        try:
            xt = _channels_last(framework.tensor(x, requires_grad=True))
            xt.retain_grad()
            w = framework.ones(32, requires_grad=True)
            y = _batch_norm(xt, w, None)
            assert (y.grad_fn.jit == "channels") == flag
            y.backward(framework.tensor(np.cos(x)))
            for layout in (_images_last, _channels_last):
                yi = F.instance_norm(layout(framework.tensor(x[:4, :8], requires_grad=True)))
                assert (yi.grad_fn.jit == "cells") == flag
            yb = _batch_norm(framework.tensor(x[:4, :8], requires_grad=True), None, None,
                             images_last=True)
            assert (yb.grad_fn.jit == "cells") == flag
            z = framework.tensor(x.reshape(-1, 160), requires_grad=True)
            yl = F.layer_norm(z, (160,))
            assert (yl.grad_fn.jit == "rows") == flag
            yl.sum().backward()
            outs[flag] = (y.detach().numpy(), xt.grad.numpy(), w.grad.numpy(),
                          yl.detach().numpy(), z.grad.numpy())
        finally:
            _jit.set_enabled(old)
    for a, b in zip(outs[True], outs[False]):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("module,layout", [("InstanceNorm3d", _images_last),
                                           ("InstanceNorm3d", _any_channels_last),
                                           ("BatchNorm3d", _images_last)])
def test_cell_kernels_running_statistics_match_torch(module, layout):
    """The cell kernels' statistics feed the running statistics as torch's do
    (InstanceNorm3d(track_running_stats=True): the batch mean of per-sample means and
    unbiased variances; BatchNorm3d: the unbiased batch variance)."""
    torch = torch_or_skip()
    x = (RNG.standard_normal((3, 5, 4, 6, 8)) * 2 + 1).astype(np.float32)
    kw = dict(track_running_stats=True) if module == "InstanceNorm3d" else {}
    m = getattr(framework.nn, module)(5, **kw)
    tm = getattr(torch.nn, module)(5, **kw)
    for _ in range(2):
        y = m(layout(framework.tensor(x, requires_grad=True)))
        assert y.grad_fn.jit == "cells"
        ty = tm(torch.tensor(x))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m.running_mean.numpy(), tm.running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(m.running_var.numpy(), tm.running_var.numpy(), rtol=1e-5)


def test_nan_propagates_like_numpy():
    x = np.array([[1.0, np.nan, 2.0], [0.0, 1.0, 2.0]], dtype=np.float32)
    got = F.softmax(framework.tensor(x), -1).numpy()
    assert np.isnan(got[0]).all() and np.isfinite(got[1]).all()
    ln = F.layer_norm(framework.tensor(x), (3,)).numpy()
    assert np.isnan(ln[0]).all() and np.isfinite(ln[1]).all()


def test_non_contiguous_inputs_take_the_numpy_path():
    x = framework.tensor(RNG.standard_normal((6, 8)).astype(np.float32)).t()
    y = F.softmax(x, -1)
    np.testing.assert_allclose(y.numpy().sum(-1), 1.0, rtol=1e-6)
    assert y.grad_fn is None or getattr(y.grad_fn, "jit", None) is None


def test_embedding_gradient_matches_torch(jit_mode):
    torch = torch_or_skip()
    w = RNG.standard_normal((50, 6))
    idx = RNG.integers(0, 50, size=(7, 9))
    lw = framework.tensor(w, requires_grad=True)
    F.embedding(framework.tensor(idx), lw).pow(2).sum().backward()
    tw = torch.tensor(w, requires_grad=True)
    torch.nn.functional.embedding(torch.tensor(idx), tw).pow(2).sum().backward()
    np.testing.assert_allclose(lw.grad.numpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_kernel_matches_numpy_path_exactly(decoupled):
    """The compiled Adam step performs NumPy's operations in NumPy's order: bit-identical."""
    results = []
    for flag in (True, False):
        old = _jit.set_enabled(flag)
        try:
            p = framework.tensor(np.linspace(-1, 1, 3000, dtype=np.float32), requires_grad=True)
            cls = framework.optim.AdamW if decoupled else framework.optim.Adam
            opt = cls([p], lr=1e-2, weight_decay=0.1 if decoupled else 0.0, foreach=False)
            for k in range(5):
                p.grad = framework.tensor(np.sin(np.arange(3000, dtype=np.float32) * (k + 1)))
                opt.step()
            results.append(p.detach().numpy().copy())
        finally:
            _jit.set_enabled(old)
    np.testing.assert_array_equal(results[0], results[1])


def test_float32_gelu_kernels_match_torch_and_numpy():
    """The compiled float32 erf-GELU (a rational erf) against torch and the exact NumPy
    formulation, forward and backward, over a range that covers erf's saturation."""
    torch = torch_or_skip()
    x = (RNG.standard_normal((48, 257)) * 4).astype(np.float32)
    g = RNG.standard_normal((48, 257)).astype(np.float32)
    out = {}
    for mode in (True, False):
        old = _jit.set_enabled(mode)
        try:
            a = framework.tensor(x, requires_grad=True)
            y = F.gelu(a)
            y.backward(framework.tensor(g))
            out[mode] = (y.detach().numpy(), a.grad.numpy())
        finally:
            _jit.set_enabled(old)
    t = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.gelu(t)
    ty.backward(torch.tensor(g))
    for mode in (True, False):
        np.testing.assert_allclose(out[mode][0], ty.detach().numpy(), rtol=0, atol=3e-6)
        np.testing.assert_allclose(out[mode][1], t.grad.numpy(), rtol=0, atol=3e-6)
    np.testing.assert_allclose(out[True][0], out[False][0], rtol=0, atol=2e-6)


def test_float32_tanh_approximation_of_the_lstm_kernels():
    """The rational float32 tanh behind the LSTM kernels: within 3.5e-7 of tanh over a dense
    grid (relative 3e-7 near 0), never beyond [-1, 1], odd, and NaN stays NaN."""
    k = _jit.kernels()
    import numba

    @numba.njit
    def tanh_all(x, out):
        for i in range(x.shape[0]):
            out[i] = k._tanh_f32(x[i])
    x = np.linspace(-30, 30, 600_001).astype(np.float32)
    y = np.empty_like(x)
    tanh_all(x, y)
    exact = np.tanh(x.astype(np.float64))
    assert np.max(np.abs(y - exact)) < 3.5e-7 and np.max(np.abs(y)) <= 1
    near0 = (np.abs(x) < 0.5) & (x != 0)
    assert np.max(np.abs(y[near0] - exact[near0]) / np.abs(exact[near0])) < 3e-7
    np.testing.assert_array_equal(y, -y[::-1])
    out = np.empty(1, np.float32)
    tanh_all(np.array([np.nan], np.float32), out)
    assert np.isnan(out[0])


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_recurrent_kernels_are_taken_and_match_torch(monkeypatch, cell):
    """A float32 bidirectional 2-layer LSTM or GRU over packed sequences of unequal lengths,
    kernels on and off, against torch.nn with the same weights: outputs, final states and
    every gradient; the compiled step kernels are the path taken when on."""
    torch = torch_or_skip()
    from framework import _jit_kernels
    from framework.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    calls = {"forward": 0, "backward": 0}
    prefix = cell.lower()
    for name, key in ((f"{prefix}_step_forward", "forward"),
                      (f"{prefix}_step_backward", "backward")):
        real = getattr(_jit_kernels, name)

        def counted(*a, _real=real, _key=key):
            calls[_key] += 1
            return _real(*a)
        monkeypatch.setattr(_jit_kernels, name, counted)
    lengths = [5, 3, 4, 1]
    x = (RNG.standard_normal((4, 5, 6)) * 2).astype(np.float32)
    ref = getattr(torch.nn, cell)(6, 8, 2, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for p in ref.parameters():
            p.mul_(3)  # saturate some gates

    def loss(pad, state):
        h, c = state if cell == "LSTM" else (state, state)
        return pad.sin().sum() + h.cos().sum() + (c * c).sum()
    tx = torch.tensor(x, requires_grad=True)
    tout, tstate = ref(torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, batch_first=True,
                                                                enforce_sorted=False))
    tpad, _ = torch.nn.utils.rnn.pad_packed_sequence(tout, batch_first=True)
    loss(tpad, tstate).backward()
    for flag in (True, False):
        calls.update(forward=0, backward=0)
        old = _jit.set_enabled(flag)
        try:
            rnn = getattr(framework.nn, cell)(6, 8, 2, batch_first=True, bidirectional=True)
            rnn.load_state_dict({k: framework.tensor(v.detach().numpy())
                                 for k, v in ref.state_dict().items()})
            fx = framework.tensor(x, requires_grad=True)
            out, state = rnn(pack_padded_sequence(fx, lengths, batch_first=True,
                                                  enforce_sorted=False))
            pad, _ = pad_packed_sequence(out, batch_first=True)
            loss(pad, state).backward()
        finally:
            _jit.set_enabled(old)
        assert (calls["forward"] > 0 and calls["backward"] > 0) == flag, calls
        states = zip(state, tstate) if cell == "LSTM" else [(state, tstate)]
        for a, b in [(pad, tpad), *states, (fx.grad, tx.grad)] + \
                [(p.grad, q.grad) for p, q in zip(rnn.parameters(), ref.parameters())]:
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4,
                                       atol=2e-5)


def test_float32_exp_of_the_gelu_gradient_and_sigmoid_kernels():
    """The vectorising exp behind the float32 GELU gradient and sigmoid: within 3.5e-7
    relative on [-87.3, 0], 0 below (float32's subnormal range), NaN kept; the GELU gradient
    at NaN, +-inf and huge inputs as torch's; sigmoid within 3.5e-7 relative of the exact
    one down to x = -87.3, and its special values as torch's."""
    torch = torch_or_skip()
    k = _jit.kernels()
    import numba

    @numba.njit
    def exp_all(t, out):
        for i in range(t.shape[0]):
            out[i] = k._exp_nonpositive_f32(t[i])
    t = -np.linspace(0, 87.3, 400_001).astype(np.float32)
    out = np.empty_like(t)
    exp_all(t, out)
    exact = np.exp(t.astype(np.float64))
    assert np.max(np.abs(out - exact) / exact) < 3.5e-7
    special = np.empty(2, np.float32)
    exp_all(np.array([-90, np.nan], np.float32), special)
    assert special[0] == 0 and np.isnan(special[1])
    x = np.array([np.nan, -np.inf, np.inf, 0, -1e30, 1e30, -6, 6, -3, 3], np.float32)
    a = framework.tensor(x, requires_grad=True)
    F.gelu(a).backward(framework.ones(x.size))
    t_ = torch.tensor(x, requires_grad=True)
    torch.nn.functional.gelu(t_).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), t_.grad.numpy(), rtol=0, atol=3e-7)
    xs = np.linspace(-87.3, 100, 200_001).astype(np.float32)
    ys = framework.sigmoid(framework.tensor(xs)).numpy()
    exact = 1 / (1 + np.exp(-xs.astype(np.float64)))
    assert np.max(np.abs(ys - exact) / exact) < 3.5e-7
    sp = np.array([np.nan, np.inf, -np.inf, 0, -0.0, 88, -200] * 600, np.float32)  # > 4096
    np.testing.assert_array_equal(framework.sigmoid(framework.tensor(sp)).numpy(),
                                  torch.sigmoid(torch.tensor(sp)).numpy())
