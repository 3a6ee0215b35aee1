"""LeNet-5 for 28x28 images."""
from __future__ import annotations

import framework.nn as nn

from ..registry import register_model

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """LeNet-5 in its usual modern form: ReLU and max pooling instead of the original tanh
    and subsampling layers, and a plain linear output instead of RBF units.

    features: conv 6@5x5 (padding 2, so 28x28 stays 28x28), pool, conv 16@5x5, pool;
    classifier: 400 -> 120 -> 84 -> num_classes.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes))

    def forward(self, x):
        if tuple(x.shape[-2:]) != (28, 28):
            raise ValueError(f"LeNet5 expects 28x28 images, got {tuple(x.shape[-2:])}")
        return self.classifier(self.features(x))


@register_model(domain="vision")
def lenet5(*, num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """LeNet-5 for 28x28 images (modern variant: ReLU and max pooling)."""
    return LeNet5(num_classes, in_channels)
