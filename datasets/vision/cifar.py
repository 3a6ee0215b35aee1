"""CIFAR-10 and CIFAR-100 from their "python version" batch files (Krizhevsky 2009).

The files are pickles; they are read with an unpickler that can build only what they hold
(dicts, lists, strings, numbers and NumPy arrays): the only globals it resolves are NumPy's
array/scalar/dtype reconstruction functions and `_codecs.encode` restricted to latin-1
(which protocol-2 pickles use for bytes). Any other global, e.g. `os.system`, is refused
before anything runs. Nothing is downloaded: `root` is the folder holding
`cifar-10-batches-py/` (or `cifar-100-python/`), or that folder itself.
"""
from __future__ import annotations

import codecs
import io
import os
import pickle
from pathlib import Path
from typing import Callable

import numpy as np

from .arrays import ArrayImageDataset

__all__ = ["read_cifar_batch", "CIFAR10", "CIFAR100"]


class _Refused(pickle.UnpicklingError):
    """The pickle asked for something a data file must not contain."""


def _latin1_encode(text, encoding="latin1", errors="strict"):
    # Protocol-2 pickles store bytes as _codecs.encode(str, "latin1"); other codecs (zlib,
    # base64, ...) have no business in a data file.
    if codecs.lookup(encoding).name != "iso8859-1" or not isinstance(text, str):
        raise _Refused(f"refusing _codecs.encode with codec {encoding!r}: it is not allowed "
                       "in a data file")
    return codecs.encode(text, "latin1", errors)


_sample = np.zeros(1, np.uint8)
_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}
# Whatever module path NumPy moves them to, these are the reconstruction functions that
# arrays and scalars pickle themselves with (older files name numpy.core.*, newer numpy._core.*).
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _sample.__reduce__()[0]
    _ALLOWED[(_mod, "scalar")] = np.uint8(0).__reduce__()[0]
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_mod, "_frombuffer")] = _sample.__reduce_ex__(5)[0]
del _sample, _mod


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def __init__(self, fh):
        super().__init__(fh, encoding="latin1")

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"refusing to unpickle {module}.{name}: a CIFAR batch holds only "
                           "NumPy arrays, lists, strings and numbers (is this file really a "
                           "CIFAR batch?)") from None

    def persistent_load(self, pid):
        raise _Refused("refusing a persistent id in the pickle")


def _text(x) -> str:
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)


def read_cifar_batch(path) -> dict:
    """The dict in a CIFAR python batch/meta file, keys as str (b'data' -> 'data'),
    read with the restricted unpickler described in the module doc."""
    path = os.fspath(path)
    raw = Path(path).read_bytes()
    try:
        obj = _ArraysOnlyUnpickler(io.BytesIO(raw)).load()
    except _Refused as exc:
        raise pickle.UnpicklingError(f"{path}: {exc}") from None
    except Exception as exc:  # EOFError, ValueError, TypeError from a corrupt stream
        raise pickle.UnpicklingError(f"{path}: corrupt or truncated CIFAR pickle "
                                     f"({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, expected a dict")
    return {_text(k): v for k, v in obj.items()}


def _images(batch: dict, path: str) -> np.ndarray:
    data = batch.get("data")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        desc = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
                else type(data).__name__)
        raise ValueError(f"{path}: 'data' is {desc}; expected uint8 (N, 3072)")
    # Each row is 1024 red, then 1024 green, then 1024 blue values of a 32x32 image.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _labels(batch: dict, key: str, n: int, path: str) -> np.ndarray:
    if key not in batch:
        raise ValueError(f"{path}: no {key!r} entry (has {sorted(batch)})")
    labels = np.asarray(batch[key])
    if labels.shape != (n,) or (n and labels.dtype.kind not in "iu"):
        raise ValueError(f"{path}: {key!r} must be {n} integers, got shape {labels.shape} "
                         f"dtype {labels.dtype}")
    return labels.astype(np.int64)


def _names(meta: dict, key: str, path: str) -> list[str]:
    names = meta.get(key)
    if not isinstance(names, (list, tuple)) or not names:
        raise ValueError(f"{path}: no {key!r} list in the meta file")
    return [_text(n) for n in names]


class _CIFAR(ArrayImageDataset):
    _base: str
    _train: list[str]
    _test: list[str]
    _meta: str

    def _folder(self) -> str:
        sub = os.path.join(self.root, self._base)
        if os.path.isdir(sub):
            return sub
        if os.path.isfile(os.path.join(self.root, self._meta)):
            return self.root
        files = ", ".join(self._train + self._test + [self._meta])
        raise FileNotFoundError(f"{type(self).__name__}: {sub} not found; extract the python "
                                f"version of the data set there ({files}); nothing is "
                                "downloaded")

    def _read(self, label_key: str, names_key: str, train: bool,
              transform, target_transform) -> None:
        folder = self._folder()
        images, labels = [], []
        for name in (self._train if train else self._test):
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{type(self).__name__}: {path} is missing")
            batch = read_cifar_batch(path)
            images.append(_images(batch, path))
            labels.append(_labels(batch, label_key, len(images[-1]), path))
        meta_path = os.path.join(folder, self._meta)
        if not os.path.isfile(meta_path):
            raise FileNotFoundError(f"{type(self).__name__}: {meta_path} is missing")
        classes = _names(read_cifar_batch(meta_path), names_key, meta_path)
        super().__init__(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels),
                         classes, transform, target_transform)


class CIFAR10(_CIFAR):
    """CIFAR-10 (torchvision's `CIFAR10`): 50,000 training or 10,000 test images (32, 32, 3)
    uint8 in 10 classes named by `batches.meta`."""

    _base = "cifar-10-batches-py"
    _train = [f"data_batch_{i}" for i in range(1, 6)]
    _test = ["test_batch"]
    _meta = "batches.meta"

    def __init__(self, root, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        self.root = os.fspath(root)
        self.train = train
        self._read("labels", "label_names", train, transform, target_transform)


class CIFAR100(_CIFAR):
    """CIFAR-100 (torchvision's `CIFAR100`): 50,000 / 10,000 images (32, 32, 3) uint8 with
    100 fine labels, or the 20 coarse (superclass) labels with label_type="coarse"."""

    _base = "cifar-100-python"
    _train = ["train"]
    _test = ["test"]
    _meta = "meta"

    def __init__(self, root, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, label_type: str = "fine"):
        if label_type not in ("fine", "coarse"):
            raise ValueError(f"CIFAR100: label_type must be 'fine' or 'coarse', got "
                             f"{label_type!r}")
        self.root = os.fspath(root)
        self.train = train
        self.label_type = label_type
        self._read(f"{label_type}_labels", f"{label_type}_label_names", train, transform,
                   target_transform)
