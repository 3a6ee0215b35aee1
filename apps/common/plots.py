"""Plots people would rather look at than read: training curves and confusion matrices,
drawn with matplotlib's Agg backend (no display needed) and written atomically as PNG."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .files import atomic_write

__all__ = ["plot_history", "plot_confusion", "plot_image_grid"]


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> None:
    plt = _pyplot()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)


def plot_history(history: Sequence[dict], path, title: str = "") -> None:
    """One panel per metric name (loss, accuracy, ...), train and val curves per epoch, and the
    learning rate. `history` is the Trainer's list of per-epoch rows."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    names = []
    for r in history:
        for k in r:
            if "/" in k and not k.endswith("_per_s"):
                n = k.split("/", 1)[1]
                if n not in names:
                    names.append(n)
    panels = names + (["lr"] if any("lr" in r for r in history) else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, name in zip(axes[0], panels):
        if name == "lr":
            ax.plot(epochs, [r.get("lr", np.nan) for r in history], color="tab:gray")
            ax.set_yscale("log")
        else:
            for split, style in (("train", "-o"), ("val", "-s")):
                ys = [r.get(f"{split}/{name}", np.nan) for r in history]
                if not all(np.isnan(ys)):
                    ax.plot(epochs, ys, style, markersize=3, label=split)
            ax.legend()
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_confusion(matrix, classes: Sequence[str], path, title: str = "confusion matrix"
                   ) -> None:
    """Rows are true classes, columns predictions; cells show counts, colour the row share."""
    plt = _pyplot()
    m = np.asarray(matrix)
    n = len(classes)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    _save(fig, path)


def plot_image_grid(images: Sequence[np.ndarray], captions: Sequence[str], path,
                    colors: Sequence[str] | None = None, columns: int = 6) -> None:
    """Images (H, W) or (H, W, C) uint8 in a grid, each with a caption (e.g. "7 (true 7)")
    in its colour (e.g. green when right, red when wrong)."""
    plt = _pyplot()
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (img, cap) in enumerate(zip(images, captions)):
        ax = axes.flat[i]
        img = np.asarray(img)
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
        ax.set_title(cap, fontsize=9, color=(colors[i] if colors else "black"))
    _save(fig, path)
