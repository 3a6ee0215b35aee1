"""The math and statistics ops beyond the op table (tests/optable_math.py): error messages,
dtype rules, warnings, in-place forms, numerical range, larger randomized parity sweeps with
torch (ties and nan included), and the GPU code path of the scans run on NumPy arrays."""
from __future__ import annotations

import math
import types

import numpy as np
import pytest

import framework
from conftest import torch_or_skip
from framework.ops import scans

nan, inf = math.nan, math.inf
RNG = np.random.default_rng(0)


def _t(arr, device="cpu", dtype=None, requires_grad=False):
    t = framework.tensor(arr, dtype=dtype, device=device)  # lists: float32, as torch.tensor
    return t.requires_grad_(True) if requires_grad else t


def _np(t):
    return t.detach().cpu().numpy()


def _same(fw, th, what="", exact=False):
    a, b = _np(fw), th.detach().numpy()
    assert a.shape == b.shape, f"{what}: shape {a.shape} != torch {b.shape}"
    assert str(a.dtype) == str(b.dtype), f"{what}: dtype {a.dtype} != torch {b.dtype}"
    if exact or a.dtype.kind not in "fc":
        np.testing.assert_array_equal(a, b, err_msg=what)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=what)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("call, exc, msg", [
    (lambda: framework.hypot(_t([1, 2]), _t([3, 4])), NotImplementedError,
     "\"hypot\" not implemented for 'int64'"),
    (lambda: framework.logaddexp(_t([1, 2]), _t([3, 4])), NotImplementedError, "logaddexp"),
    (lambda: framework.nextafter(_t([1, 2]), _t([3, 4])), NotImplementedError, "nextafter"),
    (lambda: framework.gcd(_t([1.0]), _t([3.0])), NotImplementedError,
     "\"gcd\" not implemented for 'float32'"),
    (lambda: framework.lcm(_t([True]), _t([False])), NotImplementedError, "bool"),
    (lambda: framework.hypot(_t([1.0, 2.0]), _t([1.0, 2.0, 3.0])), RuntimeError, "[2] and [3]"),
    (lambda: framework.frexp(_t([1, 2])), RuntimeError, "only supports floating-point"),
    (lambda: framework.polygamma(-1, _t([1.0])), RuntimeError, "does not support negative n"),
    (lambda: framework.heaviside(_t([1, 2]), _t([0.5])), RuntimeError, "different dtypes"),
    (lambda: framework.logcumsumexp(_t([1, 2]), 0), NotImplementedError, "logcumsumexp"),
    (lambda: framework.logcumsumexp(_t([1.0, 2.0]), 1), IndexError, "Dimension out of range"),
    (lambda: framework.cummax(_t([[1.0]]), 2), IndexError, "Dimension out of range"),
    (lambda: framework.aminmax(_t(np.zeros(0))), RuntimeError, "no identity"),
    (lambda: framework.aminmax(_t(np.zeros((2, 0))), dim=1), IndexError, "dim 1"),
    (lambda: framework.nanmedian(_t(np.zeros((2, 0))), 1), IndexError, "non-zero size"),
    (lambda: framework.mode(_t(np.zeros((2, 0))), 1), IndexError,
     "mode(): Expected reduction dim 1 to have non-zero size."),
    (lambda: framework.quantile(_t([1, 2]), 0.5), RuntimeError, "float or double"),
    (lambda: framework.quantile(_t([1.0, 2.0]), 1.5), RuntimeError, "range [0, 1] but got 1.5"),
    (lambda: framework.quantile(_t([1.0, 2.0]), _t([0.5, 1.5])), RuntimeError,
     "q values must be in the range [0, 1]"),
    (lambda: framework.quantile(_t([1.0, 2.0]), _t([0.5], dtype=framework.float64)),
     RuntimeError, "same dtype"),
    (lambda: framework.quantile(_t([1.0, 2.0]), _t([[0.5]])), RuntimeError, "scalar or 1D"),
    (lambda: framework.nanquantile(_t(np.zeros((0, 2), np.float32)), 0.5, dim=1), RuntimeError,
     "non-empty"),
    (lambda: framework.quantile(_t([1.0]), 0.5, interpolation="cubic"), RuntimeError,
     "but got cubic"),
    (lambda: framework.cov(_t(np.zeros((2, 2, 2)))), RuntimeError, "got an input with 3"),
    (lambda: framework.cov(_t([1.0, 2.0]), fweights=_t([1.0, 2.0])), RuntimeError,
     "fweights to have integral dtype"),
    (lambda: framework.cov(_t([1.0, 2.0]), fweights=_t([1, -2])), RuntimeError,
     "fweights cannot be negative"),
    (lambda: framework.cov(_t([1.0, 2.0]), fweights=_t([1, 2, 3])), RuntimeError, "3 != 2"),
    (lambda: framework.cov(_t([1.0, 2.0]), fweights=_t([[1, 2]])), RuntimeError,
     "one or fewer dimensions"),
    (lambda: framework.cov(_t([1.0, 2.0]), aweights=_t([1, 2])), RuntimeError,
     "aweights to have floating point dtype"),
    (lambda: framework.cov(_t([1.0, 2.0]), aweights=_t([1.0, -2.0])), RuntimeError,
     "aweights cannot be negative"),
    (lambda: framework.corrcoef(_t(np.zeros((2, 2, 2)))), RuntimeError, "two or fewer"),
    (lambda: framework.renorm(_t([1.0, 2.0]), 2, 0, 1.0), RuntimeError,
     "at least 2 dimensions, got 1"),
    (lambda: framework.renorm(_t([[1.0]]), 0, 0, 1.0), RuntimeError, "non-positive-norm"),
    (lambda: framework.renorm(_t([[1.0]]), 2, 0, -1.0), RuntimeError, "maxnorm to be >= 0"),
    (lambda: framework.renorm(_t([[1, 2]]), 2, 0, 1.0), RuntimeError, "floating point"),
    (lambda: framework.renorm(_t([[1.0]]), 2, 2, 1.0), IndexError, "Dimension out of range"),
    (lambda: framework.trapezoid(_t(2.0)), IndexError, "no dimensions"),
    (lambda: framework.trapezoid(_t([1.0, 2.0]), _t([1.0, 2.0, 3.0])), RuntimeError,
     "one `x` value for each sample point"),
    (lambda: framework.trapezoid(_t([1.0, 2.0]), _t([1.0, 2.0]), dx=1.0), TypeError, "not both"),
    (lambda: framework.diff(_t(2.0)), RuntimeError, "at least one-dimensional"),
    (lambda: framework.diff(_t([1.0]), n=-1), RuntimeError, "non-negative but got -1"),
    (lambda: framework.diff(_t([[1.0]]), prepend=_t([1.0])), RuntimeError,
     "same dimension as input"),
    (lambda: framework.histc(_t([1, 2])), NotImplementedError, "histc"),
    (lambda: framework.histc(_t([1.0]), bins=0), RuntimeError, "bins must be > 0"),
    (lambda: framework.histc(_t([1.0]), bins=3, min=3, max=1), RuntimeError,
     "max must be larger than min"),
    (lambda: framework.histc(_t([1.0, inf])), RuntimeError, "is not finite"),
    (lambda: framework.histc(_t([1.0, nan])), RuntimeError, "is not finite"),
    (lambda: framework.bincount(_t([1.0])), NotImplementedError, "bincount"),
    (lambda: framework.bincount(_t([True])), NotImplementedError, "bincount"),
    (lambda: framework.bincount(_t([1, -1])), RuntimeError, "non-negative integral"),
    (lambda: framework.bincount(_t([[1]])), RuntimeError, "1-d"),
    (lambda: framework.bincount(_t([1, 2]), weights=_t([1.0])), RuntimeError,
     "same length as input"),
    (lambda: framework.bincount(_t([1]), minlength=-1), RuntimeError, "minlength should be >= 0"),
])
def test_errors(call, exc, msg):
    with pytest.raises(exc) as info:
        call()
    assert msg in str(info.value)


