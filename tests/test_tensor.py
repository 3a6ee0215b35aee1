"""Tensors themselves: creation, dtypes and PyTorch's type promotion, conversions, printing,
error messages and the version counter of views."""
from __future__ import annotations

import math

import numpy as np
import pytest

import framework
from conftest import torch_or_skip


def _np(t):
    return t.detach().cpu().numpy()


def _same(fw, th):
    """Assert a framework tensor equals a torch tensor: shape, dtype name and values."""
    assert tuple(fw.shape) == tuple(th.shape)
    assert fw.dtype.name == str(th.dtype).split(".")[-1]
    np.testing.assert_allclose(_np(fw).astype(np.float64), th.detach().numpy().astype(np.float64),
                               rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------- creation
def test_filled_creation(device):
    for fn, val in ((framework.zeros, 0), (framework.ones, 1)):
        t = fn(2, 3, device=device)
        assert t.shape == (2, 3) and t.dtype is framework.float32 and t.device == device
        assert (_np(t) == val).all()
        assert fn((4,), dtype=framework.int32, device=device).dtype is framework.int32
        assert fn([], device=device).shape == ()
    f = framework.full((2, 2), 7, device=device)
    assert f.dtype is framework.int64 and (_np(f) == 7).all()
    assert framework.full((2,), 1.5, device=device).dtype is framework.float32
    assert framework.full((2,), True, device=device).dtype is framework.bool
    e = framework.empty(3, 0, device=device)
    assert e.shape == (3, 0) and e.numel() == 0
    with pytest.raises(RuntimeError, match="negative dimension"):
        framework.zeros(2, -1)
    z = framework.zeros(2, 3, requires_grad=True, device=device)
    assert z.requires_grad and z.is_leaf


def test_like_creation(device):
    x = framework.tensor([[1, 2, 3]], dtype=framework.int32, device=device)
    for fn in (framework.zeros_like, framework.ones_like, framework.empty_like):
        y = fn(x)
        assert y.shape == x.shape and y.dtype is framework.int32 and y.device == device
    assert (_np(framework.full_like(x, 4)) == 4).all()
    assert framework.ones_like(x, dtype=framework.float64).dtype is framework.float64
    xf = framework.zeros(2, 2, device=device)
    assert framework.rand_like(xf).shape == (2, 2)
    assert framework.randn_like(xf).dtype is framework.float32
    r = framework.randint_like(x, 5, 10)
    assert r.dtype is framework.int32 and 5 <= _np(r).min() and _np(r).max() < 10


def test_ranges_match_torch(device):
    torch = torch_or_skip()
    for args, kw in [((5,), {}), ((1, 10, 3), {}), ((0.0, 1.0, 0.1), {}), ((10, 0, -3), {}),
                     ((-1.5, 2.5, 0.5), {}), ((0, 5), {"dtype": "float64"}),
                     ((2.5,), {}), ((1, 1), {}), ((0, 1, 0.3), {"dtype": "float64"})]:
        fkw = {k: getattr(framework, v) for k, v in kw.items()}
        tkw = {k: getattr(torch, v) for k, v in kw.items()}
        _same(framework.arange(*args, device=device, **fkw), torch.arange(*args, **tkw))
    for args in [(0, 1, 5), (-2.0, 3.0, 7), (1, 1, 1), (0, 10, 0)]:
        _same(framework.linspace(*args, device=device), torch.linspace(*args))
    _same(framework.logspace(0, 2, 3, device=device), torch.logspace(0, 2, 3))
    _same(framework.eye(3, device=device), torch.eye(3))
    _same(framework.eye(2, 4, dtype=framework.int64, device=device),
          torch.eye(2, 4, dtype=torch.int64))
    _same(framework.tril_indices(3, 4, 1), torch.tril_indices(3, 4, 1))
    _same(framework.triu_indices(4, 3, -1), torch.triu_indices(4, 3, -1))
    with pytest.raises(RuntimeError, match="step must be nonzero"):
        framework.arange(0, 5, 0)


def test_random_creation_shapes_dtypes_ranges(device):
    assert framework.rand(2, 3, device=device).dtype is framework.float32
    assert framework.randn((4,), dtype=framework.float64, device=device).shape == (4,)
    r = _np(framework.randint(3, 7, (1000,), device=device))
    assert r.min() == 3 and r.max() == 6
    assert framework.randint(5, (2, 2), device=device).dtype is framework.int64
    p = _np(framework.randperm(10, device=device))
    assert sorted(p.tolist()) == list(range(10))
    n = _np(framework.randn(20000, device=device))
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05
    u = _np(framework.rand(20000, device=device))
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.02
    counts = np.bincount(_np(framework.multinomial(
        framework.tensor([0.0, 1.0, 3.0], device=device), 4000, replacement=True)), minlength=3)
    assert counts[0] == 0 and 0.2 < counts[1] / 4000 < 0.3


@pytest.mark.parametrize("data,dtype", [
    ([1, 2, 3], "int64"), ([1.0, 2], "float32"), ([True, False], "bool"), ([[1, 2], [3, 4]],
                                                                            "int64"),
    (3, "int64"), (2.5, "float32"), (True, "bool"), ([1, 2.5, True], "float32"), ([], "float32"),
    ([[]], "float32"), (np.array([1.0, 2.0]), "float64"), (np.array([1, 2], np.int32), "int32"),
    (np.float64(2.0), "float64"), (np.array(3, dtype=np.uint8), "uint8"), ([np.int32(1)], "int32"),
    ([np.int32(1), 2], "int64"), ([np.float64(1.0), 2.5], "float64"),
    ([np.float16(1), 2], "float16"),
    ([np.float16(1), 2.5], "float32"), ([np.uint8(1), np.int8(2)], "int16"),
])
def test_tensor_dtype_inference_matches_torch(data, dtype, device):
    t = framework.tensor(data, device=device)
    assert t.dtype.name == dtype
    torch = pytest.importorskip("torch")
    assert str(torch.tensor(data).dtype).split(".")[-1] == dtype


def test_tensor_from_tensors_and_default_dtype(device):
    t = framework.tensor([framework.tensor(1.0), framework.tensor(2.0)], device=device)
    assert t.shape == (2,) and t.dtype is framework.float32
    framework.set_default_dtype(framework.float64)
    try:
        assert framework.tensor([1.0]).dtype is framework.float64
        assert framework.zeros(1).dtype is framework.float64
        assert (framework.tensor([1]) * 0.5).dtype is framework.float64
        assert repr(framework.tensor([1.0, 2.0])) == "tensor([1., 2.])"
        assert repr(framework.tensor([1.0], dtype=framework.float32)) == \
            "tensor([1.], dtype=framework.float32)"
    finally:
        framework.set_default_dtype(framework.float32)
    with pytest.raises(TypeError):
        framework.set_default_dtype(framework.int32)


def test_from_numpy_and_as_tensor_share_memory():
    a = np.arange(6.0).reshape(2, 3)
    t = framework.from_numpy(a)
    a[0, 0] = 100.0
    assert t[0, 0].item() == 100.0
    t[1, 1] = -1.0
    assert a[1, 1] == -1.0
    assert t.dtype is framework.float64
    s = framework.as_tensor(a)
    s.add_(1.0)
    assert a[0, 0] == 101.0
    c = framework.tensor(a)  # tensor() always copies
    c.add_(1.0)
    assert a[0, 0] == 101.0
    d = framework.as_tensor(a, dtype=framework.float32)  # a dtype change copies
    d.add_(1.0)
    assert a[0, 0] == 101.0
    assert framework.as_tensor(t) is t
    with pytest.raises(TypeError):
        framework.from_numpy([1, 2])


# ---------------------------------------------------------------------------------- promotion
_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def _operand(mod, spec, device=None):
    kind, name = spec
    if kind == "py":
        return name
    arr = np.array([1, 2, 1]) if kind == "dim" else np.array(1)  # no 0: int % 0 raises
    kw = {"device": device} if device is not None else {}
    return mod.tensor(arr, dtype=getattr(mod, name), **kw)


_SPECS = ([("dim", d) for d in _DTYPES] + [("0d", d) for d in _DTYPES]
          + [("py", True), ("py", 2), ("py", 2.5)])


def test_type_promotion_matches_torch(device):
    """Every pair of (dimensioned tensor, 0-d tensor, Python scalar) x dtype, for add, mul,
    true division, maximum and where: the result dtype (or the refusal) is PyTorch's."""
    torch = torch_or_skip()
    ops = [("add", lambda a, b: a + b), ("mul", lambda a, b: a * b),
           ("div", lambda a, b: a / b), ("sub", lambda a, b: a - b)]
    mismatches = []
    for sa in _SPECS:
        for sb in _SPECS:
            if sa[0] == "py" and sb[0] == "py":
                continue
            for name, op in ops:
                try:
                    expect = str(op(_operand(torch, sa), _operand(torch, sb)).dtype).split(".")[-1]
                except RuntimeError:
                    expect = "error"
                try:
                    got = op(_operand(framework, sa, device), _operand(framework, sb, device))
                    got = got.dtype.name
                except (RuntimeError, TypeError):
                    got = "error"
                if got != expect:
                    mismatches.append(f"{sa} {name} {sb}: {got}, torch {expect}")
    assert not mismatches, "\n".join(mismatches)


def test_type_promotion_other_ops_match_torch(device):
    torch = torch_or_skip()
    ops = [("maximum", lambda m, a, b: m.maximum(a, b)),
           ("where", lambda m, a, b: m.where(m.tensor(True), a, b)),
           ("eq", lambda m, a, b: a == b), ("pow", lambda m, a, b: a ** b),
           ("remainder", lambda m, a, b: a % b), ("atan2", lambda m, a, b: m.atan2(a, b)),
           ("fmod", lambda m, a, b: m.fmod(a, b)), ("floor_divide", lambda m, a, b: a // b),
           ("and", lambda m, a, b: a & b), ("logical_or", lambda m, a, b: m.logical_or(a, b))]
    specs = [("dim", d) for d in ("bool", "uint8", "int32", "int64", "float32", "float64")] + \
        [("0d", "int64"), ("0d", "float64"), ("py", 2), ("py", 2.5)]
    mismatches = []
    for sa in specs:
        for sb in specs:
            if sa[0] != "dim" and sb[0] != "dim":
                continue
            for name, op in ops:
                if name in ("atan2", "maximum", "fmod", "logical_or") and "py" in (sa[0],
                                                                                 sb[0]):
                    continue  # torch takes tensors only here (Lantern also takes a number)
                try:
                    t = op(torch, _operand(torch, sa), _operand(torch, sb))
                    expect = str(t.dtype).split(".")[-1]
                except (RuntimeError, TypeError):
                    expect = "error"
                try:
                    got = op(framework, _operand(framework, sa, device),
                             _operand(framework, sb, device)).dtype.name
                except (RuntimeError, TypeError):
                    got = "error"
                if got != expect:
                    mismatches.append(f"{sa} {name} {sb}: {got}, torch {expect}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("a,b,expect", [
    (("dim", "int64"), ("py", 2.5), "float32"),
    (("dim", "float32"), ("0d", "float64"), "float32"),
    (("dim", "int32"), ("0d", "int64"), "int32"),
    (("dim", "uint8"), ("dim", "int8"), "int16"),
    (("dim", "bool"), ("dim", "int32"), "int32"),
    (("dim", "bool"), ("py", 2), "int64"),
    (("dim", "int32"), ("0d", "float64"), "float64"),
    (("dim", "float16"), ("dim", "float32"), "float32"),
    (("dim", "uint8"), ("py", 300), "uint8"),
    (("dim", "int8"), ("py", True), "int8"),
])
def test_promotion_rules(a, b, expect, device):
    """The promotion rules that matter most, checked without torch."""
    r = _operand(framework, a, device) + _operand(framework, b, device)
    assert r.dtype.name == expect
    assert framework.promote_types(framework.uint8, framework.int8) is framework.int16


def test_unary_ops_on_bool_and_int_match_torch(device):
    torch = torch_or_skip()
    ops = [lambda x: -x, lambda x: x.abs(), lambda x: x.sign(), lambda x: x.square(),
           lambda x: x.sum(), lambda x: x.cumsum(0), lambda x: x.prod(), lambda x: x.exp(),
           lambda x: x.sqrt(), lambda x: x.sigmoid(), lambda x: x.float().mean(),
           lambda x: ~x, lambda x: x.max(), lambda x: x.argmax(), lambda x: x.floor()]
    mismatches = []
    for dt in ("bool", "uint8", "int32", "int64"):
        for k, op in enumerate(ops):
            vals = np.array([1, 0, 1]) if dt == "bool" else np.array([3, 0, 2])
            try:
                expect = str(op(torch.tensor(vals, dtype=getattr(torch, dt))).dtype)
                expect = expect.split(".")[-1]
            except RuntimeError:
                expect = "error"
            try:
                got = op(framework.tensor(vals, dtype=getattr(framework, dt),
                                          device=device)).dtype.name
            except (RuntimeError, TypeError):
                got = "error"
            if got != expect and not (k in (1, 13, 14) and dt == "bool" and expect == "error"):
                # abs, argmax and floor of a bool tensor: Lantern allows what PyTorch refuses
                mismatches.append(f"op {k} on {dt}: {got}, torch {expect}")
    assert not mismatches, "\n".join(mismatches)


def test_inplace_ops_keep_dtype_and_refuse_unsafe_casts(device):
    x = framework.tensor([1, 2], dtype=framework.int32, device=device)
    x.add_(framework.tensor([1, 1], dtype=framework.int64, device=device))
    assert x.dtype is framework.int32 and _np(x).tolist() == [2, 3]
    f = framework.tensor([1.0, 2.0], device=device)
    f.mul_(2)
    assert f.dtype is framework.float32
    with pytest.raises(RuntimeError, match="can't be cast"):
        x.mul_(1.5)


def test_promote_types_matches_torch():
    torch = torch_or_skip()
    names = _DTYPES + ["complex64", "complex128"]
    for a in names:
        for b in names:
            got = framework.promote_types(getattr(framework, a), getattr(framework, b)).name
            assert got == str(torch.promote_types(getattr(torch, a), getattr(torch, b))).split(
                ".")[-1], (a, b)


def test_cat_promotes_like_torch(device):
    x = framework.cat([framework.tensor([1, 2], device=device),
                       framework.tensor([0.5], device=device)])
    assert x.dtype is framework.float32 and x.tolist() == [1.0, 2.0, 0.5]
    assert framework.float_power(framework.tensor([2], device=device), 2).dtype is \
        framework.float64


# ---------------------------------------------------------------------------------- conversions
def test_to_cpu_numpy_item_tolist(device):
    x = framework.tensor([[1.5, -2.0]], device=device)
    assert x.to(framework.float64).dtype is framework.float64
    assert x.to(dtype=framework.int32).tolist() == [[1, -2]]
    assert x.to("cpu").device == "cpu" and x.cpu().device.type == "cpu"
    y = x.to(framework.zeros(1, dtype=framework.float16))
    assert y.dtype is framework.float16
    assert x.to(device) is x and x.to(framework.float32) is x
    c = x.to(device, copy=True)
    assert c is not x and c.tolist() == x.tolist()
    assert x.double().dtype is framework.float64 and x.long().dtype is framework.int64
    assert x.half().dtype is framework.float16 and x.bool().dtype is framework.bool
    assert x.int().dtype is framework.int32 and x.float() is x
    assert x.type() == "framework.float32"
    assert x.type_as(framework.zeros(1, dtype=framework.int64)).dtype is framework.int64
    assert x.tolist() == [[1.5, -2.0]]
    assert x[0, 1].item() == -2.0 and isinstance(x[0, 1].item(), float)
    assert framework.tensor(3, device=device).item() == 3
    assert float(x[0, 0]) == 1.5 and int(x[0, 0]) == 1 and bool(x[0, 0])
    with pytest.raises(RuntimeError, match="2 elements cannot be converted to Scalar"):
        x.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x)
    n = x.cpu().numpy()
    assert isinstance(n, np.ndarray) and n.dtype == np.float32
    xc = x.cpu()
    xc.numpy()[0, 0] = 9.0  # numpy() shares memory
    assert xc[0, 0].item() == 9.0
    g = framework.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        g.numpy()
    assert g.detach().numpy().tolist() == [1.0]
    assert np.asarray(xc).shape == (1, 2)
    assert framework.tensor(2.0).numpy().shape == ()


