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

With `distributed=True` (every process of an MPI launch runs the same Trainer, after
`framework.distributed.init_process_group`), training steps go through a
DistributedDataParallel wrapper of the model, the epoch means are averaged over all ranks
(sums and counts all-reduced), and the callbacks (progress, metrics files, checkpoints, early
stopping) run on rank 0 only, unless one sets `rank_zero_only = False`; rank 0's decision to
stop (`should_stop`, or StopTraining, honoured at the end of that epoch) reaches every rank.
The loaders are the caller's: give the training loader a DistributedSampler (the Trainer calls
its `set_epoch`) and each rank its share of the validation data.
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
    """Hooks called by the Trainer, in list order. Override what you need. In a distributed
    run only rank 0 calls a callback, unless its `rank_zero_only` is False (one that changes
    what every rank trains on, such as a per-epoch data setting)."""

    def on_fit_start(self, trainer: "Trainer") -> None: ...
    def on_train_epoch_start(self, trainer: "Trainer") -> None: ...
    def on_train_batch_end(self, trainer: "Trainer", output: dict, batch_idx: int) -> None: ...
    def on_validation_start(self, trainer: "Trainer") -> None: ...
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
                 throughput_unit: str = "samples", distributed: bool = False):
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
        self.distributed = bool(distributed)
        self._stop_requested = False
        self.rank, self.world_size = 0, 1
        self._ddp = None
        if self.distributed:
            import framework.distributed as dist
            from framework.nn.parallel import DistributedDataParallel
            if not dist.is_initialized():
                raise RuntimeError("Trainer(distributed=True) needs "
                                   "framework.distributed.init_process_group() first")
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
            dev = fw.device(self.device)
            self._ddp = DistributedDataParallel(
                task.model, device_ids=[dev.index or 0] if dev.type == "cuda" else None)

    @property
    def model(self):
        """The model being trained (never the DistributedDataParallel wrapper)."""
        m = self.task.model
        return m.module if self._ddp is not None and m is self._ddp else m

    # ------------------------------------------------------------------ the loop
    def fit(self, train_loader, val_loader=None, *, resume=None) -> list[dict]:
        self.train_loader = train_loader
        if resume is not None:
            self.load_state_dict(load_checkpoint(resume))
        self._stop_requested = False
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
                    self._call("on_validation_start")
                    val = self.evaluate(val_loader)
                    row.update({f"val/{k}": v for k, v in val.items()})
                    self._call("on_validation_end", val)
                if self.scheduler is not None and self.scheduler_interval == "epoch":
                    self.scheduler.step()
                row["seconds"] = time.perf_counter() - t0
                self.epoch += 1
                self.history.append(row)
                self._call("on_train_epoch_end", row)
                if self.distributed:
                    self._agree_on_stopping()
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
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):   # a DistributedSampler reshuffles per epoch
            sampler.set_epoch(self.epoch)
        if self._ddp is None:
            return self._train_batches(loader)
        bare = self.task.model
        self.task.model = self._ddp    # the task's steps run through the wrapper
        try:
            return self._train_batches(loader)
        finally:
            self.task.model = bare

    def _train_batches(self, loader) -> tuple[dict, int]:
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
        if self.distributed:
            sums, total, done = self._global_sums(sums, total, done)
        return _means(sums, total), done

    def evaluate(self, loader) -> dict:
        """Mean loss and metrics of `task.validation_step` over a loader, in eval mode. In a
        distributed run every rank calls it with its share, and gets the means over all."""
        if self._ddp is not None:   # every rank evaluates with rank 0's BatchNorm statistics
            import framework.distributed as dist
            with fw.no_grad():
                for b in self.model.buffers():
                    dist.broadcast(b, 0)
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
        if self.distributed:
            sums, total, _ = self._global_sums(sums, total, 0)
        return _means(sums, total)

    def _global_sums(self, sums: dict, total: int, done: int) -> tuple[dict, int, int]:
        """The sums, sample count and throughput count added over all ranks (every rank
        reports the same metric names: the same task runs everywhere)."""
        import framework.distributed as dist
        keys = list(sums)   # the same insertion order on every rank (the same task)
        t = fw.tensor([sums[k] for k in keys] + [float(total), float(done)], dtype=fw.float64)
        dist.all_reduce(t)
        vals = t.tolist()
        return dict(zip(keys, vals[:-2])), int(round(vals[-2])), int(round(vals[-1]))

    def _agree_on_stopping(self) -> None:
        """Every rank stops when rank 0's callbacks asked to (they run there only)."""
        import framework.distributed as dist
        flag = fw.tensor([float(self.should_stop), float(self._stop_requested)],
                         dtype=fw.float64)
        dist.broadcast(flag, 0)
        should_stop, requested = (bool(v) for v in flag.tolist())
        self.should_stop = should_stop
        if requested:
            raise StopTraining()

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            if self.rank != 0 and getattr(cb, "rank_zero_only", True):
                continue
            if self.distributed and self.rank == 0:
                try:
                    getattr(cb, hook)(self, *args)
                except StopTraining:   # the other ranks learn it at the end of the epoch
                    self._stop_requested = True
                continue
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
