"""Table-driven op tests (the table is tests/optable.py).

For every case: a float64 finite-difference gradcheck, and with torch installed, forward and
backward parity with PyTorch on the same inputs and the same upstream gradient (values,
dtypes, shapes, requires_grad, input gradients). Cases marked `gg` also get a gradgradcheck.
A coverage test makes sure every registered op has a case, so a new op cannot go untested.
"""
from __future__ import annotations

import functools
import glob
import importlib
import os
import pkgutil
import zlib

import numpy as np
import pytest

import framework
from conftest import torch_or_skip
from framework.autograd import gradcheck, gradgradcheck
from framework.ops.registry import OPS

import optable
from optable import In

# Tables of other areas (tests/optable_<area>.py) join the same checks.
_HERE = os.path.dirname(os.path.abspath(__file__))
_TABLES = [optable] + [importlib.import_module(os.path.basename(p)[:-3])
                       for p in sorted(glob.glob(os.path.join(_HERE, "optable_*.py")))]
CASES = [c for t in _TABLES for c in getattr(t, "CASES", [])]
NONDIFF_CASES = [c for t in _TABLES for c in getattr(t, "NONDIFF_CASES", [])]


def _ids(cases):
    seen, out = {}, []
    for c in cases:
        k = c.id
        n = seen.get(k, 0)
        seen[k] = n + 1
        out.append(k if not n else f"{k}#{n}")
    return out


class Lib:
    """`framework` or `torch` as an op lambda sees it: constants the lambda creates
    (`m.tensor([...])`, `m.zeros(...)`) land on the test's device."""

    _MAKERS = frozenset({"tensor", "zeros", "ones", "full", "arange", "eye", "linspace",
                         "empty"})

    def __init__(self, module, device):
        self._module, self._device = module, device

    def __getattr__(self, name):
        obj = getattr(self._module, name)
        if name in self._MAKERS:
            return functools.partial(obj, device=self._device)
        return obj


def _arrays(case):
    """The case's input values (float64/int64/bool NumPy arrays), the same on every run."""
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    return [spec.sample(rng, case.low, case.high) for spec in case.inputs]


def _leaf(mod, arr, spec: In, dtype, device, requires_grad):
    """A leaf tensor of library `mod` holding `arr`, laid out as `spec` asks."""
    if not spec.is_float:
        return mod.tensor(arr, device=device)
    if spec.layout == "T":
        store = np.ascontiguousarray(np.swapaxes(arr, -1, -2))
        t = mod.tensor(store, dtype=dtype, device=device).transpose(-1, -2)
    elif spec.layout == "S":
        store = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],))
        store[..., ::2] = arr
        t = mod.tensor(store, dtype=dtype, device=device)[..., ::2]
    else:
        t = mod.tensor(arr, dtype=dtype, device=device)
    t = t.detach()
    if spec.layout is not None and t.numel() > 1:
        assert not t.is_contiguous(), "the non-contiguous layout came out contiguous"
    return t.requires_grad_(requires_grad)


def _fw_inputs(case, device, dtype, grad):
    return [_leaf(framework, a, s, dtype, device, grad and i in case.grad)
            for i, (a, s) in enumerate(zip(_arrays(case), case.inputs))]


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [y for o in out for y in _flat(o)]
    return [out]


def _np(t):
    return t.detach().cpu().numpy()


def _dtype_name(d):
    return str(d).split(".")[-1]


