"""Parametrizations (nn.utils.parametrize), weight/spectral norm in both their parametrization
and legacy hook forms, and the lazy modules, against torch: the same weights (and the same
power-iteration vectors) give the same outputs, gradients and buffer updates over several
optimizer steps; state dicts have torch's keys and load both ways; removal leaves the right
plain parameter; lazy modules infer their shapes and become their regular class."""
import copy
import pickle
import warnings

import numpy as np
import pytest
from conftest import torch_or_skip

import framework as fw
import framework.nn as nn
from framework.autograd import gradcheck
from framework.nn.utils import parametrizations as P
from framework.nn.utils import parametrize


def _np(t):
    if isinstance(t, fw.Tensor):
        return np.array(t.detach().numpy())
    return t.detach().cpu().numpy()


def _sd_np(module):
    return {k: _np(v).copy() for k, v in module.state_dict().items()}


def _load_from_torch(mine, ref):
    sd = _sd_np(ref)
    assert list(mine.state_dict().keys()) == list(sd.keys())
    mine.load_state_dict(sd)


def _torch_from_mine(ref, mine):
    torch = torch_or_skip()
    ref.load_state_dict({k: torch.from_numpy(_np(v).copy()) for k, v in mine.state_dict().items()})


def _assert_same_state(mine, ref, rtol=1e-9, atol=1e-12):
    sm, sr = _sd_np(mine), _sd_np(ref)
    assert list(sm.keys()) == list(sr.keys())
    for k in sm:
        np.testing.assert_allclose(sm[k], sr[k], rtol=rtol, atol=atol, err_msg=k)


def _train_parity(mine, ref, shape, steps=3, rtol=1e-9, atol=1e-12):
    """SGD with momentum on both for `steps` steps from the same state: outputs, input and
    parameter gradients, and then parameters and buffers agree at every step."""
    torch = torch_or_skip()
    assert [n for n, _ in mine.named_parameters()] == [n for n, _ in ref.named_parameters()]
    opt_m = fw.optim.SGD(mine.parameters(), lr=0.05, momentum=0.9)
    opt_r = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        x = rng.standard_normal(shape)
        xm, xr = fw.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ym, yr = mine(xm), ref(xr)
        np.testing.assert_allclose(_np(ym), _np(yr), rtol=rtol, atol=atol)
        g = rng.standard_normal(tuple(yr.shape))
        (ym * fw.tensor(g)).sum().backward()
        (yr * torch.tensor(g)).sum().backward()
        np.testing.assert_allclose(_np(xm.grad), _np(xr.grad), rtol=rtol, atol=atol)
        pr = dict(ref.named_parameters())
        for name, p in mine.named_parameters():
            np.testing.assert_allclose(_np(p.grad), _np(pr[name].grad), rtol=rtol, atol=atol,
                                       err_msg=name)
        opt_m.step()
        opt_r.step()
        opt_m.zero_grad()
        opt_r.zero_grad()
        _assert_same_state(mine, ref, rtol, atol)


def _eval_parity(mine, ref, shape):
    torch = torch_or_skip()
    mine.eval()
    ref.eval()
    before = _sd_np(mine)
    x = np.random.default_rng(1).standard_normal(shape)
    for _ in range(2):
        np.testing.assert_allclose(_np(mine(fw.tensor(x))), _np(ref(torch.tensor(x))),
                                   rtol=1e-9, atol=1e-12)
    after = _sd_np(mine)
    for k in before:  # no power iteration in eval mode
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)


def _layers():
    torch = torch_or_skip()
    return [
        (lambda: nn.Linear(5, 4).double(), lambda: torch.nn.Linear(5, 4).double(), (3, 5)),
        (lambda: nn.Conv2d(3, 4, 3, padding=1).double(),
         lambda: torch.nn.Conv2d(3, 4, 3, padding=1).double(), (2, 3, 5, 5)),
        (lambda: nn.ConvTranspose2d(3, 2, 3).double(),
         lambda: torch.nn.ConvTranspose2d(3, 2, 3).double(), (2, 3, 4, 4)),
    ]


