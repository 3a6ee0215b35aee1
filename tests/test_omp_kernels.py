"""The prange kernels on numba's OpenMP threads (framework/_jit.py `omp_parts`): ReLU, leaky
ReLU, batch norm on channels-last rows, instance norm on cells and the blocked convolutions
give what the NumPy and pool-thread paths give and what PyTorch gives (edge values
included), the OpenMP path is the one taken, a forked child (libgomp is not fork-safe) does
not take it, and neither does a process with PyTorch loaded or OpenBLAS threads that spin."""
from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

import framework
import framework.nn.functional as F
from conftest import torch_or_skip
from framework import _jit
from framework.ops.conv import from_channels_last, from_images_last

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _openmp_on(monkeypatch):
    """The OpenMP kernels switched on for these tests: the process has PyTorch loaded (the
    oracle), where Lantern keeps them off (see _jit._openmp_fits); numba then runs on
    PyTorch's libgomp, which serves for checking the results."""
    if _jit.kernels() is None:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(_jit, "_openmp_fits", lambda: True)
    monkeypatch.setattr(_jit, "_omp", None)
    if _jit.omp_parts() == 0:
        pytest.skip("no numba OpenMP threading layer, or one CPU")


def _layouts(shape, dtype):
    """The same values (with NaN, infinities and signed zeros) as plain, channels-last and
    images-last arrays."""
    x = RNG.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-30]
    cl = from_channels_last(np.ascontiguousarray(np.moveaxis(x, 1, -1)))
    il = from_images_last(np.ascontiguousarray(np.moveaxis(x, 0, -1)))
    return x, {"plain": x, "channels_last": cl, "images_last": il}


def _count_par(monkeypatch):
    jk = _jit.kernels()
    calls = {}
    for name in dir(jk):
        if name.endswith("_par"):
            orig = getattr(jk, name)

            def counted(*a, _orig=orig, _name=name):
                calls[_name] = calls.get(_name, 0) + 1
                return _orig(*a)
            monkeypatch.setattr(jk, name, counted)
    return calls


@pytest.mark.parametrize("layout", ["plain", "channels_last", "images_last"])
@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_activations_match_numpy_path_and_torch(monkeypatch, act, layout):
    torch = torch_or_skip()
    x, arrays = _layouts((4, 16, 64, 64), np.float32)  # large enough to split
    g = RNG.standard_normal(x.shape).astype(np.float32)
    g.reshape(-1)[6:9] = [-0.0, 0.0, 1e30]

    g_same = np.empty_like(arrays[layout])  # dy in x's layout, as the next layer gives it
    g_same[...] = g

    def run():
        lx = framework.from_numpy(arrays[layout].copy(order="K")).requires_grad_()
        y = getattr(F, act)(lx)
        y.backward(framework.from_numpy(g_same))
        return y.detach().numpy(), lx.grad.numpy()
    calls = _count_par(monkeypatch)
    y_omp, gx_omp = run()
    assert sum(calls.values()) == 2, calls
    monkeypatch.setattr(_jit, "omp_parts", lambda load=True: 0)
    y_np, gx_np = run()
    np.testing.assert_array_equal(y_omp, y_np)
    np.testing.assert_array_equal(np.signbit(y_omp), np.signbit(y_np))
    np.testing.assert_array_equal(gx_omp, gx_np)
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, act)(tx)
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(y_omp, ty.detach().numpy())
    np.testing.assert_array_equal(gx_omp, tx.grad.numpy())  # a NaN input passes dy, as there


@pytest.mark.parametrize("kind", ["batch2d", "instance3d"])
def test_norms_match_torch(monkeypatch, kind):
    """Batch norm of channels-last rows and instance norm of channels-last cells, forward
    and backward in float64, against torch; the OpenMP kernels are the ones run."""
    torch = torch_or_skip()
    shape = (4, 16, 48, 48) if kind == "batch2d" else (2, 16, 12, 16, 18)
    x = RNG.standard_normal(shape) * 3 + 1
    g = RNG.standard_normal(shape)
    cl = from_channels_last(np.ascontiguousarray(np.moveaxis(x, 1, -1)))
    mods = []
    for lib in (framework, torch):
        nn = lib.nn
        m = nn.BatchNorm2d(16) if kind == "batch2d" else nn.InstanceNorm3d(16, affine=True)
        m = m.double()
        with lib.no_grad():
            m.weight.copy_(lib.tensor(RNG.standard_normal(16) if lib is framework else
                                      mods[0].weight.detach().numpy()))
        mods.append(m)
    calls = _count_par(monkeypatch)
    lx = framework.from_numpy(cl).requires_grad_()
    ly = mods[0](lx)
    ly.backward(framework.tensor(g))
    expected = {"batch2d": {"channel_moments_par", "channel_affine_par",
                            "channel_grad_sums_par", "channel_affine2_par"},
                "instance3d": {"block_moments_par", "block_affine_par",
                               "block_grad_sums_par", "block_affine2_par"}}[kind]
    assert expected <= set(calls), calls
    tx = torch.tensor(x, requires_grad=True)
    ty = mods[1](tx)
    ty.backward(torch.tensor(g))
    for mine, ref in ((ly.detach(), ty.detach()), (lx.grad, tx.grad),
                      (mods[0].weight.grad, mods[1].weight.grad),
                      (mods[0].bias.grad, mods[1].bias.grad)):
        np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-9, atol=1e-9)


def _child_parts(queue):
    queue.put(_jit.omp_parts())


def test_forked_child_does_not_use_openmp():
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_parts, args=(queue,))
    proc.start()
    proc.join(60)
    assert queue.get(timeout=5) == 0


def test_blocked_convolutions_on_openmp(monkeypatch):
    """Forward, dx and dw of blocked layers through the prange wrappers, against torch."""
    torch = torch_or_skip()
    from framework import _conv_blocked
    from framework.ops import conv as conv_ops
    from test_conv_fast_paths import _run_case, count_calls
    monkeypatch.setattr(conv_ops, "_DIRECT_PARALLEL_WORK", 1000)
    calls = count_calls(monkeypatch, _conv_blocked, {"forward_kernel_par": "forward",
                                                     "weight_grad_kernel_par": "weight_grad"})
    for case in [("conv", (2, 16, 12, 10), (32, 16, 3, 3), dict(padding=1)),
                 ("conv", (2, 8, 4, 5, 6), (16, 8, 3, 3, 3), dict(padding=1))]:
        for dtype in (np.float64, np.float32):
            _run_case(torch, *case, dtype, True, True)
    assert calls == {"forward": 8, "weight_grad": 4}, calls


def test_kept_off_beside_torch_or_spinning_openblas(monkeypatch):
    monkeypatch.undo()  # the real check, not the fixture's
    monkeypatch.setattr(_jit, "_omp", None)
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "16")
    assert not _jit._openmp_fits()  # torch is loaded in this process
    monkeypatch.delitem(__import__("sys").modules, "torch")
    assert _jit._openmp_fits()
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT")
    assert not _jit._openmp_fits()


def test_status_says_why(monkeypatch):
    """`lantern doctor` shows whether the OpenMP kernels run, and why not."""
    assert _jit.omp_status().startswith("on (")  # the fixture switched them on
    monkeypatch.setattr(_jit, "_openmp_fits", lambda: False)
    monkeypatch.setattr(_jit, "_omp", None)
    assert "PyTorch is loaded" in _jit.omp_status()  # torch, the oracle, is loaded here
    from apps.suite.doctor import check_threads
    assert "OpenMP kernels off (PyTorch is loaded" in check_threads().detail
