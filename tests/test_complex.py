"""Complex tensors and complex autograd, against PyTorch's conventions.

For a real loss L of z = x + iy, PyTorch's z.grad is dL/dx + i dL/dy (`test_convention`
checks that with torch itself). Every op is run forward and backward next to torch on
complex128 (tight) and complex64 (loose) inputs with two real losses, `(f(z) * w).real.sum()`
and `f(z).abs().pow(2).sum()`, and checked against finite differences that perturb the real
and the imaginary part of each element separately.
"""
from __future__ import annotations

import numpy as np
import pytest

import framework as F
from conftest import torch_or_skip

# A real operand promoted to complex goes through Cast, whose backward casts the complex
# gradient back to real with NumPy's ComplexWarning (the values are right: the real part).
_CAST_WARNING = pytest.mark.filterwarnings("ignore:Casting complex values to real")

# (dtype, rtol, atol) of the torch comparisons
DTYPES = [(np.complex128, 1e-10, 1e-10), (np.complex64, 2e-4, 2e-4)]
DTYPE_IDS = ["complex128", "complex64"]


@pytest.fixture(scope="module")
def torch():
    t = torch_or_skip()
    t.set_num_threads(1)
    return t


def _cplx(rng, shape, dtype=np.complex128, scale=1.0, min_imag=0.0):
    """Random complex values; |imag| >= min_imag keeps them off the real-axis branch cuts."""
    re = rng.standard_normal(shape) * scale
    im = rng.uniform(min_imag, 1.0, shape) * rng.choice([-1.0, 1.0], shape) * scale
    return (re + 1j * im).astype(dtype)


def _np(t):
    t = t.detach()
    return t.resolve_conj().numpy() if hasattr(t, "resolve_conj") else t.numpy()


def _close(a, b, rtol, atol, what):
    np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol, err_msg=what)


def _losses(out, w):
    """Two real losses of an output: a weighted real part and the squared magnitude."""
    if out.is_complex():
        return [(out * w).real.sum(), out.abs().pow(2).sum()]
    return [(out * w.real).sum(), out.pow(2).sum()]


def _check_vs_torch(torch, fn, arrays, dtype, rtol, atol, grad=None, seed=0):
    """fn(lib, *tensors) on framework and torch: output and the gradients of both losses."""
    grad = range(len(arrays)) if grad is None else grad
    rng = np.random.default_rng(seed)
    for k in range(2):
        fw = [F.tensor(a, requires_grad=i in grad) for i, a in enumerate(arrays)]
        th = [torch.tensor(a, requires_grad=i in grad) for i, a in enumerate(arrays)]
        out_f, out_t = fn(F, *fw), fn(torch, *th)
        assert out_f.dtype.name == str(out_t.dtype).split(".")[-1]
        assert tuple(out_f.shape) == tuple(out_t.shape)
        _close(out_f, out_t, rtol, atol, "forward")
        w = _cplx(rng, tuple(out_t.shape), dtype if out_t.is_complex() else np.complex128)
        lf = _losses(out_f, F.tensor(w.astype(dtype) if out_t.is_complex() else w))[k]
        lt = _losses(out_t, torch.tensor(w.astype(dtype) if out_t.is_complex() else w))[k]
        gf = F.autograd.grad(lf, [fw[i] for i in grad])
        gt = torch.autograd.grad(lt, [th[i] for i in grad])
        for i, a, b in zip(grad, gf, gt):
            assert a.dtype.name == str(b.dtype).split(".")[-1], f"grad {i} dtype"
            _close(a, b, rtol, atol, f"loss {k}, grad of input {i}")


def _fd_check(fn, arrays, eps=1e-6, rtol=1e-6, atol=1e-8, seed=0):
    """z.grad == dL/dx + i dL/dy by central differences, for complex128 inputs (atol scales
    with the largest gradient)."""
    rng = np.random.default_rng(seed)
    out0 = fn(F, *[F.tensor(a) for a in arrays])
    w = F.tensor(_cplx(rng, tuple(out0.shape)))
    for k in range(2):
        def loss(*arrs):
            return _losses(fn(F, *[F.tensor(a) for a in arrs]), w)[k].item()
        ts = [F.tensor(a, requires_grad=True) for a in arrays]
        grads = F.autograd.grad(_losses(fn(F, *ts), w)[k], ts)
        for i, a in enumerate(arrays):
            num = np.zeros_like(a)
            for idx in np.ndindex(a.shape):
                for unit in ((1.0, 1j) if a.dtype.kind == "c" else (1.0,)):
                    p, m = a.copy(), a.copy()
                    p[idx] += eps * unit
                    m[idx] -= eps * unit
                    num[idx] += (loss(*arrays[:i], p, *arrays[i + 1:]) -
                                 loss(*arrays[:i], m, *arrays[i + 1:])) / (2 * eps) * unit
            np.testing.assert_allclose(grads[i].numpy(), num, rtol=rtol,
                                       atol=atol * max(1.0, np.abs(num).max()),
                                       err_msg=f"loss {k}, input {i}")


