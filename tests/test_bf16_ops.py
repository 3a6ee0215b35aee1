"""bfloat16 inputs of the common CNN / Transformer ops, against PyTorch's own bfloat16 CPU
kernels run on the same values: outputs and gradients (values and dtypes), batch-norm running
statistics, in-place and autocast behaviour, float32 paths left as they were, and small CNN /
Transformer models trained three steps under CPU autocast.

Tolerance: bfloat16 keeps 8 significant bits, so one ulp is 2**-7 of the leading power of two.
Lantern computes a bfloat16 op in float32 and rounds once; PyTorch mostly does the same, but
some of its kernels round intermediate results or accumulate in bfloat16 (softmax and sigmoid
steps, max-pool gradients of overlapping windows, layer-norm weight gradients per thread). So
results may differ by a rounding or two: a tensor passes when every element is within
`ULPS` = 2 bfloat16 ulps of the tensor's largest magnitude (elements near zero after a
cancellation are judged at the tensor's scale, not their own)."""
import numpy as np
import pytest

import framework as fw
import framework.nn.functional as FF

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(fw.bfloat16.np is None, reason="bfloat16 needs ml_dtypes")

ULPS = 2
_RNG = np.random.default_rng(0)


def _r(*shape, scale=1.0):
    return (_RNG.standard_normal(shape) * scale).astype(np.float32)


def _assert_close_bf16(ours, theirs, what):
    o = ours.detach().float().numpy()
    t = theirs.detach().float().numpy()
    assert o.shape == t.shape, (what, o.shape, t.shape)
    top = float(np.abs(t).max()) if t.size else 0.0
    ulp = 2.0 ** (np.floor(np.log2(top)) - 7) if top > 0 else 2.0 ** -133
    err = float(np.abs(o - t).max()) if t.size else 0.0
    assert err <= ULPS * ulp, f"{what}: max |ours - torch| = {err:.3g} > {ULPS} ulp ({ulp:.3g})"


def _dtype_name(t):
    return str(t.dtype).split(".")[-1]


def helper_test_bf16(fn, arrays, bf16=None, grad=True):
    """fn(lib, F, *tensors) on torch and on framework with the same inputs (bfloat16 where
    `bf16` says so, default all, float32 otherwise); compares each output and, with a random
    upstream gradient in the output dtype, each input's gradient (values and dtypes)."""
    bf16 = [True] * len(arrays) if bf16 is None else bf16
    g_arrays, results = None, []
    for lib, F in ((torch, torch.nn.functional), (fw, FF)):
        ts = []
        for a, b in zip(arrays, bf16):
            t = lib.tensor(a)
            if b:
                t = t.to(lib.bfloat16)
            ts.append(t.requires_grad_(grad))
        out = fn(lib, F, *ts)
        outs = out if isinstance(out, tuple) else (out,)
        if grad:
            if g_arrays is None:
                g_arrays = [_r(*o.shape) for o in outs]
            lib.autograd.backward([o for o in outs],
                                  [lib.tensor(g).to(o.dtype) for g, o in zip(g_arrays, outs)])
        results.append((outs, [t.grad for t in ts]))
    (t_outs, t_grads), (o_outs, o_grads) = results
    for i, (o, t) in enumerate(zip(o_outs, t_outs)):
        assert _dtype_name(o) == _dtype_name(t), (i, o.dtype, t.dtype)
        _assert_close_bf16(o, t, f"output {i}")
    for i, (o, t) in enumerate(zip(o_grads, t_grads)):
        assert (o is None) == (t is None), f"gradient {i}: only one side has it"
        if t is not None:
            assert _dtype_name(o) == _dtype_name(t), (f"gradient {i}", o.dtype, t.dtype)
            _assert_close_bf16(o, t, f"gradient {i}")


_X4 = _r(4, 3, 8, 8)
_KINKS = np.array([[-6, -3, -1, -0.5, 0, 0.5, 1, 3, 6, 20]], np.float32)  # exact in bf16


