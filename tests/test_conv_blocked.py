"""The register-blocked convolution kernels (framework/_conv_blocked.py), against PyTorch.

Stride-1, one-group convolutions whose vectorised channels (O for the forward and the weight
gradient, C for the input gradient) fill SIMD vectors run on kernels generated per block
shape. Cases cover 1-D, 2-D and 3-D, dilation, asymmetric ('same') padding, rows whose width
leaves a tail after the pixel blocks, one input channel, channel counts that give one to four
vectors per block and half-width vectors, layers whose input gradient cannot be blocked (C=5;
padding beyond the kernel: they keep the older paths), every input layout, one and two
threads, weight-gradient chunks of one row, strided layers (forward and dw blocked), and
the block plans of a 16-register (AVX2) machine."""
from __future__ import annotations

import numpy as np
import pytest

import framework
from conftest import torch_or_skip
from framework import _jit, _simd
from framework.autograd.gradcheck import gradcheck, gradgradcheck
from framework.ops import conv as conv_ops
from test_conv_fast_paths import _run_case, count_calls

pytestmark = pytest.mark.skipif(_jit.kernels() is None, reason="numba is not installed")

CASES = [
    ("conv", (2, 16, 12, 10), (16, 16, 3, 3), dict(padding=1)),
    ("conv", (3, 5, 9, 7), (32, 5, 3, 3), dict(padding=1)),
    ("conv", (2, 32, 6, 11), (48, 32, 3, 3), dict(padding=2, dilation=2)),
    ("conv", (2, 24, 7, 7), (16, 24, 3, 1), dict(padding=(0, 1))),
    ("conv", (2, 8, 10, 9), (8, 8, 3, 3), dict(padding=1)),
    ("conv", (1, 1, 20, 19), (16, 1, 3, 3), dict(padding=1)),
    ("conv", (2, 64, 8, 8), (128, 64, 3, 3), dict(padding=1)),
    ("conv", (2, 16, 9, 13), (32, 16, 4, 4), dict(padding="same")),
    ("conv", (2, 16, 5, 6, 7), (16, 16, 3, 3, 3), dict(padding=1)),
    ("conv", (2, 8, 4, 5, 6), (24, 8, 3, 3, 3), dict(padding=(1, 2, 1), dilation=(1, 2, 1))),
    ("conv", (2, 16, 13), (64, 16, 5), dict(padding=2)),
    ("conv_transpose", (2, 16, 7, 7), (16, 32, 3, 3), dict(padding=1)),
    ("conv", (2, 16, 12, 17), (32, 16, 3, 3), dict(stride=2, padding=1)),
    ("conv", (2, 3, 17, 15), (32, 3, 3, 3), dict(stride=2, padding=1)),
    ("conv", (2, 16, 11, 25), (16, 16, 3, 3), dict(stride=(2, 3), padding=(0, 2),
                                                    dilation=(1, 2))),
    ("conv", (2, 8, 5, 7, 17), (16, 8, 3, 3, 3), dict(stride=(1, 2, 2), padding=1)),
    ("conv", (2, 16, 33), (16, 16, 4), dict(stride=4)),
    ("conv", (2, 16, 9, 9), (32, 16, 3, 3), dict(stride=2, padding=1)),  # 5 wide: GEMMs
    ("conv", (2, 256, 4, 5), (256, 256, 3, 3), dict(padding=1)),  # narrow and deep: GEMMs
    ("conv", (2, 128, 4, 5), (128, 128, 3, 3), dict(padding=1)),  # narrow, fewer: blocked
]
IDS = [f"{c[0]}{c[1]}{c[2]}{c[3]}" for c in CASES]


def _count(monkeypatch):
    return count_calls(monkeypatch, conv_ops, {"_blocked_conv": "conv",
                                               "_blocked_weight_grad": "dw"})


def _out_width(case):
    """The output width (last spatial size) of a convolution case."""
    _, x_shape, w_shape, kw = case
    d = len(w_shape) - 2

    def last(v, default):
        v = kw.get(v, default)
        return v[-1] if isinstance(v, tuple) else v
    k, s, p, dl = w_shape[-1], last("stride", 1), last("padding", 0), last("dilation", 1)
    if p == "same":
        return x_shape[-1]
    assert d >= 1 and not isinstance(p, str)
    return (x_shape[-1] + 2 * p - dl * (k - 1) - 1) // s + 1


