"""NIfTI volumes through nibabel, converted to and from the LPS Volume.

NIfTI stores the array as (i, j, k) with an affine into RAS mm; a Volume's array is
(k, j, i) with an affine into LPS mm. So the volume's array is the NIfTI array transposed,
its affine's columns are NIfTI's in reverse order, and its x and y rows are negated.
"""
from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from ._atomic import atomic_write
from .volume import LPS_TO_RAS, Volume

__all__ = ["read_nifti", "write_nifti", "NIFTI_SUFFIXES"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_REVERSE = [2, 1, 0]


def _is_nifti_name(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def read_nifti(path: str | os.PathLike) -> Volume:
    """Read a 3D NIfTI file (a 4D one with a single volume is accepted). Unscaled integer data
    keeps its dtype (label maps); anything else comes back as float32."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as e:   # nibabel raises many types for bad headers and short files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: not a readable NIfTI file ({first})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    elif data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise ValueError(f"{path}: NIfTI image of shape {data.shape} is not a single 3D volume")
    if not np.issubdtype(data.dtype, np.integer) and data.dtype != np.bool_:
        data = data.astype(np.float32, copy=False)
    affine_lps = LPS_TO_RAS @ np.asarray(img.affine, dtype=np.float64)
    affine = affine_lps.copy()
    affine[:3, :3] = affine_lps[:3, _REVERSE]
    header = img.header
    meta = {"source": str(path), "format": "nifti",
            "sform_code": int(header["sform_code"]), "qform_code": int(header["qform_code"])}
    return Volume.from_affine(np.ascontiguousarray(data.transpose(2, 1, 0)), affine, meta)


def _storable(array: np.ndarray) -> np.ndarray:
    """A dtype NIfTI-1 readers accept: no bool, no 64-bit integers, float32 for float64."""
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer) and array.dtype.itemsize == 8:
        lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
        for t in (np.uint8, np.int16, np.int32):
            if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
                return array.astype(t)
        raise ValueError(f"integer values {lo}..{hi} do not fit NIfTI's 32-bit integers")
    return array


def write_nifti(volume: Volume, path: str | os.PathLike) -> Path:
    """Write `volume` as NIfTI-1 (.nii or .nii.gz, chosen by the name) with its RAS affine
    as both sform and qform (code 1, scanner), atomically."""
    path = Path(path)
    if not _is_nifti_name(path):
        raise ValueError(f"{path}: a NIfTI file name ends with .nii or .nii.gz")
    data = _storable(np.asarray(volume.array)).transpose(2, 1, 0)
    ras = volume.affine_ras
    affine = ras.copy()
    affine[:3, :3] = ras[:3, _REVERSE]
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm")
    return atomic_write(path, lambda tmp: nib.save(img, str(tmp)))
