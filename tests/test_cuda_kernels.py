"""The GPU path's own pieces: fused CuPy kernels (framework/_cuda_kernels.py), cuDNN
convolutions (framework/_cudnn.py), devices, streams, memory statistics and pinned memory.

Three tiers, each skipped (never failed) where its requirement is missing:
- always: nothing imports CuPy at import time; pure-Python helpers;
- CuPy and NVRTC importable (no GPU needed): every kernel source compiles for sm_80, and the
  ctypes cuDNN binding sets up descriptors that give the expected output shapes;
- a CUDA GPU: every kernel against the NumPy code it replaces (forward and backward, float32
  tolerances), cuDNN against the NumPy convolution, several devices, streams, memory.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import framework
import framework.nn.functional as F
from framework import _cuda_kernels as K
from framework import _cudnn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

GPU = framework.cuda.is_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="needs CuPy and a CUDA GPU")
FLOATS = ["float32", "float64", "float16"]


def _cupy_or_skip():
    return pytest.importorskip("cupy", reason="CuPy is not installed")


# ============================================================================ always
def test_nothing_imports_cupy_at_import_time():
    code = ("import sys, framework, framework._cuda_kernels, framework._cudnn, "
            "framework.cuda, framework.nn.functional; "
            "print('cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_supports_rejects_host_arrays_and_other_dtypes():
    assert not K.supports(np.zeros(3, np.float32))
    assert not K.supports()
    assert K.dtype_supported(np.float16) and not K.dtype_supported(np.int64)


def test_cudnn_declines_numpy_arrays():
    x = np.zeros((1, 1, 4, 4), np.float32)
    w = np.zeros((1, 1, 3, 3), np.float32)
    assert _cudnn.conv_forward(x, w, None, 1, 1, 1, 1) is None
    assert isinstance(_cudnn.describe(), str)


def test_cudnn_params_from_geom():
    from framework.ops.conv import ConvGeom
    g = ConvGeom((1, 1), (1, 1), (1, 1), 1, (3, 3), (8, 8), (8, 8))
    assert _cudnn.params_from_geom(g) == ((1, 1), (1, 1), (1, 1), 1)
    g = ConvGeom((2,), (1,), (1,), 2, (3,), (9,), (5,))
    assert _cudnn.params_from_geom(g) == ((2,), (1,), (1,), 2)
    # padding='same' with an even kernel pads one more zero after than before: not symmetric
    g = ConvGeom((1,), (1,), (1,), 1, (4,), (6,), (6,))
    assert _cudnn.params_from_geom(g) is None


def test_version_string():
    assert _cudnn.version_string(8907) == "8.9.7"
    assert _cudnn.version_string(92800) == "9.28.0"


def test_kernel_specs_follow_the_argument_convention():
    # explicitly typed inputs are scalars, placeholder-typed inputs and every output are
    # arrays: the compile test below and the wrappers rely on it
    for name, (inp, outp, op, pre) in K.kernel_specs().items():
        for p in inp.split(","):
            typ, _ = p.split()
            assert typ in ("T", "U", "K") or typ in ("float64", "bool"), (name, p)
        assert outp and op.strip(), name


# ============================================================================ NVRTC, no GPU
def _nvrtc_or_skip():
    cp = _cupy_or_skip()
    try:
        from cupy.cuda import nvrtc
        nvrtc.getVersion()
    except Exception as exc:
        pytest.skip(f"NVRTC cannot be loaded ({type(exc).__name__})")
    try:
        from cupy._core import _kernel, _carray, _scalar, core  # noqa: F401
        from cupy.cuda import compiler
        compiler._NVRTCProgram  # noqa: B018
        _kernel._get_elementwise_kernel_code  # noqa: B018
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"this CuPy's internals differ from what the compile check uses: {exc}")
    return cp


def _compile(src):
    """Compile `src` with NVRTC for compute_80 the way CuPy does (its include paths and
    standard), without a device; raises CompileException with the log on an error."""
    from cupy._core import core
    from cupy.cuda import compiler
    opts = tuple(core.assemble_cupy_compiler_options(())) + ("-arch=compute_80",)
    ptx, _ = compiler._NVRTCProgram(src, "lantern_kernel.cu").compile(opts)
    return ptx


def _elementwise_code(cp, name, dtype):
    """The CUDA code CuPy generates for ElementwiseKernel `name` on 1-D arrays of `dtype`
    (CuPy's own generator; argument kinds: 1 array, 2 indexer, 3 scalar)."""
    from cupy._core import _kernel, _carray, _scalar, core
    inp, outp, op, pre = K.kernel_specs()[name]
    k = cp.ElementwiseKernel(inp, outp, op, "lantern_" + name, preamble=pre)
    tmap = {"T": np.dtype(dtype), "U": np.dtype(np.float32), "K": np.dtype(np.bool_)}
    infos, used = [], set()
    for i, p in enumerate(k.params):
        if p.name == "_ind":
            infos.append(_kernel._ArgInfo(2, _carray.Indexer, None, 1, True, True))
        elif p.dtype is None:
            used.add(p.ctype)
            infos.append(_kernel._ArgInfo(1, cp.ndarray, tmap[p.ctype], 1, True, True))
        elif i < k.nin:
            infos.append(_kernel._ArgInfo(3, _scalar.CScalar, p.dtype, 0, True, True))
        else:
            infos.append(_kernel._ArgInfo(1, cp.ndarray, p.dtype, 1, True, True))
    tm = _kernel._TypeMap(tuple((c, tmap[c]) for c in sorted(used)))
    code = _kernel._get_elementwise_kernel_code(tuple(infos), tm, k.params, k.operation, k.name,
                                                k.preamble)
    header = "".join(f"#include <{h}>\n" for h in core._cupy_header_list)
    return header + code


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", sorted(K.kernel_specs()))
def test_elementwise_kernel_compiles(name, dtype):
    cp = _nvrtc_or_skip()
    try:
        src = _elementwise_code(cp, name, dtype)
    except Exception as exc:  # CuPy's internal code generator changed shape
        pytest.skip(f"cannot generate CuPy's kernel code here: {type(exc).__name__}: {exc}")
    assert _compile(src)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", sorted(K.raw_kernel_names()))
def test_raw_kernel_compiles(name, dtype):
    _nvrtc_or_skip()
    ptx = _compile(K.raw_source(name, dtype))
    entry = K.raw_kernel_names()[name]
    assert entry.encode() in (ptx if isinstance(ptx, bytes) else ptx.encode())


def test_compile_check_catches_errors():
    _nvrtc_or_skip()
    from cupy.cuda.compiler import CompileException
    with pytest.raises(CompileException):
        _compile(K.raw_source("ce_fwd", "float32") + "\nint broken = ;\n")


def _cudnn_lib_or_skip():
    try:
        return _cudnn.load_ctypes_library()
    except Exception as exc:
        pytest.skip(f"no cuDNN library to bind: {exc}")


@pytest.mark.parametrize("x_shape,w_shape,pad,stride,dil,groups", [
    ((2, 4, 9, 8), (6, 4, 3, 3), (1, 1), (2, 1), (1, 1), 1),
    ((2, 4, 9, 8), (6, 2, 3, 3), (0, 1), (1, 2), (2, 1), 2),
    ((2, 4, 9, 8, 7), (6, 4, 3, 3, 3), (1, 1, 1), (2, 1, 1), (1, 1, 1), 1),
    ((3, 4, 1, 9), (6, 4, 1, 3), (0, 2), (1, 2), (1, 2), 1),  # a conv1d as 2-D
])
def test_cudnn_ctypes_descriptors(x_shape, w_shape, pad, stride, dil, groups):
    impl = _cudnn_lib_or_skip()
    out = impl.output_dims(np.dtype(np.float32), x_shape, w_shape, pad, stride, dil, groups)
    expect = (x_shape[0], w_shape[0]) + tuple(
        (i + 2 * p - d * (k - 1) - 1) // s + 1
        for i, p, d, k, s in zip(x_shape[2:], pad, dil, w_shape[2:], stride))
    assert out == expect


# ============================================================================ GPU: kernels
def _cp():
    import cupy
    return cupy


def _tol(dtype):
    return {"float64": (1e-12, 1e-10), "float32": (1e-5, 1e-5), "float16": (2e-3, 2e-3)}[dtype]


@needs_gpu
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("amsgrad,decoupled,wd,maximize", [
    (False, False, 0.0, False), (False, False, 0.01, False), (True, False, 0.01, True),
    (False, True, 0.05, False), (True, True, 0.05, True)])
def test_adam_step_matches_numpy(dtype, amsgrad, decoupled, wd, maximize):
    from framework.optim._functional import _adam_one
    cp = _cp()
    rng = np.random.default_rng(0)
    shape = (37, 5)
    p, g = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    m, v = (rng.standard_normal(shape) * 0.1).astype(dtype), rng.random(shape).astype(dtype)
    vmax = (v + rng.random(shape) * 0.1).astype(dtype) if amsgrad else None
    arrs = [p, g, m, v] + ([vmax] if amsgrad else [])
    dev = [cp.asarray(a) for a in arrs]
    if dtype == "float16":  # the reference in float64: the kernel computes in float32
        arrs = [a.astype(np.float64) for a in arrs]
    p, g, m, v = arrs[:4]
    vmax = arrs[4] if amsgrad else None
    for step in (1, 7):
        kw = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=wd,
                  decoupled=decoupled, maximize=maximize, step=step)
        assert K.adam_step(dev[0], dev[1], dev[2], dev[3], dev[4] if amsgrad else None, **kw)
        _adam_one(np, p, g, m, v, vmax, kw["beta1"], kw["beta2"], kw["lr"], wd, kw["eps"],
                  maximize, decoupled, step)
    atol, rtol = _tol(dtype)
    for name, host, d in zip("pgmvx", arrs, dev):
        np.testing.assert_allclose(cp.asnumpy(d).astype(np.float64), host.astype(np.float64),
                                   atol=atol * 10, rtol=rtol * 10, err_msg=name)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("momentum,dampening,nesterov,wd,maximize", [
    (0.0, 0.0, False, 0.0, False), (0.0, 0.0, False, 0.01, True), (0.9, 0.0, False, 0.0, False),
    (0.9, 0.1, False, 5e-4, False), (0.9, 0.0, True, 5e-4, True)])
