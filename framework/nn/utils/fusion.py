"""Folding an eval-mode batch norm into the convolution or linear layer before it
(torch.nn.utils.fusion): one layer computing what the pair computes with frozen statistics."""
from __future__ import annotations

import copy
from typing import TypeVar

from ..._tensor import Tensor
from ...creation import ones_like, zeros_like
from ..modules.normalization import _BatchNorm
from ..modules.conv import _ConvNd
from ..modules.linear import Linear
from ..parameter import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
           "fuse_linear_bn_weights"]

ConvT = TypeVar("ConvT", bound=_ConvNd)
LinearT = TypeVar("LinearT", bound=Linear)


def fuse_conv_bn_eval(conv: ConvT, bn: _BatchNorm, transpose: bool = False) -> ConvT:
    """A copy of `conv` (a transposed convolution if `transpose`) computing conv then `bn`,
    both in eval mode."""
    if conv.training or bn.training:
        raise RuntimeError("Fusion only for eval!")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("bn.running_mean and bn.running_var must not be None (the batch norm "
                         "must track running stats)")
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias,
        transpose)
    return fused


def fuse_conv_bn_weights(conv_w: Tensor, conv_b: Tensor | None, bn_rm: Tensor, bn_rv: Tensor,
                         bn_eps: float, bn_w: Tensor | None, bn_b: Tensor | None,
                         transpose: bool = False) -> tuple[Parameter, Parameter]:
    """Weight and bias of the convolution equal to conv(conv_w, conv_b) followed by the batch
    norm (running mean/var, eps, affine weight/bias; None: 1/0); output channels are dim 1 of
    a transposed convolution's weight, dim 0 otherwise. Dtypes are the convolution's."""
    w_dtype = conv_w.dtype
    b_dtype = w_dtype if conv_b is None else conv_b.dtype
    if conv_b is None:
        conv_b = zeros_like(bn_rm)
    if bn_w is None:
        bn_w = ones_like(bn_rm)
    if bn_b is None:
        bn_b = zeros_like(bn_rm)
    inv_std = (bn_rv + bn_eps).rsqrt()
    extra = [1] * (conv_w.dim() - 2)
    shape = [1, -1, *extra] if transpose else [-1, 1, *extra]
    fused_w = (conv_w * (bn_w * inv_std).reshape(shape)).to(dtype=w_dtype)
    fused_b = ((conv_b - bn_rm) * inv_std * bn_w + bn_b).to(dtype=b_dtype)
    return Parameter(fused_w, conv_w.requires_grad), Parameter(fused_b, conv_b.requires_grad)


def fuse_linear_bn_eval(linear: LinearT, bn: _BatchNorm) -> LinearT:
    """A copy of `linear` computing linear then `bn` (BatchNorm1d over its outputs, or with
    one feature), both in eval mode."""
    if linear.training or bn.training:
        raise RuntimeError("Fusion only for eval!")
    # one batch-norm feature broadcasts over all outputs; otherwise they must correspond
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise ValueError("To fuse, linear.out_features == bn.num_features or "
                         f"bn.num_features == 1, got linear.out_features={linear.out_features} "
                         f"and bn.num_features={bn.num_features}")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("bn.running_mean and bn.running_var must not be None (the batch norm "
                         "must track running stats)")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    return fused


def fuse_linear_bn_weights(linear_w: Tensor, linear_b: Tensor | None, bn_rm: Tensor,
                           bn_rv: Tensor, bn_eps: float, bn_w: Tensor,
                           bn_b: Tensor) -> tuple[Parameter, Parameter]:
    """Weight and bias of the linear layer equal to linear(linear_w, linear_b) followed by the
    batch norm (running mean/var, eps, affine weight/bias). Dtypes are the linear layer's."""
    w_dtype = linear_w.dtype
    b_dtype = w_dtype if linear_b is None else linear_b.dtype
    if linear_b is None:
        linear_b = zeros_like(bn_rm)
    scale = bn_w * (bn_rv + bn_eps).rsqrt()
    fused_w = linear_w * scale.unsqueeze(-1).to(dtype=w_dtype)
    fused_b = ((linear_b - bn_rm) * scale + bn_b).to(dtype=b_dtype)
    return Parameter(fused_w, linear_w.requires_grad), Parameter(fused_b, linear_b.requires_grad)
