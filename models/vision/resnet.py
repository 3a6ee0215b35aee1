"""ResNet-18/34/50 with torchvision's module names, state-dict keys and forward.

Stem `conv1, bn1, relu, maxpool`, stages `layer1..layer4` of BasicBlock (18/34) or
Bottleneck (50, stride on the 3x3 conv as in torchvision's "v1.5"), `avgpool`, `fc`;
shortcut projections are `downsample.0` (1x1 conv) and `downsample.1` (BN).
`cifar_stem=True` swaps the 7x7/2 stem and max pool for a 3x3/1 conv and no pool (for 32x32
images) while keeping every key name.
"""
from __future__ import annotations

import framework as fw
import framework.nn as nn

from ..registry import register_model

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50"]


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with BN and an identity (or projected) shortcut."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4, with BN and a shortcut."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNet(nn.Module):
    """A residual network: stem, four stages of `block` (64/128/256/512 planes), global
    average pool and a linear classifier."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int],
                 num_classes: int = 1000, in_channels: int = 3, cifar_stem: bool = False,
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        self.inplanes = 64
        if cifar_stem:
            self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if cifar_stem else nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:   # each block then starts as the identity
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(_conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(fw.flatten(self.avgpool(x), 1))


@register_model(domain="vision")
def resnet18(*, num_classes: int = 1000, in_channels: int = 3, cifar_stem: bool = False,
             zero_init_residual: bool = False) -> ResNet:
    """ResNet-18 (BasicBlock, 2-2-2-2), torchvision-compatible; cifar_stem for 32x32 images."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, cifar_stem,
                  zero_init_residual)


@register_model(domain="vision")
def resnet34(*, num_classes: int = 1000, in_channels: int = 3, cifar_stem: bool = False,
             zero_init_residual: bool = False) -> ResNet:
    """ResNet-34 (BasicBlock, 3-4-6-3), torchvision-compatible; cifar_stem for 32x32 images."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, cifar_stem,
                  zero_init_residual)


@register_model(domain="vision")
def resnet50(*, num_classes: int = 1000, in_channels: int = 3, cifar_stem: bool = False,
             zero_init_residual: bool = False) -> ResNet:
    """ResNet-50 (Bottleneck, 3-4-6-3), torchvision-compatible; cifar_stem for 32x32 images."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, cifar_stem,
                  zero_init_residual)
