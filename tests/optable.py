"""The op table: one line per test case, in the style of tinygrad's `helper_test_op`.

Each `Case` names the registered op it covers, a function applied to a library module
(`framework` or `torch`: the API is the same, so one lambda usually serves both), the inputs
(shapes, or `In` specs for value ranges, integer/bool data and non-contiguous layouts), which
inputs are differentiable, and options. `tests/test_ops.py` turns every case into a float64
gradcheck and, with torch installed, a forward+backward parity check against PyTorch.

Input specs:
    (2, 3)            float input drawn uniformly from [low, high] (the case's range)
    T((2, 3))         float input of shape (2, 3) that is a transposed, non-contiguous view
    S((2, 3))         float input of shape (2, 3) that is a strided slice (every other column)
    In((2,), low=.5)  float input with its own range
    V([[1., 2.]])     float input with literal values (ties, zeros, nan, inf)
    I((2,), 0, 3)     int64 input in [low, high), never differentiable
    B((2, 3))         bool input, never differentiable

Other test files may add tables as `tests/optable_<area>.py` defining `CASES` (and
`NONDIFF_CASES`) built from these same classes: test_ops.py collects them all.

Print the counts with `python tests/optable.py`.
"""
from __future__ import annotations

import math

import numpy as np


class In:
    """One input: shape, value range, kind ('float', 'int', 'bool') and layout."""

    def __init__(self, shape, low=None, high=None, *, kind="float", layout=None, vals=None):
        self.shape = tuple(shape)
        self.low, self.high, self.kind, self.layout, self.vals = low, high, kind, layout, vals

    @property
    def is_float(self):
        return self.kind == "float"

    def sample(self, rng, low, high):
        """A NumPy array (float64/int64/bool) holding this input's values, in logical shape."""
        if self.vals is not None:
            return np.array(self.vals, dtype=np.float64)
        lo = self.low if self.low is not None else low
        hi = self.high if self.high is not None else high
        if self.kind == "int":
            return rng.integers(lo, hi, size=self.shape).astype(np.int64)
        if self.kind == "bool":
            return rng.random(self.shape) < 0.5
        return rng.uniform(lo, hi, size=self.shape)

    def __repr__(self):
        tag = {"T": "T", "S": "S"}.get(self.layout, "")
        if self.vals is not None:
            return "V" + str(np.array(self.vals).shape).replace(" ", "")
        k = {"int": "I", "bool": "B"}.get(self.kind, "")
        return f"{tag}{k}{list(self.shape)}".replace(" ", "")


def T(shape, low=None, high=None):
    """A non-contiguous input: the transpose of a contiguous array (needs ndim >= 2)."""
    return In(shape, low, high, layout="T")


def S(shape, low=None, high=None):
    """A non-contiguous input: every other element along the last dim of a wider array."""
    return In(shape, low, high, layout="S")


def V(vals):
    return In(np.array(vals).shape, vals=vals)


def I(shape, low, high):  # noqa: E743
    return In(shape, low, high, kind="int")


def B(shape):
    return In(shape, kind="bool")


class Case:
    """One test case of op `op` (a name in framework.ops.registry.OPS, or a pseudo-op such
    as 'getitem'); `fn(m, *inputs)` with m = framework or torch; `torch_fn` when the torch
    spelling differs. `grad`: indexes of the differentiable inputs (default: every float
    input). `gradcheck`/`gg` (gradgradcheck)/`parity` switch the checks; `forward_only` skips
    backward parity."""

    def __init__(self, op, fn, inputs, *, torch_fn=None, low=-2.0, high=2.0, grad=None,
                 gradcheck=True, parity=True, forward_only=False, atol=1e-5, rtol=1e-4,
                 grad_atol=1e-4, grad_rtol=1e-3, gg=True, note=""):
        self.op = op
        self.fn = fn
        self.torch_fn = torch_fn or fn
        self.inputs = [x if isinstance(x, In) else In(x) for x in inputs]
        self.low, self.high = low, high
        if grad is None:
            grad = tuple(i for i, x in enumerate(self.inputs) if x.is_float)
        self.grad = tuple(grad)
        self.gradcheck = gradcheck and bool(self.grad)
        self.parity = parity
        self.forward_only = forward_only or not self.grad
        self.atol, self.rtol, self.grad_atol, self.grad_rtol = atol, rtol, grad_atol, grad_rtol
        self.gg = gg and self.gradcheck  # also check second derivatives (gradgradcheck)
        self.note = note

    @property
    def id(self):
        s = f"{self.op}-" + ",".join(map(repr, self.inputs))
        return s + (f"-{self.note}" if self.note else "")


C = Case


def _unary(op, fn=None, low=-2.0, high=2.0, **kw):
    """The standard cases of a unary op: a matrix, a non-contiguous view, a 0-d and an empty
    tensor."""
    f = fn or (lambda m, x: getattr(m, op)(x))
    return [C(op, f, [(3, 4)], low=low, high=high, **kw),
            C(op, f, [T((3, 2))], low=low, high=high, **kw),
            C(op, f, [()], low=low, high=high, **kw),
            C(op, f, [(0, 3)], low=low, high=high, **kw)]


def _binary(op, fn, low=-2.0, high=2.0, **kw):
    """The standard cases of a broadcasting binary op."""
    return [C(op, fn, [(2, 3), (2, 3)], low=low, high=high, **kw),
            C(op, fn, [(2, 3), (3,)], low=low, high=high, **kw),
            C(op, fn, [(2, 1, 3), (4, 1)], low=low, high=high, **kw),
            C(op, fn, [(2, 3), ()], low=low, high=high, **kw),
            C(op, fn, [(), (2, 3)], low=low, high=high, **kw),
            C(op, fn, [T((3, 2)), S((3, 2))], low=low, high=high, **kw),
            C(op, fn, [(0, 3), (3,)], low=low, high=high, **kw)]


def _setitem(x, key, v):
    y = x.clone()
    y[key] = v
    return y


# ---------------------------------------------------------------------------------- elementwise
UNARY = (
    _unary("neg") + _unary("abs", low=0.1, high=2.0) + _unary("exp") + _unary("exp2")
    + _unary("log", low=0.2, high=3.0) + _unary("log2", low=0.2, high=3.0)
    + _unary("log10", low=0.2, high=3.0) + _unary("log1p", low=-0.5, high=2.0)
    + _unary("expm1") + _unary("sqrt", low=0.2, high=3.0) + _unary("rsqrt", low=0.2, high=3.0)
    + _unary("reciprocal", low=0.3, high=2.0) + _unary("square") + _unary("sin") + _unary("cos")
    + _unary("tan", low=-1.2, high=1.2) + _unary("asin", low=-0.9, high=0.9)
    + _unary("acos", low=-0.9, high=0.9) + _unary("atan") + _unary("sinh") + _unary("cosh")
    + _unary("asinh") + _unary("acosh", low=1.2, high=3.0) + _unary("atanh", low=-0.9, high=0.9)
    + _unary("tanh") + _unary("sigmoid") + _unary("relu") + _unary("erf") + _unary("erfc")
    + _unary("sign") + _unary("floor") + _unary("ceil") + _unary("trunc") + _unary("frac")
    + _unary("round")
    + [
        C("abs", lambda m, x: x.abs(), [(2, 3)], low=-2.0, high=-0.1, note="negative"),
        C("relu", lambda m, x: m.relu(x), [(4, 5)], note="mixed-sign"),
        C("sigmoid", lambda m, x: m.sigmoid(x), [(2, 3)], low=20.0, high=40.0, note="saturated"),
        C("sigmoid", lambda m, x: m.sigmoid(x), [(2, 3)], low=-40.0, high=-20.0,
          note="saturated-neg"),
        C("exp", lambda m, x: x.exp(), [(2, 3)], low=-30.0, high=10.0, note="wide"),
        C("round", lambda m, x: m.round(x, decimals=1), [(3, 4)], note="decimals"),
        C("nan_to_num", lambda m, x: m.nan_to_num(x), [(3, 4)]),
        C("nan_to_num", lambda m, x: m.nan_to_num(x, nan=0.5, posinf=9.0, neginf=-9.0),
          [V([1.0, math.nan, math.inf, -math.inf, -2.0])], gradcheck=False, note="special"),
        C("nan_to_num", lambda m, x: m.nan_to_num(x), [V([1.0, math.inf, -math.inf])],
          gradcheck=False, forward_only=True, note="float-max"),
        C("square", lambda m, x: x.square(), [T((4, 3))]),
        C("clone", lambda m, x: m.clone(x), [(2, 3)]),
        C("clone", lambda m, x: x.clone(), [T((3, 2))]),
    ]
)

