"""Complex numbers: real and imaginary parts, conjugation, angle, complex <-> (..., 2) real
views, and complex tensors built from parts.

Gradients follow PyTorch's convention: for a real loss L and z = x + iy, z.grad is
dL/dx + i dL/dy, so the backward of a holomorphic f maps g to g * conj(f'(z)), and a real
part's gradient g comes back as the complex g + 0j. Lantern has no lazy conjugate bit: `conj`
copies and `is_conj` is always False.

This module imports elementwise.py, so elementwise.py reaches it only inside functions (or
through Tensor methods such as `conj`).
"""
from __future__ import annotations

import math

import numpy as np

from ..amp import autocast_listed
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ._util import _align_devices, broadcast_shape, check_same_device, float_input
from .elementwise import ones_scalar, sum_to, where, zeros_scalar
from .registry import install_methods, register
from .shape import _as_view

_COMPLEX_OF = {np.dtype(np.float32): np.dtype(np.complex64),
               np.dtype(np.float64): np.dtype(np.complex128)}
_REAL_OF = {c: r for r, c in _COMPLEX_OF.items()}


def _is_complex(t: Tensor) -> bool:
    return t._data.dtype.kind == "c"


class Real(Op):
    def forward(self, x):
        return x.real

    def backward(self, g):
        return (Complex.apply(g, zeros_scalar(g)),)


class Imag(Op):
    def forward(self, x):
        return x.imag

    def backward(self, g):
        return (Complex.apply(zeros_scalar(g), g),)


class Complex(Op):
    """re + i im, broadcast; assembled part by part, so that an infinite part stays exact
    (im * 1j would turn 0 * inf into nan)."""

    def forward(self, re, im):
        self.sr, self.si = re.shape, im.shape
        out = xp_of(re).empty(np.broadcast_shapes(re.shape, im.shape), _COMPLEX_OF[re.dtype])
        out.real[...] = re
        out.imag[...] = im
        return out

    def backward(self, g):
        er, ei = self.next_edges
        return (sum_to(Real.apply(g), self.sr) if er is not None else None,
                sum_to(Imag.apply(g), self.si) if ei is not None else None)


class Conj(Op):
    def forward(self, x):
        return xp_of(x).conj(x)

    def backward(self, g):
        return (Conj.apply(g),)


class Angle(Op):
    save_inputs = (0,)

    def forward(self, x):
        xp = xp_of(x)
        if x.dtype.kind == "c":
            return xp.angle(x)
        # PyTorch: pi for negatives, else 0 (also for -0.0, where atan2 gives pi), nan kept
        t = x.dtype.type
        return xp.where(xp.isnan(x), x, xp.where(x < 0, t(math.pi), t(0)))

    def backward(self, g):
        (x,) = self.saved_tensors
        if not _is_complex(x):
            return (g * 0.0,)
        # d angle = (x dy - y dx) / |z|^2, i.e. z.grad = g * i z / |z|^2 (0 at z = 0); all
        # complex, as a real operand's Cast would warn in second derivatives
        den = x * x.conj()  # |z|^2 with an exactly zero imaginary part
        return (Complex.apply(zeros_scalar(g), g) * x / where(den == 0, ones_scalar(den), den),)


class ViewAsReal(Op):
    def forward(self, x):
        if x.flags.c_contiguous and x.ndim:
            return x.view(_REAL_OF[x.dtype]).reshape(x.shape + (2,))
        xp = xp_of(x)
        return xp.stack((xp.real(x), xp.imag(x)), axis=-1)

    def backward(self, g):
        return (ViewAsComplex.apply(g),)


class ViewAsComplex(Op):
    def forward(self, x):
        if x.flags.c_contiguous:
            return x.view(_COMPLEX_OF[x.dtype]).reshape(x.shape[:-1])
        out = xp_of(x).empty(x.shape[:-1], _COMPLEX_OF[x.dtype])
        out.real[...] = x[..., 0]
        out.imag[...] = x[..., 1]
        return out

    def backward(self, g):
        return (ViewAsReal.apply(g),)


