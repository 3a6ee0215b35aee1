"""Stochastic weight averaging and exponential moving averages of a model, as
`torch.optim.swa_utils`: `AveragedModel`, `SWALR`, `update_bn` and the averaging functions."""
from __future__ import annotations

import copy
import itertools
import math
from typing import Any, Callable, Iterable

from .. import _dtype as D
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad
from ..creation import tensor
from ..nn.modules.module import Module
from .lr_scheduler import LRScheduler
from .optimizer import Optimizer

__all__ = ["AveragedModel", "SWALR", "update_bn", "get_ema_multi_avg_fn",
           "get_swa_multi_avg_fn", "get_ema_avg_fn", "get_swa_avg_fn"]


def get_ema_avg_fn(decay: float = 0.999) -> Callable:
    """avg <- decay * avg + (1 - decay) * param, per tensor."""
    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged) -> Tensor:
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn() -> Callable:
    """avg <- avg + (param - avg) / (n + 1), the running mean, per tensor."""
    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged) -> Tensor:
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable:
    """The EMA update over lists of tensors, in place: avg.lerp_(param, 1 - decay)."""
    @no_grad()
    def ema_update(ema_param_list, current_param_list, _num_averaged) -> None:
        for p_ema, p_model in zip(ema_param_list, current_param_list):
            p_ema.lerp_(p_model, 1 - decay)
    return ema_update


def get_swa_multi_avg_fn() -> Callable:
    """The running-mean update over lists of tensors, in place: avg.lerp_(param, 1/(n+1))."""
    @no_grad()
    def swa_update(averaged_param_list, current_param_list, num_averaged) -> None:
        n = num_averaged.item() if isinstance(num_averaged, Tensor) else num_averaged
        for p_avg, p_model in zip(averaged_param_list, current_param_list):
            p_avg.lerp_(p_model, 1 / (n + 1))
    return swa_update


class AveragedModel(Module):
    """A copy of `model` (`self.module`) whose parameters (and, with `use_buffers`, buffers)
    are the running average of those of `model` at each `update_parameters(model)`: the mean by
    default (SWA), or any `avg_fn(avg, param, n)` / `multi_avg_fn(avgs, params, n)` (e.g.
    `get_ema_multi_avg_fn(0.999)` for an EMA). `n_averaged` counts the updates; the first one
    copies. Calling it runs `self.module`."""

    def __init__(self, model: Module, device=None, avg_fn: Callable | None = None,
                 multi_avg_fn: Callable | None = None, use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", tensor(0, dtype=D.int64, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _tensors(self, model: Module) -> Iterable[Tensor]:
        if self.use_buffers:
            return itertools.chain(model.parameters(), model.buffers())
        return model.parameters()

    @no_grad()
    def update_parameters(self, model: Module) -> None:
        """Fold the current parameters (and buffers) of `model` into the average."""
        first = int(self.n_averaged.item()) == 0
        own = [p.detach() for p in self._tensors(self.module)]
        new = [p.detach().to(device=q.device) for p, q in zip(self._tensors(model), own)]
        if first:
            for p_avg, p_model in zip(own, new):
                p_avg.copy_(p_model)
        elif self.avg_fn is not None:
            n = self.n_averaged.to(device=own[0].device) if own else self.n_averaged
            for p_avg, p_model in zip(own, new):
                p_avg.copy_(self.avg_fn(p_avg, p_model, n))
        else:
            multi = self.multi_avg_fn if self.multi_avg_fn is not None else \
                get_swa_multi_avg_fn()
            floats = [(a, m) for a, m in zip(own, new) if a.is_floating_point()]
            if floats:
                multi([a for a, _ in floats], [m for _, m in floats],
                      self.n_averaged.to(device=floats[0][0].device))
        if not self.use_buffers:
            # buffers follow the source model as they are (update_bn recomputes BN statistics)
            for b_swa, b_model in zip(self.module.buffers(), model.buffers()):
                b_swa.copy_(b_model.detach().to(device=b_swa.device))
        self.n_averaged += 1


@no_grad()
def update_bn(loader: Iterable, model: Module, device=None) -> None:
    """Recompute the running statistics of every batch-norm layer of `model` as the plain
    average over one pass of `loader` (batches, or tuples/lists whose first item is the
    input), as the averaged weights' statistics are not the average of the statistics."""
    from ..nn.modules.normalization import _BatchNorm
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm) and module.running_mean is not None:
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None  # a cumulative average over the batches
    for batch in loader:
        if isinstance(batch, (list, tuple)):
            batch = batch[0]
        if device is not None:
            batch = batch.to(device)
        model(batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneals each group's rate from its value to `swa_lr` over `anneal_epochs` steps
    ('cos' or 'linear'), then holds it there: PyTorch's SWALR, step for step."""

    def __init__(self, optimizer: Optimizer, swa_lr, anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1) -> None:
        lrs = list(swa_lr) if isinstance(swa_lr, (list, tuple)) else \
            [swa_lr] * len(optimizer.param_groups)
        if len(lrs) != len(optimizer.param_groups):
            raise ValueError(f"swa_lr must have the same length as optimizer.param_groups: "
                             f"swa_lr has {len(lrs)}, optimizer.param_groups has "
                             f"{len(optimizer.param_groups)}")
        for lr, group in zip(lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("anneal_strategy must by one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        self.anneal_func = self._cos_anneal if anneal_strategy == "cos" else self._linear_anneal
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cos_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self) -> list:
        self._warn_if_outside_step()
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        groups = self.optimizer.param_groups
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(groups, prev_lrs)]

    def state_dict(self) -> dict[str, Any]:
        # the annealing function is a method: rebuilt from the strategy on loading
        state = super().state_dict()
        state["anneal_func"] = "cos" if self.anneal_func == self._cos_anneal else "linear"
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        strategy = state.pop("anneal_func", "cos")
        super().load_state_dict(state)
        self.anneal_func = self._cos_anneal if strategy == "cos" else self._linear_anneal