BINARY = (
    _binary("add", lambda m, a, b: a + b) + _binary("sub", lambda m, a, b: a - b)
    + _binary("mul", lambda m, a, b: a * b)
    + _binary("div", lambda m, a, b: a / b, low=0.5, high=2.0)
    + _binary("pow", lambda m, a, b: a ** b, low=0.5, high=2.0)
    + _binary("atan2", lambda m, a, b: m.atan2(a, b), low=0.2, high=2.0)
    + _binary("maximum", lambda m, a, b: m.maximum(a, b))
    + _binary("minimum", lambda m, a, b: m.minimum(a, b))
    + _binary("xlogy", lambda m, a, b: m.xlogy(a, b), low=0.3, high=2.0)
    + [
        C("add", lambda m, a, b: m.add(a, b, alpha=2.5), [(2, 3), (3,)], note="alpha"),
        C("add", lambda m, a: a + 1.5, [(2, 3)], note="scalar"),
        C("add", lambda m, a: 2 + a, [(2, 3)], note="rscalar-int"),
        C("sub", lambda m, a, b: m.sub(a, b, alpha=0.5), [(2, 3), (2, 3)], note="alpha"),
        C("sub", lambda m, a: 1.5 - a, [(2, 3)], note="rscalar"),
        C("mul", lambda m, a: a * 3, [(2, 3)], note="int-scalar"),
        C("mul", lambda m, a: a * a, [(2, 3)], note="same-input"),
        C("div", lambda m, a: 2.0 / a, [(2, 3)], low=0.5, high=2.0, note="rscalar"),
        C("div", lambda m, a, b: m.div(a, b, rounding_mode="floor"), [(2, 3), (2, 3)], low=0.3,
          high=2.0, note="floor"),
        C("div", lambda m, a, b: m.div(a, b, rounding_mode="trunc"), [(2, 3), (3,)], low=-2.0,
          high=2.0, note="trunc"),
        # torch defines no derivative for floor_divide (Lantern's is 0): forward parity only
        C("floor_divide", lambda m, a, b: m.floor_divide(a, b), [(2, 3), (2, 3)], low=0.3,
          high=3.0, forward_only=True),
        C("floor_divide", lambda m, a: a // 0.7, [(3, 4)], forward_only=True, note="scalar"),
        C("pow", lambda m, a: a ** 2, [(2, 3)], note="square"),
        C("pow", lambda m, a: a ** 3, [(2, 3)], note="cube-neg-base"),
        C("pow", lambda m, a: a ** 2.5, [(2, 3)], low=0.3, high=2.0, note="float-exp"),
        C("pow", lambda m, a: a ** -1.5, [(2, 3)], low=0.3, high=2.0, note="neg-exp"),
        C("pow", lambda m, a: a ** 0, [(2, 3)], note="zero-exp"),
        C("pow", lambda m, a: a ** 1, [(2, 3)], note="one-exp"),
        C("pow", lambda m, a: 2.0 ** a, [(2, 3)], note="rpow"),
        C("pow", lambda m, a: m.pow(a, 0.5), [(3,)], low=0.3, high=2.0, note="sqrt"),
        C("pow", lambda m, a, b: m.pow(a, b), [(2, 3), ()], low=0.5, high=2.0, note="0d-exp"),
        C("remainder", lambda m, a, b: m.remainder(a, b), [(3, 4), (4,)], low=0.3, high=3.0),
        C("remainder", lambda m, a, b: a % b, [(3, 4), (3, 4)], low=-3.0, high=3.0,
          note="signs"),
        C("remainder", lambda m, a: a % 0.7, [(2, 5)], note="scalar"),
        C("fmod", lambda m, a, b: m.fmod(a, b), [(3, 4), (4,)], low=-3.0, high=3.0),
        C("fmod", lambda m, a: m.fmod(a, 0.7), [(2, 5)], note="scalar"),
        C("maximum", lambda m, a, b: m.maximum(a, b), [V([1.0, 2.0, 3.0]), V([1.0, 0.0, 3.0])],
          gradcheck=False, note="ties"),
        C("minimum", lambda m, a, b: m.minimum(a, b), [V([1.0, 2.0, 3.0]), V([1.0, 5.0, 3.0])],
          gradcheck=False, note="ties"),
        C("max", lambda m, a, b: m.max(a, b), [(2, 3), (3,)], note="binary"),
        C("min", lambda m, a, b: m.min(a, b), [(2, 3), (3,)], note="binary"),
        C("xlogy", lambda m, a, b: m.xlogy(a, b), [V([0.0, 1.0, 2.0]), (3,)], low=0.5,
          grad=(1,), note="zero-x"),
        C("lerp", lambda m, a, b: m.lerp(a, b, 0.3), [(2, 3), (2, 3)]),
        C("lerp", lambda m, a, b, w: m.lerp(a, b, w), [(2, 3), (3,), (2, 1)],
          note="tensor-weight"),
        C("lerp", lambda m, a, b: a.lerp(b, 0.75), [T((3, 2)), (2,)]),
    ]
)

SELECTION = [
    C("where", lambda m, c, a, b: m.where(c, a, b), [B((2, 3)), (2, 3), (2, 3)]),
    C("where", lambda m, c, a, b: m.where(c, a, b), [B((2, 1)), (3,), (2, 3)]),
    C("where", lambda m, c, a, b: m.where(c, a, b), [B((3,)), (2, 3), ()]),
    C("where", lambda m, c, a: m.where(c, a, 0.0), [B((2, 3)), T((2, 3))], note="scalar"),
    C("where", lambda m, a: m.where(a > 0, a, a * 2), [(3, 4)], note="cond-from-input"),
    C("Tensor.where", lambda m, a, b: a.where(a > 0, b), [(3, 4), (4,)]),
    C("Tensor.where", lambda m, a: a.where(a > 0, 0.0), [(3, 4)], note="scalar"),
    C("where", lambda m, c, a, b: m.where(c, a, b), [B((0, 3)), (0, 3), (3,)]),
    C("clamp", lambda m, x: m.clamp(x, -0.5, 0.5), [(3, 4)]),
    C("clamp", lambda m, x: x.clamp(min=-0.3), [T((4, 3))], note="min-only"),
    C("clamp", lambda m, x: x.clamp(max=0.3), [(2, 3)], note="max-only"),
    C("clamp", lambda m, x, lo, hi: m.clamp(x, lo, hi), [(3, 4), In((4,), -1.0, -0.2),
                                                          In((3, 1), 0.2, 1.0)], note="tensor"),
    C("clamp", lambda m, x: m.clamp(x, 0.5, 1.5), [V([0.0, 0.5, 1.0, 1.5, 2.0])],
      gradcheck=False, note="at-bounds"),
    C("clamp", lambda m, x: m.clamp(x, -1.0, 1.0), [()]),
    C("clamp", lambda m, x: m.clip(x, -1.0, 1.0), [(0, 2)], note="empty"),
    C("clamp_min", lambda m, x: m.clamp_min(x, 0.2), [(3, 4)]),
    C("clamp_max", lambda m, x: x.clamp_max(0.2), [S((3, 4))]),
    C("masked_fill", lambda m, x, k: x.masked_fill(k, 1.5), [(3, 4), B((3, 4))]),
    C("masked_fill", lambda m, x, k: m.masked_fill(x, k, -0.5), [T((4, 3)), B((3,))],
      note="broadcast-mask"),
    C("masked_fill", lambda m, x, k, v: x.masked_fill(k, v), [(2, 3), B((2, 3)), ()],
      note="0d-value-grad"),
    C("masked_fill", lambda m, x: x.masked_fill(x > 0, 0.0), [(0, 3)], note="empty"),
]

# ---------------------------------------------------------------------------------- reductions
REDUCTIONS = [
    C("sum", lambda m, x: x.sum(), [(3, 4)]),
    C("sum", lambda m, x: m.sum(x, 1), [(3, 4)]),
    C("sum", lambda m, x: x.sum(dim=(0, 2), keepdim=True), [(2, 3, 4)]),
    C("sum", lambda m, x: x.sum(-1), [T((3, 4))]),
    C("sum", lambda m, x: x.sum(0), [(0, 3)], note="empty"),
    C("sum", lambda m, x: x.sum(), [()], note="0d"),
    C("sum", lambda m, x: x.sum(dim=1, keepdim=True), [(2, 1, 3)], note="size1"),
    C("mean", lambda m, x: x.mean(), [(3, 4)]),
    C("mean", lambda m, x: m.mean(x, dim=(0, -1)), [(2, 3, 4)]),
    C("mean", lambda m, x: x.mean(1, keepdim=True), [S((3, 4))]),
    C("mean", lambda m, x: x.mean(0), [()]),
    C("prod", lambda m, x: x.prod(), [(2, 3)], low=0.5, high=1.5),
    C("prod", lambda m, x: m.prod(x, 1), [(3, 4)]),
    C("prod", lambda m, x: x.prod(0, keepdim=True), [T((3, 4))]),
    C("prod", lambda m, x: x.prod(1), [V([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0], [1.5, 2.0, 1.0]])],
      note="zeros"),
    C("prod", lambda m, x: x.prod(), [V([2.0, 0.0, 3.0])], note="zero-all"),
    C("max", lambda m, x: x.max(), [(3, 4)]),
    C("max", lambda m, x: m.max(x, 1), [(3, 4)], note="dim"),
    C("max", lambda m, x: x.max(0, keepdim=True), [T((4, 3))], note="keepdim"),
    C("max", lambda m, x: x.max(-1), [(2, 1, 3)]),
    C("max", lambda m, x: x.max(), [V([1.0, 3.0, 3.0, 2.0])], gradcheck=False, note="ties"),
    C("min", lambda m, x: x.min(), [(3, 4)]),
    C("min", lambda m, x: m.min(x, 0), [(3, 4)], note="dim"),
    C("min", lambda m, x: x.min(1, keepdim=True), [S((2, 4))], note="keepdim"),
    C("amax", lambda m, x: m.amax(x, (0, 2)), [(2, 3, 4)]),
    C("amax", lambda m, x: x.amax(1, keepdim=True), [(3, 4)]),
    C("amax", lambda m, x: x.amax(), [(3, 4)], note="all"),
    C("amax", lambda m, x: m.amax(x, 1), [V([[1.0, 4.0, 4.0], [2.0, 2.0, 2.0]])],
      gradcheck=False, note="ties"),
    C("amin", lambda m, x: m.amin(x, -1), [T((3, 4))]),
    C("amin", lambda m, x: x.amin((0, 1)), [(2, 3)]),
    C("var", lambda m, x: x.var(), [(3, 4)]),
    C("var", lambda m, x: m.var(x, 1), [(3, 4)]),
    C("var", lambda m, x: x.var(0, correction=0), [(3, 4)]),
    C("var", lambda m, x: x.var((0, 2), keepdim=True, unbiased=False), [(2, 3, 4)]),
    C("var", lambda m, x: x.var(1, correction=2), [T((5, 3))]),
    C("std", lambda m, x: x.std(), [(3, 4)]),
    C("std", lambda m, x: m.std(x, 0, keepdim=True), [(3, 4)]),
    C("std", lambda m, x: x.std(1, correction=0), [S((3, 4))]),
    C("var_mean", lambda m, x: m.var_mean(x, 1), [(3, 4)]),
    C("var_mean", lambda m, x: m.var_mean(x, (0, 1), correction=0), [(2, 3)]),
    C("std_mean", lambda m, x: m.std_mean(x, 0), [(3, 4)]),
    C("std_mean", lambda m, x: m.std_mean(x, 1, keepdim=True), [(3, 4)]),
    C("norm", lambda m, x: x.norm(), [(3, 4)]),
    C("norm", lambda m, x: m.norm(x, dim=1), [(3, 4)]),
    C("norm", lambda m, x: x.norm(p=1, dim=0), [(3, 4)]),
    C("norm", lambda m, x: x.norm(p=3, dim=1, keepdim=True), [T((4, 3))]),
    C("norm", lambda m, x: x.norm(p=float("inf")), [(3, 4)]),
    C("norm", lambda m, x: x.norm(p=0.5, dim=(0, 1)), [(2, 3)], low=0.2, high=2.0),
    C("norm", lambda m, x: x.norm(dim=1), [V([[0.0, 0.0], [3.0, 4.0]])], gradcheck=False,
      note="zero-row"),
    C("logsumexp", lambda m, x: m.logsumexp(x, 1), [(3, 4)]),
    C("logsumexp", lambda m, x: x.logsumexp((0, 2), keepdim=True), [(2, 3, 4)]),
    C("logsumexp", lambda m, x: x.logsumexp(0), [T((3, 4))], low=50.0, high=80.0,
      note="large"),
    C("logsumexp", lambda m, x: x.logsumexp(-1), [V([[-math.inf, -math.inf], [0.0, 1.0]])],
      gradcheck=False, forward_only=True, note="all-neg-inf"),
    C("cumsum", lambda m, x: m.cumsum(x, 1), [(3, 4)]),
    C("cumsum", lambda m, x: x.cumsum(0), [T((3, 4))]),
    C("cumsum", lambda m, x: x.cumsum(-1), [(5,)]),
    C("cumsum", lambda m, x: x.cumsum(0), [(0, 2)], note="empty"),
    C("cumprod", lambda m, x: m.cumprod(x, 1), [(3, 4)]),
    C("cumprod", lambda m, x: x.cumprod(0), [S((3, 2))]),
    C("cumprod", lambda m, x: x.cumprod(1),
      [V([[1.0, 0.0, 2.0, 3.0], [0.0, 2.0, 0.0, 1.5], [2.0, 1.0, 3.0, 0.0]])],
      note="zeros"),
    C("softmax", lambda m, x: m.softmax(x, 1), [(3, 4)]),
    C("softmax", lambda m, x: x.softmax(0), [T((3, 4))]),
    C("softmax", lambda m, x: x.softmax(-1), [(2, 3, 4)], low=50.0, high=90.0, note="large"),
    C("log_softmax", lambda m, x: m.log_softmax(x, 1), [(3, 4)]),
    C("log_softmax", lambda m, x: x.log_softmax(0), [S((3, 4))]),
    C("log_softmax", lambda m, x: x.log_softmax(-1), [(2, 5)], low=-90.0, high=90.0,
      note="wide"),
    C("nansum", lambda m, x: m.nansum(x), [(3, 4)]),
    C("nansum", lambda m, x: m.nansum(x, 1), [V([[1.0, math.nan, 2.0], [0.5, 1.5, math.nan]])],
      note="nan"),
    C("nanmean", lambda m, x: m.nanmean(x, 0), [(3, 4)]),
    C("nanmean", lambda m, x: m.nanmean(x, 1), [V([[1.0, math.nan, 2.0], [0.5, 1.5, math.nan]])],
      note="nan"),
    C("median", lambda m, x: x.median(), [(3, 5)]),
    C("median", lambda m, x: m.median(x, 1), [(3, 4)], note="dim"),
    C("median", lambda m, x: x.median(0, keepdim=True), [T((3, 4))], note="keepdim"),
    C("kthvalue", lambda m, x: m.kthvalue(x, 2, 1), [(3, 4)]),
    C("kthvalue", lambda m, x: x.kthvalue(3, 0, keepdim=True), [(4, 2)]),
    C("kthvalue", lambda m, x: x.kthvalue(1), [(5,)]),
]