# ------------------------------------------------------------------------------ convention
def test_convention(torch):
    """PyTorch's z.grad is dL/dx + i dL/dy; the framework's agrees."""
    z0 = np.array([0.7 - 1.3j, -0.4 + 0.2j])
    for lib in (torch, F):
        z = lib.tensor(z0, requires_grad=True)
        (lib.exp(z) * lib.tensor(np.array([0.3 + 0.5j, -1.0 + 0.0j]))).real.sum().backward()
        x, y = z0.real, z0.imag
        # L = Re(w e^z) = e^x (w_r cos y - w_i sin y)
        wr, wi = np.array([0.3, -1.0]), np.array([0.5, 0.0])
        dldx = np.exp(x) * (wr * np.cos(y) - wi * np.sin(y))
        dldy = np.exp(x) * (-wr * np.sin(y) - wi * np.cos(y))
        np.testing.assert_allclose(_np(z.grad), dldx + 1j * dldy, rtol=1e-12)


# ------------------------------------------------------------------------------ unary ops
# name, fn, value scale, min |imag|
UNARY = [
    ("neg", lambda m, z: -z, 1.0, 0.0),
    ("abs", lambda m, z: m.abs(z), 1.0, 0.0),
    ("exp", lambda m, z: m.exp(z), 1.0, 0.0),
    ("exp2", lambda m, z: m.exp2(z), 1.0, 0.0),
    ("log", lambda m, z: m.log(z), 1.0, 0.1),
    ("log2", lambda m, z: m.log2(z), 1.0, 0.1),
    ("log10", lambda m, z: m.log10(z), 1.0, 0.1),
    ("log1p", lambda m, z: m.log1p(z), 1.0, 0.1),
    ("expm1", lambda m, z: m.expm1(z), 1.0, 0.0),
    ("sqrt", lambda m, z: m.sqrt(z), 1.0, 0.1),
    ("rsqrt", lambda m, z: m.rsqrt(z), 1.0, 0.1),
    ("reciprocal", lambda m, z: m.reciprocal(z), 1.0, 0.1),
    ("square", lambda m, z: m.square(z), 1.0, 0.0),
    ("sin", lambda m, z: m.sin(z), 1.0, 0.0),
    ("cos", lambda m, z: m.cos(z), 1.0, 0.0),
    ("tan", lambda m, z: m.tan(z), 0.6, 0.0),
    ("asin", lambda m, z: m.asin(z), 1.0, 0.1),
    ("acos", lambda m, z: m.acos(z), 1.0, 0.1),
    ("atan", lambda m, z: m.atan(z), 0.6, 0.1),
    ("sinh", lambda m, z: m.sinh(z), 1.0, 0.0),
    ("cosh", lambda m, z: m.cosh(z), 1.0, 0.0),
    ("tanh", lambda m, z: m.tanh(z), 0.6, 0.0),
    ("sigmoid", lambda m, z: m.sigmoid(z), 0.6, 0.0),
    ("sgn", lambda m, z: m.sgn(z), 1.0, 0.0),
    ("pow-2", lambda m, z: z ** 2, 1.0, 0.0),
    ("pow-3", lambda m, z: m.pow(z, 3), 1.0, 0.0),
    ("pow-0.5", lambda m, z: z ** 0.5, 1.0, 0.1),
    ("pow--1.5", lambda m, z: z ** -1.5, 1.0, 0.1),
    ("rpow-2", lambda m, z: 2.0 ** z, 1.0, 0.0),
    ("rpow--2", lambda m, z: (-2.0) ** z, 1.0, 0.0),
    ("angle", lambda m, z: m.angle(z), 1.0, 0.1),
    ("angle-method", lambda m, z: z.angle(), 1.0, 0.1),
    ("real", lambda m, z: m.real(z), 1.0, 0.0),
    ("real-property", lambda m, z: z.real * 1.0, 1.0, 0.0),
    ("imag", lambda m, z: m.imag(z), 1.0, 0.0),
    ("imag-property", lambda m, z: z.imag * 1.0, 1.0, 0.0),
    ("conj", lambda m, z: m.conj(z) * 1.0, 1.0, 0.0),
    ("conj-method", lambda m, z: z.conj() * 1.0, 1.0, 0.0),
    ("conj_physical", lambda m, z: m.conj_physical(z), 1.0, 0.0),
    ("resolve_conj", lambda m, z: m.resolve_conj(z) * 1.0, 1.0, 0.0),
    ("view_as_real", lambda m, z: m.view_as_real(z), 1.0, 0.0),
    ("view_as_real-strided", lambda m, z: m.view_as_real(z.t()), 1.0, 0.0),
    ("view_as_complex", lambda m, z: m.view_as_complex(m.view_as_real(z) * 2.0), 1.0, 0.0),
    ("sum", lambda m, z: z.sum(0), 1.0, 0.0),
    ("mean", lambda m, z: z.mean(), 1.0, 0.0),
    ("H", lambda m, z: z.H, 1.0, 0.0),
    ("mH", lambda m, z: (z * 1.0).mH, 1.0, 0.0),
    ("chain", lambda m, z: m.log(m.exp(z) * z + 2.0) / (z * z + 3.0), 0.5, 0.0),
]


