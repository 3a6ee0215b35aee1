"""Sliding-window inference over whole volumes, and flip test-time augmentation.

`sliding_window_inference` follows MONAI's `monai.inferers.sliding_window_inference`:
- an input smaller than the window along an axis is padded on both sides (half before,
  the rest after) with `cval`, and the output is cropped back;
- windows start every int(roi * (1 - overlap)) voxels (at least 1; a window as large as the
  padded axis gives one window), and the last start along an axis is pulled back so the
  window ends at the border;
- each window's prediction is weighted by an importance map, constant 1 or a Gaussian with
  sigma = sigma_scale * roi per axis (values clamped below at 1e-3 so no voxel divides by
  zero), summed, and divided by the summed weights;
- windows of every batch item are cut in order and fed to `predictor` `sw_batch_size` at a
  time.
Everything runs through framework ops on the input's device, so CuPy tensors stay on the GPU.
The predictor may return any number of channels but must keep the window's spatial shape.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable, Sequence

import numpy as np

import framework as fw
import framework.nn.functional as F

__all__ = ["sliding_window_inference", "window_starts", "importance_map", "flip_tta",
           "remove_small_components"]

Predictor = Callable[[fw.Tensor], fw.Tensor]


def _per_axis(value, n: int, name: str) -> tuple:
    t = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(t) != n:
        raise ValueError(f"sliding_window_inference: {name} needs {n} values, got {value!r}")
    return t


def window_starts(size: int, roi: int, overlap: float) -> list[int]:
    """Window starts along one axis of `size` voxels (size >= roi), as MONAI places them."""
    interval = roi if roi == size else max(int(roi * (1.0 - overlap)), 1)
    count = next((k + 1 for k in range(math.ceil(size / interval))
                  if k * interval + roi >= size), 1)
    return [k * interval - max(k * interval + roi - size, 0) for k in range(count)]


def importance_map(roi_size: Sequence[int], mode: str = "constant", sigma_scale=0.125, *,
                   dtype=fw.float32, device=None) -> fw.Tensor:
    """The weight of each voxel of a window: ones ("constant"), or the product over axes of
    exp(-x^2 / (2 sigma^2)), x measured from the window's centre and sigma = sigma_scale *
    roi ("gaussian"), clamped below at 1e-3."""
    roi = tuple(int(r) for r in roi_size)
    if mode == "constant":
        return fw.ones(roi, dtype=dtype, device=device)
    if mode != "gaussian":
        raise ValueError(f"sliding_window_inference: mode must be 'constant' or 'gaussian', "
                         f"got {mode!r}")
    scales = _per_axis(sigma_scale, len(roi), "sigma_scale")
    weights = None
    for axis, (r, sc) in enumerate(zip(roi, scales)):
        sigma = r * float(sc)
        if sigma <= 0:
            raise ValueError(f"sliding_window_inference: sigma_scale must be positive, got "
                             f"{sigma_scale!r}")
        x = fw.arange(r, dtype=fw.float64, device=device) - (r - 1) / 2.0
        g = (x * x / (-2.0 * sigma * sigma)).exp()
        g = g.reshape(*([1] * axis), r, *([1] * (len(roi) - axis - 1)))
        weights = g if weights is None else weights * g
    return weights.clamp(min=1e-3).to(dtype)


def sliding_window_inference(inputs: fw.Tensor, roi_size: int | Sequence[int],
                             sw_batch_size: int, predictor: Predictor, overlap=0.25,
                             mode: str = "constant", sigma_scale=0.125, cval: float = 0.0,
                             progress: bool = False) -> fw.Tensor:
    """Blend `predictor` over windows of `roi_size` of `inputs` (N, C, *S); returns
    (N, C_out, *S) in float32 (float64 if the predictor returns float64). roi_size entries
    <= 0 mean the whole axis; overlap is in [0, 1), one value or one per axis."""
    if inputs.ndim < 3:
        raise ValueError(f"sliding_window_inference: inputs must be (N, C, *S), got shape "
                         f"{tuple(inputs.shape)}")
    if sw_batch_size < 1:
        raise ValueError(f"sliding_window_inference: sw_batch_size must be >= 1, got "
                         f"{sw_batch_size}")
    n, dims = inputs.shape[0], inputs.ndim - 2
    shape = tuple(inputs.shape[2:])
    roi = tuple(int(r) if int(r) > 0 else s
                for r, s in zip(_per_axis(roi_size, dims, "roi_size"), shape))
    overlaps = tuple(float(o) for o in _per_axis(overlap, dims, "overlap"))
    if not all(0.0 <= o < 1.0 for o in overlaps):
        raise ValueError(f"sliding_window_inference: overlap must be in [0, 1), got {overlap!r}")

    # pad axes smaller than the window, half before and the rest after (F.pad: last axis first)
    before = [max(r - s, 0) // 2 for r, s in zip(roi, shape)]
    after = [max(r - s, 0) - b for r, s, b in zip(roi, shape, before)]
    if any(before) or any(after):
        pads = [p for axis in reversed(range(dims)) for p in (before[axis], after[axis])]
        inputs = F.pad(inputs, pads, mode="constant", value=cval)
    size = tuple(inputs.shape[2:])
    starts = [window_starts(s, r, o) for s, r, o in zip(size, roi, overlaps)]
    windows = [tuple(slice(a, a + r) for a, r in zip(corner, roi))
               for corner in itertools.product(*starts)]
    jobs = [(b, w) for b in range(n) for w in windows]

    chunks = range(0, len(jobs), sw_batch_size)
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc="sliding window", unit="batch")
    output = weight = count = None
    for first in chunks:
        chunk = jobs[first:first + sw_batch_size]
        batch = fw.cat([inputs[(slice(b, b + 1), slice(None)) + w] for b, w in chunk])
        pred = predictor(batch)
        if not isinstance(pred, fw.Tensor) or tuple(pred.shape[2:]) != roi or \
                pred.shape[0] != len(chunk):
            got = tuple(pred.shape) if isinstance(pred, fw.Tensor) else type(pred).__name__
            raise ValueError(f"sliding_window_inference: the predictor must return a tensor "
                             f"({len(chunk)}, C, {', '.join(map(str, roi))}) for a batch of "
                             f"{len(chunk)} windows, got {got}")
        if output is None:
            acc = fw.float64 if pred.dtype == fw.float64 else fw.float32
            output = fw.zeros((n, pred.shape[1], *size), dtype=acc, device=inputs.device)
            weight = importance_map(roi, mode, sigma_scale, dtype=acc, device=inputs.device)
            count = fw.zeros(size, dtype=acc, device=inputs.device)
            for w in windows:  # the same for every batch item
                count[w] += weight
        pred = pred.to(output.dtype) * weight
        for j, (b, w) in enumerate(chunk):
            output[(b, slice(None)) + w] += pred[j]
    output = output / count
    crop = tuple(slice(b, b + s) for b, s in zip(before, shape))
    return output[(slice(None), slice(None)) + crop]


def flip_tta(predictor: Predictor, axes: Sequence[int] = (0, 1, 2)) -> Predictor:
    """A predictor that averages `predictor` over the input and its mirror images along every
    non-empty subset of the spatial `axes` (0 = the first spatial axis; negative from the
    last), each prediction flipped back: 2^len(axes) calls, as nnU-Net's mirroring. The
    raw outputs (logits) are averaged."""
    axes = tuple(int(a) for a in axes)

    def mirrored(x: fw.Tensor) -> fw.Tensor:
        dims = x.ndim - 2
        if not all(-dims <= a < dims for a in axes):
            raise ValueError(f"flip_tta: axes {axes} out of range for {dims} spatial axes")
        resolved = sorted({a % dims + 2 for a in axes})
        total = predictor(x)
        count = 1
        for k in range(1, len(resolved) + 1):
            for subset in itertools.combinations(resolved, k):
                total = total + fw.flip(predictor(fw.flip(x, subset)), subset)
                count += 1
        return total / count

    return mirrored


def remove_small_components(labels: np.ndarray, min_size: int) -> np.ndarray:
    """`labels` with every connected component (face connectivity, per label) of fewer than
    `min_size` voxels set to background, as MONAI's RemoveSmallObjects; a copy."""
    from scipy import ndimage
    labels = np.array(labels, copy=True)
    if min_size <= 1:
        return labels
    for value in np.unique(labels):
        if value == 0:
            continue
        comps, n = ndimage.label(labels == value)
        sizes = np.bincount(comps.ravel(), minlength=n + 1)
        small = np.flatnonzero(sizes < min_size)
        labels[np.isin(comps, small[small > 0])] = 0
    return labels
