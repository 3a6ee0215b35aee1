"""`framework.utils` (as torch.utils): data loading (`data`) and activation checkpointing
(`checkpoint`, imported on first use)."""
from . import data

__all__ = ["data", "checkpoint"]


def __getattr__(name: str):
    # checkpoint is loaded on first access, so that `import framework` does not pay for it
    if name == "checkpoint":
        import importlib
        return importlib.import_module(f"{__name__}.checkpoint")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