# ---------------------------------------------------------------------------------- shape ops
SHAPE = [
    C("reshape", lambda m, x: x.reshape(4, 3), [(3, 4)]),
    C("reshape", lambda m, x: m.reshape(x, (-1,)), [T((3, 4))], note="noncontig"),
    C("reshape", lambda m, x: x.reshape(2, -1, 1), [(2, 3)]),
    C("reshape", lambda m, x: x.reshape(()), [(1,)], note="to-0d"),
    C("reshape", lambda m, x: x.reshape(0, 5), [(5, 0)], note="empty"),
    C("view", lambda m, x: x.view(6), [(2, 3)]),
    C("view", lambda m, x: x.view(-1, 2), [(2, 2, 2)]),
    C("view_as", lambda m, x, y: x.view_as(y), [(2, 3), (3, 2)], grad=(0,)),
    C("reshape_as", lambda m, x, y: x.reshape_as(y), [T((2, 3)), (6,)], grad=(0,)),
    C("flatten", lambda m, x: x.flatten(), [(2, 3, 2)]),
    C("flatten", lambda m, x: m.flatten(x, 1), [(2, 3, 2)]),
    C("flatten", lambda m, x: x.flatten(0, 1), [T((2, 3))]),
    C("flatten", lambda m, x: x.flatten(), [()], note="0d"),
    C("unflatten", lambda m, x: x.unflatten(1, (2, 3)), [(2, 6)]),
    C("unflatten", lambda m, x: m.unflatten(x, -1, (-1, 2)), [(3, 4)]),
    C("permute", lambda m, x: x.permute(2, 0, 1), [(2, 3, 4)]),
    C("permute", lambda m, x: m.permute(x, (1, 0)), [T((3, 4))]),
    C("permute", lambda m, x: x.permute(0, -1, 1), [(2, 3, 1)]),
    C("transpose", lambda m, x: x.transpose(0, 1), [(3, 4)]),
    C("transpose", lambda m, x: m.transpose(x, -1, 0), [(2, 3, 4)]),
    C("transpose", lambda m, x: x.transpose(0, 0), [(3,)], note="1d"),
    C("swapaxes", lambda m, x: m.swapaxes(x, 0, 2), [(2, 3, 4)]),
    C("t", lambda m, x: x.t(), [(3, 4)]),
    C("t", lambda m, x: m.t(x), [(3,)], note="1d"),
    C("t", lambda m, x: x.T, [S((3, 4))], note="T"),
    C("t", lambda m, x: x.mT, [(2, 3, 4)], note="mT"),
    C("squeeze", lambda m, x: x.squeeze(), [(1, 3, 1, 2)]),
    C("squeeze", lambda m, x: m.squeeze(x, 2), [(2, 3, 1)]),
    C("squeeze", lambda m, x: x.squeeze(0), [(2, 3)], note="noop"),
    C("squeeze", lambda m, x: x.squeeze((0, 2)), [(1, 3, 1)], note="tuple"),
    C("unsqueeze", lambda m, x: x.unsqueeze(0), [(2, 3)]),
    C("unsqueeze", lambda m, x: m.unsqueeze(x, -1), [T((2, 3))]),
    C("unsqueeze", lambda m, x: x.unsqueeze(0), [()], note="0d"),
    C("expand", lambda m, x: x.expand(4, 3), [(1, 3)]),
    C("expand", lambda m, x: x.expand(2, -1, 3), [(4, 1)]),
    C("expand", lambda m, x: x.expand(3, 2), [()], note="0d"),
    C("expand_as", lambda m, x, y: x.expand_as(y), [(3, 1), (3, 4)], grad=(0,)),
    C("broadcast_to", lambda m, x: m.broadcast_to(x, (2, 3, 4)), [(3, 1)]),
    C("broadcast_to", lambda m, x: x.broadcast_to((2, 3)), [(2, 3)], note="same"),
    C("repeat", lambda m, x: x.repeat(2, 3), [(2, 3)]),
    C("repeat", lambda m, x: x.repeat(2, 1, 2), [T((2, 3))], note="more-dims"),
    C("repeat", lambda m, x: x.repeat(0, 2), [(2, 3)], note="zero"),
    C("tile", lambda m, x: m.tile(x, (2,)), [(2, 3)]),
    C("tile", lambda m, x: x.tile((2, 1, 2)), [(3,)]),
    C("tile", lambda m, x: x.tile(2), [(2, 3)], note="int"),
    C("repeat_interleave", lambda m, x: x.repeat_interleave(2, dim=0), [(2, 3)]),
    C("repeat_interleave", lambda m, x: m.repeat_interleave(x, 2), [(2, 3)], note="flat"),
    C("repeat_interleave", lambda m, x: x.repeat_interleave(m.tensor([1, 0, 2]), dim=1),
      [(2, 3)], note="tensor-repeats"),
    C("flip", lambda m, x: x.flip(0), [(3, 4)]),
    C("flip", lambda m, x: m.flip(x, (0, 2)), [T((2, 3, 4))]),
    C("fliplr", lambda m, x: m.fliplr(x), [(3, 4)]),
    C("flipud", lambda m, x: m.flipud(x), [(3, 4)]),
    C("roll", lambda m, x: x.roll(1, 0), [(3, 4)]),
    C("roll", lambda m, x: m.roll(x, (1, -2), (0, 1)), [(3, 4)]),
    C("roll", lambda m, x: x.roll(5), [T((3, 4))], note="flat"),
    C("cat", lambda m, a, b: m.cat([a, b]), [(2, 3), (4, 3)]),
    C("cat", lambda m, a, b, c: m.cat((a, b, c), dim=-1), [(2, 3), T((2, 2)), S((2, 1))]),
    C("cat", lambda m, a, b: m.cat([a, b], 1), [(2, 0), (2, 3)], note="empty"),
    C("cat", lambda m, a, b: m.cat([a, b]), [(0,), (3,)], note="empty-1d"),
    C("cat", lambda m, a: m.cat([a]), [(2, 3)], note="single"),
    C("concat", lambda m, a, b: m.concat([a, b], 1), [(2, 3), (2, 2)]),
    C("stack", lambda m, a, b: m.stack([a, b]), [(2, 3), (2, 3)]),
    C("stack", lambda m, a, b, c: m.stack([a, b, c], dim=-1), [(3,), S((3,)), (3,)]),
    C("stack", lambda m, a, b: m.stack([a, b], -1), [(), ()], note="0d"),
    C("hstack", lambda m, a, b: m.hstack([a, b]), [(2, 3), (2, 1)]),
    C("hstack", lambda m, a, b: m.hstack([a, b]), [(3,), (2,)], note="1d"),
    C("vstack", lambda m, a, b: m.vstack([a, b]), [(3,), (2, 3)]),
    C("atleast_1d", lambda m, x: m.atleast_1d(x), [()]),
    C("atleast_1d", lambda m, x: m.atleast_1d(x), [(2, 3)]),
    C("split", lambda m, x: x.split(2), [(5, 3)]),
    C("split", lambda m, x: m.split(x, [1, 3], dim=1), [(2, 4)]),
    C("split", lambda m, x: x.split([2, 0, 1], 0), [T((3, 2))], note="zero-size"),
    C("chunk", lambda m, x: x.chunk(3), [(5, 2)]),
    C("chunk", lambda m, x: m.chunk(x, 2, -1), [(2, 4)]),
    C("tensor_split", lambda m, x: m.tensor_split(x, 3, 1), [(2, 7)]),
    C("tensor_split", lambda m, x: x.tensor_split([1, 4]), [(5, 2)], note="indices"),
    C("unbind", lambda m, x: x.unbind(), [(3, 2)]),
    C("unbind", lambda m, x: m.unbind(x, 1), [T((3, 2))]),
    C("narrow", lambda m, x: x.narrow(1, 1, 2), [(3, 4)]),
    C("narrow", lambda m, x: m.narrow(x, 0, -2, 2), [(4, 2)], note="neg-start"),
    C("narrow", lambda m, x: x.narrow(0, 1, 0), [(3, 2)], note="empty"),
    C("select", lambda m, x: x.select(1, 2), [(3, 4)]),
    C("select", lambda m, x: m.select(x, 0, -1), [T((3, 4))]),
    C("movedim", lambda m, x: x.movedim(0, 2), [(2, 3, 4)]),
    C("movedim", lambda m, x: m.movedim(x, (0, 1), (2, 0)), [(2, 3, 4)]),
    C("contiguous", lambda m, x: x.contiguous(), [T((3, 4))]),
    C("contiguous", lambda m, x: x.contiguous(), [(3, 4)], note="already"),
    C("tril", lambda m, x: x.tril(), [(4, 4)]),
    C("tril", lambda m, x: m.tril(x, -1), [(2, 3, 4)]),
    C("tril", lambda m, x: x.tril(1), [T((3, 4))]),
    C("triu", lambda m, x: x.triu(), [(4, 3)]),
    C("triu", lambda m, x: m.triu(x, 2), [(3, 5)]),
    C("diagonal", lambda m, x: x.diagonal(), [(3, 4)]),
    C("diagonal", lambda m, x: m.diagonal(x, 1, 0, 2), [(3, 2, 4)]),
    C("diagonal", lambda m, x: x.diagonal(-1, -2, -1), [T((2, 3, 3))]),
    C("diag", lambda m, x: m.diag(x), [(3,)]),
    C("diag", lambda m, x: x.diag(1), [(2,)], note="offset-embed"),
    C("diag", lambda m, x: x.diag(-1), [(3, 4)], note="extract"),
    C("diag_embed", lambda m, x: m.diag_embed(x), [(2, 3)]),
    C("diag_embed", lambda m, x: x.diag_embed(1, 0, 2), [T((3, 2))], note="offset-dims"),
    C("diag_embed", lambda m, x: m.diag_embed(x, -1, -1, 0), [(3,)], note="swapped"),
    C("trace", lambda m, x: m.trace(x), [(3, 3)]),
    C("trace", lambda m, x: x.trace(), [T((4, 3))]),
]

