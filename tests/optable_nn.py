"""Op table of framework.nn.functional (convolutions, pooling, norms, activations, dropout,
embeddings, losses, resampling, attention), in the format of tests/optable.py: every case gets
a float64 gradcheck, a gradgradcheck unless `gg=False`, and forward+backward parity with
torch.nn.functional in float32 (tests/test_ops.py runs them).

Cases whose op draws random numbers reseed inside the case (so the finite differences see
one fixed mask) and skip the parity check (PyTorch's random streams differ); their
statistics are checked against PyTorch in tests/test_functional.py instead.
"""
from __future__ import annotations

from optable import B, C, I, In, T

import framework.nn.functional  # noqa: F401  (registers the ops)
from framework.ops.rnn import gru_layer, lstm_cell, lstm_layer, rnn_layer


def F(m):
    return m.nn.functional


def _seeded(fn):
    def run(m, *a):
        m.manual_seed(0)
        return fn(m, *a)
    return run


CASES = []

# ---------------------------------------------------------------------------- linear / conv
CASES += [
    C("linear", lambda m, x, w, b: F(m).linear(x, w, b), [(3, 4), (5, 4), (5,)]),
    C("linear", lambda m, x, w: F(m).linear(x, w), [(2, 3, 4), (5, 4)], note="3d-nobias"),
    C("linear", lambda m, x, w, b: F(m).linear(x, w, b), [(4,), (2, 4), (2,)], note="1d"),
    C("linear", lambda m, x, w, b: F(m).linear(x, w, b), [T((3, 4)), T((5, 4)), (5,)],
      note="transposed"),
    C("bilinear", lambda m, a, b, w, bias: F(m).bilinear(a, b, w, bias),
      [(3, 2), (3, 4), (5, 2, 4), (5,)]),
    C("bilinear", lambda m, a, b, w: F(m).bilinear(a, b, w), [(2, 3, 2), (2, 3, 3), (2, 2, 3)],
      note="3d"),
    C("conv1d", lambda m, x, w, b: F(m).conv1d(x, w, b, stride=2, padding=1, dilation=2,
                                              groups=2), [(2, 4, 7), (6, 2, 3), (6,)]),
    C("conv1d", lambda m, x, w: F(m).conv1d(x, w, padding="same"), [(1, 2, 6), (3, 2, 4)],
      note="same-even"),
    C("conv2d", lambda m, x, w, b: F(m).conv2d(x, w, b, padding=1), [(1, 2, 5, 5), (3, 2, 3, 3),
                                                                     (3,)]),
    C("conv2d", lambda m, x, w: F(m).conv2d(x, w, stride=(2, 1), padding=(1, 0),
                                            dilation=(1, 2), groups=2),
      [(2, 4, 5, 6), (4, 2, 2, 3)], note="strided-dilated-grouped"),
    C("conv2d", lambda m, x, w: F(m).conv2d(x, w, padding="same", dilation=2),
      [(1, 2, 5, 5), (2, 2, 2, 2)], note="same"),
    C("conv2d", lambda m, x, w, b: F(m).conv2d(x, w, b, padding="valid", stride=2),
      [(1, 2, 6, 5), (2, 2, 3, 2), (2,)], note="valid"),
    C("conv2d", lambda m, x, w: F(m).conv2d(x, w), [(2, 3, 3, 4), (2, 3, 1, 1)], note="1x1"),
    C("conv2d", lambda m, x, w: F(m).conv2d(x, w, stride=2, padding=1, groups=3),
      [(1, 3, 5, 5), (3, 1, 3, 3)], note="depthwise"),
    C("conv2d", lambda m, x, w: F(m).conv2d(x, w, padding=1), [T((1, 2, 4, 3)), (2, 2, 2, 2)],
      note="noncontig"),
    C("conv2d", lambda m, x, w: F(m).conv2d(x, w, padding=(0, 1)), [(2, 4, 4), (3, 2, 2, 2)],
      note="unbatched"),
    C("conv3d", lambda m, x, w, b: F(m).conv3d(x, w, b, stride=(1, 2, 1), padding=1),
      [(1, 2, 3, 4, 3), (2, 2, 2, 2, 2), (2,)]),
    C("conv_transpose1d", lambda m, x, w, b: F(m).conv_transpose1d(
        x, w, b, stride=3, padding=2, output_padding=2, dilation=2), [(1, 2, 4), (2, 3, 3), (3,)]),
    C("conv_transpose2d", lambda m, x, w, b: F(m).conv_transpose2d(
        x, w, b, stride=2, padding=1, output_padding=1, groups=2),
      [(1, 4, 3, 3), (4, 2, 3, 3), (4,)]),
    C("conv_transpose2d", lambda m, x, w: F(m).conv_transpose2d(x, w, stride=(2, 1), dilation=2),
      [(2, 2, 3, 2), (2, 3, 2, 2)], note="dilated"),
    C("conv_transpose3d", lambda m, x, w: F(m).conv_transpose3d(x, w, stride=2, padding=(0, 1, 0)),
      [(1, 2, 2, 2, 2), (2, 2, 2, 3, 2)]),
    C("unfold", lambda m, x: F(m).unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=2),
      [(1, 2, 5, 6)]),
    C("fold", lambda m, x: F(m).fold(x, (4, 5), 2, padding=(1, 0), stride=(1, 2)),
      [(2, 8, 10)]),
]

