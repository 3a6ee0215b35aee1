"""2D and 3D U-Nets for segmentation, in the style of nnU-Net's PlainConvUNet and MONAI's UNet.

An encoder of `len(channels)` stages and a decoder of `len(strides)` stages:
- encoder stage 0 keeps the resolution; stage i >= 1 downsamples by `strides[i-1]` (the first
  conv of its block is strided, or a max pool precedes the block with `downsample="maxpool"`);
- a block is two conv-norm-act layers (`num_res_units=0`) or `num_res_units` residual units
  (conv-norm-act, conv-norm, plus an identity or 1x1-conv-norm shortcut, then the activation);
- decoder stage k upsamples with a transposed conv (kernel = stride = the matching stride),
  concatenates the encoder's skip and applies a block at stride 1;
- `head` is a 1x1 conv to `out_channels` logits at full resolution. With
  `deep_supervision=True` there is one `aux_heads.{k}` 1x1 conv per lower decoder stage and,
  in training mode, forward returns a list of logits, full resolution first, then 1/2, 1/4 ...
  (as nnU-Net; `DeepSupervisionLoss` weighs them). In eval mode it returns the full-resolution
  logits only.

Conv-norm-act is conv, norm, dropout, activation (MONAI's "NDA" order). Convs and
transposed convs carry a bias and are initialised as nnU-Net does (He normal with a=0.01,
zero bias).

State-dict keys (stable; L = len(strides), k = 0 is the deepest decoder stage):
    encoder.{i}.block.convs.{j}.conv.{weight,bias}    plain block, j in {0, 1}
    encoder.{i}.block.convs.{j}.norm.{weight,bias[,running_mean,running_var,num_batches_tracked]}
    encoder.{i}.block.convs.{j}.act.weight            (prelu only)
    encoder.{i}.block.units.{u}.conv1.{conv,norm,act}.*  residual unit u
    encoder.{i}.block.units.{u}.conv2.{conv,norm}.*
    encoder.{i}.block.units.{u}.shortcut.{conv,norm}.*   (when shape changes)
    encoder.{i}.block.units.{u}.act.weight            (prelu only)
    decoder.{k}.up.{weight,bias}                      transposed conv
    decoder.{k}.block.*                               as the encoder's blocks
    head.{weight,bias}
    aux_heads.{k}.{weight,bias}                       k in 0..L-2, deep supervision only
A deep-supervision checkpoint loads into a net without it once the `aux_heads.*` keys are
dropped.

The input's spatial size must be divisible, per axis, by the product of the strides on that
axis (`UNet.divisor`); otherwise forward raises a ValueError naming the required divisor.
"""
from __future__ import annotations

import math
from typing import Sequence

import framework as fw
import framework.nn as nn

from ..registry import register_model

__all__ = ["ConvNormAct", "PlainBlock", "ResidualUnit", "ResidualBlock", "UNet", "group_count",
           "unet2d", "unet3d"]

_NORMS = ("instance", "batch", "group")
_ACTS = ("leakyrelu", "relu", "prelu")
Stride = int | Sequence[int]


def _conv(dims: int, cin: int, cout: int, kernel_size: int, stride: Stride = 1) -> nn.Module:
    cls = nn.Conv2d if dims == 2 else nn.Conv3d
    return cls(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2, bias=True)


def group_count(channels: int, max_groups: int = 8) -> int:
    """Groups for GroupNorm: the largest divisor of `channels` that is at most `max_groups`."""
    return max(g for g in range(1, max_groups + 1) if channels % g == 0)


def _norm(kind: str, dims: int, channels: int) -> nn.Module:
    if kind == "instance":  # affine, as nnU-Net (MONAI's default instance norm is not affine)
        return (nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d)(channels, affine=True)
    if kind == "batch":
        return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d)(channels)
    return nn.GroupNorm(group_count(channels), channels)


def _act(kind: str) -> nn.Module:
    if kind == "leakyrelu":
        return nn.LeakyReLU(0.01)
    if kind == "relu":
        return nn.ReLU()
    return nn.PReLU()


