"""Checkpoints both ways with PyTorch: `framework.save` to a .pt/.pth path writes torch.save's
zip format, which `torch.load` reads with its defaults (weights only); torch-written files load
in Lantern; whole-object pickles follow PyTorch's rules (weights_only=False or an allowlist);
a malicious pickle is refused by default. torch is the test oracle only."""
import io
import os
import struct
import warnings
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import framework
from framework import serialization as S
from framework._torch_pickle import CheckpointError, UnsafeCheckpointError
from framework.nn.parameter import Parameter

torch = pytest.importorskip("torch", reason="torch (the parity extra) is not installed")

HAS_BF16 = framework.bfloat16.np is not None


def _np(t):
    return t.detach().float().numpy() if t.dtype == framework.bfloat16 else t.detach().numpy()


def _torch_np(t):
    return t.detach().float().numpy() if t.dtype == torch.bfloat16 else t.detach().numpy()


TORCH_DTYPE = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64,
               "bfloat16": torch.bfloat16, "int8": torch.int8, "int16": torch.int16,
               "int32": torch.int32, "int64": torch.int64, "uint8": torch.uint8,
               "bool": torch.bool, "complex64": torch.complex64,
               "complex128": torch.complex128}


def _lantern_tensors():
    base = framework.arange(24.0).reshape(4, 6)
    out = OrderedDict(
        f32=framework.randn(3, 4), f64=framework.randn(2, 3, dtype=framework.float64),
        f16=framework.tensor([0.5, -1.5, 65504.0], dtype=framework.float16),
        i8=framework.tensor([-128, 127], dtype=framework.int8),
        i16=framework.tensor([-3, 30000], dtype=framework.int16),
        i32=framework.tensor([1, -2], dtype=framework.int32),
        i64=framework.tensor([2**62, -1], dtype=framework.int64),
        u8=framework.tensor([0, 255], dtype=framework.uint8),
        b=framework.tensor([True, False, True]),
        c64=framework.tensor([1 + 2j, -3j], dtype=framework.complex64),
        c128=framework.tensor([[1 + 2j], [0.5 - 1j]], dtype=framework.complex128),
        scalar=framework.tensor(3.25), empty=framework.zeros(0, 5),
        # views: they share one storage in the file, so they still share in torch
        base=base, transposed=base.t(), rows=base[1:3], stepped=base[::2, 1::3],
        expanded=framework.ones(3).expand(2, 3),
    )
    if HAS_BF16:
        out["bf16"] = framework.tensor([1.0, -2.5, 3.140625, 1e10], dtype=framework.bfloat16)
    return out