# ---------------------------------------------------------------------------- pooling
CASES += [
    C("max_pool1d", lambda m, x: F(m).max_pool1d(x, 3, 2, 1), [(2, 3, 9)]),
    C("max_pool1d", lambda m, x: F(m).max_pool1d(x, 2, ceil_mode=True, return_indices=True),
      [(1, 2, 7)], note="ceil-indices"),
    C("max_pool2d", lambda m, x: F(m).max_pool2d(x, 3, 2, 1), [(1, 2, 6, 7)]),
    C("max_pool2d", lambda m, x: F(m).max_pool2d(x, (2, 3), 2, ceil_mode=True),
      [(2, 2, 7, 6)], note="ceil"),
    C("max_pool2d", lambda m, x: F(m).max_pool2d(x, 3, 2, 1, dilation=2, return_indices=True),
      [(1, 2, 8, 7)], note="dilated-indices"),
    C("max_pool2d", lambda m, x: F(m).max_pool2d(x, 2), [T((2, 3, 4, 6))], note="noncontig"),
    C("max_pool2d", lambda m, x: F(m).max_pool2d(x, 2, 1), [(2, 5, 4)], note="unbatched"),
    C("max_pool3d", lambda m, x: F(m).max_pool3d(x, 2, (1, 2, 2), 1, return_indices=True),
      [(1, 2, 3, 4, 4)]),
    C("avg_pool1d", lambda m, x: F(m).avg_pool1d(x, 3, 2, 1, ceil_mode=True,
                                                 count_include_pad=False), [(2, 2, 8)]),
    C("avg_pool2d", lambda m, x: F(m).avg_pool2d(x, 3, 2, 1), [(1, 2, 6, 7)]),
    C("avg_pool2d", lambda m, x: F(m).avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                 count_include_pad=False), [(1, 2, 7, 6)],
      note="exclude-pad"),
    C("avg_pool2d", lambda m, x: F(m).avg_pool2d(x, (2, 3), 2, ceil_mode=True,
                                                 divisor_override=5), [(1, 2, 7, 6)],
      note="divisor"),
    C("avg_pool3d", lambda m, x: F(m).avg_pool3d(x, 2, (1, 2, 2), 1, ceil_mode=True),
      [(1, 2, 3, 4, 5)]),
    C("adaptive_avg_pool1d", lambda m, x: F(m).adaptive_avg_pool1d(x, 4), [(2, 3, 9)]),
    C("adaptive_avg_pool2d", lambda m, x: F(m).adaptive_avg_pool2d(x, (3, 4)), [(1, 2, 7, 6)]),
    C("adaptive_avg_pool2d", lambda m, x: F(m).adaptive_avg_pool2d(x, (2, 3)), [(1, 2, 4, 6)],
      note="divisible"),
    C("adaptive_avg_pool2d", lambda m, x: F(m).adaptive_avg_pool2d(x, 1), [(2, 3, 3, 4)],
      note="global"),
    C("adaptive_avg_pool3d", lambda m, x: F(m).adaptive_avg_pool3d(x, (2, None, 3)),
      [(1, 2, 3, 4, 5)]),
    C("adaptive_max_pool1d", lambda m, x: F(m).adaptive_max_pool1d(x, 4, return_indices=True),
      [(2, 2, 9)]),
    C("adaptive_max_pool2d", lambda m, x: F(m).adaptive_max_pool2d(x, (3, 4)), [(1, 2, 7, 6)]),
    C("adaptive_max_pool2d", lambda m, x: F(m).adaptive_max_pool2d(x, 2, return_indices=True),
      [(2, 5, 5)], note="unbatched-indices"),
    C("adaptive_max_pool3d", lambda m, x: F(m).adaptive_max_pool3d(x, (2, 3, 2)),
      [(1, 2, 3, 5, 4)]),
    C("fractional_max_pool2d",
      lambda m, x: F(m).fractional_max_pool2d(x, 2, output_size=(3, 4), _random_samples=m.tensor(
          [[[0.3, 0.8], [0.6, 0.1]]], dtype=x.dtype)), [(1, 2, 7, 8)]),
    C("fractional_max_pool3d",
      lambda m, x: F(m).fractional_max_pool3d(x, (2, 1, 2), output_size=2, _random_samples=m.tensor(
          [[[0.2, 0.5, 0.9]]], dtype=x.dtype), return_indices=True), [(1, 1, 4, 3, 5)]),
    C("lp_pool1d", lambda m, x: F(m).lp_pool1d(x, 2.0, 3, 2), [(2, 2, 7)], low=0.5, high=2.0),
    C("lp_pool2d", lambda m, x: F(m).lp_pool2d(x, 3.0, 2), [(1, 2, 4, 6)], low=0.5, high=2.0),
    C("lp_pool3d", lambda m, x: F(m).lp_pool3d(x, 2.0, 2), [(1, 1, 2, 4, 4)], low=0.5,
      high=2.0),
    C("max_unpool1d", lambda m, x: F(m).max_unpool1d(*F(m).max_pool1d(x, 2, return_indices=True),
                                                     2), [(1, 2, 8)]),
    C("max_unpool2d", lambda m, x: F(m).max_unpool2d(
        *F(m).max_pool2d(x, 2, return_indices=True), 2, output_size=(5, 5)), [(1, 2, 5, 5)]),
    C("max_unpool3d", lambda m, x: F(m).max_unpool3d(*F(m).max_pool3d(x, 2, return_indices=True),
                                                     2), [(1, 1, 4, 4, 2)]),
]

