"""More linear algebra: kron, cdist, cross, the fused multiply-adds baddbmm, addbmm, addmv and
addr (beta * input + alpha * product), triangular solves and the Cholesky factorization."""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..amp import autocast_listed
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from ._util import broadcast_shape, norm_dim
from .elementwise import abs as abs_
from .elementwise import clamp_min, sign, sqrt, where
from .linalg import matmul, outer
from .registry import register
from .shape import reshape, select, stack


@register()
def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: block (i, j, ...) is input[i, j, ...] * other (shapes aligned at
    the right, as broadcasting does)."""
    nd = builtins.max(input._data.ndim, other._data.ndim)
    a = (1,) * (nd - input._data.ndim) + tuple(input._data.shape)
    b = (1,) * (nd - other._data.ndim) + tuple(other._data.shape)
    # a as (a0, 1, a1, 1, ...) times other as (1, b0, 1, b1, ...): every pair, interleaved
    prod = reshape(input, [s for n in a for s in (n, 1)]) * \
        reshape(other, [s for n in b for s in (1, n)])
    return reshape(prod, [m * n for m, n in zip(a, b)])


# ---------------------------------------------------------------------------------- cdist
class PDist(Op):
    """p-norm over the last dim of pairwise differences, with PyTorch's cdist gradients: 0
    where the distance is 0 (and, for p < 1, where a difference is 0); for p=inf every element
    that attains the maximum gets the whole gradient."""

    save_inputs = (0,)
    save_output = True

    def forward(self, d):
        xp = xp_of(d)
        p = self.p
        a = xp.abs(d)
        if d.shape[-1] == 0:
            y = xp.zeros(d.shape[:-1], d.dtype)
        elif p == 0:
            y = (a != 0).sum(-1).astype(d.dtype)
        elif p == 1:
            y = a.sum(-1)
        elif p == 2:
            y = xp.sqrt((d * d).sum(-1))
        elif p == math.inf:
            y = a.max(-1)
        else:
            y = ((a ** p).sum(-1) ** (1.0 / p)).astype(d.dtype, copy=False)
        self.y = y
        return y

    def backward(self, g):
        (d,) = self.saved_tensors
        p = self.p
        if p == 0:
            return (Tensor._make(xp_of(d._data).zeros_like(d._data), None, 0),)
        gk = g.unsqueeze(-1)
        if p == 1:
            return (gk * sign(d),)
        y = PDist.apply(d, p=p) if _State.grad_enabled else \
            Tensor._make(self.saved_output(), None, 0)
        yk = y.unsqueeze(-1)
        if p == math.inf:
            return (gk * sign(d) * (abs_(d) == yk).to(dtype=d.dtype),)
        zero = yk == 0
        safe = where(zero, 1.0, yk)  # keeps 0/0 out of the masked branch (and its gradient)
        if p == 2:
            r = d / safe
        else:
            a = abs_(d)
            if p < 1:  # |d|**(p-1) is infinite at d = 0: those elements get 0
                az = a == 0
                r = where(az, 0.0, sign(d) * (where(az, 1.0, a) / safe) ** (p - 1))
            else:
                r = sign(d) * (a / safe) ** (p - 1)
        return (where(zero, 0.0, gk * r),)

    def _release_extra(self):
        self.y = None


class RootOfSquares(Op):
    """sqrt of a squared distance, with gradient 0 at 0 (cdist's convention)."""

    save_inputs = (0,)
    save_output = True

    def forward(self, s):
        self.y = xp_of(s).sqrt(s)
        return self.y

    def backward(self, g):
        (s,) = self.saved_tensors
        y = sqrt(s) if _State.grad_enabled else Tensor._make(self.saved_output(), None, 0)
        zero = y == 0
        return (where(zero, 0.0, g / (2 * where(zero, 1.0, y))),)

    def _release_extra(self):
        self.y = None


_COMPUTE_MODES = (None, "use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                  "donot_use_mm_for_euclid_dist")


@register(method=False)
@autocast_listed("cdist")
def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode: str | None = None) -> Tensor:
    """p-norm distances between the rows of x1 (..., P, M) and of x2 (..., R, M): (..., P, R),
    batch dims broadcast. For p=2 with more than 25 rows on a side (or compute_mode
    'use_mm_for_euclid_dist'), |a|^2 + |b|^2 - 2ab through a matrix product, as PyTorch: faster
    and smaller, less exact for close points."""
    if compute_mode not in _COMPUTE_MODES:
        raise ValueError(f"{compute_mode} is not a valid value for compute_mode")
    if p < 0:
        raise RuntimeError("cdist only supports non-negative p values")
    for name, x in (("X1", x1), ("X2", x2)):
        if x._data.ndim < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, {name} got: "
                               f"{x._data.ndim}D")
        if x._data.dtype.kind != "f":
            raise RuntimeError(f"cdist only supports floating-point dtypes, {name} got: "
                               f"{x.dtype.name}")
    if x1._data.shape[-1] != x2._data.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: "
                           f"{x1._data.shape[-1]} X2: {x2._data.shape[-1]}")
    if x1._data.dtype != x2._data.dtype:
        raise RuntimeError(f"cdist: X1 and X2 must have the same dtype, got {x1.dtype.name} and "
                           f"{x2.dtype.name}")
    broadcast_shape(x1._data.shape[:-2], x2._data.shape[:-2], "cdist")
    rows = builtins.max(x1._data.shape[-2], x2._data.shape[-2])
    if p == 2 and (compute_mode == "use_mm_for_euclid_dist" or (
            rows > 25 and compute_mode != "donot_use_mm_for_euclid_dist")):
        n1 = (x1 * x1).sum(-1, keepdim=True)
        n2 = (x2 * x2).sum(-1, keepdim=True)
        sq = clamp_min(n1 - 2 * matmul(x1, x2.mT) + n2.mT, 0.0)
        return RootOfSquares.apply(sq)
    return PDist.apply(x1.unsqueeze(-2) - x2.unsqueeze(-3), p=float(p))


