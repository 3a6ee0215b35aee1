"""Memory layouts of tensors: `strided` (dense arrays) and `sparse_coo` (COO sparse tensors)."""
from __future__ import annotations

__all__ = ["layout", "strided", "sparse_coo"]


class layout:
    """A tensor's memory layout, as `torch.layout`; compared by identity."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"framework.{self.name}"

    __str__ = __repr__

    def __reduce__(self):  # pickles as the module-level singleton
        return self.name


strided = layout("strided")
sparse_coo = layout("sparse_coo")
