"""The vision model zoo against real oracles: torchvision's state-dict names, shapes, parameter
counts and logits (tests/fixtures/tv_model_*.{json,npz}, from
scripts/make_torchvision_model_fixtures.py), facenet-pytorch's MTCNN outputs
(tests/fixtures/mtcnn_facenet.npz, from scripts/make_mtcnn_fixture.py), and torch
re-implementations written here."""
from __future__ import annotations

import json
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import models
from models.vision.mobilenet import make_divisible
from models.vision.mtcnn import CROP_SIZES, face_classifier_score, mtcnn_preprocess

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TV_KEYS = json.loads((FIXTURES / "tv_model_keys.json").read_text())["models"]
VISION = ["lenet5", "mlp", "mobilenet_v2", "mtcnn_onet", "mtcnn_pnet", "mtcnn_rnet", "resnet18",
          "resnet34", "resnet50", "small_cnn", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn",
          "vit_b_16", "vit_tiny"]


# --- the shared formula (a copy lives in scripts/make_torchvision_model_fixtures.py) --------
def deterministic_array(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """A reproducible value for state-dict entry `key`, seeded by the key's CRC32 and scaled
    so that deep networks keep activations of order one: weights ~ N(0, 1/fan_in), 1-D
    weights (norm scales) ~ 1 + N(0, 0.01), biases and running means ~ N(0, 0.01), running
    variances ~ U(0.5, 1.5); all float32 (num_batches_tracked: int64 7)."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return np.array(7, dtype=np.int64)
    if leaf == "running_var":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    z = rng.standard_normal(shape, dtype=np.float32)
    if len(shape) <= 1:
        z *= np.float32(0.1)
        if leaf == "weight":
            z += np.float32(1.0)
    else:
        z *= np.float32(1.0 / np.sqrt(float(np.prod(shape[1:]))))
    return z


def deterministic_state_dict(entries) -> dict:
    """{key: array} for (key, shape, ...) entries, in their order."""
    return {e[0]: deterministic_array(e[0], tuple(e[1])) for e in entries}


def deterministic_input(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fast_init(monkeypatch):
    """Random initialisation skipped (tensors keep their uninitialised memory): building VGG
    or ViT-B then takes a fraction of a second. Only for tests where every value is
    overwritten or only names and shapes matter."""
    for fn in ("uniform_", "normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
               "xavier_normal_", "trunc_normal_"):
        monkeypatch.setattr(nn.init, fn, lambda tensor, *args, **kwargs: tensor)


def entries(model) -> list[tuple[str, tuple[int, ...], str]]:
    return [(k, tuple(v.shape), str(v.dtype).removeprefix("framework."))
            for k, v in model.state_dict().items()]


def num_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _builder_and_kwargs(fixture_name: str):
    """"resnet18" -> ("resnet18", {}); 'mobilenet_v2@{"width_mult": 0.5}' -> its kwargs."""
    name, _, kw = fixture_name.partition("@")
    return name, json.loads(kw) if kw else {}


def test_formula_copy_matches_the_fixture_script():
    """The weights formula above and the script's copy (which generated the logits) agree."""
    def block(text: str) -> str:
        start = text.index("def deterministic_array")
        return text[start:text.index("# -----", start)]
    script = (Path(__file__).resolve().parents[2] / "scripts" /
              "make_torchvision_model_fixtures.py").read_text()
    assert block(script) == block(Path(__file__).read_text())


# --- registry ---------------------------------------------------------------------------------

def test_every_vision_model_is_registered_with_a_docstring():
    assert set(VISION) <= set(models.list_models("vision"))
    for name in VISION:
        entry = models.get_entry(name)
        assert entry.domain == "vision" and entry.doc, name


@pytest.mark.parametrize("name", VISION)
def test_num_classes_sizes_only_the_head(name, fast_init):
    a = entries(models.get_model(name, num_classes=7))
    b = entries(models.get_model(name, num_classes=9))
    assert [e[0] for e in a] == [e[0] for e in b]
    differ = [(x[0], x[1][0], y[1][0]) for x, y in zip(a, b) if x != y]
    assert len(differ) == 2 and {d[1:] for d in differ} == {(7, 9)}, differ   # weight, bias


def test_mtcnn_weights_records():
    for name, size in CROP_SIZES.items():
        w = models.get_weights(name)
        assert w.name == f"{name}.facenet" and w.file == f"hub:mtcnn/{name[6:]}.pt"
        assert w.categories == ("non-face", "face")
        assert w.transforms["crop"] == w.transforms["resize"] == size
        assert w.transforms["interpolation"] == "area" and w.transforms["channels"] == 3
        assert w.num_params == num_params(models.get_model(name))
        assert len(w.sha256) == 64


# --- torchvision: names, shapes, parameter counts -------------------------------------------

@pytest.mark.parametrize("fixture_name", sorted(TV_KEYS))
def test_state_dict_matches_torchvision(fixture_name, fast_init):
    name, kwargs = _builder_and_kwargs(fixture_name)
    model = models.get_model(name, **kwargs)
    want = [(k, tuple(s), d) for k, s, d in TV_KEYS[fixture_name]["state_dict"]]
    got = entries(model)
    assert [e[0] for e in got] == [e[0] for e in want]        # same keys, same order
    assert got == want                                         # same shapes and dtypes
    assert num_params(model) == TV_KEYS[fixture_name]["num_params"]


def test_make_divisible_follows_torchvision():
    assert [make_divisible(v) for v in (16, 10, 32 * 0.5, 24 * 1.4, 1280 * 1.4, 3)] == \
        [16, 16, 16, 32, 1792, 8]
    assert make_divisible(20, 8, min_value=32) == 32


# --- torchvision: logits with deterministic weights, through a real torch checkpoint --------

LOGIT_CASES = {   # case: (builder, kwargs, checkpoint key prefix, drop num_batches_tracked)
    "resnet18": ("resnet18", {}, "", False),
    "mobilenet_v2": ("mobilenet_v2", {}, "module.", True),
    "vgg11_bn": ("vgg11_bn", {}, "", False),
    "vit_tiny": ("vit_tiny", {}, "_orig_mod.", False),
    "resnet50": ("resnet50", {}, "", False),
    "vit_b_16": ("vit_b_16", {}, "", False),
}
SLOW_LOGITS = {"vit_b_16"}   # its class is covered by vit_tiny in the default run


def _torch_state_dict_file(path: Path, sd: dict, prefix: str, drop_counters: bool) -> None:
    """torch.save an OrderedDict state dict carrying `_metadata` as nn.Module.state_dict()
    does (one {"version": ...} entry per module prefix, BatchNorm's at version 2)."""
    torch = pytest.importorskip("torch", reason="torch (the parity extra) is not installed")
    out = OrderedDict()
    meta = OrderedDict([("", {"version": 1})])
    for k, v in sd.items():
        if drop_counters and k.endswith("num_batches_tracked"):
            continue
        out[prefix + k] = torch.from_numpy(v)
        module = k.rpartition(".")[0]
        bn = any(j.startswith(module + ".running_var") for j in sd)
        meta.setdefault(prefix + module, {"version": 2 if bn else 1})
    out._metadata = meta
    torch.save(out, path)


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_LOGITS
                                  else c for c in LOGIT_CASES])
