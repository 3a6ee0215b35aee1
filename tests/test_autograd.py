"""The autograd engine: higher-order gradients, graph lifetime, in-place safety, grad modes,
anomaly detection, `autograd.grad`, hooks, custom Functions, gradient accumulation and
aliasing, and seeded random number generation."""
from __future__ import annotations

import os

import numpy as np
import pytest

import framework
from conftest import torch_or_skip
from framework.autograd import Function, gradcheck, gradgradcheck
from framework.autograd.gradcheck import GradcheckError


def _t(arr, device, requires_grad=False, dtype=None):
    t = framework.tensor(np.asarray(arr), dtype=dtype or framework.float64, device=device)
    return t.requires_grad_(requires_grad)


def _np(t):
    return t.detach().cpu().numpy()


# ---------------------------------------------------------------------------------- gradcheck
def test_gradcheck_catches_a_wrong_gradient(device):
    class BadSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3.0 * g * x  # should be 2 * g * x

    x = _t(np.random.rand(3), device, True)
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        gradcheck(BadSquare.apply, (x,))
    assert gradcheck(BadSquare.apply, (x,), raise_exception=False) is False


def test_gradgradcheck_catches_a_wrong_second_derivative(device):
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3.0 * g * x.detach() ** 2  # first derivative right, second lost

    x = _t(np.random.rand(3) + 0.5, device, True)
    assert gradcheck(Cube.apply, (x,))
    with pytest.raises(GradcheckError):
        gradgradcheck(Cube.apply, (x,))


def test_gradcheck_on_non_contiguous_and_0d_inputs(device):
    base = _t(np.random.rand(4, 3), device)
    x = base.t().detach().requires_grad_()
    assert not x.is_contiguous()
    s = framework.tensor(1.5, dtype=framework.float64, device=device, requires_grad=True)
    assert gradcheck(lambda a, b: (a * b).exp().sum(1), (x, s))


# ---------------------------------------------------------------------------------- double backward
def test_hessian_vector_product_of_tanh_mlp_matches_torch(device):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((5, 4)) * 0.5, rng.standard_normal(5) * 0.1
    w2, b2 = rng.standard_normal((3, 5)) * 0.5, rng.standard_normal(3) * 0.1
    xb = rng.standard_normal((6, 4))
    yb = rng.standard_normal((6, 3))
    vs = [rng.standard_normal(a.shape) for a in (w1, b1, w2, b2)]

    def loss(m, params, x, y):
        p1, q1, p2, q2 = params
        h = m.tanh(x @ p1.T + q1)
        out = h @ p2.T + q2
        return ((out - y) ** 2).mean()

    def hvp(m, make):
        params = [make(a, True) for a in (w1, b1, w2, b2)]
        val = loss(m, params, make(xb, False), make(yb, False))
        grads = m.autograd.grad(val, params, create_graph=True)
        dot = sum((g * make(v, False)).sum() for g, v in zip(grads, vs))
        return val, grads, m.autograd.grad(dot, params)

    fw = hvp(framework, lambda a, rg: _t(a, device, rg))
    th = hvp(torch, lambda a, rg: torch.tensor(a, dtype=torch.float64, requires_grad=rg))
    np.testing.assert_allclose(_np(fw[0]), th[0].detach().numpy(), rtol=1e-10)
    for f, t in zip(fw[1], th[1]):
        np.testing.assert_allclose(_np(f), t.detach().numpy(), rtol=1e-9, atol=1e-12)
    for f, t in zip(fw[2], th[2]):
        np.testing.assert_allclose(_np(f), t.numpy(), rtol=1e-9, atol=1e-12)


