"""Image data sets made of files on disk: `ImageFolder` (one sub-folder per class, as
torchvision's) and `CSVImageDataset` (a CSV of `path,label` rows).

Only paths are kept, never open files, so the data sets pickle cleanly into DataLoader
workers; images are decoded on access by `read_image` (Pillow or OpenCV). With
`skip_bad=True` every file is decoded once at construction (a full decode: a header check
misses truncated JPEGs) and the ones that fail are dropped and listed in `.skipped`.
"""
from __future__ import annotations

import csv
import os
import re
from typing import Callable, Sequence

from framework.utils.data import Dataset

from .decode import IMG_EXTENSIONS, BadImageError, ImageLoader, has_image_extension, read_image

__all__ = ["find_classes", "make_dataset", "ImageFolder", "CSVImageDataset"]

Sample = tuple[str, int]


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def find_classes(directory) -> tuple[list[str], dict[str, int]]:
    """The class names (the sorted sub-folders of `directory`, hidden ones such as
    .ipynb_checkpoints excluded) and their indices."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory}: no such folder")
    classes = sorted(e.name for e in os.scandir(directory)
                     if e.is_dir() and not _is_hidden(e.name))
    if not classes:
        raise FileNotFoundError(f"{directory}: no class folders (expected one sub-folder of "
                                "images per class)")
    return classes, {c: i for i, c in enumerate(classes)}


def _class_files(folder: str, accept: Callable[[str], bool]) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if not _is_hidden(name) and accept(path):
                found.append(path)
    return found


def make_dataset(directory, class_to_idx: dict[str, int],
                 extensions: Sequence[str] | None = IMG_EXTENSIONS,
                 is_valid_file: Callable[[str], bool] | None = None,
                 allow_empty: bool = False) -> list[Sample]:
    """`(path, class_index)` for every image under `directory/<class>/` (searched
    recursively, sorted; hidden files skipped). A file counts as an image when its name ends
    with one of `extensions` (case-insensitive), or when `is_valid_file(path)` says so.
    A class folder with no images is an error unless allow_empty."""
    directory = os.fspath(directory)
    if (extensions is None) == (is_valid_file is None):
        raise ValueError("make_dataset: pass exactly one of extensions and is_valid_file")
    if is_valid_file is None:
        exts = tuple(extensions)
        accept = lambda p: has_image_extension(p, exts)  # noqa: E731
        wanted = f"with extensions {', '.join(exts)}"
    else:
        accept = is_valid_file
        wanted = "accepted by is_valid_file"
    samples: list[Sample] = []
    for cls, idx in sorted(class_to_idx.items(), key=lambda kv: kv[1]):
        folder = os.path.join(directory, cls)
        files = _class_files(folder, accept) if os.path.isdir(folder) else []
        if not files and not allow_empty:
            raise FileNotFoundError(f"{folder}: class folder has no images {wanted}")
        samples.extend((f, idx) for f in files)
    return samples


def _drop_bad(samples: list[Sample], loader: ImageLoader):
    kept, skipped = [], []
    for path, target in samples:
        try:
            read_image(path, loader)
        except (BadImageError, OSError) as exc:
            reason = exc.reason if isinstance(exc, BadImageError) else str(exc)
            skipped.append((path, reason))
        else:
            kept.append((path, target))
    return kept, skipped


class _ImageFiles(Dataset):
    """Shared behaviour: `samples` of (path, target), decoded by `loader` on access."""

    samples: list[Sample]
    classes: list[str]

    def _finish(self, samples: list[Sample], loader: ImageLoader, transform,
                target_transform, skip_bad: bool) -> None:
        if isinstance(loader, str) and loader not in ("pil", "cv2"):
            raise ValueError(f"unknown image loader {loader!r}; use 'pil' or 'cv2'")
        self.loader = loader
        self.transform = transform
        self.target_transform = target_transform
        self.skipped: list[tuple[str, str]] = []
        if skip_bad:
            samples, self.skipped = _drop_bad(samples, loader)
        self.samples = samples
        self.targets = [t for _, t in samples]

    @property
    def imgs(self) -> list[Sample]:
        """The same list as `samples` (torchvision's older name)."""
        return self.samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index):
        path, target = self.samples[index]
        image = read_image(path, self.loader)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class ImageFolder(_ImageFiles):
    """Images arranged as `root/<class>/**/<file>`: one class per sub-folder, classes sorted
    by name, files sorted; `dataset[i]` is `(image (H, W, C) uint8, class index)`.

    loader: "pil" (default) or "cv2" (same pixels; see `read_image`), or a callable.
    extensions: file name endings counted as images (case-insensitive); or pass
        is_valid_file(path) -> bool instead.
    skip_bad: decode every file now and drop those that fail (listed in `.skipped` as
        (path, reason)); otherwise a bad file raises BadImageError when it is read.
    allow_empty: accept class folders with no images (the class keeps its index).

    Attributes: root, classes, class_to_idx, samples (= imgs), targets, skipped.
    """

    def __init__(self, root, transform: Callable | None = None,
                 target_transform: Callable | None = None, loader: ImageLoader = "pil",
                 extensions: Sequence[str] | None = IMG_EXTENSIONS, skip_bad: bool = False,
                 allow_empty: bool = False,
                 is_valid_file: Callable[[str], bool] | None = None):
        self.root = os.fspath(root)
        if is_valid_file is not None:
            extensions = None
        self.extensions = tuple(extensions) if extensions is not None else None
        self.classes, self.class_to_idx = self.find_classes(self.root)
        samples = self.make_dataset(self.root, self.class_to_idx, self.extensions,
                                    is_valid_file, allow_empty)
        self._finish(samples, loader, transform, target_transform, skip_bad)
        if skip_bad and self.skipped and not allow_empty:
            left = set(self.targets)
            for cls, idx in self.class_to_idx.items():
                if idx not in left:
                    folder = os.path.join(self.root, cls)
                    bad = [r for p, r in self.skipped if p.startswith(folder + os.sep)]
                    raise FileNotFoundError(
                        f"{folder}: class folder has no decodable images ({len(bad)} skipped; "
                        f"first: {bad[0] if bad else '?'})")

    def find_classes(self, directory) -> tuple[list[str], dict[str, int]]:
        """Override to choose the classes differently (as in torchvision)."""
        return find_classes(directory)

    @staticmethod
    def make_dataset(directory, class_to_idx, extensions=IMG_EXTENSIONS, is_valid_file=None,
                     allow_empty=False) -> list[Sample]:
        return make_dataset(directory, class_to_idx, extensions, is_valid_file, allow_empty)

    def __repr__(self) -> str:
        return (f"ImageFolder({self.root!r}, {len(self)} images, {len(self.classes)} classes"
                + (f", {len(self.skipped)} skipped)" if self.skipped else ")"))


