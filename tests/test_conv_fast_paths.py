"""The CPU fast paths of the convolution and max-pooling kernels, against PyTorch.

The op table (tests/optable_nn.py) checks every op on small shapes, which take the plain
paths. Larger layers take other code: columns built in cache-sized chunks (whole images, or
runs of rows of one image), row-window GEMMs for 2-D stride-1-down-the-rows kernels, dx and dw
of a stride-1 convolution from one pass over the windows of dy, the one-GEMM transposed
convolution when stride == kernel, and max pooling over windows that tile the input. Here the
chunk size is shrunk so that small shapes take those paths too, and every case is compared
with PyTorch (forward, dx, dw, db), in float64 to a tight tolerance and in float32 as used.

Stride-1 layers whose channels fill SIMD vectors take the register-blocked kernels first
(tests/test_conv_blocked.py); here they are switched off, so these cases reach the paths that
serve every other layer (odd channel counts, strides, groups, numba missing)."""
from __future__ import annotations

import numpy as np
import pytest

import framework
import framework.nn.functional as F
from conftest import torch_or_skip
from framework import _jit
from framework.ops import conv as conv_ops

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _without_blocked_kernels(monkeypatch):
    monkeypatch.setattr(conv_ops, "_blocked_lanes", lambda *args: 0)

# (kind, input shape, weight shape, kwargs): 2-D cases with >= 16 channels, >= 16x16 outputs
# and unit row stride take the row-window kernel; the others the chunked im2col.
CASES = [
    ("conv", (2, 16, 16, 18), (16, 16, 3, 3), dict(padding=1)),
    ("conv", (2, 16, 18, 18), (24, 16, 3, 3), dict(padding=0)),
    ("conv", (2, 16, 20, 18), (16, 16, 3, 5), dict(padding=(1, 2), dilation=(2, 1))),
    ("conv", (2, 16, 17, 35), (32, 16, 3, 3), dict(padding=(2, 1), dilation=(1, 2))),
    ("conv", (2, 16, 16, 34), (8, 16, 3, 3), dict(padding=1, stride=(1, 2))),
    ("conv", (2, 24, 18, 18), (20, 24, 5, 3), dict(padding=(2, 0))),
    ("conv", (2, 24, 18, 18), (20, 24, 2, 4), dict(padding=(1, 2))),
    ("conv", (2, 8, 21, 19), (12, 8, 3, 5), dict(padding=(2, 1), stride=2)),
    ("conv", (2, 8, 20, 20), (12, 8, 3, 3), dict(padding=3)),
    ("conv", (2, 8, 20, 20), (12, 4, 3, 3), dict(padding=1, groups=2)),
    ("conv", (2, 8, 20, 20), (12, 8, 2, 2), dict(stride=2)),
    ("conv", (2, 8, 300), (12, 8, 5), dict(padding=2)),
    ("conv", (2, 4, 6, 10, 10), (6, 4, 3, 3, 3), dict(padding=1)),
    ("conv_transpose", (2, 16, 10, 10), (16, 8, 2, 2), dict(stride=2)),
    ("conv_transpose", (2, 16, 10, 10), (16, 8, 2, 2), dict(stride=2, output_padding=1)),
    ("conv_transpose", (2, 16, 10, 10), (16, 8, 2, 2), dict(stride=2, padding=1,
                                                             output_padding=1)),
    ("conv_transpose", (2, 16, 10, 10), (16, 8, 3, 3), dict(stride=2, padding=1)),
    ("conv_transpose", (2, 24, 17, 17), (24, 16, 3, 3), dict(padding=1)),
    ("conv_transpose", (2, 24, 17, 17), (24, 16, 3, 3), dict(dilation=2)),
    ("conv_transpose", (2, 16, 100), (16, 8, 4), dict(stride=4)),
]


