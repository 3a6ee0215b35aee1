"""`lantern mri`: info, make-data, train (1 epoch of a tiny U-Net), segment, evaluate and
one-line errors, all on a small phantom template (never the real MNI one), plus the poly
learning-rate schedule."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import framework as fw
from apps.cli import main
from apps.common.optim import build_scheduler
from datasets.mri import Volume, read_series, write_label_nifti, write_nifti, write_series
from datasets.mri.mni import _FILE

sys.path.insert(0, str(Path(__file__).parent))
from test_mri_data import phantom  # noqa: E402


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory) -> Path:
    """The phantom as the three template NIfTI files `--template` reads."""
    d = tmp_path_factory.mktemp("template")
    t = phantom(shape=(24, 28, 26))
    write_nifti(t.image, d / _FILE.format("t1"))
    write_nifti(t.grey.with_array(t.grey.array * 255), d / _FILE.format("gm"))
    write_nifti(t.white.with_array(t.white.array * 255), d / _FILE.format("wm"))
    return d


@pytest.fixture(scope="module")
def tissue(template_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tissue")
    assert main(["mri", "make-data", "--task", "tissue", "--out", str(out),
                 "--template", str(template_dir)]) == 0
    return out


@pytest.fixture(scope="module")
def run(template_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert main(["mri", "train", "--task", "tissue", "--template", str(template_dir),
                 "--dims", "2d", "--patch-size", "16,16", "--channels", "4,8", "--epochs", "1",
                 "--batch-size", "8", "--out", str(out), "--no-plots"]) == 0
    return out


def test_poly_schedule_decays_to_zero_with_power_0_9():
    p = fw.nn.Parameter(fw.zeros(1))
    opt = fw.optim.SGD([p], lr=0.1)
    sched = build_scheduler("poly", opt, epochs=2, steps_per_epoch=5)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [0.1 * (1 - t / 10) ** 0.9 for t in range(10)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_info_lists_the_series_with_geometry(tissue, capsys):
    assert main(["mri", "info", str(tissue / "image")]) == 0
    out = capsys.readouterr().out
    uid = read_series(tissue / "image").meta["series_uid"]
    assert "1 image series" in out and uid in out
    assert "24x28x26" in out and "axial" in out
    assert "origin (90, 120, -40) mm" in out and "affine" in out
    assert "+2.0000      +0.0000      +0.0000     -40.0000" in out   # affine's z row


def test_info_and_segment_with_two_series_fail_in_one_line(tissue, run, tmp_path, capsys):
    vol = read_series(tissue / "image")
    write_series(vol, tmp_path / "a", series_number=1)
    write_series(vol.with_array(vol.array[:, ::-1].copy()), tmp_path / "b", series_number=2)
    assert main(["mri", "info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 image series" in out and "affine" not in out
    rc = main(["mri", "segment", "--checkpoint", str(run), "--input", str(tmp_path),
               "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert "2 image series found" in err and "--series" in err
    assert main(["mri", "segment", "--checkpoint", str(run), "--input", str(tmp_path),
                 "--series", "2", "--output", str(tmp_path / "out"), "--format", "nifti"]) == 0


def test_make_data_lesion_writes_msd_layout_and_dicom(template_dir, tmp_path, capsys):
    out = tmp_path / "lesions"
    assert main(["mri", "make-data", "--task", "lesion", "--cases", "2", "--out", str(out),
                 "--template", str(template_dir), "--seed", "3"]) == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["numTraining"] == 2 and info["seed"] == 3
    for entry in info["training"]:
        assert (out / entry["image"]).is_file() and (out / entry["label"]).is_file()
        assert len(list((out / entry["dicom"]).iterdir())) == 24   # one file per slice
    assert "done in" in capsys.readouterr().out


def test_train_writes_the_metrics_contract_and_files(run):
    m = json.loads((run / "metrics.json").read_text())
    test = m["test"]
    assert set(test["dice"]) == {"grey matter", "white matter"}
    assert set(test["hd95_mm"]) == {"grey matter", "white matter"}
    defined = [v for v in test["dice"].values() if v is not None]
    assert defined and all(0.0 <= v <= 1.0 for v in defined)
    assert test["mean_dice"] == pytest.approx(np.mean(defined))
    assert m["epochs"] == 1 and m["seconds"] > 0 and len(m["history"]) == 1
    assert "val/dice" in m["history"][0]
    for name in ("metrics.csv", "test_metrics.csv", "last.safetensors"):
        assert (run / name).is_file()
    assert list((run / "overlays").glob("*.png"))


def test_train_rejects_a_patch_the_unet_cannot_halve(template_dir, tmp_path, capsys):
    rc = main(["mri", "train", "--task", "tissue", "--template", str(template_dir),
               "--patch-size", "15,16", "--channels", "4,8", "--epochs", "1",
               "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "divide by 2" in err


def test_segment_writes_a_dicom_seg_and_nifti_on_the_source_grid(tissue, run, tmp_path,
                                                                 capsys):
    import highdicom as hd
    import pydicom
    from datasets.mri import read_nifti
    out = tmp_path / "seg"
    assert main(["mri", "segment", "--checkpoint", str(run), "--input", str(tissue / "image"),
                 "--output", str(out), "--format", "seg", "--format", "nifti"]) == 0
    assert " s; " in capsys.readouterr().out          # seconds per case
    src = read_series(tissue / "image")
    seg = hd.seg.Segmentation.from_dataset(pydicom.dcmread(out / "image_seg.dcm"))
    assert seg.SeriesInstanceUID != src.meta["series_uid"]
    refs = {r.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence
            if s.SeriesInstanceUID == src.meta["series_uid"] for r in s.ReferencedInstanceSequence}
    assert len(refs) == 24
    names = [s.SegmentLabel for s in seg.SegmentSequence]
    assert names == ["grey matter", "white matter"]
    lab = read_nifti(out / "image_seg.nii.gz")
    np.testing.assert_allclose(lab.affine, src.affine, atol=1e-4)
    assert lab.array.max() <= 2
    rc = main(["mri", "segment", "--checkpoint", str(run), "--input",
               str(out / "image_seg.nii.gz"), "--output", str(tmp_path / "x"), "--format", "seg"])
    err = capsys.readouterr().err
    assert rc == 1 and "needs a DICOM input" in err and len(err.strip().splitlines()) == 1


def _vol(array):
    return Volume(array.astype(np.uint8), (1.0, 1.0, 2.0), (0, 0, 0), np.eye(3))


def test_evaluate_gives_the_known_dice(tmp_path, capsys):
    gt = np.zeros((8, 10, 10), np.uint8)
    gt[2:6, 2:6, 2:6] = 1                       # 64 voxels
    pred = np.zeros_like(gt)
    pred[2:6, 2:6, 2:4] = 1                     # 32 voxels, all inside
    pred[0, 0, 0] = 2
    ref = _vol(gt)
    write_label_nifti(gt, ref, tmp_path / "gt.nii.gz")
    write_label_nifti(pred, ref, tmp_path / "pred.nii.gz")
    out = tmp_path / "eval"
    assert main(["mri", "evaluate", "--pred", str(tmp_path / "pred.nii.gz"), "--gt",
                 str(tmp_path / "gt.nii.gz"), "--labels", "1=lesion", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())["test"]
    assert m["dice"] == {"lesion": pytest.approx(2 * 32 / 96)}
    assert m["mean_dice"] == pytest.approx(2 / 3)
    assert m["hd95_mm"]["lesion"] > 0
    assert "lesion" in capsys.readouterr().out
    assert (out / "metrics.csv").read_text().startswith("label,value,dice")


def test_evaluate_geometry_mismatch_is_one_line(tmp_path, capsys):
    a = np.zeros((8, 10, 10), np.uint8)
    a[2:4, 2:4, 2:4] = 1
    write_label_nifti(a, _vol(a), tmp_path / "a.nii.gz")
    shifted = Volume(a, (1.0, 1.0, 2.0), (5, 0, 0), np.eye(3))
    write_label_nifti(a, shifted, tmp_path / "b.nii.gz")
    rc = main(["mri", "evaluate", "--pred", str(tmp_path / "b.nii.gz"), "--gt",
               str(tmp_path / "a.nii.gz"), "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "b.nii.gz" in err


def test_missing_input_is_one_line(tmp_path, capsys):
    assert main(["mri", "info", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"lantern: error: {tmp_path / 'nope'}: no such file or folder"


def test_predict_volume_leaves_empty_regions_background():
    """Only the nonzero region is segmented: all-zero slices (above the head, padding) come
    out as background whatever the network would say about a constant input."""
    import framework as fw
    import models
    from apps.mri.recipe import predict_volume
    fw.manual_seed(0)
    model = models.get_model("unet2d", num_classes=3, channels=(4, 8))
    with fw.no_grad():                       # a head biased towards label 2 everywhere
        model.head.bias.copy_(fw.tensor([0.0, 0.0, 50.0]))
    image = np.zeros((1, 10, 16, 16), np.float32)
    image[0, 3:6, 4:12, 5:11] = np.random.default_rng(0).standard_normal((3, 8, 6)) + 2
    pred = predict_volume(model, image, np.eye(4), "2d", (16, 16))
    assert pred.shape == (10, 16, 16)
    assert not pred[:3].any() and not pred[6:].any() and (pred[3:6, 4:12, 5:11] == 2).all()


def _lesion_train(template_dir, out, *extra):
    return main(["mri", "train", "--task", "lesion", "--template", str(template_dir),
                 "--cases", "3", "--test-cases", "2", "--dims", "3d", "--patch-size",
                 "8,8,8", "--channels", "2,4", "--samples-per-epoch", "4", "--batch-size",
                 "2", "--out", str(out), "--no-plots", *extra])


def test_lesion_task_trains_a_3d_unet_and_tests_on_held_out_cases(template_dir, tmp_path):
    out = tmp_path / "lesion"
    assert _lesion_train(template_dir, out, "--epochs", "1", "--augment", "strong") == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["test"]["dice"]) == {"lesion"} and m["model"] == "unet3d"
    assert "2 held-out test cases (indices 10000+)" in m["protocol"]
    cases = {r.split(",")[0] for r in (out / "test_metrics.csv").read_text().splitlines()[1:]}
    assert cases == {"lesion_10000", "lesion_10001"}     # never the training indices
    assert m["inference_seconds_per_case"] > 0


def test_resumed_training_matches_an_uninterrupted_run(template_dir, tmp_path):
    """2 epochs, or 1 epoch then --resume for a 2nd: the same weights, bit for bit (a
    constant learning rate, since a schedule's length follows --epochs)."""
    from apps.common import load_checkpoint
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["--augment", "light", "--scheduler", "constant"]
    assert _lesion_train(template_dir, full, "--epochs", "2", *args) == 0
    assert _lesion_train(template_dir, part, "--epochs", "1", *args) == 0
    assert _lesion_train(template_dir, part, "--epochs", "2", *args,
                         "--resume", str(part / "last.safetensors")) == 0
    a, b = load_checkpoint(full)["model"], load_checkpoint(part)["model"]
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
    hist = json.loads((part / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2]


def test_hard_negative_mining_and_ema_resume_exactly(template_dir, tmp_path, capsys):
    """With --hard-negatives (mining at the start of epochs 2 and 3, one case each) and --ema:
    3 epochs, or 2 then --resume for the 3rd, give the same weights; the mined voxels are
    background that the model marked, and travel in the checkpoint."""
    from apps.common import load_checkpoint
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["--scheduler", "constant", "--fg-fraction", "0.5", "--hard-negatives", "0.4",
            "--ema", "0.9"]
    assert _lesion_train(template_dir, full, "--epochs", "3", *args) == 0
    assert "mined" in capsys.readouterr().out
    assert _lesion_train(template_dir, part, "--epochs", "2", *args) == 0
    assert _lesion_train(template_dir, part, "--epochs", "3", *args,
                         "--resume", str(part / "last.safetensors")) == 0
    a, b = load_checkpoint(full), load_checkpoint(part)
    for k in a["model"]:
        np.testing.assert_array_equal(np.asarray(a["model"][k]), np.asarray(b["model"][k]),
                                      err_msg=k)
    mined = a["callbacks"]["MineHardNegatives"]
    assert mined["rounds"] == 2 and set(mined["mined"]) <= {"0", "1"}
    for where in mined["mined"].values():
        assert where.numpy().ndim == 2 and where.numpy().shape[1] == 3
    assert a["callbacks"]["WeightAveraging"]["n_averaged"] == 3 * 2


@pytest.mark.parametrize("extra, message", [
    (["--dims", "2d", "--patch-size", "8,8", "--hard-negatives", "0.2"], "applies to --dims 3d"),
    (["--fg-fraction", "0.9", "--hard-negatives", "0.2"], "1 - --fg-fraction"),
])
def test_hard_negatives_bad_values_are_one_line(template_dir, tmp_path, capsys, extra, message):
    assert _lesion_train(template_dir, tmp_path / "x", "--epochs", "1", *extra) == 1
    assert message in capsys.readouterr().err


def test_train_on_an_msd_folder_then_export_and_segment_nifti(template_dir, tmp_path, capsys):
    data = tmp_path / "msd"
    assert main(["mri", "make-data", "--task", "lesion", "--cases", "4", "--out", str(data),
                 "--template", str(template_dir)]) == 0
    run = tmp_path / "run"
    assert main(["mri", "train", "--data", str(data), "--dims", "2d", "--patch-size", "16,16",
                 "--channels", "2,4", "--epochs", "1", "--out", str(run), "--no-plots"]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert "4 cases split 70/15/15" in m["protocol"] and set(m["test"]["dice"]) == {"lesion"}
    exported = tmp_path / "model.safetensors"
    assert main(["mri", "export", "--checkpoint", str(run), "--out", str(exported)]) == 0
    meta = json.loads(exported.with_suffix(".json").read_text())
    assert meta["task"] == "mri-segmentation" and meta["labels"] == ["background", "lesion"]
    image = data / "imagesTr" / "lesion_000.nii.gz"
    seg = tmp_path / "seg"
    assert main(["mri", "segment", "--checkpoint", str(exported), "--input", str(image),
                 "--output", str(seg)]) == 0
    assert (seg / "lesion_000_seg.nii.gz").is_file()
    capsys.readouterr()
    rc = main(["mri", "segment", "--checkpoint", "zoo:unet2d.nope", "--input", str(image),
               "--output", str(seg)])
    assert rc == 1 and "unet2d" in capsys.readouterr().err


def test_augmentation_keeps_image_and_label_aligned():
    from apps.mri.recipe import build_augmentation
    rng = np.random.default_rng(0)
    label = np.zeros((12, 12, 12), np.int64)
    label[2:5, 3:9, 4:6] = 1
    image = np.where(label == 1, 5.0, 0.0).astype(np.float32)[None]
    aug = build_augmentation("strong", "3d")
    for _ in range(10):
        s = aug({"image": image.copy(), "label": label.copy()}, rng)
        assert s["image"].shape == (1, 12, 12, 12) and s["label"].shape == (12, 12, 12)
        bright = s["image"][0] > 2.5
        # flips and rotations move both; gamma and noise change intensities, not places
        assert (bright == (s["label"] == 1)).mean() > 0.97
    assert build_augmentation("none", "2d") is None


def test_zoo_record_not_built_names_the_build_command(tmp_path, monkeypatch, capsys):
    import models
    monkeypatch.setenv("LANTERN_HOME", str(tmp_path / "home"))
    w = models.get_weights("unet2d.mni152-tissue")
    assert w.recipe.startswith("lantern mri train --task tissue") and w.metrics["dice"] > 0.9
    rc = main(["mri", "segment", "--checkpoint", "zoo:unet2d.mni152-tissue", "--input",
               str(tmp_path), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1 and "lantern zoo build unet2d.mni152-tissue" in err