# ---------------------------------------------------------------------------- normalization
CASES += [
    C("batch_norm", lambda m, x, w, b: F(m).batch_norm(x, m.zeros(3), m.ones(3), w, b, True,
                                                       0.1, 1e-5), [(4, 3, 2, 3), (3,), (3,)]),
    C("batch_norm", lambda m, x: F(m).batch_norm(x, None, None, training=True),
      [(5, 3)], note="2d-noaffine"),
    C("batch_norm", lambda m, x, w, b: F(m).batch_norm(x, None, None, w, b, True),
      [(2, 3, 4), (3,), (3,)], note="3d"),
    C("batch_norm", lambda m, x, rm, rv, w, b: F(m).batch_norm(x, rm, rv, w, b, False),
      [(3, 2, 2, 2), (2,), In((2,), 0.5, 2.0), (2,), (2,)], grad=(0, 3, 4), note="eval"),
    C("batch_norm", lambda m, x, w, b: F(m).batch_norm(x, None, None, w, b, True),
      [T((2, 2, 3, 3)), (2,), (2,)], note="noncontig"),
    C("instance_norm", lambda m, x, w, b: F(m).instance_norm(x, weight=w, bias=b),
      [(2, 3, 5), (3,), (3,)]),
    C("instance_norm", lambda m, x, rm, rv: F(m).instance_norm(x, rm, rv, use_input_stats=False),
      [(2, 2, 3, 3), (2,), In((2,), 0.5, 2.0)], grad=(0,), note="running"),
    C("group_norm", lambda m, x, w, b: F(m).group_norm(x, 2, w, b), [(2, 4, 3, 2), (4,), (4,)]),
    C("group_norm", lambda m, x: F(m).group_norm(x, 3), [(2, 6, 5)], note="noaffine"),
    C("layer_norm", lambda m, x, w, b: F(m).layer_norm(x, (3, 4), w, b),
      [(2, 3, 4), (3, 4), (3, 4)]),
    C("layer_norm", lambda m, x: F(m).layer_norm(x, [5], eps=1e-3), [(4, 5)], note="noaffine"),
    C("rms_norm", lambda m, x, w: F(m).rms_norm(x, (4,), w), [(2, 3, 4), (4,)]),
    C("rms_norm", lambda m, x: F(m).rms_norm(x, (2, 3), eps=1e-4), [(3, 2, 3)], note="noaffine"),
    C("normalize", lambda m, x: F(m).normalize(x), [(3, 4)]),
    C("normalize", lambda m, x: F(m).normalize(x, p=1.0, dim=0), [(3, 4)], note="p1"),
    C("local_response_norm", lambda m, x: F(m).local_response_norm(x, 3), [(2, 5, 4)]),
    C("local_response_norm", lambda m, x: F(m).local_response_norm(x, 2, 0.01, 0.5, 2.0),
      [(1, 4, 3, 3)], note="4d"),
]

# ---------------------------------------------------------------------------- activations
def _act(op, fn, low=-3.0, high=3.0, **kw):
    return [C(op, fn, [(3, 5)], low=low, high=high, **kw)]


CASES += (
    _act("leaky_relu", lambda m, x: F(m).leaky_relu(x, 0.2))
    + _act("elu", lambda m, x: F(m).elu(x, 0.7))
    + _act("selu", lambda m, x: F(m).selu(x))
    + _act("celu", lambda m, x: F(m).celu(x, 0.5))
    + _act("gelu", lambda m, x: F(m).gelu(x))
    + [C("gelu", lambda m, x: F(m).gelu(x, approximate="tanh"), [(3, 5)], low=-3.0, high=3.0,
         note="tanh")]
    + _act("silu", lambda m, x: F(m).silu(x))
    + _act("mish", lambda m, x: F(m).mish(x))
    + _act("hardswish", lambda m, x: F(m).hardswish(x), low=-5.0, high=5.0)
    + _act("hardsigmoid", lambda m, x: F(m).hardsigmoid(x), low=-5.0, high=5.0)
    + _act("softplus", lambda m, x: F(m).softplus(x, beta=2.0, threshold=1.0))
    + _act("hardtanh", lambda m, x: F(m).hardtanh(x, -0.5, 0.7))
    + _act("relu6", lambda m, x: F(m).relu6(x), low=-2.0, high=8.0)
    + _act("logsigmoid", lambda m, x: F(m).logsigmoid(x), low=-30.0, high=30.0)
    + _act("softsign", lambda m, x: F(m).softsign(x))
    + _act("tanhshrink", lambda m, x: F(m).tanhshrink(x))
    + _act("softshrink", lambda m, x: F(m).softshrink(x, 0.6))
    + _act("hardshrink", lambda m, x: F(m).hardshrink(x, 0.6))
    + _act("threshold", lambda m, x: F(m).threshold(x, 0.3, -1.0))
    + _act("rrelu", lambda m, x: F(m).rrelu(x))
    + _act("softmin", lambda m, x: F(m).softmin(x, 1))
    + [
        C("glu", lambda m, x: F(m).glu(x, 1), [(2, 6, 3)]),
        C("prelu", lambda m, x, w: F(m).prelu(x, w), [(2, 3, 4), (3,)]),
        C("prelu", lambda m, x, w: F(m).prelu(x, w), [(2, 3), (1,)], note="shared"),
        C("gumbel_softmax", _seeded(lambda m, x: F(m).gumbel_softmax(x, tau=0.5)), [(3, 4)],
          parity=False),
        C("rrelu", _seeded(lambda m, x: F(m).rrelu(x, training=True)), [(3, 4)],
          parity=False, note="training"),
        C("dropout", _seeded(lambda m, x: F(m).dropout(x, 0.4)), [(4, 5)], parity=False),
        C("dropout", lambda m, x: F(m).dropout(x, 0.4, training=False), [(4, 5)], note="eval"),
        C("dropout1d", _seeded(lambda m, x: F(m).dropout1d(x, 0.5)), [(2, 4, 3)], parity=False),
        C("dropout2d", _seeded(lambda m, x: F(m).dropout2d(x, 0.5)), [(2, 4, 2, 2)],
          parity=False),
        C("dropout3d", _seeded(lambda m, x: F(m).dropout3d(x, 0.5)), [(1, 4, 2, 2, 1)],
          parity=False),
        C("alpha_dropout", _seeded(lambda m, x: F(m).alpha_dropout(x, 0.3, True)), [(4, 5)],
          parity=False),
        C("feature_alpha_dropout",
          _seeded(lambda m, x: F(m).feature_alpha_dropout(x, 0.3, True)), [(2, 4, 3)],
          parity=False),
    ]
)

