"""Mixed precision: `autocast` and `GradScaler`, as torch.amp.

Inside `autocast(device_type, dtype)`, the ops on that device's list run under one of
PyTorch's cast policies (`OP_LISTS` below: aten/src/ATen/autocast_mode.{h,cpp}):

- lower_precision_fp: floating inputs are cast to the low-precision dtype (matrix products,
  convolutions, attention);
- fp32: floating inputs are cast to float32 (losses, normalizations, pointwise functions that
  overflow or lose precision in float16);
- fp32_set_opt_dtype: ops with a `dtype` argument (softmax, sum, cumsum, prod, norm) get
  `dtype=float32` unless the caller chose one;
- promote: all floating inputs are cast to the widest of their dtypes;
- banned: binary_cross_entropy under CUDA autocast raises (use the with-logits form).

Only floating tensors on the autocast device take part; float64 tensors are never cast. An
op on no list runs in the dtypes it is given (with the usual type promotion). While a listed
op runs, autocast is switched off, so the ops it is built from are not cast again (PyTorch
excludes the autocast dispatch key inside its wrappers the same way).

An op joins by a guard at the top of its public function, which costs two dict lookups when
autocast is off:

    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("conv2d", conv2d, input, weight, bias, ...)
        if out is not None:
            return out

`GradScaler` does dynamic loss scaling: it skips optimizer steps whose gradients hold inf or
NaN and adapts the scale.
"""
from __future__ import annotations

import functools
import warnings

from . import _dtype as D
from ._backend import is_cuda_array
from ._tensor import Tensor
from .autograd.grad_mode import _State

__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "get_autocast_dtype",
           "is_autocast_available", "cast_for_low_precision", "cast_for_float32", "OP_LISTS"]


class _AutocastState:
    # Mutated in place only: op modules keep a reference to `enabled` for their guards.
    enabled = {"cuda": False, "cpu": False}
    dtype = {"cuda": D.float16, "cpu": D.bfloat16}
    cache_enabled = True
    nesting = 0
    # id(float32 leaf) -> (leaf, its version, its low-precision copy); see _cast
    cast_cache: dict = {}


def is_autocast_available(device_type: str) -> bool:
    return device_type in ("cuda", "cpu")


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    return _AutocastState.enabled.get(device_type, False)


def get_autocast_dtype(device_type: str = "cuda"):
    return _AutocastState.dtype[device_type]


# ============================================================================ op lists
LOWER = "lower_precision_fp"
FP32 = "fp32"
FP32_SET_OPT_DTYPE = "fp32_set_opt_dtype"
PROMOTE = "promote"
BANNED = "banned"

_CONVS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
          "conv_transpose3d")

# Per device: op name -> cast policy, for the ops Lantern has. Names are the public function
# names, with two kinds of exception: ops whose aten kernel depends on an argument carry the
# aten name (`pad` in reflect mode on a 2-D padding is reflection_pad2d, `interpolate` in
# bilinear mode is upsample_bilinear), and einsum is split by whether it contracts an index
# (on the CPU only then does PyTorch's einsum reach bmm, which is on the list).
OP_LISTS: dict[str, dict[str, str]] = {
    "cuda": {
        **dict.fromkeys(_CONVS + (
            "prelu", "addmm", "addmv", "addr", "addbmm", "baddbmm", "matmul", "einsum",
            "einsum_no_contraction", "mm", "mv", "linear", "bmm",
            "scaled_dot_product_attention"), LOWER),
        **dict.fromkeys((
            "acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p",
            "cdist", "renorm",
            "reciprocal", "rsqrt", "sinh", "tan", "pow", "softplus", "layer_norm", "group_norm",
            "cosine_similarity", "poisson_nll_loss", "cosine_embedding_loss", "nll_loss",
            "hinge_embedding_loss", "kl_div", "l1_loss", "smooth_l1_loss", "huber_loss",
            "mse_loss", "margin_ranking_loss", "multilabel_margin_loss", "soft_margin_loss",
            "triplet_margin_loss", "multi_margin_loss", "binary_cross_entropy_with_logits",
            "logsumexp", "upsample_nearest", "upsample_nearest-exact", "upsample_linear",
            "upsample_bilinear", "upsample_trilinear", "upsample_bicubic",
            # not on the list itself, but PyTorch's cross_entropy is log_softmax + nll_loss,
            # both float32 under CUDA autocast
            "cross_entropy"), FP32),
        # norm is fp32_append_dtype in PyTorch: the same outcome (float32 unless a dtype is given)
        **dict.fromkeys(("prod", "softmax", "log_softmax", "cumprod", "cumsum", "sum", "norm"),
                        FP32_SET_OPT_DTYPE),
        # addcmul, addcdiv, atan2, cross, scatter_add, index_put are on the promote list too;
        # ordinary type promotion already gives them the widest dtype
        **dict.fromkeys(("dot", "tensordot", "bilinear", "grid_sample", "cross"), PROMOTE),
        "binary_cross_entropy": BANNED,
    },
    "cpu": {
        **dict.fromkeys(_CONVS + (
            "bmm", "mm", "addmm", "addbmm", "baddbmm", "linear", "matmul", "prelu", "einsum",
            "scaled_dot_product_attention"), LOWER),
        **dict.fromkeys((
            "avg_pool3d", "binary_cross_entropy", "grid_sample", "prod", "max_pool3d",
            "max_unpool2d", "max_unpool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d",
            "reflection_pad1d", "reflection_pad2d", "replication_pad1d", "replication_pad2d",
            "replication_pad3d", "mse_loss", "cosine_embedding_loss", "nll_loss",
            "hinge_embedding_loss", "poisson_nll_loss", "smooth_l1_loss", "cross_entropy",
            "l1_loss", "huber_loss", "margin_ranking_loss", "soft_margin_loss",
            "triplet_margin_loss", "multi_margin_loss", "ctc_loss", "kl_div",
            "multilabel_margin_loss", "binary_cross_entropy_with_logits", "cdist", "quantile",
            "nanquantile", "polar", "view_as_complex", "fractional_max_pool2d",
            "fractional_max_pool3d"), FP32),
        # cat, stack and index_copy are promote ops; ordinary type promotion does the same
    },
}

