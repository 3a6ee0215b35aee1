"""MRI data layer: DICOM series geometry (sorting by position on the slice normal, spacing from
positions, gaps, localizers, mixed series), pixel decoding (pydicom's own MR_small variants,
compressed syntaxes, rescale, enhanced multi-frame), NIfTI RAS/LPS conversion, DICOM SEG
alignment with highdicom, overlays and the geometry check."""
from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from datasets.mri import (DicomSeriesError, Volume, check_same_geometry, list_series,
                          read_image, read_nifti, read_series, write_dicom_seg,
                          write_label_nifti, write_nifti, write_overlays, write_series)

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
DICOMDIR_TESTS = TEST_FILES / "dicomdirtests"
REPO = Path(__file__).resolve().parents[2]


def shipped(name: str) -> Path:
    """A test file that the installed pydicom ships (never fetched from the network)."""
    path = TEST_FILES / name
    if not path.exists():
        pytest.skip(f"{name} is not shipped with this pydicom")
    return path


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def dicom_direction(row: np.ndarray, col: np.ndarray, reverse: bool = False) -> np.ndarray:
    """Volume direction for a stack with these row/column cosines: slice axis along the
    normal row x col (or against it)."""
    normal = np.cross(row, col)
    return np.stack([-normal if reverse else normal, col, row], axis=1)