# ---------------------------------------------------------------- parametrizations form
@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_parametrization_matches_torch(dim):
    torch = torch_or_skip()
    for make, make_ref, shape in _layers():
        mine = P.weight_norm(make(), dim=dim)
        ref = torch.nn.utils.parametrizations.weight_norm(make_ref(), dim=dim)
        assert type(mine).__name__ == type(ref).__name__
        keys = list(mine.state_dict().keys())
        assert keys == ["bias", "parametrizations.weight.original0",
                        "parametrizations.weight.original1"]
        # right_inverse gives the same g and v from the same weight
        w = _np(ref.parametrizations.weight.original1)
        mine.parametrizations.weight.original1.data = fw.tensor(w.copy())
        mine.weight = fw.tensor(w)
        np.testing.assert_allclose(_np(mine.parametrizations.weight.original0),
                                   _np(ref.parametrizations.weight.original0), rtol=1e-12)
        _load_from_torch(mine, ref)
        _train_parity(mine, ref, shape)


def test_spectral_norm_parametrization_matches_torch():
    torch = torch_or_skip()
    for make, make_ref, shape in _layers():
        mine = P.spectral_norm(make())
        ref = torch.nn.utils.parametrizations.spectral_norm(make_ref())
        assert list(mine.state_dict().keys()) == list(ref.state_dict().keys()) == [
            "bias", "parametrizations.weight.original", "parametrizations.weight.0._u",
            "parametrizations.weight.0._v"]
        assert mine.parametrizations.weight[0].dim == ref.parametrizations.weight[0].dim
        _load_from_torch(mine, ref)  # same weights and the same u, v
        _train_parity(mine, ref, shape, steps=4)
        _eval_parity(mine, ref, shape)


def test_spectral_norm_init_power_iterations_estimate_sigma():
    m = P.spectral_norm(nn.Linear(6, 4).double())
    w = _np(m.parametrizations.weight.original)
    u = _np(m.parametrizations.weight[0]._u)
    v = _np(m.parametrizations.weight[0]._v)
    np.testing.assert_allclose(np.linalg.norm(u), 1.0)
    np.testing.assert_allclose(np.linalg.norm(v), 1.0)
    sigma = np.linalg.svd(w, compute_uv=False)[0]
    np.testing.assert_allclose(u @ w @ v, sigma, rtol=1e-3)
    m.eval()
    np.testing.assert_allclose(_np(m.weight), w / (u @ w @ v))


@pytest.mark.parametrize("kind", ["weight_norm", "spectral_norm"])
def test_parametrized_state_dict_round_trip(kind):
    torch = torch_or_skip()
    mine = getattr(P, kind)(nn.Conv2d(3, 4, 3).double())
    ref = getattr(torch.nn.utils.parametrizations, kind)(torch.nn.Conv2d(3, 4, 3).double())
    _torch_from_mine(ref, mine)
    _assert_same_state(mine, ref, 0, 0)
    back = getattr(P, kind)(nn.Conv2d(3, 4, 3).double())
    _load_from_torch(back, ref)
    _assert_same_state(back, mine, 0, 0)


def test_weight_norm_loads_legacy_keys():
    torch = torch_or_skip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        legacy = torch.nn.utils.weight_norm(torch.nn.Linear(5, 4).double())
    assert list(legacy.state_dict()) == ["bias", "weight_g", "weight_v"]
    mine = P.weight_norm(nn.Linear(5, 4).double())
    mine.load_state_dict(_sd_np(legacy))
    x = np.random.default_rng(0).standard_normal((3, 5))
    np.testing.assert_allclose(_np(mine(fw.tensor(x))), _np(legacy(torch.tensor(x))),
                               rtol=1e-12)


