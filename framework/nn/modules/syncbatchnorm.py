"""`SyncBatchNorm`: batch normalization whose statistics cover the whole global batch, split
across the processes of `framework.distributed`, as torch.nn.SyncBatchNorm.

Forward: each rank sends its per-channel count, mean and sum of squared deviations (one
all-gather); the global mean and variance are combined exactly from them (Chan's formula).
Backward: each rank sends its per-channel sums of the gradient and of the gradient times the
normalised input (one all-reduce), which is what the input gradient needs from the other
ranks. The weight and bias gradients stay local, as in PyTorch: DistributedDataParallel
averages them with the other gradients. Outside training, or without a multi-process group,
it is plain BatchNorm.
"""
from __future__ import annotations

import numpy as np

from ... import _dtype as D
from ..._backend import xp_of
from ..._tensor import Tensor
from ...autograd.function import Op
from ...autograd.grad_mode import no_grad
from .. import functional as F
from .module import Module
from .normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


def _group_size() -> int:
    from ... import distributed as dist
    return dist.get_world_size() if dist.is_initialized() else 1


class _SyncNormalize(Op):
    """x -> (x - mean) * invstd with the global statistics given; its backward all-reduces
    the two per-channel gradient sums."""

    def forward(self, x):
        self.xhat = (x - self.mean.reshape(self.bshape)) * self.invstd.reshape(self.bshape)
        return self.xhat

    def backward(self, g):
        from ... import distributed as dist
        gd = g._data
        xp = xp_of(gd)
        xhat = self.xhat
        sums = xp.concatenate([gd.sum(axis=self.axes), (gd * xhat).sum(axis=self.axes)])
        sums = sums.astype(np.float64)
        dist.all_reduce(Tensor._make(sums, None, 0))
        c = sums.shape[0] // 2
        mean_g = (sums[:c] / self.count).astype(gd.dtype).reshape(self.bshape)
        mean_gx = (sums[c:] / self.count).astype(gd.dtype).reshape(self.bshape)
        dx = self.invstd.reshape(self.bshape) * (gd - mean_g - xhat * mean_gx)
        return (Tensor._make(dx, None, 0),)

    def _release_extra(self):
        self.xhat = None


def _global_stats(x, axes, eps: float):
    """(mean, biased variance, invstd, total count) per channel over every rank's batch."""
    from ... import distributed as dist
    xp = xp_of(x)
    c = x.shape[1]
    n = x.size // c if c else 0
    if n:
        mean = x.mean(axis=axes, dtype=np.float64)
        dev = x - mean.astype(x.dtype).reshape((1, c) + (1,) * (x.ndim - 2))
        m2 = (dev * dev).sum(axis=axes, dtype=np.float64)
    else:
        mean = xp.zeros(c, np.float64)
        m2 = xp.zeros(c, np.float64)
    mine = xp.concatenate([xp.asarray([float(n)]), mean, m2])
    world = dist.get_world_size()
    out = Tensor._make(xp.zeros(world * mine.size, np.float64), None, 0)
    dist.all_gather_into_tensor(out, Tensor._make(mine, None, 0))
    rows = out._data.reshape(world, 1 + 2 * c)
    counts, means, m2s = rows[:, :1], rows[:, 1:1 + c], rows[:, 1 + c:]
    total = float(counts.sum())
    if total <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got {total:g} "
                         "over all ranks")
    gmean = (counts * means).sum(axis=0) / total
    gm2 = m2s.sum(axis=0) + (counts * (means - gmean) ** 2).sum(axis=0)
    var = gm2 / total
    invstd = 1.0 / xp.sqrt(var + eps)
    return gmean, var, invstd, total


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, ...) inputs with statistics over all ranks' batches."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None,
                 *, bias: bool = True) -> None:
        if process_group is not None:
            raise ValueError("SyncBatchNorm: only the default process group "
                             "(process_group=None) is supported")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)

    def _check_input_dim(self, input) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input):
        self._check_input_dim(input)
        if input.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm: expected {self.num_features} channels, got "
                             f"input of shape {tuple(input.shape)}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        if not (bn_training and self.training and _group_size() > 1):
            use_stats = not self.training or self.track_running_stats
            return F.batch_norm(input, self.running_mean if use_stats else None,
                                self.running_var if use_stats else None, self.weight,
                                self.bias, bn_training, factor, self.eps)
        if not input.is_floating_point():
            raise TypeError(f"SyncBatchNorm: expected a floating-point input, got {input.dtype}")
        orig = input.dtype
        x = input.float() if orig in (D.float16, D.bfloat16) else input   # stats in float32
        arr = x._data
        axes = (0,) + tuple(range(2, arr.ndim))
        bshape = (1, arr.shape[1]) + (1,) * (arr.ndim - 2)
        mean, var, invstd, total = _global_stats(arr, axes, self.eps)
        if self.track_running_stats and self.running_mean is not None:
            with no_grad():
                rm, rv = self.running_mean._writable(), self.running_var._writable()
                rm[...] = (1 - factor) * rm + factor * mean.astype(rm.dtype)
                unbiased = var * (total / (total - 1))
                rv[...] = (1 - factor) * rv + factor * unbiased.astype(rv.dtype)
        y = _SyncNormalize.apply(x, mean=mean.astype(arr.dtype), invstd=invstd.astype(arr.dtype),
                                 axes=axes, bshape=bshape, count=total)
        if self.weight is not None:
            y = y * self.weight.reshape(bshape)
        if self.bias is not None:
            y = y + self.bias.reshape(bshape)
        return y.to(orig) if y.dtype != orig else y

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """`module` with every BatchNorm*D layer replaced by a SyncBatchNorm that shares its
        parameters and buffers (the root itself when it is one)."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, process_group,
                      bias=module.bias is not None or not module.affine)
            if module.affine:
                out.weight = module.weight
                out.bias = module.bias
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
            out.train(module.training)
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out
