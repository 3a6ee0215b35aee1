"""The text-classification recipe behind `lantern text`: train, evaluate, predict, embed,
train tokenizers, export, describe models and build zoo weights. Each function takes the
parsed command-line namespace and returns an exit code.

Read it like the vision recipe: open the data -> build or load the encoder (tokenizer) ->
build the model -> `Trainer.fit` -> evaluate on the test split -> `<out>/metrics.json`. A
checkpoint holds the model, the encoder (as JSON) and the class names together, so
`predict` needs nothing else.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

import framework as fw
import framework.nn.functional as F
from framework.utils.data import DataLoader

import models
from apps.common import (LAST, Callback, CLIError, EarlyStopping, MetricsWriter,
                         ModelCheckpoint, ProgressBar, StepProfiler, Trainer, check_device,
                         load_checkpoint, seed_everything, WeightAveraging, write_json)
from apps.common import zoo
from apps.common.cli import parse_model_args, resolve_split_seed
from apps.common.classification import (ClassificationTask, classification_report,
                                        collect_scores, format_confusion, format_per_class,
                                        write_eval_files)
from apps.common.modelfiles import export_model, load_model, zoo_weights
from apps.common.optim import build_optimizer, build_scheduler
from datasets.text import (BucketBatchSampler, HFTokenizer, NgramVocab, TextCollator,
                           encoder_from_json, open_text_dataset)

__all__ = ["train", "evaluate", "predict", "embed", "train_tokenizer", "export",
           "describe_models", "zoo_build", "load_for_inference", "classify_texts", "PRESETS"]

MINILM = "minilm_l6.sentence-transformers"
# Per-model defaults for the flags left unset: the tokenizer, tokens per text, epochs,
# batch size, optimizer, learning rate and weight decay.
PRESETS = {
    "fasttext_bag": dict(tokenizer="ngrams", max_length=128, epochs=5, batch_size=64,
                         optimizer="adamw", lr=5e-3, weight_decay=0.0),
    "textcnn": dict(tokenizer="wordpiece", max_length=64, epochs=3, batch_size=50,
                    optimizer="adamw", lr=1e-3, weight_decay=1e-4, embeddings="minilm"),
    "bilstm_attn": dict(tokenizer="wordpiece", max_length=64, epochs=3, batch_size=32,
                        optimizer="adamw", lr=1e-3, weight_decay=1e-4, embeddings="minilm"),
    "bigru_attn": dict(tokenizer="wordpiece", max_length=64, epochs=3, batch_size=32,
                       optimizer="adamw", lr=1e-3, weight_decay=1e-4, embeddings="minilm"),
    "transformer_encoder": dict(tokenizer="wordpiece", max_length=64, epochs=10,
                                batch_size=32, optimizer="adamw", lr=5e-4,
                                weight_decay=1e-2),
    "minilm_classifier": dict(tokenizer="minilm", max_length=64, epochs=3, batch_size=32,
                              optimizer="adamw", lr=5e-5, weight_decay=1e-2),
    "bert_classifier": dict(tokenizer=None, max_length=128, epochs=3, batch_size=32,
                            optimizer="adamw", lr=3e-5, weight_decay=1e-2),
}
_FROM_SCRATCH_KWARGS = ("fasttext_bag", "textcnn", "bilstm_attn", "bigru_attn",
                        "transformer_encoder")


# ============================================================================== data
def _open(args, split: str, classes=None):
    return open_text_dataset(args.data, split=split, val_fraction=args.val_fraction,
                             seed=resolve_split_seed(args), text_column=args.text_column,
                             label_column=args.label_column, encoding=args.encoding,
                             classes=classes, skip_empty=args.skip_empty)


def _loader(ds, encoder, batch_size: int, max_length: int, *, shuffle: bool, seed: int = 0,
            workers: int = 0, bucket_batches: int = 100):
    """Batches of similar lengths (length-bucketed when shuffled: drawn from buckets of
    `bucket_batches` batches; sorted otherwise)."""
    lengths = encoder.lengths(ds.texts)
    gen = fw.Generator().manual_seed(seed) if shuffle else None
    sampler = BucketBatchSampler(np.minimum(lengths, max_length), batch_size, shuffle=shuffle,
                                 generator=gen, bucket_size=batch_size * bucket_batches)
    return DataLoader(ds, batch_sampler=sampler, collate_fn=TextCollator(encoder, max_length),
                      num_workers=workers, persistent_workers=workers > 0)


def _minilm_folder() -> Path:
    import datasets
    return datasets.fetch("minilm-l6")


def build_encoder(kind: str | None, texts, args):
    """A tokenizer: trained on `texts` (ngrams, wordpiece, bpe, unigram), the pretrained
    MiniLM one, or read from a tokenizer.json path."""
    if kind == "ngrams":
        return NgramVocab.build(texts, min_count=args.min_frequency, ngrams=args.ngrams,
                                buckets=args.buckets)
    if kind in ("wordpiece", "bpe", "unigram"):
        return HFTokenizer.train(texts, kind=kind, vocab_size=args.vocab_size,
                                 min_frequency=args.min_frequency)
    if kind == "minilm":
        return HFTokenizer.from_file(_minilm_folder() / "tokenizer.json")
    if kind and Path(kind).is_file():
        return HFTokenizer.from_file(kind)
    if kind and Path(kind).is_dir():
        for name in ("tokenizer.json", "vocab.txt"):
            path = Path(kind) / name
            if path.is_file():
                return HFTokenizer.from_file(path) if name.endswith(".json") \
                    else HFTokenizer.from_vocab(path)
    raise CLIError(f"--tokenizer {kind!r}: expected ngrams, wordpiece, bpe, unigram, minilm, "
                   "a tokenizer.json file or a folder holding tokenizer.json or vocab.txt")


# ============================================================================== models
def _check_model(name: str) -> None:
    if name not in models.list_models("text") or name in ("bert", "minilm_l6"):
        choices = [m for m in models.list_models("text") if m not in ("bert", "minilm_l6")]
        raise CLIError(f"unknown text classifier {name!r}; choose from: {', '.join(choices)}")


def build_model(args, num_classes: int, encoder):
    """(model, builder kwargs, description of the starting weights) for `args.model`."""
    name = args.model
    extra = parse_model_args(args.model_arg, models.get_entry(name).builder)
    if name in _FROM_SCRATCH_KWARGS:
        kwargs = {**extra, "vocab_size": encoder.vocab_size, "num_classes": num_classes,
                  "pad_id": encoder.pad_id}
        if getattr(args, "embeddings", "random") != "minilm":
            return models.get_model(name, **kwargs), kwargs, "random"
        table = models.load_weights_file(zoo_weights(f"zoo:{MINILM}"))[
            "embeddings.word_embeddings.weight"]
        kwargs["embed_dim"] = int(table.shape[1])
        model = models.get_model(name, **kwargs)
        emb = model.embedding.weight
        if tuple(emb.shape) != tuple(table.shape):
            raise CLIError(f"--embeddings minilm: {name}'s embedding table is "
                           f"{tuple(emb.shape)}, MiniLM's {tuple(table.shape)}")
        with fw.no_grad():
            emb.copy_(fw.tensor(np.asarray(table), dtype=emb.dtype))
        return model, kwargs, f"embeddings from zoo:{MINILM}"
    if name == "minilm_classifier":
        kwargs = {**extra, "num_classes": num_classes}
        model = models.get_model(name, **kwargs)
        source = args.weights or f"zoo:{MINILM}"
        sd = models.load_weights_file(zoo_weights(source)) if source.startswith("zoo:") \
            else models.read_state_dict(source)
        report = models.load_pretrained(model.bert, sd)
        _check_vocab(encoder, model.bert.config.vocab_size)
        return model, kwargs, f"{source}: {report}"
    # bert_classifier: a transformers checkpoint folder
    if not args.weights or not Path(args.weights).is_dir():
        raise CLIError("--model bert_classifier needs --weights FOLDER holding config.json "
                       "and model.safetensors (or pytorch_model.bin)")
    from models.text import load_bert
    model, config = load_bert(args.weights, pooling="mean", num_classes=num_classes)
    _check_vocab(encoder, config.vocab_size)
    kwargs = {"num_classes": num_classes, "pooling": "mean", "config": config.to_dict()}
    return model, kwargs, f"{args.weights}"


def _check_vocab(encoder, model_vocab: int) -> None:
    if encoder.vocab_size > model_vocab:
        raise CLIError(f"the tokenizer has {encoder.vocab_size} tokens but the model's "
                       f"embedding table has {model_vocab} rows; use the tokenizer the model "
                       "was trained with")


class UnfreezeEncoder(Callback):
    """Make a frozen pretrained encoder trainable after `after` epochs (but for its token
    embeddings, with `keep_embeddings_frozen`)."""

    def __init__(self, after: int, keep_embeddings_frozen: bool = False):
        self.after = int(after)
        self.keep_embeddings_frozen = keep_embeddings_frozen

    def on_train_epoch_start(self, trainer) -> None:
        if trainer.epoch == self.after:
            _set_trainable(trainer.model.bert, True)
            if self.keep_embeddings_frozen:
                _set_trainable(trainer.model.bert.embeddings.word_embeddings, False)
            print(f"epoch {trainer.epoch + 1}: the encoder is now trained too")


def _set_trainable(module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


# ============================================================================== train
def _fill_presets(args) -> dict:
    preset = PRESETS.get(args.model, PRESETS["textcnn"])
    for key in ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "max_length"):
        if getattr(args, key, None) is None:
            setattr(args, key, preset[key])
    if getattr(args, "embeddings", None) is None:
        args.embeddings = preset.get("embeddings", "random")
    if args.embeddings == "minilm":
        if args.model not in _FROM_SCRATCH_KWARGS:
            raise CLIError(f"--embeddings minilm initialises models trained from scratch, "
                           f"not {args.model}")
        if args.tokenizer not in (None, "minilm"):
            raise CLIError(f"--embeddings minilm needs MiniLM's tokenizer, not "
                           f"--tokenizer {args.tokenizer} (use --embeddings random)")
        args.tokenizer = "minilm"
    if args.tokenizer is None:
        args.tokenizer = preset["tokenizer"] or args.weights
    return preset


def train(args) -> int:
    device = check_device(args.device)
    _check_model(args.model)
    _fill_presets(args)
    seed_everything(args.seed)
    fw.set_flush_denormal(True)
    out = Path(args.out)
    t_start = time.perf_counter()

    state = load_checkpoint(args.resume) if args.resume else None
    if state is not None:  # the split it was trained on, unless --split-seed says otherwise
        resolve_split_seed(args, state["meta"])
    train_ds = _open(args, "train")
    classes = list(train_ds.classes)
    val_ds = _open(args, "val", classes) if args.val_fraction > 0 else None
    test_ds = _open(args, "test", classes)
    if state is not None:
        encoder = encoder_from_json(state["meta"]["encoder"])
        if list(state["meta"]["classes"]) != classes:
            raise CLIError(f"--resume {args.resume}: trained on classes "
                           f"{state['meta']['classes']}, this data has {classes}")
    else:
        encoder = build_encoder(args.tokenizer, train_ds.texts, args)
    model, model_kwargs, start = build_model(args, len(classes), encoder)
    model.to(device)
    if args.freeze_encoder:
        if not hasattr(model, "bert"):
            raise CLIError(f"--freeze-encoder applies to pretrained encoders, not {args.model}")
        _set_trainable(model.bert, False)
    if args.freeze_embeddings:
        if not hasattr(model, "bert"):
            raise CLIError(f"--freeze-embeddings applies to pretrained encoders, not {args.model}")
        _set_trainable(model.bert.embeddings.word_embeddings, False)

    if args.bucket_batches < 1:
        raise CLIError(f"--bucket-batches must be at least 1, got {args.bucket_batches}")
    train_loader = _loader(train_ds, encoder, args.batch_size, args.max_length, shuffle=True,
                           seed=args.seed, workers=args.workers,
                           bucket_batches=args.bucket_batches)
    val_loader = _loader(val_ds, encoder, 128, args.max_length, shuffle=False) \
        if val_ds is not None and len(val_ds) else None
    if args.rdrop < 0:
        raise CLIError(f"--rdrop must be at least 0, got {args.rdrop}")
    task = ClassificationTask(model, label_smoothing=args.label_smoothing, topk=None,
                              rdrop=args.rdrop)
    params = model.parameters()
    if args.layer_decay is not None:
        if not hasattr(model, "bert"):
            raise CLIError(f"--layer-decay applies to pretrained encoders, not {args.model}")
        from models.text.bert import layer_decay_groups
        params = layer_decay_groups(model, args.lr, args.layer_decay, args.weight_decay)
    optimizer = build_optimizer(args.optimizer, params, lr=args.lr,
                                weight_decay=args.weight_decay)
    scheduler = build_scheduler(args.scheduler, optimizer, epochs=args.epochs,
                                steps_per_epoch=len(train_loader),
                                warmup_epochs=args.warmup_epochs)
    monitor = ("val/accuracy", "max") if val_loader is not None else ("train/loss", "min")
    callbacks = [ProgressBar(), MetricsWriter(out, title=f"{args.model} on {args.data}",
                                              plot=not args.no_plots)]
    if args.freeze_encoder and args.unfreeze_after is not None:
        callbacks.append(UnfreezeEncoder(args.unfreeze_after, args.freeze_embeddings))
    if args.patience:
        callbacks.append(EarlyStopping(monitor=monitor[0], mode=monitor[1],
                                       patience=args.patience))
    if args.ema:
        callbacks.append(WeightAveraging(args.ema))
    callbacks.append(ModelCheckpoint(out, monitor=monitor[0], mode=monitor[1]))
    if args.profile_steps:
        callbacks.append(StepProfiler(out, args.profile_steps))
    meta = {"app": "text", "model": args.model, "model_kwargs": model_kwargs,
            "classes": classes, "encoder": encoder.to_json(), "max_length": args.max_length,
            "data": args.data, "args": {k: v for k, v in vars(args).items()
                                        if k != "func" and not k.startswith("_")}}
    trainer = Trainer(task, optimizer, scheduler, max_epochs=args.epochs, device=device,
                      callbacks=callbacks, grad_clip=args.grad_clip, amp=args.amp,
                      out_dir=out, meta=meta, throughput_unit="tokens")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.model}: {n_params:,} parameters ({start}) | tokenizer {encoder.kind}, "
          f"{encoder.vocab_size:,} tokens, max {args.max_length} | {args.data}: "
          f"{len(train_ds)} train / {len(val_ds) if val_ds else 0} val / {len(test_ds)} test, "
          f"{len(classes)} classes | {device}")
    trainer.fit(train_loader, val_loader, resume=args.resume)

    report = _report(model, _loader(test_ds, encoder, 128, args.max_length, shuffle=False),
                     classes, device)
    results = {"test": {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
                        "count": report["count"]},
               "epochs": trainer.epoch, "seconds": round(time.perf_counter() - t_start, 2),
               "model": args.model, "data": args.data, "checkpoint": str(out / LAST)}
    if trainer.history:
        results["final_epoch"] = {k: v for k, v in trainer.history[-1].items() if k != "epoch"}
    write_json(out / "metrics.json", results)
    write_eval_files(out, report, classes, plots=not args.no_plots)
    print(f"test accuracy {report['accuracy']:.4f}  macro F1 {report['macro_f1']:.4f}  "
          f"({report['count']} texts) -> {out / 'metrics.json'}")
    return 0


# ============================================================================== inference
def load_for_inference(args, device: str):
    """(model in eval mode, meta with the encoder rebuilt) from --checkpoint or --model."""
    if getattr(args, "model", None):
        w = zoo_weights(args.model)
        if w.model not in _FROM_SCRATCH_KWARGS + ("minilm_classifier", "bert_classifier"):
            raise CLIError(f"--model {args.model}: an encoder, not a classifier; use "
                           "`lantern text embed`")
        if w.file.startswith("cache:"):  # built by zoo-build: the file holds its encoder
            return _load_file(models.weights_path(w), device, source=f"zoo:{w.name}",
                              missing=f"lantern text zoo-build {w.name}")
        model = models.get_model(w.model, weights=w)
        meta = {"model": w.model, "model_kwargs": dict(w.builder_kwargs),
                "classes": list(w.categories), "encoder": w.transforms["encoder"],
                "max_length": w.transforms["max_length"], "source": f"zoo:{w.name}"}
    else:
        return _load_file(args.checkpoint, device, source=str(args.checkpoint))
    meta["encoder_obj"] = encoder_from_json(meta["encoder"])
    return model.to(device).eval(), meta


def _load_file(path, device: str, source: str, missing: str | None = None):
    """(model in eval mode, meta) from an export or a training checkpoint."""
    if missing and not Path(path).is_file():
        raise CLIError(f"{source} is not built on this machine ({path}); build it with: "
                       f"{missing}")
    model, meta = load_model(path, "text", device)
    meta["source"] = source
    meta["encoder_obj"] = encoder_from_json(meta["encoder"])
    return model, meta


def _probabilities(model, inputs):
    return F.softmax(model(**inputs).float(), dim=1)


def _report(model, loader, classes, device) -> dict:
    model.eval()
    y, p = collect_scores(lambda x: _probabilities(model, x), loader, device)
    return classification_report(y, p, classes, k=5)


def evaluate(args) -> int:
    device = check_device(args.device)
    seed_everything(args.seed)
    model, meta = load_for_inference(args, device)
    resolve_split_seed(args, meta)
    ds = _open(args, args.split, classes=meta["classes"])
    t0 = time.perf_counter()
    loader = _loader(ds, meta["encoder_obj"], args.batch_size, meta["max_length"],
                     shuffle=False)
    report = _report(model, loader, meta["classes"], device)
    out = Path(args.out)
    write_json(out / "metrics.json", {
        args.split: {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
                     "count": report["count"], "per_class": report["per_class"]},
        "model": meta["source"], "data": args.data,
        "seconds": round(time.perf_counter() - t0, 2)})
    write_eval_files(out, report, meta["classes"], plots=True)
    print(f"{meta['source']} on {args.data} ({args.split}, {report['count']} texts): "
          f"accuracy {report['accuracy']:.4f}  macro F1 {report['macro_f1']:.4f}")
    print(format_per_class(report))
    print(format_confusion(report["confusion_matrix"], meta["classes"]))
    return 0


def _read_texts(args) -> list[str]:
    texts: list[str] = []
    for item in args.texts:
        if item == "-":
            texts += [line.rstrip("\n") for line in sys.stdin if line.strip()]
        else:
            texts.append(item)
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise CLIError(f"{path}: no such file")
        try:
            texts += [line.rstrip("\n") for line in path.read_text(encoding="utf-8")
                      .splitlines() if line.strip()]
        except UnicodeDecodeError as exc:
            raise CLIError(f"{path}: byte {exc.start} is not valid utf-8") from None
    if not texts:
        raise CLIError("no texts given: pass them as arguments, with --file, or - for stdin")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise CLIError(f"text {empty[0] + 1} is empty")
    return texts


def predict(args) -> int:
    device = check_device(args.device)
    texts = _read_texts(args)
    model, meta = load_for_inference(args, device)
    encoder, classes = meta["encoder_obj"], meta["classes"]
    max_length = args.max_length or meta["max_length"]
    out = sys.stdout
    with fw.no_grad():
        if args.sliding_window:
            probs = [_window_probabilities(model, encoder, t, max_length, args.sliding_window,
                                           device) for t in texts]
        else:
            probs = classify_texts(model, encoder, texts, max_length, device, args.batch_size)
    for text, p in zip(texts, probs):
        k = int(np.argmax(p))
        out.write(json.dumps({"text": text, "label": classes[k], "score": round(float(p[k]), 6),
                              "scores": {c: round(float(v), 6) for c, v in zip(classes, p)}})
                  + "\n")
    return 0


def classify_texts(model, encoder, texts, max_length: int, device: str = "cpu",
                   batch_size: int = 64) -> np.ndarray:
    """(N, classes) probabilities of `texts` (truncated to max_length tokens)."""
    probs = []
    with fw.no_grad():
        for i in range(0, len(texts), batch_size):
            batch = encoder.encode_batch(texts[i:i + batch_size], max_length)
            inputs = {k: fw.tensor(v).to(device) for k, v in batch.items()}
            probs.append(_probabilities(model, inputs).cpu().numpy())
    return np.concatenate(probs) if probs else np.zeros((0, 0), np.float32)


def _window_probabilities(model, encoder, text, max_length, stride, device):
    """The mean class probabilities of a long text's overlapping windows."""
    windows = encoder.encode_windows(text, max_length, stride)
    inputs = {k: fw.tensor(v).to(device) for k, v in windows.items()}
    return _probabilities(model, inputs).mean(dim=0).cpu().numpy()


