"""Checkpoints: `save`/`load` (as torch.save / torch.load) in two formats, and safetensors files.

`save` writes one of two formats, chosen by `format=` or else by the file name:

* ``"torch"`` for paths ending in `.pt`, `.pth`, `.pt.tar` or `.pth.tar`: PyTorch's zip
  format (`framework._torch_pickle`), so `torch.load(path)` with its defaults (weights only)
  reads the file when it holds tensors and plain containers. Any other object is pickled
  whole, as torch.save does; loading that back needs `weights_only=False` or an allowlist
  (`add_safe_globals` / `safe_globals`), as in PyTorch.
* ``"safetensors"`` for every other name and for unnamed file objects (`.safetensors`,
  `.ckpt`, no suffix, ...): Lantern's own format, safe by construction. It is a safetensors
  file that holds every tensor of the saved object under a generated name and describes the
  object around them (dicts, OrderedDicts, lists, tuples, numbers, strings, dtypes ...) as
  plain JSON in the safetensors metadata; loading it never unpickles anything. When the
  saved object is a flat `{name: tensor}` state dict, the tensor names are the state-dict
  keys, so the file is also an ordinary safetensors file that other tools read.

`load` recognises the file by its content, whatever its name: both formats, plain safetensors
files, and torch.save's zip and legacy layouts. Pickled checkpoints are read weights-only by
default (a restricted unpickler that builds tensors, plain containers and allowlisted
globals, and refuses everything else by name); `weights_only=False` unpickles anything and
warns.

Saving to a path is atomic: the bytes go to a temporary file in the same directory, which is
flushed, fsync'ed and renamed over the target (then the directory is fsync'ed), so a crash in
the middle of a save leaves the previous checkpoint intact. The file gets the mode a plain
open() would (0o666 less the umask), as PyTorch's do.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import secrets
import struct
import warnings
import zipfile
from collections import OrderedDict
from typing import Any, BinaryIO, Callable, Literal, Mapping, Optional, Union

import numpy as np

from . import _dtype as D
from ._backend import CPU, device as _device, is_cuda_array, resolve_device, to_device_array
from ._tensor import Size, Tensor
from ._torch_pickle import (CheckpointError, UnsafeCheckpointError, add_safe_globals,
                            clear_safe_globals, get_safe_globals, load_torch_legacy,
                            load_torch_zip, safe_globals, write_torch_zip)

__all__ = ["save", "load", "save_safetensors", "load_safetensors", "CheckpointError",
           "UnsafeCheckpointError", "add_safe_globals", "get_safe_globals",
           "clear_safe_globals", "safe_globals", "TORCH_SUFFIXES"]

FileLike = Union[str, os.PathLike, BinaryIO]
MapLocation = Union[None, str, _device, dict, Callable]

# File names that `save` writes in PyTorch's zip format (everything else: safetensors).
TORCH_SUFFIXES = (".pt", ".pth", ".pt.tar", ".pth.tar")

_FORMAT_KEY = "format"
_FORMAT_NAME = "lantern"
_STRUCTURE_KEY = "lantern.structure"
_FORMAT_VERSION = 1

# safetensors dtype code -> NumPy dtype that holds the values (bf16 is widened on load).
_ST_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_, "C64": np.complex64,
}
# Unsigned types Lantern has no dtype for are widened to the next signed type on load.
_ST_WIDEN = {"U16": (np.uint16, np.int32), "U32": (np.uint32, np.int64),
             "U64": (np.uint64, np.int64)}


# ============================================================================ file plumbing
def _describe(f) -> str:
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    return str(getattr(f, "name", None) or f"<{type(f).__name__}>")


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path, write_into) -> None:
    """Call `write_into(tmp_path)` then atomically move the result to `path` (see module doc).

    The temp file is created with O_EXCL and mode 0o666 (less the umask), like a plain open().
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    mode = os.fstat(fd).st_mode & 0o777   # 0o666 less the umask
    os.close(fd)
    try:
        write_into(tmp)
        os.chmod(tmp, mode)   # writers that replace the file (safetensors' does) leave 0o600
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _host_array(t) -> np.ndarray:
    """A C-contiguous NumPy copy-or-view of a tensor's (or array's) data."""
    arr = t._data if isinstance(t, Tensor) else t
    if is_cuda_array(arr):
        arr = arr.get()
    arr = np.asarray(arr)  # NumPy scalars (0-d results) become 0-d arrays
    # (np.ascontiguousarray would turn a 0-d array into shape (1,))
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def _to_storable(arr: np.ndarray) -> np.ndarray:
    """safetensors has no complex128: store it as float64 pairs (the structure says so)."""
    if arr.dtype == np.complex128:
        return arr.view(np.float64).reshape(arr.shape + (2,))
    return arr


