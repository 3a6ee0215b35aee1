"""Activation checkpointing (as torch.utils.checkpoint): run part of a model without keeping
its activations and run it again during backward to get them.

Both of PyTorch's variants, picked by `use_reentrant`:

- reentrant (`use_reentrant=True`; also what leaving the argument out gives, with PyTorch's
  warning): the forward runs under no_grad. Backward reruns it on detached inputs and calls
  `backward()` from inside the engine, so tensors the function reads from elsewhere (module
  parameters) have gradients accumulated into their `.grad` there. As in PyTorch the output
  requires grad only if an input does, and the variant is meant for `.backward()` without
  `inputs=`: `autograd.grad` cannot return gradients for those tensors (PyTorch raises; here
  they count as unused) and accumulates into their `.grad` on the way.
- non-reentrant (`use_reentrant=False`): the forward is recorded once to learn which tensors
  requiring grad the function reads besides its inputs (parameters, tensors computed outside
  it); the recording is dropped when the call returns, so the segment's activations live
  only while it runs, as during its rerun in backward. The checkpoint's node has an edge to
  each of those tensors, so gradients reach them through the ordinary engine: `.backward()`,
  `autograd.grad`, `inputs=` and `create_graph=True` (higher-order gradients) all work.

With `preserve_rng_state` the rerun draws the same random numbers as the forward (dropout
masks match) and leaves the surrounding streams as they were. On the CPU the forward draws
from the ordinary stream, exactly as without checkpointing. CuPy cannot read back a
generator's state, so on CUDA the forward draws from a stream forked off (seeded from the
device's generator) for this checkpoint, which backward recreates.
"""
from __future__ import annotations

import warnings
import weakref
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterable

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ..amp import _AutocastState, autocast
from ..autograd import backward as _backward
from ..autograd import grad as _grad
from ..autograd.function import Function
from ..autograd.grad_mode import _State, enable_grad
from ..func import _cut, _tree_flatten, _tree_unflatten
from ..random import Generator, default_generator_for, get_rng_state, set_rng_state

__all__ = ["checkpoint", "checkpoint_sequential", "CheckpointError"]


class CheckpointError(RuntimeError):
    """The rerun of a checkpointed function did not reproduce its forward."""


_USE_REENTRANT_WARNING = (
    "{}: the use_reentrant parameter should be passed explicitly. Left out, it means "
    "use_reentrant=True, as in PyTorch. use_reentrant=False is recommended, but if you need to "
    "preserve the current default behavior, you can pass use_reentrant=True. Refer to docs for "
    "more details on the differences between the two variants.")


def checkpoint(function: Callable, *args, use_reentrant: bool | None = None,
               preserve_rng_state: bool = True, determinism_check: str = "default",
               debug: bool = False, **kwargs) -> Any:
    """`function(*args, **kwargs)` without keeping its activations for backward, which runs
    it again to get them (see the module docstring for the two variants). Tensors may sit in
    nested tuples, lists and dicts of the arguments; the output may be a tensor or a pytree
    of tensors and other values. Keyword arguments reach `function` only when
    `use_reentrant=False`. `determinism_check="default"` (non-reentrant) makes backward check
    that the rerun returns tensors of the forward's shapes, dtypes and devices ("none" skips
    it); `debug` is accepted for PyTorch compatibility (PyTorch then logs operator traces),
    and the determinism error always lists each mismatching output."""
    if use_reentrant is None:
        warnings.warn(_USE_REENTRANT_WARNING.format("framework.utils.checkpoint"), stacklevel=2)
        use_reentrant = True
    if not use_reentrant:
        if determinism_check not in ("default", "none"):
            raise ValueError("determinism_check should be one of ['default', 'none'], but got "
                             f"{determinism_check}")
        return _non_reentrant(function, args, kwargs, preserve_rng_state,
                              determinism_check == "default")
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    if debug:
        raise ValueError("Passing `context_fn` or `debug` is only supported when "
                         "use_reentrant=False.")
    run = _Run(function, args, {}, preserve_rng_state)
    tensors = run.take_tensors()
    if not any(t._requires_grad for t in tensors):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None",
                      stacklevel=2)
    return run.repack(_ReentrantCheckpoint.apply(run, *tensors))


