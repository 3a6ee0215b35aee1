"""TextCNN (Kim 2014, "Convolutional Neural Networks for Sentence Classification"):
embeddings, one Conv1d per filter width, ReLU, max over time, concatenation, dropout, linear.

Padding never changes a sample's logits: the embeddings of non-real tokens are zeroed, the
sequence is extended on the right with widest-1 zero positions (so texts shorter than the
widest filter still have windows), and the max runs over the windows that start at a real
token (the others are set to -inf). A text with no real token pools to zeros.
"""
from __future__ import annotations

import framework as fw
import framework.nn as nn
import framework.nn.functional as F

from ..registry import register_model
from .inputs import check_token_ids, token_mask

__all__ = ["TextCNN", "textcnn"]


class TextCNN(nn.Module):
    """Kim's CNN for sentence classification over learned embeddings."""

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 128,
                 widths: tuple[int, ...] = (3, 4, 5), channels: int = 100,
                 dropout: float = 0.5, pad_id: int = 0) -> None:
        super().__init__()
        if not widths or min(widths) < 1:
            raise ValueError(f"textcnn: widths must be positive filter widths, got {widths}")
        self.vocab_size = vocab_size
        self.widths = tuple(int(w) for w in widths)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.convs = nn.ModuleList([nn.Conv1d(embed_dim, channels, w) for w in self.widths])
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels * len(self.widths), num_classes)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        check_token_ids(input_ids, self.vocab_size, "textcnn")
        mask = token_mask(input_ids, attention_mask, "textcnn")
        n, length = input_ids.shape
        x = self.embedding(input_ids) * mask.unsqueeze(-1).to(self.embedding.weight.dtype)
        x = F.pad(x.transpose(1, 2), (0, max(self.widths) - 1))       # (N, E, L + wmax - 1)
        blocked = ~mask.unsqueeze(1)                                    # (N, 1, L)
        pooled = []
        for conv in self.convs:
            h = F.relu(conv(x))[:, :, :length]          # windows starting at positions 0..L-1
            # relu >= 0, so clamping at 0 only turns an all-padding row's -inf into 0
            pooled.append(h.masked_fill(blocked, float("-inf")).amax(2).clamp_min(0.0))
        return self.fc(self.dropout(fw.cat(pooled, 1)))


@register_model(domain="text")
def textcnn(*, vocab_size: int = 30522, num_classes: int = 2, embed_dim: int = 128,
            widths: tuple[int, ...] = (3, 4, 5), channels: int = 100, dropout: float = 0.5,
            pad_id: int = 0) -> TextCNN:
    """TextCNN (Kim 2014): Conv1d of widths 3/4/5, ReLU, max over real tokens, linear."""
    return TextCNN(vocab_size, num_classes, embed_dim, widths, channels, dropout, pad_id)
