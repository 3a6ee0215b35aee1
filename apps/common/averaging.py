"""Weight averaging for the Trainer: an exponential moving average (EMA) of the model's
weights, the Polyak averaging that timm and Lightning's `WeightAveraging` offer.

The average is updated after every optimizer step from `start_epoch` on. Validation, the
`model` of every checkpoint and the model left after `fit` are the average; the weights being
trained travel in this callback's checkpoint state, so `--resume` continues exactly.
"""
from __future__ import annotations

import framework as fw
from framework.optim.swa_utils import get_ema_multi_avg_fn

from .trainer import Callback

__all__ = ["WeightAveraging"]


class WeightAveraging(Callback):
    """EMA of the parameters and floating-point buffers: avg <- decay * avg + (1 - decay) *
    param after each step (the first step copies; `swa_utils.get_ema_multi_avg_fn`). Put it
    before `ModelCheckpoint` and before any callback that uses the model at an epoch's start
    in the callback list (the Trainer calls callbacks in order)."""

    rank_zero_only = False   # every rank validates, so every rank swaps the same weights in

    def __init__(self, decay: float = 0.999, start_epoch: int = 0):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the EMA decay must be in (0, 1), got {decay}")
        self.decay, self.start_epoch = float(decay), int(start_epoch)
        self._update = get_ema_multi_avg_fn(self.decay)
        self.n_averaged = 0
        self._other: list | None = None   # the weights not in the model right now
        self._swapped = False             # True while the model holds the average
        self._params: list | None = None
        self._loaded: dict | None = None

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer) -> None:
        # floating-point buffers too (BatchNorm's running statistics), as timm's model EMA and
        # AveragedModel(use_buffers=True): statistics of other weights would not fit the average
        self._params = list(trainer.model.parameters()) + [
            b for b in trainer.model.buffers() if b.is_floating_point()]
        if self._loaded is None:
            return
        state, self._loaded = self._loaded, None
        self.n_averaged = int(state["n_averaged"])
        # "current": the checkpoint's model is the average, so put the trained weights back
        key = "current" if "current" in state else "average"
        self._other = [t.to(p.device) for t, p in zip(_tensors(state[key]), self._params)]
        self._swapped = key == "current"
        self._use_trained()

    def on_train_epoch_start(self, trainer) -> None:
        self._use_trained()

    def on_train_batch_end(self, trainer, output, batch_idx) -> None:
        if trainer.epoch < self.start_epoch:
            return
        if self._other is None or self.n_averaged == 0:
            with fw.no_grad():
                self._other = [p.detach().clone() for p in self._params]
        else:
            self._update(self._other, self._params, self.n_averaged)
        self.n_averaged += 1

    def on_validation_start(self, trainer) -> None:
        self._use_average()

    def on_validation_end(self, trainer, metrics) -> None:
        self._use_trained()

    def on_train_epoch_end(self, trainer, row) -> None:
        # ModelCheckpoint (later in the list) then saves the average as the model
        self._use_average()

    def on_fit_end(self, trainer) -> None:
        self._use_average()

    # ------------------------------------------------------------------ state
    def _use_average(self) -> None:
        if not self._swapped and self.n_averaged:
            self._swap()

    def _use_trained(self) -> None:
        if self._swapped:
            self._swap()

    def _swap(self) -> None:
        """Exchange the model's parameters with the stored ones."""
        with fw.no_grad():
            for i, p in enumerate(self._params):
                held = p.detach().clone()
                p.copy_(self._other[i])
                self._other[i] = held
        self._swapped = not self._swapped

    def state_dict(self) -> dict:
        if not self.n_averaged or self._other is None:
            return {"n_averaged": 0}
        key = "current" if self._swapped else "average"
        return {"n_averaged": self.n_averaged,
                key: {str(i): t for i, t in enumerate(self._other)}}

    def load_state_dict(self, state: dict) -> None:
        # applied at on_fit_start, once the Trainer has loaded the model
        self._loaded = dict(state) if state.get("n_averaged") else None
        self.n_averaged, self._other, self._swapped = 0, None, False


def _tensors(mapping: dict) -> list:
    return [mapping[str(i)] for i in range(len(mapping))]
