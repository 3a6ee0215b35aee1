"""Read checkpoints written by `torch.save` without importing torch, and without running code.

Two layouts exist:

* the zip layout (torch >= 1.6): `<prefix>/data.pkl` is a pickle whose tensors reference
  storages by persistent id; each storage's raw bytes are the record `<prefix>/data/<key>`,
  and `<prefix>/byteorder` says whether they are little or big endian;
* the legacy stream (`_use_new_zipfile_serialization=False`): pickles of a magic number, the
  protocol version and a sys-info dict, then the object pickle, then a pickle of the storage
  keys, then for each key an int64 element count followed by the raw bytes.

A pickle can call any importable function, so a checkpoint is only as safe as the unpickler
that reads it. `_SafeUnpickler` resolves globals from a fixed table (tensor rebuild functions,
storage types, dtypes, OrderedDict, torch.Size and a few builtins) that it maps to Lantern's
own harmless implementations; every other global is refused by name before it is created.
It derives from the pure-Python unpickler so that BUILD (setting attributes on a rebuilt
object) can be limited to the one legitimate use, `OrderedDict._metadata`.
"""
from __future__ import annotations

import _compat_pickle
import io
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict

import numpy as np

from . import _dtype as D
from ._backend import device as _device
from ._tensor import Size, Tensor

__all__ = ["CheckpointError", "UnsafeCheckpointError", "load_torch_zip", "load_torch_legacy",
           "LEGACY_MAGIC_NUMBER"]

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


class CheckpointError(RuntimeError):
    """A checkpoint file is corrupt, truncated, or in a layout Lantern cannot read."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint's pickle asked for a global outside the allow-list (possible code injection)."""


# ---------------------------------------------------------------------------------- storages
class _StorageType:
    """What `torch.FloatStorage` & co. unpickle to: the element type of a raw storage."""

    __slots__ = ("name", "raw", "widen_bf16")

    def __init__(self, name: str, raw, widen_bf16: bool = False):
        self.name, self.raw, self.widen_bf16 = name, np.dtype(raw), widen_bf16

    @property
    def itemsize(self) -> int:
        return self.raw.itemsize

    def __repr__(self):
        return f"<torch.{self.name}>"


_STORAGE_TYPES = {
    "FloatStorage": ("float32", False), "DoubleStorage": ("float64", False),
    "HalfStorage": ("float16", False), "BFloat16Storage": ("uint16", True),
    "LongStorage": ("int64", False), "IntStorage": ("int32", False),
    "ShortStorage": ("int16", False), "CharStorage": ("int8", False),
    "ByteStorage": ("uint8", False), "BoolStorage": ("bool", False),
    "ComplexFloatStorage": ("complex64", False), "ComplexDoubleStorage": ("complex128", False),
    "UntypedStorage": ("uint8", False),
}
_STORAGE_TYPE_OBJS = {n: _StorageType(n, raw, w) for n, (raw, w) in _STORAGE_TYPES.items()}


class _LoadedStorage:
    """A storage read from the file: a 1-D array (bfloat16 already widened to float32)."""

    __slots__ = ("array", "location", "key")

    def __init__(self, array, location: str, key: str):
        self.array, self.location, self.key = array, location, key

    def __repr__(self):
        n = -1 if self.array is None else self.array.size
        return f"<storage {self.key!r} of {n} elements on {self.location}>"


def _widen_bf16(raw_u16: np.ndarray) -> np.ndarray:
    """bfloat16 bits are the top half of a float32: shift them into place."""
    return (raw_u16.astype(np.uint32) << 16).view(np.float32)


# ---------------------------------------------------------------------------------- dtypes
_TORCH_DTYPES = {
    "float32": D.float32, "float": D.float32, "float64": D.float64, "double": D.float64,
    "float16": D.float16, "half": D.float16, "bfloat16": D.bfloat16,
    "int64": D.int64, "long": D.int64, "int32": D.int32, "int": D.int32,
    "int16": D.int16, "short": D.int16, "int8": D.int8, "uint8": D.uint8, "bool": D.bool,
    "complex64": D.complex64, "cfloat": D.complex64, "complex128": D.complex128,
    "cdouble": D.complex128,
}


