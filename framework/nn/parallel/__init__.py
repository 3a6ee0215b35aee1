"""`framework.nn.parallel`: `DataParallel` (the wrapped module on one device) and
`DistributedDataParallel` (importable; distributed training is not provided yet)."""
from .data_parallel import DataParallel, data_parallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]
