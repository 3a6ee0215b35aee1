"""Bidirectional LSTM / GRU classifiers with additive attention pooling (Bahdanau-style
scores v^T tanh(W h_t + b), as in Yang et al. 2016's word attention).

Variable lengths go through packed sequences, so the backward direction starts at each
text's last real token and padding never changes a sample's logits. Inputs must therefore
be right-padded (the real tokens of a row first); a text with no real token is read as its
first position alone.
"""
from __future__ import annotations

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
from framework.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..registry import register_model
from .inputs import check_token_ids, token_mask

__all__ = ["AdditiveAttention", "RNNAttentionClassifier", "bilstm_attn", "bigru_attn"]


class AdditiveAttention(nn.Module):
    """Attention pooling: scores v^T tanh(W h_t + b), softmax over the real tokens, then the
    weighted sum of the h_t. Returns (pooled (N, D), weights (N, L))."""

    def __init__(self, dim: int, attn_dim: int | None = None) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, attn_dim or dim)
        self.score = nn.Linear(attn_dim or dim, 1, bias=False)

    def forward(self, hidden, mask):
        scores = self.score(fw.tanh(self.proj(hidden))).squeeze(-1)
        weights = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return (weights.unsqueeze(-1) * hidden).sum(1), weights


class RNNAttentionClassifier(nn.Module):
    """Embeddings -> dropout -> bidirectional LSTM/GRU -> additive attention -> dropout ->
    linear."""

    def __init__(self, cell: str, vocab_size: int, num_classes: int, embed_dim: int = 128,
                 hidden: int = 128, layers: int = 1, dropout: float = 0.3,
                 pad_id: int = 0) -> None:
        super().__init__()
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}.get(cell)
        if rnn_cls is None:
            raise ValueError(f"unknown recurrent cell {cell!r}; choose 'lstm' or 'gru'")
        self.cell = cell
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.rnn = rnn_cls(embed_dim, hidden, num_layers=layers, batch_first=True,
                           bidirectional=True, dropout=dropout if layers > 1 else 0.0)
        self.attention = AdditiveAttention(2 * hidden)
        self.fc = nn.Linear(2 * hidden, num_classes)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        name = f"bi{self.cell}_attn"
        check_token_ids(input_ids, self.vocab_size, name)
        mask = token_mask(input_ids, attention_mask, name)
        length = input_ids.shape[1]
        lengths = mask.to(fw.int64).sum(1)
        positions = fw.arange(length, device=input_ids.device).unsqueeze(0)
        if not bool((mask == (positions < lengths.unsqueeze(1))).all()):
            raise ValueError(f"{name}: attention_mask must mark a prefix of each row (right "
                             f"padding); a row has padding before a real token")
        lengths = lengths.clamp_min(1)
        mask = positions < lengths.unsqueeze(1)
        x = self.dropout(self.embedding(input_ids))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=length)
        pooled, _ = self.attention(out, mask)
        return self.fc(self.dropout(pooled))


@register_model(domain="text")
def bilstm_attn(*, vocab_size: int = 30522, num_classes: int = 2, embed_dim: int = 128,
                hidden: int = 128, layers: int = 1, dropout: float = 0.3,
                pad_id: int = 0) -> RNNAttentionClassifier:
    """Bidirectional LSTM with additive attention pooling over the real tokens, then linear."""
    return RNNAttentionClassifier("lstm", vocab_size, num_classes, embed_dim, hidden, layers,
                                  dropout, pad_id)


@register_model(domain="text")
def bigru_attn(*, vocab_size: int = 30522, num_classes: int = 2, embed_dim: int = 128,
               hidden: int = 128, layers: int = 1, dropout: float = 0.3,
               pad_id: int = 0) -> RNNAttentionClassifier:
    """Bidirectional GRU with additive attention pooling over the real tokens, then linear."""
    return RNNAttentionClassifier("gru", vocab_size, num_classes, embed_dim, hidden, layers,
                                  dropout, pad_id)
