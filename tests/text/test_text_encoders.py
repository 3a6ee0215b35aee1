"""Text encoders (HFTokenizer on HuggingFace `tokenizers`, NgramVocab) and batching
(TextCollator, BucketBatchSampler) from datasets/text. Tokenizers are trained on the
generated corpus here; the `realdata` tests use all-MiniLM-L6-v2's tokenizer.json and
vocab.txt from the hub (run with -m realdata)."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from tokenizers import Tokenizer

import framework
from datasets.text import (BucketBatchSampler, HFTokenizer, NgramVocab, SyntheticReviews,
                           TextCollator, encoder_from_json, generate_reviews, tokenize_words)
from datasets.text.ngrams import fnv1a_64
from framework.utils.data import DataLoader

TEXTS, TARGETS = generate_reviews(300, seed=0)
LONG = " ".join(TEXTS[:12])
SPECIALS = {"wordpiece": ("[PAD]", "[CLS]", "[SEP]"), "bpe": ("<pad>", "<s>", "</s>"),
            "unigram": ("<pad>", "<s>", "</s>")}


@pytest.fixture(scope="module")
def trained():
    return {kind: HFTokenizer.train(TEXTS, kind=kind, vocab_size=400, min_frequency=2)
            for kind in SPECIALS}


def _same(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype == np.int64
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ------------------------------------------------------------------------------ HFTokenizer
@pytest.mark.parametrize("kind", sorted(SPECIALS))
def test_trained_tokenizer_padding_truncation_and_masks(trained, kind):
    tok = trained[kind]
    pad, cls, sep = (tok.tokenizer.token_to_id(t) for t in SPECIALS[kind])
    assert tok.kind == kind and tok.pad_id == pad == 0 and 50 < tok.vocab_size <= 400
    assert tok.num_special_tokens == 2 and tok.has_token_type_ids == (kind == "wordpiece")
    texts = ["the movie was good.", LONG, "dull!"]
    full = tok.encode_batch(texts)
    lengths = tok.lengths(texts)
    assert full["input_ids"].shape == (3, lengths.max()) == (3, lengths[1])
    np.testing.assert_array_equal(full["attention_mask"].sum(1), lengths)
    for row, mask, n in zip(full["input_ids"], full["attention_mask"], lengths):
        assert mask.tolist() == [1] * n + [0] * (len(mask) - n)
        assert row[0] == cls and row[n - 1] == sep and (row[n:] == pad).all()
    assert ("token_type_ids" in full) == (kind == "wordpiece")
    if kind == "wordpiece":
        assert not full["token_type_ids"].any()
        assert full["token_type_ids"].shape == full["input_ids"].shape
    cut = tok.encode_batch(texts, max_length=12)
    assert cut["input_ids"].shape == (3, 12)
    long_row = cut["input_ids"][1]
    assert long_row[0] == cls and long_row[11] == sep  # the closing token survives the cut
    np.testing.assert_array_equal(long_row[:11], full["input_ids"][1][:11])
    np.testing.assert_array_equal(cut["input_ids"][0], full["input_ids"][0][:12])
    # A batch of short texts is as wide as its longest member, not max_length.
    short = tok.encode_batch(["good.", "dull"], max_length=64)
    assert short["input_ids"].shape[1] == max(tok.lengths(["good.", "dull"])) < 64
    with pytest.raises(ValueError, match="max_length 2 leaves no room"):
        tok.encode_batch(texts, max_length=2)


@pytest.mark.parametrize("kind", sorted(SPECIALS))
def test_tokenizer_json_round_trip_and_pickle(trained, kind, tmp_path):
    tok = trained[kind]
    tok.encode_batch(TEXTS[:4], max_length=9)  # leaves truncation state behind
    ref = tok.encode_batch(TEXTS[:64], max_length=16)
    text = tok.to_json()
    obj = json.loads(text)
    assert obj["class"] == "HFTokenizer" and obj["tokenizer"]["truncation"] is None
    rebuilt = encoder_from_json(text)
    assert isinstance(rebuilt, HFTokenizer) and rebuilt.pad_id == tok.pad_id
    _same(rebuilt.encode_batch(TEXTS[:64], max_length=16), ref)
    _same(pickle.loads(pickle.dumps(tok)).encode_batch(TEXTS[:64], max_length=16), ref)
    tok.save(tmp_path / "tokenizer.json")
    loaded = HFTokenizer.from_file(tmp_path / "tokenizer.json")
    assert loaded.kind == kind and loaded.pad_token == SPECIALS[kind][0]
    _same(loaded.encode_batch(TEXTS[:64], max_length=16), ref)


def test_custom_special_tokens_and_train_errors():
    tok = HFTokenizer.train(TEXTS, kind="bpe", vocab_size=300,
                            special_tokens={"pad": "<blank>", "cls": "<bos>"})
    assert tok.pad_token == "<blank>" and tok.pad_id == 0
    assert tok.tokenizer.encode("good").tokens[0] == "<bos>"
    assert encoder_from_json(tok.to_json()).pad_token == "<blank>"
    with pytest.raises(ValueError, match="kind must be one of"):
        HFTokenizer.train(TEXTS, kind="sentencepiece")
    with pytest.raises(ValueError, match=r"unknown special-token roles \['bos'\]"):
        HFTokenizer.train(TEXTS, special_tokens={"bos": "<s>"})


def test_fixed_padding_tokenizer_json_is_neutralised(trained, tmp_path):
    """A tokenizer.json that pads everything to 64 and truncates at 64 (as pretrained files
    do): both are switched off and ours apply."""
    raw = Tokenizer.from_str(trained["wordpiece"].tokenizer.to_str())
    raw.enable_padding(length=64, pad_id=0, pad_token="[PAD]")
    raw.enable_truncation(64)
    path = tmp_path / "fixed.json"
    raw.save(str(path))
    saved = json.loads(path.read_text())
    assert saved["padding"]["strategy"] == {"Fixed": 64} and saved["truncation"]
    assert len(raw.encode("good").ids) == 64  # what the file does on its own
    tok = HFTokenizer.from_file(path)
    assert tok.tokenizer.padding is None and tok.tokenizer.truncation is None
    out = tok.encode_batch(["good", "the movie was not good at all"])
    n = tok.lengths(["the movie was not good at all"])[0]
    assert out["input_ids"].shape == (2, n) and n < 64
    long = tok.encode_batch([" ".join(TEXTS[:40])], max_length=100)
    assert long["input_ids"].shape == (1, 100)  # beyond the file's 64
    assert long["input_ids"][0, -1] == tok.tokenizer.token_to_id("[SEP]")
    # from_file errors are one line naming the file.
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: not a tokenizers JSON file") as ei:
        HFTokenizer.from_file(bad)
    assert "\n" not in str(ei.value)
    with pytest.raises(FileNotFoundError, match=r"nope\.json: no such tokenizer file"):
        HFTokenizer.from_file(tmp_path / "nope.json")


def test_from_vocab_matches_trained_wordpiece(trained, tmp_path):
    tok = trained["wordpiece"]
    vocab = sorted(tok.tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    (tmp_path / "vocab.txt").write_text("".join(t + "\n" for t, _ in vocab), encoding="utf-8")
    again = HFTokenizer.from_vocab(tmp_path / "vocab.txt")
    _same(again.encode_batch(TEXTS[:100] + ["Unknown ZEBRA words!"], max_length=20),
          tok.encode_batch(TEXTS[:100] + ["Unknown ZEBRA words!"], max_length=20))
    (tmp_path / "small.txt").write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ValueError, match=r"small\.txt: not a BERT vocabulary, lacks "
                                         r"\['\[CLS\]', '\[SEP\]'\]"):
        HFTokenizer.from_vocab(tmp_path / "small.txt")


def _content(tok, row):
    """The non-special, non-pad ids of one encoded row."""
    specials = {tok.pad_id} | {tok.tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "<s>",
                                                                       "</s>")} - {None}
    return [i for i in row.tolist() if i not in specials]


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_windows_cover_the_text_with_the_stride(trained, kind):
    tok = trained[kind]
    whole = _content(tok, tok.encode_batch([LONG])["input_ids"][0])
    max_length, stride = 16, 5
    cap = max_length - 2
    win = tok.encode_windows(LONG, max_length, stride)
    rows = [_content(tok, r) for r in win["input_ids"]]
    assert win["input_ids"].shape[1] == max_length and len(rows) > 5
    for k, row in enumerate(rows):
        assert row == whole[k * stride:k * stride + cap], k
    assert (len(rows) - 1) * stride + len(rows[-1]) == len(whole)  # the last reaches the end
    assert (len(rows) - 2) * stride + cap < len(whole)  # and no window is superfluous
    np.testing.assert_array_equal(win["attention_mask"].sum(1),
                                  [len(r) + 2 for r in rows])
    short = tok.encode_windows("the plot was dull.", max_length, stride)
    _same(short, tok.encode_batch(["the plot was dull."]))
    with pytest.raises(ValueError, match=r"stride must be in 1\.\.14"):
        tok.encode_windows(LONG, max_length, 15)


# ------------------------------------------------------------------------------ NgramVocab
def test_word_tokenizer():
    assert tokenize_words("It isn't GOOD,<br />really!! The director's cut (2004)...") == \
        ["it", "isn't", "good", ",", "really", "!", "!", "the", "director's", "cut", "(",
         "2004", ")", ".", ".", "."]
    assert tokenize_words("Café OK", lowercase=False) == ["Café", "OK"]


def test_ngram_vocab_ids_unknowns_and_padding():
    vocab = NgramVocab.build(["good movie", "bad movie", "good good plot", "rare"], min_count=2,
                             ngrams=3, buckets=1000)
    assert vocab.words == ["[PAD]", "[UNK]", "good", "movie"]  # by count, ties alphabetical
    assert vocab.vocab_size == 4 + 1000 and vocab.kind == "ngrams" and vocab.pad_id == 0
    assert NgramVocab.build(["b a a c c c"], max_size=2).words[2:] == ["c", "a"]
    ids = vocab.encode("Good unseen movie")
    # word, then per position the n-grams ending there: good | unseen, bi | movie, bi, tri
    assert len(ids) == 1 + 2 + 3 and ids[0] == 2 and ids[1] == 1 and ids[3] == 3
    assert all(4 <= i < vocab.vocab_size for i in (ids[2], ids[4], ids[5]))
    assert vocab.encode("zebra") == [1] and vocab.encode("") == [1] and vocab.encode("...")[0] == 1
    h = fnv1a_64
    assert h("a") == 0xAF63DC4C8601EC8C and h("") == 0xCBF29CE484222325  # FNV-1a reference
    bigram = (h("unseen") * 116049371 + h("movie")) % 2 ** 64 % 1000 + 4
    assert ids[4] == bigram
    batch = vocab.encode_batch(["good", "good movie good movie"], max_length=8)
    assert batch["input_ids"].dtype == np.int64 and sorted(batch) == ["attention_mask",
                                                                       "input_ids"]
    assert batch["input_ids"].shape == (2, 6)  # 3 words give 1+2+3 = 6 ids, 4 words give 9 > 8
    assert batch["attention_mask"].tolist() == [[1, 0, 0, 0, 0, 0], [1] * 6]
    assert batch["input_ids"][1, :6].tolist() == vocab.encode("good movie good")
    unigram = NgramVocab(["x"], ngrams=1)
    assert unigram.vocab_size == 3 and unigram.encode("x y x") == [2, 1, 2]
    with pytest.raises(ValueError, match="duplicate words"):
        NgramVocab(["x", "x"])


def test_ngram_windows_and_json_round_trip():
    vocab = NgramVocab.build(TEXTS, ngrams=2, buckets=2 ** 12)
    words = vocab.tokenize(LONG)
    win = vocab.encode_windows(LONG, max_length=15, stride=3)  # 8 words -> 8 + 7 = 15 ids
    assert win["input_ids"].shape[1] == 15
    for k, row in enumerate(win["input_ids"]):
        part = words[3 * k:3 * k + 8]
        assert row[:2 * len(part) - 1].tolist() == vocab._ids(part)
    last = len(win["input_ids"]) - 1
    assert 3 * last + 8 >= len(words) > 3 * (last - 1) + 8
    _same(vocab.encode_windows("good.", 15, 3), vocab.encode_batch(["good."]))
    rebuilt = encoder_from_json(vocab.to_json())
    assert isinstance(rebuilt, NgramVocab) and rebuilt.words == vocab.words
    _same(rebuilt.encode_batch(TEXTS[:50], 32), vocab.encode_batch(TEXTS[:50], 32))
    _same(pickle.loads(pickle.dumps(vocab)).encode_batch(TEXTS[:5]), vocab.encode_batch(TEXTS[:5]))
    with pytest.raises(ValueError, match=r"stride must be in 1\.\.8"):
        vocab.encode_windows(LONG, 15, 9)
    with pytest.raises(ValueError, match="not a lantern-text-encoder description"):
        encoder_from_json('{"class": "NgramVocab"}')
    with pytest.raises(ValueError, match="unknown encoder class 'Nope'"):
        encoder_from_json('{"format": "lantern-text-encoder", "class": "Nope"}')


def test_ngram_hashing_is_stable_across_processes():
    vocab = NgramVocab.build(TEXTS[:100], ngrams=3, buckets=2 ** 18)
    here = vocab.encode_batch(TEXTS[:20])["input_ids"].tolist()
    code = ("import sys, json; from datasets.text import encoder_from_json; "
            "from datasets.text.corpus import generate_reviews; "
            "v = encoder_from_json(sys.stdin.read()); "
            "print(json.dumps(v.encode_batch(generate_reviews(300, 0)[0][:20])['input_ids']"
            ".tolist()))")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONHASHSEED="987")  # this process has a random hash seed
    out = subprocess.run([sys.executable, "-c", code], input=vocab.to_json(), text=True,
                         capture_output=True, cwd=root, env=env, timeout=60, check=True)
    assert json.loads(out.stdout) == here


# ------------------------------------------------------------------------------ batching
def test_collator_shapes_and_dtypes(trained):
    batch = [(TEXTS[i], int(TARGETS[i])) for i in range(5)]
    inputs, targets = TextCollator(trained["wordpiece"], max_length=10)(batch)
    assert sorted(inputs) == ["attention_mask", "input_ids", "token_type_ids"]
    for t in inputs.values():
        assert isinstance(t, framework.Tensor) and t.dtype == framework.int64
        assert t.shape[0] == 5 and t.shape[1] <= 10
    assert isinstance(targets, framework.Tensor) and targets.dtype == framework.int64
    assert targets.tolist() == TARGETS[:5].tolist()
    inputs, _ = TextCollator(NgramVocab.build(TEXTS))(batch)
    assert sorted(inputs) == ["attention_mask", "input_ids"]
    with pytest.raises(TypeError, match=r"samples must be \(text: str, target: int\) pairs"):
        TextCollator(trained["bpe"])([(np.zeros(3), 1)])


def _spread(batches, lengths):
    return np.mean([lengths[b].max() - lengths[b].min() for b in batches])


def test_bucket_batch_sampler_properties():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, 1003)
    sampler = BucketBatchSampler(lengths, 16, generator=framework.Generator().manual_seed(3),
                                 bucket_size=160)
    assert sampler.bucket_size == 160 and len(sampler) == 63
    epochs = [list(sampler) for _ in range(2)]
    for batches in epochs:
        assert len(batches) == 63 and sorted(len(b) for b in batches)[0] == 1003 % 16
        assert sorted(i for b in batches for i in b) == list(range(1003))
    assert epochs[0] != epochs[1]  # the generator advances between epochs
    again = BucketBatchSampler(lengths, 16, generator=framework.Generator().manual_seed(3),
                               bucket_size=160)
    assert [list(again) for _ in range(2)] == epochs
    random_batches = [p[i:i + 16] for p in [rng.permutation(1003)] for i in range(0, 1003, 16)]
    assert _spread(epochs[0], lengths) < 0.25 * _spread(random_batches, lengths)
    # Without a generator it follows framework.manual_seed.
    framework.manual_seed(5)
    a = list(BucketBatchSampler(lengths, 16))
    framework.manual_seed(5)
    assert list(BucketBatchSampler(lengths, 16)) == a
    dropped = list(BucketBatchSampler(lengths, 16, drop_last=True))
    assert len(dropped) == 62 == len(BucketBatchSampler(lengths, 16, drop_last=True))
    assert all(len(b) == 16 for b in dropped) and len({i for b in dropped for i in b}) == 992
    ordered = list(BucketBatchSampler(lengths, 16, shuffle=False))
    flat = [i for b in ordered for i in b]
    assert flat == np.argsort(lengths, kind="stable").tolist()
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        BucketBatchSampler(lengths, 0)


def test_dataloader_with_workers_bucketing_and_collator(trained):
    ds = SyntheticReviews(n_per_class=60)
    tok = trained["wordpiece"]
    sampler = BucketBatchSampler(tok.lengths(ds.texts), 8,
                                 generator=framework.Generator().manual_seed(0))
    collate = TextCollator(tok, max_length=24)
    seen = {}
    for workers in (0, 2):
        sampler.generator.manual_seed(0)
        loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=workers)
        got = [(x["input_ids"].numpy().copy(), y.numpy().copy()) for x, y in loader]
        assert len(got) == 15
        assert sum(len(y) for _, y in got) == 120 and sum(int(y.sum()) for _, y in got) == 60
        seen[workers] = got
    for (xa, ya), (xb, yb) in zip(seen[0], seen[2]):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


# ------------------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def minilm():
    import datasets
    return datasets.fetch("minilm-l6")


@pytest.mark.realdata
def test_real_minilm_tokenizer_json_and_vocab(minilm):
    raw = json.loads((minilm / "tokenizer.json").read_text())
    assert raw["padding"]["strategy"] == {"Fixed": 128} and raw["truncation"]["max_length"] == 128
    tok = HFTokenizer.from_file(minilm / "tokenizer.json")
    assert tok.vocab_size == 30522 and tok.pad_id == 0 and tok.kind == "wordpiece"
    out = tok.encode_batch(["This is an example sentence", "Each sentence is converted"])
    assert out["input_ids"].tolist() == [[101, 2023, 2003, 2019, 2742, 6251, 102],
                                         [101, 2169, 6251, 2003, 4991, 102, 0]]
    assert out["attention_mask"].tolist() == [[1] * 7, [1] * 6 + [0]]
    assert out["token_type_ids"].shape == (2, 7) and not out["token_type_ids"].any()
    long = "word " * 300
    cut = tok.encode_batch([long], max_length=200)["input_ids"][0]  # past the file's 128
    assert cut.shape == (200,) and cut[0] == 101 and cut[-1] == 102
    vocab = HFTokenizer.from_vocab(minilm / "vocab.txt")
    sentences = ["This is an example sentence", "Each sentence is converted",
                 "Héllo, WÖRLD!! naïve café [SEP] costs $12,345.67 :)",
                 "unbelievably antidisestablishmentarianism", "日本語のテキスト", "   ",
                 SyntheticReviews().texts[0]]
    _same(vocab.encode_batch(sentences), tok.encode_batch(sentences))
    _same(vocab.encode_batch(sentences, max_length=8), tok.encode_batch(sentences, max_length=8))
    _same(encoder_from_json(tok.to_json()).encode_batch(sentences), tok.encode_batch(sentences))
    win = tok.encode_windows(long, 128, 64)
    assert win["input_ids"].shape == (4, 128) and (win["input_ids"][:, 0] == 101).all()
