"""Readers for labelled text files: CSV, TSV, JSON Lines, fastText's `__label__` lines and
folders with one sub-folder of `.txt` documents per class. Each returns a `TextDataset`.

Shared rules:
- Files are decoded as `encoding` (UTF-8 by default; a UTF-8 byte-order mark is dropped).
  Bytes that do not decode raise a one-line ValueError naming the file, the line and the
  byte offset, suggesting `encoding="latin-1"`.
- An empty or whitespace-only text is an error naming its line, unless `skip_empty=True`:
  then such rows are dropped and counted in `dataset.skipped_empty`. An empty label is
  always an error.
- `classes`: the training set's class list. Given it, the data set is numbered by it and a
  label outside it is an error naming the label and the line; without it the classes are
  the sorted distinct labels (numerically sorted when all labels are integers).
"""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Sequence

from .dataset import TextDataset

__all__ = ["read_csv", "read_tsv", "read_jsonl", "read_fasttext", "read_text_folder",
           "read_text_file", "TEXT_FILE_SUFFIXES"]

Column = str | int
TEXT_FILE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".txt")


def _read_text(path: str, encoding: str) -> str:
    """The whole file decoded, with a clear error for bytes that are not `encoding`."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    try:
        text = data.decode(encoding)
    except LookupError:
        raise ValueError(f"{path}: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{path}:{line}: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                         f"is not valid {encoding}; if the file is Latin-1, pass --encoding "
                         f"latin-1 (encoding='latin-1')") from None
    return text[1:] if text.startswith("\ufeff") else text


class _Rows:
    """Collects (text, label, line) rows with the empty-text and empty-label rules."""

    def __init__(self, path: str, skip_empty: bool):
        self.path, self.skip_empty = path, skip_empty
        self.texts: list[str] = []
        self.labels: list[str] = []
        self.lines: list[int | None] = []
        self.skipped = 0

    def add(self, text: str, label: str, line: int | None, where: str | None = None) -> None:
        at = where or (f"{self.path}:{line}" if line is not None else self.path)
        if not label.strip():
            raise ValueError(f"{at}: empty label")
        if not text.strip():
            if self.skip_empty:
                self.skipped += 1
                return
            raise ValueError(f"{at}: empty text; pass skip_empty=True to skip empty texts")
        self.texts.append(text)
        self.labels.append(label.strip())
        self.lines.append(line)

    def dataset(self, classes: Sequence[str] | None) -> TextDataset:
        if not self.texts:
            extra = f" ({self.skipped} empty skipped)" if self.skipped else ""
            raise ValueError(f"{self.path}: no labelled texts{extra}")
        return TextDataset.from_labels(self.texts, self.labels, classes, source=self.path,
                                       lines=self.lines, skipped_empty=self.skipped)


def _column_index(header: list[str] | None, column: Column, role: str, path: str) -> int:
    if isinstance(column, bool) or not isinstance(column, (str, int)):
        raise TypeError(f"{role} must be a column name or index, got {column!r}")
    if isinstance(column, int):
        if column < 0:
            raise ValueError(f"{path}: {role} index must be >= 0, got {column}")
        return column
    if header is None:
        raise ValueError(f"{path}: {role} {column!r} is a name but the file is read without a "
                         "header row; pass a column index or header=True")
    names = [h.strip() for h in header]
    if column not in names:
        raise ValueError(f"{path}: no column {column!r} ({role}); columns found: {names}")
    return names.index(column)


def read_csv(path, text_column: Column = "text", label_column: Column = "label", *,
             delimiter: str = ",", header: bool | None = None, encoding: str = "utf-8",
             classes: Sequence[str] | None = None, skip_empty: bool = False) -> TextDataset:
    """A CSV file with one text and one label per row (RFC 4180 quoting; quoted cells may span
    lines, and errors name the line where the row ends).

    text_column, label_column: column names, looked up in the header row, or 0-based indices.
    header: whether the first row is a header; default: yes when a column is given by name,
        no when both are indices (a headerless file).
    Blank lines are skipped.
    """
    path = os.fspath(path)
    return _read_delimited(path, text_column, label_column, header, encoding, classes,
                           skip_empty, csv.reader(io.StringIO(_read_text(path, encoding),
                                                              newline=""),
                                                  delimiter=delimiter))


def read_tsv(path, text_column: Column = "text", label_column: Column = "label", *,
             header: bool | None = None, encoding: str = "utf-8",
             classes: Sequence[str] | None = None, skip_empty: bool = False) -> TextDataset:
    """A tab-separated file: one row per line, cells split at tabs, no quoting (quote
    characters are part of the text, as in GLUE's and SST's TSV files). Columns and header
    as in `read_csv`."""
    path = os.fspath(path)
    text = _read_text(path, encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t",
                        quoting=csv.QUOTE_NONE)
    return _read_delimited(path, text_column, label_column, header, encoding, classes,
                           skip_empty, reader)


def _read_delimited(path, text_column, label_column, header, encoding, classes, skip_empty,
                    reader) -> TextDataset:
    if header is None:
        header = isinstance(text_column, str) or isinstance(label_column, str)
    rows = _Rows(path, skip_empty)
    it = iter(reader)
    try:
        names = None
        if header:
            names = next((r for r in it if any(c.strip() for c in r)), None)
            if names is None:
                raise ValueError(f"{path}: empty file (expected a header row)")
        ti = _column_index(names, text_column, "text_column", path)
        li = _column_index(names, label_column, "label_column", path)
        for cells in it:
            if not any(c.strip() for c in cells):
                continue
            line = reader.line_num
            if max(ti, li) >= len(cells):
                raise ValueError(f"{path}:{line}: row has {len(cells)} column(s), no column "
                                 f"index {max(ti, li)}")
            rows.add(cells[ti], cells[li], line)
    except csv.Error as exc:
        raise ValueError(f"{path}:{reader.line_num}: malformed row ({exc})") from None
    return rows.dataset(classes)


def _json_label(value, where: str) -> str:
    """A JSON label as a class name: strings as they are, integers (and integral floats)
    as digits, booleans as "false"/"true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value
    raise ValueError(f"{where}: label must be a string or an integer, got {value!r}")


