"""Indexing, read and write: tensor[key], tensor[key] = v, gather/scatter, index_select,
index_add, masked_select, nonzero, take_along_dim."""
from __future__ import annotations

import builtins

import numpy as np

from .._backend import scatter_add_into, xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ._util import ensure_tensor, norm_dim
from .registry import register


def _norm_key(key, xp):
    """Convert Tensor indices inside `key` to arrays; report whether indexing is advanced."""
    if not isinstance(key, tuple):
        key = (key,)
    out, advanced = [], False
    for k in key:
        if isinstance(k, Tensor):
            arr = k._data
            if arr.dtype.kind not in "biu":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            out.append(arr)
            advanced = True
        elif isinstance(k, (list, np.ndarray)) or (xp is not np and isinstance(k, xp.ndarray)):
            arr = xp.asarray(k)
            if arr.dtype.kind not in "biu":
                raise IndexError("index arrays must be integer or boolean")
            out.append(arr)
            advanced = True
        elif isinstance(k, range):  # a list of indices, as PyTorch takes it
            out.append(xp.arange(k.start, k.stop, k.step, dtype=np.int64))
            advanced = True
        elif k is None or k is Ellipsis or isinstance(k, (builtins.int, slice, np.integer)):
            out.append(k)
        elif hasattr(k, "__index__"):
            out.append(k.__index__())
        else:
            raise IndexError(f"unsupported index type {type(k).__name__}")
    return tuple(out), advanced


def _check_bounds(arr_shape, key):
    """Integer indices out of range raise IndexError naming the dim and size, as PyTorch."""
    dim = 0
    for k in key:
        if k is None:
            continue
        if k is Ellipsis:
            dim = len(arr_shape) - builtins.sum(1 for x in key[key.index(Ellipsis) + 1:]
                                                if x is not None)
            continue
        if isinstance(k, (builtins.int, np.integer)) and dim < len(arr_shape):
            n = arr_shape[dim]
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for dimension {dim} with size {n}")
        dim += 1 if not (hasattr(k, "dtype") and k.dtype.kind == "b") else k.ndim


class GetItem(Op):
    def forward(self, x):
        self.in_shape, self.in_dtype = x.shape, x.dtype
        return x[self.key]

    def backward(self, g):
        return (IndexBackward.apply(g, key=self.key, shape=self.in_shape,
                                    advanced=self.advanced),)


class IndexBackward(Op):
    """Scatter-add `g` into zeros of `shape` at `key` (the adjoint of GetItem)."""

    def forward(self, g):
        xp = xp_of(g)
        out = xp.zeros(self.shape, g.dtype)
        if self.advanced:
            scatter_add_into(xp, out, self.key, g)
        else:
            out[self.key] = g
        return out

    def backward(self, gg):
        return (GetItem.apply(gg, key=self.key, advanced=self.advanced),)


def _split_integer_indices(key: tuple):
    """PyTorch applies integer indices as selects before advanced indexing; NumPy broadcasts
    them with the index arrays, which moves the result's dims when a slice separates them
    (x[:, 0, :, [1, 2]] is (2, 4, 2) in PyTorch, (2, 2, 4) in NumPy). With both kinds present:
    (the selects' key, the rest), else None."""
    ints = [isinstance(k, (builtins.int, np.integer)) and not isinstance(k, (bool, np.bool_))
            for k in key]
    if not any(ints):
        return None
    first = []
    for k, is_int in zip(key, ints):
        if is_int or k is Ellipsis:
            first.append(k)
        elif k is None:
            continue
        elif hasattr(k, "dtype") and k.dtype.kind == "b":
            first.extend([slice(None)] * k.ndim)     # a mask spans its own ndim dims
        else:
            first.append(slice(None))
    return tuple(first), tuple(k for k, is_int in zip(key, ints) if not is_int)