# ====================================================================== Lantern -> torch
def test_lantern_pt_loads_in_torch_with_weights_only(tmp_path):
    tensors = _lantern_tensors()
    obj = {"tensors": tensors,
           "param": Parameter(framework.ones(2)), "leaf": framework.randn(2, requires_grad=True),
           "meta": {"epoch": 3, "big": 2**70, "lr": 1e-3, "inf": float("inf"), "name": "run",
                    "done": True, "none": None, "tags": {"a", "b"}, "raw": b"\x00\xff",
                    "z": 1 - 2j, "dtype": framework.float16, "device": framework.device("cpu"),
                    "shape": framework.Size([2, 3]), "pair": (1, "two"), "list": [1, [2.5]]}}
    path = tmp_path / "ckpt.pt"
    framework.save(obj, path)
    got = torch.load(path)   # torch's defaults: weights_only=True
    for k, t in tensors.items():
        r = got["tensors"][k]
        assert r.dtype == TORCH_DTYPE[t.dtype.name], k
        assert tuple(r.shape) == tuple(t.shape), k
        np.testing.assert_array_equal(_torch_np(r), _np(t), err_msg=k)
        if t.numel():
            assert r.stride() == t.stride(), k
    g = got["tensors"]
    ptr = g["base"].untyped_storage().data_ptr()
    for k in ("transposed", "rows", "stepped"):
        assert g[k].untyped_storage().data_ptr() == ptr, k
    g["base"][2, 4] = -7.0   # a write through the base shows in its views, as in torch
    assert g["transposed"][4, 2].item() == -7.0 and g["rows"][1, 4].item() == -7.0
    assert type(got["param"]) is torch.nn.Parameter and got["param"].requires_grad
    assert got["leaf"].requires_grad and got["leaf"].is_leaf
    m = got["meta"]
    assert m["epoch"] == 3 and m["big"] == 2**70 and m["lr"] == 1e-3 and m["inf"] == float("inf")
    assert m["name"] == "run" and m["done"] is True and m["none"] is None
    assert m["tags"] == {"a", "b"} and m["raw"] == b"\x00\xff" and m["z"] == 1 - 2j
    assert m["dtype"] is torch.float16 and m["device"] == torch.device("cpu")
    assert type(m["shape"]) is torch.Size and m["shape"] == (2, 3)
    assert m["pair"] == (1, "two") and m["list"] == [1, [2.5]]
    # The records are 64-byte aligned as torch writes them, so torch can map the file.
    mapped = torch.load(path, mmap=True)
    np.testing.assert_array_equal(mapped["tensors"]["f32"].numpy(), _np(tensors["f32"]))
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        for info in z.infolist():
            n, e = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
            assert (info.header_offset + 30 + n + e) % 64 == 0, info.filename
            assert info.compress_type == zipfile.ZIP_STORED
        assert z.read("archive/byteorder") == b"little" and z.read("archive/version") == b"3\n"
    assert names[0] == "archive/data.pkl" and "archive/.data/serialization_id" in names
    # ... and Lantern reads its own file back the same way.
    back = framework.load(path)
    for k, t in tensors.items():
        assert back["tensors"][k].dtype is t.dtype, k
        np.testing.assert_array_equal(_np(back["tensors"][k]), _np(t), err_msg=k)
    assert back["meta"]["dtype"] is framework.float16 and back["meta"]["tags"] == {"a", "b"}
    assert type(back["param"]) is Parameter and back["leaf"].requires_grad


def test_zip64_records_stay_aligned(tmp_path, monkeypatch):
    # Records over 2 GiB get zip64 size fields in their local header; a lowered limit makes
    # small records take that path, and torch (and mmap) still read the file.
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 200)
    w = framework.randn(30, 20)
    framework.save({"w": w, "b": framework.ones(3)}, tmp_path / "z.pt")
    monkeypatch.undo()
    raw = (tmp_path / "z.pt").read_bytes()
    with zipfile.ZipFile(tmp_path / "z.pt") as z:
        info = z.getinfo("archive/data/0")
        n, e = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
        assert e >= 20 and (info.header_offset + 30 + n + e) % 64 == 0
    got = torch.load(tmp_path / "z.pt", mmap=True)
    np.testing.assert_array_equal(got["w"].numpy(), w.numpy())
    np.testing.assert_array_equal(framework.load(tmp_path / "z.pt")["w"].numpy(), w.numpy())


def test_views_of_a_big_array_save_only_their_span(tmp_path):
    big = framework.arange(100_000.0)
    framework.save({"a": big[10:20], "b": big[15:30]}, tmp_path / "s.pt")
    assert (tmp_path / "s.pt").stat().st_size < 4096   # not the 400 kB of the whole array
    got = torch.load(tmp_path / "s.pt")
    assert got["a"].untyped_storage().data_ptr() == got["b"].untyped_storage().data_ptr()
    np.testing.assert_array_equal(got["b"].numpy(), np.arange(15.0, 30.0))