# ---------------------------------------------------------------------------------- cross
@register()
@autocast_listed("cross")
def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """The cross product of 3-vectors along `dim` (default: the first dim of size 3), inputs
    broadcast against each other."""
    if input._data.ndim != other._data.ndim:
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions, got "
                           f"{list(input.shape)} and {list(other.shape)}")
    if input._data.dtype != other._data.dtype:
        raise RuntimeError(f"linalg.cross: expected both inputs to have the same dtype, got "
                           f"{input.dtype.name} and {other.dtype.name}")
    shape = broadcast_shape(input._data.shape, other._data.shape, "linalg.cross")
    if dim is None:
        d = next((i for i, s in enumerate(shape) if s == 3), None)
        if d is None:
            raise RuntimeError(f"no dimension of size 3 in input (shapes {list(input.shape)} and "
                               f"{list(other.shape)})")
    else:
        d = norm_dim(dim, len(shape), "linalg.cross")
    na, nb = input._data.shape[d], other._data.shape[d]
    if na != 3 or nb != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {d} must have length 3. Got {na} and "
                           f"{nb}")
    a = [select(input, d, i) for i in range(3)]
    b = [select(other, d, i) for i in range(3)]
    return stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                  a[0] * b[1] - a[1] * b[0]], d)


# ---------------------------------------------------------------------------------- add*
def _axpby(input: Tensor, prod: Tensor, beta, alpha, opname: str) -> Tensor:
    """beta * input + alpha * prod, input broadcast to prod's shape; beta=0 ignores input's
    values (its nan and inf do not propagate), as in PyTorch."""
    if prod._data.dtype.kind in "biu" and (isinstance(alpha, float) or isinstance(beta, float)):
        raise RuntimeError(f"{opname}: For integral input tensors, arguments alpha and beta must "
                           "not be floating point numbers.")
    shape = tuple(prod._data.shape)
    base = input.expand(*shape)  # checks that input broadcasts
    out = prod if alpha == 1 else prod * alpha
    if beta == 0:
        return out
    return out + (base if beta == 1 else base * beta)


def _same_dtypes(opname: str, *tensors):
    if builtins.any(t._data.dtype != tensors[0]._data.dtype for t in tensors[1:]):
        raise RuntimeError(f"{opname}: input tensors must have the same dtype, but got "
                           + ", ".join(t.dtype.name for t in tensors))


def _check_batches(batch1: Tensor, batch2: Tensor):
    for name, b in (("batch1", batch1), ("batch2", batch2)):
        if b._data.ndim != 3:
            raise RuntimeError(f"{name} must be a 3D tensor, got {b._data.ndim}D")
    s1, s2 = batch1._data.shape, batch2._data.shape
    if s1[0] != s2[0]:
        raise RuntimeError(f"batch1 and batch2 must have same number of batches, got {s1[0]} and "
                           f"{s2[0]}")
    if s1[2] != s2[1]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{s1[0]}, {s1[2]}] but got: [{s2[0]}, {s2[1]}].")


