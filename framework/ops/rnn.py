"""The LSTM cell's element-wise math as one op: from the gate pre-activations (N, 4H) (PyTorch's
gate order i, f, g, o) and the cell state c (N, H) to the new hidden and cell states,

    c' = sigmoid(f) * c + sigmoid(i) * tanh(g),    h' = sigmoid(o) * tanh(c').

Written as separate ops a step is a split, five activations, three products and a sum each way
(about 25 graph nodes a step); this node does the forward in a few array passes, keeps the
activations for backward and returns the gate and cell gradients in one step. Under
create_graph its backward is written with differentiable ops on the saved inputs, so higher
derivatives work as for the separate ops."""
from __future__ import annotations

from .._tensor import Tensor
from ..autograd.function import Op
from ..autograd.grad_mode import _State
from ._util import xp_of
from .shape import cat

__all__ = ["lstm_cell"]

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


def _cell_grads_arrays(act, c, tc, dh, dc):
    """_cell_grads on arrays in fewer passes: (d gates (N, 4H), d c), or (None, None)."""
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
    dgates = xp.empty_like(act)
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
        hs = c.shape[-1]
        # sigmoid(x) = (tanh(x / 2) + 1) / 2: four passes over the gates where the overflow-
        # safe exp formula takes eight (its error is absolute, half an ulp of 1: a gate of
        # 1e-9 reads 0 in float32, which changes no state by more than that); the g block
        # is then overwritten by its tanh
        act = gates * 0.5
        xp.tanh(act, out=act)
        act *= 0.5
        act += 0.5
        g = act[:, 2 * hs:3 * hs]
        xp.tanh(gates[:, 2 * hs:3 * hs], out=g)
        i, f, o = act[:, :hs], act[:, hs:2 * hs], act[:, 3 * hs:]
        c_new = f * c
        c_new += i * g
        tc = xp.tanh(c_new)
        self.act, self.tc = act, tc
        return o * tc, c_new

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
