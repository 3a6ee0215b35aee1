"""Reverse-mode engine: topological walk over recorded nodes, gradient buffers, leaf accumulation.

Each node runs once, after every gradient flowing into it has been summed; its buffer is popped
as soon as it runs and (unless retain_graph) its saved values are released, so intermediate
gradients and activations are freed as the walk proceeds.
"""
from __future__ import annotations

from .grad_mode import _State

# Set by framework.profiler while a profile runs: times each node's backward.
_profile_backward = None

_AUTOCAST = None  # framework.amp's enabled-flags dict, bound on first use (import cycle)


def _sum_grads(a, b, create_graph):
    if create_graph:
        return a + b
    from .._tensor import Tensor
    return Tensor._make(a._data + b._data, None, 0)


def _check_anomaly(node, grads):
    from .._backend import xp_of
    for i, g in enumerate(grads):
        if g is None:
            continue
        xp = xp_of(g._data)
        if g._data.dtype.kind in "fc" and not bool(xp.isfinite(g._data).all()):
            where = "".join(node._trace) if node._trace else "  (no forward trace recorded)\n"
            raise RuntimeError(
                f"Function '{node.name()}' returned nan or inf values in its {i}th output.\n"
                f"The forward call that created it:\n{where}")


def run_backward(roots, root_grads, retain_graph=False, create_graph=False, inputs=None,
                 allow_unused=False):
    """Backpropagate `root_grads` from `roots`.

    With `inputs` None, gradients accumulate into the `.grad` of every leaf reached. Otherwise
    nothing is accumulated and the gradients with respect to `inputs` are returned, in order.
    """
    from .._tensor import Tensor

    # Where the gradients of `inputs` are to be captured: leaves by identity, non-leaves by
    # the (node, output index) their gradient flows into.
    capture_leaf = capture_node = None
    captured = None
    if inputs is not None:
        captured = [None] * len(inputs)
        capture_leaf, capture_node = {}, {}
        for i, t in enumerate(inputs):
            if t._grad_fn is None:
                capture_leaf.setdefault(id(t), []).append(i)
            else:
                capture_node.setdefault((id(t._grad_fn), t._out_idx), []).append(i)

    # 1. dependency counts over the nodes reachable from the roots. Leaves with
    # post-accumulate hooks also get a count of the edges into them, so that their gradient
    # is accumulated (and the hooks run) as soon as it is complete, mid-walk: a data-parallel
    # wrapper starts communicating a gradient while the rest of backward still runs.
    deps = {}
    leaf_deps = None
    track_leaves = inputs is None
    stack = []
    for r in roots:
        fn = r._grad_fn
        if fn is not None and fn not in deps:
            deps[fn] = 0
            stack.append(fn)
    while stack:
        node = stack.pop()
        for e in node.next_edges:
            if e is None:
                continue
            if e.__class__ is tuple:
                n = e[0]
            elif e._is_node:
                n = e
            else:  # a leaf
                if track_leaves and e._post_acc_hooks:
                    if leaf_deps is None:
                        leaf_deps = {}
                    leaf_deps[id(e)] = leaf_deps.get(id(e), 0) + 1
                continue
            c = deps.get(n)
            if c is None:
                deps[n] = 1
                stack.append(n)
            else:
                deps[n] = c + 1

    # With `inputs`, only the nodes on a path to one of them run (as in PyTorch): the others
    # are neither executed nor released, so the rest of the graph stays usable.
    leads = _leads_to_inputs(roots, capture_leaf, capture_node) if inputs is not None else None
    target_ids = {key[0] for key in capture_node} if capture_node else ()

    # 2. seed the buffers. Node buffers hold Tensors; leaf buffers hold raw arrays when no
    # graph is being built (leaves such as shared weights receive many gradients).
    buf = {}
    leaf_buf = {}  # id(leaf) -> [leaf, grad array or Tensor]
    make = Tensor._make

    def send_leaf(leaf, g):
        slot = leaf_buf.get(id(leaf))
        if slot is None:
            leaf_buf[id(leaf)] = [leaf, g if create_graph else g._data]
        elif create_graph:
            slot[1] = slot[1] + g
        else:
            slot[1] = slot[1] + g._data

    def send_multi(node, idx, g):
        slots = buf.get(node)
        if slots is None:
            slots = buf[node] = [None] * node.n_out
        prev = slots[idx]
        slots[idx] = g if prev is None else _sum_grads(prev, g, create_graph)

    for r, g in zip(roots, root_grads):
        fn = r._grad_fn
        if fn is not None:
            if fn.n_out == 1:
                prev = buf.get(fn)
                buf[fn] = g if prev is None else _sum_grads(prev, g, create_graph)
            else:
                send_multi(fn, r._out_idx, g)
        elif r._requires_grad:
            send_leaf(r, g)
        else:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                               "grad_fn")

    handed_out = set()

    def finish_leaf(leaf, g):
        """Leaf hooks, then capture or accumulate into .grad, then post-accumulate hooks."""
        if not create_graph:
            g = make(g, None, 0)
        if leaf._hooks:
            for hook in leaf._hooks:
                r = hook(g)
                if r is not None:
                    g = r
        if capture_leaf is not None:
            for i in capture_leaf.get(id(leaf), ()):
                captured[i] = g
            return
        _accumulate(leaf, g, create_graph, handed_out)
        if leaf._post_acc_hooks:
            for hook in tuple(leaf._post_acc_hooks):
                hook(leaf)

    ready = [n for n in deps if deps[n] == 0]
    prev_mode = _State.grad_enabled
    _State.grad_enabled = create_graph
    check_anomaly = _State.anomaly and _State.anomaly_check_nan
    # Backward runs in the dtypes the forward chose: autocast does not apply to it (as PyTorch)
    global _AUTOCAST
    if _AUTOCAST is None:
        from ..amp import _AutocastState
        _AUTOCAST = _AutocastState.enabled
    autocast_on = _AUTOCAST["cuda"] or _AUTOCAST["cpu"]
    if autocast_on:
        saved_autocast = dict(_AUTOCAST)
        _AUTOCAST["cuda"] = _AUTOCAST["cpu"] = False
    try:
        while ready:
            node = ready.pop()
            if leads is not None and node not in leads and id(node) not in target_ids:
                continue  # off every path to the requested inputs: not run, not released
            g = buf.pop(node, None)
            if node.n_out == 1:
                grads_out = (g,)
                empty = g is None
            else:
                grads_out = tuple(g) if g is not None else (None,) * node.n_out
                empty = all(x is None for x in grads_out)
            if node._hooks:
                grads_out = _run_node_hooks(node, grads_out)
            if capture_node:
                for k, gk in enumerate(grads_out):
                    idxs = capture_node.get((id(node), k))
                    if idxs:
                        for i in idxs:
                            captured[i] = gk
            if leads is not None and node not in leads:
                continue  # an input's own node: its gradient is captured, nothing below needs it
            edges = node.next_edges
            if node._freed:
                node.saved_tensors  # raises the "backward through the graph a second time" error
            if empty:
                in_grads = (None,) * len(edges)
            else:
                in_grads = node.backward(*grads_out) if _profile_backward is None else \
                    _profile_backward(node, grads_out)
                if len(in_grads) != len(edges):
                    raise RuntimeError(f"{node.name()} returned {len(in_grads)} gradients for "
                                       f"{len(edges)} inputs")
                if check_anomaly:
                    _check_anomaly(node, in_grads)
            if not retain_graph and (node._saved is not None or
                                     node._release_extra is not None):
                node.release()
            for e, gi in zip(edges, in_grads):
                if e is None:
                    continue
                if e.__class__ is tuple:
                    n = e[0]
                    if gi is not None:
                        send_multi(n, e[1], gi)
                elif e._is_node:
                    n = e
                    if gi is not None:
                        prev = buf.get(n)
                        buf[n] = gi if prev is None else (
                            prev + gi if create_graph else make(prev._data + gi._data, None, 0))
                else:
                    if gi is not None:
                        send_leaf(e, gi)
                    if leaf_deps is not None:
                        c = leaf_deps.get(id(e))
                        if c is not None:
                            if c > 1:
                                leaf_deps[id(e)] = c - 1
                            else:  # every gradient into this leaf has arrived
                                del leaf_deps[id(e)]
                                slot = leaf_buf.pop(id(e), None)
                                if slot is not None:
                                    finish_leaf(e, slot[1])
                    continue
                c = deps[n] - 1
                deps[n] = c
                if c == 0:
                    ready.append(n)
    finally:
        _State.grad_enabled = prev_mode
        if autocast_on:
            _AUTOCAST.update(saved_autocast)

    # 3. the other leaves: hooks, then capture or accumulate into .grad
    for leaf, g in leaf_buf.values():
        finish_leaf(leaf, g)

    if captured is not None:
        for i, t in enumerate(inputs):
            if captured[i] is None and not allow_unused:
                raise RuntimeError(f"One of the differentiated Tensors (input {i}) appears to not "
                                   "have been used in the graph. Set allow_unused=True if this is "
                                   "the desired behavior.")
        if not create_graph:
            captured = [None if c is None else Tensor._make(c._data, None, 0) for c in captured]
        return captured
    return None