@pytest.mark.parametrize("dtype,rtol,atol", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name,fn,scale,min_imag", UNARY, ids=[u[0] for u in UNARY])
def test_unary_vs_torch(torch, name, fn, scale, min_imag, dtype, rtol, atol):
    z = _cplx(np.random.default_rng(1), (3, 4), dtype, scale, min_imag)
    _check_vs_torch(torch, fn, [z], dtype, rtol, atol)


@pytest.mark.parametrize("name,fn,scale,min_imag", UNARY + [
    ("erf", lambda m, z: m.erf(z), 1.0, 0.0),  # no complex erf in torch
    ("erfc", lambda m, z: m.erfc(z), 1.0, 0.0)], ids=[u[0] for u in UNARY] + ["erf", "erfc"])
def test_unary_finite_differences(name, fn, scale, min_imag):
    z = _cplx(np.random.default_rng(2), (2, 3), np.complex128, scale, min_imag)
    _fd_check(fn, [z])


def test_unary_at_zero(torch):
    """abs, sgn and angle have a zero gradient at z = 0, as in PyTorch."""
    z = np.array([0j, 1 - 1j, 0j])
    for fn in (lambda m, z: m.abs(z), lambda m, z: m.sgn(z), lambda m, z: m.angle(z)):
        _check_vs_torch(torch, fn, [z], np.complex128, 1e-12, 1e-12)


# ------------------------------------------------------------------------------ binary ops
# name, fn, shapes
BINARY = [
    ("mul", lambda m, a, b: a * b, [(2, 3), (2, 3)]),
    ("mul-broadcast", lambda m, a, b: a * b, [(2, 1, 3), (4, 1)]),
    ("mul-same", lambda m, a, b: a * a * b, [(3,), (3,)]),
    ("div", lambda m, a, b: a / b, [(2, 3), (2, 3)]),
    ("div-broadcast", lambda m, a, b: a / b, [(3,), (2, 3)]),
    ("pow", lambda m, a, b: a ** b, [(2, 3), (2, 3)]),
    ("pow-broadcast", lambda m, a, b: m.pow(a, b), [(2, 3), (3,)]),
    ("matmul", lambda m, a, b: a @ b, [(2, 3), (3, 4)]),
    ("matmul-batched", lambda m, a, b: m.matmul(a, b), [(2, 1, 2, 3), (3, 3, 2)]),
    ("mv", lambda m, a, b: m.mv(a, b), [(2, 3), (3,)]),
    ("vecmat", lambda m, a, b: a @ b, [(3,), (3, 2)]),
    ("dot", lambda m, a, b: m.dot(a, b), [(4,), (4,)]),
    ("bmm", lambda m, a, b: m.bmm(a, b), [(2, 2, 3), (2, 3, 2)]),
    ("complex-mix", lambda m, a, b: m.sin(a @ b.mT) * a.sum() / (b.abs() + 1.0).sum(),
     [(2, 3), (2, 3)]),
]


@_CAST_WARNING
@pytest.mark.parametrize("dtype,rtol,atol", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name,fn,shapes", BINARY, ids=[b[0] for b in BINARY])
def test_binary_vs_torch(torch, name, fn, shapes, dtype, rtol, atol):
    rng = np.random.default_rng(3)
    arrays = [_cplx(rng, s, dtype, 1.0, 0.2) for s in shapes]
    _check_vs_torch(torch, fn, arrays, dtype, rtol, atol)


@_CAST_WARNING
@pytest.mark.parametrize("name,fn,shapes", BINARY, ids=[b[0] for b in BINARY])
def test_binary_finite_differences(name, fn, shapes):
    rng = np.random.default_rng(4)
    _fd_check(fn, [_cplx(rng, s, np.complex128, 1.0, 0.2) for s in shapes])


def test_pow_at_zero(torch):
    """0 ** b: the exponent's gradient is masked to 0 where log(0) would give nan."""
    a = np.array([0j, 1 + 1j, 0j])
    b = np.array([2 + 0j, 0.5 - 1j, 1.5 + 0j])
    _check_vs_torch(torch, lambda m, a, b: a ** b, [a, b], np.complex128, 1e-12, 1e-12)


@_CAST_WARNING
@pytest.mark.parametrize("dtype,rtol,atol", DTYPES, ids=DTYPE_IDS)
def test_real_times_complex(torch, dtype, rtol, atol):
    """A real tensor mixed with a complex one gets a real gradient (the real part)."""
    rng = np.random.default_rng(5)
    real_dt = np.float64 if dtype == np.complex128 else np.float32
    w = rng.standard_normal((2, 3)).astype(real_dt)
    z = _cplx(rng, (3, 2), dtype)
    _check_vs_torch(torch, lambda m, w, z: m.exp(w.unsqueeze(-1) * z) * w.sum(), [w, z], dtype,
                    rtol, atol)


# ------------------------------------------------------------------------------ building ops
@pytest.mark.parametrize("dtype,rtol,atol", DTYPES, ids=DTYPE_IDS)
def test_complex_and_polar_vs_torch(torch, dtype, rtol, atol):
    rng = np.random.default_rng(6)
    real_dt = np.float64 if dtype == np.complex128 else np.float32
    a = rng.standard_normal((2, 3)).astype(real_dt)
    b = rng.standard_normal((2, 3)).astype(real_dt)
    r = rng.uniform(0.5, 2.0, (2, 3)).astype(real_dt)
    _check_vs_torch(torch, lambda m, a, b: m.complex(a, b), [a, b], dtype, rtol, atol)
    _check_vs_torch(torch, lambda m, a, b: m.complex(a, b[0]), [a, b], dtype, rtol, atol)
    _check_vs_torch(torch, lambda m, r, t: m.polar(r, t), [r, a], dtype, rtol, atol)
    _check_vs_torch(torch, lambda m, x: m.view_as_complex(x), [a.reshape(3, 2)], dtype, rtol,
                    atol)
    _check_vs_torch(torch, lambda m, x: m.view_as_complex(x), [a[0, :2]], dtype, rtol, atol)


def test_complex_and_polar_finite_differences():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    _fd_check(lambda m, a, b: m.complex(a, b) ** 2, [a, b])
    _fd_check(lambda m, r, t: m.exp(m.polar(r, t)), [np.abs(a) + 0.5, b])
    _fd_check(lambda m, x: m.view_as_complex(x) * 1j, [a.reshape(3, 2)])


def test_angle_of_real_tensor(torch):
    x = np.array([2.0, -1.5, 0.0, -0.0, np.inf, -np.inf, np.nan])
    out_f, out_t = F.angle(F.tensor(x)), torch.angle(torch.tensor(x))
    np.testing.assert_array_equal(_np(out_f), _np(out_t))
    t = F.tensor([1.0, -2.0], requires_grad=True)
    F.angle(t).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [0.0, 0.0])
    assert F.angle(F.tensor([1, -1])).dtype is F.float32


# ------------------------------------------------------------------------------ second order
@_CAST_WARNING
@pytest.mark.parametrize("name,fn", [
    ("exp", lambda m, z: m.exp(z)), ("mul", lambda m, z: z * z * 1j),
    ("abs", lambda m, z: m.abs(z) * z), ("sqrt", lambda m, z: m.sqrt(z)),
    ("matmul", lambda m, z: z @ z.mT), ("pow", lambda m, z: z ** (z * 0.5)),
    ("angle", lambda m, z: m.angle(z) * z), ("sgn", lambda m, z: m.sgn(z) * z)])
def test_double_backward_vs_torch(torch, name, fn):
    """Backward written with complex-correct ops is differentiable again (create_graph)."""
    rng = np.random.default_rng(8)
    z0 = _cplx(rng, (3, 3), min_imag=0.2)
    w0 = _cplx(rng, (3, 3))
    res = []
    for lib in (F, torch):
        z = lib.tensor(z0, requires_grad=True)
        (gz,) = lib.autograd.grad((fn(lib, z) * lib.tensor(w0)).real.sum(), [z],
                                  create_graph=True)
        (ggz,) = lib.autograd.grad((gz * lib.tensor(w0)).abs().pow(2).sum(), [z])
        res.append((gz, ggz))
    for a, b in zip(*res):
        _close(a, b, 1e-10, 1e-10, name)


# ------------------------------------------------------------------------------ views, errors
def test_real_imag_are_views():
    z = F.tensor(np.array([1 + 2j, 3 - 4j]))
    r, i = z.real, z.imag
    r.mul_(10.0)
    i.add_(1.0)
    np.testing.assert_array_equal(z.numpy(), [10 + 3j, 30 - 3j])
    assert z._version == r._version == 2
    v = F.view_as_real(z)
    v[0, 1] = 7.0
    assert z[0].item() == 10 + 7j
    x = F.tensor([1.0, 2.0])
    assert x.real is x and F.real(x) is x and x.conj() is x and x.conj_physical() is x


def test_conj_is_physical():
    z = F.tensor([1 + 1j])
    assert not z.is_conj() and not F.is_conj(z.conj()) and z.resolve_conj() is z
    c = z.conj()
    c.mul_(2.0)
    assert z.item() == 1 + 1j


def test_errors():
    with pytest.raises(RuntimeError, match="imag is not implemented for tensors with "
                                           "non-complex dtypes"):
        F.tensor([1.0]).imag
    with pytest.raises(RuntimeError, match="view_as_real is only supported for complex"):
        F.view_as_real(F.tensor([1.0]))
    with pytest.raises(RuntimeError, match="last dimension of size 2, got shape \\[2, 3\\]"):
        F.view_as_complex(F.zeros(2, 3))
    with pytest.raises(RuntimeError, match="only supported for float and double tensors"):
        F.view_as_complex(F.zeros(3, 2, dtype=F.int64))
    with pytest.raises(RuntimeError, match="same dtype, but got float32 and float64"):
        F.complex(F.zeros(2), F.zeros(2, dtype=F.float64))
    with pytest.raises(RuntimeError, match="Float or Double tensors but got int64 and int64"):
        F.polar(F.zeros(2, dtype=F.int64), F.zeros(2, dtype=F.int64))
    with pytest.raises(RuntimeError, match=r"shapes \[2\] and \[3\] cannot be broadcast"):
        F.complex(F.zeros(2), F.zeros(3))


def test_unary_without_complex_formula_raises(monkeypatch):
    """A unary op whose backward has no complex formula refuses rather than guess."""
    monkeypatch.setattr(F.ops.elementwise.exp.op, "_complex_df", None)
    z = F.tensor([1 + 1j], requires_grad=True)
    y = F.exp(z).abs().sum()
    with pytest.raises(RuntimeError, match="exp: backward is not implemented for complex inputs "
                                           r"\(got complex64\)"):
        y.backward()


@pytest.mark.parametrize("name", ["var", "std", "norm", "norm_dim", "vdot"])
def test_complex_reductions_match_torch(name):
    """var/std/norm of complex inputs are real (|x|-based) and vdot conjugates its first
    argument, as in PyTorch; forward and gradients agree."""
    torch = torch_or_skip()
    rng = np.random.default_rng(11)
    z = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    fns = {"var": lambda m, t: t.var(1), "std": lambda m, t: t.std(),
           "norm": lambda m, t: t.norm(), "norm_dim": lambda m, t: t.norm(dim=0),
           "vdot": lambda m, t: m.vdot(t[0], t[1]).abs()}
    lz, tz = F.tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    ly, ty = fns[name](F, lz), fns[name](torch, tz)
    assert not ly.is_complex()
    ly.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(ly.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(lz.grad.numpy(), tz.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["linear", "conv1d", "einsum", "prod", "cumprod",
                                  "layer_norm"])
def test_real_only_backwards_refuse_complex(name):
    z = F.tensor(np.ones((2, 3, 4)) * (1 + 1j), requires_grad=True)
    fns = {"linear": lambda t: F.nn.functional.linear(t, F.tensor(
               np.ones((2, 4)) + 0j)),
           "conv1d": lambda t: F.nn.functional.conv1d(t, F.tensor(
               np.ones((1, 3, 2)) + 0j)),
           "einsum": lambda t: F.einsum("abc,abc->a", t, t),
           "prod": lambda t: t.prod(1), "cumprod": lambda t: t.cumprod(1),
           "layer_norm": lambda t: F.nn.functional.layer_norm(t, (4,))}
    with pytest.raises(RuntimeError, match="backward is not implemented for complex"):
        fns[name](z).abs().sum().backward()
