"""Shape and layout ops: reshape/view, permute, squeeze, expand, repeat, flip, roll, cat, stack,
split, narrow. Views share memory (and the version counter) with their input where the array
module returns a view."""
from __future__ import annotations

import builtins
from weakref import ref as _ref

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Op
from ._util import check_same_device, norm_dim, norm_dims
from .elementwise import broadcast_to
from .registry import register


def _as_view(out: Tensor, base: Tensor, *step) -> Tensor:
    """Mark `out` a view of `base` when its array is a view of base's memory (a reshape may
    have copied): it shares the version counter, points at the root base, and records how to
    replay itself from it, `step` being `(fn, *args)` with out = fn(base, *args); without a
    step it cannot be replayed (an in-place op on it with autograd raises). A recorded view of
    a base with a history is registered with the base, weakly, for autograd.copyslices."""
    b = getattr(out._data, "base", None)
    if b is not None:
        d = base._data
        # array views point at the memory's owner (as_strided's at a stand-in)
        if b is d or b is d.base or xp_of(d).may_share_memory(out._data, d):
            out._vc = base._shared_vc()
            root = base._base
            if root is None:
                root = base
                if step:
                    out._view_fn = (step,)
            elif step:
                steps = base._view_fn
                if steps is not None:
                    out._view_fn = steps + (step,)
            out._base = root
            if out._grad_fn is not None and root._grad_fn is not None:
                refs = root._views
                if refs is None:
                    root._views = [_ref(out)]
                else:
                    refs.append(_ref(out))
                    n = len(refs)
                    if n >= 64 and not n & (n - 1):  # drop dead ones at each power of two
                        refs[:] = [r for r in refs if r() is not None]
    return out


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = tuple(shape[0])
    return tuple(builtins.int(s) for s in shape)


def _infer_shape(shape, numel, opname, in_shape):
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError(f"{opname}: only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"{opname}: shape '{list(shape)}' is invalid for input of size "
                               f"{numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"{opname}: shape '{list(shape)}' is invalid for input of size {numel} "
                           f"(input shape {list(in_shape)})")
    return shape


class Reshape(Op):
    def forward(self, x):
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, g):
        return (g.reshape(self.in_shape),)


@register()
def reshape(input: Tensor, *shape) -> Tensor:
    shape = _shape_args(shape)
    src = input._data.shape
    if shape != src:
        shape = _infer_shape(shape, input._data.size, "reshape", src)
    return _as_view(Reshape.apply(input, shape=shape), input, reshape, shape)


def view(input: Tensor, *shape) -> Tensor:
    """As reshape. Lantern's view copies when the layout does not allow a view (PyTorch raises)."""
    if len(shape) == 1 and not isinstance(shape[0], (list, tuple, builtins.int)) and \
            not hasattr(shape[0], "__index__"):
        return input.to(dtype=shape[0])
    return reshape(input, *shape)


register("view", function=False)(view)


@register()
def view_as(input: Tensor, other: Tensor) -> Tensor:
    return reshape(input, tuple(other.shape))


@register()
def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    return reshape(input, tuple(other.shape))


@register()
def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    nd = input._data.ndim
    if nd == 0:
        return reshape(input, 1)
    s, e = norm_dim(start_dim, nd, "flatten"), norm_dim(end_dim, nd, "flatten")
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    sh = input._data.shape
    n = 1
    for d in sh[s:e + 1]:
        n *= d
    return reshape(input, sh[:s] + (n,) + sh[e + 1:])


@register()
def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    d = norm_dim(dim, input._data.ndim, "unflatten")
    sh = input._data.shape
    sizes = _infer_shape(tuple(sizes), sh[d], "unflatten", sh)
    return reshape(input, sh[:d] + tuple(sizes) + sh[d + 1:])


class Permute(Op):
    def forward(self, x):
        return x.transpose(self.dims)

    def backward(self, g):
        inv = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inv[d] = i
        return (permute(g, inv),)


