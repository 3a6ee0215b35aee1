"""The sparse COO tensor: construction, coalescing and conversion to and from dense tensors.

A `SparseCOOTensor` holds an int64 index array of shape (sparse_dim, nnz) and its values as an
ordinary dense tensor of shape (nnz, *dense_dims). Autograd sees only the values tensor: the
ops of framework.ops.sparse map values to values or to dense results, so gradients reach the
values (and through them whatever they were computed from), and `.grad` of a sparse leaf is a
sparse tensor on its coalesced pattern, as PyTorch's. A sparse tensor has no dense array: any
dense op given one raises an error that names the op and lists what sparse tensors support.
"""
from __future__ import annotations

import builtins
import math
import sys

import numpy as np

from .. import _dtype as D
from .._backend import resolve_device, to_device_array, xp_of
from .._tensor import Size, Tensor, parse_to_args
from ..ops.sparse import GatherRows, Pattern, ScatterRows, SparseFromValues
from ._layout import sparse_coo

__all__ = ["SparseCOOTensor", "sparse_coo_tensor", "dense_to_sparse"]

SUPPORTED = ("coalesce, is_coalesced, indices, values, _indices, _values, _nnz, sparse_dim, "
             "dense_dim, to_dense, shape/size/dtype/device/layout, to/cpu/cuda/float/double, "
             "detach, clone, requires_grad_, t/transpose of sparse dims, * and / by a scalar, "
             "negation, sparse + sparse, dense + sparse, sparse @ dense and dense @ sparse "
             "(mm, matmul, framework.mm/matmul/spmm), sum, and framework.sparse.mm/sum/softmax/"
             "log_softmax")


def _calling_op() -> str:
    """The framework op being run on a sparse tensor: the innermost caller frame that is a
    registered op, else the outermost framework function the user called."""
    from ..ops.registry import OPS
    f = sys._getframe(3)
    outer = None
    while f is not None:
        module = f.f_globals.get("__name__", "")
        if module != "framework" and not module.startswith("framework."):
            break
        name = f.f_code.co_name
        if name in OPS:
            return name
        made_as = f.f_locals.get("name") if name in ("fn", "op", "method") else None
        if isinstance(made_as, str) and made_as in OPS:  # an op made by a factory
            return made_as
        outer = name
        f = f.f_back
    return outer or "a dense op"


def _dense_only(what: str = "") -> RuntimeError:
    return RuntimeError(f"{what or _calling_op()}: got a sparse COO tensor, which has no dense "
                        f"array; sparse COO tensors support: {SUPPORTED}. Call .to_dense() "
                        "first for other ops")


def _no_dense_data(self):
    raise _dense_only()


def _no_dense_data_set(self, value):
    raise _dense_only()