# Every name on some list: an op whose guard can never fire may leave it out.
LISTED_OPS = frozenset(name for ops in OP_LISTS.values() for name in ops)

_BANNED_MESSAGES = {
    "binary_cross_entropy":
        "torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to autocast.\n"
        "Many models use a sigmoid layer right before the binary cross entropy layer.\n"
        "In this case, combine the two layers using "
        "torch.nn.functional.binary_cross_entropy_with_logits\n"
        "or torch.nn.BCEWithLogitsLoss.  binary_cross_entropy_with_logits and BCEWithLogits "
        "are\nsafe to autocast.",
}


# ============================================================================ casting
_BF16_NP = D.bfloat16.np  # None without ml_dtypes (a NumPy dtype never equals None)


def _kind_of(t) -> str:
    """'cpu' or 'cuda': the autocast device type of tensor t."""
    return "cuda" if is_cuda_array(t._data) else "cpu"


def _eligible(t, kind) -> bool:
    """Whether autocast may cast t: a floating tensor, not float64, on the `kind` device."""
    if not isinstance(t, Tensor):
        return False
    k = t._data.dtype
    if k.kind != "f" and k != _BF16_NP:
        return False
    return k.itemsize != 8 and _kind_of(t) == kind


def _cast(t, dt, kind):
    """t as dtype `dt` when eligible. A float32 leaf that requires grad (a weight) is cast once
    per outermost autocast region and the copy reused, as PyTorch's cast cache does."""
    if not _eligible(t, kind) or t._data.dtype == dt.np:
        return t
    if (dt is _AutocastState.dtype[kind] and _AutocastState.cache_enabled
            and t._requires_grad and t._grad_fn is None and t._data.dtype == D.float32.np):
        if _State.grad_enabled:
            hit = _AutocastState.cast_cache.get(id(t))
            if hit is not None and hit[0] is t and hit[1] == t._version and hit[2].dtype is dt:
                return hit[2]
            out = t.to(dtype=dt)
            _AutocastState.cast_cache[id(t)] = (t, t._version, out)
            return out
    return t.to(dtype=dt)


def _cast_value(v, dt, kind):
    if isinstance(v, (list, tuple)):
        return type(v)(_cast(x, dt, kind) for x in v)
    return _cast(v, dt, kind)