# ====================================================================== torch -> Lantern
def test_torch_written_pt_loads_in_lantern(tmp_path):
    torch.manual_seed(0)
    base = torch.arange(24.0).reshape(4, 6)
    obj = {name: (torch.randn(3, 2).to(dt) if dt.is_floating_point or dt.is_complex
                  else torch.randint(-5, 100 if dt == torch.uint8 else 5, (3, 2)).to(dt))
           for name, dt in TORCH_DTYPE.items()}
    obj.update(base=base, transposed=base.t(), sliced=base[1:, ::2], p=torch.nn.Parameter(
        torch.ones(2)), s=torch.tensor(2.5))
    torch.save(obj, tmp_path / "t.pth")
    got = framework.load(tmp_path / "t.pth")
    for name, t in obj.items():
        r = got[name]
        want = TORCH_DTYPE[r.dtype.name]
        if t.dtype == torch.bfloat16 and not HAS_BF16:
            want = torch.bfloat16   # widened to float32 without ml_dtypes
        assert t.dtype == want, name
        np.testing.assert_array_equal(_np(r), _torch_np(t), err_msg=name)
        assert r.stride() == t.stride(), name
    got["base"][0, 0] = 100.0
    assert got["transposed"][0, 0].item() == 100.0   # still one storage
    assert type(got["p"]) is Parameter and got["p"].requires_grad

    # A tensor with Python attributes (torch writes _rebuild_from_type_v2): weights only drops
    # them; a trusted load keeps them.
    noted = torch.ones(2)
    noted.note = "keep"
    torch.save({"t": noted, "p": torch.nn.Parameter(torch.zeros(1))}, tmp_path / "attr.pt")
    plain = framework.load(tmp_path / "attr.pt")["t"]
    assert type(plain) is framework.Tensor and not hasattr(plain, "note")
    with pytest.warns(UserWarning):
        trusted = framework.load(tmp_path / "attr.pt", weights_only=False)
    assert trusted["t"].note == "keep" and trusted["t"].tolist() == [1.0, 1.0]
    assert type(trusted["p"]) is Parameter


def _lantern_net():
    nn = framework.nn
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 5 * 5, 3), nn.LayerNorm(3))


def _torch_net():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 5 * 5, 3), nn.LayerNorm(3))


