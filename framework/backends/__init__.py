"""`framework.backends`: the switches of the libraries under the ops, as torch.backends.

- `cudnn`: `enabled`, `benchmark`, `deterministic`, `allow_tf32` drive Lantern's cuDNN
  convolutions (framework/_cudnn.py) at run time; `is_available()`, `version()`, `flags()`.
- `cuda`: `matmul.allow_tf32` sets CuPy's compute type for float32 matrix products;
  `is_built()`; the scaled-dot-product-attention switches are accepted and recorded (Lantern
  has one attention implementation).
- `mps`, `mkldnn`, `openmp`: `is_available()` is False (Lantern uses none of them); their
  flags are accepted and have no effect.

Flags that have no counterpart in Lantern are accepted so that scripts setting them run;
docs/differences.md lists them.
"""
from . import cuda, cudnn, mkldnn, mps, openmp  # noqa: F401

__all__ = ["cuda", "cudnn", "mkldnn", "mps", "openmp"]
