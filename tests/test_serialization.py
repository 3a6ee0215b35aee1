"""framework.save / framework.load, safetensors helpers, and torch checkpoint import (without
torch: the .pt fixtures were written by scripts/make_torch_fixture.py)."""
import io
import json
import math
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import framework
from framework import serialization as S
from framework._torch_pickle import CheckpointError, UnsafeCheckpointError
from framework.serialization import load, save
from framework.nn.parameter import Parameter

FIXTURES = Path(__file__).parent / "fixtures"


def _arr(t):
    return np.asarray(t.detach().numpy()) if isinstance(t, framework.Tensor) else np.asarray(t)


def _leaves(obj, prefix=""):
    """(path, tensor) for every tensor in nested containers (same paths as the fixture npz)."""
    if isinstance(obj, framework.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{prefix}.{i}" if prefix else str(i))


def _root(arr):
    """The object that finally owns an array's memory (views share it)."""
    while getattr(arr, "base", None) is not None:  # ndarray.base, as_strided's DummyArray.base
        arr = arr.base
    return arr


# =============================================================================== own format
def test_public_names():
    # torch-style entry points: `framework.save` / `framework.load` (exported by the package).
    assert framework.save is save and framework.load is load
    assert S.CheckpointError is CheckpointError


def _every_dtype():
    return OrderedDict([
        ("f32", framework.randn(3, 4)),
        ("f64", framework.randn(2, dtype=framework.float64)),
        ("f16", framework.tensor([0.5, -1.5, 65504.0], dtype=framework.float16)),
        ("i8", framework.tensor([-128, 127], dtype=framework.int8)),
        ("i16", framework.tensor([-3, 30000], dtype=framework.int16)),
        ("i32", framework.tensor([1, -2], dtype=framework.int32)),
        ("i64", framework.tensor([2**62, -1], dtype=framework.int64)),
        ("u8", framework.tensor([0, 255], dtype=framework.uint8)),
        ("bool", framework.tensor([True, False, True])),
        ("c64", framework.tensor([1 + 2j, -3j], dtype=framework.complex64)),
        ("c128", framework.tensor([[1 + 2j], [0.5 - 1j]], dtype=framework.complex128)),
        ("scalar", framework.tensor(3.25)),
        ("scalar_int", framework.tensor(7)),
        ("empty", framework.zeros(0, 5)),
    ])


def test_roundtrip_every_dtype_and_shape(tmp_path):
    sd = _every_dtype()
    path = tmp_path / "sd.lt"
    save(sd, path)
    out = load(path)
    assert type(out) is OrderedDict and list(out) == list(sd)
    for k, t in sd.items():
        r = out[k]
        assert isinstance(r, framework.Tensor), k
        assert r.dtype is t.dtype, (k, r.dtype, t.dtype)
        assert tuple(r.shape) == tuple(t.shape), k
        np.testing.assert_array_equal(_arr(r), _arr(t))
    # Loaded tensors own writable memory: in-place updates work.
    out["f32"].add_(1.0)
    np.testing.assert_allclose(_arr(out["f32"]), _arr(sd["f32"]) + 1.0)


def test_flat_state_dict_is_plain_safetensors(tmp_path):
    import safetensors.numpy as stn
    sd = OrderedDict(weight=framework.randn(4, 3), bias=framework.zeros(4))
    save(sd, tmp_path / "m.safetensors")
    raw = stn.load_file(tmp_path / "m.safetensors")
    assert sorted(raw) == ["bias", "weight"]  # other tools see the state-dict names
    np.testing.assert_array_equal(raw["weight"], _arr(sd["weight"]))


def test_roundtrip_optimizer_state_and_containers(tmp_path):
    w = framework.randn(2, 2, requires_grad=True)
    p = Parameter(framework.ones(3))
    shared = framework.arange(4.0)
    sd = OrderedDict(w=framework.randn(2))
    sd._metadata = OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])
    obj = {
        "model": sd,
        "optimizer": {
            "state": {0: {"step": framework.tensor(5.0), "exp_avg": framework.zeros(2, 2)},
                      1: {"momentum_buffer": None}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                              "amsgrad": False, "foreach": None, "params": [0, 1],
                              "name": "main"}],
        },
        "w": w, "p": p,
        "tied_a": shared, "tied_b": shared,
        "numbers": [0, -7, 2**70, 1.5, float("inf"), float("-inf"), float("nan"), True, None],
        "keys": {1: "int", 2.5: "float", (1, "a"): "tuple", None: "none", False: "bool"},
        "tuple": (1, (2, [3])), "empty": ([], (), {}, ""),
        "set": {1, 2, "x"}, "frozen": frozenset({3}),
        "dtype": framework.float16, "device": framework.device("cpu"),
        "size": framework.Size([2, 3]), "complex": 1 - 2j, "bytes": b"\x00\xffab",
        "ndarray": np.arange(6, dtype=np.int16).reshape(2, 3),
        "npscalar": np.float64(2.5),
        "transposed": framework.arange(6.0).reshape(2, 3).t(),  # non-contiguous input
    }
    f = tmp_path / "ckpt.pt"
    save(obj, str(f))
    out = load(f)

    assert type(out["model"]) is OrderedDict
    assert out["model"]._metadata == sd._metadata
    st = out["optimizer"]["state"]
    assert list(st) == [0, 1] and st[1] == {"momentum_buffer": None}
    assert st[0]["step"].shape == () and st[0]["step"].item() == 5.0
    assert out["optimizer"]["param_groups"] == [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                                                 "amsgrad": False, "foreach": None,
                                                 "params": [0, 1], "name": "main"}]
    assert out["w"].requires_grad and out["w"].is_leaf
    assert type(out["p"]) is Parameter and out["p"].requires_grad
    assert out["tied_a"] is out["tied_b"]  # one tensor saved twice stays one tensor
    nums = out["numbers"]
    assert nums[:4] == [0, -7, 2**70, 1.5] and type(nums[0]) is int and type(nums[3]) is float
    assert nums[4] == math.inf and nums[5] == -math.inf and math.isnan(nums[6])
    assert nums[7] is True and nums[8] is None
    assert out["keys"] == obj["keys"] and list(out["keys"]) == list(obj["keys"])
    assert [type(k) for k in out["keys"]] == [int, float, tuple, type(None), bool]
    assert out["tuple"] == (1, (2, [3])) and type(out["tuple"][1][1]) is list
    assert out["empty"] == ([], (), {}, "")
    assert out["set"] == {1, 2, "x"} and type(out["frozen"]) is frozenset
    assert out["dtype"] is framework.float16 and out["device"] == framework.device("cpu")
    assert type(out["size"]) is framework.Size and out["size"] == (2, 3)
    assert out["complex"] == 1 - 2j and out["bytes"] == b"\x00\xffab"
    assert out["ndarray"].dtype == np.int16 and out["ndarray"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert out["npscalar"] == 2.5
    np.testing.assert_array_equal(_arr(out["transposed"]), [[0, 3], [1, 4], [2, 5]])


def test_file_objects(tmp_path):
    obj = {"a": framework.randn(3), "b": [1, "two"]}
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    out = load(buf)
    np.testing.assert_array_equal(_arr(out["a"]), _arr(obj["a"]))
    assert out["b"] == [1, "two"]
    with open(tmp_path / "x.bin", "wb") as fh:
        save(framework.arange(3), fh)
    with open(tmp_path / "x.bin", "rb") as fh:
        np.testing.assert_array_equal(_arr(load(fh)), [0, 1, 2])


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.ckpt"
    save({"v": framework.tensor([1.0])}, path)
    good = path.read_bytes()

    import safetensors.numpy as stn
    real_save_file = stn.save_file

    def crash_midway(tensors, filename, metadata=None):
        real_save_file(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as fh:  # leave a half-written file behind, then die
            fh.truncate(20)
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(stn, "save_file", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save({"v": framework.tensor([2.0])}, path)
    monkeypatch.undo()
    assert path.read_bytes() == good  # the previous checkpoint is untouched
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt"]  # and no temp file is left
    assert load(path)["v"].item() == 1.0

    def replace_fails(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", replace_fails)
    with pytest.raises(OSError, match="disk full"):
        save({"v": framework.tensor([3.0])}, path)
    monkeypatch.undo()
    assert path.read_bytes() == good and sorted(os.listdir(tmp_path)) == ["model.ckpt"]

    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    save({"v": framework.tensor([4.0])}, path)
    assert len(calls) >= 2  # the file and its directory
    assert load(path)["v"].item() == 4.0


def test_corrupt_and_truncated_files_name_the_file(tmp_path):
    path = tmp_path / "ok.ckpt"
    save({"a": framework.randn(50), "b": 3}, path)
    data = path.read_bytes()
    cases = {
        "truncated.ckpt": data[: len(data) - 17],
        "header_cut.ckpt": data[:30],
        "garbage.ckpt": b"\x13\x37" * 40,
        "empty.ckpt": b"",
        "bad_json.ckpt": struct.pack("<Q", 10) + b"{not json}",
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
            load(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        load(tmp_path / "nope.ckpt")
    # Structure that names a tensor the file does not hold.
    S.save_safetensors({"x": framework.ones(1)}, tmp_path / "forged.ckpt", metadata={
        "format": "lantern",
        "lantern.structure": json.dumps({"version": 1, "root": {"@": "tensor", "key": "y",
                                                                 "dtype": "float32"}})})
    with pytest.raises(CheckpointError, match="forged.ckpt.*'y'"):
        load(tmp_path / "forged.ckpt")


def test_unsupported_objects_are_refused_clearly(tmp_path):
    class Model:
        pass

    with pytest.raises(TypeError, match=r"Model.*at layers\.0.*state_dict"):
        save({"layers": [Model()]}, tmp_path / "x")
    cyclic = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match="contains itself"):
        save(cyclic, tmp_path / "y")
    assert not os.listdir(tmp_path)  # nothing (not even a temp file) was written


def test_map_location(tmp_path):
    path = tmp_path / "m.ckpt"
    save({"w": framework.ones(2)}, path)
    for loc in ("cpu", framework.device("cpu"), {"cpu": "cpu"}, None):
        assert load(path, map_location=loc)["w"].device == framework.device("cpu")
    # A function (storage, location) -> storage, as PyTorch takes (old scripts pass
    # `lambda storage, loc: storage` to load on the CPU); other types are refused.
    assert load(path, map_location=lambda storage, loc: storage)["w"].device == \
        framework.device("cpu")
    with pytest.raises(TypeError, match="map_location"):
        load(path, map_location=3)
    with pytest.raises(TypeError, match="map_location returned a str"):
        load(path, map_location=lambda storage, loc: "cpu")
    if not framework.cuda.is_available():
        with pytest.raises(RuntimeError, match="map_location='cpu'"):
            load(path, map_location="cuda")


def test_save_load_on_device(tmp_path, device):
    """With --device cuda: tensors come back where they were saved unless map_location says
    otherwise; torch checkpoints can be mapped onto the device."""
    x = framework.randn(3, 4, device=device)
    w = framework.randn(2, device=device, requires_grad=True)
    save({"x": x, "w": w, "cpu": framework.ones(2)}, tmp_path / "d.ckpt")
    out = load(tmp_path / "d.ckpt")
    assert out["x"].device == x.device and out["cpu"].device == framework.device("cpu")
    assert out["w"].requires_grad and out["w"].device == w.device
    np.testing.assert_array_equal(out["x"].cpu().numpy(), x.cpu().numpy())
    on_cpu = load(tmp_path / "d.ckpt", map_location="cpu")
    assert on_cpu["x"].device == framework.device("cpu")
    np.testing.assert_array_equal(on_cpu["x"].numpy(), x.cpu().numpy())
    mapped = load(FIXTURES / "torch_checkpoint.pt", map_location=device)
    t = mapped["views"]["transposed"]
    assert t.device == framework.device(device)
    np.testing.assert_array_equal(t.cpu().numpy(), np.arange(12.0).reshape(3, 4).T)
    sd = S.load_safetensors(tmp_path / "d.ckpt", device=device)
    assert sd["x"].device == framework.device(device)


def test_bfloat16_tensors_roundtrip_with_ml_dtypes(tmp_path):
    pytest.importorskip("ml_dtypes")  # framework.bfloat16 needs it
    t = framework.tensor([1.0, -2.5, 3.140625], dtype=framework.bfloat16)
    save({"t": t}, tmp_path / "bf.ckpt")
    out = load(tmp_path / "bf.ckpt")["t"]
    assert out.dtype is framework.bfloat16
    np.testing.assert_array_equal(out.float().numpy(), [1.0, -2.5, 3.140625])
    # A plain safetensors reader gets BF16 widened to float32.
    assert S.load_safetensors(tmp_path / "bf.ckpt")["t"].dtype is framework.float32


def test_load_safetensors_dtypes_written_by_hand(tmp_path):
    """BF16 / U16 / F8 tensors as other tools write them (header built by hand)."""
    bf16_bits = (np.array([1.0, -2.5, 3.140625], np.float32).view(np.uint32) >> 16).astype("<u2")
    u16 = np.array([0, 65535], "<u2")
    f8 = np.array([1, 2], np.uint8)
    blobs = [("bf", "BF16", [3], bf16_bits.tobytes()), ("u", "U16", [2], u16.tobytes()),
             ("f8", "F8_E4M3", [2], f8.tobytes())]

    def write(path, entries):
        header, offset, body = {"__metadata__": {"k": "v"}}, 0, b""
        for name, code, shape, raw in entries:
            header[name] = {"dtype": code, "shape": shape,
                            "data_offsets": [offset, offset + len(raw)]}
            offset += len(raw)
            body += raw
        h = json.dumps(header).encode()
        h += b" " * (-len(h) % 8)
        path.write_bytes(struct.pack("<Q", len(h)) + h + body)

    write(tmp_path / "a.safetensors", blobs[:2])
    out = S.load_safetensors(tmp_path / "a.safetensors")
    assert out["bf"].dtype is framework.float32
    np.testing.assert_array_equal(_arr(out["bf"]), [1.0, -2.5, 3.140625])
    assert out["u"].dtype is framework.int32 and _arr(out["u"]).tolist() == [0, 65535]
    # framework.load of a plain safetensors file gives the same dict, from a file object too.
    with open(tmp_path / "a.safetensors", "rb") as fh:
        out2 = load(fh)
    np.testing.assert_array_equal(_arr(out2["bf"]), [1.0, -2.5, 3.140625])
    write(tmp_path / "b.safetensors", blobs)
    with pytest.raises(CheckpointError, match="F8_E4M3"):
        S.load_safetensors(tmp_path / "b.safetensors")


def test_safetensors_header_that_looks_like_a_pickle(tmp_path):
    # A header of 640 bytes starts the file with 0x80 0x02, like a protocol-2 pickle.
    raw = np.arange(3, dtype=np.float32).tobytes()
    h = json.dumps({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}).encode()
    h += b" " * (640 - len(h))
    (tmp_path / "p.safetensors").write_bytes(struct.pack("<Q", 640) + h + raw)
    assert (tmp_path / "p.safetensors").read_bytes()[:2] == b"\x80\x02"
    np.testing.assert_array_equal(_arr(load(tmp_path / "p.safetensors")["x"]), [0, 1, 2])


def test_save_safetensors_roundtrip_and_validation(tmp_path):
    import safetensors
    tensors = {"a": framework.randn(2, 3).t(), "b": framework.tensor([1, 2], dtype=framework.int64),
               "c": np.array([True, False])}
    S.save_safetensors(tensors, tmp_path / "t.safetensors", metadata={"who": "test"})
    with safetensors.safe_open(tmp_path / "t.safetensors", "np") as f:
        assert f.metadata() == {"who": "test"}
    out = S.load_safetensors(tmp_path / "t.safetensors")
    np.testing.assert_array_equal(_arr(out["a"]), _arr(tensors["a"]))
    assert out["b"].dtype is framework.int64 and out["c"].dtype is framework.bool
    with pytest.raises(TypeError, match="complex128"):
        S.save_safetensors({"z": framework.zeros(1, dtype=framework.complex128)}, tmp_path / "z")
    with pytest.raises(TypeError, match="str -> str"):
        S.save_safetensors({"a": framework.ones(1)}, tmp_path / "m", metadata={"n": 1})
    with pytest.raises(TypeError, match="'x'.*list"):
        S.save_safetensors({"x": [1.0]}, tmp_path / "l")


# =============================================================================== torch fixtures
@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURES / "torch_checkpoint_expected.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("fname", ["torch_checkpoint.pt", "torch_checkpoint_legacy.pt"])
@pytest.mark.parametrize("as_file", [False, True])
def test_torch_checkpoint_fixture(fname, as_file, expected):
    if as_file:
        with open(FIXTURES / fname, "rb") as fh:
            obj = load(fh)
    else:
        obj = load(FIXTURES / fname)
    tensors = dict(_leaves(obj))
    values = {k: v for k, v in expected.items() if not k.startswith("__")}
    assert sorted(tensors) == sorted(values)
    for path, want in values.items():
        got = _arr(tensors[path])
        assert got.shape == want.shape, path
        if tensors[path].dtype is framework.bfloat16:   # (the fixture holds it as float32)
            got = got.astype(np.float32)
        assert got.dtype == want.dtype, (path, got.dtype, want.dtype)
        np.testing.assert_array_equal(got, want, err_msg=path)
        if want.size:  # (NumPy gives empty arrays zero strides)
            assert tensors[path].stride() == tuple(expected["__strides__." + path]), path
    for key, other in expected.items():  # views that shared a storage still share memory
        if key.startswith("__shares__."):
            a, b = tensors[key[len("__shares__."):]], tensors[str(other)]
            assert _root(a._data) is _root(b._data), (key, str(other))
    v = obj["views"]
    assert not v["transposed"].is_contiguous() and v["expanded"].stride() == (0, 1)
    v["base"][0, 0] = 100.0  # writes through to the transposed view, as in torch
    assert v["transposed"][0, 0].item() == 100.0

    model = obj["model"]
    assert type(model) is OrderedDict
    assert model._metadata[""] == {"version": 1} and model._metadata["1"] == {"version": 2}
    assert model["1.num_batches_tracked"].shape == () and \
        model["1.num_batches_tracked"].dtype is framework.int64
    opt = obj["optimizer"]
    assert sorted(opt["state"]) == [0, 1, 2, 3]
    pg = opt["param_groups"][0]
    assert pg["betas"] == (0.8, 0.95) and pg["params"] == [0, 1, 2, 3] and pg["lr"] == 0.01
    assert pg["amsgrad"] is False and pg["foreach"] is None
    assert type(obj["param"]) is Parameter and obj["param"].requires_grad
    meta = obj["meta"]
    assert list(meta) == ["epoch", "best", "name", "done", "none", "shape", "dtype", "tags",
                          "pair"]
    assert meta["epoch"] == 3 and meta["best"] == 0.875 and meta["done"] is True
    assert type(meta["shape"]) is framework.Size and meta["shape"] == (2, 3)
    assert meta["dtype"] is framework.float16 and meta["tags"] == {"a", "b"}
    assert meta["pair"] == (1, "two")
    d = obj["dtypes"]
    assert d["bool"].dtype is framework.bool and d["float16"].dtype is framework.float16
    # bfloat16 stays bfloat16 where Lantern has it (ml_dtypes), else it widens to float32
    assert d["bfloat16"].dtype is (framework.bfloat16 if framework.bfloat16.np is not None
                                   else framework.float32)
    assert d["int64"].dtype is framework.int64
    assert d["int64"][0, 1].item() == 2**40


def test_torch_fixture_resaves_in_lantern_format(tmp_path):
    obj = load(FIXTURES / "torch_checkpoint.pt")
    save(obj, tmp_path / "again.ckpt")
    back = load(tmp_path / "again.ckpt")
    a, b = dict(_leaves(obj)), dict(_leaves(back))
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(_arr(a[k]), _arr(b[k]))
    assert back["model"]._metadata == obj["model"]._metadata
    assert back["meta"] == obj["meta"]


# =============================================================================== hostile pickles
def _s(text: str) -> bytes:  # BINUNICODE
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _i(n: int) -> bytes:  # BININT
    return b"J" + struct.pack("<i", n)


def _tuple(vals) -> bytes:
    return b"(" + b"".join(_i(v) for v in vals) + b"t"


def _tensor_ops(key="0", numel=4, offset=0, size=(2, 2), stride=(2, 1), storage="FloatStorage"):
    """Pickle opcodes of torch._utils._rebuild_tensor_v2(storage, ...) as torch writes them."""
    return (b"ctorch._utils\n_rebuild_tensor_v2\n("
            + b"(" + _s("storage") + f"ctorch\n{storage}\n".encode() + _s(key) + _s("cpu")
            + _i(numel) + b"tQ"
            + _i(offset) + _tuple(size) + _tuple(stride) + b"\x89"
            + b"ccollections\nOrderedDict\n)R" + b"tR")


def _torch_zip(path, pkl: bytes, storages=None):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for key, raw in (storages or {}).items():
            z.writestr(f"archive/data/{key}", raw)
    return path


FLAG = []


def set_flag(*args):
    FLAG.append(args)
    return "pwned"


def test_handmade_tensor_pickle_loads(tmp_path):
    """Positive control for the hostile cases below: the opcode builder makes a valid file."""
    raw = np.arange(4, dtype=np.float32).tobytes()
    p = _torch_zip(tmp_path / "ok.pt", b"\x80\x02" + _tensor_ops() + b".", {"0": raw})
    np.testing.assert_array_equal(_arr(load(p)), [[0, 1], [2, 3]])
    p = _torch_zip(tmp_path / "t.pt", b"\x80\x02" + _tensor_ops(stride=(1, 2)) + b".",
                   {"0": raw})
    np.testing.assert_array_equal(_arr(load(p)), [[0, 2], [1, 3]])


@pytest.mark.parametrize("target", ["os\ngetcwd", "builtins\neval", "posix\nsystem",
                                    "subprocess\ncheck_output", "builtins\ngetattr",
                                    "torch\nload", "numpy\nfrombuffer",
                                    "numpy.core.multiarray\n_frombuffer"])
def test_malicious_globals_are_refused(tmp_path, target):
    payload = b"\x80\x02c" + target.encode() + b"\n(" + _s("echo hi") + b"tR."
    p = _torch_zip(tmp_path / "model.pt", payload)
    dotted = target.replace("\n", ".")
    with pytest.raises(UnsafeCheckpointError,
                       match=rf"refusing to unpickle '{dotted}' from .*model\.pt: only tensors"):
        load(p)
    assert isinstance(UnsafeCheckpointError("x"), pickle.UnpicklingError)


def test_refused_global_is_never_called(tmp_path):
    payload = b"\x80\x02c" + f"{__name__}\nset_flag\n".encode() + b")R."
    FLAG.clear()
    assert pickle.loads(payload) == "pwned" and FLAG  # plain pickle would run it ...
    FLAG.clear()
    p = _torch_zip(tmp_path / "evil.pt", payload)
    with pytest.raises(UnsafeCheckpointError, match="set_flag"):
        load(p)
    # ... nested inside a legitimate-looking state dict too, and in the legacy layout.
    nested = (b"\x80\x02}(" + _s("w") + _tensor_ops() + _s("x") + b"c"
              + f"{__name__}\nset_flag\n".encode() + b")Ru.")
    p = _torch_zip(tmp_path / "evil2.pt", nested, {"0": bytes(16)})
    with pytest.raises(UnsafeCheckpointError, match="set_flag"):
        load(p)
    legacy = (pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
              + pickle.dumps({"little_endian": True}, protocol=2) + payload)
    (tmp_path / "evil_legacy.pt").write_bytes(legacy)
    with pytest.raises(UnsafeCheckpointError, match="set_flag"):
        load(tmp_path / "evil_legacy.pt")
    assert FLAG == []


def test_build_and_codecs_tricks_are_refused(tmp_path):
    raw = bytes(16)
    # BUILD on a tensor would overwrite its attributes (e.g. shadow methods): refused.
    build = b"\x80\x02" + _tensor_ops() + b"}" + _s("numpy") + _s("gotcha") + b"sb."
    p = _torch_zip(tmp_path / "build.pt", build, {"0": raw})
    with pytest.raises(UnsafeCheckpointError, match="only OrderedDict metadata"):
        load(p)
    codec = b"\x80\x02c_codecs\nencode\n(" + _s("x") + _s("rot13") + b"tR."
    with pytest.raises(UnsafeCheckpointError, match="rot13"):
        load(_torch_zip(tmp_path / "codec.pt", codec))
    module_pid = b"\x80\x02(" + _s("module") + b"NNNtQ."
    with pytest.raises(UnsafeCheckpointError, match="whole nn.Module"):
        load(_torch_zip(tmp_path / "mod.pt", module_pid))


@pytest.mark.parametrize("case,match", [
    (dict(size=(3, 3), stride=(3, 1)), "reaches element 8 of storage '0', which has only 4"),
    (dict(offset=3, size=(2,), stride=(1,)), "reaches element 4"),
    (dict(size=(2, 2), stride=(-1, 1)), "invalid tensor geometry"),
    (dict(numel=8), "holds 16 bytes but 32 are needed"),
    (dict(key="7"), "storage record 'archive/data/7' is missing"),
    (dict(storage="SparseStorage"), "refusing to unpickle 'torch.SparseStorage'"),
])
def test_hostile_tensor_geometry(tmp_path, case, match):
    p = _torch_zip(tmp_path / "geo.pt", b"\x80\x02" + _tensor_ops(**case) + b".",
                   {"0": np.arange(4, dtype=np.float32).tobytes()})
    with pytest.raises(CheckpointError, match=match):
        load(p)


def test_other_torch_archives_are_explained(tmp_path):
    with zipfile.ZipFile(tmp_path / "script.pt", "w") as z:
        z.writestr("m/data.pkl", b"\x80\x02N.")
        z.writestr("m/constants.pkl", b"\x80\x02N.")
        z.writestr("m/code/__torch__.py", "")
    with pytest.raises(CheckpointError, match="TorchScript"):
        load(tmp_path / "script.pt")
    good = (FIXTURES / "torch_checkpoint.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load(tmp_path / "cut.pt")
    legacy = (FIXTURES / "torch_checkpoint_legacy.pt").read_bytes()
    (tmp_path / "cut_legacy.pt").write_bytes(legacy[:-10])
    with pytest.raises(CheckpointError, match="cut_legacy.pt.*truncated"):
        load(tmp_path / "cut_legacy.pt")
    bad_args = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n)R."
    with pytest.raises(CheckpointError, match="args.pt.*corrupt.*TypeError"):
        load(_torch_zip(tmp_path / "args.pt", bad_args))
    tar = bytearray(1024)
    tar[257:262] = b"ustar"
    (tmp_path / "old.tar").write_bytes(bytes(tar))
    with pytest.raises(CheckpointError, match="tar layout"):
        load(tmp_path / "old.tar")


# =============================================================================== with torch
def test_fresh_torch_checkpoints(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    big = torch.randn(6, 5)
    obj = {"sd": torch.nn.Conv2d(2, 3, 3).state_dict(), "slice": big[1:4, ::2],
           "perm": torch.randn(2, 3, 4).permute(2, 0, 1), "bf": torch.randn(5).bfloat16(),
           "i": torch.randint(-5, 5, (3,)), "b": torch.rand(4) > 0.5, "h": torch.randn(3).half(),
           "f64": torch.randn(2, dtype=torch.float64), "c": torch.randn(2, dtype=torch.cfloat),
           "big": big}
    for legacy in (False, True):
        path = tmp_path / f"fresh_{legacy}.pt"
        torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
        out = load(path)
        for k, t in obj.items():
            if k == "sd":
                for n, v in t.items():
                    np.testing.assert_array_equal(_arr(out["sd"][n]), v.numpy())
                continue
            want = (t.float() if t.dtype == torch.bfloat16 else t).numpy()
            np.testing.assert_array_equal(_arr(out[k]), want, err_msg=k)
            assert out[k].stride() == t.stride(), k
        assert _root(out["slice"]._data) is _root(out["big"]._data)


def test_lantern_state_dict_readable_by_torch_safetensors(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file
    sd = OrderedDict(w=framework.randn(3, 2), n=framework.tensor(4), m=framework.tensor([True]))
    save(sd, tmp_path / "sd.safetensors")
    got = load_file(tmp_path / "sd.safetensors")
    assert got["n"].dtype == torch.int64 and got["m"].dtype == torch.bool
    np.testing.assert_array_equal(got["w"].numpy(), _arr(sd["w"]))


def test_whole_torch_module_pickle_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole.pt")
    with pytest.raises(UnsafeCheckpointError,
                       match=r"'torch\.nn\.modules\.linear\.Linear' from .*whole\.pt"):
        load(tmp_path / "whole.pt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole_legacy.pt",
               _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError, match="whole_legacy.pt"):
        load(tmp_path / "whole_legacy.pt")


def test_saved_files_get_the_umask_mode(tmp_path):
    """Like a plain open(): 0o666 less the umask, whichever writer fills the temporary file."""
    import os
    old = os.umask(0o022)
    try:
        framework.save({"w": framework.ones(2)}, tmp_path / "a.safetensors")
        framework.serialization.save_safetensors({"w": framework.ones(2)},
                                                 tmp_path / "b.safetensors")
    finally:
        os.umask(old)
    for name in ("a.safetensors", "b.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
