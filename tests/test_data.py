"""framework.utils.data: datasets, samplers, collation and the (multi-process) DataLoader.

Worker tests use tiny datasets and a `timeout` on the loader as a hang guard, so that a
regression fails with an error instead of blocking the run."""
import collections
import gc
import glob
import multiprocessing
import os
import random
import signal
import threading
import time
import warnings

import numpy as np
import pytest

import framework as F
from framework.utils.data import (BatchSampler, ChainDataset, ConcatDataset, DataLoader, Dataset,
                                  IterableDataset, RandomSampler, SequentialSampler,
                                  StackDataset, Subset, SubsetRandomSampler, TensorDataset,
                                  WeightedRandomSampler, default_collate, default_convert,
                                  get_worker_info, random_split)
from framework.utils.data._worker import _seed_words
from framework.utils.data.sampler import _draw_seed

GUARD = 30  # seconds: loader timeout used as a hang guard in worker tests


def _np(t):
    return np.asarray(t._data)


def _flat(batches):
    return [int(v) for b in batches for v in _np(b).reshape(-1)]


def _pid_gone(pid):
    """True when `pid` is neither running nor a zombie (it was reaped)."""
    return not os.path.exists(f"/proc/{pid}")


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- datasets used by workers
class RangeDS(Dataset):
    def __init__(self, n, delay_at=None, delay=0.0):
        self.n, self.delay_at, self.delay = n, delay_at or set(), delay

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i in self.delay_at:
            time.sleep(self.delay)
        return i


