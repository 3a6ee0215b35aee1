"""Weights Lantern trains for the MRI zoo. The tissue U-Net's file is built on the user's
machine (7.7 MB, more than the repository ships): `lantern zoo build
unet2d.mni152-tissue` runs the recorded command on the hub's MNI152 template and writes
$LANTERN_HOME/zoo/unet2d.mni152-tissue.safetensors; `zoo:unet2d.mni152-tissue` then names it
wherever a checkpoint is taken (`lantern mri segment --checkpoint zoo:...`)."""
from __future__ import annotations

from ..registry import Weights, register_weights

__all__ = []

register_weights(Weights(
    model="unet2d", tag="mni152-tissue", file="cache:unet2d.mni152-tissue.safetensors",
    sha256="", num_params=1_927_907, categories=("background", "grey matter", "white matter"),
    metrics={"dataset": "mni152 (MNI ICBM152 2009a, 2 mm)",
             "split": "test: the superior 20% of the brain's axial slices, never trained on "
                      "(train: the inferior 60%; validation: the 20% between)",
             "dice": 0.9103, "dice_grey_matter": 0.8999, "dice_white_matter": 0.9208,
             "hd95_mm_grey_matter": 2.0, "hd95_mm_white_matter": 2.0,
             "train_seconds": 329, "epochs": 60},
    transforms={"normalize": "percentile 0.5-99.5 clip, z-score over the nonzero voxels",
                "spacing_mm": 2.0, "patch_size": [96, 96]},
    recipe="lantern mri train --task tissue --dims 2d --epochs 60 --seed 0",
    builder_kwargs={"in_channels": 1, "channels": [32, 64, 128, 256]},
    description="2D U-Net (32-256 channels, instance norm, leaky ReLU) trained on axial "
                "slices of the MNI152 template to label grey and white matter; AdamW 3e-3, "
                "poly decay, Dice + cross-entropy"))