def _check_paths(case, layout, calls):
    """The kernels each case runs on: a convolution whose dx is blocked too (C fills vectors,
    padding within the kernel) runs forward, dx and dw blocked; one whose dx is not (C=5, the
    (3, 1) kernel padding W by 1) keeps the older paths, except a first layer (C=1: forward
    and dw blocked, dx by the GEMM path). The choice does not depend on the layouts (a rerun of
    the layer must give the same bits): the transposed convolution (dx of a convolution
    whose channels all fill vectors) runs blocked from every input layout, its dx (a
    convolution of the fresh gradient) and its dw too."""
    kind, _, w_shape, kw = case
    if kind == "conv":
        if kw.get("stride", 1) != 1:  # strided: forward and dw blocked, dx by the GEMM path
            wide = _out_width(case) >= conv_ops._BLOCKED_STRIDED_MIN_WIDTH  # else all GEMMs
            assert calls == ({"conv": 1, "dw": 1} if wide else {"conv": 0, "dw": 0}), calls
        elif _out_width(case) < conv_ops._BLOCKED_STRIDED_MIN_WIDTH and \
                w_shape[1] >= conv_ops._BLOCKED_NARROW_MAX_C:  # narrow and deep: all GEMMs
            assert calls == {"conv": 0, "dw": 0}, calls
        elif w_shape[1] % 8 == 0 and kw.get("padding") != (0, 1):
            assert calls == {"conv": 2, "dw": 1}, calls
        elif w_shape[1] < conv_ops._BLOCKED_FIRST_LAYER_C:  # a first layer: dx by GEMMs
            assert calls == {"conv": 1, "dw": 1}, calls
        else:
            assert calls["conv"] == 0, calls
    else:
        assert calls == {"conv": 2, "dw": 1}, calls


