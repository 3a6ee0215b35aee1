"""framework.nn modules against torch.nn: every layer given the same weights (copied from
torch's state dict) must give the same outputs, input gradients, parameter gradients and
buffer updates; state dicts must have torch's keys and survive Lantern -> torch -> Lantern.
Also the Module machinery (registration, state dicts, load errors, hooks, repr, device/dtype
moves), containers, nn.init statistics, nn.utils (clipping, vector conversion, packed
sequences) and the recurrent/attention layers."""
import copy
import math
import pickle
import warnings

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
from framework.autograd import gradcheck
from framework.nn.utils.rnn import (PackedSequence, pack_padded_sequence, pack_sequence,
                                    pad_packed_sequence, pad_sequence)


def _torch():
    return pytest.importorskip("torch", reason="torch (the parity extra) is not installed")


def _np(t):
    if isinstance(t, fw.Tensor):
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        return np.array(t.numpy())
    return t.detach().cpu().numpy()


def _sd_to_numpy(module):
    return {k: _np(v).copy() for k, v in module.state_dict().items()}


def _sync(mine, ref):
    """Copy torch module `ref`'s state into `mine` (through NumPy), checking the keys."""
    sd = _sd_to_numpy(ref)
    assert list(mine.state_dict().keys()) == list(sd.keys())
    mine.load_state_dict(sd)


def _round_trip(mine, ref_factory):
    """Lantern -> torch -> Lantern: keys and values identical."""
    torch = _torch()
    sd = mine.state_dict()
    ref = ref_factory()
    ref.load_state_dict({k: torch.from_numpy(_np(v).copy()) for k, v in sd.items()})
    back = copy.deepcopy(mine)
    for p in back.parameters():
        with fw.no_grad():
            p.zero_()
    back.load_state_dict(_sd_to_numpy(ref))
    sd2 = back.state_dict()
    assert list(sd2.keys()) == list(sd.keys())
    for k in sd:
        np.testing.assert_array_equal(_np(sd2[k]), _np(sd[k]), err_msg=k)


def _flat(out):
    if isinstance(out, (tuple, list)):
        res = []
        for o in out:
            res.extend(_flat(o))
        return res
    if isinstance(out, PackedSequence):
        return [out.data]
    return [out]


def _parity(mine, ref, *inputs, train=True, atol=1e-5, rtol=1e-4, grad=True, kwargs=None,
            ref_factory=None, check_buffers=True, steps=1, diff=None):
    """Run both modules on the same inputs (NumPy arrays; floats get requires_grad, or only
    those at the indexes in `diff`) and compare outputs, input grads, parameter grads and
    buffers."""
    torch = _torch()
    kwargs = kwargs or {}
    _sync(mine, ref)
    mine.train(train)
    ref.train(train)
    for _ in range(steps):
        xm, xr = [], []
        for i, a in enumerate(inputs):
            if isinstance(a, np.ndarray) and a.dtype.kind == "f" and grad and \
                    (diff is None or i in diff):
                xm.append(fw.tensor(a, requires_grad=True))
                xr.append(torch.tensor(a, requires_grad=True))
            elif isinstance(a, np.ndarray):
                xm.append(fw.tensor(a))
                xr.append(torch.tensor(a))
            else:
                xm.append(a)
                xr.append(a)
        km = {k: fw.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        kr = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        om, orf = _flat(mine(*xm, **km)), _flat(ref(*xr, **kr))
        assert len(om) == len(orf)
        for a, b in zip(om, orf):
            if b is None:
                assert a is None
                continue
            assert tuple(a.shape) == tuple(b.shape), (a.shape, b.shape)
            np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol)
        if grad:
            rng = np.random.default_rng(1)
            lm, lr = 0, 0
            for a, b in zip(om, orf):
                if b is not None and b.requires_grad:
                    g = rng.standard_normal(tuple(b.shape)).astype(_np(b).dtype)
                    lm = lm + (a * fw.tensor(g)).sum()
                    lr = lr + (b * torch.tensor(g)).sum()
            if isinstance(lr, torch.Tensor):
                for p in mine.parameters():
                    p.grad = None
                ref.zero_grad()
                lm.backward()
                lr.backward()
                for a, b in zip(xm, xr):
                    if isinstance(b, torch.Tensor) and b.requires_grad:
                        np.testing.assert_allclose(_np(a.grad), _np(b.grad), rtol=rtol,
                                                   atol=atol)
                pr = dict(ref.named_parameters())
                for name, p in mine.named_parameters():
                    if pr[name].grad is None:
                        assert p.grad is None or not np.any(_np(p.grad)), name
                        continue
                    np.testing.assert_allclose(_np(p.grad), _np(pr[name].grad), rtol=rtol,
                                               atol=atol, err_msg=name)
        if check_buffers:
            br = dict(ref.named_buffers())
            for name, b in mine.named_buffers():
                np.testing.assert_allclose(_np(b), _np(br[name]), rtol=rtol, atol=atol,
                                           err_msg=name)
    if ref_factory is not None:
        _round_trip(mine, ref_factory)
    return om, orf


def _randn(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# =========================================================================== Module machinery
class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 2)
        self.register_buffer("scale", fw.ones(2))
        self.register_buffer("cache", fw.zeros(3), persistent=False)

    def forward(self, x):
        return self.fc(self.bn(x)) * self.scale


def test_registration_and_state_dict_keys():
    net = _Net()
    keys = list(net.state_dict().keys())
    assert keys == ["scale", "features.0.weight", "features.0.bias", "bn.weight", "bn.bias",
                    "bn.running_mean", "bn.running_var", "bn.num_batches_tracked", "fc.weight",
                    "fc.bias"]
    assert "cache" not in keys  # non-persistent buffer
    assert [n for n, _ in net.named_buffers()] == ["scale", "cache", "bn.running_mean",
                                                   "bn.running_var", "bn.num_batches_tracked"]
    assert [n for n, _ in net.named_parameters()] == [
        "features.0.weight", "features.0.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias"]
    assert [n for n, _ in net.named_children()] == ["features", "bn", "fc"]
    assert [n for n, _ in net.named_modules()] == ["", "features", "features.0", "features.1",
                                                   "bn", "fc"]
    assert isinstance(net.fc.weight, nn.Parameter) and net.fc.weight.requires_grad
    assert net.get_submodule("features.0") is net.features[0]
    assert net.get_parameter("fc.bias") is net.fc.bias
    assert net.get_buffer("bn.running_var") is net.bn.running_var
    assert "fc" in dir(net) and "scale" in dir(net)
    # state dict values share memory and are detached
    sd = net.state_dict()
    assert not sd["fc.weight"].requires_grad
    with fw.no_grad():
        net.fc.weight.fill_(3.0)
    assert float(sd["fc.weight"][0, 0]) == 3.0
    assert net.state_dict(keep_vars=True)["fc.weight"] is net.fc.weight


