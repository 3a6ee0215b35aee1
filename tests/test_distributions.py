"""framework.distributions against torch.distributions: log_prob / entropy / moments and their
gradients w.r.t. the parameters, reparameterised draws (same base noise where the draw is a
closed form of it, finite differences and unbiasedness for Gamma/Beta), sample shapes and
statistics, argument and support validation, transforms, kl_divergence, and a REINFORCE step.
"""
from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

import framework as fw
import framework.distributions as D
from conftest import torch_or_skip

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def torch():
    return torch_or_skip()


def _np(t):
    return t.detach().cpu().numpy()


def _fw(arr, device, grad=False, dtype=None):
    t = fw.tensor(np.asarray(arr), dtype=dtype or fw.float64, device=device)
    return t.requires_grad_(True) if grad else t


def _th(torch, arr, grad=False, dtype=None):
    t = torch.tensor(np.asarray(arr), dtype=dtype or torch.float64)
    return t.requires_grad_(True) if grad else t


def _close(a, b, rtol=1e-10, atol=1e-10, what=""):
    a = _np(a) if not isinstance(a, np.ndarray) else a
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def _spd(n, batch=()):
    a = RNG.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


# ---------------------------------------------------------------------------------- parity
# name -> (constructor on a distributions module, parameters, value, has entropy, moments)
_VEC = RNG.uniform(0.2, 0.8, (2, 4))
_ONEHOT = np.eye(4)[RNG.integers(0, 4, (5, 2))]
CASES = {
    "normal": (lambda d, m, loc, scale: d.Normal(loc, scale),
               [RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)], RNG.standard_normal((4, 3)),
               True, ("mean", "mode", "variance", "stddev")),
    "normal-scalar-scale": (lambda d, m, loc: d.Normal(loc, 0.7), [RNG.standard_normal(3)],
                            RNG.standard_normal(3), True, ("mean", "variance")),
    "bernoulli-probs": (lambda d, m, p: d.Bernoulli(probs=p), [RNG.uniform(0.1, 0.9, (2, 3))],
                        RNG.integers(0, 2, (4, 2, 3)).astype(float), True,
                        ("mean", "variance")),
    "bernoulli-logits": (lambda d, m, lg: d.Bernoulli(logits=lg), [RNG.standard_normal(3)],
                         RNG.integers(0, 2, (5, 3)).astype(float), True, ("mean", "variance")),
    "categorical-probs": (lambda d, m, p: d.Categorical(probs=p), [_VEC],
                          RNG.integers(0, 4, (5, 2)), True, ("mean", "variance")),
    "categorical-logits": (lambda d, m, lg: d.Categorical(logits=lg),
                           [RNG.standard_normal((3, 5))], RNG.integers(0, 5, (3,)), True, ()),
    "onehot-probs": (lambda d, m, p: d.OneHotCategorical(probs=p), [_VEC], _ONEHOT, True,
                     ("mean", "mode", "variance")),
    "onehot-logits": (lambda d, m, lg: d.OneHotCategorical(logits=lg),
                      [RNG.standard_normal((2, 4))], _ONEHOT, True, ("mean", "variance")),
    "uniform": (lambda d, m, lo, hi: d.Uniform(lo, hi),
                [RNG.uniform(-2, -1, 3), RNG.uniform(1, 2, 3)], RNG.uniform(-1, 1, (4, 3)),
                True, ("mean", "variance", "stddev")),
    "gamma": (lambda d, m, c, r: d.Gamma(c, r), [RNG.uniform(0.3, 4, 3), RNG.uniform(0.5, 2, 3)],
              RNG.uniform(0.1, 4, (4, 3)), True, ("mean", "mode", "variance")),
    "beta": (lambda d, m, a, b: d.Beta(a, b), [RNG.uniform(0.3, 4, 3), RNG.uniform(0.3, 4, 3)],
             RNG.uniform(0.05, 0.95, (4, 3)), True, ("mean", "variance")),
    "beta-mode": (lambda d, m, a, b: d.Beta(a, b), [np.array([2.0, 0.5, 0.5, 3.0, 0.7]),
                                                     np.array([3.0, 0.7, 0.5, 0.4, 0.2])],
                  RNG.uniform(0.05, 0.95, 5), True, ("mode",)),
    "mvn-cov": (lambda d, m, loc, a: d.MultivariateNormal(
                    loc, covariance_matrix=a @ a.mT + 3 * m.eye(3, dtype=a.dtype)),
                [RNG.standard_normal((2, 3)), RNG.standard_normal((3, 3))],
                RNG.standard_normal((5, 2, 3)), True, ("mean", "variance")),
    "mvn-tril": (lambda d, m, loc, a: d.MultivariateNormal(
                     loc, scale_tril=a.tril(-1) + (a.diagonal(dim1=-2, dim2=-1).exp()
                                                   .diag_embed())),
                 [RNG.standard_normal(3), RNG.standard_normal((2, 3, 3))],
                 RNG.standard_normal((4, 1, 3)), True, ("variance",)),
    "mvn-precision": (lambda d, m, loc, a: d.MultivariateNormal(
                          loc, precision_matrix=a @ a.mT + 3 * m.eye(3, dtype=a.dtype)),
                      [RNG.standard_normal(3), RNG.standard_normal((3, 3))],
                      RNG.standard_normal((4, 3)), True, ("variance",)),
    "independent": (lambda d, m, loc, s: d.Independent(d.Normal(loc, s), 1),
                    [RNG.standard_normal((2, 3)), RNG.uniform(0.5, 2, (2, 3))],
                    RNG.standard_normal((4, 2, 3)), True, ("mean", "variance")),
    "lognormal": (lambda d, m, loc, s: d.TransformedDistribution(d.Normal(loc, s),
                                                                 [d.ExpTransform()]),
                  [RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)], RNG.uniform(0.1, 3, (4, 3)),
                  False, ()),
    "affine-sigmoid": (lambda d, m, loc, s: d.TransformedDistribution(
                           d.Normal(loc, 1.0), [d.AffineTransform(0.5, s), d.SigmoidTransform()]),
                       [RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)],
                       RNG.uniform(0.05, 0.95, (4, 3)), False, ()),
    "tanh-normal": (lambda d, m, loc, s: d.TransformedDistribution(
                        d.Normal(loc, s), d.ComposeTransform([d.TanhTransform(),
                                                              d.AffineTransform(0.0, 2.0)])),
                    [RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)],
                    RNG.uniform(-1.9, 1.9, (4, 3)), False, ()),
    "affine-event": (lambda d, m, loc, s: d.TransformedDistribution(
                         d.Normal(loc, 1.0), [d.AffineTransform(loc, s, event_dim=1)]),
                     [RNG.standard_normal((2, 3)), RNG.uniform(0.5, 2, (2, 3))],
                     RNG.standard_normal((4, 2, 3)), False, ()),
}