class _TypeMarker:
    """What `torch.Tensor` / `torch.nn.Parameter` unpickle to inside _rebuild_from_type_v2."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<torch.{self.name}>"


_TENSOR_TYPE = _TypeMarker("Tensor")
_PARAMETER_TYPE = _TypeMarker("nn.Parameter")


# ---------------------------------------------------------------------------------- rebuild
class _Context:
    """State one load shares with the rebuild functions: the file name, how to place
    tensors, and (legacy two-pass reading) whether storages hold data yet."""

    def __init__(self, name: str, map_location, storage_reader):
        self.name = name
        self.map_location = map_location
        self.storage_reader = storage_reader  # (storage_type, key, location, numel) -> storage
        self.storages: dict[str, _LoadedStorage] = {}
        self.scan_only = False                  # legacy pass 1: record storages, build nothing


def _int_tuple(x, what, ctx):
    if not isinstance(x, (tuple, list)) or not all(type(v) is int for v in x):
        raise CheckpointError(f"{ctx.name}: tensor {what} must be a tuple of ints, got {x!r}")
    return tuple(x)


def _make_rebuilders(ctx: _Context):
    """The functions that the allow-listed torch globals resolve to, closed over `ctx`."""
    from .serialization import _place_array

    def rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                          backward_hooks=None, metadata=None):
        if not isinstance(storage, _LoadedStorage):
            raise CheckpointError(f"{ctx.name}: a tensor's storage is {type(storage).__name__}, "
                                  "not a storage record")
        if ctx.scan_only:
            return None
        size = _int_tuple(size, "size", ctx)
        stride = _int_tuple(stride, "stride", ctx)
        if type(storage_offset) is not int or storage_offset < 0 or len(size) != len(stride) \
                or any(s < 0 for s in size) or any(s < 0 for s in stride):
            raise CheckpointError(f"{ctx.name}: invalid tensor geometry: offset {storage_offset!r}"
                                  f", size {size}, stride {stride}")
        base = storage.array
        numel = 1
        for s in size:
            numel *= s
        if numel == 0:
            arr = np.empty(size, dtype=base.dtype)
        else:
            last = storage_offset + sum((n - 1) * st for n, st in zip(size, stride))
            if last >= base.size:
                raise CheckpointError(
                    f"{ctx.name}: tensor (offset {storage_offset}, size {list(size)}, stride "
                    f"{list(stride)}) reaches element {last} of storage {storage.key!r}, which "
                    f"has only {base.size}: corrupt checkpoint")
            # A view into the storage, as torch gives: tensors that shared a storage when saved
            # (a weight and its transpose, tied embeddings) still share memory after loading.
            item = base.itemsize
            arr = np.lib.stride_tricks.as_strided(
                base[storage_offset:], shape=size, strides=tuple(st * item for st in stride))
        arr = _place_array(arr, storage.location, ctx.map_location, ctx.name)
        t = Tensor._make(arr, None, 0)
        if requires_grad and arr.dtype.kind in "fc":
            t.requires_grad_(True)
        return t

    def rebuild_tensor(storage, storage_offset, size, stride):
        return rebuild_tensor_v2(storage, storage_offset, size, stride)

    def rebuild_parameter(data, requires_grad, backward_hooks=None):
        if ctx.scan_only:
            return None
        if not isinstance(data, Tensor):
            raise CheckpointError(f"{ctx.name}: Parameter data is {type(data).__name__}")
        from .nn.parameter import Parameter
        return Parameter(data, requires_grad=bool(requires_grad) and data.is_floating_point())

    def rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
        return rebuild_parameter(data, requires_grad, backward_hooks)

    def rebuild_from_type_v2(func, new_type, args, state):
        # Tensor subclasses / tensors with Python attributes. Only plain tensors and
        # Parameters are rebuilt; the attribute state is dropped (it may not name code).
        if func not in (rebuild_tensor_v2, rebuild_tensor, rebuild_parameter,
                        rebuild_parameter_with_state):
            raise UnsafeCheckpointError(f"refusing _rebuild_from_type_v2 with {func!r} in "
                                        f"{ctx.name}")
        if not isinstance(args, tuple):
            raise CheckpointError(f"{ctx.name}: _rebuild_from_type_v2 args are not a tuple")
        t = func(*args)
        if new_type is _PARAMETER_TYPE and t is not None:
            return rebuild_parameter(t, t.requires_grad)
        if new_type is not _TENSOR_TYPE and new_type is not _PARAMETER_TYPE:
            raise UnsafeCheckpointError(f"refusing tensor subclass {new_type!r} in {ctx.name}")
        return t

    return {
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter_with_state,
        ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type_v2,
    }


def _latin1_encode(s, encoding="latin1"):
    # Protocol-2 pickles store `bytes` as _codecs.encode(str, 'latin1'); no other codec.
    if encoding not in ("latin1", "latin-1") or not isinstance(s, str):
        raise UnsafeCheckpointError(f"refusing _codecs.encode with encoding {encoding!r}")
    return s.encode("latin1")


def _storage_global(module: str, name: str):
    if module in ("torch", "torch.cuda", "torch.storage") and name in _STORAGE_TYPE_OBJS:
        return _STORAGE_TYPE_OBJS[name]
    if module == "torch.storage" and name == "TypedStorage":
        return _STORAGE_TYPE_OBJS["UntypedStorage"]
    return None


_PLAIN_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice, ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("_codecs", "encode"): _latin1_encode,
    ("torch", "Size"): Size,
    ("torch", "device"): _device,
    ("torch", "Tensor"): _TENSOR_TYPE,
    ("torch.nn.parameter", "Parameter"): _PARAMETER_TYPE,
    ("torch.nn", "Parameter"): _PARAMETER_TYPE,
}


class _SafeUnpickler(pickle._Unpickler):
    """An unpickler that can only build tensors, storages, dtypes and plain containers."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, ctx: _Context, plain_only: bool = False):
        super().__init__(file, encoding="utf-8")
        self._ctx = ctx
        self._plain_only = plain_only  # headers of the legacy stream: no tensors at all
        self._rebuilders = {} if plain_only else _make_rebuilders(ctx)

    def find_class(self, module, name):
        if self.proto < 3:  # protocol-2 pickles (torch's default) use Python 2 names
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        key = (module, name)
        if not self._plain_only:
            fn = self._rebuilders.get(key)
            if fn is not None:
                return fn
            st = _storage_global(module, name)
            if st is not None:
                return st
            if module == "torch" and name in _TORCH_DTYPES:
                return _TORCH_DTYPES[name]
            if key in _PLAIN_GLOBALS:
                return _PLAIN_GLOBALS[key]
        elif key in (("collections", "OrderedDict"), ("_codecs", "encode")):
            return _PLAIN_GLOBALS[key]
        raise UnsafeCheckpointError(
            f"refusing to unpickle '{module}.{name}' from {self._ctx.name}: only tensors, "
            "storages, OrderedDict and plain containers are allowed (Lantern never runs code "
            "from a checkpoint; if this file stores a whole model object, save "
            "model.state_dict() with torch.save instead)")

    def persistent_load(self, pid):
        ctx = self._ctx
        if self._plain_only:
            raise CheckpointError(f"{ctx.name}: unexpected persistent id in a header pickle")
        if not isinstance(pid, tuple) or not pid:
            raise CheckpointError(f"{ctx.name}: persistent id {pid!r} is not a tuple")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module":
            raise UnsafeCheckpointError(
                f"refusing to unpickle a whole nn.Module from {ctx.name}: only tensors, storages, "
                "OrderedDict and plain containers are allowed; save model.state_dict() instead")
        if kind != "storage" or len(pid) not in (5, 6):
            raise CheckpointError(f"{ctx.name}: unknown persistent id {pid!r}")
        storage_type, key, location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"{ctx.name}: storage type {storage_type!r} is not a torch "
                                  "storage class")
        if isinstance(location, bytes):
            location = location.decode("ascii")
        key = str(key)
        if type(numel) is not int or numel < 0:
            raise CheckpointError(f"{ctx.name}: storage {key!r} has invalid size {numel!r}")
        st = ctx.storages.get(key)
        if st is None:
            st = ctx.storage_reader(storage_type, key, str(location), numel)
            ctx.storages[key] = st
        if view is not None:  # legacy storage views: (view_key, offset, size) in elements
            view_key, offset, view_size = view
            vkey = str(view_key)
            vs = ctx.storages.get(vkey)
            if vs is None:
                arr = None if st.array is None else st.array[offset:offset + view_size]
                if arr is not None and arr.size != view_size:
                    raise CheckpointError(f"{ctx.name}: storage view {vkey!r} exceeds its root")
                vs = ctx.storages[vkey] = _LoadedStorage(arr, st.location, vkey)
            st = vs
        return st

    def load_build(self):
        # BUILD sets attributes on the object just rebuilt. The only legitimate use in a
        # checkpoint is the `_metadata` dict that nn.Module.state_dict() attaches to its
        # OrderedDict; anything else (e.g. patching a tensor's methods) is refused.
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(state, tuple) and len(state) == 2 and state[1] is None:
            state = state[0]
        if not isinstance(inst, OrderedDict) or not isinstance(state, dict) or \
                not all(isinstance(k, str) and not k.startswith("__") for k in state):
            raise UnsafeCheckpointError(
                f"refusing to set attributes on a {type(inst).__name__} while unpickling "
                f"{self._ctx.name}: only OrderedDict metadata may be set")
        inst.__dict__.update(state)

    dispatch[pickle.BUILD[0]] = load_build


