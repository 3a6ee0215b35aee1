"""The modules PyTorch scripts import at the top: framework.accelerator, framework.backends,
framework.cuda.amp, framework.nn.parallel, framework.multiprocessing, framework.compile and
framework.fx; each checked for behaviour (and against torch where it is observable)."""
import gc
import multiprocessing as std_mp
import os
import sys
import types
import warnings

import numpy as np
import pytest

import framework
from framework import _backend, _cudnn

# torch is imported inside the tests only: processes started with 'spawn' import this module
# to find their target functions, and should not pay for torch.


def _torch():
    return pytest.importorskip("torch", reason="torch (the parity extra) is not installed")


# ---------------------------------------------------------------------- accelerator
def test_accelerator_without_gpu_matches_torch_cpu_build():
    torch = _torch()
    acc = framework.accelerator
    assert acc.is_available() is framework.cuda.is_available()
    if framework.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert acc.device_count() == torch.accelerator.device_count() == 0
    assert acc.current_accelerator(check_available=True) is None
    for name in ["current_device_index", "synchronize", "empty_cache", "memory_allocated",
                 "current_stream", "get_memory_info"]:
        with pytest.raises(RuntimeError) as theirs:
            getattr(torch.accelerator, name)()
        with pytest.raises(RuntimeError) as ours:
            getattr(acc, name)()
        assert str(ours.value) == str(theirs.value), name
    with acc.device_index(None):  # no device switch: a no-op, as in torch
        pass


def test_accelerator_names_cuda_when_cupy_is_installed(monkeypatch):
    """current_accelerator() names the accelerator the installation has (CuPy imports) even
    without a usable GPU; check_available=True also asks for one."""
    monkeypatch.setattr(framework.accelerator, "cupy_module", lambda: types.ModuleType("cupy"))
    monkeypatch.setattr(framework.cuda, "is_available", lambda: False)
    assert framework.accelerator.current_accelerator() == framework.device("cuda")
    assert framework.accelerator.current_accelerator().type == "cuda"
    assert framework.accelerator.current_accelerator(check_available=True) is None
    monkeypatch.setattr(framework.cuda, "is_available", lambda: True)
    assert framework.accelerator.current_accelerator(True) == framework.device("cuda")
    monkeypatch.setattr(framework.accelerator, "cupy_module", lambda: None)
    assert framework.accelerator.current_accelerator() is None


def test_accelerator_device_pick_idiom():
    acc = framework.accelerator
    device = acc.current_accelerator().type if acc.is_available() else "cpu"
    x = framework.ones(2, device=device)
    assert x.device.type == device


# ---------------------------------------------------------------------- backends
@pytest.fixture
def cudnn_options():
    saved = dict(_cudnn._options)
    yield _cudnn._options
    _cudnn._options.clear()
    _cudnn._options.update(saved)


def test_backends_cudnn_flags_are_the_cudnn_switches(cudnn_options):
    import framework.backends.cudnn as cudnn
    torch = _torch()
    assert cudnn is framework.backends.cudnn
    # defaults as torch's, except allow_tf32: Lantern keeps float32 exact unless asked
    assert cudnn.benchmark is torch.backends.cudnn.benchmark is False
    assert cudnn.deterministic is torch.backends.cudnn.deterministic is False
    assert cudnn.enabled is torch.backends.cudnn.enabled is True
    assert cudnn.allow_tf32 is (os.environ.get("LANTERN_ALLOW_TF32") == "1")
    for name in ["benchmark", "deterministic", "allow_tf32", "enabled"]:
        setattr(cudnn, name, True)
        assert getattr(cudnn, name) is True and cudnn_options[name] is True
        setattr(cudnn, name, False)
        assert getattr(cudnn, name) is False and cudnn_options[name] is False
    framework.backends.cudnn.benchmark = True  # the usual spelling
    assert _cudnn._options["benchmark"] is True
    before = dict(cudnn_options)
    with cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
        assert cudnn_options["deterministic"] is True and cudnn_options["benchmark"] is False
    assert cudnn_options == before
    prev = cudnn.set_flags(_deterministic=True)
    assert prev[3] is False and cudnn.deterministic is True
    assert cudnn.is_available() == _cudnn.available()
    assert (cudnn.version() is None) == (not cudnn.is_available())
    assert cudnn.is_acceptable(framework.zeros(1)) is False  # a CPU tensor


