"""Edge cases of the shape, indexing, linalg and search extras that the op table
(tests/optable_shape.py) does not reach: error messages, bool masks, duplicate indices,
in-place forms and views, the CuPy code paths run on NumPy, and the gradient conventions at
non-differentiable points."""
from __future__ import annotations

import math

import numpy as np
import pytest

import framework
from conftest import torch_or_skip
from framework.ops.indexing_extra import _reduce_by_rounds
from framework.ops.search import _rows_search

_NAMES = ("index_put index_put_ masked_scatter masked_scatter_ scatter_reduce scatter_reduce_ "
          "index_reduce index_reduce_ select_scatter slice_scatter diagonal_scatter as_strided "
          "as_strided_ narrow_copy dstack column_stack row_stack atleast_2d atleast_3d hsplit "
          "vsplit dsplit block_diag cartesian_prod combinations meshgrid rot90 vander kron cdist "
          "cross baddbmm baddbmm_ addbmm addbmm_ addmv addmv_ addr addr_ searchsorted bucketize "
          "unique_consecutive").split()


def _np(t):
    return t.detach().cpu().numpy()


def _t(vals, device, **kw):
    return framework.tensor(vals, device=device, **kw)


def test_functions_and_methods_are_where_torch_has_them():
    torch = torch_or_skip()
    for name in _NAMES:
        assert hasattr(framework.Tensor, name) == hasattr(torch.Tensor, name), name
        if not name.endswith("_"):
            assert callable(getattr(framework, name)), name


# ---------------------------------------------------------------------------------- index_put
def test_index_put_accumulate_sums_duplicates(device):
    x = framework.zeros(3, device=device)
    out = x.index_put((_t([0, 2, 0, 0], device),), _t([1.0, 2.0, 3.0, 4.0], device),
                      accumulate=True)
    assert _np(out).tolist() == [8.0, 0.0, 2.0]
    assert _np(x).tolist() == [0.0, 0.0, 0.0]  # out of place


def test_index_put_accumulate_gradient_with_duplicates(device):
    x = framework.zeros(3, device=device, requires_grad=True)
    v = framework.ones(4, device=device, requires_grad=True)
    out = x.index_put((_t([0, 2, 0, 0], device),), v, accumulate=True)
    gx, gv = framework.autograd.grad(out, (x, v), _t([1.0, 2.0, 3.0], device))
    assert _np(gx).tolist() == [1.0, 2.0, 3.0]
    assert _np(gv).tolist() == [1.0, 3.0, 1.0, 1.0]