def synthetic(direction=None, shape=(6, 9, 11), spacing=(2.0, 0.8, 0.9),
              origin=(-40.5, 12.25, 7.0), seed: int = 0) -> Volume:
    """An integer-valued volume (exact DICOM round trip) with no symmetry to hide a flip."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(-200, 3000, size=shape).astype(np.float32)
    if direction is None:
        direction = dicom_direction(np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    return Volume(arr, spacing, np.array(origin), direction)


def same_in_patient_space(a: Volume, b: Volume) -> None:
    """`b` holds `a`'s voxels at the same LPS positions, possibly re-indexed by flips or axis
    permutations: inv(A_a) @ A_b must be an integer index map, and the arrays must agree."""
    m = np.linalg.inv(a.affine) @ b.affine
    assert np.allclose(m, np.round(m), atol=1e-5), m.round(6)
    m = np.round(m).astype(int)
    idx = np.indices(b.shape).reshape(3, -1)
    mapped = m[:3, :3] @ idx + m[:3, 3:4]
    assert np.array_equal(a.array[tuple(mapped)], b.array[tuple(idx)])


# ----------------------------------------------------------------------- geometry round trips

def test_axial_round_trip_is_exact_and_listed(tmp_path):
    v = synthetic()
    files = write_series(v, tmp_path, series_description="T1 axial")
    assert [p.name for p in files][:2] == ["MR001_0001.dcm", "MR001_0002.dcm"]
    assert not list(tmp_path.glob(".*"))          # no temporary files left behind
    w = read_series(tmp_path)
    assert w.array.dtype == np.float32
    np.testing.assert_array_equal(w.array, v.array)
    np.testing.assert_allclose(w.affine, v.affine, atol=1e-6)
    assert w.meta["slice_files"] == [str(p) for p in files]
    (info,) = list_series(tmp_path)
    assert (info.description, info.modality, info.n_files) == ("T1 axial", "MR", 6)
    assert info.dims == (6, 9, 11) and info.orientation == "axial" and info.problem == ""
    np.testing.assert_allclose(info.spacing, (2.0, 0.8, 0.9))


def test_written_series_is_valid_mr_image_storage(tmp_path):
    files = write_series(synthetic(), tmp_path, patient_id="P7")
    sops = set()
    for p in files:
        ds = pydicom.dcmread(p)               # no force: preamble and file meta are present
        assert ds.file_meta.MediaStorageSOPClassUID == pydicom.uid.MRImageStorage
        assert ds.SOPClassUID == pydicom.uid.MRImageStorage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        for kw in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Modality",
                   "PatientName", "PatientID", "ImagePositionPatient", "ImageOrientationPatient",
                   "PixelSpacing", "SliceThickness", "SpacingBetweenSlices", "ScanningSequence",
                   "SequenceVariant", "MRAcquisitionType", "EchoTime", "RepetitionTime",
                   "PhotometricInterpretation", "BitsStored", "PixelRepresentation"):
            assert kw in ds, kw
        assert ds.PatientID == "P7" and ds.Modality == "MR"
        sops.add(ds.SOPInstanceUID)
        assert "RescaleSlope" not in ds            # integer data is stored exactly
    assert len(sops) == len(files)


def test_shuffled_file_names_and_instance_numbers(tmp_path):
    v = synthetic(seed=1)
    files = write_series(v, tmp_path / "src")
    rng = random.Random(3)
    order = list(range(len(files)))
    rng.shuffle(order)
    (tmp_path / "shuffled").mkdir()
    for new_name, k in enumerate(order):
        ds = pydicom.dcmread(files[k])
        ds.InstanceNumber = len(files) - new_name   # InstanceNumber misleads too
        ds.save_as(tmp_path / "shuffled" / f"{new_name:02d}.dcm")
    w = read_series(tmp_path / "shuffled")
    np.testing.assert_array_equal(w.array, v.array)
    np.testing.assert_allclose(w.affine, v.affine, atol=1e-6)


def test_oblique_series(tmp_path):
    r = rotation(0.5, -0.35, 0.3)
    v = synthetic(dicom_direction(r[:, 0], r[:, 1]), spacing=(1.5, 0.7, 0.6))
    write_series(v, tmp_path)
    w = read_series(tmp_path)
    assert w.orientation == "oblique" and list_series(tmp_path)[0].orientation == "oblique"
    np.testing.assert_array_equal(w.array, v.array)
    np.testing.assert_allclose(w.affine, v.affine, atol=1e-6)


def test_reversed_slice_direction_gives_the_known_reindexed_volume(tmp_path):
    r = rotation(0.2, 0.1, -0.4)
    v = synthetic(dicom_direction(r[:, 0], r[:, 1], reverse=True), spacing=(3.0, 1.0, 1.1))
    write_series(v, tmp_path)
    w = read_series(tmp_path)
    # Slices come back ordered along +normal: the stack reversed, the origin at its far end.
    n = v.shape[0]
    expected = v.affine.copy()
    expected[:3, 0] = -v.affine[:3, 0]
    expected[:3, 3] = v.affine[:3, 3] + (n - 1) * v.affine[:3, 0]
    np.testing.assert_allclose(w.affine, expected, atol=1e-6)
    np.testing.assert_array_equal(w.array, v.array[::-1])
    same_in_patient_space(v, w)


def test_sagittal_spacing_comes_from_positions_not_thickness(tmp_path):
    row, col = np.array([0, 1.0, 0]), np.array([0, 0, -1.0])     # A->P, S->I
    v = synthetic(dicom_direction(row, col), spacing=(1.2, 0.9, 0.9), shape=(7, 8, 10))
    write_series(v, tmp_path, slice_thickness=3.0)
    assert float(pydicom.dcmread(next(tmp_path.iterdir())).SliceThickness) == 3.0
    w = read_series(tmp_path)
    assert w.orientation == "sagittal"
    assert w.spacing[0] == pytest.approx(1.2, abs=1e-6)
    assert w.meta["slice_thickness"] == pytest.approx(3.0)
    np.testing.assert_allclose(w.affine, v.affine, atol=1e-6)
    np.testing.assert_array_equal(w.array, v.array)


def test_real_dicomdir_ct_series_sorted_by_position():
    """pydicom's CT5N: InstanceNumber rises while z falls; five 2.5 mm slices."""
    folder = DICOMDIR_TESTS / "98892001" / "CT5N"
    w = read_series(folder)
    assert w.shape == (5, 16, 16) and w.meta["modality"] == "CT"
    np.testing.assert_allclose(w.spacing, (2.5, 0.488281, 0.488281), atol=1e-6)
    np.testing.assert_allclose(w.origin, (-72.199997, -143.0, -1.2375), atol=1e-5)
    assert [Path(f).name for f in w.meta["slice_files"]] == ["3353", "3023", "2693", "2392",
                                                              "2062"]
    first = pydicom.dcmread(folder / "3353")
    expected = first.pixel_array * float(first.RescaleSlope) + float(first.RescaleIntercept)
    np.testing.assert_array_equal(w.array[0], expected.astype(np.float32))
    # Through the DICOMDIR the same series reads the same.
    v = read_series(DICOMDIR_TESTS / "DICOMDIR", series_uid=w.meta["series_uid"])
    np.testing.assert_array_equal(v.array, w.array)
    np.testing.assert_allclose(v.affine, w.affine)


