"""PyTorch's legacy `torch.autograd.profiler` names, for code written against it: the same
profiler as `framework.profiler` (its `use_cuda` and other arguments are accepted and not
used)."""
from __future__ import annotations

from ..profiler import EventList, FunctionEvent, FunctionEventAvg, profile, record_function

__all__ = ["profile", "record_function", "EventList", "FunctionEvent", "FunctionEventAvg"]
