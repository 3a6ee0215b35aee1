"""Linear algebra: matmul (batched, broadcasting), mm, bmm, einsum, tensordot, outer, dot."""
from __future__ import annotations

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ._util import binary_operands, refuse_complex_backward
from .elementwise import sum_to
from .registry import register
from ..amp import _AutocastState, autocast_op, run_without_autocast

_AUTOCAST = _AutocastState.enabled


class MatMul(Op):
    """a @ b for a.ndim, b.ndim >= 2 with broadcast batch dims."""

    save_inputs = "all"

    def forward(self, a, b):
        if a.dtype == np.float16 and type(a) is np.ndarray:
            # NumPy has no BLAS path for float16 and accumulates in float16: multiply in
            # float32 (faster, and as accurate as a GPU's float32 accumulation), then round
            return (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float16)
        out = a @ b
        # NumPy computes bfloat16 (ml_dtypes) products in float32: keep the input dtype
        return out if out.dtype == a.dtype else out.astype(a.dtype)

    def backward(self, g):
        a, b = self.saved_tensors
        ea, eb = self.next_edges
        na, nb = ea is not None, eb is not None
        ga = gb = None
        if a._data.dtype.kind == "c":  # g @ b^H and a^H @ g, PyTorch's complex convention
            a, b = a.conj(), b.conj()
        if na:
            ga = sum_to(MatMul.apply(g, b.mT), tuple(a.shape))
        if nb:
            gb = sum_to(MatMul.apply(a.mT, g), tuple(b.shape))
        return ga, gb


def _mm_shape_error(a, b, opname):
    return RuntimeError(f"{opname}: mat1 and mat2 shapes cannot be multiplied "
                        f"({'x'.join(map(str, a.shape))} and {'x'.join(map(str, b.shape))})")


@register()
def matmul(input: Tensor, other: Tensor) -> Tensor:
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("matmul", matmul, input, other)
        if out is not None:
            return out
    a, b = binary_operands(input, other, "matmul")
    da, db = a._data.ndim, b._data.ndim
    if da == 0 or db == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {da}D "
                           f"and {db}D")
    ka = a._data.shape[-1]
    kb = b._data.shape[-2] if db >= 2 else b._data.shape[0]
    if ka != kb:
        raise _mm_shape_error(a, b, "matmul")
    if da >= 2 and db >= 2:
        try:
            np.broadcast_shapes(a._data.shape[:-2], b._data.shape[:-2])
        except ValueError:
            raise RuntimeError(f"matmul: batch dimensions of {list(a.shape)} and {list(b.shape)} "
                               "cannot be broadcast") from None
        return MatMul.apply(a, b)
    if da == 1 and db == 1:
        return MatMul.apply(a.reshape(1, -1), b.reshape(-1, 1)).reshape(())
    if da == 1:
        return MatMul.apply(a.reshape(1, -1), b).squeeze(-2)
    return MatMul.apply(a, b.reshape(-1, 1)).squeeze(-1)


@register()
def mm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected 2D tensors, got {input.ndim}D and {mat2.ndim}D")
    return matmul(input, mat2)


@register()
def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError(f"bmm: expected 3D tensors, got {input.ndim}D and {mat2.ndim}D")
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: {list(input.shape)} and {list(mat2.shape)}")
    return matmul(input, mat2)


@register()
def mv(input: Tensor, vec: Tensor) -> Tensor:
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("mv", mv, input, vec)
        # off the list (the CPU's): one kernel in PyTorch, so matmul's cast must not apply
        return out if out is not None else run_without_autocast(matmul, input, vec)
    return matmul(input, vec)


@register()
def dot(input: Tensor, other: Tensor) -> Tensor:
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("dot", dot, input, other)
        return out if out is not None else run_without_autocast(dot, input, other)
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    if input.shape[0] != other.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{input.shape[0]}] and src "
                           f"[{other.shape[0]}] to have the same number of elements")
    return matmul(input, other)


inner = dot


@register()
def vdot(input: Tensor, other: Tensor) -> Tensor:
    """Dot product of two 1-D tensors with the first conjugated (for complex inputs)."""
    return dot(input.conj() if input.is_complex() else input, other)


@register()
def outer(input: Tensor, vec2: Tensor) -> Tensor:
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


ger = outer


@register(method=False)
def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("addmm", addmm, input, mat1, mat2, beta=beta, alpha=alpha)
        if out is not None:
            return out
    out = matmul(mat1, mat2)
    if alpha != 1:
        out = out * alpha
    if beta == 0:  # input only broadcasts: its nan and inf do not propagate
        return out.expand(*np.broadcast_shapes(tuple(input.shape), tuple(out.shape))).contiguous()
    return out + (input if beta == 1 else input * beta)


