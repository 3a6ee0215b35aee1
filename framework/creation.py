"""Tensor creation: from data, filled, ranges, identity and random draws."""
from __future__ import annotations

import builtins
import math

import numpy as np

from . import _dtype as D
from ._backend import (CPU, device_of, on_device, plain_ndarray, resolve_device, to_device_array,
                       xp_for, xp_of)
from ._tensor import Tensor
from .random import default_generator_for

__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "zeros_like",
           "ones_like", "full_like", "empty_like", "arange", "linspace", "logspace", "eye",
           "rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial",
           "rand_like", "randn_like", "randint_like", "scalar_tensor", "tril_indices",
           "triu_indices", "asarray"]


def _infer_dtype(data):
    """PyTorch's inference for Python data: the promotion of its elements' types, where a bool
    is bool, an int int64, a float the default float, a complex the default complex and a
    NumPy scalar or array its own dtype. Empty data gets the default float."""
    found = None

    def add(d):
        nonlocal found
        if d is not found:
            found = d if found is None else D.promote_types(found, d)

    def walk(x):
        if not isinstance(x, (list, tuple)):
            if isinstance(x, np.ndarray):
                add(D.from_numpy_dtype(x.dtype))
            else:
                add(_scalar_type_dtype(type(x)))
            return
        # One pass in C over the element types; Python only loops over nested sequences.
        for t in set(map(type, x)):
            if issubclass(t, (list, tuple, np.ndarray)):
                for v in x:
                    if isinstance(v, t):
                        walk(v)
            else:
                add(_scalar_type_dtype(t))
    walk(data)
    return found if found is not None else D.get_default_dtype()


def _scalar_type_dtype(t):
    if issubclass(t, np.generic):
        return D.from_numpy_dtype(np.dtype(t))
    if issubclass(t, builtins.bool):
        return D.bool
    if issubclass(t, builtins.int):
        return D.int64
    if issubclass(t, complex):
        return D._default_for_category(D._CATEGORY_COMPLEX)
    return D.get_default_dtype()


def _to_array(data, dtype, device, copy):
    """Turn `data` into an array of the right module, dtype and device."""
    dev = resolve_device(device) if device is not None else None
    dt = D.to_dtype(dtype) if dtype is not None else None
    if isinstance(data, Tensor):
        arr = data._data
        if dev is not None:
            arr = to_device_array(arr, dev)
        if dt is not None and arr.dtype != dt.np:
            arr = arr.astype(dt.np)
        elif copy:
            arr = arr.copy()
        return arr
    if isinstance(data, (list, tuple)) and data and _has_tensor(data):
        data = _tensors_to_nested(data)
    src_dev = None
    if not isinstance(data, (np.ndarray, np.generic, list, tuple, builtins.int, builtins.float,
                             builtins.bool, complex)) and hasattr(data, "__cuda_array_interface__"):
        src_dev = device_of(data)
    if src_dev is not None:  # a CuPy array
        arr = data
        target = dev or src_dev
        arr = to_device_array(arr, target)
        if dt is not None:
            arr = arr.astype(dt.np, copy=copy)
        elif copy:
            arr = arr.copy()
        return arr
    if isinstance(data, np.ndarray):
        data = plain_ndarray(data)
        if dt is None and data.dtype not in D._FROM_NP:
            dt = D.from_numpy_dtype(data.dtype)
        arr = data.astype(dt.np, copy=copy) if dt is not None else (data.copy() if copy else data)
    else:
        if dt is None:
            if isinstance(data, np.generic):
                dt = D.from_numpy_dtype(data.dtype)
            else:
                dt = _infer_dtype(data)
        arr = np.array(data, dtype=dt.np)
        if arr.dtype == object:
            raise TypeError(f"could not build a tensor from {type(data).__name__} data")
    if dev is not None and dev.type != "cpu":
        arr = to_device_array(arr, dev)
    return arr


def _has_tensor(x):
    for v in x:
        if isinstance(v, Tensor):
            return True
        if isinstance(v, (list, tuple)) and v and _has_tensor(v):
            return True
    return False


def _tensors_to_nested(x):
    if isinstance(x, Tensor):
        d = x._data
        return d if isinstance(d, (np.ndarray, np.generic)) else d.get()
    if isinstance(x, (list, tuple)):
        return [_tensors_to_nested(v) for v in x]
    return x


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False) -> Tensor:
    """Copy `data` (nested lists, scalars, arrays, tensors) into a new leaf tensor."""
    arr = _to_array(data, dtype, device, copy=True)
    if arr.ndim == 0 and isinstance(arr, np.ndarray):
        arr = arr[()]  # a NumPy scalar: see Tensor._make
    t = Tensor._make(arr, None, 0)
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like `tensor` but shares memory with a NumPy/CuPy array or tensor when it can."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype) if (device or dtype) else data
    return Tensor._make(_to_array(data, dtype, device, copy=False), None, 0)


