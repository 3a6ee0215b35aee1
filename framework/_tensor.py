"""The Tensor: an array of the NumPy or CuPy module plus its place in the autograd graph.

Methods that are ops (add, sum, reshape, ...) are defined once in `framework.ops` and bound
here by `framework.ops.install_methods`; this file holds only what is intrinsic to a tensor:
its metadata, conversions, device moves, autograd bookkeeping and in-place machinery.
"""
from __future__ import annotations

import weakref

import numpy as np

from . import _dtype as D
from ._backend import device_of, is_cuda_array, resolve_device, to_device_array, xp_of
from .autograd.grad_mode import _State

_ndarray = np.ndarray
_generic = np.generic
_READ_ONLY = ("cannot write into a read-only tensor (a broadcast view, or an array that NumPy "
              "marked read-only, such as np.load(..., mmap_mode='r')); clone() it first")
_ZERO_VC = (0,)


class Tensor:
    # Only what every tensor needs is a slot; rarely set attributes fall back to the class
    # defaults below until assigned (into the instance __dict__), which keeps creation cheap.
    __slots__ = ("_data", "_requires_grad", "_grad_fn", "_out_idx", "__weakref__", "__dict__")
    grad = None
    _is_node = False  # tells a leaf from a graph node in an autograd edge
    # The version counter, shared by views, is made on first need (`_shared_vc`/`_bump`);
    # until then every tensor reads the same never-written zero.
    _vc = _ZERO_VC
    # A view's root base, how to replay the view from it (see ops.shape._as_view; None: it
    # cannot be) and, on a base with a history, weak references to its recorded views
    # (autograd.copyslices rewrites their histories after an in-place op).
    _base = None
    _view_fn = None
    _views = None
    _hooks = None
    _post_acc_hooks = None  # set by register_post_accumulate_grad_hook (leaves only)
    _retains_grad = False

    # Lets NumPy defer to our reflected operators (ndarray * Tensor -> Tensor.__rmul__).
    __array_priority__ = 1000

    def __init__(self, *args, size=None, dtype=None, device=None, requires_grad=False):
        """PyTorch's legacy constructor: `Tensor(2, 3)` (uninitialised, of that size; also
        `size=`), `Tensor(data)` (a copy in the default float dtype), `Tensor(tensor)` (shares
        its memory), `Tensor()` (empty). `dtype` and `requires_grad` are Lantern's additions.
        Use `framework.tensor(data)` to infer the dtype from the data."""
        from ._legacy import init_tensor
        if size is not None:
            if args:
                raise TypeError("Tensor() got multiple values for argument 'size'")
            args = (Size(size),)
        init_tensor(self, args, dtype, device, requires_grad)

    @staticmethod
    def _init(self, arr, grad_fn, idx):
        self._data = arr
        self._requires_grad = grad_fn is not None
        self._grad_fn = grad_fn
        self._out_idx = idx

    @staticmethod
    def _make(arr, grad_fn, idx):
        """Fast internal constructor. A 0-d result of a NumPy op may be a NumPy scalar: it is
        kept as is (scalar arithmetic is ten times cheaper than 0-d array arithmetic) and made
        a 0-d array by `_writable` the first time something writes into it."""
        t = _new(Tensor)
        t._data = arr
        t._requires_grad = grad_fn is not None
        t._grad_fn = grad_fn
        t._out_idx = idx
        return t

    def _writable(self):
        """The data as an array that can be written in place (materialises NumPy scalars)."""
        d = self._data
        if d.__class__ is not _ndarray and isinstance(d, _generic):
            d = self._data = np.array(d)
        return d

    def _write_target(self):
        """`_writable()` for a write in place, refusing read-only NumPy memory clearly."""
        d = self._writable()
        if d.__class__ is _ndarray and not d.flags.writeable:
            raise RuntimeError(_READ_ONLY)
        return d

    def _shared_vc(self):
        """The version counter, created on first need so that views can share it."""
        vc = self._vc
        if vc is _ZERO_VC:
            vc = self._vc = [0]
        return vc

    def _bump(self):
        vc = self._vc
        if vc is _ZERO_VC:
            vc = self._vc = [0]
        vc[0] += 1

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[dim]

    @property
    def dtype(self):
        return D._FROM_NP[self._data.dtype]

    @property
    def device(self):
        return device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        return is_cuda_array(self._data)

    @property
    def is_xpu(self) -> bool:
        return False  # Lantern's devices are the CPU and CUDA GPUs

    @property
    def is_mps(self) -> bool:
        return False

    # Layout: a plain Tensor is dense ("strided"); sparse COO tensors are framework.sparse's
    # SparseCOOTensor subclass, which overrides these.
    is_sparse = False

    @property
    def layout(self):
        from .sparse import strided
        return strided

    def to_dense(self, dtype=None, *, masked_grad=None):
        """This tensor (dense already), or a copy in `dtype`."""
        return self if dtype is None else self.to(dtype=dtype)

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        """The nonzero entries as a coalesced sparse COO tensor (with `sparse_dim`, the first
        `sparse_dim` dims are sparse and the rest stay dense); differentiable."""
        from .sparse import dense_to_sparse
        return dense_to_sparse(self, sparse_dim, layout=layout, blocksize=blocksize,
                               dense_dim=dense_dim)

    def to_sparse_coo(self):
        return self.to_sparse()

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    def numel(self) -> int:
        return int(self._data.size)

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def itemsize(self) -> int:
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        return int(self._data.nbytes)

    def stride(self, dim=None):
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[dim]

    def is_contiguous(self, memory_format=None) -> bool:
        return bool(self._data.flags.c_contiguous)

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f" or self.dtype is D.bfloat16

    def is_complex(self) -> bool:
        return self._data.dtype.kind == "c"

    @property
    def real(self):
        """The real part: a view of a complex tensor, this tensor itself if real."""
        from .ops.complex import real
        return real(self)

    @property
    def imag(self):
        """The imaginary part of a complex tensor (a view)."""
        from .ops.complex import imag
        return imag(self)

    def data_ptr(self) -> int:
        if is_cuda_array(self._data):
            return self._data.data.ptr
        return self._writable().ctypes.data

    def get_device(self) -> int:
        return -1 if not is_cuda_array(self._data) else self._data.device.id

    # ------------------------------------------------------------------ autograd state
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True):
        if self._grad_fn is not None:
            if not requires_grad:
                raise RuntimeError("you can only change requires_grad flags of leaf variables. If "
                                   "you want to use a computed variable in a subgraph that doesn't "
                                   "require differentiation use var_no_grad = var.detach().")
            return self
        if requires_grad and self._data.dtype.kind not in "fcV" and self.dtype is not D.bfloat16:
            raise RuntimeError("only Tensors of floating point and complex dtype can require "
                               f"gradients (got {self.dtype.name})")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    @property
    def grad_fn(self):
        return self._grad_fn

    @property
    def data(self):
        t = Tensor._make(self._data, None, 0)
        t._vc = self._shared_vc()
        return t

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"Tensor.data must be set to a Tensor, got {type(value).__name__}")
        self._data = value._data

    @property
    def _version(self) -> int:
        return self._vc[0]

    def detach(self):
        """A tensor sharing this one's memory and version counter, cut from the graph."""
        t = Tensor._make(self._data, None, 0)
        t._vc = self._shared_vc()
        return t

    def detach_(self):
        self._grad_fn = None
        self._requires_grad = False
        return self

    def retain_grad(self):
        if self._grad_fn is None:
            return
        if self._retains_grad:
            return
        self._retains_grad = True
        ref = weakref.ref(self)

        def _keep(g):
            t = ref()
            if t is not None:
                t.grad = g.detach() if not _State.grad_enabled else g
                if t.grad is g and not _State.grad_enabled:
                    t.grad = Tensor._make(g._data.copy(), None, 0)
        _keep._retains_grad = True
        self._grad_fn.register_hook(self._out_idx, _keep)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook):
        """Call `hook(grad)` when this tensor's gradient is computed; a returned tensor
        replaces the gradient. Returns a handle with `.remove()`."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._grad_fn is not None:
            self._grad_fn.register_hook(self._out_idx, hook)
            lst = self._grad_fn._hooks[self._out_idx]
        else:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
            lst = self._hooks
        return _HookHandle(lst, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call `hook(tensor)` after a backward has accumulated into this leaf's `.grad`
        (as soon as its gradient is complete, before the rest of backward finishes). Returns
        a handle with `.remove()`."""
        if self._grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._post_acc_hooks is None:
            self._post_acc_hooks = []
        self._post_acc_hooks.append(hook)
        return _HookHandle(self._post_acc_hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from .autograd import backward
        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph,
                 inputs=inputs)

    # ------------------------------------------------------------------ conversions
    def numpy(self, *, force=False):
        if self._requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        if is_cuda_array(self._data):
            if not force:
                raise TypeError(f"can't convert {self.device} device type tensor to numpy. Use "
                                "Tensor.cpu() to copy the tensor to host memory first.")
            return self._data.get()
        return self._writable()

    def __array__(self, dtype=None, copy=None):
        arr = self._writable() if not is_cuda_array(self._data) else self._data.get()
        return arr.astype(dtype) if dtype is not None else arr

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to "
                               "Scalar")
        return self._data.item()

    def tolist(self):
        arr = self._data if not is_cuda_array(self._data) else self._data.get()
        return arr.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self._data.size} values is "
                               "ambiguous")
        return bool(self._data.item() if is_cuda_array(self._data) else self._data)

    def __complex__(self):
        return complex(self.item())

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __hash__(self):
        return id(self)

    def __repr__(self):
        from ._format import format_tensor
        return format_tensor(self)

    __str__ = __repr__

    def __format__(self, spec):
        if self._data.ndim == 0 and spec:
            return format(self.item(), spec)
        return repr(self)

    def __reduce_ex__(self, proto):
        # Pickling (used by DataLoader workers) carries data and requires_grad, never the graph.
        arr = self._data if not is_cuda_array(self._data) else self._data.get()
        return (_rebuild, (arr, str(self.device), self._requires_grad and self._grad_fn is None))

    def __deepcopy__(self, memo):
        if self._grad_fn is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support "
                               "the deepcopy protocol at the moment")
        t = Tensor._make(self._data.copy(), None, 0)
        t._requires_grad = self._requires_grad
        if self.grad is not None:
            t.grad = Tensor._make(self.grad._data.copy(), None, 0)
        memo[id(self)] = t
        if type(self) is not Tensor:
            t.__class__ = type(self)
            # hooks registered by a wrapper (DistributedDataParallel) belong to the original
            t.__dict__.update({k: v for k, v in self.__dict__.items()
                               if k != "_post_acc_hooks"})
        return t

    # ------------------------------------------------------------------ device and dtype moves
    def to(self, *args, **kwargs):
        """to(device=None, dtype=None, non_blocking=False, copy=False), to(other), to(dtype)."""
        copy = kwargs.pop("copy", False)
        dev, dt = parse_to_args(args, kwargs)
        out = self
        if dev is not None:
            if dev != self.device:
                from .ops.elementwise import ToDevice
                out = ToDevice.apply(out, device=dev)
        if dt is not None:
            if dt.np != out._data.dtype:
                from .ops.elementwise import Cast
                out = Cast.apply(out, dtype=dt.np)
        if copy and out is self:
            out = self.clone()
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None, non_blocking=False):
        return self.to("cuda" if device is None else device)

    def pin_memory(self, device=None):
        """A copy of this CPU tensor in page-locked host memory (CuPy's pinned pool), so
        host-to-GPU copies of it can overlap computation. Without CuPy and a GPU there is
        nothing to pin for: the tensor itself is returned."""
        from .utils.data._pin_memory import pin_memory, pinning_available
        if is_cuda_array(self._data):
            raise RuntimeError("cannot pin a CUDA tensor: only dense CPU tensors can be pinned")
        if not pinning_available():
            return self
        return pin_memory(self)

    def share_memory_(self):
        """Move this CPU tensor's data into shared memory, in place, so that processes it is
        sent to (framework.multiprocessing) or forked children use the same memory. A no-op
        for CUDA tensors and tensors already shared. On a view, the tensor it views is shared
        too (as PyTorch shares the whole storage); other aliases made before (other views,
        detach(), .data) keep the old memory: share first."""
        if is_cuda_array(self._data) or self.is_shared():
            return self
        from .multiprocessing import _shared_memory, reductions
        reductions.init_reductions()
        _shared_memory.share_tensor_(self)
        return self

    def is_shared(self) -> bool:
        """Whether this tensor's data is in shared memory (share_memory_())."""
        from .multiprocessing._shared_memory import handle_of
        return handle_of(self._data) is not None

    def is_pinned(self, device=None) -> bool:
        from .utils.data._pin_memory import is_pinned_array
        return not is_cuda_array(self._data) and is_pinned_array(self._data)

    def type(self, dtype=None, non_blocking=False, **kwargs):
        """With no argument, the dtype's name; else this tensor converted to `dtype`, which may
        be a legacy class or its name (`framework.LongTensor`, 'torch.cuda.FloatTensor'),
        whose device type applies too, as in PyTorch."""
        from ._legacy import _LegacyTensorType, legacy_type_from_name
        if dtype is None:
            return f"framework.{self.dtype.name}"
        if isinstance(dtype, str):
            legacy = legacy_type_from_name(dtype)
            if legacy is None:
                raise ValueError(f"invalid type: {dtype!r}")
            dtype = legacy
        if isinstance(dtype, _LegacyTensorType):
            dev_type = "cuda" if dtype.is_cuda else "cpu"
            return self.to(device=None if self.device.type == dev_type else dev_type,
                           dtype=dtype.dtype)
        return self.to(dtype=dtype)

    def new(self, *args, **kwargs):
        """Legacy constructor with this tensor's dtype and device: `x.new(2, 3)` (uninitialised),
        `x.new(data)`, `x.new()` (empty)."""
        from ._legacy import tensor_new
        return tensor_new(self, *args, **kwargs)

    def type_as(self, other):
        return self.to(dtype=other.dtype)

    def float(self):
        return self.to(dtype=D.float32)

    def double(self):
        return self.to(dtype=D.float64)

    def half(self):
        return self.to(dtype=D.float16)

    def bfloat16(self):
        return self.to(dtype=D.bfloat16)

    def int(self):
        return self.to(dtype=D.int32)

    def long(self):
        return self.to(dtype=D.int64)

    def short(self):
        return self.to(dtype=D.int16)

    def char(self):
        return self.to(dtype=D.int8)

    def byte(self):
        return self.to(dtype=D.uint8)

    def bool(self):
        return self.to(dtype=D.bool)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        from .creation import tensor
        return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                      requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        from .creation import zeros
        return zeros(*size, dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        from .creation import ones
        return ones(*size, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        from .creation import full
        return full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return self.new_zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    # ------------------------------------------------------------------ in-place machinery
    def _check_inplace(self):
        if _State.grad_enabled:
            if self._grad_fn is None:
                if self._requires_grad:
                    raise RuntimeError("a leaf Variable that requires grad is being used in an "
                                       "in-place operation.")
            else:
                base = self._base
                if base is not None and base._grad_fn is None and base._requires_grad:
                    raise RuntimeError("a view of a leaf Variable that requires grad is being "
                                       "used in an in-place operation.")

    def _inplace_from(self, result):
        """Make `self` hold `result`'s values (written into its memory) and its history; on a
        view, the base's history is rewritten to match."""
        self._check_inplace()
        if result._data.dtype != self._data.dtype:
            from .ops.elementwise import Cast
            if not np.can_cast(result._data.dtype, self._data.dtype, "same_kind") and \
                    not (result._data.dtype.kind == "b"):
                raise RuntimeError(f"result type {D.from_numpy_dtype(result._data.dtype).name} "
                                   f"can't be cast to the desired output type {self.dtype.name}")
            result = Cast.apply(result, dtype=self._data.dtype)
        if result._data.shape != self._data.shape:
            raise RuntimeError(f"output with shape {list(self._data.shape)} doesn't match the "
                               f"broadcast shape {list(result._data.shape)}")
        if result._grad_fn is not None:
            if self._base is not None or self._views is not None:
                # the base's and other views' histories change too (PyTorch's CopySlices)
                from .autograd.copyslices import rebase_history
                rebase_history(self, result)
            else:
                self._copy_into(result._data)
                self._grad_fn, self._out_idx, self._requires_grad = result._grad_fn, 0, True
        else:
            self._copy_into(result._data)
        self._bump()
        return self

    def _copy_into(self, arr):
        d = self._writable()
        if d.ndim == 0 and type(d) is np.ndarray and not d.flags.writeable:  # CuPy has no flag
            self._data = arr.copy()
            return
        xp = xp_of(d)
        if xp is np and arr.ndim and not d.flags.writeable:
            raise RuntimeError(_READ_ONLY)
        xp.copyto(d, arr) if xp is np else d.__setitem__(Ellipsis, arr)


_new = object.__new__


def parse_to_args(args, kwargs):
    """The (device, dtype) asked for by the arguments of Tensor.to / Module.to, resolved."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif isinstance(a, D.dtype):
            dtype = a
        elif isinstance(a, bool) or a is None:
            continue  # non_blocking given positionally
        elif isinstance(a, (str, int)) or hasattr(a, "index"):
            device = a
        else:
            dtype = D.to_dtype(a)
    if dtype is not None:
        dtype = D.to_dtype(dtype)
    if device is not None:
        device = resolve_device(device)
    return device, dtype


def _rebuild(arr, device, requires_grad):
    t = Tensor._make(to_device_array(arr, resolve_device(device)), None, 0)
    t._requires_grad = requires_grad
    return t


class _HookHandle:
    def __init__(self, lst, hook):
        self._lst, self._hook = lst, hook

    def remove(self):
        try:
            self._lst.remove(self._hook)
        except ValueError:
            pass


class Size(tuple):
    """A tensor shape: a tuple that prints as `framework.Size([2, 3])`."""

    def __repr__(self):
        return f"framework.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, item):
        r = tuple.__getitem__(self, item)
        return Size(r) if isinstance(item, slice) else r

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))


def _bind():
    from .autograd import function as _function
    _function._bind_tensor()


_bind()