def _tensors(args):
    for a in args:
        if isinstance(a, Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            for x in a:
                if isinstance(x, Tensor):
                    yield x


def _promote_dtype(tensors, kind):
    low = _AutocastState.dtype[kind]
    for t in tensors:
        if _eligible(t, kind) and t._data.dtype != low.np:
            return D.float32
    return low


def autocast_op(name: str, fn, *args, **kwargs):
    """Run `fn(*args, **kwargs)` under the cast policy of op `name` for the device of the
    first tensor argument, with autocast off inside; None when autocast is off for that
    device or `name` is not on its list (the caller then runs the op as it is)."""
    first = next(_tensors(args), None)
    if first is None:
        first = next(_tensors(kwargs.values()), None)
        if first is None:
            return None
    kind = _kind_of(first)
    en = _AutocastState.enabled
    if not en[kind]:
        return None
    policy = OP_LISTS[kind].get(name)
    if policy is None:
        return None
    if policy is FP32_SET_OPT_DTYPE:
        if kwargs.get("dtype") is None and _eligible(first, kind):
            kwargs["dtype"] = D.float32
    elif policy is BANNED:
        raise RuntimeError(_BANNED_MESSAGES[name])
    else:
        if policy is LOWER:
            dt = _AutocastState.dtype[kind]
        elif policy is FP32:
            dt = D.float32
        else:  # PROMOTE
            dt = _promote_dtype(list(_tensors(args)) + list(_tensors(kwargs.values())), kind)
        args = tuple(_cast_value(a, dt, kind) for a in args)
        kwargs = {k: _cast_value(v, dt, kind) for k, v in kwargs.items()}
    prev = en["cuda"], en["cpu"]
    en["cuda"] = en["cpu"] = False
    try:
        return fn(*args, **kwargs)
    finally:
        en["cuda"], en["cpu"] = prev


def autocast_listed(name: str):
    """Decorator: the op takes its cast policy from the autocast lists under `name` (the
    guard the listed ops otherwise write at their top)."""
    def wrap(fn):
        import functools

        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            if _AutocastState.enabled["cuda"] or _AutocastState.enabled["cpu"]:
                out = autocast_op(name, guarded, *args, **kwargs)
                if out is not None:
                    return out
            return fn(*args, **kwargs)
        return guarded
    return wrap


def run_without_autocast(fn, *args, **kwargs):
    """fn(*args, **kwargs) with autocast off: for an op that is off the list but built from
    ops that are on it (mv from matmul), whose PyTorch counterpart is one kernel."""
    en = _AutocastState.enabled
    prev = en["cuda"], en["cpu"]
    en["cuda"] = en["cpu"] = False
    try:
        return fn(*args, **kwargs)
    finally:
        en["cuda"], en["cpu"] = prev


def _active_kind(tensors):
    en = _AutocastState.enabled
    if not (en["cuda"] or en["cpu"]):
        return None
    for t in _tensors(tensors):
        kind = _kind_of(t)
        return kind if en[kind] else None
    return None


def cast_for_low_precision(*tensors):
    """The tensors with the eligible ones cast to the autocast dtype (no-op when autocast is off
    for their device): for custom ops that want lower_precision_fp treatment."""
    kind = _active_kind(tensors)
    if kind is None:
        return tensors
    dt = _AutocastState.dtype[kind]
    return tuple(_cast(t, dt, kind) for t in tensors)


def cast_for_float32(*tensors):
    """The tensors with the eligible ones cast to float32 (no-op when autocast is off for their
    device): for custom ops that want fp32 treatment."""
    kind = _active_kind(tensors)
    if kind is None:
        return tensors
    return tuple(_cast(t, D.float32, kind) for t in tensors)


# ============================================================================ autocast
class autocast:
    """Context manager / decorator: inside it, the ops on `device_type`'s list run in `dtype`
    (float16 or bfloat16; default float16 on CUDA, bfloat16 on the CPU) or in float32, as in
    PyTorch. Only tensors on `device_type` are affected. `cache_enabled` reuses the
    low-precision copy of each float32 weight within the (outermost) region."""

    def __init__(self, device_type: str = "cuda", dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = None):
        if not isinstance(device_type, str) or device_type not in ("cuda", "cpu"):
            raise ValueError(f"autocast: device_type must be 'cuda' or 'cpu', got {device_type!r}")
        self.device_type = device_type
        self.fast_dtype = _AutocastState.dtype[device_type] if dtype is None else dtype
        if not isinstance(self.fast_dtype, D.dtype) or \
                self.fast_dtype not in (D.float16, D.bfloat16):
            raise ValueError(f"autocast supports float16 and bfloat16, got {self.fast_dtype!r}")
        if enabled and self.fast_dtype.np is None:
            raise TypeError("autocast with bfloat16 needs the optional package 'ml_dtypes' "
                            "(pip install ml_dtypes); use dtype=framework.float16 instead")
        self.enabled = bool(enabled)
        self.cache_enabled = _AutocastState.cache_enabled if cache_enabled is None \
            else bool(cache_enabled)

    @property
    def dtype(self):
        return self.fast_dtype

    def __enter__(self):
        st = self.device_type
        self._prev = (_AutocastState.enabled[st], _AutocastState.dtype[st],
                      _AutocastState.cache_enabled)
        _AutocastState.enabled[st] = self.enabled
        _AutocastState.dtype[st] = self.fast_dtype
        _AutocastState.cache_enabled = self.cache_enabled
        _AutocastState.nesting += 1
        return self

    def __exit__(self, *exc):
        _AutocastState.nesting -= 1
        if _AutocastState.nesting == 0:  # leaving the outermost region: drop cached casts
            _AutocastState.cast_cache.clear()
        st = self.device_type
        _AutocastState.enabled[st], _AutocastState.dtype[st], _AutocastState.cache_enabled = \
            self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self.enabled, self.cache_enabled):
                return fn(*args, **kwargs)
        return wrapper


