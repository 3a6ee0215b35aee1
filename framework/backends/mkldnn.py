"""`framework.backends.mkldnn`: oneDNN, which Lantern does not use (its CPU ops run on NumPy,
BLAS and numba kernels). The flags are accepted so that scripts setting them run."""
from __future__ import annotations

from contextlib import contextmanager

__all__ = ["is_available", "enabled", "deterministic", "allow_tf32", "flags"]

enabled = True
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


@contextmanager
def flags(enabled=False, deterministic=False, allow_tf32=True):
    """Set the (inert) flags for the body of a with statement, then restore them."""
    g = globals()
    previous = (g["enabled"], g["deterministic"], g["allow_tf32"])
    g["enabled"], g["deterministic"], g["allow_tf32"] = enabled, deterministic, allow_tf32
    try:
        yield
    finally:
        g["enabled"], g["deterministic"], g["allow_tf32"] = previous
