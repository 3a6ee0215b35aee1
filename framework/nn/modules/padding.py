"""Padding layers: constant/zero, reflection, replication and circular, 1/2/3-D (F.pad)."""
from __future__ import annotations

from .. import functional as F
from .module import Module
from .utils import _ntuple, _pair, _quadruple

__all__ = ["ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ZeroPad1d", "ZeroPad2d",
           "ZeroPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
           "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d",
           "CircularPad2d", "CircularPad3d"]

_sextuple = _ntuple(6, "_sextuple")
_TUPLES = {1: _pair, 2: _quadruple, 3: _sextuple}


class _PadNd(Module):
    """`padding` is an int (same on every side) or F.pad's (left, right, top, bottom, ...)."""

    mode = "constant"
    n_dims = 1

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = _TUPLES[self.n_dims](padding)

    def forward(self, input):
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    n_dims = 1


class ConstantPad2d(_ConstantPadNd):
    n_dims = 2


class ConstantPad3d(_ConstantPadNd):
    n_dims = 3


class ZeroPad1d(ConstantPad1d):
    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    mode, n_dims = "reflect", 1


class ReflectionPad2d(_PadNd):
    mode, n_dims = "reflect", 2


class ReflectionPad3d(_PadNd):
    mode, n_dims = "reflect", 3


class ReplicationPad1d(_PadNd):
    mode, n_dims = "replicate", 1


class ReplicationPad2d(_PadNd):
    mode, n_dims = "replicate", 2


class ReplicationPad3d(_PadNd):
    mode, n_dims = "replicate", 3


class CircularPad1d(_PadNd):
    mode, n_dims = "circular", 1


class CircularPad2d(_PadNd):
    mode, n_dims = "circular", 2


class CircularPad3d(_PadNd):
    mode, n_dims = "circular", 3
