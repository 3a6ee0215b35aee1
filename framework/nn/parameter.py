"""`Parameter` and `Buffer`: the tensors a Module registers as its learnable weights and its
persistent state (as torch.nn.Parameter / torch.nn.Buffer)."""
from __future__ import annotations

from .._backend import resolve_device, to_device_array
from .._tensor import Tensor

__all__ = ["Parameter", "Buffer", "is_lazy"]

_new = object.__new__


class Parameter(Tensor):
    """A Tensor that a Module registers as a parameter when assigned as an attribute.

    It shares memory with `data` (no copy) and requires grad unless told otherwise. Results of
    ops on a Parameter are plain Tensors.
    """

    def __new__(cls, data=None, requires_grad: bool = True):
        if data is None:
            from ..creation import empty
            data = empty(0)
        elif not isinstance(data, Tensor):
            raise TypeError(f"Parameter data must be a Tensor, got {type(data).__name__}")
        p = _new(cls)
        Tensor._init(p, data._data, None, 0)
        if requires_grad:
            p.requires_grad_(True)
        return p

    def __init__(self, data=None, requires_grad: bool = True):
        pass  # all set in __new__ (Tensor.__init__ would copy the data)

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)

    __str__ = __repr__

    def __reduce_ex__(self, proto):
        arr = self._data if type(self._data).__module__ == "numpy" else self._data.get()
        return (_rebuild_parameter, (arr, str(self.device), self._requires_grad))


def _rebuild_parameter(arr, device, requires_grad):
    t = Tensor._make(to_device_array(arr, resolve_device(device)), None, 0)
    return Parameter(t, requires_grad)


class _BufferMeta(type):
    # A Buffer is a plain Tensor marked `_is_buffer`; isinstance(t, Buffer) reads the mark.
    def __instancecheck__(cls, instance):
        if cls is Buffer:
            return isinstance(instance, Tensor) and getattr(instance, "_is_buffer", False)
        return type.__instancecheck__(cls, instance)


class Buffer(metaclass=_BufferMeta):
    """Marks a tensor to be registered as a buffer when assigned to a Module attribute
    (`self.stats = nn.Buffer(t, persistent=False)`)."""

    def __new__(cls, data=None, *, persistent: bool = True):
        if data is None:
            from ..creation import empty
            data = empty(0)
        t = data.detach()
        if data.requires_grad:
            t.requires_grad_(True)
        t._is_buffer = True
        t.persistent = persistent
        return t


def is_lazy(param) -> bool:
    return False
