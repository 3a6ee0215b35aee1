"""Sparse COO tensors (framework.sparse): construction, coalescing, conversions, products, sums,
softmax and their gradients, checked against PyTorch (the parity oracle) and by finite
differences; bad input raises clear errors; a small GCN trains as in PyTorch."""
import copy
import pickle
import warnings

import numpy as np
import pytest

import framework as F
from framework.autograd import gradcheck, gradgradcheck
from tests.conftest import torch_or_skip


@pytest.fixture(scope="module")
def torch():
    t = torch_or_skip()
    t.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    return t


def _np(t):
    if t.is_sparse:
        raise AssertionError("expected a dense tensor")
    d = t.detach()
    return d.cpu().numpy() if hasattr(d, "cpu") else np.asarray(d)


def _tt(torch, a, **kw):
    return torch.tensor(np.asarray(a), **kw)


def _coo_case(rng, shape, nnz, dup=True, dense_shape=()):
    """Random indices (with duplicates when `dup`) and float64 values."""
    idx = np.stack([rng.integers(0, n, nnz) for n in shape])
    if dup and nnz > 2:
        idx[:, -2:] = idx[:, :2]  # make sure some positions repeat
    vals = rng.standard_normal((nnz,) + tuple(dense_shape))
    return idx, vals


def _assert_same_sparse(ours, theirs, torch, *, coalesce=True, rtol=1e-12, atol=1e-12):
    assert ours.is_sparse and theirs.is_sparse
    assert tuple(ours.shape) == tuple(theirs.shape)
    if coalesce:
        ours, theirs = ours.coalesce(), theirs.coalesce()
    np.testing.assert_array_equal(_np(ours._indices()), theirs._indices().numpy())
    np.testing.assert_allclose(_np(ours._values()), theirs._values().detach().numpy(),
                               rtol=rtol, atol=atol)


# ---------------------------------------------------------------------- construction
@pytest.mark.parametrize("case", ["dups", "inferred", "hybrid", "ints", "empty"])
def test_sparse_coo_tensor_matches_torch(case, torch, device):
    rng = np.random.default_rng(1)
    if case == "dups":
        idx, vals = _coo_case(rng, (4, 5), 9)
        kw = {"size": (4, 5)}
    elif case == "inferred":
        idx, vals = _coo_case(rng, (6, 3, 2), 7)
        kw = {}
    elif case == "hybrid":
        idx, vals = _coo_case(rng, (5,), 6, dense_shape=(2, 3))
        kw = {"size": (5, 2, 3)}
    elif case == "ints":
        idx, vals = np.array([[0, 1, 1], [2, 0, 0]]), np.array([3, 4, 5])
        kw = {}
    else:
        idx, vals = np.zeros((2, 0), np.int64), np.zeros(0)
        kw = {"size": (3, 3)}
    ours = F.sparse_coo_tensor(F.tensor(idx), F.tensor(vals), device=device, **kw)
    theirs = torch.sparse_coo_tensor(_tt(torch, idx), _tt(torch, vals), **kw)
    assert ours.is_sparse and ours.layout is F.sparse_coo
    assert ours.device.type == device
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.dtype.name == str(theirs.dtype).split(".")[1]
    assert ours.is_coalesced() == theirs.is_coalesced()
    assert (ours.sparse_dim(), ours.dense_dim(), ours._nnz()) == \
        (theirs.sparse_dim(), theirs.dense_dim(), theirs._nnz())
    _assert_same_sparse(ours, theirs, torch, coalesce=False)
    np.testing.assert_array_equal(_np(ours.to_dense()), theirs.to_dense().numpy())
    _assert_same_sparse(ours, theirs, torch)  # coalesced: duplicates summed, indices sorted


def test_dtype_inference_and_promotion(torch):
    idx = [[0, 1], [1, 0]]
    for values, kw in [([1, 2], {}), ([1.0, 2.0], {}), ([1, 2], {"dtype": F.float64}),
                       ([1.5, 2.5], {"dtype": F.int64}), ([True, False], {})]:
        tkw = {"dtype": getattr(torch, kw["dtype"].name)} if kw else {}
        ours = F.sparse_coo_tensor(idx, values, **kw)
        theirs = torch.sparse_coo_tensor(idx, values, **tkw)
        assert ours.dtype.name == str(theirs.dtype).split(".")[1], (values, kw)
        np.testing.assert_array_equal(_np(ours.to_dense()), theirs.to_dense().numpy())
    # int32 indices are stored as int64; float values in a float64 default dtype
    s = F.sparse_coo_tensor(F.tensor(idx, dtype=F.int32), [1.0, 2.0])
    assert s.coalesce().indices().dtype is F.int64
    F.set_default_dtype(F.float64)
    try:
        assert F.sparse_coo_tensor(idx, [1.0, 2.0]).dtype is F.float64
    finally:
        F.set_default_dtype(F.float32)
    # a dtype change keeps the sparse layout and the values' autograd
    v = F.tensor([1.0, 2.0], requires_grad=True)
    s64 = F.sparse_coo_tensor(idx, v).to(F.float64)
    assert s64.dtype is F.float64 and s64.is_sparse
    (s64.to_dense() * 3).sum().backward()
    np.testing.assert_array_equal(_np(v.grad), [3.0, 3.0])


