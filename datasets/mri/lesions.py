"""Synthetic lesion cases for a binary segmentation task, built on a tissue template (the MNI
T1 by default): each case is the template under a small random affine + elastic deformation,
with 1-5 lesions (ellipsoids, or blobs made of 2-4 overlapping ellipsoids; 3-10 mm radii;
hyper- or hypointense at varied contrast, soft edges) inside the brain, a smooth
multiplicative bias field and Rician noise. The brain stays skull-stripped (0 outside).

Case `index` with `seed` is always the same case: it draws only from
`numpy.random.default_rng([seed, index])`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ._atomic import atomic_write
from .dicom import write_series
from .mni import TissueTemplate, load_tissue_template
from .nifti import write_nifti
from .seg import write_label_nifti
from .transforms import elastic_coordinates
from .volume import Volume

__all__ = ["LESION_LABELS", "LesionCase", "make_lesion_case", "make_lesion_cases"]

LESION_LABELS = {0: "background", 1: "lesion"}

# Deformation of the template: rotation (deg, each axis), isotropic scale, shift (mm),
# elastic displacement std (mm) on control points every _ELASTIC_GRID_MM.
_ROTATE_DEG, _SCALE, _SHIFT_MM = 5.0, (0.95, 1.05), 3.0
_ELASTIC_MM, _ELASTIC_GRID_MM = 1.5, 24.0
_RADIUS_MM = (3.0, 10.0)
_BIAS_STD = 0.08          # std of the bias field's polynomial coefficients (log scale)
_NOISE = (0.01, 0.04)     # Rician sigma as a fraction of the brain's 99th percentile


@dataclass
class LesionCase:
    """`image` (float32 Volume), `label` (uint8 Volume, 1 = lesion, same grid) and
    `lesions`: per lesion its kind, centre (LPS mm), radii (mm) and contrast factor."""

    image: Volume
    label: Volume
    lesions: list[dict[str, Any]] = field(default_factory=list)


def _deform(template: TissueTemplate, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The template's image and brain mask resampled through one random affine + elastic
    map (about the grid centre, in mm)."""
    shape = np.asarray(template.image.shape)
    sp = np.asarray(template.spacing)
    angles = np.radians(rng.uniform(-_ROTATE_DEG, _ROTATE_DEG, 3))
    rot = np.eye(3)
    for (i, j), a in zip(((1, 2), (0, 2), (0, 1)), angles):
        g = np.eye(3)
        g[i, i] = g[j, j] = np.cos(a)
        g[i, j], g[j, i] = -np.sin(a), np.sin(a)
        rot = rot @ g
    matrix = np.diag(1 / sp) @ rot @ np.diag(sp) / rng.uniform(*_SCALE)
    centre = (shape - 1) / 2.0
    offset = centre - matrix @ centre + rng.uniform(-_SHIFT_MM, _SHIFT_MM, 3) / sp
    grid = np.indices(tuple(shape), dtype=np.float32)
    base = np.tensordot(matrix.astype(np.float32), grid, axes=1) \
        + offset.astype(np.float32)[:, None, None, None]
    del grid
    magnitude = _ELASTIC_MM / float(sp.mean())
    coords = elastic_coordinates(shape, magnitude, max(2, int(_ELASTIC_GRID_MM / sp.mean())),
                                 rng, base=base)
    image = ndimage.map_coordinates(template.image.array.astype(np.float32), coords, order=1,
                                    mode="constant", cval=0.0)
    brain = ndimage.map_coordinates(template.brain.astype(np.float32), coords, order=1,
                                    mode="constant", cval=0.0) > 0.5
    image[~brain] = 0.0
    return image, brain


