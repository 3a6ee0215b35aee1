"""Activation checkpointing (framework.utils.checkpoint), functional_call and framework.func.

Checkpointed blocks (with dropout) must give exactly the loss and gradients of the plain run,
and torch's numbers given the same weights; parameters read inside the function get their
gradients as in torch (non-reentrant: also with autograd.grad and when no input requires
grad). functional_call and the transforms (grad, vjp, jacrev, jacfwd, hessian) are compared
with torch.func, errors with torch's."""
import warnings

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
from conftest import torch_or_skip
from framework.autograd import gradcheck, gradgradcheck
from framework.func import (functional_call, grad, grad_and_value, hessian, jacfwd, jacrev,
                            vjp)
from framework.utils.checkpoint import CheckpointError, checkpoint, checkpoint_sequential

VARIANTS = [pytest.param(True, id="reentrant"), pytest.param(False, id="non_reentrant")]


def _np(t):
    return np.array(t.detach().numpy())


def _sync(mine, ref):
    """Give `mine` the weights of torch module `ref`."""
    mine.load_state_dict({k: fw.tensor(v.detach().numpy().copy())
                          for k, v in ref.state_dict().items()})


def _t(x):
    import torch
    return torch.tensor(_np(x))


def _grads(module):
    return [_np(p.grad) for p in module.parameters()]


def _mlp(dropout=0.5):
    fw.manual_seed(3)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 4))


def _conv_block(dropout=0.3):
    fw.manual_seed(4)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Dropout2d(dropout),
                         nn.Conv2d(8, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))


# ------------------------------------------------------------------------------ checkpoint
def _run(model, x, seed, wrap):
    """Loss and gradients of one training step, the model run through `wrap`."""
    model.zero_grad()
    x.grad = None
    fw.manual_seed(seed)
    loss = wrap(model, x).pow(2).mean()
    loss.backward()
    after = _np(fw.rand(4))  # where the random stream stands after the step
    return _np(loss), _grads(model), _np(x.grad), after


@pytest.mark.parametrize("reentrant", VARIANTS)
@pytest.mark.parametrize("make,shape", [(_mlp, (8, 6)), (_conv_block, (2, 3, 6, 6))])
def test_checkpoint_with_dropout_equals_plain_run(make, shape, reentrant):
    model = make()
    x = fw.randn(*shape, requires_grad=True)
    ref = _run(model, x, 11, lambda m, t: m(t))
    got = _run(model, x, 11, lambda m, t: checkpoint(m, t, use_reentrant=reentrant))
    np.testing.assert_array_equal(got[0], ref[0])
    for a, b in zip(got[1], ref[1]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got[2], ref[2])
    np.testing.assert_array_equal(got[3], ref[3])  # the rerun left the stream where it was


def test_checkpoint_without_preserved_rng_draws_new_masks():
    model = _mlp(0.5)
    x = fw.randn(8, 6, requires_grad=True)
    ref = _run(model, x, 11, lambda m, t: m(t))
    got = _run(model, x, 11, lambda m, t: checkpoint(m, t, use_reentrant=False,
                                                     preserve_rng_state=False))
    np.testing.assert_array_equal(got[0], ref[0])  # same forward
    assert not all(np.array_equal(a, b) for a, b in zip(got[1], ref[1]))  # other masks


