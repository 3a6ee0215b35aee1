"""Text data readers, data sets, the generated corpus and open_text_dataset (datasets/text).
Every input file is written to tmp_path; the `realdata` tests read the hub's
rotten-tomatoes source (run with -m realdata)."""
import json
import pickle
import re

import numpy as np
import pytest

from datasets.text import (ACCEPTED, NgramVocab, RottenTomatoes, SyntheticReviews, TextDataset,
                           TextSubset, generate_reviews, open_text_dataset, read_csv,
                           read_fasttext, read_jsonl, read_text_file, read_text_folder, read_tsv)
from datasets.text.dataset import classes_from_labels


def _write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    return msg


# ------------------------------------------------------------------------------ readers
def test_csv_by_name_quoting_blank_lines_and_bom(tmp_path):
    p = _write(tmp_path / "r.csv", '\ufeffid,review,sentiment\n1,"Great, really great",pos\n\n'
                                   '2,"two\nlines ""quoted""",neg\n3,meh,neg\n')
    ds = read_csv(p, "review", "sentiment")
    assert ds.texts == ["Great, really great", 'two\nlines "quoted"', "meh"]
    assert ds.classes == ["neg", "pos"] and ds.class_to_idx == {"neg": 0, "pos": 1}
    assert ds.targets.dtype == np.int64 and ds.targets.tolist() == [1, 0, 0]
    assert ds[1] == ('two\nlines "quoted"', 0) and isinstance(ds[0][1], int) and len(ds) == 3
    assert read_text_file(p, "review", "sentiment").texts == ds.texts


def test_csv_headerless_with_indices_and_integer_labels(tmp_path):
    p = _write(tmp_path / "h.csv", "10,ten\n2,two\n1,one\n02,also two\n")
    with pytest.raises(ValueError, match="written two ways"):
        read_csv(p, 1, 0)
    p = _write(tmp_path / "h.csv", "10,ten\n2,two\n1,one\n")
    ds = read_csv(p, 1, 0)
    assert ds.classes == ["1", "2", "10"]  # numeric order, not "1" < "10" < "2"
    assert ds.targets.tolist() == [2, 1, 0] and ds.texts == ["ten", "two", "one"]
    # header=True with indices skips the first row.
    assert read_csv(p, 1, 0, header=True).texts == ["two", "one"]
    with pytest.raises(ValueError, match=r"h\.csv:1: row has 2 column\(s\), no column index 3"):
        read_csv(p, 3, 0)
    with pytest.raises(ValueError, match="is a name but the file is read without a header"):
        read_csv(p, "text", 0, header=False)


def test_tsv_keeps_quote_characters(tmp_path):
    p = _write(tmp_path / "s.tsv", 'sentence\tlabel\n"quoted" start\t1\nit \'s "fine\t0\n')
    ds = read_tsv(p, "sentence", "label")
    assert ds.texts == ['"quoted" start', 'it \'s "fine'] and ds.targets.tolist() == [1, 0]
    assert read_text_file(p, "sentence").classes == ["0", "1"]


def test_missing_column_lists_columns_found(tmp_path):
    p = _write(tmp_path / "c.csv", "review,sentiment\ngood,pos\n")
    with pytest.raises(ValueError) as ei:
        read_csv(p)
    msg = _one_line(ei)
    assert msg.startswith(str(p)) and "no column 'text'" in msg
    assert "['review', 'sentiment']" in msg
    j = _write(tmp_path / "c.jsonl", '{"review": "good", "label": 1}\n')
    with pytest.raises(ValueError, match=r"c\.jsonl:1: no key 'text'; keys found: "
                                         r"\['label', 'review'\]"):
        read_jsonl(j)


