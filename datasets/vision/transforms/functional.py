"""Image kernels with torchvision.transforms.functional's names, arguments and results.

Images are accepted as a PIL image or a NumPy array (H, W) / (H, W, C) with C in {1, 3}: uint8,
or floating point in [0, 1] (scaled to uint8 by rounding). Every image kernel returns a new
(H, W, C) uint8 array (`convert_channels` returns its input when nothing changes). Resampling
(resize, rotate, affine) and the HSV round trip of `adjust_hue` go through Pillow, as
torchvision does for PIL images; the rest is NumPy written to give the same bytes as
torchvision's PIL path. `to_tensor`, `normalize` and `erase` work on CHW `framework.Tensor`s
(any device) and `normalize` also on float NumPy CHW arrays.
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from enum import Enum
from typing import Any, Union

import numpy as np
from PIL import Image

import framework

__all__ = ["InterpolationMode", "interpolation_mode", "resized_shape", "inverse_affine_matrix",
           "to_array", "to_pil_image", "get_dimensions", "resize", "crop",
           "center_crop", "resized_crop", "pad", "hflip", "vflip", "rotate", "affine",
           "adjust_brightness", "adjust_contrast", "adjust_saturation", "adjust_hue",
           "rgb_to_grayscale", "convert_channels", "gaussian_blur", "to_tensor", "normalize",
           "erase"]

ImageLike = Union[Image.Image, np.ndarray]
Fill = Union[None, float, Sequence[float]]


class InterpolationMode(Enum):
    """Resampling filters, with torchvision's names and string values."""
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"
    # Not in torchvision: PyTorch's interpolate(mode="area") (adaptive average pooling), the
    # resampling of facenet-pytorch's MTCNN crops.
    AREA = "area"


# As in torchvision's PIL path, NEAREST and NEAREST_EXACT are both Pillow's nearest filter.
_PIL_FILTER = {InterpolationMode.NEAREST: Image.Resampling.NEAREST,
               InterpolationMode.NEAREST_EXACT: Image.Resampling.NEAREST,
               InterpolationMode.BILINEAR: Image.Resampling.BILINEAR,
               InterpolationMode.BICUBIC: Image.Resampling.BICUBIC,
               InterpolationMode.BOX: Image.Resampling.BOX,
               InterpolationMode.HAMMING: Image.Resampling.HAMMING,
               InterpolationMode.LANCZOS: Image.Resampling.LANCZOS}
_GEOMETRIC_FILTERS = (InterpolationMode.NEAREST, InterpolationMode.BILINEAR,
                      InterpolationMode.BICUBIC)


def interpolation_mode(mode: InterpolationMode | str) -> InterpolationMode:
    """`mode` as an InterpolationMode; also accepts its string value ("bilinear")."""
    if isinstance(mode, InterpolationMode):
        return mode
    try:
        return InterpolationMode(str(mode).lower())
    except ValueError:
        names = ", ".join(m.value for m in InterpolationMode)
        raise ValueError(f"unknown interpolation {mode!r}; expected one of {names}") from None


# ---------------------------------------------------------------------------------- conversion

# PIL modes read as they are, and those converted first; 16/32-bit and float modes are refused
# because their scale to 0..255 is ambiguous.
_PIL_AS = {"L": "L", "RGB": "RGB", "1": "L", "LA": "L", "La": "L", "P": "RGB", "PA": "RGB",
           "RGBA": "RGB", "RGBa": "RGB", "RGBX": "RGB", "CMYK": "RGB", "YCbCr": "RGB",
           "HSV": "RGB", "LAB": "RGB"}


def to_array(img: ImageLike) -> np.ndarray:
    """The image as an (H, W, C) uint8 array, C in {1, 3} (no copy for such an array)."""
    if isinstance(img, Image.Image):
        target = _PIL_AS.get(img.mode)
        if target is None:
            raise ValueError(f"PIL image mode {img.mode!r} is not supported; convert it to 'L' "
                             f"or 'RGB' first")
        arr = np.array(img if img.mode == target else img.convert(target))
    elif isinstance(img, np.ndarray):
        arr = img
    else:
        raise TypeError(f"expected a PIL image or a NumPy array, got {type(img).__name__}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise ValueError(f"expected an image of shape (H, W) or (H, W, C) with C in {{1, 3}}, "
                         f"got shape {tuple(arr.shape)}")
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if not (0.0 <= lo and hi <= 1.0):
            raise ValueError(f"a float image must have values in [0, 1], got [{lo:g}, {hi:g}]")
        return np.round(arr * 255.0).astype(np.uint8)
    raise TypeError(f"expected a uint8 or float image array, got dtype {arr.dtype}")


