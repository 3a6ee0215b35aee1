"""The CPU fast paths of the convolution and max-pooling kernels, against PyTorch.

The op table (tests/optable_nn.py) checks every op on small shapes, which take the plain
paths. Larger layers take other code: columns built in cache-sized chunks (whole images, or
runs of rows of one image), row-window GEMMs for 2-D stride-1-down-the-rows kernels, dx and dw
of a stride-1 convolution from one pass over the windows of dy, the one-GEMM transposed
convolution when stride == kernel, and max pooling over windows that tile the input. Here the
chunk size is shrunk so that small shapes take those paths too, and every case is compared
with PyTorch (forward, dx, dw, db), in float64 to a tight tolerance and in float32 as used."""
from __future__ import annotations

import numpy as np
import pytest

import framework
import framework.nn.functional as F
from conftest import torch_or_skip
from framework.ops import conv as conv_ops

RNG = np.random.default_rng(0)

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


def _run_case(torch, kind, xshape, wshape, kw, dtype, channels_last, bias):
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
    if channels_last and d == 2:  # a channels-last input, as the convolutions produce
        lin = lx.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    ty = tf(tx, tw, tb if bias else None, **kw)
    ly = lf(lin, lw, lb if bias else None, **kw)
    gy = RNG.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(gy))
    ly.backward(framework.tensor(gy))
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(ly.detach().numpy(), ty.detach().numpy(), **tol, err_msg="y")
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), **tol, err_msg="dx")
    np.testing.assert_allclose(lw.grad.numpy(), tw.grad.numpy(), **tol, err_msg="dw")
    if bias:
        np.testing.assert_allclose(lb.grad.numpy(), tb.grad.numpy(), **tol, err_msg="db")


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