# ---------------------------------------------------------------------------- embeddings
CASES += [
    C("embedding", lambda m, i, w: F(m).embedding(i, w), [I((2, 3), 0, 5), (5, 4)]),
    C("embedding", lambda m, i, w: F(m).embedding(i, w, padding_idx=1, scale_grad_by_freq=True),
      [I((7,), 0, 4), (4, 3)], gradcheck=False, note="padding-freq"),  # not the true gradient
    C("embedding_bag", lambda m, i, w: F(m).embedding_bag(i, w, m.tensor([0, 2, 2, 5]),
                                                          mode="sum"),
      [I((7,), 0, 5), (5, 3)]),
    C("embedding_bag", lambda m, i, w: F(m).embedding_bag(i, w, m.tensor([0, 3, 3, 7]),
                                                          include_last_offset=True,
                                                          padding_idx=2),
      [I((7,), 0, 5), (5, 3)], note="mean-last-padding"),
    C("embedding_bag", lambda m, i, w, p: F(m).embedding_bag(i, w, m.tensor([0, 4]),
                                                             mode="sum", per_sample_weights=p),
      [I((6,), 0, 5), (5, 3), (6,)], note="psw"),
    C("embedding_bag", lambda m, i, w: F(m).embedding_bag(i, w, mode="max"),
      [I((3, 4), 0, 6), (6, 2)], note="max-2d"),
    C("embedding_bag", lambda m, i, w: F(m).embedding_bag(i, w, m.tensor([0, 2, 2]),
                                                          mode="max"),
      [I((5,), 0, 6), (6, 2)], note="max-empty"),
]