def _serialize_into(tensors: dict, metadata: dict, target) -> None:
    """Write a safetensors file (path: atomically; file object: in place)."""
    import safetensors.numpy as stn
    if isinstance(target, (str, os.PathLike)):
        _atomic_write(target, lambda tmp: stn.save_file(tensors, tmp, metadata=metadata))
    else:
        target.write(stn.save(tensors, metadata=metadata))
        if hasattr(target, "flush"):
            target.flush()


# ============================================================================ safetensors files
def _read_header(fh, name: str) -> tuple[dict, int]:
    """Parse a safetensors header: (header dict, offset where tensor data starts)."""
    head = fh.read(8)
    if len(head) != 8:
        raise CheckpointError(f"{name}: file is too short to be a checkpoint (truncated?)")
    n = struct.unpack("<Q", head)[0]
    if n > 100_000_000:
        raise CheckpointError(f"{name}: safetensors header length {n} is implausible: corrupt "
                              "file")
    raw = fh.read(n)
    if len(raw) != n:
        raise CheckpointError(f"{name}: safetensors header is truncated")
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise CheckpointError(f"{name}: safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: safetensors header is not a JSON object")
    return header, 8 + n


def _decode_st_array(code: str, shape, raw: bytes | bytearray | np.ndarray, key: str, name: str):
    """Raw little-endian bytes of one safetensors tensor -> a NumPy array Lantern can hold."""
    if code == "BF16":
        u16 = np.frombuffer(raw, dtype="<u2")
        return (u16.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if code in _ST_DTYPES:
        arr = np.frombuffer(raw, dtype=np.dtype(_ST_DTYPES[code]).newbyteorder("<"))
        arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
        if not arr.flags.writeable:
            arr = arr.copy()
        return arr.reshape(shape)
    if code in _ST_WIDEN:
        src, dst = _ST_WIDEN[code]
        arr = np.frombuffer(raw, dtype=np.dtype(src).newbyteorder("<"))
        if code == "U64" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise CheckpointError(f"{name}: tensor {key!r} (U64) holds values above int64 range")
        return arr.astype(dst).reshape(shape)
    raise CheckpointError(f"{name}: tensor {key!r} has dtype {code}, which Lantern cannot "
                          f"represent (supported: {', '.join(sorted(_ST_DTYPES))}, BF16, "
                          "U16/U32/U64)")


def _read_safetensors(source, name: str) -> tuple[dict[str, np.ndarray], dict]:
    """All arrays and the metadata of a safetensors file (path or bytes)."""
    import safetensors
    try:
        if isinstance(source, (bytes, bytearray)):
            header, _ = _read_header(io.BytesIO(source), name)
            arrays = {}
            for key, info in safetensors.deserialize(bytes(source)):
                arrays[key] = _decode_st_array(info["dtype"], info["shape"], info["data"], key,
                                               name)
            return arrays, header.get("__metadata__") or {}
        with open(source, "rb") as fh:
            header, data_start = _read_header(fh, name)
        arrays = {}
        with safetensors.safe_open(source, framework="np") as st:
            metadata = st.metadata() or {}
            for key in st.keys():
                code = header[key]["dtype"]
                if code in _ST_DTYPES:
                    arr = st.get_tensor(key)
                    arrays[key] = arr if arr.flags.writeable else arr.copy()
                else:  # dtypes the safetensors NumPy binding cannot build: read the bytes
                    begin, end = header[key]["data_offsets"]
                    with open(source, "rb") as fh:
                        fh.seek(data_start + begin)
                        raw = fh.read(end - begin)
                    arrays[key] = _decode_st_array(code, header[key]["shape"], raw, key, name)
        return arrays, metadata
    except CheckpointError:
        raise
    except Exception as exc:  # SafetensorError and friends: name the file
        raise CheckpointError(f"{name}: not a valid safetensors file, corrupt or truncated "
                              f"({type(exc).__name__}: {exc})") from exc


def save_safetensors(tensors: Mapping[str, Any], path, metadata: Mapping[str, str] | None = None
                     ) -> None:
    """Write `{name: Tensor or ndarray}` as a safetensors file (atomically, any dtype).

    complex128 is not a safetensors dtype and is refused here (framework.save handles it).
    """
    if not isinstance(tensors, Mapping):
        raise TypeError(f"save_safetensors expects a mapping of name -> tensor, got "
                        f"{type(tensors).__name__}")
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str)
                                        for k, v in metadata.items()):
        raise TypeError("safetensors metadata must map str -> str")
    arrays = {}
    for k, v in tensors.items():
        if not isinstance(k, str):
            raise TypeError(f"safetensors tensor names must be str, got {k!r}")
        if not isinstance(v, (Tensor, np.ndarray)):
            raise TypeError(f"tensor {k!r} is a {type(v).__name__}, not a Tensor or ndarray")
        arr = _host_array(v)
        if arr.dtype == np.complex128:
            raise TypeError(f"tensor {k!r} is complex128, which safetensors cannot store")
        arrays[k] = arr
    _serialize_into(arrays, dict(metadata) if metadata else None, path)