@pytest.mark.parametrize("reentrant", VARIANTS)
@pytest.mark.parametrize("make,shape", [(_mlp, (8, 6)), (_conv_block, (2, 3, 6, 6))])
def test_checkpoint_matches_torch(make, shape, reentrant):
    torch = torch_or_skip()
    from torch.utils.checkpoint import checkpoint as t_checkpoint
    model = make(0.0)
    torch.manual_seed(0)
    tmodel = {_mlp: lambda: torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.0), torch.nn.Linear(16, 4)),
        _conv_block: lambda: torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Tanh(), torch.nn.Dropout2d(0.0),
            torch.nn.Conv2d(8, 4, 3), torch.nn.Flatten(), torch.nn.Linear(64, 5))}[make]()
    _sync(model, tmodel)
    x = fw.randn(*shape, requires_grad=True)
    tx = _t(x).requires_grad_(True)
    got = _run(model, x, 0, lambda m, t: checkpoint(m, t, use_reentrant=reentrant))
    tloss = t_checkpoint(tmodel, tx, use_reentrant=reentrant).pow(2).mean()
    tloss.backward()
    np.testing.assert_allclose(got[0], tloss.item(), rtol=1e-5)
    for a, p in zip(got[1], tmodel.parameters()):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got[2], tx.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_parameters_get_grads_when_no_input_requires_grad():
    torch = torch_or_skip()
    from torch.utils.checkpoint import checkpoint as t_checkpoint
    model, tmodel = _mlp(0.0), torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.0), torch.nn.Linear(16, 4))
    _sync(model, tmodel)
    x = fw.randn(8, 6)
    checkpoint(model, x, use_reentrant=False).sum().backward()
    t_checkpoint(tmodel, _t(x), use_reentrant=False).sum().backward()
    for p, tp in zip(model.parameters(), tmodel.parameters()):
        np.testing.assert_allclose(_np(p.grad), tp.grad.numpy(), rtol=1e-5, atol=1e-6)
    # the reentrant variant, as torch's, warns and leaves the output out of the graph
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
        out = checkpoint(model, x, use_reentrant=True)
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
        tout = t_checkpoint(tmodel, _t(x), use_reentrant=True)
    assert out.requires_grad is tout.requires_grad is False


def test_non_reentrant_works_with_autograd_grad_and_inputs():
    model = _mlp(0.0)
    x = fw.randn(8, 6, requires_grad=True)
    params = list(model.parameters())
    ref = fw.autograd.grad(model(x).sum(), params + [x])
    got = fw.autograd.grad(checkpoint(model, x, use_reentrant=False).sum(), params + [x])
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(_np(a), _np(b))
    assert all(p.grad is None for p in params)
    checkpoint(model, x, use_reentrant=False).sum().backward(inputs=[x])
    np.testing.assert_array_equal(_np(x.grad), _np(ref[-1]))
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("reentrant", VARIANTS)
def test_checkpoint_gradcheck(reentrant):
    w = fw.randn(3, 3, dtype=fw.float64, requires_grad=True)
    x = fw.randn(2, 3, dtype=fw.float64, requires_grad=True)

    def f(a, b):
        return checkpoint(lambda u, v: (u @ v).sin() * u.sum(), a, b, use_reentrant=reentrant)
    assert gradcheck(f, (x, w))
    # a closed-over tensor that requires grad
    assert gradcheck(lambda a: checkpoint(lambda u: (u @ w).tanh(), a,
                                          use_reentrant=reentrant) * 2, (x,))


def test_non_reentrant_higher_order_gradients():
    w = fw.randn(3, 3, dtype=fw.float64, requires_grad=True)
    x = fw.randn(2, 3, dtype=fw.float64, requires_grad=True)
    f = lambda a, b: checkpoint(lambda u, v: (u @ v).sin() * u, a, b, use_reentrant=False)
    assert gradgradcheck(f, (x, w))
    # a closed-over parameter too
    assert gradgradcheck(lambda a: checkpoint(lambda u: (u @ w).sin(), a,
                                              use_reentrant=False), (x,))


def _grads_of(tensors):
    return [_np(t.grad) for t in tensors]


def test_tensor_computed_outside_and_used_inside():
    """A tensor that requires grad, computed before the checkpoint and read by the function
    (an encoder output read by a decoder layer), also used outside it."""
    fw.manual_seed(0)
    enc, dec = nn.Linear(3, 3).double(), nn.Linear(3, 3).double()
    src = fw.randn(4, 3, dtype=fw.float64)
    x = fw.randn(4, 3, dtype=fw.float64, requires_grad=True)
    leaves = list(enc.parameters()) + list(dec.parameters()) + [x]

    def step(wrap):
        for t in leaves:
            t.grad = None
        memory = enc(src).tanh()
        y = wrap(lambda h: dec(h) * memory + memory.sum(), x)
        (y + memory).pow(2).sum().backward()
        return _grads_of(leaves)
    ref = step(lambda f, t: f(t))
    got = step(lambda f, t: checkpoint(f, t, use_reentrant=False))
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # the reentrant variant backpropagates into the outside graph from within backward and
    # frees it, which torch's does too
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        step(lambda f, t: checkpoint(f, t, use_reentrant=True))