def _build(torch, name, device):
    make, params, value, _, _ = CASES[name]
    fw_p = [_fw(p, device, grad=True) for p in params]
    th_p = [_th(torch, p, grad=True) for p in params]
    fd, td = make(D, fw, *fw_p), make(torch.distributions, torch, *th_p)
    return fd, td, fw_p, th_p, value


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch(name, device, torch):
    """Shapes, log_prob, entropy and moments equal torch's (float64), and so do the gradients
    of a weighted sum of them w.r.t. every parameter."""
    fd, td, fw_p, th_p, value = _build(torch, name, device)
    _, _, _, has_entropy, moments = CASES[name]
    assert tuple(fd.batch_shape) == tuple(td.batch_shape), "batch_shape"
    assert tuple(fd.event_shape) == tuple(td.event_shape), "event_shape"
    assert fd.has_rsample == td.has_rsample
    dtype = torch.int64 if name.startswith("categorical") else torch.float64
    fv = fw.tensor(np.asarray(value), device=device,
                   dtype=fw.int64 if dtype == torch.int64 else fw.float64)
    tv = torch.tensor(np.asarray(value), dtype=dtype)
    fw_terms, th_terms = [fd.log_prob(fv)], [td.log_prob(tv)]
    if has_entropy:
        fw_terms.append(fd.entropy())
        th_terms.append(td.entropy())
    for m in moments:
        fw_terms.append(getattr(fd, m))
        th_terms.append(getattr(td, m))
    what = ["log_prob"] + (["entropy"] if has_entropy else []) + list(moments)
    for f, t, w in zip(fw_terms, th_terms, what):
        _close(f, t, what=f"{name} {w}")
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # the same weights in any order
    weights = [rng.standard_normal(tuple(t.shape)) for t in th_terms]
    fw_loss = sum(fw.nan_to_num(f * _fw(w, device)).sum()
                  for f, w in zip(fw_terms, weights) if f.requires_grad)
    th_loss = sum((t * _th(torch, w)).nan_to_num().sum()
                  for t, w in zip(th_terms, weights) if t.requires_grad)
    fw_g = fw.autograd.grad(fw_loss, fw_p, allow_unused=True)
    th_g = torch.autograd.grad(th_loss, th_p, allow_unused=True)
    for i, (gf, gt) in enumerate(zip(fw_g, th_g)):
        if gt is None:
            assert gf is None or not np.any(_np(gf)), f"{name}: grad {i}"
            continue
        _close(gf, gt, rtol=1e-7, atol=1e-9, what=f"{name} grad of parameter {i}")


@pytest.mark.parametrize("name", list(CASES))
def test_sample_shapes(name, device, torch):
    fd, td, _, _, _ = _build(torch, name, device)
    for shape in ((), (5,), (2, 3)):
        s = fd.sample(shape)
        assert tuple(s.shape) == tuple(td.sample(shape).shape), f"{name} sample {shape}"
        assert not s.requires_grad
        assert s.device == fd.sample().device
        if fd.has_rsample:
            r = fd.rsample(shape)
            assert tuple(r.shape) == tuple(s.shape) and r.requires_grad
    s = fd.sample((4,))
    # every draw lies in the support (the log density is finite there)
    assert np.all(np.isfinite(_np(fd.log_prob(s)))), name


