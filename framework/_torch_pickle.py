"""PyTorch's checkpoint format, without torch: read what `torch.save` writes (running no code
unless the caller trusts the file), and write it so that `torch.load` reads Lantern's files.

Two layouts exist:

* the zip layout (torch >= 1.6): `<prefix>/data.pkl` is a pickle whose tensors reference
  storages by persistent id; each storage's raw bytes are the record `<prefix>/data/<key>`,
  and `<prefix>/byteorder` says whether they are little or big endian;
* the legacy stream (`_use_new_zipfile_serialization=False`): pickles of a magic number, the
  protocol version and a sys-info dict, then the object pickle, then a pickle of the storage
  keys, then for each key an int64 element count followed by the raw bytes.

Reading. A pickle can call any importable function, so a checkpoint is only as safe as the
unpickler that reads it. By default (weights only) `_SafeUnpickler` resolves globals from a
fixed table (tensor rebuild functions, storage types, dtypes, OrderedDict, torch.Size, a few
builtins, and NumPy's array and scalar reconstructors limited to numeric dtypes) that maps
them to Lantern's own harmless implementations, plus what the user allowlisted with
`add_safe_globals` / `safe_globals`; every other global is refused by name before it is
created. It derives from the pure-Python unpickler so that BUILD (setting state on a rebuilt
object) can be limited to `OrderedDict._metadata`, NumPy arrays and allowlisted classes.
`_TrustedUnpickler` (weights_only=False) resolves any global, mapping `torch.*` names to
`framework.*`: it runs whatever the file asks for, so it is only for files the user trusts.

Writing. `write_torch_zip` pickles as torch.save does (protocol 2): a tensor is
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())`
whose storage is the persistent id ('storage', torch.<Type>Storage, key, location, numel),
and the storage's bytes are the record `archive/data/<key>`, starting at a multiple of 64
bytes as torch aligns them. Tensors that view the same memory share one storage covering
their span, so views still share memory after torch.load. torch's names are written as
GLOBAL opcodes by `_TorchGlobal`, so torch is never imported.
"""
from __future__ import annotations

import _compat_pickle
import importlib
import io
import math
import pickle
import secrets
import struct
import sys
import zipfile
from collections import OrderedDict
from typing import Any, Iterable

import numpy as np

from . import _dtype as D
from ._backend import device as _device, is_cuda_array
from ._tensor import Size, Tensor

__all__ = ["CheckpointError", "UnsafeCheckpointError", "load_torch_zip", "load_torch_legacy",
           "write_torch_zip", "add_safe_globals", "get_safe_globals", "clear_safe_globals",
           "safe_globals", "LEGACY_MAGIC_NUMBER"]

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


class CheckpointError(RuntimeError):
    """A checkpoint file is corrupt, truncated, or in a layout Lantern cannot read."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint's pickle asked for a global outside the allow-list (possible code injection)."""


# ---------------------------------------------------------------------------------- storages
_BF16_NP = D.bfloat16.np   # ml_dtypes' bfloat16, or None without ml_dtypes


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
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "ComplexFloatStorage": np.complex64, "ComplexDoubleStorage": np.complex128,
    "UntypedStorage": np.uint8,
}
_STORAGE_TYPE_OBJS = {n: _StorageType(n, raw) for n, raw in _STORAGE_TYPES.items()}
# bfloat16 stays bfloat16 where Lantern has the dtype (ml_dtypes); else it widens to float32.
_STORAGE_TYPE_OBJS["BFloat16Storage"] = (_StorageType("BFloat16Storage", _BF16_NP)
                                         if _BF16_NP is not None
                                         else _StorageType("BFloat16Storage", np.uint16, True))
# The storage type torch names for each element type Lantern writes.
_STORAGE_NAME = {np.dtype(raw): n for n, raw in _STORAGE_TYPES.items() if n != "UntypedStorage"}
if _BF16_NP is not None:
    _STORAGE_NAME[np.dtype(_BF16_NP)] = "BFloat16Storage"


