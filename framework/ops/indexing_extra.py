"""Out-of-place writes by index: index_put, masked_scatter, scatter_reduce, index_reduce,
select/slice/diagonal_scatter, and as_strided and narrow_copy. Each returns a new tensor; the
in-place forms (index_put_, ...) are bound in ops/__init__.py."""
from __future__ import annotations

import builtins

import numpy as np

from .._backend import scatter_add_into, xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from ._util import broadcast_shape, ensure_tensor, norm_dim
from .elementwise import masked_fill, sum_to, where, zeros_scalar
from .indexing import (GetItem, IndexBackward, IndexPut, _check_index, _full_index, _pad_to,
                       gather, getitem, scatter)
from .registry import register
from .shape import Diagonal, _as_view, narrow


# ---------------------------------------------------------------------------------- index_put
def _sum_to_value(g: Tensor, shape) -> Tensor:
    """The gradient of a value broadcast into an indexing result: summed back to `shape`, which
    may have extra leading 1s (a (1, 4) value written into (4,) slots)."""
    if len(shape) > g._data.ndim:
        return sum_to(g, shape[len(shape) - g._data.ndim:]).reshape(shape)
    return sum_to(g, shape)


class IndexAccumulate(Op):
    """out = x with v (broadcast to the indexing result) added at `key`, duplicates summed."""

    def forward(self, x, v):
        self.v_shape = v.shape
        xp = xp_of(x)
        out = x.copy()
        vs = v.shape[builtins.max(0, v.ndim - len(self.res_shape)):]  # drop extra leading 1s
        scatter_add_into(xp, out, self.key, xp.broadcast_to(v.reshape(vs), self.res_shape))
        return out

    def backward(self, g):
        nx, nv = self.needs_input_grad
        gv = None
        if nv:
            gv = _sum_to_value(GetItem.apply(g, key=self.key, advanced=True), self.v_shape)
        return (g if nx else None), gv


def _put_key(input: Tensor, indices, opname: str):
    """index_put's key as integer arrays, one per indexed dim (a bool mask stands for its
    nonzero() arrays, as in NumPy), after PyTorch's checks; and the indexing result's shape."""
    xp = xp_of(input._data)
    shape = input._data.shape
    key, dim = [], 0
    for i, idx in enumerate(indices):
        if not isinstance(idx, Tensor):
            raise TypeError(f"{opname}(): expected Tensor as element {i} of indices, but got "
                            f"{type(idx).__name__}")
        arr = idx._data if isinstance(idx._data, type(input._data)) else xp.asarray(idx._data)
        if arr.dtype.kind not in "biu":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        n = builtins.max(arr.ndim, 1) if arr.dtype.kind == "b" else 1
        if dim + n > len(shape):
            raise IndexError(f"too many indices for tensor of dimension {len(shape)} (got "
                             f"{dim + n})")
        if arr.dtype.kind == "b":
            if arr.ndim == 0:
                raise IndexError(f"{opname}(): 0-d bool indices are not supported")
            for k, (m, s) in enumerate(zip(arr.shape, shape[dim:])):
                if m != s:
                    raise IndexError(f"The shape of the mask {list(arr.shape)} at index {k} does "
                                     f"not match the shape of the indexed tensor {list(shape)} "
                                     f"at index {dim + k}")
            key.extend(a.astype(np.int64) for a in xp.nonzero(arr))
        else:
            s = shape[dim]
            if arr.size:
                lo, hi = builtins.int(arr.min()), builtins.int(arr.max())
                if lo < -s or hi >= s:
                    raise IndexError(f"index {hi if hi >= s else lo} is out of bounds for "
                                     f"dimension {dim} with size {s}")
            key.append(arr)
        dim += n
    try:
        lead = np.broadcast_shapes(*[k.shape for k in key])
    except ValueError:
        raise IndexError("shape mismatch: indexing tensors could not be broadcast together with "
                         "shapes " + ", ".join(str(list(k.shape)) for k in key)) from None
    return tuple(key), tuple(lead) + tuple(shape[dim:])