def checkpoint_sequential(functions, segments: int, input: Tensor,
                          use_reentrant: bool | None = None, **kwargs) -> Tensor:
    """Run `functions` (an nn.Sequential or a list of modules/callables) in order on `input`,
    in `segments` chunks of len(functions) // segments: every chunk but the last (which also
    takes the remainder) is checkpointed. `preserve_rng_state` may be given as a keyword."""
    if use_reentrant is None:
        warnings.warn(_USE_REENTRANT_WARNING.format("framework.utils.checkpoint."
                                                    "checkpoint_sequential"), stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    from ..nn.modules.container import Sequential
    functions = list(functions.children() if isinstance(functions, Sequential) else functions)
    if not 1 <= segments <= len(functions):
        raise ValueError(f"checkpoint_sequential: segments must be between 1 and the number of "
                         f"functions ({len(functions)}), got {segments}")
    size = len(functions) // segments
    end = 0
    for start in range(0, size * (segments - 1), size):
        end = start + size
        input = checkpoint(_Chain(functions[start:end]), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve)
    return _Chain(functions[end:])(input)


class _Chain:
    """Functions applied one after the other."""

    def __init__(self, functions: list):
        self.functions = functions

    def __call__(self, x):
        for f in self.functions:
            x = f(x)
        return x


# ------------------------------------------------------------------------------ shared state
class _Run:
    """What a checkpoint needs to run its function again: the function, the arguments with
    their tensors taken out (the checkpoint's node keeps those, version-checked, and `call`
    puts them back), the output's structure, and the random-number and autocast state of the
    forward."""

    def __init__(self, function, args, kwargs, preserve_rng_state: bool):
        self.function = function
        flat, self.spec = _tree_flatten((args, kwargs))
        self.where = [i for i, x in enumerate(flat) if isinstance(x, Tensor)]
        self._tensors = [flat[i] for i in self.where]
        for i in self.where:
            flat[i] = None
        self.flat = flat
        self.rng = _RngState(self._tensors) if preserve_rng_state else None
        self.autocast = [(kind, _AutocastState.enabled[kind], _AutocastState.dtype[kind])
                         for kind in ("cuda", "cpu")]
        self.autocast_cache = _AutocastState.cache_enabled

    def take_tensors(self) -> list[Tensor]:
        """The arguments' tensors, handed over once (the node, not this object, keeps them)."""
        tensors, self._tensors = self._tensors, None
        return tensors

    def call(self, tensors):
        flat = list(self.flat)
        for i, t in zip(self.where, tensors):
            flat[i] = t
        args, kwargs = _tree_unflatten(flat, self.spec)
        return self.function(*args, **kwargs)

    def split(self, out) -> list[Tensor]:
        """The output's tensors, each a new tensor object (the function may return one tensor
        twice, or one it keeps); the rest of the output is kept for `repack`."""
        leaves, self.out_spec = _tree_flatten(out)
        self.out_where = [i for i, x in enumerate(leaves) if isinstance(x, Tensor)]
        tensors = [Tensor._make(leaves[i]._data, None, 0) for i in self.out_where]
        for i in self.out_where:
            leaves[i] = None
        self.out_leaves = leaves
        return tensors

    def repack(self, tensors):
        leaves = list(self.out_leaves)
        for i, t in zip(self.out_where, tensors):
            leaves[i] = t
        return _tree_unflatten(leaves, self.out_spec)

    @contextmanager
    def replay(self):
        """Grad mode on, and the random-number and autocast state of the forward."""
        with ExitStack() as stack:
            if self.rng is not None:
                stack.enter_context(self.rng.restored())
            for kind, enabled, dtype in self.autocast:
                stack.enter_context(autocast(kind, dtype, enabled, self.autocast_cache))
            stack.enter_context(enable_grad())
            yield


class _RngState:
    """The CPU generator's state, and per CUDA device of the inputs the seed of the stream
    forked off for the forward (see the module docstring)."""

    def __init__(self, tensors: Iterable[Tensor]):
        self.cpu = get_rng_state()
        devices = {}
        for t in tensors:
            if t.device.type == "cuda":
                devices.setdefault(t.device.index or 0, t.device)
        self.cuda = []
        for dev in devices.values():
            gen = default_generator_for(dev)
            seed = int(gen._integers(0, 2 ** 62, (1,), np.int64, dev).item())
            gen._rng = Generator(dev).manual_seed(seed)._rng
            self.cuda.append((gen, dev, seed))

    @contextmanager
    def restored(self):
        outer_cpu = get_rng_state()
        outer_cuda = [(gen, gen._rng) for gen, _, _ in self.cuda]
        set_rng_state(self.cpu)
        for gen, dev, seed in self.cuda:
            gen._rng = Generator(dev).manual_seed(seed)._rng
        try:
            yield
        finally:
            set_rng_state(outer_cpu)
            for gen, rng in outer_cuda:
                gen._rng = rng


def _differentiable(t: Tensor) -> bool:
    return t.is_floating_point() or t.is_complex()


# ------------------------------------------------------------------------------ reentrant
class _ReentrantCheckpoint(Function):
    @staticmethod
    def forward(ctx, run, *tensors):
        ctx.run = run
        ctx.save_for_backward(*tensors)
        outs = run.split(run.call(tensors))
        ctx.mark_non_differentiable(*[o for o in outs if not _differentiable(o)])
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        run = ctx.run
        inputs = [t.detach().requires_grad_(t._requires_grad) for t in ctx.saved_tensors]
        with run.replay():
            outs = [x for x in _tree_flatten(run.call(inputs))[0] if isinstance(x, Tensor)]
        if len(outs) != len(grads):
            raise CheckpointError(f"checkpoint: the function returned {len(outs)} tensors when "
                                  f"run again in backward, {len(grads)} in the forward")
        pairs = [(o, g) for o, g in zip(outs, grads) if o._requires_grad]
        if not pairs:
            raise RuntimeError("none of output has requires_grad=True, this checkpoint() is not "
                               "necessary")
        _backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None,) + tuple(t.grad for t in inputs)


