"""Turning what a user passes on the command line into an image data set split.

`open_image_dataset(spec, split=...)` accepts:

- a hub name: `digits`, `mnist5k`, `lfw-subset`, or the synthetic `shapes`;
- a folder with one sub-folder per class (ImageFolder), or a folder with `train/` and
  `val/` and/or `test/` sub-folders each laid out that way (their splits are used, and a
  `val/` folder takes precedence over val_fraction; the classes are those of `train/`);
- a `.csv` file of `path,label` rows;
- `mnist:PATH`, `fashion-mnist:PATH` (IDX files), `cifar10:PATH`, `cifar100:PATH`.

Names win over paths: write `./digits` for a local folder called digits.

Sources with a predefined test split (MNIST, CIFAR, train/+test/ folders) keep it. The
others are split by `stratified_split` with `seed`: first the test part (`test_fraction`
of all samples; defaults: mnist5k 1,000 of 5,000, digits and lfw-subset 25 %, others 20 %),
then the validation part (`val_fraction` of the remaining samples). The test part does not
depend on val_fraction, and the parts are disjoint and the same on every run.
"""
from __future__ import annotations

import os
from typing import Callable

from framework.utils.data import Dataset

from ..splits import stratified_split
from .cifar import CIFAR10, CIFAR100
from .decode import ImageLoader
from .embedded import MNIST5k, Digits, LFWFaces
from .folder import CSVImageDataset, ImageFolder, find_classes
from .idx import MNIST, FashionMNIST
from .shapes import Shapes
from .subset import ImageSubset

__all__ = ["open_image_dataset", "ACCEPTED"]

# name -> (constructor, default test fraction)
_HUB = {"digits": (Digits, 0.25), "mnist5k": (MNIST5k, 0.2), "lfw-subset": (LFWFaces, 0.25),
        "shapes": (Shapes, 0.2)}
_PREFIXED = {"mnist": MNIST, "fashion-mnist": FashionMNIST, "cifar10": CIFAR10,
             "cifar100": CIFAR100}
_DEFAULT_TEST_FRACTION = 0.2
_SPLITS = ("train", "val", "test", "all")

ACCEPTED = ("digits, mnist5k, lfw-subset, shapes, a folder with one sub-folder per class (or "
            "with train/ and val/ or test/ sub-folders laid out so), a .csv file of path,label "
            "rows, mnist:PATH, fashion-mnist:PATH, cifar10:PATH or cifar100:PATH")


class _SplitFolder(ImageFolder):
    """One split folder (val/ or test/) numbered with the classes of train/."""

    def __init__(self, root, classes: list[str], **kwargs):
        self._train_classes = list(classes)
        super().__init__(root, allow_empty=True, **kwargs)

    def find_classes(self, directory):
        present, _ = find_classes(directory)
        extra = sorted(set(present) - set(self._train_classes))
        if extra:
            raise ValueError(f"{directory}: class folders {extra} are not in the train/ "
                             f"folder's classes")
        return self._train_classes, {c: i for i, c in enumerate(self._train_classes)}


