"""Mixed precision: autocast's op lists and cast policies (output dtypes and values against
PyTorch's CPU autocast, the CUDA list through a simulated device), backward through autocast
regions, the weight-cast cache, and GradScaler's dynamic loss scaling."""
import warnings

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as FF
from framework import amp

_RNG = np.random.default_rng(0)


def _r(*shape):
    return _RNG.standard_normal(shape).astype(np.float32)


def _pos(*shape):
    return _RNG.uniform(0.5, 1.5, shape).astype(np.float32)


def _unit(*shape):
    return _RNG.uniform(0.05, 0.95, shape).astype(np.float32)


def _sign(*shape):
    return np.where(_RNG.uniform(size=shape) < 0.5, -1.0, 1.0).astype(np.float32)


def _idx(values, dtype=np.int64):
    return np.asarray(values, dtype)


class _Int:
    """An argument that is not floating (class indices, lengths, masks): never converted."""

    def __init__(self, arr):
        self.arr = arr


def _unpool(d):
    def fn(m, F, x):
        pool = F.max_pool2d if d == 2 else F.max_pool3d
        y, i = pool(x, 2, return_indices=True)
        return (F.max_unpool2d if d == 2 else F.max_unpool3d)(y, i, 2)
    return fn


# name -> (fn(lib, functional, *tensors), argument arrays, variants torch rejects). The names
# of listed ops are their list names (OP_LISTS), so that the coverage test can find them.
CASES = {
    # ---- matrix products
    "matmul": (lambda m, F, a, b: m.matmul(a, b), [_r(3, 4), _r(4, 5)], ()),
    "matmul_2d_1d": (lambda m, F, a, b: m.matmul(a, b), [_r(3, 4), _r(4)], ()),
    "operator_matmul": (lambda m, F, a, b: a @ b, [_r(2, 3, 4), _r(4, 5)], ()),
    "mm": (lambda m, F, a, b: m.mm(a, b), [_r(3, 4), _r(4, 5)], ()),
    "bmm": (lambda m, F, a, b: m.bmm(a, b), [_r(2, 3, 4), _r(2, 4, 5)], ()),
    "mv": (lambda m, F, a, b: m.mv(a, b), [_r(3, 4), _r(4)], ("mixed",)),
    "dot": (lambda m, F, a, b: m.dot(a, b), [_r(4), _r(4)], ("mixed",)),
    "vdot": (lambda m, F, a, b: m.vdot(a, b), [_r(4), _r(4)], ("mixed",)),
    "outer": (lambda m, F, a, b: m.outer(a, b), [_r(3), _r(4)], ()),
    "addmm": (lambda m, F, c, a, b: m.addmm(c, a, b), [_r(3, 5), _r(3, 4), _r(4, 5)], ()),
    "addmm_scaled": (lambda m, F, c, a, b: m.addmm(c, a, b, beta=0.5, alpha=2.0),
                     [_r(5), _r(3, 4), _r(4, 5)], ()),
    "einsum": (lambda m, F, a, b: m.einsum("ij,jk->ik", a, b), [_r(3, 4), _r(4, 5)], ()),
    "einsum_dot": (lambda m, F, a, b: m.einsum("i,i->", a, b), [_r(4), _r(4)], ()),
    "einsum_3": (lambda m, F, a, b, c: m.einsum("ij,jk,kl->il", a, b, c),
                 [_r(3, 4), _r(4, 5), _r(5, 2)], ("mixed",)),
    "einsum_no_contraction": (lambda m, F, a, b: m.einsum("i,j->ij", a, b), [_r(3), _r(4)], ()),
    "einsum_pointwise": (lambda m, F, a, b: m.einsum("i,i->i", a, b), [_r(3), _r(3)], ()),
    "einsum_one_operand": (lambda m, F, a: m.einsum("ij->i", a), [_r(3, 4)], ()),
    "tensordot": (lambda m, F, a, b: m.tensordot(a, b, 1), [_r(3, 4), _r(4, 5)], ("mixed",)),
    "linear": (lambda m, F, x, w, b: F.linear(x, w, b), [_r(2, 3, 4), _r(5, 4), _r(5)], ()),
    "linear_no_bias": (lambda m, F, x, w: F.linear(x, w), [_r(3, 4), _r(5, 4)], ()),
    "bilinear": (lambda m, F, a, b, w, c: F.bilinear(a, b, w, c),
                 [_r(3, 4), _r(3, 2), _r(5, 4, 2), _r(5)], ("mixed",)),
    # ---- convolutions, attention, prelu
    "conv1d": (lambda m, F, x, w, b: F.conv1d(x, w, b, padding=1),
               [_r(2, 3, 8), _r(4, 3, 3), _r(4)], ()),
    "conv2d": (lambda m, F, x, w, b: F.conv2d(x, w, b, stride=2),
               [_r(2, 3, 6, 6), _r(4, 3, 3, 3), _r(4)], ()),
    "conv3d": (lambda m, F, x, w, b: F.conv3d(x, w, b), [_r(1, 2, 4, 4, 4), _r(3, 2, 2, 2, 2),
                                                         _r(3)], ()),
    "conv_transpose1d": (lambda m, F, x, w, b: F.conv_transpose1d(x, w, b),
                         [_r(2, 3, 8), _r(3, 4, 3), _r(4)], ()),
    "conv_transpose2d": (lambda m, F, x, w, b: F.conv_transpose2d(x, w, b, stride=2),
                         [_r(2, 3, 5, 5), _r(3, 4, 3, 3), _r(4)], ()),
    "conv_transpose3d": (lambda m, F, x, w, b: F.conv_transpose3d(x, w, b),
                         [_r(1, 2, 3, 3, 3), _r(2, 3, 2, 2, 2), _r(3)], ()),
    "prelu": (lambda m, F, x, w: F.prelu(x, w), [_r(2, 3, 4), _unit(3) * 0.3], ()),
    "scaled_dot_product_attention": (
        lambda m, F, q, k, v: F.scaled_dot_product_attention(q, k, v),
        [_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 6)], ()),
    "sdpa_float_mask": (lambda m, F, q, k, v, mask: F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask), [_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 6), _r(3, 5)], ()),
    # ---- softmax family, reductions, scans
    "softmax": (lambda m, F, x: F.softmax(x, -1), [_r(3, 4)], ()),
    "softmax_dtype": (lambda m, F, x: F.softmax(x, 1, dtype=m.float64), [_r(3, 4)], ()),
    "log_softmax": (lambda m, F, x: x.log_softmax(-1), [_r(3, 4)], ()),
    "softmin": (lambda m, F, x: F.softmin(x, -1), [_r(3, 4)], ()),
    "sum": (lambda m, F, x: m.sum(x), [_r(3, 4)], ()),
    "sum_dim": (lambda m, F, x: x.sum(1, keepdim=True), [_r(3, 4)], ()),
    "sum_dtype": (lambda m, F, x: x.sum(0, dtype=m.float16), [_r(3, 4)], ()),
    "prod": (lambda m, F, x: m.prod(x), [_pos(3, 4)], ()),
    "prod_dim": (lambda m, F, x: x.prod(1), [_pos(3, 4)], ()),
    "prod_dtype": (lambda m, F, x: m.prod(x, dtype=m.float16), [_pos(3, 4)], ()),
    "cumsum": (lambda m, F, x: m.cumsum(x, 1), [_r(3, 4)], ()),
    "cumprod": (lambda m, F, x: m.cumprod(x, 1), [_pos(3, 4)], ()),
    "norm": (lambda m, F, x: m.norm(x), [_r(3, 4)], ()),
    "norm_p1": (lambda m, F, x: x.norm(1, 1), [_r(3, 4)], ()),
    "logsumexp": (lambda m, F, x: m.logsumexp(x, 1), [_r(3, 4)], ()),
    "mean": (lambda m, F, x: x.mean(), [_r(3, 4)], ()),
    "var": (lambda m, F, x: m.var(x, 1), [_r(3, 4)], ()),
    "std": (lambda m, F, x: x.std(), [_r(3, 4)], ()),
    "nansum": (lambda m, F, x: m.nansum(x), [_r(3, 4)], ()),
    # ---- pointwise functions (float32 under CUDA autocast)
    "exp": (lambda m, F, x: m.exp(x), [_r(3, 4)], ()),
    "exp_method": (lambda m, F, x: x.exp(), [_r(3, 4)], ()),
    "expm1": (lambda m, F, x: m.expm1(x), [_r(3, 4)], ()),
    "log": (lambda m, F, x: m.log(x), [_pos(3, 4)], ()),
    "log2": (lambda m, F, x: m.log2(x), [_pos(3, 4)], ()),
    "log10": (lambda m, F, x: m.log10(x), [_pos(3, 4)], ()),
    "log1p": (lambda m, F, x: m.log1p(x), [_pos(3, 4)], ()),
    "reciprocal": (lambda m, F, x: m.reciprocal(x), [_pos(3, 4)], ()),
    "rsqrt": (lambda m, F, x: m.rsqrt(x), [_pos(3, 4)], ()),
    "sinh": (lambda m, F, x: m.sinh(x), [_r(3, 4)], ()),
    "cosh": (lambda m, F, x: m.cosh(x), [_r(3, 4)], ()),
    "tan": (lambda m, F, x: m.tan(x), [_unit(3, 4)], ()),
    "asin": (lambda m, F, x: m.asin(x), [_unit(3, 4)], ()),
    "acos": (lambda m, F, x: m.acos(x), [_unit(3, 4)], ()),
    "pow": (lambda m, F, x: x ** 2, [_r(3, 4)], ()),
    "pow_tensor": (lambda m, F, a, b: m.pow(a, b), [_pos(3, 4), _r(3, 4)], ()),
    "pow_scalar_base": (lambda m, F, x: 2.0 ** x, [_r(3, 4)], ()),
    "sqrt": (lambda m, F, x: m.sqrt(x), [_pos(3, 4)], ()),
    "atan2": (lambda m, F, a, b: m.atan2(a, b), [_r(3), _r(3)], ()),
    "cat": (lambda m, F, a, b: m.cat([a, b]), [_r(3), _r(3)], ()),
    "stack": (lambda m, F, a, b: m.stack([a, b]), [_r(3), _r(3)], ()),
    "softplus": (lambda m, F, x: F.softplus(x), [_r(3, 4)], ()),
    "gelu": (lambda m, F, x: F.gelu(x), [_r(3, 4)], ()),
    "silu": (lambda m, F, x: F.silu(x), [_r(3, 4)], ()),
    "sigmoid": (lambda m, F, x: m.sigmoid(x), [_r(3, 4)], ()),
    "embedding": (lambda m, F, w, i: F.embedding(i, w), [_r(5, 3), _Int(_idx([0, 2, 4]))], ()),
    # ---- normalizations
    "layer_norm": (lambda m, F, x, w, b: F.layer_norm(x, (4,), w, b),
                   [_r(3, 4), _r(4), _r(4)], ()),
    "group_norm": (lambda m, F, x, w, b: F.group_norm(x, 2, w, b),
                   [_r(2, 4, 3), _r(4), _r(4)], ()),
    "batch_norm": (lambda m, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                   [_r(2, 4, 3), _r(4), _r(4)], ()),
    "instance_norm": (lambda m, F, x: F.instance_norm(x), [_r(2, 4, 3)], ()),
    "rms_norm": (lambda m, F, x, w: F.rms_norm(x, (4,), w), [_r(3, 4), _r(4)], ()),
    "normalize": (lambda m, F, x: F.normalize(x), [_r(3, 4)], ()),
    "local_response_norm": (lambda m, F, x: F.local_response_norm(x, 2), [_r(2, 4, 3)], ()),
    "local_response_norm_4d": (lambda m, F, x: F.local_response_norm(x, 2),
                               [_r(1, 4, 3, 3)], ()),
    # ---- losses
    "cross_entropy": (lambda m, F, x, t: F.cross_entropy(x, t),
                      [_r(4, 5), _Int(_idx([0, 2, 1, 4]))], ()),
    "cross_entropy_probs": (lambda m, F, x, t: F.cross_entropy(x, t, label_smoothing=0.1),
                            [_r(2, 3), _unit(2, 3)], ()),
    "nll_loss": (lambda m, F, x, t: F.nll_loss(x, t), [_r(4, 5), _Int(_idx([0, 2, 1, 4]))], ()),
    "binary_cross_entropy": (lambda m, F, x, t: F.binary_cross_entropy(x, t),
                             [_unit(4), _unit(4)], ()),
    "binary_cross_entropy_with_logits": (
        lambda m, F, x, t: F.binary_cross_entropy_with_logits(x, t), [_r(4), _unit(4)], ()),
    "mse_loss": (lambda m, F, a, b: F.mse_loss(a, b), [_r(4), _r(4)], ()),
    "l1_loss": (lambda m, F, a, b: F.l1_loss(a, b, reduction="sum"), [_r(4), _r(4)], ()),
    "smooth_l1_loss": (lambda m, F, a, b: F.smooth_l1_loss(a, b), [_r(4), _r(4)], ()),
    "huber_loss": (lambda m, F, a, b: F.huber_loss(a, b, reduction="none"), [_r(4), _r(4)], ()),
    "kl_div": (lambda m, F, a, b: F.kl_div(a, b, reduction="batchmean"),
               [_r(3, 4), _unit(3, 4)], ()),
    "poisson_nll_loss": (lambda m, F, a, b: F.poisson_nll_loss(a, b), [_r(4), _unit(4)], ()),
    "gaussian_nll_loss": (lambda m, F, a, b, v: F.gaussian_nll_loss(a, b, v),
                          [_r(4), _r(4), _pos(4)], ()),
    "cosine_similarity": (lambda m, F, a, b: F.cosine_similarity(a, b), [_r(3, 4), _r(3, 4)], ()),
    "pairwise_distance": (lambda m, F, a, b: F.pairwise_distance(a, b), [_r(3, 4), _r(3, 4)], ()),
    "cosine_embedding_loss": (lambda m, F, a, b, t: F.cosine_embedding_loss(a, b, t),
                              [_r(3, 4), _r(3, 4), _sign(3)], ()),
    "margin_ranking_loss": (lambda m, F, a, b, t: F.margin_ranking_loss(a, b, t),
                            [_r(3), _r(3), _sign(3)], ()),
    "hinge_embedding_loss": (lambda m, F, a, t: F.hinge_embedding_loss(a, t),
                             [_r(3), _sign(3)], ()),
    "soft_margin_loss": (lambda m, F, a, t: F.soft_margin_loss(a, t), [_r(3), _sign(3)], ()),
    "multilabel_soft_margin_loss": (lambda m, F, a, t: F.multilabel_soft_margin_loss(a, t),
                                    [_r(2, 3), (_unit(2, 3) > 0.5).astype(np.float32)], ()),
    "multi_margin_loss": (lambda m, F, x, t: F.multi_margin_loss(x, t),
                          [_r(4, 5), _Int(_idx([0, 2, 1, 4]))], ()),
    "multilabel_margin_loss": (lambda m, F, x, t: F.multilabel_margin_loss(x, t),
                               [_r(2, 4), _Int(_idx([[0, 2, -1, 1], [3, -1, 0, 0]]))], ()),
    "triplet_margin_loss": (lambda m, F, a, p, n: F.triplet_margin_loss(a, p, n),
                            [_r(3, 4), _r(3, 4), _r(3, 4)], ()),
    "ctc_loss": (lambda m, F, lp, t, il, tl: F.ctc_loss(lp, t, il, tl),
                 [_r(6, 2, 4), _Int(_idx([[1, 2], [1, 1]])), _Int(_idx([6, 5])),
                  _Int(_idx([2, 2]))], ()),
    # ---- pooling, padding, resampling
    "avg_pool2d": (lambda m, F, x: F.avg_pool2d(x, 2), [_r(1, 2, 4, 4)], ()),
    "avg_pool3d": (lambda m, F, x: F.avg_pool3d(x, 2), [_r(1, 2, 4, 4, 4)], ()),
    "max_pool2d": (lambda m, F, x: F.max_pool2d(x, 2), [_r(1, 2, 4, 4)], ()),
    "max_pool3d": (lambda m, F, x: F.max_pool3d(x, 2), [_r(1, 2, 4, 4, 4)], ()),
    "adaptive_avg_pool2d": (lambda m, F, x: F.adaptive_avg_pool2d(x, 2), [_r(1, 2, 4, 4)], ()),
    "adaptive_avg_pool3d": (lambda m, F, x: F.adaptive_avg_pool3d(x, 2), [_r(1, 2, 4, 4, 4)], ()),
    "adaptive_max_pool3d": (lambda m, F, x: F.adaptive_max_pool3d(x, 2), [_r(1, 2, 4, 4, 4)], ()),
    "lp_pool3d": (lambda m, F, x: F.lp_pool3d(x, 2, 2), [_pos(1, 2, 4, 4, 4)], ()),
    "max_unpool2d": (_unpool(2), [_r(1, 2, 4, 4)], ()),
    "max_unpool3d": (_unpool(3), [_r(1, 2, 4, 4, 4)], ()),
    "reflection_pad1d": (lambda m, F, x: F.pad(x, (1, 2), mode="reflect"), [_r(1, 2, 5)], ()),
    "reflection_pad2d": (lambda m, F, x: F.pad(x, (1, 1, 2, 1), mode="reflect"),
                         [_r(1, 2, 4, 4)], ()),
    "reflection_pad3d": (lambda m, F, x: F.pad(x, (1, 1, 1, 1, 1, 1), mode="reflect"),
                         [_r(1, 2, 3, 3, 3)], ()),
    "replication_pad1d": (lambda m, F, x: F.pad(x, (1, 2), mode="replicate"), [_r(1, 2, 5)], ()),
    "replication_pad2d": (lambda m, F, x: F.pad(x, (1, 1, 2, 1), mode="replicate"),
                          [_r(1, 2, 4, 4)], ()),
    "replication_pad3d": (lambda m, F, x: F.pad(x, (1, 1, 1, 1, 1, 1), mode="replicate"),
                          [_r(1, 2, 3, 3, 3)], ()),
    "circular_pad": (lambda m, F, x: F.pad(x, (1, 1), mode="circular"), [_r(1, 2, 5)], ()),
    "constant_pad": (lambda m, F, x: F.pad(x, (1, 1)), [_r(1, 2, 5)], ()),
    "upsample_nearest": (lambda m, F, x: F.interpolate(x, scale_factor=2), [_r(1, 2, 3, 3)], ()),
    "upsample_nearest-exact": (lambda m, F, x: F.interpolate(x, size=5, mode="nearest-exact"),
                               [_r(1, 2, 3, 3)], ()),
    "upsample_linear": (lambda m, F, x: F.interpolate(x, scale_factor=2, mode="linear"),
                        [_r(1, 2, 3)], ()),
    "upsample_bilinear": (lambda m, F, x: F.interpolate(x, scale_factor=2, mode="bilinear"),
                          [_r(1, 2, 3, 3)], ()),
    "upsample_bicubic": (lambda m, F, x: F.interpolate(x, size=(4, 5), mode="bicubic"),
                         [_r(1, 2, 3, 3)], ()),
    "upsample_trilinear": (lambda m, F, x: F.interpolate(x, scale_factor=2, mode="trilinear"),
                           [_r(1, 1, 2, 2, 2)], ()),
    "upsample_area": (lambda m, F, x: F.interpolate(x, size=2, mode="area"), [_r(1, 2, 4, 4)], ()),
    # ---- later additions: extra matrix products, distances, statistics, complex, pooling
    "addmv": (lambda m, F, c, a, b: m.addmv(c, a, b), [_r(3), _r(3, 4), _r(4)], ("mixed",)),
    "addr": (lambda m, F, c, a, b: m.addr(c, a, b), [_r(3, 4), _r(3), _r(4)], ()),
    "addbmm": (lambda m, F, c, a, b: m.addbmm(c, a, b), [_r(3, 5), _r(2, 3, 4), _r(2, 4, 5)],
               ()),
    "baddbmm": (lambda m, F, c, a, b: m.baddbmm(c, a, b),
                [_r(2, 3, 5), _r(2, 3, 4), _r(2, 4, 5)], ()),
    "erfinv": (lambda m, F, x: m.erfinv(x), [_unit(3, 4)], ()),
    "cdist": (lambda m, F, a, b: m.cdist(a, b), [_r(3, 4), _r(5, 4)], ()),
    "renorm": (lambda m, F, x: m.renorm(x, 2, 0, 1.0), [_r(3, 4)], ()),
    "cross": (lambda m, F, a, b: m.cross(a, b, dim=1), [_r(2, 3), _r(2, 3)], ("mixed",)),
    "quantile": (lambda m, F, x: m.quantile(x, 0.3, dim=1), [_r(3, 6)], ()),
    "nanquantile": (lambda m, F, x: m.nanquantile(x, 0.7), [_r(3, 6)], ()),
    "polar": (lambda m, F, a, b: m.polar(a, b), [_pos(3), _r(3)], ("mixed",)),
    "view_as_complex": (lambda m, F, x: m.view_as_complex(x), [_r(3, 2)], ()),
    "fractional_max_pool2d": (lambda m, F, x: F.fractional_max_pool2d(
        x, 2, output_size=(3, 3), _random_samples=m.ones(1, 2, 2, dtype=x.dtype) * 0.5),
        [_r(1, 2, 7, 7)], ()),
    "fractional_max_pool3d": (lambda m, F, x: F.fractional_max_pool3d(
        x, 2, output_size=2, _random_samples=m.ones(1, 1, 3, dtype=x.dtype) * 0.5),
        [_r(1, 1, 5, 5, 5)], ()),
    "grid_sample": (lambda m, F, x, g: F.grid_sample(x, g, align_corners=False),
                    [_r(1, 2, 4, 4), _unit(1, 3, 3, 2) * 2 - 1], ()),
}