def test_float32_matches_torch(device, torch):
    loc, a = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 3))
    cov = a @ a.T + 3 * np.eye(3)
    value = RNG.standard_normal((4, 2, 3))
    fd = D.MultivariateNormal(_fw(loc, device, dtype=fw.float32),
                              _fw(cov, device, dtype=fw.float32))
    td = torch.distributions.MultivariateNormal(_th(torch, loc, dtype=torch.float32),
                                                _th(torch, cov, dtype=torch.float32))
    out = fd.log_prob(_fw(value, device, dtype=fw.float32))
    assert out.dtype == fw.float32
    _close(out, td.log_prob(_th(torch, value, dtype=torch.float32)), rtol=1e-5, atol=1e-5)
    logits = RNG.standard_normal((3, 6))
    fc = D.Categorical(logits=_fw(logits, device, dtype=fw.float32))
    tc = torch.distributions.Categorical(logits=_th(torch, logits, dtype=torch.float32))
    assert fc.entropy().dtype == fw.float32
    _close(fc.entropy(), tc.entropy(), rtol=1e-5, atol=1e-6)
    assert fc.sample((2,)).dtype == fw.int64


def test_cdf_icdf_and_enumerate_support(device, torch):
    loc, s = RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)
    x = RNG.standard_normal((4, 3))
    q = RNG.uniform(0.05, 0.95, (4, 3))
    pairs = [(D.Normal(_fw(loc, device), _fw(s, device)),
              torch.distributions.Normal(_th(torch, loc), _th(torch, s))),
             (D.Uniform(_fw(loc - 3, device), _fw(loc + 3, device)),
              torch.distributions.Uniform(_th(torch, loc - 3), _th(torch, loc + 3))),
             (D.TransformedDistribution(D.Normal(_fw(loc, device), _fw(s, device)),
                                        D.AffineTransform(1.0, -2.0)),
              torch.distributions.TransformedDistribution(
                  torch.distributions.Normal(_th(torch, loc), _th(torch, s)),
                  torch.distributions.AffineTransform(1.0, -2.0)))]
    for fd, td in pairs:
        _close(fd.cdf(_fw(x, device)), td.cdf(_th(torch, x)), what=f"{fd} cdf")
        _close(fd.icdf(_fw(q, device)), td.icdf(_th(torch, q)), what=f"{fd} icdf")
    p = RNG.uniform(0.1, 0.9, (2, 3))
    for fd, td in [(D.Categorical(probs=_fw(p, device)),
                    torch.distributions.Categorical(probs=_th(torch, p))),
                   (D.Bernoulli(probs=_fw(p, device)),
                    torch.distributions.Bernoulli(probs=_th(torch, p))),
                   (D.OneHotCategorical(probs=_fw(p, device)),
                    torch.distributions.OneHotCategorical(probs=_th(torch, p)))]:
        for expand in (True, False):
            f, t = fd.enumerate_support(expand), td.enumerate_support(expand)
            assert f.dtype.name == str(t.dtype).split(".")[-1]
            _close(f.to(dtype=fw.float64), t.double(), what=f"{fd} enumerate_support")


def test_expand_matches_torch(device, torch):
    loc, s = RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)
    cov = _spd(3)
    value = RNG.standard_normal((4, 3))
    cases = [
        (lambda d, m, x: d.Normal(x, m.tensor(s)), loc, (2, 3)),
        (lambda d, m, x: d.Categorical(logits=x), loc, (4,)),
        (lambda d, m, x: d.MultivariateNormal(x, m.tensor(cov)), loc, (4,)),
        (lambda d, m, x: d.Independent(d.Normal(x, 1.0), 1), loc, (4,)),
        (lambda d, m, x: d.Gamma(x.exp(), 1.0), loc, (2, 3)),
    ]
    for make, param, shape in cases:
        fd = make(D, fw, _fw(param, device)).expand(shape)
        td = make(torch.distributions, torch, _th(torch, param)).expand(shape)
        assert tuple(fd.batch_shape) == tuple(td.batch_shape) == shape
        assert tuple(fd.event_shape) == tuple(td.event_shape)
        v = value if len(fd.event_shape) else np.abs(RNG.standard_normal((4,) + shape)) + 0.1
        if isinstance(fd, D.Categorical):
            v = RNG.integers(0, 3, (4,))
            fv, tv = fw.tensor(v, device=device), torch.tensor(v)
        else:
            fv, tv = _fw(v, device), _th(torch, v)
        _close(fd.log_prob(fv), td.log_prob(tv), what=f"{fd} expanded log_prob")
        assert tuple(fd.sample((2,)).shape) == (2,) + shape + tuple(fd.event_shape)


# ---------------------------------------------------------------------------------- rsample
def test_normal_rsample_gradients_match_torch_on_the_same_noise(device, torch):
    loc, scale = RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)
    fl, fs = _fw(loc, device, True), _fw(scale, device, True)
    fw.manual_seed(5)
    x = D.Normal(fl, fs).rsample((4,))
    eps = (_np(x) - loc) / scale  # the base noise the draw used
    w = RNG.standard_normal((4, 3))
    tl, ts = _th(torch, loc, True), _th(torch, scale, True)
    tx = tl + _th(torch, eps) * ts
    gf = fw.autograd.grad((x * _fw(w, device)).sum(), [fl, fs])
    gt = torch.autograd.grad((tx * _th(torch, w)).sum(), [tl, ts])
    _close(gf[0], gt[0], what="d/dloc")
    _close(gf[1], gt[1], what="d/dscale")
    fw.manual_seed(5)
    assert np.array_equal(_np(D.Normal(fl, fs).rsample((4,))), _np(x)), "not reproducible"


