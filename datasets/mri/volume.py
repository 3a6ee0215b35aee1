"""A 3D image with its place in the patient: the array plus spacing, origin and direction, in
DICOM's patient coordinates (LPS: +x to the patient's Left, +y Posterior, +z Superior, in mm).

Axis convention: every per-axis quantity follows the array's own axis order. `array[k, j, i]`
is slice k, row j, column i of a DICOM series; `spacing[a]`, `direction[:, a]` and the
affine's column a all describe array axis a. So `affine @ (k, j, i, 1)` is the LPS position of
that voxel's centre, and `direction[:, 2]` / `direction[:, 1]` are the DICOM row / column
direction cosines (ImageOrientationPatient's first / second triplet).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Volume", "LPS_TO_RAS", "orientation_label"]

# LPS and RAS differ by the signs of x and y; the matrix is its own inverse.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

# A slice normal within this angle of a patient axis is named after that plane.
_PLANE_TOLERANCE_DEG = 10.0


@dataclass
class Volume:
    """`array` (3D, axes = slice, row, column), `spacing` (mm, per array axis), `origin` (LPS mm
    of voxel (0, 0, 0)), `direction` (3x3, column a = LPS unit vector of array axis a), and
    `meta` (free-form facts about the source: series UID, slice files, ...)."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: np.ndarray
    direction: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim != 3:
            raise ValueError(f"Volume needs a 3D array, got shape {self.array.shape}")
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise ValueError(f"Volume spacing must be 3 positive numbers, got {self.spacing}")
        self.spacing = spacing  # type: ignore[assignment]
        self.origin = np.asarray(self.origin, dtype=np.float64).reshape(3)
        direction = np.asarray(self.direction, dtype=np.float64)
        if direction.shape != (3, 3):
            raise ValueError(f"Volume direction must be 3x3, got shape {direction.shape}")
        norms = np.linalg.norm(direction, axis=0)
        if not np.allclose(norms, 1.0, atol=1e-4) or abs(np.linalg.det(direction)) < 1e-3:
            raise ValueError("Volume direction columns must be independent unit vectors, got "
                             f"{direction.round(5).tolist()}")
        self.direction = direction / norms   # remove the rounding of stored cosines

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping a voxel index (array axis order, homogeneous) to LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.direction * np.asarray(self.spacing)[None, :]
        a[:3, 3] = self.origin
        return a

    @property
    def affine_ras(self) -> np.ndarray:
        """The same mapping into RAS mm (NIfTI's patient space): x and y negated."""
        return LPS_TO_RAS @ self.affine

    @property
    def orientation(self) -> str:
        """'axial', 'sagittal', 'coronal' or 'oblique', from the normal of the array's
        (row, column) planes."""
        return orientation_label(np.cross(self.direction[:, 2], self.direction[:, 1]))

    def with_array(self, array: np.ndarray, **meta: Any) -> "Volume":
        """A volume on the same voxel grid holding `array` (a label map, a prediction)."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} does not match the volume's "
                             f"{self.array.shape}")
        return Volume(array, self.spacing, self.origin.copy(), self.direction.copy(),
                      {**self.meta, **meta})

    @classmethod
    def from_affine(cls, array: np.ndarray, affine: np.ndarray,
                    meta: dict[str, Any] | None = None) -> "Volume":
        """Build from an LPS affine (columns in array axis order)."""
        affine = np.asarray(affine, dtype=np.float64)
        columns = affine[:3, :3]
        spacing = np.linalg.norm(columns, axis=0)
        if np.any(spacing <= 0):
            raise ValueError(f"affine has a zero-length axis: {affine.round(5).tolist()}")
        return cls(array, tuple(spacing), affine[:3, 3], columns / spacing, dict(meta or {}))


def orientation_label(normal: np.ndarray) -> str:
    """Name the imaging plane whose normal (LPS) is `normal`."""
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    axis = int(np.argmax(np.abs(n)))
    if np.degrees(np.arccos(min(1.0, abs(n[axis])))) > _PLANE_TOLERANCE_DEG:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]