VARIANTS = ("float32", "float16", "mixed")


def _inputs(lib, arrays, variant):
    """Tensors of lib: float arrays as float32, float16, or float16 first and float32 after."""
    out, first = [], True
    for a in arrays:
        if isinstance(a, _Int):
            out.append(lib.tensor(a.arr))
            continue
        half = variant == "float16" or (variant == "mixed" and first)
        first = False
        out.append(lib.tensor(a.astype(np.float16) if half else a))
    return out


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _ours(name, variant, device_type="cpu", dtype=None):
    fn, arrays, _ = CASES[name]
    args = _inputs(fw, arrays, variant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fw.autocast(device_type, dtype=dtype or fw.float16):
            return _first(fn(fw, FF, *args))


def _theirs(torch, name, variant, dtype=None):
    fn, arrays, _ = CASES[name]
    args = _inputs(torch, arrays, variant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autocast("cpu", dtype=dtype or torch.float16):
            return _first(fn(torch, torch.nn.functional, *args))


_PARAMS = [pytest.param(n, v, id=f"{n}-{v}") for n, (_, _, rejected) in CASES.items()
           for v in VARIANTS if v not in rejected]


@pytest.mark.parametrize("name,variant", _PARAMS)
def test_cpu_autocast_output_dtype_matches_torch(name, variant):
    torch = pytest.importorskip("torch")
    theirs = _theirs(torch, name, variant)
    ours = _ours(name, variant)
    assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), \
        f"{name} ({variant} inputs): ours {ours.dtype.name}, torch {theirs.dtype}"
    assert tuple(ours.shape) == tuple(theirs.shape)


@pytest.mark.parametrize("name", ["matmul", "linear", "conv2d", "conv_transpose2d",
                                  "scaled_dot_product_attention", "prelu", "cross_entropy",
                                  "mse_loss", "softmax", "layer_norm", "avg_pool3d",
                                  "reflection_pad2d", "grid_sample", "kl_div"])
@pytest.mark.parametrize("variant", ["float32", "float16"])
def test_cpu_autocast_values_match_torch(name, variant):
    torch = pytest.importorskip("torch")
    theirs = _theirs(torch, name, variant).float().numpy()
    ours = _ours(name, variant).float().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-2, atol=1e-2)