# ---------------------------------------------------------------------------- activations
def test_leaky_relu(): helper_test_bf16(lambda m, F, x: F.leaky_relu(x, 0.1), [_X4])
def test_elu(): helper_test_bf16(lambda m, F, x: F.elu(x), [_X4])
def test_selu(): helper_test_bf16(lambda m, F, x: F.selu(x), [_X4])
def test_celu(): helper_test_bf16(lambda m, F, x: F.celu(x, 2.0), [_X4])
def test_gelu(): helper_test_bf16(lambda m, F, x: F.gelu(x), [_X4])
def test_gelu_tanh(): helper_test_bf16(lambda m, F, x: F.gelu(x, approximate="tanh"), [_X4])
def test_silu(): helper_test_bf16(lambda m, F, x: F.silu(x), [_X4])
def test_mish(): helper_test_bf16(lambda m, F, x: F.mish(x), [_X4])
def test_hardswish(): helper_test_bf16(lambda m, F, x: F.hardswish(x * 3), [_X4])
def test_hardswish_kinks(): helper_test_bf16(lambda m, F, x: F.hardswish(x), [_KINKS])
def test_hardsigmoid_kinks(): helper_test_bf16(lambda m, F, x: F.hardsigmoid(x), [_KINKS])
def test_hardtanh(): helper_test_bf16(lambda m, F, x: F.hardtanh(x), [_KINKS])
def test_relu6(): helper_test_bf16(lambda m, F, x: F.relu6(x * 4), [_X4])
def test_softplus(): helper_test_bf16(lambda m, F, x: F.softplus(x), [_X4])
def test_logsigmoid(): helper_test_bf16(lambda m, F, x: F.logsigmoid(x), [_X4])
def test_softsign(): helper_test_bf16(lambda m, F, x: F.softsign(x), [_X4])
def test_glu(): helper_test_bf16(lambda m, F, x: F.glu(x, 1), [_r(4, 4, 8)])
def test_prelu(): helper_test_bf16(lambda m, F, x, w: F.prelu(x, w), [_X4, _r(3) * 0.25])
def test_rrelu_eval(): helper_test_bf16(lambda m, F, x: F.rrelu(x), [_X4])
def test_softmax_long_rows(): helper_test_bf16(lambda m, F, x: F.softmax(x, -1), [_r(4, 1024)])
def test_log_softmax(): helper_test_bf16(lambda m, F, x: F.log_softmax(x, -1), [_r(4, 512)])


# ---------------------------------------------------------------------------- normalization
def test_batch_norm_train_f32_affine():
    helper_test_bf16(lambda m, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                     [_X4, _r(3), _r(3)], [True, False, False])
def test_batch_norm_train_bf16_affine():
    helper_test_bf16(lambda m, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                     [_X4, _r(3), _r(3)])
def test_batch_norm_eval():
    helper_test_bf16(lambda m, F, x, w, b, rm, rv: F.batch_norm(
        x, rm.detach(), rv.detach().abs() + 0.5, w, b, training=False),
        [_X4, _r(3), _r(3), _r(3), _r(3)], [True, False, False, False, False])
def test_batch_norm_1d():
    helper_test_bf16(lambda m, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                     [_r(16, 5), _r(5), _r(5)], [True, False, False])
def test_batch_norm_channels_last():
    helper_test_bf16(lambda m, F, x, w, b: F.batch_norm(  # an NHWC-strided NCHW tensor
        x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2), None, None, w, b, training=True),
        [_X4, _r(3), _r(3)], [True, False, False])
def test_layer_norm_f32_affine():
    helper_test_bf16(lambda m, F, x, w, b: F.layer_norm(x, (16,), w, b),
                     [_r(2, 3, 16), _r(16), _r(16)], [True, False, False])
def test_layer_norm_bf16_affine():
    helper_test_bf16(lambda m, F, x, w, b: F.layer_norm(x, (16,), w, b),
                     [_r(2, 3, 16), _r(16), _r(16)])
def test_group_norm():
    helper_test_bf16(lambda m, F, x, w, b: F.group_norm(x, 2, w, b),
                     [_r(2, 4, 5, 5), _r(4), _r(4)], [True, False, False])
def test_instance_norm(): helper_test_bf16(lambda m, F, x: F.instance_norm(x), [_r(2, 4, 5, 5)])
@pytest.mark.filterwarnings("ignore:Mismatch dtype")  # torch's note on its unfused path
def test_rms_norm():
    helper_test_bf16(lambda m, F, x, w: F.rms_norm(x, (16,), w), [_r(2, 3, 16, scale=0.05),
                                                                   _r(16)], [True, False])


# ---------------------------------------------------------------------------- pooling
def test_max_pool1d(): helper_test_bf16(lambda m, F, x: F.max_pool1d(x, 2), [_r(2, 3, 8)])
def test_max_pool2d(): helper_test_bf16(lambda m, F, x: F.max_pool2d(x, 2), [_X4])
def test_max_pool2d_overlapping(): helper_test_bf16(lambda m, F, x: F.max_pool2d(x, 3, 2, 1), [_X4])
def test_max_pool2d_indices():
    helper_test_bf16(lambda m, F, x: F.max_pool2d(x, 2, return_indices=True)[0], [_X4])