def to_pil_image(img: ImageLike) -> Image.Image:
    """The image as a PIL image of mode 'L' (one channel) or 'RGB'."""
    arr = to_array(img)
    if arr.shape[2] == 1:
        return Image.fromarray(np.ascontiguousarray(arr[:, :, 0]), "L")
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def _from_pil(img: Image.Image) -> np.ndarray:
    arr = np.array(img)  # a writable copy (np.asarray of a PIL image is read-only)
    return arr[:, :, None] if arr.ndim == 2 else arr


def get_dimensions(img: Any) -> list[int]:
    """[channels, height, width] of an image, or of a (..., C, H, W) framework.Tensor."""
    if isinstance(img, framework.Tensor):
        if img.ndim < 3:
            raise ValueError(f"expected a (..., C, H, W) tensor, got shape {tuple(img.shape)}")
        return [int(s) for s in img.shape[-3:]]
    h, w, c = to_array(img).shape
    return [c, h, w]


def _fill_values(fill: Fill, channels: int) -> tuple[int, ...]:
    """One integer fill value per channel (as torchvision's PIL path: a number is repeated,
    values are truncated to int)."""
    if fill is None:
        fill = 0
    values = [fill] if isinstance(fill, numbers.Number) else list(fill)
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise ValueError(f"fill has {len(values)} values but the image has {channels} channels")
    return tuple(int(v) for v in values)


def _pil_fill(fill: Fill, channels: int) -> int | tuple[int, ...]:
    values = _fill_values(fill, channels)
    return values[0] if channels == 1 else values


# ---------------------------------------------------------------------------------- geometry

def _two(value: Any, name: str, cast: type = int) -> tuple[Any, Any]:
    """A pair from a number or a 1- or 2-sequence (a number or 1-sequence is repeated)."""
    if isinstance(value, numbers.Number):
        return cast(value), cast(value)
    values = tuple(cast(v) for v in value)
    if len(values) not in (1, 2):
        raise ValueError(f"{name} must be a number or a sequence of 1 or 2 numbers, got {value}")
    return (values[0], values[0]) if len(values) == 1 else values


def resized_shape(height: int, width: int, size: int | Sequence[int] | None,
                  max_size: int | None = None) -> tuple[int, int]:
    """Output (h, w) of `resize`: an int (or 1-sequence) sets the shorter side and keeps the
    aspect ratio (the longer side truncated), capped so the longer side is at most `max_size`;
    a 2-sequence is (h, w); None with `max_size` makes the longer side `max_size`."""
    short, long = min(height, width), max(height, width)
    if size is None:
        if max_size is None:
            raise ValueError("resize: size=None needs max_size")
        new_short, new_long = int(max_size * short / long), max_size
    elif isinstance(size, numbers.Number) or len(size) == 1:
        requested = int(size) if isinstance(size, numbers.Number) else int(size[0])
        new_short, new_long = requested, int(requested * long / short)
        if max_size is not None:
            if max_size <= requested:
                raise ValueError(f"max_size = {max_size} must be strictly greater than the "
                                 f"requested size for the smaller edge size = {size}")
            if new_long > max_size:
                new_short, new_long = int(max_size * new_short / new_long), max_size
    else:
        if max_size is not None:
            raise ValueError("max_size is only allowed when size is an int (the shorter side)")
        return _two(size, "size")
    return (new_long, new_short) if width <= height else (new_short, new_long)