def test_outputs_of_one_outside_node_used_inside():
    x = fw.randn(4, 3, dtype=fw.float64, requires_grad=True)
    z = fw.randn(3, dtype=fw.float64, requires_grad=True)

    def step(wrap):
        x.grad = z.grad = None
        a, b = (x * 2).unbind(0)[:2]  # two outputs of one node, both read inside
        y = wrap(lambda t: t * a + b.sin(), z)
        (y.sum() + a.sum()).backward()
        return _grads_of([x, z])
    ref = step(lambda f, t: f(t))
    for _ in range(2):  # the node's edges, cut while its gradients are taken, are restored
        for a, b in zip(step(lambda f, t: checkpoint(f, t, use_reentrant=False)), ref):
            np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("reentrant", VARIANTS)
def test_checkpoint_keeps_no_activation(reentrant):
    import weakref
    w = fw.randn(3, 3, requires_grad=True)
    x = fw.randn(2, 3, requires_grad=True)
    inner = []

    def f(t):
        h = (t @ w).tanh()
        inner.append(weakref.ref(h._data))
        return (h @ w).sigmoid()
    y = checkpoint(f, x, use_reentrant=reentrant)
    assert inner[0]() is None  # freed when the call returned, not held by the graph
    y.sum().backward()
    assert x.grad is not None and w.grad is not None


def test_tensor_created_inside_and_kept_by_the_module():
    """A weight computed inside the call and stored on the module (as a pre-forward hook
    does): the rerun replaces it, and its parameters still get their gradients."""
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.g = nn.Parameter(fw.ones(3, dtype=fw.float64) * 1.5)
            self.v = nn.Parameter(fw.randn(3, 3, dtype=fw.float64))

        def forward(self, x):
            self.w = self.v * self.g
            return x @ self.w
    m = Scaled()
    x = fw.randn(2, 3, dtype=fw.float64, requires_grad=True)
    leaves = [m.g, m.v, x]
    m(x).sin().sum().backward()
    ref = _grads_of(leaves)
    for t in leaves:
        t.grad = None
    checkpoint(m, x, use_reentrant=False).sin().sum().backward()
    for a, b in zip(_grads_of(leaves), ref):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_nested_checkpoint_kwargs_and_pytree_outputs():
    x = fw.randn(3, dtype=fw.float64, requires_grad=True)

    def inner(t, scale=1.0):
        return {"y": t.sin() * scale, "n": 3, "idx": t.argmax()}

    def outer(t, extra):
        d = checkpoint(inner, t, use_reentrant=False, scale=2.0)
        return d["y"].exp() * d["n"] + extra[0], d["idx"]
    y, idx = checkpoint(outer, x, [x * 2], use_reentrant=False)
    assert not idx.requires_grad and int(idx) == int(x.argmax())
    y.sum().backward()
    got = _np(x.grad)
    x.grad = None
    ((x.sin() * 2).exp() * 3 + x * 2).sum().backward()
    np.testing.assert_allclose(got, _np(x.grad), rtol=1e-12)


def test_reentrant_tuple_output_with_non_tensors():
    x = fw.randn(3, dtype=fw.float64, requires_grad=True)
    a, label, b = checkpoint(lambda t: (t * 2, "tag", t.cos()), x, use_reentrant=True)
    assert label == "tag"
    (a.sum() + b.sum()).backward()
    np.testing.assert_allclose(_np(x.grad), 2 - np.sin(_np(x)), rtol=1e-12)


@pytest.mark.parametrize("reentrant", VARIANTS)
def test_checkpoint_reruns_under_the_forwards_autocast(reentrant):
    model = _mlp(0.0)
    x = fw.randn(3, 6, requires_grad=True)

    def step(wrap):
        model.zero_grad()
        x.grad = None
        with fw.autocast("cpu", dtype=fw.float16):
            y = wrap(model, x)
        assert y.dtype == fw.float16
        y.float().sum().backward()  # backward runs outside the region
        return _grads(model) + [_np(x.grad)]
    ref = step(lambda m, t: m(t))
    for a, b in zip(step(lambda m, t: checkpoint(m, t, use_reentrant=reentrant)), ref):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_under_no_grad_returns_plain_outputs():
    model = _mlp(0.0)
    x = fw.randn(2, 6, requires_grad=True)
    with fw.no_grad():
        out = checkpoint(model, x, use_reentrant=False)
        out2 = checkpoint(model, x, use_reentrant=True)
    assert not out.requires_grad and not out2.requires_grad
    np.testing.assert_array_equal(_np(out), _np(out2))