@register()
def permute(input: Tensor, *dims) -> Tensor:
    dims = _shape_args(dims)
    nd = input._data.ndim
    if len(dims) != nd:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does "
                           f"not match the length of the desired ordering of dimensions i.e. "
                           f"input.dim() = {nd} is not equal to len(dims) = {len(dims)}")
    dims = tuple(norm_dim(d, nd, "permute") for d in dims)
    if len(set(dims)) != nd:
        raise RuntimeError(f"permute(): duplicate dims are not allowed: {list(dims)}")
    return _as_view(Permute.apply(input, dims=dims), input, permute, dims)


@register()
def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    nd = input._data.ndim
    if nd < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return _as_view(Reshape.apply(input, shape=input._data.shape), input, reshape,
                        input._data.shape)
    a, b = norm_dim(dim0, nd, "transpose"), norm_dim(dim1, nd, "transpose")
    perm = list(range(nd))
    perm[a], perm[b] = perm[b], perm[a]
    perm = tuple(perm)
    return _as_view(Permute.apply(input, dims=perm), input, permute, perm)


swapaxes = swapdims = transpose
register("swapaxes")(transpose)


@register()
def t(input: Tensor) -> Tensor:
    if input._data.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                           f"{input._data.ndim}D")
    return transpose(input, 0, -1) if input._data.ndim == 2 else input


@register()
def movedim(input: Tensor, source, destination) -> Tensor:
    nd = input._data.ndim
    src = (source,) if isinstance(source, builtins.int) else tuple(source)
    dst = (destination,) if isinstance(destination, builtins.int) else tuple(destination)
    src = [norm_dim(s, nd, "movedim") for s in src]
    dst = [norm_dim(d, nd, "movedim") for d in dst]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(input, order)


moveaxis = movedim


@register()
def squeeze(input: Tensor, dim=None) -> Tensor:
    sh = input._data.shape
    if dim is None:
        new = tuple(s for s in sh if s != 1)
    else:
        dims = norm_dims(dim, len(sh), "squeeze")
        new = tuple(s for i, s in enumerate(sh) if not (i in dims and s == 1))
    return reshape(input, new)


@register()
def unsqueeze(input: Tensor, dim: int) -> Tensor:
    nd = input._data.ndim
    if not -nd - 1 <= dim <= nd:
        raise IndexError(f"unsqueeze: Dimension out of range (expected to be in range of "
                         f"[{-nd - 1}, {nd}], but got {dim})")
    d = dim % (nd + 1)
    sh = input._data.shape
    return reshape(input, sh[:d] + (1,) + sh[d:])


@register()
def expand(input: Tensor, *sizes) -> Tensor:
    sizes = _shape_args(sizes)
    sh = input._data.shape
    if len(sizes) < len(sh):
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater "
                           f"or equal to the number of dimensions in the tensor ({len(sh)})")
    pad = (1,) * (len(sizes) - len(sh)) + sh
    target = tuple(p if s == -1 else s for s, p in zip(sizes, pad))
    for s, p in zip(target, pad):
        if p != 1 and s != p:
            raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing size "
                               f"({p}) at non-singleton dimension. Target sizes: {list(sizes)}. "
                               f"Tensor sizes: {list(sh)}")
    return broadcast_to(input, target)


@register()
def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, tuple(other.shape))


class Contiguous(Op):
    def forward(self, x):
        return xp_of(x).ascontiguousarray(x)

    def backward(self, g):
        return (g,)


@register(method=True)
def contiguous(input: Tensor, memory_format=None) -> Tensor:
    if input._data.flags.c_contiguous:
        return input
    return Contiguous.apply(input)


class Tile(Op):
    """np.tile semantics (= Tensor.repeat): copies of the input laid side by side."""

    def forward(self, x):
        self.in_shape = x.shape
        return xp_of(x).tile(x, self.reps)

    def backward(self, g):
        reps, sh = self.reps, self.in_shape
        sh = (1,) * (len(reps) - len(sh)) + tuple(sh)
        inter = []
        for r, s in zip(reps, sh):
            inter += [r, s]
        gs = g.reshape(inter).sum(tuple(range(0, 2 * len(reps), 2)))
        return (gs.reshape(self.in_shape),)


@register(method=False)
def tile(input: Tensor, *dims) -> Tensor:
    dims = _shape_args(dims)  # tile((2, 3)), tile(2, 3) or tile(2)
    dims = (1,) * (input._data.ndim - len(dims)) + dims
    return Tile.apply(input, reps=dims)