def test_setattr_delattr_and_errors():
    m = nn.Module()
    m.w = nn.Parameter(fw.ones(2))
    assert "w" in m._parameters
    with pytest.raises(TypeError, match="cannot assign"):
        m.w = fw.ones(2)  # a plain tensor into a parameter slot
    m.w = None
    assert m._parameters["w"] is None and m.w is None
    m.sub = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="child module"):
        m.sub = 3
    del m.sub
    assert "sub" not in m._modules
    m.register_buffer("b", fw.zeros(1))
    m.b = fw.ones(1)
    assert m._buffers["b"] is m.b
    with pytest.raises(TypeError, match="buffer"):
        m.b = 3
    m.plain = 5
    assert m.plain == 5 and "plain" not in m._parameters
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope
    with pytest.raises(KeyError, match="already exists"):
        m.register_parameter("plain", None)
    with pytest.raises(KeyError, match="contain"):
        m.register_buffer("a.b", None)
    with pytest.raises(TypeError):
        m.register_parameter("p", fw.ones(1))
    y = fw.ones(2, requires_grad=True) * 2
    m.q = nn.Parameter(y)  # a Parameter of a computed tensor is a new leaf sharing its data
    assert m.q.is_leaf and m.q.requires_grad and float(m.q[0]) == 2.0
    m.buf2 = nn.Buffer(fw.ones(2), persistent=False)
    assert "buf2" in m._buffers and "buf2" not in m.state_dict()

    class NoInit(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(fw.ones(1))
    with pytest.raises(AttributeError, match="before Module.__init__"):
        NoInit()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_shared_parameters_are_deduplicated():
    lin = nn.Linear(3, 3)
    net = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(net.parameters())) == 2
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(net.named_parameters(remove_duplicate=False))) == 4
    assert list(net.state_dict().keys()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(list(net.modules())) == 3


def test_load_state_dict_reports_missing_unexpected_and_shape():
    net = _Net()
    sd = net.state_dict()
    good = {k: v.clone() for k, v in sd.items()}
    res = net.load_state_dict(good)
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    bad = dict(good)
    del bad["fc.bias"]
    bad["extra.weight"] = fw.zeros(1)
    bad["fc.weight"] = fw.zeros(5, 4)
    with pytest.raises(RuntimeError) as exc:
        net.load_state_dict(bad)
    msg = str(exc.value)
    assert msg.startswith("Error(s) in loading state_dict for _Net:")
    assert 'Missing key(s) in state_dict: "fc.bias".' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight".' in msg
    assert ("size mismatch for fc.weight: copying a param with shape framework.Size([5, 4]) "
            "from checkpoint, the shape in current model is framework.Size([2, 4]).") in msg
    # strict=False: the key lists come back, but a shape mismatch is still an error
    bad["fc.weight"] = good["fc.weight"]
    res = net.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["fc.bias"] and res.unexpected_keys == ["extra.weight"]
    with pytest.raises(TypeError, match="dict-like"):
        net.load_state_dict([1, 2])


def test_load_state_dict_copies_in_place_and_assign():
    lin = nn.Linear(2, 3)
    w = lin.weight
    new = {"weight": np.arange(6, dtype=np.float32).reshape(3, 2),
           "bias": fw.tensor([1.0, 2.0, 3.0], dtype=fw.float64)}
    lin.load_state_dict(new)
    assert lin.weight is w and lin.weight.dtype == fw.float32  # in place, cast
    np.testing.assert_array_equal(_np(lin.weight), new["weight"])
    np.testing.assert_array_equal(_np(lin.bias), [1, 2, 3])
    t = fw.ones(3, 2)
    lin.load_state_dict({"weight": t, "bias": fw.zeros(3)}, assign=True)
    assert lin.weight is not w and isinstance(lin.weight, nn.Parameter)
    assert lin.weight.requires_grad


def test_batchnorm_loads_old_checkpoint_without_num_batches_tracked():
    bn = nn.BatchNorm1d(3)
    sd = {k: v for k, v in _sd_to_numpy(bn).items() if k != "num_batches_tracked"}
    assert bn.load_state_dict(sd).missing_keys == []


def test_train_eval_apply_requires_grad_zero_grad():
    net = _Net()
    assert net.training and net.bn.training
    net.eval()
    assert not net.training and not net.bn.training and not net.features[1].training
    net.train()
    assert net.features[0].training
    with pytest.raises(ValueError):
        net.train("yes")
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Conv2d", "ReLU", "Sequential", "BatchNorm1d", "Linear", "_Net"]
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    net.requires_grad_()
    out = net(fw.randn(5, 4)).sum()
    out.backward()
    assert net.fc.weight.grad is not None
    net.zero_grad(set_to_none=False)
    assert float(net.fc.weight.grad.abs().sum()) == 0.0
    net.zero_grad()
    assert net.fc.weight.grad is None


def test_to_keeps_parameter_identity_and_optimizer_works():
    import framework.optim as optim
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    params = list(net.parameters())
    opt = optim.SGD(net.parameters(), lr=0.1)
    (net(fw.randn(6, 3)) * fw.randn(6, 4)).sum().backward()
    ret = net.to(fw.float64)
    assert ret is net
    assert all(a is b for a, b in zip(params, net.parameters()))
    assert all(p.dtype == fw.float64 for p in net.parameters())
    assert all(p.grad.dtype == fw.float64 for p in net.parameters())
    assert net[1].running_mean.dtype == fw.float64
    assert net[1].num_batches_tracked.dtype == fw.int64  # integer buffers keep their dtype
    before = _np(net[0].weight).copy()
    opt.step()
    assert not np.allclose(before, _np(net[0].weight))
    net.float()
    assert net[0].weight.dtype == fw.float32 and net[0].weight is params[0]
    net.to("cpu", dtype=fw.float64)
    assert net[0].bias.dtype == fw.float64
    net.to(fw.zeros(1, dtype=fw.float32))
    assert net[0].bias.dtype == fw.float32
    with pytest.raises(TypeError, match="floating point"):
        net.to(fw.int64)
    net.half()
    assert net[0].weight.dtype == fw.float16
    net.cpu().double()
    assert net[0].weight.dtype == fw.float64


def test_module_to_device(device):
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    w = net[0].weight
    net.to(device)
    assert net[0].weight is w and w.device.type == device
    assert net[1].running_var.device.type == device
    out = net(fw.randn(5, 3, device=device))
    assert out.device.type == device


def test_forward_hooks_and_removal():
    lin = nn.Linear(2, 2)
    calls = []

    def pre(mod, args):
        calls.append("pre")
        return (args[0] * 0,)

    def post(mod, args, out):
        calls.append("post")
        return out + 1

    h1 = lin.register_forward_pre_hook(pre)
    h2 = lin.register_forward_hook(post)
    out = lin(fw.ones(1, 2))
    np.testing.assert_allclose(_np(out), _np(lin.bias.detach() + 1)[None], rtol=1e-6)
    assert calls == ["pre", "post"]
    h1.remove()
    h2.remove()
    h2.remove()  # removing twice is harmless
    out = lin(fw.ones(1, 2))
    np.testing.assert_allclose(_np(out), _np(lin(fw.ones(1, 2))), rtol=1e-6)
    assert calls == ["pre", "post"]
    assert "_hooks_on" not in lin.__dict__  # back on the fast path

    def pre_kw(mod, args, kwargs):
        return args, {"scale": 3.0}

    class Scaled(nn.Module):
        def forward(self, x, scale=1.0):
            return x * scale
    s = Scaled()
    s.register_forward_pre_hook(pre_kw, with_kwargs=True)
    seen = []
    s.register_forward_hook(lambda m, a, kw, o: seen.append(kw["scale"]), with_kwargs=True)
    assert float(s(fw.ones(1))[0]) == 3.0 and seen == [3.0]
    order = []
    m = nn.Identity()
    m.register_forward_hook(lambda *a: order.append(1))
    m.register_forward_hook(lambda *a: order.append(0), prepend=True)
    m(fw.ones(1))
    assert order == [0, 1]
    with nn.Identity().register_forward_hook(lambda *a: None) as h:
        assert isinstance(h, nn.RemovableHandle)


def test_always_call_hook_runs_when_forward_raises():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")
    b = Boom()
    seen = []
    b.register_forward_hook(lambda m, a, o: seen.append(o), always_call=True)
    with pytest.raises(ValueError):
        b(1)
    assert seen == [None]


def test_global_forward_hooks():
    seen = []
    h = nn.register_module_forward_hook(lambda m, a, o: seen.append(type(m).__name__))
    try:
        nn.Sequential(nn.ReLU())(fw.ones(1))
    finally:
        h.remove()
    assert seen == ["ReLU", "Sequential"]
    nn.ReLU()(fw.ones(1))
    assert len(seen) == 2
    assert not nn.Module._hooks_on


def test_full_backward_hooks_match_torch():
    torch = _torch()
    lin_m, lin_t = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    _sync(lin_m, lin_t)
    rec_m, rec_t = [], []
    for lin, rec in ((lin_m, rec_m), (lin_t, rec_t)):
        lin.register_full_backward_pre_hook(lambda m, go, rec=rec: rec.append(("pre", go)))
        lin.register_full_backward_hook(
            lambda m, gi, go, rec=rec: (rec.append(("post", gi, go)), (gi[0] * 2,))[1])
    x = _randn(4, 3)
    xm, xt = fw.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (lin_m(xm) ** 2).sum().backward()
    (lin_t(xt) ** 2).sum().backward()
    assert [r[0] for r in rec_m] == [r[0] for r in rec_t] == ["pre", "post"]
    np.testing.assert_allclose(_np(rec_m[0][1][0]), _np(rec_t[0][1][0]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(rec_m[1][1][0]), _np(rec_t[1][1][0]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(xm.grad), _np(xt.grad), rtol=1e-5, atol=1e-6)  # doubled by the hook
    np.testing.assert_allclose(_np(lin_m.weight.grad), _np(lin_t.weight.grad), rtol=1e-5, atol=1e-6)
    # no input requires grad: the hook still runs, with grad_input (None,)
    got = []
    lin2 = nn.Linear(3, 2)
    lin2.register_full_backward_hook(lambda m, gi, go: got.append(gi))
    lin2(fw.ones(1, 3)).sum().backward()
    assert got == [(None,)]


def test_repr_matches_torch():
    torch = _torch()
    pairs = [
        (nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.2)),
         torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Dropout(0.2))),
        (nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.Tanh()]),
         torch.nn.ModuleList([torch.nn.ReLU(), torch.nn.ReLU(), torch.nn.Tanh()])),
        (nn.ModuleDict({"a": nn.GELU("tanh")}), torch.nn.ModuleDict({"a": torch.nn.GELU("tanh")})),
        (nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False, padding_mode="reflect"),
         torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False, padding_mode="reflect")),
        (nn.Conv1d(3, 6, 3, padding="same", groups=3), torch.nn.Conv1d(3, 6, 3, padding="same",
                                                                    groups=3)),
        (nn.ConvTranspose2d(3, 8, 3, stride=2, output_padding=1),
         torch.nn.ConvTranspose2d(3, 8, 3, stride=2, output_padding=1)),
        (nn.BatchNorm2d(4, momentum=None), torch.nn.BatchNorm2d(4, momentum=None)),
        (nn.LayerNorm([4, 5]), torch.nn.LayerNorm([4, 5])),
        (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
        (nn.InstanceNorm2d(3), torch.nn.InstanceNorm2d(3)),
        (nn.RMSNorm(4), torch.nn.RMSNorm(4)),
        (nn.Embedding(10, 3, padding_idx=0), torch.nn.Embedding(10, 3, padding_idx=0)),
        (nn.EmbeddingBag(10, 3, mode="sum"), torch.nn.EmbeddingBag(10, 3, mode="sum")),
        (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (nn.AvgPool1d(3, 2), torch.nn.AvgPool1d(3, 2)),
        (nn.AdaptiveAvgPool2d((1, 1)), torch.nn.AdaptiveAvgPool2d((1, 1))),
        (nn.LeakyReLU(0.2, inplace=True), torch.nn.LeakyReLU(0.2, inplace=True)),
        (nn.ELU(), torch.nn.ELU()), (nn.Softplus(2), torch.nn.Softplus(2)),
        (nn.Hardtanh(-2, 2), torch.nn.Hardtanh(-2, 2)), (nn.ReLU6(), torch.nn.ReLU6()),
        (nn.PReLU(3), torch.nn.PReLU(3)), (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
        (nn.Flatten(), torch.nn.Flatten()), (nn.Unflatten(1, (2, 3)), torch.nn.Unflatten(1, (2, 3))),
        (nn.ZeroPad2d(2), torch.nn.ZeroPad2d(2)), (nn.ConstantPad1d(1, 3.5),
                                                  torch.nn.ConstantPad1d(1, 3.5)),
        (nn.ReflectionPad2d((1, 2, 0, 1)), torch.nn.ReflectionPad2d((1, 2, 0, 1))),
        (nn.Upsample(scale_factor=2, mode="bilinear"), torch.nn.Upsample(scale_factor=2,
                                                                        mode="bilinear")),
        (nn.PixelShuffle(2), torch.nn.PixelShuffle(2)),
        (nn.Unfold(2, padding=1), torch.nn.Unfold(2, padding=1)),
        (nn.LSTM(2, 3, 2, batch_first=True, bidirectional=True),
         torch.nn.LSTM(2, 3, 2, batch_first=True, bidirectional=True)),
        (nn.GRUCell(2, 3, bias=False), torch.nn.GRUCell(2, 3, bias=False)),
        (nn.RNNCell(2, 3, nonlinearity="relu"), torch.nn.RNNCell(2, 3, nonlinearity="relu")),
        (nn.MultiheadAttention(4, 2), torch.nn.MultiheadAttention(4, 2)),
        (nn.TransformerEncoderLayer(8, 2, 16), torch.nn.TransformerEncoderLayer(8, 2, 16)),
        (nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()),
        (nn.Bilinear(2, 3, 4), torch.nn.Bilinear(2, 3, 4)),
    ]
    for mine, ref in pairs:
        assert repr(mine) == repr(ref), (repr(mine), repr(ref))
    p = nn.Parameter(fw.ones(2))
    assert repr(p).startswith("Parameter containing:\ntensor([1., 1.], requires_grad=True)")
    plist = nn.ParameterList([nn.Parameter(fw.ones(2, 3)), fw.zeros(3)])
    tplist = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(2, 3)), torch.zeros(3)])
    assert repr(plist).replace("framework.", "torch.") == repr(tplist)


