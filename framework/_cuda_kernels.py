"""Fused CuPy kernels for the GPU path.

Each function here takes and returns CuPy arrays (never Tensors) and does in one kernel launch
(two for the row reductions' parameter gradients) what the NumPy path does as a chain of
whole-array ops. Nothing here imports CuPy at module import time: kernels are built on first
use and kept in module dictionaries, so a kernel object is made once per process and CuPy's
own caches (in memory per argument types, on disk per source) compile it once per dtype.

Supported dtypes: float16, float32 and float64 (all arrays of one call share a dtype).
Arithmetic runs in float32 for float16 and float32 data, in float64 for float64 data
(`A` in the sources), matching the order of operations of the NumPy code they replace, so
results agree to a few ulps (the GPU compiler contracts a*b+c into fused multiply-adds).
Callers check `supports(...)` first and keep their NumPy/CuPy-generic code as the fallback.

Kernels and the code they stand in for:

- adam_step / sgd_momentum_step: framework/optim/_functional.py `_adam_one` (with
  `adam_direction`) and `sgd`, one elementwise kernel per parameter tensor, in place.
- softmax_cross_entropy_forward / _backward: framework/ops/loss.py `CrossEntropy` for 2-D
  logits and class targets without class weights (ignore_index and label smoothing kept).
- layer_norm_forward / layer_norm_backward: framework/ops/normalization.py `Normalize` for
  layer_norm (statistics over the rows of an (M, D) view).
- gelu_forward / gelu_backward (exact and tanh), silu_forward / silu_backward:
  framework/ops/activation.py `Gelu`, `Silu`.
- dropout_forward / dropout_backward: framework/ops/dropout.py `Dropout` (mask and scale).

`kernel_specs()` and `raw_source()` expose the exact kernel sources, so a test can compile
every kernel with NVRTC on a machine without a GPU (tests/test_cuda_kernels.py).
"""
from __future__ import annotations

import numpy as np

from ._backend import cupy_module

_FLOATS = frozenset([np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)])
_CTYPE = {np.dtype(np.float16): ("float16", "float"), np.dtype(np.float32): ("float", "float"),
          np.dtype(np.float64): ("double", "double")}


def supports(*arrays) -> bool:
    """True when every array is a CuPy array of one supported floating dtype."""
    if not arrays:
        return False
    dt = arrays[0].dtype
    if dt not in _FLOATS:
        return False
    for a in arrays:
        if a is None:
            continue
        if isinstance(a, (np.ndarray, np.generic)) or a.dtype != dt:
            return False
    return True


def dtype_supported(dtype) -> bool:
    return np.dtype(dtype) in _FLOATS


# ============================================================================ elementwise
# The accumulation type A: float for float16/float32 data, double for float64 data.
_ACC = r"""
template <typename U> struct _lt_acc { typedef float type; };
template <> struct _lt_acc<double> { typedef double type; };
"""

def _adam_spec(amsgrad: bool):
    """The Adam/AdamW kernel (with the running max of v under amsgrad): _adam_one's math."""
    body = r"""
        typedef _lt_acc<T>::type A;
        A pp = (A)p;
        A gg = (A)g;
        if (decoupled) {
            if (wd != 0.0) pp = pp * (A)decay;
            if (maximize) gg = -gg;
        } else if (wd != 0.0) {
            A t = pp * (A)wd;
            gg = maximize ? t - gg : t + gg;
        } else if (maximize) {
            gg = -gg;
        }
        A mm = (A)m;
        A d = gg - mm;
        if (w < 0.5) { mm = mm + d * (A)w; } else { mm = gg - d * (A)omw; }
        A vv = (A)v * (A)beta2 + (gg * (A)omb2) * gg;
"""
    if amsgrad:
        body += r"""        A vm = (A)vmax;
        vm = (vv > vm || vv != vv) ? vv : vm;
        A den = sqrt(vm) / (A)bc2_sqrt + (A)eps;
        pp = pp - (mm / den) * (A)step_size;
        p = (T)pp; m = (T)mm; v = (T)vv; vmax = (T)vm;
        """
    else:
        body += r"""        A den = sqrt(vv) / (A)bc2_sqrt + (A)eps;
        pp = pp - (mm / den) * (A)step_size;
        p = (T)pp; m = (T)mm; v = (T)vv;
        """
    return ("T g, float64 decay, float64 wd, bool decoupled, bool maximize, float64 w, "
            "float64 omw, float64 beta2, float64 omb2, float64 bc2_sqrt, float64 eps, "
            "float64 step_size",
            "T p, T m, T v, T vmax" if amsgrad else "T p, T m, T v", body, _ACC)