def test_jsonl_labels_and_malformed_lines(tmp_path):
    p = _write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n'
                                     '{"text": "c", "label": 1.0}\n')
    ds = read_jsonl(p)
    assert ds.texts == ["a", "b", "c"] and ds.classes == ["0", "1"]
    assert ds.targets.tolist() == [1, 0, 1]
    b = _write(tmp_path / "b.jsonl",
               '{"text": "x", "label": true}\n{"text": "y", "label": false}\n')
    assert read_jsonl(b).classes == ["false", "true"]
    for body, pattern in [
            ('{"text": "a", "label": "x"}\n{"text": "b", label: 1}\n',
             r"bad\.jsonl:2: malformed JSON"),
            ('["a", 1]\n', r"bad\.jsonl:1: expected a JSON object, got list"),
            ('{"text": 5, "label": "x"}\n', r"bad\.jsonl:1: 'text' must be a string"),
            ('{"text": "a", "label": [1]}\n', r"bad\.jsonl:1: label must be a string or an int"),
            ('{"text": "a", "label": ""}\n', r"bad\.jsonl:1: empty label")]:
        f = _write(tmp_path / "bad.jsonl", body)
        with pytest.raises(ValueError, match=pattern) as ei:
            read_jsonl(f)
        _one_line(ei)


def test_fasttext_takes_first_label(tmp_path):
    p = _write(tmp_path / "ft.txt", "__label__pos __label__funny what a  delight\n\n"
                                    "__label__neg dull\n")
    ds = read_fasttext(p)
    assert ds.texts == ["what a delight", "dull"] and ds.classes == ["neg", "pos"]
    assert ds.targets.tolist() == [1, 0]
    assert read_text_file(p).texts == ds.texts
    bad = _write(tmp_path / "bad.txt", "__label__pos ok\nno label here\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: line does not start with a __label__"):
        read_fasttext(bad)
    lone = _write(tmp_path / "lone.txt", "__label__pos\n")
    with pytest.raises(ValueError, match=r"lone\.txt:1: empty text"):
        read_fasttext(lone)


