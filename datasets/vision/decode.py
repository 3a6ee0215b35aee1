"""Decoding one image file into a NumPy uint8 array of shape (H, W, C), C = 1 or 3.

Two decoders give the same pixels for the same file: Pillow (default) and OpenCV (whose BGR
order is turned into RGB). What a file becomes:

- grayscale (L, 1-bit, gray+alpha, 16-bit gray) -> (H, W, 1); everything else -> (H, W, 3);
- an alpha channel is dropped (not composited), as torchvision's loader does;
- palette images are expanded to RGB, CMYK/YCbCr/LAB to RGB;
- 16-bit (and 32-bit integer) samples are reduced to 8 bits by keeping the high byte
  (v >> 8, so 257*k -> k); 32-bit integers are first clipped to 0..65535;
- 32-bit float images are refused (no standard 8-bit scale);
- EXIF orientation is ignored: pixels come as stored, as torchvision does.

A file that cannot be decoded completely (corrupt, truncated, not an image) raises
`BadImageError`; a missing file raises FileNotFoundError. No file handle outlives the call.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Union

import numpy as np

__all__ = ["IMG_EXTENSIONS", "BadImageError", "read_image", "has_image_extension",
           "ImageLoader"]

IMG_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif",
                                   ".tiff", ".webp")

# "pil", "cv2", or a callable path -> (H, W, C) uint8 array.
ImageLoader = Union[str, Callable[[str], np.ndarray]]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_GRAY_ALPHA = 4  # IHDR colour type


class BadImageError(ValueError):
    """A file that exists but cannot be decoded into an image."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = " ".join(str(reason).split())  # one line
        super().__init__(f"{self.path}: cannot decode image: {self.reason}")


def has_image_extension(path, extensions=IMG_EXTENSIONS) -> bool:
    """Whether the file name ends with one of `extensions` (case-insensitive)."""
    return str(path).lower().endswith(tuple(e.lower() for e in extensions))


def _high_byte(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        raise ValueError("32-bit float pixels have no standard 8-bit scale; save the image "
                         "with 8- or 16-bit samples")
    if a.dtype.itemsize > 2 or a.dtype.kind == "i":
        a = np.clip(a, 0, 65535)
    return (a.astype(np.uint32) >> 8).astype(np.uint8)


def _to_hwc(a: np.ndarray) -> np.ndarray:
    if a.dtype != np.uint8:
        a = _high_byte(a)
    if a.ndim == 2:
        a = a[:, :, None]
    return np.ascontiguousarray(a)


def _decode_pil(path: str) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        im.load()  # full decode now: Image.open only reads the header
        mode = im.mode
        if mode in ("1", "L", "LA", "La"):
            return _to_hwc(np.asarray(im.convert("L")))
        if mode.startswith("I;16") or mode == "I":
            # I;16 -> (H, W) uint16; "I" (int32) is how older Pillow opens 16-bit PNGs.
            return _to_hwc(np.asarray(im))
        if mode == "F":
            return _to_hwc(np.asarray(im))  # refused with a clear reason
        if mode == "RGB":
            return _to_hwc(np.asarray(im))
        return _to_hwc(np.asarray(im.convert("RGB")))


def _is_png_gray_alpha(data: bytes) -> bool:
    return data[:8] == _PNG_SIGNATURE and len(data) > 25 and data[25] == _PNG_GRAY_ALPHA


def _decode_cv2(path: str) -> np.ndarray:
    import cv2
    data = Path(path).read_bytes()
    # imdecode (unlike imread) returns None for truncated JPEGs instead of a grey-filled
    # image, and reads paths that cv2.imread cannot (non-ASCII on some platforms).
    a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise ValueError("OpenCV could not decode it (corrupt, truncated or not an image)")
    if a.ndim == 3:
        if a.shape[2] == 4 and _is_png_gray_alpha(data):
            a = a[:, :, :1]  # libpng expands gray+alpha to BGRA; keep it grayscale
        elif a.shape[2] in (3, 4):
            a = a[:, :, 2::-1]  # BGR(A) -> RGB, alpha dropped
        elif a.shape[2] == 2:
            a = a[:, :, :1]
        else:
            raise ValueError(f"unsupported channel count {a.shape[2]}")
    return _to_hwc(a)


_DECODERS = {"pil": _decode_pil, "cv2": _decode_cv2}


def read_image(path, loader: ImageLoader = "pil") -> np.ndarray:
    """Decode the image file at `path` into a uint8 array (H, W, 1) or (H, W, 3), RGB.

    loader: "pil" (Pillow) or "cv2" (OpenCV), or a callable path -> array (used as is).
    Raises FileNotFoundError for a missing file and BadImageError (a ValueError) for a file
    that is not a complete, decodable image.
    """
    path = os.fspath(path)
    if callable(loader):
        return loader(path)
    try:
        decode = _DECODERS[loader]
    except (KeyError, TypeError):
        raise ValueError(f"unknown image loader {loader!r}; use 'pil' or 'cv2'") from None
    if not os.path.isfile(path):
        if os.path.isdir(path):
            raise IsADirectoryError(f"{path}: is a folder, not an image file")
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        return decode(path)
    except BadImageError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # UnidentifiedImageError, OSError (truncated), SyntaxError, ...
        reason = str(exc) or type(exc).__name__
        raise BadImageError(path, reason) from None