# ---------------------------------------------------------------------------- losses
CASES += [
    C("cross_entropy", lambda m, x, t: F(m).cross_entropy(x, t), [(4, 5), I((4,), 0, 5)]),
    C("cross_entropy", lambda m, x, t, w: F(m).cross_entropy(x, t, w, ignore_index=2,
                                                             label_smoothing=0.2),
      [(6, 4), I((6,), 0, 4), In((4,), 0.5, 2.0)], grad=(0,), note="weight-ignore-smooth"),
    C("cross_entropy", lambda m, x, t: F(m).cross_entropy(x, t, reduction="none",
                                                          label_smoothing=0.1),
      [(2, 3, 2, 2), I((2, 2, 2), 0, 3)], note="nd-none"),
    C("cross_entropy", lambda m, x, t, w: F(m).cross_entropy(x, t, w, reduction="sum",
                                                             ignore_index=0),
      [(2, 3, 4), I((2, 4), 0, 3), In((3,), 0.5, 2.0)], grad=(0,), note="nd-sum"),
    C("cross_entropy", lambda m, x, t: F(m).cross_entropy(x, t), [(3, 4), In((3, 4), 0.0, 1.0)],
      note="probs"),
    C("cross_entropy", lambda m, x, t, w: F(m).cross_entropy(x, t, w, label_smoothing=0.3,
                                                             reduction="none"),
      [(2, 3, 2), In((2, 3, 2), 0.0, 1.0), In((3,), 0.5, 2.0)], grad=(0, 1),
      note="probs-weight-smooth"),
    C("cross_entropy", lambda m, x, t: F(m).cross_entropy(x, t), [(5,), I((), 0, 5)],
      note="unbatched"),
    C("nll_loss", lambda m, x, t: F(m).nll_loss(x, t), [(4, 5), I((4,), 0, 5)]),
    C("nll_loss", lambda m, x, t, w: F(m).nll_loss(x, t, w, ignore_index=1),
      [(2, 3, 4), I((2, 4), 0, 3), In((3,), 0.5, 2.0)], grad=(0,), note="nd-weight-ignore"),
    C("nll_loss", lambda m, x, t: F(m).nll_loss(x, t, reduction="none"), [(4, 3), I((4,), 0, 3)],
      note="none"),
    C("binary_cross_entropy", lambda m, x, t, w: F(m).binary_cross_entropy(x, t, w),
      [In((3, 4), 0.05, 0.95), In((3, 4), 0.0, 1.0), In((3, 4), 0.5, 2.0)], grad=(0, 1)),
    C("binary_cross_entropy", lambda m, x, t: F(m).binary_cross_entropy(x, t, reduction="none"),
      [In((5,), 0.05, 0.95), In((5,), 0.0, 1.0)], note="none"),
    C("binary_cross_entropy_with_logits",
      lambda m, x, t, w, pw: F(m).binary_cross_entropy_with_logits(x, t, w, pos_weight=pw),
      [(3, 4), In((3, 4), 0.0, 1.0), In((3, 4), 0.5, 2.0), In((4,), 0.5, 3.0)], grad=(0, 1)),
    C("binary_cross_entropy_with_logits",
      lambda m, x, t: F(m).binary_cross_entropy_with_logits(x, t, reduction="sum"),
      [(6,), In((6,), 0.0, 1.0)], low=-30.0, high=30.0, note="wide"),
    C("mse_loss", lambda m, x, t: F(m).mse_loss(x, t), [(3, 4), (3, 4)]),
    C("mse_loss", lambda m, x, t, w: F(m).mse_loss(x, t, weight=w, reduction="mean"),
      [(3, 4), (3, 4), In((3, 4), 0.5, 2.0)], grad=(0, 1), note="weight"),
    C("l1_loss", lambda m, x, t: F(m).l1_loss(x, t, reduction="sum"), [(3, 4), (3, 4)]),
    C("l1_loss", lambda m, x, t, w: F(m).l1_loss(x, t, weight=w), [(3, 4), (3, 4),
                                                                 In((3, 4), 0.5, 2.0)],
      grad=(0, 1), note="weight"),
    C("smooth_l1_loss", lambda m, x, t: F(m).smooth_l1_loss(x, t, beta=0.5), [(3, 4), (3, 4)]),
    C("smooth_l1_loss", lambda m, x, t: F(m).smooth_l1_loss(x, t, beta=0.0, reduction="none"),
      [(3, 4), (3, 4)], note="beta0"),
    C("huber_loss", lambda m, x, t: F(m).huber_loss(x, t, delta=0.7), [(3, 4), (3, 4)]),
    C("huber_loss", lambda m, x, t, w: F(m).huber_loss(x, t, delta=0.7, weight=w),
      [(3, 4), (3, 4), In((3, 4), 0.5, 2.0)], grad=(0, 1), note="weight"),
    C("kl_div", lambda m, x, t: F(m).kl_div(x, t, reduction="batchmean"),
      [(3, 4), In((3, 4), 0.1, 1.0)]),
    C("kl_div", lambda m, x, t: F(m).kl_div(x, t, reduction="sum", log_target=True),
      [(3, 4), (3, 4)], note="log-target"),
    C("poisson_nll_loss", lambda m, x, t: F(m).poisson_nll_loss(x, t), [(3, 4),
                                                                       In((3, 4), 0.0, 3.0)]),
    C("poisson_nll_loss", lambda m, x, t: F(m).poisson_nll_loss(x, t, log_input=False,
                                                                full=True),
      [In((3, 4), 0.5, 2.0), In((3, 4), 0.0, 3.0)], note="full"),
    C("gaussian_nll_loss", lambda m, x, t, v: F(m).gaussian_nll_loss(x, t, v),
      [(3, 4), (3, 4), In((3, 4), 0.5, 2.0)]),
    C("gaussian_nll_loss", lambda m, x, t, v: F(m).gaussian_nll_loss(x, t, v, full=True,
                                                                     reduction="sum"),
      [(3, 4), (3, 4), In((3,), 0.5, 2.0)], note="full-homoscedastic"),
    C("pairwise_distance", lambda m, a, b: F(m).pairwise_distance(a, b), [(3, 4), (3, 4)]),
    C("pairwise_distance", lambda m, a, b: F(m).pairwise_distance(a, b, 1.0, keepdim=True),
      [(3, 4), (4,)], note="p1"),
    C("cosine_similarity", lambda m, a, b: F(m).cosine_similarity(a, b), [(3, 4), (3, 4)]),
    C("cosine_similarity", lambda m, a, b: F(m).cosine_similarity(a, b, dim=0),
      [(3, 4), (3, 1)], note="broadcast"),
    C("cosine_embedding_loss", lambda m, a, b, t: F(m).cosine_embedding_loss(
        a, b, t * 2 - 1, margin=0.2), [(4, 3), (4, 3), I((4,), 0, 2)]),
    C("margin_ranking_loss", lambda m, a, b, t: F(m).margin_ranking_loss(
        a, b, (t * 2 - 1).to(a.dtype), margin=0.3),
      [(5,), (5,), I((5,), 0, 2)]),
    C("hinge_embedding_loss", lambda m, x, t: F(m).hinge_embedding_loss(x, t * 2 - 1,
                                                                        margin=0.5),
      [(3, 4), I((3, 4), 0, 2)]),
    C("soft_margin_loss", lambda m, x, t: F(m).soft_margin_loss(x, (t * 2 - 1).to(x.dtype)),
      [(3, 4), I((3, 4), 0, 2)]),
    C("multilabel_soft_margin_loss", lambda m, x, t, w: F(m).multilabel_soft_margin_loss(
        x, t.to(x.dtype), w), [(3, 4), I((3, 4), 0, 2), In((4,), 0.5, 2.0)], grad=(0,)),
    C("multi_margin_loss", lambda m, x, t: F(m).multi_margin_loss(x, t), [(4, 5),
                                                                          I((4,), 0, 5)]),
    C("multi_margin_loss", lambda m, x, t, w: F(m).multi_margin_loss(x, t, p=2, margin=0.5,
                                                                     weight=w),
      [(4, 5), I((4,), 0, 5), In((5,), 0.5, 2.0)], grad=(0,), note="p2-weight"),
    C("multilabel_margin_loss", lambda m, x: F(m).multilabel_margin_loss(
        x, m.tensor([[3, 0, -1, 1], [1, 2, 3, -1]])), [(2, 4)]),
    C("triplet_margin_loss", lambda m, a, p, n: F(m).triplet_margin_loss(a, p, n),
      [(4, 3), (4, 3), (4, 3)]),
    C("triplet_margin_loss", lambda m, a, p, n: F(m).triplet_margin_loss(
        a, p, n, margin=0.5, p=1, swap=True, reduction="none"), [(4, 3), (4, 3), (4, 3)],
      note="swap-p1"),
    C("triplet_margin_with_distance_loss",
      lambda m, a, p, n: F(m).triplet_margin_with_distance_loss(a, p, n, swap=True),
      [(4, 3), (4, 3), (4, 3)]),
    C("triplet_margin_with_distance_loss",
      lambda m, a, p, n: F(m).triplet_margin_with_distance_loss(
          a, p, n, distance_function=lambda x, y: 1.0 - F(m).cosine_similarity(x, y),
          margin=0.4, reduction="sum"), [(4, 3), (4, 3), (4, 3)], note="cosine"),
    C("ctc_loss", lambda m, x: F(m).ctc_loss(x.log_softmax(2), m.tensor([[1, 2, 2], [3, 1, 0]]),
                                             (6, 5), (3, 1)), [(6, 2, 4)], gg=False),
    C("ctc_loss", lambda m, x: F(m).ctc_loss(x, m.tensor([1, 2, 3]), (4, 3), (2, 1),
                                             reduction="sum"), [(4, 2, 4)], parity=False,
      gg=False, note="exact-gradient"),  # PyTorch's gradient adds exp(log_probs)
    C("ctc_loss", lambda m, x: F(m).ctc_loss(x.log_softmax(1), m.tensor([2, 2]), (5,), (2,),
                                             blank=3, reduction="none"), [(5, 4)], gg=False,
      note="unbatched-blank"),
]

