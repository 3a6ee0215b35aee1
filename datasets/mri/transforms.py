"""Seeded host-side (NumPy/SciPy) transforms for segmentation training samples.

A sample is a dict:
    "image":  float32 array (C, *S): channels first, S the 2 or 3 spatial axes;
    "label":  integer array (*S), optional;
    "affine": optional (d+1, d+1) matrix mapping a voxel index (array axis order) to mm
              (for 3D volumes: a `Volume`'s LPS affine).

Image and label always go through together: spatial transforms resample the image linearly
and the label by nearest neighbour on the same grid, and every transform that moves the voxel
grid updates "affine" (output index -> input index composed into it), except the elastic
deformation, which no matrix describes, so it drops "affine".

Every transform is called as `t(sample, rng)`; the random ones draw only from `rng`, an
explicit `numpy.random.Generator`, so one seed reproduces a sample exactly. They return a new
dict and never modify the input arrays.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from .volume import Volume

__all__ = ["Sample", "Transform", "Compose", "resample", "foreground_bbox",
           "NormalizeIntensity", "Resample", "CropForeground", "RandomPatch", "RandomFlip",
           "RandomRot90", "RandomAffine", "RandomElastic", "RandomGamma", "RandomNoise",
           "foreground_locations", "elastic_coordinates"]

Sample = dict[str, Any]


# ------------------------------------------------------------------------------- helpers
def _need_rng(rng: np.random.Generator | None, who: str) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{who} is random: call it with a numpy Generator, t(sample, rng)")
    return rng


def _spatial_ndim(sample: Sample) -> int:
    image = sample["image"]
    if image.ndim not in (3, 4):
        raise ValueError(f"sample image must be (C, H, W) or (C, D, H, W), got {image.shape}")
    label = sample.get("label")
    if label is not None and label.shape != image.shape[1:]:
        raise ValueError(f"sample label shape {label.shape} does not match image spatial "
                         f"shape {image.shape[1:]}")
    return image.ndim - 1


def _compose_affine(sample: Sample, out: Sample, index_map: np.ndarray | None) -> None:
    """out["affine"] = affine @ index_map, where index_map (homogeneous) takes an output voxel
    index to the input voxel index it was sampled from; None drops the affine."""
    if "affine" in sample:
        if index_map is None:
            out.pop("affine", None)
        else:
            out["affine"] = np.asarray(sample["affine"], dtype=np.float64) @ index_map


def _spacing_of(sample: Sample, d: int) -> np.ndarray:
    if "affine" in sample:
        return np.linalg.norm(np.asarray(sample["affine"], dtype=np.float64)[:d, :d], axis=0)
    return np.ones(d)


def _warp_matrix(sample: Sample, matrix: np.ndarray, offset: np.ndarray,
                 out_shape: Sequence[int]) -> Sample:
    """Resample image (linear) and label (nearest) at input index = matrix @ y + offset."""
    d = len(out_shape)
    out = dict(sample)
    image = sample["image"]
    out["image"] = np.stack([
        ndimage.affine_transform(ch.astype(np.float32, copy=False), matrix, offset,
                                 output_shape=tuple(out_shape), order=1, mode="constant",
                                 cval=0.0) for ch in image]).astype(np.float32, copy=False)
    if sample.get("label") is not None:
        out["label"] = ndimage.affine_transform(sample["label"], matrix, offset,
                                                output_shape=tuple(out_shape), order=0,
                                                mode="constant", cval=0)
    t = np.eye(d + 1)
    t[:d, :d] = matrix
    t[:d, d] = offset
    _compose_affine(sample, out, t)
    return out


# --------------------------------------------------------------------- functional (Volume)
def resample(volume: Volume, spacing: float | Sequence[float], order: int = 1) -> Volume:
    """`volume` on a grid of the given spacing (mm, per array axis), same direction and the
    same centre: shape = round(extent / spacing), so the physical extent is kept to within one
    new voxel. order=1 (linear) for images, order=0 (nearest) for label maps; a label map
    keeps its dtype."""
    new = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))
    if np.any(new <= 0):
        raise ValueError(f"resample spacing must be positive, got {spacing}")
    old = np.asarray(volume.spacing)
    n_in = np.asarray(volume.shape)
    n_out = np.maximum(1, np.round(n_in * old / new)).astype(int)
    ratio = new / old
    # output index y -> input index x = ratio * (y - centre_out) + centre_in
    offset = (n_in - 1) / 2.0 - ratio * (n_out - 1) / 2.0
    src = volume.array
    data = src if order == 0 else src.astype(np.float32, copy=False)
    arr = ndimage.affine_transform(data, ratio, offset, output_shape=tuple(n_out),
                                   order=order, mode="nearest")
    origin = volume.origin + volume.direction @ (old * offset)
    return Volume(arr, tuple(new), origin, volume.direction.copy(), dict(volume.meta))


def foreground_bbox(mask: np.ndarray, margin: int | Sequence[int] = 0) -> tuple[slice, ...]:
    """Bounding box of the nonzero voxels of `mask`, grown by `margin` voxels per axis and
    clipped to the array; the whole array when the mask is empty."""
    mask = np.asarray(mask)
    margin = np.broadcast_to(np.asarray(margin, dtype=int), (mask.ndim,))
    if not mask.any():
        return tuple(slice(0, n) for n in mask.shape)
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(0, int(hit[0]) - int(margin[axis])),
                         min(mask.shape[axis], int(hit[-1]) + 1 + int(margin[axis]))))
    return tuple(box)


def foreground_locations(label: np.ndarray, max_per_class: int = 10_000,
                         rng: np.random.Generator | None = None) -> dict[int, np.ndarray]:
    """{class value: (N, d) voxel indices} for every nonzero class of `label`, at most
    `max_per_class` each (a random subset, drawn from `rng` or a fixed seed), so patch sampling
    does not rescan the volume every time."""
    rng = rng if rng is not None else np.random.default_rng(0)
    out = {}
    for value in np.unique(label):
        if value == 0:
            continue
        where = np.argwhere(label == value)
        if len(where) > max_per_class:
            where = where[rng.choice(len(where), max_per_class, replace=False)]
        out[int(value)] = where
    return out


# ------------------------------------------------------------------------------ transforms
class Transform:
    """Base: `t(sample, rng=None) -> sample`."""

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class Compose(Transform):
    """Apply transforms in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample


class NormalizeIntensity(Transform):
    """Per channel: clip to the `percentiles` (None: no clip) and z-score, both computed over
    the foreground; with `nonzero=True` the foreground is the nonzero voxels (a skull-stripped
    brain) and the background is set to 0 afterwards, otherwise all voxels count."""

    def __init__(self, percentiles: tuple[float, float] | None = (0.5, 99.5),
                 nonzero: bool = True):
        self.percentiles = percentiles
        self.nonzero = nonzero

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        out = dict(sample)
        chans = []
        for ch in sample["image"]:
            ch = ch.astype(np.float32)
            mask = ch != 0 if self.nonzero else np.ones(ch.shape, bool)
            if not mask.any():
                mask = np.ones(ch.shape, bool)
            values = ch[mask]
            if self.percentiles is not None:
                lo, hi = np.percentile(values, self.percentiles)
                ch = np.clip(ch, lo, hi)
                values = ch[mask]
            mean, std = float(values.mean()), float(values.std())
            ch = (ch - mean) / max(std, 1e-8)
            if self.nonzero:
                ch[~mask] = 0.0
            chans.append(ch)
        out["image"] = np.stack(chans).astype(np.float32)
        return out


class Resample(Transform):
    """Resample a 3D sample to `spacing` mm (needs "affine"): image linear, label nearest,
    same centre, extent kept to within one voxel (see `resample`)."""

    def __init__(self, spacing: float | Sequence[float]):
        self.spacing = spacing

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        if _spatial_ndim(sample) != 3 or "affine" not in sample:
            raise ValueError("Resample needs a 3D sample with an 'affine'")
        affine = np.asarray(sample["affine"], dtype=np.float64)
        out = dict(sample)
        chans = [resample(Volume.from_affine(ch, affine), self.spacing, order=1)
                 for ch in sample["image"]]
        out["image"] = np.stack([v.array for v in chans]).astype(np.float32)
        if sample.get("label") is not None:
            out["label"] = resample(Volume.from_affine(sample["label"], affine),
                                    self.spacing, order=0).array
        out["affine"] = chans[0].affine
        return out