def repeat(input: Tensor, *sizes) -> Tensor:
    sizes = _shape_args(sizes)
    if len(sizes) < input._data.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of "
                           "dimensions of tensor")
    return Tile.apply(input, reps=sizes)


register("repeat", function=False)(repeat)
register("tile", method=True, function=True)(tile)


@register()
def repeat_interleave(input: Tensor, repeats, dim=None) -> Tensor:
    if dim is None:
        input, dim = input.reshape(-1), 0
    d = norm_dim(dim, input._data.ndim, "repeat_interleave")
    xp = xp_of(input._data)
    reps = repeats._data if isinstance(repeats, Tensor) else repeats
    idx = xp.repeat(xp.arange(input._data.shape[d]), reps)
    from .indexing import index_select
    return index_select(input, d, Tensor._make(idx, None, 0))


class Flip(Op):
    def forward(self, x):
        return xp_of(x).flip(x, self.dims)

    def backward(self, g):
        return (flip(g, self.dims),)


@register()
def flip(input: Tensor, dims) -> Tensor:
    dims = norm_dims(dims, input._data.ndim, "flip")
    return Flip.apply(input, dims=dims)


@register()
def fliplr(input: Tensor) -> Tensor:
    return flip(input, (1,))


@register()
def flipud(input: Tensor) -> Tensor:
    return flip(input, (0,))


class Roll(Op):
    def forward(self, x):
        return xp_of(x).roll(x, self.shifts, self.dims)

    def backward(self, g):
        neg = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        return (Roll.apply(g, shifts=neg, dims=self.dims),)


@register()
def roll(input: Tensor, shifts, dims=None) -> Tensor:
    if dims is None:
        flat = input.reshape(-1)
        return Roll.apply(flat, shifts=builtins.int(shifts) if not isinstance(shifts, (tuple, list))
                          else builtins.int(shifts[0]), dims=0).reshape(tuple(input.shape))
    shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts and dims must have the same length, got {len(shifts)} "
                           f"and {len(dims)}")
    dims = tuple(norm_dim(d, input._data.ndim, "roll") for d in dims)
    return Roll.apply(input, shifts=shifts, dims=dims)


class Cat(Op):
    def forward(self, *xs):
        self.sizes = [x.shape[self.dim] for x in xs]
        return xp_of(xs[0]).concatenate(xs, axis=self.dim)

    def backward(self, g):
        out, start = [], 0
        for n, need in zip(self.sizes, self.needs_input_grad):
            out.append(narrow(g, self.dim, start, n) if need else None)
            start += n
        return tuple(out)


@register(method=False)
def cat(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    # PyTorch skips 1-D empty tensors in cat (legacy behaviour)
    kept = [t for t in tensors if not (t._data.ndim == 1 and t._data.shape[0] == 0)]
    if not kept:
        return tensors[0].clone()
    tensors = kept
    from .. import _dtype as D
    dt = tensors[0].dtype
    for t in tensors[1:]:
        check_same_device(tensors[0], t, "cat")
        if t.dtype is not dt:
            dt = D.promote_types(dt, t.dtype)
    tensors = [t if t.dtype is dt else t.to(dtype=dt) for t in tensors]
    nd = tensors[0]._data.ndim
    d = norm_dim(dim, nd, "cat")
    ref = tensors[0]._data.shape
    for i, t in enumerate(tensors[1:], 1):
        s = t._data.shape
        if len(s) != nd or builtins.any(a != b for j, (a, b) in enumerate(zip(ref, s)) if j != d):
            raise RuntimeError(f"cat(): Sizes of tensors must match except in dimension {d}. "
                               f"Expected size {list(ref)} but got size {list(s)} for tensor "
                               f"number {i} in the list.")
    if len(tensors) == 1:
        return tensors[0].clone() if tensors[0]._requires_grad else Cat.apply(*tensors, dim=d)
    return Cat.apply(*tensors, dim=d)


concat = concatenate = cat
register("concat", method=False)(cat)


@register(method=False)
def stack(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    ref = tensors[0]._data.shape
    for i, t in enumerate(tensors[1:], 1):
        if t._data.shape != ref:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(ref)} "
                               f"at entry 0 and {list(t._data.shape)} at entry {i}")
    nd = len(ref) + 1
    if not -nd <= dim < nd:
        raise IndexError(f"stack: Dimension out of range (expected to be in range of [{-nd}, "
                         f"{nd - 1}], but got {dim})")
    d = dim % nd
    return cat([unsqueeze(t, d) for t in tensors], d)