def load_safetensors(path, device=None) -> dict[str, Tensor]:
    """Read a safetensors file into `{name: Tensor}` (bf16 widened to float32, U16/U32/U64
    widened to int32/int64), optionally placed on `device`."""
    name = _describe(path)
    source = path if isinstance(path, (str, os.PathLike)) else path.read()
    arrays, _ = _read_safetensors(source, name)
    dev = resolve_device(device) if device is not None else CPU
    return {k: Tensor._make(to_device_array(a, dev), None, 0) for k, a in arrays.items()}


# ============================================================================ structure <-> JSON
class _Encoder:
    """Turns an object into a JSON-able tree, collecting its tensors under unique names."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.by_id: dict[int, str] = {}
        self.keepalive: list = []     # objects whose id() we rely on while encoding
        self.active: set[int] = set()  # containers being encoded (cycle detection)

    def _name(self, path: list) -> str:
        base = ".".join(path) if path else "tensor"
        name, i = base, 1
        while name in self.arrays:
            name = f"{base}#{i}"
            i += 1
        return name

    def _array_node(self, obj, path, tag):
        key = self.by_id.get(id(obj))
        arr = None
        if key is None:
            arr = _host_array(obj)
            key = self._name(path)
            self.by_id[id(obj)] = key
            self.keepalive.append(obj)
            self.arrays[key] = _to_storable(arr)
        node = {"@": tag, "key": key}
        dt = (obj._data if isinstance(obj, Tensor) else obj).dtype
        if tag == "tensor":
            node["dtype"] = D.from_numpy_dtype(dt).name
            if obj.requires_grad:
                node["requires_grad"] = True
            if type(obj).__name__ == "Parameter":
                node["parameter"] = True
            if obj.device != CPU:
                node["device"] = str(obj.device)
        else:
            node["dtype"] = np.dtype(dt).str
        return node

    def encode(self, obj, path: list):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, Tensor):
            return self._array_node(obj, path, "tensor")
        if isinstance(obj, np.ndarray):
            return self._array_node(obj, path, "ndarray")
        if isinstance(obj, np.generic):
            return self.encode(obj.item(), path)
        if isinstance(obj, complex):
            return {"@": "complex", "v": [obj.real, obj.imag]}
        if isinstance(obj, D.dtype):
            return {"@": "dtype", "name": obj.name}
        if isinstance(obj, _device):
            return {"@": "device", "name": str(obj)}
        if isinstance(obj, (bytes, bytearray)):
            return {"@": "bytes", "hex": bytes(obj).hex()}
        if isinstance(obj, (list, tuple, set, frozenset, dict)):
            if id(obj) in self.active:
                raise ValueError(f"framework.save: the object contains itself at "
                                 f"{'.'.join(path) or '<root>'}; cyclic structures cannot be saved")
            self.active.add(id(obj))
            try:
                return self._container(obj, path)
            finally:
                self.active.discard(id(obj))
        raise TypeError(
            f"framework.save cannot store a {type(obj).__module__}.{type(obj).__qualname__} "
            f"(at {'.'.join(path) or '<root>'}): it stores tensors, arrays, numbers, strings, "
            "None, dtypes, devices and lists/tuples/dicts/sets of these. To save a model, save "
            "model.state_dict(); to pickle the object whole, as torch.save does, save to a "
            ".pt/.pth path or pass format='torch'.")

    def _container(self, obj, path):
        if isinstance(obj, list):
            return [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]
        if isinstance(obj, Size):
            return {"@": "size", "v": [int(v) for v in obj]}
        if isinstance(obj, tuple):
            return {"@": "tuple", "v": [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]}
        if isinstance(obj, (set, frozenset)):
            return {"@": "frozenset" if isinstance(obj, frozenset) else "set",
                    "v": [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]}
        tag = "odict" if isinstance(obj, OrderedDict) else "dict"
        if all(isinstance(k, str) for k in obj):
            node = {"@": tag, "s": {k: self.encode(v, path + [k]) for k, v in obj.items()}}
        else:
            keys, values = [], []
            for k, v in obj.items():
                keys.append(self.encode(k, path + ["key"]))
                values.append(self.encode(v, path + [str(k)]))
            node = {"@": tag, "k": keys, "v": values}
        meta = getattr(obj, "_metadata", None)  # nn.Module.state_dict() version info
        if isinstance(obj, OrderedDict) and meta is not None:
            node["meta"] = self.encode(meta, path + ["_metadata"])
        return node


class _MapLocationError(TypeError):
    """map_location returned something that is not a storage (the caller's mistake)."""


class _MappedStorage:
    """What a callable `map_location(storage, location)` gets and returns, as in PyTorch:
    the storage as read (on the CPU); `.cpu()`, `.cuda(i)` and `.to(device)` say where its
    tensors go."""

    __slots__ = ("location",)

    def __init__(self, location: str = "cpu"):
        self.location = location

    @property
    def device(self) -> _device:
        return _device(self.location)

    @property
    def is_cuda(self) -> bool:
        return self.location.startswith("cuda")

    def cpu(self) -> "_MappedStorage":
        return _MappedStorage("cpu")

    def cuda(self, device=None, non_blocking: bool = False) -> "_MappedStorage":
        if device is None:
            return _MappedStorage("cuda")
        return _MappedStorage(f"cuda:{device}" if isinstance(device, int) else str(device))

    def to(self, device, non_blocking: bool = False) -> "_MappedStorage":
        return _MappedStorage(str(device))


def _check_map_location(map_location) -> None:
    if map_location is not None and not isinstance(map_location, (str, _device, dict)) \
            and not callable(map_location):
        raise TypeError("map_location must be None, a device, a device string, a dict mapping "
                        "saved locations to devices, or a function (storage, location) -> "
                        f"storage, got {type(map_location).__name__}")


def _place_array(arr, saved_location: str, map_location, name: str):
    """Move a host array to where `map_location` says a tensor saved at `saved_location`
    belongs (None: where it was saved; str/device: there; dict: remap location names;
    a function: where the storage it returns is, or where it was saved if it returns None)."""
    _check_map_location(map_location)
    if map_location is None:
        target = saved_location
    elif isinstance(map_location, dict):
        target = map_location.get(saved_location, saved_location)
    elif isinstance(map_location, (str, _device)):
        target = map_location
    else:
        moved = map_location(_MappedStorage("cpu"), saved_location)
        if moved is None:
            target = saved_location
        elif isinstance(moved, _MappedStorage):
            target = moved.location
        else:
            raise _MapLocationError(f"{name}: map_location returned a {type(moved).__name__}; "
                                    "it must "
                            "return the storage it was given (or storage.cpu()/.cuda()/.to())"
                            " or None")
    if isinstance(target, _device):
        target = str(target)
    if target == "cpu":
        return arr
    try:
        dev = resolve_device(target)
    except RuntimeError as exc:
        raise RuntimeError(f"{name}: a tensor was saved on {saved_location!r} and would be "
                           f"loaded on {target!r}, but {exc}. Pass map_location='cpu' to load "
                           "it on the CPU.") from None
    return to_device_array(arr, dev)


_DTYPES_BY_NAME = {d.name: d for d in D._ALL if d.np is not None}


class _Decoder:
    def __init__(self, arrays: dict, map_location, name: str):
        self.arrays, self.map_location, self.name = arrays, map_location, name
        self.built: dict[str, Any] = {}

    def _array(self, node):
        key = node.get("key")
        if key not in self.arrays:
            raise CheckpointError(f"{self.name}: structure names tensor {key!r}, which the file "
                                  "does not hold: corrupt checkpoint")
        return self.arrays[key]

    def _tensor(self, node):
        key = node.get("key")
        if key in self.built:
            return self.built[key]
        arr = self._array(node)
        dt_name = node.get("dtype", "")
        if dt_name == "complex128":
            arr = arr.copy(order="C").view(np.complex128).reshape(arr.shape[:-1])
        elif dt_name == "bfloat16":
            if D.bfloat16.np is not None:  # exact: the float32 values came from bfloat16
                arr = arr.astype(D.bfloat16.np)
        else:
            expected = _DTYPES_BY_NAME.get(dt_name)
            if expected is None or arr.dtype != expected.np:
                raise CheckpointError(f"{self.name}: tensor {key!r} is stored as {arr.dtype} but "
                                      f"the structure says {dt_name!r}: corrupt checkpoint")
        arr = _place_array(arr, node.get("device", "cpu"), self.map_location, self.name)
        t = Tensor._make(arr, None, 0)
        if node.get("parameter"):
            from .nn.parameter import Parameter
            t = Parameter(t, requires_grad=bool(node.get("requires_grad")))
        elif node.get("requires_grad"):
            t.requires_grad_(True)
        self.built[key] = t
        return t

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or "@" not in node:
            raise CheckpointError(f"{self.name}: malformed structure node {node!r}")
        tag = node["@"]
        if tag == "tensor":
            return self._tensor(node)
        if tag == "ndarray":
            return self._array(node).astype(np.dtype(node["dtype"]), copy=True)
        if tag == "tuple":
            return tuple(self.decode(v) for v in node["v"])
        if tag == "size":
            return Size(int(v) for v in node["v"])
        if tag in ("set", "frozenset"):
            vals = (self.decode(v) for v in node["v"])
            return set(vals) if tag == "set" else frozenset(vals)
        if tag in ("dict", "odict"):
            out = OrderedDict() if tag == "odict" else {}
            if "s" in node:
                for k, v in node["s"].items():
                    out[k] = self.decode(v)
            else:
                for k, v in zip(node["k"], node["v"]):
                    out[self.decode(k)] = self.decode(v)
            if "meta" in node and tag == "odict":
                out._metadata = self.decode(node["meta"])
            return out
        if tag == "complex":
            return complex(*node["v"])
        if tag == "dtype":
            dt = getattr(D, node["name"], None)
            if not isinstance(dt, D.dtype):
                raise CheckpointError(f"{self.name}: unknown dtype {node['name']!r}")
            return dt
        if tag == "device":
            return _device(node["name"])
        if tag == "bytes":
            return bytes.fromhex(node["hex"])
        raise CheckpointError(f"{self.name}: unknown structure tag {tag!r} (written by a newer "
                              "Lantern?)")


# ============================================================================ save / load
def _file_name(f) -> Optional[str]:
    name = os.fspath(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", None)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    return name if isinstance(name, str) else None


def _save_format(f, format: Optional[str]) -> str:
    if format is not None:
        if format not in ("torch", "safetensors"):
            raise ValueError(f"format must be 'torch' or 'safetensors', got {format!r}")
        return format
    name = _file_name(f)
    return "torch" if name is not None and name.lower().endswith(TORCH_SUFFIXES) else \
        "safetensors"


def save(obj, f: FileLike, pickle_module=None, pickle_protocol: int = 2, *,
         format: Optional[Literal["torch", "safetensors"]] = None,
         _use_new_zipfile_serialization: bool = True) -> None:
    """Save `obj` to a path or a binary file object, as torch.save does.

    format: "torch" (PyTorch's zip format, which torch.load reads; any picklable object) or
    "safetensors" (Lantern's safe format: tensors, arrays, numbers, strings, None, dtypes,
    devices and lists/tuples/dicts/sets of these). By default, paths (or file objects named)
    ending in .pt, .pth, .pt.tar or .pth.tar get "torch", everything else "safetensors" (see
    the module docstring). Saving to a path replaces the file atomically.

    pickle_module / pickle_protocol: as torch.save (the standard pickle, protocol 2 by
    default: the one torch.load's weights-only reader expects).
    """
    fmt = _save_format(f, format)
    if not isinstance(f, (str, os.PathLike)) and not hasattr(f, "write"):
        raise TypeError(f"save() needs a path or a binary file object, got {type(f).__name__}")
    if pickle_module is not None and pickle_module is not pickle:
        raise TypeError("framework.save pickles with the standard pickle module; "
                        f"pickle_module={getattr(pickle_module, '__name__', pickle_module)!r} "
                        "is not supported")
    if fmt == "safetensors":
        enc = _Encoder()
        structure = enc.encode(obj, [])
        meta = {_FORMAT_KEY: _FORMAT_NAME,
                _STRUCTURE_KEY: json.dumps({"version": _FORMAT_VERSION, "root": structure},
                                           separators=(",", ":"))}
        _serialize_into(enc.arrays, meta, f)
        return
    if not 2 <= int(pickle_protocol) <= pickle.HIGHEST_PROTOCOL:
        raise ValueError(f"pickle_protocol must be 2 to {pickle.HIGHEST_PROTOCOL}, got "
                         f"{pickle_protocol}")
    if not _use_new_zipfile_serialization:
        warnings.warn("framework.save writes PyTorch's zip layout only "
                      "(_use_new_zipfile_serialization=False is ignored); torch.load reads it",
                      UserWarning, stacklevel=2)
    name = _describe(f)

    def write(target) -> None:
        try:
            write_torch_zip(obj, target, int(pickle_protocol))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise type(exc)(f"framework.save to {name}: {exc}") from exc

    if isinstance(f, (str, os.PathLike)):
        _atomic_write(f, write)
        return
    seekable = getattr(f, "seekable", lambda: False)()
    if seekable and f.tell() == 0:
        write(f)
    else:   # the zip's offsets must count from its first byte
        buf = io.BytesIO()
        write(buf)
        f.write(buf.getvalue())
    if hasattr(f, "flush"):
        f.flush()


def _sniff(head: bytes) -> str:
    # safetensors first: its 8-byte header length can begin with any bytes (even 0x80 0x02),
    # but byte 8 is always the '{' of the JSON header; a zip has 0 there and a legacy torch
    # stream a byte of its magic number.
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:4] == b"PK\x03\x04":
        return "torch-zip"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "torch-legacy"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return "unknown"


def load(f: FileLike, map_location: MapLocation = None, pickle_module=None, *,
         weights_only: Optional[bool] = None, mmap: Optional[bool] = None,
         **pickle_load_args):
    """Load what `save` wrote, a plain safetensors file (-> dict of tensors), or a PyTorch
    checkpoint written by torch.save (zip or legacy layout), without torch.

    map_location: None (where each tensor was saved), 'cpu', 'cuda[:N]', a device, a dict
    {saved location: target}, or a function (storage, location) -> storage, as in PyTorch.

    weights_only: True (the default, as in PyTorch >= 2.6) reads pickled checkpoints with a
    restricted unpickler: tensors, Parameters, dtypes, devices, Sizes, plain containers,
    numeric NumPy arrays and scalars, and the globals allowlisted with `add_safe_globals` /
    `safe_globals`; anything else is refused by name (UnsafeCheckpointError). False unpickles
    any object (e.g. a whole model saved with `save(model, "m.pt")`; `torch.` names map to
    `framework.`) and warns: it runs whatever code the file asks for, so use it only for
    files you trust. Lantern's safetensors format never unpickles anything either way.

    mmap is accepted for compatibility (tensors are read into memory). Of torch's
    pickle_load_args only `encoding` is taken (for pickles written by Python 2).
    """
    if weights_only is None:
        weights_only = True
    encoding = pickle_load_args.pop("encoding", "utf-8")
    if pickle_load_args:
        raise TypeError(f"load() got unexpected arguments {sorted(pickle_load_args)}")
    if pickle_module is not None and pickle_module is not pickle:
        raise TypeError("framework.load unpickles with its own readers; pickle_module="
                        f"{getattr(pickle_module, '__name__', pickle_module)!r} is not supported")
    del mmap
    _check_map_location(map_location)
    name = _describe(f)
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no checkpoint at {path!r}")
        with open(path, "rb") as fh:
            head = fh.read(512)
        data = None
    else:
        if not hasattr(f, "read"):
            raise TypeError(f"load() needs a path or a binary file object, got "
                            f"{type(f).__name__}")
        data = f.read()
        if isinstance(data, str):
            raise TypeError(f"{name}: file object is opened in text mode; open it with 'rb'")
        head, path = data[:512], None
    kind = _sniff(head)
    if not weights_only and kind in ("torch-zip", "torch-legacy"):
        warnings.warn(f"loading {name} with weights_only=False unpickles arbitrary objects: "
                      "this runs any code the file contains; only do it for files you trust",
                      UserWarning, stacklevel=2)
    try:
        if kind == "safetensors":
            arrays, meta = _read_safetensors(path if data is None else data, name)
            return _from_safetensors(arrays, meta, map_location, name)
        if kind == "torch-zip":
            try:
                zf = zipfile.ZipFile(path if data is None else io.BytesIO(data))
            except zipfile.BadZipFile as exc:
                raise CheckpointError(f"{name}: zip archive is corrupt or truncated ({exc})"
                                      ) from None
            with zf:
                return load_torch_zip(zf, name, map_location, weights_only, encoding)
        if kind == "torch-legacy":
            if data is None:
                with open(path, "rb") as fh:
                    return load_torch_legacy(fh, name, map_location, weights_only, encoding)
            return load_torch_legacy(io.BytesIO(data), name, map_location, weights_only,
                                     encoding)
    except (CheckpointError, _MapLocationError):
        raise
    except RuntimeError as exc:
        if str(exc).startswith(name):
            raise
        raise CheckpointError(f"{name}: cannot load checkpoint ({exc})") from exc
    except Exception as exc:  # EOFError, struct.error, UnpicklingError, zlib.error, ...
        if not weights_only and not isinstance(exc, (EOFError, struct.error, zipfile.BadZipFile,
                                                     pickle.UnpicklingError)):
            raise   # a trusted pickle's own error (ImportError, AttributeError, ...)
        raise CheckpointError(f"{name}: corrupt or truncated checkpoint "
                              f"({type(exc).__name__}: {exc})") from exc
    if kind == "tar":
        raise CheckpointError(f"{name} uses torch's pre-1.0 tar layout, which Lantern does not "
                              "read; re-save it with a recent torch.save")
    if len(head) == 0:
        raise CheckpointError(f"{name}: file is empty")
    raise CheckpointError(f"{name}: not a Lantern, safetensors or PyTorch checkpoint "
                          f"(starts with {bytes(head[:8])!r})")


def _from_safetensors(arrays, meta, map_location, name):
    if meta.get(_FORMAT_KEY) != _FORMAT_NAME or _STRUCTURE_KEY not in meta:
        # A plain safetensors file (e.g. Hugging Face weights): a dict of tensors.
        return {k: Tensor._make(_place_array(a, "cpu", map_location, name), None, 0)
                for k, a in arrays.items()}
    try:
        doc = json.loads(meta[_STRUCTURE_KEY])
    except ValueError as exc:
        raise CheckpointError(f"{name}: structure metadata is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("version") != _FORMAT_VERSION:
        raise CheckpointError(f"{name}: unsupported Lantern checkpoint version "
                              f"{doc.get('version') if isinstance(doc, dict) else doc!r}")
    return _Decoder(arrays, map_location, name).decode(doc["root"])

