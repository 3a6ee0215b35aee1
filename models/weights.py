"""Loading parameters into zoo models: the registry's own weight files, and PyTorch or
safetensors checkpoints from a user's path, key for key, without torch.

`load_pretrained(model, path)` is the import path for third-party checkpoints: it unwraps the
usual containers (`{"state_dict": ...}`, `{"model": ...}`), strips `module.` / `_orig_mod.`
prefixes, tolerates an absent `num_batches_tracked`, leaves freshly initialised any tensor
whose shape differs (a classifier head for another number of classes) and reports what was
not loaded. With `strict=True` any difference is an error that names the keys.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import framework as fw

from .registry import Weights, models_root

__all__ = ["LoadReport", "load_pretrained", "match_state_dict", "read_state_dict", "load_weights_file",
           "weights_path", "WeightsNotFoundError"]

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")
_PREFIXES = ("module.", "_orig_mod.")
# Keys that may be absent from older checkpoints without changing the model's function.
_OPTIONAL_SUFFIXES = ("num_batches_tracked",)


class WeightsNotFoundError(FileNotFoundError):
    """A registered weights file is not on this machine."""


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)        # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)     # in the file, not in the model
    mismatched: dict[str, tuple[tuple, tuple]] = field(default_factory=dict)  # key: (file, model)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        parts = [f"loaded {len(self.loaded)} tensors"]
        if self.mismatched:
            parts.append("shape differs (left initialised): " + ", ".join(
                f"{k} file {list(a)} vs model {list(b)}" for k, (a, b) in self.mismatched.items()))
        if self.missing:
            parts.append(f"missing from the file: {_clip(self.missing)}")
        if self.unexpected:
            parts.append(f"not in the model: {_clip(self.unexpected)}")
        return "; ".join(parts)


def _clip(keys: list[str], n: int = 6) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def read_state_dict(path) -> dict:
    """A flat {name: Tensor} dict from a .safetensors file, a PyTorch .pt/.pth/.bin checkpoint
    (through the framework's restricted unpickler) or a Lantern checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        obj = fw.load(path)   # a plain safetensors file or a Lantern checkpoint
    else:
        obj = fw.load(path, map_location="cpu")
    return _unwrap(obj, path)


def _unwrap(obj, path) -> dict:
    for _ in range(3):   # {"model": {"state_dict": ...}} nests at most a couple of times
        if isinstance(obj, dict) and obj and all(isinstance(v, fw.Tensor) for v in obj.values()):
            break
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj, dict)
                      and isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    tensors = {k: v for k, v in obj.items() if isinstance(v, fw.Tensor)}
    if not tensors:
        raise ValueError(f"{path}: no tensors found (keys: {_clip(list(map(str, obj)))})")
    return tensors


def _strip_prefixes(sd: dict) -> dict:
    # repeat: DDP around torch.compile gives "module._orig_mod.", the reverse "_orig_mod.module."
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            if sd and all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
                stripped = True
    return sd


def match_state_dict(model, state_dict: dict) -> tuple[LoadReport, dict]:
    """Compare a state dict with a model's, key by key and shape by shape, without loading:
    (the report, the tensors that fit)."""
    sd = _strip_prefixes(dict(state_dict))
    own = model.state_dict()
    report = LoadReport()
    fits = {}
    for key, target in own.items():
        if key not in sd:
            if not key.endswith(_OPTIONAL_SUFFIXES):
                report.missing.append(key)
            continue
        value = sd[key]
        if tuple(value.shape) != tuple(target.shape):
            report.mismatched[key] = (tuple(value.shape), tuple(target.shape))
            continue
        fits[key] = value
        report.loaded.append(key)
    report.unexpected = [k for k in sd if k not in own]
    return report, fits


def load_pretrained(model, source, *, strict: bool = False) -> LoadReport:
    """Copy the tensors of `source` (a path or a state dict) into `model` by name.

    Shape mismatches are left at their initial values (and re-initialised through their
    module's `reset_parameters`, so a new head is a fresh one); with `strict=True` any
    missing, unexpected or mismatched key raises a ValueError naming them.
    """
    where = source if isinstance(source, (str, os.PathLike)) else "state dict"
    # an in-memory checkpoint is unwrapped like a file's ({"state_dict": ...}, {"model": ...})
    sd = read_state_dict(source) if isinstance(source, (str, os.PathLike)) else \
        _unwrap(source, where)
    report, fits = match_state_dict(model, sd)
    if strict and not report.complete:
        raise ValueError(f"{where}: does not match {type(model).__name__}: {report}")
    _reset_owners(model, report.mismatched)
    model.load_state_dict(fits, strict=False)
    return report


def _reset_owners(model, keys) -> None:
    owners = {k.rpartition(".")[0] for k in keys}
    for name, module in model.named_modules():
        if name in owners and hasattr(module, "reset_parameters"):
            module.reset_parameters()


def weights_path(w: Weights) -> Path:
    """The local file of a weights record (fetching hub files; cache files must be built)."""
    kind, _, rest = w.file.partition(":")
    if kind == "repo":
        return models_root() / rest
    if kind == "hub":
        import datasets
        source, _, member = rest.partition("/")
        folder = datasets.fetch(source)
        return folder / member if folder.is_dir() else folder
    if kind == "cache":
        import datasets
        return datasets.lantern_home() / "zoo" / rest
    raise ValueError(f"weights {w.name!r}: unknown file location {w.file!r}")


def load_weights_file(w: Weights) -> dict:
    """The state dict of a registered weights record, hash-checked and converted."""
    from datasets import sha256_file
    path = weights_path(w)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"weights {w.name!r} are not built on this machine ({path}); build them with: "
            f"{w.recipe}")
    digest = sha256_file(path)
    if w.sha256 and digest != w.sha256:
        raise ValueError(f"{path}: sha256 {digest} is not the registered {w.sha256} for "
                         f"weights {w.name!r}; rebuild them with: {w.recipe}")
    sd = _strip_prefixes(read_state_dict(path))
    return w.convert(sd) if w.convert else sd