class PidDS(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return np.array([i, os.getpid()], dtype=np.int64)


class RandomAugDS(Dataset):
    """Each sample: the worker's id and seed, and draws from the three seeded RNGs."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        info = get_worker_info()
        return {"id": info.id, "seed": info.seed, "num_workers": info.num_workers,
                "same_ds": isinstance(info.dataset, RandomAugDS),
                "np": np.random.rand(), "py": random.random(), "fw": F.rand(1).item()}


class RaisingDS(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            raise ValueError(f"bad sample {i}")
        return i


class TwoArgError(Exception):
    def __init__(self, a, b):
        super().__init__(a, b)


class TwoArgRaisingDS(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        raise TwoArgError("x", i)


class KeyErrorDS(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {}["missing_key"]


class KillingDS(Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, i):
        if i == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return i


class UnpicklableDS(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return i


def _lambda_collate(batch):
    return [lambda: b for b in batch]


class ShardedIterable(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))

    def __len__(self):
        return self.n


class ChunkedIterable(IterableDataset):
    """Contiguous uneven shards: worker 0 gets more items than worker 1."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            return iter(range(self.n))
        per = -(-self.n // info.num_workers)
        return iter(range(info.id * per, min(self.n, (info.id + 1) * per)))


class UnshardedIterable(IterableDataset):
    def __iter__(self):
        return iter(range(5))


class BigDS(Dataset):
    def __len__(self):
        return 32

    def __getitem__(self, i):
        return np.full(16384, i, dtype=np.float32)  # 64 KiB per sample


_init_log = {}


def _init_fn(worker_id):
    _init_log["called_with"] = worker_id
    _init_log["seed_seen"] = get_worker_info().seed


class InitCheckDS(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return (_init_log.get("called_with", -1), get_worker_info().id,
                _init_log.get("seed_seen", -1), get_worker_info().seed)


# ---------------------------------------------------------------- dataset semantics
def test_tensor_dataset_and_size_mismatch():
    x, y = F.arange(12).reshape(6, 2), F.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    a, b = ds[4]
    assert _np(a).tolist() == [8, 9] and int(b.item()) == 4
    with pytest.raises(ValueError, match=r"Size mismatch between tensors.*\[6, 5\]"):
        TensorDataset(x, F.arange(5))


def test_subset_concat_chain_stack():
    base = RangeDS(10)
    sub = Subset(base, [7, 2, 5])
    assert len(sub) == 3 and [sub[i] for i in range(3)] == [7, 2, 5]
    assert sub.__getitems__([2, 0]) == [5, 7]
    cat = ConcatDataset([RangeDS(3), RangeDS(4)])
    assert len(cat) == 7 and cat.cumulative_sizes == [3, 7]
    assert [cat[i] for i in range(7)] == [0, 1, 2, 0, 1, 2, 3]
    assert cat[-1] == 3 and cat[-7] == 0
    with pytest.raises(ValueError, match="absolute value of index"):
        cat[-8]
    with pytest.raises(IndexError):
        cat[7]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])
    with pytest.raises(TypeError, match="IterableDataset"):
        ConcatDataset([ShardedIterable(3)])
    assert len(RangeDS(2) + RangeDS(3)) == 5
    chain = ChainDataset([ShardedIterable(3), ShardedIterable(2)])
    assert list(chain) == [0, 1, 2, 0, 1] and len(chain) == 5
    assert list(ShardedIterable(2) + ShardedIterable(1)) == [0, 1, 0]
    st = StackDataset(RangeDS(3), Subset(RangeDS(5), [4, 3, 2]))
    assert st[1] == (1, 3) and st.__getitems__([0, 2]) == [(0, 4), (2, 2)]
    sd = StackDataset(a=RangeDS(2), b=RangeDS(2))
    assert sd[1] == {"a": 1, "b": 1}
    with pytest.raises(ValueError, match="Size mismatch"):
        StackDataset(RangeDS(2), RangeDS(3))


def test_random_split_counts_fractions_and_reproducibility():
    ds = RangeDS(11)
    parts = random_split(ds, [3, 8], generator=F.Generator().manual_seed(3))
    assert [len(p) for p in parts] == [3, 8]
    seen = sorted(ds[i] for p in parts for i in p.indices)
    assert seen == list(range(11))
    again = random_split(ds, [3, 8], generator=F.Generator().manual_seed(3))
    assert [p.indices for p in parts] == [p.indices for p in again]
    other = random_split(ds, [3, 8], generator=F.Generator().manual_seed(4))
    assert [p.indices for p in parts] != [p.indices for p in other]
    # fractions: floor then spread the remainder round-robin (torch's rule): 11 * .3 = 3.3
    fr = random_split(ds, [0.3, 0.3, 0.4], generator=F.Generator().manual_seed(0))
    assert [len(p) for p in fr] == [4, 3, 4]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(ds, [3, 3])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        assert [len(p) for p in random_split(RangeDS(2), [0.2, 0.2, 0.6])] == [1, 0, 1]
    with pytest.raises(ValueError, match="not between 0 and 1"):
        random_split(ds, [-0.5, 1.5])


# ---------------------------------------------------------------- samplers
def test_sequential_random_subset_samplers():
    ds = RangeDS(7)
    assert list(SequentialSampler(ds)) == list(range(7))
    s = RandomSampler(ds, generator=F.Generator().manual_seed(5))
    e1, e2 = list(s), list(s)
    assert sorted(e1) == list(range(7)) and sorted(e2) == list(range(7)) and e1 != e2
    s2 = RandomSampler(ds, generator=F.Generator().manual_seed(5))
    assert [list(s2), list(s2)] == [e1, e2]  # the generator advances each epoch, reproducibly
    more = list(RandomSampler(ds, num_samples=17, generator=F.Generator().manual_seed(0)))
    assert len(more) == 17 and sorted(more[:14]) == sorted(list(range(7)) * 2)
    rep = list(RandomSampler(ds, replacement=True, num_samples=50,
                             generator=F.Generator().manual_seed(0)))
    assert len(rep) == 50 and all(0 <= i < 7 for i in rep) and len(set(rep)) < 50
    F.manual_seed(11)
    g1 = list(RandomSampler(ds))
    F.manual_seed(11)
    assert list(RandomSampler(ds)) == g1  # unseeded samplers follow framework.manual_seed
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(ds, num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(ds, replacement=1)
    sub = list(SubsetRandomSampler([10, 20, 30], generator=F.Generator().manual_seed(0)))
    assert sorted(sub) == [10, 20, 30]


def test_weighted_random_sampler():
    w = [0.0, 1.0, 3.0, 0.0]
    draws = list(WeightedRandomSampler(w, 4000, generator=F.Generator().manual_seed(0)))
    counts = collections.Counter(draws)
    assert set(counts) == {1, 2}
    assert abs(counts[2] / 4000 - 0.75) < 0.03
    norep = list(WeightedRandomSampler([1.0, 1.0, 1.0, 1.0], 4, replacement=False))
    assert sorted(norep) == [0, 1, 2, 3]
    assert len(WeightedRandomSampler(w, 9)) == 9
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        WeightedRandomSampler([[1.0, 2.0]], 2)
    with pytest.raises(ValueError, match="num_samples"):
        WeightedRandomSampler(w, -1)


def test_batch_sampler():
    bs = BatchSampler(SequentialSampler(RangeDS(10)), 4, drop_last=False)
    assert list(bs) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and len(bs) == 3
    bs = BatchSampler(range(10), 4, drop_last=True)
    assert list(bs) == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(bs) == 2
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean"):
        BatchSampler(range(3), 2, 1)


# ---------------------------------------------------------------- collation
Point = collections.namedtuple("Point", ["x", "y"])


def _sample(i, lib):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3) + i
    tens = lib.tensor([i, i + 1], dtype=lib.float32)
    return {
        "img": arr,
        "t": tens,
        "label": i,
        "flag": bool(i % 2),
        "score": 0.5 * i,
        "name": f"s{i}",
        "np_scalar": np.float32(i) / 2,
        "np_int": np.int32(i),
        "pair": (i, [float(i), np.array([i, i], dtype=np.int64)]),
        "pt": Point(x=i, y=np.float64(i)),
    }


def _assert_same_structure(ours, ref, path="batch"):
    torch = pytest.importorskip("torch")
    if isinstance(ref, torch.Tensor):
        assert isinstance(ours, F.Tensor), f"{path}: {type(ours)}"
        assert tuple(ours.shape) == tuple(ref.shape), path
        assert str(ours.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1], \
            f"{path}: {ours.dtype} vs {ref.dtype}"
        np.testing.assert_allclose(_np(ours), ref.numpy(), err_msg=path)
    elif isinstance(ref, dict):
        assert type(ours) is type(ref) and list(ours) == list(ref), path
        for k in ref:
            _assert_same_structure(ours[k], ref[k], f"{path}[{k!r}]")
    elif isinstance(ref, (list, tuple)):
        assert type(ours) is type(ref) and len(ours) == len(ref), f"{path}: {type(ours)}"
        for i, (a, b) in enumerate(zip(ours, ref)):
            _assert_same_structure(a, b, f"{path}[{i}]")
    else:
        assert ours == ref, path


def test_default_collate_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate
    ours = default_collate([_sample(i, F) for i in range(3)])
    ref = torch_collate([_sample(i, torch) for i in range(3)])
    _assert_same_structure(ours, ref)
    assert isinstance(ours["pt"], Point) and isinstance(ours["pair"], list)
    # top-level tuples and mixed python numbers
    _assert_same_structure(default_collate([(1, 2.5), (2, 3.5)]),
                           torch_collate([(1, 2.5), (2, 3.5)]))
    _assert_same_structure(default_collate([1, 2.5]), torch_collate([1, 2.5]))


def test_default_collate_errors_and_convert():
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal"):
        default_collate([[1, 2], [1]])
    with pytest.raises(RuntimeError, match=r"stack expects each tensor to be equal size, but got "
                                           r"\[3\] at entry 0 and \[4\] at entry 1"):
        default_collate([np.zeros(3), np.zeros(4)])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([np.array(["a"]), np.array(["b"])])
    # requires_grad tensors keep the graph through the stack
    w = F.ones(2, requires_grad=True)
    out = default_collate([w * 2, w * 3])
    out.sum().backward()
    assert _np(w.grad).tolist() == [5.0, 5.0]
    conv = default_convert({"a": np.ones(2), "b": (np.float32(1), "s"), "c": Point(1, np.ones(1))})
    assert isinstance(conv["a"], F.Tensor) and isinstance(conv["b"], list)
    assert isinstance(conv["b"][0], F.Tensor) and conv["b"][1] == "s"
    assert isinstance(conv["c"], Point) and isinstance(conv["c"].y, F.Tensor)


# ---------------------------------------------------------------- DataLoader, main process
def test_loader_arguments_validated():
    ds = RangeDS(4)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=2)
    with pytest.raises(ValueError, match="disables auto-batching"):
        DataLoader(ds, batch_size=None, drop_last=True)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(ValueError, match="prefetch_factor option could only be specified"):
        DataLoader(ds, prefetch_factor=2)
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="timeout option should be non-negative"):
        DataLoader(ds, timeout=-1)
    with pytest.raises(ValueError, match="expected unspecified shuffle"):
        DataLoader(ShardedIterable(3), shuffle=True)
    with pytest.raises(ValueError, match="multiprocessing_context can only be used"):
        DataLoader(ds, multiprocessing_context="fork")
    dl = DataLoader(ds)
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        dl.batch_size = 3
    assert DataLoader(ds, num_workers=1).prefetch_factor == 2