class ConvNormAct(nn.Module):
    """conv (kernel k, padding k//2) -> norm -> dropout -> activation (omitted with act=None)."""

    def __init__(self, dims: int, cin: int, cout: int, *, stride: Stride = 1,
                 kernel_size: int = 3, norm: str = "instance", act: str | None = "leakyrelu",
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = _conv(dims, cin, cout, kernel_size, stride)
        self.norm = _norm(norm, dims, cout)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.act = _act(act) if act is not None else nn.Identity()

    def forward(self, x):
        return self.act(self.drop(self.norm(self.conv(x))))


class PlainBlock(nn.Module):
    """Two conv-norm-act layers; the first carries the stride and the channel change."""

    def __init__(self, dims: int, cin: int, cout: int, *, stride: Stride = 1, **layer) -> None:
        super().__init__()
        self.convs = nn.ModuleList([ConvNormAct(dims, cin, cout, stride=stride, **layer),
                                    ConvNormAct(dims, cout, cout, **layer)])

    def forward(self, x):
        for layer in self.convs:
            x = layer(x)
        return x


class _Projection(nn.Module):
    """The shortcut of a residual unit whose shape changes: a 1x1 strided conv and a norm."""

    def __init__(self, dims: int, cin: int, cout: int, stride: Stride, norm: str) -> None:
        super().__init__()
        self.conv = _conv(dims, cin, cout, 1, stride)
        self.norm = _norm(norm, dims, cout)

    def forward(self, x):
        return self.norm(self.conv(x))


class ResidualUnit(nn.Module):
    """act(conv2(conv1(x)) + shortcut(x)): conv1 is conv-norm-act (strided), conv2 conv-norm;
    the shortcut is the identity, or a 1x1 conv and norm when the stride or width changes."""

    def __init__(self, dims: int, cin: int, cout: int, *, stride: Stride = 1,
                 kernel_size: int = 3, norm: str = "instance", act: str = "leakyrelu",
                 dropout: float = 0.0) -> None:
        super().__init__()
        layer = dict(kernel_size=kernel_size, norm=norm, dropout=dropout)
        self.conv1 = ConvNormAct(dims, cin, cout, stride=stride, act=act, **layer)
        self.conv2 = ConvNormAct(dims, cout, cout, act=None, **layer)
        strided = any(s != 1 for s in ((stride,) if isinstance(stride, int) else stride))
        self.shortcut = (_Projection(dims, cin, cout, stride, norm) if strided or cin != cout
                         else nn.Identity())
        self.act = _act(act)

    def forward(self, x):
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResidualBlock(nn.Module):
    """`n` residual units; the first carries the stride and the channel change."""

    def __init__(self, dims: int, cin: int, cout: int, n: int, *, stride: Stride = 1,
                 **layer) -> None:
        super().__init__()
        self.units = nn.ModuleList(
            [ResidualUnit(dims, cin if u == 0 else cout, cout, stride=stride if u == 0 else 1,
                          **layer) for u in range(n)])

    def forward(self, x):
        for unit in self.units:
            x = unit(x)
        return x


class _EncoderStage(nn.Module):
    def __init__(self, pool: nn.Module, block: nn.Module) -> None:
        super().__init__()
        self.pool = pool
        self.block = block

    def forward(self, x):
        return self.block(self.pool(x))


class _DecoderStage(nn.Module):
    def __init__(self, up: nn.Module, block: nn.Module) -> None:
        super().__init__()
        self.up = up
        self.block = block

    def forward(self, x, skip):
        return self.block(fw.cat([self.up(x), skip], 1))


class UNet(nn.Module):
    """U-Net for (N, in_channels, *S) inputs, S of `spatial_dims` axes, to (N, out_channels, *S)
    logits (a list of logits per decoder scale in training mode with deep supervision).

    channels: widths of the encoder stages, shallowest first. strides: one per downsampling
    step (len(channels) - 1 of them; default 2 each), an int or one int per axis (e.g.
    (1, 2, 2) for anisotropic volumes). num_res_units: 0 for plain two-conv blocks, n >= 1
    for n residual units per block. norm: "instance" (affine), "batch" or "group"
    (`group_count` groups). act: "leakyrelu" (slope 0.01), "relu" or "prelu".
    downsample: "conv" (strided conv) or "maxpool".
    """

    def __init__(self, spatial_dims: int = 3, in_channels: int = 1, out_channels: int = 2,
                 channels: Sequence[int] = (32, 64, 128, 256),
                 strides: Sequence[Stride] | None = None, num_res_units: int = 0,
                 norm: str = "instance", act: str = "leakyrelu", dropout: float = 0.0,
                 deep_supervision: bool = False, kernel_size: int = 3,
                 downsample: str = "conv") -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"UNet: spatial_dims must be 2 or 3, got {spatial_dims}")
        if norm not in _NORMS:
            raise ValueError(f"UNet: norm must be one of {_NORMS}, got {norm!r}")
        if act not in _ACTS:
            raise ValueError(f"UNet: act must be one of {_ACTS}, got {act!r}")
        if downsample not in ("conv", "maxpool"):
            raise ValueError(f"UNet: downsample must be 'conv' or 'maxpool', got {downsample!r}")
        channels = tuple(int(c) for c in channels)
        strides = (2,) * (len(channels) - 1) if strides is None else tuple(strides)
        if len(channels) < 2 or len(strides) != len(channels) - 1:
            raise ValueError(f"UNet: need len(channels) >= 2 and len(strides) == "
                             f"len(channels) - 1, got {len(channels)} channels and "
                             f"{len(strides)} strides")
        if num_res_units < 0 or not 0.0 <= dropout < 1.0 or kernel_size % 2 == 0:
            raise ValueError(f"UNet: need num_res_units >= 0, 0 <= dropout < 1 and an odd "
                             f"kernel_size, got {num_res_units}, {dropout}, {kernel_size}")
        self.spatial_dims, self.in_channels, self.out_channels = spatial_dims, in_channels, \
            out_channels
        self.channels, self.deep_supervision = channels, bool(deep_supervision)
        self.strides = tuple(self._per_axis(s) for s in strides)
        self.divisor = tuple(math.prod(s[a] for s in self.strides) for a in range(spatial_dims))

        layer = dict(kernel_size=kernel_size, norm=norm, act=act, dropout=dropout)

        def block(cin: int, cout: int, stride: Stride) -> nn.Module:
            if num_res_units == 0:
                return PlainBlock(spatial_dims, cin, cout, stride=stride, **layer)
            return ResidualBlock(spatial_dims, cin, cout, num_res_units, stride=stride, **layer)

        pool_cls = nn.MaxPool2d if spatial_dims == 2 else nn.MaxPool3d
        stages = [_EncoderStage(nn.Identity(), block(in_channels, channels[0], 1))]
        for i, s in enumerate(self.strides, start=1):
            if downsample == "conv":
                stages.append(_EncoderStage(nn.Identity(), block(channels[i - 1], channels[i], s)))
            else:
                stages.append(_EncoderStage(pool_cls(s, s), block(channels[i - 1], channels[i], 1)))
        self.encoder = nn.ModuleList(stages)

        up_cls = nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
        depth = len(self.strides)
        self.decoder = nn.ModuleList()
        for k in range(depth):
            lo, hi = channels[depth - k], channels[depth - k - 1]
            s = self.strides[depth - k - 1]
            self.decoder.append(_DecoderStage(up_cls(lo, hi, s, stride=s, bias=True),
                                              block(2 * hi, hi, 1)))
        self.head = _conv(spatial_dims, channels[0], out_channels, 1)
        if self.deep_supervision:
            self.aux_heads = nn.ModuleList(
                [_conv(spatial_dims, channels[depth - k - 1], out_channels, 1)
                 for k in range(depth - 1)])
        self._init_weights()

    def _per_axis(self, s: Stride) -> tuple[int, ...]:
        t = (int(s),) * self.spatial_dims if isinstance(s, int) else tuple(int(v) for v in s)
        if len(t) != self.spatial_dims or min(t) < 1:
            raise ValueError(f"UNet: a stride must be a positive int or {self.spatial_dims} "
                             f"positive ints, got {s!r}")
        return t

    def _init_weights(self) -> None:
        conv_types = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
        for m in self.modules():
            if isinstance(m, conv_types):
                nn.init.kaiming_normal_(m.weight, a=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet: expected input (N, {self.in_channels}, "
                             f"{', '.join('S' + str(a) for a in range(self.spatial_dims))}), "
                             f"got shape {tuple(x.shape)}")
        spatial = tuple(x.shape[2:])
        if any(n % d for n, d in zip(spatial, self.divisor)):
            raise ValueError(f"UNet: input spatial shape {spatial} must be divisible by "
                             f"{self.divisor} (the product of the strides per axis); pad or "
                             f"crop it, or run sliding_window_inference with such a roi_size")
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = skips.pop()
        supervise = self.deep_supervision and self.training
        aux = []
        for k, stage in enumerate(self.decoder):
            x = stage(x, skips.pop())
            if supervise and k < len(self.decoder) - 1:
                aux.append(self.aux_heads[k](x))
        logits = self.head(x)
        return [logits, *aux[::-1]] if supervise else logits


@register_model(domain="mri")
def unet2d(*, num_classes: int = 3, in_channels: int = 1,
           channels: Sequence[int] = (32, 64, 128, 256, 512),
           strides: Sequence[Stride] | None = None, num_res_units: int = 0,
           norm: str = "instance", act: str = "leakyrelu", dropout: float = 0.0,
           deep_supervision: bool = False) -> UNet:
    """2D U-Net (nnU-Net 2d style), 5 stages of 32-512 channels, instance norm, leaky ReLU.

    Strides default to 2 per stage (the input must then divide by 16)."""
    return UNet(2, in_channels, num_classes, channels, strides, num_res_units, norm, act,
                dropout, deep_supervision)


@register_model(domain="mri")
def unet3d(*, num_classes: int = 2, in_channels: int = 1,
           channels: Sequence[int] = (32, 64, 128, 256, 320),
           strides: Sequence[Stride] | None = None, num_res_units: int = 0,
           norm: str = "instance", act: str = "leakyrelu", dropout: float = 0.0,
           deep_supervision: bool = False) -> UNet:
    """3D U-Net (nnU-Net 3d_fullres style), 5 stages of 32-320 channels, instance norm.

    Strides default to 2 per stage (the input must then divide by 16)."""
    return UNet(3, in_channels, num_classes, channels, strides, num_res_units, norm, act,
                dropout, deep_supervision)
