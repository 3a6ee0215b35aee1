"""`DistributedDataParallel`: importable, so that scripts which only mention it load;
constructing one raises, because Lantern has no distributed training (process groups,
all-reduce) yet."""
from __future__ import annotations

from ..modules.module import Module

__all__ = ["DistributedDataParallel"]


class DistributedDataParallel(Module):
    """Not available: Lantern has no distributed training yet. Constructing one raises."""

    def __init__(self, module: Module | None = None, *args, **kwargs) -> None:
        raise RuntimeError(
            "DistributedDataParallel is not available: Lantern has no distributed training "
            "(process groups, collective communication) yet. On one device use the module "
            "itself (or nn.DataParallel).")
