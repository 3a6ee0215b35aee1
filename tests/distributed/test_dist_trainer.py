"""The applications' Trainer with distributed=True on 2 MPI processes: epoch metrics are the
means over both ranks' samples, callbacks run on rank 0 unless they opt out, and rank 0's
early stop (should_stop, or StopTraining mid-epoch) ends training on every rank at the same
epoch."""

SCRIPT = r"""
import json, sys
import numpy as np
import framework as fw
import framework.distributed as dist
import framework.nn.functional as F
from framework.utils.data import DataLoader, DistributedSampler, TensorDataset
from apps.common import Callback, EarlyStopping, StopTraining, Trainer

dist.init_process_group("mpi", timeout=30)
r = dist.get_rank()
rng = np.random.default_rng(0)
data = TensorDataset(fw.tensor(rng.standard_normal((24, 3)), dtype=fw.float32),
                     fw.tensor(rng.integers(0, 2, 24)))


class Task:
    def __init__(self):
        self.model = fw.nn.Linear(3, 2)

    def training_step(self, batch):
        x, y = batch
        return {"loss": F.cross_entropy(self.model(x), y), "size": len(y),
                "metrics": {"rank_sum": float(r) * len(y)}}

    validation_step = training_step


class Everywhere(Callback):
    rank_zero_only = False

    def __init__(self):
        self.epochs = 0

    def on_train_epoch_end(self, trainer, row):
        self.epochs += 1


class Recorder(Callback):   # a default callback: rank 0 only
    def __init__(self):
        self.calls = 0

    def on_train_epoch_end(self, trainer, row):
        self.calls += 1


class StopMidEpoch(Callback):
    def on_train_batch_end(self, trainer, output, batch_idx):
        if trainer.epoch == 1 and batch_idx == 0:
            raise StopTraining()


def fit(callbacks, epochs=5):
    task = Task()
    sampler = DistributedSampler(data, shuffle=True, seed=1)
    loader = DataLoader(data, batch_size=4, sampler=sampler)
    trainer = Trainer(task, fw.optim.SGD(task.model.parameters(), lr=0.1), max_epochs=epochs,
                      callbacks=callbacks, distributed=True)
    history = trainer.fit(loader, DataLoader(data, batch_size=8))
    assert trainer.model is task.model   # never the DDP wrapper
    return history


every, rec = Everywhere(), Recorder()
h = fit([every, rec, EarlyStopping(monitor="train/loss", mode="max", patience=1)])
h2 = fit([StopMidEpoch()])
print("RESULT", r, json.dumps({"epochs": len(h), "everywhere": every.epochs, "recorder": rec.calls,
                               "loss": [row["train/loss"] for row in h],
                               "rank_mean": h[0]["train/rank_sum"],
                               "val_rank_mean": h[0]["val/rank_sum"], "stopped": len(h2)}),
      flush=True)
dist.destroy_process_group()
"""


def test_trainer_distributed_metrics_callbacks_and_stopping(mpirun):
    import json
    res = mpirun(SCRIPT)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    got = {}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            _, rank, payload = line.split(" ", 2)
            got[int(rank)] = json.loads(payload)
    a, b = got[0], got[1]
    # the loss falls, so "max" mode sees no improvement at epoch 2: both ranks stop there
    assert a["epochs"] == b["epochs"] == 2
    assert a["everywhere"] == b["everywhere"] == 2
    assert a["recorder"] == 2 and b["recorder"] == 0
    assert a["loss"] == b["loss"]                       # one global mean on every rank
    assert a["rank_mean"] == b["rank_mean"] == 0.5      # (0 x 12 + 1 x 12) / 24 samples
    assert a["val_rank_mean"] == b["val_rank_mean"] == 0.5
    assert a["stopped"] == b["stopped"] == 2   # StopTraining in epoch 2, honoured at its end
