"""Registration of the framework.nn.functional ops.

Every functional op is registered (so the op-table coverage tests see it) with no Tensor
method. Only the ops that PyTorch also exposes at the top level with the same signature
(torch.conv2d, torch.layer_norm, ...) are marked `function`, which makes framework/__init__
export them as framework.<name>; the others exist at the top level of torch with another
argument order or an integer `reduction` (torch.embedding(weight, input),
torch.batch_norm(input, weight, bias, running_mean, ...), torch.kl_div(..., reduction=1)),
or not at all, and are reached through framework.nn.functional only.
"""
from __future__ import annotations

from .registry import register

TORCH_TOPLEVEL = frozenset({
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "bilinear", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "adaptive_avg_pool1d",
    "pixel_shuffle", "pixel_unshuffle", "cosine_similarity", "pairwise_distance", "dropout",
    "alpha_dropout", "feature_alpha_dropout", "prelu", "selu", "celu", "rrelu", "threshold",
    "hardshrink", "layer_norm", "group_norm", "rms_norm",
})


def register_functional(name: str, *, differentiable: bool = True):
    return register(name, method=False, differentiable=differentiable,
                    function=name in TORCH_TOPLEVEL)
