"""Vision Transformer with torchvision's names and forward.

`conv_proj` (patch embedding), `class_token`, `encoder.pos_embedding`,
`encoder.layers.encoder_layer_N.{ln_1, self_attention, ln_2, mlp.0, mlp.3}` (self_attention
is `nn.MultiheadAttention`: `in_proj_weight`, `in_proj_bias`, `out_proj`), `encoder.ln` and
`heads.head`. Pre-norm blocks, LayerNorm eps 1e-6, exact (erf) GELU.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import framework as fw
import framework.nn as nn

from ..registry import register_model

__all__ = ["MLPBlock", "EncoderBlock", "Encoder", "VisionTransformer", "vit_b_16", "vit_tiny"]


class MLPBlock(nn.Sequential):
    """Linear -> GELU -> Dropout -> Linear -> Dropout (keys `0` and `3` hold weights)."""

    def __init__(self, dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(mlp_dim, dim), nn.Dropout(dropout))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.normal_(m.bias, std=1e-6)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + attn(ln_1(x)), then y + mlp(ln_2(y))."""

    def __init__(self, num_heads: int, dim: int, mlp_dim: int, dropout: float,
                 attention_dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, num_heads, dropout=attention_dropout,
                                                    batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, mlp_dim, dropout)

    def forward(self, x):
        if x.dim() != 3:
            raise ValueError(f"EncoderBlock expects (batch, seq, dim), got {tuple(x.shape)}")
        h = self.ln_1(x)
        h, _ = self.self_attention(h, h, h, need_weights=False)
        x = x + self.dropout(h)
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """Learned position embedding, dropout, `num_layers` EncoderBlocks and a final LayerNorm."""

    def __init__(self, seq_length: int, num_layers: int, num_heads: int, dim: int,
                 mlp_dim: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(fw.empty(1, seq_length, dim))
        nn.init.normal_(self.pos_embedding, std=0.02)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(OrderedDict(
            (f"encoder_layer_{i}", EncoderBlock(num_heads, dim, mlp_dim, dropout,
                                                attention_dropout))
            for i in range(num_layers)))
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(nn.Module):
    """ViT: non-overlapping patch embedding, a class token, a transformer encoder and a linear
    head on the class token's output. Inputs must be image_size x image_size."""

    def __init__(self, image_size: int, patch_size: int, num_layers: int, num_heads: int,
                 hidden_dim: int, mlp_dim: int, dropout: float = 0.0,
                 attention_dropout: float = 0.0, num_classes: int = 1000,
                 in_channels: int = 3) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not divisible by patch_size "
                             f"{patch_size}")
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.num_classes = num_classes
        self.conv_proj = nn.Conv2d(in_channels, hidden_dim, patch_size, stride=patch_size)
        self.class_token = nn.Parameter(fw.zeros(1, 1, hidden_dim))
        seq_length = (image_size // patch_size) ** 2 + 1
        self.seq_length = seq_length
        self.encoder = Encoder(seq_length, num_layers, num_heads, hidden_dim, mlp_dim, dropout,
                               attention_dropout)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(hidden_dim, num_classes)))

        fan_in = in_channels * patch_size * patch_size
        nn.init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1.0 / fan_in))
        nn.init.zeros_(self.conv_proj.bias)
        nn.init.zeros_(self.heads.head.weight)   # torchvision starts the head at zero
        nn.init.zeros_(self.heads.head.bias)

    def _patchify(self, x):
        n, _, h, w = x.shape
        if h != self.image_size or w != self.image_size:
            raise ValueError(f"VisionTransformer expects {self.image_size}x{self.image_size} "
                             f"images, got {h}x{w}")
        x = self.conv_proj(x)                          # (n, hidden, h/p, w/p)
        return x.reshape(n, self.hidden_dim, -1).permute(0, 2, 1)

    def forward(self, x):
        x = self._patchify(x)
        cls = self.class_token.expand(x.shape[0], -1, -1)
        x = self.encoder(fw.cat([cls, x], dim=1))
        return self.heads(x[:, 0])


@register_model(domain="vision")
def vit_b_16(*, num_classes: int = 1000, image_size: int = 224, dropout: float = 0.0,
             attention_dropout: float = 0.0) -> VisionTransformer:
    """ViT-B/16 (12 layers, 12 heads, width 768, MLP 3072), torchvision-compatible."""
    return VisionTransformer(image_size, 16, 12, 12, 768, 3072, dropout, attention_dropout,
                             num_classes)


@register_model(domain="vision")
def vit_tiny(*, num_classes: int = 10, image_size: int = 32, patch_size: int = 4,
             in_channels: int = 3, dropout: float = 0.0,
             attention_dropout: float = 0.0) -> VisionTransformer:
    """Tiny ViT for CIFAR-size images (patch 4, 6 layers, 3 heads, width 192, MLP 768)."""
    return VisionTransformer(image_size, patch_size, 6, 3, 192, 768, dropout,
                             attention_dropout, num_classes, in_channels)
