"""`Shapes`: a seeded synthetic image-classification set for tests and demos, generated in
memory in milliseconds (no files, no download)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .arrays import ArrayImageDataset

__all__ = ["Shapes"]

_SHIFT = 4                # cv2 fixed-point bits: coordinates are given in 1/16 pixel
_ONE = 1 << _SHIFT


def _polygon(kind: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Vertices (k, 2) of shape `kind` (1 square, 2 triangle, 3 cross), half-extent r."""
    if kind == 1:
        base = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * (r / np.sqrt(2))
    elif kind == 2:
        t = np.deg2rad([90.0, 210.0, 330.0])
        base = np.stack([np.cos(t), np.sin(t)], axis=1) * r
    else:
        w = 0.3 * r   # half the bar width
        base = np.array([[-w, -r], [w, -r], [w, -w], [r, -w], [r, w], [w, w], [w, r], [-w, r],
                         [-w, w], [-r, w], [-r, -w], [-w, -w]], np.float64)
    c, s = np.cos(angle), np.sin(angle)
    pts = base @ np.array([[c, s], [-s, c]]) + (cx, cy)
    return np.rint(pts * _ONE).astype(np.int32)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    np.rint(a, out=a)
    np.clip(a, 0, 255, out=a)
    return a.astype(np.uint8)


class Shapes(ArrayImageDataset):
    """RGB images (size, size, 3) uint8 of one filled shape each: classes "circle",
    "square", "triangle", "cross" (`n_per_class` of each, in shuffled order).

    Each image has a random background colour with a linear gradient, the shape drawn
    anti-aliased at a random position, size (about 35-75 % of the image) and rotation, in a
    colour that differs from the background by at least 78 in every channel, then Gaussian
    noise (sigma `noise`). The same seed gives the same images and order.
    """

    def __init__(self, n_per_class: int = 250, size: int = 32, seed: int = 0,
                 noise: float = 6.0, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        import cv2
        if n_per_class < 0 or size < 8:
            raise ValueError(f"Shapes: need n_per_class >= 0 and size >= 8, got "
                             f"{n_per_class}, {size}")
        self.seed, self.size, self.noise = seed, size, noise
        classes = ["circle", "square", "triangle", "cross"]
        rng = np.random.default_rng(seed)
        n = n_per_class * len(classes)
        targets = rng.permutation(np.repeat(np.arange(len(classes)), n_per_class))

        base = rng.uniform(0, 255, (n, 3))
        grad_dir = rng.uniform(0, 2 * np.pi, n)
        grad_amp = rng.uniform(-40, 40, (n, 3))
        colour = np.mod(base + 128 + rng.uniform(-50, 50, (n, 3)), 256)
        radius = rng.uniform(0.18, 0.38, n) * size
        cx = rng.uniform(0, 1, n) * (size - 2 - 2 * radius) + radius + 1
        cy = rng.uniform(0, 1, n) * (size - 2 - 2 * radius) + radius + 1
        angle = rng.uniform(0, 2 * np.pi, n)

        f32 = np.float32
        g = np.linspace(-1.0, 1.0, size, dtype=f32)
        ramp = (np.cos(grad_dir).astype(f32)[:, None, None] * g[None, None, :]
                + np.sin(grad_dir).astype(f32)[:, None, None] * g[None, :, None])  # (n, H, W)
        canvas = ramp[..., None] * grad_amp.astype(f32)[:, None, None, :]
        canvas += base.astype(f32)[:, None, None, :]
        images = _to_uint8(canvas)
        for i in range(n):
            img, col = images[i], tuple(float(v) for v in colour[i])
            if targets[i] == 0:
                centre = (int(round(cx[i] * _ONE)), int(round(cy[i] * _ONE)))
                cv2.circle(img, centre, int(round(radius[i] * _ONE)), col, -1, cv2.LINE_AA,
                           _SHIFT)
            else:
                pts = _polygon(int(targets[i]), cx[i], cy[i], radius[i], angle[i])
                cv2.fillPoly(img, [pts], col, cv2.LINE_AA, _SHIFT)
        if noise > 0:
            noisy = rng.standard_normal(images.shape, dtype=f32)
            noisy *= f32(noise)
            noisy += images
            images = _to_uint8(noisy)
        super().__init__(images, targets, classes, transform, target_transform)
