"""MRI data sets and transforms: the MNI tissue task, synthetic lesions, MSD folders, seeded
transforms and SegmentationDataset. Fast tests use a small phantom template; the tests on the
real MNI template are marked realdata."""
import json
import time

import numpy as np
import pytest

from datasets.mri import (SegmentationDataset, TissueTemplate, Volume, axial_axis, axial_split,
                          case_from_volumes, make_lesion_case, make_lesion_cases, open_msd,
                          read_image, read_nifti, tissue_labels, write_nifti,
                          write_tissue_case)
from datasets.mri import transforms as T


# ------------------------------------------------------------------------------ fixtures
def phantom(shape=(24, 28, 26), spacing=(2.0, 2.0, 2.0), flip_z=False) -> TissueTemplate:
    """An ellipsoidal 'brain': white matter core, grey matter shell, T1 0 outside. With
    `flip_z` array axis 0 runs superior -> inferior."""
    grid = np.indices(shape).astype(np.float64)
    c = (np.asarray(shape) - 1)[:, None, None, None] / 2
    r = np.sqrt((((grid - c) / (np.asarray(shape)[:, None, None, None] * 0.42)) ** 2).sum(0))
    brain = r < 1.0
    white = np.clip(1.6 - 2.4 * r, 0, 1) * brain
    grey = np.clip(1 - white, 0, 1) * brain * np.clip(3 - 2.5 * r, 0, 1)
    t1 = np.round(np.where(brain, 80 + 100 * white + 40 * grey, 0)).astype(np.float32)
    direction = np.array([[0, 0, -1], [0, -1, 0], [1, 0, 0]], float)   # as the MNI volume
    if flip_z:
        direction[:, 0] *= -1
    image = Volume(t1, spacing, (90.0, 120.0, -40.0), direction)
    return TissueTemplate.from_maps(image, grey, white)


def sample_3d(shape=(20, 22, 18), seed=0, affine=True):
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, np.int64)
    label[5:12, 6:15, 4:10] = 1
    label[13:17, 3:8, 10:15] = 2
    image = (label * 10.0 + rng.normal(0, 1, shape)).astype(np.float32)[None]
    s = {"image": image, "label": label}
    if affine:
        a = np.eye(4)
        a[:3, :3] = np.array([[0, 0, -1.5], [0, -1.2, 0], [2.0, 0, 0]])
        a[:3, 3] = (10, 20, -30)
        s["affine"] = a
    return s


def positions(affine, shape):
    """LPS z of every voxel centre."""
    idx = np.indices(shape).reshape(3, -1)
    return (affine[:3, :3] @ idx + affine[:3, 3:4])[2].reshape(shape)


# ------------------------------------------------------------------------- tissue task
def test_tissue_labels_are_the_three_class_argmax():
    grey = np.array([0.6, 0.3, 0.1, 0.46, 0.2])
    white = np.array([0.3, 0.6, 0.1, 0.1, 0.3])
    assert tissue_labels(grey, white).tolist() == [1, 2, 0, 1, 0]
    assert tissue_labels(grey, white, brain=np.array([1, 0, 1, 1, 1], bool)).tolist() \
        == [1, 0, 0, 1, 0]


@pytest.mark.parametrize("flip_z", [False, True])
def test_axial_split_is_ordered_inferior_to_superior_from_the_affine(flip_z):
    t = phantom(flip_z=flip_z)
    axis, sign = axial_axis(t.image.affine)
    assert axis == 0 and sign == (-1 if flip_z else 1)
    s = axial_split(t.image, t.brain)
    z = t.image.origin[2] + t.image.direction[2, 0] * t.image.spacing[0] * np.arange(24)
    parts = [z[s.train], z[s.gap], z[s.test]]
    for p in parts:   # each part ordered inferior -> superior
        assert np.all(np.diff(p) > 0)
    assert parts[0].max() < parts[1].min() and parts[1].max() < parts[2].min()
    sets = [set(s.train), set(s.gap), set(s.test)]
    assert not (sets[0] & sets[1] or sets[1] & sets[2] or sets[0] & sets[2])
    n = s.extent[1] - s.extent[0] + 1
    assert len(s.train) == round(0.6 * n) and len(s.test) == round(0.2 * n) and len(s.gap) > 0
    hit = np.flatnonzero(t.brain.any(axis=(1, 2)))
    assert s.extent == (hit[0], hit[-1])