def test_sgd_momentum_step_matches_numpy(dtype, momentum, dampening, nesterov, wd, maximize):
    from framework.optim._functional import sgd
    cp = _cp()
    rng = np.random.default_rng(1)
    p = rng.standard_normal((64, 3)).astype(dtype)
    pd = cp.asarray(p)
    bufs = [None]
    dbuf = cp.empty_like(pd) if momentum else None
    for it in range(3):
        g = rng.standard_normal(p.shape).astype(dtype)
        sgd([p], [g], bufs, lr=0.1, weight_decay=wd, momentum=momentum, dampening=dampening,
            nesterov=nesterov, maximize=maximize)
        assert K.sgd_momentum_step(pd, cp.asarray(g), dbuf, lr=0.1, weight_decay=wd,
                                   momentum=momentum, dampening=dampening, nesterov=nesterov,
                                   maximize=maximize, first=it == 0)
    atol, rtol = _tol(dtype)
    np.testing.assert_allclose(cp.asnumpy(pd), p, atol=atol, rtol=rtol)
    if momentum:
        np.testing.assert_allclose(cp.asnumpy(dbuf), bufs[0], atol=atol, rtol=rtol)


@needs_gpu
def test_optimizer_kernels_decline_what_they_cannot_do():
    cp = _cp()
    p = cp.zeros(3, cp.complex64)
    assert not K.adam_step(p, p, p, p, None, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                           weight_decay=0, decoupled=False, maximize=False, step=1)
    q = cp.zeros(3, cp.float32)
    assert not K.sgd_momentum_step(q, cp.zeros(4, cp.float32), None, lr=0.1, weight_decay=0,
                                   momentum=0, dampening=0, nesterov=False, maximize=False,
                                   first=True)