def _ellipsoid_distance(shape_box: tuple[int, ...], origin: np.ndarray, centre: np.ndarray,
                        radii_vox: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Normalised ellipsoid radius (1 on the surface) over a box starting at `origin`."""
    idx = np.indices(shape_box, dtype=np.float32)
    rel = idx + (origin - centre).astype(np.float32)[:, None, None, None]
    local = np.tensordot(rot.T.astype(np.float32), rel, axes=1)
    return np.sqrt(sum((local[a] / radii_vox[a]) ** 2 for a in range(3)))


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def _add_lesions(image: np.ndarray, brain: np.ndarray, spacing: np.ndarray,
                 affine: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    label = np.zeros(image.shape, np.uint8)
    values = image[brain]
    median, p95 = float(np.median(values)), float(np.percentile(values, 95))
    depth = ndimage.distance_transform_edt(brain, sampling=spacing)
    lesions = []
    for _ in range(int(rng.integers(1, 6))):
        radii = rng.uniform(*_RADIUS_MM, 3)
        # The centre lies deep enough that most of the lesion is inside the brain.
        deep = np.argwhere(depth >= min(radii.max(), 0.6 * depth.max()))
        centre = deep[int(rng.integers(len(deep)))].astype(np.float64)
        kind = "blob" if rng.random() < 0.5 else "ellipsoid"
        parts = [(centre, radii)]
        if kind == "blob":
            for _ in range(int(rng.integers(1, 4))):
                shift = rng.normal(0.0, 0.5, 3) * radii / spacing
                parts.append((centre + shift, radii * rng.uniform(0.5, 0.9, 3)))
        hyper = rng.random() < 0.5
        factor = rng.uniform(1.15, 1.5) if hyper else rng.uniform(0.25, 0.55)
        target = factor * (p95 if hyper else median)
        reach = (radii.max() * 2.0 / spacing).astype(int) + 2
        lo = np.maximum(centre.astype(int) - reach, 0)
        hi = np.minimum(centre.astype(int) + reach + 1, image.shape)
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        dist = np.full(tuple(hi - lo), np.inf, np.float32)
        for c, r in parts:
            dist = np.minimum(dist, _ellipsoid_distance(tuple(hi - lo), lo, c, r / spacing,
                                                        _random_rotation(rng)))
        inside = brain[box]
        weight = np.clip((1.0 - dist) / 0.3 + 0.5, 0.0, 1.0) * inside   # soft edge
        image[box] = (1.0 - weight) * image[box] + weight * target
        label[box] |= ((dist < 1.0) & inside).astype(np.uint8)
        lesions.append({"kind": kind, "centre_mm": (affine @ np.append(centre, 1.0))[:3].round(2)
                        .tolist(), "radii_mm": radii.round(2).tolist(),
                        "contrast": round(float(factor), 3), "hyperintense": bool(hyper)})
    return label, lesions


def _bias_field(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """exp of a random quadratic polynomial over [-1, 1]^3."""
    x, y, z = (np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape)
    x, y, z = x[:, None, None], y[None, :, None], z[None, None, :]
    terms = [x, y, z, x * x, y * y, z * z, x * y, x * z, y * z]
    c = rng.normal(0.0, _BIAS_STD, len(terms)).astype(np.float32)
    log_field = sum(ci * t for ci, t in zip(c, terms))
    return np.exp(np.broadcast_to(log_field, shape)).astype(np.float32)


def make_lesion_case(index: int, seed: int = 0,
                     template: TissueTemplate | None = None,
                     spacing: float | tuple[float, float, float] | None = 2.0) -> LesionCase:
    """Case `index` of the synthetic lesion set `seed`, on `template`'s grid (default: the MNI
    template at `spacing` mm, `load_tissue_template(spacing)`)."""
    template = template or load_tissue_template(spacing)
    rng = np.random.default_rng([int(seed), int(index)])
    image, brain = _deform(template, rng)
    sp = np.asarray(template.spacing)
    label, lesions = _add_lesions(image, brain, sp, template.image.affine, rng)
    image *= _bias_field(image.shape, rng)
    sigma = rng.uniform(*_NOISE) * float(np.percentile(image[brain], 99))
    noisy = np.sqrt((image + rng.normal(0.0, sigma, image.shape).astype(np.float32)) ** 2
                    + rng.normal(0.0, sigma, image.shape).astype(np.float32) ** 2)
    noisy[~brain] = 0.0
    meta = {"description": f"Lantern synthetic lesions, seed {seed}, case {index}"}
    return LesionCase(template.image.with_array(noisy.astype(np.float32), **meta),
                      template.image.with_array(label), lesions)


def make_lesion_cases(n: int, out_dir: str | os.PathLike, seed: int = 0,
                      spacing: float | tuple[float, float, float] | None = 2.0, *,
                      template: TissueTemplate | None = None, first: int = 0,
                      dicom: bool = True) -> Path:
    """Write cases first..first+n-1 into `out_dir` in the MSD layout, and return the path of
    its `dataset.json` (written last):
        imagesTr/lesion_XXX.nii.gz, labelsTr/lesion_XXX.nii.gz (uint8: 0 / 1 lesion),
        dicom/lesion_XXX/ (with `dicom`: the image as a DICOM MR series),
        dataset.json (MSD keys: labels, modality, numTraining, training [{image, label,
        dicom}]; plus the seed, spacing and each case's lesions)."""
    if n < 1:
        raise ValueError(f"make_lesion_cases needs n >= 1, got {n}")
    template = template or load_tissue_template(spacing)
    out = Path(out_dir)
    width = max(3, len(str(first + n - 1)))
    training, lesions = [], {}
    for index in range(first, first + n):
        name = f"lesion_{index:0{width}d}"
        case = make_lesion_case(index, seed, template)
        entry = {"image": f"./imagesTr/{name}.nii.gz", "label": f"./labelsTr/{name}.nii.gz"}
        if dicom:
            write_series(case.image, out / "dicom" / name, patient_id=name,
                         series_description=case.image.meta["description"])
            entry["dicom"] = f"./dicom/{name}"
        write_nifti(case.image, out / "imagesTr" / f"{name}.nii.gz")
        write_label_nifti(case.label, case.image, out / "labelsTr" / f"{name}.nii.gz")
        training.append(entry)
        lesions[name] = case.lesions
    info = {"name": "LanternLesions",
            "description": "Synthetic lesions in the MNI ICBM152 2009a T1 "
                           "(datasets.mri.lesions)",
            "tensorImageSize": "3D", "modality": {"0": "T1"},
            "labels": {str(k): v for k, v in LESION_LABELS.items()},
            "numTraining": n, "numTest": 0, "training": training, "test": [],
            "seed": int(seed), "spacing_mm": list(template.spacing), "lesions": lesions}
    text = json.dumps(info, indent=1)
    return atomic_write(out / "dataset.json", lambda tmp: tmp.write_text(text))
