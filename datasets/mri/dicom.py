"""DICOM series as volumes: find the series in a folder or DICOMDIR, read one with correct
geometry, and write a volume back as a standard MR (or CT) image series.

Geometry follows the standard, not file order or InstanceNumber: slices are sorted by the
projection of ImagePositionPatient on the slice normal (row x column of
ImageOrientationPatient), and the slice spacing comes from those positions, never from
SliceThickness. The returned volume's slices therefore always run along +normal; an input
stored in the opposite order comes back re-indexed (same voxels in patient space). Gaps,
duplicate positions, sheared stacks, mixed orientations and mixed sizes are errors.
"""
from __future__ import annotations

import os
import warnings
from datetime import datetime
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from ._atomic import atomic_write
from .volume import Volume, orientation_label

__all__ = ["SeriesInfo", "DicomSeriesError", "list_series", "read_series", "write_series"]


class DicomSeriesError(ValueError):
    """A DICOM input that cannot become a volume; the message is one line naming the file or
    folder and the problem."""


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found under a path. `dims` and `spacing` follow the volume's axis
    order (slices, rows, columns); `problem` is empty when the series can be read."""

    uid: str
    description: str
    modality: str
    number: int | None
    n_files: int
    dims: tuple[int, int, int]
    spacing: tuple[float, float, float]
    orientation: str
    problem: str = ""


# Objects that carry pixels but are not an image stack to read as a volume.
_NOT_VOLUME_SOP = {
    pydicom.uid.SegmentationStorage: "a segmentation (DICOM SEG)",
    pydicom.uid.RTDoseStorage: "an RT dose grid",
    pydicom.uid.MediaStorageDirectoryStorage: "a DICOMDIR",
}
# Pip packages that give pydicom a decoder, by transfer syntax.
_LIBJPEG = "pylibjpeg pylibjpeg-libjpeg"
_OPENJPEG = "pylibjpeg pylibjpeg-openjpeg"
_DECODER_PACKAGES = {
    pydicom.uid.JPEGBaseline8Bit: _LIBJPEG + " (or pillow)",
    pydicom.uid.JPEGExtended12Bit: _LIBJPEG,
    pydicom.uid.JPEGLossless: _LIBJPEG,
    pydicom.uid.JPEGLosslessSV1: _LIBJPEG,
    pydicom.uid.JPEGLSLossless: _LIBJPEG + " (or pyjpegls)",
    pydicom.uid.JPEGLSNearLossless: _LIBJPEG + " (or pyjpegls)",
    pydicom.uid.JPEG2000Lossless: _OPENJPEG,
    pydicom.uid.JPEG2000: _OPENJPEG,
    pydicom.uid.HTJ2KLossless: _OPENJPEG,
    pydicom.uid.HTJ2KLosslessRPCL: _OPENJPEG,
    pydicom.uid.HTJ2K: _OPENJPEG,
    pydicom.uid.RLELossless: "pylibjpeg pylibjpeg-rle",
}
_ORIENTATION_ATOL = 1e-4     # direction cosines are stored to about 6 decimals
_MAX_LOCALIZER_FILES = 3     # a minority orientation this small is a scout, not a stack


@dataclass
class _Slice:
    """One 2D plane of a series: a single-frame file, or one frame of a multi-frame file."""

    path: Path
    frame: int | None
    position: np.ndarray
    row_dir: np.ndarray
    col_dir: np.ndarray
    pixel_spacing: tuple[float, float]     # (between rows, between columns), as in PixelSpacing
    rows: int
    cols: int
    slope: float
    intercept: float
    thickness: float | None
    sop_uid: str


@dataclass
class _Series:
    uid: str
    header: Dataset
    slices: list[_Slice] = field(default_factory=list)
    files: set[Path] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass
class _Scan:
    series: dict[str, _Series]
    broken: list[str]          # files that claim to be images but cannot be parsed
    not_images: list[str]      # DICOM objects without an image to read
    not_dicom: int


@dataclass
class _Plan:
    series: _Series
    slices: list[_Slice]       # in array order
    spacing: tuple[float, float, float]
    origin: np.ndarray
    direction: np.ndarray
    skipped: list[str]


# --------------------------------------------------------------------------------- discovery

def _files_under(path: Path) -> tuple[list[Path], bool]:
    """The files to look at, and whether they came from a DICOMDIR."""
    if path.is_dir():
        found = []
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [Path(root) / n for n in sorted(names) if not n.startswith(".")]
        return found, False
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    try:
        file_meta = read_file_meta_info(path)
    except Exception:          # not DICOM, or unreadable: the scan reports it
        return [path], False
    if file_meta.get("MediaStorageSOPClassUID") != pydicom.uid.MediaStorageDirectoryStorage:
        return [path], False
    ds = pydicom.dcmread(path)
    files = []
    for rec in ds.get("DirectoryRecordSequence", []):
        ref = rec.get("ReferencedFileID")
        if ref is None:
            continue
        parts = [ref] if isinstance(ref, str) else list(ref)
        files.append(path.parent.joinpath(*parts))
    return files, True


def _dcmread(path: Path, **kwargs: Any) -> Dataset:
    """pydicom.dcmread, also accepting old files that start with a bare data set (no 128-byte
    preamble and 'DICM'); anything else that is not DICOM raises InvalidDicomError."""
    try:
        return pydicom.dcmread(path, **kwargs)
    except InvalidDicomError:
        with open(path, "rb") as fh:
            head = fh.read(2)
        if head in (b"\x08\x00", b"\x02\x00"):   # group 0008 or 0002, little endian
            return pydicom.dcmread(path, force=True, **kwargs)
        raise


def _num(x: Any, default: float | None = None) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return default


def _group_attr(frame_group: Dataset | None, shared: Dataset | None, seq: str,
                attr: str) -> Any:
    """An attribute of a functional group macro, per-frame first, then shared."""
    for group in (frame_group, shared):
        if group is not None and seq in group and len(group[seq].value):
            item = group[seq].value[0]
            if attr in item:
                return item[attr].value
    return None


def _make_slice(path: Path, frame: int | None, ds: Dataset, ipp: Any, iop: Any, spacing: Any,
                slope: Any, intercept: Any, thickness: Any) -> _Slice | str:
    where = f"{path}" if frame is None else f"{path} frame {frame + 1}"
    if ipp is None or iop is None:
        return (f"{where}: no ImagePositionPatient/ImageOrientationPatient "
                "(not a cross-sectional image)")
    if spacing is None:
        return f"{where}: no PixelSpacing"
    try:
        ipp = np.array([float(v) for v in ipp], dtype=np.float64)
        iop = np.array([float(v) for v in iop], dtype=np.float64)
        ps = (float(spacing[0]), float(spacing[1]))
    except (TypeError, ValueError, IndexError):
        return f"{where}: unreadable ImagePositionPatient/ImageOrientationPatient/PixelSpacing"
    if ipp.shape != (3,) or iop.shape != (6,) or min(ps) <= 0:
        return f"{where}: malformed ImagePositionPatient/ImageOrientationPatient/PixelSpacing"
    row, col = iop[:3], iop[3:]
    if (abs(np.linalg.norm(row) - 1) > 1e-2 or abs(np.linalg.norm(col) - 1) > 1e-2
            or abs(row @ col) > 1e-2):
        return f"{where}: ImageOrientationPatient {iop.tolist()} is not two orthogonal unit vectors"
    return _Slice(path, frame, ipp, row / np.linalg.norm(row), col / np.linalg.norm(col), ps,
                  int(ds.Rows), int(ds.Columns), _num(slope, 1.0), _num(intercept, 0.0),
                  _num(thickness), str(ds.get("SOPInstanceUID", "")))


def _slices_of(path: Path, ds: Dataset) -> list[_Slice | str]:
    """The planes of one image file; a string where a plane's geometry is unusable."""
    n_frames = int(_num(ds.get("NumberOfFrames"), 1) or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None:
        if n_frames > 1:
            return [f"{path}: multi-frame image ({n_frames} frames) without per-frame positions "
                    "(PerFrameFunctionalGroupsSequence)"]
        return [_make_slice(path, None, ds, ds.get("ImagePositionPatient"),
                            ds.get("ImageOrientationPatient"), ds.get("PixelSpacing"),
                            ds.get("RescaleSlope"), ds.get("RescaleIntercept"),
                            ds.get("SliceThickness"))]
    if len(per_frame) != n_frames:
        return [f"{path}: {len(per_frame)} per-frame functional groups for {n_frames} frames "
                "(truncated or corrupt)"]
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    out: list[_Slice | str] = []
    for f, fg in enumerate(per_frame):
        out.append(_make_slice(
            path, f, ds,
            _group_attr(fg, shared, "PlanePositionSequence", "ImagePositionPatient"),
            _group_attr(fg, shared, "PlaneOrientationSequence", "ImageOrientationPatient"),
            _group_attr(fg, shared, "PixelMeasuresSequence", "PixelSpacing"),
            _group_attr(fg, shared, "PixelValueTransformationSequence", "RescaleSlope"),
            _group_attr(fg, shared, "PixelValueTransformationSequence", "RescaleIntercept"),
            _group_attr(fg, shared, "PixelMeasuresSequence", "SliceThickness")))
    return out


def _sop_name(uid: Any) -> str:
    return UID(str(uid)).name if uid else "unknown SOP class"


def _scan(files: Sequence[Path]) -> _Scan:
    scan = _Scan({}, [], [], 0)
    for p in files:
        try:
            ds = _dcmread(p, stop_before_pixels=True)
        except InvalidDicomError:
            scan.not_dicom += 1
            continue
        except OSError as e:
            scan.broken.append(f"{p}: cannot read file ({e.strerror or e})")
            continue
        except Exception as e:   # a DICOM file pydicom cannot parse: truncated or corrupt
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            scan.broken.append(f"{p}: truncated or corrupt DICOM file ({first})")
            continue
        sop = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
        if sop in _NOT_VOLUME_SOP:
            if sop != pydicom.uid.MediaStorageDirectoryStorage:
                scan.not_images.append(f"{p}: {_NOT_VOLUME_SOP[sop]}, not an image series")
            continue
        if "Rows" not in ds or "Columns" not in ds:
            if "Image Storage" in _sop_name(sop):   # an image class whose header stops early
                scan.broken.append(
                    f"{p}: truncated or incomplete file ({_sop_name(sop)} without Rows/Columns)")
            else:
                scan.not_images.append(f"{p}: non-image DICOM ({_sop_name(sop)}, no Pixel Data)")
            continue
        uid = str(ds.get("SeriesInstanceUID", ""))
        if not uid:
            scan.broken.append(f"{p}: image without SeriesInstanceUID")
            continue
        series = scan.series.setdefault(uid, _Series(uid, ds))
        image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
        if "LOCALIZER" in image_type:
            series.skipped.append(f"{p}: localizer")
            continue
        if int(_num(ds.get("SamplesPerPixel"), 1) or 1) != 1:
            series.problems.append(f"{p}: colour image (SamplesPerPixel {ds.SamplesPerPixel}) "
                                   "is not a grey-level volume")
            continue
        series.files.add(p)
        for s in _slices_of(p, ds):
            if isinstance(s, str):
                series.problems.append(s)
            else:
                series.slices.append(s)
    # A series made only of localizers is not offered as an image series.
    scan.series = {u: s for u, s in scan.series.items() if s.files or s.problems}
    return scan


# ---------------------------------------------------------------------------------- geometry

def _split_orientations(series: _Series, where: Path) -> tuple[list[_Slice], list[str]]:
    """Keep the majority orientation; a few planes at other orientations are localizers,
    anything more is a mixed series."""
    groups: list[list[_Slice]] = []
    for s in series.slices:
        for g in groups:
            if (np.allclose(g[0].row_dir, s.row_dir, atol=_ORIENTATION_ATOL)
                    and np.allclose(g[0].col_dir, s.col_dir, atol=_ORIENTATION_ATOL)):
                g.append(s)
                break
        else:
            groups.append([s])
    groups.sort(key=len, reverse=True)
    main, others = groups[0], groups[1:]
    n = len(series.slices)
    if others and (len(main) * 2 <= n or any(len(g) > _MAX_LOCALIZER_FILES for g in others)):
        parts = ", ".join(
            f"{len(g)} {orientation_label(np.cross(g[0].row_dir, g[0].col_dir))}"
            for g in groups[:4])
        raise DicomSeriesError(
            f"{where}: series {series.uid} mixes {len(groups)} orientations ({parts}"
            f"{', ...' if len(groups) > 4 else ''} planes); it is not one stack")
    skipped = [f"{s.path}: orientation differs from the series (localizer)"
               for g in others for s in g]
    return main, skipped


def _plan(series: _Series, where: Path) -> _Plan:
    """Sort and check a series' planes; raise DicomSeriesError naming the problem."""
    if series.problems:
        more = f" (and {len(series.problems) - 1} more)" if len(series.problems) > 1 else ""
        raise DicomSeriesError(series.problems[0] + more)
    if not series.slices:
        raise DicomSeriesError(f"{where}: series {series.uid} has no image planes")
    slices, skipped = _split_orientations(series, where)
    sizes = Counter((s.rows, s.cols) for s in slices)
    if len(sizes) > 1:
        (r, c), n = sizes.most_common(1)[0]
        odd = next(s for s in slices if (s.rows, s.cols) != (r, c))
        raise DicomSeriesError(
            f"{odd.path}: {odd.rows}x{odd.cols} image in series {series.uid} whose other "
            f"{n} planes are {r}x{c} (inconsistent sizes)")
    ps0 = np.array(slices[0].pixel_spacing)
    odd_ps = next((s for s in slices if not np.allclose(s.pixel_spacing, ps0, rtol=1e-3)), None)
    if odd_ps is not None:
        raise DicomSeriesError(
            f"{odd_ps.path}: PixelSpacing {list(odd_ps.pixel_spacing)} differs from the "
            f"series' {ps0.tolist()} (inconsistent pixel spacing)")

    row, col = slices[0].row_dir, slices[0].col_dir
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    order = sorted(range(len(slices)), key=lambda i: float(slices[i].position @ normal))
    slices = [slices[i] for i in order]
    pos = np.array([s.position for s in slices])
    depth = pos @ normal
    tol = max(1e-3, 1e-3 * float(min(ps0)))

    # Shear: every plane must sit on the normal through the first one.
    inplane = (pos - pos[0]) - np.outer(depth - depth[0], normal)
    shift = float(np.abs(inplane).max()) if len(slices) > 1 else 0.0
    if shift > max(1e-2, 0.05 * float(min(ps0))):
        raise DicomSeriesError(
            f"{where}: slice positions of series {series.uid} drift {shift:.3g} mm within "
            "the image plane (tilted or irregular stack); cannot form a volume")

    if len(slices) == 1:
        s0 = slices[0]
        ds = series.header
        step = (_num(ds.get("SpacingBetweenSlices")) or s0.thickness or 1.0)
    else:
        diffs = np.diff(depth)
        dup = np.flatnonzero(diffs < tol)
        if dup.size:
            a, b = slices[dup[0]], slices[dup[0] + 1]
            raise DicomSeriesError(
                f"{where}: {dup.size} duplicate slice position(s) in series {series.uid}, "
                f"e.g. {a.path.name} and {b.path.name} at {depth[dup[0]]:.3f} mm along the "
                "normal (several stacks: echoes, time points?)")
        # The regular step: the smallest spacings, if they are at least half the steps (a gap
        # is a multiple of it); otherwise the median step.
        small = diffs[diffs <= 1.5 * diffs.min()]
        base = float(np.median(small if 2 * small.size >= diffs.size else diffs))
        gaps, irregular = [], []
        for i, d in enumerate(diffs):
            if abs(d - base) <= max(tol, 0.01 * base):
                continue
            m = d / base
            if m > 1.5 and abs(m - round(m)) < 0.1:
                gaps.append(f"{round(m) - 1} missing between {slices[i].path.name} "
                            f"({depth[i]:.2f} mm) and {slices[i + 1].path.name} "
                            f"({depth[i + 1]:.2f} mm)")
            else:
                irregular.append(f"{d:.3f} mm after {slices[i].path.name}")
        if gaps:
            raise DicomSeriesError(
                f"{where}: missing slices in series {series.uid} (spacing {base:.3f} mm "
                f"along the normal): {'; '.join(gaps[:5])}{'; ...' if len(gaps) > 5 else ''}")
        if irregular:
            raise DicomSeriesError(
                f"{where}: non-uniform slice spacing in series {series.uid} (expected "
                f"{base:.3f} mm, got {', '.join(irregular[:3])})")
        step = float(depth[-1] - depth[0]) / (len(slices) - 1)
    direction = np.stack([normal, col, row], axis=1)
    spacing = (float(step), float(ps0[0]), float(ps0[1]))
    return _Plan(series, slices, spacing, slices[0].position.copy(), direction,
                 series.skipped + skipped)


# ------------------------------------------------------------------------------------ public

def list_series(path: str | os.PathLike) -> list[SeriesInfo]:
    """The image series under `path` (a folder, searched recursively; a DICOMDIR; or one
    file), ordered by series number. Localizers and non-image objects are left out; a series
    that cannot become a volume is listed with its `problem`. Unparseable files are reported
    as warnings."""
    path = Path(path)
    scan = _scan(_files_under(path)[0])
    if scan.broken:
        more = f" (and {len(scan.broken) - 1} more broken files)" if len(scan.broken) > 1 else ""
        warnings.warn(scan.broken[0] + more, stacklevel=2)
    infos = []
    for s in scan.series.values():
        h = s.header
        problem, dims, spacing, label = "", (0, 0, 0), (0.0, 0.0, 0.0), "unknown"
        try:
            plan = _plan(s, path)
            first = plan.slices[0]
            dims = (len(plan.slices), first.rows, first.cols)
            spacing = plan.spacing
            label = orientation_label(plan.direction[:, 0])
        except DicomSeriesError as e:
            problem = str(e)
            if s.slices:
                first = s.slices[0]
                dims = (len(s.slices), first.rows, first.cols)
                label = orientation_label(np.cross(first.row_dir, first.col_dir))
        number = _num(h.get("SeriesNumber"))
        infos.append(SeriesInfo(s.uid, str(h.get("SeriesDescription", "")),
                                str(h.get("Modality", "")),
                                None if number is None else int(number), len(s.files), dims,
                                spacing, label, problem))
    infos.sort(key=lambda i: (i.number if i.number is not None else 1 << 30, i.uid))
    return infos


def _describe(s: _Series) -> str:
    h = s.header
    desc = str(h.get("SeriesDescription", "")).strip()
    num = h.get("SeriesNumber")
    return (f"#{num} " if num not in (None, "") else "") + s.uid + \
        (f" '{desc}'" if desc else "") + f" ({len(s.files)} files)"


def _choose(scan: _Scan, path: Path, series_uid: str | int | None) -> _Series:
    if scan.broken:   # a truncated file is an error even if it might belong elsewhere
        raise DicomSeriesError(scan.broken[0])
    if not scan.series:
        if scan.not_images and not scan.broken and path.is_file():
            raise DicomSeriesError(scan.not_images[0])
        what = scan.broken or scan.not_images
        detail = f": {what[0]}" if what else ""
        raise DicomSeriesError(
            f"{path}: no DICOM image series found ({scan.not_dicom} non-DICOM files, "
            f"{len(scan.not_images)} non-image objects, {len(scan.broken)} broken files){detail}")
    candidates = list(scan.series.values())
    if series_uid is None:
        if len(candidates) > 1:
            listing = "; ".join(_describe(s) for s in candidates)
            raise DicomSeriesError(
                f"{path}: {len(candidates)} image series found, choose one with series_uid "
                f"(--series UID or number): {listing}")
        chosen = candidates[0]
    else:
        key = str(series_uid)
        chosen = scan.series.get(key)
        if chosen is None:
            by_number = [s for s in candidates if str(s.header.get("SeriesNumber", "")) == key]
            if len(by_number) != 1:
                listing = "; ".join(_describe(s) for s in candidates)
                raise DicomSeriesError(
                    f"{path}: no series {key!r} (UID or unique series number); found: {listing}")
            chosen = by_number[0]
    return chosen


def _check_decoder(path: Path, ds: Dataset) -> bool:
    """Raise unless pydicom can decode this file's pixels; True for a compressed syntax."""
    ts = UID(str(ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian)))
    if not ts.is_transfer_syntax:
        raise DicomSeriesError(f"{path}: unknown transfer syntax {ts}; pydicom "
                               f"{pydicom.__version__} cannot decode it")
    if not ts.is_encapsulated:
        return False
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise DicomSeriesError(
            f"{path}: pydicom {pydicom.__version__} has no decoder for {ts.name} ({ts}); "
            "convert the series to an uncompressed transfer syntax first") from None
    if not decoder.is_available:
        pkgs = _DECODER_PACKAGES.get(ts, "pylibjpeg and its plugins")
        raise DicomSeriesError(
            f"{path}: no decoder installed for {ts.name} ({ts}); install {pkgs} "
            f"(pip install {pkgs.split(' (')[0]})")
    return True


