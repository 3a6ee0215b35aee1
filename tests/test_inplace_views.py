"""In-place operations on views under autograd (PyTorch's CopySlices): the base's history is
rewritten, the view and older overlapping views are replayed on the new base, and the results
and gradients (first and second order) agree with PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import framework
from conftest import torch_or_skip
from framework.autograd import gradcheck, gradgradcheck

_RNG = np.random.default_rng(0)
X = _RNG.standard_normal((4, 5))
W = _RNG.standard_normal(20)
Z = _RNG.standard_normal((4, 2))


def _np(t):
    return t.detach().cpu().numpy()


# Each case takes (lib, y, w, z): y = 2x is a non-leaf of shape (4, 5), w (20,) and z (4, 2)
# are leaves that require grad; it writes in place through a view and returns what to
# differentiate (the base, the view, or an older view of the base).
CASES = {
    "select_mul_": lambda L, y, w, z: (y[:, 1].mul_(3), y)[1],
    "view_add_": lambda L, y, w, z: (y.view(-1).add_(w), y)[1],
    "view_add_then_view": lambda L, y, w, z: _then(y.view(-1), lambda v: v.add_(w),
                                                   lambda v: v * v),
    "narrow_sigmoid_": lambda L, y, w, z: (y.narrow(1, 0, 2).sigmoid_(), y * y)[1],
    "transpose_select_zero_": lambda L, y, w, z: (y.transpose(0, 1)[0].zero_(), y)[1],
    "diagonal_fill_": lambda L, y, w, z: (y.diagonal().fill_(1), y)[1],
    "slice_copy_": lambda L, y, w, z: (y[..., 0:2].copy_(z), y)[1],
    "view_of_view_mul_": lambda L, y, w, z: _then(y[1], lambda a: a[2:].mul_(2),
                                                  lambda a: a * y[1]),
    "setitem_on_view": lambda L, y, w, z: _then(y[1], lambda a: a.__setitem__(slice(0, 2), w[:2]),
                                                lambda a: y),
    "permute_reshape_exp_": lambda L, y, w, z: (y.t().reshape(-1)[3:9].exp_(), y)[1],
    "view_t_then_mul_": lambda L, y, w, z: _then(y[1:3], lambda v: (v.t_(), v[0].mul_(w[:2])),
                                                 lambda v: y),
}


def _then(view, write, result):
    write(view)
    return result(view)


def _run(lib, case, create_graph=False):
    x = lib.tensor(X, requires_grad=True)
    w = lib.tensor(W, requires_grad=True)
    z = lib.tensor(Z, requires_grad=True)
    y = x * 2
    out = case(lib, y, w, z)
    weights = lib.tensor(np.arange(out.numel(), dtype=np.float64).reshape(tuple(out.shape)))
    loss = (out * out * weights).sum()
    if not create_graph:
        loss.backward()
        return [_np(out)] + [None if t.grad is None else _np(t.grad) for t in (x, w, z)]
    leaves = [x, w, z]
    grads = lib.autograd.grad(loss, leaves, create_graph=True, allow_unused=True)
    used = [g for g in grads if g is not None]
    s = sum((g * g).sum() for g in used)
    s.backward()
    return ([_np(out)] + [None if g is None else _np(g) for g in grads] +
            [None if t.grad is None else _np(t.grad) for t in leaves])


def _assert_same(ours, theirs):
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert (a is None) == (b is None), f"entry {i}: {a} vs {b}"
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"entry {i}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    torch = torch_or_skip()
    _assert_same(_run(framework, CASES[name]), _run(torch, CASES[name]))


@pytest.mark.parametrize("name", ["select_mul_", "slice_copy_", "narrow_sigmoid_",
                                  "view_of_view_mul_"])
def test_double_backward_matches_torch(name):
    torch = torch_or_skip()
    _assert_same(_run(framework, CASES[name], create_graph=True),
                 _run(torch, CASES[name], create_graph=True))


def _stale_cases(lib):
    """Older views of y used after an in-place write through another view (overlapping and
    not), and after an in-place write on y itself."""
    def overlapping(y, w):
        flat, row0, col = y.view(-1), y[0], y.t()[1]
        y[:, 1].mul_(w[:4])
        return flat * 1 + row0.sum() + col.sum()

    def disjoint(y, w):
        top = y[:2]
        y[2:].exp_()
        return top * 3 + y[2:]

    def on_base(y, w):
        row = y[2]
        y.sigmoid_()
        return row * w[:5]

    def written_again(y, w):
        a = y[1]  # older view, overlapping the write, then written itself
        y[:, 2].add_(w[:4])
        a.mul_(w[5:10])
        return y

    return {"overlapping": overlapping, "disjoint": disjoint, "on_base": on_base,
            "written_again": written_again}


@pytest.mark.parametrize("name", ["overlapping", "disjoint", "on_base", "written_again"])
def test_stale_older_view_matches_torch(name):
    torch = torch_or_skip()
    res = []
    for lib in (framework, torch):
        x = lib.tensor(X, requires_grad=True)
        w = lib.tensor(W, requires_grad=True)
        out = _stale_cases(lib)[name](x * 2, w)
        (out * out).sum().backward()
        res.append([_np(out), _np(x.grad), None if w.grad is None else _np(w.grad)])
    _assert_same(*res)


def test_base_laid_out_column_major():
    """y = x.t() * 2 keeps x.t()'s column-major layout, so y.t().reshape(-1) is a view of y;
    the base's gradient buffer must be laid out the same for the replayed view to reach it."""
    torch = torch_or_skip()
    res = []
    for lib in (framework, torch):
        x = lib.tensor(X, requires_grad=True)
        y = x.t() * 2
        v = y.t().reshape(-1)
        assert v._base is y
        v[3:9].exp_()
        (y * y).sum().backward()
        res.append([_np(y), _np(x.grad)])
    _assert_same(*res)


