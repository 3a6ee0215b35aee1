"""Mixed precision: `autocast` (PyTorch's op lists: matrix products and convolutions in the
low-precision dtype, reductions, normalisations and losses in float32) and `GradScaler`
(dynamic loss scaling that skips optimizer steps whose gradients hold inf or NaN)."""
from __future__ import annotations

import functools

from . import _dtype as D

__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "get_autocast_dtype",
           "cast_for_low_precision", "cast_for_float32"]


class _AutocastState:
    enabled = {"cuda": False, "cpu": False}
    dtype = {"cuda": D.float16, "cpu": D.bfloat16}


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    return _AutocastState.enabled.get(device_type, False)


def get_autocast_dtype(device_type: str = "cuda"):
    return _AutocastState.dtype[device_type]


class autocast:
    """Context manager / decorator: inside it, ops in the low-precision list run in `dtype`
    (float16 or bfloat16) on `device_type`, and precision-sensitive ops run in float32."""

    def __init__(self, device_type: str = "cuda", dtype=None, enabled: bool = True,
                 cache_enabled: bool = True):
        if device_type not in ("cuda", "cpu"):
            raise ValueError(f"autocast: device_type must be 'cuda' or 'cpu', got {device_type!r}")
        self.device_type = device_type
        self.dtype = D.to_dtype(dtype) if dtype is not None else _AutocastState.dtype[device_type]
        if self.dtype not in (D.float16, D.bfloat16):
            raise ValueError(f"autocast supports float16 and bfloat16, got {self.dtype!r}")
        self.enabled = enabled

    def __enter__(self):
        self._prev = (_AutocastState.enabled[self.device_type],
                      _AutocastState.dtype[self.device_type])
        _AutocastState.enabled[self.device_type] = self.enabled
        _AutocastState.dtype[self.device_type] = self.dtype
        return self

    def __exit__(self, *exc):
        _AutocastState.enabled[self.device_type], _AutocastState.dtype[self.device_type] = \
            self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device_type, self.dtype, self.enabled):
                return fn(*args, **kwargs)
        return wrapper


def _active_dtype(tensors):
    """The autocast dtype that applies to these tensors, or None (cheap when autocast is off)."""
    en = _AutocastState.enabled
    if not (en["cuda"] or en["cpu"]):
        return None
    for t in tensors:
        if t is not None and hasattr(t, "_data"):
            kind = "cpu" if t.device.type == "cpu" else "cuda"
            return _AutocastState.dtype[kind] if en[kind] else None
    return None


def cast_for_low_precision(*tensors):
    """Matrix products and convolutions: floating inputs to the autocast dtype."""
    dt = _active_dtype(tensors)
    if dt is None:
        return tensors
    return tuple(t.to(dtype=dt) if t is not None and t.is_floating_point() and t.dtype is not dt
                 else t for t in tensors)


def cast_for_float32(*tensors):
    """Softmax, norms, losses, reductions: low-precision inputs widened to float32."""
    dt = _active_dtype(tensors)
    if dt is None:
        return tensors
    return tuple(t.to(dtype=D.float32) if t is not None and t.dtype in (D.float16, D.bfloat16)
                 else t for t in tensors)


class GradScaler:
    """Dynamic loss scaling, as torch.amp.GradScaler:

        scaler.scale(loss).backward(); scaler.step(opt); scaler.update()

    `step` unscales the gradients (unless `unscale_` was called), skips the optimizer step if
    any gradient is inf/NaN, and `update` halves the scale after a skipped step and doubles it
    after `growth_interval` clean steps."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        if growth_factor <= 1.0 or not 0.0 < backoff_factor < 1.0:
            raise ValueError("GradScaler needs growth_factor > 1 and 0 < backoff_factor < 1")
        self.device = device
        self._enabled = enabled
        self._scale = float(init_scale)
        self._growth_factor, self._backoff_factor = growth_factor, backoff_factor
        self._growth_interval = growth_interval
        self._growth_tracker = 0
        self._per_optimizer = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def scale(self, outputs):
        if not self._enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        return outputs * self._scale

    def _state(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer), {"unscaled": False, "found_inf": False})

    def unscale_(self, optimizer) -> None:
        if not self._enabled:
            return
        st = self._state(optimizer)
        if st["unscaled"]:
            raise RuntimeError("unscale_() has already been called on this optimizer since the "
                               "last update().")
        from ._backend import xp_of
        inv = 1.0 / self._scale
        found = False
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad._writable()
                xp = xp_of(g)
                g *= inv
                if not found and not bool(xp.isfinite(g).all()):
                    found = True
        st["unscaled"], st["found_inf"] = True, found

    def step(self, optimizer, *args, **kwargs):
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        st = self._state(optimizer)
        if not st["unscaled"]:
            self.unscale_(optimizer)
        if st["found_inf"]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None) -> None:
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if hasattr(new_scale, "item") else new_scale)
        else:
            found = any(st["found_inf"] for st in self._per_optimizer.values())
            if found:
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer.clear()

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self._scale = float(state["scale"])
        self._growth_factor = float(state["growth_factor"])
        self._backoff_factor = float(state["backoff_factor"])
        self._growth_interval = int(state["growth_interval"])
        self._growth_tracker = int(state["_growth_tracker"])