# name: (in_params, out_params, operation, preamble). Placeholder-typed inputs are arrays,
# explicitly typed inputs are scalars, every output is an array (tests rely on this).
_EW = {
    # ---------------------------------------------------------------- optimizers
    # _adam_one: decoupled (AdamW) or L2 weight decay, maximize, moments updated in place;
    # m <- lerp(m, g, w) with PyTorch's two-branch lerp, v <- v*b2 + (g*(1-b2))*g,
    # p <- p - (m / (sqrt(v or vmax) / bc2_sqrt + eps)) * step_size.
    "adam": _adam_spec(amsgrad=False),
    "adam_amsgrad": _adam_spec(amsgrad=True),
    # sgd: g' = g (+ wd * p, negated first when maximize); with momentum buf <- g' on the
    # first step, else buf*momentum + g'*(1 - dampening); nesterov: g' + buf*momentum.
    "sgd_momentum": (
        "T g, float64 lr, float64 wd, float64 momentum, float64 omd, bool dampen, "
        "bool nesterov, bool maximize, bool first",
        "T p, T buf",
        r"""
        typedef _lt_acc<T>::type A;
        A pp = (A)p;
        A gg = (A)g;
        if (wd != 0.0) {
            A t = pp * (A)wd;
            gg = maximize ? t - gg : t + gg;
        } else if (maximize) {
            gg = -gg;
        }
        A b;
        if (first) {
            b = gg;
        } else {
            b = (A)buf * (A)momentum;
            b = dampen ? b + gg * (A)omd : b + gg;
        }
        buf = (T)b;
        A step = nesterov ? gg + b * (A)momentum : b;
        p = (T)(pp + step * (A)(-lr));
        """, _ACC),
    "sgd": (
        "T g, float64 lr, float64 wd, bool maximize",
        "T p",
        r"""
        typedef _lt_acc<T>::type A;
        A pp = (A)p;
        A gg = (A)g;
        if (wd != 0.0) {
            A t = pp * (A)wd;
            gg = maximize ? t - gg : t + gg;
        } else if (maximize) {
            gg = -gg;
        }
        p = (T)(pp + gg * (A)(-lr));
        """, _ACC),
    # ---------------------------------------------------------------- activations
    "gelu_fwd": (
        "T x", "T y",
        r"""
        typedef _lt_acc<T>::type A;
        A v = (A)x;
        y = (T)((A)0.5 * v * ((A)1 + erf(v * (A)0.70710678118654752440)));
        """, _ACC),
    "gelu_bwd": (
        "T x, T g", "T gx",
        r"""
        typedef _lt_acc<T>::type A;
        A v = (A)x;
        A cdf = (A)0.5 * ((A)1 + erf(v * (A)0.70710678118654752440));
        A pdf = exp(v * v * (A)(-0.5)) * (A)0.39894228040143267794;
        gx = (T)((A)g * (cdf + v * pdf));
        """, _ACC),
    "gelu_tanh_fwd": (
        "T x", "T y",
        r"""
        typedef _lt_acc<T>::type A;
        A v = (A)x;
        A t = tanh((v + (A)0.044715 * v * v * v) * (A)0.79788456080286535588);
        y = (T)((A)0.5 * v * ((A)1 + t));
        """, _ACC),
    "gelu_tanh_bwd": (
        "T x, T g", "T gx",
        r"""
        typedef _lt_acc<T>::type A;
        A v = (A)x;
        A v2 = v * v;
        A t = tanh((v + (A)0.044715 * v2 * v) * (A)0.79788456080286535588);
        A dt = ((A)1 - t * t) * ((v2 * (A)(3.0 * 0.044715) + (A)1) *
                                 (A)(0.5 * 0.79788456080286535588));
        gx = (T)((A)g * ((A)0.5 * (t + (A)1) + v * dt));
        """, _ACC),
    "silu_fwd": (
        "T x", "T y",
        r"""
        typedef _lt_acc<T>::type A;
        A v = (A)x;
        y = (T)(v / ((A)1 + exp(-v)));
        """, _ACC),
    "silu_bwd": (
        "T x, T g", "T gx",
        r"""
        typedef _lt_acc<T>::type A;
        A v = (A)x;
        A s = (A)1 / ((A)1 + exp(-v));
        gx = (T)((A)g * (s * (v * ((A)1 - s) + (A)1)));
        """, _ACC),
    # ---------------------------------------------------------------- dropout
    # keep = u >= p (u uniform in [0, 1)), y = x * (keep ? scale : 0)
    "dropout_fwd": (
        "T x, U u, float64 p, float64 scale", "T y, bool keep",
        r"""
        typedef _lt_acc<T>::type A;
        bool k = (float)u >= (float)p;
        keep = k;
        y = (T)((A)x * (k ? (A)scale : (A)0));
        """, _ACC),
    # gx = g * (keep ? scale : 0); keep broadcasts (channel dropout)
    "dropout_bwd": (
        "T g, K keep, float64 scale", "T gx",
        r"""
        typedef _lt_acc<T>::type A;
        gx = (T)((A)g * (keep ? (A)scale : (A)0));
        """, _ACC),
}