def test_to_keeps_the_graph(device):
    x = framework.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x.to(framework.float64) * 3
    assert y.dtype is framework.float64
    y.sum().backward()
    assert x.grad.dtype is framework.float32 and _np(x.grad).tolist() == [3.0, 3.0]
    z = x.to("cpu")
    assert z.requires_grad


def test_metadata(device):
    x = framework.zeros(2, 3, 4, device=device)
    assert x.shape == framework.Size([2, 3, 4]) and repr(x.shape) == "framework.Size([2, 3, 4])"
    assert x.size() == (2, 3, 4) and x.size(-1) == 4 and x.dim() == 3 and x.ndim == 3
    assert x.numel() == 24 and x.shape.numel() == 24 and len(x) == 2
    assert x.stride() == (12, 4, 1) and x.transpose(0, 2).stride() == (1, 4, 12)
    assert x.is_contiguous() and not x.transpose(0, 1).is_contiguous()
    assert x.element_size() == 4 and x.is_floating_point()
    assert not framework.zeros(1, dtype=framework.int64).is_floating_point()
    assert framework.is_tensor(x) and not framework.is_tensor(np.zeros(1))
    with pytest.raises(TypeError):
        len(framework.tensor(1.0))


# ---------------------------------------------------------------------------------- printing
def test_repr_matches_torch_style():
    x = framework.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward0>)"
    assert repr((x * 2).sum()) == "tensor(6., grad_fn=<SumBackward0>)"
    assert repr(framework.tensor([1.5, -2.25])) == "tensor([ 1.5000, -2.2500])"
    assert repr(framework.tensor([1, 2], dtype=framework.int32)) == \
        "tensor([1, 2], dtype=framework.int32)"
    assert repr(framework.tensor([1.0], dtype=framework.float64)) == \
        "tensor([1.], dtype=framework.float64)"
    assert repr(framework.tensor([True, False])) == "tensor([ True, False])"
    assert repr(framework.tensor([1, -20, 300])) == "tensor([  1, -20, 300])"
    assert repr(framework.tensor(3.5)) == "tensor(3.5000)"
    assert repr(framework.tensor([])) == "tensor([])"
    assert repr(framework.zeros(2, 0, dtype=framework.int64)) == \
        "tensor([], size=(2, 0), dtype=framework.int64)"
    assert repr(framework.tensor([1e-5, 1.0])) == "tensor([1.0000e-05, 1.0000e+00])"
    assert repr(framework.tensor([math.nan, math.inf, -math.inf, 1.0])) == \
        "tensor([nan, inf, -inf, 1.])"
    assert str(framework.tensor([[1.0, 2.0], [3.0, 4.0]])) == \
        "tensor([[1., 2.],\n        [3., 4.]])"
    assert f"{framework.tensor(2.5):.2f}" == "2.50"
    assert repr(framework.relu(framework.tensor([-1.0, 2.0]))) == "tensor([0., 2.])"  # not -0.