def test_coalesce_sums_duplicates_and_sorts(torch, device):
    rng = np.random.default_rng(2)
    idx = rng.integers(0, 3, (3, 40))  # 40 entries in 27 positions: many duplicates
    vals = rng.standard_normal(40)
    ours = F.sparse_coo_tensor(idx, vals, (3, 3, 3), device=device)
    theirs = torch.sparse_coo_tensor(_tt(torch, idx), _tt(torch, vals), (3, 3, 3))
    c = ours.coalesce()
    assert c.is_coalesced() and not ours.is_coalesced()
    assert c.coalesce() is c
    tc = theirs.coalesce()
    np.testing.assert_array_equal(_np(c.indices()), tc.indices().numpy())
    np.testing.assert_allclose(_np(c.values()), tc.values().numpy(), rtol=1e-12, atol=1e-12)
    flat = _np(c.indices())
    lin = np.ravel_multi_index(tuple(flat), (3, 3, 3))
    assert np.all(np.diff(lin) > 0)  # sorted, unique
    # bool values OR together, small ints add in their own dtype, as in PyTorch
    for vals_, dt in [([True, True, False], "bool"), ([3, 4, 5], "int8")]:
        o = F.sparse_coo_tensor([[0, 0, 1]], F.tensor(vals_, dtype=getattr(F, dt)), (2,))
        t = torch.sparse_coo_tensor([[0, 0, 1]], torch.tensor(vals_, dtype=getattr(torch, dt)),
                                    (2,))
        np.testing.assert_array_equal(_np(o.coalesce().values()), t.coalesce().values().numpy())


def test_indices_and_values_need_a_coalesced_tensor(torch):
    s = F.sparse_coo_tensor([[1, 0]], [1.0, 2.0])
    for get in ("indices", "values"):
        with pytest.raises(RuntimeError, match="uncoalesced tensor, please call .coalesce"):
            getattr(s, get)()
    assert s._indices().shape == (1, 2) and s._values().shape == (2,)
    # the stored indices are read-only: the tensor's cached structure depends on them
    with pytest.raises(RuntimeError, match="read-only"):
        s._indices().add_(1)


# ---------------------------------------------------------------------- conversions
@pytest.mark.parametrize("shape,sparse_dim", [((4, 5), None), ((3, 4, 2), None),
                                              ((3, 4, 2), 1), ((3, 4, 2), 2), ((6,), None),
                                              ((), None), ((0, 3), None)])
def test_to_sparse_to_dense_round_trip(shape, sparse_dim, torch, device):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape) * (rng.random(shape) < 0.4)
    ours = F.tensor(x, device=device).to_sparse(sparse_dim)
    theirs = _tt(torch, x).to_sparse(*(() if sparse_dim is None else (sparse_dim,)))
    assert ours.is_coalesced() and theirs.is_coalesced()
    assert ours.sparse_dim() == theirs.sparse_dim()
    _assert_same_sparse(ours, theirs, torch, coalesce=False)
    np.testing.assert_array_equal(_np(ours.to_dense()), x)
    assert ours.to_sparse() is ours
    d = F.tensor(x)
    assert d.to_dense() is d and not d.is_sparse and d.layout is F.strided
    if d.ndim:
        with pytest.raises(RuntimeError, match=r"sparse_dim must be in \[1, "):
            d.to_sparse(0)


def test_layout_objects():
    assert repr(F.sparse_coo) == "framework.sparse_coo" and str(F.strided) == "framework.strided"
    assert F.sparse.sparse_coo is F.sparse_coo and F.sparse_coo is not F.strided
    assert pickle.loads(pickle.dumps(F.sparse_coo)) is F.sparse_coo


@pytest.mark.parametrize("case", ["dups", "float64", "ints", "hybrid", "empty", "leaf",
                                  "scalar"])
