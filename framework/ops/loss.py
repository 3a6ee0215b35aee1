"""Losses and distances, with PyTorch's reductions ('none' | 'mean' | 'sum', and the legacy
size_average/reduce flags).

cross_entropy is one fused op (log-softmax and NLL together, over the class dim 1 of
(N, C, d1, ...) without moving it): its backward is (softmax - target distribution) * scale
written directly on arrays, and with Tensor ops when a graph of the backward is recorded
(so it is twice differentiable). The other losses are short compositions of differentiable
ops, which makes them differentiable to any order (binary_cross_entropy is one op for
PyTorch's clamped-log formula and gradient).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _cuda_kernels as _K
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from .activation import logsigmoid
from .elementwise import exp, log, where
from ._bfloat16 import bfloat16_in_float32
from ._functional_registry import register_functional
from ..amp import autocast_listed

_make = Tensor._make


# ============================================================================ reductions
def _legacy_reduction(size_average, reduce):
    if size_average is None:
        size_average = True
    if reduce is None:
        reduce = True
    if size_average and reduce:
        return "mean"
    if reduce:
        return "sum"
    return "none"


def _reduction(size_average, reduce, reduction):
    if size_average is not None or reduce is not None:
        warnings.warn("size_average and reduce args will be deprecated, please use "
                      "reduction='mean' instead.", stacklevel=3)
        reduction = _legacy_reduction(size_average, reduce)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_same_size(input, target, opname):
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({list(target.shape)}) that is different to the "
                      f"input size ({list(input.shape)}). This will likely lead to incorrect "
                      "results due to broadcasting. Please ensure they have the same size.",
                      stacklevel=3)


def _as_float_like(t, like):
    if not isinstance(t, Tensor):
        from ..creation import as_tensor
        t = as_tensor(t, device=like.device)
    if t._data.dtype != like._data.dtype:
        t = t.to(dtype=like.dtype)
    return t


# ============================================================================ cross entropy
def _class_reduce(xp, z, kind):
    """Max or sum ("max"/"sum") of (N, C, *d) z over dim 1, keepdims. With a few classes and
    spatial dims (segmentation logits, channels-last from a 1x1 convolution) numpy runs one
    inner loop of C elements per pixel; C - 1 whole-array ops over the class planes are
    several times faster."""
    c = z.shape[1]
    if z.ndim <= 2 or c > 16 or c < 2:
        return z.max(axis=1, keepdims=True) if kind == "max" else z.sum(axis=1, keepdims=True)
    op = xp.maximum if kind == "max" else xp.add
    out = op(z[:, 0:1], z[:, 1:2])
    for i in range(2, c):
        op(out, z[:, i:i + 1], out=out)
    return out


class CrossEntropy(Op):
    """Mean/sum/per-sample cross entropy of logits z (N, C, *d) over dim 1.

    Class targets (`tgt` array (N, *d)): loss_i = sum_c Q_ic (lse_i - z_ic) with
    Q = (1-eps) w_y onehot + (eps/C) w (zero rows for ignore_index); the mean divides by
    sum_i w_{y_i}. Probability targets (second input, same shape as z): Q = w * ((1-eps) t +
    eps/C), the mean divides by N*prod(d). The gradient is (softmax * rowsum(Q) - Q) * scale.
    """

    save_inputs = "all"

    def forward(self, z, *prob):
        xp = xp_of(z)
        m = _class_reduce(xp, z, "max")
        e = xp.exp(z - m)
        s = _class_reduce(xp, e, "sum")
        lse = m + xp.log(s)  # (N, 1, *d)
        e /= s
        self.p = e
        c = z.shape[1]
        eps = self.eps
        w = self.weight  # array (C,) or None
        wb = None if w is None else w.reshape((1, c) + (1,) * (z.ndim - 2))
        if not prob:
            tgt = self.tgt
            valid = tgt != self.ignore_index
            ts = xp.where(valid, tgt, 0)
            self.ts = ts
            zt = xp.take_along_axis(z, ts[:, None], axis=1)[:, 0]
            nll = lse[:, 0] - zt
            wt = (w[ts] if w is not None else xp.ones(ts.shape, z.dtype)) * valid
            self.wt = wt.astype(z.dtype, copy=False)
            loss = nll * self.wt * (1.0 - eps) if eps else nll * self.wt
            if eps:
                if w is None:
                    smooth = lse[:, 0] * c - z.sum(axis=1)
                else:
                    smooth = lse[:, 0] * w.sum() - (z * wb).sum(axis=1)
                loss = loss + (eps / c) * smooth * valid
            self.valid = valid
            self.denom = self.wt.sum()
        else:
            t = prob[0]
            if eps:
                t = t * (1.0 - eps) + eps / c
            q = t if wb is None else t * wb
            loss = (q * (lse - z)).sum(axis=1)
            self.lse = lse
            self.denom = loss.size
        loss = loss.astype(z.dtype, copy=False)
        if self.reduction == "none":
            return loss
        total = loss.sum()
        if self.reduction == "sum":
            return xp.asarray(total, dtype=z.dtype)
        with np.errstate(invalid="ignore", divide="ignore"):  # all targets ignored: nan
            return xp.asarray(total / self.denom, dtype=z.dtype)

    def _scale(self, g, xp, shape):
        """Per-sample (N, 1, *d) factor of the upstream gradient."""
        ga = g._data
        if self.reduction == "none":
            return xp.asarray(ga).reshape((shape[0], 1) + shape[2:])
        if self.reduction == "sum":
            return ga
        return ga / self.denom

    def backward(self, g):
        saved = self.saved_tensors
        z = saved[0]
        edges = self.next_edges
        if _State.grad_enabled:
            return self._backward_graph(g, saved)
        xp = xp_of(z._data)
        shape = z._data.shape
        c = shape[1]
        eps = self.eps
        w = self.weight
        k = self._scale(g, xp, shape)
        gz = gt = None
        if len(saved) == 1:  # class targets
            ts = self.ts[:, None]
            wt = self.wt[:, None]
            valid = self.valid[:, None]
            qsum = wt * (1.0 - eps)
            if eps:
                qsum = qsum + valid * ((eps / c) * (w.sum() if w is not None else c))
            if edges[0] is not None:
                gz = self.p * (qsum * k)
                hit = xp.take_along_axis(gz, ts, axis=1) - (1.0 - eps) * wt * k
                xp.put_along_axis(gz, ts, hit, axis=1)
                if eps:
                    wc = (w if w is not None else xp.ones(c, z._data.dtype)).reshape(
                        (1, c) + (1,) * (z._data.ndim - 2))
                    gz -= (eps / c) * wc * (valid * k)
                gz = _make(gz.astype(z._data.dtype, copy=False), None, 0)
            return (gz,)
        t = saved[1]._data
        wb = None if w is None else w.reshape((1, c) + (1,) * (z._data.ndim - 2))
        te = t * (1.0 - eps) + eps / c if eps else t
        q = te if wb is None else te * wb
        if edges[0] is not None:
            gz = (self.p * q.sum(axis=1, keepdims=True) - q) * k
            gz = _make(gz.astype(z._data.dtype, copy=False), None, 0)
        if edges[1] is not None:
            logp = z._data - self.lse
            gt_arr = -logp * (1.0 - eps) * k
            if wb is not None:
                gt_arr = gt_arr * wb
            gt = _make(gt_arr.astype(t.dtype, copy=False), None, 0)
        return gz, gt

    def _backward_graph(self, g, saved):
        from .reduction import log_softmax, softmax
        z = saved[0]
        xp = xp_of(z._data)
        c = z._data.shape[1]
        nd = z._data.ndim
        eps = self.eps
        bshape = (1, c) + (1,) * (nd - 2)
        wt_c = None if self.weight is None else _make(self.weight.reshape(bshape), None, 0)
        if self.reduction == "none":
            k = g.unsqueeze(1)
        elif self.reduction == "sum":
            k = g
        else:
            k = g / float(self.denom)
        p = softmax(z, 1)
        if len(saved) == 1:
            ts = self.ts[:, None]
            onehot = xp.zeros(z._data.shape, z._data.dtype)
            xp.put_along_axis(onehot, ts, 1.0, axis=1)
            q = onehot * (self.wt[:, None] * (1.0 - eps))
            if eps:
                wc = self.weight.reshape(bshape) if self.weight is not None else 1.0
                q = q + (eps / c) * wc * self.valid[:, None]
            qt = _make(q.astype(z._data.dtype, copy=False), None, 0)
            gz = (p * qt.sum(1, keepdim=True) - qt) * k
            return (gz,)
        t = saved[1]
        te = t * (1.0 - eps) + eps / c if eps else t
        q = te * wt_c if wt_c is not None else te
        gz = (p * q.sum(1, keepdim=True) - q) * k
        gt = -log_softmax(z, 1) * (1.0 - eps) * k
        if wt_c is not None:
            gt = gt * wt_c
        return gz, gt

    def _release_extra(self):
        self.p = self.lse = None


class CrossEntropyFused(CrossEntropy):
    """CrossEntropy on the GPU for the common case: 2-D (N, C) CuPy logits of a supported
    float dtype, class targets, no class weights (ignore_index, label smoothing and every
    reduction kept). The forward is one kernel per row (logsumexp, the target's logit) and
    the plain backward one elementwise kernel, (softmax - q) * scale, recomputing the
    softmax from the saved per-row logsumexp instead of keeping the (N, C) softmax. Under
    create_graph the backward is CrossEntropy's Tensor formula."""

    def forward(self, z):
        loss, self.lse_rows, valid = _K.softmax_cross_entropy_forward(
            z, self.tgt, self.ignore_index, self.eps)
        self.valid_rows = valid
        if self.reduction == "none":
            return loss.astype(z.dtype, copy=False)
        total = loss.sum()
        if self.reduction == "sum":
            return total.astype(z.dtype, copy=False)
        self.denom = valid.sum()
        return (total / self.denom).astype(z.dtype, copy=False)  # all ignored: nan

    def backward(self, g):
        saved = self.saved_tensors
        z = saved[0]
        if _State.grad_enabled:
            xp = xp_of(z._data)
            valid = self.tgt != self.ignore_index
            self.valid = valid
            self.ts = xp.where(valid, self.tgt, 0)
            self.wt = valid.astype(z._data.dtype)
            if self.reduction == "mean":
                self.denom = float(self.denom)
            return self._backward_graph(g, saved)
        if self.next_edges[0] is None:
            return (None,)
        ga = g._data
        k = ga / self.denom if self.reduction == "mean" else ga
        gz = _K.softmax_cross_entropy_backward(z._data, self.tgt, self.lse_rows, k,
                                               self.ignore_index, self.eps)
        return (_make(gz, None, 0),)

    def _release_extra(self):
        self.p = self.lse = self.lse_rows = self.valid_rows = None


@register_functional("cross_entropy")
@autocast_listed("cross_entropy")
@bfloat16_in_float32("input", "target", "weight")
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0) -> Tensor:
    """Cross entropy between logits `input` (N, C, d1, ...) (or (C,)) and class indices
    (N, d1, ...) or class probabilities (same shape as input)."""
    reduction = _reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    z = input
    if z._data.dtype.kind not in "fc":
        raise RuntimeError(f"cross_entropy: expected floating point logits, got {z.dtype.name}")
    unbatched = z._data.ndim == 1
    if z._data.ndim == 0:
        raise RuntimeError("cross_entropy: input must have at least one dimension (classes)")
    prob_target = target._data.dtype.kind in "fc"
    if unbatched:
        z = z.unsqueeze(0)
        target = target.unsqueeze(0)
    c = z._data.shape[1]
    w = None
    if weight is not None:
        if weight._data.ndim != 1 or weight._data.shape[0] != c:
            raise RuntimeError(f"cross_entropy: weight tensor should be defined either for all "
                               f"{c} classes or no classes but got weight tensor of shape: "
                               f"{list(weight.shape)}")
        w = weight._data.astype(z._data.dtype, copy=False)
    if prob_target:
        if tuple(target._data.shape) != tuple(z._data.shape):
            raise RuntimeError(f"cross_entropy: expected target of shape {list(input.shape)} "
                               f"(probabilities) but got {list(target.shape)}")
        t = target.to(dtype=z.dtype)
        out = CrossEntropy.apply(z, t, weight=w, eps=float(label_smoothing),
                                 reduction=reduction, tgt=None, ignore_index=None)
    else:
        tgt = target._data
        if tgt.dtype.kind not in "iu":
            raise RuntimeError(f"cross_entropy: expected integer class targets, got "
                               f"{target.dtype.name}")
        exp_shape = (z._data.shape[0],) + tuple(z._data.shape[2:])
        if tuple(tgt.shape) != exp_shape:
            raise RuntimeError(f"cross_entropy: expected target of shape {list(exp_shape)} for "
                               f"input of shape {list(input.shape)}, got {list(target.shape)}")
        _check_targets(tgt, c, ignore_index)
        op = CrossEntropy
        if w is None and z._data.ndim == 2 and z._data.dtype in _K._FLOATS and \
                not isinstance(z._data, (np.ndarray, np.generic)) and \
                not isinstance(tgt, (np.ndarray, np.generic)):
            op = CrossEntropyFused  # the GPU's fused kernels
        out = op.apply(z, weight=w, eps=float(label_smoothing), reduction=reduction,
                       tgt=tgt.astype(np.int64, copy=False), ignore_index=ignore_index)
    if unbatched and reduction == "none":
        out = out.squeeze(0)
    return out