@pytest.mark.parametrize("layout", ["plain", "channels_last", "images_last"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_blocked_kernels_match_torch_float64(monkeypatch, case, layout):
    torch = torch_or_skip()
    calls = _count(monkeypatch)
    _run_case(torch, *case, np.float64, False, True, layout=layout)
    _check_paths(case, layout, calls)


@pytest.mark.parametrize("threads", [1, 2])
def test_blocked_kernels_match_torch_float32(monkeypatch, threads):
    """float32 as trained, one thread and two (the parallel cutoff lowered so that these
    small layers split their rows), with weight-gradient chunks of a single row."""
    torch = torch_or_skip()
    monkeypatch.setattr(conv_ops, "_DIRECT_PARALLEL_WORK", 1000)
    monkeypatch.setattr(conv_ops, "_BLOCKED_CHUNK_BYTES", 1)
    calls = _count(monkeypatch)
    old = framework.get_num_threads()
    framework.set_num_threads(threads)
    try:
        for case in CASES:
            calls.update(conv=0, dw=0)
            _run_case(torch, *case, np.float32, True, True)
            _check_paths(case, "channels_last", calls)
    finally:
        framework.set_num_threads(old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_plans_of_a_16_register_machine(monkeypatch, dtype):
    """The lanes and block shapes chosen for AVX2 (32-byte vectors, 16 registers) give the
    same results: LLVM lowers the narrower vectors here as well."""
    torch = torch_or_skip()
    monkeypatch.setattr(_simd, "host_vector_bytes", lambda: 32)
    monkeypatch.setattr(_simd, "host_vector_registers", lambda: 16)
    for case in CASES[:3] + CASES[6:9]:
        _run_case(torch, *case, dtype, True, True)


def test_blocked_plan_choices(monkeypatch):
    from framework import _conv_blocked as cb
    monkeypatch.setattr(_simd, "host_vector_bytes", lambda: 64)
    monkeypatch.setattr(_simd, "host_vector_registers", lambda: 32)
    assert cb.lanes_for(4, 16) == 16 and cb.lanes_for(4, 24) == 8 and cb.lanes_for(4, 12) == 0
    assert cb.lanes_for(8, 16) == 8 and cb.lanes_for(8, 12) == 4 and cb.lanes_for(8, 6) == 0
    assert cb.forward_plan(128, 16, 8) == (4, 4)  # 4 vectors a block; 8 pixels: blocks of 4
    assert cb.forward_plan(16, 16, 64) == (1, 16)
    assert cb.forward_plan(48, 16, 11) == (3, 8)  # no divisor of 11 in 5..8: a tail of 3
    assert cb.forward_plan(16, 16, 3) == (1, 3)  # a row shorter than a block


def test_blocked_gradcheck_and_double_backward():
    """Finite differences through the blocked kernels, first and second order (the
    gradients' own backward runs them again: dx of dx is a convolution, and so on)."""
    rng = np.random.default_rng(1)
    x = framework.tensor(rng.standard_normal((2, 8, 5, 6)), requires_grad=True)
    w = framework.tensor(rng.standard_normal((16, 8, 3, 3)) * 0.3, requires_grad=True)
    b = framework.tensor(rng.standard_normal(16), requires_grad=True)

    for stride in (1, 2):
        def f(x, w, b):
            return framework.nn.functional.conv2d(x, w, b, padding=1, stride=stride)
        assert gradcheck(f, (x, w, b), eps=1e-6, atol=1e-6)
        assert gradgradcheck(f, (x, w, b), eps=1e-6, atol=1e-5)


def test_nan_and_inf_propagate_as_in_torch():
    """Every tap is a real multiply-add (no skipped zero weights), so a NaN or an infinity in
    the input reaches the same outputs as in PyTorch."""
    torch = torch_or_skip()
    x = np.random.default_rng(2).standard_normal((1, 16, 6, 6)).astype(np.float32)
    x[0, 3, 2, 2] = np.nan
    x[0, 5, 4, 1] = np.inf
    w = np.random.default_rng(3).standard_normal((16, 16, 3, 3)).astype(np.float32)
    w[:, 5] = 0.0  # a zero weight times an infinity is NaN in both
    ly = framework.nn.functional.conv2d(framework.tensor(x), framework.tensor(w), padding=1)
    ty = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=1)
    np.testing.assert_array_equal(np.isnan(ly.numpy()), np.isnan(ty.numpy()))
    finite = np.isfinite(ty.numpy())
    np.testing.assert_allclose(ly.numpy()[finite], ty.numpy()[finite], rtol=2e-4, atol=2e-4)


_CACHE_PROBE = """
import numpy as np
import framework
import framework.nn.functional as F
from framework import _conv_blocked
rng = np.random.default_rng(0)
x = framework.tensor(rng.standard_normal((2, 16, 9, 10)).astype(np.float32))
w = framework.tensor(rng.standard_normal((16, 16, 3, 3)).astype(np.float32))
y = F.conv2d(x, w, padding=1).numpy()
hits = sum(sum(fn.stats.cache_hits.values()) for fn in _conv_blocked._compiled.values())
print(len(_conv_blocked._compiled), hits, float(np.abs(y).sum()))
"""


def _probe(cache):
    import os
    import subprocess
    import sys
    env = {**os.environ, "LANTERN_KERNEL_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _CACHE_PROBE], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    return int(out[0]), int(out[1]), float(out[2])


def test_generated_kernels_are_cached_on_disk(tmp_path):
    """A generated kernel's module is written to the kernel cache and numba keeps its machine
    code there: a second process loads it (a cache hit) and computes the same result; a
    cache folder that cannot be created, or LANTERN_KERNEL_CACHE=0, compiles in memory."""
    cache = tmp_path / "kernels"
    kernels, hits, first = _probe(cache)
    assert kernels >= 1 and hits == 0
    assert list(cache.glob("lantern_kernel_*.py")) and list(cache.glob("__pycache__/*.nbi"))
    assert _probe(cache) == (kernels, kernels, first)
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    assert _probe(blocked / "kernels") == (kernels, 0, first)
    assert _probe("0") == (kernels, 0, first)