def test_sequential_order_drop_last_and_len():
    ds = RangeDS(10)
    batches = list(DataLoader(ds, batch_size=3))
    assert [_np(b).tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert len(DataLoader(ds, batch_size=3)) == 4
    dl = DataLoader(ds, batch_size=3, drop_last=True)
    assert len(dl) == 3 and _flat(dl) == list(range(9))
    one = list(DataLoader(ds, batch_size=None))  # no batching: default_convert of each sample
    assert one == list(range(10))
    assert len(DataLoader(ShardedIterable(10), batch_size=4)) == 3


def test_shuffle_reproducible_with_generator():
    ds = RangeDS(20)

    def epochs(seed, workers):
        dl = DataLoader(ds, batch_size=4, shuffle=True, num_workers=workers,
                        generator=F.Generator().manual_seed(seed),
                        timeout=GUARD if workers else 0)
        return [_flat(dl) for _ in range(2)]

    a = epochs(7, 0)
    assert sorted(a[0]) == list(range(20)) and a[0] != list(range(20)) and a[0] != a[1]
    assert epochs(7, 0) == a
    assert epochs(8, 0) != a
    assert epochs(7, 2) == a  # the order is decided in the main process


def test_batch_sampler_and_custom_sampler():
    ds = RangeDS(10)
    dl = DataLoader(ds, batch_sampler=[[3, 1], [0], [9, 8, 7]])
    assert [_np(b).tolist() for b in dl] == [[3, 1], [0], [9, 8, 7]]
    dl = DataLoader(ds, batch_size=2, sampler=[4, 3, 2])
    assert [_np(b).tolist() for b in dl] == [[4, 3], [2]]


def test_tensor_dataset_gather_path_equals_generic_path():
    x = F.randn(9, 3)
    y = F.arange(9)
    ds = TensorDataset(x, y)
    fast = list(DataLoader(ds, batch_size=4, shuffle=True, generator=F.Generator().manual_seed(1)))
    slow = list(DataLoader(ds, batch_size=4, shuffle=True, generator=F.Generator().manual_seed(1),
                           collate_fn=lambda b: default_collate(b)))
    assert len(fast) == len(slow) == 3
    for (fx, fy), (sx, sy) in zip(fast, slow):
        assert fx.dtype == sx.dtype and fy.dtype == sy.dtype
        np.testing.assert_array_equal(_np(fx), _np(sx))
        np.testing.assert_array_equal(_np(fy), _np(sy))


def test_pin_memory_on_cpu_is_silent_noop():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = list(DataLoader(RangeDS(4), batch_size=2, pin_memory=True))
    assert _flat(out) == [0, 1, 2, 3]


@pytest.mark.cuda
@pytest.mark.parametrize("workers", [0, 2])
def test_pin_memory_on_cuda_gives_page_locked_batches(workers):
    if not F.cuda.is_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    import cupy as cp
    x, y = F.randn(32, 100), F.arange(32)
    dl = DataLoader(TensorDataset(x, y), batch_size=8, pin_memory=True, num_workers=workers,
                    timeout=GUARD if workers else 0)
    for bx, by in dl:
        attr = cp.cuda.runtime.pointerGetAttributes(_np(bx).ctypes.data)
        assert attr.type == cp.cuda.runtime.memoryTypeHost
        np.testing.assert_array_equal(cp.asnumpy(bx.to("cuda")._data), _np(bx))


# ---------------------------------------------------------------- DataLoader, worker processes
def test_worker_order_matches_sequential():
    # items 0-2 go to worker 0 and are slow, so worker 1's batches finish first and must wait
    # in the reorder buffer
    ds = RangeDS(14, delay_at={0}, delay=0.4)
    seq = [_np(b).tolist() for b in DataLoader(RangeDS(14), batch_size=3)]
    assert seq[0] == [0, 1, 2] and len(seq) == 5
    dl = DataLoader(ds, batch_size=3, num_workers=2, timeout=GUARD)
    assert [_np(b).tolist() for b in dl] == seq
    # in_order=False hands batches over as they complete: the slow first batch comes later
    got = [_np(b).tolist() for b in DataLoader(ds, batch_size=3, num_workers=2,
                                                in_order=False, timeout=GUARD)]
    assert sorted(got) == sorted(seq) and got[0] != [0, 1, 2]


def test_worker_collates_nested_samples_and_no_batching():
    ds = RandomAugDS()
    batches = list(DataLoader(ds, batch_size=3, num_workers=2, timeout=GUARD))
    assert len(batches) == 2 and isinstance(batches[0], dict)
    assert tuple(batches[0]["np"].shape) == (3,) and batches[0]["np"].dtype == F.float64
    single = list(DataLoader(ds, batch_size=None, num_workers=2, timeout=GUARD))
    assert len(single) == 6 and isinstance(single[0]["id"], int)


def test_per_worker_seeding_and_worker_info():
    assert get_worker_info() is None

    def run(seed):
        dl = DataLoader(RandomAugDS(), batch_size=1, num_workers=2, timeout=GUARD,
                        generator=F.Generator().manual_seed(seed))
        return [{k: (v.item() if isinstance(v, F.Tensor) else v[0] if isinstance(v, list)
                     else v) for k, v in b.items()} for b in dl]

    a = run(123)
    base = _draw_seed(F.Generator().manual_seed(123))
    assert {s["id"] for s in a} == {0, 1}
    for s in a:
        assert s["seed"] == base + s["id"] and s["num_workers"] == 2 and s["same_ds"]
    # worker i's RNGs are seeded with base + i: its first draws match a fresh seeding
    first = {}
    for s in a:
        first.setdefault(s["id"], s)
    for wid, s in first.items():
        random.seed(base + wid)
        assert s["py"] == random.random()
        F.manual_seed(base + wid)
        assert s["fw"] == F.rand(1).item()
        np.random.seed(_seed_words(base + wid))  # all 64 bits of base + id, as 32-bit words
        assert s["np"] == np.random.rand()
    # the workers draw different augmentations, and a rerun with the same seed repeats them
    assert first[0]["np"] != first[1]["np"] and first[0]["fw"] != first[1]["fw"]
    assert run(123) == a
    assert [s["np"] for s in run(124)] != [s["np"] for s in a]


def test_worker_info_is_read_only_and_init_fn_called():
    out = [tuple(int(v) for v in b) for b in
           DataLoader(InitCheckDS(), batch_size=None, num_workers=2, worker_init_fn=_init_fn,
                      timeout=GUARD)]
    assert len(out) == 4
    for called_with, wid, seed_seen, seed in out:
        assert called_with == wid and seed_seen == seed  # called once seeded, with its id
    info = F.utils.data.WorkerInfo(id=0, num_workers=1, seed=1, dataset=None)
    with pytest.raises(RuntimeError, match="Cannot assign attributes"):
        info.id = 3


def _failing_init_fn(worker_id):
    raise OSError(f"cannot open shard for worker {worker_id}")


class FailingIterIterable(IterableDataset):
    def __iter__(self):
        raise ValueError("no stream")


def test_worker_setup_errors_are_reported():
    with pytest.raises(OSError, match=r"(?s)Caught OSError in DataLoader worker process \d.*"
                                      r"cannot open shard for worker"):
        list(DataLoader(RangeDS(4), num_workers=2, worker_init_fn=_failing_init_fn,
                        timeout=GUARD))
    with pytest.raises(ValueError, match="no stream"):
        list(DataLoader(FailingIterIterable(), num_workers=1, timeout=GUARD))


def test_iterable_dataset_sharding_with_workers():
    dl = DataLoader(ShardedIterable(10), batch_size=2, num_workers=2, timeout=GUARD)
    # batches alternate between the workers: w0 [0,2], w1 [1,3], w0 [4,6], ...
    got = [_np(b).tolist() for b in dl]
    assert got == [[0, 2], [1, 3], [4, 6], [5, 7], [8], [9]]
    # uneven shards: the worker that ends first is retired, the other finishes
    got = _flat(DataLoader(ChunkedIterable(11), batch_size=2, num_workers=2, timeout=GUARD))
    assert sorted(got) == list(range(11))
    got = _flat(DataLoader(ChunkedIterable(11), batch_size=2, num_workers=2, drop_last=True,
                           timeout=GUARD))
    assert sorted(got) == list(range(10))  # shards 0-5 and 6-10: only 10 is a partial batch
    # without sharding every worker yields the whole stream
    got = _flat(DataLoader(UnshardedIterable(), batch_size=5, num_workers=2, timeout=GUARD))
    assert sorted(got) == sorted(list(range(5)) * 2)


@pytest.mark.parametrize("shm", [True, False], ids=["shm_on", "shm_off"])
def test_unpicklable_batch_is_an_error_not_a_hang(shm, monkeypatch):
    from framework.utils.data import _shm
    monkeypatch.setattr(_shm, "ENABLED", shm)
    with pytest.raises(Exception, match="could not be pickled"):
        list(DataLoader(UnpicklableDS(), batch_size=2, num_workers=1,
                        collate_fn=_lambda_collate, timeout=GUARD))
    gc.collect()
    assert not multiprocessing.active_children()


def test_worker_exception_names_worker_and_traceback():
    dl = DataLoader(RaisingDS(), batch_size=2, num_workers=2, timeout=GUARD)
    with pytest.raises(ValueError) as ei:
        list(dl)
    msg = str(ei.value)
    assert "Caught ValueError in DataLoader worker process 0" in msg
    assert "Traceback (most recent call last)" in msg and "bad sample 5" in msg
    assert "in __getitem__" in msg and 'raise ValueError(f"bad sample {i}")' in msg
    # an exception type that can't be rebuilt from a message becomes a RuntimeError
    with pytest.raises(RuntimeError, match="Caught TwoArgError in DataLoader worker process"):
        list(DataLoader(TwoArgRaisingDS(), num_workers=1, timeout=GUARD))
    with pytest.raises(KeyError, match="missing_key"):
        list(DataLoader(KeyErrorDS(), num_workers=1, timeout=GUARD))
    del ei
    gc.collect()
    assert not multiprocessing.active_children()


def test_killed_worker_raises_clear_error():
    dl = DataLoader(KillingDS(), batch_size=2, num_workers=2, timeout=GUARD)
    start = time.monotonic()
    it = iter(dl)
    pids = [w.pid for w in it._workers]
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid \d+\) exited unexpectedly "
                                           r"with exit code -9"):
        for _ in it:
            pass
    assert time.monotonic() - start < 10
    assert all(_pid_gone(p) for p in pids)
    assert not _shm_files()
    with pytest.raises(RuntimeError, match="shut down"):
        next(it)