def resize(img: ImageLike, size: int | Sequence[int] | None,
           interpolation: InterpolationMode | str = InterpolationMode.BILINEAR,
           max_size: int | None = None, antialias: bool | None = True) -> np.ndarray:
    """Resize to `size` (see `resized_shape`). As torchvision's PIL path, bilinear/bicubic
    always antialias when downscaling (antialias=False warns and is ignored)."""
    arr = to_array(img)
    mode = interpolation_mode(interpolation)
    out_h, out_w = resized_shape(arr.shape[0], arr.shape[1], size, max_size)
    if (out_h, out_w) == arr.shape[:2]:
        return arr.copy()
    if antialias is False:
        warnings.warn("Anti-alias option is always applied for PIL Image input. Argument "
                      "antialias is ignored.")
    if mode is InterpolationMode.AREA:
        return _resize_area(arr, out_h, out_w)
    return _from_pil(to_pil_image(arr).resize((out_w, out_h), _PIL_FILTER[mode]))


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) averaging matrix of adaptive average pooling: output i averages inputs
    floor(i*n_in/n_out) .. ceil((i+1)*n_in/n_out) - 1."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        start, end = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def _resize_area(arr: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    y = np.einsum("oh,hwc->owc", _area_weights(arr.shape[0], out_h), arr.astype(np.float64))
    y = np.einsum("pw,owc->opc", _area_weights(arr.shape[1], out_w), y)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def crop(img: ImageLike, top: int, left: int, height: int, width: int) -> np.ndarray:
    """The box of `height` x `width` at (top, left); parts outside the image are zeros."""
    arr = to_array(img)
    out = np.zeros((height, width, arr.shape[2]), np.uint8)
    y0, y1 = max(top, 0), min(top + height, arr.shape[0])
    x0, x1 = max(left, 0), min(left + width, arr.shape[1])
    if y0 < y1 and x0 < x1:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = arr[y0:y1, x0:x1]
    return out


def center_crop(img: ImageLike, output_size: int | Sequence[int]) -> np.ndarray:
    """The central `output_size` box (offsets rounded half to even, as Python's round); an
    image smaller than the box is first zero-padded, the odd pixel going right/bottom."""
    arr = to_array(img)
    ch, cw = _two(output_size, "output_size")
    h, w = arr.shape[:2]
    if ch > h or cw > w:
        dh, dw = max(ch - h, 0), max(cw - w, 0)
        arr = pad(arr, [dw // 2, dh // 2, (dw + 1) // 2, (dh + 1) // 2])
        h, w = arr.shape[:2]
    return crop(arr, int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0)), ch, cw)


def resized_crop(img: ImageLike, top: int, left: int, height: int, width: int,
                 size: int | Sequence[int],
                 interpolation: InterpolationMode | str = InterpolationMode.BILINEAR,
                 antialias: bool | None = True) -> np.ndarray:
    """`crop` then `resize` to `size`."""
    return resize(crop(img, top, left, height, width), size, interpolation, antialias=antialias)


