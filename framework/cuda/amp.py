"""`framework.cuda.amp`: the deprecated spellings of `framework.amp` for CUDA, as
torch.cuda.amp. `autocast(...)` is `framework.autocast('cuda', ...)` and `GradScaler(...)` is
`framework.amp.GradScaler('cuda', ...)`; both emit PyTorch's FutureWarning when made."""
from __future__ import annotations

import warnings

from .. import _dtype as D
from .. import amp as _amp

__all__ = ["autocast", "GradScaler"]


class autocast(_amp.autocast):
    """Deprecated: use `framework.autocast('cuda', ...)` (or `framework.amp.autocast`)."""

    def __init__(self, enabled: bool = True, dtype=D.float16, cache_enabled: bool = True):
        warnings.warn("`framework.cuda.amp.autocast(args...)` is deprecated. Please use "
                      "`framework.amp.autocast('cuda', args...)` instead.", FutureWarning,
                      stacklevel=2)
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_amp.GradScaler):
    """Deprecated: use `framework.amp.GradScaler('cuda', ...)`."""

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True) -> None:
        warnings.warn("`framework.cuda.amp.GradScaler(args...)` is deprecated. Please use "
                      "`framework.amp.GradScaler('cuda', args...)` instead.", FutureWarning,
                      stacklevel=2)
        super().__init__("cuda", init_scale=init_scale, growth_factor=growth_factor,
                         backoff_factor=backoff_factor, growth_interval=growth_interval,
                         enabled=enabled)