def test_mvn_and_uniform_rsample_gradients_match_torch(device, torch):
    loc, a = RNG.standard_normal(3), RNG.standard_normal((3, 3))
    fl, fa = _fw(loc, device, True), _fw(a, device, True)
    x = D.MultivariateNormal(fl, fa @ fa.mT + 3 * fw.eye(3, dtype=fw.float64,
                                                         device=device)).rsample((5,))
    cov = a @ a.T + 3 * np.eye(3)
    eps = np.linalg.solve(np.linalg.cholesky(cov), (_np(x) - loc).T).T
    tl, ta = _th(torch, loc, True), _th(torch, a, True)
    low = torch.linalg.cholesky(ta @ ta.mT + 3 * torch.eye(3, dtype=torch.float64))
    tx = tl + (low @ _th(torch, eps).unsqueeze(-1)).squeeze(-1)
    w = RNG.standard_normal((5, 3))
    gf = fw.autograd.grad((x * _fw(w, device)).sum(), [fl, fa])
    gt = torch.autograd.grad((tx * _th(torch, w)).sum(), [tl, ta])
    _close(gf[0], gt[0], what="mvn d/dloc")
    _close(gf[1], gt[1], rtol=1e-8, atol=1e-9, what="mvn d/dA (through cholesky)")

    lo, hi = RNG.uniform(-2, -1, 3), RNG.uniform(1, 2, 3)
    flo, fhi = _fw(lo, device, True), _fw(hi, device, True)
    u = D.Uniform(flo, fhi).rsample((6,))
    base = (_np(u) - lo) / (hi - lo)
    assert base.min() >= 0 and base.max() < 1
    tlo, thi = _th(torch, lo, True), _th(torch, hi, True)
    tu = tlo + _th(torch, base) * (thi - tlo)
    w = RNG.standard_normal((6, 3))
    gf = fw.autograd.grad((u * _fw(w, device)).sum(), [flo, fhi])
    gt = torch.autograd.grad((tu * _th(torch, w)).sum(), [tlo, thi])
    _close(gf[0], gt[0], what="uniform d/dlow")
    _close(gf[1], gt[1], what="uniform d/dhigh")


RSAMPLE = {
    "normal": (lambda loc, s: D.Normal(loc, s), [RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)]),
    "mvn": (lambda loc, a: D.MultivariateNormal(loc, a @ a.mT + 2 * fw.eye(3, dtype=a.dtype,
                                                                           device=a.device)),
            [RNG.standard_normal(3), RNG.standard_normal((3, 3))]),
    "uniform": (lambda lo, hi: D.Uniform(lo, hi), [RNG.uniform(-2, -1, 3), RNG.uniform(1, 2, 3)]),
    "gamma": (lambda c, r: D.Gamma(c, r), [RNG.uniform(0.4, 3, 4), RNG.uniform(0.5, 2, 4)]),
    "beta": (lambda a, b: D.Beta(a, b), [RNG.uniform(0.4, 3, 4), RNG.uniform(0.4, 3, 4)]),
    "independent": (lambda c, r: D.Independent(D.Gamma(c, r), 1),
                    [RNG.uniform(0.4, 3, 4), RNG.uniform(0.5, 2, 4)]),
    "tanh-normal": (lambda loc, s: D.TransformedDistribution(
                        D.Normal(loc, s), [D.TanhTransform(), D.AffineTransform(1.0, 2.0)]),
                    [RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)]),
}


