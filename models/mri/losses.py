"""Segmentation losses with MONAI's formulas: Dice, Dice + cross-entropy, generalized Dice and
focal, plus nnU-Net's deep-supervision weighting.

Inputs are logits (N, C, *S). Targets are label maps, (N, 1, *S) or (N, *S) of integer
labels in [0, C), or one-hot / soft maps of the input's shape (N, C, *S). With C == 1 (binary,
`sigmoid=True`) a (N, 1, *S) target is the foreground mask.

Differences from MONAI, on purpose:
- the label map is recognised by its shape, so there is no `to_onehot_y` flag;
- `softmax=True` is the default of the Dice losses (MONAI: False), and softmax over a single
  channel is an error rather than a warning;
- `FocalLoss(use_softmax=True, include_background=False)` takes the softmax over all
  channels and then drops the background (MONAI drops it first and renormalises over the
  foreground channels), so its probabilities are those the Dice losses see.
"""
from __future__ import annotations

from typing import Callable, Sequence

import framework as fw
import framework.nn as nn
import framework.nn.functional as F

__all__ = ["DiceLoss", "DiceCELoss", "GeneralizedDiceLoss", "FocalLoss", "DeepSupervisionLoss",
           "deep_supervision_weights", "to_one_hot"]

_REDUCTIONS = ("mean", "sum", "none")


def _label_map(target, input):
    """The (N, *S) integer label map in `target`, or None when `target` is one-hot/soft."""
    n, c, spatial = input.shape[0], input.shape[1], tuple(input.shape[2:])
    shape = tuple(target.shape)
    if shape == (n, c, *spatial):
        return None
    if shape == (n, 1, *spatial):
        return target[:, 0]
    if shape == (n, *spatial):
        return target
    raise ValueError(f"target shape {shape} does not fit input {tuple(input.shape)}: expected "
                     f"a label map {(n, 1, *spatial)} or {(n, *spatial)}, or one-hot "
                     f"{(n, c, *spatial)}")


def to_one_hot(target, input):
    """`target` as a one-hot (or soft) map of `input`'s shape and floating dtype."""
    labels = _label_map(target, input)
    if labels is None:
        return target.to(input.dtype)
    if labels.dtype.is_floating_point:
        labels = labels.long()
    c = input.shape[1]
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= max(c, 2):  # one channel (sigmoid): the target is a 0/1 mask
        raise ValueError(f"target holds labels {lo}..{hi}, but the input has {c} channel(s): "
                         f"labels must be in [0, {max(c, 2) - 1}]")
    classes = fw.arange(c, device=input.device).reshape(1, c, *([1] * (input.ndim - 2)))
    return (labels.unsqueeze(1) == classes).to(input.dtype)


def _reduce(f, reduction: str):
    if reduction == "mean":
        return f.mean()
    if reduction == "sum":
        return f.sum()
    return f


def _check(name: str, softmax: bool, sigmoid: bool, reduction: str) -> None:
    if softmax and sigmoid:
        raise ValueError(f"{name}: softmax and sigmoid are exclusive")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


class _OverlapLoss(nn.Module):
    """What the Dice losses share: activation, one-hot target, background removal."""

    def __init__(self, include_background: bool, softmax: bool, sigmoid: bool, batch: bool,
                 smooth_nr: float, smooth_dr: float, reduction: str) -> None:
        super().__init__()
        _check(type(self).__name__, softmax, sigmoid, reduction)
        self.include_background, self.softmax, self.sigmoid = include_background, softmax, \
            sigmoid
        self.batch, self.reduction = batch, reduction
        self.smooth_nr, self.smooth_dr = float(smooth_nr), float(smooth_dr)

    def _prepare(self, input, target):
        if input.ndim < 3:
            raise ValueError(f"{type(self).__name__}: input must be (N, C, *S), got shape "
                             f"{tuple(input.shape)}")
        if self.softmax and input.shape[1] == 1:
            raise ValueError(f"{type(self).__name__}: softmax over a single channel is "
                             f"constant 1; use sigmoid=True or two channels")
        t = to_one_hot(target, input)
        if self.sigmoid:
            p = input.sigmoid()
        elif self.softmax:
            p = F.softmax(input, 1)
        else:
            p = input
        if not self.include_background and input.shape[1] > 1:  # C == 1: nothing to drop
            p, t = p[:, 1:], t[:, 1:]
        axes = tuple(range(2, input.ndim))
        return p, t, ((0, *axes) if self.batch else axes)


