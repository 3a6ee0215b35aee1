"""`NgramVocab`: fastText-style text features as a text encoder (see `encoders`): word ids
from a vocabulary built on the training texts, plus hashed word n-grams.

Words (`tokenize_words`): HTML line breaks (`<br />`, common in review corpora) become
spaces, the text is lowercased (optional), and tokens are runs of letters/digits, with
inner apostrophes kept ("isn't", "director's"), or single punctuation marks ("!" and "?"
carry sentiment). This follows the spirit of fastText's preprocessing of its classic
data sets (lowercase, punctuation split from words).

Ids: [PAD] = 0, [UNK] = 1 (words not in the vocabulary), then the words; n-grams of
n = 2..ngrams consecutive words map to `len(words) + bucket`, so
`vocab_size = len(words) + buckets` (words counting [PAD] and [UNK]). The bucket of an
n-gram is its hash modulo `buckets`, where a word's hash is 64-bit FNV-1a of its UTF-8
bytes and an n-gram's hash is folded from its words' hashes as h <- h * 116049371 + h_next
(mod 2**64), the way fastText combines word hashes. Hashes are fixed functions of the
text (Python's salted `hash` is not used), so ids agree across processes and runs.

A text's ids are ordered by position: each word's id, then the n-grams that end at that
word (shortest first). Cutting the sequence at max_length therefore keeps a prefix of the
text with all of its features. A text with no words encodes as one [UNK].
"""
from __future__ import annotations

import functools
import json
import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from .encoders import ENCODER_FORMAT, check_max_length, pad_batch

__all__ = ["NgramVocab", "tokenize_words", "fnv1a_64"]

PAD, UNK = "[PAD]", "[UNK]"
_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1
_NGRAM_MULTIPLIER = np.uint64(116049371)
_TOKENIZER_ID = "lantern-words-1"
_HASH_ID = "fnv1a-64"


def tokenize_words(text: str, lowercase: bool = True) -> list[str]:
    """The word tokens of `text` (see the module doc)."""
    text = _HTML_BREAK.sub(" ", text)
    if lowercase:
        text = text.lower()
    return _WORD.findall(text)


@functools.lru_cache(maxsize=1 << 18)
def fnv1a_64(word: str) -> int:
    """64-bit FNV-1a hash of the UTF-8 bytes of `word`."""
    h = _FNV_OFFSET
    for byte in word.encode("utf-8"):
        h = ((h ^ byte) * _FNV_PRIME) & _MASK64
    return h