class SparseCOOTensor(Tensor):
    """A sparse tensor in coordinate format (`layout == framework.sparse_coo`). Build it with
    `framework.sparse_coo_tensor` or `Tensor.to_sparse()`."""

    __slots__ = ("_index", "_vt", "_size", "_is_coal", "_lin", "_pat")
    is_sparse = True
    # No dense array: the ops that read one fail with a message naming themselves.
    _data = property(_no_dense_data, _no_dense_data_set)
    # The autograd identity is that of the values tensor.
    _requires_grad = property(lambda self: self._vt._requires_grad, _no_dense_data_set)
    _grad_fn = property(lambda self: self._vt._grad_fn, _no_dense_data_set)
    _out_idx = property(lambda self: self._vt._out_idx, _no_dense_data_set)

    def __init__(self, *args, **kwargs):
        raise TypeError("build sparse tensors with framework.sparse_coo_tensor(indices, values, "
                        "size) or Tensor.to_sparse()")

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self):
        return self._size

    def size(self, dim=None):
        if dim is None:
            return self._size
        return self._size[dim]

    @property
    def dtype(self):
        return self._vt.dtype

    @property
    def device(self):
        return self._vt.device

    @property
    def is_cuda(self) -> bool:
        return self._vt.is_cuda

    @property
    def layout(self):
        return sparse_coo

    @property
    def ndim(self) -> int:
        return len(self._size)

    def dim(self) -> int:
        return len(self._size)

    ndimension = dim

    def numel(self) -> int:
        return math.prod(self._size)

    nelement = numel

    def element_size(self) -> int:
        return self._vt.element_size()

    @property
    def itemsize(self) -> int:
        return self._vt.itemsize

    def get_device(self) -> int:
        return self._vt.get_device()

    def is_floating_point(self) -> bool:
        return self._vt.is_floating_point()

    def is_complex(self) -> bool:
        return self._vt.is_complex()

    def __len__(self):
        if not self._size:
            raise TypeError("len() of a 0-d tensor")
        return self._size[0]

    def sparse_dim(self) -> int:
        return self._index.shape[0]

    def dense_dim(self) -> int:
        return len(self._size) - self._index.shape[0]

    def _nnz(self) -> int:
        return self._index.shape[1]

    def is_coalesced(self) -> bool:
        return self._is_coal

    # ------------------------------------------------------------------ indices and values
    def _indices(self) -> Tensor:
        """The index array (sparse_dim, nnz) as stored, duplicates and order included."""
        idx = self._index
        if xp_of(idx) is np:  # the tensor's caches assume its indices never change
            idx = idx.view()
            idx.flags.writeable = False
        return Tensor._make(idx, None, 0)

    def _values(self) -> Tensor:
        """The values (nnz, *dense_dims) as stored (the tensor the gradient flows through)."""
        return self._vt

    def indices(self) -> Tensor:
        if not self._is_coal:
            raise RuntimeError("Cannot get indices on an uncoalesced tensor, please call "
                               ".coalesce() first")
        return self._indices()

    def values(self) -> Tensor:
        if not self._is_coal:
            raise RuntimeError("Cannot get values on an uncoalesced tensor, please call "
                               ".coalesce() first")
        return self._vt

    def _linear(self):
        """Each entry's row-major position among the sparse dims (int64, cached)."""
        if self._lin is None:
            self._lin = _linear_index(self._index, self._size[:self.sparse_dim()])
        return self._lin

    def _pattern(self) -> Pattern:
        """The index structure of a 2-D sparse matrix, for the matrix products (cached)."""
        if self._pat is None:
            self._pat = Pattern(self._index[0], self._index[1], self._size,
                                rows_sorted=self._is_coal)
        return self._pat

    def coalesce(self) -> "SparseCOOTensor":
        """This tensor with duplicate indices summed and indices sorted (itself if it is)."""
        if self._is_coal:
            return self
        xp = xp_of(self._index)
        sparse_shape = self._size[:self.sparse_dim()]
        lin = self._linear()
        uniq, inverse = xp.unique(lin, return_inverse=True)
        inverse = inverse.reshape(-1)
        if uniq.shape[0] == lin.shape[0]:  # no duplicates: a reordering
            order = xp.empty_like(inverse)
            order[inverse] = xp.arange(inverse.shape[0])
            values = GatherRows.apply(self._vt, index=order)
        else:
            values = ScatterRows.apply(self._vt, index=inverse, n=int(uniq.shape[0]),
                                       unique=False)
        return _wrap(_unravel(xp, uniq, sparse_shape), values, self._size, True)

    # ------------------------------------------------------------------ autograd
    @property
    def grad(self):
        """The gradient as a sparse tensor on this tensor's coalesced pattern (None if none)."""
        g = self._vt.grad
        if g is None:
            return None
        if self._is_coal:
            return _wrap(self._index, g, self._size, True, like=self)
        # Every duplicate of a position was given the gradient at that position: keep one.
        xp = xp_of(self._index)
        uniq, first = xp.unique(self._linear(), return_index=True)
        return _wrap(_unravel(xp, uniq, self._size[:self.sparse_dim()]),
                     Tensor._make(g._data[first], None, 0), self._size, True)

    @grad.setter
    def grad(self, value):
        if value is None:
            self._vt.grad = None
            return
        if not isinstance(value, Tensor) or tuple(value.shape) != tuple(self._size):
            raise RuntimeError(f"assigned grad has shape {list(getattr(value, 'shape', []))} "
                               f"but the sparse tensor has shape {list(self._size)}")
        dense = value.to_dense() if value.is_sparse else value
        self._vt.grad = _values_at(dense.detach(), self)

    @property
    def data(self):
        return self.detach()

    def requires_grad_(self, requires_grad: bool = True):
        self._vt.requires_grad_(requires_grad)
        return self

    def detach(self) -> "SparseCOOTensor":
        return _wrap(self._index, self._vt.detach(), self._size, self._is_coal, like=self)

    def retain_grad(self):
        self._vt.retain_grad()

    @property
    def retains_grad(self) -> bool:
        return self._vt.retains_grad

    def register_hook(self, hook):
        raise RuntimeError("register_hook on a sparse COO tensor is not supported: register it "
                           "on its values() (the gradient there is the values' gradient)")

    def register_post_accumulate_grad_hook(self, hook):
        raise RuntimeError("register_post_accumulate_grad_hook on a sparse COO tensor is not "
                           "supported: register it on its values()")

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        if gradient is None:
            raise RuntimeError("grad can be implicitly created only for scalar outputs: give a "
                               "gradient to backward() from a sparse tensor")
        if tuple(gradient.shape) != tuple(self._size):
            raise RuntimeError(f"Mismatch in shape: gradient has a shape of "
                               f"{list(gradient.shape)} and the sparse tensor has a shape of "
                               f"{list(self._size)}")
        dense = gradient.to_dense() if gradient.is_sparse else gradient
        self._vt.backward(_values_at(dense, self), retain_graph=retain_graph,
                          create_graph=create_graph, inputs=inputs)

    # ------------------------------------------------------------------ conversions
    def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
        """The dense tensor (duplicates add up); differentiable with respect to the values."""
        if dtype is not None:
            raise RuntimeError("dtype argument is not supported by sparse_to_dense")
        sd = self.sparse_dim()
        n = math.prod(self._size[:sd])
        flat = ScatterRows.apply(self._vt, index=self._linear(), n=n, unique=self._is_coal)
        return flat.reshape(tuple(self._size))

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        if layout not in (None, sparse_coo) or blocksize is not None or dense_dim is not None:
            raise NotImplementedError(f"to_sparse: only the sparse COO layout is supported (got "
                                      f"layout={layout}, blocksize={blocksize}, "
                                      f"dense_dim={dense_dim})")
        if sparse_dim is not None and sparse_dim != self.sparse_dim():
            raise RuntimeError(f"to_sparse: cannot change the sparse_dim of a sparse tensor "
                               f"from {self.sparse_dim()} to {sparse_dim}")
        return self

    to_sparse_coo = to_sparse

    def to(self, *args, **kwargs):
        """to(device=None, dtype=None, copy=False), to(other), to(dtype): moves the indices
        and the values; differentiable with respect to the values."""
        copy = kwargs.pop("copy", False)
        dev, dt = parse_to_args(args, kwargs)
        vt, idx = self._vt, self._index
        if dev is not None and dev != vt.device:
            vt, idx = vt.to(device=dev), to_device_array(idx, dev)
        if dt is not None and dt is not vt.dtype:
            vt = vt.to(dtype=dt)
        if vt is self._vt:
            return self.clone() if copy else self
        return _wrap(idx, vt, self._size, self._is_coal,
                     like=self if idx is self._index else None)

    def clone(self, *, memory_format=None) -> "SparseCOOTensor":
        return _wrap(self._index.copy(), self._vt.clone(), self._size, self._is_coal)

    def __repr__(self):
        return _format_sparse(self)

    __str__ = __repr__

    def __format__(self, spec):
        return repr(self)

    def __reduce_ex__(self, proto):
        # Pickling (DataLoader workers, multiprocessing) carries indices and values, not the
        # graph; a leaf's requires_grad is kept, as for dense tensors.
        idx, vals = self._index, self._vt._data
        if xp_of(idx) is not np:
            idx, vals = idx.get(), vals.get()
        return (_rebuild, (idx, vals, tuple(self._size), str(self.device),
                           self._vt._requires_grad and self._vt._grad_fn is None, self._is_coal))

    def __deepcopy__(self, memo):
        if self._vt._grad_fn is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support "
                               "the deepcopy protocol at the moment")
        vt = Tensor._make(self._vt._data.copy(), None, 0)
        vt._requires_grad = self._vt._requires_grad
        out = _wrap(self._index.copy(), vt, self._size, self._is_coal)
        memo[id(self)] = out
        return out

    # ------------------------------------------------------------------ math (see _functional)
    def sum(self, dim=None, keepdim=False, dtype=None):
        if keepdim:
            raise NotImplementedError("sum(keepdim=True) of a sparse COO tensor is not supported")
        from ._functional import sum as sparse_sum
        return sparse_sum(self, dim, dtype=dtype)

    def mm(self, mat2):
        from ._functional import mm
        return mm(self, mat2)

    def matmul(self, other):
        from ._dispatch import matmul
        return matmul(self, other)

    def __matmul__(self, other):
        from ._dispatch import matmul
        return matmul(self, other)

    def __rmatmul__(self, other):
        from ._dispatch import matmul
        return matmul(other, self)

    def t(self):
        if self.sparse_dim() > 2 or self.dense_dim():
            raise RuntimeError(f"t() expects a tensor with <= 2 sparse and 0 dense dimensions, "
                               f"but got {self.sparse_dim()} sparse and {self.dense_dim()} "
                               "dense dimensions")
        return self.transpose(0, 1) if self.ndim == 2 else self

    def transpose(self, dim0: int, dim1: int):
        from ._functional import transpose
        return transpose(self, dim0, dim1)

    def __mul__(self, other):
        from ._functional import mul
        return mul(self, other)

    __rmul__ = __mul__

    def mul(self, other):
        return self.__mul__(other)

    def __truediv__(self, other):
        from ._functional import div
        return div(self, other)

    div = __truediv__

    def __neg__(self):
        from ._functional import neg
        return neg(self)

    neg = __neg__

    def __add__(self, other):
        from ._functional import add
        return add(self, other)

    def __radd__(self, other):
        from ._functional import add
        return add(other, self)

    def add(self, other):
        return self.__add__(other)