_ew_cache: dict = {}


def kernel_specs():
    """{name: (in_params, out_params, operation, preamble)} of the elementwise kernels."""
    return dict(_EW)


def _ew(name):
    k = _ew_cache.get(name)
    if k is None:
        cp = cupy_module()
        in_p, out_p, op, pre = _EW[name]
        k = _ew_cache[name] = cp.ElementwiseKernel(in_p, out_p, op, "lantern_" + name,
                                                   preamble=pre)
    return k


# ============================================================================ raw kernels
# CuPy's own headers, in the order its ElementwiseKernel code includes them (complex.cuh
# first: it completes the float16 type that carray.cuh only declares).
_RAW_COMMON = r"""
#include <cupy/complex.cuh>
#include <cupy/carray.cuh>
typedef __T__ T;
typedef __A__ A;

__device__ __forceinline__ A lt_warp_sum(A v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ A lt_warp_max(A v) {
    for (int o = 16; o > 0; o >>= 1) {
        A t = __shfl_down_sync(0xffffffffu, v, o);
        v = (t > v || t != t) ? t : v;  // NaN propagates, as numpy's max
    }
    return v;
}

// Sum over the block, returned to every thread. blockDim.x is a multiple of 32 (<= 1024);
// `sh` holds 32 values. The first barrier lets a previous call's readers finish.
__device__ A lt_block_sum(A v, A* sh) {
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = lt_warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = (lane < nw) ? sh[lane] : (A)0;
        v = lt_warp_sum(v);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

__device__ A lt_block_max(A v, A* sh) {
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = lt_warp_max(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        A first = sh[0];
        v = (lane < nw) ? sh[lane] : first;
        v = lt_warp_max(v);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}
"""