def test_comparison_with_non_tensors_falls_back_to_python():
    x = framework.tensor([1.0, 2.0])
    assert (x == None) is False and (x != None) is True  # noqa: E711
    assert (x == "a") is False
    assert x in [x] and x not in [None, "a"]


def test_repr_identical_to_torch_on_many_tensors():
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 4)), rng.standard_normal(5) * 1e-6,
              rng.standard_normal((2, 3, 4)) * 1e9, np.round(rng.standard_normal((4, 5)) * 50),
              rng.standard_normal((40, 50)), rng.standard_normal(2000),
              rng.standard_normal((2, 30, 30)), rng.integers(-500, 500, (3, 400)),
              rng.random((2, 2)) < 0.5, np.zeros((2, 3)), np.array(-0.5), np.ones((1, 1, 1)),
              rng.standard_normal((3, 4)) * 10.0 ** rng.integers(-3, 5, (3, 4)),
              (rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))).astype(
                  np.complex64),
              np.array([1e-5 + 2j, 3 - 0j, -1e3j]).astype(np.complex64),
              np.array([complex(np.nan, 1), complex(1, np.inf), 2 - 2j]).astype(np.complex64),
              (rng.standard_normal(1500) * (1 + 1j)).astype(np.complex64)]
    # Float arrays print as float32 (the default dtype): a dtype suffix is longer here than in
    # PyTorch ('framework.' vs 'torch.'), which can move a line break.
    arrays = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in arrays]
    for a in arrays:
        assert repr(framework.tensor(a)) == repr(torch.tensor(a)).replace("torch.", "framework.")
    try:
        for kw in (dict(precision=2), dict(threshold=5, edgeitems=1), dict(linewidth=30),
                   dict(sci_mode=True)):
            framework.set_printoptions(**kw)
            torch.set_printoptions(**kw)
            for a in arrays[:4]:
                assert repr(framework.tensor(a)) == \
                    repr(torch.tensor(a)).replace("torch.", "framework.")
    finally:
        framework.set_printoptions(profile="default")
        torch.set_printoptions(profile="default", sci_mode=None)