def test_repr_matches_torch(case, torch):
    idx, vals, kw, rg = [[1, 0, 1, 2], [2, 1, 2, 0]], [1.0, 2.0, 3.0, 4.0], {}, False
    if case == "float64":
        kw = {"dtype": "float64"}
    elif case == "ints":
        vals = [1, 2, 3, 4]
    elif case == "hybrid":
        idx, vals = [[0, 1, 0]], np.arange(6.0).reshape(3, 2)
    elif case == "empty":
        idx, vals = np.zeros((2, 0), np.int64), np.zeros(0)
        kw = {"size": (3, 3)}
    elif case == "leaf":
        rg = True
    elif case == "scalar":
        idx, vals = np.zeros((0, 1), np.int64), [3.0]
        kw = {"size": ()}
    okw = {k: (getattr(F, v) if k == "dtype" else v) for k, v in kw.items()}
    tkw = {k: (getattr(torch, v) if k == "dtype" else v) for k, v in kw.items()}
    ours = F.sparse_coo_tensor(F.tensor(np.asarray(idx)), F.tensor(np.asarray(vals)),
                               requires_grad=rg, **okw)
    theirs = torch.sparse_coo_tensor(_tt(torch, idx), _tt(torch, vals), requires_grad=rg, **tkw)
    assert repr(ours).replace("framework.", "torch.") == repr(theirs)


def test_values_that_require_grad_make_a_graph_node(torch):
    v = F.tensor([1.0, 2.0], requires_grad=True)
    s = F.sparse_coo_tensor([[0, 1], [1, 0]], v)
    assert not s.is_leaf and s.requires_grad
    assert s.grad_fn.name() == "SparseCooTensorWithDimsAndTensorsBackward0"
    leaf = F.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], requires_grad=True)
    assert leaf.is_leaf and leaf.requires_grad and leaf.grad is None
    with pytest.raises(RuntimeError, match="floating point"):
        F.sparse_coo_tensor([[0]], [1], requires_grad=True)


# ---------------------------------------------------------------------- products
def _mm_inputs(torch, rng, m=5, k=4, n=3, nnz=9):
    idx, vals = _coo_case(rng, (m, k), nnz)
    dense = rng.standard_normal((k, n))
    return idx, vals, dense


@pytest.mark.parametrize("how", ["sparse.mm", "spmm", "mm", "matmul", "@", "method_mm",
                                 "method_matmul"])
