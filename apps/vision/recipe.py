"""The image-classification recipe behind `lantern vision`: train, evaluate, predict, export,
describe models and build zoo weights. Each function takes the parsed command-line namespace
(or any object with the same attributes) and returns an exit code.

Read it like torchvision's reference script: `load_data` -> `build_model` -> `Trainer.fit`
-> `evaluate` on the test split -> `<out>/metrics.json`.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import framework as fw
import framework.nn.functional as F
from framework.utils.data import DataLoader, DistributedSampler, Subset

import models
from apps.common import (LAST, CLIError, EarlyStopping, MetricsWriter, ModelCheckpoint,
                         ProgressBar, StepProfiler, Trainer, check_device, load_checkpoint,
                         seed_everything, WeightAveraging, write_json)
from apps.common import zoo
from apps.common.cli import resolve_split_seed, setup_distributed
from apps.common.classification import (ClassificationTask, classification_report,
                                        collect_scores, format_confusion, format_per_class,
                                        write_eval_files)
from apps.common.modelfiles import export_model, load_model, zoo_weights
from apps.common.optim import build_optimizer, build_scheduler
from datasets.vision import IMG_EXTENSIONS, open_image_dataset, read_image
from datasets.vision.transforms import IMAGENET_MEAN, IMAGENET_STD, CutMix, MixUp, \
    RandomChoice, eval_preset, preset_from_spec, train_preset

__all__ = ["train", "evaluate", "predict", "export", "describe_models", "zoo_build",
           "load_for_inference"]

# Architectures whose input size is fixed by their layers (the others adapt to any size).
FIXED_INPUT = {"lenet5": 28, "vit_tiny": 32, "vit_b_16": 224, "mtcnn_onet": 48,
               "mtcnn_rnet": 24}


# ============================================================================== data
def _open(args, split: str, transform=None):
    return open_image_dataset(args.data, split=split, val_fraction=args.val_fraction,
                              seed=resolve_split_seed(args), transform=transform, skip_bad=args.skip_bad,
                              loader=args.loader)


def _raw_images(ds, limit: int = 512):
    """Up to `limit` untransformed images of a data set, spread over it."""
    data = getattr(ds, "data", None)
    if isinstance(data, np.ndarray):
        return data
    parent = getattr(ds, "dataset", None)   # a split of an in-memory set
    if isinstance(getattr(parent, "data", None), np.ndarray):
        return parent.data[ds.indices]
    idx = np.linspace(0, len(ds) - 1, num=min(limit, len(ds))).astype(int)
    return [ds[i][0] for i in idx]


def data_profile(ds) -> dict:
    """Channels, the common size (or None when sizes vary) and per-channel mean/std in [0,1]
    of a data set's images (from a sample for file-backed sets)."""
    images = _raw_images(ds)
    channels = 3 if any(im.shape[-1] == 3 for im in images) else 1
    sizes = {im.shape[:2] for im in images}
    size = next(iter(sizes)) if len(sizes) == 1 else None
    sums = np.zeros(channels)
    sq = np.zeros(channels)
    count = 0
    for im in images:
        x = im.astype(np.float64) / 255.0
        if x.shape[-1] != channels:
            x = np.repeat(x, channels, axis=-1)
        sums += x.sum(axis=(0, 1))
        sq += (x ** 2).sum(axis=(0, 1))
        count += x.shape[0] * x.shape[1]
    mean = sums / count
    std = np.sqrt(np.maximum(sq / count - mean ** 2, 1e-12))
    return {"channels": channels, "size": size, "mean": [round(float(m), 4) for m in mean],
            "std": [round(float(s), 4) for s in std]}


def _loader(ds, batch_size, *, shuffle=False, workers=0, seed=0, drop_last=False,
            sampler=None):
    gen = fw.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      generator=gen, drop_last=drop_last, persistent_workers=workers > 0,
                      sampler=sampler)


# ============================================================================== models
def _check_model(name: str) -> None:
    if name not in models.list_models("vision"):
        raise CLIError(f"unknown vision model {name!r}; choose from: "
                       f"{', '.join(models.list_models('vision'))}")


def model_channels(name: str, data_channels: int) -> int:
    """The channels the model will see: the data's when the architecture takes any number,
    else 3 (grey images are replicated, with a warning, by the preprocessing)."""
    return data_channels if _takes(name, "in_channels") or _takes(name, "in_features") else 3


