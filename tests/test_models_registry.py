"""The model zoo's registry (models/registry.py) and checkpoint import (models/weights.py):
lookup and its errors, weights records resolved from files with hash checks, and
`load_pretrained` on PyTorch, safetensors and Lantern checkpoints."""
from __future__ import annotations

import json
import struct
from collections import OrderedDict

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import models
from datasets import sha256_file
from models import registry
from models import weights as weights_mod
from models.registry import Weights, register_model, register_weights


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 10, hidden: int = 8) -> None:
        super().__init__()
        self.body = nn.Linear(4, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.fc(self.bn(self.body(x)).relu())


@pytest.fixture
def zoo(monkeypatch, tmp_path):
    """A private copy of the registry holding `tinynet` (two weights records, `a` from a
    repo: file and `b`) and `plainnet` (no weights); models_root() is tmp_path."""
    models.list_models()   # import every domain before copying the table
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    monkeypatch.setattr(weights_mod, "models_root", lambda: tmp_path)
    monkeypatch.setenv("LANTERN_HOME", str(tmp_path / "home"))

    @register_model("tinynet", domain="vision")
    def tinynet(*, num_classes: int = 10, hidden: int = 8) -> TinyNet:
        """A two-layer test network."""
        return TinyNet(num_classes, hidden)

    @register_model("plainnet", domain="vision")
    def plainnet(*, num_classes: int = 10) -> TinyNet:
        """No weights."""
        return TinyNet(num_classes)

    trained = TinyNet(3, hidden=6).eval()
    with fw.no_grad():
        trained.bn.running_mean.copy_(fw.randn(6))
        trained.bn.running_var.copy_(fw.rand(6) + 0.5)
    (tmp_path / "zoo").mkdir()
    path = tmp_path / "zoo" / "tiny.safetensors"
    fw.save(trained.state_dict(), path)
    common = dict(model="tinynet", num_params=sum(p.numel() for p in trained.parameters()),
                  categories=("x", "y", "z"), metrics={"accuracy": 0.5}, transforms={},
                  recipe="python train_tiny.py --out zoo/tiny.safetensors",
                  builder_kwargs={"hidden": 6})
    register_weights(Weights(tag="a", file="repo:zoo/tiny.safetensors",
                             sha256=sha256_file(path), **common))
    register_weights(Weights(tag="b", file="repo:zoo/tiny.safetensors", sha256="0" * 64,
                             **common))
    register_weights(Weights(tag="c", file="cache:tiny-c.safetensors", sha256="",
                             **common))
    return trained


# --- lookup -----------------------------------------------------------------------------------

def test_list_models_and_lookup_errors():
    names = models.list_models("vision")
    assert names == sorted(names) and "resnet18" in names and "mtcnn_onet" in names
    assert set(names) <= set(models.list_models())
    with pytest.raises(ValueError, match="unknown domain 'pictures'"):
        models.list_models("pictures")
    with pytest.raises(KeyError, match="unknown model 'resnet19'.*resnet18"):
        models.get_entry("resnet19")
    with pytest.raises(KeyError, match="resnet19"):
        models.get_model("resnet19")
    assert models.get_entry("resnet18").doc.startswith("ResNet-18")


def test_register_errors(zoo):
    with pytest.raises(ValueError, match="'tinynet' is already registered"):
        register_model("tinynet", domain="vision")(lambda: None)
    w = models.get_weights("tinynet.a")
    with pytest.raises(ValueError, match="'tinynet.a' are already registered"):
        register_weights(w)
    with pytest.raises(KeyError, match="model 'ghost' is not registered"):
        register_weights(Weights(**{**w.__dict__, "model": "ghost"}))


def test_get_weights_by_name_and_default(zoo):
    assert models.get_weights("tinynet").tag == "a"
    assert models.get_weights("tinynet.DEFAULT").tag == "a"
    assert models.get_weights("tinynet.b").tag == "b"
    assert [w.tag for w in models.list_weights("tinynet")] == ["a", "b", "c"]
    assert models.get_weights("tinynet.a").meta()["name"] == "tinynet.a"
    json.dumps(models.get_weights("tinynet.a").meta())   # JSON-able
    with pytest.raises(KeyError, match="no weights 'zzz'; it has: a, b, c"):
        models.get_weights("tinynet.zzz")
    with pytest.raises(KeyError, match="'plainnet' has no pretrained weights"):
        models.get_weights("plainnet")


def test_get_model_with_repo_weights(zoo):
    net = models.get_model("tinynet", weights="a").eval()
    assert tuple(net.fc.weight.shape) == (3, 6)          # num_classes from the categories
    x = fw.randn(5, 4)
    with fw.no_grad():
        np.testing.assert_array_equal(net(x).numpy(), zoo(x).numpy())
    same = models.get_model("tinynet", weights=models.get_weights("tinynet.a"), num_classes=3)
    assert tuple(same.fc.weight.shape) == (3, 6)
    with pytest.raises(ValueError, match="need num_classes=3, got 5"):
        models.get_model("tinynet", weights="a", num_classes=5)
    with pytest.raises(ValueError, match="belong to model 'tinynet', not 'plainnet'"):
        models.get_model("plainnet", weights="tinynet.a")


def test_sha_mismatch_is_an_error_naming_the_file_and_recipe(zoo, tmp_path):
    with pytest.raises(ValueError, match=r"tiny\.safetensors: sha256 [0-9a-f]{64} is not the "
                                         r"registered 0+ .*python train_tiny\.py"):
        models.get_model("tinynet", weights="b")


def test_missing_cache_file_names_the_recipe(zoo, tmp_path):
    with pytest.raises(models.WeightsNotFoundError,
                       match=r"'tinynet.c' are not built.*tiny-c\.safetensors.*"
                             r"python train_tiny\.py"):
        models.get_model("tinynet", weights="c")
    assert models.weights_path(models.get_weights("tinynet.c")) == \
        tmp_path / "home" / "zoo" / "tiny-c.safetensors"
    with pytest.raises(ValueError, match="unknown file location 'ftp:x'"):
        models.weights_path(Weights(**{**models.get_weights("tinynet.a").__dict__,
                                       "file": "ftp:x"}))


# --- load_pretrained --------------------------------------------------------------------------

def _state(num_classes=5, hidden=8):
    net = TinyNet(num_classes, hidden)
    with fw.no_grad():
        net.bn.running_var.copy_(fw.rand(hidden) + 0.5)
        net.bn.num_batches_tracked.fill_(9)
    return net, {k: v.clone() for k, v in net.state_dict().items()}


def _assert_loaded(model, sd, skip=()):
    own = model.state_dict()
    for k, v in sd.items():
        if k not in skip:
            np.testing.assert_array_equal(own[k].numpy(), v.numpy(), err_msg=k)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod.",
                                    "_orig_mod.module."])
