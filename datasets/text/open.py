"""Turning what a user passes on the command line into a text data set split.

`open_text_dataset(spec, split=...)` accepts:

- a hub name: `rotten-tomatoes` (classes rotten, fresh), `vader-movies` and
  `vader-amazon` (people-rated movie- and product-review sentences not in
  rotten-tomatoes, for robustness checks; classes rotten, fresh) or the generated
  `synthetic-reviews` (classes negative, positive);
- a file: `.csv`, `.tsv`, `.jsonl` (text and label columns by name, or by index for
  headerless CSV/TSV) or `.txt` in fastText's `__label__<class> text` format;
- a folder with one sub-folder of `.txt` documents per class;
- a folder with predefined splits: `train.<ext>` plus `test.<ext>` and/or `val.<ext>`
  (also `valid`, `validation`, `dev`) files, or `train/` plus `test/` and/or `val/`
  sub-folders laid out by class. A file named `train.<ext>` with such siblings is read the
  same way. The classes are those of the train part (or `classes`), and a val/test label
  outside them is an error naming its line.

Names win over paths: write `./rotten-tomatoes` for a local folder of that name.

Sources without a test part are split by `stratified_split` with `seed`: first the test
part (`test_fraction` of all samples, default 10 %), then the validation part
(`val_fraction` of the rest, default 1/9). The defaults give train/val/test = 80/10/10
(rotten-tomatoes: 10,246 / 1,281 / 1,281 of 12,808). The test part does not depend on
val_fraction; the parts are disjoint, stratified and the same on every run (and for any
numbering of the classes: they are stratified by class name). With a
predefined test part, validation is `val_fraction` of the train part unless a val part
exists.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from framework.utils.data import Dataset

from ..splits import stratified_split
from .corpus import SyntheticReviews
from .dataset import TextSubset
from .embedded import RottenTomatoes, VaderAmazon, VaderMovies
from .readers import TEXT_FILE_SUFFIXES, read_text_file, read_text_folder

__all__ = ["open_text_dataset", "ACCEPTED", "DEFAULT_VAL_FRACTION", "DEFAULT_TEST_FRACTION"]

DEFAULT_VAL_FRACTION = 1.0 / 9.0
DEFAULT_TEST_FRACTION = 0.1
_HUB = {"rotten-tomatoes": RottenTomatoes, "synthetic-reviews": SyntheticReviews,
        "vader-movies": VaderMovies, "vader-amazon": VaderAmazon}
_SPLITS = ("train", "val", "test", "all")
_VAL_NAMES = ("val", "valid", "validation", "dev")

ACCEPTED = ("rotten-tomatoes, synthetic-reviews, vader-movies, vader-amazon, a .csv, .tsv or .jsonl file, a .txt file of "
            "fastText '__label__<class> text' lines, a folder with one sub-folder of .txt "
            "files per class, or a folder with train and test (or val) files or class "
            "folders")


def _fraction(name: str, value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def _carve(dataset, fraction: float, seed: int):
    """(kept, held-out) positions: `fraction` of the samples held out, stratified. Classes
    enter by name (their rank in sorted order), so the parts do not depend on how
    `classes` numbers them."""
    rank = {c: r for r, c in enumerate(sorted(dataset.classes))}
    by_name = np.asarray([rank[c] for c in dataset.classes], dtype=np.int64)[dataset.targets]
    n = len(by_name)
    held = int(round(fraction * n))
    return stratified_split(by_name, (n - held, held), seed)


def _split_whole(dataset, split: str, val_fraction: float, test_fraction: float, seed: int,
                 spec: str) -> Dataset:
    """A split of a data set with no predefined one: test first, then val from the rest."""
    if split == "all":
        return dataset
    if test_fraction == 0.0:
        if split == "test":
            raise ValueError(f"{spec}: test_fraction is 0, so there is no test split")
        rest, test = list(range(len(dataset))), []
    else:
        rest, test = _carve(dataset, test_fraction, seed)
    if split == "test":
        return TextSubset(dataset, test)
    if val_fraction == 0.0:
        if split == "val":
            raise ValueError(f"{spec}: has no validation split; pass val_fraction > 0")
        return TextSubset(dataset, rest)
    rest = TextSubset(dataset, rest)
    keep, val = _carve(rest, val_fraction, seed)
    return TextSubset(dataset, rest.indices[keep if split == "train" else val])


def _with_val(train, split: str, val_fraction: float, seed: int, spec: str) -> Dataset:
    """`split` ("train" or "val") of a predefined training part with no val part."""
    if val_fraction == 0.0:
        if split == "val":
            raise ValueError(f"{spec}: has no validation part; pass val_fraction > 0 to hold "
                             "out part of the training data")
        return train
    keep, val = _carve(train, val_fraction, seed)
    return TextSubset(train, keep if split == "train" else val)


def _split_files(folder: str) -> dict[str, str]:
    """{"train"/"val"/"test": path} of the split files in `folder` (may be empty)."""
    found: dict[str, list[str]] = {}
    for name in sorted(os.listdir(folder)):
        stem, suffix = os.path.splitext(name)
        path = os.path.join(folder, name)
        if suffix.lower() not in TEXT_FILE_SUFFIXES or not os.path.isfile(path):
            continue
        stem = stem.lower()
        role = "val" if stem in _VAL_NAMES else stem if stem in ("train", "test") else None
        if role:
            found.setdefault(role, []).append(path)
    for role, paths in found.items():
        if len(paths) > 1:
            names = [os.path.basename(p) for p in paths]
            raise ValueError(f"{folder}: several {role} files {names}; keep one")
    return {role: paths[0] for role, paths in found.items()}


def _split_folders(folder: str) -> dict[str, str]:
    """{"train"/"val"/"test": path} of split sub-folders of `folder` (may be empty)."""
    out = {}
    for role, names in (("train", ("train",)), ("val", _VAL_NAMES), ("test", ("test",))):
        hits = [os.path.join(folder, n) for n in names if os.path.isdir(os.path.join(folder, n))]
        if len(hits) > 1:
            raise ValueError(f"{folder}: several {role} folders {hits}; keep one")
        if hits:
            out[role] = hits[0]
    return out


def _folder_classes(folder: str) -> list[str]:
    """The class names of a class-folder layout, without reading its documents."""
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _predefined(parts: dict[str, str], read, split: str, val_fraction: float,
                test_fraction, seed: int, classes, spec: str, classes_of=None) -> Dataset:
    """Splits from predefined parts; `read(path, classes)` reads one part, `classes_of(path)`
    lists the classes of the train part (default: by reading it)."""
    if test_fraction is not None:
        raise ValueError(f"{spec}: has predefined splits ({', '.join(sorted(parts))}); "
                         "test_fraction does not apply")
    if split == "all":
        raise ValueError(f"{spec}: has predefined splits ({', '.join(sorted(parts))}); use "
                         "split='train', 'val' or 'test'")
    if split == "test" and "test" not in parts:
        raise ValueError(f"{spec}: has train and val parts but no test part; use split='val'")
    if split in ("val", "test") and split in parts:
        if classes is None:
            classes = (classes_of(parts["train"]) if classes_of
                       else read(parts["train"], None).classes)
        return read(parts[split], classes)
    train = read(parts["train"], classes)
    if "val" in parts:  # a predefined val part: the train part stays whole
        return train
    return _with_val(train, split, val_fraction, seed, spec)


def open_text_dataset(spec, *, split: str = "train",
                      val_fraction: float = DEFAULT_VAL_FRACTION,
                      test_fraction: float | None = None, seed: int = 0,
                      text_column: str | int = "text", label_column: str | int = "label",
                      encoding: str = "utf-8", classes: Sequence[str] | None = None,
                      skip_empty: bool = False) -> Dataset:
    """The `split` ("train", "val", "test" or "all") of the text data set `spec` names (see
    the module doc). Every result gives `(text: str, target: int)` samples and has `texts`,
    `targets` (int64), `classes` and `class_to_idx`.

    val_fraction: share of the non-test samples held out as validation (default 1/9, which
        with the default test part gives 80/10/10).
    test_fraction: share of all samples used as test, for sources without a test part
        (None: 10 %).
    text_column, label_column, encoding, skip_empty: for files (see `datasets.text.readers`).
    classes: number the classes this way (e.g. the list a model was trained with); a label
        outside it is an error.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {', '.join(_SPLITS)}, got {split!r}")
    val_fraction = _fraction("val_fraction", val_fraction)
    if test_fraction is not None:
        test_fraction = _fraction("test_fraction", test_fraction)
    spec = os.fspath(spec)
    key = spec.strip().lower()
    if classes is not None:
        classes = [str(c) for c in classes]
    tf = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction

    if key in _HUB:
        dataset = _HUB[key]()
        if classes is not None:
            dataset = dataset.with_classes(classes)
        return _split_whole(dataset, split, val_fraction, tf, seed, key)

    file_kwargs = {"text_column": text_column, "label_column": label_column,
                   "encoding": encoding, "skip_empty": skip_empty}

    def read_file(path, cls):
        return read_text_file(path, classes=cls, **file_kwargs)

    def read_folder(path, cls):
        return read_text_folder(path, encoding=encoding, classes=cls, skip_empty=skip_empty)

    path = os.path.expanduser(spec)
    if os.path.isfile(path) and os.path.splitext(os.path.basename(path))[0].lower() == "train":
        parts = _split_files(os.path.dirname(os.path.abspath(path)))
        if "train" in parts and os.path.samefile(parts["train"], path) and len(parts) > 1:
            return _predefined(parts, read_file, split, val_fraction, test_fraction, seed,
                               classes, path)
    if os.path.isdir(path):
        parts = _split_files(path)
        if "train" in parts and len(parts) > 1:
            return _predefined(parts, read_file, split, val_fraction, test_fraction, seed,
                               classes, path)
        folders = _split_folders(path)
        if "train" in folders and len(folders) > 1:
            return _predefined(folders, read_folder, split, val_fraction, test_fraction, seed,
                               classes, path, classes_of=_folder_classes)
        if "train" in parts:  # a folder holding only train.<ext>: split it like one file
            dataset = read_file(parts["train"], classes)
        else:
            dataset = read_folder(path, classes)
    elif os.path.isfile(path):
        if os.path.splitext(path)[1].lower() not in TEXT_FILE_SUFFIXES:
            raise ValueError(f"{spec!r}: not a {'/'.join(TEXT_FILE_SUFFIXES)} file; accepted: "
                             f"{ACCEPTED}")
        dataset = read_file(path, classes)
    else:
        raise ValueError(f"{spec!r}: not a known data set name and no such file or folder; "
                         f"accepted: {ACCEPTED}")
    return _split_whole(dataset, split, val_fraction, tf, seed, spec)