def test_sparse_mm_forward_backward_matches_torch(how, torch, device):
    rng = np.random.default_rng(4)
    idx, vals, dense = _mm_inputs(torch, rng)
    g = rng.standard_normal((5, 3))
    fn = {"sparse.mm": F.sparse.mm, "spmm": F.spmm, "mm": F.mm, "matmul": F.matmul,
          "@": lambda a, b: a @ b, "method_mm": lambda a, b: a.mm(b),
          "method_matmul": lambda a, b: a.matmul(b)}[how]
    # the sparse input is a leaf (its gradient is sparse) ...
    s = F.sparse_coo_tensor(idx, vals, (5, 4), device=device, requires_grad=True)
    d = F.tensor(dense, device=device, requires_grad=True)
    out = fn(s, d)
    out.backward(F.tensor(g, device=device))
    ts = torch.sparse_coo_tensor(_tt(torch, idx), _tt(torch, vals), (5, 4), requires_grad=True)
    td = _tt(torch, dense, requires_grad=True)
    tout = torch.sparse.mm(ts, td)
    tout.backward(_tt(torch, g))
    np.testing.assert_allclose(_np(out), tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_np(d.grad), td.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert s.grad.is_sparse and s.grad.is_coalesced()
    _assert_same_sparse(s.grad, ts.grad, torch, coalesce=False)
    # ... or built from values that require grad (each stored entry gets its gradient)
    v = F.tensor(vals, device=device, requires_grad=True)
    fn(F.sparse_coo_tensor(idx, v, (5, 4)), d.detach()).backward(F.tensor(g, device=device))
    tv = _tt(torch, vals, requires_grad=True)
    torch.sparse.mm(torch.sparse_coo_tensor(_tt(torch, idx), tv, (5, 4)),
                    td.detach()).backward(_tt(torch, g))
    np.testing.assert_allclose(_np(v.grad), tv.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_coalesced_float32_product_and_vector(torch, device):
    rng = np.random.default_rng(5)
    idx, vals, dense = _mm_inputs(torch, rng, m=7, k=6, n=4, nnz=15)
    s = F.sparse_coo_tensor(idx, vals, (7, 6), dtype=F.float32, device=device).coalesce()
    ts = torch.sparse_coo_tensor(_tt(torch, idx), _tt(torch, vals, dtype=torch.float32),
                                 (7, 6)).coalesce()
    d32 = dense.astype(np.float32)
    np.testing.assert_allclose(_np(s @ F.tensor(d32, device=device)),
                               (ts @ torch.tensor(d32)).numpy(), rtol=1e-5, atol=1e-6)
    vec = rng.standard_normal(6).astype(np.float32)
    np.testing.assert_allclose(_np(F.matmul(s, F.tensor(vec, device=device))),
                               torch.matmul(ts, torch.tensor(vec)).numpy(), rtol=1e-5, atol=1e-6)
    ints = F.sparse_coo_tensor(idx, (vals * 10).astype(np.int64), (7, 6), device=device)
    ti = torch.sparse_coo_tensor(_tt(torch, idx), _tt(torch, (vals * 10).astype(np.int64)), (7, 6))
    di = rng.integers(-3, 4, (6, 2))
    np.testing.assert_array_equal(_np(F.sparse.mm(ints, F.tensor(di, device=device))),
                                  torch.sparse.mm(ti, _tt(torch, di)).numpy())


@pytest.mark.parametrize("how", ["mm", "@", "sparse.mm", "vector"])
def test_dense_times_sparse_matches_torch(how, torch, device):
    rng = np.random.default_rng(6)
    idx, vals = _coo_case(rng, (4, 5), 8)
    dense = rng.standard_normal(4 if how == "vector" else (3, 4))
    s = F.sparse_coo_tensor(idx, vals, (4, 5), device=device, requires_grad=True)
    d = F.tensor(dense, device=device, requires_grad=True)
    out = {"mm": F.mm, "@": lambda a, b: a @ b, "sparse.mm": F.sparse.mm,
           "vector": F.matmul}[how](d, s)
    out.sum().backward()
    ts = torch.sparse_coo_tensor(_tt(torch, idx), _tt(torch, vals), (4, 5))
    td = _tt(torch, dense, requires_grad=True)
    tout = torch.matmul(td, ts)
    tout.sum().backward()
    np.testing.assert_allclose(_np(out), tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_np(d.grad), td.grad.numpy(), rtol=1e-12, atol=1e-12)
    # the sparse operand's gradient, on its pattern: (d^T @ 1)[i, j] at each stored (i, j)
    ones = np.ones(5) if how == "vector" else np.ones((3, 5))
    full = np.outer(dense, ones) if how == "vector" else dense.T @ ones
    c = s.grad.coalesce()
    np.testing.assert_allclose(_np(c.values()), full[tuple(_np(c.indices()))], rtol=1e-12)


# ---------------------------------------------------------------------- sums and softmax
@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 1), (0, 2), (1, 2), 2])
def test_sparse_sum_matches_torch(dim, torch, device):
    rng = np.random.default_rng(7)
    idx, vals = _coo_case(rng, (4, 3), 8, dense_shape=(2,))
    s = F.sparse_coo_tensor(idx, vals, (4, 3, 2), device=device, requires_grad=True)
    ts = torch.sparse_coo_tensor(_tt(torch, idx), _tt(torch, vals), (4, 3, 2), requires_grad=True)
    args = () if dim is None else (dim,)
    out, tout = F.sparse.sum(s, *args), torch.sparse.sum(ts, *args)
    assert out.is_sparse == tout.is_sparse
    if out.is_sparse:
        assert out.is_coalesced()
        _assert_same_sparse(out, tout, torch, coalesce=False)
        w = rng.standard_normal(tuple(out.shape))
        (out.to_dense() * F.tensor(w, device=device)).sum().backward()
        (tout.to_dense() * _tt(torch, w)).sum().backward()
    else:
        np.testing.assert_allclose(_np(out), tout.detach().numpy(), rtol=1e-12)
        w = rng.standard_normal(tuple(out.shape))
        (out * F.tensor(w, device=device)).sum().backward()
        (tout * _tt(torch, w)).sum().backward()
    _assert_same_sparse(s.grad, ts.grad, torch)
    if dim is not None and not isinstance(dim, tuple):
        m = s.detach().sum(dim)  # the method is sparse.sum too
        assert m.is_sparse == out.is_sparse