def embed(args) -> int:
    """Sentence embeddings (mean pooling, L2-normalised) of MiniLM or of a checkpoint's
    BERT encoder, to a .npy file."""
    from models.text import encode_sentences
    device = check_device(args.device)
    texts = _read_texts(args)
    if args.checkpoint:
        model, meta = load_for_inference(args, device)
        encoder = meta["encoder_obj"]
        if not hasattr(model, "bert"):
            raise CLIError(f"{args.checkpoint}: a {meta['model']} has no sentence encoder; "
                           "embed needs a BERT-family model")
    else:
        w = zoo_weights(args.model or f"zoo:{MINILM}")
        model = models.get_model(w.model, weights=w).to(device).eval()
        encoder = HFTokenizer.from_file(_minilm_folder() / "tokenizer.json")
    out = Path(args.out)
    if out.suffix != ".npy":
        raise CLIError(f"--out {out}: embeddings are written as a .npy file")
    rows = []
    with fw.no_grad():
        for i in range(0, len(texts), args.batch_size):
            batch = encoder.encode_batch(texts[i:i + args.batch_size], args.max_length)
            ids = fw.tensor(batch["input_ids"]).to(device)
            mask = fw.tensor(batch["attention_mask"]).to(device)
            rows.append(encode_sentences(model, ids, mask,
                                         normalize=not args.no_normalize).cpu().numpy())
    emb = np.concatenate(rows).astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, emb)
    print(f"{out}: {emb.shape[0]} embeddings of {emb.shape[1]} dimensions")
    return 0


def train_tokenizer(args) -> int:
    ds = _open(args, "train")
    tok = HFTokenizer.train(ds.texts, kind=args.kind, vocab_size=args.vocab_size,
                            min_frequency=args.min_frequency, lowercase=not args.cased)
    tok.save(args.out)
    print(f"{args.out}: {args.kind} tokenizer, {tok.vocab_size:,} tokens, trained on "
          f"{len(ds)} texts of {args.data}")
    return 0


# ============================================================================== export
def export(args) -> int:
    model, meta = load_for_inference(args, "cpu")
    keep = ("model", "model_kwargs", "classes", "encoder", "max_length")
    meta = export_model(model, {**{k: meta[k] for k in keep}, "exported_from": meta["source"]},
                        args.out, "text")
    print(f"{args.out} ({meta['num_params']:,} parameters, sha256 {meta['sha256'][:16]}...) "
          f"and {Path(args.out).with_suffix('.json')}")
    return 0


def describe_models(args) -> int:
    return zoo.describe_models("text", args.name)


def zoo_build(args) -> int:
    from .cli import add_parser
    return zoo.zoo_build(args.name, "text", add_parser, train, export, out=args.out)
