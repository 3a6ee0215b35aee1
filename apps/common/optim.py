"""Optimizers and learning-rate schedules by name, for the applications' `--optimizer`,
`--scheduler` and `--warmup-epochs` flags. Schedules step once per optimizer step, so a
warmup can be shorter than an epoch."""
from __future__ import annotations

import framework as fw
from framework.optim import lr_scheduler as S

__all__ = ["OPTIMIZERS", "SCHEDULERS", "build_optimizer", "build_scheduler"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = ("cosine", "step", "constant", "onecycle", "poly")


def build_optimizer(name: str, params, *, lr: float, weight_decay: float = 0.0,
                    momentum: float = 0.9):
    name = name.lower()
    if name == "sgd":
        return fw.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                            nesterov=momentum > 0)
    if name == "adam":
        return fw.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return fw.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return fw.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")


def build_scheduler(name: str, optimizer, *, epochs: int, steps_per_epoch: int,
                    warmup_epochs: float = 0.0):
    """A per-step schedule: a linear warmup from 1% of the lr over `warmup_epochs`, then
    `cosine` (to zero), `step` (x0.1 at 50% and 75% of training), `constant`, `onecycle` or
    `poly` (nnU-Net's decay: lr * (1 - t / T)^0.9, to zero)."""
    name = name.lower()
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose from {', '.join(SCHEDULERS)}")
    total = max(1, epochs * steps_per_epoch)
    if name == "onecycle":
        lrs = [g["lr"] for g in optimizer.param_groups]
        pct = min(max(warmup_epochs / max(epochs, 1), 0.05), 0.5) if warmup_epochs else 0.3
        return S.OneCycleLR(optimizer, max_lr=lrs, total_steps=total, pct_start=pct)
    warm = min(int(round(warmup_epochs * steps_per_epoch)), total - 1)
    rest = total - warm
    if name == "cosine":
        main = S.CosineAnnealingLR(optimizer, T_max=rest)
    elif name == "poly":
        main = S.PolynomialLR(optimizer, total_iters=rest, power=0.9)
    elif name == "step":
        main = S.MultiStepLR(optimizer, milestones=[rest // 2, (3 * rest) // 4], gamma=0.1)
    else:
        main = S.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warm <= 0:
        return main
    warmup = S.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warm)
    return S.SequentialLR(optimizer, [warmup, main], milestones=[warm])
