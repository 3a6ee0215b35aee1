"""Evaluation metrics per label on host label volumes (NumPy): Dice, IoU, the 95th-percentile
Hausdorff distance and the mean surface distance, in physical units from the voxel spacing.

Definitions follow MONAI (DiceMetric, MeanIoU, HausdorffDistanceMetric, SurfaceDistanceMetric):
- the surface of a mask is its voxels with a background face-neighbour (the mask minus its
  erosion by the face-connected cross; outside the array counts as background);
- the directed distances from A to B are, for each surface voxel of A, the Euclidean distance
  (scaled by `spacing`, one value per array axis) to the nearest surface voxel of B;
- HD95 is the larger of the two directed 95th percentiles (linear interpolation), as MONAI's
  `HausdorffDistanceMetric(percentile=95, directed=False)`; percentile=100 is the Hausdorff
  distance;
- the mean surface distance is the mean of both directed distance sets together (MONAI's
  `SurfaceDistanceMetric(symmetric=True)`, the ASSD); `symmetric=False` is prediction to
  ground truth only (MONAI's default).

Empty masks (MONAI's conventions; `LabelMetrics.empty_pred/empty_gt` flag them):
- Dice and IoU are nan when the ground truth is empty (`ignore_empty=True`, MONAI's
  default); with `ignore_empty=False` they are 1.0 when both masks are empty and 0.0 when
  only the ground truth is;
- surface distances are nan when both masks are empty and inf when exactly one is (the
  distance to an empty surface is unbounded). Average with `np.nanmean` and count the flags.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

__all__ = ["LabelMetrics", "dice_score", "iou_score", "surface_voxels", "surface_distances",
           "hausdorff_distance", "mean_surface_distance", "segmentation_metrics"]


def _masks(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p, g = np.asarray(pred).astype(bool, copy=False), np.asarray(gt).astype(bool, copy=False)
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} differs from ground truth {g.shape}")
    return p, g


def _spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    s = tuple(float(v) for v in spacing)
    if len(s) != ndim or not all(v > 0 and math.isfinite(v) for v in s):
        raise ValueError(f"spacing must be {ndim} positive numbers (one per array axis), "
                         f"got {spacing!r}")
    return s


def dice_score(pred, gt, *, ignore_empty: bool = True) -> float:
    """2 |P & G| / (|P| + |G|) of two masks (nonzero = inside); see the module for empties."""
    p, g = _masks(pred, gt)
    ng, npred = int(g.sum()), int(p.sum())
    if ng == 0:
        return math.nan if ignore_empty else (1.0 if npred == 0 else 0.0)
    return 2.0 * int(np.logical_and(p, g).sum()) / (ng + npred)


def iou_score(pred, gt, *, ignore_empty: bool = True) -> float:
    """|P & G| / |P | G| of two masks; see the module for empties."""
    p, g = _masks(pred, gt)
    union = int(np.logical_or(p, g).sum())
    if not g.any():
        return math.nan if ignore_empty else (1.0 if union == 0 else 0.0)
    return int(np.logical_and(p, g).sum()) / union


def surface_voxels(mask) -> np.ndarray:
    """The voxels of `mask` with a background face-neighbour (outside counts as background)."""
    m = np.asarray(mask).astype(bool, copy=False)
    return m & ~ndimage.binary_erosion(m, border_value=0)


def surface_distances(pred, gt, spacing: Sequence[float] | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(pred -> gt, gt -> pred): for each surface voxel of one mask, the distance to the
    nearest surface voxel of the other, in the units of `spacing`. A directed set is all inf
    when the other mask is empty, and empty when its own mask is."""
    p, g = _masks(pred, gt)
    s = _spacing(spacing, p.ndim)
    union = p | g
    if not union.any():
        return np.zeros(0), np.zeros(0)
    # Work in the union's bounding box plus one voxel: every surface voxel lies inside it and
    # the margin keeps the erosion as on the full array.
    box = []
    for axis in range(p.ndim):
        hit = np.flatnonzero(union.any(axis=tuple(a for a in range(p.ndim) if a != axis)))
        box.append(slice(max(hit[0] - 1, 0), hit[-1] + 2))
    box = tuple(box)
    edge_p, edge_g = surface_voxels(p[box]), surface_voxels(g[box])

    def directed(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        if not src.any():
            return np.zeros(0)
        if not dst.any():
            return np.full(int(src.sum()), np.inf)
        return ndimage.distance_transform_edt(~dst, sampling=s)[src]

    return directed(edge_p, edge_g), directed(edge_g, edge_p)


def _hd(d_pg: np.ndarray, d_gp: np.ndarray, percentile: float) -> float:
    if d_pg.size == 0 and d_gp.size == 0:
        return math.nan
    if d_pg.size == 0 or d_gp.size == 0:
        return math.inf
    return float(max(np.percentile(d_pg, percentile), np.percentile(d_gp, percentile)))


def _msd(d_pg: np.ndarray, d_gp: np.ndarray, symmetric: bool) -> float:
    if d_pg.size == 0 and d_gp.size == 0:
        return math.nan
    if d_pg.size == 0 or d_gp.size == 0:
        return math.inf
    return float((np.concatenate([d_pg, d_gp]) if symmetric else d_pg).mean())


def hausdorff_distance(pred, gt, spacing: Sequence[float] | None = None,
                       percentile: float = 95.0) -> float:
    """max of the two directed `percentile`-th percentiles of the surface distances (HD95 by
    default, the Hausdorff distance at 100); nan if both masks are empty, inf if one is."""
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    return _hd(*surface_distances(pred, gt, spacing), percentile)


def mean_surface_distance(pred, gt, spacing: Sequence[float] | None = None,
                          symmetric: bool = True) -> float:
    """Mean of the surface distances, both directions pooled (or pred -> gt only with
    symmetric=False); nan if both masks are empty, inf if one is."""
    return _msd(*surface_distances(pred, gt, spacing), symmetric)


@dataclass(frozen=True)
class LabelMetrics:
    """The metrics of one label; distances in the units of the spacing (mm for scanner
    spacings). empty_pred/empty_gt say which mask was empty (see the module docstring)."""

    dice: float
    iou: float
    hd95: float
    msd: float
    empty_pred: bool
    empty_gt: bool

    def as_dict(self) -> dict:
        return asdict(self)


def segmentation_metrics(pred, gt, labels: Sequence[int] | None = None,
                         spacing: Sequence[float] | None = None, *, percentile: float = 95.0,
                         ignore_empty: bool = True) -> dict[int, LabelMetrics]:
    """Per-label metrics of two label volumes of one shape. labels: those to score (default:
    every nonzero label present in either volume); spacing: voxel size per array axis."""
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} differs from ground truth {g.shape}")
    s = _spacing(spacing, p.ndim)
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    if labels is None:
        labels = [int(v) for v in np.union1d(np.unique(p), np.unique(g)) if v != 0]
    out = {}
    for label in labels:
        pm, gm = p == label, g == label
        d_pg, d_gp = surface_distances(pm, gm, s)
        out[int(label)] = LabelMetrics(
            dice=dice_score(pm, gm, ignore_empty=ignore_empty),
            iou=iou_score(pm, gm, ignore_empty=ignore_empty),
            hd95=_hd(d_pg, d_gp, percentile), msd=_msd(d_pg, d_gp, True),
            empty_pred=not pm.any(), empty_gt=not gm.any())
    return out