def test_cov_warns_without_degrees_of_freedom():
    torch = torch_or_skip()
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        out = framework.cov(_t([1.0, 2.0, 4.0]), correction=3)
    assert math.isinf(out.item())
    with pytest.warns(UserWarning):
        out = framework.cov(_t(3.0))
    assert out.shape == () and math.isnan(out.item())
    with pytest.warns(UserWarning):
        _same(framework.cov(_t(np.zeros((2, 0), np.float32))), torch.cov(torch.zeros(2, 0)))
    _same(framework.cov(_t(np.zeros((0, 3), np.float32))), torch.cov(torch.zeros(0, 3)))


# ---------------------------------------------------------------------------- dtypes and values
def test_result_dtypes_match_torch():
    torch = torch_or_skip()
    f32, f64, i64 = np.array([1.5, -2.0], np.float32), np.array([0.5, 3.0]), np.array([3, -4])
    cases = [
        ("copysign", (i64, i64)), ("copysign", (f32, f64)), ("ldexp", (i64, i64)),
        ("ldexp", (f64, i64)), ("ldexp", (f32, f64)), ("hypot", (f32, f64)),
        ("gcd", (i64, np.array([6, 4], np.int32))), ("lcm", (np.array([4, 6], np.int16), i64)),
        ("logaddexp2", (f64, f32)), ("nextafter", (f64, f64)),
    ]
    for name, args in cases:
        fw = getattr(framework, name)(*[_t(a) for a in args])
        th = getattr(torch, name)(*[torch.tensor(a) for a in args])
        _same(fw, th, f"{name}{tuple(a.dtype for a in args)}")
    for name in ("lgamma", "digamma", "erfinv", "i0", "sinc", "logit"):
        _same(getattr(framework, name)(_t(i64)), getattr(torch, name)(torch.tensor(i64)), name)
        _same(getattr(framework, name)(_t(f64 / 4)), getattr(torch, name)(torch.tensor(f64 / 4)),
              name)


