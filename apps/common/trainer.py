"""The supervised training loop every application shares.

    trainer = Trainer(task, optimizer, scheduler, max_epochs=10, out_dir="runs/x",
                      callbacks=default_callbacks(...), meta={...})
    trainer.fit(train_loader, val_loader, resume=None)

The *task* knows the domain: `task.model`, `task.training_step(batch) -> StepOutput` and
`task.validation_step(batch) -> StepOutput`, where a StepOutput is a dict with `loss` (a
scalar tensor), `size` (samples in the batch) and optionally `metrics`: {name: sum over
the batch} (e.g. the number of correct predictions under "accuracy") and `throughput`: the
count behind the speed figure, in `throughput_unit`s (default: `size` samples; text counts
tokens). The Trainer owns the
rest: devices, mixed precision, gradient clipping, the optimizer and scheduler steps, epoch
means, the history, RNG snapshots and callback dispatch (in list order). It never branches
on the domain; RL, which counts environment steps instead of epochs, has its own loop and
reuses the callbacks' writers.

Resume is exact on the CPU: a checkpoint written at the end of an epoch holds the model,
optimizer, scheduler, scaler, counters, history, callback states, every RNG state and the
training loader's generator, so continuing from it replays the remaining epochs bit for bit.
"""
from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Iterable, Mapping, Protocol

import framework as fw
from framework.nn.utils import clip_grad_norm_

from .checkpoint import load_checkpoint
from .seed import rng_state, set_rng_state

__all__ = ["Trainer", "Task", "Callback", "to_device", "StopTraining"]

StepOutput = Mapping[str, Any]


class Task(Protocol):
    model: Any

    def training_step(self, batch) -> StepOutput: ...

    def validation_step(self, batch) -> StepOutput: ...


class Callback:
    """Hooks called by the Trainer, in list order. Override what you need."""

    def on_fit_start(self, trainer: "Trainer") -> None: ...
    def on_train_epoch_start(self, trainer: "Trainer") -> None: ...
    def on_train_batch_end(self, trainer: "Trainer", output: dict, batch_idx: int) -> None: ...
    def on_validation_end(self, trainer: "Trainer", metrics: dict) -> None: ...
    def on_train_epoch_end(self, trainer: "Trainer", row: dict) -> None: ...
    def on_fit_end(self, trainer: "Trainer") -> None: ...
    def on_exception(self, trainer: "Trainer", exc: BaseException) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class StopTraining(Exception):
    """Raised by a callback to end training at once (the epoch is not recorded)."""


def to_device(batch, device):
    """Move the tensors of a batch (a tensor, or tuples/lists/dicts of them) to `device`."""
    if isinstance(batch, fw.Tensor):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


