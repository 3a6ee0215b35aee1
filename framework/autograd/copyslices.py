"""In-place writes through views under autograd (PyTorch's CopySlices).

A view records how to replay itself from its root base (`Tensor._view_fn`: a tuple of steps
`(fn, *args)`, each `t = fn(t, *args)`, set by `ops.shape._as_view`). An in-place op with
autograd on a view writes the new values into the base's memory, gives the base a
`CopySlices` node over (the base's old history, the op's result) and makes the view's history
"the view replayed on the new base". Recorded views of a base that has a history are
registered with it (weakly), so that the ones overlapping the written memory are regenerated
the same way: PyTorch does this lazily when a stale view's grad_fn is read; here `_grad_fn` is
read directly on the hot path, so it is done eagerly, only when an in-place op happens.
"""
from __future__ import annotations

from .._backend import xp_of
from .._tensor import Tensor
from .function import Node, Op


def replay(t: Tensor, steps) -> Tensor:
    """The view described by `steps`, taken of `t` (which has the root base's shape)."""
    for step in steps:
        t = step[0](t, *step[1:])
    return t


class CopySlices(Op):
    """The base after a write through its view `steps`: inputs (the base's old value, the
    view's new value). Its forward returns the base's array as is; the caller writes the new
    values into the view's memory."""

    def forward(self, base, values):
        self.shape = base.shape
        self.axis_order = None if base.flags.c_contiguous else tuple(
            sorted(range(base.ndim), key=lambda i: -abs(base.strides[i])))
        return base

    def backward(self, g):
        need_base, need_values = self.needs_input_grad
        gb = gv = None
        if need_base:  # g with the view's region zeroed
            gb = Tensor._make(self._empty_like_base(g), None, 0)
            gb.copy_(g)
            replay(gb, self.steps).zero_()
        if need_values:
            gv = replay(g, self.steps)
        return gb, gv

    def _empty_like_base(self, g):
        # The buffer is laid out as the base was, so that every step that was a view of the
        # base (a reshape after a permute, say) is a view of the buffer and zero_ reaches it.
        xp, dt = xp_of(g._data), g._data.dtype
        order = self.axis_order
        if order is None:
            return xp.empty(self.shape, dt)
        inverse = [0] * len(order)
        for i, a in enumerate(order):
            inverse[a] = i
        return xp.empty(tuple(self.shape[a] for a in order), dt).transpose(tuple(inverse))


class _UnreplayableView(Node):
    """History of a view whose memory an in-place op changed but that cannot be replayed on
    its base (made by real, imag, view_as_real, view_as_complex or as_strided, or its base
    changed shape in place since): backward through it raises."""

    def __init__(self):
        self.next_edges = ()
        self._saved = None

    def backward(self, g):
        raise RuntimeError(
            "a view was modified by an in-place operation on its base or on another view, and "
            "Lantern cannot replay it on the base (it was made by real, imag, view_as_real, "
            "view_as_complex or as_strided, or the base was reshaped in place since): use the "
            "view's value only before the in-place operation, or clone() it")


def _replayed(new_base: Tensor, view: Tensor):
    """`view` replayed on `new_base`, or None when its steps are unknown or no longer
    describe its memory (the base was transposed or reshaped in place after it was made)."""
    steps = view._view_fn
    if steps is None:
        return None
    fresh = replay(new_base, steps)
    a, b = fresh._data, view._data
    if a.shape != b.shape or a.strides != b.strides or (
            a.size and not xp_of(a).may_share_memory(a, b)):
        return None
    return fresh


def rebase_history(t: Tensor, result: Tensor) -> None:
    """Write `result` (recorded, of t's shape and dtype) into `t`, a view or a base with
    registered views, and rewrite the histories of t, its base and their overlapping views."""
    base = t._base
    if base is None:  # a base written as a whole: every registered view is stale
        t._copy_into(result._data)
        t._grad_fn, t._out_idx, t._requires_grad = result._grad_fn, 0, True
        _refresh_views(t, _alias(t), t)
        return
    old = _alias(base)
    new = CopySlices.apply(old, result, steps=t._view_fn)
    fresh = _replayed(new, t)
    if fresh is None:
        raise RuntimeError(
            "in-place modification, with autograd, of this view is not supported by Lantern: "
            "it cannot be replayed on its base (it was made by real, imag, view_as_real, "
            "view_as_complex or as_strided, or the base was reshaped in place since); clone() "
            "it first or write into the base")
    t._copy_into(result._data)
    base._grad_fn, base._out_idx, base._requires_grad = new._grad_fn, 0, True
    t._grad_fn, t._out_idx, t._requires_grad = fresh._grad_fn, fresh._out_idx, True
    _refresh_views(base, new, t)


def _alias(t: Tensor) -> Tensor:
    """A tensor on t's memory with t's history but none of its view bookkeeping."""
    a = Tensor._make(t._data, t._grad_fn, t._out_idx)
    a._requires_grad = t._requires_grad
    return a


def _refresh_views(root: Tensor, new: Tensor, written: Tensor) -> None:
    """Regenerate, as replays on `new` (root's memory and new history), the registered live
    views of `root` whose memory may overlap `written`'s; the others keep their history,
    which still describes their values. Dead registrations are dropped."""
    refs = root._views
    if refs is None:
        return
    xp = xp_of(root._data)
    live = []
    for r in refs:
        w = r()
        if w is None:
            continue
        live.append(r)
        if w is written or (written is not root and
                            not xp.may_share_memory(w._data, written._data)):
            continue
        fresh = _replayed(new, w)
        if fresh is None:
            w._grad_fn, w._out_idx = _UnreplayableView(), 0
        else:
            w._grad_fn, w._out_idx = fresh._grad_fn, fresh._out_idx
        w._requires_grad = True
    root._views = live