def _refuse_dense_methods():
    """Give every dense op method, in-place form and operator that SparseCOOTensor does not
    define a body that raises naming it (the `_data` property catches the rest)."""
    from ..ops import _DUNDERS
    from ..ops.registry import OPS

    def refuse(name):
        def method(self, *args, **kwargs):
            raise _dense_only(name)
        method.__name__ = name
        return method

    names = {e["method"] for e in OPS.values() if e["method"]} | set(_DUNDERS)
    names |= {k for k, v in vars(Tensor).items() if k.endswith("_") and not k.startswith("_")
              and callable(v)}
    for name in names:
        if name not in vars(SparseCOOTensor) and callable(getattr(Tensor, name, None)):
            setattr(SparseCOOTensor, name, refuse(name))
    for name in ("T", "mT", "H", "mH"):
        setattr(SparseCOOTensor, name, property(refuse(name)))


_refuse_dense_methods()
_new = object.__new__


def _wrap(index, values: Tensor, size, coalesced: bool, like=None) -> SparseCOOTensor:
    """A sparse tensor of these parts; `like`: a tensor with the same indices and size, whose
    cached index structures are shared."""
    t = _new(SparseCOOTensor)
    t._index, t._vt, t._size, t._is_coal = index, values, Size(size), coalesced
    t._lin, t._pat = (like._lin, like._pat) if like is not None else (None, None)
    return t