# ---------------------------------------------------------------------------- resampling
CASES += [
    C("pad", lambda m, x: F(m).pad(x, (1, 2, -1, 1), value=0.5), [(2, 3, 4)]),
    C("pad", lambda m, x: F(m).pad(x, (2, 1), mode="reflect"), [(2, 2, 5)], note="reflect1d"),
    C("pad", lambda m, x: F(m).pad(x, (1, 2, 2, 0), mode="reflect"), [(1, 2, 3, 4)],
      note="reflect2d"),
    C("pad", lambda m, x: F(m).pad(x, (1, 0, 2, 1, 1, 1), mode="replicate"), [(1, 2, 2, 3, 2)],
      note="replicate3d"),
    C("pad", lambda m, x: F(m).pad(x, (2, 1, 1, 3), mode="circular"), [(1, 2, 3, 4)],
      note="circular"),
    C("pad", lambda m, x: F(m).pad(x, (1, 1), mode="replicate"), [(3, 4)],
      note="replicate-unbatched"),
    C("interpolate", lambda m, x: F(m).interpolate(x, scale_factor=2), [(1, 2, 3, 4)]),
    C("interpolate", lambda m, x: F(m).interpolate(x, size=(5, 7)), [(1, 2, 3, 4)],
      note="nearest-size"),
    C("interpolate", lambda m, x: F(m).interpolate(x, size=(2, 3), mode="nearest-exact"),
      [(1, 2, 5, 7)], note="nearest-exact"),
    C("interpolate", lambda m, x: F(m).interpolate(x, scale_factor=1.7, mode="linear"),
      [(2, 2, 5)], note="linear"),
    C("interpolate", lambda m, x: F(m).interpolate(x, size=7, mode="linear", align_corners=True),
      [(2, 2, 5)], note="linear-align"),
    C("interpolate", lambda m, x: F(m).interpolate(x, size=(5, 7), mode="bilinear"),
      [(1, 2, 3, 4)], note="bilinear"),
    C("interpolate", lambda m, x: F(m).interpolate(x, scale_factor=(0.6, 1.5), mode="bilinear",
                                                   align_corners=True),
      [(1, 2, 5, 4)], note="bilinear-align"),
    C("interpolate", lambda m, x: F(m).interpolate(x, scale_factor=1.5, mode="bilinear",
                                                   recompute_scale_factor=True),
      [(1, 1, 3, 5)], note="bilinear-recompute"),
    C("interpolate", lambda m, x: F(m).interpolate(x, scale_factor=(2, 1.3), mode="bilinear"),
      [(1, 2, 2, 3)], note="bilinear-unchanged-dim"),  # a dim of unchanged size is copied
    C("interpolate", lambda m, x: F(m).interpolate(x, scale_factor=1.3, mode="nearest"),
      [(1, 2, 3)], forward_only=True, note="nearest-scale-same-size"),  # see test_functional
    C("interpolate", lambda m, x: F(m).interpolate(x, size=(5, 6), mode="bicubic"),
      [(1, 2, 3, 4)], note="bicubic"),
    C("interpolate", lambda m, x: F(m).interpolate(x, size=(3, 7), mode="bicubic",
                                                   align_corners=True),
      [(1, 1, 4, 4)], note="bicubic-align"),
    C("interpolate", lambda m, x: F(m).interpolate(x, scale_factor=(2, 1.5, 0.5),
                                                   mode="trilinear"),
      [(1, 1, 2, 3, 4)], note="trilinear"),
    C("interpolate", lambda m, x: F(m).interpolate(x, size=(3, 2), mode="area"),
      [(1, 2, 7, 5)], note="area"),
    C("grid_sample", lambda m, x, g: F(m).grid_sample(x, g, align_corners=False),
      [(1, 2, 4, 5), In((1, 3, 4, 2), -1.1, 1.1)]),
    C("grid_sample", lambda m, x, g: F(m).grid_sample(x, g, padding_mode="border",
                                                      align_corners=True),
      [(2, 1, 3, 4), In((2, 2, 3, 2), -1.2, 1.2)], note="border"),
    C("grid_sample", lambda m, x, g: F(m).grid_sample(x, g, padding_mode="reflection",
                                                      align_corners=False),
      [(1, 2, 4, 4), In((1, 3, 3, 2), -1.6, 1.6)], note="reflection"),
    C("grid_sample", lambda m, x, g: F(m).grid_sample(x, g, padding_mode="reflection",
                                                      align_corners=True),
      [(1, 1, 3, 4), In((1, 3, 2, 2), -1.6, 1.6)], note="reflection-align"),
    C("grid_sample", lambda m, x, g: F(m).grid_sample(x, g, mode="nearest",
                                                      align_corners=False),
      [(1, 2, 4, 5), In((1, 3, 3, 2), -1.1, 1.1)], grad=(0,), note="nearest"),
    C("grid_sample", lambda m, x, g: F(m).grid_sample(x, g, mode="bicubic", align_corners=False),
      [(1, 1, 4, 5), In((1, 2, 3, 2), -1.1, 1.1)], note="bicubic"),
    C("grid_sample", lambda m, x, g: F(m).grid_sample(x, g, mode="bicubic",
                                                      padding_mode="border", align_corners=True),
      [(1, 1, 4, 4), In((1, 2, 2, 2), -1.2, 1.2)], note="bicubic-border"),
    C("grid_sample", lambda m, x, g: F(m).grid_sample(x, g, align_corners=True),
      [(1, 1, 3, 3, 4), In((1, 2, 2, 2, 3), -1.1, 1.1)], note="3d"),
    C("affine_grid", lambda m, t: F(m).affine_grid(t, (2, 1, 3, 4), align_corners=False),
      [(2, 2, 3)]),
    C("affine_grid", lambda m, t: F(m).affine_grid(t, (1, 1, 2, 3, 2), align_corners=True),
      [(1, 3, 4)], note="3d"),
    C("pixel_shuffle", lambda m, x: F(m).pixel_shuffle(x, 2), [(1, 8, 2, 3)]),
    C("pixel_unshuffle", lambda m, x: F(m).pixel_unshuffle(x, 2), [(1, 2, 4, 6)]),
]

