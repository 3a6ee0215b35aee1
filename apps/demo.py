"""Lantern's main job on embedded defaults: train a small convolutional network on
scikit-learn's bundled 8x8 digits (1,797 real images, no download), report test accuracy,
save a checkpoint and reload it. Replaced by the application CLIs as they arrive.

    lantern-demo [--epochs 8] [--batch-size 64] [--lr 0.01] [--device cpu] [--out runs/demo]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
from framework.utils.data import DataLoader, TensorDataset


class DigitsNet(nn.Module):
    """Two 3x3 conv blocks and a linear head for 1x8x8 inputs."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(32 * 4 * 4, classes))

    def forward(self, x):
        return self.head(self.features(x))


def load_digits_split(seed: int = 0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return train_test_split(x, d.target.astype(np.int64), test_size=0.25, random_state=seed,
                            stratify=d.target)


def evaluate(model, loader, device):
    model.eval()
    correct = total = 0
    with fw.no_grad():
        for xb, yb in loader:
            pred = model(xb.to(device)).argmax(dim=1)
            correct += int((pred == yb.to(device)).sum().item())
            total += len(yb)
    return correct / max(total, 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join("runs", "demo"))
    args = ap.parse_args(argv)

    fw.manual_seed(args.seed)
    fw.set_flush_denormal(True)
    xtr, xte, ytr, yte = load_digits_split(args.seed)
    train = DataLoader(TensorDataset(fw.tensor(xtr), fw.tensor(ytr)), batch_size=args.batch_size,
                       shuffle=True, generator=fw.Generator().manual_seed(args.seed))
    test = DataLoader(TensorDataset(fw.tensor(xte), fw.tensor(yte)), batch_size=256)
    model = DigitsNet().to(args.device)
    opt = fw.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    sched = fw.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    print(f"digits (scikit-learn): {len(xtr)} train / {len(xte)} test images, "
          f"{sum(p.numel() for p in model.parameters())} parameters, device {args.device}")
    try:
        from tqdm import tqdm
    except ImportError:  # progress bars are a nicety
        def tqdm(it, **kw):
            return it
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for xb, yb in tqdm(train, desc=f"epoch {epoch}/{args.epochs}", leave=False,
                           disable=not sys.stderr.isatty()):
            loss = F.cross_entropy(model(xb.to(args.device)), yb.to(args.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
        sched.step()
        print(f"epoch {epoch}: train loss {total / len(xtr):.4f}, "
              f"test accuracy {evaluate(model, test, args.device):.4f}")
    acc = evaluate(model, test, args.device)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "digits_cnn.safetensors")
    fw.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": args.epochs},
            path)
    restored = DigitsNet().to(args.device)
    restored.load_state_dict(fw.load(path)["model"])
    acc2 = evaluate(restored, test, args.device)
    print(f"final test accuracy {acc:.4f} in {time.perf_counter() - t0:.1f} s; checkpoint {path} "
          f"reloaded: accuracy {acc2:.4f}")
    return 0 if abs(acc - acc2) < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
