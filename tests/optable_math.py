"""Op table of the math and statistics ops (framework/ops/special.py, elementwise_extra.py,
scans.py, statistics.py), in the format of tests/optable.py: every case gets a float64
gradcheck, a gradgradcheck unless `gg=False`, and forward+backward parity with torch in float32
(tests/test_ops.py runs them). Edge cases the table cannot express are in
tests/test_ops_math.py."""
from __future__ import annotations

import math

from optable import C, I, In, S, T, V, B, _binary, _unary

nan, inf = math.nan, math.inf


def _seeded(fn):
    """A random op reseeded inside the case, so finite differences see the same noise."""
    def run(m, *a):
        m.manual_seed(0)
        return fn(m, *a)
    return run

# ---------------------------------------------------------------------------- binary elementwise
BINARY = (
    _binary("hypot", lambda m, a, b: m.hypot(a, b))
    + _binary("logaddexp", lambda m, a, b: m.logaddexp(a, b))
    + _binary("logaddexp2", lambda m, a, b: a.logaddexp2(b))
    + _binary("copysign", lambda m, a, b: m.copysign(a, b))
    + _binary("ldexp", lambda m, a, b: m.ldexp(a, b))
    + [
        C("logaddexp", lambda m, a, b: m.logaddexp(a, b), [(2, 3), (2, 3)], low=-60.0, high=60.0,
          note="wide"),
        C("logaddexp", lambda m, a, b: m.logaddexp(a, b),
          [V([-inf, -inf, inf, 1.0, nan]), V([-inf, 2.0, inf, -inf, 0.0])], gradcheck=False,
          forward_only=True, note="special"),
        C("copysign", lambda m, a: m.copysign(a, -0.0), [(2, 3)], note="neg-zero-scalar"),
        C("copysign", lambda m, a, b: a.copysign(b), [V([0.0, -0.0, 2.0, -3.0]), (4,)],
          grad=(0, 1), gradcheck=False, note="zero-input"),
        C("copysign", lambda m, a, b: m.copysign(a, b), [I((2, 3), -3, 3), (3,)],
          note="int-promotes"),
        # torch's gradient is 0 for negative integer exponents (an integer 2**other): those are
        # checked against 2**other in tests/test_ops_math.py
        C("ldexp", lambda m, a, b: m.ldexp(a, b), [(2, 3), I((2, 3), 0, 5)], note="int-exp"),
        C("ldexp", lambda m, a, b: a.ldexp(b), [I((3,), -3, 3), I((3,), 0, 4)],
          note="int-int"),
        C("hypot_", lambda m, a, b: (a * 1.0).hypot_(b), [(2, 3), (3,)]),
        C("copysign_", lambda m, a, b: (a * 1.0).copysign_(b), [(2, 3), (2, 3)]),
        C("ldexp_", lambda m, a, b: (a * 1.0).ldexp_(b), [(2, 3), I((3,), 0, 3)]),
        C("frexp", lambda m, x: m.frexp(x), [(3, 4)], low=-9.0, high=9.0),
        C("frexp", lambda m, x: x.frexp(), [T((3, 2))], low=-9.0, high=9.0),
        C("frexp", lambda m, x: m.frexp(x), [()], low=0.1, high=9.0),
        C("frexp", lambda m, x: m.frexp(x), [(0, 3)]),
        C("frexp", lambda m, x: m.frexp(x), [V([0.0, -0.0, inf, -inf, nan, 3e-40, 1.0, -0.5])],
          gradcheck=False, forward_only=True, note="special"),
    ]
)