# =========================================================================== containers
def test_sequential_container_ops():
    a, b, c = nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)
    s = nn.Sequential(a, b, c)
    assert len(s) == 3 and s[0] is a and s[-1] is c
    sl = s[1:]
    assert isinstance(sl, nn.Sequential) and list(sl) == [b, c]
    assert list(sl._modules.keys()) == ["1", "2"]  # slicing keeps the names, as PyTorch
    s2 = s + nn.Sequential(nn.Tanh())
    assert len(s2) == 4
    s.append(nn.Sigmoid())
    assert len(s) == 4 and list(s._modules) == ["0", "1", "2", "3"]
    del s[1]
    assert list(s._modules) == ["0", "1", "2"] and s[1] is c
    s.insert(1, b)
    assert s[1] is b and s[2] is c
    s[0] = nn.Identity()
    assert isinstance(s[0], nn.Identity)
    assert isinstance(s.pop(0), nn.Identity) and len(s) == 3
    s.extend([nn.Tanh()])
    assert len(s) == 4
    with pytest.raises(IndexError):
        s[10]
    from collections import OrderedDict
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert named.fc is named[0]
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    x = fw.randn(3, 2)
    np.testing.assert_allclose(_np(named(x)), _np(named.act(named.fc(x))))


def test_modulelist_moduledict():
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    assert len(ml) == 3 and len(list(ml.parameters())) == 6
    ml.append(nn.ReLU())
    ml.extend([nn.Tanh()])
    ml.insert(0, nn.Sigmoid())
    assert [type(m).__name__ for m in ml] == ["Sigmoid", "Linear", "Linear", "Linear", "ReLU",
                                              "Tanh"]
    assert isinstance(ml[1:3], nn.ModuleList) and len(ml[1:3]) == 2
    del ml[0]
    assert isinstance(ml[0], nn.Linear) and list(ml._modules) == [str(i) for i in range(5)]
    ml[-1] = nn.Identity()
    assert isinstance(ml[4], nn.Identity)
    ml += [nn.ReLU()]
    assert len(ml) == 6
    with pytest.raises(TypeError):
        ml.extend(nn.ReLU())
    md = nn.ModuleDict({"b": nn.ReLU(), "a": nn.Linear(1, 2)})
    assert list(md.keys()) == ["b", "a"] and "a" in md and len(md) == 2
    md["c"] = nn.Tanh()
    assert list(md) == ["b", "a", "c"]
    assert isinstance(md.pop("b"), nn.ReLU) and list(md.keys()) == ["a", "c"]
    md.update([("d", nn.ReLU())])
    assert list(md.state_dict()) == ["a.weight", "a.bias"]
    md.clear()
    assert len(md) == 0


def test_parameterlist_parameterdict():
    pl = nn.ParameterList([nn.Parameter(fw.ones(2)), fw.zeros(3)])
    assert isinstance(pl[1], nn.Parameter) and pl[1].requires_grad
    pl.append(fw.ones(1))
    assert len(pl) == 3 and list(pl.state_dict()) == ["0", "1", "2"]
    assert len(list(pl.parameters())) == 3
    assert len(pl[1:]) == 2
    with pytest.raises(RuntimeError):
        pl(1)
    pd = nn.ParameterDict({"b": fw.ones(2), "a": nn.Parameter(fw.zeros(1))})
    assert list(pd.keys()) == ["a", "b"]  # a plain dict is taken in sorted order, as PyTorch
    pd["c"] = fw.ones(3)
    assert isinstance(pd["c"], nn.Parameter) and "c" in pd and len(pd) == 3
    assert list(pd.state_dict()) == ["a", "b", "c"]
    assert pd.pop("a").shape == (1,) and len(pd) == 2
    assert pd.get("zz", 5) == 5
    both = pd | nn.ParameterDict({"z": fw.ones(1)})
    assert list(both.keys()) == ["b", "c", "z"]
    m = nn.Module()
    m.plist = pl
    m.pdict = pd
    assert set(m.state_dict()) == {"plist.0", "plist.1", "plist.2", "pdict.b", "pdict.c"}


def test_deepcopy_and_pickle_module():
    net = _Net()
    clone = copy.deepcopy(net)
    assert isinstance(clone.fc.weight, nn.Parameter) and clone.fc.weight is not net.fc.weight
    np.testing.assert_array_equal(_np(clone.fc.weight), _np(net.fc.weight))
    restored = pickle.loads(pickle.dumps(net))
    assert isinstance(restored.fc.weight, nn.Parameter)
    assert restored.fc.weight.requires_grad
    x = fw.randn(3, 4)
    net.eval()
    restored.eval()
    np.testing.assert_allclose(_np(restored(x)), _np(net(x)), rtol=1e-6)


# =========================================================================== init
def test_init_formulas_and_statistics():
    torch = _torch()
    for nl, p in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                  ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert nn.init.calculate_gain(nl, p) == torch.nn.init.calculate_gain(nl, p)
    with pytest.raises(ValueError):
        nn.init.calculate_gain("nope")
    w = fw.empty(64, 16, 3, 3)
    assert nn.init._calculate_fan_in_and_fan_out(w) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(64, 16, 3, 3)) == (144, 576)
    with pytest.raises(ValueError):
        nn.init._calculate_fan_in_and_fan_out(fw.empty(3))
    big = fw.empty(400, 600)
    b = math.sqrt(6 / 1000)
    nn.init.xavier_uniform_(big)
    a = _np(big)
    assert a.max() <= b and a.min() >= -b and a.max() > 0.99 * b
    assert abs(a.std() - math.sqrt(2 / 1000)) < 0.02 * math.sqrt(2 / 1000)
    nn.init.xavier_normal_(big, gain=2.0)
    assert abs(_np(big).std() - 2 * math.sqrt(2 / 1000)) < 0.02 * 2 * math.sqrt(2 / 1000)
    nn.init.kaiming_normal_(big, mode="fan_out", nonlinearity="relu")
    assert abs(_np(big).std() - math.sqrt(2 / 400)) < 0.02 * math.sqrt(2 / 400)
    nn.init.kaiming_uniform_(big, a=math.sqrt(5))
    bound = 1 / math.sqrt(600)  # gain sqrt(2/(1+5)) * sqrt(3/fan_in) = 1/sqrt(fan_in)
    assert np.abs(_np(big)).max() <= bound and np.abs(_np(big)).max() > 0.99 * bound
    nn.init.trunc_normal_(big, mean=1.0, std=2.0, a=-1.0, b=2.0)
    a = _np(big)
    assert a.min() >= -1.0 and a.max() <= 2.0
    # moments of N(1, 2^2) truncated to [-1, 2]
    from scipy.stats import truncnorm
    ref = truncnorm((-1 - 1) / 2, (2 - 1) / 2, loc=1, scale=2)
    assert abs(a.mean() - ref.mean()) < 0.01 and abs(a.std() - ref.std()) < 0.01
    nn.init.uniform_(big, -3, -2)
    assert _np(big).min() >= -3 and _np(big).max() <= -2
    nn.init.normal_(big, 5, 0.1)
    assert abs(_np(big).mean() - 5) < 0.01
    nn.init.constant_(big, 0.3)
    assert np.all(_np(big) == np.float32(0.3))
    nn.init.ones_(big)
    nn.init.zeros_(big)
    assert not _np(big).any()
    q = fw.empty(30, 50)
    nn.init.orthogonal_(q, gain=2.0)
    np.testing.assert_allclose(_np(q) @ _np(q).T, 4 * np.eye(30), atol=1e-4)
    q = fw.empty(50, 30)
    nn.init.orthogonal_(q)
    np.testing.assert_allclose(_np(q).T @ _np(q), np.eye(30), atol=1e-5)
    e = fw.empty(3, 5)
    nn.init.eye_(e)
    np.testing.assert_array_equal(_np(e), torch.nn.init.eye_(torch.empty(3, 5)).numpy())
    d = fw.empty(6, 2, 3, 3)
    nn.init.dirac_(d, groups=2)
    np.testing.assert_array_equal(_np(d), torch.nn.init.dirac_(torch.empty(6, 2, 3, 3),
                                                               groups=2).numpy())
    s = fw.empty(100, 20)
    nn.init.sparse_(s, 0.3)
    assert all((_np(s)[:, j] == 0).sum() >= 30 for j in range(20))
    # parameters that require grad are filled without recording a graph
    p = nn.Parameter(fw.empty(3, 3))
    nn.init.kaiming_uniform_(p)
    assert p.grad_fn is None and p.requires_grad


@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Linear(300, 200), 300),
    (lambda: nn.Conv2d(8, 16, 5), 8 * 25),
    (lambda: nn.Conv1d(6, 12, 3, groups=3), 2 * 3),
    (lambda: nn.ConvTranspose2d(8, 16, 3), 16 * 9),  # torch's fan-in of a transposed weight
])
def test_default_linear_conv_init_bounds(make, fan_in):
    m = make()
    bound = 1 / math.sqrt(fan_in)
    w, b = _np(m.weight), _np(m.bias)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound / math.sqrt(3)