def test_cudnn_disabled_skips_the_library(cudnn_options, monkeypatch):
    def fail():
        raise AssertionError("cuDNN consulted while disabled")
    monkeypatch.setattr(_cudnn, "_backend", fail)
    framework.backends.cudnn.enabled = False
    assert _cudnn._prepare([np.zeros((1, 1, 3, 3), np.float32)] * 2, 4, 1, 0, 1) is None


class _FakeCudnn(_cudnn._CtypesImpl):
    """The ctypes binding's algorithm choice over a fake library: algorithm 0 is fast and
    non-deterministic, algorithm 1 deterministic; cudnnFind (benchmark) ranks 1 first."""

    def __init__(self):
        self._algos = {}
        self.calls = []
        self.set_math = lambda conv, math: 0
        self.check = lambda status, what: None
        for kind in ["fwd", "bwd_data", "bwd_filter"]:
            setattr(self, f"get_{kind}", lambda *a: self._fill("get", a))
            setattr(self, f"find_{kind}", lambda *a: self._fill("find", a))

    def _fill(self, how, args):
        # get(h, ..., 8, byref(n), perfs); find(h, ..., 8, byref(n), perfs, workspace, size)
        self.calls.append(how)
        perfs, n = (args[-1], args[-2]) if how == "get" else (args[-3], args[-4])
        order = [(0, 0), (1, 1)] if how == "get" else [(1, 1), (0, 0)]
        for i, (algo, det) in enumerate(order):
            perfs[i].algo, perfs[i].status, perfs[i].memory = algo, 0, 0
            perfs[i].determinism, perfs[i].mathType = det, 0
        n._obj.value = 2
        return 0


def test_cudnn_benchmark_and_deterministic_take_effect_at_run_time(cudnn_options, monkeypatch):
    """Flipping the flags between two convolutions of one shape changes the algorithm: the
    choice cache is keyed by the flags (before, the first choice stuck for the process)."""
    workspace = types.SimpleNamespace(data=types.SimpleNamespace(ptr=0))
    monkeypatch.setattr(_cudnn, "cupy_module", lambda: types.SimpleNamespace(
        empty=lambda n, dtype: workspace, uint8=np.uint8))
    fake = _FakeCudnn()
    key = ("shape",)
    pick = lambda: fake.pick("fwd", key, None, None, np.float32, (), ())[0]  # noqa: E731
    framework.backends.cudnn.benchmark = False
    framework.backends.cudnn.deterministic = False
    assert pick() == 0 and fake.calls == ["get"]
    framework.backends.cudnn.deterministic = True
    assert pick() == 1  # the heuristic's first deterministic algorithm
    framework.backends.cudnn.deterministic = False
    framework.backends.cudnn.benchmark = True
    assert pick() == 1 and fake.calls[-1] == "find"  # timed: cudnnFind ranks 1 first
    n = len(fake.calls)
    assert pick() == 1 and len(fake.calls) == n  # cached for this setting
    framework.backends.cudnn.benchmark = False
    assert pick() == 0 and len(fake.calls) == n  # the heuristic choice, still cached


