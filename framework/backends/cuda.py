"""`framework.backends.cuda`: switches of the CUDA libraries, as torch.backends.cuda.

`matmul.allow_tf32` chooses CuPy's compute type for float32 (and complex64) matrix products
(cuBLAS TF32 tensor cores, about 1e-3 relative error, on GPUs of compute capability 8.0 and
up): its default comes from $CUPY_TF32 as CuPy reads it (off, as PyTorch's). Set before CuPy
is loaded, it is applied when it is.

The scaled-dot-product-attention switches (`enable_flash_sdp`, ...) are recorded and
reported back; Lantern has a single attention implementation, so they change nothing.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager

import numpy as np

from .._backend import cupy_module, when_cupy_imported

__all__ = ["is_built", "matmul", "flash_sdp_enabled", "enable_flash_sdp",
           "mem_efficient_sdp_enabled", "enable_mem_efficient_sdp", "math_sdp_enabled",
           "enable_math_sdp", "cudnn_sdp_enabled", "enable_cudnn_sdp", "sdp_kernel",
           "set_float32_matmul_precision", "get_float32_matmul_precision"]

# CuPy's compute types (cupy/_core/_routines_linalg.pxd)
_COMPUTE_TYPE_DEFAULT, _COMPUTE_TYPE_TF32 = 1, 7


def is_built() -> bool:
    """Whether this installation can use CUDA (CuPy imports)."""
    return cupy_module() is not None


def _apply_tf32(cp, flag: bool) -> None:
    try:
        from cupy._core import _routines_linalg as rl
    except ImportError:  # a CuPy without this switch: nothing to set
        return
    ct = getattr(rl, "COMPUTE_TYPE_TF32", _COMPUTE_TYPE_TF32) if flag else \
        getattr(rl, "COMPUTE_TYPE_DEFAULT", _COMPUTE_TYPE_DEFAULT)
    with warnings.catch_warnings():
        # before compute capability 8.0 CuPy warns and keeps full float32, as PyTorch does
        # silently
        warnings.simplefilter("ignore")
        try:
            for dt in (np.float32, np.complex64):
                rl.set_compute_type(dt, ct)
        except Exception:  # no GPU to ask for its capability: nothing runs anyway
            pass


class _CuBLASFlags:
    """`framework.backends.cuda.matmul`: cuBLAS switches (unknown names raise)."""

    __slots__ = ("_tf32", "_fp16_reduction", "_bf16_reduction")

    def __init__(self) -> None:
        self._tf32 = int(os.environ.get("CUPY_TF32", "0") or "0") > 0
        self._fp16_reduction = True
        self._bf16_reduction = True

    @property
    def allow_tf32(self) -> bool:
        return self._tf32

    @allow_tf32.setter
    def allow_tf32(self, flag: bool) -> None:
        self._tf32 = bool(flag)
        when_cupy_imported(self._apply)

    def _apply(self, cp) -> None:
        _apply_tf32(cp, self._tf32)

    # Accepted, no effect: CuPy chooses the reduction precision of float16/bfloat16 products.
    @property
    def allow_fp16_reduced_precision_reduction(self) -> bool:
        return self._fp16_reduction

    @allow_fp16_reduced_precision_reduction.setter
    def allow_fp16_reduced_precision_reduction(self, flag) -> None:
        self._fp16_reduction = bool(flag)

    @property
    def allow_bf16_reduced_precision_reduction(self) -> bool:
        return self._bf16_reduction

    @allow_bf16_reduced_precision_reduction.setter
    def allow_bf16_reduced_precision_reduction(self, flag) -> None:
        self._bf16_reduction = bool(flag)

    def __repr__(self) -> str:
        return f"<cuBLAS flags: allow_tf32={self._tf32}>"


matmul = _CuBLASFlags()


def set_float32_matmul_precision(precision: str) -> None:
    """'highest': full float32 matrix products; 'high' or 'medium': TF32 allowed (sets
    `matmul.allow_tf32`), as torch.set_float32_matmul_precision."""
    if precision not in ("highest", "high", "medium"):
        warnings.warn(f"{precision} is not one of 'highest', 'high', or 'medium'; the current "
                      "set_float32_matmul_precision call has no effect.", stacklevel=2)
        return
    matmul.allow_tf32 = precision != "highest"


def get_float32_matmul_precision() -> str:
    return "high" if matmul.allow_tf32 else "highest"


_sdp = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True}


def flash_sdp_enabled() -> bool:
    return _sdp["flash"]


def enable_flash_sdp(enabled: bool) -> None:
    _sdp["flash"] = bool(enabled)


def mem_efficient_sdp_enabled() -> bool:
    return _sdp["mem_efficient"]


def enable_mem_efficient_sdp(enabled: bool) -> None:
    _sdp["mem_efficient"] = bool(enabled)


def math_sdp_enabled() -> bool:
    return _sdp["math"]


def enable_math_sdp(enabled: bool) -> None:
    _sdp["math"] = bool(enabled)


def cudnn_sdp_enabled() -> bool:
    return _sdp["cudnn"]


def enable_cudnn_sdp(enabled: bool) -> None:
    _sdp["cudnn"] = bool(enabled)


@contextmanager
def sdp_kernel(enable_flash: bool = True, enable_math: bool = True,
               enable_mem_efficient: bool = True, enable_cudnn: bool = True):
    """Deprecated in PyTorch (use nn.attention.sdpa_kernel): sets the switches for its body."""
    warnings.warn("`framework.backends.cuda.sdp_kernel()` is deprecated. In the future, this "
                  "context manager will be removed. Please see "
                  "`framework.nn.attention.sdpa_kernel()` for the new context manager",
                  FutureWarning, stacklevel=3)
    previous = dict(_sdp)
    _sdp.update(flash=bool(enable_flash), math=bool(enable_math),
                mem_efficient=bool(enable_mem_efficient), cudnn=bool(enable_cudnn))
    try:
        yield
    finally:
        _sdp.update(previous)