def build_model(name: str, num_classes: int, input_shape: tuple[int, int, int], *,
                cifar_stem: bool = False, weights: str | None = None):
    """A zoo architecture for `num_classes` outputs and (C, H, W) inputs, optionally started
    from pretrained weights (`zoo:<model>.<tag>` or a checkpoint path); returns (model,
    builder kwargs)."""
    _check_model(name)
    kwargs = {"num_classes": num_classes}
    if _takes(name, "in_channels"):
        kwargs["in_channels"] = input_shape[0]
    if _takes(name, "in_features"):
        kwargs["in_features"] = int(np.prod(input_shape))
    if cifar_stem:
        if not _takes(name, "cifar_stem"):
            raise CLIError(f"--cifar-stem applies to the ResNets, not {name}")
        kwargs["cifar_stem"] = True
    model = models.get_model(name, **kwargs)
    if weights:
        source = models.weights_path(zoo_weights(weights)) if weights.startswith("zoo:") \
            else weights
        report = models.load_pretrained(model, source)
        print(f"weights {weights}: {report}")
    return model, kwargs


def _takes(name: str, param: str) -> bool:
    import inspect
    return param in inspect.signature(models.get_entry(name).builder).parameters


def load_for_inference(args, device: str):
    """(model in eval mode, meta) from --checkpoint (training checkpoint or export) or
    --model zoo:<name>. The meta holds the classes and the eval preprocessing."""
    if not getattr(args, "model", None):
        return load_model(args.checkpoint, "vision", device)
    w = zoo_weights(args.model)
    model = models.get_model(w.model, weights=w)
    meta = {"model": w.model, "model_kwargs": dict(w.builder_kwargs),
            "classes": list(w.categories), "transforms": dict(w.transforms),
            "source": f"zoo:{w.name}"}
    return model.to(device).eval(), meta