def test_every_listed_op_has_a_case():
    """Each name on either list is exercised by the dtype tests (against torch on the CPU,
    against the CUDA list's policy below)."""
    listed = set(amp.OP_LISTS["cpu"]) | set(amp.OP_LISTS["cuda"])
    assert listed - set(CASES) == set()


@pytest.mark.skipif(fw.bfloat16.np is None, reason="bfloat16 needs the ml_dtypes package")
@pytest.mark.parametrize("name", [
    "matmul", "bmm", "addmm", "einsum", "scaled_dot_product_attention", "prelu", "softmax",
    "cross_entropy", "nll_loss", "mse_loss", "layer_norm", "group_norm", "sum", "cumsum",
    "avg_pool3d", "reflection_pad2d", "grid_sample", "exp",
    "linear", "conv1d", "conv_transpose2d"])
def test_cpu_autocast_bfloat16_output_dtype_matches_torch(name):
    torch = pytest.importorskip("torch")
    theirs = _theirs(torch, name, "float32", dtype=torch.bfloat16)
    ours = _ours(name, "float32", dtype=fw.bfloat16)
    assert ours.dtype.name == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_allclose(ours.float().numpy(), theirs.float().numpy(), rtol=5e-2,
                               atol=5e-2)


@pytest.mark.skipif(fw.bfloat16.np is None, reason="bfloat16 needs the ml_dtypes package")
@pytest.mark.parametrize("name", ["linear", "conv1d", "conv_transpose2d", "matmul"])
def test_cpu_autocast_bfloat16_values_match_torch(name):
    """bfloat16 products are computed in float32 and rounded once, as PyTorch's CPU kernels."""
    torch = pytest.importorskip("torch")
    theirs = _theirs(torch, name, "float32", dtype=torch.bfloat16).float().numpy()
    ours = _ours(name, "float32", dtype=fw.bfloat16).float().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=2e-2, atol=2e-2)


