"""`framework.nn.functional` (as torch.nn.functional): the stateless layers, activations,
losses and resampling ops, with PyTorch's signatures, defaults and semantics.

The ops live in framework/ops (conv, pooling, normalization, activation, dropout, loss,
sampling, embedding, attention); importing this module registers them.
"""
from __future__ import annotations

from ..ops import elementwise as _elementwise
from ..ops import reduction as _reduction
from ..ops.activation import (apply_inplace as _apply_inplace, celu, elu, gelu, glu,  # noqa: F401
                              gumbel_softmax, hardshrink, hardsigmoid, hardswish, hardtanh,
                              leaky_relu, logsigmoid, mish, prelu, relu6, rrelu, selu, silu,
                              softmin, softplus, softshrink, softsign, tanhshrink, threshold)
from ..ops.attention import scaled_dot_product_attention  # noqa: F401
from ..ops.conv import (bilinear, conv1d, conv2d, conv3d, conv_transpose1d,  # noqa: F401
                        conv_transpose2d, conv_transpose3d, fold, linear, unfold)
from ..ops.dropout import (alpha_dropout, dropout, dropout1d, dropout2d, dropout3d,  # noqa: F401
                           feature_alpha_dropout)
from ..ops.embedding import embedding, embedding_bag  # noqa: F401
from ..ops.loss import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401
                        cosine_embedding_loss, ctc_loss, cosine_similarity, cross_entropy,
                        gaussian_nll_loss, hinge_embedding_loss, huber_loss, kl_div, l1_loss,
                        margin_ranking_loss, mse_loss, multi_margin_loss,
                        multilabel_margin_loss, multilabel_soft_margin_loss, nll_loss,
                        pairwise_distance, poisson_nll_loss, smooth_l1_loss, soft_margin_loss,
                        triplet_margin_loss, triplet_margin_with_distance_loss)
from ..ops.normalization import (batch_norm, group_norm, instance_norm, layer_norm,  # noqa: F401
                                 local_response_norm, normalize, rms_norm)
from ..ops.pooling import (adaptive_avg_pool1d, adaptive_avg_pool2d,  # noqa: F401
                           adaptive_avg_pool3d, adaptive_max_pool1d, adaptive_max_pool2d,
                           adaptive_max_pool3d, avg_pool1d, avg_pool2d, avg_pool3d,
                           fractional_max_pool2d, fractional_max_pool3d, lp_pool1d,
                           lp_pool2d, lp_pool3d, max_pool1d, max_pool1d_with_indices,
                           max_pool2d, max_pool2d_with_indices, max_pool3d,
                           max_pool3d_with_indices, max_unpool1d, max_unpool2d, max_unpool3d)
from ..ops.sampling import (affine_grid, grid_sample, interpolate, one_hot, pad,  # noqa: F401
                            pixel_shuffle, pixel_unshuffle, upsample, upsample_bilinear,
                            upsample_nearest)
from ..ops.elementwise import sigmoid, tanh  # noqa: F401


def _softmax_dim(ndim: int) -> int:
    import warnings
    warnings.warn("Implicit dimension choice for softmax has been deprecated. Change the call "
                  "to include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x) / sum(exp(x)) along dim."""
    if dim is None:
        dim = _softmax_dim(input.ndim)
    return _reduction.softmax(input, dim, dtype=dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim(input.ndim)
    return _reduction.log_softmax(input, dim, dtype=dtype)


def relu(input, inplace=False):
    """max(x, 0); with inplace=True the result is written into input."""
    return _apply_inplace(input, _elementwise.relu, inplace)


def relu_(input):
    return relu(input, inplace=True)


def elu_(input, alpha=1.0):
    return elu(input, alpha, inplace=True)


def celu_(input, alpha=1.0):
    return celu(input, alpha, inplace=True)


def selu_(input):
    return selu(input, inplace=True)


def leaky_relu_(input, negative_slope=0.01):
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return hardtanh(input, min_val, max_val, inplace=True)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    return rrelu(input, lower, upper, training, inplace=True)


def threshold_(input, threshold, value):
    return globals()["threshold"](input, threshold, value, inplace=True)
