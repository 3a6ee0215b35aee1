"""The MRI segmentation recipe behind `lantern mri`: describe series, write the built-in data,
train a U-Net, segment new volumes and evaluate label volumes. Each command function takes
the parsed command-line namespace and returns an exit code.

Read it like the vision recipe: the cases (tissue, lesion or an MSD folder) -> normalised
sample dicts split into train / val / test -> SegmentationDataset -> `Trainer.fit` with a
`SegmentationTask` -> sliding-window inference (Gaussian blending) on the test part ->
per-label Dice and HD95 in `<out>/metrics.json`. A checkpoint's `meta` holds the builder and
its arguments, the dims, the patch size, the label names and the normalisation, so `segment`
needs nothing else.

Protocols:
- tissue: the one MNI case; train on the inferior 60% of the brain's axial slices, validate
  on the 20% gap above them (monitoring only, no leakage into the test part) and test on the
  superior 20% (`datasets.mri.axial_split`);
- lesion: `--cases` generated cases split 85/15 into train / val by `--seed`, tested on
  `--test-cases` more generated from a separate index range.
- MSD folder: cases split 70/15/15 into train / val / test by `--seed`.
The test part is scored with the model of the last epoch (validation never selects it).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import framework as fw
from framework.utils.data import DataLoader, DistributedSampler

import models
from apps.common import (Callback, CLIError, MetricsWriter, ModelCheckpoint, ProgressBar,
                         StepProfiler, Trainer, check_device, seed_everything, write_csv,
                         WeightAveraging, write_json)
from apps.common import zoo
from apps.common.cli import setup_distributed
from apps.common.modelfiles import export_model, read_model_file, zoo_weights
from apps.common.optim import build_optimizer, build_scheduler
from datasets.mri import (SegmentationDataset, Volume, axial_axis, axial_split,
                          case_from_volumes, check_same_geometry, list_series,
                          load_tissue_template, make_lesion_case, make_lesion_cases, open_msd,
                          read_image, read_nifti, write_dicom_seg, write_label_nifti,
                          write_overlays, write_tissue_case)
from datasets.mri.lesions import LESION_LABELS
from datasets.mri.mni import TISSUE_LABELS
from datasets.mri.transforms import (Compose, NormalizeIntensity, RandomAffine, RandomElastic,
                                     RandomFlip, RandomGamma, RandomNoise, Transform)
from models.mri import (DiceCELoss, DiceLoss, FocalLoss, GeneralizedDiceLoss,
                        remove_small_components,
                        segmentation_metrics, sliding_window_inference)
from models.mri.inference import flip_tta

__all__ = ["info", "make_data", "train", "segment", "evaluate", "export", "describe_models",
           "zoo_build", "load_segmenter", "SegmentationTask",
           "build_loss", "predict_volume", "split_cases", "label_metrics_summary"]

TASK = "mri-segmentation"
LESION_TEST_FIRST = 10_000   # first case index of the lesion task's held-out test set
DEFAULTS = {"2d": dict(patch=(96, 96), channels=(32, 64, 128, 256), batch_size=16),
            "3d": dict(patch=(64, 64, 64), channels=(16, 32, 64, 128), batch_size=2)}


# ============================================================================== info
def _series_key(series: str | None):
    return int(series) if series is not None and series.isdigit() else series


def _fmt(values, digits: int = 4) -> str:
    return "(" + ", ".join(f"{float(v):.{digits}g}" for v in values) + ")"


def _print_geometry(vol: Volume) -> None:
    print(f"  dims {vol.shape} (slices, rows, columns), spacing {_fmt(vol.spacing)} mm, "
          f"{vol.orientation}")
    print(f"  origin {_fmt(vol.origin, 6)} mm (LPS)")
    print("  direction (columns = array axes, LPS):")
    for row in vol.direction:
        print("    " + "  ".join(f"{v:+.6f}" for v in row))
    print("  affine (voxel index -> LPS mm):")
    for row in vol.affine:
        print("    " + "  ".join(f"{v:+11.4f}" for v in row))
    finite = vol.array[np.isfinite(vol.array)]
    if finite.size:
        print(f"  values {finite.min():.6g} .. {finite.max():.6g} ({vol.array.dtype})")


def info(args) -> int:
    path = Path(args.path)
    if not path.exists():
        raise CLIError(f"{path}: no such file or folder")
    if path.is_file() and path.name.lower().endswith((".nii", ".nii.gz")):
        print(f"{path}: NIfTI volume")
        _print_geometry(read_nifti(path))
        return 0
    found = list_series(path)
    if not found:
        raise CLIError(f"{path}: no DICOM image series found")
    print(f"{path}: {len(found)} image series")
    header = ("number", "uid", "description", "modality", "files", "dims", "spacing_mm",
              "orientation", "problem")
    rows = [(str(s.number if s.number is not None else "-"), s.uid, s.description or "-",
             s.modality, str(s.n_files), "x".join(map(str, s.dims)),
             "x".join(f"{v:.4g}" for v in s.spacing), s.orientation, s.problem or "-")
            for s in found]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for r in (header, *rows):
        print("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    if len(found) == 1 and not found[0].problem or args.series:
        vol = read_image(path, _series_key(args.series))
        print(f"series {vol.meta.get('series_uid', args.series or found[0].uid)}:")
        _print_geometry(vol)
    return 0


# ============================================================================== data
def _template(args):
    return load_tissue_template(args.spacing, path=args.template)


def make_data(args) -> int:
    out = Path(args.out)
    t0 = time.perf_counter()
    template = _template(args)
    print(f"template: {template.image.shape} voxels at {_fmt(template.spacing)} mm "
          f"({time.perf_counter() - t0:.1f} s)", flush=True)
    if args.task == "tissue":
        paths = write_tissue_case(out, template=template, dicom_seg=True)
        for key, p in paths.items():
            print(f"  {key}: {p}")
    else:
        if args.cases < 1:
            raise CLIError(f"--cases must be at least 1, got {args.cases}")
        # make_lesion_cases has no progress hook, so only the start and end are reported.
        print(f"writing {args.cases} lesion cases (seed {args.seed}) to {out}", flush=True)
        make_lesion_cases(args.cases, out, args.seed, template=template)
        print(f"  dataset: {out / 'dataset.json'}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


def _crop_axis(case: dict, axis: int, indices: np.ndarray, name: str) -> dict:
    """The sub-case of the contiguous slice range holding `indices` along array `axis`."""
    lo, hi = int(np.min(indices)), int(np.max(indices)) + 1
    cut = [slice(None)] * 3
    cut[axis] = slice(lo, hi)
    affine = np.array(case["affine"], dtype=np.float64)
    affine[:3, 3] = affine[:3, :3] @ np.eye(3)[axis] * lo + affine[:3, 3]
    return {"image": case["image"][(slice(None), *cut)], "label": case["label"][tuple(cut)],
            "affine": affine, "name": name}


def split_cases(n: int, seed: int, fractions=(0.7, 0.15, 0.15)) -> tuple[list, list, list]:
    """Case indices into train / val / test, shuffled by `seed`; val and test get at least one
    case each, train the rest."""
    if n < 3:
        raise CLIError(f"the case split needs at least 3 cases (train, val, test), got {n}")
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_val = max(1, int(round(fractions[1] * n)))
    n_test = max(1, int(round(fractions[2] * n)))
    n_train = n - n_val - n_test
    if n_train < 1:
        n_train, n_val = 1, n - 1 - n_test
    return order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]


def _label_names(labels: dict) -> list[str]:
    values = sorted(int(k) for k in labels)
    if values != list(range(len(values))):
        raise CLIError(f"labels must be 0..N-1, got {values}")
    return [str(labels[v] if v in labels else labels[str(v)]) for v in values]


def load_task(args) -> dict:
    """{"train", "val", "test": lists of normalised cases, "labels": names, "normalize",
    "protocol": a sentence}."""
    if args.data:
        ds = open_msd(args.data)
        norm = {"percentiles": [0.5, 99.5], "nonzero": False}
        labels = _label_names(ds.labels)
        cases = ds.load_training()
        parts = split_cases(len(cases), args.seed)
        protocol = f"{args.data}: {len(cases)} cases split 70/15/15 by seed {args.seed}"
    else:
        template = _template(args)
        norm = {"percentiles": [0.5, 99.5], "nonzero": True}
        if (args.task or "tissue") == "tissue":
            labels = [TISSUE_LABELS[k] for k in sorted(TISSUE_LABELS)]
            whole = _normalizer(norm)(case_from_volumes(template.image, template.labels,
                                                        "tissue"))
            split = axial_split(template.image, template.brain)
            out = {k: [_crop_axis(whole, split.axis, getattr(split, k), f"tissue_{k}")]
                   for k in ("train", "gap", "test")}
            return {"train": out["train"], "val": out["gap"], "test": out["test"],
                    "labels": labels, "normalize": norm,
                    "protocol": "tissue: train on the inferior 60% of the axial slices, "
                                "validate on the next 20%, test on the superior 20%"}
        labels = [LESION_LABELS[k] for k in sorted(LESION_LABELS)]
        if args.cases < 2 or args.test_cases < 1:
            raise CLIError(f"the lesion task needs --cases >= 2 (train + val) and "
                           f"--test-cases >= 1, got {args.cases} and {args.test_cases}")
        # The test cases come from their own index range, so the held-out set stays the same
        # whatever --cases is.
        indices = list(range(args.cases)) + [LESION_TEST_FIRST + i
                                             for i in range(args.test_cases)]
        cases = []
        for n, i in enumerate(indices, 1):
            c = make_lesion_case(i, args.seed, template)
            cases.append(case_from_volumes(c.image, c.label, f"lesion_{i:05d}"))
            print(f"\rgenerating lesion cases {n}/{len(indices)}", end="", file=sys.stderr,
                  flush=True)
        print(file=sys.stderr)
        n_val = max(1, round(0.15 * args.cases))
        order = np.random.default_rng(args.seed).permutation(args.cases).tolist()
        parts = (order[n_val:], order[:n_val], list(range(args.cases, len(cases))))
        protocol = (f"lesion: {args.cases} synthetic cases ({args.cases - n_val} train, "
                    f"{n_val} val) and {args.test_cases} held-out test cases "
                    f"(indices {LESION_TEST_FIRST}+), seed {args.seed}")
    normalize = _normalizer(norm)
    train_, val_, test_ = ([normalize(cases[i]) for i in idx] for idx in parts)
    return {"train": train_, "val": val_, "test": test_, "labels": labels, "normalize": norm,
            "protocol": protocol}


def build_augmentation(level: str, dims: str) -> Transform | None:
    """The training-time augmentation: none; light (flips along every axis, gamma, noise);
    or strong (light plus small affine and elastic deformations, as nnU-Net's defaults)."""
    if level == "none":
        return None
    axes = (0, 1) if dims == "2d" else (0, 1, 2)
    steps: list[Transform] = [RandomFlip(axes), RandomGamma(), RandomNoise()]
    if level == "strong":
        steps = [RandomAffine(rotate_deg=10.0, scale=(0.9, 1.1), p=0.2),
                 RandomElastic(p=0.2)] + steps
    return Compose(steps)


def _normalizer(norm: dict) -> NormalizeIntensity:
    pct = norm.get("percentiles")
    return NormalizeIntensity(tuple(pct) if pct else None, nonzero=bool(norm.get("nonzero")))


# ============================================================================== model
def build_loss(name: str):
    """The training loss by its --loss name (softmax over the label channels). The Dice terms
    are over the whole batch (nnU-Net's batch Dice): per patch, a patch without foreground
    would reward predicting none, which drowns small lesions."""
    if name == "dicece":
        return DiceCELoss(include_background=False, batch=True)
    if name == "dice":
        return DiceLoss(include_background=False, batch=True)
    if name == "gdl":
        return GeneralizedDiceLoss()
    if name == "focal":
        return FocalLoss(use_softmax=True)
    raise CLIError(f"unknown --loss {name!r}; choose from dicece, dice, gdl, focal")


def _fg_dice_sum(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> float:
    """Sum over the batch of each sample's mean foreground Dice (labels absent from both the
    prediction and the truth are skipped; a sample with none scores 1)."""
    total = 0.0
    for p, g in zip(pred, gt):
        scores = []
        for c in range(1, num_classes):
            pc, gc = p == c, g == c
            denom = int(pc.sum()) + int(gc.sum())
            if denom:
                scores.append(2.0 * int((pc & gc).sum()) / denom)
        total += float(np.mean(scores)) if scores else 1.0
    return total


class SegmentationTask:
    """The Trainer's Task for segmentation: `loss(logits, label map)` per batch; validation
    adds the mean foreground Dice of the argmax prediction ("dice", per sample)."""

    def __init__(self, model, loss, num_classes: int):
        self.model, self.loss, self.num_classes = model, loss, int(num_classes)

    def training_step(self, batch):
        x, y = batch
        return {"loss": self.loss(self.model(x), y), "size": int(x.shape[0])}

    def validation_step(self, batch):
        x, y = batch
        logits = self.model(x)
        pred = logits.argmax(1).cpu().numpy()
        dice = _fg_dice_sum(pred, y.cpu().numpy(), self.num_classes)
        return {"loss": self.loss(logits, y), "size": int(x.shape[0]),
                "metrics": {"dice": dice}}


class SetEpoch(Callback):
    """Tell the datasets which epoch runs, so each epoch draws new (but seeded) patches."""

    rank_zero_only = False    # every rank draws its own patches

    def __init__(self, dataset):
        self.dataset = dataset

    def on_train_epoch_start(self, trainer) -> None:
        self.dataset.set_epoch(trainer.epoch)


class MineHardNegatives(Callback):
    """Hard-negative mining for 3D training: at the start of every `every`-th epoch from
    `first` on, segment `per_round` training cases (in turn, so every case is visited) with
    the current model and give the dataset the voxels it marks as foreground that are
    background, at most `max_voxels` per case; `SegmentationDataset(hard_fraction=...)` then
    centres that share of the patches on them. Uniform patches rarely land on the few
    structures a model confuses with lesions, so without this they stay false positives."""

    rank_zero_only = False   # every rank samples from its own copy of the dataset

    def __init__(self, dataset, model, patch, *, first: int, every: int, per_round: int,
                 overlap: float = 0.5, max_voxels: int = 2000, seed: int = 0):
        self.dataset, self.model, self.patch = dataset, model, tuple(patch)
        self.overlap = float(overlap)
        self.first, self.every = int(first), max(1, int(every))
        self.per_round, self.max_voxels, self.seed = int(per_round), int(max_voxels), int(seed)
        self.rounds = 0
        self.mined: dict[int, np.ndarray] = {}

    def on_train_epoch_start(self, trainer) -> None:
        e = trainer.epoch
        if e < self.first or (e - self.first) % self.every:
            return
        n = len(self.dataset.cases)
        picked = [(self.rounds * self.per_round + k) % n for k in range(min(self.per_round, n))]
        total = 0
        for ci in picked:
            case = self.dataset.cases[ci]
            # the test's window overlap: the errors depend on where the windows fall
            pred = predict_volume(self.model, case["image"], case["affine"], "3d", self.patch,
                                  device=trainer.device, overlap=self.overlap)
            wrong = np.argwhere((pred != 0) & (case["label"] == 0))
            if len(wrong) > self.max_voxels:
                rng = np.random.default_rng([self.seed, e, ci])
                wrong = wrong[rng.choice(len(wrong), self.max_voxels, replace=False)]
            self.mined[ci] = wrong
            self.dataset.set_hard_locations(ci, wrong)
            total += len(wrong)
        self.model.train()
        self.rounds += 1
        print(f"epoch {e + 1}: mined {total} false-positive voxels in {len(picked)} training "
              f"cases", flush=True)

    def state_dict(self) -> dict:
        return {"rounds": self.rounds,
                "mined": {str(k): fw.tensor(v) for k, v in self.mined.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.rounds = int(state.get("rounds", 0))
        self.mined = {int(k): np.asarray(v.numpy() if hasattr(v, "numpy") else v, np.int64)
                      for k, v in (state.get("mined") or {}).items()}
        for ci, where in self.mined.items():
            self.dataset.set_hard_locations(ci, where)


def _build_model(meta: dict):
    import models.mri  # noqa: F401 - registers unet2d / unet3d
    return models.get_model(meta["model"], **meta["model_kwargs"])


def predict_volume(model, image: np.ndarray, affine: np.ndarray, dims: str, patch, *,
                   device: str = "cpu", overlap: float = 0.5, sw_batch_size: int = 4,
                   tta: bool = False, min_size: int = 0) -> np.ndarray:
    """uint8 labels (D, H, W) of a normalised (C, D, H, W) image: Gaussian-blended sliding
    windows of `patch`, in 2D slice by slice along the axial axis (from `affine`), or in 3D;
    then connected components under `min_size` voxels become background.

    Only the bounding box of the image's nonzero voxels is segmented; the rest is background
    (as nnU-Net crops to the nonzero region): an all-zero slice is nothing the network was
    trained on, and instance norm of a constant input is degenerate."""
    fg = (image != 0).any(axis=0)
    out = np.zeros(image.shape[1:], np.uint8)
    if not fg.any():
        return out
    box = tuple(slice(int(ix.min()), int(ix.max()) + 1) for ix in np.nonzero(fg))
    out[box] = _predict_box(model, image[(slice(None),) + box], affine, dims, patch,
                            device=device, overlap=overlap, sw_batch_size=sw_batch_size,
                            tta=tta)
    return remove_small_components(out, min_size) if min_size > 1 else out


def _predict_box(model, image, affine, dims, patch, *, device, overlap, sw_batch_size, tta):
    model.eval()
    predictor = model
    if tta:
        predictor = flip_tta(model, axes=(0, 1) if dims == "2d" else (0, 1, 2))
    with fw.no_grad():
        if dims == "2d":
            axis = axial_axis(affine)[0]
            x = np.moveaxis(image, 1 + axis, 0)          # (K, C, H, W): slices as the batch
            x = fw.tensor(np.ascontiguousarray(x, dtype=np.float32)).to(device)
            logits = sliding_window_inference(x, tuple(patch), sw_batch_size, predictor,
                                              overlap=overlap, mode="gaussian")
            labels = logits.argmax(1).cpu().numpy()      # (K, H, W)
            labels = np.moveaxis(labels, 0, axis)
        else:
            x = fw.tensor(np.ascontiguousarray(image[None], dtype=np.float32)).to(device)
            logits = sliding_window_inference(x, tuple(patch), sw_batch_size, predictor,
                                              overlap=overlap, mode="gaussian")
            labels = logits.argmax(1).cpu().numpy()[0]
    return labels.astype(np.uint8)


def _spacing(affine: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))


def _mean(values) -> float:
    """Mean of the defined values (nan skipped); inf when any is infinite (an empty mask on
    one side), nan when none is defined."""
    v = np.asarray([x for x in values if not np.isnan(x)], dtype=np.float64)
    return float(v.mean()) if v.size else float("nan")


def label_metrics_summary(per_case: list[dict], labels: list[str]) -> dict:
    """{"dice": {name: mean}, "mean_dice", "hd95_mm", "iou", "msd_mm"} over per-case
    `segmentation_metrics` results (label value -> LabelMetrics)."""
    out = {"dice": {}, "hd95_mm": {}, "iou": {}, "msd_mm": {}}
    for value, name in enumerate(labels):
        if value == 0:
            continue
        ms = [c[value] for c in per_case if value in c]
        out["dice"][name] = _mean([m.dice for m in ms])
        out["iou"][name] = _mean([m.iou for m in ms])
        out["hd95_mm"][name] = _mean([m.hd95 for m in ms])
        out["msd_mm"][name] = _mean([m.msd for m in ms])
    dices = [v for v in out["dice"].values() if not np.isnan(v)]
    out["mean_dice"] = float(np.mean(dices)) if dices else float("nan")
    return out


# ============================================================================== train
def _loader(ds, batch_size: int, *, shuffle: bool, seed: int, workers: int,
            rank: int = 0, world: int = 1):
    """Batches of `ds`; with several processes, this rank's share (DistributedSampler: the
    same seeded shuffle everywhere, every world-th item from rank)."""
    if world > 1:
        sampler = DistributedSampler(ds, world, rank, shuffle=shuffle, seed=seed)
        return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers)
    gen = fw.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen,
                      num_workers=workers, persistent_workers=False)


def _check_patch(patch, dims: str, channels) -> tuple[int, ...]:
    want = 2 if dims == "2d" else 3
    if len(patch) != want:
        raise CLIError(f"--patch-size {','.join(map(str, patch))}: --dims {dims} needs "
                       f"{want} sizes")
    factor = 2 ** (len(channels) - 1)
    bad = [p for p in patch if p % factor]
    if bad:
        raise CLIError(f"--patch-size {','.join(map(str, patch))}: every size must divide by "
                       f"{factor} (2^(stages-1) for --channels {','.join(map(str, channels))})")
    return tuple(int(p) for p in patch)


def train(args) -> int:
    device = check_device(args.device)
    rank, world = 0, 1
    if args.distributed:   # every rank runs this function; rank 0 reports and writes
        device, rank, world = setup_distributed(device)
    seed_everything(args.seed)
    d = DEFAULTS[args.dims]
    channels = tuple(args.channels or d["channels"])
    if len(channels) < 2:
        raise CLIError("--channels needs at least two stages, e.g. 16,32")
    patch = _check_patch(args.patch_size or d["patch"], args.dims, channels)
    batch_size = args.batch_size or d["batch_size"]
    out = Path(args.out)
    t_start = time.perf_counter()

    if args.hard_negatives and args.dims != "3d":
        raise CLIError("--hard-negatives applies to --dims 3d")
    if not 0.0 <= args.hard_negatives <= 1.0 - args.fg_fraction:
        raise CLIError(f"--hard-negatives must be in [0, 1 - --fg-fraction], got "
                       f"{args.hard_negatives} with --fg-fraction {args.fg_fraction}")
    data = load_task(args)
    labels = data["labels"]
    in_channels = int(data["train"][0]["image"].shape[0])
    print(f"{data['protocol']}: {len(data['train'])} train / {len(data['val'])} val / "
          f"{len(data['test'])} test cases, labels {labels}", flush=True)
    augment = build_augmentation(args.augment, args.dims)
    if args.dims == "2d":
        train_ds = SegmentationDataset(data["train"], "2d", patch, transform=augment,
                                       fg_fraction=args.fg_fraction, seed=args.seed)
        val_ds = SegmentationDataset(data["val"], "2d", patch, seed=args.seed + 1)
    else:
        per_epoch = args.samples_per_epoch or 8 * len(data["train"])
        train_ds = SegmentationDataset(data["train"], "3d", patch, samples_per_epoch=per_epoch,
                                       transform=augment, fg_fraction=args.fg_fraction,
                                       hard_fraction=args.hard_negatives, seed=args.seed)
        val_ds = SegmentationDataset(data["val"], "3d", patch,
                                     samples_per_epoch=4 * len(data["val"]), seed=args.seed + 1)
    train_loader = _loader(train_ds, batch_size, shuffle=True, seed=args.seed,
                           workers=args.workers, rank=rank, world=world)
    val_loader = _loader(val_ds, batch_size, shuffle=False, seed=args.seed, workers=0,
                         rank=rank, world=world)

    meta = {"task": TASK, "model": f"unet{args.dims}", "dims": args.dims,
            "model_kwargs": {"num_classes": len(labels), "in_channels": in_channels,
                             "channels": list(channels)},
            "patch_size": list(patch), "labels": list(labels),
            "normalize": data["normalize"], "loss": args.loss, "augment": args.augment,
            "min_size": args.min_size,
            "spacing_mm": list(_spacing(data["train"][0]["affine"])),
            "data": data["protocol"]}
    model = _build_model(meta).to(device)
    task = SegmentationTask(model, build_loss(args.loss), len(labels))
    optimizer = build_optimizer(args.optimizer, model.parameters(), lr=args.lr,
                                weight_decay=args.weight_decay)
    scheduler = build_scheduler(args.scheduler, optimizer, epochs=args.epochs,
                                steps_per_epoch=len(train_loader))
    # WeightAveraging first: at each epoch start it puts the trained weights back, before
    # anything else (the mining) uses the model
    callbacks = [SetEpoch(train_ds), *([WeightAveraging(args.ema)] if args.ema else [])]
    if args.hard_negatives:
        # from a quarter of the way in (the model must first find lesions at all), six
        # rounds, each a sixth of the training cases
        first = max(1, args.epochs // 4)
        callbacks.append(MineHardNegatives(
            train_ds, model, patch, first=first, every=max(1, -(-(args.epochs - first) // 6)),
            per_round=max(1, -(-len(data["train"]) // 6)), overlap=args.overlap,
            seed=args.seed))
    callbacks += [ProgressBar(),
                 MetricsWriter(out, title=f"unet{args.dims} {args.loss}",
                               plot=not args.no_plots),
                 ModelCheckpoint(out, monitor="val/dice", mode="max")]
    if args.profile_steps:
        callbacks.append(StepProfiler(out, args.profile_steps))
    trainer = Trainer(task, optimizer, scheduler, max_epochs=args.epochs, device=device,
                      callbacks=callbacks, out_dir=out, meta=meta, distributed=args.distributed)
    print(f"training unet{args.dims} (channels {channels}, patch {patch}) for {args.epochs} "
          f"epochs, {len(train_loader)} batches of {batch_size} each, on {device}"
          + (f" x {world} processes" if world > 1 else ""), flush=True)
    trainer.fit(train_loader, val_loader, resume=args.resume)
    train_seconds = time.perf_counter() - t_start
    if rank != 0:
        return 0   # rank 0 tests the (identical) final model and writes the results

    # Test: whole cases through sliding windows, scored per label in mm.
    per_case, rows, infer_seconds = [], [], []
    for i, case in enumerate(data["test"]):
        t0 = time.perf_counter()
        pred = predict_volume(model, case["image"], case["affine"], args.dims, patch,
                              device=device, overlap=args.overlap, sw_batch_size=batch_size,
                              min_size=args.min_size)
        infer_seconds.append(time.perf_counter() - t0)
        ms = segmentation_metrics(pred, case["label"], range(1, len(labels)),
                                  _spacing(case["affine"]))
        per_case.append(ms)
        rows += [{"case": case.get("name", str(i)), "label": labels[v], **m.as_dict()}
                 for v, m in ms.items()]
        if i < 2:
            vol = Volume.from_affine(case["image"][0], case["affine"])
            write_overlays(vol, pred, out / "overlays", n=4, prefix=case.get("name", f"case{i}"),
                           reference=case["label"])
    summary = label_metrics_summary(per_case, labels)
    write_csv(out / "test_metrics.csv", rows)
    ck = next(cb for cb in callbacks if isinstance(cb, ModelCheckpoint))
    result = {"test": summary, "epochs": trainer.epoch,
              "seconds": time.perf_counter() - t_start, "train_seconds": train_seconds,
              "inference_seconds_per_case": float(np.mean(infer_seconds)),
              "best_val_dice": ck.best, "best_epoch": ck.best_epoch,
              "model": meta["model"], "model_kwargs": meta["model_kwargs"],
              "patch_size": list(patch), "loss": args.loss, "labels": labels,
              "protocol": data["protocol"], "device": device, "seed": args.seed,
              "history": trainer.history}
    write_json(out / "metrics.json", result)
    _print_table(summary, labels)
    print(f"test mean Dice {summary['mean_dice']:.4f} ({len(data['test'])} case(s), "
          f"{result['inference_seconds_per_case']:.2f} s per case); wrote {out}/metrics.json, "
          f"metrics.csv, test_metrics.csv, overlays/, last.safetensors")
    return 0


def _print_table(summary: dict, labels) -> None:
    print(f"{'label':<20} {'dice':>8} {'iou':>8} {'hd95_mm':>9} {'msd_mm':>8}")
    for name in summary["dice"]:
        print(f"{name:<20} {summary['dice'][name]:8.4f} {summary['iou'][name]:8.4f} "
              f"{summary['hd95_mm'][name]:9.3f} {summary['msd_mm'][name]:8.3f}")


# ============================================================================== export / zoo
_EXPORT_KEYS = ("task", "model", "dims", "model_kwargs", "patch_size", "labels", "normalize",
                "spacing_mm", "data", "loss", "min_size")


def export(args) -> int:
    model, meta = load_segmenter(args.checkpoint)
    meta = export_model(model, {**{k: meta[k] for k in _EXPORT_KEYS if k in meta},
                                "exported_from": meta["source"]}, args.out, "mri")
    print(f"{args.out} ({meta['num_params']:,} parameters, sha256 {meta['sha256'][:16]}...) "
          f"and {Path(args.out).with_suffix('.json')}")
    return 0


def describe_models(args) -> int:
    return zoo.describe_models("mri", args.name)


def zoo_build(args) -> int:
    """Train a zoo entry with the command recorded in its weights record."""
    from .cli import add_parser
    return zoo.zoo_build(args.name, "mri", add_parser, train, export, out=args.out,
                         headline=lambda m: f"test mean Dice {m['test']['mean_dice']:.4f}",
                         recorded=lambda w: f"mean Dice {w.metrics.get('dice')}")


# ============================================================================== segment
def _input_name(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".dcm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name or "input"


def load_segmenter(spec: str, device: str = "cpu"):
    """(model in eval mode, meta) from a training checkpoint or run folder, an export
    (`lantern mri export`), or a zoo record `zoo:<model>.<tag>`."""
    path = models.weights_path(zoo_weights(spec)) if spec.startswith("zoo:") else Path(spec)
    if spec.startswith("zoo:") and not path.is_file():
        raise CLIError(f"{spec}: not built on this machine; run `lantern zoo build {spec[4:]}`")
    meta, state = read_model_file(path, "mri")
    if meta.get("task") != TASK:
        raise CLIError(f"{spec}: not an MRI segmentation model (task {meta.get('task')!r})")
    model = _build_model(meta)
    models.load_pretrained(model, state, strict=True)
    meta["source"] = str(path)
    return model.to(device).eval(), meta


def segment(args) -> int:
    device = check_device(args.device)
    model, meta = load_segmenter(args.checkpoint, device)
    labels = list(meta["labels"])
    normalize = _normalizer(meta["normalize"])
    out = Path(args.output)
    for raw in args.input:
        path = Path(raw)
        if not path.exists():
            raise CLIError(f"{path}: no such file or folder")
        vol = read_image(path, _series_key(args.series))
        is_dicom = "slice_files" in vol.meta
        formats = args.format or (["seg"] if is_dicom else ["nifti"])
        if "seg" in formats and not is_dicom:
            raise CLIError(f"{path}: --format seg needs a DICOM input (the SEG references its "
                           "source series); use --format nifti or png")
        t0 = time.perf_counter()
        sample = normalize({"image": vol.array[None].astype(np.float32)})
        pred = predict_volume(model, sample["image"], vol.affine, meta["dims"],
                              meta["patch_size"], device=device, overlap=args.overlap,
                              sw_batch_size=args.batch_size, tta=args.tta,
                              min_size=meta.get("min_size", 0) if args.min_size is None
                              else args.min_size)
        seconds = time.perf_counter() - t0
        name = _input_name(path)
        written = []
        if "seg" in formats:
            files = list(dict.fromkeys(str(f) for f in vol.meta["slice_files"]))
            source = files if len(files) == vol.shape[0] else path
            written.append(write_dicom_seg(pred, source, out / f"{name}_seg.dcm",
                                           {i: n for i, n in enumerate(labels) if i}))
        if "nifti" in formats:
            written.append(write_label_nifti(pred, vol, out / f"{name}_seg.nii.gz"))
        if "png" in formats:
            written += write_overlays(vol, pred, out / f"{name}_overlays", n=6)
        voxel_ml = float(np.prod(vol.spacing)) / 1000.0
        volumes = ", ".join(f"{labels[v]} {(pred == v).sum() * voxel_ml:.1f} ml"
                            for v in range(1, len(labels)))
        print(f"{path}: {vol.shape} in {seconds:.2f} s; {volumes}")
        for p in written[:3]:
            print(f"  wrote {p}")
        if len(written) > 3:
            print(f"  ... and {len(written) - 3} more")
    return 0


# ============================================================================== evaluate
def _parse_labels(items) -> dict[int, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        value, _, name = item.partition("=")
        try:
            v = int(value)
        except ValueError:
            raise CLIError(f"--labels {item!r}: expected VALUE or VALUE=NAME, e.g. 1=lesion") \
                from None
        out[v] = name or str(v)
    return out


def _label_array(vol: Volume, path) -> np.ndarray:
    a = vol.array
    if not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"{path}: not a label volume (holds non-integer values)")
        a = a.astype(np.int64)
    return a


def evaluate(args) -> int:
    pred_vol, gt_vol = read_image(args.pred), read_image(args.gt)
    check_same_geometry(gt_vol, pred_vol, (str(args.gt), str(args.pred)))
    pred, gt = _label_array(pred_vol, args.pred), _label_array(gt_vol, args.gt)
    names = _parse_labels(args.labels)
    ms = segmentation_metrics(pred, gt, None if names is None else sorted(names),
                              gt_vol.spacing)
    if not ms:
        raise CLIError(f"{args.gt}, {args.pred}: no nonzero label in either volume")
    names = names or {v: str(v) for v in ms}
    rows = [{"label": names[v], "value": v, **m.as_dict()} for v, m in ms.items()]
    dice = {names[v]: m.dice for v, m in ms.items()}
    defined = [x for x in dice.values() if not np.isnan(x)]
    summary = {"dice": dice, "mean_dice": float(np.mean(defined)) if defined else float("nan"),
               "hd95_mm": {names[v]: m.hd95 for v, m in ms.items()},
               "iou": {names[v]: m.iou for v, m in ms.items()},
               "msd_mm": {names[v]: m.msd for v, m in ms.items()}}
    out = Path(args.out)
    write_csv(out / "metrics.csv", rows)
    write_json(out / "metrics.json", {"test": summary, "pred": str(args.pred),
                                      "gt": str(args.gt), "spacing_mm": list(gt_vol.spacing),
                                      "per_label": rows})
    _print_table(summary, list(names.values()))
    print(f"mean Dice {summary['mean_dice']:.4f}; wrote {out}/metrics.csv, metrics.json")
    return 0
