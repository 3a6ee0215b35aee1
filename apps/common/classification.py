"""Classification metrics shared by the vision and text applications: top-k accuracy,
per-class precision/recall/F1 and the confusion matrix (scikit-learn's implementations)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["topk_correct", "classification_report", "format_confusion", "format_per_class"]


def topk_correct(logits, targets, k: int) -> int:
    """How many rows have their target among the k highest logits (framework tensors)."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return int((top == targets.reshape(-1, 1)).any(dim=1).sum().item())


def classification_report(y_true, scores, classes: Sequence[str], k: int = 5) -> dict:
    """Figures for `eval`: accuracy, top-k, per-class precision/recall/F1/support and the
    confusion matrix, from true labels (N,) and scores (N, C) as NumPy arrays."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
    y_true = np.asarray(y_true)
    scores = np.asarray(scores)
    pred = scores.argmax(axis=1)
    k = min(k, scores.shape[1])
    topk = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    labels = np.arange(len(classes))
    p, r, f, s = precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)
    return {
        "accuracy": float((pred == y_true).mean()) if len(y_true) else float("nan"),
        f"top{k}": float((topk == y_true[:, None]).any(axis=1).mean()) if len(y_true)
        else float("nan"),
        "count": int(len(y_true)),
        "macro_f1": float(f.mean()),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                          "support": int(s[i])} for i, c in enumerate(classes)},
        "confusion_matrix": confusion_matrix(y_true, pred, labels=labels).tolist(),
    }


def format_per_class(report: dict) -> str:
    rows = report["per_class"]
    width = max([len(c) for c in rows] + [5])
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    for c, m in rows.items():
        lines.append(f"{c:<{width}}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:6.4f}"
                     f"  {m['support']:7d}")
    return "\n".join(lines)


def format_confusion(matrix, classes: Sequence[str]) -> str:
    """The confusion matrix as a text table (rows true, columns predicted)."""
    m = np.asarray(matrix)
    names = [str(c) for c in classes]
    w = max([len(n) for n in names] + [len(str(m.max() if m.size else 0)), 4])
    head = " " * (w + 2) + " ".join(f"{n[:w]:>{w}}" for n in names)
    body = [f"{n[:w]:>{w}}  " + " ".join(f"{v:>{w}d}" for v in row) for n, row in zip(names, m)]
    return "true \\ predicted\n" + "\n".join([head] + body)