class Trainer:
    def __init__(self, task: Task, optimizer, scheduler=None, *, max_epochs: int,
                 device: str = "cpu", callbacks: Iterable[Callback] = (),
                 scheduler_interval: str = "step", grad_clip: float | None = None,
                 amp: bool = False, out_dir=None, meta: Mapping[str, Any] | None = None,
                 throughput_unit: str = "samples"):
        if scheduler_interval not in ("step", "epoch"):
            raise ValueError(f"scheduler_interval must be 'step' or 'epoch', got "
                             f"{scheduler_interval!r}")
        self.task, self.optimizer, self.scheduler = task, optimizer, scheduler
        self.max_epochs, self.device = int(max_epochs), str(device)
        self.callbacks = list(callbacks)
        self.scheduler_interval, self.grad_clip = scheduler_interval, grad_clip
        self.amp = bool(amp)
        self.device_type = fw.device(self.device).type
        # float16 needs loss scaling; the CPU's bfloat16 has float32's range and does not.
        self.amp_dtype = fw.float16 if self.device_type == "cuda" else fw.bfloat16
        self.scaler = fw.amp.GradScaler(self.device_type,
                                        enabled=self.amp and self.amp_dtype == fw.float16)
        self.out_dir, self.meta = out_dir, dict(meta or {})
        self.throughput_unit = throughput_unit
        self.epoch = 0            # completed epochs
        self.global_step = 0      # optimizer steps
        self.history: list[dict] = []
        self.should_stop = False
        self.train_loader = None

    @property
    def model(self):
        return self.task.model

    # ------------------------------------------------------------------ the loop
    def fit(self, train_loader, val_loader=None, *, resume=None) -> list[dict]:
        self.train_loader = train_loader
        if resume is not None:
            self.load_state_dict(load_checkpoint(resume))
        self._call("on_fit_start")
        try:
            while self.epoch < self.max_epochs and not self.should_stop:
                self._call("on_train_epoch_start")
                t0 = time.perf_counter()
                lr = self.optimizer.param_groups[0]["lr"]
                train, done = self._train_epoch(train_loader)
                seconds = time.perf_counter() - t0
                row = {"epoch": self.epoch + 1, "lr": lr}
                row.update({f"train/{k}": v for k, v in train.items()})
                row[f"train/{self.throughput_unit}_per_s"] = done / max(seconds, 1e-9)
                if val_loader is not None:
                    val = self.evaluate(val_loader)
                    row.update({f"val/{k}": v for k, v in val.items()})
                    self._call("on_validation_end", val)
                if self.scheduler is not None and self.scheduler_interval == "epoch":
                    self.scheduler.step()
                row["seconds"] = time.perf_counter() - t0
                self.epoch += 1
                self.history.append(row)
                self._call("on_train_epoch_end", row)
        except StopTraining:
            self.should_stop = True
        except BaseException as exc:
            self._call("on_exception", exc)
            raise
        self._call("on_fit_end")
        return self.history

    def _autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return fw.autocast(self.device_type, dtype=self.amp_dtype)

    def _train_epoch(self, loader) -> tuple[dict, int]:
        self.model.train()
        sums: dict[str, float] = {}
        total = done = 0
        for i, batch in enumerate(loader):
            batch = to_device(batch, self.device)
            with self._autocast():
                out = self.task.training_step(batch)
            loss = out["loss"]
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.grad_clip:
                self.scaler.unscale_(self.optimizer)
                clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.scheduler is not None and self.scheduler_interval == "step":
                self.scheduler.step()
            self.global_step += 1
            step = _floats(out)
            if not math.isfinite(step["loss"]):
                raise FloatingPointError(f"epoch {self.epoch + 1}, batch {i}: the loss is "
                                         f"{step['loss']}; lower --lr or enable --grad-clip")
            _accumulate(sums, step)
            total += step["size"]
            done += step["throughput"]
            self._call("on_train_batch_end", step, i)
        return _means(sums, total), done

    def evaluate(self, loader) -> dict:
        """Mean loss and metrics of `task.validation_step` over a loader, in eval mode."""
        was_training = self.model.training
        self.model.eval()
        sums: dict[str, float] = {}
        total = 0
        with fw.no_grad(), self._autocast():
            for batch in loader:
                step = _floats(self.task.validation_step(to_device(batch, self.device)))
                _accumulate(sums, step)
                total += step["size"]
        self.model.train(was_training)
        return _means(sums, total)

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Everything a checkpoint needs to resume this run exactly, and to use its model."""
        loader_gen = _loader_generator(self.train_loader)
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch, "global_step": self.global_step,
            "history": list(self.history),
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks},
            "rng": rng_state(),
            "loader_rng": loader_gen.get_state() if loader_gen is not None else None,
            "meta": self.meta,
        }

    def load_state_dict(self, state: dict) -> None:
        from models import load_pretrained
        load_pretrained(self.model, state["model"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.history = [dict(r) for r in state.get("history", [])]
        saved = state.get("callbacks") or {}
        for cb in self.callbacks:
            if type(cb).__name__ in saved:
                cb.load_state_dict(saved[type(cb).__name__])
        set_rng_state(state["rng"])
        loader_gen = _loader_generator(self.train_loader)
        if loader_gen is not None and state.get("loader_rng") is not None:
            loader_gen.set_state(state["loader_rng"])


def _loader_generator(loader):
    """The generator that orders a loader's batches: its own, or its batch sampler's (a
    length-bucketed sampler draws the batches itself)."""
    gen = getattr(loader, "generator", None)
    if gen is None:
        gen = getattr(getattr(loader, "batch_sampler", None), "generator", None)
    return gen


def _floats(out: StepOutput) -> dict:
    loss = out["loss"]
    size = int(out["size"])
    return {"loss": float(loss.item() if hasattr(loss, "item") else loss), "size": size,
            "throughput": int(out.get("throughput", size)),
            "metrics": {k: float(v.item() if hasattr(v, "item") else v)
                        for k, v in (out.get("metrics") or {}).items()}}


def _accumulate(sums: dict, step: dict) -> None:
    sums["loss"] = sums.get("loss", 0.0) + step["loss"] * step["size"]
    for k, v in step["metrics"].items():
        sums[k] = sums.get(k, 0.0) + v


def _means(sums: dict, total: int) -> dict:
    return {k: v / max(total, 1) for k, v in sums.items()}
