"""Writing a label volume out: as DICOM SEG that references its source series (highdicom),
as NIfTI, and as PNG overlays of a few slices for a quick look."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pydicom

from ._atomic import atomic_write
from .dicom import DicomSeriesError, _plan_for
from .nifti import write_nifti
from .volume import Volume

__all__ = ["write_dicom_seg", "write_label_nifti", "write_overlays"]

# Distinct, colour-blind-friendly colours for labels 1, 2, ... (cycled).
_PALETTE = np.array([[230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66],
                     [0, 114, 178], [213, 94, 0], [204, 121, 167], [255, 255, 255]], np.uint8)


def _label_table(label_names: Sequence[str] | Mapping[int, str]) -> dict[int, str]:
    if isinstance(label_names, Mapping):
        table = {int(k): str(v) for k, v in label_names.items() if int(k) != 0}
    else:
        table = {i + 1: str(n) for i, n in enumerate(label_names)}
    if not table:
        raise ValueError("label_names names no label (label 0 is the background)")
    return table


def _property_codes(name: str):
    """SNOMED category and type for a segment name; unknown names become generic tissue."""
    from pydicom.sr.codedict import codes
    key = "".join(w.capitalize() for w in name.replace("grey", "gray").replace("-", " ")
                  .replace("_", " ").split())
    try:
        seg_type = getattr(codes.SCT, key)
    except (AttributeError, ValueError):
        seg_type = codes.SCT.Tissue
    abnormal = key in ("Lesion", "Tumor", "Neoplasm", "Mass")
    category = codes.SCT.MorphologicallyAbnormalStructure if abnormal else codes.SCT.Tissue
    return category, seg_type


def write_dicom_seg(labels: np.ndarray | Volume,
                    source_files: str | os.PathLike | Sequence[str | os.PathLike],
                    path: str | os.PathLike,
                    label_names: Sequence[str] | Mapping[int, str], *,
                    series_uid: str | None = None,
                    series_description: str = "Lantern segmentation",
                    series_number: int = 300,
                    algorithm_name: str = "lantern",
                    algorithm_version: str = "0.1") -> Path:
    """Write `labels` (integer label map in the array order `read_series(source_files)`
    gives) as a BINARY DICOM SEG with one named segment per label, referencing the source
    instances frame by frame. `label_names` is a list (labels 1, 2, ...) or {value: name}.
    `source_files` is a folder, DICOMDIR or list of files (e.g. `volume.meta["slice_files"]`)."""
    import highdicom as hd

    array = labels.array if isinstance(labels, Volume) else np.asarray(labels)
    plan, where = _plan_for(source_files, series_uid)
    first = plan.slices[0]
    expect = (len(plan.slices), first.rows, first.cols)
    if array.shape != expect:
        raise ValueError(f"label volume of shape {array.shape} does not match the source "
                         f"series in {where} ({expect} slices x rows x columns)")
    if not np.issubdtype(array.dtype, np.integer) and array.dtype != np.bool_:
        if not np.all(array == np.round(array)):
            raise ValueError("labels must be integer label values, got fractional values")
    array = array.astype(np.int64)
    table = _label_table(label_names)
    present = {int(v) for v in np.unique(array)} - {0}
    unnamed = sorted(present - set(table))
    if unnamed:
        raise ValueError(f"label value(s) {unnamed} have no name in label_names "
                         f"(named: {sorted(table)})")
    if array.min() < 0:
        raise ValueError(f"negative label value {int(array.min())}")
    # Segment numbers follow label_names order; the LUT maps label values to them.
    values = sorted(table)
    lut = np.zeros(max(max(values), int(array.max())) + 1, dtype=np.uint16)
    for number, value in enumerate(values, start=1):
        lut[value] = number
    segnums = lut[array]
    segnums = segnums.astype(np.uint8 if len(values) < 256 else np.uint16)

    files = list(dict.fromkeys(s.path for s in plan.slices))
    multi = [s.frame for s in plan.slices if s.frame is not None]
    if multi and len(files) > 1:
        raise DicomSeriesError(f"{where}: a SEG over several multi-frame source files is not "
                               "supported")
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    if multi:   # one enhanced file: SEG frames follow the source's own frame order
        frame_order = np.argsort([s.frame for s in plan.slices])
        segnums = segnums[frame_order]

    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name, version=algorithm_version,
        family=pydicom.sr.codedict.codes.cid7162.ArtificialIntelligence)
    descriptions = []
    for number, value in enumerate(values, start=1):
        category, seg_type = _property_codes(table[value])
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=table[value][:64],
            segmented_property_category=category, segmented_property_type=seg_type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm))
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=segnums,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(),
        series_number=series_number, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="Lantern", manufacturer_model_name=algorithm_name,
        software_versions=algorithm_version, device_serial_number="0",
        series_description=series_description)
    return atomic_write(path, lambda tmp: seg.save_as(tmp))


def write_label_nifti(labels: np.ndarray | Volume, reference: Volume,
                      path: str | os.PathLike) -> Path:
    """Write a label map on `reference`'s voxel grid as NIfTI (uint8 or uint16)."""
    array = labels.array if isinstance(labels, Volume) else np.asarray(labels)
    if array.size and (array.min() < 0 or array.max() > 65535):
        raise ValueError(f"label values {array.min()}..{array.max()} outside 0..65535")
    dtype = np.uint8 if not array.size or array.max() < 256 else np.uint16
    return write_nifti(reference.with_array(array.astype(dtype)), path)