def _check_targets(tgt, c, ignore_index):
    if tgt.size == 0:
        return
    xp = xp_of(tgt)
    bad = (tgt != ignore_index) & ((tgt < 0) | (tgt >= c))
    if bool(bad.any()):
        v = int(tgt[bad].reshape(-1)[0]) if xp is np else int(tgt[bad].reshape(-1)[0].get())
        raise IndexError(f"Target {v} is out of bounds.")


@register_functional("nll_loss")
@autocast_listed("nll_loss")
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean") -> Tensor:
    """Negative log likelihood of log-probabilities `input` (N, C, d1, ...) at class targets."""
    reduction = _reduction(size_average, reduce, reduction)
    x = input
    if x._data.ndim == 1:
        x = x.unsqueeze(0)
        target = target.unsqueeze(0)
    c = x._data.shape[1]
    tgt = target._data
    if tgt.dtype.kind not in "iu":
        raise RuntimeError(f"nll_loss: expected integer class targets, got {target.dtype.name}")
    if tuple(tgt.shape) != (x._data.shape[0],) + tuple(x._data.shape[2:]):
        raise ValueError(f"Expected target size {[x.shape[0]] + list(x.shape[2:])}, got "
                         f"{list(target.shape)}")
    _check_targets(tgt, c, ignore_index)
    xp = xp_of(tgt)
    valid = tgt != ignore_index
    ts = xp.where(valid, tgt, 0).astype(np.int64)
    picked = x.gather(1, _make(ts[:, None], None, 0)).squeeze(1)
    if weight is not None:
        wt = weight._data.astype(x._data.dtype)[ts] * valid
    else:
        wt = valid.astype(x._data.dtype)
    wt_t = _make(wt, None, 0)
    loss = -picked * wt_t
    if reduction == "none":
        return loss.squeeze(0) if input._data.ndim == 1 else loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / wt_t.sum()


