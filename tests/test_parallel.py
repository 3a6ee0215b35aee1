"""Intra-op threading: kernels split into row ranges give the same numbers as one thread."""
import numpy as np
import pytest

import framework as fw
from framework import _parallel


@pytest.fixture
def two_threads():
    before = fw.get_num_threads()
    fw.set_num_threads(2)
    yield
    fw.set_num_threads(before)


def _run(threads, fn):
    fw.set_num_threads(threads)
    fw.manual_seed(0)
    return fn()


@pytest.mark.parametrize("name", ["relu", "softmax", "adam"])
def test_threaded_kernels_match_single_thread(two_threads, name):
    n = _parallel.MIN_PARALLEL_ELEMENTS * 2  # large enough to take the threaded path

    def relu():
        x = fw.randn(64, n // 64, requires_grad=True)
        y = fw.relu(x)
        (y * fw.randn(64, n // 64)).sum().backward()
        return y.detach().numpy().copy(), x.grad.numpy().copy()

    def softmax():
        x = fw.randn(32, 8, n // 256, requires_grad=True)
        y = fw.softmax(x, -1)
        (y * fw.randn(*x.shape)).sum().backward()
        return y.detach().numpy().copy(), x.grad.numpy().copy()

    def adam():
        p = fw.randn(n, requires_grad=True)
        opt = fw.optim.Adam([p], lr=1e-2, weight_decay=0.1)
        for _ in range(3):
            p.grad = fw.randn(n)
            opt.step()
        return (p.detach().numpy().copy(),)

    fn = {"relu": relu, "softmax": softmax, "adam": adam}[name]
    one, two = _run(1, fn), _run(2, fn)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_parallel_ranges_covers_every_index_once(two_threads):
    n = _parallel.MIN_PARALLEL_ELEMENTS * 3 + 7
    hits = np.zeros(n, np.int64)

    def mark(a, b):
        hits[a:b] += 1
    _parallel.parallel_ranges(mark, n)
    assert (hits == 1).all()


def test_worker_errors_propagate(two_threads):
    def boom(a, b):
        if a > 0:
            raise ValueError("from a worker thread")
    with pytest.raises(ValueError, match="worker thread"):
        _parallel.parallel_ranges(boom, _parallel.MIN_PARALLEL_ELEMENTS * 2)


def test_set_num_threads_rejects_nonpositive():
    with pytest.raises(ValueError, match="positive"):
        fw.set_num_threads(0)


def test_parallel_parts_keeps_order_restores_blas_threads_and_raises(two_threads):
    libs = _parallel._blas_controllers()
    before = [lib.num_threads for lib in libs]
    seen = []

    def part(items):
        seen.append([lib.num_threads for lib in libs])
        return sum(items)
    assert _parallel.parallel_parts(part, list(range(10))) in ([45], [10, 35])
    if libs:  # BLAS on one thread inside the parts, restored after
        assert all(n == [1] * len(libs) for n in seen)
    assert [lib.num_threads for lib in libs] == before

    def boom(items):
        raise ValueError("part failed")
    with pytest.raises(ValueError, match="part failed"):
        _parallel.parallel_parts(boom, list(range(4)))
    assert [lib.num_threads for lib in libs] == before


def test_batch_split_convolution_matches_one_thread(two_threads):
    """Large convolutions split their column chunks (forward, dw) and images (dx by taps)
    between threads; the numbers equal the one-thread run up to summation order."""
    out = {}
    for threads in (1, 2):
        fw.set_num_threads(threads)
        fw.manual_seed(0)
        x = fw.randn(16, 32, 32, 32, requires_grad=True)
        conv = fw.nn.Conv2d(32, 64, 3, stride=2, padding=1)
        y = conv(x)
        (y * fw.randn(*y.shape)).sum().backward()
        out[threads] = (y.detach().numpy(), x.grad.numpy(), conv.weight.grad.numpy())
    for a, b in zip(out[1], out[2]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "images_last",
                                    "cropped_grad"])
def test_relu_large_matches_numpy(two_threads, layout):
    """Large activations take the threaded relu (and a gradient strided unlike the mask is
    first copied into its layout); values as np.maximum, gradients 0 where x <= 0 (a NaN
    passes its gradient, as in PyTorch)."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((8, 16, 48, 48)).astype(np.float32)  # 294,912 elements
    x.reshape(-1)[:4] = [-0.0, np.nan, -np.inf, np.inf]
    xt = fw.tensor(x, requires_grad=True)
    xin = xt if layout == "contiguous" else \
        xt.permute(1, 2, 3, 0).contiguous().permute(3, 0, 1, 2) if layout == "images_last" else \
        xt.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    y = fw.relu(xin)
    np.testing.assert_array_equal(y.detach().numpy(), np.maximum(x, 0))
    g = rng.standard_normal((8, 50, 50, 16)).astype(np.float32).transpose(0, 3, 1, 2)
    g = g[:, :, 1:49, 1:49] if layout == "cropped_grad" else \
        np.ascontiguousarray(g[:, :, :48, :48])
    y.backward(fw.Tensor._make(g, None, 0))
    np.testing.assert_array_equal(xt.grad.numpy(), np.where(x <= 0, 0, g))


def test_parallel_slices_splits_along_the_outermost_memory_axis(two_threads):
    """Each part is one contiguous block of every array, whatever the layout, and together
    the parts cover each element once; arrays laid out differently go in one call."""
    n = _parallel.MIN_PARALLEL_ELEMENTS
    for perm in [(0, 1, 2, 3), (1, 2, 3, 0), (0, 2, 3, 1)]:
        base = np.zeros(np.array((4, 8, 32, n // 512))[list(perm)], np.int64)
        inv = np.argsort(perm)
        a = base.transpose(inv)  # the logical (4, 8, 32, n // 512) array, laid out by perm
        calls = []

        def bump(part):
            calls.append(part.shape)
            assert np.shares_memory(part, a)
            part += 1
        _parallel.parallel_slices(bump, [a])
        assert (a == 1).all() and len(calls) == 2
    calls = []
    _parallel.parallel_slices(lambda p, q: calls.append(p.shape),
                              [np.zeros((4, 2 * n)), np.zeros((2 * n, 4)).T])
    assert calls == [(4, 2 * n)]


@pytest.mark.parametrize("layout", ["contiguous", "images_last", "mixed"])
@pytest.mark.parametrize("slope", [0.01, 1.5])
def test_leaky_relu_large_matches_torch(two_threads, layout, slope):
    """Large activations take the blockwise leaky ReLU (slope in [0, 1]: max(x, slope * x)),
    forward and backward, in any layout, with the edge values as torch."""
    from conftest import torch_or_skip
    torch = torch_or_skip()
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 8, 24, 24, 8)).astype(np.float32)
    x.reshape(-1)[:5] = [-0.0, 0.0, np.nan, -np.inf, np.inf]
    g = rng.standard_normal(x.shape).astype(np.float32)
    xt = fw.tensor(x, requires_grad=True)
    xin = xt if layout == "contiguous" else \
        xt.permute(1, 2, 3, 4, 0).contiguous().permute(4, 0, 1, 2, 3)
    y = fw.nn.functional.leaky_relu(xin, slope)
    gin = fw.tensor(g) if layout != "images_last" else \
        fw.tensor(np.ascontiguousarray(g.transpose(1, 2, 3, 4, 0))).permute(4, 0, 1, 2, 3)
    y.backward(gin)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.leaky_relu(tx, slope)
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(np.signbit(y.detach().numpy()), np.signbit(ty.detach().numpy()))
    np.testing.assert_array_equal(xt.grad.numpy(), tx.grad.numpy())


def _env_after_import(code, **env):
    import os
    import subprocess
    import sys
    full = {k: v for k, v in os.environ.items()
            if k not in ("OPENBLAS_THREAD_TIMEOUT", "LANTERN_NO_BLAS_SPIN_TUNING")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code + "; import os; "
                          "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"],
                         env=full, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_openblas_spin_is_shortened():
    """import framework sets OpenBLAS's busy-wait to 2^16 cycles, before NumPy loads or
    after; it leaves a user's value and the opt-out alone."""
    assert _env_after_import("import framework") == "16"
    assert _env_after_import("import numpy, framework") == "16"
    assert _env_after_import("import framework", OPENBLAS_THREAD_TIMEOUT="20") == "20"
    assert _env_after_import("import framework", LANTERN_NO_BLAS_SPIN_TUNING="1") == "None"


_SPIN_PROBE = """
import os, time
import numpy as np
a = np.ones((600, 600), np.float32)
def idle_cpu_seconds():
    for _ in range(3):
        a @ a  # wakes OpenBLAS's worker threads
    start = sum(os.times()[:2])
    time.sleep(0.1)  # the main thread sleeps: any CPU time now is a spinning worker's
    return sum(os.times()[:2]) - start
before = idle_cpu_seconds()
import framework
print(before, idle_cpu_seconds())
"""


def test_openblas_loaded_first_stops_spinning_after_import():
    """A process that imported NumPy first: its OpenBLAS workers busy-wait after a GEMM
    (~0.1 s); after `import framework` the loaded library has re-read the short timeout
    and its idle workers sleep."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_THREAD_TIMEOUT", "LANTERN_NO_BLAS_SPIN_TUNING",
                        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    from threadpoolctl import threadpool_info
    blas = [d for d in threadpool_info() if d["user_api"] == "blas"]
    if not blas or blas[0]["internal_api"] != "openblas" or blas[0]["num_threads"] < 2:
        pytest.skip("needs NumPy on a multi-threaded OpenBLAS")
    out = subprocess.run([sys.executable, "-c", _SPIN_PROBE], env=env, capture_output=True,
                         text=True, check=True)
    before, after = map(float, out.stdout.split())
    assert before > 0.03, out.stdout  # the spin this guards against is there to begin with
    assert after < 0.02, out.stdout


def test_row_window_chunks_split_between_threads_match_torch(two_threads, monkeypatch):
    """The row-window convolution hands each thread a share of its chunks; a share that
    starts with a short chunk (an image's last rows) still gets buffers for its largest
    one. Forward, dx and dw (the fused backward) against torch."""
    from conftest import torch_or_skip
    from framework.ops import conv as conv_ops
    torch = torch_or_skip()
    monkeypatch.setattr(conv_ops, "_row_chunks",
                        lambda n, g, rows_in, row_bytes: [(0, 1, 0, 7), (0, 1, 7, 9),
                                                          (0, 1, 9, g.out_sp[0])])
    monkeypatch.setattr(conv_ops, "_column_chunks", lambda *a: [()])  # "large": row windows
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 16, 16, 20)).astype(np.float32)
    w = (rng.standard_normal((24, 16, 3, 3)) * 0.1).astype(np.float32)
    gy = rng.standard_normal((1, 24, 16, 20)).astype(np.float32)
    lx, lw = fw.tensor(x, requires_grad=True), fw.tensor(w, requires_grad=True)
    ly = fw.nn.functional.conv2d(lx, lw, padding=1)
    ly.backward(fw.tensor(gy))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, padding=1)
    ty.backward(torch.tensor(gy))
    for a, b in ((ly.detach().numpy(), ty.detach().numpy()), (lx.grad.numpy(), tx.grad.numpy()),
                 (lw.grad.numpy(), tw.grad.numpy())):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("shape", [(7,), (2, 8, 128, 128)])  # one pass / parallel blocks
def test_relu_at_nan_and_zeros_matches_torch(shape):
    """ReLU keeps NaN and passes its gradient (PyTorch: dy where not x <= 0), and gives 0 at
    x = 0 and -0.0; small (one pass) and large (split between threads) inputs."""
    from conftest import torch_or_skip
    torch = torch_or_skip()
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    x.reshape(-1)[:5] = [np.nan, -0.0, 0.0, -np.inf, np.inf]
    g = rng.standard_normal(shape).astype(np.float32)
    lx = fw.from_numpy(x.copy()).requires_grad_()
    y = fw.relu(lx)
    y.backward(fw.from_numpy(g))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.relu(tx)
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(lx.grad.numpy(), tx.grad.numpy())
