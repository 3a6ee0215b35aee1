"""cuDNN convolutions for the GPU path: forward, backward-data and backward-filter of 1-D, 2-D
and 3-D convolutions (NCL, NCHW, NCDHW) on CuPy arrays of float16, float32 or float64.

Two ways to reach cuDNN, tried in this order on first use:

1. `cupyx.cudnn` (CuPy 13 and older, when CuPy finds a cuDNN library: `cupy.cuda.cudnn`
   imports), through its convolution_forward / convolution_backward_data /
   convolution_backward_filter;
2. the cuDNN library itself through ctypes (CuPy 14 dropped its cuDNN bindings): libcudnn.so.9
   (or .8) from the `nvidia-cudnn-cu12` wheel that PyTorch's CUDA wheels install, from
   torch/lib, from the loader's path, or from $LANTERN_CUDNN_LIB. Only cuDNN's stable
   legacy convolution API is used (descriptors, cudnnGetConvolution*Algorithm_v7,
   cudnnConvolutionForward/BackwardData/BackwardFilter), on CuPy's current stream, with
   workspaces from CuPy's memory pool.

Every public function returns None, computing nothing, when cuDNN is not usable (no CuPy, no
library, $LANTERN_CUDNN=0) or the case is not one it takes (another dtype, mixed dtypes, a
padding that is not the same on both sides, a cuDNN error for this shape, which is remembered
and warned about once): the caller then runs its im2col + cuBLAS code.

Numerics: float32 convolutions run in full float32 (FMA math) unless $LANTERN_ALLOW_TF32=1
(or `set_allow_tf32(True)`) lets cuDNN use TF32 tensor cores, as PyTorch's
torch.backends.cudnn.allow_tf32 (True by default there). float16 uses tensor cores with
float32 accumulation. Algorithms come from cuDNN's heuristics, or are timed once per shape
with $LANTERN_CUDNN_BENCHMARK=1 (PyTorch's torch.backends.cudnn.benchmark); with
$LANTERN_CUDNN_DETERMINISTIC=1 only deterministic ones are taken. Each switch can also be
flipped at run time through `framework.backends.cudnn` (enabled, benchmark, deterministic,
allow_tf32), which writes `_options`; algorithm choices are cached per switch setting.

Call contract for framework/ops/conv.py (CuPy arrays in, CuPy arrays out):

    p = _cudnn.params_from_geom(geom)       # (stride, padding, dilation, groups) or None
    # ConvNd.forward(x, w, b):
    y = _cudnn.conv_forward(x, w, b, *p) if p else None        # bias added; None: fall back
    # ConvInputGrad.forward(dy, w) and ConvTranspose (then add its bias):
    dx = _cudnn.conv_backward_data(dy, w, (dy.shape[0], w.shape[1] * geom.groups)
                                   + tuple(geom.in_sp), *p)
    # ConvWeightGrad.forward(x, dy):
    dw = _cudnn.conv_backward_filter(x, dy, w_shape, *p)

Outputs are new C-contiguous (N, C, *S) arrays (not channels-last); inputs of any layout are
accepted (copied to C-contiguous when they are not).
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys
import warnings

import numpy as np

from ._backend import cupy_module

_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.float16): 2}
_CUDNN_DATA_FLOAT, _CUDNN_DATA_DOUBLE = 0, 1
_CUDNN_TENSOR_NCHW = 0
_CUDNN_CROSS_CORRELATION = 1
_DEFAULT_MATH, _TENSOR_OP_MATH, _FMA_MATH = 0, 1, 3

_state = {"checked": False, "impl": None, "why": "not checked yet"}
_failed: set = set()
# The switches, read from the environment at import and changeable at run time (through
# framework.backends.cudnn: enabled, benchmark, deterministic, allow_tf32).
_options = {"allow_tf32": os.environ.get("LANTERN_ALLOW_TF32", "0") == "1",
            "benchmark": os.environ.get("LANTERN_CUDNN_BENCHMARK", "0") == "1",
            "deterministic": os.environ.get("LANTERN_CUDNN_DETERMINISTIC", "0") == "1",
            "enabled": os.environ.get("LANTERN_CUDNN", "1") != "0",
            "workspace": int(os.environ.get("LANTERN_CUDNN_WORKSPACE_MB", "1024")) << 20}
_CUDNN_DETERMINISTIC = 1  # cudnnDeterminism_t


class CudnnError(RuntimeError):
    pass


def set_allow_tf32(flag: bool) -> None:
    """Let float32 convolutions use TF32 tensor cores (faster, ~1e-3 relative error)."""
    _options["allow_tf32"] = bool(flag)


def set_benchmark(flag: bool) -> None:
    """Time the candidate algorithms once per shape and keep the fastest."""
    _options["benchmark"] = bool(flag)


def set_deterministic(flag: bool) -> None:
    """Use only algorithms whose results do not vary from run to run."""
    _options["deterministic"] = bool(flag)


def set_enabled(flag: bool) -> None:
    """Use cuDNN for convolutions (False: the im2col + cuBLAS path everywhere)."""
    _options["enabled"] = bool(flag)


# ============================================================================ backends
class _CupyxImpl:
    name = "cupyx.cudnn"

    def __init__(self):
        import cupyx.cudnn as cd
        from cupy.cuda import cudnn as lib
        self.cd = cd
        self.version = int(lib.getVersion())

    def forward(self, x, w, y, pad, stride, dil, groups):
        self.cd.convolution_forward(x, w, None, y, pad, stride, dil, groups,
                                    auto_tune=_options["benchmark"], tensor_core="auto")

    def backward_data(self, w, dy, dx, pad, stride, dil, groups):
        self.cd.convolution_backward_data(w, dy, None, dx, pad, stride, dil, groups,
                                          deterministic=_options["deterministic"],
                                          auto_tune=_options["benchmark"], tensor_core="auto")

    def backward_filter(self, x, dy, dw, pad, stride, dil, groups):
        self.cd.convolution_backward_filter(x, dy, dw, pad, stride, dil, groups,
                                            deterministic=_options["deterministic"],
                                            auto_tune=_options["benchmark"],
                                            tensor_core="auto")


class _Perf(ctypes.Structure):
    # cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t share this layout
    _fields_ = [("algo", ctypes.c_int), ("status", ctypes.c_int), ("time", ctypes.c_float),
                ("memory", ctypes.c_size_t), ("determinism", ctypes.c_int),
                ("mathType", ctypes.c_int), ("reserved", ctypes.c_int * 3)]


def _candidate_libraries():
    env = os.environ.get("LANTERN_CUDNN_LIB")
    if env:
        return [env]
    out = []
    for base in sys.path:
        if not base or not os.path.isdir(base):
            continue
        # the nvidia-cudnn-cu12/-cu13 wheels (nvidia/cudnn/lib, or a per-CUDA folder such as
        # nvidia/cu13/lib), and torch's own lib folder
        for pattern in (os.path.join("nvidia", "cudnn", "lib"), os.path.join("nvidia", "*", "lib"),
                        os.path.join("nvidia", "*", "*", "lib"), os.path.join("torch", "lib")):
            for so in ("libcudnn.so.9", "libcudnn.so.8"):
                for p in sorted(glob.glob(os.path.join(base, pattern, so))):
                    if p not in out:
                        out.append(p)
    try:
        import ctypes.util
        found = ctypes.util.find_library("cudnn")
        if found:
            out.append(found)
    except Exception:
        pass
    out += ["libcudnn.so.9", "libcudnn.so.8"]
    return out


def _preload_siblings(path):
    """Load cuDNN's sub-libraries (libcudnn_graph, _ops, _cnn, ...) beside `path` first, so
    the dispatcher library finds them whatever the loader's search path."""
    d = os.path.dirname(path)
    if not d:
        return
    order = ("graph", "engines", "heuristic", "ops", "cnn", "adv")
    libs = sorted(glob.glob(os.path.join(d, "libcudnn_*.so*")),
                  key=lambda p: next((i for i, k in enumerate(order)
                                      if os.path.basename(p).startswith("libcudnn_" + k)),
                                     len(order)))
    for p in libs:
        try:
            ctypes.CDLL(p, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            pass


class _CtypesImpl:
    name = "libcudnn (ctypes)"

    def __init__(self, path):
        _preload_siblings(path)
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        self.path = path
        self.lib = lib
        vp, ci, cs = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
        pvp, pci = ctypes.POINTER(vp), ctypes.POINTER(ci)
        pperf = ctypes.POINTER(_Perf)

        def fn(name, *argtypes):
            f = getattr(lib, name)
            f.restype = ci
            f.argtypes = list(argtypes)
            return f

        lib.cudnnGetVersion.restype = cs
        lib.cudnnGetVersion.argtypes = []
        lib.cudnnGetErrorString.restype = ctypes.c_char_p
        lib.cudnnGetErrorString.argtypes = [ci]
        self.version = int(lib.cudnnGetVersion())
        if self.version < 8000:
            raise CudnnError(f"cuDNN {self.version} is older than 8.0")
        self.create = fn("cudnnCreate", pvp)
        self.set_stream = fn("cudnnSetStream", vp, vp)
        self.create_tensor = fn("cudnnCreateTensorDescriptor", pvp)
        self.set_tensor = fn("cudnnSetTensorNdDescriptor", vp, ci, ci, pci, pci)
        self.create_filter = fn("cudnnCreateFilterDescriptor", pvp)
        self.set_filter = fn("cudnnSetFilterNdDescriptor", vp, ci, ci, ci, pci)
        self.create_conv = fn("cudnnCreateConvolutionDescriptor", pvp)
        self.set_conv = fn("cudnnSetConvolutionNdDescriptor", vp, ci, pci, pci, pci, ci, ci)
        self.set_groups = fn("cudnnSetConvolutionGroupCount", vp, ci)
        self.set_math = fn("cudnnSetConvolutionMathType", vp, ci)
        self.out_dim = fn("cudnnGetConvolutionNdForwardOutputDim", vp, vp, vp, ci, pci)
        # heuristics: (handle, 3 descriptors in API order, conv desc in its place, count,
        # returned count, results)
        self.get_fwd = fn("cudnnGetConvolutionForwardAlgorithm_v7",
                          vp, vp, vp, vp, vp, ci, pci, pperf)
        self.get_bwd_data = fn("cudnnGetConvolutionBackwardDataAlgorithm_v7",
                               vp, vp, vp, vp, vp, ci, pci, pperf)
        self.get_bwd_filter = fn("cudnnGetConvolutionBackwardFilterAlgorithm_v7",
                                 vp, vp, vp, vp, vp, ci, pci, pperf)
        # timed search: (handle, d1, p1, d2, p2, conv, d3, p3, count, returned, results,
        # workspace, workspace size)
        self.find_fwd = fn("cudnnFindConvolutionForwardAlgorithmEx",
                           vp, vp, vp, vp, vp, vp, vp, vp, ci, pci, pperf, vp, cs)
        self.find_bwd_data = fn("cudnnFindConvolutionBackwardDataAlgorithmEx",
                                vp, vp, vp, vp, vp, vp, vp, vp, ci, pci, pperf, vp, cs)
        self.find_bwd_filter = fn("cudnnFindConvolutionBackwardFilterAlgorithmEx",
                                  vp, vp, vp, vp, vp, vp, vp, vp, ci, pci, pperf, vp, cs)
        # (handle, alpha, d1, p1, d2, p2, conv, algo, workspace, size, beta, d3, p3)
        self.run_fwd = fn("cudnnConvolutionForward",
                          vp, vp, vp, vp, vp, vp, vp, ci, vp, cs, vp, vp, vp)
        self.run_bwd_data = fn("cudnnConvolutionBackwardData",
                               vp, vp, vp, vp, vp, vp, vp, ci, vp, cs, vp, vp, vp)
        self.run_bwd_filter = fn("cudnnConvolutionBackwardFilter",
                                 vp, vp, vp, vp, vp, vp, vp, ci, vp, cs, vp, vp, vp)
        self._one_f, self._zero_f = ctypes.c_float(1.0), ctypes.c_float(0.0)
        self._one_d, self._zero_d = ctypes.c_double(1.0), ctypes.c_double(0.0)
        self._handles: dict = {}
        self._tensors: dict = {}
        self._filters: dict = {}
        self._convs: dict = {}
        self._algos: dict = {}

    # ------------------------------------------------------------------ plumbing
    def check(self, status, what):
        if status != 0:
            msg = self.lib.cudnnGetErrorString(status)
            raise CudnnError(f"{what} failed: {msg.decode() if msg else status}")

    def handle(self):
        cp = cupy_module()
        dev = cp.cuda.runtime.getDevice()
        h = self._handles.get(dev)
        if h is None:
            h = ctypes.c_void_p()
            self.check(self.create(ctypes.byref(h)), "cudnnCreate")
            self._handles[dev] = h
        self.check(self.set_stream(h, ctypes.c_void_p(cp.cuda.get_current_stream().ptr)),
                   "cudnnSetStream")
        return h, dev

    def tensor_desc(self, dtype, shape):
        key = (dtype, shape)
        d = self._tensors.get(key)
        if d is None:
            d = ctypes.c_void_p()
            self.check(self.create_tensor(ctypes.byref(d)), "cudnnCreateTensorDescriptor")
            nd = len(shape)
            strides = [1] * nd
            for i in range(nd - 2, -1, -1):
                strides[i] = strides[i + 1] * shape[i + 1]
            self.check(self.set_tensor(d, _DTYPES[dtype], nd, (ctypes.c_int * nd)(*shape),
                                       (ctypes.c_int * nd)(*strides)),
                       f"cudnnSetTensorNdDescriptor{shape}")
            self._tensors[key] = d
        return d

    def filter_desc(self, dtype, shape):
        key = (dtype, shape)
        d = self._filters.get(key)
        if d is None:
            d = ctypes.c_void_p()
            self.check(self.create_filter(ctypes.byref(d)), "cudnnCreateFilterDescriptor")
            nd = len(shape)
            self.check(self.set_filter(d, _DTYPES[dtype], _CUDNN_TENSOR_NCHW, nd,
                                       (ctypes.c_int * nd)(*shape)),
                       f"cudnnSetFilterNdDescriptor{shape}")
            self._filters[key] = d
        return d

    def conv_desc(self, dtype, pad, stride, dil, groups):
        key = (dtype, pad, stride, dil, groups)
        d = self._convs.get(key)
        if d is None:
            d = ctypes.c_void_p()
            self.check(self.create_conv(ctypes.byref(d)), "cudnnCreateConvolutionDescriptor")
            n = len(pad)
            compute = _CUDNN_DATA_DOUBLE if dtype == np.float64 else _CUDNN_DATA_FLOAT
            arr = ctypes.c_int * n
            self.check(self.set_conv(d, n, arr(*pad), arr(*stride), arr(*dil),
                                     _CUDNN_CROSS_CORRELATION, compute),
                       "cudnnSetConvolutionNdDescriptor")
            if groups != 1:
                self.check(self.set_groups(d, groups), "cudnnSetConvolutionGroupCount")
            self._convs[key] = d
        return d

    @staticmethod
    def wanted_math(dtype):
        if dtype == np.float16:
            return _TENSOR_OP_MATH
        if dtype == np.float32 and not _options["allow_tf32"]:
            return _FMA_MATH
        return _DEFAULT_MATH

    def scalars(self, dtype):
        if dtype == np.float64:
            return ctypes.addressof(self._one_d), ctypes.addressof(self._zero_d)
        return ctypes.addressof(self._one_f), ctypes.addressof(self._zero_f)

    def pick(self, kind, key, h, conv, dtype, get_args, find_args):
        """(algo, workspace bytes, math type) for this op and shape, cached per device."""
        # the switches are part of the key: changing them at run time takes effect
        ck = (kind, _options["benchmark"], _options["deterministic"]) + key
        hit = self._algos.get(ck)
        if hit is not None:
            return hit
        want = self.wanted_math(dtype)
        self.check(self.set_math(conv, want), "cudnnSetConvolutionMathType")
        perfs = (_Perf * 8)()
        n = ctypes.c_int(0)
        limit = _options["workspace"]
        get, find = {"fwd": (self.get_fwd, self.find_fwd),
                     "bwd_data": (self.get_bwd_data, self.find_bwd_data),
                     "bwd_filter": (self.get_bwd_filter, self.find_bwd_filter)}[kind]
        if _options["benchmark"]:
            cp = cupy_module()
            ws = cp.empty(limit, dtype=cp.uint8)
            self.check(find(h, *find_args, 8, ctypes.byref(n), perfs, ws.data.ptr, limit),
                       f"cudnnFind({kind})")
            del ws
        else:
            self.check(get(h, *get_args, 8, ctypes.byref(n), perfs), f"cudnnGet({kind})_v7")
        choice = None
        for i in range(n.value):
            p = perfs[i]
            if p.status != 0 or p.memory > limit:
                continue
            if _options["deterministic"] and p.determinism != _CUDNN_DETERMINISTIC:
                continue
            math = p.mathType
            if want == _FMA_MATH:
                math = _FMA_MATH  # keep float32 exact: no TF32 whatever the heuristic says
            choice = (int(p.algo), int(p.memory), int(math))
            break
        if choice is None:
            raise CudnnError(f"no cuDNN {kind} algorithm for {key} within {limit} bytes")
        self._algos[ck] = choice
        return choice

    def _run(self, kind, runner, h, conv, dtype, key, a_desc, a, b_desc, b, c_desc, c,
             get_args, find_args):
        algo, ws_size, math = self.pick(kind, key, h, conv, dtype, get_args, find_args)
        self.check(self.set_math(conv, math), "cudnnSetConvolutionMathType")
        cp = cupy_module()
        ws = cp.empty(ws_size, dtype=cp.uint8) if ws_size else None
        one, zero = self.scalars(dtype)
        self.check(runner(h, one, a_desc, a, b_desc, b, conv, algo,
                          ws.data.ptr if ws is not None else None, ws_size, zero, c_desc, c),
                   f"cudnnConvolution({kind})")

    # ------------------------------------------------------------------ the three ops
    def forward(self, x, w, y, pad, stride, dil, groups):
        dt = x.dtype
        h, dev = self.handle()
        xd, wd = self.tensor_desc(dt, x.shape), self.filter_desc(dt, w.shape)
        yd, cd = self.tensor_desc(dt, y.shape), self.conv_desc(dt, pad, stride, dil, groups)
        key = (dev, dt, x.shape, w.shape, pad, stride, dil, groups, _options["allow_tf32"])
        self._run("fwd", self.run_fwd, h, cd, dt, key, xd, x.data.ptr, wd, w.data.ptr, yd,
                  y.data.ptr, (xd, wd, cd, yd),
                  (xd, x.data.ptr, wd, w.data.ptr, cd, yd, y.data.ptr))

    def backward_data(self, w, dy, dx, pad, stride, dil, groups):
        dt = dy.dtype
        h, dev = self.handle()
        wd, dyd = self.filter_desc(dt, w.shape), self.tensor_desc(dt, dy.shape)
        dxd, cd = self.tensor_desc(dt, dx.shape), self.conv_desc(dt, pad, stride, dil, groups)
        key = (dev, dt, dx.shape, w.shape, pad, stride, dil, groups, _options["allow_tf32"])
        self._run("bwd_data", self.run_bwd_data, h, cd, dt, key, wd, w.data.ptr, dyd,
                  dy.data.ptr, dxd, dx.data.ptr, (wd, dyd, cd, dxd),
                  (wd, w.data.ptr, dyd, dy.data.ptr, cd, dxd, dx.data.ptr))

    def backward_filter(self, x, dy, dw, pad, stride, dil, groups):
        dt = x.dtype
        h, dev = self.handle()
        xd, dyd = self.tensor_desc(dt, x.shape), self.tensor_desc(dt, dy.shape)
        dwd, cd = self.filter_desc(dt, dw.shape), self.conv_desc(dt, pad, stride, dil, groups)
        key = (dev, dt, x.shape, dw.shape, pad, stride, dil, groups, _options["allow_tf32"])
        self._run("bwd_filter", self.run_bwd_filter, h, cd, dt, key, xd, x.data.ptr, dyd,
                  dy.data.ptr, dwd, dw.data.ptr, (xd, dyd, cd, dwd),
                  (xd, x.data.ptr, dyd, dy.data.ptr, cd, dwd, dw.data.ptr))

    def output_dims(self, dtype, x_shape, w_shape, pad, stride, dil, groups):
        """cuDNN's output shape for a forward convolution (no GPU needed; for tests)."""
        xd, wd = self.tensor_desc(dtype, x_shape), self.filter_desc(dtype, w_shape)
        cd = self.conv_desc(dtype, pad, stride, dil, groups)
        nd = len(x_shape)
        out = (ctypes.c_int * nd)()
        self.check(self.out_dim(cd, xd, wd, nd, out), "cudnnGetConvolutionNdForwardOutputDim")
        return tuple(out)


def load_ctypes_library():
    """The ctypes binding of the first loadable cuDNN library (no GPU needed), or raise."""
    errors = []
    for path in _candidate_libraries():
        try:
            return _CtypesImpl(path)
        except (OSError, AttributeError, CudnnError) as exc:
            errors.append(f"{path}: {exc}")
    raise CudnnError("no usable cuDNN library: " + "; ".join(errors[:4]))


def _backend():
    if _state["checked"]:
        return _state["impl"]
    _state["checked"] = True
    if os.environ.get("LANTERN_CUDNN", "1") == "0":
        _state["why"] = "disabled by LANTERN_CUDNN=0"
        return None
    cp = cupy_module()
    if cp is None:
        _state["why"] = "CuPy is not installed"
        return None
    want = os.environ.get("LANTERN_CUDNN_BACKEND", "")
    errors = []
    if want in ("", "cupyx"):
        try:
            _state["impl"] = _CupyxImpl()
        except Exception as exc:  # ImportError (CuPy >= 14, or no cuDNN library), ...
            errors.append(f"cupyx.cudnn: {type(exc).__name__}: {exc}")
    if _state["impl"] is None and want in ("", "ctypes"):
        try:
            _state["impl"] = load_ctypes_library()
        except Exception as exc:
            errors.append(f"ctypes: {exc}")
    if _state["impl"] is None:
        _state["why"] = "; ".join(errors) or f"unknown LANTERN_CUDNN_BACKEND={want!r}"
    return _state["impl"]


def available() -> bool:
    return _backend() is not None


def version_string(v: int) -> str:
    """cuDNN's version number as text: 8907 -> '8.9.7', 92800 -> '9.28.0'."""
    if v >= 90000:
        return f"{v // 10000}.{v % 10000 // 100}.{v % 100}"
    return f"{v // 1000}.{v % 1000 // 100}.{v % 100}"


def describe() -> str:
    impl = _backend()
    if impl is None:
        return "cuDNN unavailable: " + _state["why"]
    where = f" from {impl.path}" if hasattr(impl, "path") else ""
    return f"{impl.name}, cuDNN {version_string(impl.version)}{where}"


# ============================================================================ public ops
def params_from_geom(geom):
    """(stride, padding, dilation, groups) for cuDNN from conv.py's ConvGeom, or None when
    the padding is not symmetric (cuDNN pads both sides alike)."""
    for i, o, p, s, d, k in zip(geom.in_sp, geom.out_sp, geom.pad_lo, geom.stride,
                                geom.dilation, geom.ksize):
        if p < 0 or (i + 2 * p - d * (k - 1) - 1) // s + 1 != o:
            return None
    return (tuple(geom.stride), tuple(geom.pad_lo), tuple(geom.dilation), int(geom.groups))


def _tup(v, n):
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    v = tuple(int(a) for a in v)
    return v * n if len(v) == 1 else v


def _prepare(arrays, nd, stride, padding, dilation):
    """Checks and normalises arguments; returns (arrays, pad, stride, dil, squeeze) or None.
    1-D convolutions become 2-D ones with a height of 1 (squeeze tells to undo it)."""
    if not _options["enabled"]:
        return None
    impl = _backend()
    if impl is None:
        return None
    dt = arrays[0].dtype
    if dt not in _DTYPES or any(a.dtype != dt for a in arrays):
        return None
    if isinstance(arrays[0], (np.ndarray, np.generic)):
        return None
    nsp = nd - 2
    if nsp not in (1, 2, 3):
        return None
    stride, pad, dil = _tup(stride, nsp), _tup(padding, nsp), _tup(dilation, nsp)
    if len(stride) != nsp or len(pad) != nsp or len(dil) != nsp or min(pad) < 0:
        return None
    cp = cupy_module()
    arrays = [cp.ascontiguousarray(a) for a in arrays]
    squeeze = nsp == 1
    if squeeze:
        arrays = [a.reshape(a.shape[:2] + (1,) + a.shape[2:]) for a in arrays]
        stride, pad, dil = (1,) + stride, (0,) + pad, (1,) + dil
    return impl, arrays, pad, stride, dil, squeeze


def _call(what, key, fn):
    if key in _failed:
        return False
    try:
        fn()
        return True
    except Exception as exc:  # a cuDNN status, an unsupported configuration, ...
        _failed.add(key)
        warnings.warn(f"cuDNN {what} failed for {key} ({type(exc).__name__}: {exc}); "
                      "using the im2col path for this shape", RuntimeWarning, stacklevel=3)
        return False


def conv_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y = conv(x, w) (+ b over channels): x (N, C, *S), w (O, C/groups, *K), b (O,) or None,
    padding symmetric per spatial dim. Returns a new C-contiguous (N, O, *out) array, or
    None when cuDNN cannot do it."""
    prep = _prepare([x, w], x.ndim, stride, padding, dilation)
    if prep is None or w.ndim != x.ndim or (b is not None and b.dtype != x.dtype):
        return None
    impl, (xc, wc), pad, st, dil, squeeze = prep
    out_sp = tuple((i + 2 * p - d * (k - 1) - 1) // s + 1
                   for i, p, d, k, s in zip(xc.shape[2:], pad, dil, wc.shape[2:], st))
    if min(out_sp) < 1 or xc.shape[1] != wc.shape[1] * groups or wc.shape[0] % groups:
        return None
    cp = cupy_module()
    y = cp.empty((xc.shape[0], wc.shape[0]) + out_sp, x.dtype)
    key = ("fwd", x.dtype.str, xc.shape, wc.shape, pad, st, dil, groups)
    if y.size and not _call("forward", key,
                            lambda: impl.forward(xc, wc, y, pad, st, dil, int(groups))):
        return None
    if not y.size:
        y[...] = 0
    if squeeze:
        y = y.reshape(y.shape[:2] + y.shape[3:])
    if b is not None:
        y += b.reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


def conv_backward_data(dy, w, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """dx of y = conv(x, w) for x of shape `x_shape` (also the transposed convolution of
    dy). Returns a new C-contiguous array of x_shape, or None."""
    x_shape = tuple(int(s) for s in x_shape)
    prep = _prepare([dy, w], dy.ndim, stride, padding, dilation)
    if prep is None or len(x_shape) != dy.ndim or w.ndim != dy.ndim:
        return None
    impl, (dyc, wc), pad, st, dil, squeeze = prep
    xs = x_shape[:2] + (1,) + x_shape[2:] if squeeze else x_shape
    cp = cupy_module()
    dx = cp.empty(xs, dy.dtype)
    key = ("bwd_data", dy.dtype.str, xs, wc.shape, pad, st, dil, groups)
    if dx.size and dyc.size:
        if not _call("backward data", key,
                     lambda: impl.backward_data(wc, dyc, dx, pad, st, dil, int(groups))):
            return None
    else:
        dx[...] = 0
    return dx.reshape(x_shape)


def conv_backward_filter(x, dy, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """dw of y = conv(x, w) for w of shape `w_shape`. Returns a new array of w_shape, or
    None."""
    w_shape = tuple(int(s) for s in w_shape)
    prep = _prepare([x, dy], x.ndim, stride, padding, dilation)
    if prep is None or len(w_shape) != x.ndim:
        return None
    impl, (xc, dyc), pad, st, dil, squeeze = prep
    ws = w_shape[:2] + (1,) + w_shape[2:] if squeeze else w_shape
    cp = cupy_module()
    dw = cp.empty(ws, x.dtype)
    key = ("bwd_filter", x.dtype.str, xc.shape, ws, pad, st, dil, groups)
    if dw.size and dyc.size and xc.size:
        if not _call("backward filter", key,
                     lambda: impl.backward_filter(xc, dyc, dw, pad, st, dil, int(groups))):
            return None
    else:
        dw[...] = 0
    return dw.reshape(w_shape)


def selftest() -> str:
    """Run one small 2-D and one 3-D convolution (forward and both gradients) through cuDNN
    and compare them with the NumPy convolution of framework/ops/conv.py. Returns a report
    line; raises AssertionError on a mismatch. Meant to run in a child process first on a
    new machine (scripts/gpu_check.sh), since a broken driver/library pairing can crash."""
    if not available():
        return describe()
    cp = cupy_module()
    from .ops.conv import ConvGeom, conv_forward as np_forward, conv_input_grad, \
        conv_weight_grad
    rng = np.random.default_rng(0)
    lines = []
    for nsp, groups in ((2, 1), (2, 2), (3, 1), (1, 1)):
        n, c, o, k = 2, 4, 6, 3
        sp = (9, 8, 7)[:nsp]
        x = rng.standard_normal((n, c) + sp).astype(np.float32)
        w = rng.standard_normal((o, c // groups) + (k,) * nsp).astype(np.float32)
        stride, pad, dil = (2,) + (1,) * (nsp - 1), (1,) * nsp, (1,) * nsp
        out_sp = tuple((i + 2 * p - d * (k - 1) - 1) // s + 1
                       for i, p, d, s in zip(sp, pad, dil, stride))
        g = ConvGeom(stride, dil, pad, groups, (k,) * nsp, sp, out_sp)
        y_ref, _ = np_forward(x, w, None, g)
        dy = rng.standard_normal(y_ref.shape).astype(np.float32)
        dx_ref = conv_input_grad(dy, w, g)
        dw_ref = conv_weight_grad(x, dy, g, w.shape)
        y = conv_forward(cp.asarray(x), cp.asarray(w), None, stride, pad, dil, groups)
        dx = conv_backward_data(cp.asarray(dy), cp.asarray(w), x.shape, stride, pad, dil, groups)
        dw = conv_backward_filter(cp.asarray(x), cp.asarray(dy), w.shape, stride, pad, dil,
                                  groups)
        assert y is not None and dx is not None and dw is not None, \
            f"cuDNN declined a {nsp}-D convolution (groups {groups})"
        for name, got, ref in (("y", y, y_ref), ("dx", dx, dx_ref), ("dw", dw, dw_ref)):
            np.testing.assert_allclose(cp.asnumpy(got), ref, rtol=1e-4, atol=1e-4,
                                       err_msg=f"{nsp}-D groups {groups}: {name}")
        lines.append(f"{nsp}-D/g{groups} ok")
    return describe() + ": " + ", ".join(lines)
