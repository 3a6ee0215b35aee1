"""Recurrent layers' math as single autograd nodes.

`lstm_cell`: the LSTM cell's element-wise math as one op, from the gate pre-activations
(N, 4H) (PyTorch's gate order i, f, g, o) and the cell state c (N, H) to the new states,

    c' = sigmoid(f) * c + sigmoid(i) * tanh(g),    h' = sigmoid(o) * tanh(c').

Written as separate ops a step is a split, five activations, three products and a sum each
way (about 25 graph nodes a step); this node does it in a few array passes and keeps the
activations for backward.

`lstm_layer`, `gru_layer` and `rnn_layer` (tanh or ReLU) run a whole direction of a layer as
one node, as cuDNN and PyTorch's CPU kernels do: the forward loops over the steps on arrays, and the backward runs
the recurrence back and takes W_hh's gradient once, one product over all steps, where
per-step nodes take one small product per step. float32 steps on NumPy run compiled kernels
(framework/_jit_kernels.py).

Under create_graph every backward here is written with differentiable ops on the saved
inputs, so higher derivatives work as for the separate ops."""
from __future__ import annotations

import numpy as np

from .. import _jit
from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State, enable_grad
from ._util import xp_of
from .shape import cat

__all__ = ["lstm_cell", "lstm_layer", "gru_layer", "rnn_layer"]

_make = Tensor._make


def _cell_grads(i, f, g, o, c, tc, dh, dc):
    """(d gate i, f, g, o pre-activations, d c) of the LSTM cell from the gradients of h' and
    c' (either may be None), given the activations and tc = tanh(c'); arrays or Tensors."""
    dcn = dc
    do = None
    if dh is not None:
        do = dh * tc * o * (1 - o)
        from_h = dh * o * (1 - tc * tc)
        dcn = from_h if dcn is None else dcn + from_h
    if dcn is None:
        return None
    if do is None:
        do = dcn * 0
    return dcn * g * i * (1 - i), dcn * c * f * (1 - f), dcn * i * (1 - g * g), do, dcn * f


def _cell_grads_arrays(act, c, tc, dh, dc, out=None):
    """_cell_grads on arrays in fewer passes: (d gates (N, 4H), written into `out` when
    given, d c), or (None, None)."""
    xp = xp_of(act)
    hs = c.shape[-1]
    i, f, g, o = (act[:, k * hs:(k + 1) * hs] for k in range(4))
    dcn = None
    if dh is not None:
        dcn = tc * tc
        xp.subtract(1, dcn, out=dcn)
        dcn *= o
        dcn *= dh
    if dc is not None:
        dcn = dc if dcn is None else xp.add(dcn, dc, out=dcn)
    if dcn is None:
        return None, None
    # the activations' derivatives: s (1 - s) for the sigmoid gates, 1 - g^2 for g
    deriv = 1 - act
    deriv *= act
    d_g = deriv[:, 2 * hs:3 * hs]
    xp.multiply(g, g, out=d_g)
    xp.subtract(1, d_g, out=d_g)
    dgates = xp.empty_like(act) if out is None else out
    xp.multiply(dcn, g, out=dgates[:, :hs])
    xp.multiply(dcn, c, out=dgates[:, hs:2 * hs])
    xp.multiply(dcn, i, out=dgates[:, 2 * hs:3 * hs])
    if dh is None:
        dgates[:, 3 * hs:] = 0
    else:
        xp.multiply(dh, tc, out=dgates[:, 3 * hs:])
    dgates *= deriv
    return dgates, dcn * f


class LstmCell(Op):
    """(gates (N, 4H), c (N, H)) -> (h', c'); see the module docstring."""

    n_out = 2
    save_inputs = (0, 1)

    def forward(self, gates, c):
        xp = xp_of(gates)
        act = gates.copy()
        _activate(act, c.shape[-1], xp)
        c_new = c.astype(act.dtype, copy=True)
        tc = xp.empty_like(c_new)
        h = xp.empty_like(c_new)
        _cell_update(act, c_new, tc, h, xp)
        self.act, self.tc = act, tc
        return h, c_new

    def backward(self, dh, dc):
        gates, c = self.saved_tensors
        hs = c.shape[-1]
        if _State.grad_enabled:  # create_graph: the activations as functions of the inputs
            i, f, o = (gates[:, k * hs:(k + 1) * hs].sigmoid() for k in (0, 1, 3))
            g = gates[:, 2 * hs:3 * hs].tanh()
            tc = (f * c + i * g).tanh()
            grads = _cell_grads(i, f, g, o, c, tc, dh, dc)
            if grads is None:
                return None, None
            return cat(grads[:4], 1), grads[4]
        dgates, dc_prev = _cell_grads_arrays(self.act, c._data, self.tc,
                                             None if dh is None else dh._data,
                                             None if dc is None else dc._data)
        if dgates is None:
            return None, None
        return _make(dgates, None, 0), _make(dc_prev, None, 0)

    def _release_extra(self):
        self.act = self.tc = None