class _LoadedStorage:
    """A storage read from the file: a 1-D array (bfloat16 widened to float32 without
    ml_dtypes)."""

    __slots__ = ("array", "location", "key")

    def __init__(self, array, location: str, key: str):
        self.array, self.location, self.key = array, location, key

    def __repr__(self):
        n = -1 if self.array is None else self.array.size
        return f"<storage {self.key!r} of {n} elements on {self.location}>"


def _widen_bf16(raw_u16: np.ndarray) -> np.ndarray:
    """bfloat16 bits are the top half of a float32: shift them into place."""
    return (raw_u16.astype(np.uint32) << 16).view(np.float32)


def _storage_array(buf, storage_type: _StorageType, byteorder: str) -> np.ndarray:
    arr = np.frombuffer(buf, dtype=storage_type.raw)
    if byteorder != sys.byteorder and arr.itemsize > 1:
        arr = arr.byteswap()   # (NumPy swaps the two halves of a complex number separately)
    return _widen_bf16(arr) if storage_type.widen_bf16 else arr


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
    tensors, whether the file is trusted, and (legacy two-pass reading) whether storages
    hold data yet."""

    def __init__(self, name: str, map_location, storage_reader, trusted: bool = False):
        self.name = name
        self.map_location = map_location
        self.storage_reader = storage_reader  # (storage_type, key, location, numel) -> storage
        self.storages: dict[str, _LoadedStorage] = {}
        self.scan_only = False                  # legacy pass 1: record storages, build nothing
        self.trusted = trusted                  # weights_only=False
        self.fresh_arrays: dict[int, np.ndarray] = {}   # NumPy arrays awaiting their BUILD
        self.made_dtype_specs = False


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
        if requires_grad and (t.is_floating_point() or t.is_complex()):
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
        return Parameter(data, requires_grad=bool(requires_grad) and
                         (data.is_floating_point() or data.is_complex()))

    def rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
        p = rebuild_parameter(data, requires_grad, backward_hooks)
        if ctx.trusted and p is not None and isinstance(state, dict):
            p.__dict__.update(state)
        return p

    def rebuild_from_type_v2(func, new_type, args, state):
        # Tensor subclasses / tensors with Python attributes. By default only plain tensors
        # and Parameters are rebuilt and the attribute state is dropped (it may name code).
        if ctx.scan_only:
            return None
        if func not in (rebuild_tensor_v2, rebuild_tensor, rebuild_parameter,
                        rebuild_parameter_with_state):
            raise UnsafeCheckpointError(f"refusing _rebuild_from_type_v2 with {func!r} in "
                                        f"{ctx.name}")
        if not isinstance(args, tuple):
            raise CheckpointError(f"{ctx.name}: _rebuild_from_type_v2 args are not a tuple")
        t = func(*args)
        from .nn.parameter import Parameter
        if new_type is _PARAMETER_TYPE or new_type is Parameter:
            t = rebuild_parameter(t, t.requires_grad)
        elif new_type is not _TENSOR_TYPE and new_type is not Tensor:
            if not (ctx.trusted and isinstance(new_type, type) and issubclass(new_type, Tensor)):
                raise UnsafeCheckpointError(f"refusing tensor subclass {new_type!r} in "
                                            f"{ctx.name}")
            t.__class__ = new_type
        if ctx.trusted and isinstance(state, dict) and state:
            t.__dict__.update(state)
        return t

    return {
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter_with_state,
        ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type_v2,
    }


# ---------------------------------------------------------------------------------- NumPy
# NumPy pickles an array as _reconstruct(ndarray, (0,), b'b') followed by BUILD with (version,
# shape, dtype, is_fortran, raw bytes), a dtype as dtype('f8', False, True) + BUILD with its
# byte order, and a scalar as scalar(dtype, raw bytes). These rebuild the numeric ones only:
# an object array would unpickle arbitrary objects, so object/structured dtypes are refused.
_NP_KINDS = "biufc"


class _NpDtypeSpec:
    """What `numpy.dtype(...)` unpickles to: a numeric dtype whose byte order BUILD sets (a
    NumPy dtype is immutable, and the pickle's memo must see the built one)."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype

    def build(self, state, name: str) -> None:
        if not (isinstance(state, tuple) and len(state) >= 5 and state[1] in ("<", ">", "|", "=")
                and state[2] is None and state[3] is None and state[4] is None):
            raise UnsafeCheckpointError(f"refusing NumPy dtype state {state!r} in {name}: only "
                                        "plain numeric dtypes are allowed")
        if state[1] in "<>":
            self.dtype = self.dtype.newbyteorder(state[1])


def _make_numpy_rebuilders(ctx: _Context):
    def np_dtype(spec, align=False, copy=True):
        try:
            dt = np.dtype(spec) if isinstance(spec, str) else None
        except (TypeError, ValueError, SyntaxError):
            dt = None
        if dt is None or dt.kind not in _NP_KINDS or dt.fields is not None or dt.subdtype:
            raise UnsafeCheckpointError(f"refusing NumPy dtype {spec!r} in {ctx.name}: only "
                                        "numeric dtypes are allowed")
        ctx.made_dtype_specs = True
        return _NpDtypeSpec(dt)

    def np_reconstruct(*args):
        if len(args) != 3 or args[0] is not np.ndarray:
            raise UnsafeCheckpointError(f"refusing NumPy _reconstruct{args!r} in {ctx.name}: "
                                        "only plain arrays are rebuilt")
        arr = np.ndarray((0,), np.uint8)
        ctx.fresh_arrays[id(arr)] = arr
        return arr

    def np_scalar(spec, raw=None):
        if not isinstance(spec, _NpDtypeSpec) or not isinstance(raw, (bytes, bytearray)) or \
                len(raw) != spec.dtype.itemsize:
            raise CheckpointError(f"{ctx.name}: malformed NumPy scalar")
        return np.frombuffer(raw, dtype=spec.dtype)[0]

    table = {("numpy", "dtype"): np_dtype, ("numpy", "ndarray"): np.ndarray}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "_reconstruct")] = np_reconstruct
        table[(module, "scalar")] = np_scalar
    return table