# ---------------------------------------------------------------------------------- indexing
INDEXING = [
    C("getitem", lambda m, x: x[1], [(3, 4)]),
    C("getitem", lambda m, x: x[1:3, ::2], [(4, 5)]),
    C("getitem", lambda m, x: x[-1, 1:], [T((3, 4))]),
    C("getitem", lambda m, x: x[None, :, None], [(2, 3)], note="none"),
    C("getitem", lambda m, x: x[..., 1], [(2, 3, 4)], note="ellipsis"),
    C("getitem", lambda m, x: x[0, ..., None, 1:], [(2, 3, 4)], note="ellipsis-none"),
    C("getitem", lambda m, x: x[m.tensor([0, 2, 0])], [(3, 4)], note="int-array"),
    C("getitem", lambda m, x: x[[1, 0, 1]], [(3, 2)], note="list"),
    C("getitem", lambda m, x: x[:, m.tensor([[0, 1], [2, 2]])], [(2, 3)], note="2d-index"),
    C("getitem", lambda m, x: x[m.tensor([0, 1]), m.tensor([2, 0])], [(2, 3)], note="pairs"),
    C("getitem", lambda m, x: x[m.tensor([1, 0]), :, m.tensor([0, 0])], [(2, 3, 2)],
      note="separated"),
    C("getitem", lambda m, x: x[x > 0], [(3, 4)], note="bool-mask"),
    C("getitem", lambda m, x, k: x[k], [(3, 4), B((3,))], note="bool-rows"),
    C("getitem", lambda m, x: x[1:1], [(3, 2)], note="empty"),
    C("getitem", lambda m, x: x[()], [()], note="0d"),
    C("setitem", lambda m, x, v: _setitem(x, (slice(0, 2), 1), v), [(3, 4), (2,)]),
    C("setitem", lambda m, x, v: _setitem(x, m.tensor([0, 2]), v), [(3, 2), (2,)],
      note="int-array"),
    C("setitem", lambda m, x, k, v: _setitem(x, k, v), [(3, 4), B((3, 4)), ()],
      note="mask-0d-value"),
    C("setitem", lambda m, x: _setitem(x, (Ellipsis, 0), 0.5), [T((3, 4))], note="scalar"),
    C("setitem", lambda m, x, v: _setitem(x, 1, v), [(3, 4), (1, 4)], note="broadcast"),
    C("gather", lambda m, x: x.gather(1, m.tensor([[0, 2], [1, 1], [3, 0]])), [(3, 4)]),
    C("gather", lambda m, x: m.gather(x, 0, m.tensor([[2, 1, 0]])), [T((3, 4))],
      note="smaller-index"),
    C("gather", lambda m, x: x.gather(-1, m.tensor([[[0], [1]]])), [(1, 2, 3)]),
    C("scatter", lambda m, x, s: x.scatter(1, m.tensor([[0, 2], [1, 3]]), s),
      [(2, 4), (2, 2)]),
    # torch has no backward for a source larger than the index: parity is forward only
    C("scatter", lambda m, x, s: m.scatter(x, 0, m.tensor([[1, 0, 2]]), s), [(3, 3), (2, 4)],
      forward_only=True, note="larger-src"),
    C("scatter", lambda m, x: x.scatter(1, m.tensor([[0], [2]]), 1.5), [(2, 3)], note="value"),
    C("scatter_add", lambda m, x, s: x.scatter_add(1, m.tensor([[0, 0, 1], [2, 2, 2]]), s),
      [(2, 3), (2, 3)]),
    C("scatter_add", lambda m, x, s: m.scatter_add(x, 0, m.tensor([[1, 0], [1, 1]]), s),
      [T((2, 3)), (3, 2)], forward_only=True, note="larger-src"),
    C("index_select", lambda m, x: x.index_select(0, m.tensor([2, 0, 2])), [(3, 4)]),
    C("index_select", lambda m, x: m.index_select(x, 1, m.tensor([1])), [S((2, 3))]),
    C("index_select", lambda m, x: x.index_select(0, m.tensor([], dtype=m.int64)), [(3, 2)],
      note="empty"),
    C("index_add", lambda m, x, s: x.index_add(0, m.tensor([0, 2, 0]), s), [(3, 2), (3, 2)]),
    C("index_add", lambda m, x, s: m.index_add(x, 1, m.tensor([1, 0]), s, alpha=2.0),
      [(2, 3), T((2, 2))], note="alpha"),
    C("take_along_dim", lambda m, x: m.take_along_dim(x, m.tensor([[0, 2], [1, 1]]), 1),
      [(2, 3)]),
    C("take_along_dim", lambda m, x: m.take_along_dim(x, m.tensor([[0, 1, 0]]), 0), [(2, 3)],
      note="broadcast"),
    C("take_along_dim", lambda m, x: x.take_along_dim(m.tensor([5, 0, 3])), [(2, 3)],
      note="flat"),
    C("masked_select", lambda m, x, k: x.masked_select(k), [(3, 4), B((3, 4))]),
    C("masked_select", lambda m, x, k: m.masked_select(x, k), [T((3, 4)), B((4,))],
      note="broadcast"),
    C("nonzero+getitem", lambda m, x: x[m.nonzero(x > 0, as_tuple=True)], [(3, 4)]),
]

