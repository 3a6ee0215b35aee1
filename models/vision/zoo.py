"""Weights Lantern trains on the embedded data, shipped in `models/vision/weights/` (each
under 1 MB): the file from `lantern vision export`, its JSON sidecar (classes, preprocessing,
builder arguments) and the record below (hash, measured figures, the command that made it).
`lantern vision zoo-build <name>` runs the command again and compares the figures."""
from __future__ import annotations

import json
from pathlib import Path

from ..registry import Weights, register_weights

__all__ = []

_DIR = Path(__file__).resolve().parent / "weights"


def _trained(model: str, tag: str, file: str, sha256: str, metrics: dict, recipe: str,
             description: str) -> Weights:
    meta = json.loads((_DIR / file).with_suffix(".json").read_text())
    return register_weights(Weights(
        model=model, tag=tag, file=f"repo:vision/weights/{file}", sha256=sha256,
        num_params=meta["num_params"], categories=tuple(meta["classes"]), metrics=metrics,
        transforms=meta["transforms"], recipe=recipe,
        builder_kwargs={k: v for k, v in meta["model_kwargs"].items() if k != "num_classes"},
        description=description))


_trained(
    "lenet5", "mnist5k", "lenet5_mnist5k.safetensors",
    "d6b813dc9ac287c04b1cf6180f83d15c5c01ed44a3f1316de358d55b8d830bd7",
    {"dataset": "mnist5k", "split": "test: 1,000 of the 5,000 (stratified, seed 0), unseen in "
     "training and validation", "accuracy": 0.986, "top5": 1.0, "macro_f1": 0.986,
     "mnist_test_samples": "3/3 (hub source mnist-samples: official MNIST test images)",
     "train_seconds": 55.7, "epochs": 30},
    "lantern vision train --model lenet5 --data mnist5k --epochs 30 --seed 0",
    "LeNet-5 trained on 3,600 real MNIST digits (400 more for validation), 28x28 grey, "
    "shifts and small rotations")
_trained(
    "small_cnn", "digits", "small_cnn_digits.safetensors",
    "1ed4a6467480e5e9698bd8cd5d7a6b412b971e76e6df904ab2c053a2bddecca1",
    {"dataset": "digits", "split": "test: 449 of the 1,797 (stratified, seed 0), unseen in "
     "training and validation", "accuracy": 0.9978, "top5": 1.0, "macro_f1": 0.9978,
     "train_seconds": 31.7, "epochs": 40},
    "lantern vision train --model small_cnn --data digits --epochs 40 --augment light "
    "--seed 0",
    "two conv+BN+ReLU blocks trained on scikit-learn's 8x8 digits (1,213 train, 135 "
    "validation), light shifts and rotations")