@pytest.mark.parametrize("name", list(RSAMPLE))
def test_rsample_gradcheck(name, device):
    """With the seed fixed inside the function, a draw is a smooth function of the parameters
    (Gamma and Beta draw by inverse CDF, so this holds for them too): float64 finite
    differences equal the autograd gradient through rsample."""
    make, params = RSAMPLE[name]

    def draw(*p):
        fw.manual_seed(11)
        return make(*p).rsample((2,))
    inputs = [_fw(p, device, True) for p in params]
    assert fw.autograd.gradcheck(draw, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gamma_concentration_gradient_against_torch_and_unbiased(device, torch):
    """Per draw, d x / d concentration equals torch's implicit-reparameterisation gradient at
    that draw (torch's is an approximation, to ~3e-3); averaged over draws it is the
    derivative of the mean, 1 / rate (and for Beta, c0 / (c1 + c0)^2)."""
    conc, rate = 1.7, 2.0
    c = _fw([conc], device, True)
    x = D.Gamma(c.expand(20000), _fw([rate], device)).rsample()
    g = _np(fw.autograd.grad(x, c, fw.ones_like(x))[0])[0] / 20000
    assert abs(g - 1 / rate) < 0.02, g
    per_draw = _np(fw._standard_gamma_grad(_fw(np.full(50, conc), device),
                                           x[:50].detach() * rate))
    theirs = torch._standard_gamma_grad(torch.full((50,), conc, dtype=torch.float64),
                                        torch.tensor(_np(x[:50]) * rate))
    np.testing.assert_allclose(per_draw, theirs.numpy(), rtol=5e-3)
    c1, c0 = _fw([0.8], device, True), _fw([2.5], device, True)
    y = D.Beta(c1.expand(20000), c0.expand(20000)).rsample()
    g1, g0 = fw.autograd.grad(y.sum(), [c1, c0])
    total = 0.8 + 2.5
    assert abs(_np(g1)[0] / 20000 - 2.5 / total ** 2) < 0.01
    assert abs(_np(g0)[0] / 20000 + 0.8 / total ** 2) < 0.01


# ---------------------------------------------------------------------------------- statistics
@pytest.mark.parametrize("make,mean,var", [
    (lambda dev: D.Normal(_fw([1.0, -2.0], dev), _fw([0.5, 2.0], dev)), [1.0, -2.0],
     [0.25, 4.0]),
    (lambda dev: D.Uniform(_fw([0.0, -1.0], dev), _fw([1.0, 3.0], dev)), [0.5, 1.0],
     [1 / 12, 16 / 12]),
    (lambda dev: D.Gamma(_fw([0.3, 5.0], dev), _fw([1.0, 2.0], dev)), [0.3, 2.5], [0.3, 1.25]),
    (lambda dev: D.Beta(_fw([0.5, 4.0], dev), _fw([0.5, 2.0], dev)), [0.5, 4 / 6],
     [0.125, 8 / 252]),
    (lambda dev: D.Bernoulli(_fw([0.2, 0.9], dev)), [0.2, 0.9], [0.16, 0.09]),
    (lambda dev: D.MultivariateNormal(_fw([1.0, 2.0], dev),
                                      _fw([[2.0, 0.6], [0.6, 1.0]], dev)),
     [1.0, 2.0], [2.0, 1.0]),
])
def test_sample_statistics(make, mean, var, device):
    n = 40000
    x = _np(make(device).sample((n,)))
    se = np.sqrt(np.asarray(var) / n)
    assert np.all(np.abs(x.mean(0) - mean) < 5 * se), (x.mean(0), mean)
    np.testing.assert_allclose(x.var(0), var, rtol=0.05)


def test_mvn_sample_covariance(device):
    cov = np.array([[2.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 0.5]])
    x = _np(D.MultivariateNormal(_fw(np.zeros(3), device),
                                 precision_matrix=_fw(np.linalg.inv(cov), device))
            .sample((40000,)))
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.05)


def test_categorical_sampling(device):
    probs = _fw([[0.1, 0.0, 0.6, 0.3], [0.25, 0.25, 0.25, 0.25]], device)
    d = D.Categorical(probs=probs * 3)  # unnormalized probabilities are normalized
    x = _np(d.sample((40000,)))
    assert x.dtype == np.int64 and x.shape == (40000, 2)
    freq = np.stack([(x == k).mean(0) for k in range(4)], -1)
    np.testing.assert_allclose(freq, _np(probs), atol=0.01)
    assert not np.any(x[:, 0] == 1), "a category of probability 0 was drawn"
    fw.manual_seed(3)
    a = _np(d.sample((10,)))
    fw.manual_seed(3)
    assert np.array_equal(a, _np(d.sample((10,)))), "manual_seed does not reproduce draws"
    oh = _np(D.OneHotCategorical(probs=probs).sample((4000,)))
    assert set(np.unique(oh.sum(-1))) == {1.0}
    np.testing.assert_allclose(oh.mean(0), _np(probs), atol=0.03)


# ---------------------------------------------------------------------------------- validation
def test_argument_validation(device):
    with pytest.raises(ValueError, match=r"Expected parameter scale .* GreaterThan"):
        D.Normal(_fw([0.0], device), _fw([-1.0], device))
    D.Normal(_fw([0.0], device), _fw([-1.0], device), validate_args=False)  # no check
    with pytest.raises(ValueError, match="Expected parameter probs"):
        D.Categorical(probs=_fw([-0.1, 1.1], device))
    with pytest.raises(ValueError, match="Expected parameter probs"):
        D.Bernoulli(probs=_fw([1.5], device))
    with pytest.raises(ValueError, match="Expected parameter concentration"):
        D.Gamma(_fw([0.0], device), 1.0)
    with pytest.raises(ValueError, match="Expected parameter concentration0"):
        D.Beta(1.0, _fw([-2.0], device))
    with pytest.raises(ValueError, match="Expected parameter low .* LessThan"):
        D.Uniform(2.0, 1.0)
    with pytest.raises(ValueError, match="Expected parameter covariance_matrix .* "
                                         "PositiveDefinite"):
        D.MultivariateNormal(_fw([0.0, 0.0], device), _fw([[1.0, 2.0], [2.0, 1.0]], device))
    with pytest.raises(ValueError, match="Expected parameter scale_tril .* LowerCholesky"):
        D.MultivariateNormal(_fw([0.0, 0.0], device),
                             scale_tril=_fw([[1.0, 0.0], [0.5, -1.0]], device))
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        D.Categorical(probs=_fw([0.5, 0.5], device), logits=_fw([0.0, 0.0], device))
    with pytest.raises(ValueError, match="Exactly one of covariance_matrix"):
        D.MultivariateNormal(_fw([0.0], device))
    with pytest.raises(ValueError, match="reinterpreted_batch_ndims"):
        D.Independent(D.Normal(_fw([0.0], device), 1.0), 2)
    D.Distribution.set_default_validate_args(False)
    try:
        D.Normal(0.0, -1.0)  # validation off by default now
        assert D.Normal(0.0, 1.0).log_prob(fw.tensor(float("nan"))).isnan()
    finally:
        D.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        D.Normal(0.0, -1.0)