@register()
@autocast_listed("baddbmm")
def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (batch1 @ batch2) for batches of matrices (b, n, m) @ (b, m, p)."""
    _check_batches(batch1, batch2)
    _same_dtypes("baddbmm", input, batch1, batch2)
    return _axpby(input, matmul(batch1, batch2), beta, alpha, "baddbmm")


@register()
@autocast_listed("addbmm")
def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * sum_b(batch1[b] @ batch2[b])."""
    _check_batches(batch1, batch2)
    _same_dtypes("addbmm", input, batch1, batch2)
    return _axpby(input, matmul(batch1, batch2).sum(0), beta, alpha, "addbmm")


@register()
@autocast_listed("addmv")
def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (mat @ vec)."""
    if mat._data.ndim != 2 or vec._data.ndim != 1 or input._data.ndim > 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {input._data.ndim}, "
                           f"{mat._data.ndim}, {vec._data.ndim}")
    n, m = mat._data.shape
    if vec._data.shape[0] != m or input._data.shape not in ((), (1,), (n,)):
        raise RuntimeError(f"size mismatch, got input ({'x'.join(map(str, input.shape))}), mat "
                           f"({n}x{m}), vec ({vec._data.shape[0]})")
    _same_dtypes("addmv", input, mat, vec)
    return _axpby(input, matmul(mat, vec), beta, alpha, "addmv")


@register()
@autocast_listed("addr")
def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * outer(vec1, vec2)."""
    for name, v in (("vec1", vec1), ("vec2", vec2)):
        if v._data.ndim != 1:
            raise RuntimeError(f"addr: Expected 1-D argument {name}, but got {v._data.ndim}-D")
    return _axpby(input, outer(vec1, vec2), beta, alpha, "addr")



# ---------------------------------------------------------------------------------- triangular
def _square_batches(a, opname: str, what: str = "A"):
    if a._data.ndim < 2 or a._data.shape[-1] != a._data.shape[-2]:
        if a._data.ndim < 2:
            raise RuntimeError(f"{opname}: The input tensor {what} must have at least 2 "
                               f"dimensions.")
        n, m = a._data.shape[-2:]
        raise RuntimeError(f"{opname}: {what} must be batches of square matrices, but they are "
                           f"{n} by {m} matrices")
    if a._data.dtype.kind != "f":
        raise RuntimeError(f"{opname}: expected a floating point tensor, got {a.dtype.name}")


def _triangle(xp, a, upper: bool, unit: bool):
    """The triangle of `a` that a triangular solve reads (the other entries are ignored)."""
    t = xp.triu(a) if upper else xp.tril(a)
    if unit:
        i = xp.arange(a.shape[-1])
        t[..., i, i] = 1
    return t