# ---------------------------------------------------------------------------- special functions
SPECIAL = (
    _unary("lgamma", low=0.2, high=4.0) + _unary("digamma", low=0.3, high=4.0)
    + _unary("erfinv", low=-0.9, high=0.9) + _unary("i0") + _unary("sinc")
    + _unary("logit", low=0.1, high=0.9)
    + [
        C("lgamma", lambda m, x: m.lgamma(x), [(2, 3)], low=-2.8, high=-2.2, note="negative"),
        C("lgamma", lambda m, x: x.lgamma(), [V([0.0, -0.0, -1.0, inf, -inf, nan, 1.0, 2.0])],
          gradcheck=False, forward_only=True, note="poles"),
        C("lgamma", lambda m, x: x.lgamma(), [I((3,), 1, 6)], note="int-promotes"),
        C("digamma", lambda m, x: m.digamma(x), [(2, 3)], low=-1.8, high=-1.2, note="negative"),
        C("digamma", lambda m, x: x.digamma(), [V([0.0, -0.0, -1.0, inf, -inf, nan])],
          gradcheck=False, forward_only=True, note="poles"),
        C("polygamma", lambda m, x: m.polygamma(0, x), [(3, 4)], low=0.3, high=4.0, note="n0"),
        C("polygamma", lambda m, x: m.polygamma(1, x), [T((3, 2))], low=0.3, high=4.0,
          note="n1"),
        C("polygamma", lambda m, x: x.polygamma(2), [(2, 3)], low=0.5, high=4.0, note="n2"),
        C("polygamma", lambda m, x: m.polygamma(3, x), [()], low=0.5, high=4.0, note="n3"),
        C("polygamma", lambda m, x: m.polygamma(1, x), [(0, 2)], note="empty"),
        C("polygamma", lambda m, x: m.polygamma(2, x), [I((3,), 1, 5)], note="int-promotes"),
        C("erfinv", lambda m, x: m.erfinv(x), [V([-1.0, 1.0, 2.0, -2.0, 0.0, nan])],
          gradcheck=False, forward_only=True, note="edges"),
        C("i0", lambda m, x: m.i0(x), [(2, 3)], low=-12.0, high=12.0, note="wide"),
        C("i0", lambda m, x: m.i0(x), [V([0.0, 1e-3, -1e-3])], note="near-zero"),
        C("sinc", lambda m, x: m.sinc(x), [V([0.0, 1.0, -2.0, 0.5])], gg=False, note="zero"),
        C("sinc", lambda m, x: m.sinc(x), [I((3,), -2, 3)], note="int-promotes"),
        C("logit", lambda m, x: m.logit(x, eps=0.2), [(3, 4)], low=0.0, high=1.0, note="eps"),
        C("logit", lambda m, x: x.logit(0.25), [V([0.1, 0.25, 0.5, 0.75, 0.9])],
          gradcheck=False, note="eps-bounds"),
        C("logit", lambda m, x: m.logit(x), [V([0.0, 1.0, -0.5, 1.5, 0.5])], gradcheck=False,
          note="outside"),
        # Gamma(a, 1) draws by inverse CDF: finite differences at fixed noise check the
        # implicit reparameterisation gradient (PyTorch's stream differs: no parity)
        C("_standard_gamma", _seeded(lambda m, a: m._standard_gamma(a)), [(3, 4)], low=0.3,
          high=5.0, parity=False, gg=False),
        C("_standard_gamma", _seeded(lambda m, a: m._standard_gamma(a)), [()], low=0.05,
          high=0.3, parity=False, gg=False, note="small"),
        C("_standard_gamma", _seeded(lambda m, a: m._standard_gamma(a)), [(2, 3)], low=60.0,
          high=300.0, parity=False, gg=False, note="large"),
        C("lgamma_", lambda m, x: (x * 1.0).lgamma_(), [(2, 3)], low=0.3, high=3.0),
        C("digamma_", lambda m, x: (x * 1.0).digamma_(), [(2, 3)], low=0.3, high=3.0),
        C("polygamma_", lambda m, x: (x * 1.0).polygamma_(1), [(2, 3)], low=0.3, high=3.0),
        C("erfinv_", lambda m, x: (x * 1.0).erfinv_(), [(2, 3)], low=-0.9, high=0.9),
        C("i0_", lambda m, x: (x * 1.0).i0_(), [(2, 3)]),
        C("sinc_", lambda m, x: (x * 1.0).sinc_(), [(2, 3)]),
        C("logit_", lambda m, x: (x * 1.0).logit_(0.1), [(2, 3)], low=0.0, high=1.0),
    ]
)