def test_bfloat16_autocast_without_ml_dtypes_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(fw.bfloat16, "np", None)
    with pytest.raises(TypeError, match="ml_dtypes"):
        fw.autocast("cpu")  # the CPU default is bfloat16
    fw.autocast("cpu", enabled=False)  # a disabled region needs no bfloat16


# ---------------------------------------------------------------------------- CUDA list
_CUDA_LIST_NAMES = {"einsum_pointwise": "einsum_no_contraction"}


def _expected_cuda_dtype(name, variant):
    """The output dtype the CUDA list's policy gives for a case (float16 autocast); for an
    op on no list, the dtype it gives without autocast."""
    policy = amp.OP_LISTS["cuda"].get(_CUDA_LIST_NAMES.get(name, name))
    ins = {t.dtype.name for t in _inputs(fw, CASES[name][1], variant) if t.is_floating_point()}
    if policy == amp.LOWER:
        return "float16"
    if policy in (amp.FP32, amp.FP32_SET_OPT_DTYPE):
        return "float32"
    if policy == amp.PROMOTE:  # the widest input dtype
        return "float32" if "float32" in ins else "float16"
    assert policy is None, policy
    fn, arrays, _ = CASES[name]
    return _first(fn(fw, FF, *_inputs(fw, arrays, variant))).dtype.name