def test_index_put_bool_mask_and_errors(device):
    x = framework.zeros(2, 3, device=device)
    mask = _t([[True, False, True], [False, False, True]], device)
    out = x.index_put((mask,), _t([1.0, 2.0, 3.0], device))
    assert _np(out).tolist() == [[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]
    with pytest.raises(IndexError, match=r"mask \[3\] at index 0 .* tensor \[2, 3\] at index 0"):
        x.index_put((_t([True, False, True], device),), _t(1.0, device))
    with pytest.raises(RuntimeError, match=r"value tensor of shape \[2\] cannot be broadcast to "
                                           r"indexing result of shape \[3\]"):
        x.index_put((mask,), _t([1.0, 2.0], device))
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        x.index_put((_t([0], device),) * 3, _t(1.0, device))
    with pytest.raises(IndexError, match="index 2 is out of bounds for dimension 0 with size 2"):
        x.index_put((_t([2], device),), _t(1.0, device))
    with pytest.raises(IndexError, match=r"could not be broadcast together with shapes \[2\], "
                                         r"\[3\]"):
        x.index_put((_t([0, 1], device), _t([0, 1, 2], device)), _t(1.0, device))
    with pytest.raises(IndexError, match="must be long, int, byte or bool"):
        x.index_put((_t([0.0], device),), _t(1.0, device))
    with pytest.raises(RuntimeError, match="got float32 for the destination and float64"):
        x.index_put((_t([0], device),), _t(1.0, device, dtype=framework.float64))
    with pytest.raises(TypeError, match="element 0 of indices, but got NoneType"):
        x.index_put((None,), _t(1.0, device))
    with pytest.raises(TypeError, match="must be Tensor, not float"):
        x.index_put((_t([0], device),), 1.0)


def test_index_put_inplace_keeps_identity_and_bumps_version(device):
    x = framework.zeros(2, 2, device=device)
    v0 = x._version
    y = x.index_put_((_t([1], device), _t([0], device)), _t(5.0, device), accumulate=True)
    assert y is x and x._version > v0
    assert _np(x).tolist() == [[0.0, 0.0], [5.0, 0.0]]


# ---------------------------------------------------------------------------------- masked_scatter
def test_masked_scatter_takes_source_in_order_and_errors(device):
    x = framework.zeros(2, 3, device=device)
    mask = _t([[False, True, True], [True, False, False]], device)
    out = x.masked_scatter(mask, _t([[1.0, 2.0], [3.0, 4.0]], device))
    assert _np(out).tolist() == [[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]]
    with pytest.raises(RuntimeError, match=r"source \(2\) < number of ones in mask \(3\)"):
        x.masked_scatter(mask, _t([1.0, 2.0], device))
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        x.masked_scatter(mask.long(), _t([1.0, 2.0, 3.0], device))
    with pytest.raises(RuntimeError, match="same dtypes but got float32 and float64"):
        x.masked_scatter(mask, _t([1.0, 2.0, 3.0], device, dtype=framework.float64))
    with pytest.raises(RuntimeError, match=r"\[2, 3\] and \[2\] cannot be broadcast"):
        x.masked_scatter(_t([True, False], device), _t([1.0], device))


def test_masked_scatter_0d(device):
    x = _t(1.0, device)
    assert _np(x.masked_scatter(_t(True, device), _t([7.0, 8.0], device))) == 7.0
    assert _np(x.masked_scatter(_t(False, device), _t([7.0], device))) == 1.0


# ---------------------------------------------------------------------------------- scatter_reduce
def test_scatter_reduce_errors(device):
    x = framework.zeros(3, 4, device=device)
    idx = _t([[0, 1, 0], [2, 2, 1]], device)
    with pytest.raises(RuntimeError, match=r"index \[2, 3\] to be no larger than self \[3, 4\] "
                                           r"apart from dimension 1 and to be no larger size "
                                           r"than src \[2, 2\]"):
        x.scatter_reduce(1, idx, framework.ones(2, 2, device=device), "sum")
    with pytest.raises(RuntimeError, match="must be either sum, prod, mean, amax or amin, got max"):
        x.scatter_reduce(1, idx, framework.ones(2, 3, device=device), "max")
    with pytest.raises(RuntimeError, match="same dtype, but got float32 and float64"):
        x.scatter_reduce(1, idx, framework.ones(2, 3, device=device, dtype=framework.float64),
                         "sum")
    with pytest.raises(RuntimeError, match="index 5 is out of bounds for dimension 1 with size 4"):
        x.scatter_reduce(1, idx + 3, framework.ones(2, 3, device=device), "sum")
    with pytest.raises(RuntimeError, match="Expected reduce to be one of prod, mean, amax or amin"):
        x.index_reduce(0, _t([0], device), framework.ones(1, 4, device=device), "sum")
    with pytest.raises(RuntimeError, match=r"Got self.shape = \[3, 4\] source.shape = \[1, 3\]"):
        x.index_reduce(0, _t([0], device), framework.ones(1, 3, device=device), "amax")
    with pytest.raises(IndexError, match="index out of range for dimension 0 with size 3"):
        x.index_reduce(0, _t([3], device), framework.ones(1, 4, device=device), "amax")


def test_scatter_reduce_amax_refuses_an_output_modified_in_place(device):
    x = framework.zeros(3, device=device, requires_grad=True)
    out = x.scatter_reduce(0, _t([0, 0], device), _t([1.0, 2.0], device), "amax")
    out.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_scatter_reduce_prod_two_zeros_like_torch(device):
    """Two zeros scattered into one element: the first gradient is PyTorch's; the second,
    which PyTorch does not define, raises."""
    torch = torch_or_skip()
    xs, ss, idx = [[2.0, 3.0]], [[0.0, 4.0, 0.0]], [[0, 0, 0]]
    x = _t(xs, device, dtype=framework.float64).requires_grad_()
    s = _t(ss, device, dtype=framework.float64).requires_grad_()
    out = x.scatter_reduce(1, _t(idx, device), s, "prod")
    got = framework.autograd.grad(out.sum(), (x, s))
    tx = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    ts = torch.tensor(ss, dtype=torch.float64, requires_grad=True)
    want = torch.autograd.grad(tx.scatter_reduce(1, torch.tensor(idx), ts, "prod").sum(),
                               (tx, ts))
    for g, w in zip(got, want):
        np.testing.assert_allclose(_np(g), w.numpy())
    out = x.scatter_reduce(1, _t(idx, device), s, "prod")
    with pytest.raises(NotImplementedError, match="Double backward is unsupported"):
        framework.autograd.grad(out.sum(), (x, s), create_graph=True)


def test_reduce_by_rounds_matches_ufunc_at():
    """The CuPy path of scatter_reduce's prod/amax/amin, run on NumPy."""
    rng = np.random.default_rng(0)
    for ufunc in (np.multiply, np.maximum, np.minimum):
        out = rng.uniform(0.5, 1.5, (4, 5))
        lin = rng.integers(0, 20, 50)
        vals = rng.uniform(0.5, 1.5, 50)
        want = out.copy().reshape(-1)
        ufunc.at(want, lin, vals)
        _reduce_by_rounds(np, out, lin, vals, ufunc)
        np.testing.assert_allclose(out.reshape(-1), want, rtol=1e-12)
    empty = np.ones(3)
    _reduce_by_rounds(np, empty, np.zeros(0, np.int64), np.zeros(0), np.multiply)
    assert empty.tolist() == [1.0, 1.0, 1.0]


# ---------------------------------------------------------------------------------- *_scatter
def test_scatter_into_slices_errors(device):
    x = framework.zeros(3, 4, device=device)
    with pytest.raises(RuntimeError, match=r"src size = \[4\], slice size = \[3\]"):
        framework.select_scatter(x, framework.ones(4, device=device), 1, 0)
    with pytest.raises(IndexError, match=r"index 7 out of range for tensor of size \[3, 4\]"):
        framework.select_scatter(x, framework.ones(3, device=device), 1, 7)
    with pytest.raises(RuntimeError, match=r"src size = \[3, 3\], slice size = \[3, 2\]"):
        framework.slice_scatter(x, framework.ones(3, 3, device=device), 1, 0, 4, 2)
    with pytest.raises(RuntimeError, match="slice step must be positive"):
        framework.slice_scatter(x, framework.ones(3, 2, device=device), 1, step=-1)
    with pytest.raises(RuntimeError, match=r"src size = \[2\], slice size = \[3\]"):
        framework.diagonal_scatter(x, framework.ones(2, device=device))
    with pytest.raises(RuntimeError, match="diagonal dimensions cannot be identical"):
        framework.diagonal_scatter(x, framework.ones(3, device=device), 0, 1, 1)
    out = framework.slice_scatter(x, framework.ones(0, 4, device=device), 0, 5, 9)
    assert _np(out).tolist() == _np(x).tolist()


# ---------------------------------------------------------------------------------- as_strided
def test_as_strided_is_a_view_of_a_contiguous_tensor(device):
    x = framework.arange(12.0, device=device).reshape(3, 4)
    v = x.as_strided((2, 2), (4, 1), 1)
    assert _np(v).tolist() == [[1.0, 2.0], [5.0, 6.0]]
    v[0, 0] = 100.0
    assert _np(x)[0, 1] == 100.0 and v._version == x._version
    y = framework.arange(6.0, device=device)
    assert y.as_strided_((2, 2), (1, 2)) is y
    assert y.shape == (2, 2) and _np(y).tolist() == [[0.0, 2.0], [1.0, 3.0]]


def test_as_strided_errors(device):
    x = framework.arange(12.0, device=device)
    with pytest.raises(RuntimeError, match=r"sizes \[3, 3\], strides \[4, 1\], storage offset 3, "
                                           r"and itemsize 4 requiring a storage size of 56 are "
                                           r"out of bounds for storage of size 48"):
        x.as_strided((3, 3), (4, 1), 3)
    with pytest.raises(RuntimeError, match="Negative strides are not supported"):
        x.as_strided((2, 2), (-1, 1))
    with pytest.raises(RuntimeError, match=r"mismatch in length of strides and shape"):
        x.as_strided((2, 2), (1,))
    with pytest.raises(RuntimeError, match="negative sizes"):
        x.as_strided((2, -2), (1, 1))
    assert x.as_strided((0, 4), (4, 1), 100).shape == (0, 4)


def test_as_strided_overlapping_gradient_counts_each_use(device):
    x = framework.arange(4.0, device=device, dtype=framework.float64).requires_grad_()
    (g,) = framework.autograd.grad(x.as_strided((3, 2), (1, 1)).sum(), x)
    assert _np(g).tolist() == [1.0, 2.0, 2.0, 1.0]


# ---------------------------------------------------------------------------------- stacking
def test_split_and_stack_errors(device):
    x = framework.ones(2, 6, device=device)
    with pytest.raises(RuntimeError, match="dimension 6 is not divisible by the split_size 4"):
        x.hsplit(4)
    with pytest.raises(RuntimeError, match="hsplit requires a tensor with at least 1 dimension"):
        framework.tensor(1.0, device=device).hsplit(1)
    with pytest.raises(RuntimeError, match="vsplit requires a tensor with at least 2 dimension"):
        framework.ones(6, device=device).vsplit(2)
    with pytest.raises(RuntimeError, match="dsplit requires a tensor with at least 3 dimension"):
        x.dsplit(2)
    with pytest.raises(RuntimeError, match="dstack expects a non-empty TensorList"):
        framework.dstack([])
    with pytest.raises(RuntimeError, match="column_stack expects a non-empty TensorList"):
        framework.column_stack([])
    with pytest.raises(RuntimeError, match="Input 0 has 3 dimensions"):
        framework.block_diag(framework.ones(1, 2, 3, device=device))
    assert framework.block_diag().shape == (1, 0)
    assert framework.atleast_2d() == ()


def test_meshgrid_cartesian_combinations_errors(device):
    a = framework.arange(3.0, device=device)
    gi, gj = framework.meshgrid(a, framework.arange(2.0, device=device))  # default: 'ij'
    assert gi.shape == gj.shape == (3, 2)
    with pytest.raises(RuntimeError, match='indexing must be one of "xy" or "ij", but received: '
                                           'foo'):
        framework.meshgrid(a, indexing="foo")
    with pytest.raises(RuntimeError, match="meshgrid expects a non-empty TensorList"):
        framework.meshgrid(indexing="ij")
    with pytest.raises(RuntimeError, match="same dtype, got float32, int64"):
        framework.meshgrid(a, framework.arange(2, device=device), indexing="ij")
    with pytest.raises(RuntimeError, match=r"Expected 0D or 1D tensor .* shape \[2, 3\]"):
        framework.meshgrid(framework.ones(2, 3, device=device), indexing="ij")
    with pytest.raises(RuntimeError, match=r"Expect a 1D vector, but got shape \[\]"):
        framework.cartesian_prod(framework.tensor(1.0, device=device), a)
    with pytest.raises(RuntimeError, match="Expect a non-negative number, but got -1"):
        framework.combinations(a, -1)
    assert framework.combinations(framework.ones(0, device=device)).shape == (0, 2)


def test_rot90_and_vander_errors(device):
    x = framework.ones(2, 3, device=device)
    with pytest.raises(RuntimeError, match="expected total rotation dims == 2, but got dims = 3"):
        x.rot90(1, (0, 1, 2))
    with pytest.raises(RuntimeError, match="expected total dims >= 2, but got total dims = 1"):
        framework.ones(3, device=device).rot90()
    with pytest.raises(RuntimeError, match="dim0 = 0 and dim1 = 0"):
        x.rot90(1, (0, 0))
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.rot90(1, (0, 2))
    with pytest.raises(RuntimeError, match="x must be a one-dimensional tensor"):
        framework.vander(x)
    with pytest.raises(RuntimeError, match="N must be non-negative"):
        framework.vander(framework.ones(2, device=device), -1)


def test_vander_gradient_at_zero_is_exact(device):
    x = _t([0.0, 2.0], device, dtype=framework.float64).requires_grad_()
    (g,) = framework.autograd.grad(framework.vander(x, 4).sum(), x)
    # d/dx (x^3 + x^2 + x + 1) = 3x^2 + 2x + 1
    assert _np(g).tolist() == [1.0, 17.0]


# ---------------------------------------------------------------------------------- linalg
def test_linalg_errors_name_both_shapes(device):
    a, b = framework.ones(2, 4, device=device), framework.ones(3, 3, device=device)
    with pytest.raises(RuntimeError, match="X1: 4 X2: 3"):
        framework.cdist(a, b)
    with pytest.raises(RuntimeError, match="at least 2D tensors, X1 got: 1D"):
        framework.cdist(framework.ones(3, device=device), b)
    with pytest.raises(RuntimeError, match="only supports non-negative p values"):
        framework.cdist(b, b, p=-1)
    with pytest.raises(RuntimeError, match="floating-point dtypes, X1 got: int64"):
        framework.cdist(b.long(), b.long())
    with pytest.raises(ValueError, match="foo is not a valid value for compute_mode"):
        framework.cdist(b, b, compute_mode="foo")
    with pytest.raises(RuntimeError, match=r"inputs dimension 1 must have length 3. Got 4 and 4"):
        framework.cross(a, a, dim=1)
    with pytest.raises(RuntimeError, match=r"same number of dimensions, got \[3, 3\] and \[3\]"):
        framework.cross(b, framework.ones(3, device=device))
    with pytest.raises(RuntimeError, match="no dimension of size 3"):
        framework.cross(a, a)
    b1, b2 = framework.ones(2, 3, 4, device=device), framework.ones(2, 3, 5, device=device)
    with pytest.raises(RuntimeError, match=r"batch2 tensor to be: \[2, 4\] but got: \[2, 3\]"):
        framework.baddbmm(framework.ones(3, 5, device=device), b1, b2)
    with pytest.raises(RuntimeError, match="batch1 must be a 3D tensor, got 2D"):
        framework.addbmm(framework.ones(3, 5, device=device), a, b2)
    with pytest.raises(RuntimeError, match="same number of batches, got 2 and 1"):
        framework.baddbmm(framework.ones(3, 5, device=device), b1, framework.ones(1, 4, 5,
                                                                                 device=device))
    with pytest.raises(RuntimeError, match=r"size mismatch, got input \(3\), mat \(3x4\), vec "
                                           r"\(3\)"):
        framework.addmv(framework.ones(3, device=device), framework.ones(3, 4, device=device),
                        framework.ones(3, device=device))
    with pytest.raises(RuntimeError, match="Expected 1-D argument vec1, but got 2-D"):
        framework.addr(b, b, framework.ones(3, device=device))
    with pytest.raises(RuntimeError, match="alpha and beta must not be floating point"):
        framework.addr(b.long(), framework.ones(3, device=device).long(),
                       framework.ones(3, device=device).long(), alpha=0.5)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        framework.ones(5, device=device).baddbmm_(b1, framework.ones(2, 4, 5, device=device))


def test_beta_zero_ignores_nan_input(device):
    nan = framework.full((3, 5), math.nan, device=device)
    b1, b2 = framework.ones(2, 3, 4, device=device), framework.ones(2, 4, 5, device=device)
    assert (_np(framework.baddbmm(nan, b1, b2, beta=0)) == 4.0).all()
    assert (_np(framework.addbmm(nan, b1, b2, beta=0, alpha=2)) == 16.0).all()


def test_cdist_gradient_is_zero_at_zero_distance(device):
    for p in (0.5, 1.0, 1.5, 2.0, 3.0):
        for rows in (2, 30):  # 30 rows: the matrix-product path (p=2)
            x = framework.randn(rows, 3, device=device, dtype=framework.float64)
            x = x.requires_grad_()
            (g,) = framework.autograd.grad(framework.cdist(x, x.detach(), p=p).sum(), x)
            assert np.isfinite(_np(g)).all(), (p, rows)
    torch = torch_or_skip()
    xs = [[0.0, 0.0], [1.0, 1.0]]
    ys = [[0.0, 0.0], [1.0, 2.0]]
    for p in (0.5, 1.5, 2.0, 3.0, math.inf):
        a = _t(xs, device).requires_grad_()
        b = _t(ys, device).requires_grad_()
        got = framework.autograd.grad(framework.cdist(a, b, p=p).sum(), (a, b))
        ta, tb = (torch.tensor(v, requires_grad=True) for v in (xs, ys))
        want = torch.autograd.grad(torch.cdist(ta, tb, p=p).sum(), (ta, tb))
        for g, w in zip(got, want):
            np.testing.assert_allclose(_np(g), w.numpy(), rtol=1e-5, atol=1e-6, err_msg=str(p))


# ---------------------------------------------------------------------------------- search
def test_rows_search_matches_a_search_per_row():
    """searchsorted on N-d sequences (one flattened search), against NumPy row by row."""
    rng = np.random.default_rng(0)
    seq = np.sort(rng.integers(0, 6, (3, 2, 7)), -1).astype(np.float64)
    vals = rng.integers(-1, 8, (3, 2, 5)).astype(np.float64)
    for side in ("left", "right"):
        got = _rows_search(np, seq, vals, side)
        want = np.stack([np.searchsorted(s, v, side=side)
                         for s, v in zip(seq.reshape(-1, 7), vals.reshape(-1, 5))])
        assert (got == want.reshape(got.shape)).all()


def test_searchsorted_errors(device):
    s = _t([1.0, 3.0, 5.0], device)
    rows = _t([[1.0, 3.0], [2.0, 4.0]], device)
    with pytest.raises(RuntimeError, match="side and right can't be set to opposites"):
        framework.searchsorted(s, s, side="left", right=True)
    with pytest.raises(RuntimeError, match="side can only be 'left' or 'right' but got up"):
        framework.searchsorted(s, s, side="up")
    with pytest.raises(RuntimeError, match=r"boundaries tensor \[2, 2\] and input value tensor "
                                           r"\[3, 1\]"):
        framework.searchsorted(rows, framework.ones(3, 1, device=device))
    with pytest.raises(RuntimeError, match="can be a scalar only when boundaries tensor "
                                           "dimension is 1"):
        framework.searchsorted(rows, 2.0)
    with pytest.raises(RuntimeError, match="should have positive dimension"):
        framework.searchsorted(_t(1.0, device), s)
    with pytest.raises(RuntimeError, match=r"boundary tensor \[3\] and got sorter tensor \[2\]"):
        framework.searchsorted(s, s, sorter=_t([0, 1], device))
    with pytest.raises(RuntimeError, match="sorter must be a tensor of long dtype"):
        framework.searchsorted(s, s, sorter=_t([0, 1, 2], device, dtype=framework.int32))
    with pytest.raises(RuntimeError, match="sorter index out of range"):
        framework.searchsorted(s, s, sorter=_t([0, 1, 3], device))
    with pytest.raises(RuntimeError, match=r"boundaries tensor must be 1 dimension, but got "
                                           r"dim\(2\)"):
        framework.bucketize(s, rows)
    assert framework.searchsorted(s, _t([math.nan, math.inf], device)).tolist() == [3, 3]


def test_unique_consecutive_errors(device):
    with pytest.raises(IndexError, match="tensor has no dimensions"):
        framework.unique_consecutive(_t(1.0, device), dim=0)
    with pytest.raises(RuntimeError, match="0 sized dimensions, and they aren't selected"):
        framework.unique_consecutive(framework.ones(3, 0, device=device), dim=0)
    x = framework.rand(4, device=device, requires_grad=True)
    assert not framework.unique_consecutive(x).requires_grad


@pytest.mark.parametrize("indices", [[3, 12], [2, -3], [5, 2], [0, 10, 10]])
def test_tensor_split_indices_follow_slicing_like_torch(indices):
    torch = torch_or_skip()
    x = np.arange(10.0)
    ours = [t.tolist() for t in framework.tensor(x).tensor_split(indices)]
    theirs = [t.tolist() for t in torch.tensor(x).tensor_split(indices)]
    assert ours == theirs


def test_linalg_cross_and_vecdot_match_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    la, lb = framework.tensor(a, requires_grad=True), framework.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    for lf, tf in ((framework.linalg.cross, torch.linalg.cross),
                   (framework.linalg.vecdot, torch.linalg.vecdot)):
        ly, ty = lf(la, lb), tf(ta, tb)
        np.testing.assert_allclose(ly.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
        ly.sum().backward()
        ty.sum().backward()
    np.testing.assert_allclose(la.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(lb.grad.numpy(), tb.grad.numpy(), rtol=1e-12)