def _substitute(xp, t, b, upper: bool):
    """Row-by-row substitution for t x = b: used only when LAPACK reports a zero pivot, so that
    a singular triangle gives inf/nan as in PyTorch instead of an error."""
    n = t.shape[-1]
    x = xp.zeros(np.broadcast_shapes(t.shape[:-1], b.shape[:-2] + (n,)) + b.shape[-1:],
                 np.result_type(t.dtype, b.dtype))
    rows = range(n - 1, -1, -1) if upper else range(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in rows:
            acc = b[..., i, :] - (t[..., i, :, None] * x).sum(-2)
            x[..., i, :] = acc / t[..., i, i, None]
    return x


class SolveTriangular(Op):
    """X with A X = B (left) or X A = B (right) for triangular A; batch dims already equal.
    Backward: the adjoint system gives gB; gA = -gB X^T (left) or -X^T gB (right), kept to the
    triangle that was read."""

    save_inputs = "all"
    save_output = True

    def forward(self, a, b):
        xp = xp_of(a)
        t = _triangle(xp, a, self.upper, self.unit)
        if not self.left:  # X A = B  <=>  A^T X^T = B^T
            t, b = xp.swapaxes(t, -1, -2), xp.swapaxes(b, -1, -2)
        if t.shape[-1] == 0 or b.shape[-1] == 0:
            x = xp.zeros(b.shape, np.result_type(t.dtype, b.dtype))
        else:
            try:
                x = xp.linalg.solve(t, b)
            except np.linalg.LinAlgError:  # a zero on the diagonal
                x = _substitute(xp, t, b, self.upper != (not self.left))
        x = x.astype(a.dtype, copy=False)
        self.y = x if self.left else xp.swapaxes(x, -1, -2)
        return self.y

    def backward(self, g):
        a, b = self.saved_tensors
        ea, eb = self.next_edges
        x = SolveTriangular.apply(a, b, upper=self.upper, left=self.left, unit=self.unit) \
            if _State.grad_enabled else Tensor._make(self.saved_output(), None, 0)
        gb = SolveTriangular.apply(a.mT, g, upper=not self.upper, left=self.left,
                                   unit=self.unit)
        ga = None
        if ea is not None:
            ga = -(gb @ x.mT) if self.left else -(x.mT @ gb)
            k = 1 if self.unit else 0
            ga = ga.triu(k) if self.upper else ga.tril(-k)
        return ga, (gb if eb is not None else None)

    def _release_extra(self):
        self.y = None


@register("linalg.solve_triangular", method=False, function=False)
def solve_triangular(A: Tensor, B: Tensor, *, upper: bool, left: bool = True,
                     unitriangular: bool = False) -> Tensor:
    """The solution X of A X = B (or X A = B when left=False) for a triangular A, as
    torch.linalg.solve_triangular: only A's upper or lower triangle is read (with ones on the
    diagonal when unitriangular) and batch dims broadcast."""
    name = "linalg.solve_triangular"
    _square_batches(A, name)
    if B._data.ndim < 2:
        raise RuntimeError(f"{name}: The input tensor B must have at least 2 dimensions.")
    if A._data.dtype != B._data.dtype:
        raise RuntimeError(f"{name}: Expected A and B to have the same dtype, but found A of "
                           f"type {A.dtype.name} and B of type {B.dtype.name} instead")
    n = A._data.shape[-1]
    if (B._data.shape[-2] if left else B._data.shape[-1]) != n:
        eq = "AX = B" if left else "XA = B"
        raise RuntimeError(f"{name}: Incompatible shapes of A and B for the equation {eq} "
                           f"({n}x{n} and {B._data.shape[-2]}x{B._data.shape[-1]})")
    batch = broadcast_shape(A._data.shape[:-2], B._data.shape[:-2], name)
    if A._data.shape[:-2] != batch:
        A = A.expand(*batch, n, n)
    if B._data.shape[:-2] != batch:
        B = B.expand(*batch, *B._data.shape[-2:])
    return SolveTriangular.apply(A, B, upper=bool(upper), left=bool(left),
                                 unit=bool(unitriangular))


class Cholesky(Op):
    """L with A = L L^T, from A's lower triangle. Backward (real A):
    gA = sym(L^-T Phi(L^T gL) L^-1), Phi taking the lower triangle with a halved diagonal."""

    save_inputs = (0,)
    save_output = True

    def forward(self, a):
        xp = xp_of(a)
        try:
            low = xp.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            low = None
        # CuPy reports a failed factorization with non-finite or non-positive pivots
        if low is None or not bool(xp.isfinite(low).all()) or (
                low.size and not bool((xp.diagonal(low, 0, -2, -1) > 0).all())):
            raise RuntimeError("linalg.cholesky: The factorization could not be completed "
                               "because the input is not positive-definite.")
        self.y = low.astype(a.dtype, copy=False)
        return self.y

    def backward(self, g):
        (a,) = self.saved_tensors
        # with create_graph the factor is recomputed as a node, so that gA is differentiable
        low = Cholesky.apply(a) if _State.grad_enabled else \
            Tensor._make(self.saved_output(), None, 0)
        phi = (low.mT @ g).tril()
        phi = phi - 0.5 * phi.diagonal(0, -2, -1).diag_embed()
        y = SolveTriangular.apply(low.mT, phi, upper=True, left=True, unit=False)  # L^-T phi
        ga = SolveTriangular.apply(low, y, upper=False, left=False, unit=False)  # (...) L^-1
        return (0.5 * (ga + ga.mT),)

    def _release_extra(self):
        self.y = None


@register("linalg.cholesky", method=False, function=False)
def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    """The Cholesky factor of symmetric positive-definite matrices (batches allowed): lower L
    with A = L L^T, or upper U = L^T with A = U^T U, as torch.linalg.cholesky. Only A's lower
    triangle is read."""
    _square_batches(A, "linalg.cholesky")
    if A._data.dtype.kind == "c":
        raise RuntimeError("linalg.cholesky: complex inputs are not supported")
    low = Cholesky.apply(A)
    return low.mT if upper else low