def test_timeout_raises(monkeypatch):
    from framework.utils.data import dataloader
    monkeypatch.setattr(dataloader, "SHUTDOWN_GRACE", 0.05)  # don't wait for the sleeper
    ds = RangeDS(4, delay_at={2}, delay=20)
    dl = DataLoader(ds, batch_size=2, num_workers=1, timeout=0.5)
    it = iter(dl)
    assert _np(next(it)).tolist() == [0, 1]
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"DataLoader timed out after 0.5 seconds"):
        next(it)
    assert time.monotonic() - start < 5
    pids = [w.pid for w in it._workers]
    del it
    gc.collect()
    assert all(_pid_gone(p) for p in pids)


def test_persistent_workers_across_epochs():
    dl = DataLoader(PidDS(), batch_size=2, num_workers=2, persistent_workers=True,
                    timeout=GUARD)
    pid_sets = []
    for epoch in range(3):
        rows = np.concatenate([_np(b) for b in dl])
        assert rows[:, 0].tolist() == list(range(8))
        pid_sets.append(set(rows[:, 1].tolist()))
        if epoch == 1:  # an early break leaves stale prefetched batches behind
            it = iter(dl)
            next(it)
    assert pid_sets[0] == pid_sets[1] == pid_sets[2] and len(pid_sets[0]) == 2
    # iterable datasets restart on each epoch with persistent workers
    dl2 = DataLoader(ShardedIterable(6), batch_size=2, num_workers=2, persistent_workers=True,
                     timeout=GUARD)
    assert sorted(_flat(dl2)) == sorted(_flat(dl2)) == list(range(6))
    pids = [w.pid for w in dl._iterator._workers] + [w.pid for w in dl2._iterator._workers]
    del dl, dl2, it
    gc.collect()
    assert all(_pid_gone(p) for p in pids)