def getitem(input: Tensor, key) -> Tensor:
    xp = xp_of(input._data)
    key, advanced = _norm_key(key, xp)
    _check_bounds(input._data.shape, key)
    split = _split_integer_indices(key) if advanced else None
    if split is not None:
        return getitem(getitem(input, split[0]), split[1])
    try:
        out = GetItem.apply(input, key=key, advanced=advanced)
    except IndexError as exc:
        raise IndexError(f"{exc} (indexing a tensor of shape {list(input.shape)})") from None
    if not advanced:
        from .shape import _as_view
        _as_view(out, input, getitem, key)
    return out


class IndexPut(Op):
    """out = x with out[key] = v (v broadcast); used by tensor[key] = v under autograd."""

    def forward(self, x, v):
        self.v_shape = v.shape
        out = x.copy()
        out[self.key] = v
        return out

    def backward(self, g):
        nx, nv = self.needs_input_grad
        gx = gv = None
        if nx:
            gx = IndexPut.apply(g, Tensor._make(xp_of(g._data).zeros((), g._data.dtype), None, 0),
                                key=self.key)
        if nv:
            from .elementwise import sum_to
            gv = GetItem.apply(g, key=self.key, advanced=True)
            vs = self.v_shape
            if len(vs) > gv._data.ndim:  # a value with extra leading 1s, e.g. (1, 4) into (4,)
                gv = sum_to(gv, vs[len(vs) - gv._data.ndim:]).reshape(vs)
            else:
                gv = sum_to(gv, vs)
        return gx, gv


def setitem(input: Tensor, key, value) -> None:
    xp = xp_of(input._data)
    key, advanced = _norm_key(key, xp)
    _check_bounds(input._data.shape, key)
    split = _split_integer_indices(key) if advanced else None
    if split is not None:   # PyTorch's placement (see _split_integer_indices): write through
        setitem(getitem(input, split[0]), split[1], value)   # the selects' view
        return
    from ..autograd.grad_mode import _State
    if isinstance(value, Tensor):
        if value._data.dtype != input._data.dtype:
            value = value.to(dtype=input.dtype)
        if type(value._data) is not type(input._data):
            value = value.to(input.device)
    if _State.grad_enabled and (input._requires_grad or (isinstance(value, Tensor) and
                                                         value._requires_grad)):
        input._check_inplace()
        v = value if isinstance(value, Tensor) else Tensor._make(
            xp.asarray(value, dtype=input._data.dtype), None, 0)
        old = Tensor._make(input._data, input._grad_fn, input._out_idx)
        old._requires_grad = input._requires_grad
        input._inplace_from(IndexPut.apply(old, v, key=key))  # writes, bumps the version
    else:
        input._write_target()[key] = value._data if isinstance(value, Tensor) else value
        input._bump()


class Gather(Op):
    def forward(self, x, index):
        self.in_shape = x.shape
        self.index = index
        return xp_of(x).take_along_axis(x, index, axis=self.dim)

    def backward(self, g):
        xp = xp_of(g._data)
        zeros = Tensor._make(xp.zeros(self.in_shape, g._data.dtype), None, 0)
        idx = Tensor._make(self.index, None, 0)
        return (ScatterAdd.apply(zeros, idx, g, dim=self.dim), None)

    def _release_extra(self):
        self.index = None


def _check_index(input, dim, index, opname):
    if index._data.dtype.kind not in "iu":
        raise RuntimeError(f"{opname}(): Expected dtype int64 for index, got {index.dtype.name}")
    if index._data.ndim != input._data.ndim and not (input._data.ndim == 0 and
                                                     index._data.ndim <= 1):
        raise RuntimeError(f"{opname}(): Index tensor must have the same number of dimensions as "
                           f"input tensor (input {list(input.shape)}, index {list(index.shape)})")
    d = norm_dim(dim, input._data.ndim, opname)
    if index._data.size:
        xp = xp_of(index._data)
        n = input._data.shape[d] if input._data.ndim else 1
        lo, hi = builtins.int(xp.min(index._data)), builtins.int(xp.max(index._data))
        if lo < -n or hi >= n:
            raise RuntimeError(f"{opname}(): index {hi if hi >= n else lo} is out of bounds for "
                               f"dimension {d} with size {n}")
    return d