# ============================================================================== train
def train(args) -> int:
    device = check_device(args.device)
    distributed = bool(getattr(args, "distributed", False))
    rank, world = 0, 1
    if distributed:   # every rank runs this function; rank 0 reports and writes
        device, rank, world = setup_distributed(device)
    _check_model(args.model)
    seed_everything(args.seed)
    fw.set_flush_denormal(True)
    out = Path(args.out)
    t_start = time.perf_counter()

    resumed = load_checkpoint(args.resume) if args.resume else None
    if resumed is not None:  # the split it was trained on, unless --split-seed says otherwise
        resolve_split_seed(args, resumed["meta"])
    train_raw = _open(args, "train")
    val_raw = _open(args, "val") if args.val_fraction > 0 else None
    test_raw = _open(args, "test")
    classes = list(train_raw.classes)
    profile = data_profile(train_raw)
    channels = model_channels(args.model, profile["channels"])
    pretrained_rgb = bool(args.weights) and channels == 3
    size = args.image_size or FIXED_INPUT.get(args.model) or profile["size"] or 224
    size = size if isinstance(size, int) else max(size)
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if pretrained_rgb else \
        (profile["mean"], profile["std"])
    small = _is_small(profile)
    if channels != profile["channels"]:   # grey data replicated for an RGB-only model
        mean, std = mean * 3, std * 3
    eval_spec = eval_preset(size, mean, std, channels=channels,
                            resize=size if small else int(round(size * 256 / 224))).spec

    _report_skipped(train_raw)
    model, model_kwargs = build_model(args.model, len(classes), (channels, size, size),
                                      cifar_stem=args.cifar_stem, weights=args.weights)
    if resumed is not None:
        eval_spec = _check_resume(args.resume, resumed, model, args.model, classes)
    model.to(device)
    if world > 1:   # the model is rank 0's (DDP broadcasts it); augmentations differ per rank
        seed_everything(args.seed + rank)
    train_tf = train_transform(args.augment, size, mean, std, channels=channels,
                               small=small, resize=size if profile["size"] not in
                               (None, (size, size)) else None, hflip=_hflip_ok(args.data))
    eval_tf = preset_from_spec(eval_spec)
    for ds, tf in ((train_raw, train_tf), (val_raw, eval_tf), (test_raw, eval_tf)):
        if ds is not None:
            ds.transform = tf
    if distributed:
        # each rank trains on its share of every epoch's shuffle and validates on its slice
        sampler = DistributedSampler(train_raw, world, rank, shuffle=True, seed=args.seed)
        train_loader = _loader(train_raw, args.batch_size, workers=args.workers,
                               drop_last=len(sampler) > args.batch_size, sampler=sampler)
        if val_raw is not None and 0 < len(val_raw) < world:
            raise CLIError(f"--distributed: {len(val_raw)} validation images for {world} "
                           "processes; raise --val-fraction or use fewer processes")
        val_shard = Subset(val_raw, range(rank, len(val_raw), world)) \
            if val_raw is not None else None
    else:
        train_loader = _loader(train_raw, args.batch_size, shuffle=True, workers=args.workers,
                               seed=args.seed, drop_last=len(train_raw) > args.batch_size)
        val_shard = val_raw
    val_loader = _loader(val_shard, 256, workers=args.workers) if val_raw is not None and \
        len(val_raw) else None

    mixes = [m for m in (MixUp(alpha=args.mixup, num_classes=len(classes)) if args.mixup else None,
                         CutMix(alpha=args.cutmix, num_classes=len(classes)) if args.cutmix
                         else None) if m is not None]
    batch_tf = mixes[0] if len(mixes) == 1 else (RandomChoice(mixes) if mixes else None)
    task = ClassificationTask(model, label_smoothing=args.label_smoothing, batch_transform=batch_tf)
    optimizer = build_optimizer(args.optimizer, model.parameters(), lr=args.lr,
                                weight_decay=args.weight_decay, momentum=args.momentum)
    scheduler = build_scheduler(args.scheduler, optimizer, epochs=args.epochs,
                                steps_per_epoch=len(train_loader),
                                warmup_epochs=args.warmup_epochs)
    monitor = ("val/accuracy", "max") if val_loader is not None else ("train/loss", "min")
    callbacks = [ProgressBar(), MetricsWriter(out, title=f"{args.model} on "
                                                                   f"{args.data}",
                                                        plot=not args.no_plots)]
    if args.patience:
        callbacks.append(EarlyStopping(monitor=monitor[0], mode=monitor[1],
                                       patience=args.patience))
    if args.ema:
        callbacks.append(WeightAveraging(args.ema))
    callbacks.append(ModelCheckpoint(out, monitor=monitor[0], mode=monitor[1]))
    if args.profile_steps:
        callbacks.append(StepProfiler(out, args.profile_steps))
    meta = {"app": "vision", "model": args.model, "model_kwargs": model_kwargs,
            "classes": classes, "transforms": eval_spec, "data": args.data,
            "args": {k: v for k, v in vars(args).items() if k != "func" and
                     not k.startswith("_")}}
    trainer = Trainer(task, optimizer, scheduler, max_epochs=args.epochs, device=device,
                      callbacks=callbacks, grad_clip=args.grad_clip, amp=args.amp,
                      out_dir=out, meta=meta, throughput_unit="images", distributed=distributed)
    print(f"{args.model}: {sum(p.numel() for p in model.parameters()):,} parameters | "
          f"{args.data}: {len(train_raw)} train / {len(val_raw) if val_raw else 0} val / "
          f"{len(test_raw)} test, {len(classes)} classes, {size}x{size}x{channels} | {device}"
          + (f" x {world} processes" if distributed else ""))
    trainer.fit(train_loader, val_loader, resume=args.resume)
    if rank != 0:
        return 0   # rank 0 evaluates the (identical) final model and writes the results

    # The test figure is the final model's (as torchvision's recipes report): with a decaying
    # schedule it is the one training converged to, while the best-on-validation pick of a
    # small validation split is noisy. best.safetensors is kept beside it.
    test_loader = _loader(test_raw, 256, workers=args.workers)
    report = _report(model, test_loader, classes, device)
    results = {"test": {"accuracy": report["accuracy"], "top5": report["top5"],
                        "count": report["count"], "macro_f1": report["macro_f1"]},
               "epochs": trainer.epoch, "seconds": round(time.perf_counter() - t_start, 2),
               "model": args.model, "data": args.data, "best_epoch": _best_epoch(trainer),
               "checkpoint": str(out / LAST)}
    if trainer.history:
        last = trainer.history[-1]
        results["final_epoch"] = {k: v for k, v in last.items() if k != "epoch"}
    write_json(out / "metrics.json", results)
    write_eval_files(out, report, classes, plots=not args.no_plots)
    print(f"test accuracy {report['accuracy']:.4f}  top-5 {report['top5']:.4f}  "
          f"({report['count']} images) -> {out / 'metrics.json'}")
    return 0


def _report_skipped(ds) -> None:
    while ds is not None and not hasattr(ds, "skipped"):
        ds = getattr(ds, "dataset", None)
    if ds is not None and ds.skipped:
        path, reason = ds.skipped[0]
        print(f"skipped {len(ds.skipped)} image(s) that could not be decoded (first: {path}: "
              f"{reason})")