def _ce_reference(z, t, ignore_index, eps, reduction):
    """Loss and gradient from the NumPy CrossEntropy path (framework on the CPU)."""
    zt = framework.tensor(z, requires_grad=True)
    loss = F.cross_entropy(zt, framework.tensor(t), ignore_index=ignore_index,
                           label_smoothing=eps, reduction=reduction)
    up = np.linspace(0.5, 1.5, loss.numel()).reshape(loss.shape).astype(z.dtype)
    (gz,) = framework.autograd.grad([loss], [zt], [framework.tensor(up)])
    return loss.detach().numpy(), gz.numpy(), up


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n,c", [(7, 10), (64, 1000), (3, 1), (5, 33)])
@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_kernels_match_numpy(dtype, n, c, eps, reduction):
    cp = _cp()
    rng = np.random.default_rng(2)
    z = (rng.standard_normal((n, c)) * 3).astype(dtype)
    t = rng.integers(0, c, size=n)
    t[::3] = -100
    ref_loss, ref_g, up = _ce_reference(z, t, -100, eps, reduction)
    # the kernels themselves
    loss, lse, valid = K.softmax_cross_entropy_forward(cp.asarray(z), cp.asarray(t), -100, eps)
    rows = cp.asnumpy(loss)
    if reduction == "none":
        got = rows
        k = cp.asarray(up)
    elif reduction == "sum":
        got = rows.sum()
        k = cp.asarray(up)
    else:
        got = rows.sum() / cp.asnumpy(valid).sum()
        k = cp.asarray(up) / valid.sum()
    atol, rtol = _tol(dtype)
    np.testing.assert_allclose(got, ref_loss, atol=atol, rtol=rtol)
    gz = K.softmax_cross_entropy_backward(cp.asarray(z), cp.asarray(t), lse, k, -100, eps)
    np.testing.assert_allclose(cp.asnumpy(gz), ref_g, atol=atol, rtol=rtol)
    # and wired into F.cross_entropy on the GPU
    zt = framework.tensor(z, device="cuda", requires_grad=True)
    out = F.cross_entropy(zt, framework.tensor(t, device="cuda"), label_smoothing=eps,
                          reduction=reduction)
    assert type(out.grad_fn).__name__ == "CrossEntropyFused"
    (g2,) = framework.autograd.grad([out], [zt], [framework.tensor(up, device="cuda")])
    np.testing.assert_allclose(out.detach().cpu().numpy(), ref_loss, atol=atol, rtol=rtol)
    np.testing.assert_allclose(g2.cpu().numpy(), ref_g, atol=atol, rtol=rtol)


