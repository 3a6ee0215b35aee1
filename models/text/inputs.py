"""The checks every text model runs on its inputs: token ids (N, L) of an integer type, each
below the embedding table's size, and the attention mask (1 = real token) as a bool Tensor.

An id past the embedding table is the usual sign of a tokenizer whose vocabulary is larger
than the model's; the error says so with both sizes instead of failing inside the lookup.
"""
from __future__ import annotations

import framework as fw

__all__ = ["check_token_ids", "token_mask"]

_INT_DTYPES = (fw.int64, fw.int32, fw.int16, fw.int8, fw.uint8)


def check_token_ids(input_ids, vocab_size: int, model: str, *, what: str = "input_ids",
                    table: str = "embedding table") -> None:
    """Raise a one-line error unless `input_ids` is an integer (N, L) Tensor with every id in
    [0, vocab_size)."""
    if not isinstance(input_ids, fw.Tensor):
        raise TypeError(f"{model}: {what} must be a framework Tensor of token ids, got "
                        f"{type(input_ids).__name__}")
    if input_ids.dim() != 2:
        raise ValueError(f"{model}: {what} must have shape (N, L), got {tuple(input_ids.shape)}")
    if input_ids.dtype not in _INT_DTYPES:
        raise TypeError(f"{model}: {what} must hold integer token ids, got {input_ids.dtype}")
    if input_ids.numel() == 0:
        return
    hi = int(input_ids.max())
    if hi >= vocab_size:
        raise ValueError(f"{model}: {what} holds id {hi} (a vocabulary of at least {hi + 1}) "
                         f"but the {table} has {vocab_size} rows; the tokenizer and the model "
                         f"disagree on the vocabulary size")
    lo = int(input_ids.min())
    if lo < 0:
        raise ValueError(f"{model}: {what} holds the negative id {lo}")


def token_mask(input_ids, attention_mask, model: str):
    """The real-token mask as a bool Tensor of the ids' shape: `attention_mask != 0`, or all
    True when it is None."""
    if attention_mask is None:
        return fw.ones(*input_ids.shape, dtype=fw.bool, device=input_ids.device)
    if not isinstance(attention_mask, fw.Tensor):
        raise TypeError(f"{model}: attention_mask must be a framework Tensor, got "
                        f"{type(attention_mask).__name__}")
    if tuple(attention_mask.shape) != tuple(input_ids.shape):
        raise ValueError(f"{model}: attention_mask has shape {tuple(attention_mask.shape)}, "
                         f"input_ids {tuple(input_ids.shape)}; they must be equal")
    return attention_mask if attention_mask.dtype == fw.bool else attention_mask != 0