def lstm_cell(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """(h', c') of an LSTM step from its gate pre-activations (N, 4H), gate order i, f, g, o,
    and the cell state (N, H)."""
    n, four_h = gates.shape
    if c.ndim != 2 or four_h != 4 * c.shape[1] or c.shape[0] != n:
        raise RuntimeError(f"lstm_cell: gates of shape {tuple(gates.shape)} need a cell state "
                           f"of shape ({n}, {four_h // 4}), got {tuple(c.shape)}")
    return LstmCell.apply(gates, c)


# ------------------------------------------------------------------------------ whole layer
def _activate(a, hs: int, xp, only_sigmoid: bool = False) -> None:
    """LSTM gate pre-activations (n, 4H) -> their activations, in place; with only_sigmoid,
    the sigmoid of every column. sigmoid(x) = (tanh(x / 2) + 1) / 2: four passes where the
    overflow-safe exp formula takes eight (its error is absolute, half an ulp of 1: a gate of
    1e-9 reads 0 in float32, which changes no state by more than that)."""
    blocks = (a,) if only_sigmoid else (a[:, :2 * hs], a[:, 3 * hs:])
    for block in blocks:
        block *= 0.5
        xp.tanh(block, out=block)
        block *= 0.5
        block += 0.5
    if not only_sigmoid:
        xp.tanh(a[:, 2 * hs:3 * hs], out=a[:, 2 * hs:3 * hs])


def _cell_update(act, c, tc, h, xp) -> None:
    """From the gate activations (n, 4H): c (n, H) becomes c' = f c + i g in place,
    tc = tanh(c'), h = o tc (tc and h written into the given arrays)."""
    hs = c.shape[-1]
    c *= act[:, hs:2 * hs]
    c += act[:, :hs] * act[:, 2 * hs:3 * hs]
    xp.tanh(c, out=tc)
    xp.multiply(act[:, 3 * hs:], tc, out=h)


def _float32_kernels(a):
    """The compiled kernels for a NumPy float32 layer (their tanh is a float32 rational
    approximation, within 3.3e-7; float64 keeps NumPy's exact tanh), else None."""
    if type(a) is np.ndarray and a.dtype == np.float32:
        return _jit.kernels()
    return None


def _step_rows(steps, reverse: bool):
    """(first row, rows) of each step in the order the recurrence runs."""
    starts, r = [], 0
    for bs in steps:
        starts.append(r)
        r += bs
    order = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
    return [(starts[t], steps[t]) for t in order]


def _state_grad(g, shape, dtype, xp):
    """A final state's incoming gradient as a fresh array to accumulate into (zeros if none)."""
    return xp.zeros(shape, dtype) if g is None else g._data.astype(dtype, copy=True)


def _output_grad(d_out, kernels, dtype):
    """The outputs' incoming gradient as an array (C-contiguous for the kernels), or None."""
    if d_out is None:
        return None
    return np.ascontiguousarray(d_out._data, dtype) if kernels is not None else d_out._data


class LstmLayer(Op):
    """(xw rows (R, 4H), h0 (B, H), c0 (B, H), w_hh (4H, H)) -> (out rows (R, H), h_n, c_n).

    The rows are time-major and packed: step t holds `steps[t]` rows (a non-increasing
    sequence, as PackedSequence's batch sizes), the first rows of the batch; `reverse` runs the
    steps last to first. xw is each row's input product with both biases. A row not in a step
    keeps its state, so h_n and c_n hold each sequence's state after its last step."""

    n_out = 3
    save_inputs = (0, 1, 2, 3)

    def forward(self, xw, h0, c0, whh):
        xp = xp_of(xw)
        hs = h0.shape[1]
        kernels = _float32_kernels(xw)
        if kernels is not None:
            xw = np.ascontiguousarray(xw)
        rows = xw.shape[0]
        h, c = h0.astype(xw.dtype, copy=True), c0.astype(xw.dtype, copy=True)
        whh_t = xp.ascontiguousarray(whh.T)
        out = xp.empty((rows, hs), xw.dtype)
        act = xp.empty((rows, 4 * hs), xw.dtype)
        tc = xp.empty((rows, hs), xw.dtype)
        c_prev = xp.empty((rows, hs), xw.dtype)
        h_prev = xp.empty((rows, hs), xw.dtype)
        for r0, bs in _step_rows(self.steps, self.reverse):
            sl = slice(r0, r0 + bs)
            h_prev[sl] = h[:bs]
            c_prev[sl] = c[:bs]
            a = act[sl]
            xp.matmul(h[:bs], whh_t, out=a)
            if kernels is not None:
                kernels.lstm_step_forward(a, xw[sl], c[:bs], tc[sl], out[sl], hs)
            else:
                a += xw[sl]
                _activate(a, hs, xp)
                _cell_update(a, c[:bs], tc[sl], out[sl], xp)
            h[:bs] = out[sl]
        self.act, self.tc, self.c_prev, self.h_prev = act, tc, c_prev, h_prev
        return out, h, c

    def backward(self, d_out, d_hn, d_cn):
        if _State.grad_enabled:  # create_graph: differentiate the steps written as ops
            return _backward_through_ops(self, _lstm_layer_ops, (d_out, d_hn, d_cn))
        xw, h0, c0, whh = self.saved_tensors
        w = whh._data
        xp = xp_of(w)
        hs = h0.shape[1]
        dtype = self.act.dtype
        dh = _state_grad(d_hn, h0.shape, dtype, xp)
        dc = _state_grad(d_cn, c0.shape, dtype, xp)
        kernels = _float32_kernels(self.act)
        dout = _output_grad(d_out, kernels, dtype)
        dxw = xp.empty(self.act.shape, dtype)
        for r0, bs in reversed(_step_rows(self.steps, self.reverse)):
            sl = slice(r0, r0 + bs)
            if kernels is not None:
                kernels.lstm_step_backward(self.act[sl], self.c_prev[sl], self.tc[sl], dh[:bs],
                                           dh[:bs] if dout is None else dout[sl],
                                           dout is not None, dc[:bs], dxw[sl], hs)
            else:
                dh_t = dh[:bs] if dout is None else dh[:bs] + dout[sl]
                _, dc_prev = _cell_grads_arrays(self.act[sl], self.c_prev[sl], self.tc[sl],
                                                dh_t, dc[:bs], out=dxw[sl])
                dc[:bs] = dc_prev
            xp.matmul(dxw[sl], w, out=dh[:bs])
        dwhh = dxw.T @ self.h_prev
        return (_make(dxw, None, 0), _make(dh.astype(h0._data.dtype, copy=False), None, 0),
                _make(dc.astype(c0._data.dtype, copy=False), None, 0),
                _make(dwhh.astype(w.dtype, copy=False), None, 0))

    def _release_extra(self):
        self.act = self.tc = self.c_prev = self.h_prev = None


def _backward_through_ops(op, steps_as_ops, grads_out):
    """A layer op's backward under create_graph: its forward run again as differentiable ops
    on the saved inputs, and their gradients taken with a graph."""
    from ..autograd import grad
    inputs = op.saved_tensors
    extra = (op.nonlinearity,) if hasattr(op, "nonlinearity") else ()
    with enable_grad():
        outs = steps_as_ops(*inputs, op.steps, op.reverse, *extra)
    pairs = [(o, g) for o, g in zip(outs, grads_out) if g is not None]
    wanted = [t for t in inputs if t._requires_grad]
    grads = iter(grad([o for o, _ in pairs], wanted, [g for _, g in pairs], create_graph=True,
                      allow_unused=True))
    return tuple(next(grads) if t._requires_grad else None for t in inputs)


def _lstm_layer_ops(xw, h0, c0, whh, steps, reverse):
    """LstmLayer's forward written with differentiable ops, a step at a time."""
    h, c = h0, c0
    whh_t = whh.t()
    outs = [None] * len(steps)
    for t, (r0, bs) in zip(range(len(steps) - 1, -1, -1) if reverse else range(len(steps)),
                           _step_rows(steps, reverse)):
        h_t, c_t = lstm_cell(xw[r0:r0 + bs] + h[:bs].matmul(whh_t), c[:bs])
        outs[t] = h_t
        h = h_t if bs == h.shape[0] else cat([h_t, h[bs:]])
        c = c_t if bs == c.shape[0] else cat([c_t, c[bs:]])
    return (cat(outs) if len(outs) > 1 else outs[0]), h, c


def _check_layer(name, xw, h0, c0, whh, steps, gates: int) -> tuple:
    """The steps as a tuple of ints, after checking the layer op's shapes."""
    steps = tuple(int(b) for b in steps)
    hs = h0.shape[1]
    if xw.ndim != 2 or xw.shape[1] != gates * hs or xw.shape[0] != sum(steps) or \
            tuple(c0.shape) != tuple(h0.shape) or tuple(whh.shape) != (gates * hs, hs) or \
            not steps or steps[0] != h0.shape[0]:
        raise RuntimeError(f"{name}: inputs of {xw.shape[0]} rows x {xw.shape[1]}, states "
                           f"{tuple(h0.shape)}, W_hh {tuple(whh.shape)} and steps {steps} do "
                           f"not fit")
    if any(later > earlier for earlier, later in zip(steps, steps[1:])):
        raise RuntimeError(f"{name}: the steps' batch sizes must not increase, got {steps}")
    return steps


def lstm_layer(xw: Tensor, h0: Tensor, c0: Tensor, whh: Tensor, steps, reverse: bool = False
               ) -> tuple[Tensor, Tensor, Tensor]:
    """One direction of an LSTM layer over packed rows (see LstmLayer): (out rows, h_n, c_n)."""
    steps = _check_layer("lstm_layer", xw, h0, c0, whh, steps, 4)
    return LstmLayer.apply(xw, h0, c0, whh, steps=steps, reverse=bool(reverse))

class GruLayer(Op):
    """(xw rows (R, 3H), h0 (B, H), w_hh (3H, H), b_hh (3H,)) -> (out rows (R, H), h_n): one
    direction of a GRU layer over packed rows, as LstmLayer (PyTorch's gate order r, z, n;
    xw holds the input products with b_ih, b_hh stays inside r * (W_hn h + b_hn))."""

    n_out = 2
    save_inputs = (0, 1, 2, 3)

    def forward(self, xw, h0, whh, bhh):
        xp = xp_of(xw)
        hs = h0.shape[1]
        rows = xw.shape[0]
        kernels = _float32_kernels(xw)
        if kernels is not None:
            xw = np.ascontiguousarray(xw)
        h = h0.astype(xw.dtype, copy=True)
        whh_t = xp.ascontiguousarray(whh.T)
        out = xp.empty((rows, hs), xw.dtype)
        gates = xp.empty((rows, 3 * hs), xw.dtype)
        ghn = xp.empty((rows, hs), xw.dtype)
        h_prev = xp.empty((rows, hs), xw.dtype)
        gh = xp.empty((h0.shape[0], 3 * hs), xw.dtype)
        for r0, bs in _step_rows(self.steps, self.reverse):
            sl = slice(r0, r0 + bs)
            h_prev[sl] = h[:bs]
            g = gh[:bs]
            xp.matmul(h[:bs], whh_t, out=g)
            g += bhh
            ghn[sl] = g[:, 2 * hs:]
            if kernels is not None:
                kernels.gru_step_forward(g, xw[sl], h[:bs], gates[sl], out[sl], hs)
            else:
                a = gates[sl]
                xp.add(xw[sl], g, out=a)
                _activate(a[:, :2 * hs], hs, xp, only_sigmoid=True)
                r, z, n = a[:, :hs], a[:, hs:2 * hs], a[:, 2 * hs:]
                xp.multiply(r, g[:, 2 * hs:], out=n)
                n += xw[sl][:, 2 * hs:]
                xp.tanh(n, out=n)
                o = out[sl]
                xp.subtract(h[:bs], n, out=o)
                o *= z
                o += n
            h[:bs] = out[sl]
        self.gates, self.ghn, self.h_prev = gates, ghn, h_prev
        return out, h

    def backward(self, d_out, d_hn):
        if _State.grad_enabled:
            return _backward_through_ops(self, _gru_layer_ops, (d_out, d_hn))
        xw, h0, whh, bhh = self.saved_tensors
        w = whh._data
        xp = xp_of(w)
        hs = h0.shape[1]
        dtype = self.gates.dtype
        dh = _state_grad(d_hn, h0.shape, dtype, xp)
        kernels = _float32_kernels(self.gates)
        dout = _output_grad(d_out, kernels, dtype)
        dxw = xp.empty(self.gates.shape, dtype)
        dgh = xp.empty(self.gates.shape, dtype)
        dhz = xp.empty(h0.shape, dtype)
        for r0, bs in reversed(_step_rows(self.steps, self.reverse)):
            sl = slice(r0, r0 + bs)
            if kernels is not None:
                kernels.gru_step_backward(self.gates[sl], self.ghn[sl], self.h_prev[sl],
                                          dh[:bs], dh[:bs] if dout is None else dout[sl],
                                          dout is not None, dxw[sl], dgh[sl], dhz[:bs], hs)
            else:
                _gru_step_grads(self.gates[sl], self.ghn[sl], self.h_prev[sl],
                                dh[:bs] if dout is None else dh[:bs] + dout[sl],
                                dxw[sl], dgh[sl], dhz[:bs], xp)
            xp.matmul(dgh[sl], w, out=dh[:bs])
            dh[:bs] += dhz[:bs]
        dwhh = dgh.T @ self.h_prev
        return (_make(dxw, None, 0), _make(dh.astype(h0._data.dtype, copy=False), None, 0),
                _make(dwhh.astype(w.dtype, copy=False), None, 0),
                _make(dgh.sum(0).astype(bhh._data.dtype, copy=False), None, 0))

    def _release_extra(self):
        self.gates = self.ghn = self.h_prev = None


def _gru_step_grads(gates, ghn, h_prev, dh, dxw, dgh, dhz, xp):
    """gru_step_backward on arrays (dh already holds dout's share)."""
    hs = ghn.shape[1]
    r, z, n = gates[:, :hs], gates[:, hs:2 * hs], gates[:, 2 * hs:]
    dxr, dxz, dxn = dxw[:, :hs], dxw[:, hs:2 * hs], dxw[:, 2 * hs:]
    xp.multiply(dh, 1 - z, out=dxn)
    dxn *= 1 - n * n
    xp.multiply(dxn, ghn, out=dxr)
    dxr *= r * (1 - r)
    xp.subtract(h_prev, n, out=dxz)
    dxz *= dh
    dxz *= z * (1 - z)
    dgh[:, :2 * hs] = dxw[:, :2 * hs]
    xp.multiply(dxn, r, out=dgh[:, 2 * hs:])
    xp.multiply(dh, z, out=dhz)


def _gru_layer_ops(xw, h0, whh, bhh, steps, reverse):
    """GruLayer's forward written with differentiable ops, a step at a time."""
    hs = h0.shape[1]
    h = h0
    whh_t = whh.t()
    outs = [None] * len(steps)
    for t, (r0, bs) in zip(range(len(steps) - 1, -1, -1) if reverse else range(len(steps)),
                           _step_rows(steps, reverse)):
        x = xw[r0:r0 + bs]
        hp = h[:bs]
        gh = hp.matmul(whh_t) + bhh
        r = (x[:, :hs] + gh[:, :hs]).sigmoid()
        z = (x[:, hs:2 * hs] + gh[:, hs:2 * hs]).sigmoid()
        n = (x[:, 2 * hs:] + r * gh[:, 2 * hs:]).tanh()
        h_t = n + z * (hp - n)
        outs[t] = h_t
        h = h_t if bs == h.shape[0] else cat([h_t, h[bs:]])
    return (cat(outs) if len(outs) > 1 else outs[0]), h


def gru_layer(xw: Tensor, h0: Tensor, whh: Tensor, bhh: Tensor, steps, reverse: bool = False
              ) -> tuple[Tensor, Tensor]:
    """One direction of a GRU layer over packed rows (see GruLayer): (out rows, h_n)."""
    steps = _check_layer("gru_layer", xw, h0, h0, whh, steps, 3)
    if tuple(bhh.shape) != (whh.shape[0],):
        raise RuntimeError(f"gru_layer: b_hh of shape {tuple(bhh.shape)} does not fit W_hh "
                           f"{tuple(whh.shape)}")
    return GruLayer.apply(xw, h0, whh, bhh, steps=steps, reverse=bool(reverse))


class RnnLayer(Op):
    """(xw rows (R, H), h0 (B, H), w_hh (H, H)) -> (out rows (R, H), h_n): one direction of
    an Elman RNN layer, h' = act(xw + h @ W_hh^T) with act tanh or relu (`nonlinearity`),
    over packed rows as LstmLayer (xw holds the input products with both biases)."""

    n_out = 2
    save_inputs = (0, 1, 2)

    def forward(self, xw, h0, whh):
        xp = xp_of(xw)
        hs = h0.shape[1]
        h = h0.astype(xw.dtype, copy=True)
        whh_t = xp.ascontiguousarray(whh.T)
        out = xp.empty((xw.shape[0], hs), xw.dtype)
        h_prev = xp.empty_like(out)
        for r0, bs in _step_rows(self.steps, self.reverse):
            sl = slice(r0, r0 + bs)
            h_prev[sl] = h[:bs]
            a = out[sl]
            xp.matmul(h[:bs], whh_t, out=a)
            a += xw[sl]
            if self.nonlinearity == "tanh":
                xp.tanh(a, out=a)
            else:
                xp.maximum(a, 0, out=a)
            h[:bs] = a
        self.out, self.h_prev = out, h_prev
        return out, h

    def backward(self, d_out, d_hn):
        if _State.grad_enabled:
            return _backward_through_ops(self, _rnn_layer_ops, (d_out, d_hn))
        xw, h0, whh = self.saved_tensors
        w = whh._data
        xp = xp_of(w)
        dtype = self.out.dtype
        dh = _state_grad(d_hn, h0.shape, dtype, xp)
        dout = _output_grad(d_out, None, dtype)
        dxw = xp.empty(self.out.shape, dtype)
        for r0, bs in reversed(_step_rows(self.steps, self.reverse)):
            sl = slice(r0, r0 + bs)
            d = dxw[sl]
            if dout is None:
                d[...] = dh[:bs]
            else:
                xp.add(dh[:bs], dout[sl], out=d)
            y = self.out[sl]
            if self.nonlinearity == "tanh":
                d *= 1 - y * y
            else:
                d *= y > 0
            xp.matmul(d, w, out=dh[:bs])
        dwhh = dxw.T @ self.h_prev
        return (_make(dxw, None, 0), _make(dh.astype(h0._data.dtype, copy=False), None, 0),
                _make(dwhh.astype(w.dtype, copy=False), None, 0))

    def _release_extra(self):
        self.out = self.h_prev = None


def _rnn_layer_ops(xw, h0, whh, steps, reverse, nonlinearity):
    """RnnLayer's forward written with differentiable ops, a step at a time."""
    h = h0
    whh_t = whh.t()
    outs = [None] * len(steps)
    for t, (r0, bs) in zip(range(len(steps) - 1, -1, -1) if reverse else range(len(steps)),
                           _step_rows(steps, reverse)):
        pre = xw[r0:r0 + bs] + h[:bs].matmul(whh_t)
        h_t = pre.tanh() if nonlinearity == "tanh" else pre.relu()
        outs[t] = h_t
        h = h_t if bs == h.shape[0] else cat([h_t, h[bs:]])
    return (cat(outs) if len(outs) > 1 else outs[0]), h


def rnn_layer(xw: Tensor, h0: Tensor, whh: Tensor, steps, reverse: bool = False,
              nonlinearity: str = "tanh") -> tuple[Tensor, Tensor]:
    """One direction of an Elman RNN layer over packed rows (see RnnLayer): (out rows, h_n)."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn_layer: unknown nonlinearity {nonlinearity!r}")
    steps = _check_layer("rnn_layer", xw, h0, h0, whh, steps, 1)
    return RnnLayer.apply(xw, h0, whh, steps=steps, reverse=bool(reverse),
                          nonlinearity=nonlinearity)