def _unpickle(fileobj, ctx: _Context, plain_only: bool = False):
    return _SafeUnpickler(fileobj, ctx, plain_only).load()


# ---------------------------------------------------------------------------------- zip layout
def load_torch_zip(zf: zipfile.ZipFile, name: str, map_location):
    """Load a torch.save zip archive (already opened) with the restricted unpickler."""
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if not pkl:
        if "data.pkl" in names:
            pkl = ["data.pkl"]
        else:
            raise CheckpointError(f"{name}: zip archive without data.pkl; not a torch.save "
                                  "checkpoint")
    prefix = pkl[0][: -len("data.pkl")]
    if any(n.startswith(prefix + "code/") or n == prefix + "constants.pkl" for n in names):
        raise CheckpointError(f"{name} is a TorchScript archive (torch.jit.save); Lantern reads "
                              "torch.save checkpoints: save model.state_dict() with torch.save")
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{name}: unknown byteorder record {byteorder!r}")

    def read_storage(storage_type: _StorageType, key: str, location: str, numel: int):
        record = f"{prefix}data/{key}"
        try:
            info = zf.getinfo(record)
        except KeyError:
            raise CheckpointError(f"{name}: storage record {record!r} is missing") from None
        nbytes = numel * storage_type.itemsize
        if info.file_size < nbytes:
            raise CheckpointError(f"{name}: storage record {record!r} holds {info.file_size} "
                                  f"bytes but {nbytes} are needed: truncated or corrupt")
        with zf.open(info) as fh:
            buf = bytearray(nbytes)
            got = fh.readinto(buf)
        if got != nbytes:
            raise CheckpointError(f"{name}: storage record {record!r} is truncated")
        arr = np.frombuffer(buf, dtype=storage_type.raw)
        if byteorder != sys.byteorder and arr.itemsize > 1:
            arr = arr.byteswap()
        if storage_type.widen_bf16:
            arr = _widen_bf16(arr)
        return _LoadedStorage(arr, location, key)

    ctx = _Context(name, map_location, read_storage)
    with zf.open(pkl[0]) as fh:
        data = fh.read()
    return _unpickle(io.BytesIO(data), ctx)