def test_functional_hessian_and_jacobian_match_torch(device):
    torch = torch_or_skip()
    x0 = np.array([0.3, -0.7, 1.2])

    def f(m):
        return lambda x: (x.sin() * x.exp()).sum() + (x[0] * x[1] * x[2]) ** 2

    def g(m):
        return lambda x: m.stack([x[0] * x[1], x.exp().sum(), x[2] ** 3])

    fh = framework.autograd.functional.hessian(f(framework), _t(x0, device))
    th = torch.autograd.functional.hessian(f(torch), torch.tensor(x0))
    np.testing.assert_allclose(_np(fh), th.numpy(), rtol=1e-10, atol=1e-12)
    fj = framework.autograd.functional.jacobian(g(framework), _t(x0, device))
    tj = torch.autograd.functional.jacobian(g(torch), torch.tensor(x0))
    np.testing.assert_allclose(_np(fj), tj.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,fn,shapes", [
    ("softmax-log", lambda x: x.softmax(-1).log().sum(0), [(3, 4)]),
    ("matmul-chain", lambda a, b: (a @ b).tanh() @ b.T, [(2, 3), (3, 3)]),
    ("div-pow", lambda a, b: (a / b) ** 3 + a.sqrt(), [(3,), (3,)]),
    ("norm-normalize", lambda a: a / a.norm(dim=1, keepdim=True), [(3, 4)]),
    ("sigmoid-bce", lambda a, y: -(y * a.sigmoid().log() + (1 - y) * (1 - a.sigmoid()).log()),
     [(5,), (5,)]),
    ("max-gather", lambda a: a.max(1).values * a.gather(1, framework.tensor([[0], [1]],
                                                                        device=a.device)).sum(),
     [(2, 3)]),
])
def test_gradgradcheck_composites(device, name, fn, shapes):
    xs = [_t(np.random.rand(*s) + 0.5, device, True) for s in shapes]
    assert gradgradcheck(fn, xs)


def test_third_derivative(device):
    x = _t([0.5, -1.5], device, True)
    (g1,) = framework.autograd.grad((x ** 4).sum(), x, create_graph=True)
    (g2,) = framework.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = framework.autograd.grad(g2.sum(), x)
    np.testing.assert_allclose(_np(g1), 4 * _np(x) ** 3)
    np.testing.assert_allclose(_np(g2), 12 * _np(x) ** 2)
    np.testing.assert_allclose(_np(g3), 24 * _np(x))


# ---------------------------------------------------------------------------------- graph lifetime
def test_backward_twice_without_retain_graph_raises(device):
    x = _t([1.0, 2.0], device, True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward(device):
    x = _t([1.0, 2.0], device, True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = _np(x.grad).copy()
    y.backward()
    np.testing.assert_allclose(_np(x.grad), 2 * first)
    np.testing.assert_allclose(first, np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0])))


def test_gradient_accumulates_across_backwards(device):
    x = _t([1.0, -2.0, 3.0], device, True)
    (x * x).sum().backward()
    (3 * x).sum().backward()
    np.testing.assert_allclose(_np(x.grad), 2 * np.array([1.0, -2.0, 3.0]) + 3)
    x.grad = None
    x.sum().backward()
    np.testing.assert_allclose(_np(x.grad), np.ones(3))


def test_leaves_never_share_gradient_memory(device):
    a, b = _t([1.0, 2.0], device, True), _t([3.0, 4.0], device, True)
    (a + b).sum().backward()  # both receive the very same upstream gradient
    a.grad.add_(10.0)
    np.testing.assert_allclose(_np(b.grad), [1.0, 1.0])
    np.testing.assert_allclose(_np(a.grad), [11.0, 11.0])
    c = _t(np.ones((1, 3)), device, True)
    c.expand(4, 3).sum().backward()  # a broadcast gradient: must be writable, owned memory
    c.grad.mul_(2.0)
    np.testing.assert_allclose(_np(c.grad), np.full((1, 3), 8.0))
    d = _t([1.0, 2.0], device, True)
    y = d * 1.0
    y.retain_grad()
    y.sum().backward()
    d.grad.add_(1.0)  # the retained non-leaf gradient must not change with it
    np.testing.assert_allclose(_np(y.grad), [1.0, 1.0])