@needs_gpu
def test_cross_entropy_fused_double_backward_and_all_ignored():
    z = framework.randn(4, 6, device="cuda", dtype=framework.float64, requires_grad=True)
    t = framework.tensor([1, 2, 3, 4], device="cuda")
    assert framework.autograd.gradcheck(lambda a: F.cross_entropy(a, t), [z])
    assert framework.autograd.gradgradcheck(lambda a: F.cross_entropy(a, t, label_smoothing=0.1),
                                            [z])
    allign = F.cross_entropy(z, framework.full((4,), -100, device="cuda"))
    assert np.isnan(allign.item())


@needs_gpu
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("m,d", [(6, 5), (33, 512), (2, 1100), (1, 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_kernels_match_numpy(dtype, m, d, affine):
    cp = _cp()
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((m, d)) * 2 + 0.5).astype(dtype)
    w = rng.standard_normal(d).astype(dtype) if affine else None
    b = rng.standard_normal(d).astype(dtype) if affine else None
    dy = rng.standard_normal((m, d)).astype(dtype)
    # reference in float64 through the NumPy path
    xt = framework.tensor(x.astype(np.float64), requires_grad=True)
    wt = framework.tensor(w.astype(np.float64), requires_grad=True) if affine else None
    bt = framework.tensor(b.astype(np.float64), requires_grad=True) if affine else None
    y = F.layer_norm(xt, (d,), wt, bt, eps=1e-5)
    ins = [xt] + ([wt, bt] if affine else [])
    grads = framework.autograd.grad([y], ins, [framework.tensor(dy.astype(np.float64))])
    res = K.layer_norm_forward(cp.asarray(x), None if w is None else cp.asarray(w),
                               None if b is None else cp.asarray(b), 1e-5)
    yd, mean, rstd = res
    atol, rtol = {"float64": (1e-10, 1e-9), "float32": (1e-4, 1e-4),
                  "float16": (2e-2, 2e-2)}[dtype]
    np.testing.assert_allclose(cp.asnumpy(yd).astype(np.float64), y.detach().numpy(),
                               atol=atol, rtol=rtol)
    dx, dw, db = K.layer_norm_backward(cp.asarray(dy), cp.asarray(x), mean, rstd,
                                       None if w is None else cp.asarray(w))
    scale = max(1.0, float(np.abs(grads[0].numpy()).max()))
    np.testing.assert_allclose(cp.asnumpy(dx).astype(np.float64), grads[0].numpy(),
                               atol=atol * scale, rtol=rtol)
    if affine:
        for got, ref in ((dw, grads[1]), (db, grads[2])):
            s = max(1.0, float(np.abs(ref.numpy()).max()))
            np.testing.assert_allclose(cp.asnumpy(got).astype(np.float64), ref.numpy(),
                                       atol=atol * s * 4, rtol=rtol * 4)
    else:
        assert dw is None


@needs_gpu
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", ["gelu", "gelu_tanh", "silu"])
def test_activation_kernels_match_numpy(dtype, op):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((50, 7)) * 3).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)

    def run(device):
        xt = framework.tensor(x, device=device, requires_grad=True)
        y = F.silu(xt) if op == "silu" else F.gelu(
            xt, approximate="tanh" if op == "gelu_tanh" else "none")
        (gx,) = framework.autograd.grad([y], [xt], [framework.tensor(g, device=device)])
        return y.detach().cpu().numpy().astype(np.float64), gx.cpu().numpy().astype(np.float64)

    if dtype == "float16":  # the CPU reference in float32 (NumPy's float16 math differs)
        x32 = x.astype(np.float32)
        xt = framework.tensor(x32, requires_grad=True)
        y = F.silu(xt) if op == "silu" else F.gelu(
            xt, approximate="tanh" if op == "gelu_tanh" else "none")
        (gx,) = framework.autograd.grad([y], [xt], [framework.tensor(g.astype(np.float32))])
        ref = (y.detach().numpy(), gx.numpy())
    else:
        ref = run("cpu")
    got = run("cuda")
    atol, rtol = _tol(dtype)
    np.testing.assert_allclose(got[0], ref[0], atol=atol, rtol=rtol)
    np.testing.assert_allclose(got[1], ref[1], atol=atol, rtol=rtol)