# ---------------------------------------------------------------------------- attention
CASES += [
    C("scaled_dot_product_attention",
      lambda m, q, k, v: F(m).scaled_dot_product_attention(q, k, v), [(2, 3, 4), (2, 5, 4),
                                                                      (2, 5, 3)]),
    C("scaled_dot_product_attention",
      lambda m, q, k, v, mask: F(m).scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                                 scale=0.3),
      [(1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 2), B((3, 5))], note="bool-mask"),
    C("scaled_dot_product_attention",
      lambda m, q, k, v, mask: F(m).scaled_dot_product_attention(q, k, v, attn_mask=mask),
      [(2, 3, 4), (2, 3, 4), (2, 3, 4), (3, 3)], note="float-mask"),
    C("scaled_dot_product_attention",
      lambda m, q, k, v: F(m).scaled_dot_product_attention(q, k, v, is_causal=True),
      [(1, 2, 4, 3), (1, 2, 4, 3), (1, 2, 4, 3)], note="causal"),
    C("scaled_dot_product_attention",
      lambda m, q, k, v: F(m).scaled_dot_product_attention(q, k, v, enable_gqa=True),
      [(1, 4, 2, 3), (1, 2, 3, 3), (1, 2, 3, 2)], note="gqa"),
    C("scaled_dot_product_attention",
      _seeded(lambda m, q, k, v: F(m).scaled_dot_product_attention(q, k, v, dropout_p=0.3)),
      [(2, 3, 4), (2, 3, 4), (2, 3, 4)], parity=False, note="dropout"),
]

# ---------------------------------------------------------------------------- recurrent cells
def _lstm_cell_composite(m, gates, c):
    """PyTorch's LSTM step after the gate products, written out (gate order i, f, g, o)."""
    i, f, g, o = gates.chunk(4, 1)
    c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c_new.tanh(), c_new


def _lstm_layer_composite(m, xw, h0, c0, whh, steps, reverse):
    """lstm_layer written with PyTorch ops: packed time-major rows, `steps[t]` rows at step
    t; the rows not in a step keep their states."""
    starts = [sum(steps[:t]) for t in range(len(steps))]
    h, c, outs = h0, c0, [None] * len(steps)
    for t in (range(len(steps) - 1, -1, -1) if reverse else range(len(steps))):
        r0, bs = starts[t], steps[t]
        h_t, c_t = _lstm_cell_composite(m, xw[r0:r0 + bs] + h[:bs] @ whh.t(), c[:bs])
        outs[t] = h_t
        h, c = m.cat([h_t, h[bs:]]), m.cat([c_t, c[bs:]])
    return m.cat(outs), h, c