_RAW = {
    # One block per row of (n, c) logits z: logsumexp, the target's logit and (with label
    # smoothing eps) the row sum. loss = (1-eps)(lse - z_t) + eps/c (c lse - sum z) for a
    # valid target, 0 for ignore_index; valid is 1 or 0; lse is kept for the backward.
    "ce_fwd": r"""
extern "C" __global__ void lt_ce_fwd(const T* z, const long long* tgt, long long n, long long c,
                                     long long ignore_index, double eps, A* loss, A* lse_out,
                                     A* valid_out) {
    __shared__ A sh[32];
    for (long long row = blockIdx.x; row < n; row += gridDim.x) {
        const T* zr = z + row * c;
        A m = (A)zr[0];
        for (long long j = threadIdx.x; j < c; j += blockDim.x) {
            A v = (A)zr[j];
            m = (v > m || v != v) ? v : m;
        }
        m = lt_block_max(m, sh);
        A s = 0, sz = 0;
        for (long long j = threadIdx.x; j < c; j += blockDim.x) {
            A v = (A)zr[j];
            s += exp(v - m);
            sz += v;
        }
        s = lt_block_sum(s, sh);
        if (eps != 0.0) sz = lt_block_sum(sz, sh);
        if (threadIdx.x == 0) {
            A lse = m + log(s);
            long long t = tgt[row];
            A l = 0;
            bool valid = t != ignore_index;
            if (valid) {
                A nll = lse - (A)zr[t];
                if (eps != 0.0) {
                    l = nll * (A)(1.0 - eps) + (A)(eps / (double)c) * (lse * (A)c - sz);
                } else {
                    l = nll;
                }
            }
            loss[row] = l;
            lse_out[row] = lse;
            valid_out[row] = valid ? (A)1 : (A)0;
        }
    }
}
""",
    # gz = (softmax(z) - q) * k for valid rows (q = (1-eps) onehot + eps/c), 0 otherwise;
    # k is one value (k_stride 0) or one per row (k_stride 1).
    "ce_bwd": r"""
extern "C" __global__ void lt_ce_bwd(const T* z, const long long* tgt, const A* lse, const A* k,
                                     long long k_stride, long long n, long long c,
                                     long long ignore_index, double eps, T* gz) {
    long long total = n * c;
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        long long row = i / c;
        long long j = i - row * c;
        long long t = tgt[row];
        A out = 0;
        if (t != ignore_index) {
            A p = exp((A)z[i] - lse[row]);
            A q = (A)(eps / (double)c);
            if (j == t) q += (A)(1.0 - eps);
            out = (p - q) * k[row * k_stride];
        }
        gz[i] = (T)out;
    }
}
""",
    # One block per row of (m, d) x: mean, biased variance, rstd = 1/sqrt(var + eps),
    # y = (x - mean) * rstd [* w] [+ b].
    "ln_fwd": r"""
extern "C" __global__ void lt_ln_fwd(const T* x, const T* w, const T* b, long long m, long long d,
                                     double eps, int has_w, int has_b, T* y, A* mean_out,
                                     A* rstd_out) {
    __shared__ A sh[32];
    for (long long row = blockIdx.x; row < m; row += gridDim.x) {
        const T* xr = x + row * d;
        T* yr = y + row * d;
        A s = 0;
        for (long long j = threadIdx.x; j < d; j += blockDim.x) s += (A)xr[j];
        A mean = lt_block_sum(s, sh) / (A)d;
        A q = 0;
        for (long long j = threadIdx.x; j < d; j += blockDim.x) {
            A t = (A)xr[j] - mean;
            q += t * t;
        }
        A var = lt_block_sum(q, sh) / (A)d;
        A rstd = (A)1 / sqrt(var + (A)eps);
        for (long long j = threadIdx.x; j < d; j += blockDim.x) {
            A t = ((A)xr[j] - mean) * rstd;
            if (has_w) t = t * (A)w[j];
            if (has_b) t = t + (A)b[j];
            yr[j] = (T)t;
        }
        if (threadIdx.x == 0) {
            mean_out[row] = mean;
            rstd_out[row] = rstd;
        }
    }
}
""",
    # dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy [* w].
    "ln_bwd_dx": r"""
extern "C" __global__ void lt_ln_bwd_dx(const T* dy, const T* x, const A* mean, const A* rstd,
                                        const T* w, long long m, long long d, int has_w, T* dx) {
    __shared__ A sh[32];
    for (long long row = blockIdx.x; row < m; row += gridDim.x) {
        const T* xr = x + row * d;
        const T* gr = dy + row * d;
        T* dr = dx + row * d;
        A mu = mean[row], r = rstd[row];
        A s1 = 0, s2 = 0;
        for (long long j = threadIdx.x; j < d; j += blockDim.x) {
            A g = (A)gr[j];
            if (has_w) g = g * (A)w[j];
            A xh = ((A)xr[j] - mu) * r;
            s1 += g;
            s2 += g * xh;
        }
        s1 = lt_block_sum(s1, sh) / (A)d;
        s2 = lt_block_sum(s2, sh) / (A)d;
        for (long long j = threadIdx.x; j < d; j += blockDim.x) {
            A g = (A)gr[j];
            if (has_w) g = g * (A)w[j];
            A xh = ((A)xr[j] - mu) * r;
            dr[j] = (T)((g - (xh * s2 + s1)) * r);
        }
    }
}
""",
    # Partial column sums for dw = sum_rows dy * xhat and db = sum_rows dy: block (bx, by)
    # sums rows [by*rows, (by+1)*rows) of columns bx*blockDim.x + threadIdx.x (coalesced).
    "ln_bwd_dwdb": r"""
extern "C" __global__ void lt_ln_bwd_dwdb(const T* dy, const T* x, const A* mean,
                                          const A* rstd, long long m, long long d,
                                          long long rows, A* pw, A* pb) {
    long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= d) return;
    long long r0 = (long long)blockIdx.y * rows;
    long long r1 = r0 + rows < m ? r0 + rows : m;
    A sw = 0, sb = 0;
    for (long long r = r0; r < r1; ++r) {
        A g = (A)dy[r * d + col];
        sw += g * (((A)x[r * d + col] - mean[r]) * rstd[r]);
        sb += g;
    }
    pw[(long long)blockIdx.y * d + col] = sw;
    pb[(long long)blockIdx.y * d + col] = sb;
}
""",
}