def read_jsonl(path, text_column: str = "text", label_column: str = "label", *,
               encoding: str = "utf-8", classes: Sequence[str] | None = None,
               skip_empty: bool = False) -> TextDataset:
    """JSON Lines: one JSON object per line with the text under key `text_column` (a string)
    and the label under `label_column` (a string, an integer or a boolean). Blank lines are
    skipped; a line that is not a JSON object is an error naming it."""
    path = os.fspath(path)
    rows = _Rows(path, skip_empty)
    for number, line in enumerate(_read_text(path, encoding).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})"
                             ) from None
        if not isinstance(obj, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        for key in (text_column, label_column):
            if key not in obj:
                raise ValueError(f"{where}: no key {key!r}; keys found: {sorted(obj)}")
        text = obj[text_column]
        if not isinstance(text, str):
            raise ValueError(f"{where}: {text_column!r} must be a string, got "
                             f"{type(text).__name__}")
        rows.add(text, _json_label(obj[label_column], where), number)
    return rows.dataset(classes)


def read_fasttext(path, *, label_prefix: str = "__label__", encoding: str = "utf-8",
                  classes: Sequence[str] | None = None,
                  skip_empty: bool = False) -> TextDataset:
    """fastText's supervised format: `__label__pos some text` per line. A line may carry
    several labels (`__label__a __label__b text`): this single-label reader takes the FIRST
    as the class and drops the others. Blank lines are skipped; a non-blank line that does
    not start with `label_prefix` is an error naming it."""
    path = os.fspath(path)
    rows = _Rows(path, skip_empty)
    for number, line in enumerate(_read_text(path, encoding).splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        if not words[0].startswith(label_prefix):
            raise ValueError(f"{path}:{number}: line does not start with a {label_prefix}"
                             "<class> label")
        label = words[0][len(label_prefix):]
        k = 1
        while k < len(words) and words[k].startswith(label_prefix):
            k += 1
        rows.add(" ".join(words[k:]), label, number)
    return rows.dataset(classes)


def read_text_folder(root, *, extensions: Sequence[str] = (".txt",), encoding: str = "utf-8",
                     classes: Sequence[str] | None = None,
                     skip_empty: bool = False) -> TextDataset:
    """`root/<class>/**/<name>.txt`: one document per file (surrounding whitespace
    stripped), the class from its sub-folder; sub-folders and files sorted, hidden ones
    skipped. With `classes`, a sub-folder not in it is an error, and a class without a
    folder is allowed (e.g. a test folder lacking a class)."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such folder")
    found = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not found:
        raise FileNotFoundError(f"{root}: no class folders (expected one sub-folder of "
                                f"{'/'.join(extensions)} files per class)")
    if classes is not None:
        extra = [c for c in found if c not in set(map(str, classes))]
        if extra:
            raise ValueError(f"{root}: class folders {extra} are not among the training "
                             f"classes {list(classes)}")
    wanted = tuple(e.lower() for e in extensions)
    rows = _Rows(root, skip_empty)
    for cls in found:
        folder = os.path.join(root, cls)
        files = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files += [os.path.join(dirpath, f) for f in sorted(filenames)
                      if not f.startswith(".") and f.lower().endswith(wanted)]
        if not files and classes is None:
            raise FileNotFoundError(f"{folder}: class folder has no {'/'.join(extensions)} "
                                    "files")
        for file in files:
            rows.add(_read_text(file, encoding).strip(), cls, None, where=file)
    return rows.dataset(classes)


def read_text_file(path, text_column: Column = "text", label_column: Column = "label", *,
                   encoding: str = "utf-8", classes: Sequence[str] | None = None,
                   skip_empty: bool = False) -> TextDataset:
    """Read `path` by its suffix: .csv, .tsv, .jsonl, or .txt (fastText `__label__` lines)."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    common = {"encoding": encoding, "classes": classes, "skip_empty": skip_empty}
    if suffix == ".csv":
        return read_csv(path, text_column, label_column, **common)
    if suffix == ".tsv":
        return read_tsv(path, text_column, label_column, **common)
    if suffix == ".jsonl":
        for role, col in (("text_column", text_column), ("label_column", label_column)):
            if not isinstance(col, str):
                raise ValueError(f"{path}: JSON Lines columns are key names; {role} is {col!r}")
        return read_jsonl(path, text_column, label_column, **common)
    if suffix == ".txt":
        return read_fasttext(path, **common)
    raise ValueError(f"{path}: unsupported text file type {suffix or '(no suffix)'!r}; "
                     f"expected one of {', '.join(TEXT_FILE_SUFFIXES)}")
