"""`Parameter` and `Buffer`: the tensors a Module registers as its learnable weights and its
persistent state (as torch.nn.Parameter / torch.nn.Buffer)."""
from __future__ import annotations

from .._backend import resolve_device, to_device_array
from .._tensor import Tensor

__all__ = ["Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer", "is_lazy"]

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


def _empty(*shape, **kwargs):
    from ..creation import empty  # framework.creation imports this module's package
    return empty(*shape, **kwargs)


class _UninitializedTensorMixin:
    __slots__ = ()  # the same layout as Tensor, so that materialize can swap the class
    cls_to_become: type

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Give this tensor (uninitialised) storage of `shape`, on its device and dtype unless
        given, and make it a regular Parameter / Tensor: the object itself is kept."""
        self.data = _empty(*shape, device=device if device is not None else self.device,
                          dtype=dtype if dtype is not None else self.dtype)
        self.__class__ = self.cls_to_become

    def to(self, *args, **kwargs):
        # Module.to / .double() before the first call must leave the tensor uninitialized
        out = super().to(*args, **kwargs)
        if out is self:
            return self
        res = _new(type(self))
        Tensor._init(res, out._data, None, 0)
        res._requires_grad = self._requires_grad
        return res

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    __str__ = __repr__

    def __reduce_ex__(self, proto):
        return (type(self), (self._requires_grad, str(self.device), self.dtype))


class UninitializedParameter(_UninitializedTensorMixin, Parameter):
    """A parameter whose shape is not known yet (a lazy module's weight before its first
    call); `materialize(shape)` makes it a regular Parameter."""

    __slots__ = ()
    cls_to_become = Parameter

    def __new__(cls, requires_grad: bool = True, device=None, dtype=None):
        return Parameter.__new__(cls, _empty(0, device=device, dtype=dtype), requires_grad)

    def __init__(self, requires_grad: bool = True, device=None, dtype=None) -> None:
        pass  # all set in __new__


class UninitializedBuffer(_UninitializedTensorMixin, Tensor):
    """A buffer whose shape is not known yet; `materialize(shape)` makes it a regular
    Tensor."""

    __slots__ = ()
    cls_to_become = Tensor

    def __new__(cls, requires_grad: bool = False, device=None, dtype=None,
                persistent: bool = True):
        t = _new(cls)
        Tensor._init(t, _empty(0, device=device, dtype=dtype)._data, None, 0)
        t._requires_grad = requires_grad
        # registered as a buffer (with this persistence) when assigned to a module attribute
        t._is_buffer = True
        t.persistent = persistent
        return t

    def __init__(self, requires_grad: bool = False, device=None, dtype=None,
                 persistent: bool = True) -> None:
        pass  # all set in __new__ (Tensor.__init__ would replace the data)


def is_lazy(param) -> bool:
    """True for an uninitialized parameter or buffer (a lazy module's, before its first call)."""
    return isinstance(param, _UninitializedTensorMixin)
