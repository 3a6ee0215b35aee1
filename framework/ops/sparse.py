"""Differentiable primitives of sparse COO tensors, on raw arrays of the tensor's array module.

A sparse COO tensor (framework.sparse) keeps its values as an ordinary dense tensor of shape
(nnz, *dense_dims) beside a constant int64 index array, so every op here maps values (and dense
operands) to values or dense results and the autograd graph only ever holds dense tensors; the
index structure travels as an op parameter. Each op's backward is written with the others, so
gradients of gradients come free. Matrix products run on scipy.sparse on the CPU and on
cupyx.scipy.sparse on GPUs.
"""
from __future__ import annotations

import numpy as np

from .._backend import scatter_add_into, xp_of
from ..autograd.function import Op
from ._util import refuse_complex_backward

__all__ = ["Pattern", "GatherRows", "ScatterRows", "SparseMM", "SampledDot", "SparseFromValues"]

# Rows of the (nnz, F) product that SampledDot materialises at a time (bounds its memory).
_SDDMM_CHUNK_ELEMENTS = 1 << 22


class Pattern:
    """The constant index structure of a 2-D sparse matrix: COO `rows` and `cols` (int64 arrays
    of the tensor's array module) and `shape` (m, k). The CSR ordering that scipy/cupyx
    multiply with is made on first use and reused, since the indices never change."""

    __slots__ = ("rows", "cols", "shape", "rows_sorted", "_csr")

    def __init__(self, rows, cols, shape: tuple, rows_sorted: bool = False):
        self.rows, self.cols, self.shape = rows, cols, (int(shape[0]), int(shape[1]))
        self.rows_sorted = rows_sorted  # a coalesced tensor's rows are already in CSR order
        self._csr = None

    def _csr_layout(self):
        if self._csr is None:
            xp = xp_of(self.rows)
            if self.rows_sorted:
                perm, cols, rows = None, self.cols, self.rows
            else:
                perm = xp.argsort(self.rows, kind="stable") if xp is np else \
                    xp.argsort(self.rows)
                cols, rows = self.cols[perm], self.rows[perm]
            counts = xp.bincount(rows, minlength=self.shape[0])
            indptr = xp.concatenate([xp.zeros(1, np.int64), xp.cumsum(counts)])
            if xp is not np:  # cuSPARSE indexes with int32
                cols, indptr = cols.astype(np.int32), indptr.astype(np.int32)
            self._csr = (perm, cols, indptr)
        return self._csr

    def matrix(self, values):
        """The matrix with these indices and `values` (duplicates add up), as a scipy.sparse or
        cupyx.scipy.sparse CSR matrix sharing the index arrays."""
        perm, cols, indptr = self._csr_layout()
        xp = xp_of(values)
        data = xp.ascontiguousarray(values if perm is None else values[perm])
        if xp is np:
            import scipy.sparse as sp
        else:
            import cupyx.scipy.sparse as sp
        return sp.csr_matrix((data, cols, indptr), shape=self.shape, copy=False)

    def transposed_pairs(self, transpose: bool):
        """(a, b) such that entry k links row a[k] of the product to row b[k] of the operand."""
        return (self.cols, self.rows) if transpose else (self.rows, self.cols)


def _compute_dtype(xp, dt):
    """The dtype the sparse library multiplies `dt` in (None: `dt` itself)."""
    if dt.kind == "V" or dt == np.float16:  # bfloat16 (ml_dtypes) and half: in float32
        return np.dtype(np.float32)
    if xp is not np and dt.kind in "iu":  # cuSPARSE multiplies floats only; exact to 2**53
        return np.dtype(np.float64)
    return None


def spmm_arrays(pattern: Pattern, values, dense, transpose: bool):
    """S @ dense (S^T @ dense when `transpose`) for S = `pattern` filled with `values`."""
    xp = xp_of(values)
    dt = values.dtype
    ct = _compute_dtype(xp, dt)
    if ct is not None:
        values, dense = values.astype(ct), dense.astype(ct)
    mat = pattern.matrix(values)
    out = (mat.T if transpose else mat) @ dense
    out = xp.asarray(out)
    return out.astype(dt) if out.dtype != dt else out