def test_state_dict_round_trips_between_lantern_and_torch_modules(tmp_path):
    net = _lantern_net()
    opt = framework.optim.AdamW(net.parameters(), lr=1e-2)
    for _ in range(2):   # train steps: running statistics and optimizer state are non-trivial
        opt.zero_grad()
        net(framework.randn(6, 3, 5, 5)).square().mean().backward()
        opt.step()
    net.eval()
    framework.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 2},
                   tmp_path / "lantern.pth")
    ck = torch.load(tmp_path / "lantern.pth")
    tnet = _torch_net()
    tnet.load_state_dict(ck["model"], strict=True)
    tnet.eval()
    assert ck["model"]["1.num_batches_tracked"].item() == 2
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    with framework.no_grad():
        ours = net(framework.tensor(x)).numpy()
    np.testing.assert_allclose(tnet(torch.from_numpy(x)).detach().numpy(), ours, atol=1e-5)
    topt = torch.optim.AdamW(tnet.parameters(), lr=1e-2)
    topt.load_state_dict(ck["optimizer"])   # torch takes Lantern's optimizer state too
    assert topt.state_dict()["state"][0]["step"].item() == 2

    # and back: a torch state dict into a Lantern module
    tnet2 = _torch_net().eval()
    torch.save(tnet2.state_dict(), tmp_path / "torch.pt")
    net2 = _lantern_net().eval()
    net2.load_state_dict(framework.load(tmp_path / "torch.pt"), strict=True)
    with framework.no_grad():
        ours2 = net2(framework.tensor(x)).numpy()
    np.testing.assert_allclose(ours2, tnet2(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


# ====================================================================== whole objects
def test_whole_module_pickles_follow_pytorchs_rules(tmp_path):
    nn = framework.nn
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    model(framework.randn(8, 3))
    model.eval()
    framework.save(model, tmp_path / "model.pt")   # saving works
    with pytest.raises(UnsafeCheckpointError,
                       match=r"'framework\.nn\.modules\.container\.Sequential' from .*model\.pt"
                             r".*add_safe_globals.*weights_only=False"):
        framework.load(tmp_path / "model.pt")        # the default stays safe
    with pytest.warns(UserWarning, match="weights_only=False.*trust"):
        whole = framework.load(tmp_path / "model.pt", weights_only=False)
    x = framework.randn(5, 3)
    assert type(whole) is nn.Sequential and whole[0] is not model[0]
    np.testing.assert_array_equal(whole(x).detach().numpy(), model(x).detach().numpy())

    classes = [nn.Sequential, nn.Linear, nn.BatchNorm1d, nn.ReLU]
    with S.safe_globals(classes):
        with warnings.catch_warnings():
            warnings.simplefilter("error")   # an allowlisted load does not warn
            allowed = framework.load(tmp_path / "model.pt")
        assert set(classes) <= set(S.get_safe_globals())
    np.testing.assert_array_equal(allowed(x).detach().numpy(), model(x).detach().numpy())
    assert S.get_safe_globals() == []
    with pytest.raises(UnsafeCheckpointError, match="Sequential"):
        framework.load(tmp_path / "model.pt")   # the context manager's allowlist is gone
    S.add_safe_globals(classes[:2])
    try:
        with pytest.raises(UnsafeCheckpointError, match="BatchNorm1d"):
            framework.load(tmp_path / "model.pt")   # every class must be allowlisted
        S.add_safe_globals(classes[2:])
        assert isinstance(framework.load(tmp_path / "model.pt"), nn.Sequential)
    finally:
        S.clear_safe_globals()
    assert S.get_safe_globals() == []


@pytest.mark.parametrize("legacy", [False, True])
def test_torch_whole_module_loads_with_weights_only_false(tmp_path, legacy):
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.GELU(),
                             torch.nn.Linear(4, 2)).eval()
    torch.save(tm, tmp_path / "tm.pt", _use_new_zipfile_serialization=not legacy)
    with pytest.raises(UnsafeCheckpointError, match="torch.nn.modules.container.Sequential"):
        framework.load(tmp_path / "tm.pt")
    with pytest.warns(UserWarning, match="weights_only=False"):
        lm = framework.load(tmp_path / "tm.pt", weights_only=False)
    assert isinstance(lm, framework.nn.Sequential) and isinstance(lm[2], framework.nn.GELU)
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    with framework.no_grad():
        ours = lm(framework.tensor(x)).numpy()
    np.testing.assert_allclose(ours, tm(torch.from_numpy(x)).detach().numpy(), atol=1e-6)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_by_default(tmp_path):
    marker = tmp_path / "pwned"
    framework.save({"w": framework.ones(2), "x": _Evil(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"'posix\.system' from .*evil\.pt"):
        framework.load(tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError):
        with open(tmp_path / "evil.pt", "rb") as fh:
            framework.load(fh, map_location="cpu")
    with pytest.raises(Exception, match="posix.system"):
        torch.load(tmp_path / "evil.pt")   # torch's own default refuses the same file
    assert not marker.exists()
    # The file really is dangerous: trusting it runs the command.
    with pytest.warns(UserWarning):
        framework.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


def test_numpy_values_rebuild_safely(tmp_path):
    obj = {"a": np.arange(6, dtype=np.int16).reshape(2, 3), "f": np.asfortranarray(
        np.arange(6.0).reshape(2, 3)), "big_endian": np.arange(3, dtype=">i4"),
        "s": np.float64(2.5), "n": np.int64(7), "dt": np.dtype("<f4")}
    framework.save(obj, tmp_path / "np.pt")
    got = framework.load(tmp_path / "np.pt")   # numeric NumPy values need no allowlist here
    for k in ("a", "f", "big_endian"):   # (NumPy's unpickling makes byte order native)
        assert got[k].dtype == obj[k].dtype.newbyteorder("=") and np.array_equal(got[k], obj[k])
    assert got["s"] == 2.5 and type(got["s"]) is np.float64 and got["n"] == 7
    assert got["dt"] == np.dtype("float32")
    # An object array would unpickle arbitrary objects: refused before any is made.
    marker = tmp_path / "pwned"
    framework.save({"o": np.array([_Evil(marker)], dtype=object)}, tmp_path / "obj.pt")
    with pytest.raises(UnsafeCheckpointError, match="refusing NumPy dtype 'O8'.*only numeric"):
        framework.load(tmp_path / "obj.pt")
    assert not marker.exists()
    # NumPy's reconstructor is Lantern's own, and takes nothing but a plain array's arguments.
    text = b"echo hi"
    payload = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n(X" + struct.pack("<I", len(text))
               + text + b"tR.")
    with zipfile.ZipFile(tmp_path / "rec.pt", "w") as z:
        z.writestr("archive/data.pkl", payload)
    with pytest.raises(UnsafeCheckpointError, match="refusing NumPy _reconstruct"):
        framework.load(tmp_path / "rec.pt")


# ====================================================================== files
def test_format_follows_the_name_or_the_argument(tmp_path):
    sd = {"w": framework.randn(2, 2)}

    def kind(p):
        head = p.read_bytes()[:9]
        return "zip" if head[:4] == b"PK\x03\x04" else "safetensors" if head[8:9] == b"{" else "?"

    for name, want in [("a.pt", "zip"), ("a.pth", "zip"), ("b.PTH", "zip"),
                       ("c.pth.tar", "zip"), ("d.safetensors", "safetensors"),
                       ("e.ckpt", "safetensors"), ("f", "safetensors"), ("g.tar", "safetensors")]:
        framework.save(sd, tmp_path / name)
        assert kind(tmp_path / name) == want, name
        np.testing.assert_array_equal(framework.load(tmp_path / name)["w"].numpy(),
                                      sd["w"].numpy())
    framework.save(sd, tmp_path / "h.pt", format="safetensors")   # what Lantern wrote before
    framework.save(sd, tmp_path / "i.safetensors", format="torch")
    assert kind(tmp_path / "h.pt") == "safetensors" and kind(tmp_path / "i.safetensors") == "zip"
    for name in ("h.pt", "i.safetensors"):
        np.testing.assert_array_equal(framework.load(tmp_path / name)["w"].numpy(),
                                      sd["w"].numpy())
    with open(tmp_path / "j.pt", "wb") as fh:   # a file object goes by its name too
        framework.save(sd, fh)
    assert kind(tmp_path / "j.pt") == "zip"
    buf = io.BytesIO()
    framework.save(sd, buf, format="torch")
    buf.seek(0)
    np.testing.assert_array_equal(torch.load(buf)["w"].numpy(), sd["w"].numpy())
    buf = io.BytesIO(b"already here")   # not at offset 0: the zip is written whole after it
    buf.seek(0, io.SEEK_END)
    framework.save(sd, buf, format="torch")
    assert buf.getvalue()[12:16] == b"PK\x03\x04"
    with pytest.raises(ValueError, match="format"):
        framework.save(sd, tmp_path / "k.pt", format="pickle")
    with pytest.raises(TypeError, match="state_dict.*format='torch'"):
        framework.save({"m": object()}, tmp_path / "l.ckpt")   # the safe format stays strict


def test_pt_save_is_atomic_and_respects_the_umask(tmp_path, monkeypatch):
    from framework import _torch_pickle
    path = tmp_path / "model.pt"
    framework.save({"v": framework.tensor([1.0])}, path)
    good = path.read_bytes()
    real = _torch_pickle._write_record

    def die_after_first(zf, name, data):
        real(zf, name, data)
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(_torch_pickle, "_write_record", die_after_first)
    with pytest.raises(KeyboardInterrupt):
        framework.save({"v": framework.tensor([2.0])}, path)
    monkeypatch.undo()
    assert path.read_bytes() == good and sorted(os.listdir(tmp_path)) == ["model.pt"]
    with pytest.raises(pickle_error(), match=r"framework\.save to .*lam\.pt"):
        framework.save({"f": lambda: 0}, tmp_path / "lam.pt")
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]   # no temporary file left behind

    for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(umask)
        try:
            framework.save({"w": framework.ones(2)}, tmp_path / f"u{umask:o}.pt")
        finally:
            os.umask(old)
        assert (tmp_path / f"u{umask:o}.pt").stat().st_mode & 0o777 == mode, oct(umask)


def pickle_error():
    import pickle
    return (pickle.PicklingError, AttributeError, TypeError)


def test_map_location_function_and_corrupt_files(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "t.pt")
    seen = []
    out = framework.load(tmp_path / "t.pt",
                         map_location=lambda storage, loc: seen.append(loc) or storage)
    assert seen == ["cpu"] and out["w"].device == framework.device("cpu")
    assert framework.load(tmp_path / "t.pt", map_location=lambda s, loc: None)["w"].sum() == 2
    if not framework.cuda.is_available():
        with pytest.raises(RuntimeError, match="map_location='cpu'"):
            framework.load(tmp_path / "t.pt", map_location=lambda s, loc: s.cuda())
    framework.save({"w": framework.ones(3)}, tmp_path / "l.pt")
    data = (tmp_path / "l.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt"):
        framework.load(tmp_path / "cut.pt")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match=r"cut\.pt"):
        framework.load(tmp_path / "cut.pt", weights_only=False)
    with pytest.raises(TypeError, match="unexpected arguments"):
        framework.load(tmp_path / "l.pt", fix_imports=True)