def test_bincount_weight_dtypes():
    torch = torch_or_skip()
    idx = np.array([1, 1, 3, 0])
    for w in (np.array([0.5, 1.0, 2.0, 1.5], np.float32), np.array([0.5, 1.0, 2.0, 1.5]),
              np.array([1, 2, 3, 4]), np.array([True, False, True, True]),
              np.array([0.5, 1.0, 2.0, 1.5], np.float16)):
        _same(framework.bincount(_t(idx), _t(w)), torch.bincount(torch.tensor(idx),
                                                                  torch.tensor(w)), str(w.dtype))
    for dt in (np.int32, np.uint8, np.int16):
        _same(framework.bincount(_t(idx.astype(dt))), torch.bincount(torch.tensor(idx.astype(dt))))


def test_ldexp_negative_int_exponent_gradient_and_range():
    # torch gives a zero gradient for negative integer exponents; the derivative is 2**other
    x = _t([1.5, 2.0, 0.3], requires_grad=True)
    framework.ldexp(x, _t([0, 2, -3])).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [1.0, 4.0, 0.125])
    # float64 keeps its range: 2**200 is computed in float64, not float32
    assert framework.ldexp(_t([1.0], dtype=framework.float64), _t([200])).item() == 2.0 ** 200
    assert math.isinf(framework.ldexp(_t([1.0]), _t([200])).item())


def test_copysign_sends_zeros_to_other():
    a, b = _t([0.0, 2.0], requires_grad=True), _t([-1.0, -1.0], requires_grad=True)
    framework.copysign(a, b).sum().backward()
    np.testing.assert_array_equal(_np(a.grad), [0.0, -1.0])
    np.testing.assert_array_equal(_np(b.grad), [0.0, 0.0])


def test_frexp_roundtrip_and_fields():
    x = _t(RNG.standard_normal(20) * 1e3)
    m, e = framework.frexp(x)
    assert e.dtype is framework.int32
    assert framework.equal(framework.ldexp(m, e), x)
    assert framework.equal(x.frexp().mantissa, m)
    a = np.abs(_np(m))
    assert ((a >= 0.5) & (a < 1)).all()


