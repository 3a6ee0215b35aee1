"""The `lantern` command: one group per application.

    lantern vision train --model lenet5 --data mnist5k --epochs 10
    lantern vision eval --checkpoint runs/vision/best.safetensors --data mnist5k
    lantern --version
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .common.cli import EXIT_USAGE, run_command

__all__ = ["main", "build_parser"]

# group name -> (module that defines `add_parser(subparsers)`, one-line help)
GROUPS = {
    "vision": ("apps.vision.cli", "image classification: train, eval, predict, export, models"),
    "text": ("apps.text.cli", "text classification: train, eval, predict, embed, tokenizer"),
    "rl": ("apps.rl.cli", "reinforcement learning (DQN + Rainbow): train, eval, enjoy, benchmark"),
    "mri": ("apps.mri.cli", "MRI segmentation: info, make-data, train, segment, evaluate, "
                            "export"),
    "demo": ("apps.demo", "the main job: every application briefly, with an HTML report"),
    "zoo": ("apps.suite.zoo", "every application's models and weights: list, info, build"),
    "data": ("apps.suite.data", "the data hub's sources: list, fetch, path"),
    "doctor": ("apps.suite.doctor", "check this installation: Python, NumPy/BLAS, GPU, "
                                    "packages, cache, threads"),
    "run": ("framework.run", "run an unchanged PyTorch script with torch mapped to Lantern"),
}


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("lantern")
    except Exception:  # noqa: BLE001 - running from a source tree without an install
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lantern", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"lantern {_version()}")
    sub = p.add_subparsers(dest="group", metavar="{" + ",".join(GROUPS) + "}")
    for name, (module, help_) in GROUPS.items():
        importlib.import_module(module).add_parser(sub, name, help_)
    return p


def _warning_line(message, category, filename, lineno, line=None) -> str:
    return f"lantern: warning: {message}\n"


def main(argv=None) -> int:
    import warnings
    warnings.formatwarning = _warning_line   # users see the message, not our source line
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        getattr(args, "_parser", parser).print_help(sys.stderr)
        return EXIT_USAGE
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