# ---------------------------------------------------------------------------------- errors
def test_shape_mismatch_errors_name_both_shapes_and_the_op(device):
    a, b = framework.zeros(2, 3, device=device), framework.zeros(4, device=device)
    for fn, name in ((lambda: a + b, "add"), (lambda: a * b, "mul"), (lambda: a - b, "sub"),
                     (lambda: a / b, "div"), (lambda: framework.maximum(a, b), "maximum"),
                     (lambda: a < b, "lt")):
        with pytest.raises(RuntimeError) as info:
            fn()
        msg = str(info.value)
        assert name in msg and "[2, 3]" in msg and "[4]" in msg, msg
    with pytest.raises(RuntimeError, match=r"matmul.*2x3 and 4x1"):
        a @ framework.zeros(4, 1, device=device)
    with pytest.raises(RuntimeError, match=r"cat.*\[2, 3\].*\[4\]|cat"):
        framework.cat([a, b.reshape(1, 4)])
    with pytest.raises(RuntimeError, match=r"invalid for input of size 6"):
        a.reshape(4, 2)
    with pytest.raises(IndexError, match="out of range"):
        a.sum(2)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 2"):
        a[5]


def test_cuda_without_cupy_says_how_to_install():
    from framework import _backend
    if _backend.cupy_module() is not None:
        pytest.skip("CuPy is installed here")
    with pytest.raises(RuntimeError) as info:
        framework.zeros(2, device="cuda")
    msg = str(info.value)
    assert "CuPy" in msg and "pip install" in msg
    with pytest.raises(RuntimeError, match="CuPy"):
        framework.tensor([1.0]).cuda()
    assert not framework.cuda.is_available()