def test_tissue_case_round_trips_through_dicom(tmp_path):
    t = phantom()
    out = write_tissue_case(tmp_path / "case", template=t, dicom_seg=True)
    image = read_image(out["image"])
    label = read_nifti(out["label"])
    np.testing.assert_allclose(image.affine, t.image.affine, atol=1e-4)
    np.testing.assert_allclose(image.array, t.image.array, atol=1e-6)  # integer T1: exact
    assert image.orientation == "axial"
    np.testing.assert_array_equal(label.array, t.labels.array)
    np.testing.assert_allclose(label.affine, image.affine, atol=1e-4)
    assert out["seg"].exists()
    assert set(np.unique(t.labels.array)) == {0, 1, 2}


# ----------------------------------------------------------------------------- lesions
def test_lesion_cases_are_deterministic_distinct_and_inside_the_brain():
    t = phantom(shape=(30, 34, 32))
    a, b = make_lesion_case(3, seed=7, template=t), make_lesion_case(3, seed=7, template=t)
    np.testing.assert_array_equal(a.image.array, b.image.array)
    np.testing.assert_array_equal(a.label.array, b.label.array)
    assert a.lesions == b.lesions
    others = [make_lesion_case(i, seed=7, template=t) for i in (0, 1, 2)] \
        + [make_lesion_case(3, seed=8, template=t)]
    for o in others:
        assert not np.array_equal(o.image.array, a.image.array)
        assert o.lesions != a.lesions
    for case in [a] + others:
        lab, img = case.label.array, case.image.array
        assert 1 <= len(case.lesions) <= 5 and lab.sum() > 0
        assert set(np.unique(lab)) <= {0, 1} and lab.dtype == np.uint8
        assert np.all(img[lab > 0] > 0)             # lesion voxels lie in the (deformed) brain
        assert case.image.shape == case.label.shape == t.image.shape
        np.testing.assert_allclose(case.image.affine, case.label.affine)
        np.testing.assert_allclose(case.image.affine, t.image.affine)
    # the template is deformed: the brain outline moves between cases
    assert not np.array_equal(others[0].image.array > 0, others[1].image.array > 0)


def test_make_lesion_cases_writes_msd_and_dicom(tmp_path):
    t = phantom(shape=(30, 34, 32))
    path = make_lesion_cases(3, tmp_path / "les", seed=1, template=t)
    info = json.loads(path.read_text())
    assert info["numTraining"] == 3 and info["labels"] == {"0": "background", "1": "lesion"}
    ds = open_msd(tmp_path / "les")
    assert [c.name for c in ds.training] == ["lesion_000", "lesion_001", "lesion_002"]
    assert ds.channels == ["T1"] and ds.labels == {0: "background", 1: "lesion"}
    case = ds.load(1)
    ref = make_lesion_case(1, seed=1, template=t)
    np.testing.assert_array_equal(case["label"], ref.label.array)
    np.testing.assert_allclose(case["image"][0], ref.image.array, atol=1e-5)
    dicom = read_image(tmp_path / "les" / info["training"][1]["dicom"])
    np.testing.assert_allclose(dicom.affine, case["affine"], atol=1e-4)
    span = float(ref.image.array.max() - ref.image.array.min())
    np.testing.assert_allclose(dicom.array, ref.image.array, atol=span / 65535 + 1e-4)


# --------------------------------------------------------------------------------- MSD
def _write_msd(root, label_spacing=(2.0, 2.0, 2.0)):
    img = Volume(np.random.default_rng(0).random((6, 7, 8)).astype(np.float32), (2, 2, 2),
                 (0, 0, 0), np.eye(3))
    lab = Volume((img.array > 0.5).astype(np.uint8), label_spacing, (0, 0, 0), np.eye(3))
    write_nifti(img, root / "imagesTr" / "c1.nii.gz")
    write_nifti(lab, root / "labelsTr" / "c1.nii.gz")
    (root / "dataset.json").write_text(json.dumps({
        "name": "t", "labels": {"0": "background", "1": "x"}, "modality": {"0": "MR"},
        "training": [{"image": "./imagesTr/c1.nii.gz", "label": "./labelsTr/c1.nii.gz"}]}))
    return img, lab


