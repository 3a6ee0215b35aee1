"""Recurrent layers: RNN (tanh/relu), LSTM (with optional projections), GRU and their cells.

Parameter names, shapes, gate orders (LSTM i, f, g, o; GRU r, z, n) and initialisation are
PyTorch's, so state dicts move between the two. The input projection of all time steps is
one matrix product; then each direction of a float32/float64 layer runs as one autograd node
(framework/ops/rnn.py: the steps on arrays, W_hh's gradient as one product over all steps).
LSTM layers with projections and float16/bfloat16 layers (autocast) run a step at a time with
differentiable ops: a (batch x hidden) product plus the gate math. Packed sequences run with a
batch that shrinks as sequences end, as cuDNN does, so the final states are taken at each
sequence's end.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ..._tensor import Tensor
from ...creation import empty, zeros
from ...ops.rnn import gru_layer, lstm_cell, lstm_layer, rnn_layer
from ...ops.shape import cat, stack
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ..utils.rnn import PackedSequence
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


def _linear(x: Tensor, w: Tensor, b):
    return F.linear(x, w, b)


def _split(x: Tensor, sizes, dim: int):
    if len(sizes) == 1:
        return (x,)
    return x.split(list(sizes), dim)


# ---------------------------------------------------------------------- cell step functions
# `xw` is the input projection of this step (bias included), `whh_t` the transposed
# hidden-to-hidden weight. Each returns the new state(s).
def _rnn_tanh_step(xw, h, whh_t, bhh):
    pre = xw + h.matmul(whh_t)
    if bhh is not None:
        pre = pre + bhh
    return pre.tanh()


def _rnn_relu_step(xw, h, whh_t, bhh):
    pre = xw + h.matmul(whh_t)
    if bhh is not None:
        pre = pre + bhh
    return pre.relu()


def _fused_dtypes(*tensors) -> bool:
    """Whether the fused recurrent ops serve: float32 or float64 throughout (float16/bfloat16,
    under autocast, go through separate ops, each with its own precision rules)."""
    dtype = tensors[0]._data.dtype
    return dtype.char in "fd" and all(t._data.dtype == dtype for t in tensors)


def _lstm_step(xw, h, c, whh_t, bhh, hidden_size):
    gates = xw + h.matmul(whh_t)
    if bhh is not None:
        gates = gates + bhh
    if _fused_dtypes(gates, c):
        return lstm_cell(gates, c)  # one node (see framework/ops/rnn.py)
    i, f, g, o = _split(gates, [hidden_size] * 4, 1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    h = o.sigmoid() * c.tanh()
    return h, c


def _gru_step(xw, h, whh_t, bhh, hidden_size):
    gh = h.matmul(whh_t)
    if bhh is not None:
        gh = gh + bhh
    i_r, i_z, i_n = _split(xw, [hidden_size] * 3, 1)
    h_r, h_z, h_n = _split(gh, [hidden_size] * 3, 1)
    r = (i_r + h_r).sigmoid()
    z = (i_z + h_z).sigmoid()
    n = (i_n + r * h_n).tanh()
    return n + z * (h - n)


class RNNBase(Module):
    """Shared machinery of RNN, LSTM and GRU: parameters, checks and the layer/direction loop."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or \
                not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=2)
        if not isinstance(bias, bool):
            raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first should be of type bool, got: "
                            f"{type(batch_first).__name__}")
        if not isinstance(input_size, int) or input_size <= 0:
            raise ValueError("input_size must be an integer greater than zero")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError("hidden_size must be an integer greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        gate_size = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}.get(mode)
        if gate_size is None:
            raise ValueError("Unrecognized RNN mode: " + mode)
        gate_size *= hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input = input_size if layer == 0 else real_hidden * num_directions
                suffix = "_reverse" if direction == 1 else ""
                params = [("weight_ih_l{}{}", (gate_size, layer_input)),
                          ("weight_hh_l{}{}", (gate_size, real_hidden))]
                if bias:
                    params += [("bias_ih_l{}{}", (gate_size,)), ("bias_hh_l{}{}", (gate_size,))]
                if proj_size > 0:
                    params += [("weight_hr_l{}{}", (proj_size, hidden_size))]
                names = []
                for fmt, shape in params:
                    name = fmt.format(layer, suffix)
                    setattr(self, name, Parameter(empty(*shape, **fk)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """No-op (cuDNN weight packing does not exist here)."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ------------------------------------------------------------------ forward
    def _layer_params(self, layer, direction):
        names = self._all_weights[layer * (2 if self.bidirectional else 1) + direction]
        p = {n.split("_l")[0]: getattr(self, n) for n in names}
        return p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"), \
            p.get("weight_hr")

    def _run_direction(self, data, steps, reverse, h0, c0, layer, direction):
        """One direction of one layer over packed rows `data` (time-major, `steps[t]` rows at
        step t). Returns (output rows in data order, final h, final c or None)."""
        w_ih, w_hh, b_ih, b_hh, w_hr = self._layer_params(layer, direction)
        mode = self.mode
        hs = self.hidden_size
        fold_bias = mode != "GRU" and b_ih is not None
        # the input projection of every step in one product (GRU keeps b_hh inside r * (.))
        if fold_bias:
            xw_all = _linear(data, w_ih, b_ih + b_hh)
            bhh = None
        else:
            xw_all = _linear(data, w_ih, b_ih)
            bhh = b_hh
        # one node per direction (framework/ops/rnn.py)
        if mode == "LSTM" and w_hr is None and _fused_dtypes(xw_all, h0, c0, w_hh):
            return lstm_layer(xw_all, h0, c0, w_hh, steps, reverse)
        if mode == "GRU" and _fused_dtypes(xw_all, h0, w_hh):
            if bhh is None:
                bhh = zeros(w_hh.shape[0], dtype=w_hh.dtype, device=w_hh.device)
            out, h = gru_layer(xw_all, h0, w_hh, bhh, steps, reverse)
            return out, h, None
        if mode in ("RNN_TANH", "RNN_RELU") and _fused_dtypes(xw_all, h0, w_hh):
            out, h = rnn_layer(xw_all, h0, w_hh, steps, reverse,
                               "tanh" if mode == "RNN_TANH" else "relu")
            return out, h, None
        xws = _split(xw_all, steps, 0)
        whh_t = w_hh.t()
        whr_t = w_hr.t() if w_hr is not None else None
        n_steps = len(steps)
        order = range(n_steps - 1, -1, -1) if reverse else range(n_steps)
        outs = [None] * n_steps
        full_b = h0.shape[0]
        lstm = mode == "LSTM"
        if not reverse:
            h, c = h0, c0
            cur = full_b
            done_h, done_c = [], []
        else:
            cur = steps[-1]
            h = h0[:cur] if cur != full_b else h0
            c = (c0[:cur] if cur != full_b else c0) if lstm else None
        for t in order:
            bs = steps[t]
            if bs != cur:
                if not reverse:  # sequences cur-1 .. bs ended: keep their final states
                    done_h.append(h[bs:cur])
                    h = h[:bs]
                    if lstm:
                        done_c.append(c[bs:cur])
                        c = c[:bs]
                else:  # sequences cur .. bs-1 start here, from their initial states
                    h = cat([h, h0[cur:bs]])
                    if lstm:
                        c = cat([c, c0[cur:bs]])
                cur = bs
            xw = xws[t]
            if lstm:
                h, c = _lstm_step(xw, h, c, whh_t, bhh, hs)
                if whr_t is not None:
                    h = h.matmul(whr_t)
            elif mode == "GRU":
                h = _gru_step(xw, h, whh_t, bhh, hs)
            elif mode == "RNN_TANH":
                h = _rnn_tanh_step(xw, h, whh_t, bhh)
            else:
                h = _rnn_relu_step(xw, h, whh_t, bhh)
            outs[t] = h
        out = cat(outs, 0) if n_steps > 1 else outs[0]
        if not reverse and done_h:
            h = cat([h] + done_h[::-1])
            if lstm:
                c = cat([c] + done_c[::-1])
        return out, h, c

    def _check_forward_args(self, data, hx, batch_sizes_given, mini_batch):
        expected_dim = 2 if batch_sizes_given else 3
        if data.dim() != expected_dim:
            raise RuntimeError(f"input must have {expected_dim} dimensions, got {data.dim()}")
        if data.size(-1) != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {data.size(-1)}")
        w = getattr(self, self._flat_weights_names[0])
        if data.dtype != w.dtype:
            raise ValueError(f"RNN input dtype ({data.dtype}) does not match weight dtype "
                             f"({w.dtype}). Convert input: input.to({w.dtype}), or convert "
                             f"model: model.to({data.dtype})")

    def _expected_hidden(self, mini_batch, size):
        return (self.num_layers * (2 if self.bidirectional else 1), mini_batch, size)

    def _check_hidden(self, hx, expected, msg="Expected hidden size {}, got {}"):
        if tuple(hx.shape) != tuple(expected):
            raise RuntimeError(msg.format(tuple(expected), list(hx.shape)))

    def forward(self, input, hx=None):
        lstm = self.mode == "LSTM"
        D = 2 if self.bidirectional else 1
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes, sorted_indices, unsorted_indices = input
            steps = [int(b) for b in np.asarray(batch_sizes._data if isinstance(
                batch_sizes, Tensor) else batch_sizes).reshape(-1)]
            B = steps[0]
            batched = True
            self._check_forward_args(data, hx, True, B)
        else:
            sorted_indices = unsorted_indices = None
            batched = input.dim() == 3
            if input.dim() not in (2, 3):
                raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got "
                                 f"{input.dim()}D instead")
            if not batched:
                input = input.unsqueeze(1)
                if hx is not None:
                    if lstm:
                        hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
                    else:
                        if hx.dim() != 2:
                            raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D "
                                               f"but got {hx.dim()}-D tensor")
                        hx = hx.unsqueeze(1)
            elif self.batch_first:
                input = input.transpose(0, 1)
            self._check_forward_args(input, hx, False, None)
            T, B = input.shape[0], input.shape[1]
            steps = [B] * T
            data = input.reshape(T * B, input.shape[2])
        if hx is None:
            h0 = zeros(*self._expected_hidden(B, real_hidden), dtype=data.dtype,
                       device=data.device)
            c0 = zeros(*self._expected_hidden(B, self.hidden_size), dtype=data.dtype,
                       device=data.device) if lstm else None
        else:
            if lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise RuntimeError("LSTM expects hx as a tuple (h_0, c_0)")
                h0, c0 = hx
            else:
                h0, c0 = hx, None
            if sorted_indices is not None:  # caller's batch order -> packed (sorted) order
                h0 = h0.index_select(1, sorted_indices)
                c0 = c0.index_select(1, sorted_indices) if c0 is not None else None
            self._check_hidden(h0, self._expected_hidden(B, real_hidden))
            if c0 is not None:
                self._check_hidden(c0, self._expected_hidden(B, self.hidden_size),
                                   "Expected hidden[1] size {}, got {}")
        h_n, c_n = [], []
        x = data
        for layer in range(self.num_layers):
            outs = []
            for direction in range(D):
                k = layer * D + direction
                out, h, c = self._run_direction(x, steps, direction == 1, h0[k],
                                                c0[k] if lstm else None, layer, direction)
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = outs[0] if D == 1 else cat(outs, 1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        h_n = stack(h_n, 0)
        c_n = stack(c_n, 0) if lstm else None
        if unsorted_indices is not None:  # back to the caller's batch order
            h_n = h_n.index_select(1, unsorted_indices)
            if lstm:
                c_n = c_n.index_select(1, unsorted_indices)
        if packed:
            output = PackedSequence(x, batch_sizes, sorted_indices, unsorted_indices)
        else:
            output = x.reshape(len(steps), B, x.shape[1])
            if not batched:
                output = output.squeeze(1)
                h_n = h_n.squeeze(1)
                if lstm:
                    c_n = c_n.squeeze(1)
            elif self.batch_first:
                output = output.transpose(0, 1)
        return output, ((h_n, c_n) if lstm else h_n)


class RNN(RNNBase):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act tanh or relu.

    RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None)
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(mode, *args, **kwargs)


class LSTM(RNNBase):
    """LSTM with PyTorch's gate order (i, f, g, o) and optional output projection (proj_size).

    forward(input, (h_0, c_0)=None) -> output, (h_n, c_n)
    """

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """GRU with PyTorch's gate order (r, z, n): n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
    h' = (1 - z) * n + z * h."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


# ---------------------------------------------------------------------- cells
class RNNCellBase(Module):
    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None) -> None:
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(empty(num_chunks * hidden_size, input_size, **fk))
        self.weight_hh = Parameter(empty(num_chunks * hidden_size, hidden_size, **fk))
        if bias:
            self.bias_ih = Parameter(empty(num_chunks * hidden_size, **fk))
            self.bias_hh = Parameter(empty(num_chunks * hidden_size, **fk))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nl = self.__dict__.get("nonlinearity")
        if nl is not None and nl != "tanh":
            s += f", nonlinearity={nl}"
        return s

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _plus_bias_hh(self, xw):
        """The input product with b_hh added too (the layer ops take one bias there)."""
        return xw if self.bias_hh is None else xw + self.bias_hh

    def _prepare(self, input, hx, n_states):
        if input.dim() not in (1, 2):
            raise ValueError(f"{type(self).__name__}: Expected input to be 1D or 2D, got "
                             f"{input.dim()}D instead")
        if input.size(-1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.size(-1)} "
                               f"expected {self.input_size}")
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
        if hx is None:
            z = zeros(input.shape[0], self.hidden_size, dtype=input.dtype, device=input.device)
            hx = z if n_states == 1 else (z, z)
        elif not batched:
            hx = hx.unsqueeze(0) if n_states == 1 else (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        return input, hx, batched


class RNNCell(RNNCellBase):
    """One Elman RNN step: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        input, hx, batched = self._prepare(input, hx, 1)
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        # two linears with their biases, as PyTorch's rnn_*_cell: under autocast both run in
        # the low precision, so the cell's output stays there. (Three nodes: as a one-step
        # rnn_layer it measured slower.)
        pre = _linear(input, self.weight_ih, self.bias_ih) + \
            _linear(hx, self.weight_hh, self.bias_hh)
        h = pre.tanh() if self.nonlinearity == "tanh" else pre.relu()
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step; forward(input, (h, c)=None) -> (h', c')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        input, (h, c), batched = self._prepare(input, hx, 2)
        xw = _linear(input, self.weight_ih, self.bias_ih)
        if _fused_dtypes(xw, h, c, self.weight_hh):  # a one-step layer (ops/rnn.py)
            _, h, c = lstm_layer(self._plus_bias_hh(xw), h, c, self.weight_hh,
                                 (input.shape[0],))
            return (h, c) if batched else (h.squeeze(0), c.squeeze(0))
        h, c = _lstm_step(xw, h, c, self.weight_hh.t(), self.bias_hh, self.hidden_size)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        input, hx, batched = self._prepare(input, hx, 1)
        xw = _linear(input, self.weight_ih, self.bias_ih)
        if _fused_dtypes(xw, hx, self.weight_hh):  # a one-step layer (ops/rnn.py)
            bhh = self.bias_hh if self.bias_hh is not None else \
                zeros(3 * self.hidden_size, dtype=xw.dtype, device=xw.device)
            _, h = gru_layer(xw, hx, self.weight_hh, bhh, (input.shape[0],))
        else:
            h = _gru_step(xw, hx, self.weight_hh.t(), self.bias_hh, self.hidden_size)
        return h if batched else h.squeeze(0)
