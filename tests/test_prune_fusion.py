"""framework.nn.utils.prune and framework.nn.utils.fusion against torch with the same weights."""
import numpy as np
import pytest

import framework as F
from conftest import torch_or_skip
from framework import nn
from framework.autograd import gradcheck
from framework.nn.utils import fusion, prune


def _torch():
    torch = torch_or_skip()
    import torch.nn.utils.fusion  # noqa: F401  (submodules torch does not import itself)
    import torch.nn.utils.prune  # noqa: F401
    return torch


def _t(torch, x):
    return torch.from_numpy(np.array(x.detach().numpy()))


def _copy_weights(ours, theirs, torch):
    with torch.no_grad():
        for name, p in ours.named_parameters():
            dict(theirs.named_parameters())[name].copy_(_t(torch, p))
        for name, b in ours.named_buffers():
            dict(theirs.named_buffers())[name].copy_(_t(torch, b))


def _pair(torch, make_ours, make_theirs, seed=0):
    ours = make_ours()
    rng = np.random.default_rng(seed)
    for p in ours.parameters():
        # distinct values, so that the pruned set does not depend on tie-breaking
        p.data = F.tensor(rng.permutation(p.numel()).reshape(tuple(p.shape)) * 0.01 - 0.3
                          + rng.normal(0, 1e-4, tuple(p.shape)), dtype=F.float32)
    theirs = make_theirs()
    _copy_weights(ours, theirs, torch)
    return ours, theirs


def _linears(torch):
    return _pair(torch, lambda: nn.Linear(6, 5), lambda: torch.nn.Linear(6, 5))


def _convs(torch):
    return _pair(torch, lambda: nn.Conv2d(3, 4, 3), lambda: torch.nn.Conv2d(3, 4, 3))


def _same_pruning(ours, theirs, torch, name="weight"):
    np.testing.assert_array_equal(getattr(ours, name + "_mask").numpy(),
                                  getattr(theirs, name + "_mask").numpy())
    np.testing.assert_allclose(getattr(ours, name).detach().numpy(),
                               getattr(theirs, name).detach().numpy(), rtol=0, atol=0)


