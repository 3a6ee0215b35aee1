"""`lantern vision ...`: the command line of the image-classification application.

Each subcommand is a thin wrapper over a plain function of `apps.vision.recipe`, so what the
CLI does can be called from Python with the same arguments.
"""
from __future__ import annotations

import argparse

from apps.common.cli import (HelpFormatter, add_run_args, add_split_seed, add_train_args,
                             add_zoo_commands, lazy_command)

__all__ = ["add_parser", "main"]

EXAMPLES = """examples:
  lantern vision train --model lenet5 --data mnist5k --epochs 12 --out runs/lenet
  lantern vision train --model resnet18 --cifar-stem --data shapes --amp
  lantern vision train --model small_cnn --data path/to/folder --resume runs/x/last.safetensors
  mpiexec -n 2 lantern vision train --distributed --data digits --out runs/ddp
  lantern vision eval --checkpoint runs/lenet/best.safetensors --data mnist5k --split test
  lantern vision eval --model zoo:lenet5.mnist5k --data mnist5k
  lantern vision predict --checkpoint runs/lenet/best.safetensors img1.png images/ --topk 3
  find images -name '*.png' | lantern vision predict --model zoo:lenet5.mnist5k - --format csv
  lantern vision export --checkpoint runs/lenet/best.safetensors --out lenet.safetensors
  lantern vision export --model zoo:lenet5.mnist5k --format onnx --out lenet5.onnx
  lantern vision models resnet18
  lantern vision zoo-build lenet5.mnist5k
"""

DATA_HELP = ("a hub source (digits, mnist5k, lfw-subset, shapes), a folder with one "
             "sub-folder per class (or train/ and test/ inside), a CSV of path,label, "
             "mnist:DIR, fashion-mnist:DIR, cifar10:DIR or cifar100:DIR")


def _add_data_args(p, *, split: bool = False) -> None:
    p.add_argument("--data", default="digits", help=DATA_HELP + " (default: digits)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the training data held out for validation (default: 0.1)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip (and count) images that cannot be decoded instead of failing")
    p.add_argument("--loader", choices=("pil", "cv2"), default="pil",
                   help="image decoder: Pillow or OpenCV (default: pil)")
    add_split_seed(p)
    if split:
        p.add_argument("--split", choices=("train", "val", "test", "all"), default="test")


def _add_model_source(p) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--checkpoint", help="a training checkpoint or exported model")
    g.add_argument("--model", help="zoo:<model>.<weights> (see `lantern vision models`)")


def add_parser(sub, name: str = "vision", help_: str = "") -> argparse.ArgumentParser:
    vp = sub.add_parser(name, help=help_, description=__doc__, epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = vp.add_subparsers(dest="command", metavar="COMMAND")
    fmt = HelpFormatter

    t = cmds.add_parser("train", help="train a classifier", formatter_class=fmt)
    t.add_argument("--model", default="small_cnn", help="architecture (lantern vision models)")
    t.add_argument("--weights", help="start from zoo:<model>.<tag> or a .pth/.pt/.safetensors "
                                     "file (key for key; a head of another size is re-initialised)")
    t.add_argument("--cifar-stem", action="store_true",
                   help="ResNet: 3x3 stride-1 first conv and no max pool (small images)")
    _add_data_args(t)
    t.add_argument("--image-size", type=int,
                   help="input size (default: the model's, else the data's own size, else 224)")
    add_train_args(t, epochs=10, batch_size=64, lr=0.05, distributed=True)
    t.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "adamw", "rmsprop"))
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--scheduler", default="cosine",
                   choices=("cosine", "step", "constant", "onecycle"))
    t.add_argument("--warmup-epochs", type=float, default=0.0)
    t.add_argument("--augment", default="default", choices=("none", "light", "default", "strong"),
                   help="training augmentation preset")
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--mixup", type=float, default=0.0, help="MixUp alpha (0: off)")
    t.add_argument("--cutmix", type=float, default=0.0, help="CutMix alpha (0: off)")
    t.add_argument("--amp", action="store_true",
                   help="mixed precision (bfloat16 on CPU, float16 with loss scaling on CUDA)")
    t.add_argument("--grad-clip", type=float, help="clip the gradient norm to this value")
    t.add_argument("--patience", type=int, default=0, help="early stopping patience (0: off)")
    t.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_run_args(t, out="runs/vision")
    t.set_defaults(func=_run("train"))

    e = cmds.add_parser("eval", help="accuracy, top-5, per-class figures, confusion matrix",
                        formatter_class=fmt)
    _add_model_source(e)
    _add_data_args(e, split=True)
    e.add_argument("--batch-size", type=int, default=256)
    add_run_args(e, out="runs/vision-eval")
    e.set_defaults(func=_run("evaluate"))

    pr = cmds.add_parser("predict", help="top-k labels for images, folders or stdin paths",
                         formatter_class=fmt)
    _add_model_source(pr)
    pr.add_argument("inputs", nargs="+", help="image files, folders, or - for paths on stdin")
    pr.add_argument("--topk", type=int, default=1)
    pr.add_argument("--format", choices=("table", "csv", "json"), default="table")
    pr.add_argument("--batch-size", type=int, default=64)
    pr.add_argument("--loader", choices=("pil", "cv2"), default="pil")
    add_run_args(pr)
    pr.set_defaults(func=_run("predict"))

    x = cmds.add_parser("export", help="the model as safetensors (or ONNX) + JSON metadata",
                        formatter_class=fmt)
    _add_model_source(x)
    x.add_argument("--out", required=True, help="the .safetensors (or .onnx) file to write")
    x.add_argument("--format", choices=("safetensors", "onnx"), default="safetensors",
                   help="safetensors (the state dict, for Lantern) or onnx (the network "
                        "with a dynamic batch axis, for onnxruntime; needs the onnx extra)")
    x.add_argument("--debug", action="store_true")
    x.set_defaults(func=_run("export"))

    add_zoo_commands(cmds, "vision", "lenet5.mnist5k", _run)

    vp.set_defaults(func=None, _parser=vp)
    return vp


def _run(name: str):
    return lazy_command(f"{__package__}.recipe", name)


def main(argv=None) -> int:
    """`python -m apps.vision ...` (the same as `lantern vision ...`)."""
    import sys
    from apps.cli import main as lantern_main
    return lantern_main(["vision", *(sys.argv[1:] if argv is None else argv)])