# ---------------------------------------------------------------------------- scans
SCANS = [
    C("logcumsumexp", lambda m, x: m.logcumsumexp(x, 1), [(3, 4)]),
    C("logcumsumexp", lambda m, x: x.logcumsumexp(0), [T((3, 4))]),
    C("logcumsumexp", lambda m, x: x.logcumsumexp(-1), [S((2, 5))]),
    C("logcumsumexp", lambda m, x: m.logcumsumexp(x, 0), [()]),
    C("logcumsumexp", lambda m, x: m.logcumsumexp(x, 1), [(0, 3)], note="empty"),
    C("logcumsumexp", lambda m, x: m.logcumsumexp(x, 1), [(2, 6)], low=-80.0, high=80.0,
      note="wide"),
    C("logcumsumexp", lambda m, x: m.logcumsumexp(x, 0), [V([-1000.0, 0.0, -1000.0, 5.0])],
      note="underflow"),
    C("logcumsumexp", lambda m, x: m.logcumsumexp(x, 0), [V([-inf, 0.0, -inf, 1.0, inf, nan])],
      gradcheck=False, forward_only=True, note="special"),
    C("cummax", lambda m, x: m.cummax(x, 1), [(3, 5)]),
    C("cummax", lambda m, x: x.cummax(0), [T((4, 3))]),
    C("cummax", lambda m, x: x.cummax(-1), [(2, 1, 6)]),
    C("cummax", lambda m, x: m.cummax(x, 0), [()]),
    C("cummax", lambda m, x: m.cummax(x, 0), [(0, 2)], note="empty"),
    C("cummax", lambda m, x: m.cummax(x, 0), [V([1.0, 3.0, 3.0, 2.0, 5.0, 5.0])],
      gradcheck=False, note="ties-last"),
    C("cummax", lambda m, x: m.cummax(x, 0), [V([1.0, 3.0, nan, 2.0, nan, 9.0])],
      gradcheck=False, note="nan"),
    C("cummin", lambda m, x: m.cummin(x, 1), [(3, 5)]),
    C("cummin", lambda m, x: x.cummin(0), [S((4, 3))]),
    C("cummin", lambda m, x: m.cummin(x, 0), [V([3.0, 1.0, 1.0, nan, 0.0])], gradcheck=False,
      note="ties-nan"),
]