@pytest.mark.parametrize("make,value", [
    (lambda dev: D.Gamma(1.0, 1.0), [-1.0]),
    (lambda dev: D.Beta(1.0, 2.0), [1.5]),
    (lambda dev: D.Uniform(0.0, 1.0), [2.0]),
    (lambda dev: D.Bernoulli(0.3), [0.5]),
    (lambda dev: D.Normal(0.0, 1.0), [math.nan]),
    (lambda dev: D.OneHotCategorical(probs=_fw([0.5, 0.5], dev)), [[1.0, 1.0]]),
    (lambda dev: D.TransformedDistribution(D.Normal(0.0, 1.0), D.ExpTransform()), [-1.0]),
])
def test_log_prob_rejects_values_outside_the_support(make, value, device):
    d = make(device)
    v = fw.tensor(value, dtype=fw.float32)
    with pytest.raises(ValueError, match=r"Expected value argument .* within the support"):
        d.log_prob(v)


def test_log_prob_value_checks(device):
    c = D.Categorical(probs=_fw([0.5, 0.5], device))
    with pytest.raises(ValueError, match="within the support"):
        c.log_prob(fw.tensor(2, device=device))
    with pytest.raises(ValueError, match="must be a Tensor"):
        D.Normal(0.0, 1.0).log_prob(1.0)
    with pytest.raises(ValueError, match="not broadcastable"):
        D.Normal(_fw(np.zeros(3), device), 1.0).log_prob(_fw(np.zeros(4), device))
    with pytest.raises(ValueError, match="right-most size of value must match event_shape"):
        D.MultivariateNormal(_fw(np.zeros(3), device), _fw(np.eye(3), device)).log_prob(
            _fw(np.zeros(2), device))
    # without validation the value is not checked
    with np.errstate(invalid="ignore"):
        lp = D.Gamma(1.0, 1.0, validate_args=False).log_prob(fw.tensor([-1.0]))
    assert _np(lp).shape == (1,)


# ---------------------------------------------------------------------------------- transforms
def _transform_pairs(torch, device):
    loc, scale = RNG.standard_normal(3), RNG.uniform(0.5, 2, 3) * np.array([1, -1, 1])
    fT, tT = D, torch.distributions
    return [
        (fT.ExpTransform(), tT.ExpTransform(), RNG.standard_normal((4, 3))),
        (fT.AffineTransform(_fw(loc, device), _fw(scale, device)),
         tT.AffineTransform(_th(torch, loc), _th(torch, scale)), RNG.standard_normal((4, 3))),
        (fT.AffineTransform(1.5, -0.5), tT.AffineTransform(1.5, -0.5),
         RNG.standard_normal((4, 3))),
        (fT.AffineTransform(_fw(loc, device), _fw(scale, device), event_dim=1),
         tT.AffineTransform(_th(torch, loc), _th(torch, scale), event_dim=1),
         RNG.standard_normal((4, 3))),
        (fT.SigmoidTransform(), tT.SigmoidTransform(), RNG.uniform(-8, 8, (4, 3))),
        (fT.TanhTransform(), tT.TanhTransform(), RNG.uniform(-3, 3, (4, 3))),
        (fT.ComposeTransform([fT.AffineTransform(0.5, 2.0), fT.ExpTransform()]),
         tT.ComposeTransform([tT.AffineTransform(0.5, 2.0), tT.ExpTransform()]),
         RNG.standard_normal((4, 3))),
        (fT.ExpTransform().inv, tT.ExpTransform().inv, RNG.uniform(0.1, 3, (4, 3))),
    ]


def test_transforms_match_torch(device, torch):
    for ft, tt, x in _transform_pairs(torch, device):
        fx, tx = _fw(x, device, True), _th(torch, x, True)
        fy, ty = ft(fx), tt(tx)
        _close(fy, ty, what=f"{ft} forward")
        _close(ft.inv(fy), tt.inv(ty), rtol=1e-9, atol=1e-12, what=f"{ft} inverse")
        _close(ft.inv(fy), x, rtol=1e-9, atol=1e-12, what=f"{ft} round trip")
        fl, tl = ft.log_abs_det_jacobian(fx, fy), tt.log_abs_det_jacobian(tx, ty)
        _close(fl, tl, what=f"{ft} log_abs_det_jacobian")
        _close(ft.inv.log_abs_det_jacobian(fy, fx), -tl.detach().numpy(),
               what=f"{ft} inverse log_abs_det_jacobian")
        if tl.requires_grad:
            _close(fw.autograd.grad(fl.sum(), fx)[0], torch.autograd.grad(tl.sum(), tx)[0],
                   rtol=1e-9, what=f"{ft} d ladj / dx")
        assert ft.domain.event_dim == tt.domain.event_dim
        assert ft.codomain.event_dim == tt.codomain.event_dim
        assert repr(ft.domain) == repr(tt.domain) and repr(ft.codomain) == repr(tt.codomain)
        fs, ts = ft.sign, tt.sign
        _close(np.asarray(_np(fs) if isinstance(fs, fw.Tensor) else fs, dtype=float),
               np.asarray(ts.numpy() if hasattr(ts, "numpy") else ts, dtype=float),
               what=f"{ft} sign")
        assert tuple(ft.forward_shape((5, 4, 3))) == tuple(tt.forward_shape((5, 4, 3)))