@register(method=False)
def real(input: Tensor) -> Tensor:
    """The real part (a view of a complex tensor; a real tensor itself)."""
    if not _is_complex(input):
        return input
    return _as_view(Real.apply(input), input)


@register(method=False)
def imag(input: Tensor) -> Tensor:
    """The imaginary part of a complex tensor (a view)."""
    if not _is_complex(input):
        raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
    return _as_view(Imag.apply(input), input)


@register()
def conj(input: Tensor) -> Tensor:
    """The complex conjugate (a copy; a real tensor itself)."""
    return Conj.apply(input) if _is_complex(input) else input


@register()
def conj_physical(input: Tensor) -> Tensor:
    """The complex conjugate, materialised (as conj: Lantern's conj is always physical)."""
    return Conj.apply(input) if _is_complex(input) else input


@register()
def resolve_conj(input: Tensor) -> Tensor:
    """The tensor itself: Lantern never defers a conjugation."""
    return input


@register(differentiable=False)
def is_conj(input: Tensor) -> bool:
    """Always False: Lantern's conj is physical, never a lazy bit."""
    return False


@register()
def angle(input: Tensor) -> Tensor:
    """The argument of each element in radians (for real input: pi if negative, else 0)."""
    return Angle.apply(float_input(input))


def _float_parts(a: Tensor, b: Tensor, opname: str):
    """The two real parts of complex()/polar(), checked and on one device."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"{opname}(): expected both arguments to be Tensors, got "
                        f"{type(a).__name__} and {type(b).__name__}")
    da, db = a._data.dtype, b._data.dtype
    if da not in _COMPLEX_OF or db not in _COMPLEX_OF:
        raise RuntimeError(f"{opname}: expected both inputs to be Float or Double tensors but got "
                           f"{a.dtype.name} and {b.dtype.name}")
    if da != db:
        raise RuntimeError(f"{opname}: expected both inputs to have the same dtype, but got "
                           f"{a.dtype.name} and {b.dtype.name}")
    check_same_device(a, b, opname)
    broadcast_shape(a._data.shape, b._data.shape, opname)
    return _align_devices(a, b)


@register(method=False)
def complex(real: Tensor, imag: Tensor) -> Tensor:  # noqa: A001  (torch.complex)
    """The complex tensor real + i imag (float32 -> complex64, float64 -> complex128)."""
    return Complex.apply(*_float_parts(real, imag, "complex"))


@register(method=False)
@autocast_listed("polar")
def polar(abs: Tensor, angle: Tensor) -> Tensor:  # noqa: A002  (torch.polar)
    """The complex tensor abs * (cos(angle) + i sin(angle))."""
    r, t = _float_parts(abs, angle, "polar")
    return Complex.apply(r * t.cos(), r * t.sin())


@register(method=False)
def view_as_real(input: Tensor) -> Tensor:
    """A complex tensor as a real one with a trailing dim of 2 (real, imaginary); a view
    when the input is contiguous, else a copy."""
    if not _is_complex(input):
        raise RuntimeError("view_as_real is only supported for complex tensors")
    return _as_view(ViewAsReal.apply(input), input)


@register(method=False)
@autocast_listed("view_as_complex")
def view_as_complex(input: Tensor) -> Tensor:
    """A real (..., 2) tensor as a complex one; a view when the input is contiguous, else a
    copy."""
    if input._data.dtype not in _COMPLEX_OF:
        raise RuntimeError("view_as_complex is only supported for float and double tensors, but "
                           f"got a tensor of scalar type: {input.dtype.name}")
    if input._data.ndim == 0 or input._data.shape[-1] != 2:
        raise RuntimeError(f"Tensor must have a last dimension of size 2, got shape "
                           f"{list(input.shape)}")
    return _as_view(ViewAsComplex.apply(input), input)


install_methods(Tensor)  # this module loads after ops/__init__ bound the other methods
# H and mH are the conjugate transposes (ops/__init__ bound them to T and mT, which they
# equal for real tensors).
Tensor.H = property(lambda self: conj(self.T))
Tensor.mH = property(lambda self: conj(self.mT))