def test_early_break_leaves_no_child_processes():
    dl = DataLoader(PidDS(), batch_size=1, num_workers=2, timeout=GUARD)
    for b in dl:
        break
    it = iter(dl)
    next(it)
    pids = [w.pid for w in it._workers]
    del it, b
    gc.collect()
    assert all(_pid_gone(p) for p in pids)
    assert not multiprocessing.active_children()


def _open_fds():
    return len(os.listdir("/proc/self/fd"))


def _settle(threads_before):
    """Collect garbage and wait for closed queues' feeder threads (which close their pipe ends
    asynchronously) to finish."""
    gc.collect()
    deadline = time.monotonic() + 2
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.01)


def _shm_files():
    return glob.glob(f"/dev/shm/lantern-dl-{os.getpid()}-*")


@pytest.mark.parametrize("batch_size", [4, 16], ids=["pipe", "shared_memory"])
def test_memory_flat_across_epochs(batch_size):
    threads = threading.active_count()
    dl = DataLoader(BigDS(), batch_size=batch_size, num_workers=2, timeout=GUARD)

    def epoch():
        total = 0.0
        for b in dl:
            total += float(_np(b)[:, 0].sum())
        assert total == sum(range(32))

    epoch()
    _settle(threads)
    after_one = _rss_bytes(), _open_fds(), threading.active_count()
    for _ in range(4):
        epoch()
    _settle(after_one[2])
    assert _rss_bytes() - after_one[0] < 4 * 2 ** 20
    assert (_open_fds(), threading.active_count()) == after_one[1:]
    assert not multiprocessing.active_children() and not _shm_files()


