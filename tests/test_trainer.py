"""The shared Trainer: it learns, its callbacks write what they promise, and a run resumed
from a checkpoint ends bit for bit where an uninterrupted run ends."""
import csv
import io
import json

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
from framework.utils.data import DataLoader, TensorDataset
from apps.common import (BEST, LAST, CLIError, EarlyStopping, MetricsWriter, ModelCheckpoint,
                         ProgressBar, Trainer, WeightAveraging, load_checkpoint, run_command,
                         seed_everything, write_json)
from apps.common.callbacks import format_row
from apps.common.checkpoint import CheckpointFileError
from apps.common.optim import build_optimizer, build_scheduler


class Classify:
    def __init__(self, model):
        self.model = model

    def training_step(self, batch):
        x, y = batch
        logits = self.model(x)
        return {"loss": F.cross_entropy(logits, y), "size": len(y),
                "metrics": {"accuracy": (logits.argmax(1) == y).sum()}}

    validation_step = training_step


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return TensorDataset(fw.tensor(x), fw.tensor(y))


def _make(out, epochs, *, callbacks=None, seed=0, scheduler=True):
    seed_everything(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    opt = build_optimizer("sgd", model.parameters(), lr=0.1, weight_decay=1e-4)
    loader = DataLoader(_data(), batch_size=16, shuffle=True,
                        generator=fw.Generator().manual_seed(seed))
    sched = build_scheduler("cosine", opt, epochs=epochs, steps_per_epoch=len(loader),
                            warmup_epochs=1) if scheduler else None
    cbs = callbacks if callbacks is not None else [
        ProgressBar(enable=False, stream=io.StringIO()), MetricsWriter(out, plot=False),
        ModelCheckpoint(out, monitor="val/accuracy", mode="max")]
    trainer = Trainer(Classify(model), opt, sched, max_epochs=epochs, callbacks=cbs,
                      meta={"app": "test"})
    val = DataLoader(_data(48, seed=1), batch_size=48)
    return trainer, loader, val


def _params(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_trainer_learns_and_writes_outputs(tmp_path):
    trainer, loader, val = _make(tmp_path, 6)
    history = trainer.fit(loader, val)
    assert [r["epoch"] for r in history] == list(range(1, 7))
    assert history[-1]["train/loss"] < history[0]["train/loss"]
    assert history[-1]["val/accuracy"] > 0.8
    assert trainer.global_step == 6 * len(loader)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7))
    assert {"lr", "train/loss", "train/accuracy", "val/loss", "val/accuracy"} <= set(rows[0])
    best = load_checkpoint(tmp_path / BEST)
    best_epoch = max(history, key=lambda r: r["val/accuracy"])["epoch"]
    assert best["epoch"] == best_epoch and best["meta"] == {"app": "test"}
    assert load_checkpoint(tmp_path / LAST)["epoch"] == 6