# ============================================================================ binary losses
class BinaryCrossEntropy(Op):
    """-w (t log x + (1-t) log(1-x)), logs clamped at -100; inputs (x, t)."""

    save_inputs = "all"

    def forward(self, x, t):
        xp = xp_of(x)
        lx = xp.maximum(xp.log(x), -100.0)
        l1x = xp.maximum(xp.log1p(-x), -100.0)
        out = -(t * lx + (1.0 - t) * l1x)
        return out.astype(x.dtype, copy=False)

    def backward(self, g):
        x, t = self.saved_tensors
        ex, et = self.next_edges
        gx = gt = None
        if ex is not None:
            gx = g * (x - t) / ((1.0 - x) * x).clamp_min(1e-12)
        if et is not None:
            gt = g * (log(1.0 - x).clamp_min(-100.0) - log(x).clamp_min(-100.0))
        return gx, gt


@register_functional("binary_cross_entropy")
@autocast_listed("binary_cross_entropy")
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean") -> Tensor:
    """Binary cross entropy of probabilities `input` against `target` in [0, 1]."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({list(target.shape)}) that is different to the "
                         f"input size ({list(input.shape)}) is deprecated. Please ensure they "
                         "have the same size.")
    xa = input._data
    if xa.size and (bool((xa < 0).any()) or bool((xa > 1).any())):
        raise RuntimeError("all elements of input should be between 0 and 1")
    t = _as_float_like(target, input)
    loss = BinaryCrossEntropy.apply(input, t)
    if weight is not None:
        loss = loss * _as_float_like(weight, input)
    return _reduce(loss, reduction)


@register_functional("binary_cross_entropy_with_logits")
@autocast_listed("binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None) -> Tensor:
    """Sigmoid + binary cross entropy in one stable expression; pos_weight weights the
    positive term per class."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({list(target.shape)}) must be the same as input size "
                         f"({list(input.shape)})")
    t = _as_float_like(target, input)
    if pos_weight is not None:
        pw = _as_float_like(pos_weight, input)
        log_weight = (pw - 1.0) * t + 1.0
        loss = (1.0 - t) * input - log_weight * logsigmoid(input)
    else:
        loss = (1.0 - t) * input - logsigmoid(input)
    if weight is not None:
        loss = loss * _as_float_like(weight, input)
    return _reduce(loss, reduction)