class DiceLoss(_OverlapLoss):
    """1 - (2 sum(p t) + smooth_nr) / (sum(t) + sum(p) + smooth_dr) per sample and channel
    (per channel over the whole batch with batch=True); squared_pred sums p^2 and t^2 in the
    denominator. reduction "mean"/"sum" over the (N, C) or (C,) values, or "none"."""

    def __init__(self, include_background: bool = True, softmax: bool = True,
                 sigmoid: bool = False, squared_pred: bool = False, smooth_nr: float = 1e-5,
                 smooth_dr: float = 1e-5, batch: bool = False, reduction: str = "mean") -> None:
        super().__init__(include_background, softmax, sigmoid, batch, smooth_nr, smooth_dr,
                         reduction)
        self.squared_pred = squared_pred

    def forward(self, input, target):
        p, t, axes = self._prepare(input, target)
        intersection = (p * t).sum(axes)
        if self.squared_pred:
            denominator = (t * t).sum(axes) + (p * p).sum(axes)
        else:
            denominator = t.sum(axes) + p.sum(axes)
        f = 1.0 - (2.0 * intersection + self.smooth_nr) / (denominator + self.smooth_dr)
        return _reduce(f, self.reduction)


class GeneralizedDiceLoss(_OverlapLoss):
    """Generalized Dice (Sudre et al. 2017): class weights w = 1/sum(t)^2 ("square"),
    1/sum(t) ("simple") or 1 ("uniform"); a class absent from the target (infinite weight)
    gets the largest finite weight of its sample (of the batch with batch=True), as MONAI.
    1 - (2 sum_c w_c I_c + smooth_nr) / (sum_c w_c D_c + smooth_dr), per sample (or batch)."""

    def __init__(self, include_background: bool = True, softmax: bool = True,
                 sigmoid: bool = False, w_type: str = "square", smooth_nr: float = 1e-5,
                 smooth_dr: float = 1e-5, batch: bool = False, reduction: str = "mean") -> None:
        super().__init__(include_background, softmax, sigmoid, batch, smooth_nr, smooth_dr,
                         reduction)
        if w_type not in ("square", "simple", "uniform"):
            raise ValueError(f"GeneralizedDiceLoss: w_type must be 'square', 'simple' or "
                             f"'uniform', got {w_type!r}")
        self.w_type = w_type

    def forward(self, input, target):
        p, t, axes = self._prepare(input, target)
        intersection = (p * t).sum(axes)
        ground = t.sum(axes)
        denominator = ground + p.sum(axes)
        # an absent class (ground == 0) has an infinite weight; divide by 1 there instead
        # so no warning fires, then mark it
        absent = ground == 0
        safe = fw.where(absent, fw.ones_like(ground), ground)
        if self.w_type == "square":
            w = 1.0 / (safe * safe)
        elif self.w_type == "simple":
            w = 1.0 / safe
        else:
            w = fw.ones_like(ground)
        infs = absent | fw.isinf(w)
        w = fw.where(infs, fw.zeros_like(w), w)
        if self.batch:
            w_max = w.max()
        else:
            w_max = w.max(dim=1, keepdim=True).values
        w = w + infs.to(w.dtype) * w_max
        dim = 0 if self.batch else 1
        numer = 2.0 * (intersection * w).sum(dim, keepdim=True) + self.smooth_nr
        denom = (denominator * w).sum(dim, keepdim=True) + self.smooth_dr
        return _reduce(1.0 - numer / denom, self.reduction)


