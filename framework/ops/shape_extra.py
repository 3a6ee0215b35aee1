"""More stacking, splitting and arranging: atleast_2d/3d, dstack, column_stack, row_stack,
hsplit/vsplit/dsplit, block_diag, meshgrid, cartesian_prod, combinations, rot90, vander. All
are built from differentiable ops (reshape, expand, cat, flip, indexing, cumprod)."""
from __future__ import annotations

import builtins
import itertools

import numpy as np

from .. import _dtype as D
from .._backend import xp_of
from .._tensor import Tensor
from ._util import norm_dim
from .indexing import getitem
from .reduction import cumprod
from .registry import register
from .shape import cat, flip, reshape, stack, tensor_split, transpose, vstack


def _tensor_args(tensors):
    """f(a, b), f([a, b]) and f((a, b)) all mean the tensors a, b."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return list(tensors[0])
    return list(tensors)


def _at_least(tensors, fn):
    if len(tensors) == 1 and isinstance(tensors[0], Tensor):
        return fn(tensors[0])
    return tuple(fn(t) for t in _tensor_args(tensors))


def _to_2d(t: Tensor) -> Tensor:
    return reshape(t, 1, -1) if t._data.ndim < 2 else t


def _to_3d(t: Tensor) -> Tensor:
    nd = t._data.ndim
    if nd == 0:
        return reshape(t, 1, 1, 1)
    if nd == 1:
        return reshape(t, 1, -1, 1)
    return reshape(t, t._data.shape + (1,)) if nd == 2 else t


@register(method=False)
def atleast_2d(*tensors):
    """Each tensor viewed with at least 2 dims (a 1-d one as a row); one tensor in gives one
    tensor out, several (or a sequence) give a tuple."""
    return _at_least(tensors, _to_2d)


@register(method=False)
def atleast_3d(*tensors):
    """Each tensor viewed with at least 3 dims: (n,) as (1, n, 1), (m, n) as (m, n, 1)."""
    return _at_least(tensors, _to_3d)


@register(method=False)
def dstack(tensors) -> Tensor:
    """Concatenate along the third dim, after atleast_3d."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("dstack expects a non-empty TensorList")
    return cat([_to_3d(t) for t in tensors], 2)


@register(method=False)
def column_stack(tensors) -> Tensor:
    """Concatenate along dim 1, 0-d and 1-d tensors taken as columns."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("column_stack expects a non-empty TensorList")
    return cat([reshape(t, -1, 1) if t._data.ndim < 2 else t for t in tensors], 1)


@register(method=False)
def row_stack(tensors) -> Tensor:
    """vstack under its other name."""
    return vstack(tensors)


def _split_at(input: Tensor, sections, dim: int, name: str, min_dims: int):
    nd = input._data.ndim
    if nd < min_dims:
        raise RuntimeError(f"{name} requires a tensor with at least {min_dims} dimension, but got "
                           f"a tensor with {nd} dimensions!")
    n = input._data.shape[dim]
    if isinstance(sections, (builtins.int, np.integer)):
        if sections == 0 or n % sections:
            raise RuntimeError(f"{name} attempted to split along dimension {dim}, but the size of "
                               f"the dimension {n} is not divisible by the split_size "
                               f"{sections}!")
        return tensor_split(input, builtins.int(sections), dim)
    # indices past the end give empty pieces, as in PyTorch
    return tensor_split(input, [builtins.min(builtins.int(i), n) for i in sections], dim)


@register()
def hsplit(input: Tensor, indices_or_sections):
    """Split along dim 1 (dim 0 of a 1-d tensor) into equal sections or at indices."""
    return _split_at(input, indices_or_sections, 1 if input._data.ndim > 1 else 0, "hsplit", 1)


@register()
def vsplit(input: Tensor, indices_or_sections):
    """Split along dim 0 into equal sections or at indices (2 dims at least)."""
    return _split_at(input, indices_or_sections, 0, "vsplit", 2)


@register()
def dsplit(input: Tensor, indices_or_sections):
    """Split along dim 2 into equal sections or at indices (3 dims at least)."""
    return _split_at(input, indices_or_sections, 2, "dsplit", 3)


def _zeros(like: Tensor, shape, dtype) -> Tensor:
    return Tensor._make(xp_of(like._data).zeros(shape, dtype.np), None, 0)


@register(method=False)
def block_diag(*tensors) -> Tensor:
    """The block-diagonal matrix of the tensors (0-d as 1x1, 1-d of n as 1xn), zeros elsewhere,
    in their promoted dtype."""
    blocks = []
    for i, t in enumerate(tensors):
        if t._data.ndim > 2:
            raise RuntimeError(f"block_diag: Input tensors must have 2 or fewer dimensions. Input "
                               f"{i} has {t._data.ndim} dimensions")
        blocks.append(_to_2d(t))
    if not blocks:
        return Tensor._make(np.zeros((1, 0), D.get_default_dtype().np), None, 0)
    dt = blocks[0].dtype
    for b in blocks[1:]:
        dt = D.promote_types(dt, b.dtype)
    width = builtins.sum(b._data.shape[1] for b in blocks)
    rows, col = [], 0
    for b in blocks:
        r, c = b._data.shape
        b = b if b.dtype is dt else b.to(dtype=dt)
        rows.append(cat([_zeros(b, (r, col), dt), b, _zeros(b, (r, width - col - c), dt)], 1))
        col += c
    return cat(rows, 0)


def _check_vectors(tensors, name: str):
    if not tensors:
        raise RuntimeError(f"{name} expects a non-empty TensorList")
    dt = tensors[0].dtype
    if builtins.any(t.dtype is not dt for t in tensors):
        raise RuntimeError(f"{name} expects all tensors to have the same dtype, got "
                           + ", ".join(t.dtype.name for t in tensors))


@register(method=False)
def meshgrid(*tensors, indexing: str | None = None):
    """Coordinate grids of 0-d/1-d tensors: output i holds tensor i's values along its own dim.
    indexing='ij' (the default) orders dims as the inputs; 'xy' swaps the first two (Cartesian,
    as NumPy's default)."""
    tensors = _tensor_args(tensors)
    if indexing is None:
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'meshgrid: indexing must be one of "xy" or "ij", but received: '
                           f"{indexing}")
    _check_vectors(tensors, "meshgrid")
    for i, t in enumerate(tensors):
        if t._data.ndim > 1:
            raise RuntimeError(f"meshgrid: Expected 0D or 1D tensor in the tensor list but got a "
                               f"tensor of shape {list(t.shape)} at position {i}")
    axes = list(range(len(tensors)))
    if indexing == "xy" and len(axes) > 1:
        axes[0], axes[1] = 1, 0
    shape = [0] * len(tensors)
    for a, t in zip(axes, tensors):
        shape[a] = t._data.size
    out = []
    for a, t in zip(axes, tensors):
        view = [1] * len(tensors)
        view[a] = -1
        out.append(reshape(t, view).expand(*shape))
    return tuple(out)