def test_backward_with_multiple_roots_and_inputs(device):
    x = _t([1.0, 2.0], device, True)
    w = _t([3.0, 4.0], device, True)
    y1, y2 = x * w, (x * x).sum()
    framework.autograd.backward([y1, y2], [_t([1.0, 1.0], device), None])
    np.testing.assert_allclose(_np(x.grad), [3.0 + 2.0, 4.0 + 4.0])
    np.testing.assert_allclose(_np(w.grad), [1.0, 2.0])
    x.grad = w.grad = None
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    np.testing.assert_allclose(_np(w.grad), [1.0, 2.0])


def test_non_scalar_backward_needs_a_gradient(device):
    x = _t([1.0, 2.0], device, True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        _t([1.0], device).sum().backward()


# ---------------------------------------------------------------------------------- in place
def test_modifying_a_saved_tensor_in_place_raises_on_backward(device):
    x = _t([1.0, 2.0, 3.0], device, True)
    a = x * 1.0
    b = a * a  # saves a
    a.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


@pytest.mark.parametrize("op", ["exp", "sigmoid", "tanh", "softmax", "log_softmax", "prod",
                                "cumprod", "rpow"])
def test_modifying_a_saved_output_in_place_raises_on_backward(device, op):
    """Ops whose backward reads their own output refuse an output changed in place since
    (PyTorch saves those results and raises the same way); a view's change counts too."""
    x = _t([[0.5, 1.0], [1.5, 2.0]], device, True)
    fns = {"exp": lambda t: t.exp(), "sigmoid": lambda t: t.sigmoid(),
           "tanh": lambda t: t.tanh(), "softmax": lambda t: t.softmax(-1),
           "log_softmax": lambda t: t.log_softmax(-1), "prod": lambda t: t.prod(1),
           "cumprod": lambda t: t.cumprod(1), "rpow": lambda t: 2.0 ** t}
    y = fns[op](x)
    if op in ("exp", "softmax"):  # through a view, outside autograd
        with framework.no_grad():
            y.view(-1)[0] = 5.0
    else:
        y.mul_(3.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    y2 = fns[op](x)
    y2.sum().backward()  # unmodified: fine
    assert x.grad is not None


def test_inplace_through_a_view_bumps_the_shared_version(device):
    x = _t([[1.0, 2.0], [3.0, 4.0]], device, True)
    a = x * 1.0
    b = a.exp()  # saves a
    with framework.no_grad():
        a.view(-1)[0] = 5.0
    assert a._version == a.view(-1)._version
    with pytest.raises(RuntimeError, match="inplace"):
        b.sum().backward()


def test_inplace_on_an_unsaved_tensor_is_fine(device):
    x = _t([1.0, 2.0], device, True)
    a = x * 2.0
    b = a + 1.0  # add saves nothing
    a.mul_(3.0)
    b.sum().backward()
    np.testing.assert_allclose(_np(x.grad), [2.0, 2.0])
    x.grad = None
    c, d = x * 2.0, x * 3.0
    c.mul_(d)  # an in-place op whose own backward needs the old value of c
    c.sum().backward()
    np.testing.assert_allclose(_np(x.grad), 12 * _np(x))
    x.grad = None
    e = x * 2.0
    e.exp_()
    e.sum().backward()
    np.testing.assert_allclose(_np(x.grad), 2 * np.exp(2 * _np(x)))


def test_inplace_on_a_leaf_that_requires_grad_raises(device):
    x = _t([1.0, 2.0], device, True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1.0)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.exp_()
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x[0] = 3.0
    with framework.no_grad():  # allowed without a graph (optimizer updates)
        x.add_(1.0)
        x[1] = 7.0
    np.testing.assert_allclose(_np(x), [2.0, 7.0])
    assert x.requires_grad and x.is_leaf


# ---------------------------------------------------------------------------------- grad modes
def test_no_grad_and_enable_grad(device):
    x = _t([1.0], device, True)
    with framework.no_grad():
        assert not framework.is_grad_enabled()
        y = x * 2
        with framework.enable_grad():
            z = x * 2
    assert framework.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None

    @framework.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert framework.is_grad_enabled()


def test_set_grad_enabled_as_function_context_and_decorator(device):
    x = _t([1.0], device, True)
    framework.set_grad_enabled(False)
    try:
        assert not framework.is_grad_enabled()
        assert not (x * 2).requires_grad
    finally:
        framework.set_grad_enabled(True)
    assert framework.is_grad_enabled()
    with framework.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert framework.is_grad_enabled()
    with framework.no_grad():
        with framework.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not framework.is_grad_enabled()

    @framework.set_grad_enabled(False)
    def f(t):
        return t * 2

    assert framework.is_grad_enabled()  # decorating does not change the mode
    assert not f(x).requires_grad
    assert framework.is_grad_enabled()


def test_grad_mode_restored_after_an_exception(device):
    with pytest.raises(ValueError):
        with framework.no_grad():
            raise ValueError
    assert framework.is_grad_enabled()


def test_inference_mode(device):
    x = _t([1.0], device, True)
    with framework.inference_mode():
        assert framework.is_inference_mode_enabled()
        assert not (x * 2).requires_grad
    assert not framework.is_inference_mode_enabled()
    assert (x * 2).requires_grad
    with framework.inference_mode(False):
        assert (x * 2).requires_grad

    @framework.inference_mode()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    assert framework.is_grad_enabled()


# ---------------------------------------------------------------------------------- anomaly
def test_detect_anomaly_names_the_op_and_the_forward_call(device):
    x = _t([-1.0, 4.0], device, True)
    with np.errstate(invalid="ignore"):  # NumPy would warn about sqrt(-1) in the forward
        with framework.autograd.detect_anomaly():
            y = x.sqrt()
            with pytest.raises(RuntimeError) as info:
                (y * 2).sum().backward()
    msg = str(info.value)
    assert "SqrtBackward0" in msg
    assert "nan" in msg
    assert os.path.basename(__file__) in msg  # the forward traceback
    assert "x.sqrt()" in msg
    assert not framework.autograd.is_anomaly_enabled()


def test_without_anomaly_mode_nan_gradients_pass_silently(device):
    x = _t([-1.0, 4.0], device, True)
    with np.errstate(invalid="ignore"):
        x.sqrt().sum().backward()
    assert np.isnan(_np(x.grad)[0]) and _np(x.grad)[1] == pytest.approx(0.25)


# ---------------------------------------------------------------------------------- autograd.grad
def test_grad_allow_unused(device):
    x, y = _t([1.0, 2.0], device, True), _t([3.0], device, True)
    out = (x * 2).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        framework.autograd.grad(out, [x, y], retain_graph=True)
    gx, gy = framework.autograd.grad(out, [x, y], allow_unused=True, retain_graph=True)
    assert gy is None
    np.testing.assert_allclose(_np(gx), [2.0, 2.0])
    gx, gy = framework.autograd.grad(out, [x, y], materialize_grads=True)
    np.testing.assert_allclose(_np(gy), [0.0])
    assert x.grad is None and y.grad is None  # grad() never touches .grad


def test_grad_with_respect_to_non_leaf(device):
    x = _t([1.0, 2.0], device, True)
    h = x * 3.0
    out = (h ** 2).sum()
    gh, gx = framework.autograd.grad(out, [h, x])
    np.testing.assert_allclose(_np(gh), 2 * _np(h))
    np.testing.assert_allclose(_np(gx), 18 * _np(x))


def test_grad_create_graph(device):
    x = _t([1.0, 2.0], device, True)
    (g,) = framework.autograd.grad((x ** 3).sum(), x, create_graph=True)
    assert g.requires_grad
    (gg,) = framework.autograd.grad(g.sum(), x)
    assert not gg.requires_grad
    np.testing.assert_allclose(_np(gg), 6 * _np(x))
    (g2,) = framework.autograd.grad((x ** 3).sum(), x)
    assert not g2.requires_grad and g2.grad_fn is None


def test_grad_outputs_shape_is_checked(device):
    x = _t([1.0, 2.0], device, True)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        framework.autograd.grad(x * 2, x, grad_outputs=_t([1.0, 1.0, 1.0], device))


# ---------------------------------------------------------------------------------- hooks
def test_hooks_on_leaf_and_non_leaf(device):
    x = _t([1.0, 2.0], device, True)
    seen = []
    h1 = x.register_hook(lambda g: g * 10)
    y = x * 2
    y.register_hook(lambda g: seen.append(_np(g).copy()))
    y.register_hook(lambda g: g + 1)  # changes what flows on to x
    (y * 3).sum().backward()
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    np.testing.assert_allclose(_np(x.grad), (3.0 + 1.0) * 2 * 10 * np.ones(2))
    h1.remove()
    x.grad = None
    (x * 1.0).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [1.0, 1.0])
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        _t([1.0], device).register_hook(lambda g: g)


def test_removed_non_leaf_hook_is_not_called(device):
    x = _t([1.0, 2.0], device, True)
    y = x * 2
    calls = []
    h = y.register_hook(lambda g: calls.append(1))
    h.remove()
    y.sum().backward()
    assert calls == []


def test_retain_grad(device):
    x = _t([1.0, 2.0], device, True)
    y = x * 2
    z = y * y
    y.retain_grad()
    assert y.retains_grad and not z.retains_grad
    z.sum().backward()
    np.testing.assert_allclose(_np(y.grad), 2 * _np(y))
    assert z.grad is None
    x.retain_grad()  # a no-op on leaves
    assert x.grad is not None


# ---------------------------------------------------------------------------------- custom Function
class MulAdd(Function):
    """out = x * y + 2 * x; also returns argmax indices, marked non-differentiable."""

    @staticmethod
    def forward(ctx, x, y, scale):
        ctx.save_for_backward(x, y)
        ctx.scale = scale
        ctx.seen_needs = tuple(ctx.needs_input_grad)
        idx = (x * y).argmax()
        ctx.mark_non_differentiable(idx)
        return (x * y + 2 * x) * scale, idx

    @staticmethod
    def backward(ctx, g, g_idx):
        x, y = ctx.saved_tensors
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = g * (y + 2) * ctx.scale
        if ctx.needs_input_grad[1]:
            gy = g * x * ctx.scale
        return gx, gy, None


def test_custom_function_forward_backward_and_double_backward(device):
    x = _t([1.0, -2.0, 0.5], device, True)
    y = _t([0.3, 0.7, -1.1], device, True)
    out, idx = MulAdd.apply(x, y, 1.5)
    assert out.requires_grad and not idx.requires_grad
    assert out.grad_fn is not None and "MulAdd" in out.grad_fn.name()
    assert idx.item() == 0 and idx.dtype is framework.int64
    out.sum().backward()
    np.testing.assert_allclose(_np(x.grad), (_np(y) + 2) * 1.5)
    np.testing.assert_allclose(_np(y.grad), _np(x) * 1.5)
    assert gradcheck(lambda a, b: MulAdd.apply(a, b, 1.5)[0], (x, y))
    assert gradgradcheck(lambda a, b: MulAdd.apply(a, b, 1.5)[0], (x, y))


def test_custom_function_needs_input_grad(device):
    x = _t([1.0, 2.0], device, True)
    y = _t([3.0, 4.0], device, False)
    out, _ = MulAdd.apply(x, y, 1.0)
    assert out.grad_fn.seen_needs[:2] == (True, False)
    out.sum().backward()
    assert y.grad is None
    np.testing.assert_allclose(_np(x.grad), _np(y) + 2)


def test_custom_function_saved_tensor_version_check(device):
    x = _t([1.0, 2.0], device, True)
    y = x * 1.0
    out, _ = MulAdd.apply(x, y, 1.0)
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="inplace"):
        out.sum().backward()