def test_prefixes_are_stripped(prefix):
    _, sd = _state()
    model = TinyNet(5)
    report = models.load_pretrained(model, {prefix + k: v for k, v in sd.items()}, strict=True)
    assert report.complete and sorted(report.loaded) == sorted(sd)
    _assert_loaded(model, sd)


def test_wrapped_checkpoint_is_unwrapped_and_num_batches_tracked_may_be_absent():
    _, sd = _state()
    without = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    model = TinyNet(5)
    report = models.load_pretrained(model, {"state_dict": without, "epoch": 3}, strict=True)
    assert report.complete and "bn.num_batches_tracked" not in report.loaded
    assert int(model.bn.num_batches_tracked.item()) == 0      # left as it was
    _assert_loaded(model, without)


def test_head_mismatch_is_reinitialised_and_reported():
    _, sd = _state(num_classes=5)
    model = TinyNet(3)
    before = model.fc.weight.detach().numpy().copy()
    report = models.load_pretrained(model, sd)
    assert report.mismatched == {"fc.weight": ((5, 8), (3, 8)), "fc.bias": ((5,), (3,))}
    assert not report.complete and not report.missing and not report.unexpected
    assert "fc.weight file [5, 8] vs model [3, 8]" in str(report)
    after = model.fc.weight.detach().numpy()
    assert not np.array_equal(after, before)                 # a fresh head, not the old one
    bound = 1 / np.sqrt(8)                                   # Linear's default init range
    assert np.abs(after).max() <= bound
    _assert_loaded(model, sd, skip=("fc.weight", "fc.bias"))


