"""Dropout: dropout, dropout1d/2d/3d (whole channels), alpha_dropout and
feature_alpha_dropout. The kept elements are scaled by 1/(1-p) in training; in evaluation
the input is returned unchanged. Masks come from the device's default generator
(`framework.manual_seed` makes them reproducible). bfloat16 inputs are scaled in bfloat16,
as PyTorch's CPU dropout does (x times a bfloat16 mask holding 1/(1-p))."""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _cuda_kernels as _K
from .._backend import on_device
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from ..random import default_generator_for
from .activation import apply_inplace
from ._bfloat16 import is_bfloat16
from ._functional_registry import register_functional

_make = Tensor._make


class Dropout(Op):
    """y = x * mask * scale (+ shift), mask drawn once per call (broadcast over `mask_shape`).

    On CuPy arrays (no shift) the draw is one float32 uniform array and the mask, scale and
    product are one fused kernel that keeps a bool mask (1 byte per element) for backward."""

    keep = None  # the bool mask of the fused GPU path

    def forward(self, x):
        if self.shift is None and not isinstance(x, (np.ndarray, np.generic)) and \
                x.dtype in _K._FLOATS:
            return self._forward_fused(x)
        gen = default_generator_for(self.device)
        # bfloat16 draws in float32 (8-bit draws would skew p); the mask and product below
        # run in bfloat16 itself: PyTorch's CPU dropout is x * (bernoulli mask / (1 - p)) in
        # the input's dtype, and each bfloat16 product is rounded once
        u = gen._uniform(self.mask_shape, np.float32 if x.dtype.kind == "V" else x.dtype,
                         self.device)
        keep = u >= self.p
        m = keep * x.dtype.type(self.scale)
        self.m = m
        y = x * m
        if self.shift is not None:  # alpha dropout: dropped units take a fixed value
            y += (~keep) * x.dtype.type(self.shift)
        return y

    def _forward_fused(self, x):
        gen = default_generator_for(self.device)
        rng = getattr(gen, "_rng", None)
        if rng is not None and hasattr(rng, "random_sample"):
            with on_device(self.device):
                u = rng.random_sample(self.mask_shape, dtype=np.float32)
        else:
            u = gen._uniform(self.mask_shape, np.float32, self.device)
        if tuple(self.mask_shape) == tuple(x.shape):
            y, self.keep = _K.dropout_forward(x, u, self.p, self.scale)
            return y
        self.keep = u >= np.float32(self.p)  # per channel: a small mask, broadcast
        return _K.dropout_backward(x, self.keep, self.scale)

    def backward(self, g):
        keep = self.keep
        if keep is not None:
            if not _State.grad_enabled and g._data.dtype in _K._FLOATS:
                return (_make(_K.dropout_backward(g._data, keep, self.scale), None, 0),)
            m = keep.astype(g._data.dtype) * g._data.dtype.type(self.scale)
            return (g * _make(m, None, 0),)
        return (g * _make(self.m, None, 0),)

    def _release_extra(self):
        self.m = None
        self.keep = None


def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout(input, p, training, inplace, mask_shape, shift_fn=None):
    _check_p(p)
    if not training or p == 0.0:
        return input
    if input._data.dtype.kind not in "fc" and not is_bfloat16(input):
        raise RuntimeError(f"dropout: expected a floating point input, got {input.dtype.name}")
    if p == 1.0:
        return apply_inplace(input, lambda t: t * 0.0, inplace)
    if shift_fn is None:
        scale, shift = 1.0 / (1.0 - p), None
    else:
        scale, shift = shift_fn(p)
    dev = input.device
    return apply_inplace(input, lambda t: Dropout.apply(t, p=float(p), scale=scale, shift=shift,
                                                        mask_shape=mask_shape, device=dev),
                         inplace)