@pytest.fixture
def fake_cupy(monkeypatch):
    """A stand-in CuPy whose matmul compute-type setter records its calls."""
    calls = []
    rl = types.ModuleType("cupy._core._routines_linalg")
    rl.COMPUTE_TYPE_DEFAULT, rl.COMPUTE_TYPE_TF32 = 1, 7
    rl.set_compute_type = lambda dtype, ct: calls.append((np.dtype(dtype).name, ct))
    core = types.ModuleType("cupy._core")
    core._routines_linalg = rl
    cp = types.ModuleType("cupy")
    cp._core = core
    cp.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setitem(sys.modules, "cupy._core", core)
    monkeypatch.setitem(sys.modules, "cupy._core._routines_linalg", rl)
    monkeypatch.setattr(_backend, "_cupy", None)
    monkeypatch.setattr(_backend, "_cupy_checked", False)
    monkeypatch.setattr(_backend, "_MULTI_GPU", False)
    monkeypatch.setattr(_backend, "_on_cupy_import", [])
    matmul = framework.backends.cuda.matmul
    monkeypatch.setattr(matmul, "_tf32", matmul._tf32)
    return cp, calls


def test_matmul_allow_tf32_sets_cupys_compute_type(fake_cupy):
    cp, calls = fake_cupy
    matmul = framework.backends.cuda.matmul
    matmul.allow_tf32 = True  # before CuPy is loaded: applied when it is
    assert calls == [] and matmul.allow_tf32 is True
    assert _backend.cupy_module() is cp
    assert calls == [("float32", 7), ("complex64", 7)]
    matmul.allow_tf32 = False  # CuPy loaded: applied at once
    assert calls[-2:] == [("float32", 1), ("complex64", 1)]
    framework.set_float32_matmul_precision("high")
    assert matmul.allow_tf32 is True and calls[-1] == ("complex64", 7)
    assert framework.get_float32_matmul_precision() == "high"
    with pytest.warns(UserWarning, match="has no effect"):
        framework.set_float32_matmul_precision("low")
    assert matmul.allow_tf32 is True
    with pytest.raises(AttributeError):
        matmul.allow_tf33 = True


def test_float32_matmul_precision_matches_torch(fake_cupy):
    torch = _torch()
    for precision in ["high", "medium", "highest"]:
        framework.set_float32_matmul_precision(precision)
        torch.set_float32_matmul_precision(precision)
        assert framework.backends.cuda.matmul.allow_tf32 == \
            torch.backends.cuda.matmul.allow_tf32
        assert framework.get_float32_matmul_precision() == \
            torch.get_float32_matmul_precision().replace("medium", "high")


def test_other_backends():
    torch = _torch()
    b = framework.backends
    assert b.mps.is_available() is torch.backends.mps.is_available() is False
    assert b.mps.is_built() is False
    assert b.cuda.is_built() is (_backend.cupy_module() is not None)
    assert b.mkldnn.is_available() is False and b.openmp.is_available() is False
    with b.mkldnn.flags(enabled=False):
        assert b.mkldnn.enabled is False
    assert b.mkldnn.enabled is True
    assert b.cuda.flash_sdp_enabled() is True
    with pytest.warns(FutureWarning, match="sdp_kernel"):
        with b.cuda.sdp_kernel(enable_flash=False):
            assert b.cuda.flash_sdp_enabled() is False
    assert b.cuda.flash_sdp_enabled() is True


# ---------------------------------------------------------------------- cuda.amp
def test_cuda_amp_aliases_warn_as_torch():
    torch = _torch()
    import framework.cuda.amp as famp
    from framework.cuda.amp import GradScaler, autocast  # noqa: F401
    for make, tmake in [(lambda: famp.autocast(), lambda: torch.cuda.amp.autocast()),
                        (lambda: famp.GradScaler(), lambda: torch.cuda.amp.GradScaler())]:
        with warnings.catch_warnings(record=True) as ours:
            warnings.simplefilter("always")
            obj = make()
        with warnings.catch_warnings(record=True) as theirs:
            warnings.simplefilter("always")
            tmake()
        first, tfirst = ours[0], theirs[0]
        assert first.category is tfirst.category is FutureWarning
        assert "is deprecated. Please use" in str(first.message)
        assert str(first.message).split("`")[1].replace("framework", "torch") == \
            str(tfirst.message).split("`")[1]
        assert first.filename == __file__  # points at the caller, as torch's
        assert isinstance(obj, (framework.amp.autocast, framework.amp.GradScaler))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ac = famp.autocast(dtype=framework.bfloat16)
        assert ac.device_type == "cuda" and ac.fast_dtype is framework.bfloat16
        assert famp.autocast(enabled=False).enabled is False
        s = famp.GradScaler(init_scale=8.0, growth_interval=5)
        assert s.get_growth_interval() == 5 and s._scale == 8.0 and s.device == "cuda"


