"""Register-blocked direct convolution kernels (CPU, numba), generated per block shape.

The layout is channels-last: the input is a flat (pixels, C) array, the output a flat
(pixels, O) array, the weights (T, C, O) for T kernel taps (last spatial dim fastest). The
output is computed one row (a run along the last spatial dim) at a time. Padding is never
materialised (a padded copy of each input would be one more pass over memory per layer):
`rbase[r, j]` is the input pixel where tap row j (the taps sharing all but the last kernel
index) of output row r reads column 0, or -1 when that input row lies in the padding, and tap
t reads column p * sw + tcol[t] for output column p (sw: the stride along the last dim),
inside the input for p in [wlo[t], whi[t]).

    forward: out[r*wo + p, :] = bias + sum over taps t and channels c of
             x[rbase[r, trow[t]] + p * sw + tcol[t], c] * w[t, c, :]   (taps inside the input)
    weight gradient: acc[t, c, :] += the same products with dy[r*wo + p, :] in place of w

Output columns [wl, wr) read every tap inside the input (wl = max wlo, wr = min whi): there
the kernel runs blocks of pixels without checks; the few border columns go one at a time,
skipping the taps that fall outside. (The input gradient of a stride-1 convolution is the
forward kernel run on dy with the kernel flipped and its channels swapped.)

The forward keeps a block of PB output pixels x OB vectors of output channels in registers
(24 running vector sums with AVX-512) while it runs over every tap and input channel: each
step loads OB weight vectors and broadcasts PB input values, for PB*OB fused multiply-adds,
so the arithmetic units, not the loads, set the pace (oneDNN's scheme; the GEMM path instead
packs 27 small matrices per layer through OpenBLAS). The weight gradient keeps CB input
channels x OB vectors of output channels, summed over a chunk of rows (in the array's dtype;
each chunk's sums are then added into a float64 accumulator).

The loop nests are fixed per block shape, so their source is generated for the shape and
compiled by numba on first use (about a second each, the prange wrappers included; a U-Net
uses 18, which made its first training step take 12-25 s). The generated source is written
as a module into a kernel cache folder and compiled with numba's on-disk cache, so later
processes load the machine code instead (see `_module`).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile

import numba

from . import _simd

_compiled: dict = {}


def _strided(expr: str, sw: int) -> str:
    return expr if sw == 1 else f"{expr} * {sw}"


def _forward_source(ob: int, pb: int, lanes: int, sw: int = 1) -> str:
    """Source of the forward kernel for OB vectors of `lanes` output channels and PB pixels,
    output column p reading input column p * sw + tcol[t]."""
    def block(n_pix, pix, checked, indent):
        pad = " " * indent
        acc = [[f"a{p}_{j}" for j in range(ob)] for p in range(n_pix)]
        skip = "base < 0 or p1 < wlo[t] or p1 >= whi[t]" if checked else "base < 0"
        lines = [f"{pad}{acc[p][j]} = vload(bias, o0 + {j * lanes}, {lanes})"
                 for p in range(n_pix) for j in range(ob)]
        lines += [f"{pad}for t in range(n_taps):",
                  f"{pad}    base = rbase[rj + trow[t]]",
                  f"{pad}    if {skip}:",
                  f"{pad}        continue",
                  f"{pad}    xo = (base + {_strided(pix, sw)} + tcol[t]) * c",
                  f"{pad}    wb = t * c * o + o0",
                  f"{pad}    for ci in range(c):",
                  f"{pad}        wq = wb + ci * o"]
        lines += [f"{pad}        w{j} = vload(w, wq + {j * lanes}, {lanes})" for j in range(ob)]
        for p in range(n_pix):
            lines.append(f"{pad}        xv = vbload(x, xo + {p * sw} * c + ci, {lanes})")
            lines += [f"{pad}        {acc[p][j]} = vfma(xv, w{j}, {acc[p][j]})"
                      for j in range(ob)]
        lines += [f"{pad}vstore(out, (rb + {pix} + {p}) * o + o0 + {j * lanes}, {acc[p][j]})"
                  for p in range(n_pix) for j in range(ob)]
        return "\n".join(lines)

    return f"""