class LargeDS(Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, i):
        return {"x": np.full((300, 256), i, dtype=np.float32), "i": i}  # 300 KiB per sample


def _counting_unpack(monkeypatch):
    from framework.utils.data import _shm
    calls = []
    real = _shm.unpack

    def unpack(msg):
        calls.append(msg.size)
        return real(msg)

    monkeypatch.setattr(_shm, "unpack", unpack)
    return calls


def test_large_batches_use_shared_memory(monkeypatch):
    calls = _counting_unpack(monkeypatch)
    threads = threading.active_count()
    _settle(threads)
    fds = _open_fds()
    batches = list(DataLoader(LargeDS(), batch_size=4, num_workers=2, timeout=GUARD))
    assert len(calls) == 3 and all(c >= 4 * 300 * 256 * 4 for c in calls)
    assert not _shm_files()  # unlinked on receipt
    _settle(threads)
    assert _open_fds() == fds  # the mappings hold no file descriptors
    seq = list(DataLoader(LargeDS(), batch_size=4))
    for got, ref in zip(batches, seq):
        np.testing.assert_array_equal(_np(got["x"]), _np(ref["x"]))
        assert _np(got["i"]).tolist() == _np(ref["i"]).tolist()
        assert got["x"].dtype == F.float32 and tuple(got["x"].shape) == (4, 300, 256)
    x = batches[0]["x"]
    x.add_(1.0)  # writable
    assert float(_np(x)[0, 0, 0]) == 1.0
    del batches, seq
    assert float((x * 2).sum().item()) == 2 * float(_np(x).sum())
    # an early break leaves no files behind
    it = iter(DataLoader(LargeDS(), batch_size=4, num_workers=2, prefetch_factor=3,
                         timeout=GUARD))
    next(it)
    time.sleep(0.2)  # let the workers write their prefetched batches
    del it
    gc.collect()
    assert not _shm_files()


