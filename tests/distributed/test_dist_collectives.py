"""framework.distributed's collectives on 2 MPI processes against NumPy (every dtype and op,
in place, contiguous or not, async), point to point, DistributedSampler from the group; and,
in this process (no MPI), the behaviour without a process group or without mpi4py."""
import sys

import pytest

import framework as fw
import framework.distributed as dist

COLLECTIVES = r"""
import numpy as np
import framework as fw
import framework.distributed as dist
from framework.utils.data import DistributedSampler

if not dist.is_nccl_available():   # no CuPy/NCCL here: the nccl backend says so and leaves
    try:                            # nothing behind
        dist.init_process_group("nccl")
    except RuntimeError as exc:
        assert "backend='nccl'" in str(exc) and not dist.is_initialized(), exc
    else:
        raise AssertionError("backend='nccl' started without NCCL")
dist.init_process_group("mpi", timeout=30)
r, W = dist.get_rank(), dist.get_world_size()
assert (r, W) == (dist.get_rank(), 2) and dist.is_initialized() and dist.get_backend() == "mpi"

def data(dt, rank):
    rng = np.random.default_rng(rank)
    if np.dtype(dt).kind == "f":
        return rng.standard_normal((3, 4)).astype(dt)
    return rng.integers(-4, 5, (3, 4)).astype(dt)

checked = 0
ORACLE = {"SUM": np.sum, "PRODUCT": np.prod, "MAX": np.max, "MIN": np.min, "AVG": np.mean}
for dt in ("float32", "float64", "int32", "int64"):
    every = np.stack([data(dt, k) for k in range(W)])
    for name, oracle in ORACLE.items():
        op = getattr(dist.ReduceOp, name)
        if name == "AVG" and dt.startswith("int"):
            try:
                dist.all_reduce(fw.tensor(data(dt, r)), op)
            except TypeError as exc:
                assert "floating-point" in str(exc)
                checked += 1
                continue
            raise AssertionError("AVG of integers was accepted")
        for layout in ("contiguous", "transposed"):
            t = fw.tensor(data(dt, r))
            view = t if layout == "contiguous" else t.t()
            work = dist.all_reduce(view, op, async_op=(layout == "transposed"))
            if work is not None:
                assert work.wait() and work.is_completed()
            want = oracle(every, axis=0).astype(dt)
            assert t.dtype == getattr(fw, dt), (t.dtype, dt)
            tol = 1e-6 if dt == "float32" else 0
            np.testing.assert_allclose(t.numpy(), want, rtol=tol, atol=tol, err_msg=f"{dt} {name}")
            checked += 1
    for k in ("BAND", "BOR", "BXOR"):
        if dt.startswith("int"):
            t = fw.tensor(data(dt, r))
            dist.all_reduce(t, getattr(dist.ReduceOp, k))
            ufunc = {"BAND": np.bitwise_and, "BOR": np.bitwise_or, "BXOR": np.bitwise_xor}[k]
            want = ufunc.reduce(every)
            np.testing.assert_array_equal(t.numpy(), want)
            checked += 1

# half precision is reduced in float32; bool SUM is "any"
h = fw.full((5,), 1.5 * (r + 1), dtype=fw.bfloat16)
dist.all_reduce(h)
assert h.dtype == fw.bfloat16 and h.float().tolist() == [4.5] * 5
b = fw.tensor([r == 0, False, True])
dist.all_reduce(b)
assert b.tolist() == [True, False, True]

# broadcast (into a non-contiguous view), all_gather, all_gather_into_tensor
x = fw.tensor(np.arange(12.0).reshape(3, 4) * (r + 1))
dist.broadcast(x.t(), src=1)
np.testing.assert_array_equal(x.numpy(), np.arange(12.0).reshape(3, 4) * 2)
outs = [fw.zeros(2, dtype=fw.int64) for _ in range(W)]
dist.all_gather(outs, fw.tensor([r, 10 * r + 7]))
assert [o.tolist() for o in outs] == [[0, 7], [1, 17]]
big = fw.zeros(W, 3)
dist.all_gather_into_tensor(big, fw.full((3,), float(r)))
assert big.tolist() == [[0.0] * 3, [1.0] * 3]

# reduce_scatter: rank k gets the reduction of every rank's chunk k
out = fw.zeros(2)
dist.reduce_scatter(out, [fw.full((2,), float((r + 1) * (k + 1))) for k in range(W)])
assert out.tolist() == [3.0 * (r + 1)] * 2
out = fw.zeros(2, dtype=fw.float64)
dist.reduce_scatter_tensor(out, fw.arange(4.0, dtype=fw.float64) + 10 * r, op=dist.ReduceOp.MAX)
assert out.tolist() == [10.0 + 2 * r, 11.0 + 2 * r]

# point to point: blocking, async, from any source
if r == 0:
    dist.send(fw.tensor([1.5, 2.5]), dst=1)
    w = dist.isend(fw.arange(3, dtype=fw.int32), dst=1, tag=5)
    w.wait()
else:
    got = fw.zeros(2)
    assert dist.recv(got) == 0 and got.tolist() == [1.5, 2.5]
    ints = fw.zeros(3, dtype=fw.int32)
    assert dist.irecv(ints, src=0, tag=5).result() == 0 and ints.tolist() == [0, 1, 2]

# DistributedSampler reads the world size and rank from the group
s = DistributedSampler(list(range(10)), shuffle=False)
assert (s.num_replicas, s.rank) == (2, r) and list(s) == list(range(r, 10, 2))

try:
    dist.init_process_group("mpi")
except RuntimeError as exc:
    assert "twice" in str(exc)
dist.barrier()
dist.destroy_process_group()
assert not dist.is_initialized()
print(f"rank {r}: {checked} reductions checked", flush=True)
"""


def test_collectives_match_numpy_on_two_processes(mpirun):
    res = mpirun(COLLECTIVES)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    # floats: 2 dtypes x 5 ops x 2 layouts; integers: 2 x (4 ops x 2 layouts + the AVG
    # refusal + 3 bitwise ops)
    assert "rank 0: 44 reductions checked" in out and "rank 1: 44 reductions checked" in out


def test_without_a_process_group():
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(ValueError, match="init_process_group"):
        dist.all_reduce(fw.ones(2))
    with pytest.raises(RuntimeError, match="num_replicas= and rank="):
        fw.utils.data.DistributedSampler(list(range(4)))
    with pytest.raises(RuntimeError, match="no distributed training without a process group"):
        fw.nn.parallel.DistributedDataParallel(fw.nn.Linear(2, 2))
    assert fw.distributed is dist and isinstance(dist.ReduceOp.AVG, dist.ReduceOp)


def test_without_mpi4py(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)   # as if it were not installed
    assert not dist.is_available() and not dist.is_mpi_available()
    with pytest.raises(RuntimeError, match=r"pip install 'lantern\[distributed\]'"):
        dist.init_process_group("mpi")
    with pytest.raises(ValueError, match="backend 'tcp'"):
        dist.init_process_group("tcp")
    assert not dist.is_initialized()