# ============================================================================ regression
def _weighted(loss, weight, input, reduction, mean_by_weight):
    if weight is None:
        return _reduce(loss, reduction)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")
    wl = loss * weight
    if reduction == "none":
        return wl
    if reduction == "sum":
        return wl.sum()
    return wl.sum() / weight.sum() if mean_by_weight else wl.mean()


@register_functional("mse_loss")
@autocast_listed("mse_loss")
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean",
             weight=None) -> Tensor:
    _check_same_size(input, target, "mse_loss")
    reduction = _reduction(size_average, reduce, reduction)
    d = input - target
    return _weighted(d * d, weight, input, reduction, True)


@register_functional("l1_loss")
@autocast_listed("l1_loss")
def l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
            weight=None) -> Tensor:
    _check_same_size(input, target, "l1_loss")
    reduction = _reduction(size_average, reduce, reduction)
    return _weighted((input - target).abs(), weight, input, reduction, True)


class SmoothL1(Op):
    """scale * (0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta), d = input - target,
    elementwise (beta > 0, input and target of one shape): one op forward and backward where
    the composition of abs, where and products takes eight (a DQN's Huber loss runs every
    update)."""

    save_inputs = (0, 1)

    def forward(self, x, t):
        xp = xp_of(x)
        d = x - t
        ad = xp.abs(d)
        b = self.beta
        out = xp.where(ad < b, d * d * (0.5 / b), ad - 0.5 * b)
        if self.scale != 1.0:
            out *= self.scale
        return out.astype(x.dtype, copy=False)

    def backward(self, g):
        x, t = self.saved_tensors
        ex, et = self.next_edges
        if _State.grad_enabled:   # create_graph: differentiable ops
            gi = ((x - t) * (1.0 / self.beta)).clamp(-1.0, 1.0) * (g * self.scale)
            return (gi if ex is not None else None, -gi if et is not None else None)
        xp = xp_of(g._data)
        d = x._data - t._data
        d *= 1.0 / self.beta
        gi = xp.clip(d, -1.0, 1.0, out=d)
        gi *= g._data
        if self.scale != 1.0:
            gi *= self.scale
        gi = gi.astype(g._data.dtype, copy=False)
        return (Tensor._make(gi, None, 0) if ex is not None else None,
                Tensor._make(-gi, None, 0) if et is not None else None)