_raw_cache: dict = {}


_f16_header = []


def _float16_include() -> str:
    """CuPy >= 14 defines float16 in its own header (its generated code includes it when a
    kernel uses float16); older CuPy defines it in carray.cuh."""
    if not _f16_header:
        import os
        cp = cupy_module()
        inc = os.path.join(os.path.dirname(cp.__file__), "_core", "include", "cupy",
                           "float16.cuh")
        _f16_header.append('#include "cupy/float16.cuh"\n' if os.path.exists(inc) else "")
    return _f16_header[0]


def raw_source(name: str, dtype) -> str:
    """The full CUDA source of raw kernel `name` for data of `dtype`."""
    dtype = np.dtype(dtype)
    t, a = _CTYPE[dtype]
    src = _RAW_COMMON.replace("__T__", t).replace("__A__", a) + _RAW[name]
    if dtype == np.float16:
        src = _float16_include() + src
    return src


def raw_kernel_names():
    return {name: "lt_" + name for name in _RAW}


def _raw(name, dtype):
    key = (name, dtype)
    f = _raw_cache.get(key)
    if f is None:
        cp = cupy_module()
        mod = cp.RawModule(code=raw_source(name, dtype))
        f = _raw_cache[key] = mod.get_function("lt_" + name)
    return f


def _acc_dtype(dtype):
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _row_block(n: int) -> int:
    """Threads per block for a row of n elements: a multiple of 32, at most 512."""
    b = 32
    while b < n and b < 512:
        b *= 2
    return b


