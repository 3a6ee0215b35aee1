"""The MRI model layer against oracles: U-Nets against torch re-implementations written here
(same module names, same weights), the losses against torch versions of MONAI's formulas and
hand-computed cases, the metrics against hand-computed distances and a brute-force surface
distance, and sliding-window inference against exact identities (identity predictor,
full-volume convolution, window batching, flip equivariance)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F
import models
from models.mri import (DeepSupervisionLoss, DiceCELoss, DiceLoss, FocalLoss,
                        GeneralizedDiceLoss, UNet, deep_supervision_weights, flip_tta,
                        hausdorff_distance, importance_map, mean_surface_distance,
                        segmentation_metrics, sliding_window_inference, surface_distances)
from models.mri.inference import window_starts
from models.mri.metrics import dice_score, iou_score

try:
    import torch
    import torch.nn as tnn
    import torch.nn.functional as TF
except ImportError:  # the parity extra is optional
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch (the parity extra) is not installed")


@pytest.fixture(autouse=True, scope="module")
def _torch_one_thread():
    """torch's small 3D kernels run 10-50x slower with two threads on a loaded 2-core host."""
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def as_fw(a: np.ndarray, device: str = "cpu", requires_grad: bool = False):
    return fw.tensor(a, device=device, requires_grad=requires_grad)


def to_np(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def close(a, b, rtol=1e-4, atol=1e-5):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * scale)


# --- the torch reference U-Net: the documented structure and names, written independently ---
if torch is not None:
    def t_conv(dims, cin, cout, k, stride=1):
        return (tnn.Conv2d if dims == 2 else tnn.Conv3d)(cin, cout, k, stride=stride,
                                                          padding=k // 2)

    def t_norm(kind, dims, c):
        if kind == "instance":
            return (tnn.InstanceNorm2d if dims == 2 else tnn.InstanceNorm3d)(c, affine=True)
        if kind == "batch":
            return (tnn.BatchNorm2d if dims == 2 else tnn.BatchNorm3d)(c)
        return tnn.GroupNorm(max(g for g in range(1, 9) if c % g == 0), c)

    def t_act(kind):
        return {"leakyrelu": lambda: tnn.LeakyReLU(0.01), "relu": tnn.ReLU,
                "prelu": tnn.PReLU}[kind]()

    class TConvNormAct(tnn.Module):
        def __init__(self, dims, cin, cout, stride, norm, act):
            super().__init__()
            self.conv, self.norm = t_conv(dims, cin, cout, 3, stride), t_norm(norm, dims, cout)
            self.drop = tnn.Identity()
            self.act = t_act(act) if act else tnn.Identity()

        def forward(self, x):
            return self.act(self.drop(self.norm(self.conv(x))))

    class TPlain(tnn.Module):
        def __init__(self, dims, cin, cout, stride, norm, act):
            super().__init__()
            self.convs = tnn.ModuleList([TConvNormAct(dims, cin, cout, stride, norm, act),
                                         TConvNormAct(dims, cout, cout, 1, norm, act)])

        def forward(self, x):
            return self.convs[1](self.convs[0](x))

    class TProjection(tnn.Module):
        def __init__(self, dims, cin, cout, stride, norm):
            super().__init__()
            self.conv, self.norm = t_conv(dims, cin, cout, 1, stride), t_norm(norm, dims, cout)

        def forward(self, x):
            return self.norm(self.conv(x))

    class TResUnit(tnn.Module):
        def __init__(self, dims, cin, cout, stride, norm, act):
            super().__init__()
            self.conv1 = TConvNormAct(dims, cin, cout, stride, norm, act)
            self.conv2 = TConvNormAct(dims, cout, cout, 1, norm, None)
            same = cin == cout and all(s == 1 for s in np.atleast_1d(stride))
            self.shortcut = tnn.Identity() if same else TProjection(dims, cin, cout, stride, norm)
            self.act = t_act(act)

        def forward(self, x):
            return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))

    class TResBlock(tnn.Module):
        def __init__(self, dims, cin, cout, n, stride, norm, act):
            super().__init__()
            self.units = tnn.ModuleList([TResUnit(dims, cin if u == 0 else cout, cout,
                                                  stride if u == 0 else 1, norm, act)
                                         for u in range(n)])

        def forward(self, x):
            for u in self.units:
                x = u(x)
            return x

    class TEncoderStage(tnn.Module):
        def __init__(self, pool, block):
            super().__init__()
            self.pool, self.block = pool, block

        def forward(self, x):
            return self.block(self.pool(x))

    class TDecoderStage(tnn.Module):
        def __init__(self, up, block):
            super().__init__()
            self.up, self.block = up, block

        def forward(self, x, skip):
            return self.block(torch.cat([self.up(x), skip], 1))

    class TUNet(tnn.Module):
        def __init__(self, dims, cin, cout, channels, strides, num_res_units=0, norm="instance",
                     act="leakyrelu", deep_supervision=False, downsample="conv"):
            super().__init__()
            strides = [tuple(s) if isinstance(s, (tuple, list)) else (s,) * dims
                       for s in strides]

            def block(a, b, s):
                if num_res_units:
                    return TResBlock(dims, a, b, num_res_units, s, norm, act)
                return TPlain(dims, a, b, s, norm, act)

            pool = tnn.MaxPool2d if dims == 2 else tnn.MaxPool3d
            enc = [TEncoderStage(tnn.Identity(), block(cin, channels[0], 1))]
            for i, s in enumerate(strides, 1):
                if downsample == "conv":
                    enc.append(TEncoderStage(tnn.Identity(),
                                             block(channels[i - 1], channels[i], s)))
                else:
                    enc.append(TEncoderStage(pool(s, s), block(channels[i - 1], channels[i], 1)))
            self.encoder = tnn.ModuleList(enc)
            up = tnn.ConvTranspose2d if dims == 2 else tnn.ConvTranspose3d
            rev = list(zip(channels[1:], channels[:-1], strides))[::-1]
            self.decoder = tnn.ModuleList([TDecoderStage(up(lo, hi, s, stride=s),
                                                         block(2 * hi, hi, 1))
                                           for lo, hi, s in rev])
            self.head = t_conv(dims, channels[0], cout, 1)
            self.ds = deep_supervision
            if deep_supervision:
                self.aux_heads = tnn.ModuleList([t_conv(dims, hi, cout, 1)
                                                 for _, hi, _ in rev[:-1]])

        def forward(self, x):
            skips = []
            for stage in self.encoder:
                x = stage(x)
                skips.append(x)
            x = skips.pop()
            aux = []
            for k, stage in enumerate(self.decoder):
                x = stage(x, skips.pop())
                if self.ds and self.training and k < len(self.decoder) - 1:
                    aux.append(self.aux_heads[k](x))
            out = self.head(x)
            return [out] + aux[::-1] if self.ds and self.training else out


