"""How tensors cross process boundaries through multiprocessing (queues, pipes, the
arguments of a spawned Process): registered with multiprocessing's ForkingPickler.

A tensor whose memory is shared (`share_memory_()`) travels as a handle (the name of its
shared-memory object, its offset, shape, strides and dtype), and the receiver maps the same
memory: writes on either side are seen by the other. Any other tensor travels by value, as
through pickle. A non-leaf tensor that requires grad is refused (autograd graphs do not
cross processes). Ordinary pickling (`pickle.dumps`, `framework.save`) is not affected.
"""
from __future__ import annotations

import pickle

import numpy as np

from .._backend import is_cuda_array
from .._tensor import Tensor
from . import _shared_memory as shm

__all__ = ["init_reductions"]

_done = False


def _rebuild_shared(name, size, offset, shape, strides, dtype, requires_grad, parameter):
    m = shm.attach(name, size)
    arr = np.ndarray(shape, dtype, buffer=m, offset=offset, strides=strides)
    if parameter:
        from ..nn.parameter import Parameter
        return Parameter(Tensor._make(arr, None, 0), requires_grad)
    t = Tensor._make(arr, None, 0)
    t._requires_grad = requires_grad
    return t


def _reduce_tensor(t: Tensor):
    if t._grad_fn is not None and t._requires_grad:
        raise RuntimeError("Cowardly refusing to serialize non-leaf tensor which requires_grad, "
                           "since autograd does not support crossing process boundaries.  If "
                           "you just want to transfer the data, call detach() on the tensor "
                           "before serializing (e.g., putting it on the queue).")
    arr = t._data
    handle = None if is_cuda_array(arr) else shm.handle_of(arr)
    if handle is None:
        return t.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    from ..nn.parameter import Parameter
    name, size, offset = handle
    return (_rebuild_shared, (name, size, offset, arr.shape, arr.strides, arr.dtype,
                              bool(t._requires_grad), type(t) is Parameter))


def init_reductions() -> None:
    """Register the tensor reductions with ForkingPickler (once)."""
    global _done
    if _done:
        return
    from multiprocessing.reduction import ForkingPickler

    from ..nn.parameter import Parameter
    ForkingPickler.register(Tensor, _reduce_tensor)
    ForkingPickler.register(Parameter, _reduce_tensor)
    _done = True
