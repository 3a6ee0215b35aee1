"""A Transformer encoder classifier trained from scratch: token embeddings plus learned
positions, a pre-norm `nn.TransformerEncoder` (GELU feed-forward) whose attention ignores
padding through the key padding mask, a final LayerNorm, pooling over the real tokens
("mean", "max", or "cls": the first position) and a linear head."""
from __future__ import annotations

import framework as fw
import framework.nn as nn

from ..registry import register_model
from .inputs import check_token_ids, token_mask
from .pooling import POOLINGS, pool

__all__ = ["TransformerClassifier", "transformer_encoder"]


class TransformerClassifier(nn.Module):
    """Embeddings + learned positions -> pre-norm Transformer encoder -> pooling -> linear."""

    def __init__(self, vocab_size: int, num_classes: int, d_model: int = 128, heads: int = 4,
                 layers: int = 2, ffn: int = 512, max_len: int = 512, dropout: float = 0.1,
                 pooling: str = "mean", pad_id: int = 0) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"transformer_encoder: unknown pooling {pooling!r}; choose one of "
                             f"{', '.join(POOLINGS)}")
        if d_model % heads:
            raise ValueError(f"transformer_encoder: d_model {d_model} is not a multiple of "
                             f"heads {heads}")
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.pooling = pooling
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.position = nn.Embedding(max_len, d_model)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, heads, ffn, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.fc = nn.Linear(d_model, num_classes)
        # N(0, 1) embeddings would dwarf the residual stream at d_model 128
        for emb in (self.embedding, self.position):
            nn.init.normal_(emb.weight, std=d_model ** -0.5)
        with fw.no_grad():
            self.embedding.weight[pad_id] = 0.0

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        check_token_ids(input_ids, self.vocab_size, "transformer_encoder")
        mask = token_mask(input_ids, attention_mask, "transformer_encoder")
        length = input_ids.shape[1]
        if length > self.max_len:
            raise ValueError(f"transformer_encoder: sequences of {length} tokens are longer "
                             f"than max_len {self.max_len} (the learned position table)")
        positions = self.position.weight[:length].unsqueeze(0)
        x = self.dropout(self.embedding(input_ids) + positions)
        x = self.encoder(x, src_key_padding_mask=~mask)
        return self.fc(self.dropout(pool(x, mask, self.pooling)))


@register_model(domain="text")
def transformer_encoder(*, vocab_size: int = 30522, num_classes: int = 2, d_model: int = 128,
                        heads: int = 4, layers: int = 2, ffn: int = 512, max_len: int = 512,
                        dropout: float = 0.1, pooling: str = "mean",
                        pad_id: int = 0) -> TransformerClassifier:
    """Transformer encoder (pre-norm, learned positions, key padding mask), pooled, linear."""
    return TransformerClassifier(vocab_size, num_classes, d_model, heads, layers, ffn, max_len,
                                 dropout, pooling, pad_id)