def test_strict_errors_name_the_keys_and_change_nothing():
    _, sd = _state(num_classes=5)
    model = TinyNet(3)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"state dict: does not match TinyNet.*fc\.weight file "
                                         r"\[5, 8\] vs model \[3, 8\]"):
        models.load_pretrained(model, sd, strict=True)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    partial = {k: v for k, v in _state(3)[1].items() if not k.startswith("body.")}
    partial["extra.weight"] = fw.zeros(2)
    with pytest.raises(ValueError, match=r"missing from the file: body\.weight, body\.bias.*"
                                         r"not in the model: extra\.weight"):
        models.load_pretrained(model, partial, strict=True)
    report = models.load_pretrained(model, partial)
    assert report.missing == ["body.weight", "body.bias"] and report.unexpected == ["extra.weight"]


def _write_safetensors(path, arrays: dict) -> None:
    """A safetensors file written by hand from the format's definition (u64 header length,
    JSON header with dtype/shape/data_offsets, raw little-endian data)."""
    header, blobs, offset = {}, [], 0
    for k, a in arrays.items():
        raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(a.shape),
                     "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_reads_a_plain_safetensors_file(tmp_path):
    _, sd = _state()
    path = tmp_path / "w.safetensors"
    _write_safetensors(path, {k: v.numpy() for k, v in sd.items()
                              if not k.endswith("num_batches_tracked")})
    model = TinyNet(5)
    assert models.load_pretrained(model, path, strict=True).complete
    _assert_loaded(model, sd, skip=("bn.num_batches_tracked",))


def test_reads_a_torch_pth_checkpoint(tmp_path):
    torch = pytest.importorskip("torch", reason="torch (the parity extra) is not installed")
    _, sd = _state()
    inner = OrderedDict((f"_orig_mod.{k}", torch.from_numpy(v.numpy().copy()))
                        for k, v in sd.items())
    inner._metadata = OrderedDict([("", {"version": 1}), ("_orig_mod.bn", {"version": 2})])
    path = tmp_path / "w.pth"
    torch.save({"state_dict": inner, "epoch": 4, "arch": "tiny"}, path)
    model = TinyNet(5)
    report = models.load_pretrained(model, str(path), strict=True)
    assert report.complete and len(report.loaded) == len(sd)
    _assert_loaded(model, sd)


@pytest.mark.parametrize("name", ["ckpt.safetensors", "ckpt.pt"])
def test_reads_a_lantern_checkpoint(tmp_path, name):
    net, sd = _state()
    opt = fw.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(fw.randn(4, 4)).sum().backward()
    opt.step()
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    fw.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 2},
            tmp_path / name)
    model = TinyNet(5)
    assert models.load_pretrained(model, tmp_path / name, strict=True).complete
    _assert_loaded(model, sd)
    assert sorted(models.read_state_dict(tmp_path / name)) == sorted(sd)


def test_unreadable_sources_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth: no such checkpoint file"):
        models.load_pretrained(TinyNet(), tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(Exception, match="bad.pth"):
        models.load_pretrained(TinyNet(), bad)
    empty = tmp_path / "meta.pt"
    fw.save({"epoch": 3, "note": "no weights here"}, empty)
    with pytest.raises(ValueError, match=r"meta\.pt: no tensors found"):
        models.read_state_dict(empty)
