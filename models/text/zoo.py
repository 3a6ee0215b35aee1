"""Text classifiers Lantern trains on the embedded `rotten-tomatoes` corpus.

The small fastText bag ships in `models/text/weights/` (the file from `lantern text export`,
its JSON sidecar with the classes, the encoder and the builder arguments, and the record
below). The larger ones (TextCNN, BiLSTM and BiGRU about 49 MB each, the fine-tuned MiniLM
90 MB) are built into $LANTERN_HOME/zoo by `lantern text zoo-build <name>`, which runs the
recorded command; their figures are the ones measured when the command was run (sha256 is
not pinned: BLAS and thread counts change the last bits of trained weights between
machines).

Figures: test accuracy on the seeded stratified 80/10/10 split (1,281 texts, unseen in
training and validation), and accuracy on people-rated sentences of other sources
(`vader-movies`: 132 movie-review sentences not in rotten-tomatoes; `vader-amazon`: 2,344
product-review sentences, another domain), as `lantern text eval --data <source> --split all`.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..registry import Weights, register_weights

__all__: list[str] = []

_DIR = Path(__file__).resolve().parent / "weights"
_SPLIT = "test: 1,281 of the 12,808 (stratified 80/10/10, seed 0), unseen in training"


def _shipped(model: str, tag: str, file: str, sha256: str, metrics: dict, recipe: str,
             description: str) -> Weights:
    meta = json.loads((_DIR / file).with_suffix(".json").read_text())
    return register_weights(Weights(
        model=model, tag=tag, file=f"repo:text/weights/{file}", sha256=sha256,
        num_params=meta["num_params"], categories=tuple(meta["classes"]), metrics=metrics,
        transforms={"encoder": meta["encoder"], "max_length": meta["max_length"]},
        recipe=recipe,
        builder_kwargs={k: v for k, v in meta["model_kwargs"].items() if k != "num_classes"},
        description=description))


def _built(model: str, tag: str, num_params: int, metrics: dict, recipe: str,
           builder_kwargs: dict, max_length: int, description: str) -> Weights:
    """A record whose file `lantern text zoo-build` writes into the cache; the encoder comes
    from that file's metadata."""
    return register_weights(Weights(
        model=model, tag=tag, file=f"cache:{model}.{tag}.safetensors", sha256="",
        num_params=num_params, categories=("rotten", "fresh"), metrics=metrics,
        transforms={"encoder": "in the built file", "max_length": max_length},
        recipe=recipe, builder_kwargs=builder_kwargs, description=description))


_shipped(
    "fasttext_bag", "rotten-tomatoes", "fasttext_bag_rotten_tomatoes.safetensors",
    "2a556adef60a9d256d365168a0336756a19cd52e705288305acfe6cc8ed88438",
    {"dataset": "rotten-tomatoes", "split": _SPLIT, "accuracy": 0.7611, "macro_f1": 0.7555,
     "vader_movies_accuracy": 0.7803, "vader_amazon_accuracy": 0.6352,
     "train_seconds": 10.2, "epochs": 8},
    "lantern text train --model fasttext_bag --data rotten-tomatoes --model-arg dim=16 "
    "--buckets 4096 --epochs 8 --seed 0",
    "fastText bag (16-d word + hashed bigram embeddings, mean-pooled, linear) trained on "
    "10,246 rotten-tomatoes sentences")
_built(
    "textcnn", "rotten-tomatoes", 12_182_150,
    {"dataset": "rotten-tomatoes", "split": _SPLIT, "accuracy": 0.7869, "macro_f1": 0.7811,
     "vader_movies_accuracy": 0.8561, "vader_amazon_accuracy": 0.7410, "train_seconds": 95.7,
     "epochs": 3},
    "lantern text train --model textcnn --data rotten-tomatoes --seed 0",
    {"vocab_size": 30522, "embed_dim": 384, "pad_id": 0}, 64,
    "TextCNN (widths 3/4/5 x 100, dropout 0.5) over all-MiniLM-L6-v2's WordPiece tokens, its "
    "embedding table initialised from MiniLM's and fine-tuned (Kim's non-static variant)")
for _cell, _params, _acc, _f1, _movies, _amazon, _secs in (
        ("lstm", 12_313_346, 0.8002, 0.7962, 0.8409, 0.7039, 54.7),
        ("gru", 12_181_762, 0.8056, 0.8011, 0.8485, 0.7176, 48.9)):
    _built(
        f"bi{_cell}_attn", "rotten-tomatoes", _params,
        {"dataset": "rotten-tomatoes", "split": _SPLIT, "accuracy": _acc, "macro_f1": _f1,
         "vader_movies_accuracy": _movies, "vader_amazon_accuracy": _amazon,
         "train_seconds": _secs, "epochs": 3},
        f"lantern text train --model bi{_cell}_attn --data rotten-tomatoes --seed 0",
        {"vocab_size": 30522, "embed_dim": 384, "pad_id": 0}, 64,
        f"bidirectional {_cell.upper()} (128 per direction) with additive attention pooling over "
        f"all-MiniLM-L6-v2's WordPiece tokens, its embedding table initialised from MiniLM's "
        f"and fine-tuned")
_built(
    "minilm_classifier", "rotten-tomatoes", 22_566_146,
    {"dataset": "rotten-tomatoes", "split": _SPLIT, "accuracy": 0.8376, "macro_f1": 0.8346,
     "vader_movies_accuracy": 0.8864, "vader_amazon_accuracy": 0.8754, "train_seconds": 1163,
     "epochs": 3},
    "lantern text train --model minilm_classifier --data rotten-tomatoes --seed 0",
    {"pooling": "mean"}, 64,
    "all-MiniLM-L6-v2 (the hub's sentence-transformers weights) fine-tuned with mean pooling "
    "and a linear head, AdamW 5e-5, cosine, 3 epochs")