def _check_resume(path, state: dict, model, name: str, classes) -> dict:
    """The eval preprocessing of the run being resumed (`state`, read from `path`), after
    checking that it trained the same architecture on the same classes (naming the keys
    that differ when not)."""
    meta = state["meta"]
    report, _ = models.match_state_dict(model, state["model"])
    if not report.complete:
        raise CLIError(f"--resume {path}: its model ({meta.get('model')}) is not this "
                       f"{name}: {report}")
    if list(meta.get("classes", [])) != list(classes):
        raise CLIError(f"--resume {path}: it was trained on classes {meta.get('classes')}, "
                       f"this data has {classes}")
    return meta["transforms"]


def _is_small(profile) -> bool:
    """Digit- and CIFAR-sized images (all the same size, at most 64 pixels) are augmented by
    small shifts; larger or ragged images by random resized crops."""
    return profile["size"] is not None and max(profile["size"]) <= 64


# Augmentation strengths: (affine degrees, translate) for small images, the smallest area
# share of a resized crop for large ones, and colour jitter / random erasing.
AUGMENT = {"light": (5, 0.05, 0.35, 0.0, 0.0), "default": (10, 0.1, 0.08, 0.0, 0.0),
           "strong": (15, 0.125, 0.08, 0.4, 0.25)}


