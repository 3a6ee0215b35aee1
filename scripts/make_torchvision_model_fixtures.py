"""Write the torchvision oracles for tests/vision/test_vision_models.py:

  tests/fixtures/tv_model_keys.json   per model: torchvision's `state_dict()` keys, shapes and
                                      dtypes in order, and its parameter count (`vit_tiny` is
                                      torchvision's VisionTransformer at our vit_tiny's size;
                                      "<name>@<json kwargs>" are builder variants)
  tests/fixtures/tv_model_logits.npz  per case: eval-mode logits of torchvision's model filled
                                      with deterministic weights (the formula below) on a
                                      seeded input

Run with an interpreter that has torch + torchvision (nothing from this project is imported):

    /path/to/venv/bin/python scripts/make_torchvision_model_fixtures.py   # writes tests/fixtures/

The logits archive stores no weights: the test regenerates them with the same formula
(`deterministic_state_dict`, duplicated in the test file; keep the two copies identical) and
the input from `input_seed` / `input_shape`. Arrays: `<case>/logits` (float32) and
`<case>/input` ([seed, *shape] int64); `meta` is a JSON string with the cases' builder
arguments and the library versions.
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision import models as tvm
from torchvision.models.vision_transformer import VisionTransformer

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"

KEY_MODELS = ["resnet18", "resnet34", "resnet50", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn",
              "mobilenet_v2", "vit_b_16"]
# more variants whose keys/shapes are checked: "<builder>@<json kwargs>"
KEY_VARIANTS = {"mobilenet_v2": [{"width_mult": 0.5}, {"width_mult": 1.4}],
                "resnet18": [{"num_classes": 10}]}

# case -> (torchvision constructor, its kwargs, input shape, input seed)
LOGIT_CASES = {
    "resnet18": (tvm.resnet18, {}, (2, 3, 64, 64), 1),
    "mobilenet_v2": (tvm.mobilenet_v2, {}, (2, 3, 64, 64), 2),
    "vgg11_bn": (tvm.vgg11_bn, {}, (2, 3, 32, 32), 3),
    "resnet50": (tvm.resnet50, {}, (2, 3, 64, 64), 4),
    "vit_b_16": (tvm.vit_b_16, {}, (1, 3, 224, 224), 5),
    # our vit_tiny: the VisionTransformer class at CIFAR size
    "vit_tiny": (VisionTransformer, {"image_size": 32, "patch_size": 4, "num_layers": 6,
                                     "num_heads": 3, "hidden_dim": 192, "mlp_dim": 768,
                                     "num_classes": 10}, (2, 3, 32, 32), 6),
}


# --- the shared formula (a copy lives in tests/vision/test_vision_models.py) ----------------
def deterministic_array(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """A reproducible value for state-dict entry `key`, seeded by the key's CRC32 and scaled
    so that deep networks keep activations of order one: weights ~ N(0, 1/fan_in), 1-D
    weights (norm scales) ~ 1 + N(0, 0.01), biases and running means ~ N(0, 0.01), running
    variances ~ U(0.5, 1.5); all float32 (num_batches_tracked: int64 7)."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return np.array(7, dtype=np.int64)
    if leaf == "running_var":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    z = rng.standard_normal(shape, dtype=np.float32)
    if len(shape) <= 1:
        z *= np.float32(0.1)
        if leaf == "weight":
            z += np.float32(1.0)
    else:
        z *= np.float32(1.0 / np.sqrt(float(np.prod(shape[1:]))))
    return z


def deterministic_state_dict(entries) -> dict:
    """{key: array} for (key, shape, ...) entries, in their order."""
    return {e[0]: deterministic_array(e[0], tuple(e[1])) for e in entries}


def deterministic_input(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
# ---------------------------------------------------------------------------------------------


def entries_of(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...], str]]:
    return [(k, tuple(v.shape), str(v.dtype).removeprefix("torch."))
            for k, v in model.state_dict().items()]


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    keys = {}
    for name in KEY_MODELS + ["vit_tiny"]:
        model = VisionTransformer(**LOGIT_CASES[name][1]) if name == "vit_tiny" \
            else getattr(tvm, name)()
        keys[name] = {"num_params": sum(p.numel() for p in model.parameters()),
                      "state_dict": [[k, list(s), d] for k, s, d in entries_of(model)]}
        print(f"{name}: {len(keys[name]['state_dict'])} tensors, "
              f"{keys[name]['num_params']} parameters")
    for name, variants in KEY_VARIANTS.items():
        for kwargs in variants:
            model = getattr(tvm, name)(**kwargs)
            key = f"{name}@{json.dumps(kwargs, sort_keys=True)}"
            keys[key] = {"num_params": sum(p.numel() for p in model.parameters()),
                         "state_dict": [[k, list(s), d] for k, s, d in entries_of(model)]}
            print(f"{key}: {keys[key]['num_params']} parameters")
    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__}
    (FIXTURES / "tv_model_keys.json").write_text(
        json.dumps({"versions": versions, "models": keys}, separators=(",", ":")) + "\n")

    arrays, meta = {}, {"versions": versions, "cases": {}}
    torch.set_grad_enabled(False)
    for case, (ctor, kwargs, shape, seed) in LOGIT_CASES.items():
        model = ctor(**kwargs).eval()
        sd = deterministic_state_dict(entries_of(model))
        model.load_state_dict({k: torch.from_numpy(v)
                               for k, v in sd.items()}, strict=True)
        logits = model(torch.from_numpy(deterministic_input(seed, shape))).numpy()
        arrays[f"{case}/logits"] = logits.astype(np.float32)
        arrays[f"{case}/input"] = np.array([seed, *shape], dtype=np.int64)
        meta["cases"][case] = {"kwargs": kwargs}
        print(f"{case}: logits {logits.shape}, max |logit| {np.abs(logits).max():.3f}, "
              f"std {logits.std():.3f}")
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(FIXTURES / "tv_model_logits.npz", **arrays)


if __name__ == "__main__":
    main()
