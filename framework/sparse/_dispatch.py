"""`framework.mm`, `framework.matmul` and `framework.spmm`: the dense ops, or the sparse-dense
product when an operand is a sparse COO tensor (as PyTorch's dispatch on the layout does)."""
from __future__ import annotations

from .._tensor import Tensor
from ..ops.linalg import matmul as _dense_matmul
from ..ops.linalg import mm as _dense_mm
from ._coo import SparseCOOTensor
from ._functional import dense_sparse_matmul, sparse_dense_matmul

__all__ = ["mm", "matmul", "spmm"]


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Matrix product of 2-D tensors; either one may be a sparse COO matrix."""
    if input.__class__ is SparseCOOTensor or mat2.__class__ is SparseCOOTensor:
        for x in (input, mat2):
            if x.ndim != 2:
                raise RuntimeError(f"mm: expected 2D tensors, got {input.ndim}D and {mat2.ndim}D")
        if input.__class__ is SparseCOOTensor:
            return sparse_dense_matmul(input, mat2, "mm")
        return dense_sparse_matmul(input, mat2, "mm")
    return _dense_mm(input, mat2)


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product (batched, broadcasting); a sparse COO operand must be a 2-D matrix and
    the other a dense matrix or vector."""
    if input.__class__ is SparseCOOTensor:
        return sparse_dense_matmul(input, other, "matmul")
    if other.__class__ is SparseCOOTensor:
        return dense_sparse_matmul(input, other, "matmul")
    return _dense_matmul(input, other)


spmm = mm