def test_remove_parametrizations_leaves_plain_parameter():
    m = P.spectral_norm(nn.Linear(5, 4).double())
    original = m.parametrizations.weight.original
    m.eval()
    expected = _np(m.weight)
    parametrize.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and "parametrizations" not in m._modules
    assert m.weight is original and isinstance(m.weight, nn.Parameter)  # optimizers stay valid
    np.testing.assert_allclose(_np(m.weight), expected)
    assert list(m.state_dict()) == ["bias", "weight"]

    m = P.spectral_norm(nn.Linear(5, 4).double())
    raw = _np(m.parametrizations.weight.original).copy()
    parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    np.testing.assert_array_equal(_np(m.weight), raw)

    m = P.weight_norm(nn.Linear(5, 4).double())
    expected = _np(m.weight)
    with pytest.raises(ValueError, match="sequence of tensors"):
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    parametrize.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and isinstance(m.weight, nn.Parameter)
    assert m.weight.requires_grad and m.weight.grad_fn is None
    np.testing.assert_allclose(_np(m.weight), expected)
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight"]
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        parametrize.remove_parametrizations(m, "weight")


def test_weight_norm_and_spectral_norm_gradcheck():
    rng = np.random.default_rng(0)
    for dim in (0, 1, 2, None):
        v = fw.tensor(rng.standard_normal((3, 4, 2)), requires_grad=True)
        g = (P._norm_except_dim(v, -1 if dim is None else dim).detach() + 0.5)
        g.requires_grad_(True)
        wn = P._WeightNorm(dim)
        assert gradcheck(lambda g, v: wn(g, v), (g, v))
    for dim in (0, 1):
        w = fw.tensor(rng.standard_normal((4, 3, 2)), requires_grad=True)
        sn = P._SpectralNorm(w.detach(), dim=dim).eval()
        assert gradcheck(sn, (w,))
    b = fw.tensor(rng.standard_normal(5), requires_grad=True)
    assert gradcheck(P._SpectralNorm(b.detach()), (b,))


def test_spectral_norm_errors():
    with pytest.raises(ValueError, match="has no parameter or buffer with name 'kernel'"):
        P.spectral_norm(nn.Linear(2, 2), name="kernel")
    with pytest.raises(ValueError, match="n_power_iterations to be positive"):
        P.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        P.spectral_norm(nn.Linear(2, 2), dim=2)


# ---------------------------------------------------------------- parametrize machinery
class _Symmetric(nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(-1, -2)

    def right_inverse(self, a):
        return a.triu()


class _Double(nn.Module):
    def forward(self, x):
        return x * 2


def test_register_parametrization_and_assignment():
    m = nn.Linear(3, 3).double()
    w0 = _np(m.weight).copy()
    parametrize.register_parametrization(m, "weight", _Symmetric())
    assert parametrize.is_parametrized(m) and parametrize.is_parametrized(m, "weight")
    assert not parametrize.is_parametrized(m, "bias")
    assert type(m).__name__ == "ParametrizedLinear"
    assert parametrize.type_before_parametrizations(m) is nn.Linear
    assert type(nn.Linear(3, 3)) is nn.Linear  # other instances untouched
    w = _np(m.weight)
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(np.triu(w), np.triu(w0))  # right_inverse kept the upper part
    a = np.random.default_rng(0).standard_normal((3, 3))
    a = a + a.T
    m.weight = fw.tensor(a)  # through right_inverse
    np.testing.assert_allclose(_np(m.weight), a)
    # a second parametrization chains on the first; gradients reach the original
    parametrize.register_parametrization(m, "weight", _Double())
    assert len(m.parametrizations.weight) == 2
    np.testing.assert_allclose(_np(m.weight), 2 * a)
    m(fw.ones(2, 3, dtype=fw.float64)).sum().backward()
    assert m.parametrizations.weight.original.grad is not None
    with pytest.raises(RuntimeError, match="_Double does not implement right_inverse"):
        m.weight = fw.tensor(a)


def test_register_parametrization_errors():
    m = nn.Linear(3, 3)
    with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a "
                                         "parametrized element with name 'kernel'"):
        parametrize.register_parametrization(m, "kernel", _Double())

    class Flat(nn.Module):
        def forward(self, x):
            return x.reshape(-1)
    with pytest.raises(ValueError, match=r"may not change the shape"):
        parametrize.register_parametrization(m, "weight", Flat())
    assert type(m) is nn.Linear and isinstance(m.weight, nn.Parameter)
    parametrize.register_parametrization(m, "weight", Flat(), unsafe=True)
    assert m.weight.shape == (9,)


