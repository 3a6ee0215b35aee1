"""The weights Lantern trains and ships: their records hold, they reproduce their figures
through the CLI, and the LeNet-5 generalises to unseen official MNIST test digits."""
import json

import pytest

import models
from apps.cli import main
from datasets import sha256_file


@pytest.mark.parametrize("name", ["lenet5.mnist5k", "small_cnn.digits"])
def test_shipped_records_are_consistent(name):
    w = models.get_weights(name)
    path = models.weights_path(w)
    assert path.stat().st_size < 1 << 20 and sha256_file(path) == w.sha256
    model = models.get_model(w.model, weights=w)
    assert sum(p.numel() for p in model.parameters()) == w.num_params
    assert w.recipe.startswith("lantern vision train") and 0.98 <= w.metrics["accuracy"] <= 1
    assert w.transforms["preset"] == "eval" and len(w.categories) == 10


def test_digits_weights_score_their_record(tmp_path):
    assert main(["vision", "eval", "--model", "zoo:small_cnn.digits", "--data", "digits",
                 "--out", str(tmp_path)]) == 0
    got = json.loads((tmp_path / "metrics.json").read_text())["test"]["accuracy"]
    assert got == pytest.approx(models.get_weights("small_cnn.digits").metrics["accuracy"],
                                abs=5e-5)


@pytest.mark.realdata
def test_lenet5_scores_its_record_and_reads_unseen_mnist(tmp_path, capsys):
    import datasets
    assert main(["vision", "eval", "--model", "zoo:lenet5.mnist5k", "--data", "mnist5k",
                 "--out", str(tmp_path)]) == 0
    got = json.loads((tmp_path / "metrics.json").read_text())["test"]["accuracy"]
    assert got == models.get_weights("lenet5.mnist5k").metrics["accuracy"]
    capsys.readouterr()
    folder = datasets.fetch("mnist-samples")
    assert main(["vision", "predict", "--model", "zoo:lenet5.mnist5k", str(folder),
                 "--format", "json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    truth = [p["path"].rsplit("_", 1)[1][0] for p in preds]
    assert len(preds) == 3 and [p["labels"][0][0] for p in preds] == truth


@pytest.mark.slow
def test_zoo_build_reproduces_the_digits_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANTERN_HOME", str(tmp_path / "home"))
    assert main(["vision", "zoo-build", "small_cnn.digits", "--out", str(tmp_path / "run")]) == 0
    got = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"]
    assert got == pytest.approx(models.get_weights("small_cnn.digits").metrics["accuracy"],
                                abs=0.005)
    assert (tmp_path / "home" / "zoo" / "small_cnn.digits.safetensors").is_file()
