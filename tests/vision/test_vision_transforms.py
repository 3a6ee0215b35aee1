"""datasets.vision.transforms: the functional kernels against torchvision's outputs (a committed
fixture made by scripts/make_torchvision_fixtures.py, so torchvision is not needed here), the
random transforms' sampling rules, reproducibility under framework seeds and DataLoader
workers, presets and their specs, ConvertChannels, MixUp / CutMix, and reprs."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import framework
import framework.nn.functional as NF
from datasets.vision import transforms as T
from datasets.vision.transforms import functional as F
from framework.utils.data import DataLoader, Dataset

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "torchvision_transforms.npz"
_Z = np.load(FIXTURE, allow_pickle=False)
CASES = json.loads(str(_Z["cases"]))

# Max abs difference allowed, in uint8 grey levels, against torchvision's PIL path. Resampling
# (resize, rotate, affine) is Pillow's own code on both sides, so it is exact with the same
# Pillow; 1 level leaves room for Pillow versions that round differently. The Gaussian blur is
# a separable float64 NumPy convolution where torchvision runs a 2-D float32 conv2d, so a value
# within float error of .5 may round the other way. Everything else is exact.
TOLERANCE = {"resize": 1, "resized_crop": 1, "rotate": 1, "affine": 1, "adjust_hue": 1,
             "gaussian_blur": 1}


def _np(t):
    return np.asarray(t._data) if isinstance(t, framework.Tensor) else np.asarray(t)


def _image(h=23, w=31, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def _run_case(case, x):
    args = dict(case["args"])
    if case["op"] in ("normalize", "erase"):
        if "v" in args:
            args["v"] = framework.tensor(args["v"])
        return getattr(F, case["op"])(framework.tensor(x), **args)
    return getattr(F, case["op"])(x, **args)


# ------------------------------------------------------------------ kernels vs torchvision

@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_functional_matches_torchvision(case):
    x, expected = _Z["in/" + case["input"]], _Z["out/" + case["name"]]
    if case["op"] in ("normalize", "erase", "to_tensor"):
        out = _run_case(case, x)
        assert isinstance(out, framework.Tensor) and out.dtype == framework.float32
        np.testing.assert_array_equal(_np(out), expected)  # float32 arithmetic, exact
        return
    if expected.ndim == 2:
        expected = expected[:, :, None]
    tol = TOLERANCE.get(case["op"], 0)
    # the same result from each accepted input form: HWC/HW uint8, PIL, float in [0, 1]
    for form in (x, Image.fromarray(x), x.astype(np.float64) / 255.0):
        out = _run_case(case, form)
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape == expected.shape
        assert out.flags.writeable
        diff = np.abs(out.astype(np.int16) - expected).max()
        assert diff <= tol, f"{case['name']}: max abs diff {diff} > {tol}"


def test_fixture_covers_every_kernel_and_is_small():
    ops = {c["op"] for c in CASES}
    assert ops >= {"resize", "center_crop", "crop", "pad", "hflip", "vflip", "rotate", "affine",
                   "adjust_brightness", "adjust_contrast", "adjust_saturation", "adjust_hue",
                   "rgb_to_grayscale", "gaussian_blur", "to_tensor", "normalize", "erase",
                   "resized_crop"}
    assert FIXTURE.stat().st_size < 300_000
    assert json.loads(str(_Z["versions"]))["torchvision"].startswith("0.")


def test_normalize_numpy_array_matches_fixture_and_inplace():
    case = next(c for c in CASES if c["name"] == "normalize_rgb")
    x = _Z["in/rgb_chw"].copy()
    out = F.normalize(x, **case["args"])
    np.testing.assert_array_equal(out, _Z["out/normalize_rgb"])
    assert not np.array_equal(x, out)  # not in place by default
    F.normalize(x, **case["args"], inplace=True)
    np.testing.assert_array_equal(x, _Z["out/normalize_rgb"])
    t = framework.tensor(_Z["in/rgb_chw"])
    assert T.Normalize(case["args"]["mean"], case["args"]["std"], inplace=True)(t) is t


def test_luma_is_pillows_convert_L():
    img = _image(64, 64)
    expected = np.asarray(Image.fromarray(img).convert("L"))
    np.testing.assert_array_equal(F.rgb_to_grayscale(img)[:, :, 0], expected)
    np.testing.assert_array_equal(T.ConvertChannels(1)(img)[:, :, 0], expected)


def test_input_validation_errors():
    with pytest.raises(ValueError, match=r"C in \{1, 3\}.*\(4, 4, 4\)"):
        F.to_array(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\].*2"):
        F.to_array(np.full((4, 4), 2.0))
    with pytest.raises(TypeError, match="int16"):
        F.to_array(np.zeros((4, 4), np.int16))
    with pytest.raises(ValueError, match="I;16"):
        F.to_array(Image.new("I;16", (4, 4)))
    with pytest.raises(TypeError, match="list"):
        F.to_array([[0]])
    assert F.to_array(Image.new("RGBA", (5, 4))).shape == (4, 5, 3)
    assert F.to_array(Image.new("1", (5, 4))).shape == (4, 5, 1)
    with pytest.raises(ValueError, match="max_size = 10 must be strictly greater"):
        F.resize(_image(), 10, max_size=10)
    with pytest.raises(ValueError, match="unknown interpolation 'cubic'"):
        T.Resize(10, interpolation="cubic")
    with pytest.raises(ValueError, match="nearest, bilinear and bicubic"):
        F.rotate(_image(), 10, interpolation="lanczos")
    with pytest.raises(ValueError, match="padding_mode"):
        F.pad(_image(), 2, padding_mode="wrap")
    with pytest.raises(ValueError, match="fill has 2 values"):
        F.pad(_image(), 2, fill=[1, 2])
    with pytest.raises(ValueError, match=r"hue_factor \(0.7\)"):
        F.adjust_hue(_image(), 0.7)
    with pytest.raises(ValueError, match="odd positive"):
        F.gaussian_blur(_image(), 4)


def test_resize_rules():
    assert F.resized_shape(23, 31, 15) == (15, 20)
    assert F.resized_shape(31, 23, 15) == (20, 15)
    assert F.resized_shape(23, 31, [15], max_size=18) == (13, 18)
    assert F.resized_shape(23, 31, None, max_size=62) == (46, 62)
    assert F.resized_shape(23, 31, (7, 9)) == (7, 9)
    img = _image()
    assert F.resize(img, 23) is not img and np.array_equal(F.resize(img, 23), img)
    with pytest.warns(UserWarning, match="Anti-alias option is always applied"):
        F.resize(img, 12, antialias=False)


def test_to_tensor_dtypes_and_shapes():
    t = T.ToTensor()(np.full((3, 4), 255, np.uint8))
    assert t.shape == (1, 3, 4) and t.dtype == framework.float32 and float(t.max().item()) == 1.0
    f = np.random.default_rng(0).random((3, 4, 2))
    tf = T.ToTensor()(f)  # other dtypes: not scaled, dtype kept (as torchvision)
    assert tf.dtype == framework.float64 and tf.shape == (2, 3, 4)
    np.testing.assert_array_equal(_np(tf), f.transpose(2, 0, 1))
    with pytest.raises(TypeError, match="to_tensor expects"):
        T.ToTensor()(np.zeros(5))


def test_normalize_errors():
    with pytest.raises(TypeError, match="float tensor.*uint8"):
        F.normalize(framework.zeros(3, 2, 2, dtype=framework.uint8), [0.5], [0.5])
    with pytest.raises(ValueError, match="need 1 value for a 1-channel image, got 3 and 3"):
        F.normalize(framework.zeros(1, 2, 2), [0.5] * 3, [0.5] * 3)
    with pytest.raises(ValueError, match="std must not contain zeros"):
        T.Normalize([0.5], [0.0])
    with pytest.raises(ValueError, match="same length"):
        T.Normalize([0.5, 0.5], [0.2])
    with pytest.raises(ValueError, match=r"\(\.\.\., C, H, W\)"):
        F.normalize(framework.zeros(2, 2), [0.5], [0.5])


# ------------------------------------------------------------------ sampling rules

def _seeded(seed, fn):
    framework.manual_seed(seed)
    return fn()


def test_random_resized_crop_params_within_bounds():
    img = _image(60, 80)
    scale, ratio = (0.08, 1.0), (3 / 4, 4 / 3)
    for seed in range(200):
        i, j, h, w = _seeded(seed, lambda: T.RandomResizedCrop.get_params(img, scale, ratio))
        assert 0 <= i <= 60 - h and 0 <= j <= 80 - w and h > 0 and w > 0
        # rounding h and w moves area and ratio a little beyond the sampled ones
        assert 0.08 * 0.8 <= h * w / (60 * 80) <= 1.0
        assert 3 / 4 - 0.1 <= w / h <= 4 / 3 + 0.1
    out = T.RandomResizedCrop((20, 30))(img)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("shape, expected", [((20, 100), (0, 36, 20, 27)),
                                             ((100, 20), (36, 0, 27, 20)),
                                             ((30, 35), (0, 0, 30, 35))])
def test_random_resized_crop_central_fallback(shape, expected):
    # an impossible scale makes all 10 attempts fail: central crop with the ratio clamped
    params = T.RandomResizedCrop.get_params(_image(*shape), (2.0, 3.0), (3 / 4, 4 / 3))
    assert params == expected


def test_random_crop_padding_and_pad_if_needed():
    img = _image(10, 12)
    for seed in range(30):
        i, j, h, w = _seeded(seed, lambda: T.RandomCrop.get_params(img, (6, 5)))
        assert (h, w) == (6, 5) and 0 <= i <= 4 and 0 <= j <= 7
    assert T.RandomCrop.get_params(img, (10, 12)) == (0, 0, 10, 12)
    with pytest.raises(ValueError, match=r"Required crop size \(16, 16\) is larger"):
        T.RandomCrop(16)(img)
    # pad_if_needed pads by the shortfall on both ends, so the image sits inside the crop area
    out = T.RandomCrop(16, pad_if_needed=True, fill=7)(img)
    assert out.shape == (16, 16, 3) and (out == 7).any()
    # padding=4 with a same-size crop: every output is a shifted copy of the input
    digits = _image(28, 28, 1)
    padded = F.pad(digits, 4)
    for seed in range(5):
        out = _seeded(seed, lambda: T.RandomCrop(28, padding=4)(digits))
        i, j, _, _ = _seeded(seed, lambda: T.RandomCrop.get_params(padded, (28, 28)))
        np.testing.assert_array_equal(out, padded[i:i + 28, j:j + 28])
    edge = T.RandomCrop(28, padding=4, padding_mode="edge")(digits)
    assert edge.shape == (28, 28, 1)


def test_random_affine_and_rotation_params():
    degrees = [-15.0, 15.0]
    for seed in range(50):
        angle, (tx, ty), scale, (sx, sy) = _seeded(seed, lambda: T.RandomAffine.get_params(
            degrees, [0.1, 0.2], [0.9, 1.1], [-5.0, 5.0, -3.0, 3.0], [31, 23]))
        assert -15 <= angle <= 15 and 0.9 <= scale <= 1.1
        assert isinstance(tx, int) and abs(tx) <= round(3.1) and abs(ty) <= round(4.6)
        assert -5 <= sx <= 5 and -3 <= sy <= 3
    assert T.RandomAffine.get_params([0, 0], None, None, None, [31, 23]) == \
        (0.0, (0, 0), 1.0, (0.0, 0.0))
    assert T.RandomAffine(10, shear=4).shear == [-4.0, 4.0]
    with pytest.raises(ValueError, match="translate should be 2 fractions"):
        T.RandomAffine(10, translate=[1.5, 0.1])
    with pytest.raises(ValueError, match="must be positive"):
        T.RandomRotation(-3)
    for seed in range(20):
        assert 5 <= _seeded(seed, lambda: T.RandomRotation.get_params([5.0, 8.0])) < 8
    img = _image()
    # the transform applies functional.affine with its sampled parameters
    t = T.RandomAffine(20, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=10, fill=3)
    params = _seeded(5, lambda: t.get_params(t.degrees, t.translate, t.scale, t.shear, [31, 23]))
    np.testing.assert_array_equal(_seeded(5, lambda: t(img)), F.affine(img, *params, fill=3))
    assert T.RandomRotation((90, 90), expand=True)(img).shape == (31, 23, 3)


def test_color_jitter_ranges_order_and_application():
    cj = T.ColorJitter(brightness=0.4, contrast=2.0, saturation=(0.5, 1.5), hue=0.1)
    assert cj.brightness == (0.6, 1.4) and cj.contrast == (0.0, 3.0)
    assert cj.saturation == (0.5, 1.5) and cj.hue == (-0.1, 0.1)
    assert T.ColorJitter(brightness=0, hue=0).brightness is None
    assert T.ColorJitter(brightness=(1, 1)).brightness is None
    with pytest.raises(ValueError, match="hue values should be between"):
        T.ColorJitter(hue=0.6)
    with pytest.raises(ValueError, match="brightness is a single number"):
        T.ColorJitter(brightness=-1)
    img = _image()
    orders = set()
    for seed in range(12):
        order, b, c, s, h = _seeded(seed, lambda: cj.get_params(cj.brightness, cj.contrast,
                                                               cj.saturation, cj.hue))
        assert sorted(order) == [0, 1, 2, 3]
        orders.add(tuple(order))
        assert 0.6 <= b <= 1.4 and 0 <= c <= 3 and 0.5 <= s <= 1.5 and -0.1 <= h <= 0.1
        expected = img
        for k in order:
            fn = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)[k]
            expected = fn(expected, (b, c, s, h)[k])
        np.testing.assert_array_equal(_seeded(seed, lambda: cj(img)), expected)
    assert len(orders) > 1  # the order really is random
    _, *factors = T.ColorJitter(contrast=0.5).get_params(None, (0.5, 1.5), None, None)
    assert factors[0] is None and factors[2] is None and factors[3] is None


def test_gaussian_blur_grayscale_and_flips():
    img = _image()
    gb = T.GaussianBlur(5, sigma=(0.5, 1.5))
    for seed in range(10):
        assert 0.5 <= _seeded(seed, lambda: gb.get_params(*gb.sigma)) < 1.5
    sigma = _seeded(3, lambda: gb.get_params(*gb.sigma))
    np.testing.assert_array_equal(_seeded(3, lambda: gb(img)), F.gaussian_blur(img, 5, sigma))
    with pytest.raises(ValueError, match="odd and positive"):
        T.GaussianBlur(4)
    with pytest.raises(ValueError, match="sigma values should be positive"):
        T.GaussianBlur(3, sigma=(2.0, 1.0))
    g = T.RandomGrayscale(p=1.0)(img)
    assert g.shape == img.shape and (g == g[:, :, :1]).all()
    assert T.Grayscale(3)(img).shape == (23, 31, 3) and T.Grayscale()(img).shape == (23, 31, 1)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(img), img[:, ::-1])
    np.testing.assert_array_equal(T.RandomVerticalFlip(1.0)(img), img[::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(Image.fromarray(img)), img)
    flips = [bool((T.RandomHorizontalFlip()(img) != img).any()) for _ in range(40)]
    assert 5 < sum(flips) < 35


def test_random_erasing_box_value_and_fallback():
    x = framework.rand(3, 20, 30)
    for seed in range(30):
        out = _seeded(seed, lambda: T.RandomErasing(p=1.0, value=[5.0, 6.0, 7.0])(x))
        changed = _np(out) != _np(x)
        ys, xs = np.nonzero(changed.any(0))
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert changed.any(0).sum() == h * w  # a rectangle
        assert 0.02 * 0.5 <= h * w / 600 <= 0.33 * 1.5
        box = _np(out)[:, ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        np.testing.assert_array_equal(box, np.broadcast_to([[[5.0]], [[6.0]], [[7.0]]], box.shape))
    np.testing.assert_array_equal(_np(x), _np(x.clone()))  # the input is untouched
    # no box of ~99% area and an extreme ratio fits: unchanged
    same = T.RandomErasing(p=1.0, scale=(0.98, 0.99), ratio=(10.0, 20.0))(x)
    np.testing.assert_array_equal(_np(same), _np(x))
    noise = T.RandomErasing(p=1.0, value="random")(x)
    assert (_np(noise) != _np(x)).any()
    y = x.clone()
    assert T.RandomErasing(p=1.0, inplace=True)(y) is y
    with pytest.raises(ValueError, match="either a single value or 3"):
        T.RandomErasing(p=1.0, value=[1.0, 2.0])(x)
    with pytest.raises(TypeError, match="after ToTensor"):
        T.RandomErasing(p=1.0)(_image())
    assert T.RandomErasing(p=0.0)(x) is x


def test_random_apply_and_choice():
    img = _image()
    flip = T.RandomHorizontalFlip(1.0)
    np.testing.assert_array_equal(T.RandomApply([flip], p=1.0)(img), img[:, ::-1])
    assert T.RandomApply([flip], p=0.0)(img) is img
    choice = T.RandomChoice([T.Grayscale(), flip], p=[0.0, 1.0])
    np.testing.assert_array_equal(choice(img), img[:, ::-1])
    picks = [T.RandomChoice([flip, flip, flip]).pick() for _ in range(60)]
    assert set(picks) == {0, 1, 2}
    with pytest.raises(ValueError, match="non-negative weights"):
        T.RandomChoice([flip], p=[1.0, 2.0])
    with pytest.raises(TypeError, match="must be callable"):
        T.Compose([flip, 3])
    assert T.Lambda(lambda a: a + 1)(np.array([1]))[0] == 2


# ------------------------------------------------------------------ reproducibility

RANDOM_TRANSFORMS = [T.RandomCrop(16, padding=2), T.RandomResizedCrop(16),
                     T.RandomHorizontalFlip(), T.RandomVerticalFlip(), T.RandomRotation(30),
                     T.RandomAffine(20, translate=(0.2, 0.2), scale=(0.8, 1.2), shear=10),
                     T.ColorJitter(0.4, 0.4, 0.4, 0.1), T.RandomGrayscale(0.5),
                     T.GaussianBlur(3), T.RandomApply([T.Grayscale(3)]),
                     T.RandomChoice([T.Grayscale(3), T.RandomHorizontalFlip(1.0)])]


@pytest.mark.parametrize("t", RANDOM_TRANSFORMS, ids=lambda t: type(t).__name__)
def test_same_seed_same_output(t):
    img = _image()
    runs = [_seeded(s, lambda: [t(img) for _ in range(4)]) for s in (7, 7, 8)]
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(runs[0], runs[2]))


def test_tensor_and_batch_transforms_reproducible():
    x = framework.rand(4, 3, 12, 12)
    labels = framework.tensor([0, 1, 2, 3])
    for t in (T.RandomErasing(p=1.0, value="random"), T.MixUp(num_classes=4),
              T.CutMix(num_classes=4)):
        call = (lambda: t(x[0])) if isinstance(t, T.RandomErasing) else (lambda: t(x, labels))
        a, b = _seeded(3, call), _seeded(3, call)
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            np.testing.assert_array_equal(_np(u), _np(v))


class _RandomImages(Dataset):
    def __init__(self, n=8):
        rng = np.random.default_rng(1)
        self.images = rng.integers(0, 256, (n, 24, 28, 3), dtype=np.uint8)
        self.transform = T.train_preset(16, T.IMAGENET_MEAN, T.IMAGENET_STD, color_jitter=0.3,
                                         erasing=0.5)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), i


def _epoch(seed):
    loader = DataLoader(_RandomImages(), batch_size=4, num_workers=2, timeout=30,
                        generator=framework.Generator().manual_seed(seed))
    return [(_np(x).copy(), _np(y).copy()) for x, y in loader]


def test_dataloader_workers_reproducible():
    first, again, other = _epoch(0), _epoch(0), _epoch(1)
    assert len(first) == 2 and first[0][0].shape == (4, 3, 16, 16)
    for (xa, ya), (xb, yb) in zip(first, again):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other))


# ------------------------------------------------------------------ presets

def test_imagenet_style_presets():
    img = _image(50, 70)
    train = T.train_preset(32, T.IMAGENET_MEAN, T.IMAGENET_STD, color_jitter=0.4, erasing=0.25)
    assert [type(s).__name__ for s in train.transforms] == [
        "RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "ToTensor", "Normalize",
        "RandomErasing"]
    ev = T.eval_preset(32, T.IMAGENET_MEAN, T.IMAGENET_STD, resize=36)
    lo = (0 - np.array(T.IMAGENET_MEAN)) / np.array(T.IMAGENET_STD)
    hi = (1 - np.array(T.IMAGENET_MEAN)) / np.array(T.IMAGENET_STD)
    for pipeline in (train, ev):
        out = pipeline(img)
        assert isinstance(out, framework.Tensor) and out.dtype == framework.float32
        assert out.shape == (3, 32, 32)
        a = _np(out)
        assert (a >= lo[:, None, None] - 1e-5).all() and (a <= hi[:, None, None] + 1e-5).all()
    # eval = resize shorter side, centre crop, to tensor, normalize
    expected = F.normalize(F.to_tensor(F.center_crop(F.resize(img, 36), 32)),
                           T.IMAGENET_MEAN, T.IMAGENET_STD)
    np.testing.assert_array_equal(_np(ev(img)), _np(expected))


def test_digit_presets_and_spec_round_trip():
    spec = {"resize": 32, "crop": 28, "mean": [0.1307], "std": [0.3081], "channels": 1,
            "interpolation": "bilinear"}
    ev = T.eval_preset(**spec)
    digit = _image(28, 28, 1)
    out = ev(digit)
    assert out.shape == (1, 28, 28) and out.dtype == framework.float32
    assert ev(np.repeat(digit, 3, axis=2)).shape == (1, 28, 28)  # RGB input converted to gray
    for mode, extra in (("affine", {}), ("pad", {"padding": 2}),
                        ("affine", {"affine": {"degrees": 15, "scale": [0.9, 1.1]}})):
        train = T.train_preset(28, [0.1307], [0.3081], channels=1, crop_mode=mode, hflip=0.0,
                               **extra)
        assert not any(isinstance(s, T.RandomHorizontalFlip) for s in train.transforms)
        assert isinstance(train.transforms[0], T.ConvertChannels)
        res = train(digit)
        assert res.shape == (1, 28, 28) and np.isfinite(_np(res)).all()
        rebuilt = T.preset_from_spec(json.loads(json.dumps(train.spec)))
        assert repr(rebuilt) == repr(train) and rebuilt.spec == train.spec
        np.testing.assert_array_equal(_seeded(4, lambda: _np(rebuilt(digit))),
                                      _seeded(4, lambda: _np(train(digit))))
    rebuilt = T.preset_from_spec(json.loads(json.dumps(ev.spec)))
    assert repr(rebuilt) == repr(ev) and ev.spec == {"preset": "eval", **spec}
    np.testing.assert_array_equal(_np(rebuilt(digit)), _np(out))


def test_preset_errors():
    with pytest.raises(ValueError, match=r"unknown keys \['crop_size'\], missing keys \['crop'\]"):
        T.preset_from_spec({"preset": "eval", "crop_size": 28, "mean": [0.5], "std": [0.5]})
    with pytest.raises(ValueError, match="'preset' must be 'train' or 'eval', got 'test'"):
        T.preset_from_spec({"preset": "test"})
    with pytest.raises(ValueError, match="padding do not apply to crop_mode='resized'"):
        T.train_preset(28, [0.5], [0.5], padding=4)
    with pytest.raises(ValueError, match="crop_mode must be one of"):
        T.train_preset(28, [0.5], [0.5], crop_mode="random")
    with pytest.raises(ValueError, match="3 mean/std values do not fit 1-channel"):
        T.eval_preset(28, T.IMAGENET_MEAN, T.IMAGENET_STD, channels=1)
    with pytest.raises(ValueError, match="unknown interpolation"):
        T.eval_preset(28, [0.5], [0.5], interpolation="trilinear")


def test_convert_channels_warns_once_per_instance():
    gray = _image(8, 8, 1)
    t = T.ConvertChannels(3)
    with pytest.warns(UserWarning, match="grayscale image was given to an RGB model"):
        out = t(gray)
    assert out.shape == (8, 8, 3) and (out == gray).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t(gray)  # second time: silent
        t(_image(8, 8, 3))  # RGB passes through silently
        T.ConvertChannels(1)(_image(8, 8, 3))
    with pytest.warns(UserWarning, match="converted to RGB"):
        T.ConvertChannels(3)(Image.fromarray(gray[:, :, 0]))  # a new instance warns again
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        T.ConvertChannels(2)


# ------------------------------------------------------------------ MixUp / CutMix

def _batch(n=6, c=3, h=10, w=12, classes=5):
    images = framework.rand(n, c, h, w)
    labels = framework.tensor([0, 1, 2, 3, 4, 0][:n])
    return images, labels


def test_mixup_mixes_images_and_labels_with_one_lambda():
    images, labels = _batch()
    mixed, soft = T.MixUp(alpha=0.4, num_classes=5)(images, labels)
    s = _np(soft)
    assert s.shape == (6, 5) and soft.dtype == framework.float32
    np.testing.assert_allclose(s.sum(1), 1.0, rtol=1e-6)
    lam = s[1, 1]  # sample 1 (class 1) is paired with sample 0 (class 0)
    np.testing.assert_allclose(s[1, 0], 1 - lam, rtol=1e-5)
    x = _np(images)
    np.testing.assert_allclose(_np(mixed), lam * x + (1 - lam) * np.roll(x, 1, axis=0),
                               rtol=1e-5, atol=1e-6)


def test_cutmix_pastes_a_box_whose_area_matches_lambda():
    images, labels = _batch()
    for seed in range(10):
        mixed, soft = _seeded(seed, lambda: T.CutMix(num_classes=5)(images, labels))
        s, x, m = _np(soft), _np(images), _np(mixed)
        np.testing.assert_allclose(s.sum(1), 1.0, rtol=1e-6)
        changed = (m != x).any(axis=(0, 1))
        rolled = np.roll(x, 1, axis=0)
        np.testing.assert_array_equal(m[:, :, changed], rolled[:, :, changed])
        np.testing.assert_array_equal(m[:, :, ~changed], x[:, :, ~changed])
        if changed.any():
            ys, xs = np.nonzero(changed)
            assert changed.sum() == (np.ptp(ys) + 1) * (np.ptp(xs) + 1)  # a rectangle
        lam = s[1, 1]  # weight of the sample's own label = unpasted area fraction
        np.testing.assert_allclose(lam, 1 - changed.sum() / changed.size, rtol=1e-6)


def test_mix_errors_name_the_problem():
    images, labels = _batch()
    mix = T.MixUp(num_classes=5)
    with pytest.raises(ValueError, match=r"batched \(N, C, H, W\).*\(3, 10, 12\)"):
        mix(images[0], labels)
    with pytest.raises(TypeError, match="float tensor.*uint8"):
        mix(framework.zeros(6, 3, 4, 4, dtype=framework.uint8), labels)
    with pytest.raises(TypeError, match="int64, got framework.float32"):
        mix(images, labels.to(dtype=framework.float32))
    with pytest.raises(ValueError, match="does not match.*6 != 4"):
        T.CutMix(num_classes=5)(images, labels[:4])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got \[0, 4\]"):
        T.CutMix(num_classes=3)(images, labels)
    with pytest.raises(ValueError, match="num_classes must be given"):
        T.MixUp()(images, labels)
    with pytest.raises(ValueError, match="alpha must be positive"):
        T.CutMix(alpha=0.0, num_classes=5)
    with pytest.raises(TypeError, match="expects \\(images, labels\\)"):
        mix(images)
    # probability labels (e.g. from a previous mix) pass through; a tuple works as one input
    soft = NF.one_hot(labels, 5).to(dtype=framework.float32)
    out, mixed_soft = T.CutMix()((images, soft))
    np.testing.assert_allclose(_np(mixed_soft).sum(1), 1.0, rtol=1e-6)


def test_soft_labels_work_with_cross_entropy():
    images, labels = _batch()
    _, soft = T.MixUp(num_classes=5)(images, labels)
    logits = framework.randn(6, 5, requires_grad=True)
    logp = _np(logits) - np.log(np.exp(_np(logits)).sum(1, keepdims=True))
    loss = NF.cross_entropy(logits, soft)
    np.testing.assert_allclose(float(loss.item()), -(_np(soft) * logp).sum(1).mean(), rtol=1e-5)
    smoothed = NF.cross_entropy(logits, soft, label_smoothing=0.1)
    target = _np(soft) * 0.9 + 0.1 / 5
    np.testing.assert_allclose(float(smoothed.item()), -(target * logp).sum(1).mean(), rtol=1e-5)
    loss.backward()
    assert logits.grad is not None and logits.grad.shape == (6, 5)


def test_tensor_transforms_on_device(device):
    images, labels = _batch()
    images, labels = images.to(device), labels.to(device)
    norm = T.Normalize([0.5, 0.4, 0.3], [0.2, 0.2, 0.2])(images[0])
    assert norm.device.type == device
    np.testing.assert_allclose(_np(norm.cpu()), (_np(images[0].cpu()) - np.array(
        [0.5, 0.4, 0.3], np.float32)[:, None, None]) / np.float32(0.2), rtol=1e-5)
    erased = T.RandomErasing(p=1.0, value="random")(images[0])
    assert erased.device.type == device and erased.shape == images[0].shape
    for mix in (T.MixUp(num_classes=5), T.CutMix(num_classes=5)):
        out, soft = mix(images, labels)
        assert out.device.type == device and soft.device.type == device
        np.testing.assert_allclose(_np(soft.cpu()).sum(1), 1.0, rtol=1e-6)


# ------------------------------------------------------------------ reprs

def test_reprs_read_like_torchvision():
    assert repr(T.Resize(32)) == \
        "Resize(size=32, interpolation=bilinear, max_size=None, antialias=True)"
    assert repr(T.CenterCrop(28)) == "CenterCrop(size=(28, 28))"
    assert repr(T.RandomCrop(32, padding=4)) == "RandomCrop(size=(32, 32), padding=4)"
    assert repr(T.RandomResizedCrop(224)) == (
        "RandomResizedCrop(size=(224, 224), scale=(0.08, 1.0), ratio=(0.75, 1.3333), "
        "interpolation=bilinear, antialias=True)")
    assert repr(T.ColorJitter(0.4)) == \
        "ColorJitter(brightness=(0.6, 1.4), contrast=None, saturation=None, hue=None)"
    assert repr(T.Normalize([0.5], [0.25])) == "Normalize(mean=[0.5], std=[0.25])"
    assert repr(T.RandomErasing()) == \
        "RandomErasing(p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False)"
    assert repr(T.MixUp(num_classes=10)) == "MixUp(alpha=1.0, num_classes=10)"
    nested = T.Compose([T.ToTensor(), T.RandomApply([T.Grayscale()], p=0.3)])
    assert repr(nested) == ("Compose(\n    ToTensor()\n    RandomApply(\n        p=0.3\n"
                            "        Grayscale(num_output_channels=1)\n    )\n)")
    for t in RANDOM_TRANSFORMS + [T.ConvertChannels(3), T.GaussianBlur(5)]:
        assert repr(t).startswith(type(t).__name__ + "(")


def test_area_resize_matches_torch_interpolate_area():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for (h, w), (oh, ow) in [((25, 25), (48, 48)), ((31, 23), (12, 12)), ((20, 30), (13, 41))]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ours = F.resize(img, (oh, ow), interpolation="area").astype(np.float64)
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(img.astype(np.float64)).permute(2, 0, 1)[None], size=(oh, ow),
            mode="area")[0].permute(1, 2, 0).numpy()
        assert np.abs(ours - ref).max() <= 0.5 + 1e-9   # only the rounding to uint8
