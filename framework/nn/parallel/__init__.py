"""`framework.nn.parallel`: `DataParallel` (the wrapped module on one device) and
`DistributedDataParallel` (data parallel over `framework.distributed` process groups)."""
from .data_parallel import DataParallel, data_parallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]