def _build_numpy_array(arr: np.ndarray, state, ctx: _Context) -> None:
    if not (isinstance(state, tuple) and len(state) == 5 and type(state[0]) is int
            and isinstance(state[2], _NpDtypeSpec) and isinstance(state[4], (bytes, bytearray))):
        raise UnsafeCheckpointError(f"refusing NumPy array state in {ctx.name}: only numeric "
                                    "arrays stored as raw bytes are allowed")
    version, shape, spec, fortran, raw = state
    shape = _int_tuple(shape, "NumPy array shape", ctx)
    if any(n < 0 for n in shape) or len(raw) != math.prod(shape) * spec.dtype.itemsize:
        raise CheckpointError(f"{ctx.name}: NumPy array of shape {shape} does not match its "
                              f"{len(raw)} bytes: corrupt checkpoint")
    arr.__setstate__((version, shape, spec.dtype, bool(fortran), bytes(raw)))
    del ctx.fresh_arrays[id(arr)]


def _resolve_dtype_specs(obj):
    """A bare NumPy dtype in the checkpoint arrives as an _NpDtypeSpec: make it a dtype."""
    if isinstance(obj, _NpDtypeSpec):
        return obj.dtype
    if isinstance(obj, dict):
        for k, v in obj.items():
            obj[k] = _resolve_dtype_specs(v)
    elif isinstance(obj, list):
        obj[:] = [_resolve_dtype_specs(v) for v in obj]
    elif type(obj) in (tuple, set, frozenset):
        return type(obj)(_resolve_dtype_specs(v) for v in obj)
    return obj


# ---------------------------------------------------------------------------------- allowlist
_SAFE_GLOBALS: dict[str, Any] = {}


def _global_names(obj) -> list[str]:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(f"{obj!r} has no __module__/__qualname__; pass (obj, 'module.name')")
    names = [f"{module}.{qualname}"]
    if module == "framework" or module.startswith("framework."):
        # files written by torch name the same class torch.<...> (the runner maps it here)
        names.append("torch" + module[len("framework"):] + "." + qualname)
    return names