def test_open_msd_loads_a_case(tmp_path):
    img, lab = _write_msd(tmp_path)
    s = open_msd(tmp_path).load(0)
    assert s["image"].shape == (1, 6, 7, 8) and s["image"].dtype == np.float32
    np.testing.assert_array_equal(s["label"], lab.array)
    np.testing.assert_allclose(s["affine"], img.affine)


def test_open_msd_reports_a_label_geometry_mismatch_naming_both_files(tmp_path):
    _write_msd(tmp_path, label_spacing=(2.0, 2.0, 2.5))
    ds = open_msd(tmp_path)
    with pytest.raises(ValueError) as e:
        ds.load(0)
    msg = str(e.value)
    assert "\n" not in msg and "labelsTr/c1.nii.gz" in msg and "imagesTr/c1.nii.gz" in msg
    assert "spacing" in msg


def test_open_msd_errors_and_nnunet_v2_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.json"):
        open_msd(tmp_path)
    img = Volume(np.ones((4, 5, 6), np.float32), (1, 1, 1), (0, 0, 0), np.eye(3))
    write_nifti(img, tmp_path / "imagesTr" / "a_0000.nii.gz")
    write_nifti(img.with_array(np.full((4, 5, 6), 3, np.uint8)), tmp_path / "labelsTr" / "a.nii.gz")
    (tmp_path / "dataset.json").write_text(json.dumps({
        "labels": {"background": 0, "tumour": 1}, "channel_names": {"0": "T2"},
        "file_ending": ".nii.gz", "numTraining": 1}))
    ds = open_msd(tmp_path)
    assert ds.labels == {0: "background", 1: "tumour"} and ds.training[0].name == "a"
    with pytest.raises(ValueError, match=r"label values \[3\] are not declared"):
        ds.load(0)


# -------------------------------------------------------------------------- transforms
RANDOM = [T.RandomFlip(p=0.5), T.RandomRot90(planes=((1, 2), (0, 1)), p=0.9),
          T.RandomAffine(p=1.0), T.RandomElastic(p=1.0, magnitude=2.0, grid=6),
          T.RandomGamma(p=1.0), T.RandomNoise(p=1.0, std=(0.05, 0.1)),
          T.RandomPatch((12, 12, 12), fg_fraction=0.5)]


@pytest.mark.parametrize("t", RANDOM, ids=lambda t: type(t).__name__)
def test_random_transforms_are_reproducible_from_the_generator(t):
    s = sample_3d()
    outs = [t(s, np.random.default_rng(5)) for _ in range(2)]
    for k in ("image", "label"):
        np.testing.assert_array_equal(outs[0][k], outs[1][k])
    differ = any(not np.array_equal(t(s, np.random.default_rng(seed))["image"],
                                    outs[0]["image"]) for seed in range(6, 12))
    assert differ
    with pytest.raises(ValueError, match="numpy Generator"):
        t(s)
    assert s["image"].shape == (1, 20, 22, 18)            # input untouched


@pytest.mark.parametrize("t", [x for x in RANDOM if type(x).__name__ not in
                               ("RandomGamma", "RandomNoise")], ids=lambda t: type(t).__name__)
def test_spatial_transforms_keep_labels_and_alignment(t):
    s = sample_3d()
    s["image"] = (s["label"] > 0).astype(np.float32)[None]   # image == binary label
    s["label"] = s["label"].astype(np.uint8)
    for seed in range(4):
        out = t(s, np.random.default_rng(seed))
        img, lab = out["image"][0], out["label"]
        assert lab.dtype == np.uint8 and set(np.unique(lab)) <= {0, 1, 2}
        # an exactly-1 (or 0) linear sample has only foreground (background) neighbours,
        # so the nearest-neighbour label must agree there
        assert np.all(lab[img > 1 - 1e-5] > 0) and np.all(lab[img < 1e-5] == 0)
        assert np.mean((img > 0.5) == (lab > 0)) > 0.97


@pytest.mark.parametrize("t", [T.RandomFlip(p=1.0), T.RandomRot90(planes=((0, 1), (1, 2)), p=1),
                               T.RandomAffine(p=1.0), T.RandomPatch((16, 30, 12), 0.5),
                               T.CropForeground(margin=2, source="label"), T.Resample(1.0)],
                         ids=lambda t: type(t).__name__)