def test_default_init_of_other_layers():
    e = nn.Embedding(2000, 50, padding_idx=3)
    w = _np(e.weight)
    assert abs(w.std() - 1) < 0.02 and not w[3].any()
    lstm = nn.LSTM(10, 400)
    assert all(np.abs(_np(p)).max() <= 1 / 20 for p in lstm.parameters())
    mha = nn.MultiheadAttention(40, 4)
    bound = math.sqrt(6 / (40 + 120))
    assert np.abs(_np(mha.in_proj_weight)).max() <= bound
    assert not _np(mha.in_proj_bias).any() and not _np(mha.out_proj.bias).any()
    bn = nn.BatchNorm2d(3)
    assert (_np(bn.weight) == 1).all() and not _np(bn.bias).any()
    assert (_np(bn.running_var) == 1).all() and int(bn.num_batches_tracked) == 0
    assert (_np(nn.PReLU(4).weight) == np.float32(0.25)).all()
    t = nn.Transformer(16, 2, 1, 1, 32)
    b = math.sqrt(6 / (16 + 32))
    assert np.abs(_np(t.encoder.layers[0].linear1.weight)).max() <= b
    assert nn.Linear(2, 3, dtype=fw.float64).weight.dtype == fw.float64


# =========================================================================== nn.utils
def test_clip_grad_norm_matches_torch():
    torch = _torch()
    shapes = [(3, 4), (5,), ()]
    for norm_type in (2.0, 1.0, math.inf, 3.0):
        for max_norm in (0.5, 100.0):
            rng = np.random.default_rng(0)
            grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
            pm = [nn.Parameter(fw.zeros(s)) for s in shapes]
            pt = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
            for a, b, g in zip(pm, pt, grads):
                a.grad = fw.tensor(g)
                b.grad = torch.tensor(g)
            nm = nn.utils.clip_grad_norm_(pm, max_norm, norm_type)
            nt = torch.nn.utils.clip_grad_norm_(pt, max_norm, norm_type)
            np.testing.assert_allclose(float(nm), float(nt), rtol=1e-5)
            for a, b in zip(pm, pt):
                np.testing.assert_allclose(_np(a.grad), _np(b.grad), rtol=1e-5, atol=1e-7)
    p = nn.Parameter(fw.zeros(2))
    p.grad = fw.tensor([float("nan"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    assert float(nn.utils.clip_grad_norm_([nn.Parameter(fw.zeros(1))], 1.0)) == 0.0
    q = nn.Parameter(fw.zeros(3))
    q.grad = fw.tensor([-5.0, 0.5, 3.0])
    nn.utils.clip_grad_value_(q, 1.0)
    np.testing.assert_array_equal(_np(q.grad), [-1.0, 0.5, 1.0])
    total = nn.utils.get_total_norm([fw.tensor([3.0]), fw.tensor([4.0])])
    assert float(total) == pytest.approx(5.0)


def test_parameters_vector_round_trip():
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    v = nn.utils.parameters_to_vector(net.parameters())
    assert v.shape == (11,) and v.requires_grad
    (v * fw.arange(11.0)).sum().backward()
    np.testing.assert_array_equal(_np(net[0].weight.grad).ravel(), np.arange(6.0))
    w = net[0].weight
    nn.utils.vector_to_parameters(fw.arange(11.0), net.parameters())
    assert net[0].weight is w
    np.testing.assert_array_equal(_np(net[1].bias), [10.0])
    np.testing.assert_array_equal(_np(net[0].weight), np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError):
        nn.utils.vector_to_parameters([1.0], net.parameters())


def test_pad_and_pack_sequences():
    torch = _torch()
    seqs = [_randn(n, 3, seed=n) for n in (4, 1, 3)]
    for batch_first in (False, True):
        for side in ("right", "left"):
            got = pad_sequence([fw.tensor(s) for s in seqs], batch_first, -1.0, side)
            ref = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first,
                                                  -1.0, side)
            np.testing.assert_array_equal(_np(got), ref.numpy())
    padded = _randn(5, 3, 2)
    lengths = [2, 5, 3]
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        pack_padded_sequence(fw.tensor(padded), lengths)
    x = fw.tensor(padded, requires_grad=True)
    xt = torch.tensor(padded, requires_grad=True)
    pm = pack_padded_sequence(x, fw.tensor(lengths), enforce_sorted=False)
    pt = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), enforce_sorted=False)
    np.testing.assert_array_equal(_np(pm.data), pt.data.detach().numpy())
    np.testing.assert_array_equal(_np(pm.batch_sizes), pt.batch_sizes.numpy())
    np.testing.assert_array_equal(_np(pm.sorted_indices), pt.sorted_indices.numpy())
    np.testing.assert_array_equal(_np(pm.unsorted_indices), pt.unsorted_indices.numpy())
    um, lm = pad_packed_sequence(pm, batch_first=True, padding_value=7.0, total_length=6)
    ut, lt = torch.nn.utils.rnn.pad_packed_sequence(pt, batch_first=True, padding_value=7.0,
                                                    total_length=6)
    np.testing.assert_array_equal(_np(um), ut.detach().numpy())
    np.testing.assert_array_equal(_np(lm), lt.numpy())
    g = _randn(*ut.shape, seed=3)
    (um * fw.tensor(g)).sum().backward()
    (ut * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(_np(x.grad), xt.grad.numpy())
    with pytest.raises(ValueError, match="total_length"):
        pad_packed_sequence(pm, total_length=2)
    ps = pack_sequence([fw.tensor(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(_np(ps.batch_sizes), [3, 2, 2, 1])
    from framework.nn.utils.rnn import unpack_sequence
    for a, b in zip(unpack_sequence(ps), seqs):
        np.testing.assert_array_equal(_np(a), b)
    assert ps.double().data.dtype == fw.float64


# =========================================================================== layer parity
_LAYER_CASES = [
    # (id, lantern factory, torch factory, input shapes or arrays, extra)
    ("linear", lambda m: m.Linear(5, 3), [(4, 5)]),
    ("linear_nobias_3d", lambda m: m.Linear(5, 3, bias=False), [(2, 4, 5)]),
    ("bilinear", lambda m: m.Bilinear(4, 5, 3), [(6, 4), (6, 5)]),
    ("identity", lambda m: m.Identity(3, k=1), [(2, 3)]),
    ("flatten", lambda m: m.Flatten(), [(2, 3, 4, 5)]),
    ("unflatten", lambda m: m.Unflatten(1, (2, 3)), [(4, 6)]),
    ("conv1d", lambda m: m.Conv1d(3, 4, 3, stride=2, padding=1), [(2, 3, 9)]),
    ("conv1d_same_circular", lambda m: m.Conv1d(2, 4, 4, padding="same", dilation=2,
                                                padding_mode="circular"), [(2, 2, 11)]),
    ("conv2d", lambda m: m.Conv2d(3, 4, 3, padding=1), [(2, 3, 7, 6)]),
    ("conv2d_groups_dil", lambda m: m.Conv2d(4, 6, 3, groups=2, dilation=2, stride=(1, 2)),
     [(2, 4, 9, 9)]),
    ("conv2d_reflect", lambda m: m.Conv2d(2, 3, 3, padding=(1, 2), padding_mode="reflect"),
     [(1, 2, 6, 7)]),
    ("conv2d_replicate_valid", lambda m: m.Conv2d(2, 3, 2, padding="valid",
                                                  padding_mode="replicate"), [(1, 2, 5, 5)]),
    ("conv2d_unbatched", lambda m: m.Conv2d(2, 3, 3, bias=False), [(2, 5, 5)]),
    ("conv3d", lambda m: m.Conv3d(2, 3, 2, stride=(1, 2, 1), padding=1), [(1, 2, 4, 5, 4)]),
    ("convT1d", lambda m: m.ConvTranspose1d(3, 2, 3, stride=2, padding=1, output_padding=1),
     [(2, 3, 5)]),
    ("convT2d", lambda m: m.ConvTranspose2d(4, 6, 3, stride=2, groups=2, dilation=(1, 2)),
     [(2, 4, 4, 3)]),
    ("convT3d", lambda m: m.ConvTranspose3d(2, 3, 2, stride=2, bias=False), [(1, 2, 2, 3, 2)]),
    ("maxpool1d", lambda m: m.MaxPool1d(3, 2, padding=1), [(2, 3, 9)]),
    ("maxpool2d", lambda m: m.MaxPool2d(2), [(2, 3, 6, 7)]),
    ("maxpool2d_ceil_dil", lambda m: m.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
     [(1, 2, 9, 8)]),
    ("maxpool3d", lambda m: m.MaxPool3d(2, stride=1), [(1, 2, 3, 4, 4)]),
    ("avgpool1d", lambda m: m.AvgPool1d(3, 2, 1, count_include_pad=False), [(2, 3, 8)]),
    ("avgpool2d", lambda m: m.AvgPool2d(3, 2, 1, ceil_mode=True), [(2, 3, 7, 6)]),
    ("avgpool2d_divisor", lambda m: m.AvgPool2d(2, divisor_override=3), [(1, 2, 4, 4)]),
    ("avgpool3d", lambda m: m.AvgPool3d(2), [(1, 2, 4, 4, 4)]),
    ("adaptiveavg1d", lambda m: m.AdaptiveAvgPool1d(4), [(2, 3, 10)]),
    ("adaptiveavg2d", lambda m: m.AdaptiveAvgPool2d((3, None)), [(2, 3, 7, 5)]),
    ("adaptiveavg3d", lambda m: m.AdaptiveAvgPool3d(2), [(1, 2, 5, 4, 3)]),
    ("adaptivemax2d", lambda m: m.AdaptiveMaxPool2d((2, 3)), [(2, 3, 7, 8)]),
    ("lppool2d", lambda m: m.LPPool2d(2, 2), [(1, 2, 4, 6)]),
    ("layernorm", lambda m: m.LayerNorm([4, 5]), [(3, 4, 5)]),
    ("layernorm_nobias", lambda m: m.LayerNorm(5, bias=False, eps=1e-3), [(3, 5)]),
    ("groupnorm", lambda m: m.GroupNorm(2, 6), [(3, 6, 4, 2)]),
    ("rmsnorm", lambda m: m.RMSNorm([3, 4], eps=1e-5), [(2, 3, 4)]),
    ("localresponsenorm", lambda m: m.LocalResponseNorm(3), [(2, 5, 4, 4)]),
    ("embedding", lambda m: m.Embedding(10, 4, padding_idx=2), [np.array([[1, 2, 3], [2, 9, 1]])]),
    ("embedding_maxnorm", lambda m: m.Embedding(10, 4, max_norm=1.0), [np.array([1, 5, 1, 0])]),
    ("cosine_similarity", lambda m: m.CosineSimilarity(dim=1), [(4, 5), (4, 5)]),
    ("pairwise_distance", lambda m: m.PairwiseDistance(p=1.5, keepdim=True), [(4, 5), (4, 5)]),
    ("zeropad2d", lambda m: m.ZeroPad2d((1, 2, 0, 3)), [(1, 2, 3, 4)]),
    ("constantpad1d", lambda m: m.ConstantPad1d(2, -1.5), [(2, 3, 4)]),
    ("constantpad3d", lambda m: m.ConstantPad3d((1, 0, 0, 1, 2, 0), 0.5), [(1, 1, 2, 2, 2)]),
    ("reflectionpad1d", lambda m: m.ReflectionPad1d(2), [(2, 3, 5)]),
    ("reflectionpad2d", lambda m: m.ReflectionPad2d((1, 2, 2, 1)), [(1, 2, 4, 5)]),
    ("replicationpad2d", lambda m: m.ReplicationPad2d(2), [(1, 2, 3, 3)]),
    ("replicationpad3d", lambda m: m.ReplicationPad3d(1), [(1, 1, 2, 3, 2)]),
    ("circularpad2d", lambda m: m.CircularPad2d(1), [(1, 2, 3, 3)]),
    ("upsample_nearest", lambda m: m.Upsample(scale_factor=2), [(1, 2, 3, 4)]),
    ("upsample_bilinear", lambda m: m.Upsample(size=(5, 7), mode="bilinear",
                                               align_corners=True), [(1, 2, 3, 4)]),
    ("upsamplingbilinear2d", lambda m: m.UpsamplingBilinear2d(scale_factor=2), [(1, 1, 3, 3)]),
    ("pixelshuffle", lambda m: m.PixelShuffle(2), [(1, 8, 2, 3)]),
    ("pixelunshuffle", lambda m: m.PixelUnshuffle(2), [(1, 2, 4, 6)]),
    ("channelshuffle", lambda m: m.ChannelShuffle(2), [(2, 6, 2, 2)]),
    ("unfold", lambda m: m.Unfold(2, dilation=1, padding=1, stride=2), [(2, 3, 5, 4)]),
    ("fold", lambda m: m.Fold((4, 5), 2, stride=1), [(2, 12, 12)]),
]

_ACTIVATIONS = [
    ("relu", lambda m: m.ReLU()), ("relu6", lambda m: m.ReLU6()),
    ("leakyrelu", lambda m: m.LeakyReLU(0.2)), ("elu", lambda m: m.ELU(0.7)),
    ("celu", lambda m: m.CELU(1.3)), ("selu", lambda m: m.SELU()),
    ("gelu", lambda m: m.GELU()), ("gelu_tanh", lambda m: m.GELU("tanh")),
    ("silu", lambda m: m.SiLU()), ("mish", lambda m: m.Mish()),
    ("hardswish", lambda m: m.Hardswish()), ("hardsigmoid", lambda m: m.Hardsigmoid()),
    ("softplus", lambda m: m.Softplus(2.0, 3.0)), ("tanh", lambda m: m.Tanh()),
    ("sigmoid", lambda m: m.Sigmoid()), ("glu", lambda m: m.GLU(1)),
    ("hardtanh", lambda m: m.Hardtanh(-0.5, 0.7)), ("logsigmoid", lambda m: m.LogSigmoid()),
    ("softsign", lambda m: m.Softsign()), ("tanhshrink", lambda m: m.Tanhshrink()),
    ("softshrink", lambda m: m.Softshrink(0.3)), ("hardshrink", lambda m: m.Hardshrink(0.3)),
    ("threshold", lambda m: m.Threshold(0.1, -2.0)), ("prelu", lambda m: m.PReLU()),
    ("prelu_channels", lambda m: m.PReLU(4, init=0.1)),
    ("softmax", lambda m: m.Softmax(dim=1)), ("logsoftmax", lambda m: m.LogSoftmax(dim=-1)),
    ("softmin", lambda m: m.Softmin(dim=0)), ("softmax2d", lambda m: m.Softmax2d()),
]


def _inputs(specs, seed=0):
    out = []
    for i, s in enumerate(specs):
        out.append(s if isinstance(s, np.ndarray) else _randn(*s, seed=seed + i))
    return out


@pytest.mark.parametrize("case", _LAYER_CASES, ids=[c[0] for c in _LAYER_CASES])
def test_layer_parity(case):
    torch = _torch()
    _, make, specs = case
    mine, ref = make(nn), make(torch.nn)
    _parity(mine, ref, *_inputs(specs), ref_factory=lambda: make(torch.nn))


@pytest.mark.parametrize("case", _ACTIVATIONS, ids=[c[0] for c in _ACTIVATIONS])
def test_activation_parity(case):
    torch = _torch()
    _, make = case
    x = _randn(3, 4, 5, 2) * 2
    _parity(make(nn), make(torch.nn), x)


def test_conv_transpose_output_size_and_errors():
    torch = _torch()
    mine, ref = nn.ConvTranspose2d(3, 2, 3, stride=2), torch.nn.ConvTranspose2d(3, 2, 3, stride=2)
    x = _randn(1, 3, 4, 4)
    _parity(mine, ref, x, kwargs={"output_size": [10, 10]})
    with pytest.raises(ValueError, match="output size"):
        mine(fw.tensor(x), output_size=[20, 20])
    with pytest.raises(ValueError, match="zeros"):
        nn.ConvTranspose2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")


def test_maxpool_return_indices_and_unpool():
    torch = _torch()
    x = _randn(1, 2, 6, 6)
    pm, pt = nn.MaxPool2d(2, return_indices=True), torch.nn.MaxPool2d(2, return_indices=True)
    (om, im), (ot, it) = pm(fw.tensor(x)), pt(torch.tensor(x))
    np.testing.assert_array_equal(_np(im), it.numpy())
    np.testing.assert_array_equal(_np(om), ot.numpy())
    _parity(nn.MaxUnpool2d(2), torch.nn.MaxUnpool2d(2), _np(om), _np(im).astype(np.int64))
    _parity(nn.AdaptiveMaxPool1d(3, return_indices=True),
            torch.nn.AdaptiveMaxPool1d(3, return_indices=True), _randn(2, 3, 8))


@pytest.mark.parametrize("kind", ["1d_2d", "1d_3d", "2d", "3d"])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_parity_train_then_eval(kind, momentum):
    torch = _torch()
    name, shape = {"1d_2d": ("BatchNorm1d", (8, 3)), "1d_3d": ("BatchNorm1d", (4, 3, 5)),
                   "2d": ("BatchNorm2d", (4, 3, 5, 2)), "3d": ("BatchNorm3d", (2, 3, 2, 3, 2))}[kind]
    mine = getattr(nn, name)(3, momentum=momentum)
    ref = getattr(torch.nn, name)(3, momentum=momentum)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-0.5, 0.5)
    x = _randn(*shape) * 2 + 1
    _parity(mine, ref, x, train=True, steps=3)
    assert int(mine.num_batches_tracked) == 3
    _parity(mine, ref, x * 0.5, train=False, ref_factory=lambda: getattr(torch.nn, name)(3))
    with pytest.raises(ValueError, match="expected"):
        mine(fw.randn(*(shape + (1, 1))))


def test_batchnorm_variants():
    torch = _torch()
    x = _randn(6, 4, 3)
    for kw in ({"affine": False}, {"track_running_stats": False}, {"eps": 1e-2}):
        _parity(nn.BatchNorm1d(4, **kw), torch.nn.BatchNorm1d(4, **kw), x, train=True)
        _parity(nn.BatchNorm1d(4, **kw), torch.nn.BatchNorm1d(4, **kw), x, train=False)


@pytest.mark.parametrize("kind", ["1d", "2d", "3d"])
def test_instancenorm_parity(kind):
    torch = _torch()
    shape = {"1d": (2, 3, 6), "2d": (2, 3, 4, 5), "3d": (2, 3, 2, 3, 4)}[kind]
    cls = f"InstanceNorm{kind}"
    _parity(getattr(nn, cls)(3), getattr(torch.nn, cls)(3), _randn(*shape))
    kw = {"affine": True, "track_running_stats": True}
    mine, ref = getattr(nn, cls)(3, **kw), getattr(torch.nn, cls)(3, **kw)
    _parity(mine, ref, _randn(*shape), train=True, steps=2)
    _parity(mine, ref, _randn(*shape, seed=5), train=False,
            ref_factory=lambda: getattr(torch.nn, cls)(3, **kw))
    _parity(getattr(nn, cls)(3), getattr(torch.nn, cls)(3), _randn(*shape[1:]))  # unbatched


def test_dropout_modules():
    torch = _torch()
    x = _randn(4, 6, 5, 5)
    for cls in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"):
        shape = {"Dropout1d": (4, 6, 5), "Dropout3d": (2, 3, 4, 5, 5)}.get(cls, x.shape)
        xi = _randn(*shape)
        _parity(getattr(nn, cls)(0.5), getattr(torch.nn, cls)(0.5), xi, train=False)
        _parity(getattr(nn, cls)(0.0), getattr(torch.nn, cls)(0.0), xi, train=True)
    d = nn.Dropout(0.25)
    y = _np(d(fw.ones(200, 200)))
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    y = _np(nn.Dropout2d(0.5)(fw.ones(8, 64, 3, 3)))
    per_channel = y.reshape(8, 64, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_embedding_bag_and_pretrained():
    torch = _torch()
    idx = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    offsets = np.array([0, 3, 3, 6])
    for mode in ("sum", "mean", "max"):
        _parity(nn.EmbeddingBag(10, 3, mode=mode), torch.nn.EmbeddingBag(10, 3, mode=mode),
                idx, offsets, ref_factory=lambda: torch.nn.EmbeddingBag(10, 3, mode=mode))
    w = _randn(8, 3)
    _parity(nn.EmbeddingBag(10, 3, mode="sum"), torch.nn.EmbeddingBag(10, 3, mode="sum"),
            idx, offsets, kwargs={"per_sample_weights": w.reshape(-1)[:8]})
    _parity(nn.EmbeddingBag(10, 3), torch.nn.EmbeddingBag(10, 3), np.array([[1, 2], [3, 3]]))
    emb = nn.Embedding.from_pretrained(fw.tensor(_randn(5, 2)))
    assert not emb.weight.requires_grad and emb.weight.shape == (5, 2)
    emb2 = nn.Embedding.from_pretrained(fw.tensor(_randn(5, 2)), freeze=False, padding_idx=1)
    assert emb2.weight.requires_grad and emb2.padding_idx == 1
    out = emb2(fw.tensor([1, 1, 0]))
    out.sum().backward()
    assert not _np(emb2.weight.grad)[1].any()  # no gradient into the padding row


_LOSSES = [
    ("mse", lambda m, r: m.MSELoss(reduction=r), "reg"),
    ("l1", lambda m, r: m.L1Loss(reduction=r), "reg"),
    ("smoothl1", lambda m, r: m.SmoothL1Loss(reduction=r, beta=0.5), "reg"),
    ("huber", lambda m, r: m.HuberLoss(reduction=r, delta=0.7), "reg"),
    ("bce", lambda m, r: m.BCELoss(reduction=r), "prob"),
    ("bce_weight", lambda m, r: m.BCELoss(weight=m_tensor(m, [0.5, 1.0, 2.0]), reduction=r),
     "prob"),
    ("bcelogits", lambda m, r: m.BCEWithLogitsLoss(reduction=r,
                                                   pos_weight=m_tensor(m, [1.0, 2.0, 0.5])),
     "logit01"),
    ("crossentropy", lambda m, r: m.CrossEntropyLoss(reduction=r), "cls"),
    ("crossentropy_weight_ls", lambda m, r: m.CrossEntropyLoss(
        weight=m_tensor(m, [1.0, 2.0, 0.5, 1.5]), reduction=r, label_smoothing=0.1,
        ignore_index=1), "cls"),
    ("crossentropy_probs", lambda m, r: m.CrossEntropyLoss(reduction=r), "cls_prob"),
    ("crossentropy_kd", lambda m, r: m.CrossEntropyLoss(reduction=r), "cls_kd"),
    ("nll", lambda m, r: m.NLLLoss(reduction=r, ignore_index=2), "logp"),
    ("kldiv", lambda m, r: m.KLDivLoss(reduction=r if r != "mean" else "batchmean"), "kl"),
    ("kldiv_logtarget", lambda m, r: m.KLDivLoss(reduction=r, log_target=True), "kl_log"),
    ("cosineembedding", lambda m, r: m.CosineEmbeddingLoss(margin=0.2, reduction=r), "pair"),
    ("marginranking", lambda m, r: m.MarginRankingLoss(margin=0.1, reduction=r), "rank"),
    ("tripletmargin", lambda m, r: m.TripletMarginLoss(margin=0.5, reduction=r), "triplet"),
    ("tripletmargin_swap_p1", lambda m, r: m.TripletMarginLoss(p=1, swap=True, reduction=r),
     "triplet"),
    ("softmargin", lambda m, r: m.SoftMarginLoss(reduction=r), "sign"),
    ("hingeembedding", lambda m, r: m.HingeEmbeddingLoss(margin=0.5, reduction=r), "sign"),
    ("poissonnll", lambda m, r: m.PoissonNLLLoss(reduction=r), "reg"),
    ("gaussiannll", lambda m, r: m.GaussianNLLLoss(reduction=r), "gauss"),
    ("multimargin", lambda m, r: m.MultiMarginLoss(reduction=r), "cls2d"),
    ("multilabelsoftmargin", lambda m, r: m.MultiLabelSoftMarginLoss(reduction=r), "multilabel"),
]


def m_tensor(mod, values):
    """A float tensor from the library that `mod` (framework.nn or torch.nn) belongs to."""
    if mod is nn:
        return fw.tensor(values)
    import torch
    return torch.tensor(values)


def _loss_inputs(kind):
    rng = np.random.default_rng(0)
    f = np.float32
    if kind == "reg":
        return [rng.standard_normal((4, 3)).astype(f), rng.standard_normal((4, 3)).astype(f)]
    if kind == "prob":
        return [rng.uniform(0.05, 0.95, (4, 3)).astype(f), rng.uniform(0, 1, (4, 3)).astype(f)]
    if kind == "logit01":
        return [rng.standard_normal((4, 3)).astype(f), rng.integers(0, 2, (4, 3)).astype(f)]
    if kind == "cls":
        return [rng.standard_normal((5, 4, 3)).astype(f), rng.integers(0, 4, (5, 3))]
    if kind == "cls2d":
        return [rng.standard_normal((5, 4)).astype(f), rng.integers(0, 4, (5,))]
    if kind == "cls_prob":
        p = rng.uniform(0, 1, (5, 4)).astype(f)
        return [rng.standard_normal((5, 4)).astype(f), p / p.sum(1, keepdims=True)]
    if kind == "cls_kd":
        return [rng.standard_normal((5, 4)).astype(f), rng.integers(0, 4, (5,))]
    if kind == "logp":
        x = rng.standard_normal((5, 4)).astype(f)
        return [x - np.log(np.exp(x).sum(1, keepdims=True)), rng.integers(0, 4, (5,))]
    if kind in ("kl", "kl_log"):
        x = rng.standard_normal((5, 4)).astype(f)
        t = rng.uniform(0.1, 1, (5, 4)).astype(f)
        t = t / t.sum(1, keepdims=True)
        return [x - np.log(np.exp(x).sum(1, keepdims=True)),
                np.log(t) if kind == "kl_log" else t]
    if kind == "pair":
        return [rng.standard_normal((4, 5)).astype(f), rng.standard_normal((4, 5)).astype(f),
                np.array([1, -1, 1, -1], dtype=np.int64)]
    if kind == "rank":
        return [rng.standard_normal(6).astype(f), rng.standard_normal(6).astype(f),
                np.sign(rng.standard_normal(6)).astype(f)]
    if kind == "triplet":
        return [rng.standard_normal((4, 5)).astype(f) for _ in range(3)]
    if kind == "sign":
        return [rng.standard_normal((4, 3)).astype(f),
                np.sign(rng.standard_normal((4, 3))).astype(f)]
    if kind == "gauss":
        return [rng.standard_normal((4, 3)).astype(f), rng.standard_normal((4, 3)).astype(f),
                rng.uniform(0.5, 2, (4, 3)).astype(f)]
    if kind == "multilabel":
        return [rng.standard_normal((4, 3)).astype(f), rng.integers(0, 2, (4, 3)).astype(f)]
    raise KeyError(kind)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", _LOSSES, ids=[c[0] for c in _LOSSES])
def test_loss_parity(case, reduction):
    torch = _torch()
    _, make, kind = case
    mine, ref = make(nn, reduction), make(torch.nn, reduction)
    inputs = _loss_inputs(kind)
    # targets that PyTorch does not differentiate (labels, signs) get no requires_grad
    diff = {"pair": (0, 1), "rank": (0, 1), "sign": (0,), "multilabel": (0,),
            "cls_prob": (0,)}.get(kind)
    _parity(mine, ref, *inputs, atol=1e-5, rtol=1e-4, diff=diff,
            ref_factory=lambda: make(torch.nn, reduction))


def test_loss_legacy_reduction_flags():
    with pytest.warns(UserWarning):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.warns(UserWarning):
        assert nn.L1Loss(reduce=False).reduction == "none"
    with pytest.raises(ValueError):
        nn.MSELoss(reduction="avg")
    ce = nn.CrossEntropyLoss(weight=fw.ones(3))
    assert list(ce.state_dict()) == ["weight"]  # class weights are buffers


# =========================================================================== attention
def _mha_case(torch, batch_first=False, kdim=None, vdim=None, add_bias_kv=False,
              add_zero_attn=False, bias=True, masks=(), need_weights=True, avg=True,
              unbatched=False, self_attn=False):
    E, H, L, S, N = 8, 2, 4, 5, 3
    kw = dict(batch_first=batch_first, kdim=kdim, vdim=vdim, add_bias_kv=add_bias_kv,
              add_zero_attn=add_zero_attn, bias=bias)
    mine, ref = nn.MultiheadAttention(E, H, **kw), torch.nn.MultiheadAttention(E, H, **kw)
    if bias:
        with torch.no_grad():  # nonzero biases, so that they are exercised
            ref.in_proj_bias.uniform_(-0.5, 0.5)
            ref.out_proj.bias.uniform_(-0.5, 0.5)

    def shape(seq, dim):
        if unbatched:
            return (seq, dim)
        return (N, seq, dim) if batch_first else (seq, N, dim)
    q = _randn(*shape(L, E), seed=1)
    if self_attn:
        k = v = q
        S = L
    else:
        k = _randn(*shape(S, kdim or E), seed=2)
        v = _randn(*shape(S, vdim or E), seed=3)
    kwargs = {"need_weights": need_weights, "average_attn_weights": avg}
    rng = np.random.default_rng(4)
    if "attn_bool" in masks:
        m = rng.uniform(size=(L, S)) < 0.3
        m[:, 0] = False  # keep one key per query
        kwargs["attn_mask"] = m
    if "attn_float" in masks:
        kwargs["attn_mask"] = rng.standard_normal((L, S)).astype(np.float32)
    if "attn_3d" in masks:
        kwargs["attn_mask"] = rng.standard_normal((N * H, L, S)).astype(np.float32)
    if "kpm" in masks:
        kpm = np.zeros((N, S), dtype=bool) if not unbatched else np.zeros(S, dtype=bool)
        kpm[..., -2:] = True
        kwargs["key_padding_mask"] = kpm
    if "kpm_float" in masks:
        kwargs["key_padding_mask"] = rng.standard_normal((N, S)).astype(np.float32)
    _sync(mine, ref)
    if self_attn:
        # the same tensor as query, key and value (the fused in-projection path)
        xm = fw.tensor(q, requires_grad=True)
        xt = torch.tensor(q, requires_grad=True)
        km = {a: fw.tensor(b) if isinstance(b, np.ndarray) else b for a, b in kwargs.items()}
        kt = {a: torch.tensor(b) if isinstance(b, np.ndarray) else b for a, b in kwargs.items()}
        om, wm = mine(xm, xm, xm, **km)
        ot, wt = ref(xt, xt, xt, **kt)
        np.testing.assert_allclose(_np(om), _np(ot), rtol=1e-4, atol=1e-5)
        (om ** 2).sum().backward()
        (ot ** 2).sum().backward()
        np.testing.assert_allclose(_np(xm.grad), _np(xt.grad), rtol=1e-4, atol=1e-5)
        return
    _parity(mine, ref, q, k, v, kwargs=kwargs,
            ref_factory=lambda: torch.nn.MultiheadAttention(E, H, **kw))


@pytest.mark.parametrize("opts", [
    {}, {"batch_first": True}, {"masks": ("attn_bool", "kpm")}, {"masks": ("attn_float",)},
    {"masks": ("attn_3d", "kpm_float")}, {"kdim": 6, "vdim": 3}, {"need_weights": False},
    {"avg": False, "masks": ("kpm",)}, {"add_bias_kv": True, "masks": ("attn_bool", "kpm")},
    {"add_zero_attn": True, "masks": ("kpm",)}, {"bias": False}, {"unbatched": True,
                                                                  "masks": ("kpm",)},
    {"self_attn": True, "batch_first": True, "masks": ("attn_bool",)},
], ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_multihead_attention_parity(opts):
    torch = _torch()
    _mha_case(torch, **opts)


def test_multihead_attention_errors():
    with pytest.raises(AssertionError, match="divisible"):
        nn.MultiheadAttention(10, 3)
    mha = nn.MultiheadAttention(4, 2)
    x = fw.randn(3, 2, 4)
    with pytest.raises(RuntimeError, match="2D attn_mask"):
        mha(x, x, x, attn_mask=fw.zeros(2, 2))
    with pytest.raises(RuntimeError, match="is_causal"):
        mha(x, x, x, is_causal=True)
    assert list(mha.state_dict()) == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                      "out_proj.bias"]
    assert list(nn.MultiheadAttention(4, 2, kdim=3, vdim=5).state_dict()) == [
        "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "out_proj.weight",
        "out_proj.bias"]


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_layers_parity(norm_first, batch_first):
    torch = _torch()
    kw = dict(dim_feedforward=16, dropout=0.0, batch_first=batch_first, norm_first=norm_first,
              activation="gelu" if norm_first else "relu")
    enc_m, enc_t = nn.TransformerEncoderLayer(8, 2, **kw), torch.nn.TransformerEncoderLayer(8, 2,
                                                                                           **kw)
    src = _randn(*((2, 5, 8) if batch_first else (5, 2, 8)))
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    assert np.isneginf(_np(mask)[0, 1]) and _np(mask)[1, 0] == 0
    kpm = np.zeros((2, 5), dtype=bool)
    kpm[1, -1] = True
    _parity(enc_m, enc_t, src, kwargs={"src_mask": _np(mask), "src_key_padding_mask": kpm},
            ref_factory=lambda: torch.nn.TransformerEncoderLayer(8, 2, **kw))
    dec_m, dec_t = nn.TransformerDecoderLayer(8, 2, **kw), torch.nn.TransformerDecoderLayer(8, 2,
                                                                                           **kw)
    tgt = _randn(*((2, 4, 8) if batch_first else (4, 2, 8)), seed=7)
    tmask = _np(nn.Transformer.generate_square_subsequent_mask(4))
    _parity(dec_m, dec_t, tgt, src, kwargs={"tgt_mask": tmask, "memory_key_padding_mask": kpm},
            ref_factory=lambda: torch.nn.TransformerDecoderLayer(8, 2, **kw))


def test_transformer_stacks_parity():
    torch = _torch()
    kw = dict(dim_feedforward=16, dropout=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc_t = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, **kw), 2,
                                            norm=torch.nn.LayerNorm(8))
    enc_m = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, **kw), 2, norm=nn.LayerNorm(8))
    src = _randn(5, 3, 8)
    mask = _np(nn.Transformer.generate_square_subsequent_mask(5))
    _parity(enc_m, enc_t, src, kwargs={"mask": mask})
    dec_t = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(8, 2, **kw), 2)
    dec_m = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, **kw), 2)
    _parity(dec_m, dec_t, _randn(4, 3, 8, seed=2), src, kwargs={"tgt_mask": mask[:4, :4]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full_t = torch.nn.Transformer(8, 2, 1, 2, 16, dropout=0.0, batch_first=True)
    full_m = nn.Transformer(8, 2, 1, 2, 16, dropout=0.0, batch_first=True)
    tgt = _randn(3, 4, 8, seed=3)
    _parity(full_m, full_t, _randn(3, 5, 8), tgt, kwargs={"tgt_mask": mask[:4, :4]},
            ref_factory=lambda: torch.nn.Transformer(8, 2, 1, 2, 16, dropout=0.0,
                                                     batch_first=True))
    with pytest.raises(RuntimeError, match="batch number"):
        full_m(fw.randn(2, 5, 8), fw.randn(3, 4, 8))


# =========================================================================== recurrent
@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("layout", ["seq_first", "batch_first_bi", "packed_bi", "unbatched"])
def test_rnn_parity(cls, layout):
    torch = _torch()
    kw = {"num_layers": 2}
    if layout != "seq_first":
        kw["bidirectional"] = True
    if layout in ("batch_first_bi", "packed_bi"):
        kw["batch_first"] = True
    if cls == "RNN" and layout == "packed_bi":
        kw["nonlinearity"] = "relu"
    if cls == "LSTM" and layout == "batch_first_bi":
        kw["proj_size"] = 3
    mine, ref = getattr(nn, cls)(4, 5, **kw), getattr(torch.nn, cls)(4, 5, **kw)
    D = 2 if kw.get("bidirectional") else 1
    hsize = kw.get("proj_size", 5)
    B, T = 3, 6
    rng = np.random.default_rng(0)
    h0 = rng.standard_normal((2 * D, B, hsize)).astype(np.float32)
    c0 = rng.standard_normal((2 * D, B, 5)).astype(np.float32)
    if layout == "unbatched":
        h0, c0 = h0[:, 0], c0[:, 0]
    if layout == "packed_bi":
        x = _randn(B, T, 4)
        lengths = [4, 6, 2]
        xm, xt = fw.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        pm = pack_padded_sequence(xm, lengths, batch_first=True, enforce_sorted=False)
        pt = torch.nn.utils.rnn.pack_padded_sequence(xt, lengths, batch_first=True,
                                                     enforce_sorted=False)
        hm = (fw.tensor(h0), fw.tensor(c0)) if cls == "LSTM" else fw.tensor(h0)
        ht = (torch.tensor(h0), torch.tensor(c0)) if cls == "LSTM" else torch.tensor(h0)
        _sync(mine, ref)
        om, sm = mine(pm, hm)
        ot, st = ref(pt, ht)
        assert isinstance(om, PackedSequence)
        np.testing.assert_allclose(_np(om.data), _np(ot.data), rtol=1e-4, atol=1e-5)
        um, _ = pad_packed_sequence(om, batch_first=True)
        ut, _ = torch.nn.utils.rnn.pad_packed_sequence(ot, batch_first=True)
        sm = sm if isinstance(sm, tuple) else (sm,)
        st = st if isinstance(st, tuple) else (st,)
        for a, b in zip(sm, st):
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-4, atol=1e-5)
        g = _randn(*ut.shape, seed=9)
        lm = (um * fw.tensor(g)).sum() + sum((s ** 2).sum() for s in sm)
        lt = (ut * torch.tensor(g)).sum() + sum((s ** 2).sum() for s in st)
        lm.backward()
        lt.backward()
        np.testing.assert_allclose(_np(xm.grad), _np(xt.grad), rtol=1e-4, atol=1e-5)
        pr = dict(ref.named_parameters())
        for name, p in mine.named_parameters():
            np.testing.assert_allclose(_np(p.grad), _np(pr[name].grad), rtol=1e-4, atol=1e-5,
                                       err_msg=name)
        return
    x = _randn(*((B, T, 4) if kw.get("batch_first") else (T, B, 4)))
    if layout == "unbatched":
        x = x[:, 0]
    if cls == "LSTM":
        def run(mod, lib, xx):
            return mod(xx, (lib.tensor(h0), lib.tensor(c0)))
        _sync(mine, ref)
        xm, xt = fw.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        om, (hm, cm) = run(mine, fw, xm)
        ot, (ht, ct) = run(ref, torch, xt)
        for a, b in ((om, ot), (hm, ht), (cm, ct)):
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-4, atol=1e-5)
        ((om ** 2).sum() + (hm ** 3).sum() + (cm * cm).sum()).backward()
        ((ot ** 2).sum() + (ht ** 3).sum() + (ct * ct).sum()).backward()
        np.testing.assert_allclose(_np(xm.grad), _np(xt.grad), rtol=1e-4, atol=1e-5)
        pr = dict(ref.named_parameters())
        for name, p in mine.named_parameters():
            np.testing.assert_allclose(_np(p.grad), _np(pr[name].grad), rtol=1e-4, atol=1e-5,
                                       err_msg=name)
        _round_trip(mine, lambda: getattr(torch.nn, cls)(4, 5, **kw))
    else:
        _parity(mine, ref, x, h0, ref_factory=lambda: getattr(torch.nn, cls)(4, 5, **kw))