# ---------------------------------------------------------------------------------- linalg
LINALG = [
    C("matmul", lambda m, a, b: a @ b, [(2, 3), (3, 4)]),
    C("matmul", lambda m, a, b: m.matmul(a, b), [(3,), (3,)], note="1d-1d"),
    C("matmul", lambda m, a, b: a @ b, [(3,), (3, 2)], note="1d-2d"),
    C("matmul", lambda m, a, b: a @ b, [(2, 3), (3,)], note="2d-1d"),
    C("matmul", lambda m, a, b: a @ b, [(2, 1, 2, 3), (4, 3, 2)], note="batch-broadcast"),
    C("matmul", lambda m, a, b: a @ b, [(2, 2, 3), (3,)], note="3d-1d"),
    C("matmul", lambda m, a, b: a @ b, [(3,), (2, 3, 2)], note="1d-3d"),
    C("matmul", lambda m, a, b: a @ b, [T((3, 2)), S((2, 3))], note="noncontig"),
    C("matmul", lambda m, a, b: a @ b, [(2, 0), (0, 3)], note="empty-k"),
    C("mm", lambda m, a, b: m.mm(a, b), [(2, 3), (3, 2)]),
    C("mm", lambda m, a, b: a.mm(b), [T((2, 3)), (3, 1)]),
    C("bmm", lambda m, a, b: m.bmm(a, b), [(2, 3, 4), (2, 4, 2)]),
    C("mv", lambda m, a, v: m.mv(a, v), [(2, 3), (3,)]),
    C("dot", lambda m, a, b: m.dot(a, b), [(4,), (4,)]),
    C("dot", lambda m, a, b: a.dot(b), [S((3,)), (3,)]),
    C("vdot", lambda m, a, b: m.vdot(a, b), [(4,), (4,)]),
    C("outer", lambda m, a, b: m.outer(a, b), [(3,), (2,)]),
    C("addmm", lambda m, c, a, b: m.addmm(c, a, b), [(2, 2), (2, 3), (3, 2)]),
    C("addmm", lambda m, c, a, b: m.addmm(c, a, b, beta=0.5, alpha=2.0), [(2,), (2, 3), (3, 2)],
      note="alpha-beta"),
    C("addmm", lambda m, a, b: m.addmm(m.full((2, 1), math.nan), a, b, beta=0),
      [(2, 3), (3, 2)], note="beta0-ignores-nan"),
    C("einsum", lambda m, a, b: m.einsum("ij,jk->ik", a, b), [(2, 3), (3, 4)]),
    C("einsum", lambda m, a, b: m.einsum("bij,bjk->bik", a, b), [(2, 2, 3), (2, 3, 2)]),
    C("einsum", lambda m, a, b: m.einsum("i,j->ij", a, b), [(3,), (2,)], note="outer"),
    C("einsum", lambda m, a, b: m.einsum("i,i->", a, b), [(3,), (3,)], note="dot"),
    C("einsum", lambda m, a: m.einsum("ij->ji", a), [(2, 3)], note="transpose"),
    C("einsum", lambda m, a: m.einsum("ij->", a), [T((2, 3))], note="sum"),
    C("einsum", lambda m, a, b: m.einsum("...ij,...jk", a, b), [(2, 2, 3), (3, 2)],
      note="ellipsis"),
    C("einsum", lambda m, a, b, c: m.einsum("ij,jk,kl->il", a, b, c), [(2, 3), (3, 2), (2, 2)],
      note="three"),
    C("einsum", lambda m, a, b: m.einsum("ij,kj->ik", a, b), [(2, 3), (4, 3)], note="implicit"),
    C("einsum", lambda m, a: m.einsum("ii->i", a), [(3, 3)], note="diagonal"),
    C("einsum", lambda m, a: m.einsum("ii", a), [(3, 3)], note="trace"),
    C("einsum", lambda m, a, b: m.einsum("bi,i->b", a, b), [(2, 3), (3,)], note="mv"),
    C("tensordot", lambda m, a, b: m.tensordot(a, b, 1), [(2, 3), (3, 4)]),
    C("tensordot", lambda m, a, b: m.tensordot(a, b, dims=([0, 2], [1, 0])), [(2, 3, 4),
                                                                               (4, 2)]),
    C("tensordot", lambda m, a, b: m.tensordot(a, b, dims=0), [(2,), (3,)], note="outer"),
    C("linalg.norm", lambda m, x: m.linalg.norm(x), [(3, 4)]),
    C("linalg.norm", lambda m, x: m.linalg.norm(x, dim=1), [(3, 4)], note="vector-dim"),
    C("linalg.norm", lambda m, x: m.linalg.norm(x, ord=1), [(3, 4)], note="matrix-1"),
    C("linalg.norm", lambda m, x: m.linalg.norm(x, ord=float("inf")), [T((3, 4))],
      note="matrix-inf"),
    C("linalg.norm", lambda m, x: m.linalg.norm(x, ord=3), [(5,)], note="vector-3"),
    C("linalg.norm", lambda m, x: m.linalg.vector_norm(x, ord=1, dim=(0, 1)), [(2, 3)],
      note="vector_norm"),
    C("linalg.norm", lambda m, x: m.linalg.matrix_norm(x), [(2, 3, 4)], note="matrix_norm"),
    # symmetric positive-definite inputs built in the case (the gradient is symmetrized)
    C("linalg.cholesky", lambda m, a: m.linalg.cholesky(a @ a.mT + m.eye(3) * 3), [(3, 3)]),
    C("linalg.cholesky", lambda m, a: m.linalg.cholesky(a @ a.mT + m.eye(3), upper=True),
      [(2, 3, 3)], note="upper-batch"),
    C("linalg.cholesky", lambda m, a: m.linalg.cholesky(a + a.mT + m.eye(3) * 9), [T((3, 3))],
      note="noncontig"),
    C("linalg.solve_triangular",
      lambda m, a, b: m.linalg.solve_triangular(a + m.eye(3) * 3, b, upper=False),
      [(3, 3), (3, 2)]),
    C("linalg.solve_triangular",
      lambda m, a, b: m.linalg.solve_triangular(a + m.eye(3) * 3, b, upper=True, left=False),
      [(2, 3, 3), (4, 3)], note="right-upper-broadcast"),
    C("linalg.solve_triangular",
      lambda m, a, b: m.linalg.solve_triangular(a, b, upper=False, unitriangular=True),
      [T((3, 3)), (2, 3, 1)], note="unit"),
    C("linalg.solve_triangular",
      lambda m, a, b: m.linalg.solve_triangular(a, b, upper=True), [(0, 0), (0, 2)],
      note="empty"),
]