class LargeKillingDS(LargeDS):
    def __getitem__(self, i):
        if i == 8:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__getitem__(i)


def test_killed_worker_leaves_no_shared_memory_files():
    it = iter(DataLoader(LargeKillingDS(), batch_size=4, num_workers=2, timeout=GUARD))
    with pytest.raises(RuntimeError, match="exited unexpectedly with exit code -9"):
        for _ in it:
            pass
    assert not _shm_files()


def test_shared_memory_off_gives_same_batches(monkeypatch):
    from framework.utils.data import _shm
    calls = _counting_unpack(monkeypatch)
    monkeypatch.setattr(_shm, "ENABLED", False)
    batches = list(DataLoader(LargeDS(), batch_size=4, num_workers=2, timeout=GUARD))
    assert not calls and len(batches) == 3
    assert _np(batches[2]["x"])[:, 0, 0].tolist() == [8, 9, 10, 11]


def test_spawn_context():
    dl = DataLoader(RangeDS(6), batch_size=2, num_workers=1, multiprocessing_context="spawn",
                    timeout=GUARD)
    assert _flat(dl) == list(range(6))


@pytest.mark.parametrize("n, replicas, drop_last", [(10, 3, False), (10, 3, True), (9, 3, False),
                                                    (2, 4, False)])
