"""`lantern mri ...`: the command line of the MRI segmentation application.

Each subcommand is a thin wrapper over a plain function of `apps.mri.recipe`.
"""
from __future__ import annotations

import argparse

from apps.common.cli import (HelpFormatter, add_run_args, add_train_args, add_zoo_commands,
                             lazy_command)

__all__ = ["add_parser", "main"]

EXAMPLES = """examples:
  lantern mri info path/to/dicom_folder
  lantern mri make-data --task tissue --out data/tissue
  lantern mri make-data --task lesion --cases 20 --out data/lesions
  lantern mri train --task tissue --dims 2d --epochs 20 --out runs/mri-tissue
  lantern mri train --data data/lesions --dims 3d --patch-size 64,64,64 --loss dicece
  lantern mri segment --checkpoint runs/mri-tissue/last.safetensors \\
      --input data/tissue/image --output seg/ --format seg
  lantern mri evaluate --pred seg/image_seg.nii.gz --gt data/tissue/label.nii.gz --out eval/
  lantern mri zoo-build unet2d.mni152-tissue   # or: lantern zoo build unet2d.mni152-tissue
  lantern mri segment --checkpoint zoo:unet2d.mni152-tissue --input data/tissue/image --output seg/
"""


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 96,96, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _template_arg(p) -> None:
    p.add_argument("--template", metavar="DIR",
                   help="folder of the three MNI ICBM152 2009a NIfTI files (t1, gm, wm) "
                        "(default: the hub's mni152 source)")
    p.add_argument("--spacing", type=float, default=2.0,
                   help="voxel size (mm) the template is resampled to")