@register()
def index_put(input: Tensor, indices, values: Tensor, accumulate: bool = False) -> Tensor:
    """A copy of `input` with `values` written (or, with accumulate, added: duplicate indices
    then sum) at `input[indices]`; indices is a tuple of integer or bool tensors."""
    if not isinstance(values, Tensor):
        raise TypeError(f"index_put(): argument 'values' must be Tensor, not "
                        f"{type(values).__name__}")
    key, res = _put_key(input, tuple(indices), "index_put")
    if values._data.dtype != input._data.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{input.dtype.name} for the destination and {values.dtype.name} for "
                           "the source.")
    vs = values._data.shape
    extra = vs[:builtins.max(0, len(vs) - len(res))]
    try:
        ok = builtins.all(s == 1 for s in extra) and \
            np.broadcast_shapes(vs[len(extra):], res) == res
    except ValueError:
        ok = False
    if not ok:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(vs)} cannot be broadcast "
                           f"to indexing result of shape {list(res)}")
    if accumulate:
        return IndexAccumulate.apply(input, values, key=key, res_shape=res)
    return IndexPut.apply(input, values, key=key)


@register()
def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """A copy of `input` (broadcast with `mask`) whose elements where `mask` is True are, in
    row-major order, the first elements of `source`."""
    mask = ensure_tensor(mask, input)
    if mask._data.dtype.kind != "b":
        raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with dtype "
                           f"{mask.dtype.name}")
    if source._data.dtype != input._data.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but got "
                           f"{input.dtype.name} and {source.dtype.name}")
    shape = tuple(broadcast_shape(input._data.shape, mask._data.shape, "masked_scatter"))
    xp = xp_of(input._data)
    m = xp.broadcast_to(xp.asarray(mask._data), shape)
    n = builtins.int(m.sum())
    if n > source._data.size:
        raise RuntimeError(f"masked_scatter: number of elements of source ({source._data.size}) "
                           f"< number of ones in mask ({n})")
    if not shape:  # 0-d input and mask: nonzero() has no 0-d form
        return getitem(source.reshape(-1), 0).clone() if n else input.clone()
    x = input if input._data.shape == shape else input.expand(*shape)
    return IndexPut.apply(x, getitem(source.reshape(-1), slice(0, n)), key=xp.nonzero(m))


# ---------------------------------------------------------------------------------- scatter_reduce
_REDUCE_UFUNC = {"prod": "multiply", "amax": "maximum", "amin": "minimum"}


def _reduce_by_rounds(xp, out, lin, vals, ufunc):
    """`ufunc.at(out.reshape(-1), lin, vals)` for an array module without ufunc.at (CuPy has it
    for add only): round k applies the k-th occurrence of every target, so no round writes one
    element twice. `out` must be C-contiguous."""
    flat = out.reshape(-1)
    lin, vals = lin.reshape(-1), vals.reshape(-1)
    if not lin.size:
        return
    order = xp.argsort(lin)
    s = lin[order]
    rank = xp.arange(s.size) - xp.searchsorted(s, s, side="left")
    for k in range(builtins.int(rank.max()) + 1):
        sel = order[rank == k]
        t = lin[sel]
        flat[t] = ufunc(flat[t], vals[sel])


def _identity(dtype, reduce):
    """The value a reduction starts from when include_self=False."""
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    big = reduce == "amin"
    if dtype.kind == "f":
        return np.inf if big else -np.inf
    if dtype.kind == "b":
        return big
    info = np.iinfo(dtype)
    return info.max if big else info.min