def test_use_reentrant_warning_matches_torch():
    torch = torch_or_skip()
    from torch.utils.checkpoint import checkpoint as t_checkpoint
    x = fw.randn(3, requires_grad=True)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed explicitly"):
        y = checkpoint(lambda t: t * 2, x)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed explicitly"):
        t_checkpoint(lambda t: t * 2, torch.ones(3, requires_grad=True))
    y.sum().backward()  # the default is the reentrant variant
    np.testing.assert_array_equal(_np(x.grad), np.full(3, 2, np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checkpoint(lambda t: t * 2, x, use_reentrant=False)


def test_checkpoint_errors():
    x = fw.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
        checkpoint(lambda t, scale: t * scale, x, use_reentrant=True, scale=2)
    with pytest.raises(ValueError, match="only supported when use_reentrant=False"):
        checkpoint(lambda t: t, x, use_reentrant=True, debug=True)
    with pytest.raises(ValueError, match="determinism_check should be one of"):
        checkpoint(lambda t: t, x, use_reentrant=False, determinism_check="strict")
    y = checkpoint(lambda t: t * 2, x, use_reentrant=False).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    with pytest.raises(RuntimeError, match="none of output has requires_grad=True"):
        checkpoint(lambda t: t.detach() * 2, x, use_reentrant=True).sum().backward()


def test_determinism_check():
    x = fw.randn(4, requires_grad=True)

    def rerun_differs(change):
        calls = []

        def f(t):
            calls.append(1)
            return change(t * 2) if len(calls) > 1 else t * 2
        return f
    y = checkpoint(rerun_differs(lambda t: t[:3]), x, use_reentrant=False)
    with pytest.raises(CheckpointError, match=r"output 0: forward shape=\[4\].*rerun shape=\[3\]"):
        y.sum().backward()
    y = checkpoint(rerun_differs(lambda t: (t, t)), x, use_reentrant=False)
    with pytest.raises(CheckpointError, match="returned 2 tensors when run again in backward, 1"):
        y.sum().backward()
    y = checkpoint(rerun_differs(lambda t: t.double()), x, use_reentrant=False)
    with pytest.raises(CheckpointError, match="dtype=framework.float32.*dtype=framework.float64"):
        y.sum().backward()
    # "none" skips the check: the rerun's (float64) gradient reaches x as float32
    y = checkpoint(rerun_differs(lambda t: t.double()), x, use_reentrant=False,
                   determinism_check="none")
    y.sum().backward()
    np.testing.assert_array_equal(_np(x.grad), np.full(4, 2, np.float32))


@pytest.mark.parametrize("reentrant", VARIANTS)
def test_checkpoint_sequential_matches_plain_and_torch(reentrant):
    torch = torch_or_skip()
    from torch.utils.checkpoint import checkpoint_sequential as t_checkpoint_sequential
    fw.manual_seed(5)
    layers = [nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 5), nn.Dropout(0.4), nn.Linear(5, 5),
              nn.Sigmoid(), nn.Linear(5, 2)]
    model = nn.Sequential(*layers)
    x = fw.randn(3, 5, requires_grad=True)
    ref = _run(model, x, 9, lambda m, t: m(t))
    for segments in (1, 2, 3, 7):
        got = _run(model, x, 9, lambda m, t: checkpoint_sequential(
            m, segments, t, use_reentrant=reentrant))
        np.testing.assert_array_equal(got[0], ref[0])
        for a, b in zip(got[1] + [got[2]], ref[1] + [ref[2]]):
            np.testing.assert_array_equal(a, b)
    # a list of layers, against torch without dropout
    model.eval()
    tlayers = [torch.nn.Linear(5, 5), torch.nn.Tanh(), torch.nn.Linear(5, 5),
               torch.nn.Dropout(0.4), torch.nn.Linear(5, 5), torch.nn.Sigmoid(),
               torch.nn.Linear(5, 2)]
    tmodel = torch.nn.Sequential(*tlayers).eval()
    _sync(model, tmodel)
    got = _run(model, x, 0, lambda m, t: checkpoint_sequential(list(m), 3, t,
                                                               use_reentrant=reentrant))
    tx = _t(x).requires_grad_(True)
    tloss = t_checkpoint_sequential(tlayers, 3, tx, use_reentrant=reentrant).pow(2).mean()
    tloss.backward()
    np.testing.assert_allclose(got[0], tloss.item(), rtol=1e-5)
    np.testing.assert_allclose(got[2], tx.grad.numpy(), rtol=1e-4, atol=1e-7)
    for a, p in zip(got[1], tmodel.parameters()):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_checkpoint_sequential_errors():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    x = fw.randn(1, 2, requires_grad=True)
    with pytest.raises(ValueError, match="segments must be between 1 and the number"):
        checkpoint_sequential(model, 3, x, use_reentrant=False)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: foo"):
        checkpoint_sequential(model, 1, x, use_reentrant=False, foo=1)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed"):
        checkpoint_sequential(model, 2, x)


# ------------------------------------------------------------------------------ functional_call
class _Net(nn.Module):
    def __init__(self, lib):
        super().__init__()
        self.fc = lib.nn.Linear(3, 4)
        self.bn = lib.nn.BatchNorm1d(4)

    def forward(self, x, scale=1.0):
        return self.bn(self.fc(x)) * scale


def _pair():
    torch = torch_or_skip()

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 4)
            self.bn = torch.nn.BatchNorm1d(4)

        def forward(self, x, scale=1.0):
            return self.bn(self.fc(x)) * scale
    tnet = TNet()
    net = _Net(fw)
    _sync(net, tnet)
    return net, tnet