def test_custom_function_without_grad_mode_records_nothing(device):
    x = _t([1.0, 2.0], device, True)
    with framework.no_grad():
        out, _ = MulAdd.apply(x, x, 1.0)
    assert not out.requires_grad and out.grad_fn is None


# ---------------------------------------------------------------------------------- random
def _draws(device, generator=None):
    kw = {"device": device, "generator": generator}
    p = framework.tensor([0.1, 0.6, 0.3], device=device)
    return [framework.rand(3, **kw), framework.randn(2, 2, **kw),
            framework.randint(0, 10, (5,), **kw), framework.randperm(6, **kw),
            framework.normal(0.5, 2.0, (3,), **kw),
            framework.bernoulli(framework.full((4,), 0.5, device=device), generator=generator),
            framework.multinomial(p, 2, generator=generator),
            framework.multinomial(p, 4, replacement=True, generator=generator)]


def test_manual_seed_reproduces_every_draw(device):
    framework.manual_seed(123)
    a = _draws(device)
    framework.manual_seed(123)
    b = _draws(device)
    for x, y in zip(a, b):
        assert x.dtype is y.dtype
        np.testing.assert_array_equal(_np(x), _np(y))
    framework.manual_seed(124)
    c = _draws(device)
    assert not np.array_equal(_np(a[1]), _np(c[1]))
    assert a[2].dtype is framework.int64 and a[3].dtype is framework.int64
    assert sorted(_np(a[3]).tolist()) == list(range(6))
    assert a[0].dtype is framework.float32 and 0 <= _np(a[0]).min() and _np(a[0]).max() < 1