def test_rnn_default_state_dropout_and_errors():
    torch = _torch()
    mine, ref = nn.GRU(3, 4, 2, dropout=0.5), torch.nn.GRU(3, 4, 2, dropout=0.5)
    _parity(mine, ref, _randn(5, 2, 3), train=False)  # no dropout in eval
    out, h = mine.train()(fw.randn(5, 2, 3))
    assert out.shape == (5, 2, 4) and h.shape == (2, 2, 4)
    with pytest.raises(RuntimeError, match="input.size"):
        mine(fw.randn(5, 2, 2))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        mine(fw.randn(5, 2, 3), fw.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="dtype"):
        mine(fw.randn(5, 2, 3, dtype=fw.float64))
    with pytest.raises(ValueError, match="proj_size"):
        nn.GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.2)
    lstm = nn.LSTM(3, 4, 2, bidirectional=True)
    assert [len(w) for w in lstm.all_weights] == [4, 4, 4, 4]
    assert list(nn.LSTM(3, 4, proj_size=2).state_dict()) == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"]
    assert list(nn.RNN(3, 4, bias=False).state_dict()) == ["weight_ih_l0", "weight_hh_l0"]


@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("batched", [True, False])
def test_rnn_cell_parity(cls, batched):
    torch = _torch()
    mine, ref = getattr(nn, cls)(4, 3), getattr(torch.nn, cls)(4, 3)
    x = _randn(5, 4) if batched else _randn(4)
    h = _randn(5, 3, seed=1) if batched else _randn(3, seed=1)
    if cls == "LSTMCell":
        c = _randn(*h.shape, seed=2)
        _sync(mine, ref)
        xm, xt = fw.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        hm, cm = mine(xm, (fw.tensor(h), fw.tensor(c)))
        ht, ct = ref(xt, (torch.tensor(h), torch.tensor(c)))
        np.testing.assert_allclose(_np(hm), _np(ht), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(_np(cm), _np(ct), rtol=1e-4, atol=1e-5)
        (hm * cm).sum().backward()
        (ht * ct).sum().backward()
        np.testing.assert_allclose(_np(xm.grad), _np(xt.grad), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(_np(mine.weight_hh.grad), _np(ref.weight_hh.grad), rtol=1e-4,
                                   atol=1e-5)
        hm, cm = mine(xm)
        ht, ct = ref(xt)
        np.testing.assert_allclose(_np(hm), _np(ht), rtol=1e-4, atol=1e-5)
    else:
        _parity(mine, ref, x, h, ref_factory=lambda: getattr(torch.nn, cls)(4, 3))
        _parity(mine, ref, x)  # default zero state
    kw = {"nonlinearity": "relu"} if cls == "RNNCell" else {}
    _parity(getattr(nn, cls)(4, 3, bias=False, **kw) if cls != "LSTMCell" else nn.GRUCell(4, 3),
            getattr(torch.nn, cls)(4, 3, bias=False, **kw) if cls != "LSTMCell"
            else torch.nn.GRUCell(4, 3), _randn(2, 4))


def test_rnn_gradcheck_float64():
    lstm = nn.LSTM(2, 3, bidirectional=True).double()
    x = fw.randn(4, 2, 2, dtype=fw.float64, requires_grad=True)
    params = list(lstm.parameters())

    def f(x, *ps):
        return lstm(x)[0]
    assert gradcheck(f, (x, *params[:2]))
    gru = nn.GRU(2, 2).double()
    packed_x = fw.randn(3, 2, 2, dtype=fw.float64, requires_grad=True)

    def g(x):
        return gru(pack_padded_sequence(x, [3, 1]))[0].data
    assert gradcheck(g, (packed_x,))


# =========================================================================== devices
def _device_cases():
    return [
        ("conv_bn", lambda: nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4),
                                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                          nn.Linear(16, 3)), [(3, 2, 4, 4)]),
        ("lstm", lambda: nn.LSTM(3, 4, 2, bidirectional=True, batch_first=True), [(2, 5, 3)]),
        ("gru_cell", lambda: nn.GRUCell(3, 4), [(2, 3)]),
        ("mha", lambda: nn.MultiheadAttention(8, 2, batch_first=True), [(2, 3, 8)] * 3),
        ("encoder", lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), [(4, 2, 8)]),
        ("layernorm_gelu", lambda: nn.Sequential(nn.LayerNorm(6), nn.GELU(), nn.Dropout(0.0)),
         [(3, 6)]),
    ]