# ---------------------------------------------------------------------------------- legacy
def load_torch_legacy(fh, name: str, map_location):
    """Load the pre-1.6 stream layout from a seekable binary file. Storage bytes come after
    the object pickle, so the pickle is read twice: once to learn the storages, once to
    build tensors on them."""
    header = _Context(name, None, None)
    magic = _unpickle(fh, header, plain_only=True)
    if magic != LEGACY_MAGIC_NUMBER:
        raise CheckpointError(f"{name}: not a torch checkpoint (bad magic number)")
    protocol = _unpickle(fh, header, plain_only=True)
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise CheckpointError(f"{name}: unsupported legacy protocol version {protocol!r}")
    sys_info = _unpickle(fh, header, plain_only=True)
    little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
    pickle_start = fh.tell()

    metas: dict[str, tuple] = {}

    def scan_storage(storage_type, key, location, numel):
        metas[key] = (storage_type, location, numel)
        return _LoadedStorage(None, location, key)

    scan = _Context(name, map_location, scan_storage)
    scan.scan_only = True
    _unpickle(fh, scan)
    keys = _unpickle(fh, header, plain_only=True)
    if not isinstance(keys, list):
        raise CheckpointError(f"{name}: storage key list is missing")
    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        key = str(key)
        if key not in metas:
            raise CheckpointError(f"{name}: storage {key!r} is listed but never used")
        storage_type, location, numel = metas[key]
        head = fh.read(8)
        if len(head) != 8:
            raise CheckpointError(f"{name}: truncated before storage {key!r}")
        stored = struct.unpack("<q" if little else ">q", head)[0]
        if stored != numel:
            raise CheckpointError(f"{name}: storage {key!r} has {stored} elements, the pickle "
                                  f"says {numel}: corrupt checkpoint")
        nbytes = numel * storage_type.itemsize
        buf = bytearray(nbytes)
        if fh.readinto(buf) != nbytes:
            raise CheckpointError(f"{name}: storage {key!r} is truncated")
        arr = np.frombuffer(buf, dtype=storage_type.raw)
        if little != (sys.byteorder == "little") and arr.itemsize > 1:
            arr = arr.byteswap()
        if storage_type.widen_bf16:
            arr = _widen_bf16(arr)
        arrays[key] = arr

    def read_storage(storage_type, key, location, numel):
        if key not in arrays:
            raise CheckpointError(f"{name}: storage {key!r} has no data")
        return _LoadedStorage(arrays[key], location, key)

    ctx = _Context(name, map_location, read_storage)
    fh.seek(pickle_start)
    return _unpickle(fh, ctx)