_CUDA_CASES = sorted(set(amp.OP_LISTS["cuda"]) - {"binary_cross_entropy"}) + [
    "mean", "var", "std", "nansum", "sqrt", "sigmoid", "gelu", "outer", "avg_pool3d",
    "max_pool3d", "reflection_pad1d", "upsample_area", "batch_norm", "einsum_pointwise",
    "constant_pad"]


@pytest.fixture
def simulated_cuda(monkeypatch):
    """CPU tensors count as CUDA tensors for autocast: tests the CUDA list's wiring here."""
    monkeypatch.setattr(amp, "_kind_of", lambda t: "cuda")


@pytest.mark.parametrize("name,variant", [
    pytest.param(n, v, id=f"{n}-{v}") for n in _CUDA_CASES for v in VARIANTS
    if v not in CASES[n][2]])
def test_cuda_list_policies(simulated_cuda, name, variant):
    out = _ours(name, variant, device_type="cuda")
    expected = _expected_cuda_dtype(name, variant)
    if name in ("sum_dtype", "softmax_dtype", "prod_dtype"):  # an explicit dtype wins
        expected = None
    if expected is not None:
        assert out.dtype.name == expected, f"{name} ({variant}): {out.dtype.name}"


def test_cuda_list_specifics(simulated_cuda):
    x16 = fw.randn(3, 4).half()
    x32 = fw.randn(3, 4)
    with fw.autocast("cuda"):  # float16 by default on CUDA
        assert amp.get_autocast_dtype("cuda") is fw.float16
        assert x16.sum(dtype=fw.float16).dtype is fw.float16  # a chosen dtype is kept
        assert FF.softmax(x16, 1, dtype=fw.float64).dtype is fw.float64
        assert (x16 @ x32.t()).dtype is fw.float16
        assert fw.tensordot(x32, x32.t(), 1).dtype is fw.float32  # promote: matmul not cast
        # autocast is off inside a listed op: attention's softmax (float32 on its own) runs
        # in float16 there, as do cross_entropy's pieces in float32
        q = fw.randn(2, 3, 4)
        assert FF.scaled_dot_product_attention(q, q, q).dtype is fw.float16
        assert FF.cross_entropy(x16, fw.tensor([0, 1, 2])).dtype is fw.float32
        assert fw.var(x16).dtype is fw.float16  # one kernel in torch: its sums stay float16
        assert x16.double().exp().dtype is fw.float64  # float64 is never cast
        with pytest.raises(RuntimeError, match="unsafe to autocast"):
            FF.binary_cross_entropy(x32.sigmoid(), x32.sigmoid())
    assert FF.binary_cross_entropy(x32.sigmoid(), x32.sigmoid()).dtype is fw.float32


