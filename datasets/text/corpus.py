"""`SyntheticReviews`: a seeded, generated movie-review sentiment corpus for tests and demos
(no files, no download; a few milliseconds).

Sentences are built from templates over a shared vocabulary so that single words are weak
evidence: a third of the plain sentences negate their adjective ("the plot was not clever"
is negative), contrast sentences hold one adjective of each polarity ("i expected the
ending to be dull, but it was gripping"), and add-on clauses may negate their verb ("i did
not enjoy it"). Word pairs ("not clever", "was clever") decide almost every sentence: with
logistic regression (5-fold, seeds 0-2) unigrams and bigrams reach about 96 % while
unigrams alone reach about 67 % (tests/text checks > 90 % and < 80 %).
"""
from __future__ import annotations

import numpy as np

from .dataset import TextDataset

__all__ = ["SyntheticReviews", "generate_reviews"]

_SUBJECTS = ("the movie", "this film", "the plot", "the acting", "the script",
             "the soundtrack", "the ending", "the cast", "the dialogue", "the story",
             "the pacing", "the director's latest")
_VERBS = ("was", "is", "felt", "seemed")
_ADJ = {1: ("good", "great", "wonderful", "moving", "funny", "clever"),
        0: ("bad", "boring", "dull", "awful", "clumsy", "predictable")}
_INTENSIFIERS = ("really", "very", "quite", "truly", "rather")
_NEGATED = ("{v} not {a}", "{v} never {a}", "{v} not {a} at all")
_OPENERS = ("honestly, ", "overall, ", "to be fair, ", "in the end, ", "frankly, ")
_ADDON_VERBS = {1: ("loved", "enjoyed", "liked"), 0: ("hated", "regretted", "disliked")}
_ADDON_BASE = {"loved": "love", "enjoyed": "enjoy", "liked": "like", "hated": "hate",
               "regretted": "regret", "disliked": "dislike"}


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _sentence(rng: np.random.Generator, label: int) -> str:
    subject, verb = _pick(rng, _SUBJECTS), _pick(rng, _VERBS)
    if rng.random() < 0.2:
        # Contrast: the clause after "but" decides; both polarities occur as unigrams.
        first, second = _pick(rng, _ADJ[1 - label]), _pick(rng, _ADJ[label])
        text = f"i expected {subject} to be {first}, but it was {second}"
    elif rng.random() < 0.35:
        adjective = _pick(rng, _ADJ[1 - label])
        text = f"{subject} " + _pick(rng, _NEGATED).format(v=verb, a=adjective)
    else:
        adjective = _pick(rng, _ADJ[label])
        if rng.random() < 0.5:
            adjective = f"{_pick(rng, _INTENSIFIERS)} {adjective}"
        text = f"{subject} {verb} {adjective}"
    if rng.random() < 0.3:
        text = _pick(rng, _OPENERS) + text
    if rng.random() < 0.25:
        if rng.random() < 0.4:  # "i did not hate it" is mild praise
            text += f", and i did not {_ADDON_BASE[_pick(rng, _ADDON_VERBS[1 - label])]} it"
        else:
            text += f", and i {_pick(rng, _ADDON_VERBS[label])} it"
    return text + _pick(rng, (".", ".", ".", "!"))


def generate_reviews(n_per_class: int = 300, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """(texts, targets): `n_per_class` sentences of each class (0 negative, 1 positive) in
    a shuffled order; the same seed gives the same corpus."""
    if n_per_class < 0:
        raise ValueError(f"generate_reviews: n_per_class must be >= 0, got {n_per_class}")
    rng = np.random.default_rng(seed)
    targets = rng.permutation(np.repeat(np.arange(2, dtype=np.int64), n_per_class))
    texts = [_sentence(rng, int(t)) for t in targets]
    return texts, targets


class SyntheticReviews(TextDataset):
    """The generated corpus as a data set: classes ["negative", "positive"],
    `2 * n_per_class` samples (600 by default)."""

    def __init__(self, n_per_class: int = 300, seed: int = 0):
        texts, targets = generate_reviews(n_per_class, seed)
        super().__init__(texts, targets, ["negative", "positive"],
                         source=f"synthetic-reviews(n_per_class={n_per_class}, seed={seed})")