def _smooth_l1(input, target, beta: float, scale: float):
    """The elementwise loss: the fused op when the shapes agree, else the broadcast form."""
    if tuple(input.shape) == tuple(target.shape) and input.dtype == target.dtype and \
            input.dtype.is_floating_point:
        return SmoothL1.apply(input, target, beta=float(beta), scale=float(scale))
    d = input - target
    ad = d.abs()
    loss = where(ad < beta, d * d * (0.5 / beta), ad - 0.5 * beta)
    return loss * scale if scale != 1.0 else loss


@register_functional("smooth_l1_loss")
@autocast_listed("smooth_l1_loss")
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
                   beta=1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta."""
    _check_same_size(input, target, "smooth_l1_loss")
    reduction = _reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    if beta == 0.0:
        return _reduce((input - target).abs(), reduction)
    return _reduce(_smooth_l1(input, target, beta, 1.0), reduction)


@register_functional("huber_loss")
@autocast_listed("huber_loss")
def huber_loss(input, target, reduction="mean", delta=1.0, weight=None) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta)."""
    _check_same_size(input, target, "huber_loss")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    # huber(d) = delta * smooth_l1(d, beta=delta)
    return _weighted(_smooth_l1(input, target, delta, delta), weight, input, reduction, False)


@register_functional("kl_div")
@autocast_listed("kl_div")
def kl_div(input, target, size_average=None, reduce=None, reduction="mean",
           log_target=False) -> Tensor:
    """KL(target || exp(input)) pointwise: input holds log-probabilities."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", stacklevel=2)
    if log_target:
        loss = exp(target) * (target - input)
    else:
        from .elementwise import xlogy
        loss = xlogy(target, target) - target * input
    if reduction == "batchmean":
        if input._data.ndim == 0:
            return loss.sum()
        return loss.sum() / input._data.shape[0]
    return _reduce(loss, reduction)


@register_functional("poisson_nll_loss")
@autocast_listed("poisson_nll_loss")
def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-08,
                     reduce=None, reduction="mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    if log_input:
        loss = exp(input) - target * input
    else:
        loss = input - target * log(input + eps)
    if full:
        big = target > 1
        safe = where(big, target, 1.0)
        stirling = safe * log(safe) - safe + 0.5 * log(safe * (2 * math.pi))
        loss = loss + where(big, stirling, 0.0)
    return _reduce(loss, reduction)


def _value_clamped_min(t: Tensor, lo: float) -> Tensor:
    """t with values clamped below at lo, the gradient passing as if unclamped (PyTorch's
    in-place clamp under no_grad)."""
    d = t.detach()
    return t + (d.clamp_min(lo) - d)


@register_functional("gaussian_nll_loss")
def gaussian_nll_loss(input, target, var, full=False, eps=1e-06, reduction="mean") -> Tensor:
    if not isinstance(var, Tensor):
        from ..creation import full as full_
        var = full_(tuple(input.shape), float(var), dtype=input.dtype, device=input.device)
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1:
            pass
        else:
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    if bool((var._data < 0).any()):
        raise ValueError("var has negative entry/entries")
    var = _value_clamped_min(var, eps)
    d = input - target
    loss = 0.5 * (log(var) + d * d / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


# ============================================================================ margins, distances
@register_functional("pairwise_distance")
def pairwise_distance(x1, x2, p=2.0, eps=1e-06, keepdim=False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim."""
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)


@register_functional("cosine_similarity")
@autocast_listed("cosine_similarity")
def cosine_similarity(x1, x2, dim=1, eps=1e-08) -> Tensor:
    """sum(x1/||x1|| * x2/||x2||) over dim, each norm clamped below at eps."""
    from .elementwise import broadcast_to
    shape = tuple(np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape)))
    a = broadcast_to(x1, shape)
    b = broadcast_to(x2, shape)
    na = _value_clamped_min(a.norm(2, dim, keepdim=True), eps)
    nb = _value_clamped_min(b.norm(2, dim, keepdim=True), eps)
    return ((a / na) * (b / nb)).sum(dim)


@register_functional("cosine_embedding_loss")
@autocast_listed("cosine_embedding_loss")
def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    d = target._data.ndim
    prod_sum = (input1 * input2).sum(d)
    m1 = (input1 * input1).sum(d) + 1e-12
    m2 = (input2 * input2).sum(d) + 1e-12
    cos = prod_sum / (m1 * m2).sqrt()
    pos = 1.0 - cos
    neg = (cos - margin).clamp_min(0.0)
    out = where(target == 1, pos, 0.0) + where(target == -1, neg, 0.0)
    return _reduce(out, reduction)