def _ltrb(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from torchvision's 1-, 2- (left/right, top/bottom) or
    4-element padding."""
    p = [int(padding)] if isinstance(padding, numbers.Number) else [int(v) for v in padding]
    if len(p) == 1:
        return p[0], p[0], p[0], p[0]
    if len(p) == 2:
        return p[0], p[1], p[0], p[1]
    if len(p) == 4:
        return p[0], p[1], p[2], p[3]
    raise ValueError(f"padding must be an int or a sequence of 1, 2 or 4 ints, got {padding}")


_PAD_MODES = ("constant", "edge", "reflect", "symmetric")


def pad(img: ImageLike, padding: int | Sequence[int], fill: Fill = 0,
        padding_mode: str = "constant") -> np.ndarray:
    """Pad the borders; negative padding crops. Modes: constant (per-channel `fill`), edge,
    reflect (mirror without the edge pixel), symmetric (mirror with it)."""
    if padding_mode not in _PAD_MODES:
        raise ValueError(f"padding_mode must be one of {_PAD_MODES}, got {padding_mode!r}")
    arr = to_array(img)
    left, top, right, bottom = _ltrb(padding)
    h, w = arr.shape[:2]
    arr = arr[max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]
    left, top, right, bottom = (max(v, 0) for v in (left, top, right, bottom))
    if padding_mode != "constant":
        return np.pad(arr, ((top, bottom), (left, right), (0, 0)), mode=padding_mode)
    h, w, c = arr.shape
    out = np.empty((h + top + bottom, w + left + right, c), np.uint8)
    out[...] = np.clip(_fill_values(fill, c), 0, 255).astype(np.uint8)
    out[top:top + h, left:left + w] = arr
    return out


def hflip(img: ImageLike) -> np.ndarray:
    """Mirror left-right."""
    return to_array(img)[:, ::-1].copy()


def vflip(img: ImageLike) -> np.ndarray:
    """Mirror top-bottom."""
    return to_array(img)[::-1].copy()


def _geometric_filter(interpolation: InterpolationMode | str) -> Image.Resampling:
    mode = interpolation_mode(interpolation)
    if mode not in _GEOMETRIC_FILTERS:
        raise ValueError(f"rotate/affine support nearest, bilinear and bicubic interpolation, "
                         f"got {mode.value}")
    return _PIL_FILTER[mode]


def rotate(img: ImageLike, angle: float,
           interpolation: InterpolationMode | str = InterpolationMode.NEAREST,
           expand: bool = False, center: Sequence[float] | None = None,
           fill: Fill = None) -> np.ndarray:
    """Rotate counter-clockwise by `angle` degrees about `center` ((x, y) pixels, default the
    image centre); `expand` grows the output to hold the whole rotated image."""
    arr = to_array(img)
    out = to_pil_image(arr).rotate(float(angle), _geometric_filter(interpolation), bool(expand),
                                   None if center is None else tuple(center),
                                   fillcolor=_pil_fill(fill, arr.shape[2]))
    return _from_pil(out)


def inverse_affine_matrix(center: Sequence[float], angle: float, translate: Sequence[float],
                          scale: float, shear: Sequence[float]) -> list[float]:
    """The 2x3 output-to-input map (row-major, Pillow's AFFINE data) of the transform
    x -> T C R(angle) S(scale) ShearY(shear[1]) ShearX(shear[0]) C^-1 x, with C the shift to
    `center`, T the shift by `translate`; angles in degrees."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    # Linear part without the scale; the two shears and the rotation have determinant 1,
    # so its inverse is its adjugate.
    k = math.cos(rot - sy) / math.cos(sy)
    m = math.sin(rot - sy) / math.cos(sy)
    a, b = k, -k * math.tan(sx) - math.sin(rot)
    c, d = m, -m * math.tan(sx) + math.cos(rot)
    inv = [v / scale for v in (d, -b, -c, a)]
    cx, cy = center
    ox, oy = -cx - translate[0], -cy - translate[1]
    return [inv[0], inv[1], inv[0] * ox + inv[1] * oy + cx,
            inv[2], inv[3], inv[2] * ox + inv[3] * oy + cy]


def affine(img: ImageLike, angle: float, translate: Sequence[float], scale: float,
           shear: float | Sequence[float],
           interpolation: InterpolationMode | str = InterpolationMode.NEAREST,
           fill: Fill = None, center: Sequence[float] | None = None) -> np.ndarray:
    """Rotate by `angle`, scale, shear (degrees; a number shears along x only) about `center`
    (default the image centre), then translate by `translate` pixels; the output keeps the
    input's size."""
    if scale <= 0:
        raise ValueError(f"affine: scale must be positive, got {scale}")
    shear = [float(shear), 0.0] if isinstance(shear, numbers.Number) else list(shear)
    if len(shear) == 1:
        shear = shear * 2
    if len(shear) != 2 or len(translate) != 2:
        raise ValueError(f"affine: translate and shear must have 2 values, got {translate} "
                         f"and {shear}")
    arr = to_array(img)
    h, w = arr.shape[:2]
    centre = [w * 0.5, h * 0.5] if center is None else list(center)
    matrix = inverse_affine_matrix(centre, float(angle), translate, float(scale), shear)
    out = to_pil_image(arr).transform((w, h), Image.Transform.AFFINE, matrix,
                                      _geometric_filter(interpolation),
                                      fillcolor=_pil_fill(fill, arr.shape[2]))
    return _from_pil(out)


# ---------------------------------------------------------------------------------- colour

def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma with Pillow's convert('L') fixed-point rounding, (H, W, 1) uint8."""
    r, g, b = (rgb[:, :, i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[:, :, None]


def _blend(degenerate: np.ndarray | float, img: np.ndarray, factor: float) -> np.ndarray:
    """degenerate + factor * (img - degenerate) in float32, clamped and truncated to uint8:
    the arithmetic of Pillow's Image.blend, which ImageEnhance (and so torchvision) uses."""
    d = np.asarray(degenerate, dtype=np.float32)
    out = d + np.float32(factor) * (img.astype(np.float32) - d)
    return np.clip(out, 0.0, 255.0).astype(np.uint8)


def _check_factor(value: float, name: str) -> None:
    if value < 0:
        raise ValueError(f"{name} ({value}) must be non-negative")


def adjust_brightness(img: ImageLike, brightness_factor: float) -> np.ndarray:
    """Blend with black: 0 gives black, 1 the original."""
    _check_factor(brightness_factor, "brightness_factor")
    return _blend(0.0, to_array(img), brightness_factor)


def adjust_contrast(img: ImageLike, contrast_factor: float) -> np.ndarray:
    """Blend with the mean grey level (rounded): 0 gives a uniform grey, 1 the original."""
    _check_factor(contrast_factor, "contrast_factor")
    arr = to_array(img)
    gray = arr if arr.shape[2] == 1 else _luma(arr)
    mean = int(int(gray.sum(dtype=np.int64)) / gray.size + 0.5)
    return _blend(float(mean), arr, contrast_factor)


def adjust_saturation(img: ImageLike, saturation_factor: float) -> np.ndarray:
    """Blend with the grayscale image: 0 gives grey, 1 the original, 2 doubles saturation."""
    _check_factor(saturation_factor, "saturation_factor")
    arr = to_array(img)
    return _blend(arr if arr.shape[2] == 1 else _luma(arr), arr, saturation_factor)


def adjust_hue(img: ImageLike, hue_factor: float) -> np.ndarray:
    """Rotate the hue by `hue_factor` of a turn (in [-0.5, 0.5]) in Pillow's 8-bit HSV space;
    a one-channel image is returned unchanged."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5]")
    arr = to_array(img)
    if arr.shape[2] == 1:
        return arr.copy()
    hsv = np.array(to_pil_image(arr).convert("HSV"))
    # The shift truncates toward zero and wraps modulo 256, as torchvision's PIL path.
    hsv[:, :, 0] += np.uint8(int(hue_factor * 255) % 256)
    return _from_pil(Image.fromarray(hsv, "HSV").convert("RGB"))


def rgb_to_grayscale(img: ImageLike, num_output_channels: int = 1) -> np.ndarray:
    """Luma as Pillow's convert('L'), with 1 or 3 (identical) output channels."""
    if num_output_channels not in (1, 3):
        raise ValueError(f"num_output_channels must be 1 or 3, got {num_output_channels}")
    arr = to_array(img)
    gray = arr.copy() if arr.shape[2] == 1 else _luma(arr)
    return np.repeat(gray, num_output_channels, axis=2) if num_output_channels == 3 else gray


def convert_channels(img: ImageLike, channels: int) -> np.ndarray:
    """The image with `channels` (1 or 3) channels: gray -> RGB replicates, RGB -> gray is
    `rgb_to_grayscale`."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    arr = to_array(img)
    if arr.shape[2] == channels:
        return arr
    return np.repeat(arr, 3, axis=2) if channels == 3 else _luma(arr)


def _gaussian_kernel1d(size: int, sigma: float) -> np.ndarray:
    x = np.linspace(-(size - 1) * 0.5, (size - 1) * 0.5, size)
    pdf = np.exp(-0.5 * (x / sigma) ** 2)
    return pdf / pdf.sum()


def _convolve_axis(x: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """Correlate along `axis` with reflect padding (mirror without the edge pixel)."""
    half = len(kernel) // 2
    widths = [(0, 0)] * x.ndim
    widths[axis] = (half, half)
    padded = np.pad(x, widths, mode="reflect")
    n = x.shape[axis]
    out = np.zeros_like(x)
    for k, weight in enumerate(kernel):
        out += weight * np.take(padded, np.arange(k, k + n), axis=axis)
    return out


def gaussian_blur(img: ImageLike, kernel_size: int | Sequence[int],
                  sigma: float | Sequence[float] | None = None) -> np.ndarray:
    """Gaussian blur with an odd (kx, ky) kernel and (sigma_x, sigma_y) (default
    0.15 * k + 0.35), reflect-padded borders, rounded back to uint8."""
    kx, ky = _two(kernel_size, "kernel_size")
    if any(k <= 0 or k % 2 == 0 for k in (kx, ky)):
        raise ValueError(f"kernel_size must be odd positive integers, got {kernel_size}")
    sx, sy = _two([0.15 * kx + 0.35, 0.15 * ky + 0.35] if sigma is None else sigma, "sigma", float)
    if sx <= 0 or sy <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    arr = to_array(img)
    h, w = arr.shape[:2]
    if kx // 2 >= w or ky // 2 >= h:
        raise ValueError(f"gaussian_blur: kernel_size {kernel_size} is too large for a {h}x{w} "
                         f"image (reflect padding needs half the kernel to be under the side)")
    out = _convolve_axis(arr.astype(np.float64), _gaussian_kernel1d(kx, sx), axis=1)
    out = _convolve_axis(out, _gaussian_kernel1d(ky, sy), axis=0)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------- tensors

def to_tensor(pic: ImageLike) -> framework.Tensor:
    """A CHW `framework.Tensor`: uint8 images scaled to float32 in [0, 1]; arrays of other
    dtypes keep their dtype and values (as torchvision)."""
    if isinstance(pic, Image.Image):
        arr = to_array(pic)
    elif isinstance(pic, np.ndarray) and pic.ndim in (2, 3):
        arr = pic[:, :, None] if pic.ndim == 2 else pic
    else:
        raise TypeError(f"to_tensor expects a PIL image or an (H, W) / (H, W, C) array, got "
                        f"{type(pic).__name__}{getattr(pic, 'shape', '')}")
    chw = np.ascontiguousarray(arr.transpose(2, 0, 1))
    if chw.dtype == np.uint8:
        chw = chw.astype(np.float32) / np.float32(255)
    return framework.from_numpy(chw)


def _is_float(t: Any) -> bool:
    if isinstance(t, np.ndarray):
        return np.issubdtype(t.dtype, np.floating)
    return framework.is_floating_point(t)


def _channel_vector(values: Sequence[float], like: Any) -> Any:
    """`values` shaped (C, 1, 1) in the dtype (and on the device) of `like`."""
    if isinstance(like, np.ndarray):
        return np.asarray(values, dtype=like.dtype).reshape(-1, 1, 1)
    return framework.tensor(list(values), dtype=like.dtype, device=like.device).view(-1, 1, 1)


def normalize(tensor: Any, mean: Sequence[float], std: Sequence[float],
              inplace: bool = False) -> Any:
    """(tensor - mean) / std per channel of a float (..., C, H, W) tensor or NumPy array."""
    if not isinstance(tensor, (framework.Tensor, np.ndarray)):
        raise TypeError(f"normalize expects a framework.Tensor or NumPy array, got "
                        f"{type(tensor).__name__}")
    if not _is_float(tensor):
        raise TypeError(f"normalize expects a float tensor, got {tensor.dtype}")
    if tensor.ndim < 3:
        raise ValueError(f"normalize expects a (..., C, H, W) tensor, got shape "
                         f"{tuple(tensor.shape)}")
    mean, std = [float(v) for v in mean], [float(v) for v in std]
    channels = int(tensor.shape[-3])
    if len(mean) not in (1, channels) or len(std) not in (1, channels):
        allowed = "1 value" if channels == 1 else f"1 or {channels} values"
        raise ValueError(f"normalize: mean and std need {allowed} for a {channels}-channel "
                         f"image, got {len(mean)} and {len(std)}")
    if any(s == 0 for s in std):
        raise ValueError(f"normalize: std must not contain zeros, got {std}")
    m, s = _channel_vector(mean, tensor), _channel_vector(std, tensor)
    if isinstance(tensor, np.ndarray):
        out = tensor if inplace else tensor.copy()
        out -= m
        out /= s
        return out
    out = tensor if inplace else tensor.clone()
    return out.sub_(m).div_(s)


def erase(img: framework.Tensor, i: int, j: int, h: int, w: int, v: Any,
          inplace: bool = False) -> framework.Tensor:
    """Set the (h, w) box at (i, j) of a (..., C, H, W) tensor to `v` (a tensor broadcastable
    to (C, h, w), or a number)."""
    if not isinstance(img, framework.Tensor):
        raise TypeError(f"erase expects a framework.Tensor, got {type(img).__name__}")
    out = img if inplace else img.clone()
    if not isinstance(v, framework.Tensor):
        v = framework.tensor(np.asarray(v, dtype=np.float64), dtype=img.dtype, device=img.device)
    out[..., i:i + h, j:j + w] = v.to(dtype=img.dtype, device=img.device)
    return out