def test_spatial_transforms_update_the_affine(t):
    """An image holding each voxel's physical z still does so under the new affine."""
    s = sample_3d()
    z = positions(s["affine"], s["label"].shape).astype(np.float32)
    s["image"] = z[None]
    for seed in range(3):
        out = t(s, np.random.default_rng(seed))
        znew = positions(out["affine"], out["label"].shape)
        inside = out["image"][0] != 0      # voxels filled from outside the input are 0
        if isinstance(t, T.Resample):      # border voxels repeat the edge there
            inside[[0, -1]] = inside[:, [0, -1]] = inside[:, :, [0, -1]] = False
        assert inside.mean() > 0.3
        np.testing.assert_allclose(out["image"][0][inside], znew[inside], atol=1e-3)


def test_spatial_transforms_on_2d_slices():
    label = sample_3d()["label"][10].astype(np.uint8)        # (22, 18)
    s = {"image": (label > 0).astype(np.float32)[None], "label": label}
    pipe = T.Compose([T.RandomPatch((16, 16), 0.5), T.RandomFlip(p=0.5), T.RandomRot90(p=1.0),
                      T.RandomAffine(p=1.0), T.RandomElastic(p=1.0, grid=5)])
    for seed in range(5):
        out = pipe(s, np.random.default_rng(seed))
        img, lab = out["image"][0], out["label"]
        assert img.shape == lab.shape == (16, 16)
        assert np.all(lab[img > 1 - 1e-5] > 0) and np.all(lab[img < 1e-5] == 0)
    with pytest.raises(ValueError, match="plane"):
        T.RandomRot90(planes=((1, 2),), p=1.0)(s, np.random.default_rng(0))


def test_elastic_drops_the_affine_and_is_smooth():
    s = sample_3d()
    out = T.RandomElastic(p=1.0, magnitude=1.5, grid=8)(s, np.random.default_rng(0))
    assert "affine" not in out
    coords = T.elastic_coordinates((30, 30, 30), 2.0, 10, np.random.default_rng(1))
    disp = coords - np.indices((30, 30, 30))
    assert 1.0 < disp.std() < 3.0
    assert np.abs(np.diff(disp, axis=1)).max() < 1.0        # neighbours move together


def test_resample_changes_spacing_and_keeps_extent():
    s = sample_3d()
    vol = Volume.from_affine(s["image"][0], s["affine"])
    lab = Volume.from_affine(s["label"].astype(np.uint8), s["affine"])
    for new in [(1.0, 1.0, 1.0), (3.0, 2.0, 1.5)]:
        r, rl = T.resample(vol, new), T.resample(lab, new, order=0)
        np.testing.assert_allclose(r.spacing, new)
        extent_old = np.asarray(vol.shape) * vol.spacing
        extent_new = np.asarray(r.shape) * r.spacing
        assert np.all(np.abs(extent_new - extent_old) <= np.asarray(new) + 1e-9)
        centre = lambda v: v.affine @ np.append((np.asarray(v.shape) - 1) / 2, 1)  # noqa
        np.testing.assert_allclose(centre(r), centre(vol), atol=1e-9)
        np.testing.assert_allclose(r.direction, vol.direction)
        assert rl.array.dtype == np.uint8 and set(np.unique(rl.array)) == {0, 1, 2}
        assert r.shape == rl.shape
    # fractions of each label survive a 2x upsampling
    up = T.resample(lab, (0.75, 0.6, 1.0), order=0).array
    for v in (1, 2):
        assert abs((up == v).mean() - (lab.array == v).mean()) < 0.02


def test_foreground_oversampling_fraction():
    label = np.zeros((40, 40, 40), np.int64)
    label[30:32, 5:7, 20:22] = 1                           # 8 voxels
    s = {"image": np.zeros((1, 40, 40, 40), np.float32), "label": label}
    s["fg_locations"] = T.foreground_locations(label)
    rng = np.random.default_rng(0)
    for frac, lo, hi in [(0.0, 0.0, 0.2), (0.5, 0.45, 0.7), (1.0, 1.0, 1.0)]:
        t = T.RandomPatch((10, 10, 10), fg_fraction=frac)
        hits = np.mean([t(s, rng)["label"].any() for _ in range(300)])
        assert lo <= hits <= hi, (frac, hits)