def test_text_folder(tmp_path):
    root = tmp_path / "imdb"
    _write(root / "pos" / "1.txt", "  loved it<br />really\n")
    _write(root / "pos" / "deep" / "2.TXT", "superb")
    _write(root / "pos" / "notes.md", "ignored")
    _write(root / "pos" / ".hidden.txt", "ignored")
    _write(root / "neg" / "1.txt", "awful")
    (root / ".cache").mkdir()
    ds = read_text_folder(root)
    assert ds.classes == ["neg", "pos"]
    assert ds.texts == ["awful", "loved it<br />really", "superb"]
    assert ds.targets.tolist() == [0, 1, 1]
    _write(root / "neg" / "2.txt", "  \n")
    with pytest.raises(ValueError) as ei:
        read_text_folder(root)
    assert _one_line(ei) == f"{root / 'neg' / '2.txt'}: empty text; pass skip_empty=True to " \
                            "skip empty texts"
    assert read_text_folder(root, skip_empty=True).skipped_empty == 1
    _write(root / "meh" / "1.txt", "so-so")
    with pytest.raises(ValueError, match=r"class folders \['meh'\] are not among the training"):
        read_text_folder(root, classes=["neg", "pos"], skip_empty=True)
    (root / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: class folder has no \.txt files"):
        read_text_folder(root, skip_empty=True)


def test_empty_texts_error_or_skip(tmp_path):
    p = _write(tmp_path / "e.csv", "text,label\ngood,pos\n   ,neg\n,neg\nbad,neg\n")
    with pytest.raises(ValueError) as ei:
        read_csv(p)
    assert _one_line(ei) == f"{p}:3: empty text; pass skip_empty=True to skip empty texts"
    ds = read_csv(p, skip_empty=True)
    assert ds.texts == ["good", "bad"] and ds.skipped_empty == 2
    only = _write(tmp_path / "only.csv", "text,label\n ,pos\n")
    with pytest.raises(ValueError, match=r"only\.csv: no labelled texts \(1 empty skipped\)"):
        read_csv(only, skip_empty=True)
    nolabel = _write(tmp_path / "nl.csv", "text,label\ngood,\n")
    with pytest.raises(ValueError, match=r"nl\.csv:2: empty label"):
        read_csv(nolabel, skip_empty=True)


def test_unknown_label_with_training_classes(tmp_path):
    p = _write(tmp_path / "test.csv", "text,label\nfine,pos\nhmm,neutral\n")
    with pytest.raises(ValueError) as ei:
        read_csv(p, classes=["neg", "pos"])
    assert _one_line(ei) == (f"{p}:3: label 'neutral' is not one of the training classes "
                             "['neg', 'pos']")
    ds = read_csv(_write(tmp_path / "ok.csv", "text,label\nfine,pos\n"), classes=["neg", "pos"])
    assert ds.classes == ["neg", "pos"] and ds.targets.tolist() == [1]  # a class may be absent
    ft = _write(tmp_path / "t.txt", "__label__2 x\n__label__3 y\n")
    with pytest.raises(ValueError, match=r"t\.txt:2: label '3' is not one of the training"):
        read_fasttext(ft, classes=["1", "2"])
    # Integer labels compare by value.
    assert read_fasttext(_write(tmp_path / "z.txt", "__label__02 x\n"),
                         classes=["1", "2"]).targets.tolist() == [1]


def test_latin1_error_and_encoding_option(tmp_path):
    body = "text,label\nfine,pos\nun film très réussi,pos\n"
    p = _write(tmp_path / "l1.csv", body, encoding="latin-1")
    offset = body.encode("latin-1").index("è".encode("latin-1"))
    for read in (read_csv, lambda f: open_text_dataset(f, split="all")):
        with pytest.raises(ValueError) as ei:
            read(p)
        assert _one_line(ei) == (f"{p}:3: byte 0xe8 at offset {offset} is not valid utf-8; if "
                                 "the file is Latin-1, pass --encoding latin-1 "
                                 "(encoding='latin-1')")
    assert read_csv(p, encoding="latin-1").texts[1] == "un film très réussi"
    assert open_text_dataset(p, split="all", encoding="latin-1").texts[1] == \
        "un film très réussi"
    doc = _write(tmp_path / "f" / "pos" / "a.txt", "\n\nça", encoding="latin-1")
    with pytest.raises(ValueError, match=re.escape(f"{doc}:3: byte 0xe7 at offset 2")):
        read_text_folder(tmp_path / "f")
    assert read_text_folder(tmp_path / "f", encoding="latin-1").texts == ["ça"]
    with pytest.raises(ValueError, match="unknown encoding 'nope'"):
        read_csv(p, encoding="nope")


def test_read_text_file_rejects_other_suffixes(tmp_path):
    p = _write(tmp_path / "x.parquet", "?")
    with pytest.raises(ValueError, match=r"x\.parquet: unsupported text file type '\.parquet'"):
        read_text_file(p)
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: no such file"):
        read_csv(tmp_path / "nope.csv")


# ------------------------------------------------------------------------------ data sets
def test_text_dataset_subset_and_pickling():
    ds = TextDataset.from_labels(["a", "b", "c", "d"], ["pos", "neg", "pos", "mid"])
    assert ds.classes == ["mid", "neg", "pos"] and ds.targets.tolist() == [2, 1, 2, 0]
    again = pickle.loads(pickle.dumps(ds))
    assert again.texts == ds.texts and np.array_equal(again.targets, ds.targets)
    sub = TextSubset(ds, [3, 0])
    assert sub.texts == ["d", "a"] and sub.targets.tolist() == [0, 2] and sub[1] == ("a", 2)
    assert sub.classes == ds.classes and len(sub) == 2
    re_ = ds.with_classes(["pos", "neg", "mid"])
    assert [re_.classes[t] for t in re_.targets] == [ds.classes[t] for t in ds.targets]
    with pytest.raises(ValueError, match=r"classes \['mid'\] are not among"):
        ds.with_classes(["pos", "neg"])
    with pytest.raises(ValueError, match="targets span"):
        TextDataset(["a"], [3], ["x", "y"])
    with pytest.raises(ValueError, match="label 'mid' is not one of the training classes"):
        TextDataset.from_labels(["a", "b"], ["pos", "mid"], ["neg", "pos"])
    assert classes_from_labels(["b", "a", "b"]) == ["a", "b"]


def _bag(vocab, texts):
    """Sparse bag-of-ids count matrix from an encoder."""
    from scipy.sparse import csr_matrix
    rows, cols = [], []
    for i, t in enumerate(texts):
        ids = vocab.encode(t)
        rows += [i] * len(ids)
        cols += ids
    return csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(texts), vocab.vocab_size))


