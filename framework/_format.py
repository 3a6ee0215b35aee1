"""PyTorch-style printing of tensors: `tensor([1., 2.], grad_fn=<MulBackward0>)`."""
from __future__ import annotations

import numpy as np

PRINT_OPTS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None):
    if profile == "default":
        PRINT_OPTS.update(precision=4, threshold=1000, edgeitems=3, linewidth=80)
    elif profile == "short":
        PRINT_OPTS.update(precision=2, threshold=1000, edgeitems=2, linewidth=80)
    elif profile == "full":
        PRINT_OPTS.update(precision=4, threshold=float("inf"), edgeitems=3, linewidth=80)
    for k, v in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                 ("linewidth", linewidth)):
        if v is not None:
            PRINT_OPTS[k] = v
    PRINT_OPTS["sci_mode"] = sci_mode


def _float_formatter(arr):
    finite = arr[np.isfinite(arr)] if arr.size else arr
    prec = PRINT_OPTS["precision"]
    if finite.size == 0:
        return lambda v: _special(v) or f"{v:.{prec}f}"
    amax = np.abs(finite).max()
    nz = np.abs(finite[finite != 0])
    amin = nz.min() if nz.size else 0.0
    integral = bool(np.all(finite == np.round(finite)))
    sci = PRINT_OPTS["sci_mode"]
    if sci is None:
        sci = amax >= 1e8 or (amin > 0 and amin < 1e-4) or (amin > 0 and amax / amin > 1e3 and
                                                             not integral)
    if sci:
        return lambda v: _special(v) or f"{v:.{prec}e}"
    if integral:
        return lambda v: _special(v) or f"{v:.0f}."
    return lambda v: _special(v) or f"{v:.{prec}f}"


def _special(v):
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def format_tensor(t) -> str:
    arr = t._data
    if isinstance(arr, np.generic):
        arr = np.asarray(arr)
    elif not isinstance(arr, np.ndarray):
        arr = arr.get()
    dt = t.dtype
    suffix = []
    if t.device.type != "cpu":
        suffix.append(f"device='{t.device}'")
    default_dtypes = ("float32", "int64", "bool")
    if dt.name not in default_dtypes or (arr.size == 0 and dt.name != "float32"):
        suffix.append(f"dtype=framework.{dt.name}")
    if arr.size == 0 and arr.ndim != 1:
        suffix.insert(0, f"size={tuple(arr.shape)}")
    if t._grad_fn is not None:
        suffix.append(f"grad_fn=<{t._grad_fn.name()}>")
    elif t._requires_grad:
        suffix.append("requires_grad=True")

    kw = {}
    if arr.dtype.kind == "f" or dt.name == "bfloat16":
        arr = arr.astype(np.float64)
        kw["formatter"] = {"float_kind": _float_formatter(arr)}
    elif arr.dtype.kind == "b":
        kw["formatter"] = {"bool": lambda v: "True" if v else "False"}
    body = np.array2string(arr, separator=", ", prefix="tensor(",
                           threshold=PRINT_OPTS["threshold"], edgeitems=PRINT_OPTS["edgeitems"],
                           max_line_width=PRINT_OPTS["linewidth"], **kw)
    if suffix:
        return "tensor(" + body + ", " + ", ".join(suffix) + ")"
    return "tensor(" + body + ")"