_MODULES = [
    pytest.param(lambda L: L.nn.MultiheadAttention(4, 2), [(5, 2, 4)] * 3,
                 id="multihead_attention"),
    pytest.param(lambda L: L.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0), [(5, 2, 4)],
                 id="encoder_layer"),
    pytest.param(lambda L: L.nn.TransformerDecoderLayer(4, 2, 8, dropout=0.0),
                 [(5, 2, 4), (3, 2, 4)], id="decoder_layer"),
    pytest.param(lambda L: L.nn.Sequential(
        L.nn.Conv2d(3, 4, 3), L.nn.BatchNorm2d(4), L.nn.ReLU(), L.nn.AdaptiveAvgPool2d(1),
        L.nn.Flatten(), L.nn.Linear(4, 2)), [(2, 3, 6, 6)], id="conv_bn_pool_linear"),
    pytest.param(lambda L: L.nn.Sequential(L.nn.Linear(4, 4), L.nn.LayerNorm(4), L.nn.GELU()),
                 [(2, 4)], id="linear_layernorm_gelu"),
    pytest.param(lambda L: L.nn.GRU(4, 3), [(5, 2, 4)], id="gru"),
    pytest.param(lambda L: L.nn.LSTMCell(4, 3), [(2, 4)], id="lstm_cell"),
    pytest.param(lambda L: L.nn.GRUCell(4, 3), [(2, 4)], id="gru_cell"),
    pytest.param(lambda L: L.nn.RNN(4, 3), [(5, 2, 4)], id="rnn"),
    pytest.param(lambda L: L.nn.RNNCell(4, 3), [(2, 4)], id="rnn_cell"),
]


@pytest.mark.parametrize("make,shapes", _MODULES)
def test_module_output_dtype_under_cpu_autocast_matches_torch(make, shapes):
    torch = pytest.importorskip("torch")
    dtypes = []
    for lib in (fw, torch):
        mod = make(lib)
        xs = [lib.tensor(_r(*s)) for s in shapes]
        with lib.autocast("cpu", dtype=lib.float16):
            out = mod(*xs)
        while isinstance(out, (tuple, list)):
            out = out[0]
        dtypes.append(str(out.dtype).split(".")[-1])
    assert dtypes[0] == dtypes[1]


def test_autocast_affects_only_its_device():
    a = fw.randn(4, 4)
    with fw.autocast("cuda"):  # CPU tensors are left alone by CUDA autocast
        assert (a @ a).dtype is fw.float32
        assert FF.softmax(a.half(), 0).dtype is fw.float16


# ---------------------------------------------------------------------------- semantics
def test_autocast_casts_matmul_and_restores(device):
    a = fw.randn(4, 4, device=device)
    dev = "cpu" if device == "cpu" else "cuda"
    with fw.autocast(dev, dtype=fw.float16):
        assert amp.is_autocast_enabled(dev) and not amp.is_autocast_enabled(
            "cuda" if dev == "cpu" else "cpu")
        assert (a @ a).dtype is fw.float16
        with fw.autocast(dev, enabled=False):
            assert (a @ a).dtype is fw.float32
        assert (a @ a).dtype is fw.float16
    assert (a @ a).dtype is fw.float32
    assert not fw.amp.is_autocast_enabled(dev)