def add_safe_globals(safe_globals: Iterable) -> None:
    """Allow weights-only loading to use these globals (classes or functions, or
    `(obj, "module.name")` pairs): classes may then be created and have their state set, and
    functions called, while unpickling. As torch.serialization.add_safe_globals; a Lantern
    class also matches the `torch.` name PyTorch would write for it."""
    for item in safe_globals:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str):
            _SAFE_GLOBALS[item[1]] = item[0]
        else:
            for name in _global_names(item):
                _SAFE_GLOBALS[name] = item


def get_safe_globals() -> list:
    """The user-allowlisted globals, as `add_safe_globals` takes them."""
    out, seen = [], set()
    for name, obj in _SAFE_GLOBALS.items():
        try:
            own = name in _global_names(obj)
        except TypeError:
            own = False
        entry = obj if own else (obj, name)
        key = id(obj) if own else (id(obj), name)
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def clear_safe_globals() -> None:
    """Forget every global added with `add_safe_globals`."""
    _SAFE_GLOBALS.clear()


class safe_globals:
    """Context manager: `add_safe_globals(globals)` inside the block only."""

    def __init__(self, safe_globals: Iterable):
        self._items = list(safe_globals)
        self._saved: dict[str, Any] = {}

    def __enter__(self):
        self._saved = dict(_SAFE_GLOBALS)
        add_safe_globals(self._items)
        return self

    def __exit__(self, *exc):
        _SAFE_GLOBALS.clear()
        _SAFE_GLOBALS.update(self._saved)
        return False


def _apply_state(inst, state) -> None:
    """BUILD as pickle does it: __setstate__, else the instance dict and slots."""
    setstate = getattr(inst, "__setstate__", None)
    if setstate is not None:
        setstate(state)
        return
    slotstate = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slotstate = state
    if state:
        inst.__dict__.update(state)
    if slotstate:
        for k, v in slotstate.items():
            setattr(inst, k, v)


# ---------------------------------------------------------------------------------- globals
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


