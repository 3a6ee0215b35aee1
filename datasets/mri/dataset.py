"""Training samples from segmentation cases: axial slices (2D) or random patches (3D), each
drawn from its own seeded generator so an (epoch, index) pair always gives the same sample.

A case is a sample dict (see `transforms`): "image" (C, *S) float32, "label" (*S) integer,
optionally "affine" and "name". `case_from_volumes` builds one from Volumes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from framework.utils.data import Dataset

from .io import check_same_geometry
from .transforms import RandomPatch, Sample, Transform, foreground_locations
from .volume import Volume

__all__ = ["axial_axis", "case_from_volumes", "SegmentationDataset"]


def axial_axis(affine: np.ndarray) -> tuple[int, int]:
    """(axis, sign): the array axis most nearly along LPS +z (superior), and +1 when the index
    grows towards superior, -1 when towards inferior."""
    columns = np.asarray(affine, dtype=np.float64)[:3, :3]
    z = columns[2] / np.linalg.norm(columns, axis=0)
    axis = int(np.argmax(np.abs(z)))
    return axis, (1 if z[axis] > 0 else -1)


def case_from_volumes(image: Volume | Sequence[Volume], label: Volume | None = None,
                      name: str = "") -> Sample:
    """A case dict from one image Volume (or one per channel) and an optional label Volume,
    checking that all share one voxel grid."""
    images = [image] if isinstance(image, Volume) else list(image)
    if not images:
        raise ValueError("case_from_volumes needs at least one image volume")
    for other in images[1:] + ([label] if label is not None else []):
        check_same_geometry(images[0], other)
    case: Sample = {"image": np.stack([v.array.astype(np.float32) for v in images]),
                    "affine": images[0].affine, "name": name}
    if label is not None:
        case["label"] = label.array
    return case


class SegmentationDataset(Dataset):
    """Yields (image float32 (C, *S), label int64 (*S)) from `cases`.

    mode="2d": one item per axial slice (the axis from each case's affine via `axial_axis`,
    axis 0 without one), optionally only the indices in `slices[i]` for case i; with
    `patch_size` (H, W) a random patch of each slice. mode="3d": `samples_per_epoch` items
    (default: one per case), item i a random `patch_size` patch of case i % len(cases).
    Patches are centred on foreground with probability `fg_fraction`, and on the case's hard
    negatives (`set_hard_locations`) with probability `hard_fraction`. `preprocess` runs once
    per case at construction (deterministic: resampling, normalisation, cropping);
    `transform` runs per item (augmentation). Item i of epoch e draws from
    `numpy.random.default_rng([seed, e, i])`; call `set_epoch(e)` before each epoch (with
    DataLoader workers, before the loader's iterator is created)."""

    def __init__(self, cases: Sequence[Sample], mode: str = "2d",
                 patch_size: Sequence[int] | None = None, *,
                 transform: Transform | None = None, preprocess: Transform | None = None,
                 fg_fraction: float = 0.33, hard_fraction: float = 0.0,
                 samples_per_epoch: int | None = None,
                 slices: Sequence[Sequence[int]] | None = None, seed: int = 0):
        if mode not in ("2d", "3d"):
            raise ValueError(f"mode must be '2d' or '3d', not {mode!r}")
        if not cases:
            raise ValueError("SegmentationDataset needs at least one case")
        if mode == "3d" and patch_size is None:
            raise ValueError("mode='3d' needs a patch_size (D, H, W)")
        want = 2 if mode == "2d" else 3
        if patch_size is not None and len(patch_size) != want:
            raise ValueError(f"mode={mode!r} needs a {want}-axis patch_size, got {patch_size}")
        self.mode = mode
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        self.cases = []
        for i, case in enumerate(cases):
            case = preprocess(case) if preprocess is not None else dict(case)
            if case["image"].ndim != 4 or case.get("label") is None \
                    or case["label"].shape != case["image"].shape[1:]:
                raise ValueError(f"case {case.get('name') or i}: needs image (C, D, H, W) and "
                                 f"a label on its grid, got image {case['image'].shape}, "
                                 f"label {getattr(case.get('label'), 'shape', None)}")
            self.cases.append(case)
        self.patch = RandomPatch(patch_size, fg_fraction, hard_fraction) \
            if patch_size is not None else None
        if mode == "2d":
            if slices is not None and len(slices) != len(self.cases):
                raise ValueError(f"slices has {len(slices)} entries for {len(self.cases)} cases")
            self.axes = [axial_axis(c["affine"])[0] if "affine" in c else 0
                         for c in self.cases]
            self.items = [(ci, int(k)) for ci, c in enumerate(self.cases)
                          for k in (range(c["image"].shape[1 + self.axes[ci]])
                                    if slices is None else slices[ci])]
        else:
            for c in self.cases:
                c["fg_locations"] = foreground_locations(c["label"])
            self.length = int(samples_per_epoch or len(self.cases))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_hard_locations(self, case: int, locations: np.ndarray | None) -> None:
        """Voxel indices (N, 3) of case `case` that patches are centred on with probability
        `hard_fraction` (3D mode): e.g. where a model predicts foreground that is not."""
        if self.mode != "3d":
            raise ValueError("hard-negative locations need mode='3d'")
        if locations is None or not len(locations):
            self.cases[case].pop("hard_locations", None)
            return
        locations = np.asarray(locations, dtype=np.int64)
        if locations.ndim != 2 or locations.shape[1] != 3:
            raise ValueError(f"hard-negative locations must be (N, 3) voxel indices, got "
                             f"{locations.shape}")
        self.cases[case]["hard_locations"] = locations

    def __len__(self) -> int:
        return len(self.items) if self.mode == "2d" else self.length

    def sample(self, index: int) -> Sample:
        """The item as a sample dict (before conversion to the output pair)."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        if self.mode == "2d":
            ci, k = self.items[index]
            case, axis = self.cases[ci], self.axes[ci]
            s: Sample = {"image": np.take(case["image"], k, axis=1 + axis),
                         "label": np.take(case["label"], k, axis=axis)}
        else:
            case = self.cases[index % len(self.cases)]
            s = {k: v for k, v in case.items() if k not in ("name",)}
        if self.patch is not None:
            s = self.patch(s, rng)
        if self.transform is not None:
            s = self.transform(s, rng)
        return s

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.sample(index)
        return (np.ascontiguousarray(s["image"], dtype=np.float32),
                np.ascontiguousarray(s["label"], dtype=np.int64))