def test_mixing_devices_names_both(device):
    if device != "cuda":
        pytest.skip("needs --device cuda")
    a = framework.zeros(3, device="cuda")
    b = framework.zeros(3)
    with pytest.raises(RuntimeError) as info:
        a + b
    assert "cuda:0" in str(info.value) and "cpu" in str(info.value)
    assert (a + framework.tensor(2.0)).device == "cuda:0"  # a 0-d CPU tensor is a scalar


# ---------------------------------------------------------------------------------- versions
def test_views_share_the_version_counter(device):
    a = framework.zeros(2, 3, device=device)
    views = [a[0], a.view(6), a.t(), a.detach(), a.data, a.unsqueeze(0), a[:, 1:]]
    assert a._version == 0
    views[0].add_(1.0)
    assert a._version == 1 and all(v._version == 1 for v in views)
    assert _np(a)[0].tolist() == [1.0, 1.0, 1.0]  # the view wrote into a's memory
    a[1, 1] = 5.0
    assert a._version == 2 and views[2]._version == 2
    c = a.clone()
    c.add_(1.0)
    assert a._version == 2 and c._version == 1
    framework.ones(2).zero_()
    b = framework.ones(2, device=device)
    b.zero_().fill_(2.0)
    assert b._version == 2 and _np(b).tolist() == [2.0, 2.0]