def _compare(fw, th, what, atol, rtol):
    """Assert that framework tensor `fw` matches torch tensor `th` (shape, dtype, values)."""
    import torch
    if not isinstance(th, torch.Tensor):
        assert not isinstance(fw, framework.Tensor), f"{what}: torch gave {th!r}, got a tensor"
        assert fw == th, f"{what}: {fw!r} != {th!r}"
        return
    assert isinstance(fw, framework.Tensor), f"{what}: expected a tensor, got {type(fw)}"
    assert tuple(fw.shape) == tuple(th.shape), f"{what}: shape {tuple(fw.shape)} != torch " \
                                               f"{tuple(th.shape)}"
    assert fw.dtype.name == _dtype_name(th.dtype), f"{what}: dtype {fw.dtype.name} != torch " \
                                                   f"{_dtype_name(th.dtype)}"
    a, b = _np(fw), _np(th)
    if a.dtype.kind in "fc":
        np.testing.assert_allclose(a, b, atol=atol, rtol=rtol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(a, b, err_msg=what)


@pytest.fixture(scope="module")
def torch():
    t = torch_or_skip()
    t.set_num_threads(1)
    return t


# ---------------------------------------------------------------------------------- gradcheck
GRADCHECK = [c for c in CASES if c.gradcheck]


@pytest.mark.parametrize("case", GRADCHECK, ids=_ids(GRADCHECK))
def test_gradcheck(case, device):
    xs = _fw_inputs(case, device, framework.float64, grad=True)
    lib = Lib(framework, device)
    for k, out in enumerate(_flat(case.fn(lib, *xs))):  # float64 in, float64 out
        if isinstance(out, framework.Tensor) and out.is_floating_point():
            assert out.dtype is framework.float64, f"output {k} is {out.dtype}"
    assert gradcheck(lambda *a: case.fn(lib, *a), xs, eps=1e-6, atol=1e-5, rtol=1e-3)


GRADGRAD = [c for c in CASES if c.gg]


@pytest.mark.parametrize("case", GRADGRAD, ids=_ids(GRADGRAD))
def test_gradgradcheck(case, device):
    xs = _fw_inputs(case, device, framework.float64, grad=True)
    lib = Lib(framework, device)
    assert gradgradcheck(lambda *a: case.fn(lib, *a), xs, eps=1e-6, atol=1e-5, rtol=1e-3)


# ---------------------------------------------------------------------------------- torch parity
PARITY = [c for c in CASES if c.parity]


def _run_parity(case, device, torch, backward):
    arrays = _arrays(case)
    fw_in = [_leaf(framework, a, s, framework.float32, device, backward and i in case.grad)
             for i, (a, s) in enumerate(zip(arrays, case.inputs))]
    th_in = [_leaf(torch, a, s, torch.float32, "cpu", backward and i in case.grad)
             for i, (a, s) in enumerate(zip(arrays, case.inputs))]
    fw_out = _flat(case.fn(Lib(framework, device), *fw_in))
    th_out = _flat(case.torch_fn(Lib(torch, "cpu"), *th_in))
    assert len(fw_out) == len(th_out), f"{len(fw_out)} outputs, torch gives {len(th_out)}"
    for k, (f, t) in enumerate(zip(fw_out, th_out)):
        _compare(f, t, f"output {k}", case.atol, case.rtol)
        if isinstance(t, torch.Tensor):
            assert f.requires_grad == t.requires_grad, \
                f"output {k}: requires_grad {f.requires_grad}, torch {t.requires_grad}"
    if not backward:
        return
    # The same upstream gradient into every differentiable output, then compare input grads.
    rng = np.random.default_rng(1)
    pairs = [(f, t) for f, t in zip(fw_out, th_out)
             if isinstance(t, torch.Tensor) and t.requires_grad]
    if not pairs:
        return
    ups = [rng.standard_normal(tuple(t.shape)) for _, t in pairs]
    diff = list(case.grad)
    th_g = torch.autograd.grad([t for _, t in pairs], [th_in[i] for i in diff],
                               [torch.tensor(u, dtype=t.dtype) for u, (_, t) in zip(ups, pairs)],
                               allow_unused=True)
    fw_g = framework.autograd.grad(
        [f for f, _ in pairs], [fw_in[i] for i in diff],
        [framework.tensor(u, dtype=f.dtype, device=device) for u, (f, _) in zip(ups, pairs)],
        allow_unused=True)
    for i, gf, gt in zip(diff, fw_g, th_g):
        if gt is None:
            gt = torch.zeros_like(th_in[i])
        if gf is None:
            gf = framework.zeros_like(fw_in[i])
        assert gf.requires_grad is False, f"grad of input {i} requires grad without create_graph"
        _compare(gf, gt, f"grad of input {i}", case.grad_atol, case.grad_rtol)


@pytest.mark.parametrize("case", PARITY, ids=_ids(PARITY))
def test_torch_parity(case, device, torch):
    _run_parity(case, device, torch, backward=not case.forward_only)


NONDIFF_PARITY = [c for c in NONDIFF_CASES if c.parity]


@pytest.mark.parametrize("case", NONDIFF_PARITY, ids=_ids(NONDIFF_PARITY))
def test_torch_parity_forward(case, device, torch):
    _run_parity(case, device, torch, backward=False)


# ---------------------------------------------------------------------------------- coverage
def _import_all_framework_modules():
    """Import every framework module, so that every op that registers itself is in OPS."""
    for info in pkgutil.walk_packages(framework.__path__, "framework."):
        try:
            importlib.import_module(info.name)
        except ImportError as exc:  # an optional backend (CuPy) that is not installed
            if "cupy" not in str(exc).lower():
                raise


def test_every_differentiable_op_has_a_case():
    _import_all_framework_modules()
    covered = {c.op for c in CASES if c.gradcheck}
    diff = {name for name, e in OPS.items() if e["differentiable"]}
    missing = sorted(diff - covered)
    assert not missing, ("registered differentiable ops without a gradchecked case in "
                         f"tests/optable.py (or tests/optable_<area>.py): {missing}")


def test_every_op_without_gradient_has_a_case():
    _import_all_framework_modules()
    covered = {c.op for c in CASES + NONDIFF_CASES}
    nondiff = {name for name, e in OPS.items() if not e["differentiable"]}
    missing = sorted(nondiff - covered)
    assert not missing, f"registered ops without a forward case in the op tables: {missing}"


def test_table_is_well_formed():
    for c in CASES + NONDIFF_CASES:
        assert callable(c.fn) and callable(c.torch_fn), c.id
        for i in c.grad:
            assert c.inputs[i].is_float, f"{c.id}: input {i} is differentiable but not float"