def test_heaviside_scalar_values():
    out = framework.heaviside(_t([-1.0, 0.0, 2.0]), 0.25)
    np.testing.assert_array_equal(_np(out), [0.0, 0.25, 1.0])


def test_gcd_lcm_against_numpy():
    a, b = RNG.integers(-1000, 1000, 200), RNG.integers(-1000, 1000, 200)
    np.testing.assert_array_equal(_np(framework.gcd(_t(a), _t(b))), np.gcd(a, b))
    np.testing.assert_array_equal(_np(framework.lcm(_t(a), _t(b))), np.lcm(a, b))


# ---------------------------------------------------------------------------- in-place forms
def test_inplace_forms():
    x = _t([0.2, 0.5, 0.7])
    y = x.logit_()
    assert y is x
    np.testing.assert_allclose(_np(x), np.log(np.array([0.2, 0.5, 0.7]) / [0.8, 0.5, 0.3]),
                               rtol=1e-6)
    x = _t([1.0, 2.0, 3.0])
    x.polygamma_(1)
    np.testing.assert_allclose(_np(x), [math.pi ** 2 / 6, math.pi ** 2 / 6 - 1,
                                        math.pi ** 2 / 6 - 1.25], rtol=1e-6)
    x = _t([[3.0, 4.0], [0.3, 0.4]])
    x.renorm_(2, 0, 1.0)
    np.testing.assert_allclose(_np(x), [[0.6, 0.8], [0.3, 0.4]], rtol=1e-6)
    with pytest.raises(RuntimeError, match="can't be cast"):
        _t([1, 2]).lgamma_()
    with pytest.raises(RuntimeError, match="can't be cast"):
        _t([1, 2]).hypot_(_t([1.0, 2.0]))
    w = _t([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w.erfinv_()


def test_methods_as_torch():
    t = framework.Tensor
    for name in ("hypot", "logaddexp", "logaddexp2", "copysign", "nextafter", "frexp", "ldexp",
                 "i0", "sinc", "lgamma", "digamma", "polygamma", "erfinv", "logit", "heaviside",
                 "gcd", "lcm", "logcumsumexp", "cummax", "cummin", "aminmax", "nanmedian",
                 "quantile", "nanquantile", "mode", "cov", "corrcoef", "renorm", "diff", "histc",
                 "bincount"):
        assert hasattr(t, name), name
    for name in ("hypot", "copysign", "nextafter", "ldexp", "i0", "sinc", "lgamma", "digamma",
                 "polygamma", "erfinv", "logit", "heaviside", "gcd", "lcm", "renorm"):
        assert hasattr(t, name + "_"), name + "_"
    assert not hasattr(t, "trapezoid")  # a function only, as in torch


# ---------------------------------------------------------------------------- numerical range
def test_logcumsumexp_is_stable():
    x = np.array([[-1000.0, 0.0, -1000.0, 1000.0, 999.0], [5.0, -inf, 3.0, 2.0, 1e4]])
    out = framework.logcumsumexp(_t(x, dtype=framework.float64), 1)
    np.testing.assert_allclose(_np(out), np.logaddexp.accumulate(x, axis=1), rtol=1e-12)
    xt = _t(x[:, :4].copy(), dtype=framework.float64, requires_grad=True)
    framework.logcumsumexp(xt, 1).sum().backward()
    assert np.isfinite(_np(xt.grad)[0]).all()  # a naive exp(x) would overflow at 1000
    # softmax-like weights: the first row's gradient sums to its number of positions
    np.testing.assert_allclose(_np(xt.grad)[0].sum(), 4.0, rtol=1e-12)


def test_special_functions_against_scipy():
    sp = pytest.importorskip("scipy.special")
    x = np.linspace(0.05, 6.0, 40)
    _close = np.testing.assert_allclose
    _close(_np(framework.lgamma(_t(x, dtype=framework.float64))), sp.gammaln(x), rtol=1e-12)
    _close(_np(framework.digamma(_t(x, dtype=framework.float64))), sp.digamma(x), rtol=1e-12)
    _close(_np(framework.polygamma(3, _t(x, dtype=framework.float64))), sp.polygamma(3, x),
           rtol=1e-12)
    _close(_np(framework.i0(_t(x - 3, dtype=framework.float64))), sp.i0(x - 3), rtol=1e-12)
    z = np.linspace(-0.99, 0.99, 30)
    _close(sp.erf(_np(framework.erfinv(_t(z, dtype=framework.float64)))), z, rtol=1e-12)


# ---------------------------------------------------------------------------- parity sweeps
def _with_nans_and_ties(shape, ties=True, nans=True):
    x = RNG.integers(0, 6, shape).astype(np.float32) if ties else \
        RNG.standard_normal(shape).astype(np.float32)
    if nans:
        x[RNG.random(shape) < 0.2] = nan
    return x


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_cummax_cummin_sweep(dim):
    torch = torch_or_skip()
    for ties, nans in ((True, True), (True, False), (False, True)):
        x = _with_nans_and_ties((3, 7, 5), ties, nans)
        for name in ("cummax", "cummin"):
            fw = getattr(framework, name)(_t(x), dim)
            th = getattr(torch, name)(torch.tensor(x), dim)
            _same(fw.values, th.values, f"{name} values", exact=True)
            _same(fw.indices, th.indices, f"{name} indices")


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_mode_sweep(dim):
    torch = torch_or_skip()
    x = RNG.integers(0, 4, (4, 9, 6)).astype(np.float32)
    for keepdim in (False, True):
        fw, th = framework.mode(_t(x), dim, keepdim), torch.mode(torch.tensor(x), dim, keepdim)
        _same(fw.values, th.values, "mode values")
        _same(fw.indices, th.indices, "mode indices")
    xi = x.astype(np.int64)
    _same(framework.mode(_t(xi), dim).indices, torch.mode(torch.tensor(xi), dim).indices)


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile_sweep(interpolation):
    torch = torch_or_skip()
    x = RNG.standard_normal((4, 5, 7)).astype(np.float32)
    xn = x.copy()
    xn[RNG.random(x.shape) < 0.25] = nan
    xn[0, 0] = nan  # a slice of nothing but nan
    q = np.array([0.0, 0.1, 0.25, 0.5, 0.8, 1.0], np.float32)
    for name, data in (("quantile", x), ("quantile", xn), ("nanquantile", xn)):
        for dim in (None, 0, 2, -2):
            for keepdim in (False, True):
                for qq in (0.35, q):
                    fq, tq = (_t(qq), torch.tensor(qq)) if isinstance(qq, np.ndarray) else (qq, qq)
                    fw = getattr(framework, name)(_t(data), fq, dim, keepdim,
                                                  interpolation=interpolation)
                    th = getattr(torch, name)(torch.tensor(data), tq, dim, keepdim,
                                              interpolation=interpolation)
                    _same(fw, th, f"{name} dim={dim} keepdim={keepdim} q={qq}")


def test_nanmedian_sweep():
    torch = torch_or_skip()
    x = _with_nans_and_ties((5, 8), ties=False)
    x[1] = nan
    for dim in (0, 1):
        fw, th = framework.nanmedian(_t(x), dim), torch.nanmedian(torch.tensor(x), dim)
        _same(fw.values, th.values)
        # which nan of an all-nan row torch points at depends on its selection algorithm
        some = ~np.isnan(x).all(axis=dim)
        np.testing.assert_array_equal(_np(fw.indices)[some], th.indices.numpy()[some])
    _same(framework.nanmedian(_t(x)), torch.nanmedian(torch.tensor(x)))
    assert math.isnan(framework.nanmedian(_t(np.zeros(0, np.float32))).item())


def test_histc_edges_match_torch():
    torch = torch_or_skip()
    for dtype in (np.float32, np.float64):
        x = np.concatenate([RNG.uniform(-1, 1, 500), np.linspace(-1, 1, 201)]).astype(dtype)
        for bins, lo, hi in ((7, -1, 1), (10, -0.5, 0.7), (3, 0, 0), (13, -1.0, 1.0)):
            _same(framework.histc(_t(x), bins, lo, hi), torch.histc(torch.tensor(x), bins, lo, hi),
                  f"{dtype} bins={bins}", exact=True)


def test_cov_corrcoef_weights_sweep():
    torch = torch_or_skip()
    x = RNG.standard_normal((3, 8))
    f, a = RNG.integers(0, 4, 8), RNG.uniform(0.1, 2.0, 8)
    for correction in (0, 1, 2):
        for fw_kw, th_kw in (({}, {}), ({"fweights": _t(f)}, {"fweights": torch.tensor(f)}),
                             ({"aweights": _t(a)}, {"aweights": torch.tensor(a)}),
                             ({"fweights": _t(f), "aweights": _t(a)},
                              {"fweights": torch.tensor(f), "aweights": torch.tensor(a)})):
            _same(framework.cov(_t(x), correction=correction, **fw_kw),
                  torch.cov(torch.tensor(x), correction=correction, **th_kw))
    x32 = x.astype(np.float32)
    _same(framework.cov(_t(x32), aweights=_t(a)), torch.cov(torch.tensor(x32),
                                                           aweights=torch.tensor(a)))
    _same(framework.corrcoef(_t(x)), torch.corrcoef(torch.tensor(x)))
    const = np.array([[1.0, 1.0, 1.0], [3.0, 1.0, 2.0]])
    _same(framework.corrcoef(_t(const)), torch.corrcoef(torch.tensor(const)))


def test_trapezoid_and_diff_sweep():
    torch = torch_or_skip()
    y = RNG.standard_normal((3, 4, 5))
    xs = np.sort(RNG.uniform(0, 3, 5))
    for dim in (0, 1, -1):
        _same(framework.trapezoid(_t(y), dim=dim), torch.trapezoid(torch.tensor(y), dim=dim))
        _same(framework.trapezoid(_t(y), dx=_t(0.3), dim=dim),
              torch.trapezoid(torch.tensor(y), dx=torch.tensor(0.3), dim=dim))
        for n in (1, 2, 4):
            _same(framework.diff(_t(y), n, dim), torch.diff(torch.tensor(y), n, dim))
    _same(framework.trapezoid(_t(y), _t(xs)), torch.trapezoid(torch.tensor(y), torch.tensor(xs)))
    _same(framework.trapezoid(_t(y), _t(y)), torch.trapezoid(torch.tensor(y), torch.tensor(y)))


# ---------------------------------------------------------------------------- the GPU scan path
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 17])
def test_doubling_scan_matches_accumulate(n):
    """scans.scan's path for array modules without ufunc.accumulate (CuPy), run on NumPy
    arrays through a stand-in module."""
    fake = types.SimpleNamespace(maximum=np.maximum, minimum=np.minimum, logaddexp=np.logaddexp)
    x = RNG.standard_normal((3, n, 4))
    x[0, n // 2, 1] = nan
    for axis in (0, 1, 2):
        for name in ("maximum", "minimum"):
            np.testing.assert_array_equal(scans.scan(fake, name, x, axis),
                                          getattr(np, name).accumulate(x, axis=axis))
        np.testing.assert_allclose(scans.scan(fake, "logaddexp", x, axis),
                                   np.logaddexp.accumulate(x, axis=axis), rtol=1e-12)


@pytest.mark.parametrize("values", [[1.0, 2.0, 2.0, 3.0, 2.0], [4.0, 1.0, float("nan"), 2.0],
                                    [[3.0, 1.0], [2.0, 5.0]]])
def test_median_without_dim_shares_the_gradient_among_ties_like_torch(values):
    torch = torch_or_skip()
    x = np.array(values)
    a, b = framework.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ra, rb = a.median(), b.median()
    ra.backward()
    rb.backward()
    np.testing.assert_equal(float(ra.detach()), float(rb.detach()))
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)