def test_parametrized_buffer_and_train_mode():
    bn = nn.BatchNorm1d(3)
    bn.eval()
    parametrize.register_parametrization(bn, "running_var", _Double())
    assert "original" in bn.parametrizations.running_var._buffers  # a buffer stays a buffer
    assert list(bn.state_dict())[-1] == "parametrizations.running_var.original"
    assert not bn.parametrizations.running_var[0].training  # takes the module's mode
    np.testing.assert_allclose(_np(bn.running_var), 2 * np.ones(3))


def test_cached_parametrization():
    m = P.weight_norm(nn.Linear(3, 2))
    assert m.weight is not m.weight
    with parametrize.cached():
        w = m.weight
        assert m.weight is w
        with parametrize.cached():
            assert m.weight is w
        assert m.weight is w
    assert m.weight is not w


def test_parametrized_copy_and_pickle():
    m = P.weight_norm(nn.Linear(3, 2).double())
    c = copy.deepcopy(m)
    assert type(c) is type(m)
    np.testing.assert_array_equal(_np(c.weight), _np(m.weight))
    with fw.no_grad():
        c.parametrizations.weight.original1.mul_(2)
    assert not np.allclose(_np(c.parametrizations.weight.original1),
                           _np(m.parametrizations.weight.original1))
    with pytest.raises(RuntimeError, match="only supported through state_dict"):
        pickle.dumps(m)


# ---------------------------------------------------------------- legacy hook form
@pytest.mark.parametrize("dim", [0, None])
def test_legacy_weight_norm_matches_torch(dim):
    torch = torch_or_skip()
    for make, make_ref, shape in _layers()[:2]:
        with pytest.warns(FutureWarning):
            mine = nn.utils.weight_norm(make(), dim=dim)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            ref = torch.nn.utils.weight_norm(make_ref(), dim=dim)
        assert list(mine.state_dict()) == list(ref.state_dict()) == ["bias", "weight_g",
                                                                     "weight_v"]
        assert mine.weight_g.shape == ref.weight_g.shape
        _load_from_torch(mine, ref)
        _train_parity(mine, ref, shape)
        with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                nn.utils.weight_norm(mine, dim=dim)
        nn.utils.remove_weight_norm(mine)
        torch.nn.utils.remove_weight_norm(ref)
        assert isinstance(mine.weight, nn.Parameter) and not mine._forward_pre_hooks
        assert "_hooks_on" not in mine.__dict__  # back on the hook-free call path
        _assert_same_state(mine, ref)
        with pytest.raises(ValueError, match="weight_norm of 'weight' not found"):
            nn.utils.remove_weight_norm(mine)


def test_legacy_spectral_norm_matches_torch():
    torch = torch_or_skip()
    for make, make_ref, shape in _layers():
        mine = nn.utils.spectral_norm(make())
        ref = torch.nn.utils.spectral_norm(make_ref())
        assert list(mine.state_dict()) == list(ref.state_dict()) == ["bias", "weight_orig",
                                                                     "weight_u", "weight_v"]
        _load_from_torch(mine, ref)
        _train_parity(mine, ref, shape, steps=4)
        _eval_parity(mine, ref, shape)
        # state dict both ways
        _torch_from_mine(ref, mine)
        _assert_same_state(mine, ref, 0, 0)
        nn.utils.remove_spectral_norm(mine)
        torch.nn.utils.remove_spectral_norm(ref)
        assert isinstance(mine.weight, nn.Parameter)
        assert not mine._forward_pre_hooks and not mine._state_dict_hooks
        assert not mine._load_state_dict_pre_hooks
        _assert_same_state(mine, ref)