_INT_LABEL = re.compile(r"[+-]?\d+")


class CSVImageDataset(_ImageFiles):
    """Images listed in a CSV file of `path,label` rows.

    The first row is taken as a header when its path cell has no image extension and names
    no existing file (e.g. `path,label`). Relative paths are resolved against `root`, or the
    CSV's folder when root is None. Labels are strings or integers; `classes` are the
    distinct labels sorted (numerically when all are integers), and a target is the label's
    position in `classes` (so integer labels 0..K-1 stay themselves). Pass `classes` to
    impose a class list (e.g. the training CSV's); a label outside it is then an error.

    A listed file that does not exist raises FileNotFoundError (naming the CSV line) at
    construction; with skip_bad it is skipped like an undecodable one.
    """

    def __init__(self, csv_path, root=None, transform: Callable | None = None,
                 target_transform: Callable | None = None, loader: ImageLoader = "pil",
                 skip_bad: bool = False, classes: Sequence[str] | None = None):
        self.csv_path = os.fspath(csv_path)
        self.root = os.fspath(root) if root is not None else os.path.dirname(
            os.path.abspath(self.csv_path))
        rows = self._read_rows()
        labels = [label for _, label, _ in rows]
        if classes is None:
            distinct = set(labels)
            if all(_INT_LABEL.fullmatch(x) for x in distinct):
                by_value = {int(x): x for x in distinct}
                if len(by_value) != len(distinct):
                    raise ValueError(f"{self.csv_path}: integer labels written two ways "
                                     f"(e.g. '1' and '01'): {sorted(distinct)}")
                classes = [str(v) for v in sorted(by_value)]
                label_name = {x: str(int(x)) for x in distinct}
            else:
                classes = sorted(distinct)
                label_name = {x: x for x in distinct}
        else:
            classes = [str(c) for c in classes]
            label_name = {x: x for x in set(labels)}
        self.classes = list(classes)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        samples, missing = [], []
        for path, label, line in rows:
            name = label_name[label]
            if name not in self.class_to_idx:
                raise ValueError(f"{self.csv_path}:{line}: label {label!r} is not one of the "
                                 f"given classes {self.classes}")
            if not os.path.isfile(path):
                if not skip_bad:
                    raise FileNotFoundError(f"{self.csv_path}:{line}: {path}: no such image "
                                            "file")
                missing.append((path, "no such file"))
                continue
            samples.append((path, self.class_to_idx[name]))
        self._finish(samples, loader, transform, target_transform, skip_bad)
        self.skipped = missing + self.skipped

    def _resolve(self, cell: str) -> str:
        return cell if os.path.isabs(cell) else os.path.join(self.root, cell)

    def _read_rows(self) -> list[tuple[str, str, int]]:
        if not os.path.isfile(self.csv_path):
            raise FileNotFoundError(f"{self.csv_path}: no such CSV file")
        rows = []
        with open(self.csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            for cells in reader:
                cells = [c.strip() for c in cells]
                if not any(cells):
                    continue
                if len(cells) != 2 or not cells[0] or not cells[1]:
                    raise ValueError(f"{self.csv_path}:{reader.line_num}: expected 2 columns "
                                     f"'path,label', got {cells}")
                rows.append((cells[0], cells[1], reader.line_num))
        if rows:
            first = rows[0][0]
            if not has_image_extension(first) and not os.path.isfile(self._resolve(first)):
                rows = rows[1:]  # a header such as "path,label"
        if not rows:
            raise ValueError(f"{self.csv_path}: no rows (expected lines 'path,label')")
        return [(self._resolve(p), label, line) for p, label, line in rows]

    def __repr__(self) -> str:
        return (f"CSVImageDataset({self.csv_path!r}, {len(self)} images, "
                f"{len(self.classes)} classes"
                + (f", {len(self.skipped)} skipped)" if self.skipped else ")"))