@register(method=False)
def hstack(tensors) -> Tensor:
    tensors = [atleast_1d(t) for t in tensors]
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


@register(method=False)
def vstack(tensors) -> Tensor:
    return cat([t.reshape(1, -1) if t.ndim < 2 else t for t in tensors], 0)


@register()
def atleast_1d(input: Tensor) -> Tensor:
    return input.reshape(1) if input._data.ndim == 0 else input


@register()
def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    d = norm_dim(dim, input._data.ndim, "narrow")
    size = input._data.shape[d]
    if isinstance(start, Tensor):
        start = builtins.int(start.item())
    if start < 0:
        start += size
    if start < 0 or length < 0 or start + length > size:
        raise IndexError(f"narrow(): start ({start}) + length ({length}) exceeds dimension size "
                         f"({size}).")
    key = (slice(None),) * d + (slice(start, start + length),)
    from .indexing import getitem
    return getitem(input, key)


@register()
def select(input: Tensor, dim: int, index: int) -> Tensor:
    d = norm_dim(dim, input._data.ndim, "select")
    from .indexing import getitem
    return getitem(input, (slice(None),) * d + (index,))


@register()
def split(input: Tensor, split_size_or_sections, dim: int = 0):
    d = norm_dim(dim, input._data.ndim, "split")
    n = input._data.shape[d]
    if isinstance(split_size_or_sections, builtins.int):
        s = split_size_or_sections
        if s <= 0 and n:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got {s}")
        sizes = [builtins.min(s, n - i) for i in range(0, n, s)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                               f"(input tensor's size at dimension {d}), but got split_sizes="
                               f"{sizes}")
    pieces = Split.apply(input, dim=d, sizes=tuple(sizes))
    start = 0
    for p, s in zip(pieces, sizes):
        _as_view(p, input, narrow, d, start, s)
        start += s
    return pieces


class Split(Op):
    """Cut along `dim` into pieces of `sizes`, in one node: its backward concatenates the
    pieces' gradients once (one narrow per piece would sum n full-size gradients)."""

    n_out = 2  # more than one: apply returns a tuple; forward sets the real count

    def forward(self, x):
        self.n_out = len(self.sizes)
        self.in_shape = x.shape
        out, start = [], 0
        lead = (slice(None),) * self.dim
        for s in self.sizes:
            out.append(x[lead + (slice(start, start + s),)])
            start += s
        return tuple(out)

    def backward(self, *grads):
        parts = []
        for g, s in zip(grads, self.sizes):
            if g is None:
                shape = list(self.in_shape)
                shape[self.dim] = s
                ref = next(x for x in grads if x is not None)
                g = Tensor._make(xp_of(ref._data).zeros(tuple(shape), ref._data.dtype), None, 0)
            parts.append(g)
        return (cat(parts, self.dim) if len(parts) > 1 else parts[0],)


class Unbind(Op):
    """All slices along `dim` in one node; backward stacks their gradients once."""

    n_out = 2

    def forward(self, x):
        n = x.shape[self.dim]
        self.n_out = n
        self.in_shape = x.shape
        lead = (slice(None),) * self.dim
        return tuple(x[lead + (i,)] for i in range(n))

    def backward(self, *grads):
        ref = next(x for x in grads if x is not None)
        shape = tuple(s for i, s in enumerate(self.in_shape) if i != self.dim)
        zero = None
        parts = []
        for g in grads:
            if g is None:
                if zero is None:
                    zero = Tensor._make(xp_of(ref._data).zeros(shape, ref._data.dtype), None, 0)
                g = zero
            parts.append(g)
        return (stack(parts, self.dim),)


