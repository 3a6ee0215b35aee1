"""Users' data sets in the Medical Segmentation Decathlon / nnU-Net layout:

    folder/dataset.json, folder/imagesTr/..., folder/labelsTr/... (, folder/imagesTs/...)

dataset.json is read in either dialect:
- MSD / nnU-Net v1: "labels" {"0": "background", ...}, "modality" {"0": "T1", ...},
  "training" [{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}], "test"
  [paths]. An image entry naming a missing file with several channels resolves to nnU-Net
  v1's per-channel files x_0000.nii.gz, x_0001.nii.gz, ...
- nnU-Net v2: "labels" {"background": 0, ...}, "channel_names" {"0": "T1"}, "file_ending";
  cases are the files of labelsTr, images imagesTr/<case>_<channel:04d><file_ending>.
Image entries may also be DICOM folders (read by `read_image`). 4D multi-channel NIfTI images
(the original MSD BraTS files) are not read: split them into per-channel files.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import check_same_geometry, read_image
from .transforms import Sample

__all__ = ["MSDCase", "MSDDataset", "open_msd"]


@dataclass(frozen=True)
class MSDCase:
    """One case: its name, one image path per channel, and the label path (None for test)."""

    name: str
    images: tuple[Path, ...]
    label: Path | None


@dataclass
class MSDDataset:
    """An opened data set: `labels` {value: name}, `channels` (names, in channel order),
    `training` and `test` cases (paths checked to exist). `load(case)` reads one."""

    root: Path
    name: str
    labels: dict[int, str]
    channels: list[str]
    training: list[MSDCase]
    test: list[MSDCase]

    def load(self, case: MSDCase | int) -> Sample:
        """A case dict {"image": (C, D, H, W) float32, "label": integer (D, H, W) or absent,
        "affine": the first image's LPS affine, "name"}; every channel and the label must
        share the first image's voxel grid (one-line ValueError naming both files), and label
        values must be declared in dataset.json."""
        if isinstance(case, int):
            case = self.training[case]
        vols = [read_image(p) for p in case.images]
        for p, v in zip(case.images[1:], vols[1:]):
            check_same_geometry(vols[0], v, (str(case.images[0]), str(p)))
        sample: Sample = {"image": np.stack([v.array.astype(np.float32) for v in vols]),
                          "affine": vols[0].affine, "name": case.name}
        if case.label is not None:
            label = read_image(case.label)
            check_same_geometry(vols[0], label, (str(case.images[0]), str(case.label)))
            values = label.array
            if not np.issubdtype(values.dtype, np.integer):
                if not np.all(values == np.round(values)):
                    raise ValueError(f"{case.label}: label volume holds non-integer values")
                values = values.astype(np.int64)
            bad = sorted(set(np.unique(values).tolist()) - set(self.labels))
            if bad:
                raise ValueError(f"{case.label}: label values {bad} are not declared in "
                                 f"{self.root / 'dataset.json'} (labels {sorted(self.labels)})")
            sample["label"] = values
        return sample

    def load_training(self) -> list[Sample]:
        return [self.load(c) for c in self.training]


def _labels(raw: dict, where: Path) -> dict[int, str]:
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{where}: 'labels' must be a non-empty object")
    out = {}
    for k, v in raw.items():
        if str(k).lstrip("-").isdigit():          # MSD: {"0": "background"}
            out[int(k)] = str(v)
        elif isinstance(v, int):                  # nnU-Net v2: {"background": 0}
            out[v] = str(k)
        else:
            raise ValueError(f"{where}: label {k!r}: {v!r} is neither value->name nor "
                             "name->value (nnU-Net region labels are not supported)")
    return out


def _resolve(root: Path, entry: str, n_channels: int, where: Path) -> tuple[Path, ...]:
    path = (root / entry).resolve() if not Path(entry).is_absolute() else Path(entry)
    if path.exists():
        return (path,)
    name = path.name
    stem, ending = (name[:-7], ".nii.gz") if name.endswith(".nii.gz") else \
        (path.stem, path.suffix)
    per_channel = tuple(path.with_name(f"{stem}_{c:04d}{ending}") for c in range(n_channels))
    if all(p.exists() for p in per_channel):
        return per_channel
    raise FileNotFoundError(f"{where}: image {entry} not found (nor {per_channel[0].name})")


def open_msd(folder: str | os.PathLike) -> MSDDataset:
    """Open an MSD / nnU-Net data set folder (see the module docstring), checking that
    dataset.json parses and that every listed file exists. Volumes are read by `load`."""
    root = Path(folder)
    where = root / "dataset.json"
    if not where.is_file():
        raise FileNotFoundError(f"{where}: no dataset.json (expected the MSD/nnU-Net layout: "
                                "dataset.json, imagesTr/, labelsTr/)")
    try:
        info = json.loads(where.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{where}: not valid JSON ({e})") from None
    labels = _labels(info.get("labels"), where)
    chans = info.get("channel_names", info.get("modality")) or {"0": "image"}
    channels = [str(chans[k]) for k in sorted(chans, key=int)]
    training, test = [], []
    if "training" in info:
        for e in info["training"]:
            if not isinstance(e, dict) or "image" not in e or "label" not in e:
                raise ValueError(f"{where}: training entry {e!r} needs 'image' and 'label'")
            label = root / e["label"]
            if not label.exists():
                raise FileNotFoundError(f"{where}: label {e['label']} not found")
            images = _resolve(root, e["image"], len(channels), where)
            training.append(MSDCase(Path(e["label"]).name.split(".")[0], images, label.resolve()))
        for e in info.get("test", []):
            entry = e["image"] if isinstance(e, dict) else e
            test.append(MSDCase(Path(entry).name.split(".")[0],
                                _resolve(root, entry, len(channels), where), None))
    else:
        ending = info.get("file_ending", ".nii.gz")
        label_dir = root / "labelsTr"
        if not label_dir.is_dir():
            raise FileNotFoundError(f"{label_dir}: missing (dataset.json has no 'training' list)")
        for label in sorted(label_dir.iterdir()):
            if not label.name.endswith(ending) or label.name.startswith("."):
                continue
            name = label.name[:-len(ending)]
            images = tuple(root / "imagesTr" / f"{name}_{c:04d}{ending}"
                           for c in range(len(channels)))
            missing = next((p for p in images if not p.exists()), None)
            if missing is not None:
                raise FileNotFoundError(f"{where}: image {missing} for label {label} not found")
            training.append(MSDCase(name, images, label))
    if not training:
        raise ValueError(f"{where}: no training cases")
    return MSDDataset(root, str(info.get("name", root.name)), labels, channels, training, test)