def test_sparse_sum_dtypes_match_torch(torch):
    for dt in ("int32", "bool", "float64"):
        s = F.sparse_coo_tensor([[1, 0, 1], [0, 1, 0]], F.tensor([1, 2, 3]).to(getattr(F, dt)))
        ts = torch.sparse_coo_tensor([[1, 0, 1], [0, 1, 0]],
                                     torch.tensor([1, 2, 3]).to(getattr(torch, dt)))
        for args in [(), (0,), ((0, 1),)]:
            o, t = F.sparse.sum(s, *args), torch.sparse.sum(ts, *args)
            assert o.dtype.name == str(t.dtype).split(".")[1], (dt, args)
            np.testing.assert_array_equal(_np(o.to_dense()), t.to_dense().numpy())
    s = F.sparse_coo_tensor([[0, 1]], [1.0, 2.0])
    assert F.sparse.sum(s, dtype=F.float64).dtype is F.float64
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times"):
        F.sparse.sum(F.sparse_coo_tensor([[0], [0]], [1.0]), (0, 0))


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("case", ["2d_dim0", "2d_dim1", "3d_dim1", "hybrid_sparse_dim",
                                  "hybrid_dense_dim"])
def test_sparse_softmax_matches_torch(fn, case, torch, device):
    rng = np.random.default_rng(8)
    shape, dense_shape, dim = {"2d_dim0": ((5, 4), (), 0), "2d_dim1": ((5, 4), (), 1),
                               "3d_dim1": ((3, 4, 2), (), 1),
                               "hybrid_sparse_dim": ((4, 3), (2,), 0),
                               "hybrid_dense_dim": ((4, 3), (2,), 2)}[case]
    idx, vals = _coo_case(rng, shape, 10, dense_shape=dense_shape)
    vals = vals * 3
    size = shape + dense_shape
    s = F.sparse_coo_tensor(idx, vals, size, device=device, requires_grad=True)
    ts = torch.sparse_coo_tensor(_tt(torch, idx), _tt(torch, vals), size, requires_grad=True)
    out, tout = getattr(F.sparse, fn)(s, dim), getattr(torch.sparse, fn)(ts, dim)
    _assert_same_sparse(out, tout, torch, rtol=1e-10)
    w = rng.standard_normal(size)
    (out.to_dense() * F.tensor(w, device=device)).sum().backward()
    (tout.to_dense() * _tt(torch, w)).sum().backward()
    _assert_same_sparse(s.grad, ts.grad, torch, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------- finite differences
def _gc_values_dense():
    rng = np.random.default_rng(9)
    idx, vals = _coo_case(rng, (4, 3), 7)
    v = F.tensor(vals, requires_grad=True)
    d = F.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    return idx, v, d


def test_gradcheck_sparse_mm():
    idx, v, d = _gc_values_dense()
    e = F.tensor(np.random.default_rng(14).standard_normal((4, 2)), requires_grad=True)
    assert gradcheck(lambda v, d: F.sparse.mm(F.sparse_coo_tensor(idx, v, (4, 3)), d), (v, d))
    assert gradcheck(lambda v, e: e.t() @ F.sparse_coo_tensor(idx, v, (4, 3)), (v, e))
    assert gradcheck(lambda v, e: F.sparse_coo_tensor(idx, v, (4, 3)).t() @ e, (v, e))
    assert gradcheck(lambda v, d: F.matmul(F.sparse_coo_tensor(idx, v, (4, 3)), d[:, 0]),
                     (v, d))


def test_gradgradcheck_sparse_mm():
    idx, v, d = _gc_values_dense()
    assert gradgradcheck(lambda v, d: F.sparse.mm(F.sparse_coo_tensor(idx, v, (4, 3)), d),
                         (v, d))


def test_gradcheck_conversions_sums_softmax():
    idx, v, d = _gc_values_dense()

    def sp(v):
        return F.sparse_coo_tensor(idx, v, (4, 3))
    assert gradcheck(lambda v: sp(v).to_dense(), (v,))
    assert gradcheck(lambda v: sp(v).coalesce().values(), (v,))
    assert gradcheck(lambda v: F.sparse.sum(sp(v), 1).to_dense(), (v,))
    assert gradcheck(lambda v: F.sparse.sum(sp(v)), (v,))
    assert gradcheck(lambda v: F.sparse.softmax(sp(v), 1).to_dense(), (v,))
    assert gradcheck(lambda v: F.sparse.log_softmax(sp(v), 0).values(), (v,))
    assert gradcheck(lambda v: (sp(v) * 2.5 + sp(v).t().t()).to_dense(), (v,))
    x = F.tensor(np.random.default_rng(10).standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda x: (x * (x > 0)).to_sparse().to_dense(), (x,))
    assert gradcheck(lambda x: x.to_sparse(1).values(), (x,))


# ---------------------------------------------------------------------- pattern-keeping math
def test_transpose_scalar_math_and_addition_match_torch(torch, device):
    rng = np.random.default_rng(11)
    idx, vals = _coo_case(rng, (3, 4), 6)
    s = F.sparse_coo_tensor(idx, vals, (3, 4), device=device)
    ts = torch.sparse_coo_tensor(_tt(torch, idx), _tt(torch, vals), (3, 4))
    for ours, theirs in [(s.t(), ts.t()), (s.transpose(0, 1), ts.transpose(0, 1)),
                         (s * 2.5, ts * 2.5), (2.5 * s, 2.5 * ts), (s / 4, ts / 4),
                         (-s, -ts), (s + s.coalesce(), ts + ts.coalesce()),
                         (s.coalesce() + s.coalesce(), ts.coalesce() + ts.coalesce()),
                         (s * F.tensor(3.0, device=device), ts * torch.tensor(3.0))]:
        assert ours.is_sparse and tuple(ours.shape) == tuple(theirs.shape)
        _assert_same_sparse(ours, theirs, torch)
    assert s.t().is_coalesced() == ts.t().is_coalesced()
    assert s.coalesce().t().is_coalesced() == ts.coalesce().t().is_coalesced()
    assert (s.coalesce() * 2).is_coalesced() == (ts.coalesce() * 2).is_coalesced()
    assert (s.coalesce() + s.coalesce()).is_coalesced()
    d = rng.standard_normal((3, 4))
    np.testing.assert_allclose(_np(F.tensor(d, device=device) + s), (_tt(torch, d) + ts).numpy(),
                               rtol=1e-12)


def test_detach_clone_to_pickle_deepcopy(device):
    s = F.sparse_coo_tensor([[1, 0, 1], [0, 1, 0]], [1.0, 2.0, 3.0], device=device,
                            requires_grad=True)
    dt = s.detach()
    assert dt.is_sparse and not dt.requires_grad and s.requires_grad
    c = s.clone()
    assert c.is_sparse and c.grad_fn is not None
    np.testing.assert_array_equal(_np(c.to_dense()), _np(s.to_dense()))
    for other in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s)):
        assert other.is_sparse and other.requires_grad and other.is_leaf
        assert other.device.type == device and not other.is_coalesced()
        np.testing.assert_array_equal(_np(other._indices()), _np(s._indices()))
        np.testing.assert_array_equal(_np(other.to_dense()), _np(s.to_dense()))
    assert s.cpu().device.type == "cpu" and s.double().dtype is F.float64
    assert s.to(F.float64).is_sparse and s.to(F.float32) is s


