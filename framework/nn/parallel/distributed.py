"""`DistributedDataParallel`: one model replica per process, gradients averaged across the
processes of `framework.distributed`'s process group, as torch.nn.parallel.DDP.

At construction the parameters and buffers are broadcast from rank 0, so every replica starts
equal. Each parameter gets a post-accumulate-grad hook; the parameters are grouped, in reverse
registration order (about the order backward produces their gradients), into buckets of at
most `bucket_cap_mb` (the first one 1 MB, so communication starts early). When every gradient
of a bucket is in, the bucket is copied into one flat buffer, divided by the world size and
all-reduced without blocking, while backward goes on with the earlier layers. Buckets are
launched strictly in index order so every rank issues the same collectives in the same order.
When the last bucket is launched the reducer waits for all of them and copies the averages
back into `.grad`. Inside `no_sync()` gradients only accumulate locally; the next synchronised
backward reduces the accumulated sum.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any

from ..._backend import device as _device, xp_of
from ..._tensor import Tensor
from ...autograd.grad_mode import is_grad_enabled, no_grad
from ..modules.module import Module
from .data_parallel import _to

__all__ = ["DistributedDataParallel"]

_MB = 1024 * 1024
_FIRST_BUCKET_BYTES = 1 * _MB   # as PyTorch: a small first bucket starts communication early


def _dist():
    from ... import distributed
    return distributed


class _Bucket:
    __slots__ = ("params", "offsets", "flat", "tensor", "pending", "ready", "work")

    def __init__(self, params: list):
        self.params = params
        self.offsets = []
        n = 0
        for p in params:
            self.offsets.append(n)
            n += p.numel()
        first = params[0]._data
        self.flat = xp_of(first).zeros(n, dtype=first.dtype)
        self.tensor = Tensor._make(self.flat, None, 0)
        self.pending = len(params)
        self.ready = [False] * len(params)
        self.work = None


def _bucketize(params: list, cap_bytes: int) -> list[_Bucket]:
    """Buckets of parameters of one device and dtype each, filled in reverse order."""
    open_: dict[tuple, list] = {}
    sizes: dict[tuple, int] = {}
    closed: list[tuple[int, list]] = []   # (position of the first parameter, parameters)
    first_pos: dict[tuple, int] = {}
    cap_now = min(_FIRST_BUCKET_BYTES, cap_bytes)
    for pos, p in enumerate(reversed(params)):
        key = (str(p.device), str(p.dtype))
        nbytes = p.numel() * p.element_size()
        if key in open_ and sizes[key] + nbytes > cap_now:
            closed.append((first_pos[key], open_.pop(key)))
            cap_now = cap_bytes
        if key not in open_:
            open_[key], sizes[key], first_pos[key] = [], 0, pos
        open_[key].append(p)
        sizes[key] += nbytes
    closed += [(first_pos[k], v) for k, v in open_.items()]
    closed.sort(key=lambda c: c[0])
    return [_Bucket(ps) for _, ps in closed]


def _tensors_in(obj, out: list) -> list:
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _tensors_in(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _tensors_in(o, out)
    return out


def _reachable_leaves(outputs) -> set[int]:
    """ids of the leaf tensors the autograd graph of `outputs` reaches."""
    leaves: set[int] = set()
    seen: set[int] = set()
    stack = []
    for t in _tensors_in(outputs, []):
        if t._grad_fn is not None:
            stack.append(t._grad_fn)
        elif t._requires_grad:
            leaves.add(id(t))
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for e in node.next_edges:
            if e is None:
                continue
            n = e[0] if e.__class__ is tuple else e
            if n._is_node:
                stack.append(n)
            else:
                leaves.add(id(n))
    return leaves


class _Reducer:
    """The bucketed, overlapped gradient all-reduce behind DistributedDataParallel."""

    def __init__(self, params: list, cap_bytes: int, world: int, find_unused: bool):
        self.params = params
        self.world = world
        self.find_unused = find_unused
        self.buckets = _bucketize(params, cap_bytes)
        self.where: dict[int, tuple[int, int]] = {}
        for bi, b in enumerate(self.buckets):
            for si, p in enumerate(b.params):
                self.where[id(p)] = (bi, si)
        self.expect = False          # the last forward asked for a synchronised backward
        self.next_launch = 0
        self.first_hook = True
        self.unused: list = []
        self.used_flags = None
        # for the overlap figure: when the last backward started waiting for communication
        # (time.perf_counter(), comparable between processes of one machine) and how long
        self.last_wait_at = 0.0
        self.last_wait_s = 0.0
        self.handles = [p.register_post_accumulate_grad_hook(self._make_hook(p))
                        for p in params]

    def _make_hook(self, p):
        bi, si = self.where[id(p)]

        def hook(param):
            if self.expect:
                self._mark_ready(bi, si)
        return hook

    def remove_hooks(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    # ------------------------------------------------------------------ per iteration
    def in_progress(self) -> bool:
        """A synchronised backward has started (some gradient is in) and not finished."""
        return self.expect and any(b.pending < len(b.params) for b in self.buckets)

    def prepare(self, outputs) -> None:
        for b in self.buckets:
            b.pending, b.ready, b.work = len(b.params), [False] * len(b.params), None
        self.next_launch, self.first_hook, self.expect = 0, True, True
        if self.find_unused:
            reached = _reachable_leaves(outputs)
            self.unused = [p for p in self.params if id(p) not in reached]

    def _mark_ready(self, bi: int, si: int) -> None:
        if self.first_hook:
            self.first_hook = False
            if self.find_unused:
                self.used_flags = xp_of(self.buckets[0].flat).ones(len(self.params), "int32")
                index = {id(p): i for i, p in enumerate(self.params)}
                for p in self.unused:   # they get no gradient: count them in now
                    self.used_flags[index[id(p)]] = 0
                    ubi, usi = self.where[id(p)]
                    self._fill(ubi, usi)
        self._fill(bi, si)
        while self.next_launch < len(self.buckets) and \
                self.buckets[self.next_launch].pending == 0:
            self._launch(self.buckets[self.next_launch])
            self.next_launch += 1
        if self.next_launch == len(self.buckets):
            self._finish()
        else:
            for b in self.buckets[:self.next_launch]:
                b.work.is_completed()   # MPI progresses nonblocking operations when polled

    def _fill(self, bi: int, si: int) -> None:
        b = self.buckets[bi]
        if b.ready[si]:
            return
        p = b.params[si]
        off, n = b.offsets[si], p.numel()
        if p.grad is None:
            b.flat[off:off + n] = 0
        else:
            b.flat[off:off + n] = p.grad._data.reshape(-1)
        b.ready[si] = True
        b.pending -= 1

    def _launch(self, b: _Bucket) -> None:
        if self.world > 1:
            b.flat *= 1.0 / self.world   # averaged by summing pre-divided gradients
        b.work = _dist().all_reduce(b.tensor, async_op=True)
        b.work._name = "DistributedDataParallel's gradient all_reduce"

    def _finish(self) -> None:
        t0 = self.last_wait_at = time.perf_counter()
        for b in self.buckets:
            b.work.wait()
        globally_used = None
        if self.find_unused:
            flags = Tensor._make(self.used_flags, None, 0)
            _dist().all_reduce(flags, _dist().ReduceOp.MAX)
            globally_used = flags._data.tolist()
        self.last_wait_s = time.perf_counter() - t0
        index = {id(p): i for i, p in enumerate(self.params)} if globally_used else None
        for b in self.buckets:
            for p, off in zip(b.params, b.offsets):
                avg = b.flat[off:off + p.numel()].reshape(p._data.shape)
                if p.grad is None:
                    if globally_used is not None and globally_used[index[id(p)]]:
                        p.grad = Tensor._make(avg.copy(), None, 0)
                    continue
                p.grad._writable()[...] = avg
        self.expect = False


def _broadcast_coalesced(tensors: list, src: int = 0) -> None:
    """Every rank's `tensors` become rank `src`'s, with one broadcast per device (their
    bytes packed into one buffer)."""
    dist = _dist()
    by_device: dict[str, list] = {}
    for t in tensors:
        by_device.setdefault(str(t.device), []).append(t)
    me = dist.get_rank()
    for group in by_device.values():
        xp = xp_of(group[0]._data)
        parts = [xp.ascontiguousarray(t._data).reshape(-1).view(xp.uint8) for t in group]
        flat = Tensor._make(xp.concatenate(parts) if parts else xp.zeros(0, xp.uint8), None, 0)
        dist.broadcast(flat, src)
        if me == src:
            continue
        off = 0
        for t, part in zip(group, parts):
            arr = t._writable()
            arr[...] = flat._data[off:off + part.size].view(arr.dtype).reshape(arr.shape)
            off += part.size


class DistributedDataParallel(Module):
    """Data parallelism across the processes of the default process group: wrap the model,
    train as usual; gradients are averaged over the ranks during backward.

    `bucket_cap_mb` caps a gradient bucket (default 25); `broadcast_buffers` sends rank 0's
    buffers (BatchNorm statistics) to every rank at each forward; `find_unused_parameters`
    lets a forward leave parameters out of the loss (they count as zero gradients)."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, init_sync: bool = True, process_group=None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False):
        super().__init__()
        dist = _dist()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: no distributed training without a "
                               "process group; call framework.distributed.init_process_group() "
                               "first, in processes started by mpiexec -n N ...")
        if process_group is not None:
            raise ValueError("DistributedDataParallel: only the default process group "
                             "(process_group=None) is supported")
        params = [p for p in module.parameters() if p.requires_grad]
        if not params:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't "
                               "have any parameter that requires a gradient.")
        self.module = module
        self.device_ids = list(device_ids) if device_ids is not None else None
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self._input_device = None
        if self.device_ids:
            d = self.device_ids[0]
            self._input_device = _device(f"cuda:{d}" if isinstance(d, int) else d)
        self._world = dist.get_world_size()
        cap = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        if not cap > 0:
            raise ValueError(f"bucket_cap_mb must be positive, got {bucket_cap_mb}")
        if self._world > 1 and init_sync:
            self._verify_same_model(module.parameters())
            with no_grad():
                _broadcast_coalesced(list(module.parameters()) + list(module.buffers()), 0)
        self._reducer = _Reducer(params, int(cap * _MB), self._world,
                                 self.find_unused_parameters)

    def _verify_same_model(self, params) -> None:
        """Every rank must hold a model with the same parameter shapes (else the buckets of
        the ranks would not line up)."""
        import numpy as np
        shapes = [tuple(p.shape) for p in params]
        sig = np.array([len(shapes), sum(int(np.prod(s)) for s in shapes),
                        sum((i + 1) * int(np.prod(s)) for i, s in enumerate(shapes)) % (1 << 40),
                        sum(len(s) for s in shapes)], np.int64)
        dist = _dist()
        hi, lo = Tensor._make(sig.copy(), None, 0), Tensor._make(sig.copy(), None, 0)
        dist.all_reduce(hi, dist.ReduceOp.MAX)
        dist.all_reduce(lo, dist.ReduceOp.MIN)
        if (hi._data != lo._data).any():
            raise ValueError(f"DistributedDataParallel: rank {dist.get_rank()}'s model differs "
                             "from another rank's (number or shapes of parameters); build the "
                             "same model on every rank")

    def forward(self, *inputs, **kwargs) -> Any:
        r = self._reducer
        if r.in_progress():
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a "
                "new one. This error indicates that your module has parameters that were not "
                "used in producing loss. You can enable unused parameter detection by passing "
                "the keyword argument `find_unused_parameters=True` to "
                "`DistributedDataParallel`, and by making sure all `forward` function outputs "
                "participate in calculating loss.")
        if self._input_device is not None:
            inputs, kwargs = _to(inputs, self._input_device), _to(kwargs, self._input_device)
        if self._world > 1 and self.broadcast_buffers and self.require_forward_param_sync:
            bufs = list(self.module.buffers())
            if bufs:
                with no_grad():
                    _broadcast_coalesced(bufs, 0)
        out = self.module(*inputs, **kwargs)
        if self._world > 1 and is_grad_enabled() and self.require_backward_grad_sync:
            r.prepare(out)
        else:
            r.expect = False
        return out

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes of forwards run inside only accumulate gradients locally; the
        first synchronised backward after reduces the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def __del__(self):
        r = self.__dict__.get("_reducer")
        if r is not None:
            r.remove_hooks()