def torch_twin(net: UNet, **cfg):
    """The torch reference with `net`'s parameters and buffers."""
    ref = TUNet(**cfg)
    state = {k: torch.from_numpy(np.array(to_np(v))) for k, v in net.state_dict().items()}
    ref.load_state_dict(state, strict=True)  # also checks that the key names agree
    return ref


UNET_CASES = {
    "2d-plain-instance": dict(dims=2, cin=1, cout=3, channels=(4, 8, 16), strides=(2, 2)),
    "2d-batch-relu-maxpool": dict(dims=2, cin=2, cout=2, channels=(4, 8), strides=(2,),
                                  norm="batch", act="relu", downsample="maxpool"),
    "3d-residual-group-prelu": dict(dims=3, cin=1, cout=2, channels=(4, 8, 8),
                                    strides=(2, (1, 2, 2)), num_res_units=2, norm="group",
                                    act="prelu"),
    "3d-deep-supervision": dict(dims=3, cin=1, cout=2, channels=(4, 6, 8, 8),
                                strides=(2, 2, 2), deep_supervision=True),
    # rows long enough (images x width >= 64) for the direct 3-D convolutions, whose
    # images-last outputs then pass through the norms, pooling and transposed convolutions
    "3d-direct-instance": dict(dims=3, cin=1, cout=2, channels=(4, 8), strides=(2,)),
    "3d-direct-batch-maxpool": dict(dims=3, cin=2, cout=3, channels=(4, 8, 8), strides=(2, 2),
                                    norm="batch", downsample="maxpool"),
}
INPUT_SHAPES = {"2d-plain-instance": (2, 1, 16, 12), "2d-batch-relu-maxpool": (3, 2, 10, 6),
                "3d-residual-group-prelu": (2, 1, 6, 8, 12),
                "3d-deep-supervision": (2, 1, 8, 8, 16), "3d-direct-instance": (4, 1, 6, 8, 32),
                "3d-direct-batch-maxpool": (4, 2, 4, 8, 64)}


def build(cfg: dict) -> UNet:
    c = dict(cfg)
    return UNet(c.pop("dims"), c.pop("cin"), c.pop("cout"), c.pop("channels"), c.pop("strides"),
                **c)


def _outputs(out):
    return out if isinstance(out, list) else [out]


@needs_torch
@pytest.mark.parametrize("case", list(UNET_CASES))
def test_unet_forward_backward_match_torch(case, device):
    """float32 outputs and input gradients, then every gradient in float64 (in float32 a conv
    bias right before a norm has a true gradient of 0 and both sides return rounding noise)."""
    cfg = UNET_CASES[case]
    rng = np.random.default_rng(1)
    x = rng.standard_normal(INPUT_SHAPES[case])
    for dtype, tdtype, tol in ((fw.float32, torch.float32, 1e-4),
                               (fw.float64, torch.float64, 1e-9)):
        fw.manual_seed(0)
        net = build(cfg).to(device=device, dtype=dtype)
        ref = torch_twin(net, **cfg).to(tdtype)
        xf = fw.tensor(x, dtype=dtype, device=device, requires_grad=True)
        xt = torch.tensor(x, dtype=tdtype, requires_grad=True)
        out_f, out_t = _outputs(net(xf)), _outputs(ref(xt))
        assert len(out_f) == len(out_t) == (len(cfg["channels"]) - 1
                                            if cfg.get("deep_supervision") else 1)
        rs = [np.random.default_rng(2 + i).standard_normal(tuple(o.shape))
              for i, o in enumerate(out_t)]
        for of, ot in zip(out_f, out_t):
            assert tuple(of.shape) == tuple(ot.shape)
            close(to_np(of), ot.detach().numpy(), rtol=tol, atol=tol)
        sum(((o * fw.tensor(r, dtype=dtype, device=device)).sum()
             for o, r in zip(out_f, rs))).backward()
        sum(((o * torch.tensor(r, dtype=tdtype)).sum() for o, r in zip(out_t, rs))).backward()
        close(to_np(xf.grad), xt.grad.numpy(), rtol=tol, atol=tol)
        if dtype == fw.float64:
            grads_t = dict(ref.named_parameters())
            for name, p in net.named_parameters():
                gt = grads_t[name].grad.numpy()
                np.testing.assert_allclose(to_np(p.grad), gt, rtol=tol,
                                           atol=tol * max(1.0, np.abs(gt).max()), err_msg=name)
        # running statistics (batch norm) moved the same way; eval mode agrees too
        for (_, b), (_, bt) in zip(net.named_buffers(), ref.named_buffers()):
            close(to_np(b), bt.numpy(), rtol=tol, atol=tol)
        net.eval(), ref.eval()
        with torch.no_grad():
            close(to_np(net(fw.tensor(x, dtype=dtype, device=device))),
                  ref(torch.tensor(x, dtype=tdtype)).numpy(), rtol=tol, atol=tol)