@pytest.mark.parametrize("amount", [0, 7, 0.35, 1.0])
def test_l1_unstructured_matches_torch(amount):
    torch = _torch()
    ours, theirs = _linears(torch)
    prune.l1_unstructured(ours, "weight", amount=amount)
    torch.nn.utils.prune.l1_unstructured(theirs, "weight", amount=amount)
    _same_pruning(ours, theirs, torch)
    x = np.random.default_rng(1).normal(size=(3, 6)).astype(np.float32)
    np.testing.assert_allclose(ours(F.tensor(x)).detach().numpy(),
                               theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_l1_unstructured_importance_scores():
    torch = _torch()
    ours, theirs = _linears(torch)
    scores = np.random.default_rng(2).normal(size=(5, 6)).astype(np.float32)
    prune.l1_unstructured(ours, "weight", 0.4, importance_scores=F.tensor(scores))
    torch.nn.utils.prune.l1_unstructured(theirs, "weight", 0.4,
                                         importance_scores=torch.from_numpy(scores))
    _same_pruning(ours, theirs, torch)


@pytest.mark.parametrize("n", [1, 2, float("inf")])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("amount", [1, 0.5])
def test_ln_structured_matches_torch(n, dim, amount):
    torch = _torch()
    ours, theirs = _convs(torch)
    prune.ln_structured(ours, "weight", amount=amount, n=n, dim=dim)
    torch.nn.utils.prune.ln_structured(theirs, "weight", amount=amount, n=n, dim=dim)
    _same_pruning(ours, theirs, torch)
    x = np.random.default_rng(1).normal(size=(2, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(ours(F.tensor(x)).detach().numpy(),
                               theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_pruning_twice_uses_a_container_like_torch():
    torch = _torch()
    ours, theirs = _convs(torch)
    steps = [("ln_structured", dict(amount=1, n=2, dim=0)),
             ("l1_unstructured", dict(amount=0.3)),
             ("ln_structured", dict(amount=0.5, n=1, dim=1)),
             ("l1_unstructured", dict(amount=5))]
    for fn, kw in steps:
        getattr(prune, fn)(ours, "weight", **kw)
        getattr(torch.nn.utils.prune, fn)(theirs, "weight", **kw)
        _same_pruning(ours, theirs, torch)
    hooks = [h for h in ours._forward_pre_hooks.values()
             if isinstance(h, prune.BasePruningMethod)]
    assert len(hooks) == 1 and isinstance(hooks[0], prune.PruningContainer)
    assert [type(m).__name__ for m in hooks[0]] == ["LnStructured", "L1Unstructured",
                                                   "LnStructured", "L1Unstructured"]
    x = np.random.default_rng(1).normal(size=(2, 3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(ours(F.tensor(x)).detach().numpy(),
                               theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_global_unstructured_matches_torch():
    torch = _torch()
    (a, ta), (b, tb) = _linears(torch), _convs(torch)
    prune.l1_unstructured(a, "weight", 3)  # an earlier pruning the global one respects
    torch.nn.utils.prune.l1_unstructured(ta, "weight", 3)
    prune.global_unstructured([(a, "weight"), (b, "weight"), (b, "bias")],
                              prune.L1Unstructured, amount=0.4)
    torch.nn.utils.prune.global_unstructured([(ta, "weight"), (tb, "weight"), (tb, "bias")],
                                             torch.nn.utils.prune.L1Unstructured, amount=0.4)
    _same_pruning(a, ta, torch)
    _same_pruning(b, tb, torch)
    _same_pruning(b, tb, torch, "bias")


def test_global_unstructured_rejects_structured_methods():
    with pytest.raises(TypeError, match="unstructured"):
        prune.global_unstructured([(nn.Linear(2, 2), "weight")], prune.LnStructured,
                                  amount=1, n=2, dim=0)


def test_state_dict_keys_and_loading_into_torch():
    torch = _torch()
    ours, theirs = _convs(torch)
    prune.l1_unstructured(ours, "weight", 0.5)
    prune.random_unstructured(ours, "bias", 2)
    t2 = torch.nn.Conv2d(3, 4, 3)
    torch.nn.utils.prune.identity(t2, "weight")
    torch.nn.utils.prune.identity(t2, "bias")
    sd = ours.state_dict()
    assert list(sd) == list(t2.state_dict()) == ["weight_orig", "bias_orig", "weight_mask",
                                                 "bias_mask"]
    t2.load_state_dict({k: _t(torch, v) for k, v in sd.items()})
    x = np.random.default_rng(1).normal(size=(2, 3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(ours(F.tensor(x)).detach().numpy(),
                               t2(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    # and back: torch's pruned state_dict loads into our pruned module
    back = nn.Conv2d(3, 4, 3)
    prune.identity(back, "weight")
    prune.identity(back, "bias")
    back.load_state_dict({k: F.tensor(v.numpy()) for k, v in t2.state_dict().items()})
    np.testing.assert_allclose(back(F.tensor(x)).detach().numpy(),
                               ours(F.tensor(x)).detach().numpy(), rtol=1e-6)


def test_remove_leaves_a_plain_parameter():
    torch = _torch()
    ours, theirs = _linears(torch)
    orig = ours.weight
    prune.l1_unstructured(ours, "weight", 0.5)
    torch.nn.utils.prune.l1_unstructured(theirs, "weight", 0.5)
    assert prune.is_pruned(ours) and prune.is_pruned(nn.Sequential(ours))
    prune.remove(ours, "weight")
    torch.nn.utils.prune.remove(theirs, "weight")
    assert not prune.is_pruned(ours)
    assert ours.weight is orig and isinstance(ours.weight, nn.Parameter)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]
    assert not ours._forward_pre_hooks
    np.testing.assert_array_equal(ours.weight.detach().numpy(), theirs.weight.detach().numpy())
    with pytest.raises(ValueError, match="has to be pruned"):
        prune.remove(ours, "weight")


def test_gradients_reach_weight_orig_only_where_unmasked():
    torch = _torch()
    ours, theirs = _linears(torch)
    prune.ln_structured(ours, "weight", 2, n=2, dim=0)
    prune.l1_unstructured(ours, "weight", 0.3)
    torch.nn.utils.prune.ln_structured(theirs, "weight", 2, n=2, dim=0)
    torch.nn.utils.prune.l1_unstructured(theirs, "weight", 0.3)
    x = np.random.default_rng(1).normal(size=(3, 6)).astype(np.float32)
    (ours(F.tensor(x)) ** 2).sum().backward()
    (theirs(torch.from_numpy(x)) ** 2).sum().backward()
    g = ours.weight_orig.grad.numpy()
    assert np.all(g[ours.weight_mask.numpy() == 0] == 0)
    np.testing.assert_allclose(g, theirs.weight_orig.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-5)
    assert ours.weight_mask.grad is None and not ours.weight_mask.requires_grad
    assert [n for n, _ in ours.named_parameters()] == ["bias", "weight_orig"]


def test_pruned_forward_gradcheck():
    x = F.randn(2, 4, dtype=F.float64)
    w = F.randn(3, 4, dtype=F.float64, requires_grad=True)
    # the mask is constant under gradcheck's small perturbations (distinct magnitudes)
    assert gradcheck(lambda w: prune.L1Unstructured(5).prune(w) @ x.T, (w,))


def test_hook_recomputes_weight_from_orig():
    lin = nn.Linear(3, 2)
    prune.l1_unstructured(lin, "weight", 2)
    lin.weight_orig.data = F.ones(2, 3)
    x = F.ones(1, 3)
    np.testing.assert_allclose(lin(x).detach().numpy(),
                               (lin.weight_mask.sum(1) + lin.bias).detach().numpy()[None])
    np.testing.assert_array_equal(lin.weight.detach().numpy(), lin.weight_mask.numpy())


def test_random_pruning_counts_and_structure():
    F.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3)
    prune.random_unstructured(conv, "weight", 0.25)
    assert int((conv.weight_mask == 0).sum()) == round(0.25 * conv.weight.numel())
    prune.random_structured(conv, "weight", 3, dim=0)
    m = conv.weight_mask.numpy()
    zero_channels = [c for c in range(8) if not m[c].any()]
    assert len(zero_channels) == 3
    # the structured pruning kept the unstructured zeros in the channels it left
    assert int((m == 0).sum()) >= 3 * 27
    prune.random_structured(conv, "weight", 0.5, dim=1)  # 2 of 3 input channels
    m = conv.weight_mask.numpy()
    assert sum(1 for c in range(3) if not m[:, c].any()) == 2


def test_custom_from_mask_and_identity():
    lin = nn.Linear(3, 2)
    mask = F.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    prune.custom_from_mask(lin, "weight", mask)
    np.testing.assert_array_equal(lin.weight.detach().numpy(),
                                  (lin.weight_orig * mask).detach().numpy())
    prune.identity(lin, "bias")
    np.testing.assert_array_equal(lin.bias_mask.numpy(), np.ones(2))
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(2, 3\)"):
        prune.custom_from_mask(lin, "weight", F.ones(2, 2))
    # the failed call left the earlier pruning in place
    assert [type(h).__name__ for h in lin._forward_pre_hooks.values()] == ["CustomFromMask",
                                                                           "Identity"]
    np.testing.assert_array_equal(lin.weight_mask.numpy(), mask.numpy())


def test_invalid_amounts_and_dims():
    lin = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="non-negative integer"):
        prune.l1_unstructured(lin, "weight", -1)
    with pytest.raises(ValueError, match="non-negative integer"):
        prune.l1_unstructured(lin, "weight", 1.5)
    with pytest.raises(TypeError, match="Must be int or float"):
        prune.l1_unstructured(lin, "weight", "half")
    with pytest.raises(ValueError, match="amount=7 should be smaller"):
        prune.l1_unstructured(lin, "weight", 7)
    # a failed first pruning leaves the parameter untouched
    assert "weight" in lin._parameters and "weight_orig" not in lin._parameters
    with pytest.raises(ValueError, match="multidimensional"):
        prune.ln_structured(lin, "bias", 1, n=2, dim=0)
    with pytest.raises(IndexError, match="Invalid index 2"):
        prune.ln_structured(lin, "weight", 1, n=2, dim=2)
    assert not prune.is_pruned(lin)


def _bn_eval(bn, rng):
    bn.running_mean.copy_(F.tensor(rng.normal(size=bn.num_features), dtype=F.float32))
    bn.running_var.copy_(F.tensor(rng.uniform(0.5, 2, size=bn.num_features),
                                  dtype=F.float32))
    if bn.weight is not None:
        bn.weight.data = F.tensor(rng.normal(size=bn.num_features), dtype=F.float32)
        bn.bias.data = F.tensor(rng.normal(size=bn.num_features), dtype=F.float32)
    return bn.eval()


@pytest.mark.parametrize("conv_bias,affine", [(True, True), (False, True), (True, False)])
def test_fuse_conv_bn_matches_pair_and_torch(conv_bias, affine):
    torch = _torch()
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(3, 4, 3, bias=conv_bias).eval()
    bn = _bn_eval(nn.BatchNorm2d(4, affine=affine), rng)
    fused = fusion.fuse_conv_bn_eval(conv, bn)
    assert fused is not conv and isinstance(fused, nn.Conv2d)
    x = F.tensor(rng.normal(size=(2, 3, 6, 6)), dtype=F.float32)
    np.testing.assert_allclose(fused(x).detach().numpy(), bn(conv(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    tconv, tbn = torch.nn.Conv2d(3, 4, 3, bias=conv_bias).eval(), \
        torch.nn.BatchNorm2d(4, affine=affine).eval()
    _copy_weights(conv, tconv, torch)
    _copy_weights(bn, tbn, torch)
    tfused = torch.nn.utils.fusion.fuse_conv_bn_eval(tconv, tbn)
    np.testing.assert_allclose(fused.weight.detach().numpy(), tfused.weight.detach().numpy(),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fused.bias.detach().numpy(), tfused.bias.detach().numpy(),
                               rtol=1e-6, atol=1e-7)
    assert fused.weight.requires_grad and fused.weight.grad_fn is None


def test_fuse_conv_transpose_bn():
    torch = _torch()
    rng = np.random.default_rng(1)
    conv = nn.ConvTranspose2d(3, 5, 3, stride=2).eval()
    bn = _bn_eval(nn.BatchNorm2d(5), rng)
    fused = fusion.fuse_conv_bn_eval(conv, bn, transpose=True)
    x = F.tensor(rng.normal(size=(2, 3, 4, 4)), dtype=F.float32)
    np.testing.assert_allclose(fused(x).detach().numpy(), bn(conv(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    tconv, tbn = torch.nn.ConvTranspose2d(3, 5, 3, stride=2).eval(), torch.nn.BatchNorm2d(5).eval()
    _copy_weights(conv, tconv, torch)
    _copy_weights(bn, tbn, torch)
    tfused = torch.nn.utils.fusion.fuse_conv_bn_eval(tconv, tbn, transpose=True)
    np.testing.assert_allclose(fused(x).detach().numpy(),
                               tfused(torch.from_numpy(x.numpy())).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("features", [4, 1])
def test_fuse_linear_bn_matches_pair_and_torch(features):
    torch = _torch()
    rng = np.random.default_rng(2)
    lin = nn.Linear(6, 4).eval()
    bn = _bn_eval(nn.BatchNorm1d(features), rng)
    fused = fusion.fuse_linear_bn_eval(lin, bn)
    x = F.tensor(rng.normal(size=(5, 6)), dtype=F.float32)
    ref = bn(lin(x)) if features == 4 else bn(lin(x).reshape(5, 1, 4)).reshape(5, 4)
    np.testing.assert_allclose(fused(x).detach().numpy(), ref.detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    tlin, tbn = torch.nn.Linear(6, 4).eval(), torch.nn.BatchNorm1d(features).eval()
    _copy_weights(lin, tlin, torch)
    _copy_weights(bn, tbn, torch)
    tfused = torch.nn.utils.fusion.fuse_linear_bn_eval(tlin, tbn)
    np.testing.assert_allclose(fused(x).detach().numpy(),
                               tfused(torch.from_numpy(x.numpy())).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_fusion_errors():
    lin, bn = nn.Linear(3, 4), nn.BatchNorm1d(4)
    with pytest.raises(RuntimeError, match="eval"):
        fusion.fuse_linear_bn_eval(lin, bn)
    with pytest.raises(ValueError, match="out_features=4 and bn.num_features=3"):
        fusion.fuse_linear_bn_eval(lin.eval(), nn.BatchNorm1d(3).eval())
    with pytest.raises(ValueError, match="running stats"):
        fusion.fuse_conv_bn_eval(nn.Conv2d(2, 4, 1).eval(),
                                 nn.BatchNorm2d(4, track_running_stats=False).eval())


def test_bad_importance_scores_leave_the_pruning_unchanged():
    lin = nn.Linear(3, 2)
    prune.l1_unstructured(lin, "weight", 1)
    prune.l1_unstructured(lin, "weight", 1)
    (container,) = lin._forward_pre_hooks.values()
    with pytest.raises(ValueError, match=r"\(3, 3\) vs \(2, 3\)"):
        prune.l1_unstructured(lin, "weight", 1, importance_scores=F.ones(3, 3))
    assert len(container) == 2 and int((lin.weight_mask == 0).sum()) == 2