def _run_case(torch, kind, xshape, wshape, kw, dtype, channels_last, bias, layout=None):
    """Forward, dx, dw and db of one case against PyTorch; `layout` ('channels_last',
    'images_last' or 'plain') overrides channels_last for the input's memory order."""
    d = len(xshape) - 2
    x = RNG.standard_normal(xshape).astype(dtype)
    w = (RNG.standard_normal(wshape) * 0.2).astype(dtype)
    nb = wshape[0] if kind == "conv" else wshape[1] * kw.get("groups", 1)
    b = RNG.standard_normal(nb).astype(dtype)
    tf = getattr(torch.nn.functional, f"{kind}{d}d")
    lf = getattr(F, f"{kind}{d}d")
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    lx, lw, lb = (framework.tensor(v, requires_grad=True) for v in (x, w, b))
    lin = lx
    layout = layout or ("channels_last" if channels_last else "plain")
    nd = d + 2
    if layout == "channels_last" and d >= 2:  # as the GEMM convolutions produce
        lin = lx.permute(0, *range(2, nd), 1).contiguous().permute(0, nd - 1, *range(1, nd - 1))
    elif layout == "images_last" and d >= 2:  # as the direct convolutions produce
        lin = lx.permute(*range(1, nd), 0).contiguous().permute(nd - 1, *range(nd - 1))
    ty = tf(tx, tw, tb if bias else None, **kw)
    ly = lf(lin, lw, lb if bias else None, **kw)
    gy = RNG.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(gy))
    ly.backward(framework.tensor(gy))
    pairs = [(ly.detach(), ty.detach(), "y"), (lx.grad, tx.grad, "dx"), (lw.grad, tw.grad, "dw")]
    if bias:
        pairs.append((lb.grad, tb.grad, "db"))
    for mine, ref, name in pairs:
        ref = ref.numpy()
        # float32: sums of thousands of products (dw of a 64x64 map) round to ~1e-5 of the
        # largest value, whatever the order of summation
        scale = max(1.0, float(np.abs(ref).max()))
        tol = dict(rtol=1e-9, atol=1e-9 * scale) if dtype == np.float64 else \
            dict(rtol=2e-4, atol=2e-5 * scale)
        np.testing.assert_allclose(mine.numpy(), ref, **tol, err_msg=name)


@pytest.mark.parametrize("chunk_bytes", [1 << 12, 300])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}{c[1]}{c[2]}{c[3]}")
def test_chunked_paths_match_torch_float64(monkeypatch, case, chunk_bytes):
    torch = torch_or_skip()
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", chunk_bytes)
    kind, xs, ws, kw = case
    _run_case(torch, kind, xs, ws, kw, np.float64, channels_last=True, bias=True)


@pytest.mark.parametrize("channels_last", [True, False])
def test_chunked_paths_match_torch_float32(monkeypatch, channels_last):
    torch = torch_or_skip()
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", 1 << 12)
    for kind, xs, ws, kw in CASES[:7] + CASES[13:15]:
        _run_case(torch, kind, xs, ws, kw, np.float32, channels_last, bias=kind == "conv")


def test_fast_paths_are_taken(monkeypatch):
    """The shrunk chunk size does route the cases above through the fast kernels."""
    torch = torch_or_skip()
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", 1 << 12)
    calls = {"rows": 0, "fused": 0, "disjoint": 0}
    for name, key in (("_conv_rows_gemm", "rows"), ("conv_input_and_weight_grad", "fused"),
                      ("_conv_input_grad_disjoint", "disjoint")):
        orig = getattr(conv_ops, name)

        def counted(*a, _orig=orig, _key=key, **k):
            r = _orig(*a, **k)
            calls[_key] += r is not None
            return r
        monkeypatch.setattr(conv_ops, name, counted)
    _run_case(torch, *CASES[0], np.float64, True, True)
    _run_case(torch, *CASES[13], np.float64, True, True)
    assert calls["rows"] >= 2 and calls["fused"] == 1 and calls["disjoint"] == 1, calls


def test_full_size_layer_matches_torch():
    """A U-Net-sized layer at the default chunk size (rows split within an image)."""
    torch = torch_or_skip()
    _run_case(torch, "conv", (2, 32, 64, 64), (16, 32, 3, 3), dict(padding=1), np.float32,
              channels_last=True, bias=False)