def test_cuda_amp_autocast_region_runs_ops(device):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with framework.cuda.amp.autocast():
            assert framework.is_autocast_enabled("cuda")
            y = framework.ones(2, 3, device=device) @ framework.ones(3, 2, device=device)
    assert not framework.is_autocast_enabled("cuda")
    expected = framework.float16 if device == "cuda" else framework.float32
    assert y.dtype is expected


# ---------------------------------------------------------------------- nn.parallel
def test_data_parallel_is_the_module_with_torch_keys():
    torch = _torch()
    model = framework.nn.Sequential(framework.nn.Linear(4, 3), framework.nn.BatchNorm1d(3))
    dp = framework.nn.DataParallel(model)
    assert dp.module is model and isinstance(dp, framework.nn.Module)
    tdp = torch.nn.DataParallel(torch.nn.Sequential(torch.nn.Linear(4, 3),
                                                    torch.nn.BatchNorm1d(3)))
    assert list(dp.state_dict()) == list(tdp.state_dict())
    assert all(k.startswith("module.") for k in dp.state_dict())
    # torch's DataParallel checkpoint loads into ours, and the forward is the module's
    dp.load_state_dict({k: framework.tensor(v.detach().numpy())
                        for k, v in tdp.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    dp.eval()
    tdp.eval()
    np.testing.assert_allclose(dp(framework.tensor(x)).detach().numpy(),
                               tdp(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(dp(framework.tensor(x)).detach().numpy(),
                                  model(framework.tensor(x)).detach().numpy())
    if not framework.cuda.is_available():
        assert dp.device_ids == [] == tdp.device_ids
    assert framework.nn.parallel.DataParallel is framework.nn.DataParallel
    out = framework.nn.parallel.data_parallel(model, framework.tensor(x))
    assert tuple(out.shape) == (5, 3)


def test_data_parallel_trains():
    model = framework.nn.Linear(3, 1)
    dp = framework.nn.DataParallel(model)
    opt = framework.optim.SGD(dp.parameters(), lr=0.1)
    x = framework.randn(16, 3)
    y = x.sum(1, keepdim=True)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = ((dp(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


def test_distributed_data_parallel_imports_and_refuses():
    from framework.nn.parallel import DistributedDataParallel
    assert issubclass(DistributedDataParallel, framework.nn.Module)
    with pytest.raises(RuntimeError, match="no distributed training"):
        DistributedDataParallel(framework.nn.Linear(2, 2))


# ---------------------------------------------------------------------- multiprocessing
def test_multiprocessing_reexports_python():
    import framework.multiprocessing as mp
    for name in ["Process", "Queue", "Pool", "get_context", "set_start_method", "SimpleQueue",
                 "cpu_count", "Manager"]:
        assert getattr(mp, name) is getattr(std_mp, name), name
    assert mp.get_sharing_strategy() in mp.get_all_sharing_strategies()
    mp.set_sharing_strategy("file_descriptor")
    mp.set_sharing_strategy("file_system")
    with pytest.raises(ValueError):
        mp.set_sharing_strategy("carrier_pigeon")


def _shm_files():
    return set(n for n in os.listdir("/dev/shm") if n.startswith(f"lantern_{os.getpid()}_")) \
        if os.path.isdir("/dev/shm") else set()


def test_share_memory_in_place_matches_torch():
    torch = _torch()
    t, tt = framework.arange(6.0).reshape(2, 3), torch.arange(6.0).reshape(2, 3)
    assert t.is_shared() is tt.is_shared() is False
    assert t.share_memory_() is t and tt.share_memory_() is tt
    assert t.is_shared() is tt.is_shared() is True
    assert t.tolist() == tt.tolist() and t.dtype is framework.float32
    assert t[1].is_shared()  # views of shared memory are shared
    t.add_(1)
    assert t.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    s = framework.scalar_tensor(2.5).share_memory_()
    assert s.is_shared() and s.item() == 2.5
    base = framework.zeros(4)
    view = base[1:].share_memory_()  # a view shares its base too, and still aliases it
    assert view.is_shared() and base.is_shared()
    view[0] = 5.0
    assert base.tolist() == [0.0, 5.0, 0.0, 0.0]
    m = framework.nn.Sequential(framework.nn.Linear(3, 2), framework.nn.BatchNorm1d(2))
    p0 = list(m.parameters())
    assert m.share_memory() is m
    assert all(p.is_shared() for p in m.parameters()) and all(b.is_shared() for b in m.buffers())
    assert all(a is b for a, b in zip(p0, m.parameters()))  # same Parameter objects


def test_shared_memory_is_released_with_the_tensor():
    before = _shm_files()
    t = framework.ones(1000).share_memory_()
    new = _shm_files() - before
    if os.path.isdir("/dev/shm"):
        assert len(new) == 1
    v = t[10:20]
    del t
    gc.collect()
    assert v.is_shared() and v.sum().item() == 10.0  # a view keeps the memory alive
    del v
    gc.collect()
    assert not (_shm_files() & new)


def _hogwild_rows(rank, model, x, y, steps):
    """Train row `rank` of a shared Linear weight (the loss reaches only that row)."""
    opt = framework.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(x)[:, rank] - y[:, rank]) ** 2).mean()
        loss.backward()
        opt.step()


def _hogwild_rows_reference(lib, w0, x, y, steps):
    model = lib.nn.Linear(4, 2, bias=False)
    with lib.no_grad():
        model.weight.copy_(lib.tensor(w0))
    for rank in range(2):
        opt = lib.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(steps):
            opt.zero_grad()
            loss = ((model(lib.tensor(x))[:, rank] - lib.tensor(y)[:, rank]) ** 2).mean()
            loss.backward()
            opt.step()
    return model.weight.detach().numpy()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_hogwild_two_processes_update_one_shared_model(method):
    """Two processes train one shared model, each its own optimizer (Hogwild): the parent
    sees both processes' updates, equal to torch running the same steps one after the
    other (each process owns one row of the weight, so the result does not depend on the
    interleaving)."""
    if method not in std_mp.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    torch = _torch()
    import framework.multiprocessing as mp
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)
    model = framework.nn.Linear(4, 2, bias=False)
    w0 = model.weight.detach().numpy().copy()
    model.share_memory()
    ctx = mp.get_context(method)
    procs = [ctx.Process(target=_hogwild_rows,
                         args=(r, model, framework.tensor(x), framework.tensor(y), 20))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    expected = _hogwild_rows_reference(torch, w0, x, y, 20)
    assert not np.allclose(model.weight.detach().numpy(), w0)
    np.testing.assert_allclose(model.weight.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_hogwild_rows_reference(framework, w0, x, y, 20), expected,
                               rtol=1e-5, atol=1e-6)


def _write_rank(rank, t, q):
    t[rank] = rank + 1.0
    shared, plain = q.get()
    shared[rank] += 10.0
    plain[rank] += 10.0  # a copy: the parent does not see this


def test_spawn_passes_shared_tensors_as_handles():
    """With 'spawn' nothing is inherited: shared tensors reach the children as handles to
    the same memory (as Process arguments and through a Queue); other tensors are copied."""
    import framework.multiprocessing as mp
    ctx = mp.get_context("spawn")
    t = framework.zeros(2).share_memory_()
    shared, plain = framework.zeros(2).share_memory_(), framework.zeros(2)
    q = ctx.Queue()
    for _ in range(2):
        q.put((shared, plain))
    mp.start_processes(_write_rank, args=(t, q), nprocs=2, start_method="spawn")
    assert t.tolist() == [1.0, 2.0]
    assert shared.tolist() == [10.0, 10.0] and plain.tolist() == [0.0, 0.0]


def _fail(rank):
    if rank == 1:
        raise ValueError("bad rank 1")


def test_spawn_reports_a_failing_process():
    import framework.multiprocessing as mp
    with pytest.raises(mp.ProcessRaisedException, match="ValueError: bad rank 1") as info:
        mp.spawn(_fail, nprocs=2, start_method="fork" if "fork" in
                 std_mp.get_all_start_methods() else "spawn")
    assert info.value.error_index == 1


def test_forking_pickler_refuses_non_leaf_that_requires_grad():
    import framework.multiprocessing  # noqa: F401  (registers the reductions)
    from multiprocessing.reduction import ForkingPickler
    import pickle
    x = framework.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf tensor which requires_grad"):
        ForkingPickler.dumps(x * 2)
    back = pickle.loads(ForkingPickler.dumps(x))  # a leaf travels by value
    assert back.requires_grad and back.tolist() == [1.0, 1.0]
    p = framework.nn.Parameter(framework.ones(3)).share_memory_()
    q = pickle.loads(ForkingPickler.dumps(p))  # in this process: the same memory
    assert isinstance(q, framework.nn.Parameter) and q.is_shared()
    q.data.mul_(3)
    assert p.tolist() == [3.0, 3.0, 3.0]
    # ordinary pickling copies, even a shared tensor
    c = pickle.loads(pickle.dumps(p))
    assert not c.is_shared() and c.tolist() == [3.0, 3.0, 3.0]


# ---------------------------------------------------------------------- compile, fx
def test_compile_returns_its_argument():
    model = framework.nn.Linear(2, 2)
    assert framework.compile(model) is model
    assert framework.compile(model, mode="max-autotune", fullgraph=True, dynamic=False) is model

    def f(x):
        return x * 2
    assert framework.compile(f, backend="inductor") is f

    @framework.compile
    def g(x):
        return x + 1

    @framework.compile(mode="reduce-overhead")
    def h(x):
        return x - 1
    assert g(framework.ones(1)).item() == 2.0 and h(framework.ones(1)).item() == 0.0
    assert g.__name__ == "g" and h.__name__ == "h"
    assert list(framework.compile(model).state_dict()) == ["weight", "bias"]
    with pytest.raises(RuntimeError, match="Unrecognized mode"):
        framework.compile(model, mode="fastest")
    with pytest.raises(RuntimeError, match="Either mode or options"):
        framework.compile(model, mode="default", options={})
    with pytest.raises(TypeError):
        framework.compile(model, 1)


def test_fx_imports_and_fails_at_use():
    import framework.fx as fx
    from framework.fx import GraphModule, Tracer, symbolic_trace  # importing is fine
    with pytest.raises(NotImplementedError, match=r"framework.fx.symbolic_trace.*torch.fx"):
        symbolic_trace(framework.nn.Linear(2, 2))
    with pytest.raises(NotImplementedError, match="GraphModule"):
        GraphModule(framework.nn.Linear(2, 2), None)
    with pytest.raises(NotImplementedError, match="Tracer.trace"):
        Tracer.trace

    class MyTracer(Tracer):  # subclassing at import time works; using it does not
        pass
    with pytest.raises(NotImplementedError, match="MyTracer"):
        MyTracer()
    assert not isinstance(framework.nn.Linear(2, 2), GraphModule)
    with pytest.raises(NotImplementedError, match="framework.fx.passes"):
        fx.passes
    # feature detection answers instead of raising (hasattr catches AttributeError only)
    assert not hasattr(fx, "node") and getattr(fx, "proxy", None) is None
    assert fx.wrap("len") == "len"  # marks for the tracer only

    def leaf(x):
        return x
    assert fx.wrap(leaf) is leaf
    assert framework.fx is fx
    with pytest.raises(AttributeError):
        fx.__wrapped__