# ---------------------------------------------------------------------------- reductions, stats
STATS = [
    C("aminmax", lambda m, x: m.aminmax(x), [(3, 4)]),
    C("aminmax", lambda m, x: x.aminmax(dim=1), [T((3, 4))]),
    C("aminmax", lambda m, x: m.aminmax(x, dim=0, keepdim=True), [(3, 4)]),
    C("aminmax", lambda m, x: m.aminmax(x, keepdim=True), [(2, 3)], note="all-keepdim"),
    C("aminmax", lambda m, x: m.aminmax(x, dim=0), [()]),
    C("aminmax", lambda m, x: m.aminmax(x, dim=1), [(0, 3)], note="empty-rows"),
    C("aminmax", lambda m, x: m.aminmax(x, dim=1), [V([[1.0, nan, 2.0], [3.0, 0.0, 1.0]])],
      gradcheck=False, note="nan"),
    C("nanmedian", lambda m, x: m.nanmedian(x), [(3, 5)]),
    C("nanmedian", lambda m, x: x.nanmedian(), [V([1.0, nan, 4.0, 2.0, nan, 3.0])],
      note="nan"),
    C("nanmedian", lambda m, x: x.nanmedian(), [V([1.0, 2.0, 2.0, 5.0])], gradcheck=False,
      note="ties-even-split"),
    C("nanmedian", lambda m, x: m.nanmedian(x, 1), [(3, 4)], note="dim"),
    C("nanmedian", lambda m, x: x.nanmedian(0, keepdim=True), [T((3, 4))], note="keepdim"),
    C("nanmedian", lambda m, x: m.nanmedian(x, 1),
      [V([[nan, 1.0, 3.0, 2.0], [4.0, nan, nan, 0.0], [5.0, 6.0, 7.0, 8.0]])], note="dim-nan"),
    C("nanmedian", lambda m, x: m.nanmedian(x, 0), [()], note="0d"),
    C("nanmedian", lambda m, x: m.nanmedian(x, 1), [V([[nan, nan], [1.0, nan]])],
      gradcheck=False, note="all-nan-row"),
    C("quantile", lambda m, x: m.quantile(x, 0.3), [(3, 4)]),
    C("quantile", lambda m, x: x.quantile(0.7, dim=1), [(3, 5)]),
    C("quantile", lambda m, x: m.quantile(x, m.tensor([0.1, 0.5, 0.9], dtype=x.dtype), dim=0,
                                          keepdim=True), [T((4, 3))], note="q-tensor"),
    C("quantile", lambda m, x: m.quantile(x, m.tensor([0.25, 1.0], dtype=x.dtype),
                                          keepdim=True), [(2, 3)], note="all-keepdim"),
    C("quantile", lambda m, x: m.quantile(x, m.tensor(0.4, dtype=x.dtype), dim=-1), [(2, 6)],
      note="q-0d"),
    C("quantile", lambda m, x: m.quantile(x, 0.5, dim=0), [()], note="0d"),
    C("quantile", lambda m, x: m.quantile(x, 0.5, dim=1), [V([[1.0, nan, 2.0], [3.0, 0.0, 1.0]])],
      gradcheck=False, note="nan"),
    C("nanquantile", lambda m, x: m.nanquantile(x, 0.4, dim=1),
      [V([[1.0, nan, 2.0, 5.0], [3.0, 0.0, 1.0, 7.0]])], note="nan"),
    C("nanquantile", lambda m, x: x.nanquantile(m.tensor([0.2, 0.8], dtype=x.dtype)), [(3, 4)]),
    C("nanquantile", lambda m, x: m.nanquantile(x, 0.5, dim=1), [V([[nan, nan], [1.0, nan]])],
      gradcheck=False, note="all-nan-row"),
] + [
    C(op, lambda m, x, op=op, mode=mode: getattr(m, op)(x, m.tensor([0.0, 0.3, 0.5, 0.625, 1.0],
                                                                   dtype=x.dtype), dim=1,
                                                     interpolation=mode),
      [(2, 5)], note=mode)
    for op in ("quantile", "nanquantile")
    for mode in ("linear", "lower", "higher", "midpoint", "nearest")
] + [
    C("mode", lambda m, x: m.mode(x), [(3, 4)], note="distinct"),
    C("mode", lambda m, x: x.mode(0, keepdim=True), [T((4, 3))], note="distinct-keepdim"),
    C("mode", lambda m, x: m.mode(x, 1), [V([[1.0, 2.0, 2.0, 1.0, 3.0], [5.0, 5.0, 4.0, 4.0, 4.0],
                                             [7.0, 6.0, 7.0, 6.0, 6.0]])], gradcheck=False,
      note="ties"),
    C("mode", lambda m, x: m.mode(x), [V([3.0, nan, nan, 1.0])], gradcheck=False, note="nan"),
    C("mode", lambda m, x: m.mode(x, 0), [()], note="0d"),
    C("mode", lambda m, x: m.mode(x, 1), [(0, 3)], note="empty-rows"),
    C("cov", lambda m, x: m.cov(x), [(3, 5)]),
    C("cov", lambda m, x: x.cov(correction=0), [T((4, 2))]),
    C("cov", lambda m, x: m.cov(x), [(6,)], note="1d"),
    C("cov", lambda m, x, f: m.cov(x, fweights=f), [(2, 5), I((5,), 0, 4)], note="fweights"),
    C("cov", lambda m, x, a: m.cov(x, aweights=a), [(2, 5), In((5,), 0.2, 2.0)],
      note="aweights"),
    C("cov", lambda m, x, f, a: m.cov(x, correction=2, fweights=f, aweights=a),
      [(3, 6), I((6,), 1, 4), In((6,), 0.2, 2.0)], note="both-weights"),
    C("cov", lambda m, x: m.cov(x), [I((2, 4), -5, 5)], note="int-promotes"),
    C("corrcoef", lambda m, x: m.corrcoef(x), [(3, 5)]),
    C("corrcoef", lambda m, x: x.corrcoef(), [S((2, 4))]),
    C("corrcoef", lambda m, x: m.corrcoef(x), [(5,)], note="1d"),
    C("renorm", lambda m, x: m.renorm(x, 2, 0, 1.5), [(3, 4)]),
    C("renorm", lambda m, x: x.renorm(1, 1, 2.0), [T((4, 3))]),
    C("renorm", lambda m, x: m.renorm(x, 3, -1, 1.0), [(2, 3, 4)]),
    C("renorm", lambda m, x: m.renorm(x, inf, 0, 1.0), [(3, 4)], note="inf"),
    C("renorm", lambda m, x: m.renorm(x, 2, 0, 10.0), [(3, 4)], note="below-max"),
    C("renorm", lambda m, x: m.renorm(x, 2, 0, 1.0), [(0, 3)], note="empty"),
    C("renorm_", lambda m, x: (x * 1.0).renorm_(2, 1, 1.0), [(3, 4)]),
    C("trapezoid", lambda m, y: m.trapezoid(y), [(3, 4)]),
    C("trapezoid", lambda m, y: m.trapezoid(y, dx=0.5, dim=0), [T((3, 4))]),
    C("trapezoid", lambda m, y, x: m.trapezoid(y, x), [(3, 4), (4,)], note="x-1d"),
    C("trapezoid", lambda m, y, x: m.trapezoid(y, x, dim=0), [(3, 4), (3, 1)],
      note="x-broadcast"),
    C("trapezoid", lambda m, y, x: m.trapezoid(y, x), [(2, 3), (2, 3)], note="x-full"),
    C("trapezoid", lambda m, y: m.trapezoid(y), [(2, 0)], gradcheck=False, note="empty"),
    C("trapezoid", lambda m, y: m.trapezoid(y), [(1,)], note="single"),
    C("trapezoid", lambda m, y: m.trapezoid(y, dx=2), [I((4,), -3, 3)], note="int-promotes"),
    C("diff", lambda m, x: m.diff(x), [(3, 5)]),
    C("diff", lambda m, x: x.diff(n=2, dim=0), [T((4, 3))]),
    C("diff", lambda m, x, p, a: m.diff(x, prepend=p, append=a), [(2, 3), (2, 1), (2, 2)],
      note="prepend-append"),
    C("diff", lambda m, x: m.diff(x, n=0), [(4,)], note="n0"),
    C("diff", lambda m, x: m.diff(x, n=5), [(3,)], note="past-length"),
    C("diff", lambda m, x: m.diff(x, n=3), [S((2, 5))], note="n3"),
    C("diff", lambda m, x, p: m.diff(x, prepend=p), [I((4,), -5, 5), (1,)],
      note="int-float-prepend"),
]