def test_legacy_spectral_norm_loads_version_0_checkpoint():
    torch = torch_or_skip()
    ref = torch.nn.utils.spectral_norm(torch.nn.Linear(5, 4).double())
    ref.eval()
    x = np.random.default_rng(0).standard_normal((3, 5))
    expected = _np(ref(torch.tensor(x)))
    sd = _sd_np(ref)
    sd["weight"] = _np(ref.weight)  # a pre-1.0 checkpoint: `weight` saved, `weight_v` not
    del sd["weight_v"]
    mine = nn.utils.spectral_norm(nn.Linear(5, 4).double())
    mine.load_state_dict(sd)
    mine.eval()
    np.testing.assert_allclose(_np(mine(fw.tensor(x))), expected, rtol=1e-6)


# ---------------------------------------------------------------- lazy modules
_LAZY = [
    ("LazyLinear", (3,), (4, 7)),
    ("LazyConv1d", (4, 3), (2, 5, 9)),
    ("LazyConv2d", (4, 3), (2, 5, 7, 7)),
    ("LazyConv2d", (4, 3), (5, 7, 7)),  # unbatched
    ("LazyConv3d", (4, 2), (2, 5, 4, 4, 4)),
    ("LazyConvTranspose1d", (4, 3), (2, 6, 9)),
    ("LazyConvTranspose2d", (4, 3), (2, 6, 5, 5)),
    ("LazyConvTranspose3d", (4, 2), (2, 6, 3, 3, 3)),
    ("LazyBatchNorm1d", (), (4, 5)),
    ("LazyBatchNorm2d", (), (4, 5, 3, 3)),
    ("LazyBatchNorm3d", (), (4, 5, 2, 2, 2)),
]


@pytest.mark.parametrize("name,args,shape", _LAZY, ids=[f"{n}{len(s)}" for n, _, s in _LAZY])
def test_lazy_module_becomes_regular_class(name, args, shape):
    torch = torch_or_skip()
    mine = getattr(nn, name)(*args)
    ref = getattr(torch.nn, name)(*args)
    assert mine.has_uninitialized_params()
    assert isinstance(mine.weight, nn.UninitializedParameter)
    assert list(mine.state_dict()) == list(ref.state_dict())
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    mine(fw.tensor(x))
    ref(torch.tensor(x))
    regular = name[len("Lazy"):]
    assert type(mine) is getattr(nn, regular) and type(ref).__name__ == regular
    assert all(type(p) is nn.Parameter for p in mine.parameters())
    assert [(k, tuple(v.shape)) for k, v in mine.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in ref.state_dict().items()]
    for attr in ("in_features", "in_channels", "num_features"):
        if hasattr(ref, attr):
            assert getattr(mine, attr) == getattr(ref, attr)
    assert repr(mine) == repr(ref)
    assert not mine._forward_pre_hooks and not mine._load_state_dict_pre_hooks
    # the same state gives the same output
    _load_from_torch(mine, ref)
    np.testing.assert_allclose(_np(mine(fw.tensor(x))), _np(ref(torch.tensor(x))), rtol=1e-5,
                               atol=1e-5)


def test_lazy_default_init():
    lin = nn.LazyLinear(200)
    lin(fw.zeros(2, 100))
    w, b = _np(lin.weight), _np(lin.bias)
    bound = 1 / np.sqrt(100)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound
    conv = nn.LazyConv2d(64, 3)
    conv(fw.zeros(1, 8, 5, 5))
    bound = 1 / np.sqrt(8 * 9)
    assert np.abs(_np(conv.weight)).max() <= bound
    assert abs(_np(conv.weight).std() - bound / np.sqrt(3)) < 0.05 * bound
    bn = nn.LazyBatchNorm2d()
    bn.eval()
    bn(fw.zeros(2, 3, 2, 2))
    np.testing.assert_array_equal(_np(bn.weight), np.ones(3))
    np.testing.assert_array_equal(_np(bn.bias), np.zeros(3))
    np.testing.assert_array_equal(_np(bn.running_mean), np.zeros(3))
    np.testing.assert_array_equal(_np(bn.running_var), np.ones(3))
    assert int(bn.num_batches_tracked) == 0