def _expected_native_bytes(ds: Dataset) -> int:
    n = int(ds.Rows) * int(ds.Columns) * int(_num(ds.get("NumberOfFrames"), 1) or 1)
    bits = int(ds.get("BitsAllocated", 16))
    return (n * bits + 7) // 8


def _decode(path: Path) -> np.ndarray:
    """All frames of one file as (frames, rows, cols)."""
    try:
        ds = _dcmread(path)
    except Exception as e:
        raise DicomSeriesError(f"{path}: truncated or corrupt DICOM file ({e})") from None
    keys = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
    if not any(k in ds for k in keys):
        raise DicomSeriesError(f"{path}: truncated file (no Pixel Data)")
    compressed = _check_decoder(path, ds)
    if "PixelData" in ds and not compressed:
        have, need = len(ds.PixelData), _expected_native_bytes(ds)
        if have < need:
            raise DicomSeriesError(
                f"{path}: truncated file (Pixel Data has {have} of {need} bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # pydicom warns about harmless trailing padding
            arr = ds.pixel_array
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DicomSeriesError(
            f"{path}: cannot decode pixel data ({ds.file_meta.TransferSyntaxUID.name}): "
            f"{first}") from None
    return arr.reshape((-1,) + arr.shape[-2:])


def _volume_from_plan(plan: _Plan, source: Path) -> Volume:
    first = plan.slices[0]
    out = np.empty((len(plan.slices), first.rows, first.cols), dtype=np.float32)
    by_file: dict[Path, list[int]] = {}
    for k, s in enumerate(plan.slices):
        by_file.setdefault(s.path, []).append(k)
    for path, ks in by_file.items():
        frames = _decode(path)
        for k in ks:
            s = plan.slices[k]
            f = 0 if s.frame is None else s.frame
            if f >= frames.shape[0] or frames.shape[1:] != (s.rows, s.cols):
                raise DicomSeriesError(
                    f"{path}: pixel data holds {frames.shape[0]} frame(s) of "
                    f"{frames.shape[1]}x{frames.shape[2]}, header says frame {f + 1} of "
                    f"{s.rows}x{s.cols} (truncated or corrupt)")
            plane = frames[f].astype(np.float64)
            if s.slope != 1.0 or s.intercept != 0.0:
                plane = plane * s.slope + s.intercept
            out[k] = plane
    h = plan.series.header
    meta = {
        "source": str(source), "format": "dicom",
        "series_uid": plan.series.uid,
        "series_number": (None if _num(h.get("SeriesNumber")) is None
                          else int(_num(h.get("SeriesNumber")))),
        "series_description": str(h.get("SeriesDescription", "")),
        "modality": str(h.get("Modality", "")),
        "study_uid": str(h.get("StudyInstanceUID", "")),
        "frame_of_reference_uid": str(h.get("FrameOfReferenceUID", "")),
        "patient_id": str(h.get("PatientID", "")),
        "slice_files": [str(s.path) for s in plan.slices],
        "slice_frames": [s.frame for s in plan.slices],
        "sop_instance_uids": [s.sop_uid for s in plan.slices],
        "slice_thickness": first.thickness,
        "skipped": plan.skipped,
    }
    return Volume(out, plan.spacing, plan.origin, plan.direction, meta)


def _plan_for(path: str | os.PathLike | Sequence[str | os.PathLike],
              series_uid: str | int | None = None) -> tuple[_Plan, Path]:
    """Scan and plan a folder, DICOMDIR, file, or an explicit list of files."""
    if isinstance(path, (str, os.PathLike)):
        where = Path(path)
        scan = _scan(_files_under(where)[0])
    else:
        files = [Path(p) for p in path]
        if not files:
            raise DicomSeriesError("no DICOM files given")
        where = files[0].parent
        scan = _scan(files)
    return _plan(_choose(scan, where, series_uid), where), where


def read_series(path: str | os.PathLike | Sequence[str | os.PathLike],
                series_uid: str | int | None = None) -> Volume:
    """Read one DICOM image series as a float32 Volume (RescaleSlope/Intercept applied).

    `path` is a folder (searched recursively), a DICOMDIR, a single file (single- or
    multi-frame), or a list of files. With several series present, `series_uid` (a
    SeriesInstanceUID or a unique SeriesNumber) picks one; otherwise DicomSeriesError lists
    them. `meta["slice_files"]` / `meta["slice_frames"]` give each slice's source."""
    plan, where = _plan_for(path, series_uid)
    return _volume_from_plan(plan, where)


# ------------------------------------------------------------------------------------ writing

_MR_STORAGE = pydicom.uid.MRImageStorage
_CT_STORAGE = pydicom.uid.CTImageStorage


def _ds(x: float) -> str:
    """A number as a DICOM decimal string (at most 16 characters)."""
    return format_number_as_ds(float(x))


def _encode(array: np.ndarray) -> tuple[np.ndarray, float | None, float | None]:
    """Stored integers and (slope, intercept): integer data in int16 range is stored as is,
    anything else is quantised to uint16 over its range."""
    a = np.asarray(array)
    if not np.all(np.isfinite(a)):
        raise ValueError("volume holds NaN or infinite values; DICOM cannot store them")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if np.all(a == np.round(a)) and lo >= -32768 and hi <= 32767:
        return a.astype(np.int16), None, None
    # Round-trip the rescale values through their DS text, so decoding uses exactly them.
    slope = float(_ds((hi - lo) / 65535.0)) if hi > lo else 1.0
    intercept = float(_ds(lo))
    stored = np.clip(np.round((a.astype(np.float64) - intercept) / slope), 0, 65535)
    return stored.astype(np.uint16), slope, intercept


def write_series(volume: Volume, folder: str | os.PathLike, *, series_description: str = "",
                 series_number: int = 1, modality: str = "MR",
                 patient_name: str = "Anonymous^", patient_id: str = "LANTERN",
                 patient_birth_date: str = "", patient_sex: str = "O",
                 study_uid: str | None = None, study_description: str = "",
                 frame_of_reference_uid: str | None = None,
                 slice_thickness: float | None = None) -> list[Path]:
    """Write `volume` as a single-frame image series (MR Image Storage, or CT for
    modality="CT") into `folder`, one file per slice along array axis 0, and return the paths
    in slice order. Float data is stored as uint16 with RescaleSlope/Intercept; integer data
    within int16 is stored exactly. Each file is written atomically; existing files are not
    overwritten. `read_series` gives back the same array (up to that quantisation) and affine."""
    modality = modality.upper()
    if modality not in ("MR", "CT"):
        raise ValueError(f"write_series writes MR or CT image series, not {modality!r}")
    d = volume.direction
    gram = d.T @ d
    if not np.allclose(gram, np.eye(3), atol=1e-4):
        raise ValueError("volume axes are not orthogonal; a DICOM image series needs "
                         f"orthogonal axes (direction {d.round(5).tolist()})")
    folder = Path(folder)
    stored, slope, intercept = _encode(volume.array)
    if modality == "CT" and slope is None:
        slope, intercept = 1.0, 0.0           # CT Image module requires the rescale pair
    n, rows, cols = volume.shape
    names = [folder / f"{modality}{series_number:03d}_{k + 1:04d}.dcm" for k in range(n)]
    clash = next((p for p in names if p.exists()), None)
    if clash is not None:
        raise FileExistsError(f"{clash}: already exists; write the series to an empty folder "
                              "or use another series_number")
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    for_uid = frame_of_reference_uid or generate_uid()
    sop_class = _MR_STORAGE if modality == "MR" else _CT_STORAGE
    row_dir, col_dir, step = d[:, 2], d[:, 1], d[:, 0] * volume.spacing[0]
    normal = np.cross(row_dir, col_dir)
    finite = volume.array[np.isfinite(volume.array)]
    lo_w, hi_w = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    now = datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    thickness = volume.spacing[0] if slice_thickness is None else float(slice_thickness)
    for k, path in enumerate(names):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = time
        ds.AccessionNumber = ""
        ds.Modality = modality
        ds.Manufacturer = "Lantern"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = study_description
        ds.SeriesDescription = series_description
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = patient_birth_date
        ds.PatientSex = patient_sex
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = ""
        ds.SeriesNumber = series_number
        ds.InstanceNumber = k + 1
        ds.FrameOfReferenceUID = for_uid
        ds.PositionReferenceIndicator = ""
        position = volume.origin + k * step
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.ImageOrientationPatient = [_ds(v) for v in np.concatenate([row_dir, col_dir])]
        ds.SliceLocation = _ds(position @ normal)
        ds.PixelSpacing = [_ds(volume.spacing[1]), _ds(volume.spacing[2])]
        ds.SliceThickness = _ds(thickness)
        ds.SpacingBetweenSlices = _ds(volume.spacing[0])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = rows, cols
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
        if slope is not None:
            ds.RescaleIntercept = _ds(intercept)
            ds.RescaleSlope = _ds(slope)
            ds.RescaleType = "HU" if modality == "CT" else "US"
        ds.WindowCenter = _ds((lo_w + hi_w) / 2)
        ds.WindowWidth = _ds(max(hi_w - lo_w, 1.0))
        if modality == "MR":
            ds.ScanningSequence = "RM"        # research mode: not from a scanner
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "3D"
            ds.RepetitionTime = ds.EchoTime = ds.EchoTrainLength = None
        else:
            ds.KVP = None
            ds.AcquisitionNumber = None
        ds.PixelData = np.ascontiguousarray(stored[k]).astype(
            stored.dtype.newbyteorder("<")).tobytes()
        atomic_write(path, lambda tmp, ds=ds: ds.save_as(tmp, enforce_file_format=True))
    return names