def kernel(x, w, bias, rbase, trow, tcol, wlo, whi, out, c, o, wo, wl, wr, n_trows, r0, r1):
    n_taps = trow.size
    for r in range(r0, r1):
        rb = r * wo
        rj = r * n_trows
        for o0 in range(0, o, {ob * lanes}):
            p0 = wl
            while p0 + {pb} <= wr:
{block(pb, "p0", False, 16)}
                p0 += {pb}
            for q in range(wl + wo - p0):
                p1 = q if q < wl else p0 + q - wl
{block(1, "p1", True, 16)}
"""


def _weight_grad_source(ob: int, cb: int, lanes: int, sw: int = 1) -> str:
    """Source of the weight-gradient kernel for CB input channels x OB vectors of `lanes`
    output channels, output column p reading input column p * sw + tcol[t]."""
    def block(n_ch, indent):
        pad = " " * indent
        acc = [[f"s{i}_{j}" for j in range(ob)] for i in range(n_ch)]
        lines = [f"{pad}{acc[i][j]} = vzero(dy, {lanes})" for i in range(n_ch) for j in range(ob)]
        lines += [f"{pad}for r in range(q0, q1):",
                  f"{pad}    base = rbase[r * n_trows + j]",
                  f"{pad}    if base < 0:",
                  f"{pad}        continue",
                  f"{pad}    xb = (base + kc) * c + c0",
                  f"{pad}    db = r * wo * o + o0",
                  f"{pad}    for p in range(lo, hi):",
                  f"{pad}        dp = db + p * o",
                  f"{pad}        xq = xb + {_strided('p', sw)} * c"]
        lines += [f"{pad}        d{j} = vload(dy, dp + {j * lanes}, {lanes})" for j in range(ob)]
        for i in range(n_ch):
            lines.append(f"{pad}        xv = vbload(x, xq + {i}, {lanes})")
            lines += [f"{pad}        {acc[i][j]} = vfma(xv, d{j}, {acc[i][j]})"
                      for j in range(ob)]
        lines += [f"{pad}vaccum(acc, (t * c + c0 + {i}) * o + o0 + {j * lanes}, {acc[i][j]})"
                  for i in range(n_ch) for j in range(ob)]
        return "\n".join(lines)

    return f"""
def kernel(x, dy, rbase, trow, tcol, wlo, whi, acc, c, o, wo, n_trows, r0, r1, chunk):
    n_taps = trow.size
    for q0 in range(r0, r1, chunk):
        q1 = min(q0 + chunk, r1)
        for t in range(n_taps):
            j, kc, lo, hi = trow[t], tcol[t], wlo[t], whi[t]
            for o0 in range(0, o, {ob * lanes}):
                c0 = 0
                while c0 + {cb} <= c:
{block(cb, 20)}
                    c0 += {cb}
                while c0 < c:
{block(1, 20)}
                    c0 += 1