def test_autocast_leaves_float64_and_integers_alone():
    with fw.autocast("cpu", dtype=fw.float16):
        d = fw.randn(3, 3, dtype=fw.float64)
        assert (d @ d).dtype is fw.float64
        assert FF.linear(d, d).dtype is fw.float64
        i = fw.ones(3, 3, dtype=fw.int64)
        assert (i @ i).dtype is fw.int64
        assert FF.cross_entropy(d, fw.tensor([0, 1, 2])).dtype is fw.float64


def test_autocast_as_decorator_and_state_restored_after_error():
    @fw.autocast("cpu", dtype=fw.float16)
    def f(a):
        return a @ a

    a = fw.randn(2, 2)
    assert f(a).dtype is fw.float16
    assert not amp.is_autocast_enabled("cpu")
    with pytest.raises(RuntimeError):
        with fw.autocast("cpu", dtype=fw.float16):
            fw.randn(2, 3) @ fw.randn(2, 3)  # shape error inside a listed op
    assert not amp.is_autocast_enabled("cpu")
    assert not amp.is_autocast_enabled("cuda")


def test_autocast_rejects_bad_arguments():
    with pytest.raises(ValueError, match="device_type"):
        fw.autocast("tpu")
    with pytest.raises(ValueError, match="float16 and bfloat16"):
        fw.autocast("cpu", dtype=fw.float64)


def test_weight_cast_is_cached_within_a_region():
    w = fw.randn(3, 3, requires_grad=True)
    x = fw.randn(2, 3)
    with fw.autocast("cpu", dtype=fw.float16):
        FF.linear(x, w)
        first = amp._AutocastState.cast_cache[id(w)][2]
        FF.linear(x, w)
        assert amp._AutocastState.cast_cache[id(w)][2] is first  # reused, not recast
        with fw.no_grad():
            w.mul_(2.0)  # a changed weight is cast again
        FF.linear(x, w)
        assert amp._AutocastState.cast_cache[id(w)][2] is not first
    assert not amp._AutocastState.cast_cache  # dropped on leaving the outermost region
    with fw.autocast("cpu", dtype=fw.float16, cache_enabled=False):
        FF.linear(x, w)
        assert not amp._AutocastState.cast_cache


def test_autocast_backward_reaches_float32_leaves(device):
    dev = "cpu" if device == "cpu" else "cuda"
    w = fw.randn(3, 3, device=device, requires_grad=True)
    x = fw.randn(2, 3, device=device)
    with fw.autocast(dev, dtype=fw.float16):
        y = (x @ w).float().sum()
    y.backward()
    assert w.grad.dtype is fw.float32
    expected = np.broadcast_to(x.cpu().numpy().sum(0)[:, None], (3, 3))
    np.testing.assert_allclose(w.grad.cpu().numpy(), expected, rtol=2e-3, atol=2e-3)


def _mlp_forward(lib, F, x, t, w1, b1, g, w2, b2):
    h = F.relu(F.linear(x, w1, b1))
    h = F.layer_norm(h, (h.shape[-1],), g)
    return F.cross_entropy(F.linear(h, w2, b2), t)


def test_backward_through_autocast_region_matches_torch():
    torch = pytest.importorskip("torch")
    arrays = [_r(8, 6), _r(16, 6) * 0.4, _r(16) * 0.1, 1 + 0.1 * _r(16), _r(5, 16) * 0.3,
              _r(5) * 0.1]
    target = _idx([0, 1, 2, 3, 4, 0, 1, 2])
    grads, losses = {}, {}
    for lib in (fw, torch):
        F = FF if lib is fw else torch.nn.functional
        x, *params = [lib.tensor(a) for a in arrays]
        for p in params:
            p.requires_grad_(True)
        with lib.autocast("cpu", dtype=lib.float16):
            loss = _mlp_forward(lib, F, x, lib.tensor(target), *params)
        loss.backward()
        losses[lib] = loss
        grads[lib] = [p.grad for p in params]
    assert losses[fw].dtype is fw.float32 and str(losses[torch].dtype) == "torch.float32"
    np.testing.assert_allclose(losses[fw].item(), losses[torch].item(), rtol=1e-2)
    for ours, theirs in zip(grads[fw], grads[torch]):
        assert ours.dtype is fw.float32
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=3e-2, atol=3e-3)


def test_backward_called_inside_the_region():
    w = fw.randn(4, 3, requires_grad=True)
    x = fw.randn(5, 4)
    with fw.autocast("cpu", dtype=fw.float16):
        loss = FF.log_softmax(x @ w, 1).sum()
        loss.backward()
    assert w.grad.dtype is fw.float32 and bool(fw.isfinite(w.grad).all())


