"""scaled_dot_product_attention: softmax(q k^T * scale + mask) v, built from matmul and
softmax (so it is differentiable to any order), with boolean or additive masks, causal
masking, dropout and grouped-query attention."""
from __future__ import annotations

import math

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ._bfloat16 import bfloat16_in_float32
from ._functional_registry import register_functional
from ..amp import _AutocastState, autocast_op

_make = Tensor._make
_AUTOCAST = _AutocastState.enabled


@register_functional("scaled_dot_product_attention")
@bfloat16_in_float32("query", "key", "value", "attn_mask")
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False) -> Tensor:
    """query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev).

    attn_mask: bool (True = take part in attention) or float (added to the scores),
    broadcastable to (..., L, S). is_causal masks out key positions after each query's. Rows
    whose every position is masked give zeros (as PyTorch's math kernel)."""
    if _AUTOCAST["cuda"] or _AUTOCAST["cpu"]:
        out = autocast_op("scaled_dot_product_attention", scaled_dot_product_attention, query,
                          key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
        if out is not None:
            return out
    from .dropout import dropout
    from .reduction import softmax
    if query._data.ndim < 2 or key._data.ndim < 2 or value._data.ndim < 2:
        raise RuntimeError("scaled_dot_product_attention: query, key and value must have at "
                           "least 2 dims")
    L, E = query._data.shape[-2:]
    S = key._data.shape[-2]
    if key._data.shape[-1] != E:
        raise RuntimeError(f"scaled_dot_product_attention: query {list(query.shape)} and key "
                           f"{list(key.shape)} must have the same embedding dim")
    if value._data.shape[-2] != S:
        raise RuntimeError(f"scaled_dot_product_attention: key {list(key.shape)} and value "
                           f"{list(value.shape)} must have the same sequence length")
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set "
                           "when is_causal=True")
    if enable_gqa and query._data.ndim >= 3:
        hq, hk = query._data.shape[-3], key._data.shape[-3]
        if hq != hk:
            if hq % hk:
                raise RuntimeError(f"scaled_dot_product_attention: number of query heads {hq} "
                                   f"must be a multiple of the key heads {hk}")
            rep = hq // hk
            key = key.repeat_interleave(rep, dim=-3)
            value = value.repeat_interleave(rep, dim=-3)
    s = 1.0 / math.sqrt(E) if scale is None else float(scale)
    scores = query.matmul(key.transpose(-2, -1)) * s
    xp = xp_of(scores._data)
    blocked = None  # bool array: True where a position is masked out
    if is_causal:
        blocked = ~xp.tril(xp.ones((L, S), dtype=bool))
    if attn_mask is not None:
        if attn_mask._data.dtype.kind == "b":
            blocked = ~attn_mask._data
        else:
            scores = scores + attn_mask.to(dtype=scores.dtype)
    if blocked is not None:
        fill = _make(xp.asarray(-np.inf, dtype=scores._data.dtype), None, 0)
        from .elementwise import where
        scores = where(_make(blocked, None, 0), fill, scores)
    # rows with no position left: softmax over all -inf gives nan; PyTorch returns zeros
    row_max = scores._data.max(axis=-1, keepdims=True)
    dead = ~xp.isfinite(row_max) & (row_max < 0)
    if bool(dead.any()):
        from .elementwise import where
        scores = where(_make(dead, None, 0), 0.0, scores)
        attn = softmax(scores, -1) * _make((~dead).astype(scores._data.dtype), None, 0)
    else:
        attn = softmax(scores, -1)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, True)
    return attn.matmul(value)


__all__ = ["scaled_dot_product_attention"]