def test_resume_is_bit_exact(tmp_path):
    full, loader, val = _make(tmp_path / "full", 5)
    full.fit(loader, val)
    part, loader2, val2 = _make(tmp_path / "part", 5)
    part.max_epochs = 2   # stopped after 2 of the 5 epochs its schedule was built for
    part.fit(loader2, val2)
    # a fresh process-like start: different seed everywhere, then resume from the checkpoint
    resumed, loader3, val3 = _make(tmp_path / "part", 5, seed=123)
    resumed.fit(loader3, val3, resume=tmp_path / "part" / LAST)
    a, b = _params(full.model), _params(resumed.model)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "train/samples_per_s")}
                       for r in h]
    assert strip(full.history) == strip(resumed.history)
    rows = list(csv.DictReader(open(tmp_path / "part" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]


def _ema_callbacks(out, decay=0.8, start_epoch=1):
    return [ProgressBar(enable=False, stream=io.StringIO()),
            WeightAveraging(decay, start_epoch=start_epoch),
            ModelCheckpoint(out, monitor="val/accuracy", mode="max")]


def test_weight_averaging_is_the_ema_of_the_steps(tmp_path):
    trainer, loader, val = _make(tmp_path, 3, callbacks=_ema_callbacks(tmp_path))
    params = list(trainer.model.parameters())
    expected, seen = None, []

    class Watch(ProgressBar):   # the weights after every step of epochs 2 and 3
        def on_train_batch_end(self, tr, output, batch_idx):
            if tr.epoch >= 1:
                seen.append([p.detach().numpy().astype(np.float64) for p in params])

    trainer.callbacks.insert(0, Watch(enable=False, stream=io.StringIO()))
    evaluated = []
    real_evaluate = trainer.evaluate
    trainer.evaluate = lambda ld: (evaluated.append([p.detach().numpy().copy() for p in params]),
                                   real_evaluate(ld))[1]
    trainer.fit(loader, val)
    for step in seen:
        expected = step if expected is None else [0.8 * e + 0.2 * w
                                                  for e, w in zip(expected, step)]
    final = [p.detach().numpy() for p in params]
    for e, f in zip(expected, final):   # the model after fit is the average
        np.testing.assert_allclose(f, e, rtol=1e-5, atol=1e-6)
    for e, v in zip(expected, evaluated[-1]):   # and validation ran on it
        np.testing.assert_allclose(v, e, rtol=1e-5, atol=1e-6)
    # epoch 1 was before start_epoch: validated on the trained weights themselves
    ck = load_checkpoint(tmp_path / LAST)
    for e, (k, v) in zip(expected, ck["model"].items()):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-5, atol=1e-6)
    assert ck["callbacks"]["WeightAveraging"]["n_averaged"] == 2 * len(loader)


def test_weight_averaging_resumes_bit_exact(tmp_path):
    full, loader, val = _make(tmp_path / "full", 4, callbacks=_ema_callbacks(tmp_path / "full"))
    full.fit(loader, val)
    part, loader2, val2 = _make(tmp_path / "part", 4, callbacks=_ema_callbacks(tmp_path / "part"))
    part.max_epochs = 2
    part.fit(loader2, val2)
    resumed, loader3, val3 = _make(tmp_path / "part", 4, seed=7,
                                   callbacks=_ema_callbacks(tmp_path / "part"))
    resumed.fit(loader3, val3, resume=tmp_path / "part" / LAST)
    a, b = _params(full.model), _params(resumed.model)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "train/samples_per_s")}
                       for r in h]
    assert strip(full.history) == strip(resumed.history)
    with pytest.raises(ValueError, match="decay"):
        WeightAveraging(1.0)


def test_weight_averaging_covers_batchnorm_statistics(tmp_path):
    trainer, loader, val = _make(tmp_path, 2, callbacks=_ema_callbacks(tmp_path, 0.5, 0))
    trainer.task.model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    trainer.optimizer = build_optimizer("sgd", trainer.model.parameters(), lr=0.1)
    trainer.scheduler = None
    bn = trainer.model[1]
    means = []

    class Watch(ProgressBar):
        def on_train_batch_end(self, tr, output, batch_idx):
            means.append(bn.running_mean.numpy().astype(np.float64).copy())

    trainer.callbacks.insert(0, Watch(enable=False, stream=io.StringIO()))
    trainer.fit(loader, val)
    expected = means[0]
    for m in means[1:]:
        expected = 0.5 * expected + 0.5 * m
    np.testing.assert_allclose(bn.running_mean.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked.item()) == 2 * len(loader)   # integers are not averaged
    state = load_checkpoint(tmp_path / LAST)["callbacks"]["WeightAveraging"]
    assert len(state["current"]) == len(list(trainer.model.parameters())) + 2


def test_early_stopping_and_its_state(tmp_path):
    es = EarlyStopping(monitor="val/loss", mode="min", patience=1, min_delta=10.0)
    trainer, loader, val = _make(tmp_path, 10, callbacks=[es, ModelCheckpoint(tmp_path)])
    trainer.fit(loader, val)
    assert len(trainer.history) == 2 and es.stopped_epoch == 2   # never improves by 10
    saved = load_checkpoint(tmp_path / LAST)["callbacks"]["EarlyStopping"]
    assert saved["wait"] == 1 and saved["best"] == pytest.approx(trainer.history[0]["val/loss"])
    with pytest.raises(KeyError, match="val/nothing"):
        t2, l2, v2 = _make(tmp_path / "b", 2, callbacks=[EarlyStopping(monitor="val/nothing")])
        t2.fit(l2, v2)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_loss_is_reported(tmp_path):
    trainer, loader, val = _make(tmp_path, 1, callbacks=[])
    trainer.optimizer.param_groups[0]["lr"] = 1e30
    for p in trainer.model.parameters():
        p.data.fill_(1e30)
    with pytest.raises(FloatingPointError, match="loss is"):
        trainer.fit(loader)


