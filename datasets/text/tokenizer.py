"""`HFTokenizer`: a HuggingFace `tokenizers.Tokenizer` (WordPiece, BPE or Unigram) as a
Lantern text encoder (see `encoders`).

A pretrained `tokenizer.json` may carry its own padding and truncation (all-MiniLM-L6-v2's
pads every input to 128 tokens and cuts at 128). Both are switched off when the tokenizer
is wrapped; `encode_batch` pads to the longest text of each batch and truncates to its own
`max_length`, cutting the text and keeping the closing special token ([SEP]).
"""
from __future__ import annotations

import json
import os
from typing import Iterable, Mapping, Sequence

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, \
    trainers

from .encoders import ENCODER_FORMAT, check_max_length, pad_batch

__all__ = ["HFTokenizer", "TOKENIZER_KINDS"]

TOKENIZER_KINDS = ("wordpiece", "bpe", "unigram")
_ROLES = ("pad", "unk", "cls", "sep", "mask")
_BERT_SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]",
                  "mask": "[MASK]"}
_ROBERTA_SPECIALS = {"pad": "<pad>", "unk": "<unk>", "cls": "<s>", "sep": "</s>",
                     "mask": "<mask>"}
_PAD_CANDIDATES = ("[PAD]", "<pad>")


def _bert_pipeline(tok: Tokenizer, lowercase: bool) -> None:
    """BERT's normaliser (clean-up, accents stripped when lowercasing), whitespace and
    punctuation splitting, `[CLS] $A [SEP]` framing and the WordPiece decoder."""
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=None, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")


def _frame(tok: Tokenizer, cls: str, sep: str) -> None:
    """Post-processor wrapping one text as `cls $A sep` (pairs: `cls $A sep $B sep`)."""
    ids = {t: tok.token_to_id(t) for t in (cls, sep)}
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, ids[cls]), (sep, ids[sep])])