CASES = BINARY + SPECIAL + SCANS + STATS

# ---------------------------------------------------------------------------- no gradient
NONDIFF_CASES = [
    C("nextafter", lambda m, a, b: m.nextafter(a, b), [(2, 3), (3,)]),
    C("nextafter", lambda m, a, b: a.nextafter(b),
      [V([0.0, 1.0, 1.0, -1.0, inf, nan]), V([1.0, 2.0, 0.0, -inf, 0.0, 1.0])],
      atol=0.0, rtol=0.0, note="exact"),
    C("nextafter_", lambda m, a, b: (a * 1.0).nextafter_(b), [(3,), (3,)]),
    C("heaviside", lambda m, a, b: m.heaviside(a, b), [V([-1.5, 0.0, 2.0, -0.0, nan]), V([0.5])]),
    C("heaviside", lambda m, a, b: a.heaviside(b), [I((2, 3), -2, 3), I((3,), 5, 9)],
      note="int"),
    C("heaviside", lambda m, a, b: m.heaviside(a, b), [B((4,)), B((4,))], note="bool"),
    C("heaviside_", lambda m, a, b: (a * 1.0).heaviside_(b), [(2, 3), (2, 3)]),
    C("gcd", lambda m, a, b: m.gcd(a, b), [I((3, 4), -20, 20), I((4,), -12, 12)]),
    C("gcd", lambda m, a, b: a.gcd(b), [I((3,), 0, 1), I((3,), 0, 1)], note="zeros"),
    C("lcm", lambda m, a, b: m.lcm(a, b), [I((3, 4), -20, 20), I((3, 1), -12, 12)]),
    C("gcd_", lambda m, a, b: a.clone().gcd_(b), [I((3,), 1, 30), I((3,), 1, 30)]),
    C("lcm_", lambda m, a, b: a.clone().lcm_(b), [I((3,), 1, 30), I((3,), 1, 30)]),
    C("histc", lambda m, x: m.histc(x, bins=5, min=-1, max=1), [(4, 6)]),
    C("histc", lambda m, x: x.histc(bins=4), [(20,)], note="data-range"),
    C("histc", lambda m, x: m.histc(x, bins=4, min=0, max=3),
      [V([1.0, 2.0, 1.0, 7.0, -1.0, nan, 0.0, 3.0, 0.75])], note="outside-edges"),
    C("histc", lambda m, x: m.histc(x, bins=3), [V([1.0, 1.0])], note="constant"),
    C("histc", lambda m, x: m.histc(x, bins=4), [(0,)], note="empty"),
    C("bincount", lambda m, x: m.bincount(x), [I((10,), 0, 5)]),
    C("bincount", lambda m, x: x.bincount(minlength=8), [I((6,), 0, 4)], note="minlength"),
    C("bincount", lambda m, x, w: m.bincount(x, w), [I((6,), 0, 4), (6,)], note="weights"),
    C("bincount", lambda m, x: m.bincount(x, minlength=3), [I((0,), 0, 1)], note="empty"),
    C("cummax", lambda m, x: m.cummax(x, 1), [I((3, 5), -4, 4)], note="int"),
    C("cummin", lambda m, x: m.cummin(x, 0), [B((5,))], note="bool"),
    C("mode", lambda m, x: m.mode(x, 1), [I((4, 7), 0, 3)], note="int"),
    C("nanmedian", lambda m, x: m.nanmedian(x, 0), [I((5, 3), -9, 9)], note="int"),
    C("aminmax", lambda m, x: m.aminmax(x), [I((3, 4), -9, 9)], note="int"),
    C("diff", lambda m, x: m.diff(x, n=2), [B((2, 5))], note="bool"),
    C("diff", lambda m, x: m.diff(x), [I((2, 5), -9, 9)], note="int"),
    # PyTorch's values are a rational approximation, good to about 3e-3 (ours to 1e-12)
    C("_standard_gamma_grad", lambda m, a, x: m._standard_gamma_grad(a, x),
      [In((3, 4), 0.5, 5.0), In((3, 4), 0.1, 8.0)], rtol=5e-3),
    C("_standard_gamma_grad", lambda m, a, x: m._standard_gamma_grad(a, x),
      [In((2, 3), 60.0, 300.0), In((2, 3), 50.0, 320.0)], rtol=5e-3, note="large"),
]
