"""`framework.distributed`: several processes training one model, as torch.distributed.

    # mpiexec -n 2 python train.py
    import framework.distributed as dist
    dist.init_process_group("mpi")          # rank and world size from the MPI launcher
    t = framework.ones(3) * dist.get_rank()
    dist.all_reduce(t)                      # in place: the sum over the ranks

Host tensors travel through MPI (mpi4py, `pip install 'lantern[distributed]'`), CUDA tensors
through NCCL (CuPy) with `backend="nccl"`. Importing this module needs neither: without
mpi4py, `is_available()` is False and `init_process_group` says what to install.
"""
from __future__ import annotations

from .collectives import (ReduceOp, all_gather, all_gather_into_tensor, all_reduce, barrier,
                          broadcast, irecv, isend, recv, reduce_scatter, reduce_scatter_tensor,
                          send)
from .process_group import (DistBackendError, Work, abort, default_pg_timeout,
                            destroy_process_group, get_backend, get_rank, get_world_size,
                            init_process_group, is_available, is_initialized, is_mpi_available,
                            is_nccl_available)

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available",
           "is_mpi_available", "is_nccl_available", "get_rank", "get_world_size",
           "get_backend", "barrier", "abort", "ReduceOp", "all_reduce", "broadcast",
           "all_gather", "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor",
           "send", "recv", "isend", "irecv", "Work", "DistBackendError", "default_pg_timeout",
           "group"]


class group:
    """`group.WORLD`: the default group, as PyTorch spells it (Lantern has only that one)."""
    WORLD = None