def test_unet_state_dict_keys_are_stable():
    net = UNet(2, 1, 2, channels=(4, 8), num_res_units=0)
    conv_norm = lambda p: [f"{p}.conv.weight", f"{p}.conv.bias", f"{p}.norm.weight",  # noqa: E731
                           f"{p}.norm.bias"]
    expected = (conv_norm("encoder.0.block.convs.0") + conv_norm("encoder.0.block.convs.1")
                + conv_norm("encoder.1.block.convs.0") + conv_norm("encoder.1.block.convs.1")
                + ["decoder.0.up.weight", "decoder.0.up.bias"]
                + conv_norm("decoder.0.block.convs.0") + conv_norm("decoder.0.block.convs.1")
                + ["head.weight", "head.bias"])
    assert list(net.state_dict()) == expected
    res = UNet(3, 1, 2, channels=(4, 8, 8), num_res_units=2, act="prelu",
               deep_supervision=True)
    keys = set(res.state_dict())
    assert {"encoder.1.block.units.0.conv1.act.weight", "encoder.1.block.units.0.conv2.conv.weight",
            "encoder.1.block.units.0.shortcut.conv.weight", "encoder.1.block.units.0.act.weight",
            "decoder.0.block.units.0.shortcut.norm.weight", "aux_heads.0.weight",
            "aux_heads.0.bias"} <= keys
    assert "encoder.1.block.units.1.conv1.conv.weight" in keys
    assert not any(".units.1.shortcut" in k for k in keys)       # same shape: identity
    assert not any(k.startswith("aux_heads.1") for k in keys)     # 2 decoder stages: 1 aux
    # a deep-supervision checkpoint loads into a plain net once aux_heads are dropped
    plain = UNet(3, 1, 2, channels=(4, 8, 8), num_res_units=2, act="prelu")
    plain.load_state_dict({k: v for k, v in res.state_dict().items()
                           if not k.startswith("aux_heads.")})


def test_unet_shapes_and_divisibility():
    net = UNet(3, 1, 2, channels=(4, 8, 8), strides=((1, 2, 2), 2)).eval()
    assert net.divisor == (2, 4, 4)
    assert tuple(net(fw.randn(1, 1, 6, 12, 20)).shape) == (1, 2, 6, 12, 20)
    with pytest.raises(ValueError, match=r"\(7, 12, 20\) must be divisible by \(2, 4, 4\)"):
        net(fw.randn(1, 1, 7, 12, 20))
    with pytest.raises(ValueError, match=r"expected input \(N, 1"):
        net(fw.randn(1, 3, 8, 8, 8))
    with pytest.raises(ValueError, match="len\\(strides\\) == len\\(channels\\) - 1"):
        UNet(2, 1, 2, channels=(4, 8, 16), strides=(2,))
    with pytest.raises(ValueError, match="norm must be one of"):
        UNet(2, 1, 2, norm="layer")
    # deep supervision: a list in training mode, full resolution first; a tensor in eval mode
    ds = UNet(2, 1, 3, channels=(4, 8, 8, 8), deep_supervision=True)
    outs = ds(fw.randn(2, 1, 16, 24))
    assert [tuple(o.shape) for o in outs] == [(2, 3, 16, 24), (2, 3, 8, 12), (2, 3, 4, 6)]
    assert tuple(ds.eval()(fw.randn(2, 1, 16, 24)).shape) == (2, 3, 16, 24)


def test_unet_builders_registered():
    assert {"unet2d", "unet3d"} <= set(models.list_models("mri"))
    assert models.get_entry("unet3d").domain == "mri"
    net = models.get_model("unet2d", num_classes=4, channels=(4, 8, 8))
    assert (net.spatial_dims, net.out_channels, net.strides) == (2, 4, ((2, 2), (2, 2)))
    assert tuple(net(fw.randn(1, 1, 8, 12)).shape) == (1, 4, 8, 12)
    net3 = models.get_model("unet3d", channels=(2, 4))
    assert net3.spatial_dims == 3 and net3.out_channels == 2