# ============================================================================ GradScaler
_READY, _UNSCALED, _STEPPED = 0, 1, 2


class GradScaler:
    """Dynamic loss scaling, as torch.amp.GradScaler:

        scaler.scale(loss).backward(); scaler.step(opt); scaler.update()

    `step` unscales the gradients (unless `unscale_` was called), skips the optimizer step if
    any gradient is inf/NaN, and `update` multiplies the scale by `backoff_factor` after a
    skipped step and by `growth_factor` after `growth_interval` clean steps in a row. Works
    on NumPy and CuPy gradients (one device sync per array module and step). A scaler for
    'cuda' on a machine without CUDA disables itself with a warning, as PyTorch's."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        self.device = self._device = device
        self._enabled = enabled
        if enabled and device == "cuda":
            from . import cuda
            if not cuda.is_available():
                warnings.warn("GradScaler is enabled, but CUDA is not available.  Disabling.",
                              stacklevel=2)
                self._enabled = False
        if self._enabled and (growth_factor <= 1.0 or not 0.0 < backoff_factor < 1.0):
            raise ValueError("GradScaler needs growth_factor > 1 and 0 < backoff_factor < 1")
        self._scale = float(init_scale)
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def scale(self, outputs):
        """outputs (a tensor or an iterable of them) multiplied by the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        return outputs * self._scale

    def _state(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer),
                                              {"stage": _READY, "found_inf": False})

    def unscale_(self, optimizer) -> None:
        """Divide `optimizer`'s gradients by the scale, in place, and record whether any of
        them holds inf or NaN (call it before clipping gradients)."""
        if not self._enabled:
            return
        st = self._state(optimizer)
        if st["stage"] == _UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the "
                               "last update().")
        if st["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        from ._backend import xp_of
        inv = 1.0 / self._scale
        finite = {}  # array module -> per-gradient all-finite flags, still on the device
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad._data.dtype == D.float16.np:
                    raise ValueError("Attempting to unscale FP16 gradients.")
                g = p.grad._writable()
                xp = xp_of(g)
                g *= inv
                finite.setdefault(xp, []).append(xp.isfinite(g).all())
        found = False
        for xp, flags in finite.items():  # one host sync per array module
            if not bool(xp.stack(flags).all()):
                found = True
        st["stage"], st["found_inf"] = _UNSCALED, found

    def step(self, optimizer, *args, **kwargs):
        """Unscale (if not done yet) and run `optimizer.step`, unless a gradient holds inf or
        NaN; returns what the step returns (None when skipped)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        st = self._state(optimizer)
        if st["stage"] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if st["stage"] == _READY:
            self.unscale_(optimizer)
        out = None if st["found_inf"] else optimizer.step(*args, **kwargs)
        st["stage"] = _STEPPED
        return out

    def update(self, new_scale=None) -> None:
        """Adjust the scale from the steps since the last update (or set it to new_scale)."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if hasattr(new_scale, "item") else new_scale)
        else:
            if not self._per_optimizer:
                raise RuntimeError("No inf checks were recorded prior to update.")
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
        if not self._enabled:
            return
        if len(state) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._scale = float(state["scale"])
        self._growth_factor = float(state["growth_factor"])
        self._backoff_factor = float(state["backoff_factor"])
        self._growth_interval = int(state["growth_interval"])
        self._growth_tracker = int(state["_growth_tracker"])