def test_generator_objects_are_independent(device):
    g1 = framework.Generator(device).manual_seed(7)
    g2 = framework.Generator(device).manual_seed(7)
    framework.manual_seed(0)
    before = _np(framework.rand(4, device=device))
    a = _draws(device, g1)
    framework.manual_seed(0)
    framework.randn(10, device=device)  # consuming the global stream leaves g2 untouched
    b = _draws(device, g2)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(_np(x), _np(y))
    framework.manual_seed(0)
    _draws(device, framework.Generator(device).manual_seed(1))  # nor does using a generator
    np.testing.assert_array_equal(_np(framework.rand(4, device=device)), before)
    assert g1.initial_seed() == 7


def test_rng_state_roundtrip():
    framework.manual_seed(5)
    framework.rand(3)
    state = framework.get_rng_state()
    assert state.dtype is framework.uint8
    x = framework.randn(5)
    framework.set_rng_state(state)
    np.testing.assert_array_equal(_np(framework.randn(5)), _np(x))
    g = framework.Generator().manual_seed(3)
    st = g.get_state()
    y = framework.rand(4, generator=g)
    g.set_state(st)
    np.testing.assert_array_equal(_np(framework.rand(4, generator=g)), _np(y))


def test_in_place_random_fills_are_seeded(device):
    framework.manual_seed(9)
    a = framework.empty(3, 4, device=device).uniform_(-1, 1)
    b = framework.empty(5, device=device).normal_(2.0, 0.5)
    framework.manual_seed(9)
    np.testing.assert_array_equal(_np(framework.empty(3, 4, device=device).uniform_(-1, 1)),
                                  _np(a))
    np.testing.assert_array_equal(_np(framework.empty(5, device=device).normal_(2.0, 0.5)),
                                  _np(b))
    assert -1 <= _np(a).min() and _np(a).max() < 1


def test_grad_runs_only_the_nodes_that_lead_to_the_inputs():
    """autograd.grad(outputs, inputs) executes (and frees) only the part of the graph between
    them, as PyTorch: another branch keeps its graph and its hooks do not run."""
    torch = pytest.importorskip("torch")
    for lib in (framework, torch):
        x = lib.tensor([0.5, 1.0], requires_grad=True)
        y = lib.tensor([0.3, 0.7], requires_grad=True)
        u = x.exp()
        v = y.sin()
        calls = []
        v.register_hook(lambda g: calls.append(g))
        w = v * 3.0
        loss = u.sum() + w.sum()
        (gu,) = lib.autograd.grad(loss, u)
        np.testing.assert_allclose(np.asarray(gu.detach().numpy()), [1.0, 1.0])
        assert calls == []  # the y-branch did not run
        (gy,) = lib.autograd.grad(w.sum(), y)  # its nodes were neither run nor freed
        np.testing.assert_allclose(np.asarray(gy.detach().numpy()),
                                   3.0 * np.cos([0.3, 0.7]), rtol=1e-6)
        # backward(inputs=...) accumulates only into the given leaves, same rule
        z = (x * y).sum() + (y * y).sum()
        z.backward(inputs=[x])
        assert y.grad is None