def test_synthetic_reviews_are_seeded_and_need_bigrams():
    from sklearn.linear_model import LogisticRegression
    a, b = SyntheticReviews(), SyntheticReviews()
    assert a.texts == b.texts and np.array_equal(a.targets, b.targets)
    assert SyntheticReviews(seed=1).texts != a.texts
    assert len(a) == 600 and np.bincount(a.targets).tolist() == [300, 300]
    assert a.classes == ["negative", "positive"] and len(set(a.texts)) > 550
    texts, targets = generate_reviews(5, seed=3)
    assert len(texts) == 10 and texts == generate_reviews(5, seed=3)[0]
    assert sum(" not " in t for t in a.texts) > 100  # negations are common
    train = open_text_dataset("synthetic-reviews", val_fraction=0.0)
    test = open_text_dataset("synthetic-reviews", split="test")
    scores = {}
    for n in (1, 2):
        vocab = NgramVocab.build(train.texts, ngrams=n, buckets=4096)
        clf = LogisticRegression(C=10.0, max_iter=2000).fit(_bag(vocab, train.texts),
                                                           train.targets)
        scores[n] = clf.score(_bag(vocab, test.texts), test.targets)
    assert scores[2] >= 0.9 and scores[1] < 0.8, scores


# ------------------------------------------------------------------------------ opening
def test_open_synthetic_default_split_is_80_10_10():
    parts = {s: open_text_dataset("synthetic-reviews", split=s) for s in ("train", "val", "test")}
    assert {s: len(d) for s, d in parts.items()} == {"train": 480, "val": 60, "test": 60}
    for d in parts.values():
        assert np.bincount(d.targets, minlength=2).tolist() == [len(d) // 2] * 2
        assert d.classes == ["negative", "positive"]
    idx = [set(d.indices.tolist()) for d in parts.values()]
    assert not (idx[0] & idx[1] or idx[0] & idx[2] or idx[1] & idx[2])
    assert len(idx[0] | idx[1] | idx[2]) == 600
    again = open_text_dataset("synthetic-reviews", split="val")
    assert again.indices.tolist() == parts["val"].indices.tolist()
    # The test part does not depend on val_fraction; other seeds give other parts.
    other = open_text_dataset("synthetic-reviews", split="test", val_fraction=0.3)
    assert other.indices.tolist() == parts["test"].indices.tolist()
    assert open_text_dataset("synthetic-reviews", split="test", seed=1).indices.tolist() != \
        parts["test"].indices.tolist()
    assert len(open_text_dataset("synthetic-reviews", split="all")) == 600
    assert len(open_text_dataset("synthetic-reviews", test_fraction=0.5, val_fraction=0.0)) == 300
    swapped = open_text_dataset("synthetic-reviews", split="test", classes=["positive", "negative"])
    assert swapped.classes == ["positive", "negative"]
    assert [swapped.classes[t] for t in swapped.targets] == \
        [parts["test"].classes[t] for t in parts["test"].targets]
    with pytest.raises(ValueError, match="no validation split"):
        open_text_dataset("synthetic-reviews", split="val", val_fraction=0.0)
    with pytest.raises(ValueError, match="split must be one of"):
        open_text_dataset("synthetic-reviews", split="dev")


def test_open_files_and_folders(tmp_path):
    rows = "".join(f'"review {i} {"good" if i % 2 else "bad"}",{"pos" if i % 2 else "neg"}\n'
                   for i in range(40))
    single = _write(tmp_path / "all.csv", "text,label\n" + rows)
    parts = [open_text_dataset(single, split=s) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [32, 4, 4]
    # Folder with train/test files: the test file is read with train's classes.
    folder = tmp_path / "split"
    _write(folder / "train.jsonl", "".join(json.dumps({"t": f"x{i}", "y": ["a", "b"][i % 2]}) + "\n"
                                           for i in range(18)))
    _write(folder / "test.jsonl", '{"t": "q", "y": "b"}\n')
    kw = {"text_column": "t", "label_column": "y"}
    test = open_text_dataset(folder, split="test", **kw)
    assert test.texts == ["q"] and test.classes == ["a", "b"] and test.targets.tolist() == [1]
    train = open_text_dataset(folder, **kw)
    val = open_text_dataset(folder, split="val", **kw)
    assert (len(train), len(val)) == (16, 2)  # 1/9 of 18 held out as val
    assert len(open_text_dataset(folder / "train.jsonl", split="test", **kw)) == 1  # siblings
    with pytest.raises(ValueError, match="has predefined splits"):
        open_text_dataset(folder, split="all", **kw)
    with pytest.raises(ValueError, match="test_fraction does not apply"):
        open_text_dataset(folder, test_fraction=0.2, **kw)
    _write(folder / "test.jsonl", '{"t": "q", "y": "c"}\n')
    with pytest.raises(ValueError, match=r"test\.jsonl:1: label 'c' is not one of the training "
                                         r"classes \['a', 'b'\]"):
        open_text_dataset(folder, split="test", **kw)
    _write(folder / "dev.jsonl", '{"t": "v", "y": "a"}\n')
    assert open_text_dataset(folder, split="val", **kw).texts == ["v"]
    assert len(open_text_dataset(folder, **kw)) == 18  # nothing carved when val exists
    # train/ and test/ class folders (IMDB's layout).
    imdb = tmp_path / "aclImdb"
    for split, n in (("train", 6), ("test", 2)):
        for cls in ("neg", "pos"):
            for i in range(n):
                _write(imdb / split / cls / f"{i}.txt", f"{cls} {split} {i}")
    assert len(open_text_dataset(imdb, split="test")) == 4
    assert len(open_text_dataset(imdb, val_fraction=0.0)) == 12
    # A plain class folder and a fastText file.
    assert open_text_dataset(imdb / "train", split="all").classes == ["neg", "pos"]
    ft = _write(tmp_path / "ft.txt", "".join(f"__label__{i % 3} text {i}\n" for i in range(30)))
    assert np.bincount(open_text_dataset(ft, split="test").targets).tolist() == [1, 1, 1]


def test_open_unknown_spec_lists_accepted(tmp_path):
    with pytest.raises(ValueError) as ei:
        open_text_dataset("imdb-maybe")
    msg = _one_line(ei)
    assert msg.startswith("'imdb-maybe': not a known data set name") and ACCEPTED in msg
    other = _write(tmp_path / "x.xlsx", "?")
    with pytest.raises(ValueError, match=r"not a \.csv/\.tsv/\.jsonl/\.txt file; accepted: "):
        open_text_dataset(other)
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        open_text_dataset("synthetic-reviews", val_fraction=1.0)


# ------------------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_real_rotten_tomatoes_80_10_10():
    full = RottenTomatoes()
    assert len(full) == 12808 and full.classes == ["rotten", "fresh"]
    assert np.bincount(full.targets).tolist() == [5405, 7403]
    parts = {s: open_text_dataset("rotten-tomatoes", split=s) for s in ("train", "val", "test")}
    assert {s: len(d) for s, d in parts.items()} == {"train": 10246, "val": 1281, "test": 1281}
    idx = [set(d.indices.tolist()) for d in parts.values()]
    assert not (idx[0] & idx[1] or idx[0] & idx[2] or idx[1] & idx[2])
    assert len(idx[0] | idx[1] | idx[2]) == 12808
    for d in parts.values():
        fresh = d.targets.sum() / len(d)
        assert abs(fresh - 7403 / 12808) < 1e-3
        assert all(full.texts[i] == t for i, t in zip(d.indices[:50].tolist(), d.texts[:50]))
