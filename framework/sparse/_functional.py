"""Math on sparse COO tensors: the matrix product with a dense operand, sums, softmax, and the
elementwise forms that keep the sparsity pattern. Gradients flow to the values and to the
dense operands (see framework.ops.sparse)."""
from __future__ import annotations

import builtins

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ..ops._util import norm_dim
from ..ops.sparse import GatherRows, ScatterRows, SparseMM
from ._coo import SparseCOOTensor, _wrap

__all__ = ["mm", "spmm", "sum", "softmax", "log_softmax", "transpose", "mul", "div", "neg", "add",
           "sparse_dense_matmul", "dense_sparse_matmul"]

_SCALARS = (builtins.int, builtins.float, builtins.bool, np.number, np.bool_)


def _require_sparse(x, opname: str) -> SparseCOOTensor:
    if not isinstance(x, SparseCOOTensor):
        raise TypeError(f"{opname}: expected a sparse COO tensor, got "
                        f"{'a dense tensor' if isinstance(x, Tensor) else type(x).__name__}")
    return x


def _check_matrix(s: SparseCOOTensor, opname: str):
    if s.sparse_dim() != 2 or s.dense_dim() != 0:
        raise RuntimeError(f"{opname}: a sparse operand must be a 2-D matrix with no dense dims, "
                           f"got sparse_dim={s.sparse_dim()} and dense_dim={s.dense_dim()} "
                           f"(shape {list(s.shape)})")


def _check_dense(d, s: SparseCOOTensor, opname: str):
    if isinstance(d, SparseCOOTensor):
        raise NotImplementedError(f"{opname}: the product of two sparse tensors is not supported; "
                                  "convert one with .to_dense()")
    if not isinstance(d, Tensor):
        raise TypeError(f"{opname}: expected a tensor, got {type(d).__name__}")
    if d.dtype is not s.dtype:
        raise RuntimeError(f"{opname}: expected both operands to have the same dtype, but got "
                           f"{s.dtype.name} (sparse) and {d.dtype.name} (dense)")
    if d.device != s.device:
        raise RuntimeError(f"{opname}: expected all tensors to be on the same device, but found "
                           f"{s.device} (sparse) and {d.device} (dense)")
    if s.dtype.name == "bool":
        raise RuntimeError(f"{opname}: not implemented for bool tensors")


def _shape_error(a, b, opname: str) -> RuntimeError:
    return RuntimeError(f"{opname}: mat1 and mat2 shapes cannot be multiplied "
                        f"({'x'.join(map(str, a.shape))} and {'x'.join(map(str, b.shape))})")


def sparse_dense_matmul(s: SparseCOOTensor, d: Tensor, opname: str) -> Tensor:
    """s @ d for a 2-D sparse s and a dense d of 1 or 2 dims (differentiable in both)."""
    _check_matrix(s, opname)
    _check_dense(d, s, opname)
    if d.ndim not in (1, 2) or d.shape[0] != s.shape[1]:
        raise _shape_error(s, d, opname)
    out = SparseMM.apply(s._vt, d if d.ndim == 2 else d.reshape(-1, 1),
                         pattern=s._pattern(), transpose=False)
    return out if d.ndim == 2 else out.reshape(-1)


def dense_sparse_matmul(d: Tensor, s: SparseCOOTensor, opname: str) -> Tensor:
    """d @ s for a dense d of 1 or 2 dims and a 2-D sparse s, as (s^T @ d^T)^T."""
    _check_matrix(s, opname)
    _check_dense(d, s, opname)
    if d.ndim not in (1, 2) or d.shape[-1] != s.shape[0]:
        raise _shape_error(d, s, opname)
    dt = d.reshape(-1, 1) if d.ndim == 1 else d.t()
    out = SparseMM.apply(s._vt, dt, pattern=s._pattern(), transpose=True)
    return out.reshape(-1) if d.ndim == 1 else out.t()


def mm(mat1: Tensor, mat2: Tensor) -> Tensor:
    """mat1 @ mat2 with a sparse COO matrix on either side and a dense 2-D matrix on the
    other, as torch.sparse.mm. Gradients reach the dense operand and the sparse operand's
    values (so a sparse leaf's `.grad` is sparse, on its own pattern)."""
    for x in (mat1, mat2):
        if isinstance(x, Tensor) and x.ndim != 2:
            raise RuntimeError(f"sparse.mm: expected 2-D matrices, got {mat1.ndim}-D and "
                               f"{mat2.ndim}-D")
    if isinstance(mat1, SparseCOOTensor):
        return sparse_dense_matmul(mat1, mat2, "sparse.mm")
    if isinstance(mat2, SparseCOOTensor):
        return dense_sparse_matmul(mat1, mat2, "sparse.mm")
    from ..ops.linalg import mm as dense_mm
    return dense_mm(mat1, mat2)


