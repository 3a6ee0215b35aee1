"""Register-blocked direct convolution kernels (CPU, numba), generated per block shape.

The layout is channels-last and padded: the input is a flat (pixels, C) array over the padded
grid, the output a flat (pixels, O) array, the weights (T, C, O) for T kernel taps. A tap is
an offset in pixels on the padded grid (so 1-D, 2-D and 3-D kernels, and dilation, are all
one list of offsets), and the output is computed one row (the last spatial dim) at a time:
`ibase[r]` is the padded-grid pixel where the windows of output row r start.

    forward: out[r*wo + p, :] = bias + sum_t sum_c x[ibase[r] + p + offs[t], c] * w[t, c, :]
    weight gradient: acc[t, c, :] += sum_r sum_p x[ibase[r] + p + offs[t], c] * dy[r*wo + p, :]

(The input gradient of a stride-1 convolution is the forward kernel run on the padded dy with
the kernel flipped and its channels swapped.)

The forward keeps a block of PB output pixels x OB vectors of output channels in registers
(24 running vector sums with AVX-512) while it runs over every tap and input channel: each
step loads OB weight vectors and broadcasts PB input values, for PB*OB fused multiply-adds,
so the arithmetic units, not the loads, set the pace (oneDNN's scheme; the GEMM path instead
packs 27 small matrices per layer through OpenBLAS). The weight gradient keeps CB input
channels x OB vectors of output channels, summed over a chunk of rows (in the array's dtype;
each chunk's sums are then added into a float64 accumulator).

The loop nests are fixed per block shape, so their source is generated for the shape and
compiled by numba on first use (~0.2 s each; a model uses a handful).
"""
from __future__ import annotations

import numba

from . import _simd

_JIT = numba.njit(nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy",
                  boundscheck=False)
_compiled: dict = {}


def _forward_source(ob: int, pb: int, lanes: int) -> str:
    """Source of the forward kernel for OB vectors of `lanes` output channels and PB pixels."""
    def block(n_pix, indent):
        pad = " " * indent
        acc = [[f"a{p}_{j}" for j in range(ob)] for p in range(n_pix)]
        lines = [f"{pad}{acc[p][j]} = vload(bias, o0 + {j * lanes}, {lanes})"
                 for p in range(n_pix) for j in range(ob)]
        lines += [f"{pad}for t in range(n_taps):",
                  f"{pad}    xo = (ib + p0 + offs[t]) * c",
                  f"{pad}    wb = t * c * o + o0",
                  f"{pad}    for ci in range(c):",
                  f"{pad}        wr = wb + ci * o"]
        lines += [f"{pad}        w{j} = vload(w, wr + {j * lanes}, {lanes})" for j in range(ob)]
        for p in range(n_pix):
            lines.append(f"{pad}        xv = vbload(x, xo + {p} * c + ci, {lanes})")
            lines += [f"{pad}        {acc[p][j]} = vfma(xv, w{j}, {acc[p][j]})"
                      for j in range(ob)]
        lines += [f"{pad}vstore(out, (rb + p0 + {p}) * o + o0 + {j * lanes}, {acc[p][j]})"
                  for p in range(n_pix) for j in range(ob)]
        return "\n".join(lines)

    return f"""
def kernel(x, w, bias, offs, ibase, out, c, o, wo, r0, r1):
    n_taps = offs.size
    for r in range(r0, r1):
        ib = ibase[r]
        rb = r * wo
        for o0 in range(0, o, {ob * lanes}):
            p0 = 0
            while p0 + {pb} <= wo:
{block(pb, 16)}
                p0 += {pb}
            while p0 < wo:
{block(1, 16)}
                p0 += 1
"""


def _weight_grad_source(ob: int, cb: int, lanes: int) -> str:
    """Source of the weight-gradient kernel for CB input channels x OB vectors of `lanes`
    output channels."""
    def block(n_ch, indent):
        pad = " " * indent
        acc = [[f"s{i}_{j}" for j in range(ob)] for i in range(n_ch)]
        lines = [f"{pad}{acc[i][j]} = vzero(dy, {lanes})" for i in range(n_ch) for j in range(ob)]
        lines += [f"{pad}for r in range(q0, q1):",
                  f"{pad}    xb = (ibase[r] + off) * c + c0",
                  f"{pad}    db = r * wo * o + o0",
                  f"{pad}    for p in range(wo):",
                  f"{pad}        dp = db + p * o",
                  f"{pad}        xq = xb + p * c"]
        lines += [f"{pad}        d{j} = vload(dy, dp + {j * lanes}, {lanes})" for j in range(ob)]
        for i in range(n_ch):
            lines.append(f"{pad}        xv = vbload(x, xq + {i}, {lanes})")
            lines += [f"{pad}        {acc[i][j]} = vfma(xv, d{j}, {acc[i][j]})"
                      for j in range(ob)]
        lines += [f"{pad}vaccum(acc, (t * c + c0 + {i}) * o + o0 + {j * lanes}, {acc[i][j]})"
                  for i in range(n_ch) for j in range(ob)]
        return "\n".join(lines)

    return f"""
def kernel(x, dy, offs, ibase, acc, c, o, wo, r0, r1, chunk):
    n_taps = offs.size
    for q0 in range(r0, r1, chunk):
        q1 = min(q0 + chunk, r1)
        for t in range(n_taps):
            off = offs[t]
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


def _compile(key, source_of):
    fn = _compiled.get(key)
    if fn is None:
        source = source_of(*key[1:])
        names = {name: getattr(_simd, name) for name in
                 ("vload", "vbload", "vzero", "vstore", "vaccum", "vfma")}
        exec(compile(source, f"<lantern conv kernel {key}>", "exec"), names)
        fn = _compiled[key] = _JIT(names["kernel"])
    return fn


def forward_kernel(ob: int, pb: int, lanes: int):
    return _compile(("forward", ob, pb, lanes), _forward_source)


def weight_grad_kernel(ob: int, cb: int, lanes: int):
    return _compile(("weight_grad", ob, cb, lanes), _weight_grad_source)