class ScatterReduce(Op):
    """out = x with src[i] combined by `reduce` into out[... index[i] ...] along `dim`."""

    save_inputs = (0, 1)

    def forward(self, x, src):
        xp = xp_of(x)
        idx = _full_index(xp, self.index, self.dim)
        src = src[tuple(slice(0, s) for s in self.index.shape)]
        out = x.copy()
        r = self.reduce
        if not self.include_self:
            out[idx] = _identity(x.dtype, r)
        if r in ("sum", "mean"):
            scatter_add_into(xp, out, idx, src)
        else:
            ufunc = getattr(xp, _REDUCE_UFUNC[r])
            if xp is np:
                ufunc.at(out, idx, src)
            else:
                strides = np.cumprod((1,) + x.shape[:0:-1])[::-1]
                lin = builtins.sum(a * builtins.int(s) for a, s in zip(idx, strides))
                _reduce_by_rounds(xp, out, xp.broadcast_to(lin, src.shape), src, ufunc)
        if r == "mean":
            count = xp.full(x.shape, 1 if self.include_self else 0, x.dtype)
            scatter_add_into(xp, count, idx, xp.ones(src.shape, x.dtype))
            count[count == 0] = 1
            self.count = count
            out = out // count if x.dtype.kind in "biu" else out / count
        if r in ("amax", "amin"):
            self.y = out
        return out

    def backward(self, g):
        x, src = self.saved_tensors
        xp = xp_of(g._data)
        d, r = self.dim, self.reduce
        index = self.index
        at = _full_index(xp, index, d)  # each src element's target, for the arrays below
        idx = Tensor._make(index, None, 0)
        src_n = getitem(src, tuple(slice(0, s) for s in index.shape))
        if r == "sum":
            gx, gs = g, gather(g, d, idx)
        elif r == "mean":
            count = self.count
            gx = g / Tensor._make(count, None, 0)
            gs = gather(g, d, idx) / Tensor._make(count[at], None, 0)
        elif r in ("amax", "amin"):
            # The gradient is shared evenly among the elements equal to the result (self's
            # included), as in PyTorch: weights that do not depend on the inputs' values.
            dt = g._data.dtype
            y = self.saved_output()
            xm = (x._data == y).astype(dt)
            sm = (src_n._data == y[at]).astype(dt)
            n = xm.copy()
            scatter_add_into(xp, n, at, sm)
            gx = g * Tensor._make(xm / n, None, 0)
            gs = gather(g, d, idx) * Tensor._make(sm / n[at], None, 0)
        else:
            gx, gs = self._prod_grads(g, x, src_n, idx, at)
        if not self.include_self:
            gx = scatter(gx, d, idx, 0.0)
        nx, ns = self.needs_input_grad
        return (gx if nx else None), (_pad_to(gs, self.src_shape) if ns else None)

    def _prod_grads(self, g, x, src_n, idx, at):
        """PyTorch's formula: products that leave out one factor, with zeros handled by
        masking them to 1 (the product of the others) where a position holds a single zero."""
        xp = xp_of(g._data)
        d, inc = self.dim, self.include_self
        masked_x = masked_fill(x, x == 0, 1)
        gx = g * scatter_reduce(masked_x, d, idx, src_n, "prod", include_self=inc) / masked_x
        src_zero = src_n._data == 0
        zeros = xp.zeros(x._data.shape, g._data.dtype)
        scatter_add_into(xp, zeros, at, src_zero.astype(zeros.dtype))
        n_zero = zeros[at]
        if _State.grad_enabled and builtins.bool((n_zero > 1).any()):
            raise NotImplementedError(
                "scatter_reduce(): Double backward is unsupported for src when >1 zeros in src "
                "are scattered to the same position")
        single = Tensor._make(src_zero & (n_zero == 1), None, 0)
        y = scatter_reduce(x, d, idx, src_n, "prod", include_self=inc)
        masked_src = scatter_reduce(x, d, idx, masked_fill(src_n, single, 1), "prod",
                                    include_self=inc)
        gs = where(single, gather(g * masked_src, d, idx),
                   gather(g * y, d, idx) / masked_fill(src_n, Tensor._make(src_zero, None, 0), 1))
        return gx, gs

    def _release_extra(self):
        self.index = self.count = self.y = None


class ScatterReduceExtreme(ScatterReduce):
    """amax/amin: backward reads the output, so modifying it in place first is refused."""

    save_output = True


_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


@register()
def scatter_reduce(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    """A copy of `input` with each src[i] combined by `reduce` ('sum', 'prod', 'mean', 'amax',
    'amin') into the element `index[i]` names along `dim`; include_self=False leaves the
    original values of the written elements out of the reduction."""
    if reduce not in _REDUCTIONS:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got "
                           f"{reduce}")
    index = ensure_tensor(index, input)
    if input._data.ndim == 0:
        return scatter_reduce(input.reshape(1), 0, index.reshape(-1), src.reshape(-1), reduce,
                              include_self=include_self).reshape(())
    d = _check_index(input, dim, index, "scatter_reduce")
    if src._data.dtype != input._data.dtype:
        raise RuntimeError(f"scatter_reduce(): expected self and src to have the same dtype, but "
                           f"got {input.dtype.name} and {src.dtype.name}")
    ish, ssh, xsh = index._data.shape, src._data.shape, input._data.shape
    if len(ssh) != len(ish) or builtins.any(
            i > s or (k != d and i > x) for k, (i, s, x) in enumerate(zip(ish, ssh, xsh))):
        raise RuntimeError(f"Expected index {list(ish)} to be no larger than self {list(xsh)} "
                           f"apart from dimension {d} and to be no larger size than src "
                           f"{list(ssh)}")
    xp = xp_of(input._data)
    arr = index._data if isinstance(index._data, type(input._data)) else xp.asarray(index._data)
    arr = xp.where(arr < 0, arr + xsh[d], arr).astype(np.int64, copy=False)
    op = ScatterReduceExtreme if reduce in ("amax", "amin") else ScatterReduce
    return op.apply(input, src, dim=d, index=arr, reduce=reduce, include_self=include_self,
                    src_shape=ssh)