def test_unet_trains_on_a_toy_task():
    """A few Adam steps on one fixed 2D image with DiceCE bring the loss well down."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16]
    label = ((yy - 8) ** 2 + (xx - 7) ** 2 < 20).astype(np.int64)[None]
    image = (label + 0.3 * rng.standard_normal(label.shape)).astype(np.float32)[:, None]
    net = UNet(2, 1, 2, channels=(4, 8), deep_supervision=True)
    loss_fn = DeepSupervisionLoss(DiceCELoss())
    opt = fw.optim.Adam(net.parameters(), lr=1e-2)
    x, y = fw.tensor(image), fw.tensor(label)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


# --- losses ----------------------------------------------------------------------------------
def t_one_hot(target: "torch.Tensor", c: int, like: "torch.Tensor"):
    if target.shape == like.shape:
        return target.float()
    labels = target[:, 0] if target.ndim == like.ndim else target
    return TF.one_hot(labels.long(), c).movedim(-1, 1).float()


def t_activate(x, act):
    return x.softmax(1) if act == "softmax" else x.sigmoid() if act == "sigmoid" else x


def t_dice(x, target, include_background=True, act="softmax", squared=False, batch=False):
    t = t_one_hot(target, x.shape[1], x)
    p = t_activate(x, act)
    if not include_background:
        p, t = p[:, 1:], t[:, 1:]
    axes = ([0] if batch else []) + list(range(2, x.ndim))
    inter = torch.sum(p * t, dim=axes)
    den = (torch.sum(p ** 2, dim=axes) + torch.sum(t ** 2, dim=axes)) if squared else \
        (torch.sum(p, dim=axes) + torch.sum(t, dim=axes))
    return torch.mean(1 - (2 * inter + 1e-5) / (den + 1e-5))


def t_generalized_dice(x, target, include_background=True, w_type="square", batch=False):
    t = t_one_hot(target, x.shape[1], x)
    p = x.softmax(1)
    if not include_background:
        p, t = p[:, 1:], t[:, 1:]
    axes = ([0] if batch else []) + list(range(2, x.ndim))
    inter, g, s = (p * t).sum(axes), t.sum(axes), p.sum(axes)
    w = {"square": lambda: g ** -2, "simple": lambda: 1 / g, "uniform": lambda: g * 0 + 1}[w_type]()
    absent = torch.isinf(w)
    finite = w.masked_fill(absent, 0)
    top = finite.max() if batch else finite.amax(1, keepdim=True)
    w = torch.where(absent, top.expand_as(w), w)
    d = 0 if batch else 1
    return torch.mean(1 - (2 * (w * inter).sum(d) + 1e-5) / ((w * (g + s)).sum(d) + 1e-5))


def t_focal(x, target, gamma=2.0, alpha=None, use_softmax=False, include_background=True):
    t = t_one_hot(target, x.shape[1], x)
    if use_softmax:
        p = x.softmax(1)
        loss = -t * (1 - p) ** gamma * torch.log(p)
        if alpha is not None:
            fac = torch.full((x.shape[1],), alpha)
            fac[0] = 1 - alpha
            loss = loss * fac.view(1, -1, *([1] * (x.ndim - 2)))
    else:
        p = x.sigmoid()
        pt = p * t + (1 - p) * (1 - t)
        loss = (1 - pt) ** gamma * TF.binary_cross_entropy_with_logits(x, t, reduction="none")
        if alpha is not None:
            loss = loss * (alpha * t + (1 - alpha) * (1 - t))
    if not include_background:
        loss = loss[:, 1:]
    return loss.mean()


def _targets(rng, shape, c):
    """The same labels as (N, 1, *S) int, (N, *S) int and one-hot float."""
    labels = rng.integers(0, c, size=(shape[0], *shape[2:]))
    one_hot = np.moveaxis(np.eye(c, dtype=np.float32)[labels], -1, 1)
    return {"label-map-channel": labels[:, None], "label-map": labels, "one-hot": one_hot}


LOSS_CASES = {
    "dice": (lambda: DiceLoss(), lambda x, t: t_dice(x, t)),
    "dice-nobg-squared-batch": (
        lambda: DiceLoss(include_background=False, squared_pred=True, batch=True),
        lambda x, t: t_dice(x, t, include_background=False, squared=True, batch=True)),
    "dice-sigmoid": (lambda: DiceLoss(softmax=False, sigmoid=True),
                     lambda x, t: t_dice(x, t, act="sigmoid")),
    "dicece": (lambda: DiceCELoss(lambda_dice=0.7, lambda_ce=1.3),
               lambda x, t: 0.7 * t_dice(x, t) + 1.3 * TF.cross_entropy(
                   x, t_one_hot(t, x.shape[1], x) if t.shape == x.shape else
                   (t[:, 0] if t.ndim == x.ndim else t).long())),
    "dicece-nobg": (lambda: DiceCELoss(include_background=False),
                    lambda x, t: t_dice(x, t, include_background=False) + TF.cross_entropy(
                        x, t_one_hot(t, x.shape[1], x))),
    "generalized-square": (lambda: GeneralizedDiceLoss(), lambda x, t: t_generalized_dice(x, t)),
    "generalized-simple-nobg-batch": (
        lambda: GeneralizedDiceLoss(include_background=False, w_type="simple", batch=True),
        lambda x, t: t_generalized_dice(x, t, False, "simple", True)),
    "focal-sigmoid": (lambda: FocalLoss(), lambda x, t: t_focal(x, t)),
    "focal-sigmoid-alpha-nobg": (lambda: FocalLoss(gamma=1.5, alpha=0.3, include_background=False),
                                 lambda x, t: t_focal(x, t, 1.5, 0.3, include_background=False)),
    "focal-softmax-alpha": (lambda: FocalLoss(alpha=0.25, use_softmax=True),
                            lambda x, t: t_focal(x, t, 2.0, 0.25, True)),
}


@needs_torch
@pytest.mark.parametrize("case", list(LOSS_CASES))
@pytest.mark.parametrize("target_kind", ["label-map-channel", "label-map", "one-hot"])
def test_losses_match_torch_formulas(case, target_kind, device):
    make, oracle = LOSS_CASES[case]
    rng = np.random.default_rng(3)
    shape = (2, 4, 5, 6, 3)
    x = (2 * rng.standard_normal(shape)).astype(np.float32)
    target = _targets(rng, shape, 4)[target_kind]
    target[..., 0, 0, 0] = 0  # harmless; keeps the label maps' dtype int64
    xf = as_fw(x, device, requires_grad=True)
    loss = make()(xf, as_fw(target, device))
    loss.backward()
    xt = torch.tensor(x, requires_grad=True)
    ref = oracle(xt, torch.tensor(target))
    ref.backward()
    close(loss.item(), ref.item(), atol=1e-6)
    close(to_np(xf.grad), xt.grad.numpy(), atol=1e-6)


@needs_torch
def test_generalized_dice_absent_class_and_binary_sigmoid():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    labels = rng.integers(0, 2, size=(2, 4, 4))      # class 2 absent: infinite weight
    labels[1] = 0                                    # sample 1 has only background
    for batch in (False, True):
        got = GeneralizedDiceLoss(batch=batch)(fw.tensor(x), fw.tensor(labels)).item()
        ref = t_generalized_dice(torch.tensor(x), torch.tensor(labels), batch=batch).item()
        assert np.isfinite(got)
        close(got, ref, atol=1e-6)
    # binary: one channel with sigmoid, the (N, 1, *S) target is the foreground mask
    xb = rng.standard_normal((2, 1, 5, 5)).astype(np.float32)
    mask = rng.integers(0, 2, size=(2, 1, 5, 5))
    close(DiceLoss(softmax=False, sigmoid=True)(fw.tensor(xb), fw.tensor(mask)).item(),
          t_dice(torch.tensor(xb), torch.tensor(mask), act="sigmoid").item(), atol=1e-6)
    bce = TF.binary_cross_entropy_with_logits(torch.tensor(xb), torch.tensor(mask).float())
    close(DiceCELoss(softmax=False, sigmoid=True)(fw.tensor(xb), fw.tensor(mask)).item(),
          (t_dice(torch.tensor(xb), torch.tensor(mask), act="sigmoid") + bce).item(), atol=1e-6)


def test_losses_hand_computed():
    labels = np.array([[[0, 1, 1], [2, 2, 0]]])                        # (1, 2, 3)
    one_hot = np.moveaxis(np.eye(3, dtype=np.float32)[labels], -1, 1)  # (1, 3, 2, 3)
    perfect, t = fw.tensor(one_hot), fw.tensor(labels)
    disjoint = fw.tensor(np.roll(one_hot, 1, axis=1))                  # every voxel wrong
    for loss in (DiceLoss(softmax=False), GeneralizedDiceLoss(softmax=False)):
        assert abs(loss(perfect, t).item()) < 1e-6
        assert loss(disjoint, t).item() > 1 - 1e-5
    # with softmax: confident correct logits -> ~0, confident wrong -> ~1
    assert DiceLoss()(perfect * 30.0, t).item() < 1e-6
    assert DiceLoss()(disjoint * 30.0, t).item() > 1 - 1e-5   # smooth_nr / 4 voxels
    # a class absent from both target and prediction scores a perfect 1 (smooth_nr/smooth_dr)
    two = fw.tensor(one_hot[:, :2] * 0 + np.array([1, 0], np.float32)[None, :, None, None])
    per_class = DiceLoss(softmax=False, reduction="none")(two, fw.zeros(1, 2, 3, dtype=fw.int64))
    np.testing.assert_allclose(to_np(per_class), [[0.0, 0.0]], atol=1e-6)
    # Dice with a half-overlap: 1 - 2*1/(2+2)
    p = fw.tensor(np.array([[[1, 1, 0, 0]], [[0, 0, 1, 1]]], np.float32)[None])  # (1, 2, 1, 4)
    tt = fw.tensor(np.array([[[0, 1, 1, 0]]]))
    np.testing.assert_allclose(
        to_np(DiceLoss(softmax=False, reduction="none", smooth_nr=0, smooth_dr=0)(p, tt)),
        [[0.5, 0.5]], atol=1e-7)
    # focal with gamma 0 and no alpha is BCE / CE
    x = fw.randn(2, 3, 4)
    y = fw.randint(0, 3, (2, 4))
    np.testing.assert_allclose(FocalLoss(gamma=0.0, use_softmax=True)(x, y).item() * 3,
                               F.cross_entropy(x, y).item(), rtol=1e-5)


def test_loss_bad_input():
    x = fw.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"target shape \(2, 4, 4, 1\) does not fit"):
        DiceLoss()(x, fw.zeros(2, 4, 4, 1, dtype=fw.int64))
    with pytest.raises(ValueError, match=r"labels 0\.\.3, but the input has 3 channel"):
        DiceCELoss()(x, fw.tensor(np.arange(32).reshape(2, 4, 4) % 4))
    with pytest.raises(ValueError, match="softmax over a single channel"):
        DiceLoss()(fw.randn(2, 1, 4, 4), fw.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="exclusive"):
        DiceLoss(softmax=True, sigmoid=True)
    with pytest.raises(ValueError, match="w_type"):
        GeneralizedDiceLoss(w_type="cubic")


def test_deep_supervision_loss_weights_and_targets():
    np.testing.assert_allclose(deep_supervision_weights(4), [4 / 7, 2 / 7, 1 / 7, 0.0])
    assert deep_supervision_weights(1) == [1.0]
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, size=(2, 8, 12))
    outs = [fw.randn(2, 3, 8, 12), fw.randn(2, 3, 4, 6), fw.randn(2, 3, 2, 3)]
    base = DiceCELoss()
    for target in (labels, labels[:, None]):
        got = DeepSupervisionLoss(base)(outs, fw.tensor(target)).item()
        expected = (2 / 3 * base(outs[0], fw.tensor(labels)).item()     # weights 1, 1/2, 0
                    + 1 / 3 * base(outs[1], fw.tensor(labels[:, ::2, ::2])).item())
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    one_hot = np.moveaxis(np.eye(3, dtype=np.float32)[labels], -1, 1)
    got = DeepSupervisionLoss(base, weights=[0.5, 0.5, 0.0])(outs, fw.tensor(one_hot)).item()
    expected = 0.5 * (base(outs[0], fw.tensor(one_hot)).item()
                      + base(outs[1], fw.tensor(one_hot[:, :, ::2, ::2])).item())
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert DeepSupervisionLoss(base)(outs[0], fw.tensor(labels)).item() == \
        pytest.approx(base(outs[0], fw.tensor(labels)).item())


# --- metrics ----------------------------------------------------------------------------------
def brute_surface(mask: np.ndarray) -> np.ndarray:
    """Mask voxels with a face-neighbour outside the mask (or outside the array)."""
    padded = np.pad(mask, 1)
    inner = tuple(slice(1, -1) for _ in range(mask.ndim))
    interior = padded.copy()
    for axis in range(mask.ndim):
        for step in (1, -1):
            interior &= np.roll(padded, step, axis)
    return mask & ~interior[inner]


def brute_distances(a: np.ndarray, b: np.ndarray, spacing) -> np.ndarray:
    pa = np.argwhere(brute_surface(a)) * np.asarray(spacing)
    pb = np.argwhere(brute_surface(b)) * np.asarray(spacing)
    return np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1)).min(1)


def cube(shape, lo, hi) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return m


def test_metrics_cube_and_shifted_cube():
    gt = cube((20, 20, 20), (4, 4, 4), (14, 14, 14))
    pred = cube((20, 20, 20), (6, 4, 4), (16, 14, 14))   # shifted by 2 voxels along axis 0
    assert dice_score(pred, gt) == 2 * 800 / 2000
    assert iou_score(pred, gt) == 800 / 1200
    spacing = (2.0, 1.0, 0.5)
    # the Hausdorff distance of a cube shifted by 2 voxels of 2 mm is 4 mm
    assert hausdorff_distance(pred, gt, spacing, percentile=100) == pytest.approx(4.0)
    d_pg, d_gp = brute_distances(pred, gt, spacing), brute_distances(gt, pred, spacing)
    assert hausdorff_distance(pred, gt, spacing) == pytest.approx(
        max(np.percentile(d_pg, 95), np.percentile(d_gp, 95)))
    assert mean_surface_distance(pred, gt, spacing) == pytest.approx(
        np.concatenate([d_pg, d_gp]).mean())
    assert mean_surface_distance(pred, gt, spacing, symmetric=False) == pytest.approx(d_pg.mean())


def test_metrics_known_distances_with_anisotropic_spacing():
    # two parallel one-voxel plates 3 voxels apart along axis 0, 1.5 mm spacing there: every
    # surface voxel is 4.5 mm from the other surface
    gt, pred = np.zeros((8, 6, 5), bool), np.zeros((8, 6, 5), bool)
    gt[2], pred[5] = True, True
    spacing = (1.5, 0.7, 2.0)
    assert hausdorff_distance(pred, gt, spacing) == pytest.approx(4.5)
    assert mean_surface_distance(pred, gt, spacing) == pytest.approx(4.5)
    # single voxels: sqrt((3*2)^2 + (4*1)^2 + 0)
    a, b = np.zeros((6, 6, 3), bool), np.zeros((6, 6, 3), bool)
    a[1, 1, 1], b[4, 5, 1] = True, True
    assert hausdorff_distance(b, a, (2.0, 1.0, 3.0)) == pytest.approx(math.sqrt(52))
    # the 2D case, and a surface half on the other surface: distances {0, 0, 2, 2} -> mean 1
    s, t = np.zeros((4, 6), bool), np.zeros((4, 6), bool)
    s[1, 0:2], s[1, 4:6] = True, True
    t[1, 0:2], t[3, 4:6] = True, True
    d_st, d_ts = surface_distances(s, t)
    np.testing.assert_allclose(np.sort(d_st), [0, 0, 2, 2])
    assert mean_surface_distance(s, t) == pytest.approx(1.0)


def test_metrics_match_brute_force_on_random_blobs():
    from scipy import ndimage
    rng = np.random.default_rng(6)
    spacing = (2.5, 0.8, 1.2)
    for _ in range(3):
        field = ndimage.gaussian_filter(rng.standard_normal((12, 14, 10)), 1.5)
        gt, pred = field > 0.05, ndimage.shift(field, (1, -1, 0), order=1) > 0.0
        d_pg, d_gp = brute_distances(pred, gt, spacing), brute_distances(gt, pred, spacing)
        got_pg, got_gp = surface_distances(pred, gt, spacing)
        np.testing.assert_allclose(np.sort(got_pg), np.sort(d_pg), rtol=1e-12)
        np.testing.assert_allclose(np.sort(got_gp), np.sort(d_gp), rtol=1e-12)
        m = segmentation_metrics(pred.astype(np.uint8) * 2, gt.astype(np.uint8) * 2,
                                 spacing=spacing)[2]
        assert m.hd95 == pytest.approx(max(np.percentile(d_pg, 95), np.percentile(d_gp, 95)))
        assert m.msd == pytest.approx(np.concatenate([d_pg, d_gp]).mean())
        assert m.dice == pytest.approx(2 * (gt & pred).sum() / (gt.sum() + pred.sum()))


def test_metrics_empty_masks_and_labels():
    gt = np.zeros((6, 6), np.int64)
    gt[1:4, 1:4] = 1
    pred = np.zeros_like(gt)
    pred[1:4, 1:4] = 1
    pred[5, 5] = 2                       # label 2: predicted but absent from the ground truth
    gt[0, 5] = 3                         # label 3: missed
    m = segmentation_metrics(pred, gt, spacing=(1.0, 2.0))
    assert sorted(m) == [1, 2, 3]
    assert (m[1].dice, m[1].iou, m[1].hd95, m[1].msd) == (1.0, 1.0, 0.0, 0.0)
    assert math.isnan(m[2].dice) and m[2].hd95 == math.inf and m[2].empty_gt and not m[2].empty_pred
    assert m[3].dice == 0.0 and m[3].msd == math.inf and m[3].empty_pred and not m[3].empty_gt
    both = segmentation_metrics(pred, gt, labels=[4])[4]
    assert math.isnan(both.dice) and math.isnan(both.hd95) and math.isnan(both.msd)
    assert both.empty_pred and both.empty_gt
    assert segmentation_metrics(pred, gt, labels=[4], ignore_empty=False)[4].dice == 1.0
    assert segmentation_metrics(pred, gt, labels=[2], ignore_empty=False)[2].dice == 0.0
    assert set(m[1].as_dict()) == {"dice", "iou", "hd95", "msd", "empty_pred", "empty_gt"}
    with pytest.raises(ValueError, match="spacing must be 2 positive numbers"):
        segmentation_metrics(pred, gt, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="differs from ground truth"):
        segmentation_metrics(pred, gt[:5])


# --- sliding-window inference -------------------------------------------------------------------
def test_window_positions_and_importance_map():
    assert window_starts(20, 8, 0.25) == [0, 6, 12]
    assert window_starts(17, 8, 0.5) == [0, 4, 8, 9]      # the last window pulled back
    assert window_starts(8, 8, 0.5) == [0]
    assert window_starts(9, 8, 0.0) == [0, 1]
    assert window_starts(10, 3, 0.9) == list(range(8))     # interval floors at 1
    g = to_np(importance_map((5, 7), "gaussian", 0.125))
    xs = [np.arange(r) - (r - 1) / 2 for r in (5, 7)]
    ref = np.exp(-xs[0][:, None] ** 2 / (2 * (5 * .125) ** 2)) * \
        np.exp(-xs[1][None, :] ** 2 / (2 * (7 * .125) ** 2))
    np.testing.assert_allclose(g, np.maximum(ref, 1e-3), rtol=1e-6)
    assert g[2, 3] == 1.0 and g.min() == pytest.approx(1e-3)
    assert np.all(to_np(importance_map((3, 4), "constant")) == 1)


@pytest.mark.parametrize("mode", ["constant", "gaussian"])
@pytest.mark.parametrize("overlap", [0.25, 0.5])
@pytest.mark.parametrize("shape,roi", [((2, 2, 20, 17, 9), (8, 8, 4)),   # roi divides nothing
                                       ((1, 1, 5, 17, 6), (8, 8, 8)),    # smaller than roi
                                       ((3, 2, 13, 6), (4, 10))])        # 2D, mixed
def test_sliding_window_identity_is_exact(mode, overlap, shape, roi, device):
    x = as_fw(np.random.default_rng(7).standard_normal(shape).astype(np.float32), device)
    y = sliding_window_inference(x, roi, 3, lambda w: w, overlap=overlap, mode=mode)
    assert tuple(y.shape) == shape
    np.testing.assert_allclose(to_np(y), to_np(x), rtol=1e-6, atol=1e-6)
    x64 = as_fw(to_np(x).astype(np.float64), device)
    y64 = sliding_window_inference(x64, roi, 2, lambda w: w, overlap=overlap, mode=mode)
    assert y64.dtype == fw.float64
    np.testing.assert_allclose(to_np(y64), to_np(x64), rtol=1e-13, atol=1e-13)


def _clean_voxels(size: int, roi: int, overlap: float) -> np.ndarray:
    """Voxels that no window has on an edge inside the volume (where the window's zero
    padding differs from the full volume's neighbours)."""
    clean = np.ones(size, bool)
    for a in window_starts(size, roi, overlap):
        if a > 0:
            clean[a] = False
        if a + roi < size:
            clean[a + roi - 1] = False
    return clean


def test_sliding_window_conv_predictor_matches_full_volume(device):
    rng = np.random.default_rng(8)
    x = as_fw(rng.standard_normal((2, 2, 14, 19, 11)).astype(np.float32), device)
    w3 = as_fw(rng.standard_normal((3, 2, 3, 3, 3)).astype(np.float32), device)
    w1 = as_fw(rng.standard_normal((3, 2, 1, 1, 1)).astype(np.float32), device)
    roi, overlap = (8, 8, 6), 0.5
    for mode in ("constant", "gaussian"):
        # pointwise: equal everywhere
        got = sliding_window_inference(x, roi, 4, lambda t: F.conv3d(t, w1), overlap, mode)
        close(to_np(got), to_np(F.conv3d(x, w1)), atol=1e-6)
        # 3x3x3: equal wherever no window edge falls inside the volume
        got = sliding_window_inference(x, roi, 4, lambda t: F.conv3d(t, w3, padding=1),
                                       overlap, mode)
        full = to_np(F.conv3d(x, w3, padding=1))
        clean = np.ix_(*[np.flatnonzero(_clean_voxels(s, r, overlap))
                         for s, r in zip(x.shape[2:], roi)])
        assert all(len(c.ravel()) >= 4 for c in clean)
        every = (slice(None), slice(None))
        close(to_np(got)[every + clean], full[every + clean], atol=1e-5)
        assert not np.allclose(to_np(got), full, atol=1e-3)  # the seams do differ


def test_sliding_window_batching_does_not_change_results(device):
    net = UNet(3, 1, 3, channels=(4, 8)).to(device).eval()
    x = as_fw(np.random.default_rng(9).standard_normal((2, 1, 9, 13, 7)).astype(np.float32),
              device)
    with fw.no_grad():
        runs = [to_np(sliding_window_inference(x, (8, 8, 4), b, net, 0.25, "gaussian"))
                for b in (1, 3, 100)]
    assert runs[0].shape == (2, 3, 9, 13, 7)
    for r in runs[1:]:  # to float32 rounding: a batch of 100 windows takes the direct convs
        np.testing.assert_allclose(r, runs[0], rtol=1e-5, atol=1e-5)


def test_sliding_window_bad_input():
    x = fw.randn(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"must return a tensor \(2, C, 4, 4\)"):
        sliding_window_inference(x, 4, 2, lambda w: w[..., :2, :], 0.0)
    with pytest.raises(ValueError, match="overlap must be in"):
        sliding_window_inference(x, 4, 2, lambda w: w, 1.0)
    with pytest.raises(ValueError, match="mode must be"):
        sliding_window_inference(x, 4, 2, lambda w: w, 0.0, mode="cosine")
    with pytest.raises(ValueError, match="roi_size needs 2 values"):
        sliding_window_inference(x, (4, 4, 4), 2, lambda w: w)
    # roi entries <= 0 mean the whole axis
    y = sliding_window_inference(x, (0, 3), 1, lambda w: 2 * w, 0.0)
    np.testing.assert_allclose(to_np(y), 2 * to_np(x), rtol=1e-6)


def test_flip_tta(device):
    rng = np.random.default_rng(10)
    w = rng.standard_normal((2, 1, 3, 3, 3)).astype(np.float32)
    sym = w + w[:, :, ::-1] + w[:, :, :, ::-1] + w[:, :, ::-1, ::-1]   # mirror-symmetric in 2 axes
    sym = sym + sym[..., ::-1]
    w_sym, w_any = as_fw(sym.copy(), device), as_fw(w, device)
    x = as_fw(rng.standard_normal((2, 1, 6, 7, 5)).astype(np.float32), device)

    def equivariant(t):
        return F.conv3d(t, w_sym, padding=1)

    close(to_np(flip_tta(equivariant, (0, 1, 2))(x)), to_np(equivariant(x)), atol=1e-5)
    # a predictor that is not equivariant: the mean over the mirrored calls, axes relative to
    # the spatial dims (-1 = the last)
    def plain(t):
        return F.conv3d(t, w_any, padding=1)

    got = to_np(flip_tta(plain, (-1,))(x))
    expected = (to_np(plain(x)) + to_np(plain(x.flip(4))) [..., ::-1]) / 2
    close(got, expected, atol=1e-5)
    assert not np.allclose(got, to_np(plain(x)), atol=1e-3)
    calls = []
    flip_tta(lambda t: calls.append(1) or t, (0, 1, 2))(x)
    assert len(calls) == 8
    with pytest.raises(ValueError, match="out of range"):
        flip_tta(plain, (3,))(x)
    # the whole chain: sliding windows of a mirrored UNet keep the input's shape
    net = UNet(3, 1, 2, channels=(2, 4)).to(device).eval()
    with fw.no_grad():
        y = sliding_window_inference(x, (4, 4, 4), 4, flip_tta(net, (0, 1)), 0.5, "gaussian")
    assert tuple(y.shape) == (2, 2, 6, 7, 5)


def test_remove_small_components_per_label():
    from models.mri import remove_small_components
    labels = np.zeros((6, 8, 8), np.uint8)
    labels[1:4, 1:4, 1:4] = 1            # 27 voxels: kept
    labels[5, 6, 6] = 1                  # 1 voxel: removed
    labels[0, 6:8, 0:2] = 2              # 4 voxels of label 2: removed at min_size 5
    labels[3:6, 5:8, 5] = 2              # 9 voxels of label 2: kept
    out = remove_small_components(labels, 5)
    assert out[1:4, 1:4, 1:4].all() and out[5, 6, 6] == 0
    assert (out[0, 6:8, 0:2] == 0).all() and (out[3:6, 5:8, 5] == 2).all()
    assert labels[5, 6, 6] == 1                          # the input is left alone
    np.testing.assert_array_equal(remove_small_components(labels, 0), labels)