@needs_gpu
@pytest.mark.parametrize("dtype", FLOATS)
def test_dropout_kernel_mask_scale_and_gradient(dtype):
    cp = _cp()
    x = framework.tensor(np.random.default_rng(5).standard_normal((400, 50)).astype(dtype),
                         device="cuda", requires_grad=True)
    y = F.dropout(x, p=0.3, training=True)
    assert type(y.grad_fn).__name__.startswith("Dropout")
    keep = y.grad_fn.keep
    assert keep is not None and keep.dtype == cp.bool_
    xs, ys, ks = (cp.asnumpy(x.detach()._data).astype(np.float64),
                  cp.asnumpy(y.detach()._data).astype(np.float64), cp.asnumpy(keep))
    scale = 1.0 / 0.7
    atol, rtol = _tol(dtype)
    np.testing.assert_allclose(ys, np.where(ks, xs * scale, 0.0), atol=atol, rtol=rtol)
    assert abs(ks.mean() - 0.7) < 0.02
    (gx,) = framework.autograd.grad([y], [x], [framework.ones_like(y)])
    np.testing.assert_allclose(cp.asnumpy(gx._data).astype(np.float64), ks * scale,
                               atol=atol, rtol=rtol)


@needs_gpu
def test_channel_dropout_broadcasts_its_mask():
    cp = _cp()
    x = framework.randn(8, 16, 5, 5, device="cuda", requires_grad=True)
    y = F.dropout2d(x, p=0.5, training=True)
    ys = cp.asnumpy(y.detach()._data)
    zero_channels = (np.abs(ys).reshape(8, 16, -1).max(-1) == 0)
    assert 0 < zero_channels.mean() < 1
    (gx,) = framework.autograd.grad([y], [x], [framework.ones_like(y)])
    g = cp.asnumpy(gx._data).reshape(8, 16, -1)
    assert np.all((g == 0).all(-1) == zero_channels)


