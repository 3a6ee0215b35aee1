"""Random draws for the transforms, all from the framework's global generator, so that
`framework.manual_seed` (and the DataLoader's per-worker seeding) makes every transform
reproducible."""
from __future__ import annotations

import numpy as np

import framework


def uniform(low: float, high: float) -> float:
    """A float uniform in [low, high)."""
    return float(framework.empty(1).uniform_(float(low), float(high)).item())


def randint(low: int, high: int) -> int:
    """An int uniform in [low, high)."""
    return int(framework.randint(int(low), int(high), (1,)).item())


def coin(p: float) -> bool:
    """True with probability p."""
    return float(framework.rand(1).item()) < p


def permutation(n: int) -> list[int]:
    """A random permutation of range(n)."""
    return [int(i) for i in framework.randperm(n).tolist()]


def numpy_generator() -> np.random.Generator:
    """A NumPy generator seeded from the framework's generator, for distributions the
    framework does not offer (Beta)."""
    return np.random.default_rng(int(framework.randint(0, 2 ** 62, (1,)).item()))