class HFTokenizer:
    """A `tokenizers.Tokenizer` as a text encoder (takes ownership: its padding and
    truncation are switched off).

    pad_token: the padding token; default: the tokenizer's own padding token if it has one,
        else "[PAD]" or "<pad>" from its vocabulary.

    Attributes: `tokenizer` (the wrapped `tokenizers.Tokenizer`), `kind` (the model type:
    "wordpiece", "bpe", "unigram" or "wordlevel"), `vocab_size`, `pad_id`, `pad_token`,
    `has_token_type_ids` (True for BERT-style vocabularies with [CLS] and [SEP]: then
    `token_type_ids` zeros come with each encoding), `num_special_tokens` (added around each
    text).
    """

    def __init__(self, tokenizer: Tokenizer, pad_token: str | None = None, *,
                 source: str = "tokenizer"):
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"HFTokenizer wraps a tokenizers.Tokenizer, got "
                            f"{type(tokenizer).__name__}")
        if pad_token is None and tokenizer.padding is not None:
            pad_token = tokenizer.padding.get("pad_token")
        if pad_token is None:
            pad_token = next((t for t in _PAD_CANDIDATES
                              if tokenizer.token_to_id(t) is not None), None)
            if pad_token is None:
                raise ValueError(f"{source}: no padding token ([PAD] or <pad>) in the "
                                 "vocabulary; pass pad_token=")
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ValueError(f"{source}: padding token {pad_token!r} is not in the vocabulary")
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self.tokenizer = tokenizer
        self.pad_token = pad_token
        self.pad_id = int(pad_id)
        self.kind = type(tokenizer.model).__name__.lower()
        self.vocab_size = int(tokenizer.get_vocab_size(with_added_tokens=True))
        self.has_token_type_ids = all(tokenizer.token_to_id(t) is not None
                                      for t in ("[CLS]", "[SEP]"))
        self.num_special_tokens = int(tokenizer.num_special_tokens_to_add(False))
        self._truncation: tuple[int, int] | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def train(cls, texts: Iterable[str], kind: str = "wordpiece", vocab_size: int = 8000,
              min_frequency: int = 2, lowercase: bool = True,
              special_tokens: Mapping[str, str] | None = None) -> "HFTokenizer":
        """Train a tokenizer on `texts`.

        kind: "wordpiece" (BERT: BERT normaliser and pre-tokeniser, `##` continuations,
              specials [PAD] [UNK] [CLS] [SEP] [MASK]); "bpe" (byte-level, as GPT-2/RoBERTa:
              no unknown tokens; <pad> <unk> <s> </s> <mask>); "unigram" (SentencePiece-style
              with NFKC and a "▁" word-start marker; <pad> <unk> <s> </s> <mask>). Each
              text is framed as `cls $A sep` ([CLS] ... [SEP] or <s> ... </s>).
        vocab_size: the largest vocabulary (specials included); small corpora give fewer.
        min_frequency: the fewest occurrences for a merge (WordPiece, BPE; Unigram has no
            such setting and ignores it).
        lowercase: lowercase (and for WordPiece strip accents) before tokenising.
        special_tokens: override the special tokens by role, e.g. {"pad": "<blank>"}; roles:
            pad, unk, cls, sep, mask. They take ids 0-4 in that order (so pad_id = 0).
        """
        if kind not in TOKENIZER_KINDS:
            raise ValueError(f"HFTokenizer.train: kind must be one of {TOKENIZER_KINDS}, got "
                             f"{kind!r}")
        specials = dict(_BERT_SPECIALS if kind == "wordpiece" else _ROBERTA_SPECIALS)
        unknown = set(special_tokens or {}) - set(_ROLES)
        if unknown:
            raise ValueError(f"HFTokenizer.train: unknown special-token roles {sorted(unknown)};"
                             f" roles are {_ROLES}")
        specials.update(special_tokens or {})
        ordered = [specials[r] for r in _ROLES]
        if len(set(ordered)) != len(ordered):
            raise ValueError(f"HFTokenizer.train: special tokens must differ, got {specials}")
        if kind == "wordpiece":
            tok = Tokenizer(models.WordPiece(unk_token=specials["unk"],
                                             max_input_chars_per_word=100))
            _bert_pipeline(tok, lowercase)
            trainer = trainers.WordPieceTrainer(vocab_size=vocab_size,
                                                min_frequency=min_frequency,
                                                special_tokens=ordered, show_progress=False)
        elif kind == "bpe":
            tok = Tokenizer(models.BPE())
            steps = [normalizers.NFC()] + ([normalizers.Lowercase()] if lowercase else [])
            tok.normalizer = normalizers.Sequence(steps)
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
            tok.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                          special_tokens=ordered, show_progress=False,
                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        else:
            tok = Tokenizer(models.Unigram())
            steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
            tok.normalizer = normalizers.Sequence(steps)
            tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁",
                                                         prepend_scheme="always")
            tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
            trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=ordered,
                                              unk_token=specials["unk"], show_progress=False)
        texts = list(texts)
        if not texts:
            raise ValueError("HFTokenizer.train: no texts to train on")
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
        _frame(tok, specials["cls"], specials["sep"])
        return cls(tok, specials["pad"], source=f"trained {kind} tokenizer")

    @classmethod
    def from_file(cls, path, pad_token: str | None = None) -> "HFTokenizer":
        """Load a `tokenizer.json` (HuggingFace tokenizers format); its built-in padding and
        truncation are switched off."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such tokenizer file")
        try:
            tok = Tokenizer.from_file(path)
        except Exception as exc:  # the Rust side raises plain Exception
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"{path}: not a tokenizers JSON file ({first})") from None
        return cls(tok, pad_token, source=path)

    @classmethod
    def from_vocab(cls, path, lowercase: bool = True) -> "HFTokenizer":
        """A BERT WordPiece tokenizer from a `vocab.txt` (one token per line, id = line
        number): BERT's normaliser (lowercasing and accent stripping when `lowercase`),
        pre-tokeniser, `[CLS] $A [SEP]` framing; needs [PAD], [UNK], [CLS] and [SEP]."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().split("\n")
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such vocabulary file") from None
        if lines and lines[-1] == "":
            lines.pop()
        vocab: dict[str, int] = {}
        for i, token in enumerate(lines):
            vocab[token.rstrip("\r")] = i
        missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]") if t not in vocab]
        if missing:
            raise ValueError(f"{path}: not a BERT vocabulary, lacks {missing}")
        tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]",
                                         max_input_chars_per_word=100))
        _bert_pipeline(tok, lowercase)
        tok.add_special_tokens([t for t in _BERT_SPECIALS.values() if t in vocab])
        _frame(tok, "[CLS]", "[SEP]")
        return cls(tok, "[PAD]", source=path)

    # ------------------------------------------------------------------ encoding
    def _set_truncation(self, max_length: int | None, overlap: int = 0) -> None:
        want = None if max_length is None else (int(max_length), int(overlap))
        if want == self._truncation:
            return
        if want is None:
            self.tokenizer.no_truncation()
        else:
            self.tokenizer.enable_truncation(want[0], stride=want[1],
                                             strategy="longest_first", direction="right")
        self._truncation = want

    def encode_batch(self, texts: Sequence[str],
                     max_length: int | None = None) -> dict[str, np.ndarray]:
        """`input_ids`, `attention_mask` (and `token_type_ids` for BERT-style vocabularies),
        int64 (N, L), padded with pad_id to the batch's longest; texts longer than
        max_length tokens are cut, keeping the special tokens around them."""
        check_max_length(max_length, self.num_special_tokens + 1, "HFTokenizer")
        self._set_truncation(max_length)
        encodings = self.tokenizer.encode_batch(list(texts))
        return pad_batch([e.ids for e in encodings], self.pad_id, self.has_token_type_ids)

    def encode_windows(self, text: str, max_length: int,
                       stride: int) -> dict[str, np.ndarray]:
        """The windows of one long text as a batch (one row for a short text): each holds
        up to `max_length - num_special_tokens` text tokens framed by the special tokens;
        window k starts `k * stride` text tokens in, and the last one reaches the end.
        stride must be in 1..max_length - num_special_tokens (consecutive windows share
        max_length - num_special_tokens - stride tokens)."""
        capacity = self._window_capacity(max_length, stride)
        self._set_truncation(max_length, capacity - stride)
        first = self.tokenizer.encode(text)
        rows = [first.ids] + [w.ids for w in first.overflowing]
        return pad_batch(rows, self.pad_id, self.has_token_type_ids)

    def _window_capacity(self, max_length: int, stride: int) -> int:
        check_max_length(max_length, self.num_special_tokens + 1, "HFTokenizer")
        capacity = int(max_length) - self.num_special_tokens
        if not 1 <= stride <= capacity:
            raise ValueError(f"HFTokenizer: stride must be in 1..{capacity} (max_length "
                             f"{max_length} minus {self.num_special_tokens} special tokens), "
                             f"got {stride}")
        return capacity

    def lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens per text (special tokens included, nothing cut), int64: for length
        bucketing."""
        self._set_truncation(None)
        return np.asarray([len(e.ids) for e in self.tokenizer.encode_batch(list(texts))],
                          dtype=np.int64)

    # ------------------------------------------------------------------ serialisation
    def _tokenizer_obj(self) -> dict:
        obj = json.loads(self.tokenizer.to_str())
        obj["truncation"] = None
        obj["padding"] = None
        return obj

    def save(self, path) -> None:
        """Write a `tokenizer.json` that `from_file` (or HuggingFace) loads; it records the
        padding token as batch-longest padding so that the pad token survives."""
        tok = Tokenizer.from_str(json.dumps(self._tokenizer_obj()))
        tok.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token)
        tok.save(os.fspath(path))

    def to_json(self) -> str:
        """A self-contained JSON description (for checkpoints); see `encoder_from_json`."""
        return json.dumps({"format": ENCODER_FORMAT, "version": 1, "class": "HFTokenizer",
                           "kind": self.kind, "pad_token": self.pad_token,
                           "tokenizer": self._tokenizer_obj()}, ensure_ascii=False)

    @classmethod
    def _from_obj(cls, obj: dict) -> "HFTokenizer":
        tok = Tokenizer.from_str(json.dumps(obj["tokenizer"]))
        return cls(tok, obj["pad_token"], source="encoder JSON")

    def __getstate__(self):
        return {"json": self.to_json()}

    def __setstate__(self, state):
        other = self._from_obj(json.loads(state["json"]))
        self.__dict__.update(other.__dict__)

    def __repr__(self) -> str:
        return (f"HFTokenizer(kind={self.kind!r}, vocab_size={self.vocab_size}, "
                f"pad_id={self.pad_id})")