def test_lazy_model_trains_like_torch():
    torch = torch_or_skip()
    mine = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.ReLU(), nn.Flatten(),
                         nn.LazyLinear(3)).double()
    ref = torch.nn.Sequential(torch.nn.LazyConv2d(4, 3), torch.nn.LazyBatchNorm2d(),
                              torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(3)).double()
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    mine(fw.tensor(x))
    ref(torch.tensor(x))
    assert [type(m).__name__ for m in mine] == ["Conv2d", "BatchNorm2d", "ReLU", "Flatten",
                                                "Linear"]
    _load_from_torch(mine, ref)
    _train_parity(mine, ref, (2, 2, 5, 5), steps=3, rtol=1e-8, atol=1e-10)


def test_lazy_parameters_keep_identity_and_dtype():
    lin = nn.LazyLinear(3).double()
    w = lin.weight
    assert isinstance(w, nn.UninitializedParameter) and w.dtype == fw.float64
    bn = nn.LazyBatchNorm1d().double()
    assert isinstance(bn.running_mean, nn.UninitializedBuffer)
    opt = fw.optim.SGD(lin.parameters(), lr=0.1)  # made before the first call
    x = fw.randn(5, 4, dtype=fw.float64)
    lin(x).pow(2).sum().backward()
    assert lin.weight is w and type(w) is nn.Parameter and w.shape == (3, 4)
    before = _np(w).copy()
    opt.step()
    assert not np.allclose(_np(w), before)
    bn(fw.randn(4, 2, dtype=fw.float64))
    assert bn.running_mean.dtype == fw.float64 and type(bn.running_mean) is fw.Tensor


def test_lazy_load_state_dict_materializes():
    src = nn.Linear(6, 3)
    lin = nn.LazyLinear(3)
    lin.load_state_dict(src.state_dict())
    assert type(lin.weight) is nn.Parameter and lin.weight.shape == (3, 6)
    np.testing.assert_array_equal(_np(lin.weight), _np(src.weight))
    x = fw.randn(2, 6)
    np.testing.assert_allclose(_np(lin(x)), _np(src(x)))  # no re-initialisation
    assert type(lin) is nn.Linear
    # an uninitialized state dict keeps a lazy module lazy
    lazy = nn.LazyLinear(3)
    sd = nn.LazyLinear(3).state_dict()
    assert isinstance(sd["weight"], nn.UninitializedParameter)
    lazy.load_state_dict(sd)
    assert lazy.has_uninitialized_params()


def test_lazy_copy_pickle_and_errors():
    lin = nn.LazyLinear(3)
    for c in (copy.deepcopy(lin), pickle.loads(pickle.dumps(lin))):
        assert isinstance(c.weight, nn.UninitializedParameter)
        assert c(fw.randn(2, 5)).shape == (2, 3) and type(c) is nn.Linear
    assert isinstance(lin.weight, nn.UninitializedParameter)
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input "
                                           r"to LazyConv2d, but got input of size: \[2, 3\]"):
        nn.LazyConv2d(4, 3)(fw.zeros(2, 3))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.LazyConv2d(4, 3, groups=2)(fw.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match="can't have uninitialized parameters"):
        nn.utils.spectral_norm(nn.LazyLinear(3))


def test_forward_pre_hook_may_remove_itself():
    lin = nn.LazyLinear(3)
    calls = []
    lin.register_forward_pre_hook(lambda m, args: calls.append(type(m).__name__))
    lin(fw.randn(2, 4))  # the lazy hook removes itself while the hooks are being run
    lin(fw.randn(2, 4))
    assert calls == ["Linear", "Linear"]