def test_transform_cache_and_equality(device):
    t = D.ExpTransform(cache_size=1)
    x = _fw(RNG.standard_normal(3), device)
    y = t(x)
    assert t.inv(y) is x and t(x) is y
    assert D.ExpTransform() == D.ExpTransform() and D.ExpTransform() != D.TanhTransform()
    assert D.AffineTransform(1.0, 2.0) == D.AffineTransform(1.0, 2.0)
    assert D.AffineTransform(1.0, 2.0) != D.AffineTransform(1.0, 3.0)
    assert D.ExpTransform().inv == D.ExpTransform().inv
    c = D.ComposeTransform([D.ExpTransform(), D.AffineTransform(0.0, 3.0)])
    assert c.inv.inv is c
    assert D.identity_transform(x) is x
    with pytest.raises(ValueError, match="cache_size"):
        D.ExpTransform(cache_size=2)


def test_transformed_distribution_shapes_match_torch(device, torch):
    loc = RNG.standard_normal((2, 3))
    fd = D.TransformedDistribution(D.Normal(_fw(loc, device), 1.0),
                                   [D.AffineTransform(0.0, 2.0, event_dim=1)])
    td = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(_th(torch, loc), 1.0),
        [torch.distributions.AffineTransform(0.0, 2.0, event_dim=1)])
    assert (tuple(fd.batch_shape), tuple(fd.event_shape)) == \
        (tuple(td.batch_shape), tuple(td.event_shape)) == ((2,), (3,))
    assert isinstance(fd.base_dist, D.Independent)
    assert repr(fd.support) == repr(td.support)
    # a transform whose parameters broadcast the base distribution up
    scale = RNG.uniform(0.5, 2, (4, 2, 3))
    fd = D.TransformedDistribution(D.Normal(_fw(loc, device), 1.0),
                                   D.AffineTransform(0.0, _fw(scale, device)))
    td = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(_th(torch, loc), 1.0),
        torch.distributions.AffineTransform(0.0, _th(torch, scale)))
    assert tuple(fd.batch_shape) == tuple(td.batch_shape) == (4, 2, 3)
    v = RNG.standard_normal((4, 2, 3))
    _close(fd.log_prob(_fw(v, device)), td.log_prob(_th(torch, v)))


# ---------------------------------------------------------------------------------- KL
def _kl_pairs(d, m, p):
    """(p, q) pairs built from parameter tensors p[0..7] of library `m`."""
    a, b, c, e, pa, pb, cov_a, cov_b = p
    sm = (lambda t: t.softmax(-1))
    return {
        "normal": (d.Normal(a, b.exp()), d.Normal(c, e.exp())),
        "bernoulli": (d.Bernoulli(logits=a), d.Bernoulli(probs=c.sigmoid())),
        "categorical": (d.Categorical(logits=pa), d.Categorical(probs=sm(pb))),
        "onehot": (d.OneHotCategorical(probs=sm(pa)), d.OneHotCategorical(logits=pb)),
        "uniform": (d.Uniform(a - 1, a + b.exp()), d.Uniform(a - 2, a + b.exp() + e.exp())),
        "beta": (d.Beta(a.exp(), b.exp()), d.Beta(c.exp(), e.exp())),
        "gamma": (d.Gamma(a.exp(), b.exp()), d.Gamma(c.exp(), e.exp())),
        "mvn": (d.MultivariateNormal(pa[..., :3], cov_a @ cov_a.mT + m.eye(3, dtype=a.dtype)),
                d.MultivariateNormal(pb[0, :3], scale_tril=(cov_b.tril(-1) + cov_b.diagonal(
                    dim1=-2, dim2=-1).exp().diag_embed()))),
        "independent": (d.Independent(d.Normal(pa, pb.exp()), 1),
                        d.Independent(d.Normal(pb, pa.exp()), 1)),
        "transformed": (d.TransformedDistribution(d.Normal(a, b.exp()), d.ExpTransform()),
                        d.TransformedDistribution(d.Normal(c, e.exp()), d.ExpTransform())),
    }


@pytest.mark.parametrize("pair", ["normal", "bernoulli", "categorical", "onehot", "uniform",
                                  "beta", "gamma", "mvn", "independent", "transformed"])
