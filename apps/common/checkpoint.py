"""Training checkpoints: one dict per file in the framework's safe format (safetensors plus a
JSON description of the structure; nothing is unpickled), written atomically.

A run folder holds `last.safetensors` (written every epoch) and `best.safetensors` (the
epoch with the best monitored metric). Each holds everything needed to continue or to use
the model: `model`, `optimizer`, `scheduler`, `scaler`, `epoch`, `global_step`, `history`,
`callbacks`, `rng`, `loader_rng` and `meta` (the application's description of the model:
architecture and its arguments, class names, preprocessing).
"""
from __future__ import annotations

from pathlib import Path

import framework as fw

__all__ = ["LAST", "BEST", "save_checkpoint", "load_checkpoint", "CheckpointFileError"]

LAST = "last.safetensors"
BEST = "best.safetensors"


class CheckpointFileError(ValueError):
    """A file is missing, unreadable or not a training checkpoint."""


def save_checkpoint(path, state: dict) -> Path:
    """Write `state` to `path` atomically (a crash mid-write leaves the old file intact)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fw.save(state, path)
    return path


def load_checkpoint(path, *, require=("model", "meta")) -> dict:
    """Read a checkpoint written by `save_checkpoint`, checking that it has `require`d keys.
    A folder means its `last.safetensors`."""
    path = Path(path)
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise CheckpointFileError(f"{path}: no such checkpoint")
    try:
        state = fw.load(path)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the file's fault
        raise CheckpointFileError(f"{path}: not a readable checkpoint ({exc})") from None
    if not isinstance(state, dict):
        raise CheckpointFileError(f"{path}: holds a {type(state).__name__}, not a checkpoint")
    absent = [k for k in require if k not in state]
    if absent:
        raise CheckpointFileError(f"{path}: not a Lantern training checkpoint (no "
                                  f"{', '.join(absent)}); for plain weights use "
                                  "models.load_pretrained")
    return state