def _rebuild(index, values, size, device, requires_grad, coalesced):
    dev = resolve_device(device)
    vt = Tensor._make(to_device_array(values, dev), None, 0)
    vt._requires_grad = requires_grad
    return _wrap(to_device_array(index, dev), vt, size, coalesced)


def _linear_index(index, sparse_shape):
    """Row-major flat positions of the columns of `index` in `sparse_shape` (int64)."""
    xp = xp_of(index)
    if math.prod(sparse_shape) >= 2 ** 63:
        raise RuntimeError(f"sparse tensor of sparse shape {tuple(sparse_shape)}: more than 2**63 "
                           "positions, which Lantern's int64 linear indexing cannot address")
    lin = xp.zeros(index.shape[1], np.int64)
    for d, n in enumerate(sparse_shape):
        lin *= n
        lin += index[d]
    return lin


def _unravel(xp, lin, sparse_shape):
    """The inverse of `_linear_index`: a (len(sparse_shape), n) int64 index array."""
    if not sparse_shape:
        return xp.zeros((0, lin.shape[0]), np.int64)
    rows = xp.unravel_index(lin, tuple(sparse_shape))
    return xp.stack([r.astype(np.int64, copy=False) for r in rows])


def _values_at(dense: Tensor, like: SparseCOOTensor) -> Tensor:
    """The entries of `dense` at the positions of `like`'s (stored) indices, as its values."""
    sd = like.sparse_dim()
    flat = dense.reshape((math.prod(like._size[:sd]),) + tuple(like._size[sd:]))
    return GatherRows.apply(flat, index=like._linear())