"""


def lanes_for(itemsize: int, channels: int) -> int:
    """Lanes of the vectors that hold `channels` (the vectorised channel count: O for the
    forward and the weight gradient, C for the input gradient) for this CPU: a full register
    when the channels are a multiple of it, else a half register (8 float32 channels with
    AVX-512), else 0 (no blocked kernel)."""
    full = _simd.host_vector_bytes() // itemsize
    for lanes in (full, full // 2):
        if lanes >= 4 and channels % lanes == 0:
            return lanes
    return 0


def _budget() -> int:
    """Running vector sums a kernel may keep: three quarters of the registers (the rest hold
    the weight or gradient vectors and the broadcast value)."""
    return _simd.host_vector_registers() * 3 // 4


def _vectors_per_block(vectors: int) -> int:
    """OB: the channel vectors per block, the largest of 4, 3, 2, 1 that divides them (at most
    2 with 16 registers)."""
    top = 4 if _simd.host_vector_registers() >= 32 else 2
    return next(k for k in range(top, 0, -1) if vectors % k == 0)


def forward_plan(o: int, lanes: int, wo: int) -> tuple:
    """(OB, PB) for o output channels on rows of wo pixels: PB up to the budget (16 at most),
    lowered to a divisor of wo when one lies within half of it (no one-pixel tail steps)."""
    ob = _vectors_per_block(o // lanes)
    cap = min(16, _budget() // ob)
    pb = next((k for k in range(cap, cap // 2, -1) if wo % k == 0), cap)
    return ob, min(pb, max(wo, 1))


def weight_grad_plan(o: int, lanes: int) -> tuple:
    """(OB, CB) for the weight gradient of o output channels."""
    ob = _vectors_per_block(o // lanes)
    return ob, min(16, _budget() // ob)


_OPTIONS = ("nogil=True, fastmath={'reassoc', 'contract'}, error_model='numpy', "
            "boundscheck=False")
_HEADER = """# generated by framework/_conv_blocked.py; a cache, safe to delete
import numba
from numba import prange
from framework._simd import vaccum, vbload, vfma, vload, vstore, vzero
_JIT = numba.njit({options}, cache={cache})
_PAR = numba.njit(nogil=True, error_model='numpy', parallel=True, cache={cache})
"""


def _cache_dir() -> str | None:
    """Where generated kernel modules go: $LANTERN_KERNEL_CACHE, else kernels/ in Lantern's
    cache ($LANTERN_HOME, default ~/.cache/lantern, as for the hub's data); "" or "0" turns
    the cache off."""
    folder = os.environ.get("LANTERN_KERNEL_CACHE")
    if folder is None:
        home = os.environ.get("LANTERN_HOME") or os.path.join(os.path.expanduser("~"),
                                                              ".cache", "lantern")
        folder = os.path.join(home, "kernels")
    return folder if folder not in ("", "0") else None


@functools.lru_cache(maxsize=None)
def _fingerprint() -> str:
    """What a compiled kernel depends on besides its own source: the code of the intrinsics
    it calls (numba's cache checks only the kernel's file) and the numba version."""
    with open(_simd.__file__, "rb") as f:
        return hashlib.sha1(f.read() + numba.__version__.encode()).hexdigest()


def _module(source: str) -> dict:
    """The names a generated module defines. The module is written (atomically: several
    processes may write the same one) to the cache folder under a name hashed from its
    source, and imported from there, so numba's cache=True keeps its machine code for later
    processes; without a writable folder it is executed in memory and compiled each time."""
    text = _HEADER.format(options=_OPTIONS, cache=True) + source
    folder = _cache_dir()
    if folder is not None:
        name = "lantern_kernel_" + hashlib.sha1((_fingerprint() + text).encode()).hexdigest()[:20]
        path = os.path.join(folder, name + ".py")
        try:
            if not os.path.exists(path):
                os.makedirs(folder, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
                with os.fdopen(fd, "w") as f:
                    f.write(text)
                os.replace(tmp, path)
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # numba's cache finds the module by its name
            spec.loader.exec_module(module)
            return vars(module)
        except OSError:  # read-only home, full disk: compile in memory instead
            pass
    names: dict = {}
    exec(compile(_HEADER.format(options=_OPTIONS, cache=False) + source,
                 "<lantern conv kernel>", "exec"), names)
    return names


def _compile(key, source_of, par_source: str | None = None):
    """The compiled kernel of source_of(*key[1:]), or with `par_source` its prange wrapper
    (numba's OpenMP threads, see _jit.omp_parts), generated in one module with it."""
    fn = _compiled.get(key)
    if fn is None:
        source = source_of(*key[1:]) + "kernel = _JIT(kernel)\n"
        if par_source is not None:
            source += par_source + "par = _PAR(par)\n"
        fn = _compiled[key] = _module(source)["kernel" if par_source is None else "par"]
    return fn


_FORWARD_PAR = """
def par(x, w, bias, rbase, trow, tcol, wlo, whi, out, c, o, wo, wl, wr, n_trows, rows, parts):
    for i in prange(parts):
        kernel(x, w, bias, rbase, trow, tcol, wlo, whi, out, c, o, wo, wl, wr, n_trows,
               rows * i // parts, rows * (i + 1) // parts)
"""
_WEIGHT_GRAD_PAR = """
def par(x, dy, rbase, trow, tcol, wlo, whi, acc, c, o, wo, n_trows, rows, chunk, parts):
    for i in prange(parts):
        kernel(x, dy, rbase, trow, tcol, wlo, whi, acc[i], c, o, wo, n_trows,
               rows * i // parts, rows * (i + 1) // parts, chunk)
"""


def forward_kernel_par(ob: int, pb: int, lanes: int, sw: int = 1):
    return _compile(("forward_par", ob, pb, lanes, sw), _forward_source, _FORWARD_PAR)


def weight_grad_kernel_par(ob: int, cb: int, lanes: int, sw: int = 1):
    return _compile(("weight_grad_par", ob, cb, lanes, sw), _weight_grad_source,
                    _WEIGHT_GRAD_PAR)


def forward_kernel(ob: int, pb: int, lanes: int, sw: int = 1):
    return _compile(("forward", ob, pb, lanes, sw), _forward_source)


def weight_grad_kernel(ob: int, cb: int, lanes: int, sw: int = 1):
    return _compile(("weight_grad", ob, cb, lanes, sw), _weight_grad_source)