@register_functional("dropout")
def dropout(input, p=0.5, training=True, inplace=False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    return _dropout(input, p, training, inplace, tuple(input._data.shape))


def _feature_shape(input, d, opname):
    nd = input._data.ndim
    if nd not in (d + 1, d + 2):
        raise RuntimeError(f"{opname}: Expected {d + 1}D or {d + 2}D input, but received a {nd}D "
                           f"input of size {list(input.shape)}")
    sh = input._data.shape
    if nd == d + 1:  # unbatched (C, *S)
        return (sh[0],) + (1,) * d
    return sh[:2] + (1,) * d


@register_functional("dropout1d")
def dropout1d(input, p=0.5, training=True, inplace=False) -> Tensor:
    """Zero whole channels of (N, C, L) input."""
    return _dropout(input, p, training, inplace, _feature_shape(input, 1, "dropout1d"))


def _feature_noise_shape(shape) -> tuple:
    """The mask shape of PyTorch's feature dropout: one draw per (sample, channel) of a
    (N, C, *) input."""
    if len(shape) < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    return tuple(shape[:2]) + (1,) * (len(shape) - 2)


def _warn_feature_dims(name: str, nd: int, spatial: int) -> None:
    if nd not in (spatial + 1, spatial + 2):
        warnings.warn(
            f"{name}: Received a {nd}-D input to {name}, which is deprecated and will result in "
            "an error in a future release. To retain the behavior and silence this warning, "
            f"please use dropout instead. Note that {name} exists to provide channel-wise "
            f"dropout on inputs with {spatial} spatial dimensions, a channel dimension, and an "
            f"optional batch dimension (i.e. {spatial + 1}D or {spatial + 2}D inputs).",
            stacklevel=3)


def _masked(input, p, training) -> bool:
    """Whether dropout draws a mask at all (PyTorch checks the dims only then)."""
    return training and 0.0 < p < 1.0 and input._data.size > 0


@register_functional("dropout2d")
def dropout2d(input, p=0.5, training=True, inplace=False) -> Tensor:
    """Zero whole channels of (N, C, H, W) input. As PyTorch 2.x: a 3-D input is taken as
    (N, C, L) with a warning (not as an unbatched (C, H, W)); other ranks warn and drop along
    dim 1 (at least 2 dims are needed)."""
    _check_p(p)
    nd = input._data.ndim
    _warn_feature_dims("dropout2d", nd, 2)
    if nd == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), where C is "
            "the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2)
    shape = _feature_noise_shape(input._data.shape) if _masked(input, p, training) else None
    return _dropout(input, p, training, inplace, shape)


@register_functional("dropout3d")
def dropout3d(input, p=0.5, training=True, inplace=False) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or unbatched (C, D, H, W) input. As PyTorch
    2.x: other ranks warn, and any input that is not 5-D is taken as unbatched (dropping
    along its first dim)."""
    _check_p(p)
    nd = input._data.ndim
    _warn_feature_dims("dropout3d", nd, 3)
    shape = None
    if _masked(input, p, training):
        sh = tuple(input._data.shape)
        shape = _feature_noise_shape(sh) if nd == 5 else _feature_noise_shape((1,) + sh)[1:]
    return _dropout(input, p, training, inplace, shape)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _alpha_affine(p):
    """(a, a*b') so that alpha dropout keeps zero mean and unit variance (as PyTorch's)."""
    alpha_p = -_SELU_ALPHA * _SELU_SCALE
    a = 1.0 / math.sqrt((alpha_p * alpha_p * p + 1) * (1 - p))
    b = -a * alpha_p * p
    return a, a * alpha_p + b, b


def _alpha_dropout(input, p, training, inplace, mask_shape):
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return apply_inplace(input, lambda t: t * 0.0, inplace)
    a, dropped, b = _alpha_affine(p)
    dev = input.device
    # y = (x * keep + alpha' * (1 - keep)) * a + b = x * (keep * a) + (1 - keep) * (alpha'a) + b
    return apply_inplace(input, lambda t: Dropout.apply(t, p=float(p), scale=a, shift=dropped - b,
                                                        mask_shape=mask_shape, device=dev) + b,
                         inplace)


@register_functional("alpha_dropout")
def alpha_dropout(input, p=0.5, training=False, inplace=False) -> Tensor:
    """Dropout for SELU networks: dropped units are set to the SELU saturation value and the
    result is affinely corrected to keep the mean and variance."""
    return _alpha_dropout(input, p, training, inplace, tuple(input._data.shape))


@register_functional("feature_alpha_dropout")
def feature_alpha_dropout(input, p=0.5, training=False, inplace=False) -> Tensor:
    nd = input._data.ndim
    shape = tuple(input._data.shape[:2]) + (1,) * (nd - 2) if nd >= 2 else \
        tuple(input._data.shape)
    return _alpha_dropout(input, p, training, inplace, shape)


__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
           "feature_alpha_dropout"]
