"""The transform base class and the transforms that combine others: Compose, Lambda,
RandomApply, RandomChoice."""
from __future__ import annotations

import textwrap
from enum import Enum
from collections.abc import Callable, Sequence
from typing import Any

from . import _rng

__all__ = ["Transform", "Compose", "Lambda", "RandomApply", "RandomChoice"]


def format_value(value: Any) -> str:
    """A value as torchvision's reprs show it: enums by value, strings bare, floats to 4
    decimals."""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float):
        return repr(round(value, 4))
    if isinstance(value, tuple):
        inner = ", ".join(format_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


class Transform:
    """Base of the transforms: a callable whose repr is `Name(field=value, ...)` over the
    attribute names in `_repr_fields`."""
    _repr_fields: tuple[str, ...] = ()

    def __call__(self, img: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={format_value(getattr(self, k))}" for k in self._repr_fields)
        return f"{type(self).__name__}({args})"


def _block(name: str, lines: Sequence[str]) -> str:
    """`Name(` + one indented line per item + `)`, as torchvision's Compose repr."""
    body = "".join("\n" + textwrap.indent(line, "    ") for line in lines)
    return f"{name}({body}\n)"


def _callables(transforms: Sequence[Callable], owner: str) -> list[Callable]:
    transforms = list(transforms)
    for t in transforms:
        if not callable(t):
            raise TypeError(f"{owner}: every transform must be callable, got {type(t).__name__}")
    return transforms


class Compose(Transform):
    """Apply `transforms` in order."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = _callables(transforms, "Compose")

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        return _block(type(self).__name__, [repr(t) for t in self.transforms])


class Lambda(Transform):
    """Apply a user function."""

    def __init__(self, lambd: Callable) -> None:
        if not callable(lambd):
            raise TypeError(f"Lambda: argument should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img: Any) -> Any:
        return self.lambd(img)


class RandomApply(Transform):
    """Apply all of `transforms` (in order) with probability p, else none."""

    def __init__(self, transforms: Sequence[Callable], p: float = 0.5) -> None:
        self.transforms = _callables(transforms, "RandomApply")
        self.p = p

    def __call__(self, img: Any) -> Any:
        if not _rng.coin(self.p):
            return img
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        return _block(type(self).__name__, [f"p={self.p}"] + [repr(t) for t in self.transforms])


class RandomChoice(Transform):
    """Apply one of `transforms`, picked with relative weights `p` (default: uniform)."""

    def __init__(self, transforms: Sequence[Callable], p: Sequence[float] | None = None) -> None:
        self.transforms = _callables(transforms, "RandomChoice")
        if not self.transforms:
            raise ValueError("RandomChoice needs at least one transform")
        if p is not None:
            p = [float(w) for w in p]
            if len(p) != len(self.transforms) or min(p) < 0 or sum(p) <= 0:
                raise ValueError(f"RandomChoice: p must be {len(self.transforms)} non-negative "
                                 f"weights with a positive sum, got {p}")
        self.p = p

    def pick(self) -> int:
        """Index of the transform to apply."""
        if self.p is None:
            return _rng.randint(0, len(self.transforms))
        u = _rng.uniform(0.0, sum(self.p))
        total = 0.0
        for i, w in enumerate(self.p):
            total += w
            if u < total:
                return i
        return max(i for i, w in enumerate(self.p) if w > 0)

    def __call__(self, img: Any) -> Any:
        return self.transforms[self.pick()](img)

    def __repr__(self) -> str:
        return _block(type(self).__name__, [f"p={self.p}"] + [repr(t) for t in self.transforms])