def test_training_steps_inside_one_autocast_region():
    """Backward and optimizer steps inside the region: the cached weight casts are reused
    across backward passes and renewed when a step changes the weight."""
    fw.manual_seed(0)
    w = fw.randn(3, 3, requires_grad=True)
    x = fw.randn(8, 3)
    target = x @ fw.randn(3, 3).t()
    opt = fw.optim.SGD([w], lr=0.05)
    losses = []
    with fw.autocast("cpu", dtype=fw.float16):
        for _ in range(20):
            opt.zero_grad()
            loss = FF.mse_loss(FF.linear(x, w), target)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert w.grad.dtype is fw.float32
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflows the scaler recovers from
def test_training_loop_with_autocast_and_grad_scaler():
    fw.manual_seed(0)
    model = fw.nn.Sequential(fw.nn.Linear(4, 16), fw.nn.ReLU(), fw.nn.Linear(16, 3))
    opt = fw.optim.SGD(model.parameters(), lr=0.2)
    x = fw.randn(64, 4)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    # a scale this large overflows float16 gradients at first: those steps are skipped and
    # the scale backs off until the gradients fit
    scaler = fw.amp.GradScaler("cpu", init_scale=2.0 ** 30, growth_interval=10)
    losses, skipped = [], 0
    for _ in range(60):
        opt.zero_grad()
        with fw.autocast("cpu", dtype=fw.float16):
            out = model(x)
            assert out.dtype is fw.float16
            loss = FF.cross_entropy(out, y)
            assert loss.dtype is fw.float32
        scaler.scale(loss).backward()
        for p in model.parameters():
            assert p.grad.dtype is fw.float32
        before = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        skipped += scaler.get_scale() < before
        losses.append(loss.item())
    assert skipped >= 1 and scaler.get_scale() < 2.0 ** 30
    assert all(bool(fw.isfinite(p).all()) for p in model.parameters())
    assert np.mean(losses[-5:]) < 0.6 * losses[0]


# ---------------------------------------------------------------------------- GradScaler
class _Opt:
    def __init__(self, params):
        self.param_groups = [{"params": params}]
        self.steps = 0

    def step(self):
        self.steps += 1


def _run_scaler(lib, grads_seq, **kw):
    """Drive a scaler through a scripted gradient sequence; record scale and skipped steps."""
    p = lib.zeros(3, requires_grad=True)
    if lib is fw:
        scaler, opt = fw.amp.GradScaler("cpu", **kw), _Opt([p])
    else:
        scaler = lib.amp.GradScaler("cpu", **kw)
        opt = lib.optim.SGD([p], lr=0.0)
    scales, stepped = [], []
    for g in grads_seq:
        scaler.scale(lib.tensor(1.0))  # torch's scaler initialises its scale lazily here
        p.grad = lib.tensor(np.asarray(g, np.float32) * scaler.get_scale())
        before = getattr(opt, "steps", None)
        scaler.step(opt)
        if lib is fw:
            stepped.append(opt.steps != before)
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, stepped, p.grad


def test_grad_scaler_backoff_growth_and_skip():
    seq = [[1, 2, 3], [np.inf, 0, 0], [1, 1, 1], [1, 1, 1], [np.nan, 1, 1], [1, 1, 1]]
    scales, stepped, grad = _run_scaler(fw, seq, init_scale=8.0, growth_interval=2)
    assert scales == [8.0, 4.0, 4.0, 8.0, 4.0, 4.0]
    assert stepped == [True, False, True, True, False, True]
    np.testing.assert_allclose(grad.numpy(), [1, 1, 1])  # unscaled before the step


def test_grad_scaler_matches_torch():
    torch = pytest.importorskip("torch")
    seq = [[1, 2, 3], [np.inf, 0, 0], [1, 1, 1], [1, 1, 1], [np.nan, 1, 1], [1, 1, 1], [2, 2, 2]]
    ours, _, _ = _run_scaler(fw, seq, init_scale=16.0, growth_interval=2)
    theirs, _, _ = _run_scaler(torch, seq, init_scale=16.0, growth_interval=2)
    assert ours == theirs


def test_grad_scaler_state_dict_round_trip_and_double_unscale():
    s = fw.amp.GradScaler("cpu", init_scale=4.0)
    s._growth_tracker = 3
    t = fw.amp.GradScaler("cpu")
    t.load_state_dict(s.state_dict())
    assert t.get_scale() == 4.0 and t._growth_tracker == 3
    p = fw.ones(2, requires_grad=True)
    p.grad = fw.ones(2)
    opt = _Opt([p])
    t.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        t.unscale_(opt)
    t.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        t.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        t.unscale_(opt)
    t.update()
    t.step(opt)  # a fresh round after update()


def test_grad_scaler_rejects_fp16_gradients_and_closures():
    s = fw.amp.GradScaler("cpu")
    p = fw.ones(2, dtype=fw.float16, requires_grad=True)
    p.grad = fw.ones(2, dtype=fw.float16)
    with pytest.raises(ValueError, match="FP16 gradients"):
        s.unscale_(_Opt([p]))
    q = fw.ones(2, requires_grad=True)
    q.grad = fw.ones(2)
    with pytest.raises(RuntimeError, match="Closure"):
        s.step(_Opt([q]), closure=lambda: 0.0)


def test_grad_scaler_unscale_then_clip_then_step_with_real_optimizer():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (fw, torch):
        p = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        opt = lib.optim.SGD([p], lr=0.1)
        scaler = lib.amp.GradScaler("cpu", init_scale=1024.0)
        loss = (p * lib.tensor([3.0, 4.0, 0.0])).sum()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        lib.nn.utils.clip_grad_norm_([p], 1.0)
        scaler.step(opt)
        scaler.update()
        results.append(p.detach().numpy().copy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_grad_scaler_for_cuda_without_cuda_disables_itself():
    if fw.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        s = fw.amp.GradScaler()
    assert not s.is_enabled()
    x = fw.tensor(3.0)
    assert s.scale(x) is x


def test_disabled_scaler_is_a_pass_through():
    s = fw.amp.GradScaler("cpu", enabled=False)
    x = fw.tensor(3.0)
    assert s.scale(x) is x and s.get_scale() == 1.0