def test_max_pool3d(): helper_test_bf16(lambda m, F, x: F.max_pool3d(x, 2), [_r(2, 3, 4, 4, 4)])
def test_avg_pool1d(): helper_test_bf16(lambda m, F, x: F.avg_pool1d(x, 3, 2), [_r(2, 3, 9)])
def test_avg_pool2d(): helper_test_bf16(lambda m, F, x: F.avg_pool2d(x, 3, 2, 1), [_X4])
def test_adaptive_avg_pool_1(): helper_test_bf16(lambda m, F, x: F.adaptive_avg_pool2d(x, 1), [_X4])
def test_adaptive_avg_pool_3(): helper_test_bf16(lambda m, F, x: F.adaptive_avg_pool2d(x, 3), [_X4])
def test_adaptive_max_pool2d(): helper_test_bf16(lambda m, F, x: F.adaptive_max_pool2d(x, 3), [_X4])


# ---------------------------------------------------------------------------- the rest of a model
def test_interpolate_bilinear():
    helper_test_bf16(lambda m, F, x: F.interpolate(x, scale_factor=2, mode="bilinear"), [_X4])
def test_interpolate_nearest():
    helper_test_bf16(lambda m, F, x: F.interpolate(x, scale_factor=2), [_X4])
def test_cross_entropy():
    helper_test_bf16(lambda m, F, x: F.cross_entropy(x, m.tensor([0, 2, 1, 4])), [_r(4, 5)])
def test_sdpa():
    helper_test_bf16(lambda m, F, q, k, v: F.scaled_dot_product_attention(q, k, v),
                     [_r(1, 2, 64, 8), _r(1, 2, 64, 8), _r(1, 2, 64, 8)])
def test_sum_long(): helper_test_bf16(lambda m, F, x: (x + 3).sum(-1), [_r(2, 4096)])
def test_mean_tokens(): helper_test_bf16(lambda m, F, x: (x + 3).mean(1), [_r(2, 197, 16)])
def test_norm(): helper_test_bf16(lambda m, F, x: (x + 3).norm(dim=-1), [_r(2, 4096)])
def test_broadcast_grad():
    helper_test_bf16(lambda m, F, x, b: x + b, [_r(64, 64, 16), _r(16)])