spmm = mm


def _dims(dim, ndim: int, opname: str) -> tuple:
    dims = (dim,) if isinstance(dim, (builtins.int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        d = norm_dim(builtins.int(d), ndim, opname)
        if d in out:
            raise RuntimeError(f"{opname}: dim {d} appears multiple times in the list of dims")
        out.append(d)
    return tuple(out)


def sum(input: SparseCOOTensor, dim=None, dtype=None) -> Tensor:  # noqa: A001
    """Sum of a sparse tensor, as torch.sparse.sum: over everything (a dense 0-d tensor), or
    over `dim` (an int or a tuple): a dense tensor once every sparse dim is summed, else a
    coalesced sparse tensor over the remaining dims. Differentiable in the values."""
    s = _require_sparse(input, "sparse.sum")
    if dim is None:
        if s.dtype.name == "bool":  # duplicates OR together first, as PyTorch coalesces here
            s = s.coalesce()
        return (s._vt if dtype is None else s._vt.to(dtype=dtype)).sum()
    vt = s._vt if dtype is None else s._vt.to(dtype=dtype)
    dims = _dims(dim, s.ndim, "sparse.sum")
    sd = s.sparse_dim()
    dense_dims = tuple(d - sd + 1 for d in dims if d >= sd)
    if dense_dims:
        vt = vt.sum(dim=dense_dims)
    kept = [d for d in range(sd) if d not in dims]
    if not kept:
        return vt.sum(0)
    size = [s.shape[d] for d in kept] + [s.shape[d] for d in range(sd, s.ndim) if d not in dims]
    return _wrap(s._index[kept], vt, size, False).coalesce()


def _group_max(xp, groups, values, n: int):
    out = xp.full((n,) + values.shape[1:], -np.inf, values.dtype)
    if xp is np or hasattr(xp.maximum, "at"):
        xp.maximum.at(out, groups, values)
    else:  # CuPy before 13
        import cupyx
        cupyx.scatter_max(out, groups, values)
    return out


def _softmax(input, dim: int, dtype, log: bool, opname: str) -> SparseCOOTensor:
    s = _require_sparse(input, opname)
    if dtype is not None:
        s = s.to(dtype=dtype)
    if not s.is_floating_point():
        raise RuntimeError(f"{opname}: not implemented for {s.dtype.name} tensors")
    d = norm_dim(dim, s.ndim, opname)
    s = s.coalesce()
    sd = s.sparse_dim()
    if d >= sd:  # along a dense dim: within each entry's values
        vt = s._vt.log_softmax(d - sd + 1) if log else s._vt.softmax(d - sd + 1)
        return _wrap(s._index, vt, s.shape, True, like=s)
    # Along a sparse dim: over the entries that share every other sparse index; positions
    # with no entry count as -inf (they take no share and stay unspecified).
    xp = xp_of(s._index)
    others = [k for k in range(sd) if k != d]
    key = xp.zeros(s._nnz(), np.int64)
    for k in others:
        key *= s.shape[k]
        key += s._index[k]
    uniq, groups = xp.unique(key, return_inverse=True)
    groups = groups.reshape(-1)
    n = int(uniq.shape[0])
    vt = s._vt
    peak = _group_max(xp, groups, vt.detach()._data, n)[groups]
    z = vt - Tensor._make(peak, None, 0)
    e = z.exp()
    total = GatherRows.apply(ScatterRows.apply(e, index=groups, n=n, unique=False),
                             index=groups)
    out = z - total.log() if log else e / total
    return _wrap(s._index, out, s.shape, True, like=s)


def softmax(input: SparseCOOTensor, dim: int, dtype=None) -> SparseCOOTensor:
    """Softmax over the specified entries along `dim`, as torch.sparse.softmax: unspecified
    positions count as -inf, so they take no share and stay unspecified."""
    return _softmax(input, dim, dtype, False, "sparse.softmax")


def log_softmax(input: SparseCOOTensor, dim: int, dtype=None) -> SparseCOOTensor:
    """Log of `softmax`, computed stably, as torch.sparse.log_softmax."""
    return _softmax(input, dim, dtype, True, "sparse.log_softmax")


# ---------------------------------------------------------------------- pattern-keeping forms
def transpose(input: SparseCOOTensor, dim0: int, dim1: int) -> SparseCOOTensor:
    """Swap two sparse dims (the result is not coalesced, as in PyTorch)."""
    s = _require_sparse(input, "transpose")
    a, b = norm_dim(dim0, s.ndim, "transpose"), norm_dim(dim1, s.ndim, "transpose")
    sd = s.sparse_dim()
    if (a < sd) != (b < sd) or (a >= sd and a != b):
        raise RuntimeError(f"transpose: of a sparse COO tensor only two sparse dims can be "
                           f"swapped (sparse_dim={sd}, got dims {dim0} and {dim1})")
    if a == b:
        return s
    order = list(range(s.ndim))
    order[a], order[b] = b, a
    index = s._index[order[:sd]]
    return _wrap(index, _alias(s._vt, "TransposeBackward0"), [s.shape[k] for k in order],
                 False)


def _alias(vt: Tensor, node_name: str) -> Tensor:
    """The values again, as a new graph node when they require grad (so a derived sparse
    tensor is not taken for its source's leaf), else as a detached alias."""
    if vt._requires_grad:
        from ..ops.sparse import SparseFromValues
        return SparseFromValues.apply(vt, label=node_name)
    return vt.detach()


def _scalar(x) -> bool:
    return isinstance(x, _SCALARS) or (isinstance(x, Tensor) and not x.is_sparse and x.ndim == 0)


def mul(input, other) -> SparseCOOTensor:
    """A sparse tensor times a scalar (a number or a 0-d tensor): same pattern."""
    s, c = (input, other) if isinstance(input, SparseCOOTensor) else (other, input)
    if not _scalar(c):
        what = (f"a tensor of shape {list(c.shape)}" if isinstance(c, Tensor)
                else type(c).__name__)
        raise NotImplementedError("mul: a sparse COO tensor can be multiplied only by a scalar "
                                  f"(a number or a 0-d tensor), got {what}")
    return _wrap(s._index, s._vt * c, s.shape, s.is_coalesced(), like=s)


def div(input: SparseCOOTensor, other) -> SparseCOOTensor:
    """A sparse tensor divided by a scalar (a number or a 0-d tensor): same pattern."""
    s = _require_sparse(input, "div")
    if not _scalar(other):
        raise NotImplementedError("div: a sparse COO tensor can be divided only by a scalar (a "
                                  "number or a 0-d tensor)")
    return _wrap(s._index, s._vt / other, s.shape, s.is_coalesced(), like=s)


def neg(input: SparseCOOTensor) -> SparseCOOTensor:
    s = _require_sparse(input, "neg")
    return _wrap(s._index, -s._vt, s.shape, s.is_coalesced(), like=s)


def add(input, other):
    """sparse + sparse (same shape; a sparse result, coalesced when both are) or dense +
    sparse (a dense result). sparse + dense is refused, as in PyTorch."""
    if isinstance(input, SparseCOOTensor) and isinstance(other, SparseCOOTensor):
        if tuple(input.shape) != tuple(other.shape):
            raise RuntimeError(f"add: sparse tensors of shapes {list(input.shape)} and "
                               f"{list(other.shape)} cannot be added (the shapes must match)")
        if input.sparse_dim() != other.sparse_dim():
            raise RuntimeError(f"add: sparse tensors with {input.sparse_dim()} and "
                               f"{other.sparse_dim()} sparse dims cannot be added")
        from ..ops.shape import cat
        xp = xp_of(input._index)
        a, b = input, other
        if a.dtype is not b.dtype:
            from .. import _dtype as D
            rt = D.promote_types(a.dtype, b.dtype)
            a, b = a.to(dtype=rt), b.to(dtype=rt)
        if b.device != a.device:
            raise RuntimeError(f"add: expected all tensors to be on the same device, but found "
                               f"{a.device} and {b.device}")
        out = _wrap(xp.concatenate([a._index, b._index], axis=1), cat([a._vt, b._vt]),
                    a.shape, False)
        return out.coalesce() if a.is_coalesced() and b.is_coalesced() else out
    if isinstance(input, SparseCOOTensor):
        raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead.")
    if not isinstance(input, Tensor):
        raise RuntimeError(f"add: a {type(input).__name__} cannot be added to a sparse COO "
                           "tensor; add a dense tensor (dense + sparse) instead")
    return input + other.to_dense()
