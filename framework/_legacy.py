"""PyTorch's legacy tensor constructors: `Tensor(*sizes)` / `Tensor(data)`, `Tensor.new(...)`
and the typed classes `FloatTensor`, `LongTensor`, ... (`framework.cuda.FloatTensor`, ...).

As in PyTorch:

- integers (or one `Size`) give an *uninitialised* tensor of that shape: `Tensor(2, 3)` is
  2x3, `Tensor(5)` has 5 elements; no argument gives an empty 1-D tensor;
- one sequence (list, tuple, range, NumPy array) gives a copy of the data converted to the
  class's dtype (`Tensor`: the default float dtype; its own inference is not used, so
  `Tensor([1, 2])` is float32);
- one tensor gives a new tensor sharing its memory (a typed class refuses another dtype);
- a scalar is refused (`Tensor(2.5)`: "data must be a sequence").

The typed classes are not subclasses of `Tensor` (PyTorch's are not either): calling one
builds a `Tensor`, and `isinstance(t, FloatTensor)` asks whether `t` is a float32 tensor on
the class's device type.
"""
from __future__ import annotations

import builtins
import operator

import numpy as np

from . import _dtype as D
from ._backend import on_device, resolve_device, xp_for
from ._tensor import Size, Tensor

__all__ = ["legacy_array", "LEGACY_TYPES", "CUDA_LEGACY_TYPES", "legacy_type_from_name"]


def _as_size_int(a):
    """`a` as a dimension size if it is an integer (bools and tensors are not), else None."""
    if isinstance(a, (builtins.bool, np.bool_, Tensor)) or not hasattr(a, "__index__"):
        return None
    try:
        return operator.index(a)
    except TypeError:
        return None


def _uninitialised(shape, dt, device):
    for s in shape:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: "
                               f"{list(shape)}")
    dev = resolve_device(device)
    with on_device(dev):
        return xp_for(dev).empty(tuple(shape), dt.np)


def legacy_array(args: tuple, dt, device, name: str = "new"):
    """The array for a legacy constructor call with positional `args` and dtype `dt`, or
    the Tensor to alias when `args` is one tensor."""
    from .creation import _to_array
    if not args:
        return _uninitialised((0,), dt, device)
    if len(args) == 1:
        a = args[0]
        if isinstance(a, Tensor):
            if device is not None:
                raise RuntimeError(f"Legacy tensor constructor of the form {name}(tensor, "
                                   "device=device) is not supported. Use framework.tensor(...) "
                                   "or framework.as_tensor(...) instead.")
            return a
        if isinstance(a, Size):
            return _uninitialised(tuple(a), dt, device)
    sizes = [_as_size_int(a) for a in args]
    if builtins.all(s is not None for s in sizes):
        return _uninitialised(sizes, dt, device)
    if len(args) > 1:
        bad = next(a for a, s in zip(args, sizes) if s is None)
        raise TypeError(f"{name}(): sizes must be integers, got {type(bad).__name__} "
                        f"({bad!r}) in {args!r}")
    data = args[0]
    if isinstance(data, str):
        raise TypeError(f"{name}(): invalid data type 'str'")
    if not isinstance(data, (list, tuple, range, np.ndarray)) and \
            not hasattr(data, "__cuda_array_interface__"):
        raise TypeError(f"{name}(): data must be a sequence (got {type(data).__name__})")
    return _to_array(data, dt, device, copy=True)


def _alias(src: Tensor, into: Tensor | None = None) -> Tensor:
    """A new tensor (or `into`, initialised) sharing `src`'s memory and version counter."""
    t = into if into is not None else Tensor._make(src._data, None, 0)
    Tensor._init(t, src._data, None, 0)
    t._vc = src._shared_vc()
    return t


