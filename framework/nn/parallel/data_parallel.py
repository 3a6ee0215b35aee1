"""`DataParallel`, as torch.nn.DataParallel on one device.

The wrapper holds the module as its child `module`, so its state_dict keys carry the
`module.` prefix as PyTorch's do, and checkpoints move between the two. Without a GPU the
forward is the module's own (PyTorch's CPU behaviour). With GPUs the module is moved to
`device_ids[0]` and the inputs' tensors are moved there before the call, as PyTorch does on
one device. Given several devices, Lantern still runs the whole batch on the first one (it
has no replicate/scatter/gather across GPUs) and says so once with a warning; the outputs are
then moved to `output_device`.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

from ... import cuda
from ..._backend import device
from ..._tensor import Tensor
from ..modules.module import Module

__all__ = ["DataParallel", "data_parallel"]


def _device_index(d) -> int:
    if isinstance(d, int):
        return d
    dev = device(d)
    if dev.type != "cuda":
        raise ValueError(f"DataParallel: expected a CUDA device, got {dev}")
    return dev.index if dev.index is not None else cuda.current_device()


def _to(obj, dev):
    """`obj` with every tensor inside (lists, tuples, dicts) moved to `dev`."""
    if isinstance(obj, Tensor):
        return obj.to(dev)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*(_to(o, dev) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(o, dev) for o in obj)
    if isinstance(obj, Mapping):
        return type(obj)((k, _to(v, dev)) for k, v in obj.items())
    return obj


class DataParallel(Module):
    """Runs `module` on one device: `DataParallel(model)(x)` is `model(x)` (moved to the
    first GPU when there is one), and `.module` is the wrapped model."""

    def __init__(self, module: Module, device_ids: Sequence[int] | None = None,
                 output_device=None, dim: int = 0) -> None:
        super().__init__()
        self.module = module
        self.dim = dim
        if not cuda.is_available():
            self.device_ids = []
            self.output_device = None
            return
        if device_ids is None:
            device_ids = list(range(cuda.device_count()))
        if len(device_ids) == 0:
            raise RuntimeError("DataParallel: no available devices were found")
        self.device_ids = [_device_index(d) for d in device_ids]
        self.output_device = _device_index(output_device if output_device is not None
                                           else self.device_ids[0])
        self.src_device_obj = device("cuda", self.device_ids[0])
        if len(self.device_ids) > 1:
            warnings.warn(f"DataParallel: Lantern runs the module on one device "
                          f"({self.src_device_obj}); the batch is not split over the "
                          f"{len(self.device_ids)} devices given", stacklevel=2)
        self.module.to(self.src_device_obj)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if not self.device_ids:
            return self.module(*inputs, **kwargs)
        src = self.src_device_obj
        for t in chain(self.module.parameters(), self.module.buffers()):
            if t.device != src:
                raise RuntimeError("module must have its parameters and buffers on device "
                                   f"{src} (device_ids[0]) but found one of them on device: "
                                   f"{t.device}")
        out = self.module(*_to(inputs, src), **_to(kwargs, src))
        if len(self.device_ids) > 1 and self.output_device != self.device_ids[0]:
            out = _to(out, device("cuda", self.output_device))
        return out


def data_parallel(module: Module, inputs, device_ids=None, output_device=None, dim: int = 0,
                  module_kwargs=None):
    """The functional form: `module(*inputs, **module_kwargs)` as DataParallel runs it."""
    if not isinstance(inputs, tuple):
        inputs = (inputs,) if inputs is not None else ()
    dp = DataParallel(module, device_ids, output_device, dim)
    return dp(*inputs, **(module_kwargs or {}))