@register()
def chunk(input: Tensor, chunks: int, dim: int = 0):
    d = norm_dim(dim, input._data.ndim, "chunk")
    n = input._data.shape[d]
    size = -(-n // chunks) if n else 0
    return split(input, size if size else 1, d) if n else (input,)


@register()
def tensor_split(input: Tensor, indices_or_sections, dim: int = 0):
    d = norm_dim(dim, input._data.ndim, "tensor_split")
    n = input._data.shape[d]
    if isinstance(indices_or_sections, builtins.int):
        k = indices_or_sections
        q, r = divmod(n, k)
        sizes = [q + 1] * r + [q] * (k - r)
    else:  # slices between the indices, with Python's slicing rules (past the end: empty)
        if isinstance(indices_or_sections, Tensor):
            indices_or_sections = indices_or_sections.tolist()
        idx = [0] + [builtins.int(i) for i in indices_or_sections] + [None]
        lead = (slice(None),) * d
        return tuple(input[lead + (slice(a, b),)] for a, b in zip(idx[:-1], idx[1:]))
    out, start = [], 0
    for s in sizes:
        out.append(narrow(input, d, start, s))
        start += s
    return tuple(out)


@register()
def unbind(input: Tensor, dim: int = 0):
    d = norm_dim(dim, input._data.ndim, "unbind")
    if input._data.shape[d] == 0:
        return ()
    pieces = Unbind.apply(input, dim=d)
    for i, p in enumerate(pieces):
        _as_view(p, input, select, d, i)
    return pieces


class Tril(Op):
    def forward(self, x):
        xp = xp_of(x)
        return xp.tril(x, self.k) if self.lower else xp.triu(x, self.k)

    def backward(self, g):
        return (Tril.apply(g, k=self.k, lower=self.lower),)


@register()
def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    return Tril.apply(input, k=diagonal, lower=True)


@register()
def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    return Tril.apply(input, k=diagonal, lower=False)


class Diagonal(Op):
    """The (d1, d2) diagonal at `offset`: a view of x when `view` (Tensor.diagonal), else a
    copy (diag, and the adjoints of DiagEmbed and diagonal_scatter)."""

    view = False

    def forward(self, x):
        self.in_shape = x.shape
        xp = xp_of(x)
        d = xp.diagonal(x, self.offset, self.d1, self.d2)
        if not self.view:
            return d.copy()
        if xp is np and x.flags.writeable:
            d.setflags(write=True)  # NumPy hands out diagonals read-only
        return d

    def backward(self, g):
        return (DiagEmbed.apply(g, offset=self.offset, d1=self.d1, d2=self.d2,
                                shape=self.in_shape),)


class DiagEmbed(Op):
    """Place the last dim of x on the (d1, d2) diagonal of a zero tensor of `shape`."""

    def forward(self, x):
        xp = xp_of(x)
        out = xp.zeros(self.shape, x.dtype)
        view = xp.diagonal(out, self.offset, self.d1, self.d2)
        if xp is np:
            view.setflags(write=True)
        view[...] = x
        return out

    def backward(self, g):
        return (Diagonal.apply(g, offset=self.offset, d1=self.d1, d2=self.d2),)


@register()
def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    nd = input._data.ndim
    d1, d2 = norm_dim(dim1, nd), norm_dim(dim2, nd)
    return _as_view(Diagonal.apply(input, offset=offset, d1=d1, d2=d2, view=True), input,
                    diagonal, offset, d1, d2)


@register()
def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    if input._data.ndim == 1:
        n = input._data.shape[0] + builtins.abs(diagonal)
        return DiagEmbed.apply(input, offset=diagonal, d1=0, d2=1, shape=(n, n))
    return Diagonal.apply(input, offset=diagonal, d1=0, d2=1)


@register()
def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Put the last dim of `input` on the (dim1, dim2) diagonal of a new zero tensor."""
    nd = input._data.ndim + 1
    d1, d2 = norm_dim(dim1, nd, "diag_embed"), norm_dim(dim2, nd, "diag_embed")
    if d1 == d2:
        raise RuntimeError(f"diag_embed: diagonal dimensions cannot be identical {dim1}, {dim2}")
    m = input._data.shape[-1] + builtins.abs(offset)
    batch = iter(input._data.shape[:-1])
    shape = tuple(m if i in (d1, d2) else next(batch) for i in range(nd))
    return DiagEmbed.apply(input, offset=offset, d1=d1, d2=d2, shape=shape)


@register()
def trace(input: Tensor) -> Tensor:
    return diagonal(input).sum()
