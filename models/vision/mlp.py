"""A multilayer perceptron on flattened images."""
from __future__ import annotations

from collections.abc import Sequence

import framework.nn as nn

from ..registry import register_model

__all__ = ["MLP", "mlp"]


class MLP(nn.Sequential):
    """Flatten, then Linear + ReLU + Dropout per hidden width, then a Linear head.

    Dropout modules are always present (p=0 is the identity) so the state-dict keys do not
    depend on `dropout`.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], num_classes: int,
                 dropout: float = 0.0) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


@register_model(domain="vision")
def mlp(*, num_classes: int = 10, in_features: int = 784, hidden: Sequence[int] = (256, 128),
        dropout: float = 0.0) -> MLP:
    """Multilayer perceptron (Flatten, ReLU hidden layers) for small flattened images."""
    return MLP(in_features, tuple(hidden), num_classes, dropout)