# ---------------------------------------------------------------------- einsum
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _parse_einsum(equation: str, shapes):
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->")
    else:
        lhs, rhs = eq, None
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise RuntimeError(f"einsum(): {len(terms)} operand subscripts for {len(shapes)} operands")
    used = set(c for c in eq if c.isalpha())
    free = [c for c in _LETTERS if c not in used]
    ell_n = 0
    for t, s in zip(terms, shapes):
        if "..." in t:
            ell_n = max(ell_n, len(s) - (len(t) - 3))
    ell = "".join(free[:ell_n])
    out_terms = []
    for t, s in zip(terms, shapes):
        if "..." in t:
            n = len(s) - (len(t) - 3)
            t = t.replace("...", ell[ell_n - n:])
        if len(t) != len(s):
            raise RuntimeError(f"einsum(): subscript '{t}' has {len(t)} letters for an operand of "
                               f"{len(s)} dimensions")
        out_terms.append(t)
    if rhs is None:
        counts = {}
        for t in out_terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        rhs = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    else:
        rhs = rhs.replace("...", ell)
    return out_terms, rhs


class Einsum(Op):
    save_inputs = "all"

    def forward(self, *arrays):
        self.shapes = [a.shape for a in arrays]
        eq = ",".join(self.terms) + "->" + self.out
        xp = xp_of(arrays[0])
        if xp is np:
            dt = arrays[0].dtype
            if dt.kind == "V" or dt.name == "bfloat16":  # NumPy's einsum has no bfloat16 loop
                wide = [a.astype(np.float32) for a in arrays]
                return np.einsum(eq, *wide, optimize=len(arrays) > 2).astype(dt)
            return np.einsum(eq, *arrays, optimize=len(arrays) > 2)
        return xp.einsum(eq, *arrays)

    def backward(self, g):
        refuse_complex_backward(g, "einsum")
        # d/d operand_i: einsum of g with every other operand into operand i's subscripts;
        # letters found only in operand i are summed over there, so they are broadcast back.
        ops = self._operands()
        grads = []
        for i, need in enumerate(self.needs_input_grad):
            if not need:
                grads.append(None)
                continue
            ti = self.terms[i]
            others = [(t, o) for j, (t, o) in enumerate(zip(self.terms, ops)) if j != i]
            avail = set(self.out).union(*[set(t) for t, _ in others])
            target = "".join(c for c in ti if c in avail)
            eq_terms = [self.out] + [t for t, _ in others]
            gi = einsum(",".join(eq_terms) + "->" + target, g, *[o for _, o in others])
            if target != ti:
                shape = []
                for c, n in zip(ti, self.shapes[i]):
                    shape.append(n if c in target else 1)
                gi = gi.reshape(tuple(shape)).expand(*self.shapes[i])
            grads.append(gi)
        return tuple(grads)

    def _operands(self):
        return self.saved_tensors


@register(method=False)
def einsum(equation: str, *operands) -> Tensor:
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    terms, out = _parse_einsum(equation, [o.shape for o in operands])
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        # PyTorch's CPU einsum reaches bmm (on the list) only to contract an index shared by
        # two operands; pointwise products and sums alone stay in the input dtypes
        contracts = len(operands) > 1 and any(
            c not in out and sum(c in t for t in terms) > 1 for c in set("".join(terms)))
        res = autocast_op("einsum" if contracts else "einsum_no_contraction", einsum, equation,
                          *operands)
        if res is not None:
            return res
    # A letter repeated within one operand ('ii->i', 'bii') takes that operand's diagonal
    # first, so the contraction (and its backward) only sees distinct letters.
    operands = list(operands)
    for k, t in enumerate(terms):
        while len(set(t)) != len(t):
            c = next(c for c in t if t.count(c) > 1)
            p = t.index(c)
            q = t.index(c, p + 1)
            from .shape import diagonal
            operands[k] = diagonal(operands[k], 0, p, q)
            t = t[:p] + t[p + 1:q] + t[q + 1:] + c
        terms[k] = t
    dims = {}
    for t, o in zip(terms, operands):
        for c, n in zip(t, o.shape):
            if c in dims and dims[c] != n and n != 1 and dims[c] != 1:
                raise RuntimeError(f"einsum(): operands do not broadcast: subscript '{c}' has size "
                                   f"{dims[c]} and {n}")
            dims[c] = max(dims.get(c, n), n)
    return Einsum.apply(*operands, terms=terms, out=out)


@register(method=False)
def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    # On the CPU PyTorch's tensordot is built from mm and so casts like it; under CUDA autocast
    # it is a promote op, run with autocast off.
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("tensordot", tensordot, a, b, dims)
        if out is not None:
            return out
    if isinstance(dims, int):
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    da = [d % a.ndim for d in da]
    db = [d % b.ndim for d in db]
    for x, y in zip(da, db):
        if a.shape[x] != b.shape[y]:
            raise RuntimeError(f"tensordot: contracted dimensions need to match, but first has size "
                               f"{a.shape[x]} in dim {x} and second has size {b.shape[y]} in dim {y}")
    fa = [d for d in range(a.ndim) if d not in da]
    fb = [d for d in range(b.ndim) if d not in db]
    k = int(np.prod([a.shape[d] for d in da])) if da else 1
    am = a.permute(*(fa + da)).reshape(-1, k)
    bm = b.permute(*(db + fb)).reshape(k, -1)
    return (am @ bm).reshape(tuple(a.shape[d] for d in fa) + tuple(b.shape[d] for d in fb))