def test_distributed_sampler_partitions_like_torch(n, replicas, drop_last):
    """Ranks get equal, disjoint shares covering the data set (padded by repetition, or
    trimmed with drop_last); without shuffle the shares equal torch's exactly."""
    torch = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchDS
    from framework.utils.data import DistributedSampler
    data = list(range(n))
    shares = []
    for rank in range(replicas):
        s = DistributedSampler(data, num_replicas=replicas, rank=rank, shuffle=False,
                               drop_last=drop_last)
        t = TorchDS(data, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        assert list(s) == list(t) and len(s) == len(t)
        shuffled = DistributedSampler(data, num_replicas=replicas, rank=rank, seed=3,
                                      drop_last=drop_last)
        shares.append(list(shuffled))
    assert len({len(sh) for sh in shares}) == 1
    flat = [i for sh in shares for i in sh]
    if drop_last:
        assert len(set(flat)) == len(flat)
    else:
        assert set(flat) == set(data)


def test_distributed_sampler_epochs_and_errors():
    from framework.utils.data import DataLoader, DistributedSampler
    s = DistributedSampler(list(range(20)), num_replicas=2, rank=1, seed=5)
    first = list(s)
    assert list(s) == first  # same epoch, same order
    s.set_epoch(1)
    assert list(s) != first  # a new epoch reshuffles (deterministically: seed + epoch)
    batches = list(DataLoader(list(range(20)), batch_size=4, sampler=s))
    assert sum(len(b) for b in batches) == 10
    with pytest.raises(RuntimeError, match="num_replicas= and rank="):
        DistributedSampler(list(range(4)))
    with pytest.raises(ValueError, match="Invalid rank 2"):
        DistributedSampler(list(range(4)), num_replicas=2, rank=2)