# ------------------------------------------------------------------------------ bad series

def test_gap_is_reported_with_its_position(tmp_path):
    v = synthetic(spacing=(2.0, 0.8, 0.9), origin=(0, 0, 10.0))
    files = write_series(v, tmp_path)
    files[3].unlink()
    with pytest.raises(DicomSeriesError) as e:
        read_series(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path) in msg and "missing slices" in msg
    assert "1 missing between MR001_0003.dcm (14.00 mm) and MR001_0005.dcm (18.00 mm)" in msg
    assert "missing slices" in list_series(tmp_path)[0].problem


def test_real_dicomdir_gap_and_radial_series_are_refused():
    infos = {i.uid: i for i in list_series(DICOMDIR_TESTS / "77654033" / "CT2")}
    (ct2,) = infos.values()
    assert "161 missing between 17106 (-99.48 mm) and 17136 (103.02 mm)" in ct2.problem
    with pytest.raises(DicomSeriesError, match="mixes 7 orientations"):
        read_series(DICOMDIR_TESTS / "98892003" / "MR700")


def test_non_uniform_spacing_and_duplicates(tmp_path):
    files = write_series(synthetic(), tmp_path / "a")
    ds = pydicom.dcmread(files[2])
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 0.7
    ds.save_as(files[2])
    with pytest.raises(DicomSeriesError, match="non-uniform slice spacing"):
        read_series(tmp_path / "a")
    files = write_series(synthetic(), tmp_path / "b")
    ds = pydicom.dcmread(files[2])
    ds.ImagePositionPatient = pydicom.dcmread(files[1]).ImagePositionPatient
    ds.save_as(files[2])
    with pytest.raises(DicomSeriesError, match="duplicate slice position"):
        read_series(tmp_path / "b")