# ---------------------------------------------------------------------- construction
def _index_array(indices, dev):
    if isinstance(indices, SparseCOOTensor):
        raise TypeError("sparse_coo_tensor: indices must be a dense integer tensor, got a sparse "
                        "tensor")
    if isinstance(indices, Tensor):
        arr = indices._data
        if arr.dtype.kind not in "iu":
            raise RuntimeError(f"sparse_coo_tensor: indices must be an int64 tensor, got "
                               f"{indices.dtype.name}")
    else:
        arr = np.asarray(indices.get() if hasattr(indices, "get") else indices)
        if arr.dtype.kind == "f" and arr.size and not np.all(arr == np.trunc(arr)):
            raise RuntimeError("sparse_coo_tensor: indices must be integers, got non-integral "
                               "values")
        if arr.dtype.kind not in "iuf":
            raise RuntimeError(f"sparse_coo_tensor: indices must be integers, got dtype "
                               f"{arr.dtype}")
    if arr.ndim != 2:
        if arr.size == 0 and arr.ndim == 1:  # [] : no sparse dim, no entry
            arr = arr.reshape(0, 0)
        else:
            raise RuntimeError(f"sparse_coo_tensor: indices must be sparse_dim x nnz (a 2-D "
                               f"tensor), but got shape {list(arr.shape)}")
    return to_device_array(arr, dev).astype(np.int64, copy=False)


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None,
                      requires_grad: bool = False, check_invariants=None,
                      is_coalesced=None) -> SparseCOOTensor:
    """A sparse COO tensor with `values[k]` at `indices[:, k]`, as torch.sparse_coo_tensor.

    `indices` is (sparse_dim, nnz) integers, `values` (nnz, *dense_dims) (a tensor, array or
    nested list; dtype inferred as by `framework.tensor`). Without `size`, each sparse dim is
    its largest index + 1 and the dense dims are the values'. Duplicate indices are allowed and
    add up (see coalesce). Indices are always checked against `size` (PyTorch checks only with
    check_invariants=True). Values that require grad keep their graph; `requires_grad=True`
    makes the tensor a leaf that requires grad."""
    if isinstance(values, SparseCOOTensor):
        raise TypeError("sparse_coo_tensor: values must be a dense tensor, got a sparse tensor")
    if device is not None:
        dev = resolve_device(device)
    elif isinstance(values, Tensor):
        dev = values.device
    elif isinstance(indices, Tensor):
        dev = indices.device
    else:
        dev = resolve_device(None)
    if not isinstance(values, Tensor):
        from ..creation import tensor
        values = tensor(values, dtype=dtype, device=dev)
    if values.device != dev:
        values = values.to(device=dev)
    if dtype is not None and D.to_dtype(dtype) is not values.dtype:
        values = values.to(dtype=dtype)
    index = _index_array(indices, dev)
    sd, nnz = index.shape
    if values.ndim == 0:
        raise RuntimeError("sparse_coo_tensor: values must have a first dim of size nnz, got a "
                           "0-d tensor")
    if values.shape[0] != nnz:
        raise RuntimeError(f"sparse_coo_tensor: indices and values must have the same nnz, but "
                           f"got indices of shape {list(index.shape)} (nnz {nnz}) and values of "
                           f"shape {list(values.shape)} (nnz {values.shape[0]})")
    dense_shape = tuple(values.shape[1:])
    xp = xp_of(index)
    lo = [int(v) for v in xp.min(index, axis=1)] if nnz else [0] * sd
    hi = [int(v) for v in xp.max(index, axis=1)] if nnz else [-1] * sd
    for d in range(sd):
        if lo[d] < 0:
            raise RuntimeError(f"sparse_coo_tensor: found negative index {lo[d]} for dim {d}")
    if size is None:
        size = tuple(h + 1 for h in hi) + dense_shape
    else:
        size = tuple(builtins.int(s) for s in size)
        if any(s < 0 for s in size):
            raise RuntimeError(f"sparse_coo_tensor: negative size in {size}")
        if len(size) != sd + len(dense_shape):
            raise RuntimeError(f"sparse_coo_tensor: size {size} has {len(size)} dims, but "
                               f"indices give {sd} sparse dims and values {len(dense_shape)} "
                               "dense dims (len(size) must be sparse_dim + dense_dim)")
        if size[sd:] != dense_shape:
            raise RuntimeError(f"sparse_coo_tensor: values of shape {list(values.shape)} do not "
                               f"match the dense dims {list(size[sd:])} of size {size}")
        for d in range(sd):
            if hi[d] >= size[d]:
                raise RuntimeError(f"sparse_coo_tensor: index {hi[d]} is out of range for dim "
                                   f"{d} of size {size[d]} (size {size})")
    if is_coalesced:
        lin = _linear_index(index, size[:sd])
        if nnz > 1 and not bool((lin[1:] > lin[:-1]).all()):
            raise RuntimeError("sparse_coo_tensor: is_coalesced=True but the indices are not "
                               "sorted and unique")
    if values._requires_grad:
        vt = SparseFromValues.apply(values)
    else:
        vt = values.detach()
        if requires_grad:
            vt.requires_grad_(True)
    # As in PyTorch, a new tensor counts as coalesced when told so or when it has at most
    # one entry.
    return _wrap(index, vt, size, bool(is_coalesced) or nnz <= 1)