@register()
def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    index = ensure_tensor(index, input)
    d = _check_index(input, dim, index, "gather")
    for i, (a, b) in enumerate(zip(index._data.shape, input._data.shape)):
        if i != d and a > b:
            raise RuntimeError(f"gather(): Size does not match at dimension {i} expected index "
                               f"{list(index.shape)} to be smaller than self {list(input.shape)} "
                               f"apart from dimension {d}")
    if input._data.ndim == 0:
        return input.reshape(1).gather(0, index.reshape(-1)).reshape(tuple(index.shape))
    sub = tuple(slice(0, s) if i != d else slice(None) for i, s in enumerate(index._data.shape))
    if builtins.any(s.stop is not None and s.stop < input._data.shape[i]
                    for i, s in enumerate(sub)):
        input = getitem(input, sub)
    return Gather.apply(input, index, dim=d)


def _full_index(xp, index, dim):
    """Index tuple addressing, for each element of `index`, its target along `dim`."""
    idx = []
    for a in range(index.ndim):
        if a == dim:
            idx.append(index)
        else:
            shape = [1] * index.ndim
            shape[a] = index.shape[a]
            idx.append(xp.arange(index.shape[a]).reshape(shape))
    return tuple(idx)


class ScatterAdd(Op):
    def forward(self, x, index, src):
        xp = xp_of(x)
        self.index = index
        self.src_shape = src.shape
        out = x.copy()
        src = src[tuple(slice(0, s) for s in index.shape)]
        scatter_add_into(xp, out, _full_index(xp, index, self.dim), src)
        return out

    def backward(self, g):
        nx, _, ns = self.needs_input_grad
        gsrc = None
        if ns:
            gsrc = _pad_to(_gather_index(g, self.index, self.dim), self.src_shape)
        return (g if nx else None, None, gsrc)

    def _release_extra(self):
        self.index = None


def _gather_index(g: Tensor, index, dim: int) -> Tensor:
    """g gathered at the positions of `index` (an array that may be smaller than g in the
    dims other than `dim`, as scatter allows): the gradient of scatter's source."""
    if builtins.any(s < g._data.shape[i] for i, s in enumerate(index.shape) if i != dim):
        g = getitem(g, tuple(slice(0, s) if i != dim else slice(None)
                             for i, s in enumerate(index.shape)))
    return Gather.apply(g, Tensor._make(index, None, 0), dim=dim)


def _pad_to(t: Tensor, shape):
    if tuple(t._data.shape) == tuple(shape):
        return t
    xp = xp_of(t._data)
    out = Tensor._make(xp.zeros(shape, t._data.dtype), None, 0)
    return IndexPut.apply(out, t, key=tuple(slice(0, s) for s in t._data.shape))


class Scatter(Op):
    def forward(self, x, index, src):
        xp = xp_of(x)
        self.index = index
        self.src_shape = src.shape
        out = x.copy()
        src = xp.broadcast_to(src, index.shape) if src.ndim == 0 else \
            src[tuple(slice(0, s) for s in index.shape)]
        out[_full_index(xp, index, self.dim)] = src
        return out

    def backward(self, g):
        nx, _, ns = self.needs_input_grad
        idx = Tensor._make(self.index, None, 0)
        gx = gsrc = None
        if nx:
            z = Tensor._make(xp_of(g._data).zeros((), g._data.dtype), None, 0)
            gx = Scatter.apply(g, idx, z, dim=self.dim)
        if ns:
            gsrc = _gather_index(g, self.index, self.dim)
            if len(self.src_shape) == 0:
                gsrc = gsrc.sum()
            else:
                gsrc = _pad_to(gsrc, self.src_shape)
        return gx, None, gsrc

    def _release_extra(self):
        self.index = None


def _scatter_src(input, src):
    if not isinstance(src, Tensor):
        xp = xp_of(input._data)
        return Tensor._make(xp.asarray(src, dtype=input._data.dtype), None, 0)
    return src if src.dtype is input.dtype else src.to(dtype=input.dtype)