# ------------------------------------------------------------------------------ non-reentrant
def _non_reentrant(function, args, kwargs, preserve_rng_state: bool, check: bool):
    if not _State.grad_enabled:
        return function(*args, **kwargs)
    run = _Run(function, args, kwargs, preserve_rng_state)
    tensors = run.take_tensors()
    private, outs, refs, links = _record(run, tensors)
    # What the forward's recording left alive after being dropped existed before the call
    # (or is held by something the function stored): an edge from a node of the recording
    # into it marks a tensor computed outside that the function read. Leaves are collected
    # across the whole walk, so that gradients still reach the leaves behind a node the
    # function created and stored (a weight computed by a pre-forward hook), which its rerun
    # replaces by a new one.
    alive = {k for k, r in refs.items() if r() is not None}
    leaves, boundary = {}, {}
    for src, tgt in links:
        if tgt.__class__ is tuple:
            if tgt[0] in alive and (src is None or src not in alive) and tgt not in boundary:
                boundary[tgt] = refs[tgt[0]]()
        elif id(tgt) not in private:
            leaves.setdefault(id(tgt), tgt)
    if not any(run.differentiable):
        return run.repack(outs)  # no output requires grad: there is nothing to backpropagate
    run.leaves = list(leaves.values())
    run.boundary = list(boundary.values())
    # Function.apply takes edges from tensors: one standing for each node's output
    xp = xp_of(outs[0]._data)
    keys = [Tensor._make(xp.empty(0), node, idx) for (_, idx), node in boundary.items()]
    run.outputs = outs
    run.check = check
    run.meta = [_meta(o) for o in outs]
    run.n_inputs = len(tensors)
    return run.repack(_NonReentrantCheckpoint.apply(run, *tensors, *run.leaves, *keys))


