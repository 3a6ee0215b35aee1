"""Sparse COO tensors, as PyTorch's `torch.sparse_coo` layout: `framework.sparse_coo_tensor`,
`Tensor.to_sparse()`, and here the functions of `torch.sparse` that graph code uses.

Backed by scipy.sparse on the CPU and cupyx.scipy.sparse on GPUs. A sparse tensor supports the
operations listed in `SUPPORTED`; a dense op given one raises an error naming the op.
"""
from __future__ import annotations

from ._coo import SUPPORTED, SparseCOOTensor, sparse_coo_tensor
from ._coo import dense_to_sparse  # noqa: F401  (Tensor.to_sparse's body)
from ._functional import log_softmax, mm, softmax, spmm, sum  # noqa: A004
from ._layout import layout, sparse_coo, strided

__all__ = ["sparse_coo_tensor", "mm", "spmm", "sum", "softmax", "log_softmax", "layout",
           "sparse_coo", "strided", "SparseCOOTensor", "SUPPORTED"]
