"""VGG-11/16 (with and without batch norm) with torchvision's names and forward.

`features.N` is the conv stack (3x3 convs, padding 1, [BN], ReLU; 2x2 max pools),
`avgpool` an AdaptiveAvgPool2d((7, 7)) and `classifier.0/3/6` the three linear layers of the
4096-wide head with ReLU and dropout between them.
"""
from __future__ import annotations

import framework as fw
import framework.nn as nn

from ..registry import register_model

__all__ = ["VGG", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn"]

# Conv widths per configuration; "M" is a 2x2 max pool (configurations "A" and "D" of the paper).
_CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"],
}


def _features(config: list[int | str], batch_norm: bool, in_channels: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = in_channels
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
            continue
        layers.append(nn.Conv2d(c, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU())
        c = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """A VGG network: `features`, a 7x7 adaptive average pool and a 3-layer classifier."""

    def __init__(self, features: nn.Sequential, num_classes: int = 1000,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(fw.flatten(x, 1))


@register_model(domain="vision")
def vgg11(*, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-11 (configuration A, no batch norm), torchvision-compatible."""
    return VGG(_features(_CONFIGS["A"], False), num_classes, dropout)


@register_model(domain="vision")
def vgg11_bn(*, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-11 with batch norm (configuration A), torchvision-compatible."""
    return VGG(_features(_CONFIGS["A"], True), num_classes, dropout)


@register_model(domain="vision")
def vgg16(*, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-16 (configuration D, no batch norm), torchvision-compatible."""
    return VGG(_features(_CONFIGS["D"], False), num_classes, dropout)


@register_model(domain="vision")
def vgg16_bn(*, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-16 with batch norm (configuration D), torchvision-compatible."""
    return VGG(_features(_CONFIGS["D"], True), num_classes, dropout)