def test_hard_negative_patches():
    label = np.zeros((40, 40, 40), np.int64)
    label[30:32, 5:7, 20:22] = 1
    s = {"image": np.zeros((1, 40, 40, 40), np.float32), "label": label,
         "fg_locations": T.foreground_locations(label),
         "hard_locations": np.array([[5, 30, 8]])}
    marker = np.zeros((40, 40, 40), bool)
    marker[5, 30, 8] = True
    s["image"][0][marker] = 1.0
    rng = np.random.default_rng(0)
    t = T.RandomPatch((10, 10, 10), fg_fraction=0.3, hard_fraction=0.5)
    outs = [t(s, rng) for _ in range(400)]
    hard = np.mean([o["image"].any() for o in outs])
    assert 0.42 <= hard <= 0.62, hard          # 50% centred on the marked voxel, few by chance
    assert all("hard_locations" not in o for o in outs)
    # without hard_fraction the draws are those of the plain foreground sampler
    a = T.RandomPatch((10, 10, 10), 0.3)(s, np.random.default_rng(5))
    b = T.RandomPatch((10, 10, 10), 0.3, 0.0)({k: v for k, v in s.items()
                                               if k != "hard_locations"},
                                              np.random.default_rng(5))
    np.testing.assert_array_equal(a["affine"] if "affine" in a else a["label"],
                                  b["affine"] if "affine" in b else b["label"])
    with pytest.raises(ValueError, match="hard_fraction"):
        T.RandomPatch((10, 10, 10), 0.7, 0.5)


def test_patch_pads_small_inputs_and_crop_foreground():
    s = sample_3d(shape=(6, 30, 8))
    out = T.RandomPatch((10, 10, 10), 1.0)(s, np.random.default_rng(0))
    assert out["image"].shape == (1, 10, 10, 10) and out["label"].shape == (10, 10, 10)
    c = T.CropForeground(margin=1, source="label")(sample_3d())
    assert c["label"].shape == (14, 14, 13) and c["bbox"][0] == slice(4, 18)
    assert c["label"].sum() == sample_3d()["label"].sum()


def test_normalize_intensity():
    rng = np.random.default_rng(0)
    img = np.zeros((1, 10, 10, 10), np.float32)
    img[0, 2:8, 2:8, 2:8] = rng.normal(100, 20, (6, 6, 6))
    img[0, 5, 5, 5] = 1e4                                  # an outlier the clip removes
    out = T.NormalizeIntensity((1, 99))({"image": img})["image"][0]
    fg = out[2:8, 2:8, 2:8]
    assert abs(fg.mean()) < 1e-4 and abs(fg.std() - 1) < 1e-3
    assert np.all(out[0] == 0) and fg.max() < 4
    allv = T.NormalizeIntensity(None, nonzero=False)({"image": img})["image"]
    assert abs(allv.mean()) < 1e-5 and abs(allv.std() - 1) < 1e-4


def test_gamma_keeps_range_and_noise_is_gaussian():
    s = sample_3d()
    g = T.RandomGamma(p=1.0)(s, np.random.default_rng(0))
    assert np.isclose(g["image"].min(), s["image"].min()) and \
        np.isclose(g["image"].max(), s["image"].max())
    np.testing.assert_array_equal(g["label"], s["label"])
    n = T.RandomNoise(p=1.0, std=(0.5, 0.5))(s, np.random.default_rng(0))
    assert abs((n["image"] - s["image"]).std() - 0.5) < 0.02


def test_compose_chains_with_one_generator():
    pipe = T.Compose([T.NormalizeIntensity(), T.RandomPatch((8, 8, 8), 0.5),
                      T.RandomFlip(), T.RandomGamma(), T.RandomNoise()])
    a = pipe(sample_3d(), np.random.default_rng(3))
    b = pipe(sample_3d(), np.random.default_rng(3))
    np.testing.assert_array_equal(a["image"], b["image"])
    assert a["image"].shape == (1, 8, 8, 8) and a["image"].dtype == np.float32


