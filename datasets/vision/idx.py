"""MNIST and Fashion-MNIST from their IDX files (the format LeCun et al. distribute them in).

An IDX file is a 4-byte magic (0, 0, type code, rank), `rank` big-endian uint32 sizes, then
the data in C order; it may be gzip-compressed. Nothing is downloaded: place the four files
(gzipped or not) in `root`, `root/raw` or `root/<MNIST|FashionMNIST>/raw`.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from .arrays import ArrayImageDataset

__all__ = ["read_idx", "MNIST", "FashionMNIST"]

# IDX type code -> big-endian dtype.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _magic_error(path, magic: int) -> ValueError:
    return ValueError(f"{path}: wrong IDX magic 0x{magic:08X}, expected 0x00000803 (images) "
                      "or 0x00000801 (labels)")


def read_idx(path) -> np.ndarray:
    """The array stored in IDX file `path` (raw or gzip), in native byte order.

    The magic number and the data size the header announces are checked; a truncated or
    padded file is an error naming it.
    """
    path = os.fspath(path)
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({exc})") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    magic = struct.unpack(">I", raw[:4])[0]
    type_code, rank = raw[2], raw[3]
    if raw[:2] != b"\0\0" or type_code not in _IDX_TYPES or rank == 0:
        raise _magic_error(path, magic)
    head = 4 + 4 * rank
    if len(raw) < head:
        raise ValueError(f"{path}: truncated IDX header (rank {rank} needs {head} bytes, "
                         f"file has {len(raw)})")
    shape = struct.unpack(f">{rank}I", raw[4:head])
    dtype = np.dtype(_IDX_TYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - head
    if have != expected:
        what = "truncated" if have < expected else "too long"
        raise ValueError(f"{path}: {what} IDX file: header says shape {tuple(shape)} = "
                         f"{expected} bytes of data, file has {have}")
    return np.frombuffer(raw, dtype=dtype, offset=head).reshape(shape).astype(
        dtype.newbyteorder("="))


class MNIST(ArrayImageDataset):
    """MNIST digits (torchvision's `MNIST`): 60,000 training or 10,000 test images
    (28, 28, 1) uint8 with labels 0-9. `root` holds the IDX files (see the module doc);
    `download` is not supported."""

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
                       "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    _folder = "MNIST"

    def __init__(self, root, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        self.root = os.fspath(root)
        self.train = train
        prefix = "train" if train else "t10k"
        images = read_idx(self._find(f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(self._find(f"{prefix}-labels-idx1-ubyte"))
        name = type(self).__name__
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{name}: {prefix} images file holds {images.dtype} of rank "
                             f"{images.ndim}, expected uint8 of rank 3 (N, 28, 28)")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"{name}: {len(images)} {prefix} images but labels of shape "
                             f"{labels.shape}")
        super().__init__(images, labels, self.classes, transform, target_transform)

    def _search_dirs(self) -> list[str]:
        return [self.root, os.path.join(self.root, "raw"),
                os.path.join(self.root, self._folder, "raw")]

    def _find(self, stem: str) -> str:
        dirs = self._search_dirs()
        for d in dirs:
            for name in (stem, stem + ".gz"):
                p = os.path.join(d, name)
                if os.path.isfile(p):
                    return p
        files = ", ".join(f"{p}-{k}-idx{r}-ubyte[.gz]" for p in ("train", "t10k")
                          for k, r in (("images", 3), ("labels", 1)))
        raise FileNotFoundError(
            f"{type(self).__name__}: {stem}[.gz] not found in {', '.join(dirs)}; place the "
            f"IDX files ({files}) in one of these folders (nothing is downloaded)")


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): same layout and file names as MNIST, 10 clothing classes."""

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                       "Shirt", "Sneaker", "Bag", "Ankle boot"]
    _folder = "FashionMNIST"