class CropForeground(Transform):
    """Crop to the bounding box of the foreground plus `margin` voxels: the nonzero voxels of
    any image channel (source="image") or of the label (source="label")."""

    def __init__(self, margin: int | Sequence[int] = 0, source: str = "image"):
        if source not in ("image", "label"):
            raise ValueError(f"CropForeground source must be 'image' or 'label', not {source!r}")
        self.margin = margin
        self.source = source

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        d = _spatial_ndim(sample)
        mask = (np.any(sample["image"] != 0, axis=0) if self.source == "image"
                else sample["label"] > 0)
        box = foreground_bbox(mask, self.margin)
        out = dict(sample)
        out["image"] = np.ascontiguousarray(sample["image"][(slice(None),) + box])
        if sample.get("label") is not None:
            out["label"] = np.ascontiguousarray(sample["label"][box])
        t = np.eye(d + 1)
        t[:d, d] = [b.start for b in box]
        _compose_affine(sample, out, t)
        out["bbox"] = box
        return out


class RandomPatch(Transform):
    """A random patch of `size` voxels (the sample is zero-padded, centred, where smaller).
    With probability `fg_fraction` the patch is centred on a foreground voxel (nnU-Net's
    oversampling: a class drawn uniformly among the present ones, then one of its voxels; from
    sample["fg_locations"] when given, see `foreground_locations`); with probability
    `hard_fraction` on one of sample["hard_locations"] (hard negatives: voxels a model got
    wrong, see `SegmentationDataset.set_hard_locations`), when the sample has any; otherwise
    placed uniformly. A sample without foreground always gets a uniform patch."""

    def __init__(self, size: Sequence[int], fg_fraction: float = 0.33,
                 hard_fraction: float = 0.0):
        self.size = tuple(int(s) for s in size)
        if not 0.0 <= fg_fraction <= 1.0:
            raise ValueError(f"fg_fraction must be in [0, 1], got {fg_fraction}")
        if not 0.0 <= hard_fraction <= 1.0 - fg_fraction:
            raise ValueError(f"hard_fraction must be in [0, 1 - fg_fraction], got "
                             f"{hard_fraction} with fg_fraction {fg_fraction}")
        self.fg_fraction, self.hard_fraction = fg_fraction, hard_fraction

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = _need_rng(rng, "RandomPatch")
        d = _spatial_ndim(sample)
        if len(self.size) != d:
            raise ValueError(f"patch size {self.size} has {len(self.size)} axes, the sample {d}")
        shape = np.asarray(sample["image"].shape[1:])
        size = np.asarray(self.size)
        pad_before = np.maximum(0, (size - shape + 1) // 2)
        full = np.maximum(shape, size)
        draw = rng.random()
        start = None
        hard = sample.get("hard_locations")
        if self.fg_fraction <= draw < self.fg_fraction + self.hard_fraction \
                and hard is not None and len(hard):
            centre = hard[int(rng.integers(len(hard)))] + pad_before
            start = np.clip(centre - size // 2, 0, full - size)
        if draw < self.fg_fraction:
            locations = sample.get("fg_locations")
            if locations is None and sample.get("label") is not None:
                locations = foreground_locations(sample["label"], rng=rng)
            classes = [c for c, v in (locations or {}).items() if len(v)]
            if classes:
                where = locations[classes[int(rng.integers(len(classes)))]]
                centre = where[int(rng.integers(len(where)))] + pad_before
                start = np.clip(centre - size // 2, 0, full - size)
        if start is None:
            start = np.array([int(rng.integers(0, f - s + 1)) for f, s in zip(full, size)])
        # The window in the unpadded array, and where it lands in the patch.
        src_lo = start - pad_before
        lo = np.maximum(src_lo, 0)
        hi = np.minimum(src_lo + size, shape)
        dst = tuple(slice(int(a - s), int(b - s)) for a, b, s in zip(lo, hi, src_lo))
        src = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        out = dict(sample)
        out.pop("fg_locations", None)
        out.pop("hard_locations", None)
        image = np.zeros((sample["image"].shape[0],) + self.size, np.float32)
        image[(slice(None),) + dst] = sample["image"][(slice(None),) + src]
        out["image"] = image
        if sample.get("label") is not None:
            label = np.zeros(self.size, sample["label"].dtype)
            label[dst] = sample["label"][src]
            out["label"] = label
        t = np.eye(d + 1)
        t[:d, d] = src_lo
        _compose_affine(sample, out, t)
        return out


class RandomFlip(Transform):
    """Flip each of the spatial `axes` (0-based over the spatial axes) with probability `p`."""

    def __init__(self, axes: Sequence[int] = (0, 1, 2), p: float = 0.5):
        self.axes = tuple(axes)
        self.p = p

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = _need_rng(rng, "RandomFlip")
        d = _spatial_ndim(sample)
        flips = [a for a in self.axes if a < d and rng.random() < self.p]
        out = dict(sample)
        if not flips:
            return out
        t = np.eye(d + 1)
        for a in flips:
            t[a, a] = -1.0
            t[a, d] = sample["image"].shape[1 + a] - 1
        out["image"] = np.ascontiguousarray(np.flip(sample["image"], [1 + a for a in flips]))
        if sample.get("label") is not None:
            out["label"] = np.ascontiguousarray(np.flip(sample["label"], flips))
        _compose_affine(sample, out, t)
        return out


class RandomRot90(Transform):
    """With probability `p`, rotate by k*90 degrees (k uniform in 1..3) in the plane of two
    spatial axes, the plane drawn from `planes` (pairs of 0-based spatial axes; default: the
    last two, the in-plane axes of an axial volume or a 2D slice). Shapes change when the two
    axes differ in length."""

    def __init__(self, planes: Sequence[tuple[int, int]] | None = None, p: float = 0.5):
        self.planes = None if planes is None else [tuple(pl) for pl in planes]
        self.p = p

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = _need_rng(rng, "RandomRot90")
        d = _spatial_ndim(sample)
        out = dict(sample)
        if rng.random() >= self.p:
            return out
        planes = self.planes or [(d - 2, d - 1)]
        a, b = planes[int(rng.integers(len(planes)))]
        if not (0 <= a < d and 0 <= b < d and a != b):
            raise ValueError(f"RandomRot90 plane {(a, b)} is not two of the {d} spatial axes")
        k = int(rng.integers(1, 4))
        image, label = sample["image"], sample.get("label")
        shape = list(image.shape[1:])
        t = np.eye(d + 1)
        for _ in range(k):
            # np.rot90(m, 1, (a, b)) == flip(swapaxes(m, a, b), a): output y -> input x.
            swap = np.eye(d + 1)
            swap[[a, b]] = swap[[b, a]]
            shape[a], shape[b] = shape[b], shape[a]
            flip = np.eye(d + 1)
            flip[a, a] = -1.0
            flip[a, d] = shape[a] - 1
            t = t @ swap @ flip
        out["image"] = np.ascontiguousarray(np.rot90(image, k, axes=(1 + a, 1 + b)))
        if label is not None:
            out["label"] = np.ascontiguousarray(np.rot90(label, k, axes=(a, b)))
        _compose_affine(sample, out, t)
        return out


def _rotation(d: int, angles_rad: Sequence[float]) -> np.ndarray:
    """A d x d rotation from one angle (2D) or three angles about the planes (1,2), (0,2),
    (0,1) (3D)."""
    if d == 2:
        c, s = np.cos(angles_rad[0]), np.sin(angles_rad[0])
        return np.array([[c, -s], [s, c]])
    r = np.eye(3)
    for (i, j), ang in zip(((1, 2), (0, 2), (0, 1)), angles_rad):
        g = np.eye(3)
        c, s = np.cos(ang), np.sin(ang)
        g[i, i] = g[j, j] = c
        g[i, j], g[j, i] = -s, s
        r = r @ g
    return r


class RandomAffine(Transform):
    """With probability `p`, rotate (each angle uniform in +-`rotate_deg`; in 3D about each of
    the three axes) and scale (one isotropic factor uniform in `scale`) about the centre, in
    physical space (the spacing from "affine", 1 otherwise). Image linear, label nearest,
    outside filled with 0; the shape is kept."""

    def __init__(self, rotate_deg: float = 15.0, scale: tuple[float, float] = (0.85, 1.15),
                 p: float = 0.5):
        self.rotate_deg = rotate_deg
        self.scale = scale
        self.p = p

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = _need_rng(rng, "RandomAffine")
        d = _spatial_ndim(sample)
        if rng.random() >= self.p:
            return dict(sample)
        angles = np.radians(rng.uniform(-self.rotate_deg, self.rotate_deg, 1 if d == 2 else 3))
        zoom = rng.uniform(*self.scale)
        sp = _spacing_of(sample, d)
        # Output index y -> mm (diag sp) -> inverse rotation/zoom -> input index.
        matrix = np.diag(1 / sp) @ _rotation(d, angles).T @ np.diag(sp) / zoom
        centre = (np.asarray(sample["image"].shape[1:]) - 1) / 2.0
        return _warp_matrix(sample, matrix, centre - matrix @ centre, sample["image"].shape[1:])


class RandomElastic(Transform):
    """With probability `p`, a smooth random displacement: independent normal offsets with
    standard deviation about `magnitude` voxels, a cubic B-spline over control points every
    `grid` voxels. Image linear, label nearest, border voxels repeated. Drops "affine" (no
    matrix describes the warp)."""

    def __init__(self, magnitude: float = 2.0, grid: int = 16, p: float = 0.3):
        self.magnitude = magnitude
        self.grid = grid
        self.p = p

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = _need_rng(rng, "RandomElastic")
        _spatial_ndim(sample)
        if rng.random() >= self.p:
            return dict(sample)
        shape = sample["image"].shape[1:]
        coords = elastic_coordinates(shape, self.magnitude, self.grid, rng)
        out = dict(sample)
        out["image"] = np.stack([ndimage.map_coordinates(ch.astype(np.float32, copy=False),
                                                         coords, order=1, mode="nearest")
                                 for ch in sample["image"]]).astype(np.float32, copy=False)
        if sample.get("label") is not None:
            out["label"] = ndimage.map_coordinates(sample["label"], coords, order=0,
                                                   mode="nearest")
        _compose_affine(sample, out, None)
        return out


def _bspline_matrix(n: int, grid: int) -> np.ndarray:
    """(n, m) weights of m cubic B-spline control points spaced `grid` voxels apart (one
    extra on each side, so every voxel gets full support) at n voxel positions."""
    m = int(np.ceil((n - 1) / grid)) + 3
    t = 1.0 + np.arange(n) / grid
    x = np.abs(t[:, None] - np.arange(m)[None, :])
    return np.where(x < 1, 2 / 3 - x ** 2 + x ** 3 / 2,
                    np.where(x < 2, (2 - x) ** 3 / 6, 0.0)).astype(np.float32)


def elastic_coordinates(shape: Sequence[int], magnitude: float, grid: int,
                        rng: np.random.Generator,
                        base: np.ndarray | None = None) -> np.ndarray:
    """(d, *shape) sampling coordinates: `base` (default: the identity grid) plus a smooth
    random displacement per axis, a cubic B-spline over control points every `grid` voxels
    with normal coefficients, scaled so the displacement's std is about `magnitude` voxels."""
    shape = tuple(int(s) for s in shape)
    if base is None:
        base = np.indices(shape, dtype=np.float32)
    weights = [_bspline_matrix(n, max(1, int(grid))) for n in shape]
    # The std of a B-spline sum of unit normals is sqrt(sum of squared weights) per axis.
    gain = float(np.prod([np.sqrt((w ** 2).sum(1)).mean() for w in weights]))
    out = np.empty((len(shape),) + shape, np.float32)
    for axis in range(len(shape)):
        field = rng.normal(0.0, magnitude / gain, tuple(w.shape[1] for w in weights))
        field = field.astype(np.float32)
        for a, w in enumerate(weights):   # separable: contract each coarse axis in turn
            field = np.moveaxis(np.tensordot(w, field, axes=([1], [a])), 0, a)
        out[axis] = base[axis] + field
    return out


class RandomGamma(Transform):
    """With probability `p`, per channel: rescale to [0, 1] over its range, raise to a power
    uniform in `gamma`, and map back to the original range."""

    def __init__(self, gamma: tuple[float, float] = (0.7, 1.5), p: float = 0.3):
        self.gamma = gamma
        self.p = p

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = _need_rng(rng, "RandomGamma")
        out = dict(sample)
        if rng.random() >= self.p:
            return out
        chans = []
        for ch in sample["image"]:
            g = rng.uniform(*self.gamma)
            lo, hi = float(ch.min()), float(ch.max())
            if hi > lo:
                ch = ((ch - lo) / (hi - lo)) ** g * (hi - lo) + lo
            chans.append(ch)
        out["image"] = np.stack(chans).astype(np.float32)
        return out


class RandomNoise(Transform):
    """With probability `p`, add Gaussian noise whose standard deviation is uniform in
    `std` (in the image's units: after z-scoring, fractions of the foreground std)."""

    def __init__(self, std: tuple[float, float] = (0.0, 0.1), p: float = 0.15):
        self.std = std
        self.p = p

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = _need_rng(rng, "RandomNoise")
        out = dict(sample)
        if rng.random() >= self.p:
            return out
        sigma = rng.uniform(*self.std)
        image = sample["image"]
        out["image"] = (image + rng.normal(0.0, sigma, image.shape)).astype(np.float32)
        return out