@register_functional("margin_ranking_loss")
@autocast_listed("margin_ranking_loss")
def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                        reduction="mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    if input1._data.ndim != input2._data.ndim or input1._data.ndim != target._data.ndim:
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same dimension "
                           f"but got sizes: input1: {list(input1.shape)}, input2: "
                           f"{list(input2.shape)}, target: {list(target.shape)} ")
    return _reduce((-target * (input1 - input2) + margin).clamp_min(0.0), reduction)


@register_functional("hinge_embedding_loss")
@autocast_listed("hinge_embedding_loss")
def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    margin_clamp = (margin - input).clamp_min(0.0)
    out = where(target != 1, margin_clamp, 0.0) + where(target != -1, input, 0.0)
    return _reduce(out, reduction)


@register_functional("soft_margin_loss")
@autocast_listed("soft_margin_loss")
def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    return _reduce(-logsigmoid(input * target), reduction)


@register_functional("multilabel_soft_margin_loss")
def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1.0 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    cd = input._data.ndim - 1
    loss = loss.sum(cd) / input._data.shape[cd]
    return _reduce(loss, reduction)


@register_functional("multi_margin_loss")
@autocast_listed("multi_margin_loss")
def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean") -> Tensor:
    """sum_{j != y} max(0, margin - x_y + x_j)^p / C per sample."""
    reduction = _reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    x = input.unsqueeze(0) if input._data.ndim == 1 else input
    t = target.reshape(-1)
    c = x._data.shape[1]
    xp = xp_of(x._data)
    ta = t._data.astype(np.int64)
    if ta.size and (int(ta.min()) < 0 or int(ta.max()) >= c):
        raise IndexError(f"multi_margin_loss: target out of range for {c} classes")
    xy = x.gather(1, _make(ta[:, None], None, 0))
    z = (x - xy + margin).clamp_min(0.0)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * _make(weight._data.astype(x._data.dtype)[ta][:, None], None, 0)
    not_y = (xp.arange(c)[None, :] != ta[:, None]).astype(x._data.dtype)
    loss = (z * _make(not_y, None, 0)).sum(1) / c
    if input._data.ndim == 1:
        loss = loss.squeeze(0)
    return _reduce(loss, reduction)


@register_functional("multilabel_margin_loss")
@autocast_listed("multilabel_margin_loss")
def multilabel_margin_loss(input, target, size_average=None, reduce=None,
                           reduction="mean") -> Tensor:
    """Targets are class indices padded with -1 (the first -1 ends each sample's list)."""
    reduction = _reduction(size_average, reduce, reduction)
    x = input.unsqueeze(0) if input._data.ndim == 1 else input
    ta = target._data.reshape(x._data.shape)
    xp = xp_of(ta)
    n, c = x._data.shape
    stop = xp.cumsum(ta < 0, axis=1) > 0
    is_t = xp.zeros((n, c), bool)
    rows = xp.broadcast_to(xp.arange(n)[:, None], ta.shape)
    live = ~stop
    is_t[rows[live], ta[live]] = True
    pair = (is_t[:, :, None] & ~is_t[:, None, :]).astype(x._data.dtype)  # (n, j, k)
    hinge = (1.0 - x.unsqueeze(2) + x.unsqueeze(1)).clamp_min(0.0)
    loss = (hinge * _make(pair, None, 0)).sum((1, 2)) / c
    if input._data.ndim == 1:
        loss = loss.squeeze(0)
    return _reduce(loss, reduction)


@register_functional("triplet_margin_loss")
@autocast_listed("triplet_margin_loss")
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-06, swap=False,
                        size_average=None, reduce=None, reduction="mean") -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    nd = anchor._data.ndim
    if positive._data.ndim != nd or negative._data.ndim != nd:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the "
                           f"same number of dimensions, but got: anchor {nd}D, positive "
                           f"{positive._data.ndim}D, and negative {negative._data.ndim}D inputs")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        from .elementwise import minimum
        d_neg = minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce((d_pos - d_neg + margin).clamp_min(0.0), reduction)


@register_functional("triplet_margin_with_distance_loss")
def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin=1.0, swap=False, reduction="mean") -> Tensor:
    if margin <= 0:
        raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, "
                         f"got {margin} instead")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos = dist(anchor, positive)
    d_neg = dist(anchor, negative)
    if swap:
        from .elementwise import minimum
        d_neg = minimum(d_neg, dist(positive, negative))
    return _reduce((d_pos - d_neg + margin).clamp_min(0.0), reduction)


__all__ = ["cross_entropy", "nll_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "mse_loss", "l1_loss", "smooth_l1_loss",
           "huber_loss", "kl_div", "poisson_nll_loss", "gaussian_nll_loss", "pairwise_distance",
           "cosine_similarity", "cosine_embedding_loss", "margin_ranking_loss",
           "hinge_embedding_loss", "soft_margin_loss", "multilabel_soft_margin_loss",
           "multi_margin_loss", "multilabel_margin_loss", "triplet_margin_loss",
           "triplet_margin_with_distance_loss"]