def test_logits_match_torchvision(case, tmp_path, fast_init):
    pytest.importorskip("torch", reason="torch (the parity extra) is not installed")
    name, kwargs, prefix, drop = LOGIT_CASES[case]
    fixture = np.load(FIXTURES / "tv_model_logits.npz", allow_pickle=False)
    seed, *shape = fixture[f"{case}/input"].tolist()
    sd = deterministic_state_dict(TV_KEYS[case]["state_dict"])
    path = tmp_path / f"{case}.pth"
    _torch_state_dict_file(path, sd, prefix, drop)
    del sd
    model = models.get_model(name, **kwargs)
    report = models.load_pretrained(model, path, strict=True)
    assert report.complete and not report.missing
    assert len(report.loaded) == len(TV_KEYS[case]["state_dict"]) - (
        sum(k.endswith("num_batches_tracked") for k, *_ in TV_KEYS[case]["state_dict"])
        if drop else 0)
    model.eval()
    with fw.no_grad():
        logits = model(fw.tensor(deterministic_input(seed, tuple(shape)))).numpy()
    want = fixture[f"{case}/logits"]
    assert logits.shape == want.shape
    np.testing.assert_allclose(logits, want, rtol=0, atol=1e-4)


# --- per architecture: shapes, backward, variants, initialisation ----------------------------

