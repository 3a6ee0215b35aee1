"""Atomic file writes for run outputs (metrics, reports, plots): a reader never sees a half
written file, and a crash leaves the previous version in place."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
from pathlib import Path
from typing import Callable, Iterable, Mapping

__all__ = ["atomic_write", "write_text", "write_json", "write_csv"]


def atomic_write(path, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)`, then rename the temporary file over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None   # JSON has no NaN/inf; null says "no value"
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:   # NumPy scalars
        return _jsonable(x.item())
    if hasattr(x, "tolist"):
        return _jsonable(x.tolist())
    return x


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(_jsonable(obj), indent=2) + "\n")


def write_csv(path, rows: Iterable[Mapping]) -> Path:
    """Rows of dicts; the header is the union of their keys in first-seen order."""
    rows = list(rows)
    header: list[str] = []
    for r in rows:
        header += [k for k in r if k not in header]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return write_text(path, buf.getvalue())