def _py3_name(module: str, name: str) -> tuple[str, str]:
    """Protocol-2 pickles (torch's default) use Python 2 names (__builtin__.set, ...)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _table_global(rebuilders: dict, module: str, name: str):
    """The Lantern object a torch (or plain) global stands for, or None."""
    key = (module, name)
    fn = rebuilders.get(key)
    if fn is not None:
        return fn
    st = _storage_global(module, name)
    if st is not None:
        return st
    if module == "torch" and name in _TORCH_DTYPES:
        return _TORCH_DTYPES[name]
    return _PLAIN_GLOBALS.get(key)


def _framework_global(module: str, name: str, file: str):
    """`torch.<...>.name` in a trusted pickle: the same name under framework, in the same
    module or else in the closest package above it that has it (Lantern's files inside a
    package are not always torch's, but packages export the same public names)."""
    target = "framework" + module[len("torch"):]
    parts = target.split(".")
    while parts:
        try:
            obj = importlib.import_module(".".join(parts))
            for part in name.split("."):
                obj = getattr(obj, part)
            return obj
        except (ImportError, AttributeError):
            parts.pop()
    raise CheckpointError(f"{file}: the checkpoint needs {module}.{name}, which Lantern does "
                          f"not have (no {target}.{name})")


def _refusal(module: str, name: str, file: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"refusing to unpickle '{module}.{name}' from {file}: only tensors, storages, "
        "OrderedDict and plain containers are allowed when loading weights only (Lantern runs "
        "no code from a checkpoint by default). If you trust this file, allowlist the global "
        f"with framework.serialization.add_safe_globals([{name}]) or load it with "
        "weights_only=False, which runs whatever the file asks for; to share weights, save "
        "model.state_dict() instead of the model")


def _persistent_load(ctx: _Context, pid):
    if not isinstance(pid, tuple) or not pid:
        raise CheckpointError(f"{ctx.name}: persistent id {pid!r} is not a tuple")
    kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
    if kind == "module":
        if ctx.trusted and len(pid) > 1:   # legacy: (module, its class, source file, source)
            return pid[1]
        raise UnsafeCheckpointError(
            f"refusing to unpickle a whole nn.Module from {ctx.name}: only tensors, storages, "
            "OrderedDict and plain containers are allowed; save model.state_dict() instead, "
            "or load a trusted file with weights_only=False")
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


# ---------------------------------------------------------------------------------- unpicklers
class _SafeUnpickler(pickle._Unpickler):
    """An unpickler that can only build tensors, storages, dtypes, plain containers, numeric
    NumPy arrays and the user's allowlisted globals."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, ctx: _Context, plain_only: bool = False, encoding: str = "utf-8"):
        super().__init__(file, encoding=encoding)
        self._ctx = ctx
        self._plain_only = plain_only  # headers of the legacy stream: no tensors at all
        self._rebuilders = {} if plain_only else {**_make_rebuilders(ctx),
                                                  **_make_numpy_rebuilders(ctx)}

    def find_class(self, module, name):
        if self.proto < 3:
            module, name = _py3_name(module, name)
        key = (module, name)
        if not self._plain_only:
            obj = _table_global(self._rebuilders, module, name)
            if obj is not None:
                return obj
            obj = _SAFE_GLOBALS.get(f"{module}.{name}")
            if obj is not None:
                return obj
        elif key in (("collections", "OrderedDict"), ("_codecs", "encode")):
            return _PLAIN_GLOBALS[key]
        raise _refusal(module, name, self._ctx.name)

    def persistent_load(self, pid):
        if self._plain_only:
            raise CheckpointError(f"{self._ctx.name}: unexpected persistent id in a header "
                                  "pickle")
        return _persistent_load(self._ctx, pid)

    def load_build(self):
        # BUILD sets state on the object just rebuilt. Allowed: the `_metadata` dict that
        # nn.Module.state_dict() attaches to its OrderedDict, NumPy arrays and dtypes being
        # rebuilt, and instances of allowlisted classes; anything else (e.g. patching a
        # tensor's methods) is refused.
        state = self.stack.pop()
        inst = self.stack[-1]
        ctx = self._ctx
        if type(inst) is _NpDtypeSpec:
            inst.build(state, ctx.name)
            return
        if type(inst) is np.ndarray and ctx.fresh_arrays.get(id(inst)) is inst:
            _build_numpy_array(inst, state, ctx)
            return
        if type(inst) is not OrderedDict and _SAFE_GLOBALS and \
                any(type(inst) is g for g in _SAFE_GLOBALS.values()):
            _apply_state(inst, state)
            return
        if isinstance(state, tuple) and len(state) == 2 and state[1] is None:
            state = state[0]
        if not isinstance(inst, OrderedDict) or not isinstance(state, dict) or \
                not all(isinstance(k, str) and not k.startswith("__") for k in state):
            raise UnsafeCheckpointError(
                f"refusing to set attributes on a {type(inst).__name__} while unpickling "
                f"{ctx.name}: only OrderedDict metadata may be set")
        inst.__dict__.update(state)

    dispatch[pickle.BUILD[0]] = load_build


class _Opaque:
    """Any object, while the first pass over a trusted legacy file only looks for storages:
    it accepts every call, item and state and does nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Opaque()

    def __setitem__(self, key, value):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass

    def __setstate__(self, state):
        pass


class _ScanUnpickler(_SafeUnpickler):
    """First pass over a trusted legacy file: records its storages and creates nothing else
    (the trusted second pass must not run the file's code twice)."""

    dispatch = dict(_SafeUnpickler.dispatch)

    def find_class(self, module, name):
        if self.proto < 3:
            module, name = _py3_name(module, name)
        key = (module, name)
        if key in self._rebuilders and module.startswith("torch"):
            return self._rebuilders[key]
        return _storage_global(module, name) or _Opaque

    def load_build(self):
        self.stack.pop()

    dispatch[pickle.BUILD[0]] = load_build


class _TrustedUnpickler(pickle.Unpickler):
    """weights_only=False: any global (torch.* names resolve to framework.*)."""

    def __init__(self, file, ctx: _Context, encoding: str = "utf-8"):
        super().__init__(file, encoding=encoding)
        self._ctx = ctx
        self._rebuilders = _make_rebuilders(ctx)

    def find_class(self, module, name):
        m, n = _py3_name(module, name)
        obj = _table_global(self._rebuilders, m, n)
        if isinstance(obj, _TypeMarker):   # here the classes themselves, not markers
            from .nn.parameter import Parameter
            return Tensor if obj is _TENSOR_TYPE else Parameter
        if obj is not None:
            return obj
        if m == "torch" or m.startswith("torch."):
            return _framework_global(m, n, self._ctx.name)
        return super().find_class(module, name)

    def persistent_load(self, pid):
        return _persistent_load(self._ctx, pid)


def _unpickle(fileobj, ctx: _Context, plain_only: bool = False, encoding: str = "utf-8"):
    if ctx.trusted and not plain_only:
        obj = _TrustedUnpickler(fileobj, ctx, encoding).load()
    else:
        obj = _SafeUnpickler(fileobj, ctx, plain_only, encoding).load()
        if ctx.fresh_arrays:
            raise CheckpointError(f"{ctx.name}: a NumPy array was never filled in: corrupt "
                                  "checkpoint")
        if ctx.made_dtype_specs:
            obj = _resolve_dtype_specs(obj)
    return obj


# ---------------------------------------------------------------------------------- zip layout
def load_torch_zip(zf: zipfile.ZipFile, name: str, map_location, weights_only: bool = True,
                   encoding: str = "utf-8"):
    """Load a torch.save zip archive (already opened): weights only (restricted unpickler),
    or any object with weights_only=False."""
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
        return _LoadedStorage(_storage_array(buf, storage_type, byteorder), location, key)

    ctx = _Context(name, map_location, read_storage, trusted=not weights_only)
    with zf.open(pkl[0]) as fh:
        data = fh.read()
    return _unpickle(io.BytesIO(data), ctx, encoding=encoding)


# ---------------------------------------------------------------------------------- legacy
def load_torch_legacy(fh, name: str, map_location, weights_only: bool = True,
                      encoding: str = "utf-8"):
    """Load the pre-1.6 stream layout from a seekable binary file. Storage bytes come after
    the object pickle, so the pickle is read twice: once to learn the storages (a pass that
    builds nothing for a trusted file), once to build tensors on them."""
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
    if weights_only:
        _SafeUnpickler(fh, scan, encoding=encoding).load()
    else:
        scan.trusted = True
        _ScanUnpickler(fh, scan, encoding=encoding).load()
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
        arrays[key] = _storage_array(buf, storage_type, "little" if little else "big")

    def read_storage(storage_type, key, location, numel):
        if key not in arrays:
            raise CheckpointError(f"{name}: storage {key!r} has no data")
        return _LoadedStorage(arrays[key], location, key)

    ctx = _Context(name, map_location, read_storage, trusted=not weights_only)
    fh.seek(pickle_start)
    return _unpickle(fh, ctx, encoding=encoding)


# ============================================================================ writing
class _TorchGlobal:
    """A global the written pickle names (torch.FloatStorage, torch._utils._rebuild_tensor_v2,
    torch.float32 ...): written as a GLOBAL opcode, so torch need not be importable."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args, **kwargs):  # pickle's save_reduce wants a callable
        raise TypeError(f"{self.module}.{self.name} is a name written into a pickle")

    def __repr__(self):
        return f"<global {self.module}.{self.name}>"


_GLOBALS: dict[tuple[str, str], _TorchGlobal] = {}


def _g(module: str, name: str) -> _TorchGlobal:
    g = _GLOBALS.get((module, name))
    if g is None:
        g = _GLOBALS[(module, name)] = _TorchGlobal(module, name)
    return g


class _StorageRef:
    """One storage of the file being written: its key, torch type, location and where its
    bytes come from."""

    __slots__ = ("key", "type_name", "location", "numel", "source")

    def __init__(self, key, type_name, location, numel, source):
        self.key, self.type_name, self.location = key, type_name, location
        self.numel, self.source = numel, source  # source: a 1-D contiguous host array


def _storage_name(dt: np.dtype, what: str) -> str:
    name = _STORAGE_NAME.get(np.dtype(dt))
    if name is None:
        raise TypeError(f"framework.save: {what} has dtype {dt}, which a PyTorch checkpoint "
                        "cannot hold")
    return name


def _memory_root(arr):
    """The object that finally owns an array's memory (views of one allocation share it)."""
    obj = arr
    while True:
        base = getattr(obj, "base", None)   # ndarray.base, as_strided's DummyArray.base
        if base is None:
            return obj
        obj = base


def _c_strides(shape) -> tuple:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class _StoragePlan:
    """Which storage, element offset and element strides each saved array gets.

    Pass 1 registers every tensor's array; `finalize` then makes one storage per memory
    allocation that covers the span its saved views use (so views keep sharing), and a
    contiguous copy for what cannot share (GPU arrays, negative or misaligned strides, a
    different dtype over the same memory)."""

    def __init__(self):
        self.geometry: dict[int, tuple] = {}    # id(tensor._data) -> (ref, offset, strides)
        self.storages: list[_StorageRef] = []
        self._order: list = []    # ("one", data_id, array, location) or ("group", root_id)
        self._groups: dict[int, list] = {}      # id(root) -> [(data_id, array, lo, hi)]
        self._seen: set[int] = set()
        self._keep: list = []                   # keeps every id() above valid

    def register(self, data) -> None:
        if id(data) in self._seen:
            return
        self._seen.add(id(data))
        self._keep.append(data)
        if is_cuda_array(data):
            self._order.append(("one", id(data), data, f"cuda:{data.device.id}"))
            return
        arr = np.asarray(data)   # a 0-d NumPy scalar becomes a 0-d array
        _storage_name(arr.dtype, "a tensor")
        item = arr.itemsize
        if arr.size == 0 or not arr.dtype.isnative or \
                any(s < 0 or s % item for s in arr.strides):
            self._order.append(("one", id(data), arr, "cpu"))
            return
        root = _memory_root(arr)
        self._keep.append(root)
        lo = arr.__array_interface__["data"][0]
        hi = lo + sum((n - 1) * s for n, s in zip(arr.shape, arr.strides)) + item
        group = self._groups.get(id(root))
        if group is None:
            group = self._groups[id(root)] = []
            self._order.append(("group", id(root)))
        group.append((id(data), arr, lo, hi))

    def _new_storage(self, source: np.ndarray, location: str) -> _StorageRef:
        ref = _StorageRef(str(len(self.storages)), _storage_name(source.dtype, "a tensor"),
                          location, int(source.size), source)
        self.storages.append(ref)
        return ref

    def _single(self, data_id, arr, location) -> None:
        host = arr.get() if is_cuda_array(arr) else arr
        host = np.array(host, order="C", copy=True)
        if not host.dtype.isnative:
            host = host.astype(host.dtype.newbyteorder("="))
        ref = self._new_storage(host.reshape(-1), location)
        self.geometry[data_id] = (ref, 0, _c_strides(host.shape))

    def finalize(self) -> None:
        for entry in self._order:
            if entry[0] == "one":
                self._single(*entry[1:])
                continue
            members = self._groups[entry[1]]
            dt = members[0][1].dtype
            item = dt.itemsize
            same = [m for m in members if m[1].dtype == dt]
            lo = min(m[2] for m in same)
            shared = [m for m in same if (m[2] - lo) % item == 0]
            hi = max(m[3] for m in shared)
            start = min(shared, key=lambda m: m[2])[1]
            numel = (hi - lo) // item
            # The span [lo, hi) lies inside the one allocation all members view.
            span = np.lib.stride_tricks.as_strided(start, shape=(numel,), strides=(item,))
            ref = self._new_storage(span, "cpu")
            for data_id, arr, m_lo, _ in shared:
                self.geometry[data_id] = (ref, (m_lo - lo) // item,
                                          tuple(s // item for s in arr.strides))
            for data_id, arr, _, _ in members:
                if data_id not in self.geometry:
                    self._single(data_id, arr, "cpu")

    def lookup(self, data):
        geo = self.geometry.get(id(data))
        if geo is None:   # an object that made a new tensor on the second pass
            self._keep.append(data)
            self._single(id(data), data if is_cuda_array(data) else np.asarray(data),
                         "cpu" if not is_cuda_array(data) else f"cuda:{data.device.id}")
            geo = self.geometry[id(data)]
        return geo


class _Discard:
    def write(self, data):
        return len(data)


class _TorchPickler(pickle._Pickler):
    """Pickles as torch.save does, naming torch's globals for Lantern's tensors, Parameters,
    dtypes, devices and Sizes (the pure-Python pickler, so that those names can be written
    without importing torch)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, protocol: int, plan: _StoragePlan, collecting: bool):
        super().__init__(file, protocol=protocol)
        self._plan, self._collecting = plan, collecting

    def persistent_id(self, obj):
        if type(obj) is _StorageRef:
            return ("storage", _g("torch", obj.type_name), obj.key, obj.location, obj.numel)
        return None

    def _tensor_reduce(self, t: Tensor):
        data = t._data
        size = tuple(int(n) for n in t.shape)
        if self._collecting:
            self._plan.register(data)
            ref, offset, stride = None, 0, ()
        else:
            ref, offset, stride = self._plan.lookup(data)
        return (_g("torch._utils", "_rebuild_tensor_v2"),
                (ref, offset, size, stride, bool(t.requires_grad), OrderedDict()))

    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            from .nn.parameter import Parameter, is_lazy
            if is_lazy(obj):
                raise pickle.PicklingError("cannot save an uninitialized parameter or buffer "
                                           "(run the lazy module once first)")
            if isinstance(obj, Parameter):
                return (_g("torch._utils", "_rebuild_parameter"),
                        (Tensor._make(obj._data, None, 0), bool(obj.requires_grad),
                         OrderedDict()))
            return self._tensor_reduce(obj)
        t = type(obj)
        if t is Size:
            return (_g("torch", "Size"), (tuple(int(v) for v in obj),))
        if t is _device:
            return (_g("torch", "device"),
                    (obj.type,) if obj.index is None else (obj.type, obj.index))
        return NotImplemented

    def _save_torch_global(self, obj: _TorchGlobal):
        self.write(pickle.GLOBAL + obj.module.encode("utf-8") + b"\n"
                   + obj.name.encode("utf-8") + b"\n")
        self.memoize(obj)

    def _save_dtype(self, obj):
        self.save(_g("torch", obj.name))

    dispatch[_TorchGlobal] = _save_torch_global
    dispatch[D.dtype] = _save_dtype


_ALIGNMENT = 64                       # torch's writer aligns each record's bytes to 64
_CHUNK = 64 << 20


def _write_record(zf: zipfile.ZipFile, name: str, data) -> None:
    """One stored (uncompressed) record whose bytes start at a multiple of 64 in the file."""
    view = memoryview(data).cast("B")
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = view.nbytes
    zip64 = view.nbytes * 1.05 > zipfile.ZIP64_LIMIT   # as zipfile decides it
    # local header (30 bytes) + name + our padding field (4 + pad) + zip64 sizes (20)
    before = zf.start_dir + 30 + len(name.encode("ascii")) + 4 + (20 if zip64 else 0)
    pad = -before % _ALIGNMENT
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad   # field id "FB", as torch
    with zf.open(info, "w", force_zip64=zip64) as out:
        for i in range(0, view.nbytes, _CHUNK):
            out.write(view[i:i + _CHUNK])


def write_torch_zip(obj, fileobj, protocol: int = 2) -> None:
    """Write `obj` in torch.save's zip layout to a seekable binary file (or a path)."""
    plan = _StoragePlan()
    _TorchPickler(_Discard(), protocol, plan, collecting=True).dump(obj)
    plan.finalize()
    buf = io.BytesIO()
    _TorchPickler(buf, protocol, plan, collecting=False).dump(obj)
    serialization_id = f"{secrets.randbits(128):040d}"
    with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        _write_record(zf, "archive/data.pkl", buf.getvalue())
        _write_record(zf, "archive/.format_version", b"1")
        _write_record(zf, "archive/.storage_alignment", str(_ALIGNMENT).encode())
        _write_record(zf, "archive/byteorder", sys.byteorder.encode())
        for ref in plan.storages:
            _write_record(zf, f"archive/data/{ref.key}", ref.source.view(np.uint8)
                          if ref.source.size else b"")
        _write_record(zf, "archive/version", b"3\n")
        _write_record(zf, "archive/.data/serialization_id", serialization_id.encode())