def _grid_1d(total: int, block: int = 256) -> int:
    return max(1, min((total + block - 1) // block, 65535 * 8))


# ============================================================================ optimizers
def adam_step(p, g, m, v, vmax=None, *, lr, beta1, beta2, eps, weight_decay, decoupled,
              maximize, step) -> bool:
    """One Adam/AdamW update of parameter `p` in place, with its moments `m`, `v` (and the
    running max `vmax` for amsgrad, else None): the math of framework/optim/_functional.py
    `_adam_one` in one kernel launch. `step` is the step count after this step's increment;
    `decoupled` is AdamW's decoupled weight decay. Returns False (touching nothing) when the
    arrays are not all CuPy arrays of one supported real dtype and one shape: the caller
    then runs `_adam_one`.

    How optim/_functional.py `adam` should call it, per parameter i:

        if xp is not np and _cuda_kernels.adam_step(p, grads[i], m, v, vmax, lr=lr,
                beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                decoupled=decoupled_weight_decay, maximize=maximize, step=steps[i]):
            continue
    """
    arrays = (p, g, m, v) if vmax is None else (p, g, m, v, vmax)
    if not supports(*arrays) or any(a.shape != p.shape for a in arrays):
        return False
    bc1 = 1 - beta1 ** step
    bc2 = 1 - beta2 ** step
    w = 1.0 - beta1
    args = (g, 1.0 - lr * weight_decay, float(weight_decay), bool(decoupled), bool(maximize),
            w, 1.0 - w, float(beta2), 1.0 - beta2, bc2 ** 0.5, float(eps), lr / bc1)
    if vmax is None:
        _ew("adam")(*args, p, m, v)
    else:
        _ew("adam_amsgrad")(*args, p, m, v, vmax)
    return True


def sgd_momentum_step(p, g, buf, *, lr, weight_decay, momentum, dampening, nesterov, maximize,
                      first) -> bool:
    """One SGD update of `p` in place (framework/optim/_functional.py `sgd`, one parameter):
    with momentum != 0, `buf` is the momentum buffer (an array shaped like p; on the first
    step (`first=True`) it is overwritten with the gradient, so the caller may pass
    `cupy.empty_like(p)`); with momentum == 0 pass buf=None. Returns False (touching nothing)
    when the arrays are not CuPy arrays of one supported real dtype and shape.

    How optim/_functional.py `sgd` should call it, per parameter i:

        buf = momentum_buffers[i]
        first = momentum != 0 and buf is None
        if first:
            buf = xp.empty_like(p)
        if xp is not np and _cuda_kernels.sgd_momentum_step(p, grads[i],
                buf if momentum != 0 else None, lr=lr, weight_decay=weight_decay,
                momentum=momentum, dampening=dampening, nesterov=nesterov,
                maximize=maximize, first=first):
            if momentum != 0:
                momentum_buffers[i] = buf
            continue
    """
    if momentum != 0:
        if buf is None or not supports(p, g, buf) or buf.shape != p.shape or \
                g.shape != p.shape:
            return False
        _ew("sgd_momentum")(g, float(lr), float(weight_decay), float(momentum),
                            1.0 - dampening, dampening != 0, bool(nesterov), bool(maximize),
                            bool(first), p, buf)
        return True
    if not supports(p, g) or g.shape != p.shape:
        return False
    _ew("sgd")(g, float(lr), float(weight_decay), bool(maximize), p)
    return True


# ============================================================================ cross entropy
def softmax_cross_entropy_forward(z, tgt, ignore_index=-100, label_smoothing=0.0):
    """Per-row cross entropy of (N, C) logits `z` against int64 class targets `tgt` (N,):
    returns (loss, lse, valid), each (N,) in the accumulation dtype (float32, or float64 for
    float64 logits): the row losses (0 where the target is ignore_index), the rows'
    logsumexp (what the backward needs instead of the (N, C) softmax) and 1/0 validity
    flags (their sum is the 'mean' denominator). Targets are not range-checked here."""
    cp = cupy_module()
    n, c = z.shape
    acc = _acc_dtype(z.dtype)
    z = cp.ascontiguousarray(z)
    tgt = cp.ascontiguousarray(tgt, dtype=cp.int64)
    loss = cp.empty(n, acc)
    lse = cp.empty(n, acc)
    valid = cp.empty(n, acc)
    if n:
        _raw("ce_fwd", z.dtype)((min(n, 65535 * 16),), (_row_block(c),),
                                (z, tgt, np.int64(n), np.int64(c), np.int64(ignore_index),
                                 np.float64(label_smoothing), loss, lse, valid))
    return loss, lse, valid


def softmax_cross_entropy_backward(z, tgt, lse, k, ignore_index=-100, label_smoothing=0.0):
    """Gradient of the cross entropy with respect to (N, C) logits `z`:
    (softmax(z) - q) * k per row (q = (1-eps) onehot(t) + eps/C, zero rows for ignored
    targets). `lse` comes from the forward; `k` is the upstream factor, a 0-d array (sum, or
    mean with the division already applied) or (N,) (reduction 'none'), on the device."""
    cp = cupy_module()
    n, c = z.shape
    acc = _acc_dtype(z.dtype)
    z = cp.ascontiguousarray(z)
    tgt = cp.ascontiguousarray(tgt, dtype=cp.int64)
    k = cp.ascontiguousarray(k, dtype=acc)
    k_stride = 0 if k.size == 1 else 1
    if k_stride:
        k = k.reshape(n)
    gz = cp.empty((n, c), z.dtype)
    total = n * c
    if total:
        _raw("ce_bwd", z.dtype)((_grid_1d(total),), (256,),
                                (z, tgt, cp.ascontiguousarray(lse, dtype=acc), k,
                                 np.int64(k_stride), np.int64(n), np.int64(c),
                                 np.int64(ignore_index), np.float64(label_smoothing), gz))
    return gz


# ============================================================================ layer norm
def layer_norm_forward(x2d, w=None, b=None, eps=1e-5):
    """Layer norm of the rows of an (M, D) array: returns (y, mean, rstd) with y (M, D) in
    x's dtype and mean, rstd (M,) in the accumulation dtype. `w`, `b`: (D,) arrays of x's
    dtype, or None. Returns None when the dtypes are not supported (the caller falls back).

    How ops/normalization.py should use it for layer_norm on CuPy arrays (input x, d = the
    product of normalized_shape, w_arr/b_arr the affine arrays or None):

        res = _cuda_kernels.layer_norm_forward(x.reshape(-1, d), w_arr, b_arr, eps)
        if res is not None:              # None: unsupported dtypes, use Normalize as now
            y, mean, rstd = res          # the op's output is y.reshape(x.shape)
            # keep mean and rstd on the op (2 * M values instead of the (M, D) x-hat) and
            # save x, w as inputs; the backward without create_graph is
            #   dx, dw, db = _cuda_kernels.layer_norm_backward(dy.reshape(-1, d),
            #       x.reshape(-1, d), mean, rstd, w_arr, want_w, want_b)
            # (dx.reshape(x.shape), dw/db reshaped to normalized_shape); with create_graph,
            # the existing Tensor formula.
    """
    cp = cupy_module()
    if not supports(x2d, w, b) or x2d.ndim != 2:
        return None
    m, d = x2d.shape
    if (w is not None and w.size != d) or (b is not None and b.size != d):
        return None
    acc = _acc_dtype(x2d.dtype)
    x2d = cp.ascontiguousarray(x2d)
    y = cp.empty((m, d), x2d.dtype)
    mean = cp.empty(m, acc)
    rstd = cp.empty(m, acc)
    if m and d:
        wa = cp.ascontiguousarray(w).reshape(d) if w is not None else x2d
        ba = cp.ascontiguousarray(b).reshape(d) if b is not None else x2d
        _raw("ln_fwd", x2d.dtype)((min(m, 65535 * 16),), (_row_block(d),),
                                  (x2d, wa, ba, np.int64(m), np.int64(d), np.float64(eps),
                                   np.int32(w is not None), np.int32(b is not None), y, mean,
                                   rstd))
    return y, mean, rstd


def layer_norm_backward(dy2d, x2d, mean, rstd, w=None, want_w=True, want_b=True):
    """Gradients of y = layer_norm(x) over the rows of (M, D): returns (dx, dw, db), dw and db
    (D,) in x's dtype (None when not wanted or when w is None / no bias). `mean`, `rstd`
    come from `layer_norm_forward`. Returns None when the dtypes are not supported."""
    cp = cupy_module()
    if not supports(dy2d, x2d, w) or x2d.ndim != 2 or dy2d.shape != x2d.shape:
        return None
    m, d = x2d.shape
    acc = _acc_dtype(x2d.dtype)
    x2d = cp.ascontiguousarray(x2d)
    dy2d = cp.ascontiguousarray(dy2d)
    mean = cp.ascontiguousarray(mean, dtype=acc)
    rstd = cp.ascontiguousarray(rstd, dtype=acc)
    dx = cp.empty((m, d), x2d.dtype)
    if m and d:
        wa = cp.ascontiguousarray(w).reshape(d) if w is not None else x2d
        _raw("ln_bwd_dx", x2d.dtype)((min(m, 65535 * 16),), (_row_block(d),),
                                     (dy2d, x2d, mean, rstd, wa, np.int64(m), np.int64(d),
                                      np.int32(w is not None), dx))
    dw = db = None
    want_w = want_w and w is not None
    if want_w or want_b:
        rows = max(16, -(-m // 512))
        chunks = max(1, -(-m // rows))
        block = 256 if d >= 256 else max(32, -(-d // 32) * 32)
        pw = cp.empty((chunks, d), acc)
        pb = cp.empty((chunks, d), acc)
        if m and d:
            _raw("ln_bwd_dwdb", x2d.dtype)(((d + block - 1) // block, chunks), (block,),
                                           (dy2d, x2d, mean, rstd, np.int64(m), np.int64(d),
                                            np.int64(rows), pw, pb))
        else:
            pw[...] = 0
            pb[...] = 0
        if want_w:
            dw = pw.sum(axis=0).astype(x2d.dtype, copy=False)
        if want_b:
            db = pb.sum(axis=0).astype(x2d.dtype, copy=False)
    return dx, dw, db


# ============================================================================ activations
def gelu_forward(x, approximate="none"):
    """GELU of x: exact (x * Phi(x), through erf) or approximate='tanh'."""
    return _ew("gelu_tanh_fwd" if approximate == "tanh" else "gelu_fwd")(x)


def gelu_backward(x, g, approximate="none"):
    """dL/dx of GELU at x for upstream gradient g."""
    return _ew("gelu_tanh_bwd" if approximate == "tanh" else "gelu_bwd")(x, g)


def silu_forward(x):
    return _ew("silu_fwd")(x)


def silu_backward(x, g):
    return _ew("silu_bwd")(x, g)


# ============================================================================ dropout
def dropout_forward(x, u, p, scale):
    """y = x * (u >= p) * scale and the bool keep mask, in one kernel; `u` is a uniform
    draw in [0, 1) of x's shape (any float dtype)."""
    return _ew("dropout_fwd")(x, u, float(p), float(scale))


def dropout_backward(g, keep, scale):
    """g * keep * scale (keep: bool, broadcastable to g). Also applies a channel mask in the
    forward (x in place of g)."""
    return _ew("dropout_bwd")(g, keep, float(scale))