asarray = as_tensor


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing memory with the NumPy array `arr`."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(arr).__name__})")
    D.from_numpy_dtype(arr.dtype)
    return Tensor._make(plain_ndarray(arr), None, 0)


def _size_args(size, kw_size=None, fname="size"):
    """The shape given as positional sizes (`zeros(2, 3)`, `zeros((2, 3))`) or as the `size=`
    keyword (`zeros(size=(2, 3))`), as PyTorch's factory functions take it."""
    if kw_size is not None:
        if size:
            raise TypeError(f"{fname}() got multiple values for argument 'size'")
        if not isinstance(kw_size, (list, tuple)):
            raise TypeError(f"{fname}(): argument 'size' must be tuple of ints, not "
                            f"{type(kw_size).__name__}")
        size = (kw_size,)
    if len(size) == 1 and isinstance(size[0], (list, tuple)):
        size = tuple(size[0])
    out = []
    for s in size:
        s = builtins.int(s)
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")
        out.append(s)
    return tuple(out)


def _sizes(size, kw, fname):
    """_size_args for a factory taking `*size` plus `**kw`, where only `size=` may be in kw."""
    if kw:
        unknown = set(kw) - {"size"}
        if unknown:
            raise TypeError(f"{fname}() got an unexpected keyword argument "
                            f"{sorted(unknown)[0]!r}")
        return _size_args(size, kw["size"], fname)
    return _size_args(size)


def _finish(arr, requires_grad):
    t = Tensor._make(arr, None, 0)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _dev_dt(device, dtype, default=None):
    dev = resolve_device(device) if device is not None else CPU
    dt = D.to_dtype(dtype) if dtype is not None else (default or D.get_default_dtype())
    return dev, dt