def test_conv_transpose_bias_double_backward(monkeypatch):
    """conv_transpose with a bias: gradients of gradients match PyTorch."""
    torch = torch_or_skip()
    x = RNG.standard_normal((2, 4, 5, 5))
    w = RNG.standard_normal((4, 3, 2, 2))
    b = RNG.standard_normal(3)
    outs = []
    for lib, mk in ((torch, lambda v: torch.tensor(v, requires_grad=True)),
                    (framework, lambda v: framework.tensor(v, requires_grad=True))):
        tx, tw, tb = mk(x), mk(w), mk(b)
        y = lib.nn.functional.conv_transpose2d(tx, tw, tb, stride=2)
        gx, gw, gb = lib.autograd.grad((y * y).sum(), (tx, tw, tb), create_graph=True)
        (gx.sum() + (gw * gw).sum() + (gb * gb).sum()).backward()
        outs.append([t.detach().numpy() for t in (gx, gw, gb, tx.grad, tw.grad, tb.grad)])
    for a, t in zip(outs[1], outs[0]):
        np.testing.assert_allclose(a, t, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------- max pooling
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiled_max_pool_ties_and_indices_match_torch(dtype):
    """MaxPool2d(2) (windows tile the input): after a ReLU most windows tie at 0; the first
    maximum in window order takes the gradient, as in PyTorch, and the indices agree."""
    torch = torch_or_skip()
    x = np.maximum(RNG.standard_normal((2, 16, 12, 10)), 0).astype(dtype)
    x[0, 0, 0, :4] = [3.0, 3.0, 3.0, 3.0]  # ties at a nonzero maximum
    lx = framework.tensor(x, requires_grad=True)
    lin = lx.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # channels-last
    tx = torch.tensor(x, requires_grad=True)
    ly, li = F.max_pool2d(lin, 2, return_indices=True)
    ty, ti = torch.nn.functional.max_pool2d(tx, 2, return_indices=True)
    gy = RNG.standard_normal(tuple(ty.shape)).astype(dtype)
    ly.backward(framework.tensor(gy))
    ty.backward(torch.tensor(gy))
    np.testing.assert_array_equal(ly.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(li.numpy(), ti.numpy())
    np.testing.assert_array_equal(lx.grad.numpy(), tx.grad.numpy())


def test_tiled_max_pool_nan_matches_torch():
    torch = torch_or_skip()
    x = RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan
    x[0, 2, 0, 0] = x[0, 2, 1, 1] = np.nan
    lx = framework.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    ly = F.max_pool2d(lx, 2)
    ty = torch.nn.functional.max_pool2d(tx, 2)
    ly.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(ly.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(lx.grad.numpy(), tx.grad.numpy())


# ---------------------------------------------------------------------------- direct kernels
# 2-D and 3-D stride-1 convolutions with at most 16 output channels whose layer would not take the
# row-window GEMMs run on the compiled direct kernels (conv_taps_forward / _weight_grad) in
# the images-last layout: forward, weight gradient and (stride 1, padding within the kernel)
# input gradient. Cases: LeNet-5's two layers at a small batch, an odd number of outputs and
# tap counts that leave every remainder (8-, 4- and 1-tap passes), dilation, asymmetric
# padding, padding beyond the kernel (dx then by the GEMM path), one wide image, and the
# transposed convolution (its output is the direct dx).
DIRECT_CASES = [
    ("conv", (16, 1, 12, 12), (6, 1, 5, 5), dict(padding=2)),
    ("conv", (16, 6, 9, 9), (16, 6, 5, 5), dict(padding=0)),
    ("conv", (12, 3, 11, 10), (5, 3, 3, 5), dict(padding=(1, 2))),
    ("conv", (12, 2, 13, 12), (7, 2, 3, 3), dict(padding=(2, 1), dilation=(2, 1))),
    ("conv", (12, 4, 9, 9), (3, 4, 3, 3), dict(padding=3)),
    ("conv", (1, 2, 6, 80), (4, 2, 3, 3), dict(padding=1)),
    ("conv", (16, 5, 8, 8), (16, 5, 2, 2), dict(padding="same")),
    ("conv_transpose", (12, 9, 8, 8), (9, 4, 3, 3), dict(padding=1)),
    ("conv", (4, 2, 6, 7, 16), (8, 2, 3, 3, 3), dict(padding=1)),
    ("conv", (3, 5, 7, 6, 24), (3, 5, 3, 2, 3), dict(padding=(2, 1, 0), dilation=(2, 1, 1))),
    ("conv_transpose", (4, 6, 5, 6, 16), (6, 4, 3, 3, 3), dict(padding=1)),
]
needs_jit = pytest.mark.skipif(_jit.kernels() is None, reason="numba is not installed")


def count_calls(monkeypatch, owner, names: dict) -> dict:
    """Wrap owner's functions {attribute: key} so that each call adds 1 to the returned
    counts[key]."""
    calls = {key: 0 for key in names.values()}
    for name, key in names.items():
        orig = getattr(owner, name)

        def counted(*a, _orig=orig, _key=key, **k):
            calls[_key] += 1
            return _orig(*a, **k)
        monkeypatch.setattr(owner, name, counted)
    return calls


def _count_direct(monkeypatch):
    return count_calls(monkeypatch, conv_ops, {"_conv_direct": "fwd",
                                               "_conv_direct_weight_grad": "dw",
                                               "_conv_direct_input_grad": "dx"})


@needs_jit
@pytest.mark.parametrize("layout", ["plain", "channels_last", "images_last"])
@pytest.mark.parametrize("case", DIRECT_CASES, ids=lambda c: f"{c[0]}{c[1]}{c[2]}{c[3]}")
def test_direct_kernels_match_torch_float64(monkeypatch, case, layout):
    torch = torch_or_skip()
    calls = _count_direct(monkeypatch)
    _run_case(torch, *case, np.float64, False, True, layout=layout)
    kind, _, w_shape, kw = case
    if kind == "conv" and kw.get("padding") == 3:
        # padding beyond the kernel: dx cannot be a direct convolution, so the forward keeps
        # the GEMM path (whose layout dx reads); the weight gradient still runs direct
        assert calls["fwd"] == 0 and calls["dw"] == 1, calls
    elif kind == "conv_transpose" and layout == "channels_last":
        # a channels-last dy keeps the transposed forward (a conv input gradient) on the
        # GEMM path; its own input gradient is a plain convolution, run direct
        assert calls["fwd"] == 1, calls
    else:
        assert calls["fwd"] >= 1 and calls["dw"] == 1, calls


@needs_jit
@pytest.mark.parametrize("threads", [1, 2])
def test_direct_kernels_match_torch_float32(monkeypatch, threads):
    """float32 as trained, on one thread and with output rows split between two (the
    parallel cutoff lowered so that these small layers split)."""
    torch = torch_or_skip()
    monkeypatch.setattr(conv_ops, "_DIRECT_PARALLEL_WORK", 1000)
    old = framework.get_num_threads()
    framework.set_num_threads(threads)
    try:
        for case in DIRECT_CASES:
            _run_case(torch, *case, np.float32, False, True, layout="images_last")
    finally:
        framework.set_num_threads(old)


@needs_jit
def test_direct_paths_are_taken(monkeypatch):
    """LeNet's second layer runs forward, dx and dw on the direct kernels, its first layer
    (no dx wanted) forward and dw, and the outputs are images-last."""
    torch_or_skip()
    calls = _count_direct(monkeypatch)
    x = framework.tensor(RNG.standard_normal((16, 1, 16, 16)).astype(np.float32))
    c1 = framework.nn.Conv2d(1, 6, 5, padding=2)
    c2 = framework.nn.Conv2d(6, 16, 5)
    h = F.max_pool2d(F.relu(c1(x)), 2)
    assert conv_ops.is_images_last(h._data)
    y = c2(h)
    assert conv_ops.is_images_last(y._data)
    y.sum().backward()
    assert calls == {"fwd": 3, "dw": 2, "dx": 1}, calls
    assert c1.weight.grad is not None and c2.bias.grad is not None


@needs_jit
def test_direct_kernels_agree_with_numpy_path():
    """With the compiled kernels switched off the GEMM path gives the same values (and is
    what LANTERN_NO_JIT=1 runs)."""
    x = RNG.standard_normal((16, 6, 9, 9))
    w = RNG.standard_normal((16, 6, 5, 5)) * 0.2
    b = RNG.standard_normal(16)
    gy = RNG.standard_normal((16, 16, 5, 5))
    res = []
    for flag in (True, False):
        old = _jit.set_enabled(flag)
        try:
            lx, lw, lb = (framework.tensor(v, requires_grad=True) for v in (x, w, b))
            y = F.conv2d(lx, lw, lb)
            assert conv_ops.is_images_last(y._data) == flag
            y.backward(framework.tensor(gy))
            res.append([t.numpy() for t in (y.detach(), lx.grad, lw.grad, lb.grad)])
        finally:
            _jit.set_enabled(old)
    for a, b_ in zip(*res):
        np.testing.assert_allclose(a, b_, rtol=1e-10, atol=1e-10)


@needs_jit
def test_direct_conv_double_backward_matches_torch():
    """Gradients of gradients through the direct kernels (the dx and dw Ops' own backward
    run them again)."""
    torch = torch_or_skip()
    x = RNG.standard_normal((12, 3, 8, 8))
    w = RNG.standard_normal((5, 3, 3, 3))
    outs = []
    for lib, mk in ((torch, lambda v: torch.tensor(v, requires_grad=True)),
                    (framework, lambda v: framework.tensor(v, requires_grad=True))):
        tx, tw = mk(x), mk(w)
        y = lib.nn.functional.conv2d(tx, tw, padding=1)
        gx, gw = lib.autograd.grad((y * y).sum(), (tx, tw), create_graph=True)
        ((gx * gx).sum() + (gw * gw).sum()).backward()
        outs.append([t.detach().numpy() for t in (gx, gw, tx.grad, tw.grad)])
    for a, t in zip(outs[1], outs[0]):
        np.testing.assert_allclose(a, t, rtol=1e-9, atol=1e-9)


@needs_jit
def test_direct_conv_propagates_inf_and_nan_as_torch():
    """Every tap is summed exactly (no zero-weight padding taps), so an infinite input gives
    infinities where PyTorch does, not NaN."""
    torch = torch_or_skip()
    x = np.abs(RNG.standard_normal((16, 1, 10, 10))).astype(np.float32)
    x[0, 0, 4, 4] = np.inf
    x[3, 0, 0, 0] = np.nan
    w = np.abs(RNG.standard_normal((6, 1, 5, 5))).astype(np.float32)
    ly = F.conv2d(framework.tensor(x), framework.tensor(w), padding=2).numpy()
    ty = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=2).numpy()
    np.testing.assert_array_equal(np.isinf(ly), np.isinf(ty))
    np.testing.assert_array_equal(np.isnan(ly), np.isnan(ty))
    fin = np.isfinite(ty)
    np.testing.assert_allclose(ly[fin], ty[fin], rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_images_last_max_pool_matches_torch(dtype):
    """Max pooling keeps the images-last layout, and a gradient arriving in another layout
    (as from a Flatten) is routed to the same positions as in PyTorch."""
    torch = torch_or_skip()
    x = np.maximum(RNG.standard_normal((8, 6, 12, 10)), 0).astype(dtype)
    lx = framework.tensor(x, requires_grad=True)
    lin = lx.permute(1, 2, 3, 0).contiguous().permute(3, 0, 1, 2)
    tx = torch.tensor(x, requires_grad=True)
    ly = F.max_pool2d(lin, 2)
    assert conv_ops.is_images_last(ly._data)
    ty = torch.nn.functional.max_pool2d(tx, 2)
    gy = RNG.standard_normal((8, 6 * 6 * 5)).astype(dtype)
    ly.flatten(1).backward(framework.tensor(gy))
    ty.flatten(1).backward(torch.tensor(gy))
    np.testing.assert_array_equal(ly.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(lx.grad.numpy(), tx.grad.numpy())


def test_chunked_columns_split_between_threads_with_uneven_chunks(monkeypatch):
    """Column chunks run along an image's first output dim, so an image's last chunk is
    shorter; a thread's part may start with such a chunk (its scratch buffer must fit the
    part's largest chunk, not its first: a 2D U-Net's inference once failed here)."""
    torch = torch_or_skip()
    # 3 images x 2 chunks of output rows ([0:2], [2:3]): the second thread's part starts
    # with image 1's short chunk, then image 2's full one
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", 1024)
    old = framework.get_num_threads()
    framework.set_num_threads(2)
    try:
        x = RNG.standard_normal((3, 4, 5, 5)).astype(np.float32)
        w = RNG.standard_normal((6, 4, 3, 3)).astype(np.float32)
        got = F.conv2d(framework.tensor(x), framework.tensor(w), stride=2, padding=1)
    finally:
        framework.set_num_threads(old)
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), stride=2, padding=1)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
