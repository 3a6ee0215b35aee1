"""PyTorch-style printing of tensors: `tensor([1., 2.], grad_fn=<MulBackward0>)`.

The layout rules are PyTorch's, so printed output reads (and diffs) the same: every element
is right-aligned to one width; floats print in integer mode (`1.`), fixed mode (`1.5000`) or
scientific mode (`1.0000e-05`) chosen from the nonzero finite values; tensors larger than
`threshold` elements show `edgeitems` items at each end of every dim; lines wrap at
`linewidth`; the dtype is shown unless it is a default one.
"""
from __future__ import annotations

import math

import numpy as np

PRINT_OPTS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None):
    if profile == "default":
        PRINT_OPTS.update(precision=4, threshold=1000, edgeitems=3, linewidth=80)
    elif profile == "short":
        PRINT_OPTS.update(precision=2, threshold=1000, edgeitems=2, linewidth=80)
    elif profile == "full":
        PRINT_OPTS.update(precision=4, threshold=math.inf, edgeitems=3, linewidth=80)
    for k, v in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                 ("linewidth", linewidth)):
        if v is not None:
            PRINT_OPTS[k] = v
    PRINT_OPTS["sci_mode"] = sci_mode


class _Formatter:
    """Chooses the number format and the common width from the values that will be shown."""

    def __init__(self, arr: np.ndarray):
        self.floating = arr.dtype.kind == "f"
        self.int_mode, self.sci_mode, self.width = True, False, 1
        prec = PRINT_OPTS["precision"]
        if not self.floating:
            if arr.size:
                self.width = max(len(str(v)) for v in arr.reshape(-1).tolist())
            return
        vals = arr[np.isfinite(arr) & (arr != 0)]
        if vals.size:
            mags = np.abs(vals)
            lo, hi = float(mags.min()), float(mags.max())
            self.int_mode = bool(np.all(vals == np.ceil(vals)))
            if PRINT_OPTS["sci_mode"] is not None:
                self.sci_mode = PRINT_OPTS["sci_mode"]
            elif self.int_mode:
                self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8
            else:
                self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
            items = vals.tolist()
            if self.sci_mode:
                self.width = max(len(f"{v:.{prec}e}") for v in items)
            elif self.int_mode:
                self.width = max(len(f"{v:.0f}") + 1 for v in items)
            else:
                self.width = max(len(f"{v:.{prec}f}") for v in items)
        elif PRINT_OPTS["sci_mode"] is not None:
            self.sci_mode = PRINT_OPTS["sci_mode"]

    def format(self, v) -> str:
        if self.floating:
            prec = PRINT_OPTS["precision"]
            if self.sci_mode:
                s = f"{v:{self.width}.{prec}e}"
            elif self.int_mode:
                s = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
            else:
                s = f"{v:.{prec}f}"
        else:
            s = str(v)
        return s.rjust(self.width)


class _ComplexFormatter:
    """PyTorch's complex printing: real and imaginary parts each get a formatter of their own
    (chosen from their values); an element prints as real part, sign, |imaginary part|, 'j'."""

    def __init__(self, arr: np.ndarray):
        self.real, self.imag = _Formatter(arr.real), _Formatter(arr.imag)
        self.width = self.real.width + self.imag.width + 1

    def format(self, v) -> str:
        re_s = self.real.format(v.real)
        im_s = (self.imag.format(v.imag) + "j").lstrip()
        return re_s + (im_s if im_s[0] in "+-" else "+" + im_s)


def _formatter(arr: np.ndarray):
    return _ComplexFormatter(arr) if arr.dtype.kind == "c" else _Formatter(arr)


def _summarized(arr, edge):
    """The elements that a summarized print shows (edge items of every dim)."""
    if arr.ndim == 0:
        return arr
    if arr.shape[0] > 2 * edge:
        arr = np.concatenate([arr[:edge], arr[arr.shape[0] - edge:]])
    if arr.ndim == 1:
        return arr
    return np.stack([_summarized(a, edge) for a in arr]) if len(arr) else arr


def _vector_str(arr, indent, summarize, fmt):
    edge, width = PRINT_OPTS["edgeitems"], fmt.width + 2
    per_line = max(1, int(math.floor((PRINT_OPTS["linewidth"] - indent) / width)))
    if summarize and arr.shape[0] > 2 * edge:
        data = ([fmt.format(v) for v in arr[:edge].tolist()] + [" ..."]
                + [fmt.format(v) for v in arr[arr.shape[0] - edge:].tolist()])
    else:
        data = [fmt.format(v) for v in arr.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _array_str(arr, indent, summarize, fmt):
    if arr.ndim == 0:
        return fmt.format(arr.item())
    if arr.ndim == 1:
        return _vector_str(arr, indent, summarize, fmt)
    edge, n = PRINT_OPTS["edgeitems"], arr.shape[0]
    if summarize and n > 2 * edge:
        rows = ([_array_str(arr[i], indent + 1, summarize, fmt) for i in range(edge)] + ["..."]
                + [_array_str(arr[i], indent + 1, summarize, fmt) for i in range(n - edge, n)])
    else:
        rows = [_array_str(arr[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (arr.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _host_array(t) -> np.ndarray:
    arr = t._data
    if isinstance(arr, np.generic):
        arr = np.asarray(arr)
    elif not isinstance(arr, np.ndarray):
        arr = arr.get()
    if arr.dtype.kind == "f" or t.dtype.name == "bfloat16":
        arr = arr.astype(np.float64)
    elif arr.dtype.kind == "c":
        arr = arr.astype(np.complex128)
    return arr


def format_tensor(t, prefix: str = "tensor(") -> str:
    from . import _dtype as D
    arr = _host_array(t)
    indent = len(prefix)
    suffixes = []
    if t.device.type != "cpu":
        suffixes.append(f"device='{t.device}'")
    default = D.get_default_dtype()
    if arr.size == 0:
        if arr.ndim != 1:
            suffixes.append(f"size={tuple(arr.shape)}")
        if t.dtype is not default:
            suffixes.append(f"dtype=framework.{t.dtype.name}")
        body = "[]"
    else:
        default_complex = D.complex128 if default is D.float64 else D.complex64
        if t.dtype not in (default, D.int64, D.bool, default_complex):
            suffixes.append(f"dtype=framework.{t.dtype.name}")
        summarize = arr.size > PRINT_OPTS["threshold"]
        shown = _summarized(arr, PRINT_OPTS["edgeitems"]) if summarize else arr
        body = _array_str(arr, indent, summarize, _formatter(shown))
    if t._grad_fn is not None:
        suffixes.append(f"grad_fn=<{t._grad_fn.name()}>")
    elif t._requires_grad:
        suffixes.append("requires_grad=True")
    out = [prefix + body]
    last = len(out[0]) - out[0].rfind("\n") + 1
    for s in suffixes:  # a suffix that would pass the line width goes on its own line
        if last + len(s) + 2 > PRINT_OPTS["linewidth"]:
            out.append(",\n" + " " * indent + s)
            last = indent + len(s)
        else:
            out.append(", " + s)
            last += len(s) + 2
    return "".join(out) + ")"