# ---------------------------------------------------------------------------------- sorting
SORTING = [
    C("sort", lambda m, x: x.sort(), [(3, 4)]),
    C("sort", lambda m, x: m.sort(x, 0, descending=True), [T((3, 4))]),
    C("sort", lambda m, x: x.sort(stable=True), [V([3.0, 1.0, 2.0, 1.0])], gradcheck=False,
      note="ties-stable"),
    C("topk", lambda m, x: x.topk(2), [(3, 4)]),
    C("topk", lambda m, x: m.topk(x, 2, dim=0, largest=False), [(3, 4)]),
    C("topk", lambda m, x: x.topk(0), [(2, 3)], note="k0"),
    C("topk", lambda m, x: x.topk(2), [V([1.0, math.nan, 3.0, -1.0])], gradcheck=False,
      note="nan-largest"),
    C("sort", lambda m, x: x.sort(descending=True), [V([1.0, math.nan, 3.0])], gradcheck=False,
      note="nan-desc"),
    C("sort", lambda m, x: x.sort(), [V([1.0, math.nan, 3.0])], gradcheck=False, note="nan"),
]

# ---------------------------------------------------------------------------------- edge shapes
EDGES = [
    C("sum", lambda m, x: x.sum(0), [()], note="0d-dim"),
    C("mean", lambda m, x: x.mean(-1, keepdim=True), [()], note="0d-dim"),
    C("prod", lambda m, x: x.prod(0), [()], note="0d-dim"),
    C("max", lambda m, x: x.max(0), [()], note="0d-dim"),
    C("amax", lambda m, x: x.amax(0), [()], note="0d-dim"),
    C("softmax", lambda m, x: x.softmax(0), [()], note="0d"),
    C("log_softmax", lambda m, x: x.log_softmax(-1), [()], note="0d"),
    C("cumsum", lambda m, x: x.cumsum(0), [()], note="0d"),
    C("cumprod", lambda m, x: x.cumprod(0), [()], note="0d"),
    C("logsumexp", lambda m, x: x.logsumexp(0), [()], note="0d"),
    C("norm", lambda m, x: x.norm(), [()], note="0d"),
    C("sort", lambda m, x: x.sort(), [()], note="0d"),
    C("topk", lambda m, x: x.topk(1), [()], note="0d"),
    C("mean", lambda m, x: x.mean(0), [(0, 3)], note="empty-nan"),
    C("prod", lambda m, x: x.prod(0), [(0, 3)], note="empty"),
    C("max", lambda m, x: x.max(1), [(0, 3)], note="empty-rows"),
    C("amax", lambda m, x: x.amax(1), [(0, 3)], note="empty-rows"),
    C("softmax", lambda m, x: x.softmax(1), [(0, 3)], note="empty"),
    C("log_softmax", lambda m, x: x.log_softmax(0), [(2, 0)], note="empty"),
    C("logsumexp", lambda m, x: x.logsumexp(1), [(0, 3)], note="empty-rows"),
    C("var", lambda m, x: x.var(1), [(0, 3)], note="empty-rows"),
    C("cumprod", lambda m, x: x.cumprod(1), [(0, 3)], note="empty"),
    C("sort", lambda m, x: x.sort(0), [(0, 2)], note="empty"),
    C("matmul", lambda m, a, b: a @ b, [(0, 3), (3, 2)], note="empty-rows"),
    C("matmul", lambda m, a, b: a @ b, [(2, 1, 3), (1, 3, 2)], note="batch-size1"),
    C("stack", lambda m, a, b: m.stack([a, b], 1), [(0, 2), (0, 2)], note="empty"),
    C("transpose", lambda m, x: x.transpose(0, 1), [(0, 3)], note="empty"),
    C("expand", lambda m, x: x.expand(0, 3), [(1, 3)], note="to-empty"),
    C("getitem", lambda m, x: x[m.tensor([-1, 0, -1])], [(3, 2)], note="neg-index"),
    C("getitem", lambda m, x: x[:, 1::2], [T((3, 5))], note="step"),
    C("getitem", lambda m, x: x[m.tensor([], dtype=m.int64)], [(3, 2)], note="empty-index"),
    C("gather", lambda m, x: x.gather(-2, m.tensor([[1, 0], [1, 1]])), [S((2, 2))],
      note="neg-dim"),
    C("index_select", lambda m, x: x.index_select(-1, m.tensor([2, 0])), [(2, 3)],
      note="neg-dim"),
    C("cat", lambda m, a, b: m.cat([a, b], 0), [(0, 3), (2, 3)], note="empty-2d"),
    C("where", lambda m, c, a, b: m.where(c, a, b), [B(()), (), ()], note="0d"),
    C("mul", lambda m, a, b: a * b, [(1, 3, 1), (2, 1, 4)], note="both-broadcast"),
    C("div", lambda m, a, b: a / b, [(), ()], low=0.5, high=2.0, note="0d-0d"),
]

