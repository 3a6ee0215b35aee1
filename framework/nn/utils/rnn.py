"""Variable-length sequences for the recurrent layers (torch.nn.utils.rnn): PackedSequence,
pack_padded_sequence, pad_packed_sequence, pad_sequence, pack_sequence, unpad/unpack."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..._backend import xp_of
from ..._tensor import Tensor

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence",
           "pad_packed_sequence", "pad_sequence", "unpad_sequence", "pack_sequence",
           "unpack_sequence"]


def _cpu_int64(values) -> np.ndarray:
    if isinstance(values, Tensor):
        arr = values._data if isinstance(values._data, (np.ndarray, np.generic)) \
            else values._data.get()
    else:
        arr = values
    return np.asarray(arr, dtype=np.int64).reshape(-1)


def _long_tensor(arr, device=None) -> Tensor:
    t = Tensor._make(np.ascontiguousarray(arr, dtype=np.int64), None, 0)
    return t.to(device) if device is not None and str(device) != "cpu" else t


class PackedSequence(namedtuple("PackedSequence",
                                ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """Sequences of different lengths packed time-major: `data` holds, for each time step t,
    the rows of the `batch_sizes[t]` sequences still running (sorted longest first).
    `sorted_indices` maps that order to the caller's batch order; `unsorted_indices` back."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            raise ValueError("PackedSequence needs batch_sizes; build one with "
                             "pack_padded_sequence or pack_sequence")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _map_data(self, fn):
        return type(self)(fn(self.data), self.batch_sizes, self.sorted_indices,
                          self.unsorted_indices)

    def to(self, *args, **kwargs):
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        dev = data.device
        si = self.sorted_indices.to(dev) if self.sorted_indices is not None else None
        ui = self.unsorted_indices.to(dev) if self.unsorted_indices is not None else None
        return type(self)(data, self.batch_sizes, si, ui)

    def cuda(self, *args, **kwargs):
        return self.to("cuda")

    def cpu(self, *args, **kwargs):
        return self.to("cpu")

    def double(self):
        return self._map_data(lambda d: d.double())

    def float(self):
        return self._map_data(lambda d: d.float())

    def half(self):
        return self._map_data(lambda d: d.half())

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return False


def invert_permutation(permutation):
    if permutation is None:
        return None
    p = permutation._data
    xp = xp_of(p)
    out = xp.empty_like(p)
    out[p] = xp.arange(p.shape[0], dtype=p.dtype)
    return Tensor._make(out, None, 0)


def _packed_order_index(lengths_sorted: np.ndarray, total_time: int):
    """For lengths sorted descending: (batch_sizes, mask[T, B]) of the packed layout."""
    t = np.arange(total_time)[:, None]
    mask = t < lengths_sorted[None, :]
    return mask.sum(axis=1).astype(np.int64), mask


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded (T, B, *) batch (or (B, T, *) with batch_first) of sequences with the
    given lengths. With enforce_sorted=False the batch is sorted by length here and the
    permutation is kept in the result."""
    lengths = _cpu_int64(lengths)
    batch_dim = 0 if batch_first else 1
    if lengths.shape[0] != input.shape[batch_dim]:
        raise ValueError(f"Expected `len(lengths)` to be equal to batch_size, but got "
                         f"{lengths.shape[0]} (batch_size={input.shape[batch_dim]})")
    if enforce_sorted:
        if np.any(lengths[:-1] < lengths[1:]):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when "
                               "`enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                               "pack_padded_sequence and/or pack_sequence to sidestep this "
                               "requirement if you do not need ONNX exportability.")
        sorted_indices = None
    else:
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        sorted_indices = _long_tensor(order, input.device)
        input = input.index_select(batch_dim, sorted_indices)
    if lengths.size and lengths[-1] <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element "
                           "in 'lengths' that is <= 0")
    if batch_first:
        input = input.transpose(0, 1)
    max_len = int(lengths[0]) if lengths.size else 0
    if max_len > input.shape[0]:
        raise RuntimeError(f"a length ({max_len}) exceeds the padded sequence length "
                           f"({input.shape[0]})")
    batch_sizes, mask = _packed_order_index(lengths, max_len)
    # the rows of input[:max_len] where t < length, in (t, b) order: the packed layout
    flat_index = np.nonzero(mask.reshape(-1))[0]
    steps = input[:max_len] if max_len != input.shape[0] else input
    flat = steps.reshape(max_len * steps.shape[1], *steps.shape[2:])
    data = flat[_long_tensor(flat_index, input.device)]
    return PackedSequence(data, _long_tensor(batch_sizes), sorted_indices,
                          invert_permutation(sorted_indices))


def _lengths_from_batch_sizes(batch_sizes: np.ndarray) -> np.ndarray:
    b = int(batch_sizes[0])
    return (batch_sizes[None, :] > np.arange(b)[:, None]).sum(axis=1).astype(np.int64)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length=None):
    """Inverse of pack_padded_sequence: (padded (T, B, *) or (B, T, *), lengths)."""
    data, batch_sizes = sequence.data, _cpu_int64(sequence.batch_sizes)
    max_len = batch_sizes.shape[0]
    if total_length is not None:
        if total_length < max_len:
            raise ValueError("Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max "
                             f"sequence length being {max_len}")
        max_len = total_length
    b = int(batch_sizes[0])
    n = data.shape[0]
    # index[t, b] = row of data for (t, b), or n (a padding row) past the sequence's end
    bs_full = np.zeros(max_len, dtype=np.int64)
    bs_full[:len(batch_sizes)] = batch_sizes
    mask = np.arange(b)[None, :] < bs_full[:, None]
    index = np.full((max_len, b), n, dtype=np.int64)
    index[mask] = np.arange(n)
    from ...ops.shape import cat
    pad_row = data.new_full((1, *data.shape[1:]), padding_value)
    padded = cat([data, pad_row])[_long_tensor(index, data.device)]
    lengths = _lengths_from_batch_sizes(batch_sizes)
    if sequence.unsorted_indices is not None:
        ui = sequence.unsorted_indices
        padded = padded.index_select(1, ui)
        lengths = lengths[_cpu_int64(ui)]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, _long_tensor(lengths)


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack tensors of shape (L_i, *) into (max L, B, *) (or (B, max L, *)), padded."""
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got "
                         f"{padding_side}.")
    lengths = np.array([s.shape[0] for s in sequences], dtype=np.int64)
    max_len = int(lengths.max())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n = int(lengths.sum())
    t = np.arange(max_len)[None, :]
    if padding_side == "right":
        valid = t < lengths[:, None]
        index = np.where(valid, starts[:, None] + t, n)
    else:
        offset = max_len - lengths[:, None]
        valid = t >= offset
        index = np.where(valid, starts[:, None] + t - offset, n)
    from ...ops.shape import cat
    ref = sequences[0]
    pad_row = ref.new_full((1, *ref.shape[1:]), padding_value)
    out = cat(list(sequences) + [pad_row])[_long_tensor(index, ref.device)]  # (B, T, *)
    return out if batch_first else out.transpose(0, 1)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False):
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [seq[:int(n)] for seq, n in zip(padded_sequences.unbind(0), _cpu_int64(lengths))]


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence):
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
