"""MRI segmentation networks of the model zoo, their losses, their evaluation metrics and
sliding-window inference. Importing this package registers the builders `unet2d` and `unet3d`
(domain "mri") in `models.registry`.

Modules: `unet` (UNet and its blocks), `losses` (Dice, Dice+CE, generalized Dice, focal,
deep supervision), `metrics` (per-label Dice, IoU, HD95, mean surface distance on NumPy
label volumes), `inference` (sliding_window_inference, flip_tta).
"""
from . import inference, losses, metrics, unet, zoo
from .inference import (flip_tta, importance_map, remove_small_components,
                        sliding_window_inference)
from .losses import (DeepSupervisionLoss, DiceCELoss, DiceLoss, FocalLoss, GeneralizedDiceLoss,
                     deep_supervision_weights)
from .metrics import (LabelMetrics, dice_score, hausdorff_distance, iou_score,
                      mean_surface_distance, segmentation_metrics, surface_distances)
from .unet import UNet, unet2d, unet3d

__all__ = ["inference", "losses", "metrics", "unet", "UNet", "unet2d", "unet3d", "DiceLoss",
           "DiceCELoss", "GeneralizedDiceLoss", "FocalLoss", "DeepSupervisionLoss",
           "deep_supervision_weights", "LabelMetrics", "dice_score", "iou_score",
           "hausdorff_distance", "mean_surface_distance", "surface_distances",
           "segmentation_metrics", "sliding_window_inference", "flip_tta", "importance_map",
           "remove_small_components"]