@register()
def scatter(input: Tensor, dim: int, index: Tensor, src=None, *, value=None,
            reduce=None) -> Tensor:
    if src is None:
        src = value
    if reduce is not None:
        if reduce == "add":
            return scatter_add(input, dim, index, _scatter_src(input, src).expand_as(index)
                               if not isinstance(src, Tensor) or src.ndim == 0 else src)
        raise NotImplementedError(f"scatter(reduce={reduce!r}) is not supported; use "
                                  "scatter_add or scatter_reduce")
    d = _check_index(input, dim, index, "scatter")
    return Scatter.apply(input, index, _scatter_src(input, src), dim=d)


@register()
def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    d = _check_index(input, dim, index, "scatter_add")
    return ScatterAdd.apply(input, index, _scatter_src(input, src), dim=d)


@register()
def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    index = ensure_tensor(index, input)
    if index._data.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = norm_dim(dim, input._data.ndim, "index_select")
    n = input._data.shape[d] if input._data.ndim else 1
    if index._data.size:
        xp = xp_of(index._data)
        hi, lo = builtins.int(xp.max(index._data)), builtins.int(xp.min(index._data))
        if hi >= n or lo < -n:
            raise IndexError(f"index_select(): index out of range in self: index "
                             f"{hi if hi >= n else lo} for dimension {d} with size {n}")
    return getitem(input, (slice(None),) * d + (index.reshape(-1),))


class IndexAdd(Op):
    def forward(self, x, source):
        xp = xp_of(x)
        out = x.copy()
        scatter_add_into(xp, out, (slice(None),) * self.dim + (self.index,),
                         source * self.alpha if self.alpha != 1 else source)
        return out

    def backward(self, g):
        nx, ns = self.needs_input_grad
        gs = None
        if ns:
            gs = getitem(g, (slice(None),) * self.dim + (Tensor._make(self.index, None, 0),))
            if self.alpha != 1:
                gs = gs * self.alpha
        return (g if nx else None, gs)


@register()
def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    d = norm_dim(dim, input._data.ndim, "index_add")
    index = ensure_tensor(index, input)
    if source._data.ndim and source._data.shape[d] != index._data.size:
        raise RuntimeError(f"index_add_(): Number of indices ({index._data.size}) should be equal "
                           f"to source.size(dim) ({source._data.shape[d]})")
    return IndexAdd.apply(input, source.to(dtype=input.dtype), dim=d,
                          index=index._data.reshape(-1), alpha=alpha)


@register()
def take_along_dim(input: Tensor, indices: Tensor, dim=None) -> Tensor:
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    d = norm_dim(dim, input._data.ndim, "take_along_dim")
    shape = list(np.broadcast_shapes(
        tuple(s for i, s in enumerate(input._data.shape) if i != d),
        tuple(s for i, s in enumerate(indices._data.shape) if i != d)))
    ish, xsh = list(shape), list(shape)
    ish.insert(d, indices._data.shape[d])
    xsh.insert(d, input._data.shape[d])
    return gather(input.expand(*xsh), d, indices.expand(*ish))


@register()
def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    mask = ensure_tensor(mask, input)
    if mask._data.dtype.kind != "b":
        raise RuntimeError(f"masked_select: expected BoolTensor for mask, got {mask.dtype.name}")
    shape = np.broadcast_shapes(input._data.shape, mask._data.shape)
    return getitem(input.expand(*shape), mask.expand(*shape))


class Nonzero(Op):
    differentiable = False

    def forward(self, x):
        xp = xp_of(x)
        return xp.stack(xp.nonzero(x), axis=1).astype(np.int64) if x.ndim else \
            xp.zeros((1 if bool(x) else 0, 0), np.int64)


@register(differentiable=False)
def nonzero(input: Tensor, *, as_tuple: bool = False):
    out = Nonzero.apply(input)
    if as_tuple:
        if input._data.ndim == 0:
            return (out.reshape(-1),)
        return tuple(out[:, i] for i in range(out.shape[1]))
    return out


@register(differentiable=False)
def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)