def test_functional_call_matches_torch():
    torch = torch_or_skip()
    net, tnet = _pair()
    originals = {k: _np(v).copy() for k, v in net.state_dict().items()}
    rng = np.random.default_rng(0)
    new = {"fc.weight": rng.standard_normal((4, 3)).astype(np.float32),
           "fc.bias": rng.standard_normal(4).astype(np.float32)}
    bufs = {"bn.running_mean": np.zeros(4, np.float32), "bn.running_var": np.ones(4, np.float32)}
    x = rng.standard_normal((5, 3)).astype(np.float32)
    mine = ({k: fw.tensor(v) for k, v in new.items()}, {k: fw.tensor(v) for k, v in bufs.items()})
    theirs = ({k: torch.tensor(v) for k, v in new.items()},
              {k: torch.tensor(v) for k, v in bufs.items()})
    out = functional_call(net, mine, (fw.tensor(x),), {"scale": 2.0})
    tout = torch.func.functional_call(tnet, theirs, (torch.tensor(x),), {"scale": 2.0})
    np.testing.assert_allclose(_np(out), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    for k in bufs:  # batch-norm statistics updated in the given tensors, in place
        np.testing.assert_allclose(_np(mine[1][k]), theirs[1][k].numpy(), rtol=1e-5)
    for k, v in net.state_dict().items():  # the module's own tensors are back, unchanged
        expect = originals[k] + (1 if k == "bn.num_batches_tracked" else 0)
        np.testing.assert_array_equal(_np(v), expect)
    assert isinstance(net.fc.weight, nn.Parameter)
    # a single non-tuple argument, and eval mode with the buffers given
    net.eval()
    tnet.eval()
    out = functional_call(net, {**mine[0], **mine[1]}, fw.tensor(x))
    tout = torch.func.functional_call(tnet, {**theirs[0], **theirs[1]}, torch.tensor(x))
    np.testing.assert_allclose(_np(out), tout.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_functional_call_gradients_match_torch_func_grad():
    torch = torch_or_skip()
    net, tnet = _pair()
    net.eval()
    tnet.eval()  # torch.func refuses the in-place statistics update of training mode
    x = np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32)
    params = {k: v.detach() for k, v in net.named_parameters()}
    tparams = {k: v.detach() for k, v in tnet.named_parameters()}

    def loss(p, inp):
        return functional_call(net, p, (inp,)).pow(2).mean()

    def tloss(p, inp):
        return torch.func.functional_call(tnet, p, (inp,)).pow(2).mean()
    g, value = grad_and_value(loss)(params, fw.tensor(x))
    tg, tvalue = torch.func.grad_and_value(tloss)(tparams, torch.tensor(x))
    assert list(g) == list(tg) and not value.requires_grad
    np.testing.assert_allclose(_np(value), tvalue.item(), rtol=1e-5)
    for k in g:
        np.testing.assert_allclose(_np(g[k]), tg[k].numpy(), rtol=1e-4, atol=1e-6)
    assert all(p.grad is None for p in net.parameters())


def test_functional_call_restores_on_exception_and_new_attributes():
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x):
            assert self.extra.shape == (1,)
            raise ValueError("boom")
    m = Boom()
    w = m.lin.weight
    with pytest.raises(ValueError, match="boom"):
        functional_call(m, {"lin.weight": fw.ones(2, 2), "extra": fw.ones(1)}, fw.ones(1, 2))
    assert m.lin.weight is w and not hasattr(m, "extra")


