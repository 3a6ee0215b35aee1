"""`framework.linalg`: norms (vector and matrix), the Cholesky factorization and triangular solves,
with gradients."""
from __future__ import annotations

from .ops.reduction import amax, amin, norm as _norm, sum as _sum
from .ops.elementwise import abs as _abs
from .ops.linalg import matmul  # noqa: F401


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    return _norm(x, p=ord, dim=dim, keepdim=keepdim, dtype=dtype)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    if ord == "fro":
        return _norm(A, "fro", dim, keepdim, dtype)
    r, c = dim
    if ord in (1, -1):
        s = _sum(_abs(A), r, keepdim=True)
        out = (amax if ord == 1 else amin)(s, c, keepdim=True)
    elif ord in (float("inf"), float("-inf")):
        s = _sum(_abs(A), c, keepdim=True)
        out = (amax if ord > 0 else amin)(s, r, keepdim=True)
    else:
        raise NotImplementedError(f"matrix_norm(ord={ord!r}) needs an SVD, which Lantern does not "
                                  "provide yet; use 'fro', 1, -1, inf or -inf")
    return out if keepdim else out.squeeze(dim)


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """Vector norm when `dim` is an int or A is 1-D (or ord is None); else a matrix norm."""
    if ord is None:
        return _norm(A, 2, dim, keepdim, dtype)
    if isinstance(dim, int) or (dim is None and A.ndim == 1):
        return vector_norm(A, ord, dim, keepdim, dtype=dtype)
    return matrix_norm(A, ord, dim if dim is not None else (-2, -1), keepdim, dtype=dtype)


def cross(input, other, *, dim: int = -1):
    """The cross product of 3-vectors along `dim` (default the last), as torch.linalg.cross."""
    from .ops.linalg_extra import cross as _cross
    return _cross(input, other, dim=dim)


def vecdot(x, y, *, dim: int = -1):
    """sum(conj(x) * y) along `dim`, as torch.linalg.vecdot."""
    return _sum((x.conj() if x.is_complex() else x) * y, dim)


def cholesky(A, *, upper: bool = False):
    """The Cholesky factor of symmetric positive-definite A (batches allowed): lower L with
    A = L L^T, or U = L^T when upper."""
    from .ops.linalg_extra import cholesky as _cholesky
    return _cholesky(A, upper=upper)


def solve_triangular(A, B, *, upper: bool, left: bool = True, unitriangular: bool = False):
    """X with A X = B (or X A = B when left=False) for triangular A; batch dims broadcast."""
    from .ops.linalg_extra import solve_triangular as _solve
    return _solve(A, B, upper=upper, left=left, unitriangular=unitriangular)