def _lstm_layer_case(steps, reverse, note, **kw):
    hs, b = 2, steps[0]
    return C("lstm_layer", lambda m, *a: lstm_layer(*a, steps, reverse),
             [(sum(steps), 4 * hs), (b, hs), (b, hs), (4 * hs, hs)],
             torch_fn=lambda m, *a: _lstm_layer_composite(m, *a, steps, reverse), note=note,
             **kw)


def _gru_layer_composite(m, xw, h0, whh, bhh, steps, reverse):
    """gru_layer written with PyTorch ops (gate order r, z, n; b_hh inside r * (.))."""
    hs = h0.shape[1]
    starts = [sum(steps[:t]) for t in range(len(steps))]
    h, outs = h0, [None] * len(steps)
    for t in (range(len(steps) - 1, -1, -1) if reverse else range(len(steps))):
        r0, bs = starts[t], steps[t]
        x, hp = xw[r0:r0 + bs], h[:bs]
        gh = hp @ whh.t() + bhh
        r = (x[:, :hs] + gh[:, :hs]).sigmoid()
        z = (x[:, hs:2 * hs] + gh[:, hs:2 * hs]).sigmoid()
        n = (x[:, 2 * hs:] + r * gh[:, 2 * hs:]).tanh()
        outs[t] = (1 - z) * n + z * hp
        h = m.cat([outs[t], h[bs:]])
    return m.cat(outs), h


def _gru_layer_case(steps, reverse, note, **kw):
    hs, b = 2, steps[0]
    return C("gru_layer", lambda m, *a: gru_layer(*a, steps, reverse),
             [(sum(steps), 3 * hs), (b, hs), (3 * hs, hs), (3 * hs,)],
             torch_fn=lambda m, *a: _gru_layer_composite(m, *a, steps, reverse), note=note,
             **kw)


def _rnn_layer_composite(m, xw, h0, whh, steps, reverse, nonlinearity):
    """rnn_layer written with PyTorch ops."""
    starts = [sum(steps[:t]) for t in range(len(steps))]
    h, outs = h0, [None] * len(steps)
    for t in (range(len(steps) - 1, -1, -1) if reverse else range(len(steps))):
        r0, bs = starts[t], steps[t]
        pre = xw[r0:r0 + bs] + h[:bs] @ whh.t()
        outs[t] = pre.tanh() if nonlinearity == "tanh" else pre.relu()
        h = m.cat([outs[t], h[bs:]])
    return m.cat(outs), h


def _rnn_layer_case(steps, reverse, nonlinearity, note):
    hs, b = 3, steps[0]
    return C("rnn_layer", lambda m, *a: rnn_layer(*a, steps, reverse, nonlinearity),
             [(sum(steps), hs), (b, hs), (hs, hs)],
             torch_fn=lambda m, *a: _rnn_layer_composite(m, *a, steps, reverse, nonlinearity),
             note=note)


CASES += [
    _rnn_layer_case((3, 3, 2, 1), False, "tanh", "tanh-packed"),
    _rnn_layer_case((3, 2, 2, 1), True, "tanh", "tanh-packed-reverse"),
    _rnn_layer_case((2, 2, 1), False, "relu", "relu-packed"),
    _rnn_layer_case((2, 2), True, "relu", "relu-reverse"),
]

CASES += [
    _gru_layer_case((3, 3), False, "two-steps"),
    _gru_layer_case((3, 3, 2, 1), False, "packed"),
    _gru_layer_case((3, 2, 2, 1), True, "packed-reverse"),
    _gru_layer_case((2, 2, 2), False, "saturated", low=-6.0, high=6.0),
]

CASES += [
    _lstm_layer_case((3, 3), False, "two-steps"),
    _lstm_layer_case((3, 3, 2, 1), False, "packed"),
    _lstm_layer_case((3, 2, 2, 1), True, "packed-reverse"),
    _lstm_layer_case((1,), True, "one-step"),
    _lstm_layer_case((2, 2, 2), False, "saturated", low=-6.0, high=6.0),
]

CASES += [
    C("lstm_cell", lambda m, g, c: lstm_cell(g, c), [(3, 8), (3, 2)],
      torch_fn=_lstm_cell_composite),
    C("lstm_cell", lambda m, g, c: lstm_cell(g, c), [T((2, 12)), T((2, 3))], low=-8.0,
      high=8.0, torch_fn=_lstm_cell_composite, note="saturated-noncontig"),
    C("lstm_cell", lambda m, g, c: lstm_cell(g, c)[0], [(4, 4), (4, 1)],
      torch_fn=lambda m, g, c: _lstm_cell_composite(m, g, c)[0], note="h-only"),
    C("lstm_cell", lambda m, g, c: lstm_cell(g, c)[1], [(1, 20), (1, 5)],
      torch_fn=lambda m, g, c: _lstm_cell_composite(m, g, c)[1], note="c-only"),
]

NONDIFF_CASES = [
    C("one_hot", lambda m, t: F(m).one_hot(t), [I((2, 3), 0, 4)]),
    C("one_hot", lambda m, t: F(m).one_hot(t, 6), [I((5,), 0, 4)], note="num_classes"),
]