def _record(run: _Run, tensors: list[Tensor]):
    """Run the function once with grad mode on, on stand-ins for the inputs that require
    grad. Returns the ids of the stand-ins, the outputs as new tensors cut from the recording,
    and the recording's walk (`_walk`); nothing returned keeps a node of it alive."""
    stand = [t.detach().requires_grad_(True) if t._requires_grad else t for t in tensors]
    out = run.call(stand)
    recorded = [x for x in _tree_flatten(out)[0] if isinstance(x, Tensor)]
    refs, links = _walk(recorded)
    run.differentiable = [o._requires_grad for o in recorded]
    private = {id(s) for s, t in zip(stand, tensors) if s is not t}
    return private, run.split(out), refs, links


def _meta(t: Tensor):
    return tuple(t.shape), t.dtype, t.device


def _walk(outputs: list[Tensor]):
    """Every edge reachable from `outputs`, as (id of the node it leaves, or None for an
    output; its target), a node target given as (id, output index) so that nothing here keeps
    a node alive, with a weak reference per node id."""
    refs, links, stack = {}, [], []
    for t in outputs:
        fn = t._grad_fn
        if fn is not None:
            links.append((None, _target((fn, t._out_idx), refs, stack)))
        elif t._requires_grad:
            links.append((None, t))
    while stack:
        node = stack.pop()
        src = id(node)
        for e in node.next_edges:
            if e is not None:
                links.append((src, _target(e, refs, stack)))
    return refs, links


def _target(e, refs, stack):
    if e.__class__ is tuple:
        node, idx = e
    elif e._is_node:
        node, idx = e, 0
    else:
        return e  # a leaf
    k = id(node)
    if k not in refs:
        refs[k] = weakref.ref(node)
        stack.append(node)
    return (k, idx)


class _NonReentrantCheckpoint(Function):
    @staticmethod
    def forward(ctx, run, *tensors):
        ctx.run = run
        n = run.n_inputs
        ctx.save_for_backward(*tensors[:n])
        ctx.keys = list(tensors[n + len(run.leaves):])
        ctx.set_materialize_grads(False)
        outs, run.outputs = run.outputs, None
        ctx.mark_non_differentiable(*[o for o, d in zip(outs, run.differentiable) if not d])
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        run = ctx.run
        create_graph = _State.grad_enabled  # the engine sets grad mode to create_graph
        stand, targets, cut = [], [], []
        with run.replay():
            # Inputs that require grad are seen through views of themselves, cut from them
            # while the gradients are taken and joined again after (as in framework.func), so
            # that gradients built with create_graph depend on the inputs themselves.
            for t in ctx.saved_tensors:
                if t._requires_grad:
                    t = t.view_as(t)
                    cut.append(t._grad_fn)
                    targets.append(t)
                stand.append(t)
            outs = [x for x in _tree_flatten(run.call(stand))[0] if isinstance(x, Tensor)]
        if run.check:
            _check_rerun(run.meta, outs)
        pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o._requires_grad]
        wanted = targets + [t for t in run.leaves + ctx.keys if t._requires_grad]
        res = iter(())
        if pairs and wanted:
            with _cut(cut + run.boundary):
                res = iter(_grad([o for o, _ in pairs], wanted, [g for _, g in pairs],
                                 retain_graph=True, create_graph=create_graph,
                                 allow_unused=True))
        out = [next(res, None) if t._requires_grad else None for t in ctx.saved_tensors]
        out += [next(res, None) if t._requires_grad else None for t in run.leaves + ctx.keys]
        return (None, *out)


def _check_rerun(meta, outs) -> None:
    if len(outs) != len(meta):
        raise CheckpointError(f"checkpoint: the function returned {len(outs)} tensors when run "
                              f"again in backward, {len(meta)} in the forward")
    bad = [f"output {i}: forward shape={list(m[0])}, dtype={m[1]}, device={m[2]}; rerun "
           f"shape={list(o.shape)}, dtype={o.dtype}, device={o.device}"
           for i, (m, o) in enumerate(zip(meta, outs)) if _meta(o) != m]
    if bad:
        raise CheckpointError("checkpoint: the function's rerun in backward returned tensors "
                              "with other metadata than its forward (pass "
                              "determinism_check='none' to skip this check):\n"
                              + "\n".join(bad))