@register(method=False)
def cartesian_prod(*tensors) -> Tensor:
    """All tuples of one element from each 1-d tensor, as rows (lexicographic order); one
    tensor is returned as it is."""
    tensors = _tensor_args(tensors)
    for t in tensors:
        if t._data.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    _check_vectors(tensors, "meshgrid")
    if len(tensors) == 1:
        return tensors[0]
    return stack([g.reshape(-1) for g in meshgrid(*tensors, indexing="ij")], 1)


@register(method=False)
def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """The length-r combinations of a 1-d tensor's elements, as rows, in itertools order;
    shape (0,) for r=0."""
    if input._data.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return getitem(input, slice(0, 0))
    pick = itertools.combinations_with_replacement if with_replacement else \
        itertools.combinations
    idx = np.array(list(pick(range(input._data.shape[0]), r)), np.int64).reshape(-1, r)
    return getitem(input, Tensor._make(xp_of(input._data).asarray(idx), None, 0))


@register()
def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotate by k quarter turns in the plane of `dims`, from dims[0] towards dims[1]."""
    dims = list(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    nd = input._data.ndim
    if nd < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {nd}")
    d0, d1 = norm_dim(dims[0], nd, "rot90"), norm_dim(dims[1], nd, "rot90")
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} and "
                           f"dim1 = {d1}")
    k %= 4
    if k == 1:
        return transpose(flip(input, (d1,)), d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return transpose(flip(input, (d0,)), d0, d1)
    return input.clone()


@register(method=False)
def vander(x: Tensor, N: int | None = None, increasing: bool = False) -> Tensor:
    """The Vandermonde matrix: columns x**(N-1), ..., x**0 (reversed with increasing);
    integer and bool inputs give int64."""
    if x._data.ndim != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    n = x._data.shape[0]
    N = n if N is None else N
    if N < 0:
        raise RuntimeError("N must be non-negative.")
    if x._data.dtype.kind in "biu":
        x = x.to(dtype=D.int64)
    ones = Tensor._make(xp_of(x._data).ones((n, builtins.min(N, 1)), x._data.dtype), None, 0)
    if N <= 1:  # no column depends on x: no gradient, as in PyTorch
        return ones
    # cumprod, not pow: its gradient at x = 0 is exact (pow's is 0 * inf there)
    powers = cumprod(cat([ones, reshape(x, -1, 1).expand(n, N - 1)], 1), 1)
    return powers if increasing else flip(powers, (1,))
