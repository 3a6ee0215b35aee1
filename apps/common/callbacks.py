"""The Trainer's standard callbacks: a progress bar, the metrics writer (CSV and curves),
checkpointing (last, best, every N), early stopping and a step profiler. Their states go into
checkpoints, so a resumed run keeps counting where it stopped."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from .checkpoint import BEST, LAST, save_checkpoint
from .files import write_csv
from .plots import plot_history
from .trainer import Callback

__all__ = ["ProgressBar", "MetricsWriter", "ModelCheckpoint", "EarlyStopping", "StepProfiler",
           "format_row"]


def format_row(row: dict, max_epochs: int | None = None) -> str:
    """A one-line epoch summary: 'epoch 3/10  train loss 0.1234 accuracy 0.9712 | val ...'."""
    head = f"epoch {row['epoch']}" + (f"/{max_epochs}" if max_epochs else "")
    parts = [head]
    for split in ("train", "val"):
        vals = [(k.split("/", 1)[1], v) for k, v in row.items()
                if k.startswith(split + "/") and not k.endswith("_per_s")]
        if vals:
            parts.append(split + " " + " ".join(f"{k} {v:.4f}" for k, v in vals))
    speed = next(((k[6:-6], v) for k, v in row.items()
                  if k.startswith("train/") and k.endswith("_per_s")), None)
    tail = f"{speed[1]:,.0f} {speed[0]}/s, " if speed else ""
    return "  ".join(parts) + f"  ({tail}{row.get('seconds', 0):.1f} s)"


class ProgressBar(Callback):
    """A tqdm bar per epoch (loss, running metrics, the trainer's throughput unit per
    second) on a terminal, and always one summary line per epoch on stdout."""

    def __init__(self, enable: bool | None = None, stream=None):
        self.enable = sys.stderr.isatty() if enable is None else enable
        self.stream = stream
        self._bar = None

    def on_train_epoch_start(self, trainer) -> None:
        self._sums, self._n, self._done, self._t0 = {}, 0, 0, time.perf_counter()
        if self.enable:
            from tqdm import tqdm
            total = _len_or_none(trainer.train_loader)
            self._bar = tqdm(total=total, desc=f"epoch {trainer.epoch + 1}/{trainer.max_epochs}",
                             leave=False, dynamic_ncols=True, file=sys.stderr)

    def on_train_batch_end(self, trainer, output, batch_idx) -> None:
        n = output["size"]
        self._n += n
        self._done += output["throughput"]
        self._sums["loss"] = self._sums.get("loss", 0.0) + output["loss"] * n
        for k, v in output["metrics"].items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        if self._bar is not None:
            rate = self._done / max(time.perf_counter() - self._t0, 1e-9)
            post = {k: f"{v / self._n:.4f}" for k, v in self._sums.items()}
            post[f"{trainer.throughput_unit}/s"] = f"{rate:,.0f}"
            self._bar.set_postfix(post, refresh=False)
            self._bar.update(1)

    def on_train_epoch_end(self, trainer, row) -> None:
        self._close()
        print(format_row(row, trainer.max_epochs), file=self.stream or sys.stdout, flush=True)

    def on_exception(self, trainer, exc) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _len_or_none(loader):
    try:
        return len(loader)
    except TypeError:
        return None


class MetricsWriter(Callback):
    """After every epoch: `<out>/metrics.csv` (one row per epoch, rewritten from the history
    so a resumed run has no duplicate rows) and `<out>/curves.png`."""

    def __init__(self, out_dir, title: str = "", plot: bool = True):
        self.out_dir, self.title, self.plot = Path(out_dir), title, plot

    def on_train_epoch_end(self, trainer, row) -> None:
        write_csv(self.out_dir / "metrics.csv", trainer.history)
        if self.plot:
            plot_history(trainer.history, self.out_dir / "curves.png", self.title)


def _better(mode: str, value: float, best: float | None, min_delta: float = 0.0) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def _check_mode(mode: str) -> str:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return mode


class ModelCheckpoint(Callback):
    """Write `<out>/last.safetensors` after every epoch, `<out>/best.safetensors` when the
    monitored metric improves, and `<out>/epoch_<n>.safetensors` every `every_n_epochs`.
    Runs last among the callbacks so the states it saves are the epoch's final ones."""

    def __init__(self, out_dir, monitor: str = "val/accuracy", mode: str = "max",
                 every_n_epochs: int = 0, save_last: bool = True):
        self.out_dir, self.monitor, self.mode = Path(out_dir), monitor, _check_mode(mode)
        self.every_n_epochs, self.save_last = int(every_n_epochs), save_last
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_train_epoch_end(self, trainer, row) -> None:
        value = row.get(self.monitor)
        improved = _better(self.mode, value, self.best)
        if improved:
            self.best, self.best_epoch = value, row["epoch"]
        state = trainer.state_dict()   # after updating `best`, so the file records it
        if self.save_last:
            save_checkpoint(self.out_dir / LAST, state)
        if improved:
            save_checkpoint(self.out_dir / BEST, state)
        if self.every_n_epochs and row["epoch"] % self.every_n_epochs == 0:
            save_checkpoint(self.out_dir / f"epoch_{row['epoch']}.safetensors", state)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state) -> None:
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs."""

    def __init__(self, monitor: str = "val/loss", mode: str = "min", patience: int = 5,
                 min_delta: float = 0.0):
        self.monitor, self.mode = monitor, _check_mode(mode)
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.best: float | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_train_epoch_end(self, trainer, row) -> None:
        value = row.get(self.monitor)
        if value is None:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, which the epoch did not "
                           f"report (it has: {', '.join(row)})")
        if _better(self.mode, value, self.best, self.min_delta):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.should_stop = True
                self.stopped_epoch = row["epoch"]
                print(f"early stopping: {self.monitor} has not improved for {self.wait} "
                      f"epochs (best {self.best:.4f})")

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state) -> None:
        self.best, self.wait = state.get("best"), int(state.get("wait", 0))


class StepProfiler(Callback):
    """Profile training steps with `framework.profiler`: the `steps` steps after the first
    `skip` of the first epoch (the first steps compile kernels and fill caches). Writes
    `profile.txt` (the ops by self time, and how much of the steps' wall time they cover) and
    `trace.json` (chrome://tracing, ui.perfetto.dev) to `out`, and prints the top rows.
    Backs the applications' `--profile-steps N`."""

    def __init__(self, out, steps: int, skip: int = 2, rows: int = 15, stream=None):
        if steps < 1 or skip < 0:
            raise ValueError(f"StepProfiler needs steps >= 1 and skip >= 0, got {steps}, {skip}")
        self.out = Path(out)
        self.steps, self.skip, self.rows = int(steps), int(skip), int(rows)
        self.stream = stream
        self._prof = None
        self._t0 = 0.0
        self._count = 0
        self._done = False

    def _start(self) -> None:
        from framework.profiler import profile
        self._prof = profile()
        self._prof.__enter__()
        self._count = 0
        self._t0 = time.perf_counter()

    def _stop(self, steps: int) -> None:
        prof, self._prof = self._prof, None
        prof.__exit__(None, None, None)
        self._done = True
        wall = time.perf_counter() - self._t0
        averages = prof.key_averages()
        in_ops = averages.total_average().self_cpu_time_total / 1e6
        head = (f"{steps} training steps profiled: {wall:.3f} s wall time, {in_ops:.3f} s in "
                f"ops ({100 * in_ops / max(wall, 1e-12):.0f}%; the rest is data loading, the "
                "optimizer's update and Python)")
        self.out.mkdir(parents=True, exist_ok=True)
        from .files import write_text
        write_text(self.out / "profile.txt", head + "\n" + averages.table(
            sort_by="self_cpu_time_total", row_limit=-1) + "\n")
        prof.export_chrome_trace(self.out / "trace.json")
        print(head + "\n" + averages.table(sort_by="self_cpu_time_total", row_limit=self.rows)
              + f"\n-> {self.out / 'profile.txt'}, {self.out / 'trace.json'}",
              file=self.stream or sys.stdout, flush=True)

    def on_train_epoch_start(self, trainer) -> None:
        if not self._done and self._prof is None and self.skip == 0:
            self._start()

    def on_train_batch_end(self, trainer, output, batch_idx) -> None:
        if self._done:
            return
        if self._prof is None:
            if batch_idx + 1 == self.skip:
                self._start()
        else:
            self._count += 1
            if self._count == self.steps:
                self._stop(self._count)

    def on_train_epoch_end(self, trainer, row) -> None:
        if self._prof is not None:  # the epoch had fewer batches: report what was profiled
            self._stop(self._count)

    def on_exception(self, trainer, exc) -> None:
        if self._prof is not None:
            self._prof.__exit__(None, None, None)
            self._prof = None
