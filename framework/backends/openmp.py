"""`framework.backends.openmp`: Lantern's CPU parallelism is its own thread pool
(`framework.set_num_threads`) and numba, not an OpenMP runtime."""
from __future__ import annotations

__all__ = ["is_available"]


def is_available() -> bool:
    return False