def _scatter_rows(xp, values, index, n: int, unique: bool):
    out_shape = (n,) + values.shape[1:]
    dt = values.dtype
    if unique:  # distinct targets: a plain assignment, much faster than an unbuffered add
        out = xp.zeros(out_shape, dt)
        out[index] = values
        return out
    if dt.kind == "b" or dt.kind == "V" or (xp is not np and dt.kind in "iu"):
        # add.at has no bool/bfloat16 loop (nor CuPy's an int64 one): accumulate wider
        wide = np.int64 if dt.kind == "b" else (np.float32 if dt.kind == "V" else np.float64)
        out = xp.zeros(out_shape, wide)
        scatter_add_into(xp, out, index, values.astype(wide))
        return (out != 0) if dt.kind == "b" else out.astype(dt)
    out = xp.zeros(out_shape, dt)
    scatter_add_into(xp, out, index, values)
    return out


class GatherRows(Op):
    """x[index] along the first dim (`index`: int64 array). Its gradient scatters back."""

    def forward(self, x):
        self.n = x.shape[0]
        return x[self.index]

    def backward(self, g):
        return (ScatterRows.apply(g, index=self.index, n=self.n, unique=False),)


class ScatterRows(Op):
    """A (n, *rest) array of zeros with row index[k] += values[k] (duplicates add up;
    `unique` says the indices are distinct). Its gradient gathers."""

    def forward(self, values):
        return _scatter_rows(xp_of(values), values, self.index, self.n, self.unique)

    def backward(self, g):
        return (GatherRows.apply(g, index=self.index),)


class SparseMM(Op):
    """S @ dense, or S^T @ dense with `transpose`, for S = `pattern` filled with the values
    (the first input, (nnz,)); the dense operand is (k, F)."""

    save_inputs = "all"

    def forward(self, values, dense):
        return spmm_arrays(self.pattern, values, dense, self.transpose)

    def backward(self, g):
        refuse_complex_backward(g, "sparse.mm")
        values, dense = self.saved_tensors
        ev, ed = self.next_edges
        gv = gd = None
        if ev is not None:  # d/dv_k = <g[row a_k], dense[row b_k]>
            gv = SampledDot.apply(g, dense, pattern=self.pattern, transpose=self.transpose)
        if ed is not None:  # S^T g (S g for the transposed product)
            gd = SparseMM.apply(values, g, pattern=self.pattern, transpose=not self.transpose)
        return gv, gd


class SampledDot(Op):
    """out[k] = <x[a_k], y[b_k]> over the pattern's entries, (a, b) = (rows, cols), or
    (cols, rows) with `transpose`: the sampled product that is SparseMM's values gradient."""

    save_inputs = "all"

    def forward(self, x, y):
        xp = xp_of(x)
        a, b = self.pattern.transposed_pairs(self.transpose)
        n = a.shape[0]
        width = max(1, x.shape[1])
        step = max(1, _SDDMM_CHUNK_ELEMENTS // width)
        if n <= step:
            return (x[a] * y[b]).sum(axis=1)
        out = xp.empty(n, x.dtype)
        for s in range(0, n, step):
            out[s:s + step] = (x[a[s:s + step]] * y[b[s:s + step]]).sum(axis=1)
        return out

    def backward(self, w):
        refuse_complex_backward(w, "sparse.mm")
        x, y = self.saved_tensors
        ex, ey = self.next_edges
        gx = gy = None
        if ex is not None:
            gx = SparseMM.apply(w, y, pattern=self.pattern, transpose=self.transpose)
        if ey is not None:
            gy = SparseMM.apply(w, x, pattern=self.pattern, transpose=not self.transpose)
        return gx, gy


class SparseFromValues(Op):
    """The values as a sparse tensor's own: an alias in the graph, so that a sparse tensor
    built from values that require grad is a graph node (as in PyTorch), not a leaf."""

    label = "SparseCooTensorWithDimsAndTensorsBackward0"  # PyTorch's node name (or `label=`)

    def forward(self, values):
        return values

    def backward(self, g):
        return (g,)

    def name(self) -> str:
        return self.label