def _grey(volume: np.ndarray) -> np.ndarray:
    finite = volume[np.isfinite(volume)]
    lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip((np.nan_to_num(volume) - lo) * scale, 0, 255).astype(np.uint8)


def _edges(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def write_overlays(volume: Volume, labels: np.ndarray | Volume, folder: str | os.PathLike,
                   n: int = 6, *, alpha: float = 0.4, min_size: int = 256,
                   prefix: str = "overlay", reference: np.ndarray | None = None) -> list[Path]:
    """Write PNGs of `n` slices (along array axis 0, spread over the labelled ones) with the
    labels blended in colour and outlined, scaled to square pixels and at least `min_size`
    pixels high; with `reference` (the ground truth on the same grid), its foreground is
    outlined in white, so misses and false positives show. Returns the paths."""
    from PIL import Image   # imported here so reading volumes never needs Pillow

    array = labels.array if isinstance(labels, Volume) else np.asarray(labels)
    if array.shape != volume.shape:
        raise ValueError(f"labels of shape {array.shape} do not match the volume's "
                         f"{volume.shape}")
    if reference is not None and np.shape(reference) != volume.shape:
        raise ValueError(f"reference of shape {np.shape(reference)} does not match the "
                         f"volume's {volume.shape}")
    folder = Path(folder)
    shown = array if reference is None else (array != 0) | (np.asarray(reference) != 0)
    labelled = np.flatnonzero(shown.reshape(array.shape[0], -1).any(axis=1))
    pool = labelled if labelled.size else np.arange(array.shape[0])
    picks = sorted({int(pool[i]) for i in np.linspace(0, pool.size - 1, min(n, pool.size))
                    .round().astype(int)})
    grey = _grey(np.asarray(volume.array, dtype=np.float32))
    _, row_mm, col_mm = volume.spacing
    unit = min(row_mm, col_mm)
    rows, cols = array.shape[1:]
    height, width = rows * row_mm / unit, cols * col_mm / unit
    zoom = max(1.0, min_size / height)
    size = (max(1, round(width * zoom)), max(1, round(height * zoom)))
    out = []
    for k in picks:
        rgb = np.repeat(grey[k][..., None], 3, axis=2).astype(np.float32)
        lab = array[k]
        for value in np.unique(lab):
            if value == 0:
                continue
            colour = _PALETTE[(int(value) - 1) % len(_PALETTE)].astype(np.float32)
            mask = lab == value
            rgb[mask] = (1 - alpha) * rgb[mask] + alpha * colour
            rgb[_edges(mask)] = colour
        if reference is not None:
            rgb[_edges(np.asarray(reference[k]) != 0)] = 255.0
        img = Image.fromarray(rgb.round().astype(np.uint8), "RGB").resize(size, Image.NEAREST)
        path = folder / f"{prefix}_{k:04d}.png"
        out.append(atomic_write(path, lambda tmp, img=img: img.save(tmp, format="PNG")))
    return out