def test_resume_refuses_another_architecture(tmp_path):
    trainer, loader, val = _make(tmp_path, 1)
    trainer.fit(loader, val)
    other = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    t2 = Trainer(Classify(other), fw.optim.SGD(other.parameters(), lr=0.1), max_epochs=2)
    with pytest.raises(ValueError, match=r"0\.weight file \[16, 6\] vs model \[8, 6\]"):
        t2.fit(loader, resume=tmp_path)


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointFileError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointFileError, match="not a readable checkpoint"):
        load_checkpoint(bad)
    fw.save({"w": fw.zeros(2)}, tmp_path / "w.safetensors")
    with pytest.raises(CheckpointFileError, match="not a Lantern training checkpoint"):
        load_checkpoint(tmp_path / "w.safetensors")


def test_format_row_and_json_writer(tmp_path):
    row = {"epoch": 3, "lr": 0.1, "train/loss": 0.5, "train/accuracy": 0.75,
           "train/samples_per_s": 1234.0, "val/loss": 0.25, "seconds": 2.0}
    line = format_row(row, 10)
    assert line.startswith("epoch 3/10") and "train loss 0.5000 accuracy 0.7500" in line
    assert "val loss 0.2500" in line and "1,234 samples/s" in line
    write_json(tmp_path / "m.json", {"a": np.float32(0.5), "b": float("nan"), "c": np.arange(2)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 0.5, "b": None, "c": [0, 1]}


def test_run_command_exit_codes(capsys):
    import argparse
    ns = argparse.Namespace(debug=False)
    assert run_command(lambda a: None, ns) == 0
    assert run_command(lambda a: (_ for _ in ()).throw(CLIError("bad thing\nmore")), ns) == 1
    assert capsys.readouterr().err == "lantern: error: bad thing\n"
    assert run_command(lambda a: {}["k"], ns) == 1   # a bare key is a bug: name the type
    assert capsys.readouterr().err.startswith("lantern: error: KeyError: k (run with --debug")
    assert run_command(lambda a: {}.__getitem__("unknown model 'x'"), ns) == 1
    assert capsys.readouterr().err == "lantern: error: unknown model 'x'\n"
    assert run_command(lambda a: 1 / 0, ns) == 1
    err = capsys.readouterr().err
    assert "ZeroDivisionError" in err and "--debug" in err and "Traceback" not in err
    assert run_command(lambda a: 1 / 0, argparse.Namespace(debug=True)) == 1
    assert "Traceback" in capsys.readouterr().err


def test_schedules_warm_up_then_decay():
    p = fw.zeros(1, requires_grad=True)
    opt = build_optimizer("sgd", [p], lr=1.0)
    sched = build_scheduler("cosine", opt, epochs=4, steps_per_epoch=10, warmup_epochs=1)
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.01) and max(lrs) == pytest.approx(1.0, rel=1e-6)
    assert np.argmax(lrs) == 10 and lrs[-1] < 0.01
    with pytest.raises(ValueError, match="unknown scheduler"):
        build_scheduler("warp", opt, epochs=1, steps_per_epoch=1)