class NgramVocab:
    """Word and hashed n-gram ids (see the module doc).

    words: the id-ordered vocabulary; [PAD] and [UNK] are put in front (ids 0 and 1) when
        it does not start with them.
    ngrams: the longest n-gram (1: words only, and no buckets are used).
    buckets: the number of hash buckets for n-grams.

    Attributes: `words` (with [PAD], [UNK]), `word_to_id`, `vocab_size`, `pad_id` = 0,
    `unk_id` = 1, `kind` = "ngrams", `has_token_type_ids` = False, `num_special_tokens` = 0.
    """

    kind = "ngrams"
    pad_id = 0
    unk_id = 1
    has_token_type_ids = False
    num_special_tokens = 0

    def __init__(self, words: Sequence[str], ngrams: int = 2, buckets: int = 2 ** 18,
                 lowercase: bool = True):
        words = [str(w) for w in words]
        if words[:2] != [PAD, UNK]:
            words = [PAD, UNK] + words
        if len(set(words)) != len(words):
            dup = [w for w, c in Counter(words).items() if c > 1][:5]
            raise ValueError(f"NgramVocab: duplicate words {dup}")
        if isinstance(ngrams, bool) or not isinstance(ngrams, int) or ngrams < 1:
            raise ValueError(f"NgramVocab: ngrams must be an int >= 1, got {ngrams!r}")
        if ngrams > 1 and (isinstance(buckets, bool) or not isinstance(buckets, int)
                           or buckets < 1):
            raise ValueError(f"NgramVocab: buckets must be an int >= 1, got {buckets!r}")
        self.words = words
        self.word_to_id = {w: i for i, w in enumerate(words)}
        self.ngrams = ngrams
        self.buckets = int(buckets) if ngrams > 1 else 0
        self.lowercase = bool(lowercase)
        self.vocab_size = len(words) + self.buckets

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, max_size: int | None = None,
              ngrams: int = 2, buckets: int = 2 ** 18, lowercase: bool = True) -> "NgramVocab":
        """The vocabulary of `texts`: words seen at least `min_count` times, most frequent
        first (ties alphabetical), at most `max_size` of them ([PAD], [UNK] not counted)."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize_words(text, lowercase))
        kept = sorted((w for w, c in counts.items() if c >= min_count),
                      key=lambda w: (-counts[w], w))
        if max_size is not None:
            kept = kept[:max_size]
        return cls(kept, ngrams=ngrams, buckets=buckets, lowercase=lowercase)

    # ------------------------------------------------------------------ encoding
    def tokenize(self, text: str) -> list[str]:
        return tokenize_words(text, self.lowercase)

    def _ids(self, words: list[str]) -> list[int]:
        """Ids of a word sequence: per position, the word, then the n-grams ending there."""
        n = len(words)
        if n == 0:
            return [self.unk_id]
        word_ids = np.fromiter((self.word_to_id.get(w, self.unk_id) for w in words),
                               dtype=np.int64, count=n)
        if self.ngrams == 1 or n == 1:
            return word_ids.tolist()
        table = np.full((n, self.ngrams), -1, dtype=np.int64)
        table[:, 0] = word_ids
        hashes = np.fromiter((fnv1a_64(w) for w in words), dtype=np.uint64, count=n)
        folded = hashes
        for k in range(2, min(self.ngrams, n) + 1):
            # folded[j]: hash of words j..j+k-1 (uint64 arithmetic wraps mod 2**64)
            folded = folded[:-1] * _NGRAM_MULTIPLIER + hashes[k - 1:]
            table[k - 1:, k - 1] = (folded % np.uint64(self.buckets)).astype(np.int64) \
                + len(self.words)
        flat = table.ravel()
        return flat[flat >= 0].tolist()

    def _count(self, n_words: int) -> int:
        """How many ids a window of n_words words gives: n_words + sum over positions k of
        min(k, ngrams - 1)."""
        w, e = max(1, n_words), self.ngrams - 1
        if w <= e + 1:
            return w + w * (w - 1) // 2
        return w + e * (e + 1) // 2 + e * (w - e - 1)

    def _capacity(self, max_length: int) -> int:
        """The most words whose ids fit in max_length (at least 1)."""
        lo, hi = 1, max(1, max_length)
        while lo < hi:  # _count is increasing: binary search for the last fit
            mid = (lo + hi + 1) // 2
            if self._count(mid) <= max_length:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """The ids of one text, cut after the last word whose features fit max_length."""
        words = self.tokenize(text)
        if max_length is not None:
            check_max_length(max_length, 1, "NgramVocab")
            words = words[:self._capacity(int(max_length))]
        return self._ids(words)

    def encode_batch(self, texts: Sequence[str],
                     max_length: int | None = None) -> dict[str, np.ndarray]:
        """`input_ids` and `attention_mask` int64 (N, L), padded with [PAD] = 0 to the
        batch's longest."""
        check_max_length(max_length, 1, "NgramVocab")
        return pad_batch([self.encode(t, max_length) for t in texts], self.pad_id)

    def encode_windows(self, text: str, max_length: int,
                       stride: int) -> dict[str, np.ndarray]:
        """Windows of one long text as a batch (one row for a short text): each holds the
        most words whose ids fit max_length (only n-grams inside the window count); window
        k starts `k * stride` words in and the last reaches the end. stride must be in
        1..(words per window)."""
        check_max_length(max_length, 1, "NgramVocab")
        capacity = self._capacity(int(max_length))
        if not 1 <= stride <= capacity:
            raise ValueError(f"NgramVocab: stride must be in 1..{capacity} (the words that fit "
                             f"max_length {max_length}), got {stride}")
        words = self.tokenize(text)
        starts = [0]
        while starts[-1] + capacity < len(words):
            starts.append(starts[-1] + stride)
        return pad_batch([self._ids(words[s:s + capacity]) for s in starts], self.pad_id)

    def lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Ids per text (nothing cut), int64: for length bucketing."""
        return np.asarray([self._count(len(self.tokenize(t))) for t in texts], dtype=np.int64)

    # ------------------------------------------------------------------ serialisation
    def to_json(self) -> str:
        """A self-contained JSON description (for checkpoints); see `encoder_from_json`."""
        return json.dumps({"format": ENCODER_FORMAT, "version": 1, "class": "NgramVocab",
                           "kind": self.kind, "tokenizer": _TOKENIZER_ID, "hash": _HASH_ID,
                           "lowercase": self.lowercase, "ngrams": self.ngrams,
                           "buckets": self.buckets, "words": self.words}, ensure_ascii=False)

    @classmethod
    def _from_obj(cls, obj: dict) -> "NgramVocab":
        if obj.get("tokenizer") != _TOKENIZER_ID or obj.get("hash") != _HASH_ID:
            raise ValueError(f"encoder_from_json: NgramVocab with tokenizer "
                             f"{obj.get('tokenizer')!r} and hash {obj.get('hash')!r}; this "
                             f"version reads {_TOKENIZER_ID!r} with {_HASH_ID!r}")
        return cls(obj["words"], ngrams=int(obj["ngrams"]), buckets=int(obj["buckets"]) or 1,
                   lowercase=bool(obj["lowercase"]))

    def __repr__(self) -> str:
        return (f"NgramVocab({len(self.words)} words, ngrams={self.ngrams}, "
                f"buckets={self.buckets}, vocab_size={self.vocab_size})")