def init_tensor(self: Tensor, args: tuple, dtype, device, requires_grad: bool) -> None:
    """Tensor.__init__: the legacy constructor (plus Lantern's dtype= and requires_grad=)."""
    dt = D.to_dtype(dtype) if dtype is not None else D.get_default_dtype()
    arr = legacy_array(args, dt, device, "Tensor")
    if isinstance(arr, Tensor):
        if dtype is not None and arr.dtype is not dt:
            arr = arr.to(dtype=dt)
        _alias(arr.detach(), self)
    else:
        Tensor._init(self, arr, None, 0)
    if requires_grad:
        self.requires_grad_(True)


def tensor_new(self: Tensor, *args, **kwargs) -> Tensor:
    """Tensor.new(*sizes | data): a legacy constructor with this tensor's dtype and device."""
    if kwargs:
        unknown = set(kwargs) - {"device"}
        if unknown:
            raise TypeError(f"new() got unexpected keyword arguments {sorted(unknown)}")
    device = kwargs.get("device", None)
    arr = legacy_array(args, self.dtype, device if device is not None else
                       (self.device if not args or not isinstance(args[0], Tensor) else None),
                       "new")
    if isinstance(arr, Tensor):
        if arr.dtype is not self.dtype:
            raise TypeError(f"new(): expected a {self.dtype.name} tensor, got {arr.dtype.name}")
        return _alias(arr)
    return Tensor._make(arr, None, 0)


class _LegacyTensorType(type):
    """The metaclass of FloatTensor & co: calling one builds a Tensor of its dtype and
    device type; isinstance checks a tensor's dtype and device type."""

    dtype: D.dtype
    is_cuda: bool

    def __call__(cls, *args, device=None):
        dev_type = "cuda" if cls.is_cuda else "cpu"
        if device is not None and resolve_device(device).type != dev_type:
            raise RuntimeError(f"{cls.__module__}.{cls.__name__}: device {device} is not a "
                               f"{dev_type} device")
        if device is None and dev_type == "cuda":
            device = "cuda"
        arr = legacy_array(args, cls.dtype, device, cls.__name__)
        if isinstance(arr, Tensor):
            if arr.dtype is not cls.dtype or arr.device.type != dev_type:
                raise TypeError(f"{cls.__name__}(tensor): expected a {cls.dtype.name} tensor on "
                                f"{dev_type}, got {arr.dtype.name} on {arr.device}")
            return _alias(arr)
        return Tensor._make(arr, None, 0)

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype is cls.dtype and \
            obj.device.type == ("cuda" if cls.is_cuda else "cpu")


_NAMES = [("FloatTensor", "float32"), ("DoubleTensor", "float64"), ("HalfTensor", "float16"),
          ("BFloat16Tensor", "bfloat16"), ("ByteTensor", "uint8"), ("CharTensor", "int8"),
          ("ShortTensor", "int16"), ("IntTensor", "int32"), ("LongTensor", "int64"),
          ("BoolTensor", "bool")]


def _make_types(module: str, is_cuda: bool) -> dict:
    out = {}
    for name, dt in _NAMES:
        doc = (f"Legacy constructor of {dt} tensors on the "
               f"{'GPU' if is_cuda else 'CPU'} (see framework._legacy).")
        out[name] = _LegacyTensorType(name, (), {"dtype": getattr(D, dt), "is_cuda": is_cuda,
                                                 "is_sparse": False, "__module__": module,
                                                 "__doc__": doc})
    return out


LEGACY_TYPES = _make_types("framework", False)
CUDA_LEGACY_TYPES = _make_types("framework.cuda", True)


def legacy_type_from_name(name: str):
    """The legacy class named by `name` ('torch.FloatTensor', 'framework.cuda.LongTensor',
    'FloatTensor'), or None."""
    parts = name.split(".")
    if parts and parts[0] in ("torch", "framework"):
        parts = parts[1:]
    if len(parts) == 2 and parts[0] == "cuda":
        return CUDA_LEGACY_TYPES.get(parts[1])
    if len(parts) == 1:
        return LEGACY_TYPES.get(parts[0])
    return None
