"""framework.distributed on real devices, for the machine where the NCCL path can run.

    mpiexec -n NGPUS python scripts/dist_check.py --backend nccl --device cuda
    mpiexec -n 2 python scripts/dist_check.py --backend mpi --device cpu    # the CPU twin

Each rank takes the device of its local rank. Checks, with one line per part and "dist check
ok" at the end (a failed check raises, and mpiexec exits non-zero):
  - all_reduce (sum, max, min, avg), broadcast, all_gather, reduce_scatter and send/recv
    (with two ranks or more) on float32/float64 tensors of the device, against NumPy;
  - DistributedDataParallel: 4 SGD steps on each rank's share of a global batch of 8 equal
    4 steps of the same model on the whole batch (float64, tiny buckets so several
    all-reduces overlap backward), and every rank holds the same parameters.
With one rank the collectives are identities and DDP's all-reduce divides by one: the run
then checks that the NCCL communicator starts and that the calls go through, nothing more.
`scripts/gpu_check.sh` runs it with one rank per GPU.
"""
from __future__ import annotations

import argparse
import copy
import os

import numpy as np

import framework as fw
import framework.distributed as dist
import framework.nn as nn
import framework.nn.functional as F
from framework.nn.parallel import DistributedDataParallel as DDP


def _local_rank() -> int:
    for name in ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "LOCAL_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def _data(shape, rank, dtype):
    return np.random.default_rng(rank).standard_normal(shape).astype(dtype)


def check_collectives(device: str, rank: int, world: int) -> None:
    for dtype in ("float32", "float64"):
        tol = 1e-5 if dtype == "float32" else 1e-12
        every = np.stack([_data((3, 5), k, dtype) for k in range(world)])
        for name, oracle in (("SUM", np.sum), ("MAX", np.max), ("MIN", np.min),
                             ("AVG", np.mean)):
            t = fw.tensor(_data((3, 5), rank, dtype), device=device)
            dist.all_reduce(t, getattr(dist.ReduceOp, name))
            np.testing.assert_allclose(t.cpu().numpy(), oracle(every, axis=0), rtol=tol,
                                       atol=tol, err_msg=f"all_reduce {name} {dtype}")
        t = fw.tensor(_data((4,), rank, dtype), device=device)
        dist.broadcast(t, src=world - 1)
        np.testing.assert_array_equal(t.cpu().numpy(), _data((4,), world - 1, dtype))
        gathered = [fw.zeros(4, dtype=getattr(fw, dtype), device=device) for _ in range(world)]
        dist.all_gather(gathered, fw.tensor(_data((4,), rank, dtype), device=device))
        for k, g in enumerate(gathered):
            np.testing.assert_array_equal(g.cpu().numpy(), _data((4,), k, dtype))
        parts = [fw.tensor(_data((world, 2), rank, dtype)[k], device=device)
                 for k in range(world)]
        out = fw.zeros(2, dtype=getattr(fw, dtype), device=device)
        dist.reduce_scatter(out, parts)
        want = sum(_data((world, 2), k, dtype)[rank] for k in range(world))
        np.testing.assert_allclose(out.cpu().numpy(), want, rtol=tol, atol=tol)
        if world >= 2:  # a ring: send to the next rank, receive from the previous one
            mine = fw.tensor(_data((3,), rank, dtype), device=device)
            got = fw.zeros(3, dtype=getattr(fw, dtype), device=device)
            if rank % 2 == 0:
                dist.send(mine, (rank + 1) % world)
                dist.recv(got, (rank - 1) % world)
            else:
                dist.recv(got, (rank - 1) % world)
                dist.send(mine, (rank + 1) % world)
            np.testing.assert_array_equal(got.cpu().numpy(), _data((3,), (rank - 1) % world,
                                                                    dtype))
    print(f"rank {rank}: collectives ok on {device}", flush=True)


def check_ddp(device: str, rank: int, world: int) -> None:
    fw.manual_seed(100 + rank)  # different initial models: DDP starts all from rank 0's
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double().to(device)
    ddp = DDP(model, bucket_cap_mb=0.0005)
    reference = copy.deepcopy(model)
    opt = fw.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    ref_opt = fw.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(7)
    mine = slice(rank * 8 // world, (rank + 1) * 8 // world)
    for _ in range(4):
        x = fw.tensor(rng.standard_normal((8, 6)), device=device)
        y = fw.tensor(rng.integers(0, 3, 8), device=device)
        opt.zero_grad()
        F.cross_entropy(ddp(x[mine]), y[mine]).backward()
        opt.step()
        ref_opt.zero_grad()
        F.cross_entropy(reference(x), y).backward()
        ref_opt.step()
    err = max(float((a - b).abs().max()) for a, b in zip(model.parameters(),
                                                          reference.parameters()))
    assert err < 1e-10, f"DDP differs from the whole-batch steps by {err:.2e}"
    for p in model.parameters():
        copies = [fw.zeros_like(p) for _ in range(world)]
        dist.all_gather(copies, p.detach().contiguous())
        assert all(bool((c == copies[0]).all()) for c in copies), "ranks disagree"
    print(f"rank {rank}: DDP equals the whole-batch steps to {err:.1e} on {device}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="nccl", choices=("nccl", "mpi"))
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = parser.parse_args()
    device = args.device
    if device == "cuda":
        device = f"cuda:{_local_rank() % fw.cuda.device_count()}"
        fw.cuda.set_device(device)
    dist.init_process_group(args.backend, timeout=120)
    rank, world = dist.get_rank(), dist.get_world_size()
    check_collectives(device, rank, world)
    check_ddp(device, rank, world)
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        print(f"dist check ok: backend {args.backend}, {world} rank(s), {args.device}",
              flush=True)


if __name__ == "__main__":
    main()