class _FixedLogits(nn.Module):
    """Returns given logits for a batch stacked twice (R-Drop's two passes)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(fw.tensor(logits))

    def forward(self, x):
        assert x.shape[0] == self.logits.shape[0]
        return self.logits * 1.0


def test_rdrop_loss_matches_torch():
    """R-Drop: mean cross-entropy of the two passes + alpha/4 (KL(p1||p2) + KL(p2||p1)), the
    paper's loss halved; value and gradient against PyTorch, label smoothing included."""
    from apps.common.classification import ClassificationTask
    from conftest import torch_or_skip
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    both = rng.standard_normal((8, 3))
    targets = np.array([0, 2, 1, 1])
    model = _FixedLogits(both)
    task = ClassificationTask(model, rdrop=0.7, label_smoothing=0.1, topk=None)
    out = task.training_step((fw.zeros(4, 5, dtype=fw.float64), fw.tensor(targets)))
    out["loss"].backward()

    tl = torch.tensor(both, requires_grad=True)
    tt = torch.tensor(targets)
    tf = torch.nn.functional
    ce = (tf.cross_entropy(tl[:4], tt, label_smoothing=0.1) +
          tf.cross_entropy(tl[4:], tt, label_smoothing=0.1))
    p1, p2 = tf.log_softmax(tl[:4], 1), tf.log_softmax(tl[4:], 1)
    kl = (tf.kl_div(p1, p2, reduction="batchmean", log_target=True) +
          tf.kl_div(p2, p1, reduction="batchmean", log_target=True))
    paper = ce + 0.7 / 2 * kl
    (paper / 2).backward()
    np.testing.assert_allclose(out["loss"].item(), paper.item() / 2, rtol=1e-12)
    np.testing.assert_allclose(model.logits.grad.numpy(), tl.grad.numpy(), rtol=1e-10,
                               atol=1e-14)
    assert out["size"] == 4
    assert int(out["metrics"]["accuracy"]) == int((both[:4].argmax(1) == targets).sum())


def test_rdrop_without_dropout_is_plain_cross_entropy():
    """Without dropout both passes agree: the KL term is zero and the loss is the batch's
    cross-entropy; a negative alpha is refused."""
    from apps.common.classification import ClassificationTask
    fw.manual_seed(0)
    model = nn.Linear(5, 3)
    x, y = fw.randn(6, 5), fw.tensor([0, 1, 2, 0, 1, 2])
    plain = ClassificationTask(model).training_step((x, y))["loss"].item()
    rdrop = ClassificationTask(model, rdrop=1.0).training_step((x, y))["loss"].item()
    assert abs(plain - rdrop) < 1e-6
    with pytest.raises(ValueError, match="rdrop"):
        ClassificationTask(model, rdrop=-1)


def test_step_profiler_profiles_the_chosen_steps(tmp_path):
    """StepProfiler (--profile-steps): steps skip+1 .. skip+steps of the first epoch are
    profiled (6 batches a epoch: 3 steps after 2), written to profile.txt and trace.json;
    a short epoch ends the profile early, and training is unchanged by it."""
    from apps.common import StepProfiler
    from framework import profiler
    stream = io.StringIO()
    cb = StepProfiler(tmp_path, steps=3, skip=2, stream=stream)
    trainer, loader, val = _make(tmp_path, 2, callbacks=[cb])
    trainer.fit(loader, val)
    text = (tmp_path / "profile.txt").read_text()
    assert text.startswith("3 training steps profiled:") and "Self CPU time total" in text
    counts = {row.split()[0]: int(row.split()[-1]) for row in text.splitlines()[3:-2]}
    assert counts["LinearBackward0"] == 3 * 2 and counts["CrossEntropy"] == 3, counts
    trace = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    assert sum(e["name"] == "CrossEntropy" for e in trace) == 3
    assert "3 training steps profiled" in stream.getvalue() and profiler._active is None
    plain, loader2, val2 = _make(tmp_path / "plain", 2, callbacks=[])
    plain.fit(loader2, val2)
    for a, b in zip(trainer.model.parameters(), plain.model.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    short = StepProfiler(tmp_path / "short", steps=50, skip=0, stream=io.StringIO())
    trainer, loader, val = _make(tmp_path / "s", 1, callbacks=[short])
    trainer.fit(loader, val)
    text = (tmp_path / "short" / "profile.txt").read_text()
    assert text.startswith("6 training steps profiled:") and profiler._active is None
    with pytest.raises(ValueError, match="steps >= 1"):
        StepProfiler(tmp_path, steps=0)


def test_profile_steps_flag_refuses_a_negative_count(capsys):
    """--profile-steps -1 is a usage error naming the flag, before anything runs."""
    from apps.cli import main
    with pytest.raises(SystemExit) as exc:
        main(["vision", "train", "--profile-steps", "-1"])
    assert exc.value.code == 2
    assert "--profile-steps: expected 0 or more steps, got -1" in capsys.readouterr().err
