"""What every text encoder provides, and rebuilding one from its JSON.

An encoder turns texts into integer arrays for a model:
`encode_batch(texts, max_length)` gives `input_ids` int64 (N, L), padded with `pad_id` to
the longest text of the batch (L <= max_length), and `attention_mask` int64 (N, L) with 1
for real tokens (plus `token_type_ids`, zeros, for BERT-style tokenizers).
`encode_windows(text, max_length, stride)` gives the same arrays for the overlapping
windows of one long text. `to_json()` is a self-contained description that
`encoder_from_json` turns back into an encoder giving identical encodings, so a checkpoint
can carry its encoder as a string.

Two kinds exist: `HFTokenizer` (a HuggingFace `tokenizers` tokenizer: WordPiece, BPE,
Unigram) and `NgramVocab` (fastText-style words plus hashed n-grams).
"""
from __future__ import annotations

import json
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["TextEncoder", "encoder_from_json", "pad_batch", "ENCODER_FORMAT"]

ENCODER_FORMAT = "lantern-text-encoder"


@runtime_checkable
class TextEncoder(Protocol):
    kind: str
    vocab_size: int
    pad_id: int

    def encode_batch(self, texts: Sequence[str],
                     max_length: int | None = None) -> dict[str, np.ndarray]: ...

    def encode_windows(self, text: str, max_length: int,
                       stride: int) -> dict[str, np.ndarray]: ...

    def lengths(self, texts: Sequence[str]) -> np.ndarray: ...

    def to_json(self) -> str: ...


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int,
              token_type_ids: bool = False) -> dict[str, np.ndarray]:
    """Right-pad id lists to the longest: `input_ids` and `attention_mask` int64 (N, L)
    (and `token_type_ids`, zeros, when asked)."""
    n = len(rows)
    width = max((len(r) for r in rows), default=0)
    ids = np.full((n, width), pad_id, dtype=np.int64)
    mask = np.zeros((n, width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    out = {"input_ids": ids, "attention_mask": mask}
    if token_type_ids:
        out["token_type_ids"] = np.zeros((n, width), dtype=np.int64)
    return out


def check_max_length(max_length: int | None, minimum: int, who: str) -> None:
    if max_length is None:
        return
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)):
        raise TypeError(f"{who}: max_length must be an int or None, got {max_length!r}")
    if max_length < minimum:
        raise ValueError(f"{who}: max_length {max_length} leaves no room for text (needs at "
                         f"least {minimum})")


def encoder_from_json(s: str):
    """The encoder (HFTokenizer or NgramVocab) that `encoder.to_json()` described."""
    try:
        obj = json.loads(s)
    except json.JSONDecodeError as exc:
        raise ValueError(f"encoder_from_json: not JSON ({exc.msg})") from None
    if not isinstance(obj, dict) or obj.get("format") != ENCODER_FORMAT:
        raise ValueError(f"encoder_from_json: not a {ENCODER_FORMAT} description (no "
                         f"'format': {ENCODER_FORMAT!r})")
    cls = obj.get("class")
    if cls == "HFTokenizer":
        from .tokenizer import HFTokenizer
        return HFTokenizer._from_obj(obj)
    if cls == "NgramVocab":
        from .ngrams import NgramVocab
        return NgramVocab._from_obj(obj)
    raise ValueError(f"encoder_from_json: unknown encoder class {cls!r}; expected HFTokenizer "
                     "or NgramVocab")
