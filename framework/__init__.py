"""Lantern's framework: a define-by-run autograd library on NumPy (CPU) and CuPy (GPU) whose
API mirrors PyTorch's, so `import framework as torch` ports most PyTorch code."""
from __future__ import annotations

__version__ = "0.1.0"

from . import _runtime

_runtime.tune_blas_spin()  # OpenBLAS threads: see framework/_runtime.py
from ._parallel import get_num_threads, set_num_threads  # noqa: E402

_runtime.tune_allocator()  # see framework/_runtime.py: both switchable by environment
_runtime.tune_gc()

from . import _dtype
from ._backend import device
from ._dtype import (bfloat16, bool, complex64, complex128, double, dtype, finfo, float,  # noqa: A004
                     float16, float32, float64, get_default_dtype, half, iinfo, int, int8,
                     int16, int32, int64, long, promote_types, set_default_dtype, short, uint8)
from ._format import set_printoptions
from ._tensor import Size, Tensor
from . import ops as _ops  # registers every op and binds the Tensor methods
from .ops.registry import OPS as _OPS
from . import amp, autograd, cuda, linalg, serialization
from . import nn, optim, utils  # noqa: E402  (after the core: they build on it)
from . import distributions  # noqa: E402  (builds on nn.functional and linalg)
from .amp import autocast, get_autocast_dtype, is_autocast_enabled
from .serialization import load, save
from .autograd import (enable_grad, inference_mode, is_grad_enabled,
                       is_inference_mode_enabled, no_grad, set_grad_enabled)
from .creation import (arange, as_tensor, asarray, bernoulli, empty, empty_like, eye,
                       from_numpy, full, full_like, linspace, logspace, multinomial, normal, ones,
                       ones_like, rand, rand_like, randint, randint_like, randn, randn_like,
                       randperm, scalar_tensor, tensor, tril_indices, triu_indices, zeros,
                       zeros_like)
from .random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from . import accelerator, backends, profiler  # noqa: E402
from .backends.cuda import get_float32_matmul_precision, set_float32_matmul_precision
from ._compile import compile  # noqa: A004
from ._legacy import LEGACY_TYPES as _LEGACY_TYPES

globals().update(_LEGACY_TYPES)  # FloatTensor, LongTensor, ...: PyTorch's legacy constructors

# Every registered op that is a function (not only a method) becomes framework.<name>.
for _name, _entry in _OPS.items():
    if _entry["function"] and _name not in globals():
        globals()[_name] = _entry["fn"]
from .ops.elementwise import (abs, arctan2, clip, divide, multiply, negative, subtract,  # noqa
                              true_divide, less, less_equal, greater, greater_equal, not_equal,
                              fix, sgn, float_power, fmax, fmin)
from .ops import ALIASES as _ALIASES  # noqa: E402
for _name, _target in _ALIASES.items():
    globals().setdefault(_name, globals()[_target])
del _target
from .ops.shape import concatenate, moveaxis, swapdims, view  # noqa: E402,F401
from .ops.linalg import ger, inner, vdot  # noqa: E402,F401
from .ops.reduction import max, min, sum, all, any  # noqa: E402,F401,A004

del _name, _entry

# Sparse COO tensors; mm/matmul/spmm take a sparse operand too (the dense ops otherwise).
from . import sparse  # noqa: E402
from .sparse import sparse_coo, sparse_coo_tensor, strided  # noqa: E402
from .sparse._dispatch import matmul, mm, spmm  # noqa: E402


def is_tensor(obj) -> "bool":
    return isinstance(obj, Tensor)


def is_floating_point(t) -> "bool":
    return t.is_floating_point()


def numel(t) -> "int":
    return t.numel()


def set_flush_denormal(mode: "bool") -> "bool":
    """Flush denormal floats to zero on this CPU thread (MXCSR FTZ+DAZ on x86)."""
    from ._ftz import set_flush_denormal as _set
    return _set(mode)


_LAZY_SUBMODULES = {"func", "multiprocessing", "fx", "distributed", "onnx"}


def __getattr__(name: str):
    # these submodules are loaded on first access, so that `import framework` does not pay
    # for them
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
