"""Pooling a sequence of hidden states (N, L, D) into one vector per sample over its real
tokens (mask (N, L), True = real), and L2 normalisation for sentence embeddings."""
from __future__ import annotations

import framework as fw
import framework.nn.functional as F

__all__ = ["POOLINGS", "masked_mean", "masked_max", "pool", "l2_normalize"]

POOLINGS = ("mean", "cls", "max")


def masked_mean(hidden, mask):
    """Mean of the real tokens' vectors (sentence-transformers' mean pooling: the sum over
    real tokens divided by their count, the count clamped at 1e-9)."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)


def masked_max(hidden, mask):
    """Elementwise maximum over the real tokens (padding set to -inf first); a sample with
    no real token pools to zeros."""
    keep = mask.unsqueeze(-1)
    out = hidden.masked_fill(~keep, float("-inf")).amax(1)
    return fw.where(keep.any(1), out, fw.zeros_like(out))


def pool(hidden, mask, how: str):
    """`how` = "mean" | "max" over the real tokens, or "cls": the first position's vector."""
    if how == "mean":
        return masked_mean(hidden, mask)
    if how == "max":
        return masked_max(hidden, mask)
    if how == "cls":
        return hidden[:, 0]
    raise ValueError(f"unknown pooling {how!r}; choose one of {', '.join(POOLINGS)}")


def l2_normalize(x, eps: float = 1e-12):
    """x / max(||x||_2, eps) along the last dim."""
    return F.normalize(x, p=2.0, dim=-1, eps=eps)