# ---------------------------------------------------------------------------------- in place
INPLACE = [
    C("add_", lambda m, x, y: x.clone().add_(y), [(2, 3), (3,)]),
    C("mul_", lambda m, x, y: x.clone().mul_(y), [(2, 3), (2, 3)]),
    C("div_", lambda m, x, y: (x * 1.0).div_(y), [(2, 3), ()], low=0.5, high=2.0),
    C("sub_", lambda m, x: x.clone().sub_(x, alpha=0.5), [(3,)]),
    C("exp_", lambda m, x: x.clone().exp_(), [(2, 3)]),
    C("clamp_", lambda m, x: x.clone().clamp_(min=-0.5, max=0.5), [(2, 3)]),
    C("masked_fill_", lambda m, x, k: x.clone().masked_fill_(k, 0.0), [(2, 3), B((2, 3))]),
    C("copy_", lambda m, x, y: m.zeros(2, 3, dtype=x.dtype).copy_(y) * x, [(2, 3), (3,)]),
    C("div_", lambda m, x: (x * 1.0).div_(0.3, rounding_mode="floor"), [(2, 3)],
      forward_only=True, note="rounding"),
    C("t_", lambda m, x: (x * 1.0).t_(), [(2, 3)]),
    C("transpose_", lambda m, x: (x * 1.0).transpose_(0, 2), [(2, 3, 1)]),
    C("unsqueeze_", lambda m, x: (x * 1.0).unsqueeze_(1), [T((3, 2))]),
    C("squeeze_", lambda m, x: (x * 1.0).squeeze_(), [(1, 3, 1)]),
    C("swapaxes_", lambda m, x: (x * 1.0).swapaxes_(0, 1) * 2.0, [(2, 3)]),
]

CASES = (UNARY + BINARY + SELECTION + REDUCTIONS + SHAPE + INDEXING + LINALG + SORTING + EDGES
         + INPLACE)

