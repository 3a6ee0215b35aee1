"""Host transport: nonblocking MPI collectives on NumPy buffers (mpi4py's buffer interface,
so nothing is pickled). Each function starts the operation and returns the MPI requests; the
caller wraps them in a `Work` that polls them with a deadline."""
from __future__ import annotations

import numpy as np

__all__ = ["mpi_type", "mpi_op", "as_bytes", "testall"]

_MPI = None


def _mod():
    global _MPI
    if _MPI is None:
        from mpi4py import MPI
        _MPI = MPI
    return _MPI


_TYPES = {"float32": "FLOAT", "float64": "DOUBLE", "int8": "INT8_T", "int16": "INT16_T",
          "int32": "INT32_T", "int64": "INT64_T", "uint8": "UINT8_T", "uint16": "UINT16_T",
          "uint32": "UINT32_T", "uint64": "UINT64_T", "complex64": "C_FLOAT_COMPLEX",
          "complex128": "C_DOUBLE_COMPLEX"}


def mpi_type(dtype: np.dtype):
    """The MPI datatype that reduces arrays of `dtype` (None when MPI has none)."""
    name = _TYPES.get(np.dtype(dtype).name)
    return getattr(_mod(), name) if name is not None else None


def mpi_op(name: str):
    return getattr(_mod(), name)


def as_bytes(arr: np.ndarray) -> np.ndarray:
    """A flat uint8 view of a C-contiguous array (any dtype: data movement needs no type)."""
    return arr.reshape(-1).view(np.uint8)


def testall(requests) -> bool:
    return _mod().Request.Testall(requests)