def test_kl_divergence_matches_torch(pair, device, torch):
    shapes = [(3,), (3,), (3,), (3,), (2, 4), (2, 4), (2, 3, 3), (3, 3)]
    params = [RNG.standard_normal(s) for s in shapes]
    fp = [_fw(x, device, True) for x in params]
    tp = [_th(torch, x, True) for x in params]
    fpq = _kl_pairs(D, fw, fp)[pair]
    tpq = _kl_pairs(torch.distributions, torch, tp)[pair]
    fk, tk = D.kl_divergence(*fpq), torch.distributions.kl_divergence(*tpq)
    _close(fk, tk, rtol=1e-9, what=f"KL {pair}")
    w = RNG.standard_normal(tuple(tk.shape))
    gf = fw.autograd.grad((fk * _fw(w, device)).sum(), fp, allow_unused=True)
    gt = torch.autograd.grad((tk * _th(torch, w)).sum(), tp, allow_unused=True)
    for i, (f, t) in enumerate(zip(gf, gt)):
        if t is None:
            assert f is None or not np.any(_np(f))
        else:
            _close(f, t, rtol=1e-8, atol=1e-10, what=f"KL {pair} grad {i}")


def test_kl_edge_values_and_dispatch(device, torch):
    tD = torch.distributions
    p, q = [0.0, 0.3, 1.0, 0.5], [0.5, 0.0, 0.2, 1.0]
    _close(D.kl_divergence(D.Bernoulli(_fw(p, device)), D.Bernoulli(_fw(q, device))),
           tD.kl_divergence(tD.Bernoulli(_th(torch, p)), tD.Bernoulli(_th(torch, q))))
    pc, qc = [[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]], [[0.2, 0.0, 0.8], [0.2, 0.3, 0.5]]
    _close(D.kl_divergence(D.Categorical(_fw(pc, device)), D.Categorical(_fw(qc, device))),
           tD.kl_divergence(tD.Categorical(_th(torch, pc)), tD.Categorical(_th(torch, qc))))
    _close(D.kl_divergence(D.Uniform(0.0, 2.0), D.Uniform(1.0, 3.0)), np.array(math.inf))
    with pytest.raises(NotImplementedError, match="No KL"):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Gamma(1.0, 1.0))

    class Scaled(D.Normal):
        pass
    # a subclass uses its parent's closed form until it registers its own
    assert float(D.kl_divergence(Scaled(0.0, 1.0), D.Normal(1.0, 1.0))) == pytest.approx(0.5)

    @D.register_kl(Scaled, D.Normal)
    def _kl_scaled(p, q):
        return fw.tensor(-1.0)
    assert float(D.kl_divergence(Scaled(0.0, 1.0), D.Normal(1.0, 1.0))) == -1.0
    with pytest.raises(TypeError):
        D.register_kl(int, D.Normal)


# ---------------------------------------------------------------------------------- usage
def test_reinforce_step_matches_torch(device, torch):
    """Categorical(logits=net(x)).log_prob(a) * advantage, plus an entropy bonus: the policy
    gradient equals torch's for the same weights and actions."""
    w1, b1 = RNG.standard_normal((8, 4)) * 0.5, RNG.standard_normal(8) * 0.1
    w2, b2 = RNG.standard_normal((3, 8)) * 0.5, RNG.standard_normal(3) * 0.1
    x, adv = RNG.standard_normal((16, 4)), RNG.standard_normal(16)

    def net(m, params, inp):
        h = m.nn.functional.linear(inp, params[0], params[1]).tanh()
        return m.nn.functional.linear(h, params[2], params[3])

    fparams = [_fw(p, device, True) for p in (w1, b1, w2, b2)]
    fdist = D.Categorical(logits=net(fw, fparams, _fw(x, device)))
    actions = fdist.sample()
    assert actions.dtype == fw.int64 and tuple(actions.shape) == (16,)
    floss = -(fdist.log_prob(actions) * _fw(adv, device)).mean() - 0.01 * fdist.entropy().mean()
    floss.backward()
    tparams = [_th(torch, p, True) for p in (w1, b1, w2, b2)]
    tdist = torch.distributions.Categorical(logits=net(torch, tparams, _th(torch, x)))
    ta = torch.tensor(_np(actions))
    tloss = -(tdist.log_prob(ta) * _th(torch, adv)).mean() - 0.01 * tdist.entropy().mean()
    tloss.backward()
    _close(floss, tloss, what="loss")
    for fp, tp in zip(fparams, tparams):
        _close(fp.grad, tp.grad, rtol=1e-9, atol=1e-12, what="policy gradient")


def test_vae_style_normal_rsample_and_kl_train(device):
    """A reparameterised latent with a KL to the prior trains: the loss falls."""
    fw.manual_seed(0)
    enc = fw.nn.Linear(4, 4).to(device=device, dtype=fw.float64)
    opt = fw.optim.Adam(enc.parameters(), lr=0.05)
    x = _fw(RNG.standard_normal((32, 4)), device)
    prior = D.Normal(_fw(np.zeros(2), device), _fw(np.ones(2), device))
    losses = []
    for _ in range(40):
        h = enc(x)
        q = D.Normal(h[:, :2], h[:, 2:].exp())
        z = q.rsample()
        recon = ((z - x[:, :2]) ** 2).sum(-1)
        loss = (recon + D.kl_divergence(q, prior).sum(-1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
