"""The small digits CNN: two 3x3 conv + BN + ReLU blocks, max pooling and a linear head."""
from __future__ import annotations

import framework.nn as nn

from ..registry import register_model

__all__ = ["SmallCNN", "small_cnn"]


class SmallCNN(nn.Module):
    """conv(width) + BN + ReLU, conv(2*width) + BN + ReLU, 2x2 max pool, then an adaptive
    average pool to 4x4 so any input size works (for 8x8 digits it is the identity), then
    Flatten, Dropout(0.1) and Linear(2*width*16, num_classes).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2), nn.AdaptiveAvgPool2d((4, 4)))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.1),
                                  nn.Linear(2 * width * 4 * 4, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


@register_model(domain="vision")
def small_cnn(*, num_classes: int = 10, in_channels: int = 1, width: int = 16) -> SmallCNN:
    """Small CNN for digits (8x8) and 28x28 images: two conv+BN+ReLU blocks and a linear head."""
    return SmallCNN(num_classes, in_channels, width)
