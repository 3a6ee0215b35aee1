"""In-place fills: zero_, fill_, copy_, and the random fills used by nn.init. They write
without a graph, except on a tensor that has a history: that history is replaced by a node
whose value no longer depends on it (it sends zeros back), as in PyTorch."""
from __future__ import annotations

import math

from .._backend import device_of, to_device_array, xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from ..random import default_generator_for


class Fill(Op):
    """Overwrite with a constant `value` array: the old value's gradient is zero."""

    def forward(self, x):
        return self.value

    def backward(self, g):
        return (Tensor._make(xp_of(g._data).zeros(self.in_shape, g._data.dtype), None, 0),)

    def name(self):
        return self.kind + "Backward0"

    def _release_extra(self):
        self.value = None


def _write(self, arr, kind="Fill"):
    self._check_inplace()
    if self._grad_fn is not None and _State.grad_enabled:
        return self._inplace_from(Fill.apply(self, value=arr, kind=kind,
                                             in_shape=self._data.shape))
    self._copy_into(arr)
    self._bump()
    return self


def zero_(self):
    xp = xp_of(self._data)
    if self._data.ndim == 0 or (self._grad_fn is not None and _State.grad_enabled):
        return _write(self, xp.zeros(self._data.shape, self._data.dtype), "Zero")
    self._check_inplace()
    self._write_target().fill(0)
    self._bump()
    return self


def fill_(self, value):
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                               f"{value.ndim} dimensions.")
        if _State.grad_enabled and value._requires_grad:
            from .elementwise import broadcast_to
            return self.copy_(broadcast_to(value, tuple(self.shape)))
        value = value.item()
    xp = xp_of(self._data)
    return _write(self, xp.full(self._data.shape, value, self._data.dtype))


def copy_(self, src, non_blocking=False):
    """Copy `src` (broadcast, cast and moved as needed) into this tensor; differentiable."""
    if not isinstance(src, Tensor):
        from ..creation import as_tensor
        src = as_tensor(src)
    if src._data.shape != self._data.shape:
        try:
            src = src.expand(*self._data.shape)
        except RuntimeError:
            raise RuntimeError(f"copy_: the source of shape {list(src.shape)} cannot be broadcast "
                               f"to the destination's shape {list(self.shape)}") from None
    if device_of(src._data) != device_of(self._data):
        src = src.to(device_of(self._data))
    if _State.grad_enabled and src._requires_grad:
        from .elementwise import Clone
        return self._inplace_from(Clone.apply(src).to(dtype=self.dtype))
    arr = src._data
    if arr.dtype != self._data.dtype:
        arr = arr.astype(self._data.dtype)
    return _write(self, to_device_array(arr, device_of(self._data)), "Copy")


def _gen(self, generator):
    return generator or default_generator_for(device_of(self._data))


def uniform_(self, a=0.0, b=1.0, *, generator=None):
    u = _gen(self, generator)._uniform(self._data.shape, self._data.dtype, device_of(self._data))
    return _write(self, u * (b - a) + a if (a, b) != (0.0, 1.0) else u, "Uniform")


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    z = _gen(self, generator)._normal(self._data.shape, self._data.dtype, device_of(self._data))
    return _write(self, (z * std + mean).astype(self._data.dtype, copy=False), "Normal")


def bernoulli_(self, p=0.5, *, generator=None):
    u = _gen(self, generator)._uniform(self._data.shape, self._data.dtype, device_of(self._data))
    pp = p._data if isinstance(p, Tensor) else p
    return _write(self, (u < pp).astype(self._data.dtype))


def exponential_(self, lambd=1.0, *, generator=None):
    xp = xp_of(self._data)
    u = _gen(self, generator)._uniform(self._data.shape, self._data.dtype, device_of(self._data))
    return _write(self, (-xp.log1p(-u) / lambd).astype(self._data.dtype, copy=False))


def random_(self, low=0, high=None, *, generator=None):
    if high is None:
        low, high = 0, low if low else 2 ** 24
    r = _gen(self, generator)._integers(low, high, self._data.shape, self._data.dtype,
                                        device_of(self._data))
    return _write(self, r)


def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
    xp = xp_of(self._data)
    z = _gen(self, generator)._normal(self._data.shape, self._data.dtype, device_of(self._data))
    return _write(self, xp.exp(z * std + mean).astype(self._data.dtype, copy=False))


def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
    xp = xp_of(self._data)
    u = _gen(self, generator)._uniform(self._data.shape, self._data.dtype, device_of(self._data))
    return _write(self, (median + sigma * xp.tan(math.pi * (u - 0.5))).astype(self._data.dtype))


for _f in (zero_, fill_, copy_, uniform_, normal_, bernoulli_, exponential_, random_,
           log_normal_, cauchy_):
    setattr(Tensor, _f.__name__, _f)
