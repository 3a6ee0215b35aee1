"""Schedules for exploration (epsilon) and prioritized-replay beta: callables of the training
progress p in [0, 1] (the fraction of the run's environment steps done), which move from
`start` to `end` over the first `fraction` of the run and stay at `end` afterwards.

    eps = linear_schedule(1.0, 0.05, 0.1)      # eps(0) = 1, eps(0.05) = 0.525, eps(0.5) = 0.05
    beta = linear_schedule(0.4, 1.0, 1.0)      # PER's importance-sampling exponent
"""
from __future__ import annotations

import math
from typing import Callable

__all__ = ["Schedule", "linear_schedule", "exponential_schedule"]

Schedule = Callable[[float], float]


def _check(fraction: float, name: str) -> float:
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"{name}: fraction must be in [0, 1], got {fraction}")
    return fraction


def _done(progress: float, fraction: float) -> float:
    """How far along the transition is, in [0, 1]."""
    if fraction == 0.0:
        return 1.0
    return min(max(float(progress), 0.0) / fraction, 1.0)


def linear_schedule(start: float, end: float, fraction: float = 1.0) -> Schedule:
    """start + (end - start) * min(p / fraction, 1)."""
    fraction = _check(fraction, "linear_schedule")
    start, end = float(start), float(end)

    def value(progress: float) -> float:
        return start + (end - start) * _done(progress, fraction)
    return value


def exponential_schedule(start: float, end: float, fraction: float = 1.0) -> Schedule:
    """Geometric interpolation start * (end / start) ** min(p / fraction, 1): a constant
    decay factor per step that lands on `end` at p = fraction. Both must be positive."""
    fraction = _check(fraction, "exponential_schedule")
    start, end = float(start), float(end)
    if start <= 0.0 or end <= 0.0:
        raise ValueError(f"exponential_schedule: start and end must be positive, got {start} "
                         f"and {end}")
    log_ratio = math.log(end / start)

    def value(progress: float) -> float:
        return start * math.exp(log_ratio * _done(progress, fraction))
    return value