def test_two_series_need_a_choice(tmp_path):
    a = synthetic(seed=1)
    b = synthetic(seed=2, shape=(4, 9, 11))
    write_series(a, tmp_path, series_description="T1", series_number=1)
    write_series(b, tmp_path, series_description="T2", series_number=2)
    infos = list_series(tmp_path)
    assert [i.description for i in infos] == ["T1", "T2"]
    with pytest.raises(DicomSeriesError) as e:
        read_series(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "2 image series" in msg
    assert infos[0].uid in msg and infos[1].uid in msg and "'T1'" in msg and "'T2'" in msg
    np.testing.assert_array_equal(read_series(tmp_path, series_uid=infos[1].uid).array, b.array)
    np.testing.assert_array_equal(read_series(tmp_path, series_uid=1).array, a.array)
    with pytest.raises(DicomSeriesError, match="no series '1.2.3'"):
        read_series(tmp_path, series_uid="1.2.3")


def test_localizers_are_skipped(tmp_path):
    v = synthetic()
    files = write_series(v, tmp_path)
    scout = pydicom.dcmread(files[0])              # same series, flagged as a localizer
    scout.SOPInstanceUID = generate_uid()
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.ImagePositionPatient = [0, 0, 500]
    scout.save_as(tmp_path / "scout.dcm")
    tilted = pydicom.dcmread(files[0])             # same series, another plane, no flag
    tilted.SOPInstanceUID = generate_uid()
    tilted.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    tilted.save_as(tmp_path / "tilted.dcm")
    w = read_series(tmp_path)
    np.testing.assert_array_equal(w.array, v.array)
    assert any("scout.dcm: localizer" in s for s in w.meta["skipped"])
    assert any("tilted.dcm: orientation differs" in s for s in w.meta["skipped"])


def test_inconsistent_sizes(tmp_path):
    files = write_series(synthetic(), tmp_path)
    ds = pydicom.dcmread(files[4])
    ds.Rows, ds.Columns = 4, 5
    ds.PixelData = np.zeros((4, 5), np.int16).tobytes()
    ds.save_as(files[4])
    with pytest.raises(DicomSeriesError, match=r"MR001_0005.dcm: 4x5 image .* other 5 planes "
                                               r"are 9x11 \(inconsistent sizes\)"):
        read_series(tmp_path)


def test_non_image_dicom(tmp_path):
    rtstruct = shipped("rtstruct.dcm")
    with pytest.raises(DicomSeriesError, match=r"rtstruct.dcm: non-image DICOM \(RT Structure "
                                               r"Set Storage, no Pixel Data\)"):
        read_series(rtstruct)
    shutil.copy(rtstruct, tmp_path / "rt.dcm")
    shutil.copy(shipped("test-SR.dcm"), tmp_path / "sr.dcm")
    (tmp_path / "notes.txt").write_text("not DICOM")
    with pytest.raises(DicomSeriesError, match=r"no DICOM image series found \(1 non-DICOM "
                                               r"files, 2 non-image objects"):
        read_series(tmp_path)
    v = synthetic()
    write_series(v, tmp_path)                      # an image series beside them reads fine
    np.testing.assert_array_equal(read_series(tmp_path).array, v.array)


def test_truncated_files(tmp_path):
    with pytest.raises(DicomSeriesError,
                       match=r"MR_truncated.dcm: truncated file \(Pixel Data has 8130 of 8192"):
        read_series(shipped("MR_truncated.dcm"))
    files = write_series(synthetic(), tmp_path)
    raw = files[2].read_bytes()
    files[2].write_bytes(raw[: len(raw) - 40])   # cut inside the pixel data
    with pytest.raises(DicomSeriesError, match=r"MR001_0003.dcm: truncated file"):
        read_series(tmp_path)
    files[2].write_bytes(raw[:400])              # cut inside the header
    with pytest.raises(DicomSeriesError, match=r"MR001_0003.dcm: truncated or incomplete file"):
        read_series(tmp_path)


# ----------------------------------------------------------------------------------- pixels

MR_SMALL_VARIANTS = ["MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
                     "MR_small_implicit.dcm", "MR_small_padded.dcm",
                     "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"]


def test_mr_small_reads_with_its_header_geometry():
    path = shipped("MR_small.dcm")
    ds = pydicom.dcmread(path)
    v = read_series(path)
    assert v.shape == (1, 64, 64)
    np.testing.assert_array_equal(v.array[0], ds.pixel_array.astype(np.float32))
    np.testing.assert_allclose(v.origin, [float(x) for x in ds.ImagePositionPatient])
    np.testing.assert_allclose(v.spacing, (0.8, 0.3125, 0.3125))   # one slice: SliceThickness


@pytest.mark.parametrize("name", MR_SMALL_VARIANTS)
def test_mr_small_variants_decode_to_the_same_pixels(name):
    reference = read_series(shipped("MR_small.dcm"))
    path = shipped(name)
    ts = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    if ts.is_encapsulated and not pydicom.pixels.get_decoder(ts).is_available:
        with pytest.raises(DicomSeriesError, match=r"no decoder installed .* install pylibjpeg"):
            read_series(path)
        return
    v = read_series(path)
    np.testing.assert_array_equal(v.array, reference.array)
    np.testing.assert_allclose(v.affine, reference.affine)


def test_missing_decoder_names_the_package(tmp_path):
    """With Pillow and pylibjpeg hidden, pydicom has no JPEG 2000 decoder: the error names
    what to install. A syntax pydicom cannot decode at all is named too."""
    code = (
        "import sys\n"
        "for name in ('pylibjpeg', 'openjpeg', 'libjpeg', 'PIL'): sys.modules[name] = None\n"
        "from datasets.mri import read_series\n"
        f"read_series({str(shipped('MR_small_jp2klossless.dcm'))!r})\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert "DicomSeriesError" in last and "no decoder installed for JPEG 2000" in last
    assert "pip install pylibjpeg pylibjpeg-openjpeg" in last
    ds = pydicom.dcmread(shipped("MR_small_jp2klossless.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.92"   # J2K Part 2 multi-component
    ds.save_as(tmp_path / "part2.dcm")
    with pytest.raises(DicomSeriesError, match=r"part2.dcm: pydicom .* has no decoder for JPEG "
                                               r"2000 Part 2 Multi-component"):
        read_series(tmp_path / "part2.dcm")


def test_rescale_is_applied_per_slice_and_float_data_round_trips(tmp_path):
    v = synthetic()
    files = write_series(v, tmp_path / "int")
    ds = pydicom.dcmread(files[1])
    ds.RescaleSlope, ds.RescaleIntercept = 2, -5
    ds.save_as(files[1])
    w = read_series(tmp_path / "int")
    np.testing.assert_array_equal(w.array[1], v.array[1] * 2 - 5)
    np.testing.assert_array_equal(w.array[2], v.array[2])
    # Float data is quantised to uint16 with RescaleSlope/Intercept.
    rng = np.random.default_rng(5)
    f = synthetic(shape=(4, 6, 7)).with_array(
        rng.normal(0.3, 2.0, size=(4, 6, 7)).astype(np.float32))
    files = write_series(f, tmp_path / "float")
    ds = pydicom.dcmread(files[0])
    slope = float(ds.RescaleSlope)
    assert ds.PixelRepresentation == 0 and slope > 0 and "RescaleIntercept" in ds
    g = read_series(tmp_path / "float")
    assert np.abs(g.array - f.array).max() <= slope / 2 + 1e-6


def _enhanced_mr(path: Path, stored: np.ndarray, positions: np.ndarray, row, col,
                 pixel_spacing, slope: float, intercept: float, frame_slopes=None) -> None:
    """A minimal Enhanced MR Image Storage file: geometry only in functional groups."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.EnhancedMRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = "MR", generate_uid(), generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.PatientName, ds.PatientID = "Test^Enhanced", "E1"
    ds.PatientBirthDate, ds.PatientSex = "", "O"
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "120000", "1", ""
    ds.ReferringPhysicianName, ds.SeriesNumber, ds.InstanceNumber = "", 1, 1
    ds.NumberOfFrames = stored.shape[0]
    ds.Rows, ds.Columns = stored.shape[1:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = list(pixel_spacing), 4.0
    shared.PixelMeasuresSequence = [measures]
    orient = Dataset()
    orient.ImageOrientationPatient = list(row) + list(col)
    shared.PlaneOrientationSequence = [orient]
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept = slope, intercept
    transform.RescaleType = "US"
    shared.PixelValueTransformationSequence = [transform]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for f, p in enumerate(positions):
        item, pos = Dataset(), Dataset()
        pos.ImagePositionPatient = [float(x) for x in p]
        item.PlanePositionSequence = [pos]
        if frame_slopes is not None and frame_slopes[f] is not None:
            t = Dataset()
            t.RescaleSlope, t.RescaleIntercept, t.RescaleType = frame_slopes[f], 0, "US"
            item.PixelValueTransformationSequence = [t]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = stored.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_enhanced_multiframe_mr(tmp_path):
    r = rotation(0.1, 0.25, -0.2)
    row, col = r[:, 0], r[:, 1]
    normal = np.cross(row, col)
    n, spacing = 5, 2.5
    origin = np.array([10.0, -20.0, 30.0])
    rng = np.random.default_rng(2)
    stored = rng.integers(0, 4000, size=(n, 6, 8)).astype(np.uint16)
    order = np.array([3, 0, 4, 1, 2])            # frame f holds slice order[f]
    positions = origin + np.outer(order * spacing, normal)
    frame_slopes = [None, None, 3.0, None, None]   # a per-frame override of the shared pair
    _enhanced_mr(tmp_path / "enh.dcm", stored, positions, row, col, (0.7, 0.6), 2.0, 1.0,
                 frame_slopes)
    v = read_image(tmp_path / "enh.dcm")
    assert v.shape == (n, 6, 8)
    expected_dir = dicom_direction(row, col)
    np.testing.assert_allclose(v.direction, expected_dir, atol=1e-6)
    np.testing.assert_allclose(v.spacing, (spacing, 0.7, 0.6), atol=1e-6)
    np.testing.assert_allclose(v.origin, origin, atol=1e-6)
    for f, k in enumerate(order):
        slope, intercept = (3.0, 0.0) if frame_slopes[f] else (2.0, 1.0)
        np.testing.assert_array_equal(v.array[k], stored[f] * slope + intercept)
    assert v.meta["slice_frames"] == [int(np.flatnonzero(order == k)[0]) for k in range(n)]
    # A SEG over the multi-frame source references its frames by number, in the right place.
    import highdicom as hd
    labels = np.zeros(v.shape, np.uint8)
    labels[1:3, 2:4, 2:6] = 1
    seg = hd.seg.segread(write_dicom_seg(labels, [tmp_path / "enh.dcm"], tmp_path / "seg.dcm",
                                         ["lesion"]))
    seen = set()
    for frame in seg.PerFrameFunctionalGroupsSequence:
        source = frame.DerivationImageSequence[0].SourceImageSequence[0]
        k = int(order[source.ReferencedFrameNumber - 1])      # the slice that frame holds
        ipp = [float(x) for x in frame.PlanePositionSequence[0].ImagePositionPatient]
        np.testing.assert_allclose(ipp, (v.affine @ [k, 0, 0, 1])[:3], atol=1e-4)
        seen.add(k)
    assert seen == {1, 2}


# ------------------------------------------------------------------------------------ NIfTI

def test_nifti_round_trip_converts_lps_and_ras(tmp_path):
    r = rotation(0.3, -0.2, 0.6)
    v = synthetic(dicom_direction(r[:, 0], r[:, 1]), spacing=(2.0, 0.8, 0.9))
    path = write_nifti(v, tmp_path / "img.nii.gz")
    assert not list(tmp_path.glob(".*"))
    img = nib.load(str(path))
    # nibabel's (i, j, k) array is ours transposed; its RAS affine is ours with the axes in
    # reverse order and x, y negated.
    np.testing.assert_array_equal(np.asarray(img.dataobj), v.array.transpose(2, 1, 0))
    expected = np.diag([-1.0, -1.0, 1.0, 1.0]) @ v.affine[:, [2, 1, 0, 3]]
    np.testing.assert_allclose(img.affine, expected, atol=1e-5)
    np.testing.assert_allclose(img.get_sform(), expected, atol=1e-5)
    assert int(img.header["sform_code"]) == 1
    # A voxel lands at the same patient point either way.
    k, j, i = 4, 2, 7
    lps = v.affine @ [k, j, i, 1]
    ras = img.affine @ [i, j, k, 1]
    np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-5)
    w = read_nifti(path)
    np.testing.assert_array_equal(w.array, v.array)
    np.testing.assert_allclose(w.affine, v.affine, atol=1e-5)


def test_nifti_written_by_nibabel_reads_in_lps(tmp_path):
    """A canonical RAS image from nibabel: voxel (i, j, k) at RAS (i-10, 2j-20, 3k)."""
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    ras = np.array([[1.0, 0, 0, -10], [0, 2, 0, -20], [0, 0, 3, 0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(data, ras), str(tmp_path / "canon.nii"))
    v = read_image(tmp_path / "canon.nii")
    assert v.array.dtype == np.int16 and v.shape == (6, 5, 4)
    np.testing.assert_allclose(v.spacing, (3.0, 2.0, 1.0))
    np.testing.assert_allclose(v.origin, (10.0, 20.0, 0.0))
    assert v.array[5, 4, 3] == data[3, 4, 5]
    np.testing.assert_allclose(v.affine @ [5, 4, 3, 1], [-(3 - 10), -(8 - 20), 15, 1])
    assert v.orientation == "axial"


def test_dicom_to_nifti_keeps_patient_positions(tmp_path):
    row, col = np.array([0, 1.0, 0]), np.array([0, 0, -1.0])
    v = synthetic(dicom_direction(row, col, reverse=True), spacing=(1.2, 0.9, 0.8))
    write_series(v, tmp_path / "dcm")
    d = read_image(tmp_path / "dcm")
    write_nifti(d, tmp_path / "d.nii")
    n = read_image(tmp_path / "d.nii")
    same_in_patient_space(v, n)
    assert nib.aff2axcodes(nib.load(str(tmp_path / "d.nii")).affine) == ("P", "I", "R")


# -------------------------------------------------------------------------------- DICOM SEG

def test_dicom_seg_lines_up_with_its_source(tmp_path):
    import highdicom as hd

    r = rotation(0.25, 0.0, 0.4)
    v = synthetic(dicom_direction(r[:, 0], r[:, 1], reverse=True), shape=(6, 12, 10))
    write_series(v, tmp_path / "src")
    src = read_series(tmp_path / "src")
    labels = np.zeros(src.shape, np.uint8)
    labels[1:4, 2:7, 3:8] = 1
    labels[2:5, 6:10, 1:4] = 4                   # non-consecutive values map to segments
    labels[0] = 0
    path = write_dicom_seg(labels, src.meta["slice_files"], tmp_path / "seg.dcm",
                           {1: "white matter", 4: "lesion"})
    seg = hd.seg.segread(path)
    assert seg.SeriesDescription == "Lantern segmentation"
    assert [d.SegmentLabel for d in seg.SegmentSequence] == ["white matter", "lesion"]
    assert seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "389080008"
    assert seg.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0].CodeValue == "52988006"
    assert seg.get_source_image_uids()[0][1] == src.meta["series_uid"]
    first_source = pydicom.dcmread(src.meta["slice_files"][0])
    assert seg.FrameOfReferenceUID == first_source.FrameOfReferenceUID
    # Per source instance (our slice order), the SEG's pixels are our labels.
    got = seg.get_pixels_by_source_instance(src.meta["sop_instance_uids"],
                                            combine_segments=True)
    expected = np.select([labels == 1, labels == 4], [1, 2], 0)
    np.testing.assert_array_equal(got, expected)
    # Each SEG frame sits at the position of the source instance it derives from.
    positions = {uid: np.array([float(x) for x in pydicom.dcmread(f).ImagePositionPatient])
                 for uid, f in zip(src.meta["sop_instance_uids"], src.meta["slice_files"])}
    assert len(seg.PerFrameFunctionalGroupsSequence) > 0
    for frame in seg.PerFrameFunctionalGroupsSequence:
        ref = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        ipp = np.array([float(x) for x in frame.PlanePositionSequence[0].ImagePositionPatient])
        np.testing.assert_allclose(ipp, positions[ref], atol=1e-4)
    # And highdicom's own volume of the SEG coincides with ours in patient space.
    hv = seg.get_volume(combine_segments=True)
    same_in_patient_space(src.with_array(expected.astype(np.float32)),
                          Volume.from_affine(hv.array.astype(np.float32), hv.affine))


def test_dicom_seg_rejects_unnamed_labels_and_wrong_shapes(tmp_path):
    files = write_series(synthetic(), tmp_path / "src")
    labels = np.zeros((6, 9, 11), np.uint8)
    labels[2, 3, 3] = 2
    with pytest.raises(ValueError, match=r"label value\(s\) \[2\] have no name"):
        write_dicom_seg(labels, files, tmp_path / "seg.dcm", ["lesion"])
    with pytest.raises(ValueError, match=r"shape \(5, 9, 11\) does not match"):
        write_dicom_seg(labels[:5], files, tmp_path / "seg.dcm", ["a", "b"])
    assert not (tmp_path / "seg.dcm").exists()


def test_label_nifti_and_overlays(tmp_path):
    v = synthetic(shape=(8, 20, 16), spacing=(2.0, 1.0, 0.5))
    labels = np.zeros(v.shape, np.int64)
    labels[2:6, 5:12, 4:10] = 1
    labels[3, 14:18, 2:6] = 2
    lab = read_nifti(write_label_nifti(labels, v, tmp_path / "labels.nii.gz"))
    assert lab.array.dtype == np.uint8
    np.testing.assert_array_equal(lab.array, labels)
    check_same_geometry(v, lab)
    paths = write_overlays(v, labels, tmp_path / "png", n=3)
    assert [p.name for p in paths] == ["overlay_0002.png", "overlay_0004.png",
                                       "overlay_0005.png"]
    from PIL import Image
    img = np.asarray(Image.open(paths[0]))
    # Rows are 1 mm and columns 0.5 mm: square pixels make it 20 x 8 mm -> 2.5:1, then zoom.
    assert img.shape == (256, 102, 3)
    centre = img[int(8.5 / 20 * 256), int(3.5 / 8 * 102)]    # inside label 1 (orange tint)
    assert centre[0] > centre[2] + 20


# ---------------------------------------------------------------------------- dispatch, checks

def test_check_same_geometry_one_line(tmp_path):
    a = synthetic()
    check_same_geometry(a, a.with_array(np.zeros(a.shape)))
    b = Volume(np.zeros(a.shape), a.spacing, a.origin + [0, 0, 1.0], a.direction)
    with pytest.raises(ValueError) as e:
        check_same_geometry(a, b, ("image.nii", "label.nii"))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("label.nii does not match the geometry of "
                                              "image.nii")
    assert "origin (-40.5, 12.25, 8) vs (-40.5, 12.25, 7)" in msg and "shape (6, 9, 11)" in msg
    c = Volume(np.zeros((6, 9, 10)), (2.0, 0.8, 1.0), a.origin, a.direction)
    with pytest.raises(ValueError, match=r"shape \(6, 9, 10\) vs \(6, 9, 11\), spacing "
                                         r"\(2, 0.8, 1\) vs \(2, 0.8, 0.9\)"):
        check_same_geometry(a, c, ("img", "lab"))


def test_read_image_dispatch_and_errors(tmp_path):
    v = synthetic()
    write_series(v, tmp_path / "dcm")
    write_nifti(v, tmp_path / "v.nii")
    np.testing.assert_array_equal(read_image(tmp_path / "dcm").array, v.array)
    np.testing.assert_array_equal(read_image(tmp_path / "v.nii").array, v.array)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"x.txt: not a DICOM folder/file or a NIfTI"):
        read_image(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError, match="nope.nii.gz: no such file"):
        read_image(tmp_path / "nope.nii.gz")
    (tmp_path / "bad.nii.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match=r"bad.nii.gz: not a readable NIfTI file"):
        read_image(tmp_path / "bad.nii.gz")


def test_write_series_refuses_overwrite_and_non_orthogonal_axes(tmp_path):
    v = synthetic()
    write_series(v, tmp_path)
    with pytest.raises(FileExistsError, match="MR001_0001.dcm: already exists"):
        write_series(v, tmp_path)
    skew = np.array([[1.0, 0.6, 0], [0, 0.8, 0], [0, 0, 1.0]])
    with pytest.raises(ValueError, match="not orthogonal"):
        write_series(Volume(v.array, v.spacing, v.origin, skew), tmp_path / "skew")