def zeros(*size, dtype=None, device=None, requires_grad=False, out=None, **kw) -> Tensor:
    dev, dt = _dev_dt(device, dtype)
    with on_device(dev):
        return _finish(xp_for(dev).zeros(_sizes(size, kw, "zeros"), dt.np), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    dev, dt = _dev_dt(device, dtype)
    with on_device(dev):
        return _finish(xp_for(dev).ones(_sizes(size, kw, "ones"), dt.np), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False, memory_format=None,
          **kw) -> Tensor:
    dev, dt = _dev_dt(device, dtype)
    with on_device(dev):
        return _finish(xp_for(dev).empty(_sizes(size, kw, "empty"), dt.np), requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if dtype is None:
        dtype = (D.bool if isinstance(fill_value, builtins.bool) else
                 D.int64 if isinstance(fill_value, builtins.int) else D.get_default_dtype())
    dev, dt = _dev_dt(device, dtype)
    with on_device(dev):
        return _finish(xp_for(dev).full(_size_args((size,) if isinstance(size, builtins.int)
                                                   else (tuple(size),)), fill_value, dt.np),
                       requires_grad)


def scalar_tensor(value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full((), value, dtype=dtype or D.get_default_dtype(), device=device,
                requires_grad=requires_grad)


def _like(fn, t, dtype, device, requires_grad, *args):
    return fn(*args, dtype=dtype or t.dtype, device=device or t.device,
              requires_grad=requires_grad)


def zeros_like(t, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _like(zeros, t, dtype, device, requires_grad, tuple(t.shape))


def ones_like(t, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _like(ones, t, dtype, device, requires_grad, tuple(t.shape))


def empty_like(t, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _like(empty, t, dtype, device, requires_grad, tuple(t.shape))


def full_like(t, fill_value, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return full(tuple(t.shape), fill_value, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    vals = (start, end, step)
    vals = tuple(v.item() if isinstance(v, Tensor) else v for v in vals)
    start, end, step = vals
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        dtype = D.int64 if builtins.all(isinstance(v, builtins.int) for v in vals) \
            else D.get_default_dtype()
    dev, dt = _dev_dt(device, dtype)
    n = builtins.max(0, math.ceil((end - start) / step))
    with on_device(dev):
        xp = xp_for(dev)
        arr = (start + xp.arange(n, dtype=np.float64) * step).astype(dt.np) \
            if dt.is_floating_point else xp.arange(start, end, step, dtype=dt.np)
    return _finish(arr, requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    dev, dt = _dev_dt(device, dtype)
    with on_device(dev):
        return _finish(xp_for(dev).linspace(start, end, steps).astype(dt.np), requires_grad)


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None, requires_grad=False):
    dev, dt = _dev_dt(device, dtype)
    with on_device(dev):
        return _finish(xp_for(dev).logspace(start, end, steps, base=base).astype(dt.np),
                       requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    dev, dt = _dev_dt(device, dtype)
    with on_device(dev):
        return _finish(xp_for(dev).eye(n, m if m is not None else n, dtype=dt.np), requires_grad)


def tril_indices(row, col, offset=0, *, dtype=None, device=None):
    r, c = np.tril_indices(row, offset, col)
    return tensor(np.stack([r, c]), dtype=dtype or D.int64, device=device)


def triu_indices(row, col, offset=0, *, dtype=None, device=None):
    r, c = np.triu_indices(row, offset, col)
    return tensor(np.stack([r, c]), dtype=dtype or D.int64, device=device)


# ---------------------------------------------------------------------- random
def rand(*size, generator=None, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    dev, dt = _dev_dt(device, dtype)
    g = generator or default_generator_for(dev)
    return _finish(g._uniform(_sizes(size, kw, "rand"), dt.np, dev), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    dev, dt = _dev_dt(device, dtype)
    g = generator or default_generator_for(dev)
    return _finish(g._normal(_sizes(size, kw, "randn"), dt.np, dev), requires_grad)


def randint(low=None, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    """randint(high, size), randint(low, high, size), or with keywords (`randint(high=10,
    size=(3,))`): integers drawn uniformly from [low, high) (low defaults to 0)."""
    if size is None and isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if low is None:
        low = 0
    if high is None:
        raise TypeError("randint() missing required argument 'high'")
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    dev, dt = _dev_dt(device, dtype, D.int64)
    g = generator or default_generator_for(dev)
    return _finish(g._integers(low, high, _size_args((tuple(size),)), dt.np, dev), requires_grad)


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    dev, dt = _dev_dt(device, dtype, D.int64)
    g = generator or default_generator_for(dev)
    return _finish(g._permutation(n, dt.np, dev), requires_grad)


def rand_like(t, *, dtype=None, device=None, requires_grad=False):
    return rand(*t.shape, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def randn_like(t, *, dtype=None, device=None, requires_grad=False):
    return randn(*t.shape, dtype=dtype or t.dtype, device=device or t.device,
                 requires_grad=requires_grad)


def randint_like(t, low, high=None, *, dtype=None, device=None):
    return randint(low, high, tuple(t.shape), dtype=dtype or t.dtype, device=device or t.device)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad=False) -> Tensor:
    """normal(mean, std, size) with float mean/std, or elementwise with tensor mean/std."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ref = mean if isinstance(mean, Tensor) else std
        z = randn(*ref.shape, generator=generator, dtype=ref.dtype, device=ref.device)
        return (z * std + mean).detach()
    if size is None:
        size = ()
    z = randn(*((size,) if isinstance(size, builtins.int) else tuple(size)), generator=generator,
              dtype=dtype, device=device)
    out = Tensor._make(z._data * std + mean, None, 0)
    if out._data.dtype != z._data.dtype:
        out._data = out._data.astype(z._data.dtype)
    if requires_grad:
        out.requires_grad_(True)
    return out


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    probs = input._data if p is None else p
    dev = input.device
    g = generator or default_generator_for(dev)
    u = g._uniform(tuple(input.shape), input._data.dtype, dev)
    return Tensor._make((u < probs).astype(input._data.dtype), None, 0)


def multinomial(input, num_samples, replacement=False, *, generator=None) -> Tensor:
    """Draw category indices with probabilities proportional to the rows of `input`."""
    probs = input._data
    xp = xp_of(probs)
    if probs.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {probs.ndim}")
    p2 = probs.reshape(-1, probs.shape[-1]).astype(np.float64)
    if bool((p2 < 0).any()) or not bool(xp.isfinite(p2).all()):
        raise RuntimeError("multinomial: probability tensor contains inf, nan or element < 0")
    sums = p2.sum(axis=1, keepdims=True)
    if bool((sums <= 0).any()):
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities "
                           "<= 0)")
    if not replacement and num_samples > p2.shape[1]:
        raise RuntimeError("multinomial: cannot sample n_sample > prob_dist.size(-1) samples "
                           "without replacement")
    dev = input.device
    g = generator or default_generator_for(dev)
    rows = []
    for row in p2 / sums:
        if replacement:
            u = g._uniform((num_samples,), np.float64, dev)
            idx = xp.searchsorted(xp.cumsum(row), u, side="right")
            idx = xp.minimum(idx, row.shape[0] - 1)
        else:  # Gumbel-top-k: sampling without replacement in one pass
            u = g._uniform(row.shape, np.float64, dev)
            keys = xp.log(xp.maximum(u, 1e-300)) / xp.maximum(row, 1e-300)
            keys = xp.where(row > 0, keys, -xp.inf)
            idx = xp.argsort(-keys)[:num_samples]
        rows.append(idx.astype(np.int64))
    out = xp.stack(rows)
    if probs.ndim == 1:
        out = out[0]
    return Tensor._make(out, None, 0)
