"""framework.nn.functional beyond the op table (tests/optable_nn.py, run by tests/test_ops.py):
the channels-last fast paths of conv/norm/pool chains, running statistics, random ops'
statistics, in-place variants, max_norm, straight-through gradients, NaN semantics, double
backward through training blocks, and error messages."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import framework
import framework.nn.functional as F
from conftest import torch_or_skip
from framework.autograd import gradcheck, gradgradcheck
from framework.ops.conv import is_channels_last

RNG = np.random.default_rng(0)


def _t(arr, device, dtype=None, requires_grad=False):
    t = framework.tensor(np.asarray(arr), dtype=dtype, device=device)
    return t.requires_grad_(requires_grad) if requires_grad else t


def _np(t):
    return t.detach().cpu().numpy()


def _close(a, b, rtol=1e-4, atol=1e-5, what=""):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol, err_msg=what)


# ---------------------------------------------------------------------------- conv blocks
def _block_params(rng, cins, couts, k=3):
    ws = [rng.standard_normal((co, ci, k, k)).astype(np.float32) * 0.3
          for ci, co in zip(cins, couts)]
    gs = [rng.uniform(0.5, 1.5, co).astype(np.float32) for co in couts]
    bs = [rng.standard_normal(co).astype(np.float32) * 0.1 for co in couts]
    return ws, gs, bs


def _run_block(lib, Fm, x, ws, gs, bs, rms, rvs, strides):
    h = x
    for w, g, b, rm, rv, s in zip(ws, gs, bs, rms, rvs, strides):
        h = Fm.conv2d(h, w, None, s, 1)
        h = Fm.batch_norm(h, rm, rv, g, b, True, 0.1, 1e-5)
        h = Fm.relu(h)
    h = Fm.max_pool2d(h, 2, ceil_mode=True)
    return h.mean((2, 3))


def test_conv_bn_relu_chain_matches_torch(device):
    """The W2 pattern (conv -> BN(train) -> ReLU, strides 1/2/2) runs channels-last inside;
    outputs, every gradient and the running statistics match PyTorch."""
    torch = torch_or_skip()
    rng = np.random.default_rng(1)
    cins, couts, strides = (3, 8, 12), (8, 12, 16), (1, 2, 2)
    ws, gs, bs = _block_params(rng, cins, couts)
    xa = rng.standard_normal((4, 3, 12, 12)).astype(np.float32)

    fx = _t(xa, device, requires_grad=True)
    fw = [_t(a, device, requires_grad=True) for a in ws]
    fg = [_t(a, device, requires_grad=True) for a in gs]
    fb = [_t(a, device, requires_grad=True) for a in bs]
    frm = [framework.zeros(c, device=device) for c in couts]
    frv = [framework.ones(c, device=device) for c in couts]
    out = _run_block(framework, F, fx, fw, fg, fb, frm, frv, strides)

    tx = torch.tensor(xa, requires_grad=True)
    tw = [torch.tensor(a, requires_grad=True) for a in ws]
    tg = [torch.tensor(a, requires_grad=True) for a in gs]
    tb = [torch.tensor(a, requires_grad=True) for a in bs]
    trm = [torch.zeros(c) for c in couts]
    trv = [torch.ones(c) for c in couts]
    tout = _run_block(torch, torch.nn.functional, tx, tw, tg, tb, trm, trv, strides)
    _close(_np(out), tout.detach().numpy(), what="output")

    up = rng.standard_normal(tuple(tout.shape)).astype(np.float32)
    fgr = framework.autograd.grad([out], [fx] + fw + fg + fb, [_t(up, device)])
    tgr = torch.autograd.grad([tout], [tx] + tw + tg + tb, [torch.tensor(up)])
    for i, (a, b) in enumerate(zip(fgr, tgr)):
        _close(_np(a), b.numpy(), rtol=2e-3, atol=2e-4, what=f"grad {i}")
    for a, b in zip(frm + frv, trm + trv):
        _close(_np(a), b.numpy(), what="running stats")


def test_conv_output_is_channels_last_and_feeds_next_conv(device):
    x = framework.randn(2, 4, 6, 6, device=device)
    w = framework.randn(5, 4, 3, 3, device=device)
    y = F.conv2d(x, w, padding=1)
    assert tuple(y.shape) == (2, 5, 6, 6)
    if device == "cpu":
        assert is_channels_last(y._data)  # no transposing copy between convs
    z = F.relu(F.batch_norm(y, None, None, training=True))
    assert is_channels_last(z._data) == is_channels_last(y._data)
    # numerically the same as the same conv on a C-contiguous copy
    y2 = F.conv2d(x, w, padding=1)
    _close(_np(F.conv2d(z, framework.randn(3, 5, 3, 3, device=device), padding=1)).shape,
           (2, 3, 6, 6))
    _close(_np(y), _np(y2))


@pytest.mark.parametrize("kw", [dict(stride=1, padding=1), dict(stride=2, padding=1),
                                dict(stride=2, padding=2, dilation=2),
                                dict(stride=(1, 2), padding=(0, 1)),
                                dict(stride=3, padding=1, groups=2)])
def test_conv2d_channels_last_input_grads_match_torch(device, kw):
    """Channels-last inputs and gradients (every col2im path: unit stride, phases of a
    stride, dilation, grouped) against PyTorch."""
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    xa = rng.standard_normal((2, 6, 9, 8)).astype(np.float32)
    wa = rng.standard_normal((4, 6 // kw.get("groups", 1), 3, 3)).astype(np.float32)
    ba = rng.standard_normal(4).astype(np.float32)
    # a channels-last leaf: (N, H, W, C) storage seen as (N, C, H, W)
    fx = framework.tensor(np.ascontiguousarray(xa.transpose(0, 2, 3, 1)), device=device)
    fx = fx.permute(0, 3, 1, 2).detach().requires_grad_(True)
    fw, fb = _t(wa, device, requires_grad=True), _t(ba, device, requires_grad=True)
    y = F.conv2d(fx, fw, fb, **kw)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xa, wa, ba))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    _close(_np(y), ty.detach().numpy())
    up = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    gf = framework.autograd.grad([y], [fx, fw, fb], [_t(up, device)])
    gt = torch.autograd.grad([ty], [tx, tw, tb], [torch.tensor(up)])
    for a, b in zip(gf, gt):
        _close(_np(a), b.numpy(), rtol=1e-3, atol=1e-4)


def test_conv_double_backward_through_training_block(device):
    """Second derivatives through conv + batch norm + max pool (float64 gradgradcheck)."""
    rng = np.random.default_rng(3)
    x = _t(rng.standard_normal((2, 2, 4, 4)), device, requires_grad=True)
    w = _t(rng.standard_normal((2, 2, 2, 2)), device, requires_grad=True)
    g = _t(rng.uniform(0.5, 1.5, 2), device, requires_grad=True)

    def block(x, w, g):
        h = F.conv2d(x, w, padding=1, stride=1)
        h = F.batch_norm(h, None, None, g, None, True)
        return F.max_pool2d(F.silu(h), 2)

    assert gradcheck(block, (x, w, g))
    assert gradgradcheck(block, (x, w, g))


# ---------------------------------------------------------------------------- norms
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 4), (2, 3, 2, 3, 2)])
@pytest.mark.parametrize("momentum", [0.1, 0.7])
def test_batch_norm_running_stats_match_torch(device, shape, momentum):
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    c = shape[1]
    rm0 = rng.standard_normal(c).astype(np.float32)
    rv0 = rng.uniform(0.5, 2, c).astype(np.float32)
    frm, frv = _t(rm0, device), _t(rv0, device)
    trm, trv = torch.tensor(rm0), torch.tensor(rv0)
    for _ in range(3):
        xa = rng.standard_normal(shape).astype(np.float32) * 2 + 1
        yf = F.batch_norm(_t(xa, device), frm, frv, None, None, True, momentum, 1e-5)
        yt = torch.nn.functional.batch_norm(torch.tensor(xa), trm, trv, None, None, True,
                                            momentum, 1e-5)
        _close(_np(yf), yt.numpy())
    _close(_np(frm), trm.numpy())
    _close(_np(frv), trv.numpy())
    assert frm._version > 0  # an in-place update (modules' buffers see it)
    ye = F.batch_norm(_t(xa, device), frm, frv, None, None, False)
    _close(_np(ye), torch.nn.functional.batch_norm(torch.tensor(xa), trm, trv).numpy())


def test_batch_norm_training_needs_more_than_one_value(device):
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(framework.randn(1, 3, device=device), None, None, training=True)


def test_instance_norm_running_stats_match_torch(device):
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    xa = rng.standard_normal((3, 4, 5, 2)).astype(np.float32)
    frm, frv = framework.zeros(4, device=device), framework.ones(4, device=device)
    trm, trv = torch.zeros(4), torch.ones(4)
    yf = F.instance_norm(_t(xa, device), frm, frv, momentum=0.3)
    yt = torch.nn.functional.instance_norm(torch.tensor(xa), trm, trv, momentum=0.3)
    _close(_np(yf), yt.numpy())
    _close(_np(frm), trm.numpy())
    _close(_np(frv), trv.numpy())


def test_group_and_layer_norm_on_channels_last_input(device):
    torch = torch_or_skip()
    rng = np.random.default_rng(6)
    xa = rng.standard_normal((2, 6, 3, 4)).astype(np.float32)
    fx = framework.tensor(np.ascontiguousarray(xa.transpose(0, 2, 3, 1)), device=device)
    fx = fx.permute(0, 3, 1, 2).detach().requires_grad_(True)
    tx = torch.tensor(xa, requires_grad=True)
    w = rng.uniform(0.5, 1.5, 6).astype(np.float32)
    yf = F.group_norm(fx, 3, _t(w, device))
    yt = torch.nn.functional.group_norm(tx, 3, torch.tensor(w))
    _close(_np(yf), yt.detach().numpy())
    up = rng.standard_normal(xa.shape).astype(np.float32)
    _close(_np(framework.autograd.grad([yf], [fx], [_t(up, device)])[0]),
           torch.autograd.grad([yt], [tx], [torch.tensor(up)])[0].numpy(), rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------------------- pooling
def test_max_pool_propagates_nan_like_torch(device):
    torch = torch_or_skip()
    xa = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    xa[0, 0, 1, 2] = np.nan
    yf, idf = F.max_pool2d(_t(xa, device), 2, return_indices=True)
    yt, idt = torch.nn.functional.max_pool2d(torch.tensor(xa), 2, return_indices=True)
    np.testing.assert_array_equal(_np(yf), yt.numpy())
    np.testing.assert_array_equal(_np(idf), idt.numpy())


def test_max_pool_indices_round_trip_through_unpool(device):
    torch = torch_or_skip()
    xa = np.random.default_rng(7).standard_normal((2, 3, 7, 6)).astype(np.float32)
    kw = dict(kernel_size=3, stride=2, padding=1)
    yf, idf = F.max_pool2d(_t(xa, device), return_indices=True, **kw)
    yt, idt = torch.nn.functional.max_pool2d(torch.tensor(xa), return_indices=True, **kw)
    np.testing.assert_array_equal(_np(idf), idt.numpy())
    uf = F.max_unpool2d(yf, idf, 2, 2, output_size=(7, 6))
    ut = torch.nn.functional.max_unpool2d(yt, idt, 2, 2, output_size=(7, 6))
    _close(_np(uf), ut.numpy())


# ---------------------------------------------------------------------------- random ops
def test_dropout_statistics_and_gradient(device):
    framework.manual_seed(0)
    x = framework.ones(200, 100, device=device, requires_grad=True)
    y = F.dropout(x, 0.3)
    ya = _np(y)
    kept = ya != 0
    assert abs(kept.mean() - 0.7) < 0.02
    _close(ya[kept], np.full(kept.sum(), 1 / 0.7, np.float32))
    (g,) = framework.autograd.grad([y.sum()], [x])
    _close(_np(g), ya)  # the gradient is the same mask, same scale
    assert F.dropout(x, 0.3, training=False) is x
    assert float(F.dropout(x, 1.0).abs().sum()) == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)


def test_dropout2d_drops_whole_channels(device):
    framework.manual_seed(1)
    x = framework.ones(8, 50, 3, 4, device=device)
    ya = _np(F.dropout2d(x, 0.5))
    per_channel = ya.reshape(8, 50, -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0.35 < (per_channel[..., 0] == 0).mean() < 0.65


def test_alpha_dropout_keeps_mean_and_variance(device):
    framework.manual_seed(2)
    x = framework.randn(400, 250, device=device)
    y = _np(F.alpha_dropout(x, 0.2, training=True))
    assert abs(y.mean()) < 0.03 and abs(y.std() - 1.0) < 0.03


def test_gumbel_softmax_hard_is_straight_through(device):
    framework.manual_seed(3)
    logits = framework.randn(5, 4, device=device, requires_grad=True)
    w = framework.randn(5, 4, device=device)
    framework.manual_seed(9)
    hard = F.gumbel_softmax(logits, tau=0.7, hard=True)
    framework.manual_seed(9)
    soft = F.gumbel_softmax(logits, tau=0.7)
    ha = _np(hard)
    assert np.all(ha.sum(-1) == 1) and set(np.unique(ha)) <= {0.0, 1.0}
    np.testing.assert_array_equal(ha.argmax(-1), _np(soft).argmax(-1))
    (gh,) = framework.autograd.grad([(hard * w).sum()], [logits])
    (gs,) = framework.autograd.grad([(soft * w).sum()], [logits])
    _close(_np(gh), _np(gs))


# ---------------------------------------------------------------------------- embeddings
def test_embedding_max_norm_renormalises_weight_in_place(device):
    torch = torch_or_skip()
    wa = np.random.default_rng(8).standard_normal((6, 4)).astype(np.float32) * 3
    idx = np.array([[0, 2], [2, 5]])
    fw = _t(wa, device)
    tw = torch.tensor(wa)
    yf = F.embedding(_t(idx, device), fw, max_norm=1.5)
    yt = torch.nn.functional.embedding(torch.tensor(idx), tw, max_norm=1.5)
    _close(_np(yf), yt.numpy())
    _close(_np(fw), tw.numpy())  # rows 0, 2, 5 rescaled in place, the others untouched
    assert fw._version > 0


def test_embedding_padding_row_gets_no_gradient(device):
    w = framework.randn(5, 3, device=device, requires_grad=True)
    idx = _t(np.array([0, 2, 2, 4]), device)
    (g,) = framework.autograd.grad([F.embedding(idx, w, padding_idx=2).sum()], [w])
    ga = _np(g)
    assert np.all(ga[2] == 0) and np.all(ga[0] == 1) and np.all(ga[4] == 1)


# ---------------------------------------------------------------------------- in-place variants
@pytest.mark.parametrize("name,kw", [("relu", {}), ("elu", {"alpha": 0.5}),
                                     ("leaky_relu", {"negative_slope": 0.2}),
                                     ("hardtanh", {"min_val": -0.3, "max_val": 0.4}),
                                     ("silu", {}), ("selu", {})])
def test_inplace_activations_match_out_of_place(device, name, kw):
    xa = np.random.default_rng(9).standard_normal((3, 4))
    leaf = _t(xa, device, dtype=framework.float64, requires_grad=True)
    h = leaf * 1.0  # a non-leaf, which may be modified in place under autograd
    out = getattr(F, name)(h, inplace=True, **kw)
    assert out is h
    (g_in,) = framework.autograd.grad([(out * out).sum()], [leaf])
    leaf2 = _t(xa, device, dtype=framework.float64, requires_grad=True)
    ref = getattr(F, name)(leaf2 * 1.0, **kw)
    (g_ref,) = framework.autograd.grad([(ref * ref).sum()], [leaf2])
    _close(_np(out), _np(ref))
    _close(_np(g_in), _np(g_ref))
    with pytest.raises(RuntimeError, match="leaf Variable"):
        getattr(F, name)(leaf, inplace=True, **kw)


def test_relu_underscore_and_softmax_implicit_dim(device):
    x = framework.randn(3, 4, device=device)
    y = x.clone()
    F.relu_(y)
    _close(_np(y), np.maximum(_np(x), 0))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        s = F.softmax(x)
    assert any("Implicit dimension" in str(r.message) for r in rec)
    _close(_np(s).sum(1), np.ones(3))


# ---------------------------------------------------------------------------- losses
def test_cross_entropy_all_ignored_is_nan_like_torch(device):
    torch = torch_or_skip()
    xa = np.random.default_rng(10).standard_normal((3, 4)).astype(np.float32)
    ta = np.full(3, -100)
    lf = F.cross_entropy(_t(xa, device), _t(ta, device))
    lt = torch.nn.functional.cross_entropy(torch.tensor(xa), torch.tensor(ta))
    assert np.isnan(_np(lf)) and np.isnan(lt.item())


def test_cross_entropy_large_problem_matches_torch(device):
    """Segmentation-shaped (N, C, H, W) logits with every option at once."""
    torch = torch_or_skip()
    rng = np.random.default_rng(11)
    xa = rng.standard_normal((2, 5, 6, 7)).astype(np.float32) * 3
    ta = rng.integers(0, 5, (2, 6, 7))
    ta[0, 0, :3] = 4
    wa = rng.uniform(0.2, 2.0, 5).astype(np.float32)
    kw = dict(ignore_index=4, label_smoothing=0.15)
    fx = _t(xa, device, requires_grad=True)
    lf = F.cross_entropy(fx, _t(ta, device), _t(wa, device), **kw)
    tx = torch.tensor(xa, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(tx, torch.tensor(ta), torch.tensor(wa), **kw)
    _close(_np(lf), lt.item())
    (gf,) = framework.autograd.grad([lf], [fx])
    (gt,) = torch.autograd.grad([lt], [tx])
    _close(_np(gf), gt.numpy(), rtol=1e-3, atol=1e-6)


def test_cross_entropy_is_one_graph_node(device):
    x = framework.randn(4, 10, device=device, requires_grad=True)
    loss = F.cross_entropy(x, _t(np.array([1, 2, 3, 4]), device))
    assert type(loss.grad_fn).__name__.startswith("CrossEntropy")
    assert len(loss.grad_fn.next_functions) == 1


def test_loss_errors(device):
    x = framework.randn(3, 4, device=device)
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(x, _t(np.array([0, 4, 1]), device))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.mse_loss(x, x, reduction="avg")
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(x, x.sigmoid())


# ---------------------------------------------------------------------------- resampling
@pytest.mark.parametrize("n_in,n_out", [(7, 10), (5, 3), (6, 13), (9, 4)])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_interpolate_nearest_indices_exactly_match_torch(device, n_in, n_out, mode):
    torch = torch_or_skip()
    xa = np.arange(2 * n_in * n_in, dtype=np.float32).reshape(1, 2, n_in, n_in)
    yf = F.interpolate(_t(xa, device), size=(n_out, n_out), mode=mode)
    yt = torch.nn.functional.interpolate(torch.tensor(xa), size=(n_out, n_out), mode=mode)
    np.testing.assert_array_equal(_np(yf), yt.numpy())
    yf = F.interpolate(_t(xa, device), scale_factor=n_out / n_in, mode=mode)
    yt = torch.nn.functional.interpolate(torch.tensor(xa), scale_factor=n_out / n_in, mode=mode)
    np.testing.assert_array_equal(_np(yf), yt.numpy())


def test_interpolate_nearest_gradient_is_the_adjoint_of_its_forward(device):
    """3 -> 3 samples with scale_factor=1.3 read positions [0, 0, 1] (as PyTorch's forward);
    the gradient sums back into those positions. (PyTorch's CPU backward treats equal sizes
    as a copy, which is not the derivative of its own forward.)"""
    x = framework.tensor([[[1.0, 2.0, 3.0]]], device=device, requires_grad=True)
    y = F.interpolate(x, scale_factor=1.3)
    _close(_np(y), [[[1.0, 1.0, 2.0]]])
    (g,) = framework.autograd.grad([y], [x], [framework.tensor([[[1.0, 2.0, 3.0]]],
                                                               device=device)])
    _close(_np(g), [[[3.0, 3.0, 0.0]]])


def test_interpolate_and_pad_keep_channels_last(device):
    x = F.conv2d(framework.randn(2, 3, 5, 5, device=device),
                 framework.randn(4, 3, 1, 1, device=device))
    up = F.interpolate(x, scale_factor=2, mode="bilinear")
    if device == "cpu":
        assert is_channels_last(up._data)
    _close(_np(up).shape, (2, 4, 10, 10))


def test_resampling_errors(device):
    x = framework.randn(1, 2, 4, 4, device=device)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners option"):
        F.interpolate(x, size=3, align_corners=True)
    with pytest.raises(NotImplementedError, match="bilinear mode needs 4D"):
        F.interpolate(framework.randn(1, 2, 3, device=device), size=5, mode="bilinear")
    with pytest.raises(RuntimeError, match="Padding size should be less than"):
        F.pad(x, (4, 0, 0, 0), mode="reflect")
    with pytest.raises(NotImplementedError, match="Padding size 2 is not supported for 4D"):
        F.pad(x, (1, 1), mode="reflect")


def test_conv_errors(device):
    x = framework.randn(2, 3, 5, 5, device=device)
    with pytest.raises(RuntimeError, match=r"expected input\[2, 3, 5, 5\] to have 4 channels"):
        F.conv2d(x, framework.randn(2, 4, 3, 3, device=device))
    with pytest.raises(RuntimeError, match="Invalid padding string"):
        F.conv2d(x, framework.randn(2, 3, 3, 3, device=device), padding="full")
    with pytest.raises(RuntimeError, match="not supported for strided"):
        F.conv2d(x, framework.randn(2, 3, 3, 3, device=device), stride=2, padding="same")
    with pytest.raises(RuntimeError, match="Kernel size can't be greater"):
        F.conv2d(x, framework.randn(2, 3, 7, 7, device=device))
    with pytest.raises(RuntimeError, match="should be the same"):
        F.conv2d(x, framework.randn(2, 3, 3, 3, device=device, dtype=framework.float64))
    with pytest.raises(RuntimeError, match="output padding must be smaller"):
        F.conv_transpose2d(x, framework.randn(3, 2, 3, 3, device=device), stride=2,
                           output_padding=2)


def test_attention_fully_masked_row_is_zero(device):
    q = framework.randn(1, 3, 4, device=device, requires_grad=True)
    k = framework.randn(1, 5, 4, device=device)
    v = framework.randn(1, 5, 2, device=device)
    mask = np.ones((3, 5), bool)
    mask[1] = False
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=_t(mask, device))
    assert np.all(_np(out)[0, 1] == 0)
    (g,) = framework.autograd.grad([out.sum()], [q])
    assert np.all(np.isfinite(_np(g)))


def test_functional_ops_are_registered_without_tensor_methods():
    from framework.ops.registry import OPS
    for name in ("conv2d", "max_pool2d", "batch_norm", "cross_entropy", "interpolate",
                 "scaled_dot_product_attention", "embedding"):
        assert name in OPS and OPS[name]["method"] is None


_AA_CASES = [((32, 40), dict(size=(9, 13))), ((17, 19), dict(size=(40, 7))),
             ((20, 20), dict(scale_factor=0.3)), ((24, 30), dict(size=(7, 11), align_corners=True)),
             ((8, 8), dict(size=(8, 20)))]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("shape, kw", _AA_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_interpolate_antialias_matches_torch(mode, shape, kw, dtype):
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3) + shape).astype(dtype)
    tx, lx = torch.tensor(x, requires_grad=True), framework.tensor(x, requires_grad=True)
    ty = torch.nn.functional.interpolate(tx, mode=mode, antialias=True, **kw)
    ly = F.interpolate(lx, mode=mode, antialias=True, **kw)
    g = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(g))
    ly.backward(framework.tensor(g))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ly.detach().numpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), **tol)


def test_interpolate_antialias_gradcheck_and_errors():
    x = framework.tensor(np.random.default_rng(4).standard_normal((1, 2, 9, 7)),
                         requires_grad=True)
    for mode in ("bilinear", "bicubic"):
        f = lambda t, m=mode: F.interpolate(t, size=(4, 5), mode=m, antialias=True)  # noqa: E731
        assert gradcheck(f, (x,))
        assert gradgradcheck(f, (x,))
    with pytest.raises(ValueError, match="Anti-alias option is restricted"):
        F.interpolate(x, size=(4, 5), mode="nearest", antialias=True)
    with pytest.raises(ValueError, match="Anti-alias option is restricted"):
        F.interpolate(framework.zeros(1, 2, 8), size=4, mode="linear", antialias=True)


_FRAC_CASES = [(2, (2, 3, 11, 13), (3, 2), dict(output_size=(5, 6))),
               (2, (2, 3, 10, 10), 2, dict(output_ratio=(0.5, 0.5))),
               (3, (2, 2, 7, 8, 9), (2, 3, 2), dict(output_size=(4, 3, 5))),
               (2, (1, 2, 6, 6), 3, dict(output_size=1))]


@pytest.mark.parametrize("d, shape, k, kw", _FRAC_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fractional_max_pool_matches_torch_given_the_samples(d, shape, k, kw, dtype):
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(dtype)
    u = rng.random(shape[:2] + (d,)).astype(dtype)
    tf = getattr(torch.nn.functional, f"fractional_max_pool{d}d")
    lf = getattr(F, f"fractional_max_pool{d}d")
    tx, lx = torch.tensor(x, requires_grad=True), framework.tensor(x, requires_grad=True)
    ty, ti = tf(tx, k, return_indices=True, _random_samples=torch.tensor(u), **kw)
    ly, li = lf(lx, k, return_indices=True, _random_samples=framework.tensor(u), **kw)
    g = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(g))
    ly.backward(framework.tensor(g))
    np.testing.assert_array_equal(ly.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(li.numpy(), ti.numpy())
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_fractional_max_pool_modules_gradcheck_and_errors():
    x = framework.tensor(np.random.default_rng(6).standard_normal((2, 2, 9, 9)),
                         requires_grad=True)
    m = framework.nn.FractionalMaxPool2d(2, output_ratio=0.5)
    assert m(x).shape == (2, 2, 4, 4)
    u = framework.rand(2, 2, 2, dtype=framework.float64)
    fixed = framework.nn.FractionalMaxPool2d(3, output_size=4, _random_samples=u)
    assert gradcheck(fixed, (x,))
    assert "_random_samples" in fixed.state_dict()
    assert framework.nn.FractionalMaxPool3d(2, output_size=3)(
        framework.randn(1, 1, 6, 6, 6)).shape == (1, 1, 3, 3, 3)
    with pytest.raises(ValueError, match="either an output size, or a pooling ratio"):
        framework.nn.FractionalMaxPool2d(2)
    with pytest.raises(ValueError, match="output_ratio must be between 0 and 1"):
        framework.nn.FractionalMaxPool2d(2, output_ratio=1.5)
    with pytest.raises(RuntimeError, match="too large relative to input size"):
        F.fractional_max_pool2d(x, 5, output_size=8)