def test_base_without_history_gets_one():
    """A view of a tensor that does not require grad, written with a value that does: the
    base then requires grad (its history is a CopySlices)."""
    torch = torch_or_skip()
    res = []
    for lib in (framework, torch):
        w = lib.tensor(W[:5], requires_grad=True)
        b = lib.zeros(4, 5, dtype=lib.float64)
        v = b[1]
        v.add_(w)
        assert b.requires_grad and v.requires_grad and not b.is_leaf
        (b * b).sum().backward()
        res.append([_np(b), _np(w.grad)])
    _assert_same(*res)


def test_gradcheck_and_gradgradcheck():
    def f(x, w):
        y = x * 1.5
        y[1:3, 1:4].mul_(w)
        y.t()[0].sigmoid_()
        d = y.diagonal()
        d.copy_(x[0, :4] * w[0, 0])
        return y * y

    x = framework.tensor(X, requires_grad=True)
    w = framework.tensor(_RNG.standard_normal((2, 3)), requires_grad=True)
    assert gradcheck(f, (x, w), eps=1e-6, atol=1e-5, rtol=1e-3)
    assert gradgradcheck(f, (x, w), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_views_of_a_leaf_that_requires_grad_raise():
    x = framework.tensor(X, requires_grad=True)
    for write in (lambda: x[0].mul_(2), lambda: x.view(-1).zero_(), lambda: x[:, 1].copy_(x[:, 0]),
                  lambda: x.diagonal().fill_(1), lambda: x[1].__setitem__(0, 3.0),
                  lambda: x[1:].t_()):
        with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is "
                                               "being used in an in-place operation"):
            write()
    np.testing.assert_array_equal(_np(x), X)
    with framework.no_grad():  # allowed without a graph
        x[0].mul_(2)
    np.testing.assert_array_equal(_np(x[0]), 2 * X[0])


def test_saved_tensor_modified_through_a_view_still_raises():
    x = framework.tensor(X, requires_grad=True)
    y = x * 1.0
    p = y * y  # saves y
    y[1].mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        p.sum().backward()
    y = x * 1.0
    e = y.exp()  # saves its output
    e[:, 0].add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        e.sum().backward()


def test_unreplayable_view_raises():
    """A view that cannot be replayed on its base (view_as_real here) refuses an in-place op
    with autograd, naming why, and leaves the base as it was."""
    c = framework.tensor(np.array([1 + 2j, 3 - 1j]), requires_grad=True) * 1.0
    r = framework.view_as_real(c)
    with pytest.raises(RuntimeError, match="cannot be replayed on its base"):
        r.mul_(2)
    np.testing.assert_array_equal(_np(c), [1 + 2j, 3 - 1j])


def test_older_unreplayable_view_raises_on_backward():
    """An older view that cannot be replayed, whose memory an in-place op then changed, keeps
    no stale history: backward through it says why."""
    c = framework.tensor(np.array([1 + 2j, 3 - 1j]), requires_grad=True) * 1.0
    r = framework.view_as_real(c)
    c.mul_(2)
    np.testing.assert_array_equal(_np(r), [[2, 4], [6, -2]])
    with pytest.raises(RuntimeError, match="cannot replay it on the base"):
        r.sum().backward()


def test_pieces_of_split_and_unbind_can_be_written():
    """PyTorch refuses in-place ops on the outputs of split/unbind/chunk under autograd;
    Lantern replays each piece as a narrow/select, with the gradients of writing through
    those views."""
    torch = torch_or_skip()
    res = []
    for lib in (framework, torch):
        x = lib.tensor(X, requires_grad=True)
        w = lib.tensor(W, requires_grad=True)
        y = x * 2
        if lib is framework:
            rows, halves = y.unbind(0), y.split(3, 1)
        else:
            rows, halves = [y[i] for i in range(4)], [y[:, :3], y[:, 3:]]
        for i, r in enumerate(rows):
            r.mul_(i + 1)
        halves[1].add_(w[:8].reshape(4, 2))
        (y * y).sum().backward()
        res.append([_np(y), _np(x.grad), _np(w.grad)])
    _assert_same(*res)


def test_base_reshaped_in_place_makes_older_views_unreplayable():
    x = framework.tensor(X, requires_grad=True)
    y = x * 1.0
    row = y[1]
    y.t_()
    with pytest.raises(RuntimeError, match="cannot be replayed on its base"):
        row.mul_(2)
    fresh = y[1]  # made after t_(): replays fine
    fresh.mul_(2)
    y.sum().backward()
    expected = np.ones((4, 5))
    expected[:, 1] = 2
    np.testing.assert_array_equal(_np(x.grad), expected)


def test_no_grad_writes_and_copying_reshape():
    """Without autograd nothing changes (the write reaches the base); a reshape that had to
    copy is not a view, so writing into it leaves the source alone."""
    y = framework.tensor(X.copy())
    y[:, 1].mul_(3)
    y.diagonal().zero_()
    expected = X.copy()
    expected[:, 1] *= 3
    np.fill_diagonal(expected, 0)
    np.testing.assert_array_equal(_np(y), expected)
    c = y.t().reshape(-1)
    assert c._base is None
    c.zero_()
    np.testing.assert_array_equal(_np(y), expected)


def test_view_registry_forgets_dead_views():
    x = framework.tensor(X, requires_grad=True)
    y = x * 1.0
    for _ in range(300):
        y[0].sum()
    assert len(y._views) < 128
