"""Lantern's main job on embedded defaults, until `lantern demo` covers all four applications:
the vision recipe trains the small CNN on scikit-learn's bundled 8x8 digits (1,797 real
images, no download), reports test accuracy, then reloads the checkpoint and predicts again.

    lantern-demo [--epochs 12] [--device cpu] [--out runs/demo]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from apps.cli import main as lantern


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/demo")
    args = ap.parse_args(argv)
    out = Path(args.out)
    common = ["--data", "digits", "--device", args.device, "--seed", str(args.seed)]
    rc = lantern(["vision", "train", "--model", "small_cnn", "--epochs", str(args.epochs),
                  "--augment", "light", "--out", str(out), *common])
    if rc:
        return rc
    rc = lantern(["vision", "eval", "--checkpoint", str(out / "last.safetensors"),
                  "--out", str(out / "reloaded"), *common])
    if rc:
        return rc
    trained = json.loads((out / "metrics.json").read_text())["test"]["accuracy"]
    reloaded = json.loads((out / "reloaded" / "metrics.json").read_text())["test"]["accuracy"]
    print(f"test accuracy {trained:.4f}; reloaded from {out / 'last.safetensors'}: "
          f"{reloaded:.4f}; plots and metrics in {out}/")
    return 0 if trained == reloaded else 1


if __name__ == "__main__":
    sys.exit(main())