@pytest.mark.parametrize("case", _device_cases(), ids=lambda c: c[0])
def test_modules_on_device_match_cpu(case, device):
    """The same module moved to `device` gives the CPU results (outputs, input and parameter
    gradients, buffers)."""
    _, make, specs = case
    ref = make()
    mod = copy.deepcopy(ref).to(device)
    params = list(mod.parameters())
    assert all(p.device.type == device for p in params)
    xs = _inputs(specs)
    xr = [fw.tensor(a, requires_grad=True) for a in xs]
    xd = [fw.tensor(a, device=device, requires_grad=True) for a in xs]
    outs_r, outs_d = _flat(ref(*xr)), _flat(mod(*xd))
    lr = sum((o.float() ** 2).sum() for o in outs_r if o is not None and o.requires_grad)
    ld = sum((o.float() ** 2).sum() for o in outs_d if o is not None and o.requires_grad)
    for a, b in zip(outs_r, outs_d):
        if a is not None:
            assert b.device.type == device
            np.testing.assert_allclose(_np(b), _np(a), rtol=1e-4, atol=1e-5)
    lr.backward()
    ld.backward()
    for a, b in zip(xr, xd):
        np.testing.assert_allclose(_np(b.grad), _np(a.grad), rtol=1e-4, atol=1e-5)
    for (name, a), b in zip(ref.named_parameters(), params):
        np.testing.assert_allclose(_np(b.grad), _np(a.grad), rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    for (name, a), (_, b) in zip(ref.named_buffers(), mod.named_buffers()):
        np.testing.assert_allclose(_np(b), _np(a), rtol=1e-5, atol=1e-6, err_msg=name)
    back = mod.to("cpu")
    assert all(p.device.type == "cpu" for p in back.parameters())


def test_packed_rnn_on_device_matches_cpu(device):
    ref = nn.LSTM(3, 4, 2, bidirectional=True, batch_first=True)
    mod = copy.deepcopy(ref).to(device)
    x = _randn(3, 5, 3)
    lengths = [2, 5, 3]
    outs = []
    for m, dev in ((ref, "cpu"), (mod, device)):
        xt = fw.tensor(x, device=dev, requires_grad=True)
        packed = pack_padded_sequence(xt, lengths, batch_first=True, enforce_sorted=False)
        out, (h, c) = m(packed)
        padded, lens = pad_packed_sequence(out, batch_first=True)
        ((padded ** 2).sum() + (h * c).sum()).backward()
        outs.append((padded, h, c, xt.grad, m.weight_hh_l1_reverse.grad))
        np.testing.assert_array_equal(_np(lens), lengths)
    for a, b in zip(*outs):
        np.testing.assert_allclose(_np(b), _np(a), rtol=1e-4, atol=1e-5)


def test_init_and_factory_kwargs_on_device(device):
    lin = nn.Linear(30, 20, device=device, dtype=fw.float64)
    assert lin.weight.device.type == device and lin.weight.dtype == fw.float64
    assert np.abs(_np(lin.weight)).max() <= 1 / math.sqrt(30)
    bn = nn.BatchNorm1d(4, device=device)
    assert bn.running_mean.device.type == device
    assert nn.LSTM(3, 4, device=device).weight_hh_l0.device.type == device
    w = fw.empty(200, 300, device=device)
    nn.init.trunc_normal_(w, std=0.5, a=-0.6, b=0.6)
    assert np.abs(_np(w)).max() <= 0.6
    nn.init.orthogonal_(w)
    np.testing.assert_allclose(_np(w) @ _np(w).T, np.eye(200), atol=1e-4)
    nn.init.xavier_normal_(w)
    assert abs(_np(w).std() - math.sqrt(2 / 500)) < 0.05 * math.sqrt(2 / 500)
    d = fw.empty(4, 4, 3, device=device)
    nn.init.dirac_(d)
    assert _np(d)[:, :, 1].trace() == 4
    nn.init.sparse_(w, 0.5)
    assert (_np(w) == 0).mean() >= 0.5
    p = nn.Parameter(fw.zeros(3, device=device))
    p.grad = fw.tensor([3.0, 4.0, 0.0], device=device)
    assert float(nn.utils.clip_grad_norm_([p], 1.0)) == pytest.approx(5.0)
    np.testing.assert_allclose(_np(p.grad), [0.6, 0.8, 0.0], rtol=1e-5)
    nn.utils.clip_grad_value_([p], 0.7)
    np.testing.assert_allclose(_np(p.grad), [0.6, 0.7, 0.0], rtol=1e-5)


def test_double_backward_through_modules():
    """A gradient penalty (create_graph=True) through Linear/Tanh/LSTM matches torch."""
    torch = _torch()
    mm = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
    mt = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))
    _sync(mm, mt)
    lm, lt = nn.LSTM(3, 2), torch.nn.LSTM(3, 2)
    _sync(lm, lt)
    x = _randn(4, 2, 3)
    res = []
    for lib, seq, rnn in ((fw, mm, lm), (torch, mt, lt)):
        xi = lib.tensor(x, requires_grad=True)
        out = seq(xi).sum() + (rnn(xi)[0] ** 2).sum()
        (g,) = lib.autograd.grad(out, xi, create_graph=True)
        ((g ** 2).sum()).backward()
        res.append((g, seq[0].weight.grad, rnn.weight_hh_l0.grad))
    for a, b in zip(*res):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-4, atol=1e-5)


def test_fused_recurrent_ops_reject_mismatched_inputs():
    from framework.ops.rnn import lstm_cell, lstm_layer
    with pytest.raises(RuntimeError, match=r"gates of shape \(2, 8\).*\(2, 2\).*\(2, 3\)"):
        lstm_cell(fw.zeros(2, 8), fw.zeros(2, 3))
    h = fw.zeros(3, 2)
    with pytest.raises(RuntimeError, match="must not increase"):
        lstm_layer(fw.zeros(6, 8), h, h, fw.zeros(8, 2), (3, 1, 2))
    with pytest.raises(RuntimeError, match=r"6 rows x 8.*\(3, 2\).*do not fit"):
        lstm_layer(fw.zeros(6, 8), h, h, fw.zeros(8, 2), (3, 2))
    from framework.ops.rnn import gru_layer
    with pytest.raises(RuntimeError, match=r"b_hh of shape \(5,\) does not fit W_hh \(6, 2\)"):
        gru_layer(fw.zeros(6, 6), h, fw.zeros(6, 2), fw.zeros(5), (3, 3))
    from framework.ops.rnn import rnn_layer
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'"):
        rnn_layer(fw.zeros(6, 2), h, fw.zeros(2, 2), (3, 3), nonlinearity="gelu")