class DiceCELoss(nn.Module):
    """lambda_dice * DiceLoss + lambda_ce * cross-entropy on the logits (binary cross-entropy
    with logits when sigmoid=True). The cross-entropy takes class indices from a label map and
    class probabilities from a one-hot/soft target, and always covers every channel
    (include_background only affects the Dice term), as MONAI and nnU-Net."""

    def __init__(self, include_background: bool = True, softmax: bool = True,
                 sigmoid: bool = False, squared_pred: bool = False, smooth_nr: float = 1e-5,
                 smooth_dr: float = 1e-5, batch: bool = False, lambda_dice: float = 1.0,
                 lambda_ce: float = 1.0, ce_weight=None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if lambda_dice < 0 or lambda_ce < 0:
            raise ValueError(f"DiceCELoss: lambda_dice and lambda_ce must be >= 0, got "
                             f"{lambda_dice}, {lambda_ce}")
        self.dice = DiceLoss(include_background, softmax, sigmoid, squared_pred, smooth_nr,
                             smooth_dr, batch)
        self.lambda_dice, self.lambda_ce = float(lambda_dice), float(lambda_ce)
        self.sigmoid, self.label_smoothing = sigmoid, float(label_smoothing)
        self.ce_weight = ce_weight

    def cross_entropy(self, input, target):
        if self.sigmoid:
            return F.binary_cross_entropy_with_logits(input, to_one_hot(target, input))
        labels = _label_map(target, input)
        weight = self.ce_weight
        if weight is not None and not isinstance(weight, fw.Tensor):
            weight = fw.tensor(weight, dtype=input.dtype, device=input.device)
        if labels is None:
            target_probs = target.to(input.dtype)
            return F.cross_entropy(input, target_probs, weight=weight,
                                   label_smoothing=self.label_smoothing)
        return F.cross_entropy(input, labels.long(), weight=weight,
                               label_smoothing=self.label_smoothing)

    def forward(self, input, target):
        return (self.lambda_dice * self.dice(input, target)
                + self.lambda_ce * self.cross_entropy(input, target))


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017) on logits, per element then reduced.

    use_softmax=False (MONAI's default): per channel, BCE(x, t) * sigmoid(-x (2t - 1))^gamma,
    times alpha t + (1 - alpha)(1 - t) when alpha is set. use_softmax=True:
    -(1 - p)^gamma log(p) t with p = softmax(x), times 1 - alpha for the background channel
    and alpha for the others when alpha is set. reduction "mean" averages every element;
    "sum" (as MONAI) averages over space and sums over N and C; "none" keeps (N, C, *S)."""

    def __init__(self, include_background: bool = True, gamma: float = 2.0,
                 alpha: float | None = None, use_softmax: bool = False,
                 reduction: str = "mean") -> None:
        super().__init__()
        _check("FocalLoss", use_softmax, False, reduction)
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"FocalLoss: alpha must be in [0, 1], got {alpha}")
        self.include_background, self.gamma, self.alpha = include_background, float(gamma), alpha
        self.use_softmax, self.reduction = use_softmax, reduction

    def forward(self, input, target):
        t = to_one_hot(target, input)
        c = input.shape[1]
        if self.use_softmax:
            if c == 1:
                raise ValueError("FocalLoss: softmax over a single channel is constant 1; use "
                                 "use_softmax=False or two channels")
            log_p = F.log_softmax(input, 1)
            loss = -((1.0 - log_p.exp()) ** self.gamma) * log_p * t
            if self.alpha is not None:
                fac = [1.0 - self.alpha] + [self.alpha] * (c - 1)
                loss = loss * fw.tensor(fac, dtype=loss.dtype, device=loss.device).reshape(
                    1, c, *([1] * (input.ndim - 2)))
        else:
            loss = input - input * t - F.logsigmoid(input)  # BCE with logits
            loss = (F.logsigmoid(-input * (t * 2.0 - 1.0)) * self.gamma).exp() * loss
            if self.alpha is not None:
                loss = (t * self.alpha + (1.0 - t) * (1.0 - self.alpha)) * loss
        if not self.include_background and c > 1:
            loss = loss[:, 1:]
        if self.reduction == "sum":
            return loss.mean(tuple(range(2, loss.ndim))).sum()
        return _reduce(loss, self.reduction)


def deep_supervision_weights(n: int) -> list[float]:
    """nnU-Net's weights for `n` outputs (full resolution first): 1/2^i, the lowest resolution
    set to 0 (when n > 1), normalised to sum 1."""
    if n < 1:
        raise ValueError(f"deep_supervision_weights: need at least one output, got {n}")
    w = [0.5 ** i for i in range(n)]
    if n > 1:
        w[-1] = 0.0
    total = sum(w)
    return [v / total for v in w]


def _resize_target(target, input):
    """`target` (label map or one-hot) resized to `input`'s spatial shape by nearest neighbour."""
    size = tuple(input.shape[2:])
    if tuple(target.shape[target.ndim - len(size):]) == size:
        return target
    squeeze = target.ndim == input.ndim - 1  # an (N, *S) label map
    t = target.unsqueeze(1) if squeeze else target
    floating = t.dtype.is_floating_point
    out = F.interpolate(t if floating else t.to(fw.float32), size=size, mode="nearest")
    if not floating:
        out = out.to(target.dtype)
    return out[:, 0] if squeeze else out


class DeepSupervisionLoss(nn.Module):
    """sum_i w_i loss(outputs[i], target resized to outputs[i]) for a list of logits, full
    resolution first (what `UNet(deep_supervision=True)` returns in training mode); the target
    is resized by nearest neighbour. weights default to `deep_supervision_weights`. A single
    tensor passes straight to `loss`."""

    def __init__(self, loss: Callable, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.loss = loss
        self.weights = None if weights is None else [float(w) for w in weights]

    def forward(self, outputs, target):
        if isinstance(outputs, fw.Tensor):
            return self.loss(outputs, target)
        outputs = list(outputs)
        weights = self.weights or deep_supervision_weights(len(outputs))
        if len(weights) != len(outputs):
            raise ValueError(f"DeepSupervisionLoss: {len(weights)} weights for "
                             f"{len(outputs)} outputs")
        total = None
        for w, out in zip(weights, outputs):
            if w == 0.0:
                continue
            term = w * self.loss(out, _resize_target(target, out))
            total = term if total is None else total + term
        return total