def test_sparse_leaf_grad_is_on_its_coalesced_pattern(torch):
    # duplicates: the gradient of the tensor lives on the positions, once each, as in PyTorch
    s = F.sparse_coo_tensor([[1, 0, 1], [2, 1, 2]], [1.0, 2.0, 3.0], (3, 3), requires_grad=True)
    ts = torch.sparse_coo_tensor([[1, 0, 1], [2, 1, 2]], [1.0, 2.0, 3.0], (3, 3),
                                 requires_grad=True)
    w = np.arange(9.0).reshape(3, 3)
    (s.to_dense() * F.tensor(w)).sum().backward()
    (ts.to_dense() * _tt(torch, w.astype(np.float32))).sum().backward()
    assert s.grad.is_coalesced()
    _assert_same_sparse(s.grad, ts.grad, torch, coalesce=False)
    s.grad = None
    assert s.grad is None
    # backward from a sparse tensor takes a gradient of its shape; the grad setter projects
    s.backward(F.tensor(w))
    _assert_same_sparse(s.grad, ts.grad, torch, coalesce=False)
    s.grad = F.ones(3, 3).to_sparse()
    np.testing.assert_array_equal(_np(s.grad.to_dense()), [[0, 1, 0], [0, 0, 1], [0, 0, 0]])


def test_mm_and_matmul_stay_the_dense_ops_for_dense_operands():
    rng = np.random.default_rng(15)
    a, b, c = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    np.testing.assert_allclose(_np(F.matmul(F.tensor(a), F.tensor(b))), a @ b, rtol=1e-6)
    np.testing.assert_allclose(_np(F.mm(F.tensor(a[0]), F.tensor(b))), a[0] @ b, rtol=1e-6)
    np.testing.assert_allclose(_np(F.matmul(F.tensor(a), F.tensor(c))), a @ c, rtol=1e-6)
    with pytest.raises(RuntimeError, match="mm: expected 2D tensors"):
        F.mm(F.tensor(a), F.tensor(b))


