"""`lantern vision` end to end on tiny synthetic folders: train, eval, predict, export, models,
resume bit for bit, and the bad inputs the issue lists (each one clear line, exit code 1)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import framework as fw
from apps.cli import main
from datasets.vision import Shapes


def _folder(root: Path, n_per_class=10, size=16, gray=False) -> Path:
    ds = Shapes(n_per_class=n_per_class, size=size, seed=1)
    for i in range(len(ds)):
        img, y = ds[i]
        d = root / ds.classes[y]
        d.mkdir(parents=True, exist_ok=True)
        arr = img.mean(axis=2).astype(np.uint8) if gray else img
        Image.fromarray(arr).save(d / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _folder(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """One small training run shared by the read-only tests."""
    out = tmp_path_factory.mktemp("run")
    rc = main(["vision", "train", "--model", "small_cnn", "--data", str(data), "--epochs", "2",
               "--batch-size", "8", "--lr", "0.05", "--out", str(out), "--val-fraction", "0.2"])
    assert rc == 0
    return out


def _train(args, out):
    return main(["vision", "train", *args, "--out", str(out), "--no-plots"])


def test_train_writes_the_contract(run):
    m = json.loads((run / "metrics.json").read_text())
    assert m["epochs"] == 2 and m["seconds"] > 0 and m["model"] == "small_cnn"
    assert 0.0 <= m["test"]["accuracy"] <= 1.0 and m["test"]["top5"] == 1.0  # 4 classes
    assert m["test"]["count"] == 8   # 20 % of 40 images
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch,lr,train/loss,train/accuracy")
    for f in ("last.safetensors", "best.safetensors", "curves.png", "confusion.png",
              "confusion.txt", "per_class.csv"):
        assert (run / f).stat().st_size > 0, f
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_predict_export_agree(run, data, tmp_path, capsys):
    ck = str(run / "best.safetensors")
    assert main(["vision", "eval", "--checkpoint", ck, "--data", str(data), "--val-fraction",
                 "0.2", "--out", str(tmp_path / "e")]) == 0
    ev = json.loads((tmp_path / "e" / "metrics.json").read_text())
    train_m = json.loads((run / "metrics.json").read_text())
    assert ev["test"]["accuracy"] == train_m["test"]["accuracy"]
    assert set(ev["test"]["per_class"]) == {"circle", "cross", "square", "triangle"}
    assert "true \\ predicted" in capsys.readouterr().out

    images = sorted(str(p) for p in data.rglob("*.png"))[:5]
    assert main(["vision", "predict", "--checkpoint", ck, *images, "--topk", "2",
                 "--format", "json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert [p["path"] for p in preds] == images
    assert all(len(p["labels"]) == 2 and p["scores"][0] >= p["scores"][1] for p in preds)

    exported = tmp_path / "model.safetensors"
    assert main(["vision", "export", "--checkpoint", ck, "--out", str(exported)]) == 0
    meta = json.loads(exported.with_suffix(".json").read_text())
    assert meta["classes"] == ["circle", "cross", "square", "triangle"]
    assert meta["model"] == "small_cnn" and len(meta["sha256"]) == 64
    capsys.readouterr()
    assert main(["vision", "predict", "--checkpoint", str(exported), *images, "--topk", "2",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == preds   # the export alone is enough


def test_predict_reads_stdin_and_folders(run, data, monkeypatch, capsys):
    import io
    paths = sorted(str(p) for p in data.rglob("*.png"))[:3]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(paths) + "\n"))
    assert main(["vision", "predict", "--checkpoint", str(run / "last.safetensors"), "-",
                 "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "path,label1,score1" and [l.split(",")[0] for l in lines[1:]] == paths
    assert main(["vision", "predict", "--checkpoint", str(run / "last.safetensors"),
                 str(data / "circle")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 10


def test_resume_continues_bit_for_bit(data, tmp_path):
    args = ["--model", "small_cnn", "--data", str(data), "--batch-size", "8",
            "--scheduler", "constant", "--augment", "default", "--seed", "3"]
    assert _train(args + ["--epochs", "3"], tmp_path / "full") == 0
    assert _train(args + ["--epochs", "1"], tmp_path / "part") == 0
    assert _train(args + ["--epochs", "3", "--resume", str(tmp_path / "part")],
                  tmp_path / "part") == 0
    a = fw.load(tmp_path / "full" / "last.safetensors")
    b = fw.load(tmp_path / "part" / "last.safetensors")
    for k in a["model"]:
        assert np.array_equal(a["model"][k].numpy(), b["model"][k].numpy()), k
    drop = ("seconds", "train/images_per_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in a["history"]] == \
           [{k: v for k, v in r.items() if k not in drop} for r in b["history"]]
    assert (tmp_path / "part" / "metrics.csv").read_text().count("\n") == 4


def test_mixup_cutmix_amp_and_workers_run(data, tmp_path):
    args = ["--model", "small_cnn", "--data", str(data), "--batch-size", "8", "--epochs", "1"]
    assert _train(args + ["--mixup", "0.2", "--cutmix", "1.0", "--label-smoothing", "0.1"],
                  tmp_path / "mix") == 0
    assert _train(args + ["--amp"], tmp_path / "amp") == 0
    h = fw.load(tmp_path / "amp" / "last.safetensors")["history"]
    assert np.isfinite(h[0]["train/loss"])
    assert _train(args + ["--workers", "2"], tmp_path / "w1") == 0
    assert _train(args + ["--workers", "2"], tmp_path / "w2") == 0
    one = json.loads((tmp_path / "w1" / "metrics.json").read_text())["final_epoch"]
    two = json.loads((tmp_path / "w2" / "metrics.json").read_text())["final_epoch"]
    assert one["train/loss"] == two["train/loss"]     # per-worker seeding is reproducible


def test_corrupt_image_fails_or_is_skipped(tmp_path, capsys):
    data = _folder(tmp_path / "d", n_per_class=4)
    bad = data / "circle" / "zz_bad.png"
    bad.write_bytes(Image.open(next((data / "circle").glob("*.png"))).tobytes()[:50])
    args = ["--data", str(data), "--epochs", "1", "--batch-size", "4", "--val-fraction", "0"]
    assert _train(args, tmp_path / "o1") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "zz_bad.png: cannot decode image" in err[0]
    assert _train(args + ["--skip-bad"], tmp_path / "o2") == 0
    assert "skipped 1 image(s)" in capsys.readouterr().out


def test_empty_class_folder_and_bad_idx(tmp_path, capsys):
    data = _folder(tmp_path / "d", n_per_class=2)
    (data / "empty").mkdir()
    assert _train(["--data", str(data), "--epochs", "1"], tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "empty" in err and "no images" in err and err.count("\n") == 1
    idx = tmp_path / "mnist"
    idx.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (idx / name).write_bytes(b"\x12\x34\x08\x03" + bytes(16))
    assert _train(["--data", f"mnist:{idx}", "--epochs", "1"], tmp_path / "o3") == 1
    err = capsys.readouterr().err
    assert "wrong IDX magic 0x12340803" in err and err.count("\n") == 1


def test_grayscale_image_given_to_rgb_model_is_converted(run, tmp_path, capsys):
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(gray)
    with pytest.warns(UserWarning, match="grayscale"):
        assert main(["vision", "predict", "--checkpoint", str(run / "best.safetensors"),
                     str(gray)]) == 0
    assert "gray.png" in capsys.readouterr().out


def test_wrong_architecture_and_missing_files(run, data, tmp_path, capsys):
    rc = _train(["--model", "mlp", "--data", str(data), "--epochs", "3", "--resume",
                 str(run / "last.safetensors")], tmp_path / "x")
    err = capsys.readouterr().err
    assert rc == 1 and "is not this mlp" in err and "missing from the file: 1.weight" in err
    assert main(["vision", "predict", "--checkpoint", str(run / "best.safetensors"),
                 str(tmp_path / "nope.png")]) == 1
    assert capsys.readouterr().err.strip() == \
        f"lantern: error: {tmp_path / 'nope.png'}: no such image file"
    assert main(["vision", "eval", "--checkpoint", str(tmp_path / "none.safetensors"),
                 "--data", str(data)]) == 1
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["vision", "train", "--model", "nonet", "--data", str(data)]) == 1
    assert "unknown vision model 'nonet'" in capsys.readouterr().err
    assert main(["vision", "train", "--data", "no-such-source"]) == 1
    assert "no-such-source" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["vision", "train", "--epochs", "many"])
    assert exc.value.code == 2
    assert main(["vision"]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_models_listing(capsys):
    assert main(["vision", "models"]) == 0
    out = capsys.readouterr().out
    for name in ("lenet5", "resnet18", "mobilenet_v2", "vgg11_bn", "vit_tiny", "mtcnn_onet"):
        assert name in out
    assert main(["vision", "models", "resnet18"]) == 0
    assert "parameters: 11,689,512" in capsys.readouterr().out


def test_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "apps.vision", "--help"], capture_output=True,
                       text=True, cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0 and "zoo-build" in r.stdout


def test_split_seed_is_kept_apart_from_seed_and_followed_by_eval(data, tmp_path):
    """--split-seed draws the train/val/test split, --seed only the training's randomness;
    eval without the flag evaluates on the split the checkpoint was trained on (the same
    test accuracy and count as training reported), with it on another."""
    out = tmp_path / "run"
    assert _train(["--model", "small_cnn", "--data", str(data), "--epochs", "1", "--batch-size",
                   "8", "--val-fraction", "0.2", "--seed", "5", "--split-seed", "3"], out) == 0
    trained = json.loads((out / "metrics.json").read_text())["test"]
    assert fw.load(out / "last.safetensors")["meta"]["args"]["split_seed"] == 3
    ck = str(out / "last.safetensors")
    assert main(["vision", "eval", "--checkpoint", ck, "--data", str(data), "--val-fraction",
                 "0.2", "--out", str(tmp_path / "e")]) == 0
    ev = json.loads((tmp_path / "e" / "metrics.json").read_text())["test"]
    assert (ev["accuracy"], ev["count"]) == (trained["accuracy"], trained["count"])
