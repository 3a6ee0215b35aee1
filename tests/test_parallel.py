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