def _backward_ok(model, x, num_classes):
    model.train()
    out = model(x)
    assert tuple(out.shape) == (x.shape[0], num_classes)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    assert any(np.abs(g.numpy()).sum() > 0 for g in grads)


def test_mlp():
    model = models.get_model("mlp", num_classes=7)
    assert [type(m).__name__ for m in model][:4] == ["Flatten", "Linear", "ReLU", "Dropout"]
    assert num_params(model) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 7 + 7
    _backward_ok(model, fw.randn(3, 1, 28, 28), 7)
    small = models.get_model("mlp", in_features=64, hidden=(32,), dropout=0.2)
    assert tuple(small(fw.randn(5, 8, 8)).shape) == (5, 10)
    # Dropout is always there (p=0 is the identity) so keys do not depend on `dropout`
    assert list(models.get_model("mlp").state_dict()) == list(
        models.get_model("mlp", dropout=0.5).state_dict())


def test_lenet5():
    model = models.get_model("lenet5", num_classes=5)
    assert [k for k in model.state_dict()] == [
        "features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
        "classifier.1.weight", "classifier.1.bias", "classifier.3.weight",
        "classifier.3.bias", "classifier.5.weight", "classifier.5.bias"]
    assert num_params(model) == (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + \
        (120 * 84 + 84) + (84 * 5 + 5)
    _backward_ok(model, fw.randn(2, 1, 28, 28), 5)
    rgb = models.get_model("lenet5", in_channels=3)
    assert tuple(rgb(fw.randn(1, 3, 28, 28)).shape) == (1, 10)
    with pytest.raises(ValueError, match="28x28"):
        model(fw.randn(1, 1, 32, 32))


def test_small_cnn_matches_a_torch_reference_on_8x8_and_28x28():
    torch = pytest.importorskip("torch", reason="torch (the parity extra) is not installed")
    model = models.get_model("small_cnn", num_classes=10).eval()
    with fw.no_grad():   # non-trivial BN statistics
        for bn in (model.features[1], model.features[4]):
            bn.running_mean.copy_(fw.randn(bn.num_features) * 0.1)
            bn.running_var.copy_(fw.rand(bn.num_features) + 0.5)
    ref = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(),
        torch.nn.Dropout(0.1), torch.nn.Linear(512, 10)).eval()
    names = {"features.0": "0", "features.1": "1", "features.3": "3", "features.4": "4",
             "head.2": "10"}
    ref.load_state_dict({names[k.rsplit(".", 1)[0]] + "." + k.rsplit(".", 1)[1]:
                         torch.from_numpy(v.numpy().copy())
                         for k, v in model.state_dict().items()})
    for size in (8, 28):
        x = np.random.default_rng(size).random((3, 1, size, size), dtype=np.float32)
        with fw.no_grad():
            got = model(fw.tensor(x)).numpy()
        with torch.no_grad():
            want = ref(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert num_params(model) == 10026
    _backward_ok(models.get_model("small_cnn", in_channels=3, width=8, num_classes=4),
                 fw.randn(2, 3, 28, 28), 4)


def test_resnet_shapes_backward_and_init():
    model = models.get_model("resnet18", num_classes=10)
    w = model.layer3[0].conv2.weight.detach().numpy()   # kaiming normal, fan_out = 256 * 9
    assert abs(w.std() / np.sqrt(2.0 / (256 * 9)) - 1) < 0.03 and abs(w.mean()) < 1e-3
    assert (model.layer2[0].bn1.weight.detach().numpy() == 1).all()
    assert (model.layer2[0].bn1.bias.detach().numpy() == 0).all()
    with fw.no_grad():
        model.eval()
        assert tuple(model(fw.randn(2, 3, 32, 32)).shape) == (2, 10)
        assert tuple(model(fw.randn(1, 3, 48, 64)).shape) == (1, 10)
    cifar = models.get_model("resnet18", num_classes=10, cifar_stem=True, in_channels=1)
    assert tuple(cifar.conv1.weight.shape) == (64, 1, 3, 3)
    assert cifar.conv1.stride == (1, 1) and isinstance(cifar.maxpool, nn.Identity)
    with fw.no_grad():
        cifar.eval()
        feats = cifar.layer4(cifar.layer3(cifar.layer2(cifar.layer1(
            cifar.relu(cifar.bn1(cifar.conv1(fw.randn(1, 1, 16, 16))))))))
    assert tuple(feats.shape) == (1, 512, 2, 2)      # 16 / 8: stride-1 stem, no max pool
    _backward_ok(cifar, fw.randn(2, 1, 8, 8), 10)
    zero = models.get_model("resnet18", zero_init_residual=True)
    assert (zero.layer1[0].bn2.weight.detach().numpy() == 0).all()


def test_resnet_cifar_stem_keeps_the_key_names(fast_init):
    for name in ("resnet18", "resnet50"):
        cifar = entries(models.get_model(name, num_classes=3, cifar_stem=True, in_channels=1))
        std = entries(models.get_model(name, num_classes=3, in_channels=1))
        assert [e[0] for e in cifar] == [e[0] for e in std]   # only conv1's kernel differs
        assert [e for e in cifar if e[0] != "conv1.weight"] == \
            [e for e in std if e[0] != "conv1.weight"]
        assert dict((k, s) for k, s, _ in cifar)["conv1.weight"] == (64, 1, 3, 3)


def test_mobilenet_v2_shapes_backward_and_init():
    model = models.get_model("mobilenet_v2", num_classes=6, width_mult=0.5)
    assert model.last_channel == 1280 and model.features[0][0].out_channels == 16
    assert isinstance(model.features[0][2], nn.ReLU6)
    assert model.features[2].use_res_connect is False and model.features[3].use_res_connect
    with fw.no_grad():
        model.eval()
        assert tuple(model(fw.randn(1, 3, 40, 56)).shape) == (1, 6)
    _backward_ok(model, fw.randn(2, 3, 32, 32), 6)
    full = models.get_model("mobilenet_v2")
    w = full.classifier[1].weight.detach().numpy()
    assert abs(w.std() - 0.01) < 5e-4 and (full.classifier[1].bias.detach().numpy() == 0).all()


def test_vit_tiny_shapes_backward_and_init():
    model = models.get_model("vit_tiny", num_classes=10)
    assert model.seq_length == 65 and len(model.encoder.layers) == 6
    attn = model.encoder.layers.encoder_layer_0.self_attention
    assert attn.num_heads == 3 and tuple(attn.in_proj_weight.shape) == (576, 192)
    assert (model.class_token.detach().numpy() == 0).all()
    assert abs(model.encoder.pos_embedding.detach().numpy().std() - 0.02) < 2e-3
    assert (model.heads.head.weight.detach().numpy() == 0).all()   # torchvision's zero head
    model.eval()
    with fw.no_grad():
        assert (model(fw.randn(2, 3, 32, 32)).numpy() == 0).all()
    with pytest.raises(ValueError, match="32x32"):
        model(fw.randn(1, 3, 28, 28))
    nn.init.normal_(model.heads.head.weight, std=0.02)
    _backward_ok(model, fw.randn(2, 3, 32, 32), 10)
    mnist = models.get_model("vit_tiny", image_size=28, in_channels=1, num_classes=3)
    with fw.no_grad():
        assert tuple(mnist.eval()(fw.randn(1, 1, 28, 28)).shape) == (1, 3)


EPOCHS = 3


def test_small_cnn_learns_digits():
    """Training from scratch behaves: a short run on scikit-learn's digits."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = fw.tensor((d.images / 16.0).astype(np.float32)[:, None])
    y = fw.tensor(d.target.astype(np.int64))
    model = models.get_model("small_cnn")
    opt = fw.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    perm = np.random.default_rng(0).permutation(1500)
    for _ in range(EPOCHS):
        model.train()
        for i in range(0, 1500, 50):
            idx = fw.tensor(perm[i:i + 50])
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with fw.no_grad():
        acc = (model(x[1500:]).argmax(1).numpy() == d.target[1500:]).mean()
    assert acc > 0.9, acc    # 0.946 as run here; chance is 0.1


# --- MTCNN ----------------------------------------------------------------------------------

MTCNN_FIXTURE = FIXTURES / "mtcnn_facenet.npz"


def _torch_mtcnn(torch, which: str):
    """facenet-pytorch's forward written from its definition: conv/PReLU/ceil-mode pools, the
    (0, 3, 2, 1) permute before the dense layers, softmax over dim 1."""
    tnn = torch.nn
    if which == "pnet":
        trunk = [tnn.Conv2d(3, 10, 3), tnn.PReLU(10), tnn.MaxPool2d(2, 2, ceil_mode=True),
                 tnn.Conv2d(10, 16, 3), tnn.PReLU(16), tnn.Conv2d(16, 32, 3), tnn.PReLU(32)]
        names = ["conv1", "prelu1", None, "conv2", "prelu2", "conv3", "prelu3"]
        heads = {"conv4_2": tnn.Conv2d(32, 4, 1), "conv4_1": tnn.Conv2d(32, 2, 1)}
        dense = None
    elif which == "rnet":
        trunk = [tnn.Conv2d(3, 28, 3), tnn.PReLU(28), tnn.MaxPool2d(3, 2, ceil_mode=True),
                 tnn.Conv2d(28, 48, 3), tnn.PReLU(48), tnn.MaxPool2d(3, 2, ceil_mode=True),
                 tnn.Conv2d(48, 64, 2), tnn.PReLU(64)]
        names = ["conv1", "prelu1", None, "conv2", "prelu2", None, "conv3", "prelu3"]
        dense = [("dense4", tnn.Linear(576, 128)), ("prelu4", tnn.PReLU(128))]
        heads = {"dense5_2": tnn.Linear(128, 4), "dense5_1": tnn.Linear(128, 2)}
    else:
        trunk = [tnn.Conv2d(3, 32, 3), tnn.PReLU(32), tnn.MaxPool2d(3, 2, ceil_mode=True),
                 tnn.Conv2d(32, 64, 3), tnn.PReLU(64), tnn.MaxPool2d(3, 2, ceil_mode=True),
                 tnn.Conv2d(64, 64, 3), tnn.PReLU(64), tnn.MaxPool2d(2, 2, ceil_mode=True),
                 tnn.Conv2d(64, 128, 2), tnn.PReLU(128)]
        names = ["conv1", "prelu1", None, "conv2", "prelu2", None, "conv3", "prelu3", None,
                 "conv4", "prelu4"]
        dense = [("dense5", tnn.Linear(1152, 256)), ("prelu5", tnn.PReLU(256))]
        heads = {"dense6_2": tnn.Linear(256, 4), "dense6_3": tnn.Linear(256, 10),
                 "dense6_1": tnn.Linear(256, 2)}
    modules = dict((n, m) for n, m in zip(names, trunk) if n) | dict(dense or []) | heads

    def forward(x):
        for m in trunk:
            x = m(x)
        if dense is not None:
            x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
            for _, m in dense:
                x = m(x)
        outs = [heads[k](x) for k in heads]
        outs[-1] = torch.softmax(outs[-1], dim=1)
        return tuple(outs)
    return modules, forward


@pytest.mark.parametrize("which,shape", [("onet", (3, 3, 48, 48)), ("rnet", (3, 3, 24, 24)),
                                         ("pnet", (2, 3, 31, 45))])
def test_mtcnn_matches_a_torch_reference_with_random_weights(which, shape):
    torch = pytest.importorskip("torch", reason="torch (the parity extra) is not installed")
    model = models.get_model(f"mtcnn_{which}").eval()
    with fw.no_grad():   # PReLU slopes of both signs, so a mixed-up slope shows
        for name, p in model.named_parameters():
            if "prelu" in name:
                p.copy_(fw.randn(*p.shape) * 0.5)
    modules, forward = _torch_mtcnn(torch, which)
    sd = {k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()}
    for name, m in modules.items():
        m.load_state_dict({k.split(".", 1)[1]: v for k, v in sd.items()
                           if k.split(".", 1)[0] == name})
    x = np.random.default_rng(7).standard_normal(shape, dtype=np.float32)
    with fw.no_grad():
        got = model(fw.tensor(x))
    with torch.no_grad():
        want = forward(torch.from_numpy(x))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[-1].numpy().sum(1), 1.0, atol=1e-6)   # softmax last


def test_mtcnn_preprocess_matches_facenet():
    z = np.load(MTCNN_FIXTURE, allow_pickle=False)
    for net, size in (("onet", 48), ("rnet", 24)):
        got = mtcnn_preprocess(z[f"{net}/crops"], size).numpy()
        np.testing.assert_allclose(got, z[f"{net}/input"], rtol=0, atol=1e-5)
    grey = z["onet/crops"][..., 0]
    assert tuple(mtcnn_preprocess(grey, 48).shape) == (6, 3, 48, 48)
    with pytest.raises(ValueError, match="crops"):
        mtcnn_preprocess(np.zeros((2, 4, 5, 6)), 48)


def test_mtcnn_records_score_as_facenet_does():
    """The records' lfw-subset metrics equal facenet-pytorch's own score (fixture meta)."""
    meta = json.loads(str(np.load(MTCNN_FIXTURE, allow_pickle=False)["meta"]))
    for name, score in meta["lfw_subset_scores"].items():
        metrics = models.get_weights(name).metrics
        assert {k: metrics[k] for k in score} == score


@pytest.mark.realdata
@pytest.mark.parametrize("which", ["pnet", "rnet", "onet"])
def test_mtcnn_facenet_weights_match_facenet_outputs(which):
    z = np.load(MTCNN_FIXTURE, allow_pickle=False)
    model = models.get_model(f"mtcnn_{which}", weights="facenet").eval()
    if which == "pnet":
        x = (fw.tensor(z["pnet/image"][None].astype(np.float32)).permute(0, 3, 1, 2) - 127.5) \
            * 0.0078125
    else:
        x = mtcnn_preprocess(z[f"{which}/crops"], CROP_SIZES[f"mtcnn_{which}"])
    np.testing.assert_allclose(x.numpy(), z[f"{which}/input"], atol=1e-5)
    with fw.no_grad():
        outs = model(x)
    names = ["box", "landmarks", "probs"] if which == "onet" else ["box", "probs"]
    for name, out in zip(names, outs, strict=True):
        np.testing.assert_allclose(out.numpy(), z[f"{which}/{name}"], rtol=0, atol=1e-5)


@pytest.mark.realdata
def test_mtcnn_lfw_subset_metrics_recomputed():
    import datasets
    images, labels = datasets.load("lfw-subset")
    for name, size in CROP_SIZES.items():
        w = models.get_weights(name)
        score = face_classifier_score(models.get_model(name, weights=w), images, labels, size)
        assert {k: w.metrics[k] for k in score} == score
    assert models.get_weights("mtcnn_onet").metrics["accuracy"] == 1.0


@pytest.mark.realdata
def test_mtcnn_records_hold_through_the_cli(tmp_path):
    """`lantern vision eval` with a record's own preprocessing spec scores what it records."""
    from apps.cli import main
    for name in CROP_SIZES:
        out = tmp_path / name
        assert main(["vision", "eval", "--model", f"zoo:{name}.facenet", "--data", "lfw-subset",
                     "--split", "all", "--out", str(out)]) == 0
        got = json.loads((out / "metrics.json").read_text())["all"]["accuracy"]
        assert got == models.get_weights(name).metrics["accuracy"], name