def _edge_node(e):
    """The node an edge leads to, or None for a leaf (or no edge)."""
    if e is None:
        return None
    if e.__class__ is tuple:
        return e[0]
    return e if e._is_node else None


def _leads_to_inputs(roots, capture_leaf, capture_node):
    """The set of nodes from which a gradient reaches one of the requested inputs: a leaf
    input among their edges, a node whose output is an input, or a node of the set."""
    target_nodes = {key[0] for key in capture_node}
    leads = set()
    done = set()
    stack = []
    for r in roots:
        fn = r._grad_fn
        if fn is not None and id(fn) not in done:
            stack.append((fn, False))
    while stack:  # iterative post-order: a node is decided after everything below it
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if not expanded:
            stack.append((node, True))
            for e in node.next_edges:
                n = _edge_node(e)
                if n is not None and id(n) not in done:
                    stack.append((n, False))
            continue
        done.add(id(node))
        for e in node.next_edges:
            n = _edge_node(e)
            if n is None:
                if e is not None and id(e) in capture_leaf:
                    leads.add(node)
                    break
            elif n in leads or id(n) in target_nodes:
                leads.add(node)
                break
    return leads


def _run_node_hooks(node, grads_out):
    grads_out = list(grads_out)
    for k, hooks in node._hooks.items():
        for hook in hooks:
            if grads_out[k] is None:
                continue
            r = hook(grads_out[k])
            if r is not None:
                grads_out[k] = r
    return tuple(grads_out)


def _accumulate(leaf, g, create_graph, handed_out):
    from .._tensor import Tensor
    arr = g._data
    if arr.dtype != leaf._data.dtype:
        g = g.to(leaf.dtype)
        arr = g._data
    if arr.shape != leaf._data.shape:
        raise RuntimeError(f"gradient of shape {tuple(arr.shape)} does not match the leaf's shape "
                           f"{tuple(leaf._data.shape)}")
    old = leaf.grad
    if old is None:
        if create_graph:
            leaf.grad = g
            return
        # Never hand out a gradient that aliases another (a view, a read-only broadcast, or
        # the same array given to two leaves): optimizers update .grad in place.
        flags = getattr(arr, "flags", None)
        if id(arr) in handed_out or flags is None or not flags.owndata or \
                not getattr(flags, "writeable", True):
            arr = arr.copy()
        handed_out.add(id(arr))
        leaf.grad = Tensor._make(arr, None, 0)
    elif create_graph or old._grad_fn is not None:
        leaf.grad = old + g
    else:
        old._data += arr