# ---------------------------------------------------------------------------- beyond values
def test_batch_norm_running_stats_match_torch():
    """bfloat16 input, float32 weight and running statistics (autocast's case): the running
    statistics stay float32 and are updated from the float32 batch statistics, as PyTorch's."""
    stats = []
    for lib in (torch, fw):
        bn = lib.nn.BatchNorm2d(3)
        x = lib.tensor(_X4).to(lib.bfloat16)
        for k in range(3):
            y = bn(x * (1.0 + k) + 0.5)
        assert _dtype_name(y) == "bfloat16" and _dtype_name(bn.running_mean) == "float32"
        stats.append((bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()))
    np.testing.assert_allclose(stats[1][0], stats[0][0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(stats[1][1], stats[0][1], rtol=1e-6, atol=1e-7)


def test_bfloat16_running_stats_stay_bfloat16():
    stats = []
    for lib in (torch, fw):
        bn = lib.nn.BatchNorm2d(3).to(lib.bfloat16)
        bn(lib.tensor(_X4).to(lib.bfloat16) + 1.0)
        assert _dtype_name(bn.running_var) == "bfloat16"
        stats.append((bn.running_mean, bn.running_var))
    for o, t in zip(stats[1], stats[0]):
        _assert_close_bf16(o, t, "running statistic")


def test_dropout_scales_in_bfloat16():
    """Random streams differ from PyTorch's, so the mask is checked on its own: kept values
    are x * bf16(1/(1-p)) (PyTorch's CPU formula), the gradient uses the same mask."""
    x = fw.tensor(_r(64, 64)).to(fw.bfloat16).requires_grad_()
    y = FF.dropout(x, 0.25)
    y.backward(fw.ones_like(y))
    assert y.dtype is fw.bfloat16 and x.grad.dtype is fw.bfloat16
    keep = y.detach().float().numpy() != 0
    scale = fw.tensor(1.0 / 0.75).to(fw.bfloat16).float().item()
    want = (x.detach().float().numpy() * scale).astype(fw.bfloat16.np).astype(np.float32)
    np.testing.assert_array_equal(y.detach().float().numpy()[keep], want[keep])
    np.testing.assert_array_equal(x.grad.float().numpy(), keep * np.float32(scale))
    assert 0.7 < keep.mean() < 0.8


def test_inplace_activation_writes_bfloat16_input():
    vals = []
    for lib in (torch, fw):
        x = lib.tensor(_X4).to(lib.bfloat16)
        assert lib.nn.functional.silu(x, inplace=True) is x
        assert _dtype_name(x) == "bfloat16"
        vals.append(x)
    _assert_close_bf16(vals[1], vals[0], "in-place silu")


def test_float32_calls_add_no_casts():
    """For float32 the decorated ops run as before: same values, no cast nodes in the graph."""
    x = fw.tensor(_X4).requires_grad_()
    assert type(FF.gelu(x).grad_fn).__name__ == "Gelu"
    np.testing.assert_array_equal(FF.gelu(x).detach().numpy(),
                                  FF.gelu.__wrapped__(x).detach().numpy())
    assert type(FF.layer_norm(x, (8,)).grad_fn).__name__ == "Normalize"
    xb = x.detach().to(fw.bfloat16).requires_grad_()
    assert type(FF.gelu(xb).grad_fn).__name__ == "Cast"  # computed in float32, rounded once


def test_autocast_keeps_fp32_policy_outputs_float32():
    """avg_pool3d is on the CPU fp32 list: a bfloat16 input gives a float32 result."""
    for lib in (torch, fw):
        with lib.autocast("cpu", dtype=lib.bfloat16):
            x = lib.tensor(_r(2, 3, 4, 4, 4)).to(lib.bfloat16)
            assert _dtype_name(lib.nn.functional.avg_pool3d(x, 2)) == "float32"
            assert _dtype_name(lib.nn.functional.layer_norm(x, (4,))) == "bfloat16"


# ---------------------------------------------------------------------------- end to end
def _cnn(lib, masks=None):
    nn = lib.nn

    class RecordedDropout(nn.Module):
        """torch side: x times the mask our dropout drew, PyTorch's dropout formula."""

        def forward(self, x):
            return x * lib.tensor(masks.pop(0)).to(x.dtype)

    drop = RecordedDropout() if masks is not None else nn.Dropout(0.25)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(2), drop, nn.Flatten(), nn.Linear(8 * 4 * 4, 10))


def _encoder(lib):
    nn = lib.nn

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu",
                                                  batch_first=True)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            return self.head(self.enc(x).mean(1))
    return Encoder()


def _train_3_steps(lib, model, batches):
    opt = lib.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for x, y in batches:
        with lib.autocast("cpu", dtype=lib.bfloat16):
            out = model(lib.tensor(x))
            loss = lib.nn.functional.cross_entropy(out, lib.tensor(y))
        assert _dtype_name(out) == "bfloat16" and _dtype_name(loss) == "float32"
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses)


def _copy_weights(ours, theirs):
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})


@pytest.mark.parametrize("model", ["cnn", "encoder"])
def test_training_under_autocast_matches_torch(model):
    """3 SGD steps under CPU bfloat16 autocast from the same weights and batches: finite
    losses within 1% of PyTorch's (bfloat16 activations carry ~0.4% precision), parameters
    and running statistics close to PyTorch's."""
    rng = np.random.default_rng(1)
    shape = (4, 3, 8, 8) if model == "cnn" else (4, 5, 16)
    batches = [(rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, 4))
               for _ in range(3)]
    if model == "cnn":
        ours, masks = _cnn(fw), []
        # our mask as drawn: after max pooling of ReLU outputs a zero there has no gradient
        # either way, so "output != 0" is the mask wherever it matters
        ours[4].register_forward_hook(lambda m, i, o: masks.append(
            (o.detach().float().numpy() != 0) * fw.tensor(1 / 0.75).to(fw.bfloat16).float().item()))
        theirs = _cnn(torch, masks)
    else:
        ours, theirs = _encoder(fw), _encoder(torch)
    _copy_weights(ours, theirs)
    got = _train_3_steps(fw, ours, batches)
    want = _train_3_steps(torch, theirs, batches)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-2)
    for (name, p), q in zip(ours.state_dict().items(), theirs.state_dict().values()):
        if p.dtype.is_floating_point:
            np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=2e-2, atol=2e-3, err_msg=name)