# ============================================================================ CTC
def _as_int_array(v, xp, name):
    if isinstance(v, Tensor):
        a = v._data if xp is np else v._data.get() if hasattr(v._data, "get") else v._data
        return np.asarray(a, dtype=np.int64).reshape(-1)
    return np.asarray(list(v) if not isinstance(v, (int, np.integer)) else [v],
                      dtype=np.int64).reshape(-1)


def _logsumexp3(xp, a, b, c):
    m = xp.maximum(xp.maximum(a, b), c)
    safe = xp.where(xp.isfinite(m), m, 0.0)
    s = xp.exp(a - safe) + xp.exp(b - safe) + xp.exp(c - safe)
    with np.errstate(divide="ignore"):
        return xp.where(xp.isfinite(m), xp.log(s) + safe, -np.inf)


class CTCLoss(Op):
    """-log p(target | log_probs) per sample by the forward (alpha) and backward (beta)
    recursions in log space, vectorized over the batch and the extended label sequence
    (a loop over time only). The gradient with respect to log_probs is the exact one:
    -(alignment posterior of each label) for t < input_length."""

    save_inputs = ()

    def forward(self, lp):
        xp = xp_of(lp)
        T, N, C = lp.shape
        ext = self.ext  # (N, L) extended labels (blank, l1, blank, ..., blank), on host
        L = ext.shape[1]
        in_len, ext_len = self.in_len, self.ext_len
        ext_d = xp.asarray(ext)
        lab = xp.take_along_axis(lp, xp.broadcast_to(ext_d[None], (T, N, L)), axis=2)  # (T,N,L)
        skip = np.zeros((N, L), bool)
        skip[:, 2:] = (ext[:, 2:] != self.blank) & (ext[:, 2:] != ext[:, :-2])
        skip_d = xp.asarray(skip)
        valid_s = xp.asarray(np.arange(L)[None, :] < ext_len[:, None])
        neg = -np.inf
        alpha = xp.full((T, N, L), neg, lp.dtype)
        alpha[0, :, 0] = lab[0, :, 0]
        has_label = xp.asarray(ext_len > 1)
        alpha[0, :, 1] = xp.where(has_label, lab[0, :, 1], neg)
        alpha[0] = xp.where(valid_s, alpha[0], neg)
        for t in range(1, T):
            a = alpha[t - 1]
            a1 = xp.concatenate([xp.full((N, 1), neg, lp.dtype), a[:, :-1]], axis=1)
            a2 = xp.concatenate([xp.full((N, 2), neg, lp.dtype), a[:, :-2]], axis=1)
            a2 = xp.where(skip_d, a2, neg)
            alpha[t] = xp.where(valid_s, _logsumexp3(xp, a, a1, a2) + lab[t], neg)
        last_t = xp.asarray(in_len - 1)
        n_idx = xp.arange(N)
        end = xp.asarray(ext_len - 1)
        a_end = alpha[last_t, n_idx, end]
        a_pen = xp.where(xp.asarray(ext_len > 1), alpha[last_t, n_idx, xp.maximum(end - 1, 0)],
                         neg)
        loglik = xp.logaddexp(a_end, a_pen)
        # beta: started at each sample's own last frame
        beta = xp.full((T, N, L), neg, lp.dtype)
        t_last = xp.asarray(in_len - 1)
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                b = beta[t + 1]
                b1 = xp.concatenate([b[:, 1:], xp.full((N, 1), neg, lp.dtype)], axis=1)
                b2 = xp.concatenate([b[:, 2:], xp.full((N, 2), neg, lp.dtype)], axis=1)
                # a skip from s to s+2 is allowed when s+2 may skip back to s
                b2 = xp.where(xp.concatenate([skip_d[:, 2:], xp.zeros((N, 2), bool)], axis=1),
                              b2, neg)
                rec = _logsumexp3(xp, b, b1, b2) + lab[t]
            else:
                rec = xp.full((N, L), neg, lp.dtype)
            s_ar = xp.arange(L)[None, :]
            init = xp.where((s_ar == end[:, None]) | ((s_ar == end[:, None] - 1) &
                                                      (end[:, None] >= 1)), lab[t], neg)
            here = t_last[:, None] == t
            beta[t] = xp.where(here, init, xp.where(t_last[:, None] > t, rec, neg))
            beta[t] = xp.where(valid_s, beta[t], neg)
        self.alpha, self.beta, self.loglik = alpha, beta, loglik
        nll = -loglik
        self.inf = ~xp.isfinite(nll)
        if self.zero_infinity:
            nll = xp.where(self.inf, 0.0, nll)
        nll = nll.astype(lp.dtype, copy=False)
        if self.reduction == "none":
            return nll
        if self.reduction == "sum":
            return nll.sum()
        return (nll / xp.asarray(np.maximum(self.tgt_len, 1), dtype=lp.dtype)).mean()

    def backward(self, g):
        if _State.grad_enabled:
            raise NotImplementedError("ctc_loss: double backward (create_graph=True through "
                                      "ctc_loss) is not supported")
        alpha, beta, loglik = self.alpha, self.beta, self.loglik
        xp = xp_of(alpha)
        T, N, L = alpha.shape
        C = self.n_classes
        lab_lp = alpha + beta  # log(alpha_t(s) beta_t(s)); both include y_t(l'_s)
        ext_d = xp.asarray(self.ext)
        with np.errstate(invalid="ignore", over="ignore"):
            post = xp.exp(lab_lp - loglik[None, :, None])  # sum_s equals y_t(c) * ...
        post = xp.where(xp.isfinite(post), post, 0.0)
        onehot = (ext_d[:, :, None] == xp.arange(C)[None, None, :]).astype(alpha.dtype)
        occ = xp.einsum("tns,nsc->tnc", post, onehot)  # sum over s with l'_s = c
        lp = self.lp_data
        with np.errstate(over="ignore", invalid="ignore"):
            grad = -occ * xp.exp(-lp)  # d(-log p)/d lp = -(sum alpha beta / y) / p
        grad = xp.where(occ > 0, grad, 0.0)
        t_ok = xp.asarray(np.arange(T)[:, None] < self.in_len[None, :])
        grad = xp.where(t_ok[:, :, None], grad, 0.0)
        if self.zero_infinity:
            grad = xp.where(self.inf[None, :, None], 0.0, grad)
        ga = g._data
        if self.reduction == "none":
            k = ga.reshape(1, N, 1)
        elif self.reduction == "sum":
            k = ga
        else:
            k = ga / (N * xp.asarray(np.maximum(self.tgt_len, 1), dtype=alpha.dtype)).reshape(
                1, N, 1)
        return (_make((grad * k).astype(alpha.dtype, copy=False), None, 0),)

    def _release_extra(self):
        self.alpha = self.beta = self.lp_data = None


