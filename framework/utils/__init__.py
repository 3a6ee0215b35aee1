"""`framework.utils`: data loading utilities (as torch.utils)."""