@register()
def index_reduce(input: Tensor, dim: int, index: Tensor, source: Tensor, reduce: str, *,
                 include_self: bool = True) -> Tensor:
    """A copy of `input` with the slices of `source` along `dim` combined by `reduce` ('prod',
    'mean', 'amax', 'amin') into the slices of `input` that `index` names."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or "
                           f"amin but got {reduce}.")
    index = ensure_tensor(index, input)
    if index._data.dtype.kind not in "iu":
        raise RuntimeError(f"index_reduce_(): Expected dtype int32/int64 for index but got: "
                           f"{index.dtype.name}")
    if index._data.ndim > 1:
        raise IndexError(f"index_reduce_(): Index is supposed to be a vector, but got dim: "
                         f"{index._data.ndim} and size: {list(index.shape)}")
    nd = input._data.ndim
    d = norm_dim(dim, nd, "index_reduce")
    xsh, ssh = input._data.shape, source._data.shape
    if nd and (len(ssh) != nd or builtins.any(a != b for k, (a, b) in enumerate(zip(xsh, ssh))
                                              if k != d)):
        raise RuntimeError(f"source tensor shape must match self tensor shape, excluding the "
                           f"specified dimension. Got self.shape = {list(xsh)} source.shape = "
                           f"{list(ssh)}")
    n = ssh[d] if ssh else 1
    if index._data.size != n:
        raise RuntimeError(f"index_reduce_(): Number of indices ({index._data.size}) should be "
                           f"equal to source.size(dim): ({n}), for dim: {d}")
    size = xsh[d] if nd else 1
    if n and (builtins.int(index._data.min()) < -size or builtins.int(index._data.max()) >= size):
        raise IndexError(f"index_reduce(): index out of range for dimension {d} with size {size} "
                         f"(index {index.tolist()})")
    if source._data.dtype != input._data.dtype:
        raise RuntimeError(f"index_reduce_(): self ({input.dtype.name}) and source "
                           f"({source.dtype.name}) must have the same scalar type")
    if not nd:
        return scatter_reduce(input, 0, index.reshape(-1), source.reshape(-1), reduce,
                              include_self=include_self)
    view = [1] * nd
    view[d] = n
    return scatter_reduce(input, d, index.reshape(view).expand(*ssh), source, reduce,
                          include_self=include_self)


# ---------------------------------------------------------------------------------- *_scatter
def _embed(input: Tensor, src: Tensor, key, slice_shape) -> Tensor:
    """A copy of `input` with `src` written at basic-index `key` (src must fill it exactly)."""
    if tuple(src._data.shape) != tuple(slice_shape):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                           f"{list(src._data.shape)}, slice size = {list(slice_shape)}")
    if src._data.dtype != input._data.dtype:
        src = src.to(dtype=input.dtype)
    return IndexPut.apply(input, src, key=key)


@register()
def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """A copy of `input` with `src` written into input.select(dim, index)."""
    nd = input._data.ndim
    d = norm_dim(dim, nd, "select_scatter")
    size = input._data.shape[d]
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size "
                         f"{list(input.shape)} at dimension {d}")
    sh = input._data.shape[:d] + input._data.shape[d + 1:]
    return _embed(input, src, (slice(None),) * d + (index,), sh)


@register()
def slice_scatter(input: Tensor, src: Tensor, dim: int = 0, start=None, end=None,
                  step: int = 1) -> Tensor:
    """A copy of `input` with `src` written into input[..., start:end:step, ...] along `dim`."""
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    d = norm_dim(dim, input._data.ndim, "slice_scatter")
    sl = slice(start, end, step)
    sh = list(input._data.shape)
    sh[d] = len(range(*sl.indices(sh[d])))
    return _embed(input, src, (slice(None),) * d + (sl,), sh)


class DiagonalScatter(Op):
    """out = x with its (d1, d2) diagonal at `offset` replaced by src."""

    def forward(self, x, src):
        xp = xp_of(x)
        out = x.copy()
        view = xp.diagonal(out, self.offset, self.d1, self.d2)
        if xp is np:
            view.setflags(write=True)  # NumPy hands out diagonals read-only
        view[...] = src
        return out

    def backward(self, g):
        nx, ns = self.needs_input_grad
        kw = {"offset": self.offset, "d1": self.d1, "d2": self.d2}
        gx = DiagonalScatter.apply(g, zeros_scalar(g), **kw) if nx else None
        return gx, (Diagonal.apply(g, **kw) if ns else None)


@register()
def diagonal_scatter(input: Tensor, src: Tensor, offset: int = 0, dim1: int = 0,
                     dim2: int = 1) -> Tensor:
    """A copy of `input` with `src` written into input.diagonal(offset, dim1, dim2)."""
    nd = input._data.ndim
    d1, d2 = norm_dim(dim1, nd, "diagonal_scatter"), norm_dim(dim2, nd, "diagonal_scatter")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    xp = xp_of(input._data)
    diag_shape = xp.diagonal(input._data, offset, d1, d2).shape
    if tuple(src._data.shape) != tuple(diag_shape):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                           f"{list(src._data.shape)}, slice size = {list(diag_shape)}")
    if src._data.dtype != input._data.dtype:
        src = src.to(dtype=input.dtype)
    return DiagonalScatter.apply(input, src, offset=offset, d1=d1, d2=d2)


# ---------------------------------------------------------------------------------- as_strided
class AsStrided(Op):
    """The elements of x (in row-major order) at `positions`: a view for a contiguous x."""

    def forward(self, x):
        self.in_shape = x.shape
        xp = xp_of(x)
        if x.flags.c_contiguous:
            flat = x.reshape(-1)[self.offset:]
            st = tuple(s * x.itemsize for s in self.stride)
            return xp.lib.stride_tricks.as_strided(flat, self.size, st)
        return x.reshape(-1)[self.positions(xp)]

    def positions(self, xp):
        pos = xp.full(self.size, self.offset, np.int64)
        for k, (n, s) in enumerate(zip(self.size, self.stride)):
            shape = [1] * len(self.size)
            shape[k] = n
            pos = pos + (xp.arange(n, dtype=np.int64) * s).reshape(shape)
        return pos

    def backward(self, g):
        n = builtins.int(np.prod(self.in_shape))
        key = (self.positions(xp_of(g._data)),)
        # scatter-add: an element the view shows more than once gets each of its gradients
        return (IndexBackward.apply(g, key=key, shape=(n,), advanced=True).reshape(self.in_shape),)


@register()
def as_strided(input: Tensor, size, stride, storage_offset=None) -> Tensor:
    """The tensor of shape `size` whose element i sits at storage_offset + sum(i_k * stride_k)
    in `input`'s elements taken in row-major order (PyTorch counts in input's storage, which is
    the same for a contiguous tensor that starts its storage). A view when input is
    contiguous."""
    size, stride = tuple(builtins.int(s) for s in size), tuple(builtins.int(s) for s in stride)
    offset = 0 if storage_offset is None else builtins.int(storage_offset)
    if len(size) != len(stride):
        raise RuntimeError(f"mismatch in length of strides and shape: sizes {list(size)}, "
                           f"strides {list(stride)}")
    if builtins.any(s < 0 for s in size):
        raise RuntimeError(f"as_strided: negative sizes are not allowed, got sizes {list(size)}")
    if builtins.any(s < 0 for s in stride) or offset < 0:
        raise RuntimeError(f"as_strided: Negative strides are not supported at the moment, got "
                           f"strides: {list(stride)} and storage offset {offset}")
    numel = input._data.size
    if 0 not in size:
        need = offset + builtins.sum((n - 1) * s for n, s in zip(size, stride)) + 1
        if need > numel:
            isz = input._data.itemsize
            raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage "
                               f"offset {offset}, and itemsize {isz} requiring a storage size of "
                               f"{need * isz} are out of bounds for storage of size "
                               f"{numel * isz}")
    out = AsStrided.apply(input, size=size, stride=stride, offset=offset)
    return _as_view(out, input) if input._data.flags.c_contiguous else out


@register()
def narrow_copy(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """narrow(), copied into new memory."""
    return narrow(input, dim, start, length).clone()