@register_functional("ctc_loss")
@autocast_listed("ctc_loss")
def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False) -> Tensor:
    """Connectionist temporal classification loss of log_probs (T, N, C) (or (T, C)) against
    targets (N, S) padded or 1-D concatenated. 'mean' divides each sample's loss by its target
    length, then averages over the batch. The gradient is the exact derivative with respect
    to log_probs (PyTorch's adds exp(log_probs), which vanishes after a log_softmax, so the
    gradients of the logits agree)."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    lp = log_probs
    unbatched = lp._data.ndim == 2
    if unbatched:
        lp = lp.unsqueeze(1)
    if lp._data.ndim != 3:
        raise RuntimeError(f"ctc_loss: log_probs must be (T, N, C) or (T, C), got "
                           f"{list(log_probs.shape)}")
    T, N, C = lp._data.shape
    xp = xp_of(lp._data)
    in_len = _as_int_array(input_lengths, xp, "input_lengths")
    tgt_len = _as_int_array(target_lengths, xp, "target_lengths")
    if in_len.size != N or tgt_len.size != N:
        raise RuntimeError(f"ctc_loss: expected input_lengths and target_lengths of size {N}, "
                           f"got {in_len.size} and {tgt_len.size}")
    if np.any(in_len > T) or np.any(in_len < 1):
        raise RuntimeError(f"ctc_loss: input_lengths must be in [1, {T}], got {in_len.tolist()}")
    tg = targets._data if isinstance(targets, Tensor) else np.asarray(targets)
    tg = np.asarray(tg.get() if hasattr(tg, "get") else tg, dtype=np.int64)
    if unbatched and tg.ndim == 1 and tgt_len.size == 1 and tg.size >= tgt_len[0]:
        tg = tg[None, :]
    smax = int(tgt_len.max()) if N else 0
    lab = np.zeros((N, max(smax, 1)), np.int64)
    if tg.ndim == 2:
        for n in range(N):
            lab[n, :tgt_len[n]] = tg[n, :tgt_len[n]]
    else:
        off = np.concatenate([[0], np.cumsum(tgt_len)])
        if off[-1] > tg.size:
            raise RuntimeError("ctc_loss: targets are shorter than the sum of target_lengths")
        for n in range(N):
            lab[n, :tgt_len[n]] = tg[off[n]:off[n + 1]]
    if np.any((lab < 0) | (lab >= C)):
        raise RuntimeError(f"ctc_loss: target labels must be in [0, {C})")
    L = 2 * max(smax, 1) + 1
    ext = np.full((N, L), blank, np.int64)
    ext[:, 1::2] = lab
    out = CTCLoss.apply(lp, ext=ext, ext_len=2 * tgt_len + 1, in_len=in_len, tgt_len=tgt_len,
                        blank=int(blank), reduction=reduction, zero_infinity=bool(zero_infinity),
                        n_classes=C, lp_data=lp._data)
    if unbatched and reduction == "none":
        out = out.squeeze(0)
    return out


__all__ += ["ctc_loss"]