@needs_gpu
def test_kernels_are_built_once():
    cp = _cp()
    x = cp.ones(10, cp.float32)
    K.gelu_forward(x)
    K.softmax_cross_entropy_forward(cp.ones((2, 3), cp.float32), cp.zeros(2, cp.int64))
    ew = dict(K._ew_cache)
    raw = dict(K._raw_cache)
    for _ in range(3):
        K.gelu_forward(x)
        K.softmax_cross_entropy_forward(cp.ones((2, 3), cp.float32), cp.zeros(2, cp.int64))
    assert all(K._ew_cache[k] is v for k, v in ew.items()) and len(K._ew_cache) == len(ew)
    assert all(K._raw_cache[k] is v for k, v in raw.items()) and len(K._raw_cache) == len(raw)


# ============================================================================ GPU: cuDNN
def _np_conv(x, w, stride, pad, dil, groups):
    from framework.ops.conv import ConvGeom, conv_forward
    k = w.shape[2:]
    out = tuple((i + 2 * p - d * (kk - 1) - 1) // s + 1
                for i, p, d, kk, s in zip(x.shape[2:], pad, dil, k, stride))
    g = ConvGeom(stride, dil, pad, groups, k, x.shape[2:], out)
    return g, conv_forward(x, w, None, g)[0]


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("x_shape,w_shape,stride,pad,dil,groups", [
    ((2, 3, 12, 11), (8, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((2, 4, 12, 11), (6, 2, 3, 3), (2, 1), (0, 1), (1, 2), 2),
    ((2, 6, 9, 9), (6, 1, 3, 3), (2, 2), (1, 1), (1, 1), 6),
    ((1, 2, 6, 7, 5), (4, 2, 3, 3, 3), (1, 2, 1), (1, 1, 1), (1, 1, 1), 1),
    ((3, 4, 15), (5, 4, 3), (2,), (1,), (2,), 1),
])
def test_cudnn_convolutions_match_numpy(dtype, x_shape, w_shape, stride, pad, dil, groups):
    if not _cudnn.available():
        pytest.skip(_cudnn.describe())
    cp = _cp()
    from framework.ops.conv import conv_input_grad, conv_weight_grad
    rng = np.random.default_rng(6)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape) * 0.3
    b = rng.standard_normal(w_shape[0])
    g, y_ref = _np_conv(x, w, stride, pad, dil, groups)
    y_ref = y_ref + b.reshape((1, -1) + (1,) * (len(x_shape) - 2))
    dy = rng.standard_normal(y_ref.shape)
    dx_ref = conv_input_grad(dy, w, g)
    dw_ref = conv_weight_grad(x, dy, g, w.shape)
    c = lambda a: cp.asarray(a.astype(dtype))  # noqa: E731
    y = _cudnn.conv_forward(c(x), c(w), c(b), stride, pad, dil, groups)
    dx = _cudnn.conv_backward_data(c(dy), c(w), x_shape, stride, pad, dil, groups)
    dw = _cudnn.conv_backward_filter(c(x), c(dy), w_shape, stride, pad, dil, groups)
    assert y is not None and dx is not None and dw is not None, _cudnn.describe()
    tol = {"float64": 1e-10, "float32": 1e-4, "float16": 3e-2}[dtype]
    for name, got, ref in (("y", y, y_ref), ("dx", dx, dx_ref), ("dw", dw, dw_ref)):
        s = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(cp.asnumpy(got).astype(np.float64), ref, atol=tol * s,
                                   rtol=tol, err_msg=name)


@needs_gpu
def test_cudnn_selftest():
    if not _cudnn.available():
        pytest.skip(_cudnn.describe())
    assert "ok" in _cudnn.selftest()


# ============================================================================ GPU: devices
@needs_gpu
def test_memory_statistics_and_exact_peak():
    cp = _cp()
    dev = framework.cuda.current_device()
    framework.cuda.reset_peak_memory_stats()
    base = framework.cuda.memory_allocated()
    a = cp.empty(64 << 20, cp.uint8)
    mid = framework.cuda.memory_allocated(dev)
    del a
    after = framework.cuda.memory_allocated(f"cuda:{dev}")
    assert mid - base >= 64 << 20 and after < mid
    b = cp.empty(16 << 20, cp.uint8)  # never sampled: only the hook sees the first array
    del b
    assert framework.cuda.max_memory_allocated() >= base + (64 << 20)
    assert framework.cuda.memory_reserved() >= framework.cuda.memory_allocated()
    framework.cuda.track_peak_memory(False)


@needs_gpu
def test_streams_events_and_synchronize():
    s = framework.cuda.Stream()
    start, end = framework.cuda.Event(enable_timing=True), framework.cuda.Event(
        enable_timing=True)
    with framework.cuda.stream(s):
        assert framework.cuda.current_stream() == s
        start.record(s)
        x = framework.randn(256, 256, device="cuda")
        y = x @ x
        end.record(s)
    s.synchronize()
    end.synchronize()
    assert start.elapsed_time(end) >= 0
    assert framework.cuda.current_stream() != s
    framework.cuda.synchronize()
    framework.cuda.synchronize(framework.cuda.current_device())
    assert y.shape == (256, 256) and s.query()


@needs_gpu
def test_pinned_memory():
    t = framework.randn(4, 5)
    p = t.pin_memory()
    assert p.is_pinned() and not t.is_pinned()
    np.testing.assert_array_equal(p.numpy(), t.numpy())
    np.testing.assert_array_equal(p.to("cuda").cpu().numpy(), t.numpy())


def test_pin_memory_without_gpu_is_a_noop():
    if GPU:
        pytest.skip("a GPU is present")
    t = framework.randn(3)
    assert t.pin_memory() is t and not t.is_pinned()


needs_two = pytest.mark.skipif(not GPU or framework.cuda.device_count() < 2,
                               reason="needs two CUDA GPUs")


@needs_two
def test_tensor_and_module_on_a_second_gpu():
    x = framework.randn(5, 4, requires_grad=True)
    x1 = x.to("cuda:1")
    assert x1.device == framework.device("cuda:1") and x1.get_device() == 1
    lin = framework.nn.Linear(4, 3).to("cuda:1")
    assert all(p.get_device() == 1 for p in lin.parameters())
    y = F.gelu(lin(x1)).sum()
    y.backward()
    assert x.grad is not None and x.grad.device == framework.device("cpu")
    assert lin.weight.grad.get_device() == 1
    ref_lin = framework.nn.Linear(4, 3)
    ref_lin.load_state_dict({k: v.cpu() for k, v in lin.state_dict().items()})
    xr = x.detach().clone().requires_grad_(True)
    F.gelu(ref_lin(xr)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xr.grad.numpy(), rtol=1e-5, atol=1e-6)
    # device to device
    x0 = x1.to("cuda:0")
    assert x0.get_device() == 0
    np.testing.assert_array_equal(x0.detach().cpu().numpy(), x.detach().numpy())
    with framework.cuda.device(1):
        z = framework.zeros(3, device="cuda")
    assert z.get_device() == 1
    assert framework.cuda.memory_allocated(1) > 0