def _fraction(name: str, value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def _carve(dataset, fraction: float, seed: int):
    """(kept, held-out) index arrays: `fraction` of `dataset` held out, stratified."""
    n = len(dataset)
    held = int(round(fraction * n))
    return stratified_split(dataset.targets, (n - held, held), seed)


def _with_val(train_set, which: str, val_fraction: float, seed: int, transform,
              target_transform, spec: str):
    """`which` ("train" or "val") of a training set, carving val out when asked."""
    if val_fraction == 0.0:
        if which == "val":
            raise ValueError(f"{spec}: has no validation split; pass val_fraction > 0 to "
                             "hold out part of the training data")
        return _retransform(train_set, transform, target_transform)
    keep, val = _carve(train_set, val_fraction, seed)
    return ImageSubset(train_set, keep if which == "train" else val, transform,
                       target_transform)


def _split_whole(dataset, split: str, val_fraction: float, test_fraction: float, seed: int,
                 transform, target_transform, spec: str):
    """A split of a data set with no predefined one: test first, then val from the rest
    ("all": every sample)."""
    if split == "all":
        return ImageSubset(dataset, range(len(dataset)), transform, target_transform)
    if test_fraction == 0.0:
        if split == "test":
            raise ValueError(f"{spec}: test_fraction is 0, so there is no test split")
        rest, test = list(range(len(dataset))), []
    else:
        rest, test = _carve(dataset, test_fraction, seed)
    if split == "test":
        return ImageSubset(dataset, test, transform, target_transform)
    if val_fraction == 0.0:
        if split == "val":
            raise ValueError(f"{spec}: has no validation split; pass val_fraction > 0")
        return ImageSubset(dataset, rest, transform, target_transform)
    rest_set = ImageSubset(dataset, rest)
    keep, val = _carve(rest_set, val_fraction, seed)
    chosen = rest_set.indices[keep if split == "train" else val]
    return ImageSubset(dataset, chosen, transform, target_transform)


def _predefined(make: Callable, split: str, val_fraction: float, test_fraction, seed: int,
                transform, target_transform, spec: str):
    """Sources with train and test parts: make(train: bool) -> data set."""
    if test_fraction is not None:
        raise ValueError(f"{spec}: has a predefined test split; test_fraction does not apply")
    if split == "test":
        return make(False, transform, target_transform)
    return _with_val(make(True, None, None), split, val_fraction, seed, transform,
                     target_transform, spec)


def _split_folders(root: str, split: str, val_fraction: float, test_fraction, seed: int,
                   transform, target_transform, folder_kwargs: dict):
    has_val = os.path.isdir(os.path.join(root, "val"))
    has_test = os.path.isdir(os.path.join(root, "test"))
    train_root = os.path.join(root, "train")
    if test_fraction is not None:
        raise ValueError(f"{root}: has predefined splits (train/ and "
                         f"{'test/' if has_test else 'val/'}); test_fraction does not apply")
    if split == "test" and not has_test:
        raise ValueError(f"{root}: has train/ and val/ but no test/ folder; use split='val'")
    if split == "test" or (split == "val" and has_val):
        classes, _ = find_classes(train_root)  # no need to scan train/ itself
        return _SplitFolder(os.path.join(root, split), classes, transform=transform,
                            target_transform=target_transform, **folder_kwargs)
    train = ImageFolder(train_root, **folder_kwargs)
    if has_val:
        return _retransform(train, transform, target_transform)
    return _with_val(train, split, val_fraction, seed, transform, target_transform, root)


def _has_predefined_splits(spec) -> str:
    """Why `spec` has predefined splits ('' when it has none)."""
    spec = os.fspath(spec)
    prefix, sep, _ = spec.partition(":")
    if sep and prefix.lower() in _PREFIXED:
        return f"{prefix} has predefined train and test parts"
    if os.path.isdir(os.path.join(spec, "train")):
        return "its train/ folder is a predefined split"
    return ""


def _retransform(dataset, transform, target_transform):
    dataset.transform, dataset.target_transform = transform, target_transform
    return dataset


def _unknown(spec: str, why: str) -> ValueError:
    return ValueError(f"{spec!r}: {why}; accepted: {ACCEPTED}")


def _folder_hint(path: str) -> str:
    """What to pass instead, when `path` is laid out as MNIST or CIFAR files."""
    names = set(os.listdir(path))
    idx_dirs = [path] + [os.path.join(path, *sub) for sub in
                         (("raw",), ("MNIST", "raw"), ("FashionMNIST", "raw"))]
    if any("idx3-ubyte" in n for d in idx_dirs if os.path.isdir(d) for n in os.listdir(d)):
        return (f"{path} holds IDX files, not class folders; use mnist:{path} or "
                f"fashion-mnist:{path}")
    if "cifar-10-batches-py" in names or "batches.meta" in names:
        return f"{path} holds CIFAR-10 batches; use cifar10:{path}"
    if "cifar-100-python" in names:
        return f"{path} holds CIFAR-100 batches; use cifar100:{path}"
    return ""


def open_image_dataset(spec: str, *, split: str = "train", val_fraction: float = 0.0,
                       test_fraction: float | None = None, seed: int = 0,
                       transform: Callable | None = None,
                       target_transform: Callable | None = None, skip_bad: bool = False,
                       loader: ImageLoader = "pil") -> Dataset:
    """The `split` ("train", "val", "test" or "all") of the data set `spec` names (see the module
    doc). Every result has `classes`, `class_to_idx`, `targets`, and gives
    `(image (H, W, C) uint8, int)` samples passed through `transform` / `target_transform`.

    val_fraction: share of the non-test samples held out as validation (stratified).
    test_fraction: share of all samples used as test, for sources without a test split
        (None: the source's default).
    skip_bad, loader: for image files (folders, CSV), see `ImageFolder`.
    """
    if split == "all" and (key_is_predefined := _has_predefined_splits(spec)):
        raise ValueError(f"{spec}: {key_is_predefined}; split='all' applies to sources "
                         "without predefined splits, use 'train' or 'test'")
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {', '.join(_SPLITS)}, got {split!r}")
    val_fraction = _fraction("val_fraction", val_fraction)
    if test_fraction is not None:
        test_fraction = _fraction("test_fraction", test_fraction)
    spec = os.fspath(spec)
    key = spec.strip().lower()
    folder_kwargs = {"loader": loader, "skip_bad": skip_bad}

    if key in _HUB:
        make, default_test = _HUB[key]
        tf = default_test if test_fraction is None else test_fraction
        return _split_whole(make(), split, val_fraction, tf, seed, transform,
                            target_transform, key)

    prefix, sep, rest = spec.partition(":")
    if sep and prefix.lower() in _PREFIXED:
        cls = _PREFIXED[prefix.lower()]
        path = os.path.expanduser(rest)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"{spec}: {path} is not a folder")

        def make(train, t, tt):
            return cls(path, train=train, transform=t, target_transform=tt)
        return _predefined(make, split, val_fraction, test_fraction, seed, transform,
                           target_transform, spec)

    path = os.path.expanduser(spec)
    if os.path.isdir(path):
        if os.path.isdir(os.path.join(path, "train")) and (
                os.path.isdir(os.path.join(path, "val"))
                or os.path.isdir(os.path.join(path, "test"))):
            return _split_folders(path, split, val_fraction, test_fraction, seed, transform,
                                  target_transform, folder_kwargs)
        hint = _folder_hint(path)
        if hint:
            raise ValueError(hint)
        dataset = ImageFolder(path, **folder_kwargs)
    elif os.path.isfile(path) and path.lower().endswith(".csv"):
        dataset = CSVImageDataset(path, **folder_kwargs)
    elif os.path.isfile(path):
        raise _unknown(spec, "a file that is not a .csv list")
    else:
        raise _unknown(spec, "not a known data set name and no such file or folder")
    tf = _DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
    return _split_whole(dataset, split, val_fraction, tf, seed, transform, target_transform,
                        spec)