def add_parser(sub, name: str = "mri", help_: str = "") -> argparse.ArgumentParser:
    mp = sub.add_parser(name, help=help_, description=__doc__, epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = mp.add_subparsers(dest="command", metavar="COMMAND")
    fmt = HelpFormatter

    i = cmds.add_parser("info", help="the image series under a folder (or a NIfTI file), "
                                     "with their geometry", formatter_class=fmt)
    i.add_argument("path", help="a DICOM folder, DICOMDIR or file, or a .nii/.nii.gz file")
    i.add_argument("--series", help="with several series: describe this one in full "
                                    "(SeriesInstanceUID or SeriesNumber)")
    i.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    i.set_defaults(func=_run("info"))

    d = cmds.add_parser("make-data", help="write the tissue case or synthetic lesion cases "
                                          "(DICOM series + label volumes)", formatter_class=fmt)
    d.add_argument("--task", choices=("tissue", "lesion"), required=True)
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument("--cases", type=int, default=10, help="lesion cases to write")
    _template_arg(d)
    d.add_argument("--seed", type=int, default=0, help="lesion set seed")
    d.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    d.set_defaults(func=_run("make_data"))

    t = cmds.add_parser("train", help="train a 2D or 3D U-Net, then evaluate on the test part",
                        formatter_class=fmt)
    src = t.add_mutually_exclusive_group()
    src.add_argument("--task", choices=("tissue", "lesion"),
                     help="a built-in task (default: tissue): tissue trains on the inferior "
                          "60%% of the axial slices and tests on the superior 20%%; lesion "
                          "generates --cases cases (85/15 train/val by --seed) and tests on "
                          "--test-cases more")
    src.add_argument("--data", metavar="MSD_DIR",
                     help="an MSD / nnU-Net folder (dataset.json, imagesTr, labelsTr); its "
                          "training cases are split 70/15/15 by --seed")
    t.add_argument("--cases", type=int, default=40,
                   help="lesion task: training + validation cases to generate")
    t.add_argument("--test-cases", type=int, default=20,
                   help="lesion task: held-out test cases")
    _template_arg(t)
    t.add_argument("--dims", choices=("2d", "3d"), default="2d")
    t.add_argument("--patch-size", type=_ints,
                   help="patch per sample, e.g. 96,96 (2d) or 64,64,64 (3d); every axis must "
                        "divide by 2^(stages-1) (default: 96,96 or 64,64,64)")
    t.add_argument("--channels", type=_ints,
                   help="U-Net stage widths, e.g. 16,32,64,128 (default: 32,64,128,256 for "
                        "2d, 16,32,64,128 for 3d)")
    t.add_argument("--loss", choices=("dicece", "dice", "gdl", "focal"), default="dicece")
    t.add_argument("--augment", choices=("none", "light", "strong"), default="none",
                   help="training augmentation: light = flips, gamma, noise; strong = light + "
                        "small affine and elastic deformations")
    add_train_args(t, epochs=20, batch_size=None, lr=3e-3, distributed=True)
    t.add_argument("--optimizer", choices=("sgd", "adam", "adamw", "rmsprop"), default="adamw")
    t.add_argument("--weight-decay", type=float, default=1e-5)
    t.add_argument("--scheduler", choices=("poly", "cosine", "constant", "step", "onecycle"),
                   default="poly", help="learning-rate decay per step (poly: nnU-Net's)")
    t.add_argument("--fg-fraction", type=float, default=0.33,
                   help="share of training patches centred on a foreground voxel (nnU-Net: "
                        "0.33; small lesions learn faster with more)")
    t.add_argument("--hard-negatives", type=float, default=0.0, metavar="FRACTION",
                   help="3d: share of training patches centred on false positives that the "
                        "model, run on the training cases now and then, still makes")
    t.add_argument("--samples-per-epoch", type=int,
                   help="3d: random patches per epoch (default: 8 per training case)")
    t.add_argument("--overlap", type=float, default=0.5, help="sliding-window overlap")
    t.add_argument("--min-size", type=int, default=0, metavar="VOXELS",
                   help="test-time post-processing: connected components smaller than this "
                        "become background (recorded in the checkpoint for segment)")
    t.add_argument("--no-plots", action="store_true")
    add_run_args(t, out="runs/mri")
    t.set_defaults(func=_run("train"))

    s = cmds.add_parser("segment", help="segment a DICOM series or NIfTI volume with a trained "
                                        "model", formatter_class=fmt)
    s.add_argument("--checkpoint", required=True,
                   help="a training checkpoint or run folder, an export, or zoo:<model>.<tag> "
                        "(e.g. zoo:unet2d.mni152-tissue once built)")
    s.add_argument("--input", required=True, nargs="+",
                   help="DICOM folder(s)/DICOMDIR/file(s) or NIfTI file(s)")
    s.add_argument("--series", help="the series to read when a DICOM input holds several")
    s.add_argument("--output", required=True, help="output folder")
    s.add_argument("--format", choices=("seg", "nifti", "png"), action="append",
                   help="seg (DICOM SEG, DICOM input only), nifti, png overlays; repeatable "
                        "(default: seg for DICOM input, nifti otherwise)")
    s.add_argument("--overlap", type=float, default=0.5, help="sliding-window overlap")
    s.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
    s.add_argument("--tta", action="store_true", help="average over flipped inputs")
    s.add_argument("--min-size", type=int, metavar="VOXELS",
                   help="connected components smaller than this become background (default: "
                        "the value the model was trained with)")
    add_run_args(s)
    s.set_defaults(func=_run("segment"))

    e = cmds.add_parser("evaluate", help="per-label Dice, IoU, HD95 and mean surface distance "
                                         "of a prediction against ground truth",
                        formatter_class=fmt)
    e.add_argument("--pred", required=True, help="predicted label volume (NIfTI or DICOM)")
    e.add_argument("--gt", required=True, help="ground-truth label volume (NIfTI or DICOM)")
    e.add_argument("--labels", nargs="+", metavar="VALUE[=NAME]",
                   help="labels to score, e.g. 1=grey 2=white (default: every nonzero label "
                        "present)")
    e.add_argument("--out", default="runs/mri-eval", help="output folder")
    e.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    e.set_defaults(func=_run("evaluate"))

    x = cmds.add_parser("export", help="write a trained model as one .safetensors file with "
                                       "its metadata (and a .json beside it)",
                        formatter_class=fmt)
    x.add_argument("--checkpoint", required=True,
                   help="a training checkpoint, run folder or zoo:<model>.<tag>")
    x.add_argument("--out", required=True, help="the .safetensors file to write")
    x.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    x.set_defaults(func=_run("export"))

    add_zoo_commands(cmds, "mri", "unet2d.mni152-tissue", _run)

    mp.set_defaults(func=None, _parser=mp)
    return mp


def _run(name: str):
    return lazy_command(f"{__package__}.recipe", name)


def main(argv=None) -> int:
    """`python -m apps.mri ...` (the same as `lantern mri ...`)."""
    import sys
    from apps.cli import main as lantern_main
    return lantern_main(["mri", *(sys.argv[1:] if argv is None else argv)])
