"""CPU-vs-GPU agreement: every case of the op tables (tests/optable.py and
tests/optable_<area>.py, the cases tests/test_ops.py checks against PyTorch) runs forward and
backward in float32 on 'cpu' and on 'cuda' from the same inputs and upstream gradients, and
the outputs and input gradients must agree at float32 tolerances; then a small CNN trained
for 30 steps on each device must give the same loss curve within tolerance.

Skipped, not failed, without CuPy and a CUDA GPU. Cases that draw random numbers (dropout,
rrelu in training, gumbel_softmax, attention with dropout) are left out: the devices'
random streams differ by design.
"""
from __future__ import annotations

import numpy as np
import pytest

import framework

pytestmark = pytest.mark.skipif(not framework.cuda.is_available(),
                                reason="needs CuPy and a CUDA GPU")

from test_ops import CASES, NONDIFF_CASES, Lib, _arrays, _flat, _ids, _leaf  # noqa: E402

# The cases that skip torch parity do so because they are random, except ctc_loss (its
# gradient convention differs from PyTorch's, but it is deterministic).
_RANDOM_OPS = {"gumbel_softmax", "rrelu", "dropout", "dropout1d", "dropout2d", "dropout3d",
               "alpha_dropout", "feature_alpha_dropout", "scaled_dot_product_attention"}


def _deterministic(c):
    return c.parity or c.op not in _RANDOM_OPS


AGREE = [c for c in CASES if _deterministic(c)]
AGREE_FWD = [c for c in NONDIFF_CASES if _deterministic(c)]


def _host(t):
    return t.detach().cpu().numpy()


def _compare(a, b, what, atol, rtol):
    """`a` from the GPU run, `b` from the CPU run."""
    if not isinstance(b, framework.Tensor):
        assert not isinstance(a, framework.Tensor), f"{what}: cpu gave {b!r}, cuda a tensor"
        if isinstance(b, float):
            assert a == pytest.approx(b, rel=rtol, abs=atol, nan_ok=True), what
        else:
            assert a == b, f"{what}: cuda {a!r} != cpu {b!r}"
        return
    assert isinstance(a, framework.Tensor), f"{what}: cuda gave {type(a)}, cpu a tensor"
    assert a.device.type == "cuda", f"{what}: the GPU run gave a {a.device} tensor"
    assert tuple(a.shape) == tuple(b.shape), f"{what}: shape {tuple(a.shape)} != cpu " \
                                             f"{tuple(b.shape)}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != cpu {b.dtype}"
    assert a.requires_grad == b.requires_grad, f"{what}: requires_grad differs"
    x, y = _host(a), _host(b)
    if x.dtype.kind in "fc":
        np.testing.assert_allclose(x, y, atol=atol, rtol=rtol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(x, y, err_msg=what)


def _run(case, device, backward):
    framework.manual_seed(0)
    xs = [_leaf(framework, a, s, framework.float32, device, backward and i in case.grad)
          for i, (a, s) in enumerate(zip(_arrays(case), case.inputs))]
    outs = _flat(case.fn(Lib(framework, device), *xs))
    grads = None
    if backward:
        diff = [o for o in outs if isinstance(o, framework.Tensor) and o.requires_grad]
        if diff:
            rng = np.random.default_rng(1)
            ups = [framework.tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype,
                                    device=device) for o in diff]
            grads = framework.autograd.grad(diff, [xs[i] for i in case.grad], ups,
                                            allow_unused=True)
    return outs, grads


def _agree(case, backward):
    cpu_out, cpu_g = _run(case, "cpu", backward)
    gpu_out, gpu_g = _run(case, "cuda", backward)
    atol, rtol = max(case.atol, 1e-5), max(case.rtol, 1e-4)
    assert len(gpu_out) == len(cpu_out)
    for k, (a, b) in enumerate(zip(gpu_out, cpu_out)):
        _compare(a, b, f"output {k}", atol, rtol)
    if cpu_g is None:
        assert gpu_g is None
        return
    gatol, grtol = max(case.grad_atol, 1e-4), max(case.grad_rtol, 1e-3)
    for i, a, b in zip(case.grad, gpu_g, cpu_g):
        if a is None or b is None:
            assert a is None and b is None, f"grad of input {i}: None on one device only"
            continue
        _compare(a, b, f"grad of input {i}", gatol, grtol)


@pytest.mark.parametrize("case", AGREE, ids=_ids(AGREE))
def test_cpu_gpu_agreement(case):
    _agree(case, backward=not case.forward_only)


@pytest.mark.parametrize("case", AGREE_FWD, ids=_ids(AGREE_FWD))
def test_cpu_gpu_agreement_forward(case):
    _agree(case, backward=False)


# ---------------------------------------------------------------------------- training
def _train(device, steps=30):
    nn, F = framework.nn, framework.nn.functional
    framework.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.GELU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64), nn.SiLU(), nn.LayerNorm(64), nn.Linear(64, 10))
    model.to(device)  # built on the CPU from the same seed, then moved
    opt = framework.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4, 32, 3, 16, 16)).astype(np.float32)
    ys = rng.integers(0, 10, size=(4, 32))
    losses = []
    for step in range(steps):
        x = framework.tensor(xs[step % 4], device=device)
        y = framework.tensor(ys[step % 4], device=device)
        loss = F.cross_entropy(model(x), y, label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses)


def _train_adam(device, steps=30):
    nn, F = framework.nn, framework.nn.functional
    framework.manual_seed(1)
    model = nn.Sequential(nn.Linear(20, 64), nn.GELU(approximate="tanh"), nn.LayerNorm(64),
                          nn.Linear(64, 5)).to(device)
    opt = framework.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    rng = np.random.default_rng(1)
    x = framework.tensor(rng.standard_normal((64, 20)).astype(np.float32), device=device)
    y = framework.tensor(rng.integers(0, 5, size=64), device=device)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses)


def test_cnn_training_curves_agree():
    cpu, gpu = _train("cpu"), _train("cuda")
    assert cpu[-1] < cpu[0]
    # batch norm and momentum amplify float32 rounding differences a little over 30 steps
    np.testing.assert_allclose(gpu, cpu, rtol=5e-3, atol=1e-3)


def test_adamw_training_curves_agree():
    cpu, gpu = _train_adam("cpu"), _train_adam("cuda")
    assert cpu[-1] < cpu[0]
    np.testing.assert_allclose(gpu, cpu, rtol=2e-3, atol=2e-4)