# ---------------------------------------------------------------------------------- no gradient
NONDIFF_CASES = [
    C("eq", lambda m, a, b: a == b, [I((3, 4), 0, 3), I((4,), 0, 3)]),
    C("eq", lambda m, a: m.eq(a, 1), [I((3,), 0, 3)], note="scalar"),
    C("ne", lambda m, a, b: m.ne(a, b), [I((2, 3), 0, 2), I((2, 3), 0, 2)]),
    C("lt", lambda m, a, b: a < b, [(2, 3), (3,)]),
    C("le", lambda m, a: m.le(a, 0.5), [(2, 3)]),
    C("gt", lambda m, a, b: a > b, [(3, 1), T((3, 2))]),
    C("ge", lambda m, a, b: m.ge(a, b), [I((3,), 0, 3), (3,)], note="int-float"),
    C("logical_and", lambda m, a, b: m.logical_and(a, b), [B((2, 3)), B((3,))]),
    C("logical_or", lambda m, a, b: m.logical_or(a, b), [B((2, 3)), I((2, 3), 0, 2)]),
    C("logical_xor", lambda m, a, b: m.logical_xor(a, b), [B((4,)), B((4,))]),
    C("logical_not", lambda m, a: m.logical_not(a), [I((2, 3), 0, 2)]),
    C("logical_not", lambda m, a: ~a, [B((2, 3))], note="invert"),
    C("bitwise_and", lambda m, a, b: a & b, [I((3,), 0, 8), I((3,), 0, 8)]),
    C("bitwise_or", lambda m, a, b: m.bitwise_or(a, b), [I((3,), 0, 8), I((2, 1), 0, 8)]),
    C("bitwise_xor", lambda m, a, b: a ^ b, [B((3,)), B((3,))]),
    C("bitwise_not", lambda m, a: ~a, [I((2, 3), -4, 4)]),
    C("bitwise_left_shift", lambda m, a, b: m.bitwise_left_shift(a, b), [I((3,), 0, 9),
                                                                         I((3,), 0, 4)]),
    C("bitwise_left_shift", lambda m, a: a << 2, [I((3,), -9, 9)], note="dunder"),
    C("bitwise_right_shift", lambda m, a, b: a >> b, [I((2, 3), 0, 99), I((3,), 0, 4)]),
    C("bitwise_right_shift", lambda m, a: 64 >> a, [I((3,), 0, 5)], note="reflected"),
    C("isin", lambda m, a, b: m.isin(a, b), [I((3, 4), 0, 6), I((3,), 0, 6)]),
    C("isin", lambda m, a: m.isin(a, m.tensor([1, 3]), invert=True), [I((5,), 0, 4)],
      note="invert"),
    C("where", lambda m, c: m.where(c, 1.0, 0.0), [B((2, 3))], note="two-floats"),
    C("where", lambda m, c: m.where(c, 2, -1), [B((2, 3))], note="two-ints"),
    C("isnan", lambda m, x: m.isnan(x), [V([1.0, math.nan, math.inf])]),
    C("isinf", lambda m, x: x.isinf(), [V([1.0, math.nan, -math.inf])]),
    C("isfinite", lambda m, x: m.isfinite(x), [V([1.0, math.nan, math.inf])]),
    C("isposinf", lambda m, x: m.isposinf(x), [V([1.0, math.inf, -math.inf])]),
    C("isneginf", lambda m, x: m.isneginf(x), [V([1.0, math.inf, -math.inf])]),
    C("signbit", lambda m, x: m.signbit(x), [V([1.0, -0.0, -2.0, 0.0])]),
    C("isclose", lambda m, a, b: m.isclose(a, b + 1e-7), [(3,), (3,)]),
    C("isclose", lambda m, a: m.isclose(a, a * 0 + m.tensor(math.nan), equal_nan=True),
      [V([1.0, math.nan])], note="nan"),
    C("allclose", lambda m, a: m.allclose(a, a + 1e-9), [(3,)]),
    C("equal", lambda m, a, b: m.equal(a, b), [(2, 3), (2, 3)]),
    C("equal", lambda m, a: m.equal(a, a.clone()), [(2, 3)], note="same"),
    C("argmax", lambda m, x: x.argmax(), [(3, 4)]),
    C("argmax", lambda m, x: m.argmax(x, 1), [T((3, 4))]),
    C("argmax", lambda m, x: x.argmax(0, keepdim=True), [(3, 4)]),
    C("argmax", lambda m, x: x.argmax(), [V([1.0, 3.0, 3.0])], note="ties-first"),
    C("argmax", lambda m, x: x.argmax(keepdim=True), [(3, 4)], note="keepdim-all"),
    C("argmin", lambda m, x: m.argmin(x, keepdim=True), [(2, 1, 3)], note="keepdim-all"),
    C("argmin", lambda m, x: m.argmin(x, -1), [(3, 4)]),
    C("argmin", lambda m, x: x.argmin(), [I((5,), 0, 10)], note="int"),
    C("argsort", lambda m, x: x.argsort(), [(3, 4)]),
    C("argsort", lambda m, x: m.argsort(x, 0, descending=True), [(3, 4)]),
    C("argsort", lambda m, x: x.argsort(stable=True), [V([2.0, 1.0, 2.0, 1.0])], note="stable"),
    C("unique", lambda m, x: m.unique(x), [I((10,), 0, 4)]),
    C("unique", lambda m, x: x.unique(return_inverse=True, return_counts=True), [I((3, 4), 0, 5)]),
    C("unique", lambda m, x: m.unique(x, dim=0), [V([[1.0, 2.0], [0.0, 1.0], [1.0, 2.0]])],
      note="dim"),
    C("unique", lambda m, x: m.unique(x, return_inverse=True, return_counts=True, dim=1),
      [V([[1.0, 2.0, 1.0], [0.0, 1.0, 0.0]])], note="dim-inverse"),
    C("nonzero", lambda m, x: m.nonzero(x), [I((3, 4), 0, 2)]),
    C("nonzero", lambda m, x: x.nonzero(as_tuple=True), [I((3, 4), 0, 2)], note="tuple"),
    C("nonzero", lambda m, x: m.nonzero(x), [I((0, 3), 0, 2)], note="empty"),
    C("argwhere", lambda m, x: m.argwhere(x), [B((2, 3))]),
    C("all", lambda m, x: x.all(), [B((2, 3))]),
    C("all", lambda m, x: m.all(x, 1), [I((2, 3), 0, 2)]),
    C("any", lambda m, x: x.any(0, keepdim=True), [B((2, 3))]),
    C("any", lambda m, x: m.any(x), [(2, 3)]),
    C("count_nonzero", lambda m, x: m.count_nonzero(x), [I((3, 4), 0, 2)]),
    C("count_nonzero", lambda m, x: m.count_nonzero(x, 0), [I((3, 4), 0, 2)]),
    C("floor_divide", lambda m, a, b: a // b, [I((3, 4), -9, 9), I((4,), 1, 4)], note="int"),
    C("remainder", lambda m, a, b: a % b, [I((3, 4), -9, 9), I((4,), 1, 4)], note="int"),
    C("div", lambda m, a, b: m.div(a, b, rounding_mode="trunc"), [I((3, 4), -9, 9),
                                                                   I((4,), 1, 4)], note="int"),
    C("div", lambda m, a, b: a / b, [I((3,), -9, 9), I((3,), 1, 4)], note="int-true"),
    C("sum", lambda m, x: x.sum(1), [I((3, 4), -5, 5)], note="int"),
    C("sum", lambda m, x: x.sum(), [B((3, 4))], note="bool"),
    C("prod", lambda m, x: x.prod(0), [I((3, 4), -3, 3)], note="int"),
    C("cumsum", lambda m, x: x.cumsum(0), [I((3, 4), -3, 3)], note="int"),
    C("max", lambda m, x: x.max(1), [I((3, 4), -3, 3)], note="int"),
    C("abs", lambda m, x: x.abs(), [I((3, 4), -3, 3)], note="int"),
    C("neg", lambda m, x: -x, [I((3,), -3, 3)], note="int"),
    C("sqrt", lambda m, x: x.sqrt(), [I((3,), 0, 9)], note="int-promotes"),
    C("pow", lambda m, x: x ** 2, [I((3,), -3, 3)], note="int"),
    C("sort", lambda m, x: x.sort(descending=True), [I((6,), 0, 3)], note="int-stable"),
    C("clamp", lambda m, x: x.clamp(0, 2), [I((2, 3), -3, 5)], note="int"),
    C("where", lambda m, c, a: m.where(c, a, 0), [B((2, 3)), I((2, 3), 0, 9)], note="int"),
    C("mean", lambda m, x: x.mean(), [(0,)], note="empty-nan"),
]


def covered_ops(cases=None):
    """The op names the table covers."""
    return sorted({c.op for c in (cases if cases is not None else CASES)})


if __name__ == "__main__":
    import glob
    import importlib
    import os
    import sys

    import framework  # noqa: F401
    from framework.ops.registry import OPS
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    tables = [sys.modules[__name__]] + [
        importlib.import_module(os.path.basename(p)[:-3])
        for p in sorted(glob.glob(os.path.join(here, "optable_*.py")))]
    for t in tables:
        cases, nondiff = getattr(t, "CASES", []), getattr(t, "NONDIFF_CASES", [])
        print(f"{t.__name__}: {len(cases)} differentiable cases ({sum(c.gradcheck for c in cases)}"
              f" gradcheck, {sum(c.gg for c in cases)} gradgradcheck, "
              f"{sum(c.parity for c in cases)} torch parity of which "
              f"{sum(c.parity and not c.forward_only for c in cases)} with backward), "
              f"{len(nondiff)} forward-only cases, ops: {len(covered_ops(cases + nondiff))}")
    all_cases = [c for t in tables for c in getattr(t, "CASES", [])]
    diff = {k for k, v in OPS.items() if v["differentiable"]}
    cov = {c.op for c in all_cases if c.gradcheck}
    print(f"registered differentiable ops: {len(diff)}, with a gradchecked case: "
          f"{len(diff & cov)}; uncovered: {sorted(diff - cov)}")