def dense_to_sparse(t: Tensor, sparse_dim=None, *, layout=None, blocksize=None,
                    dense_dim=None) -> SparseCOOTensor:
    """`t.to_sparse(sparse_dim)`: the nonzero entries of a dense tensor (rows with a nonzero
    entry when some trailing dims stay dense), coalesced; differentiable."""
    if layout not in (None, sparse_coo) or blocksize is not None or dense_dim is not None:
        raise NotImplementedError(f"to_sparse: only the sparse COO layout is supported (got "
                                  f"layout={layout}, blocksize={blocksize}, "
                                  f"dense_dim={dense_dim})")
    nd = t.ndim
    sd = nd if sparse_dim is None else builtins.int(sparse_dim)
    if not (0 < sd <= nd or sd == nd == 0):  # PyTorch refuses sparse_dim=0 too
        raise RuntimeError(f"to_sparse: sparse_dim must be in [1, {nd}] for a {nd}-D tensor, "
                           f"got {sd}")
    shape = tuple(t.shape)
    arr = t._data
    xp = xp_of(arr)
    n = math.prod(shape[:sd])
    flat = xp.asarray(arr).reshape(n, -1) if n else xp.zeros((0, 1), arr.dtype)
    rows = xp.nonzero((flat != 0).any(axis=1))[0].astype(np.int64) if flat.shape[1] else \
        xp.zeros(0, np.int64)
    values = GatherRows.apply(t.reshape((n,) + shape[sd:]), index=rows)
    return _wrap(_unravel(xp, rows, shape[:sd]), values, shape, True)


# ---------------------------------------------------------------------- repr
def _body(t: Tensor, indent: int) -> str:
    """A tensor's bracketed contents as PyTorch prints them at `indent` (no suffixes)."""
    from .._format import PRINT_OPTS, _array_str, _formatter, _host_array, _summarized
    arr = _host_array(t)
    if arr.size == 0:
        return f"[], size={tuple(arr.shape)}"
    summarize = arr.size > PRINT_OPTS["threshold"]
    shown = _summarized(arr, PRINT_OPTS["edgeitems"]) if summarize else arr
    return _array_str(arr, indent, summarize, _formatter(shown))


def _format_sparse(t: SparseCOOTensor) -> str:
    """PyTorch's repr of a sparse tensor: indices, values, then size, nnz, dtype, layout."""
    from .._format import PRINT_OPTS
    indent = len("tensor(")
    text = ("tensor(indices=tensor(" + _body(Tensor._make(t._index, None, 0), indent + 15)
            + "),\n" + " " * indent + "values=tensor(" + _body(t._vt.detach(), indent + 14)
            + ")")
    suffixes = []
    if t.device.type != "cpu":
        suffixes.append(f"device='{t.device}'")
    suffixes += [f"size={tuple(t._size)}", f"nnz={t._nnz()}"]
    default = D.get_default_dtype()
    default_complex = D.complex128 if default is D.float64 else D.complex64
    if t.dtype not in (default, default_complex, D.int64, D.bool):
        suffixes.append(f"dtype=framework.{t.dtype.name}")
    suffixes.append(f"layout={sparse_coo}")
    if t._grad_fn is not None:
        suffixes.append(f"grad_fn=<{t._grad_fn.name()}>")
    elif t._requires_grad:
        suffixes.append("requires_grad=True")
    out, last, newline = [text], 0, True
    for s in suffixes:  # the first suffix starts a line; the others wrap at the line width
        if newline or last + len(s) + 2 > PRINT_OPTS["linewidth"]:
            out.append(",\n" + " " * indent + s)
            last, newline = indent + len(s), False
        else:
            out.append(", " + s)
            last += len(s) + 2
    return "".join(out) + ")"