# --------------------------------------------------------------------------- datasets
def test_segmentation_dataset_2d_slices_and_3d_patches():
    import framework
    from framework.utils.data import DataLoader
    t = phantom()
    case = case_from_volumes(t.image, t.labels, name="p")
    ds2 = SegmentationDataset([case], "2d", slices=[range(3, 9)])
    assert len(ds2) == 6
    x, y = ds2[2]
    assert x.shape == (1, 28, 26) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y, t.labels.array[5])
    flipped = TissueTemplate.from_maps(phantom(flip_z=True).image, t.grey.array, t.white.array)
    ds_all = SegmentationDataset([case, case_from_volumes(flipped.image, flipped.labels)], "2d",
                                 patch_size=(16, 16))
    assert len(ds_all) == 48 and ds_all[30][0].shape == (1, 16, 16)

    aug = T.Compose([T.RandomFlip(), T.RandomNoise(p=1.0)])
    ds3 = SegmentationDataset([case], "3d", (8, 12, 12), transform=aug,
                              preprocess=T.NormalizeIntensity(), samples_per_epoch=5, seed=4)
    assert len(ds3) == 5
    a, b = ds3[1], ds3[1]
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape == (1, 8, 12, 12) and a[1].shape == (8, 12, 12)
    ds3.set_epoch(1)
    assert not np.array_equal(ds3[1][0], a[0])
    xb, yb = next(iter(DataLoader(ds3, batch_size=4)))
    assert tuple(xb.shape) == (4, 1, 8, 12, 12) and yb.dtype == framework.int64
    with pytest.raises(ValueError, match="patch_size"):
        SegmentationDataset([case], "3d")


# ------------------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def mni():
    from datasets.mri import load_tissue_template
    return load_tissue_template()


@pytest.mark.realdata
def test_mni_tissue_labels_have_sensible_volumes(mni):
    assert mni.image.shape == (189, 233, 197) and mni.image.spacing == (1.0, 1.0, 1.0)
    assert mni.image.orientation == "axial" and axial_axis(mni.image.affine) == (0, 1)
    brain = mni.brain
    lab = mni.labels.array
    gm_ml, wm_ml = (lab == 1).sum() / 1000, (lab == 2).sum() / 1000   # 1 mm voxels -> ml
    assert 1700 < brain.sum() / 1000 < 2000
    assert 900 < gm_ml < 1300 and 500 < wm_ml < 800             # measured 1091 / 636 ml
    assert 0.45 < gm_ml / (brain.sum() / 1000) < 0.7
    assert 0.25 < wm_ml / (brain.sum() / 1000) < 0.45
    # white matter is brighter than grey matter in T1
    assert np.median(mni.image.array[lab == 2]) > np.median(mni.image.array[lab == 1]) + 30


@pytest.mark.realdata
def test_mni_case_at_2mm_from_dicom_and_split(tmp_path):
    from datasets.mri import load_tissue_template
    t = load_tissue_template(2.0)
    assert t.image.shape == (94, 116, 98)
    out = write_tissue_case(tmp_path, template=t)
    image, label = read_image(out["image"]), read_nifti(out["label"])
    np.testing.assert_allclose(image.affine, t.image.affine, atol=1e-4)
    np.testing.assert_allclose(image.array, t.image.array, atol=255 / 65535)
    np.testing.assert_allclose(label.affine, image.affine, atol=1e-4)
    np.testing.assert_array_equal(label.array, t.labels.array)
    s = axial_split(image, label.array > 0)
    z = (image.affine @ np.stack([np.arange(94), np.zeros(94), np.zeros(94), np.ones(94)]))[2]
    assert z[s.train].max() < z[s.gap].min() and z[s.gap].max() < z[s.test].min()
    for part in (s.train, s.test):   # both parts hold grey and white matter
        assert {1, 2} <= set(np.unique(label.array[part]))


@pytest.mark.realdata
def test_lesion_case_on_the_mni_template_is_fast_and_inside_the_brain():
    from datasets.mri import load_tissue_template
    t = load_tissue_template(2.0)
    start = time.perf_counter()
    case = make_lesion_case(0, seed=0, template=t)
    assert time.perf_counter() - start < 2.0
    lab = case.label.array
    assert lab.sum() > 20 and np.all(case.image.array[lab > 0] > 0)
    assert not np.array_equal(make_lesion_case(1, seed=0, template=t).label.array, lab)