def test_functional_call_tied_weights_as_torch():
    torch = torch_or_skip()

    def build(lib):
        class Tied(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.a = lib.nn.Linear(2, 2, bias=False)
                self.b = lib.nn.Linear(2, 2, bias=False)
                self.b.weight = self.a.weight

            def forward(self, x):
                return self.a(x) + self.b(x)
        return Tied()
    m, tm = build(fw), build(torch)
    _sync(m, tm)
    x = np.ones((1, 2), np.float32)
    for kw in ({}, {"tie_weights": False}):
        out = functional_call(m, {"a.weight": fw.ones(2, 2)}, fw.tensor(x), **kw)
        tout = torch.func.functional_call(tm, {"a.weight": torch.ones(2, 2)}, torch.tensor(x),
                                          **kw)
        np.testing.assert_allclose(_np(out), tout.detach().numpy(), rtol=1e-6)
    w = fw.ones(2, 2)
    functional_call(m, {"a.weight": w, "b.weight": w}, fw.tensor(x), strict=True)
    with pytest.raises(ValueError, match=r"multiple values for keys \['a.weight', 'b.weight'\], "
                                         "which are tied"):
        functional_call(m, {"a.weight": w, "b.weight": w * 2}, fw.tensor(x))


def test_functional_call_errors_as_torch():
    net = _Net(fw)
    x = fw.randn(2, 3)
    with pytest.raises(RuntimeError, match=r"Error\(s\) in reparametrizing for _Net:\n\t"
                                           r"Unexpected key\(s\): 'foo'.\n\tMissing key\(s\): "
                                           r"'bn.bias', "):
        functional_call(net, {"fc.weight": fw.ones(4, 3), "foo": fw.ones(1)}, (x,), strict=True)
    with pytest.raises(ValueError, match=r"\['fc.bias'\] appeared in multiple dictionaries"):
        functional_call(net, ({"fc.bias": fw.ones(4)}, {"fc.bias": fw.ones(4)}), (x,))
    with pytest.raises(ValueError, match="Expected all elements of parameter_and_buffer_dicts"):
        functional_call(net, [{"fc.bias": fw.ones(4)}, 3], (x,))
    with pytest.raises(ValueError, match="to be a dict, or a list/tuple of dicts"):
        functional_call(net, 3, (x,))
    with pytest.raises(AttributeError, match="_Net has no attribute `nope`"):
        functional_call(net, {"nope.weight": fw.ones(1)}, (x,))
    with pytest.raises(TypeError, match="submodule `fc.weight`"):
        functional_call(net, {"fc.weight.foo": fw.ones(1)}, (x,))
    assert fw.nn.utils.stateless.functional_call is functional_call


# ------------------------------------------------------------------------------ func transforms
def _f64(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _close(mine, theirs, rtol=1e-10):
    """Compare pytrees of our tensors and torch's."""
    if isinstance(theirs, dict):
        assert list(mine) == list(theirs)
        for k in theirs:
            _close(mine[k], theirs[k], rtol)
    elif isinstance(theirs, (tuple, list)):
        assert type(mine) is type(theirs) and len(mine) == len(theirs)
        for a, b in zip(mine, theirs):
            _close(a, b, rtol)
    else:
        assert tuple(mine.shape) == tuple(theirs.shape)
        np.testing.assert_allclose(_np(mine), theirs.detach().numpy(), rtol=rtol, atol=1e-12)


def _both(a):
    import torch
    return fw.tensor(a), torch.tensor(a)


def test_grad_matches_torch_func():
    torch = torch_or_skip()
    x, tx = _both(_f64(4))
    y, ty = _both(_f64(4, seed=1))
    f = lambda lib: (lambda a, b: (lib.sin(a) * b.exp() + a * a * b).sum())
    _close(grad(f(fw))(x, y), torch.func.grad(f(torch))(tx, ty))
    _close(grad(f(fw), argnums=(0, 1))(x, y), torch.func.grad(f(torch), argnums=(0, 1))(tx, ty))
    _close(grad(f(fw), argnums=-1)(x, y), torch.func.grad(f(torch), argnums=-1)(tx, ty))
    # pytree primal, has_aux, grad_and_value
    g = lambda lib: (lambda d: ((d["w"] * d["b"][0]).sum() ** 2, {"s": lib.cos(d["w"])}))
    mine = grad_and_value(g(fw), has_aux=True)({"w": x, "b": (y,)})
    theirs = torch.func.grad_and_value(g(torch), has_aux=True)({"w": tx, "b": (ty,)})
    _close(mine, theirs)
    assert not mine[1][0].requires_grad and not mine[1][1]["s"].requires_grad
    _close(grad(g(fw), has_aux=True)({"w": x, "b": [y]}),
           torch.func.grad(g(torch), has_aux=True)({"w": tx, "b": [ty]}))
    # an output that does not depend on the primal: zeros, as torch
    _close(grad(lambda a: fw.tensor(1.0))(x), torch.func.grad(lambda a: torch.tensor(1.0))(tx))


def test_vjp_matches_torch_func():
    torch = torch_or_skip()
    x, tx = _both(_f64(3))
    y, ty = _both(_f64(3, seed=1))
    f = lambda lib: (lambda a, b: (a * b, {"s": lib.sin(a) + b ** 3}))
    out, fn = vjp(f(fw), x, y)
    tout, tfn = torch.func.vjp(f(torch), tx, ty)
    _close(out, tout)
    assert not out[0].requires_grad
    c, tc = _both(_f64(3, seed=2))
    d, td = _both(_f64(3, seed=3))
    for _ in range(2):  # vjp_fn may be called again
        _close(fn((c, {"s": d})), tfn((tc, {"s": td})))
    out, fn, aux = vjp(lambda a: (a.exp(), a * 2), x, has_aux=True)
    tout, tfn, taux = torch.func.vjp(lambda a: (a.exp(), a * 2), tx, has_aux=True)
    _close((out, aux, fn(c)), (tout, taux, tfn(tc)))


def test_jacrev_jacfwd_hessian_match_torch_func():
    torch = torch_or_skip()
    x, tx = _both(_f64(3))
    y, ty = _both(_f64(2, 3, seed=1))
    f = lambda lib: (lambda a, b: {"p": lib.sin(a) * b, "q": (a.sum() * b[0], a.exp())})
    for ours, theirs in ((jacrev, torch.func.jacrev), (jacfwd, torch.func.jacfwd)):
        _close(ours(f(fw))(x, y), theirs(f(torch))(tx, ty))
        _close(ours(f(fw), argnums=(0, 1))(x, y), theirs(f(torch), argnums=(0, 1))(tx, ty))
    s, ts = _both(np.float64(0.7))
    _close(jacrev(lambda a: a ** 3)(s), torch.func.jacrev(lambda a: a ** 3)(ts))
    _close(jacrev(lambda a: (a * 2, a), has_aux=True)(x),
           torch.func.jacrev(lambda a: (a * 2, a), has_aux=True)(tx))
    h = lambda lib: (lambda a, b: (lib.sin(a)[None, :] * b ** 2).sum() * a.prod())
    _close(hessian(h(fw))(x, y), torch.func.hessian(h(torch))(tx, ty), rtol=1e-9)
    _close(hessian(h(fw), argnums=(0, 1))(x, y),
           torch.func.hessian(h(torch), argnums=(0, 1))(tx, ty), rtol=1e-9)


def test_transforms_nest_and_compose_with_autograd():
    torch = torch_or_skip()
    s, ts = _both(np.float64(1.3))
    _close(grad(grad(grad(lambda a: a.sin() * a ** 4)))(s),
           torch.func.grad(torch.func.grad(torch.func.grad(lambda a: a.sin() * a ** 4)))(ts))
    x, tx = _both(_f64(3))
    # a parameter the function reads: the gradient depends on it (as torch's)
    w = fw.tensor(_f64(3, seed=4), requires_grad=True)
    tw = torch.tensor(_f64(3, seed=4), requires_grad=True)
    g = grad(lambda a: (a * w).sin().sum())(x)
    tg = torch.func.grad(lambda a: (a * tw).sin().sum())(tx)
    assert g.requires_grad and tg.requires_grad
    (g ** 2).sum().backward()
    (tg ** 2).sum().backward()
    _close(w.grad, tw.grad)
    # a primal that requires grad: the result is differentiable with respect to it
    xr = fw.tensor(_f64(3), requires_grad=True)
    txr = torch.tensor(_f64(3), requires_grad=True)
    (grad(lambda a: (a ** 3).sum())(xr * 2) ** 2).sum().backward()
    (torch.func.grad(lambda a: (a ** 3).sum())(txr * 2) ** 2).sum().backward()
    _close(xr.grad, txr.grad)
    # plain primals give plain results; under no_grad the transform still differentiates
    assert not grad(lambda a: (a ** 3).sum())(x).requires_grad
    with fw.no_grad():
        _close(grad(lambda a: (a ** 3).sum())(xr), torch.func.grad(
            lambda a: (a ** 3).sum())(txr.detach()))
    # gradcheck of the transformed function, float64
    assert gradcheck(lambda a: grad(lambda b: (b.sin() * b).sum())(a),
                     (fw.tensor(_f64(3), requires_grad=True),))
    # a checkpointed function inside a transform, to second order
    hc = hessian(lambda a: checkpoint(lambda b: (b.sin() * b ** 2).sum(), a,
                                      use_reentrant=False))(x)
    _close(hc, torch.func.hessian(lambda a: (a.sin() * a ** 2).sum())(tx))


def test_transform_errors_as_torch():
    torch = torch_or_skip()
    x, tx = _both(_f64(3))
    X = {fw.func: x, torch.func: tx}  # the primal for each library
    cases = [
        (lambda m: m.grad(lambda a: a * 2)(X[m]), "Expected f\\(\\*args\\) to return a scalar "
         "Tensor, got tensor with 1 dims"),
        (lambda m: m.grad(lambda a: 3.0)(X[m]), "Expected f\\(\\*args\\) to return a Tensor"),
        (lambda m: m.grad(lambda a: a.sum(), argnums=1)(X[m]),
         "Got argnum=1, but only 1 positional inputs"),
        (lambda m: m.grad(lambda a: a.sum(), argnums=())(X[m]), "argnums must be non-empty"),
        (lambda m: m.grad(lambda a: a.sum(), argnums=[0])(X[m]),
         "argnums must be int or Tuple"),
        (lambda m: m.grad(lambda a, b: a.sum(), argnums=(0, 0))(X[m], X[m]),
         "argnums elements must be unique"),
        (lambda m: m.grad(lambda a: a.sum(), has_aux=True)(X[m]),
         "output of function f should be a tuple: \\(output, aux\\)"),
        (lambda m: m.vjp(lambda a: 3.0, X[m]), "expected f\\(\\*primals\\) to return only tensors"),
        (lambda m: m.vjp(lambda a: (a, a), X[m])[1](X[m]),
         "Expected pytree structure of cotangents to be the same as pytree structure of outputs "
         "to the function. cotangents: \\*, primal output: \\(\\*, \\*\\)"),
    ]
    for call, msg in cases:
        for m in (fw.func, torch.func):
            with pytest.raises(RuntimeError, match=msg):
                call(m)
    for m, v in ((fw.func, 3.0), (torch.func, 3.0)):
        with pytest.raises(ValueError, match="Thing passed to transform API must be Tensor"):
            m.grad(lambda a: a)(v)
    with pytest.raises(ValueError, match="`chunk_size` should be greater than 0"):
        jacrev(lambda a: a, chunk_size=0)
    with pytest.raises(RuntimeError, match="Only allowed values for randomness"):
        jacfwd(lambda a: a, randomness="bad")