def train_transform(augment: str, size: int, mean, std, *, channels: int, small: bool,
                    resize: int | None, hflip: bool):
    """The training pipeline for an --augment level (see AUGMENT)."""
    if augment == "none":
        return eval_preset(size, mean, std, channels=channels, resize=resize or size)
    degrees, shift, min_area, jitter, erasing = AUGMENT[augment]
    common = {"channels": channels, "hflip": 0.5 if hflip else 0.0, "color_jitter": jitter,
              "erasing": erasing}
    if small and channels == 1:     # digits: shifts and small rotations
        return train_preset(size, mean, std, crop_mode="affine", resize=resize,
                            affine={"degrees": degrees, "translate": [shift, shift]}, **common)
    if small:                       # CIFAR-style colour images: padded random crops
        return train_preset(size, mean, std, crop_mode="pad", resize=resize,
                            padding=max(1, size // 8), **common)
    return train_preset(size, mean, std, crop_mode="resized", scale=[min_area, 1.0], **common)


def _hflip_ok(data: str) -> bool:
    # Mirrored digits are other glyphs; natural images are symmetric under a flip.
    return data not in ("digits", "mnist5k") and not data.startswith(("mnist:",
                                                                        "fashion-mnist:"))


def _best_epoch(trainer):
    for cb in trainer.callbacks:
        if isinstance(cb, ModelCheckpoint):
            return cb.best_epoch
    return None


# ============================================================================== evaluate
def class_probabilities(model, x):
    """(N, classes) probabilities of a batch: the softmax of a classifier's logits, or the
    class head of a detector (MTCNN: the last output, already a softmax, 1x1 maps for P-Net
    on its 12x12 crops)."""
    out = model(x)
    if isinstance(out, tuple):
        out = out[-1]
    out = out.float().reshape(out.shape[0], -1) if out.ndim == 4 else out.float()
    return out if getattr(model, "returns_probabilities", False) else F.softmax(out, dim=1)


def _report(model, loader, classes, device) -> dict:
    model.eval()
    y, p = collect_scores(lambda x: class_probabilities(model, x), loader, device)
    return classification_report(y, p, classes, k=5)


def evaluate(args) -> int:
    device = check_device(args.device)
    seed_everything(args.seed)
    model, meta = load_for_inference(args, device)
    resolve_split_seed(args, meta)
    ds = _open(args, args.split, transform=preset_from_spec(meta["transforms"]))
    if list(ds.classes) != list(meta["classes"]):
        raise CLIError(f"--data {args.data}: classes {ds.classes} differ from the model's "
                       f"{meta['classes']}")
    t0 = time.perf_counter()
    report = _report(model, _loader(ds, args.batch_size, workers=args.workers), ds.classes,
                     device)
    out = Path(args.out)
    write_json(out / "metrics.json", {
        args.split: {"accuracy": report["accuracy"], "top5": report["top5"],
                     "count": report["count"], "macro_f1": report["macro_f1"],
                     "per_class": report["per_class"]},
        "model": meta["source"], "data": args.data,
        "seconds": round(time.perf_counter() - t0, 2)})
    write_eval_files(out, report, ds.classes, plots=True)
    print(f"{meta['source']} on {args.data} ({args.split}, {report['count']} images): "
          f"accuracy {report['accuracy']:.4f}  top-5 {report['top5']:.4f}  "
          f"macro F1 {report['macro_f1']:.4f}")
    print(format_per_class(report))
    print(format_confusion(report["confusion_matrix"], ds.classes))
    print(f"-> {out / 'metrics.json'}, {out / 'confusion.png'}")
    return 0


# ============================================================================== predict
def _collect_inputs(inputs) -> list[str]:
    paths: list[str] = []
    for item in inputs:
        if item == "-":
            paths += [line.strip() for line in sys.stdin if line.strip()]
        elif os.path.isdir(item):
            for root, _, files in sorted(os.walk(item)):
                paths += [os.path.join(root, f) for f in sorted(files)
                          if f.lower().endswith(IMG_EXTENSIONS)]
        else:
            paths.append(item)
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise CLIError(f"{missing[0]}: no such image file" +
                       (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if not paths:
        raise CLIError("no images to predict (the folders hold no image files)")
    return paths


def predict(args) -> int:
    device = check_device(args.device)
    paths = _collect_inputs(args.inputs)
    model, meta = load_for_inference(args, device)
    tf = preset_from_spec(meta["transforms"])
    classes = meta["classes"]
    k = max(1, min(args.topk, len(classes)))
    rows = []
    with fw.no_grad():
        for i in range(0, len(paths), args.batch_size):
            chunk = paths[i:i + args.batch_size]
            x = fw.stack([tf(read_image(p, args.loader)) for p in chunk]).to(device)
            top = class_probabilities(model, x).topk(k, dim=1)
            for p, vals, idx in zip(chunk, top.values.cpu().numpy(), top.indices.cpu().numpy()):
                rows.append({"path": p, "labels": [classes[j] for j in idx],
                             "scores": [round(float(v), 6) for v in vals]})
    sys.stdout.write(_format_predictions(rows, args.format, k))
    return 0


def _format_predictions(rows, fmt: str, k: int) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path"] + [f"{c}{i}" for i in range(1, k + 1) for c in ("label", "score")])
        for r in rows:
            w.writerow([r["path"]] + [x for pair in zip(r["labels"], r["scores"]) for x in pair])
        return buf.getvalue()
    width = max(len(r["path"]) for r in rows)
    return "".join(f"{r['path']:<{width}}  " + "  ".join(
        f"{lab} {s:.4f}" for lab, s in zip(r["labels"], r["scores"])) + "\n" for r in rows)


# ============================================================================== export
def export(args) -> int:
    model, meta = load_for_inference(args, "cpu")
    keep = ("model", "model_kwargs", "classes", "transforms")
    if getattr(args, "format", "safetensors") == "onnx":
        return _export_onnx(model, {k: meta[k] for k in keep}, meta["source"], Path(args.out))
    meta = export_model(model, {**{k: meta[k] for k in keep}, "exported_from": meta["source"]},
                        args.out, "vision")
    print(f"{args.out} ({meta['num_params']:,} parameters, sha256 {meta['sha256'][:16]}...) "
          f"and {Path(args.out).with_suffix('.json')}")
    return 0


def _export_onnx(model, meta: dict, source: str, out: Path) -> int:
    """The network as ONNX: input "image" (N, C, H, W) normalised as the sidecar's
    transforms say, output "logits" (N, classes); the batch axis is dynamic."""
    if out.suffix != ".onnx":
        raise CLIError(f"--out {out}: an ONNX export is a .onnx file")
    tf = meta["transforms"]
    size = tf.get("crop") or FIXED_INPUT.get(meta["model"]) or 224
    channels = tf.get("channels") or meta["model_kwargs"].get("in_channels", 3)
    example = fw.zeros(1, int(channels), int(size), int(size))
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fw.onnx.export(model, example, out, input_names=["image"], output_names=["logits"],
                       dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    from datasets import sha256_file
    meta = {"app": "vision", "format": "onnx", **meta, "exported_from": source,
            "input": {"name": "image", "shape": ["batch", int(channels), int(size), int(size)]},
            "output": {"name": "logits", "shape": ["batch", len(meta["classes"])]},
            "num_params": int(sum(p.numel() for p in model.parameters())),
            "sha256": sha256_file(out)}
    write_json(out.with_suffix(".json"), meta)
    print(f"{out} (ONNX, {meta['num_params']:,} parameters, sha256 {meta['sha256'][:16]}...) "
          f"and {out.with_suffix('.json')}")
    return 0


def describe_models(args) -> int:
    return zoo.describe_models("vision", args.name)


def zoo_build(args) -> int:
    """Train a zoo entry with the command recorded in its weights record."""
    from .cli import add_parser
    return zoo.zoo_build(args.name, "vision", add_parser, train, export, out=args.out)
