"""Trained models as files every application reads the same way: training checkpoints,
exports (plain safetensors with the application's metadata in the header and a JSON file
beside it) and zoo records (`zoo:<model>.<tag>`).

The metadata ("meta") is what an application needs to use a model with nothing else: the
architecture and its builder arguments, the class names and the preprocessing (image
transforms, or a tokenizer). Each application decides its contents; this module only moves
it around with the weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import models

from .checkpoint import load_checkpoint
from .cli import CLIError
from .files import write_json

__all__ = ["zoo_weights", "read_model_file", "load_model", "export_model"]


def zoo_weights(spec: str):
    """The weights record named by `zoo:<model>.<tag>`."""
    if not spec.startswith("zoo:"):
        raise CLIError(f"--model {spec!r}: expected zoo:<model>.<weights>, e.g. "
                       "zoo:lenet5.mnist5k (see `lantern zoo list` or `lantern <app> models`)")
    return models.get_weights(spec[4:])


def _header_key(app: str) -> str:
    return f"lantern.{app}"


def read_model_file(path, app: str) -> tuple[dict, dict]:
    """(meta, state dict) of an export or a training checkpoint of application `app`."""
    path = Path(path)
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors import safe_open
        try:
            with safe_open(str(path), framework="np") as fh:
                header = fh.metadata() or {}
        except Exception:  # noqa: BLE001 - not a plain safetensors file: try a checkpoint
            header = {}
        if _header_key(app) in header:
            return json.loads(header[_header_key(app)]), models.read_state_dict(path)
        other = [d for d in models.DOMAINS if _header_key(d) in header]
        if other:
            raise CLIError(f"{path}: an export of the {other[0]} application, not {app}")
    state = load_checkpoint(path)
    meta = dict(state["meta"])
    if meta.get("app") not in (None, app):
        raise CLIError(f"{path}: a checkpoint of the {meta['app']} application, not {app}")
    return meta, state["model"]


def load_model(path, app: str, device: str = "cpu"):
    """(model in eval mode, meta) from an export or training checkpoint; the meta must name
    the registered `model` and its `model_kwargs`."""
    meta, state = read_model_file(path, app)
    model = models.get_model(meta["model"], **meta["model_kwargs"])
    models.load_pretrained(model, state, strict=True)
    meta["source"] = str(path)
    return model.to(device).eval(), meta


def export_model(model, meta: dict, out, app: str) -> dict:
    """Write `model`'s state dict to `out` (.safetensors) with `meta` in its header and in
    `out` with a .json suffix (plus the file's sha256 and parameter count); returns that."""
    from datasets import sha256_file
    from framework.serialization import save_safetensors
    out = Path(out)
    if out.suffix != ".safetensors":
        raise CLIError(f"--out {out}: the export is a .safetensors file")
    meta = {"app": app, **meta,
            "num_params": int(sum(p.numel() for p in model.parameters()))}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(model.state_dict(), out, metadata={_header_key(app): json.dumps(meta)})
    meta["sha256"] = sha256_file(out)
    write_json(out.with_suffix(".json"), meta)
    return meta
