"""A failing rank never leaves the others hanging: a rank that stops answering makes the others
raise a clear error within the timeout (and the job is aborted); a rank that raises aborts
the job at once."""
import time

SCRIPT = r"""
import os, sys, time
import framework as fw
import framework.distributed as dist
import framework.nn as nn
from framework.nn.parallel import DistributedDataParallel as DDP

mode = sys.argv[1]
dist.init_process_group("mpi", timeout=2)
r = dist.get_rank()
model = DDP(nn.Linear(4, 2))
for step in range(4):
    if r == 1 and step == 2:
        if mode == "hang":
            time.sleep(120)            # alive but no longer taking part
        raise ValueError("rank 1 failed on purpose")
    model(fw.randn(3, 4)).sum().backward()
    print(f"rank {r} step {step}", flush=True)
print(f"rank {r} finished", flush=True)
"""


def test_a_hung_rank_makes_the_other_fail_within_the_timeout(mpirun):
    t0 = time.monotonic()
    res = mpirun(SCRIPT, args=["hang"], timeout=60)
    took = time.monotonic() - t0
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert "DistBackendError: DistributedDataParallel's gradient all_reduce timed out after " \
           "2 s on rank 0 of 2" in out, out[-3000:]
    assert "rank 0 step 1" in out and "rank 0 step 2" not in out and "finished" not in out
    assert took < 40, took   # startup + 2 s, not the 120 s rank 1 sleeps


def test_a_rank_that_raises_aborts_the_job(mpirun):
    t0 = time.monotonic()
    res = mpirun(SCRIPT, args=["raise"], timeout=60)
    took = time.monotonic() - t0
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "ValueError: rank 1 failed on purpose" in out, out[-3000:]
    assert "MPI_ABORT was invoked on rank 1" in out, out[-3000:]
    assert "timed out" not in out and "finished" not in out
    assert took < 40, took