# ---------------------------------------------------------------------- bad input
def test_bad_construction_input_gives_clear_errors():
    with pytest.raises(RuntimeError, match=r"index 3 is out of range for dim 0 of size 2 "
                                           r"\(size \(2, 2\)\)"):
        F.sparse_coo_tensor([[0, 3], [1, 0]], [1.0, 2.0], (2, 2))
    with pytest.raises(RuntimeError, match="negative index -1 for dim 0"):
        F.sparse_coo_tensor([[0, -1], [1, 0]], [1.0, 2.0], (2, 2))
    with pytest.raises(RuntimeError, match=r"indices of shape \[2, 2\] \(nnz 2\) and values of "
                                           r"shape \[3\] \(nnz 3\)"):
        F.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0, 3.0], (2, 2))
    with pytest.raises(RuntimeError, match=r"size \(2,\) has 1 dims, but indices give 2 sparse"):
        F.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (2,))
    with pytest.raises(RuntimeError, match=r"must be sparse_dim x nnz.*got shape \[2\]"):
        F.sparse_coo_tensor([0, 1], [1.0, 2.0], (2, 2))
    with pytest.raises(RuntimeError, match="indices must be integers"):
        F.sparse_coo_tensor([[0.5, 1.0]], [1.0, 2.0])
    with pytest.raises(RuntimeError, match="indices must be an int64 tensor, got float32"):
        F.sparse_coo_tensor(F.tensor([[0.0, 1.0]]), [1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"values of shape \[2, 3\] do not match the dense "
                                           r"dims \[4\]"):
        F.sparse_coo_tensor([[0, 1]], F.zeros(2, 3), (2, 4))
    with pytest.raises(RuntimeError, match="is_coalesced=True but the indices are not sorted"):
        F.sparse_coo_tensor([[1, 0]], [1.0, 2.0], is_coalesced=True)
    with pytest.raises(TypeError, match="sparse_coo_tensor"):
        F.sparse.SparseCOOTensor()


@pytest.mark.parametrize("call,name", [
    (lambda s: s.exp(), "exp"), (lambda s: F.exp(s), "exp"), (lambda s: s.view(-1), "view"),
    (lambda s: s[0], "__getitem__"), (lambda s: F.sum(s), "sum"), (lambda s: s.mean(), "mean"),
    (lambda s: s.add_(1), "add_"), (lambda s: F.nn.functional.relu(s), "relu"),
    (lambda s: F.cat([s, s]), "cat"), (lambda s: s.numpy(), "numpy"), (lambda s: s.T, "T"),
    (lambda s: F.nn.Linear(3, 2)(s), "linear")])
def test_dense_ops_on_a_sparse_tensor_raise_naming_the_op(call, name):
    s = F.sparse_coo_tensor([[0, 1], [1, 2]], [1.0, 2.0], (2, 3))
    with pytest.raises(RuntimeError, match=rf"^{name}: got a sparse COO tensor.*sparse COO "
                                           r"tensors support: coalesce"):
        call(s)


def test_bad_products_and_arithmetic_give_clear_errors():
    s = F.sparse_coo_tensor([[0, 1], [1, 2]], [1.0, 2.0], (2, 3))
    with pytest.raises(RuntimeError, match=r"shapes cannot be multiplied \(2x3 and 4x2\)"):
        F.sparse.mm(s, F.zeros(4, 2))
    with pytest.raises(RuntimeError, match="same dtype.*float32 \\(sparse\\) and float64"):
        s @ F.zeros(3, 2, dtype=F.float64)
    with pytest.raises(NotImplementedError, match="two sparse tensors"):
        s @ s.t()
    with pytest.raises(RuntimeError, match="expected 2D tensors"):
        F.mm(s, F.zeros(3))
    with pytest.raises(RuntimeError, match="2-D matrix with no dense dims"):
        F.sparse_coo_tensor([[0]], F.zeros(1, 2)) @ F.zeros(2, 2)
    with pytest.raises(RuntimeError, match=r"add\(sparse, dense\) is not supported"):
        s + F.zeros(2, 3)
    with pytest.raises(NotImplementedError, match="only by a scalar"):
        s * F.zeros(2, 3)
    with pytest.raises(RuntimeError, match="shapes .* cannot be added"):
        s + s.t()
    with pytest.raises(RuntimeError, match="dtype argument is not supported"):
        s.to_dense(F.float64)
    with pytest.raises(TypeError, match="expected a sparse COO tensor"):
        F.sparse.sum(F.zeros(2))


# ---------------------------------------------------------------------- a GCN layer
def _gcn_graph(rng, n=12):
    edges = {(i, (i + 1) % n) for i in range(n)} | {tuple(rng.integers(0, n, 2)) for _ in range(10)}
    edges = {(a, b) for a, b in edges if a != b}
    edges |= {(b, a) for a, b in edges} | {(i, i) for i in range(n)}  # symmetric, self loops
    idx = np.array(sorted(edges)).T
    deg = np.bincount(idx[0], minlength=n).astype(np.float64)
    w = 1.0 / np.sqrt(deg[idx[0]] * deg[idx[1]])  # D^-1/2 (A + I) D^-1/2
    return idx, w


def test_gcn_trains_like_torch(torch, device):
    rng = np.random.default_rng(12)
    n, f_in, hidden, classes = 12, 6, 8, 3
    idx, w = _gcn_graph(rng, n)
    x = rng.standard_normal((n, f_in)).astype(np.float32)
    y = rng.integers(0, classes, n)
    w1 = (rng.standard_normal((f_in, hidden)) * 0.5).astype(np.float32)
    w2 = (rng.standard_normal((hidden, classes)) * 0.5).astype(np.float32)

    def run(lib, A, X, Y, W1, W2):
        opt = lib.optim.Adam([W1, W2], lr=0.05)
        losses = []
        for _ in range(6):
            opt.zero_grad()
            h = lib.relu(A @ (X @ W1))
            logits = lib.sparse.mm(A, h) @ W2
            loss = lib.nn.functional.cross_entropy(logits, Y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    A = F.sparse_coo_tensor(idx, w.astype(np.float32), (n, n), device=device)
    W1 = F.tensor(w1, device=device, requires_grad=True)
    W2 = F.tensor(w2, device=device, requires_grad=True)
    ours = run(F, A, F.tensor(x, device=device), F.tensor(y, device=device), W1, W2)
    tA = torch.sparse_coo_tensor(_tt(torch, idx), _tt(torch, w.astype(np.float32)), (n, n))
    tW1, tW2 = _tt(torch, w1, requires_grad=True), _tt(torch, w2, requires_grad=True)
    theirs = run(torch, tA, _tt(torch, x), _tt(torch, y), tW1, tW2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert ours[-1] < ours[0]
    np.testing.assert_allclose(_np(W1), tW1.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(W2), tW2.detach().numpy(), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------- GPU (cupyx backend)
@pytest.mark.cuda
def test_cuda_products_use_cupyx_and_agree_with_cpu():
    if not F.cuda.is_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    import cupyx.scipy.sparse as csp
    rng = np.random.default_rng(13)
    idx, vals = _coo_case(rng, (6, 5), 12)
    dense = rng.standard_normal((5, 3))
    results = {}
    for dev in ("cpu", "cuda"):
        s = F.sparse_coo_tensor(idx, vals, (6, 5), device=dev, requires_grad=True)
        d = F.tensor(dense, device=dev, requires_grad=True)
        out = F.sparse.mm(s, d)
        (out * out).sum().backward()
        sm = F.sparse.softmax(s.detach(), 1).to_dense()
        results[dev] = (_np(out), _np(d.grad), _np(s.grad.values()), _np(sm),
                        _np(s.detach().coalesce().to_dense()))
        if dev == "cuda":
            assert out.device.type == "cuda" and s.grad.device.type == "cuda"
            assert isinstance(s.detach()._pattern().matrix(s._vt._data), csp.csr_matrix)
    for a, b in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # float32 and integer values (cuSPARSE multiplies ints as float64)
    s32 = F.sparse_coo_tensor(idx, vals, (6, 5), dtype=F.float32, device="cuda")
    np.testing.assert_allclose(_np(s32 @ F.tensor(dense, dtype=F.float32, device="cuda")),
                               _np(s32.cpu().to_dense()) @ dense.astype(np.float32),
                               rtol=1e-5, atol=1e-5)
    si = F.sparse_coo_tensor(idx, np.arange(12), (6, 5), device="cuda")
    di = rng.integers(-3, 4, (5, 2))
    np.testing.assert_array_equal(_np(si @ F.tensor(di, device="cuda")),
                                  _np(si.cpu().to_dense()) @ di)
