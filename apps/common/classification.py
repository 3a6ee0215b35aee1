"""Classification shared by the vision and text applications: the Trainer's task for
classifiers, top-k accuracy, per-class precision/recall/F1 and the confusion matrix
(scikit-learn's implementations)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["ClassificationTask", "topk_correct", "classification_report", "format_confusion",
           "format_per_class", "collect_scores", "write_eval_files"]


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
    kk = min(k, scores.shape[1])   # with fewer than k classes, top-k is certain
    topk = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
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


def _twice(inputs):
    """A batch stacked on itself (tensors, or a dict of them), for R-Drop's two passes."""
    import framework as fw
    if isinstance(inputs, dict):
        return {k: fw.cat([v, v]) for k, v in inputs.items()}
    return fw.cat([inputs, inputs])


class ClassificationTask:
    """The Trainer's task for classifiers: cross-entropy (with label smoothing, and soft
    targets from MixUp/CutMix when `batch_transform` is given), accuracy and top-5 counts.
    Batches are `(inputs, targets)`; dict inputs are passed as keyword arguments (text),
    and their real tokens (`attention_mask`) are the throughput.

    `rdrop` > 0 adds R-Drop (Liang et al. 2021): each batch goes through the model twice
    (stacked, so that dropout draws other masks for the copy), and rdrop / 4 times
    KL(p1 || p2) + KL(p2 || p1) is added to the two passes' mean cross-entropy: the paper's
    loss halved, so that its alpha keeps its meaning. It costs a second forward and backward
    per step."""

    def __init__(self, model, *, label_smoothing: float = 0.0, batch_transform=None,
                 topk: int | None = 5, rdrop: float = 0.0):
        if rdrop < 0:
            raise ValueError(f"rdrop must be >= 0, got {rdrop}")
        self.model = model
        self.topk = topk
        self.label_smoothing = float(label_smoothing)
        self.batch_transform = batch_transform
        self.rdrop = float(rdrop)

    def _logits(self, inputs):
        out = self.model(**inputs) if isinstance(inputs, dict) else self.model(inputs)
        return out[-1] if isinstance(out, tuple) else out

    def training_step(self, batch):
        import framework.nn.functional as F
        inputs, targets = batch
        hard = targets
        if self.batch_transform is not None:
            inputs, targets = self.batch_transform((inputs, targets))
            hard = targets.argmax(dim=1) if targets.ndim == 2 else targets
        if self.rdrop:
            import framework as fw
            both = self._logits(_twice(inputs))
            loss = F.cross_entropy(both, fw.cat([targets, targets]),
                                   label_smoothing=self.label_smoothing)
            logp = F.log_softmax(both, dim=1)
            first, second = logp[:len(hard)], logp[len(hard):]
            symmetric_kl = (F.kl_div(first, second, reduction="batchmean", log_target=True) +
                            F.kl_div(second, first, reduction="batchmean", log_target=True))
            loss = loss + self.rdrop / 4 * symmetric_kl
            logits = both[:len(hard)]
        else:
            logits = self._logits(inputs)
            loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        out = {"loss": loss, "size": len(hard),
               "metrics": {"accuracy": (logits.argmax(dim=1) == hard).sum()}}
        if isinstance(inputs, dict) and "attention_mask" in inputs:   # text: count tokens
            out["throughput"] = int(inputs["attention_mask"].sum().item())
        return out

    def validation_step(self, batch):
        import framework.nn.functional as F
        inputs, targets = batch
        logits = self._logits(inputs)
        metrics = {"accuracy": (logits.argmax(dim=1) == targets).sum()}
        if self.topk:
            metrics[f"top{self.topk}"] = topk_correct(logits, targets, self.topk)
        return {"loss": F.cross_entropy(logits, targets), "size": len(targets),
                "metrics": metrics}


def collect_scores(probabilities, loader, device) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,), class probabilities (N, C)) over a loader of (inputs, targets) batches;
    `probabilities(inputs)` maps a batch on `device` to (B, C) probabilities."""
    import framework as fw
    from .trainer import to_device
    ys, ps = [], []
    with fw.no_grad():
        for inputs, targets in loader:
            ps.append(probabilities(to_device(inputs, device)).float().cpu().numpy())
            ys.append(np.asarray(targets.numpy() if hasattr(targets, "numpy") else targets))
    return np.concatenate(ys), np.concatenate(ps)


def write_eval_files(out, report: dict, classes: Sequence[str], *, plots: bool = True) -> None:
    """`confusion.txt`, `per_class.csv` and (with plots) `confusion.png` in `out`."""
    from pathlib import Path
    from .files import write_csv, write_text
    out = Path(out)
    write_text(out / "confusion.txt",
               format_confusion(report["confusion_matrix"], classes) + "\n")
    write_csv(out / "per_class.csv", [{"class": c, **m} for c, m in report["per_class"].items()])
    if plots:
        from .plots import plot_confusion
        plot_confusion(report["confusion_matrix"], classes, out / "confusion.png")
