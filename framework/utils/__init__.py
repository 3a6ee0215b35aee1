"""`framework.utils`: data loading utilities (as torch.utils)."""
from . import data

__all__ = ["data"]
