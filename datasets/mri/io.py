"""One entry point for image volumes (a DICOM folder, DICOMDIR or file; or NIfTI), and the
check that a label volume sits on its image's voxel grid."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .dicom import read_series
from .nifti import NIFTI_SUFFIXES, read_nifti
from .volume import Volume

__all__ = ["read_image", "check_same_geometry"]


def _looks_like_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def read_image(path: str | os.PathLike, series_uid: str | int | None = None) -> Volume:
    """Read a volume: .nii/.nii.gz through nibabel, a folder, DICOMDIR or DICOM file as a
    DICOM series (`series_uid` picks one when there are several)."""
    path = Path(path)
    if path.name.lower().endswith(NIFTI_SUFFIXES):
        return read_nifti(path)
    if path.is_dir() or path.name.upper() == "DICOMDIR" or path.suffix.lower() == ".dcm":
        return read_series(path, series_uid)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if _looks_like_dicom(path):
        return read_series(path, series_uid)
    raise ValueError(f"{path}: not a DICOM folder/file or a NIfTI file (.nii, .nii.gz)")


def _fmt(v) -> str:
    return "(" + ", ".join(f"{float(x):.4g}" for x in np.asarray(v).ravel()) + ")"


def check_same_geometry(a: Volume, b: Volume, names: tuple[str, str] | None = None, *,
                        atol_mm: float = 1e-3) -> None:
    """Raise ValueError (one line, both geometries) unless `a` and `b` share shape, spacing,
    origin (within `atol_mm`) and direction."""
    if names is None:
        names = (str(a.meta.get("source", "first volume")),
                 str(b.meta.get("source", "second volume")))
    same = (a.shape == b.shape
            and np.allclose(a.spacing, b.spacing, rtol=1e-4, atol=1e-6)
            and np.allclose(a.origin, b.origin, atol=atol_mm)
            and np.allclose(a.direction, b.direction, atol=1e-4))
    if not same:
        raise ValueError(
            f"{names[1]} does not match the geometry of {names[0]}: shape {b.shape} vs "
            f"{a.shape}, spacing {_fmt(b.spacing)} vs {_fmt(a.spacing)} mm, origin "
            f"{_fmt(b.origin)} vs {_fmt(a.origin)} mm, direction {_fmt(b.direction)} vs "
            f"{_fmt(a.direction)}")
