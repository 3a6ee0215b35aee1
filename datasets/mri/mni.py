"""The tissue task from the real MNI ICBM152 2009a template (the hub's `mni152` source): the
skull-stripped T1 image with labels 0 background (and CSF) / 1 grey matter / 2 white matter
from the template's probability maps, written out as a real DICOM series.

Labels: at each voxel, the argmax over (1 - p_gm - p_wm, p_gm, p_wm), restricted to the brain
(T1 > 0): a voxel is grey or white matter when that tissue is the likeliest of the three, so a
voxel that is mostly CSF (or outside the brain) is background. At another `spacing` the T1 and
both probability maps are resampled linearly first and the labels taken from the resampled
maps (better than nearest-neighbour on the 1 mm labels).

Geometry: `read_nifti` turns the template (RAS, 197x233x189 as i, j, k) into a Volume with
array axes (slice, row, column) = (k, j, i): axis 0 runs inferior->superior, the array is
(189, 233, 197) at 1 mm.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import axial_axis
from .dicom import write_series
from .nifti import read_nifti
from .seg import write_dicom_seg, write_label_nifti
from .transforms import resample
from .volume import Volume

__all__ = ["TISSUE_LABELS", "TissueTemplate", "tissue_labels", "load_tissue_template",
           "AxialSplit", "axial_split", "write_tissue_case"]

TISSUE_LABELS = {0: "background", 1: "grey matter", 2: "white matter"}
_FILE = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"


def tissue_labels(grey: np.ndarray, white: np.ndarray,
                  brain: np.ndarray | None = None) -> np.ndarray:
    """uint8 labels (0 background, 1 grey, 2 white) from probability maps in [0, 1]: the
    argmax over (1 - grey - white, grey, white), and 0 outside `brain` when given."""
    grey = np.asarray(grey, dtype=np.float32)
    white = np.asarray(white, dtype=np.float32)
    rest = np.clip(1.0 - grey - white, 0.0, None)
    labels = np.argmax(np.stack([rest, grey, white]), axis=0).astype(np.uint8)
    if brain is not None:
        labels[~np.asarray(brain, bool)] = 0
    return labels


@dataclass
class TissueTemplate:
    """The T1 image (float32, 0-255 scale, 0 outside the brain), the grey/white probability
    maps (float32, 0-1) and the labels (uint8), all on one voxel grid."""

    image: Volume
    grey: Volume
    white: Volume
    labels: Volume

    @property
    def brain(self) -> np.ndarray:
        """The skull-stripped brain: T1 > 0."""
        return self.image.array > 0

    @classmethod
    def from_maps(cls, image: Volume, grey: np.ndarray, white: np.ndarray) -> "TissueTemplate":
        """Build from a T1 volume and probability maps in [0, 1] on its grid."""
        g = image.with_array(np.asarray(grey, np.float32))
        w = image.with_array(np.asarray(white, np.float32))
        labels = tissue_labels(g.array, w.array, image.array > 0)
        return cls(image, g, w, image.with_array(labels))

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self.image.spacing


def load_tissue_template(spacing: float | tuple[float, float, float] | None = None,
                         path: str | os.PathLike | None = None) -> TissueTemplate:
    """The MNI template at its native 1 mm (197x233x189; array (189, 233, 197)), or resampled
    to `spacing` mm (e.g. 2.0: (94, 116, 98), CPU-sized). `path` is the folder of the three
    NIfTI files; default: `datasets.fetch("mni152")` (the hash-checked hub cache)."""
    if path is None:
        from ..hub import fetch
        path = fetch("mni152")
    folder = Path(path)
    vols = {}
    for key in ("t1", "gm", "wm"):
        vol = read_nifti(folder / _FILE.format(key))
        vols[key] = vol.with_array(vol.array.astype(np.float32))
    if spacing is not None:
        vols = {k: resample(v, spacing, order=1) for k, v in vols.items()}
        # Linear interpolation spreads the brain edge by under a voxel; keep the T1's zeros.
        vols["t1"].array[vols["t1"].array < 0.5] = 0.0
    t1 = vols["t1"]
    t1.meta.update(description="MNI ICBM152 2009a symmetric T1")
    return TissueTemplate.from_maps(t1, vols["gm"].array / 255.0, vols["wm"].array / 255.0)


@dataclass
class AxialSplit:
    """Slice indices along array axis `axis` (the axial one), each ordered inferior ->
    superior: `train` (the inferior fraction), `gap` (unused) and `test` (the superior
    fraction), covering the foreground's axial extent `extent` (first, last index)."""

    axis: int
    train: np.ndarray
    gap: np.ndarray
    test: np.ndarray
    extent: tuple[int, int]


def axial_split(volume: Volume, mask: np.ndarray | None = None,
                fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> AxialSplit:
    """Split the axial slices for the tissue task's quality protocol: train on the inferior
    60%, skip 20%, test on the superior 20% (`fractions`), of the slices that hold `mask`
    (default: the whole axis). The axial axis and which end is inferior come from the affine
    (`axial_axis`: the array axis closest to LPS +z, and the sign of its z component), not
    from the array order."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    axis, sign = axial_axis(volume.affine)
    n = volume.shape[axis]
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != volume.shape:
            raise ValueError(f"mask shape {mask.shape} does not match the volume's {volume.shape}")
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if not hit.size:
            raise ValueError("axial_split: the mask is empty")
        lo, hi = int(hit[0]), int(hit[-1])
    else:
        lo, hi = 0, n - 1
    order = np.arange(lo, hi + 1) if sign > 0 else np.arange(hi, lo - 1, -1)
    count = len(order)
    n_train = int(round(fractions[0] * count))
    n_test = int(round(fractions[2] * count))
    if n_train == 0 or n_test == 0 or n_train + n_test > count:
        raise ValueError(f"axial_split: {count} slices are too few for fractions {fractions}")
    return AxialSplit(axis, order[:n_train], order[n_train:count - n_test],
                      order[count - n_test:], (lo, hi))


def write_tissue_case(folder: str | os.PathLike,
                      spacing: float | tuple[float, float, float] | None = None,
                      template: TissueTemplate | None = None,
                      dicom_seg: bool = False) -> dict[str, Path]:
    """Write the tissue case into `folder`: the T1 as a DICOM MR series in `image/`, the labels
    as `label.nii.gz` on the same grid, and with `dicom_seg` also `label_seg.dcm` (a DICOM
    SEG referencing the series). Returns {"image": folder, "label": path[, "seg": path]}."""
    template = template or load_tissue_template(spacing)
    folder = Path(folder)
    image_dir = folder / "image"
    files = write_series(template.image, image_dir,
                         series_description="MNI ICBM152 2009a T1",
                         study_description="Lantern tissue task", patient_id="MNI152")
    out = {"image": image_dir,
           "label": write_label_nifti(template.labels, template.image,
                                      folder / "label.nii.gz")}
    if dicom_seg:
        names = {k: v for k, v in TISSUE_LABELS.items() if k}
        out["seg"] = write_dicom_seg(template.labels.array, files, folder / "label_seg.dcm",
                                     names)
    return out
