"""SIMD vector values inside numba kernels (imported only by the compiled kernels).

numba compiles loops over array elements and leaves vectorisation to LLVM, which vectorises
an inner loop but will not keep a block of results in registers across an outer loop: it
cannot prove that the output array and the inputs do not overlap, so every partial sum goes
back to memory between multiply-adds. A register-blocked kernel (a dozen or more running
vector sums, each updated by a broadcast input value times a vector of weights, as oneDNN's
convolutions do) needs the vectors as values. This module gives numba a vector type,
`Vec(dtype, lanes)`, lowered to an LLVM vector (<16 x float> is one AVX-512 register), and
the few operations such kernels use:

    v = vload(arr, i, LANES)      # arr.flat[i:i + LANES], unaligned
    v = vbload(arr, i, LANES)     # arr.flat[i] in every lane
    v = vzero(arr, LANES)         # zeros of arr's dtype
    v = vfma(a, b, c)             # a * b + c, one rounding (llvm.fma)
    vstore(arr, i, v)             # arr.flat[i:i + LANES] = v
    vaccum(arr, i, v)             # arr.flat[i:i + LANES] += v, widened to arr's dtype

LANES must be a literal in the kernel's source. The flat index is not bounds-checked and
does not wrap around: kernels compute it from shapes they were given. Arrays must be
C-contiguous.
"""
from __future__ import annotations

import functools

import numba
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model


@functools.lru_cache(maxsize=None)
def host_vector_bytes() -> int:
    """Bytes of the widest vector register this CPU has (64 with AVX-512, 32 with AVX2,
    else 16), which sets the kernels' lane counts."""
    try:
        from llvmlite import binding
        feats = binding.get_host_cpu_features()
    except Exception:  # a platform whose features LLVM cannot read: the safe width
        return 16
    if feats.get("avx512f"):
        return 64
    if feats.get("avx2") or feats.get("avx"):
        return 32
    return 16


@functools.lru_cache(maxsize=None)
def host_vector_registers() -> int:
    """Vector registers the kernels may plan for: 32 with AVX-512 and on AArch64, else 16."""
    if host_vector_bytes() == 64:
        return 32
    import platform
    return 32 if platform.machine().lower() in ("aarch64", "arm64") else 16


class Vec(types.Type):
    """A SIMD vector of `lanes` values of a float dtype (numba type)."""

    def __init__(self, dtype, lanes: int):
        self.dtype, self.lanes = dtype, int(lanes)
        super().__init__(name=f"vec{self.lanes}x{dtype}")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        be_type = ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), fe_type.lanes)
        super().__init__(dmm, fe_type, be_type)


def _lanes(lanes) -> int:
    if not isinstance(lanes, types.IntegerLiteral):
        raise numba.errors.TypingError("the lane count must be a literal integer")
    return lanes.literal_value


def _pointer(context, builder, aryty, ary, idx):
    """Address of ary.flat[idx] for a C-contiguous array."""
    arr = context.make_array(aryty)(context, builder, ary)
    return builder.gep(arr.data, [idx])


def _ll(context, vec: Vec):
    return context.get_value_type(vec)


def _broadcast(builder, vty, scalar):
    zero = ir.Constant(ir.IntType(32), 0)
    one = builder.insert_element(ir.Constant(vty, ir.Undefined), scalar, zero)
    mask = ir.Constant(ir.VectorType(ir.IntType(32), vty.count), [0] * vty.count)
    return builder.shuffle_vector(one, ir.Constant(vty, ir.Undefined), mask)


@intrinsic
def vload(typingctx, arr, idx, lanes):
    vec = Vec(arr.dtype, _lanes(lanes))

    def codegen(context, builder, sig, args):
        ptr = _pointer(context, builder, sig.args[0], args[0], args[1])
        vty = _ll(context, vec)
        return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=arr.dtype.bitwidth // 8)
    return vec(arr, types.intp, lanes), codegen


@intrinsic
def vbload(typingctx, arr, idx, lanes):
    vec = Vec(arr.dtype, _lanes(lanes))

    def codegen(context, builder, sig, args):
        ptr = _pointer(context, builder, sig.args[0], args[0], args[1])
        return _broadcast(builder, _ll(context, vec), builder.load(ptr))
    return vec(arr, types.intp, lanes), codegen


@intrinsic
def vzero(typingctx, arr, lanes):
    vec = Vec(arr.dtype, _lanes(lanes))

    def codegen(context, builder, sig, args):
        vty = _ll(context, vec)
        return ir.Constant(vty, [ir.Constant(vty.element, 0.0)] * vec.lanes)
    return vec(arr, lanes), codegen


@intrinsic
def vstore(typingctx, arr, idx, v):
    if not isinstance(v, Vec) or v.dtype != arr.dtype:
        raise numba.errors.TypingError(f"vstore of {v} into an array of {arr.dtype}")

    def codegen(context, builder, sig, args):
        ptr = _pointer(context, builder, sig.args[0], args[0], args[1])
        vty = _ll(context, v)
        builder.store(args[2], builder.bitcast(ptr, vty.as_pointer()),
                      align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()
    return types.void(arr, types.intp, v), codegen


@intrinsic
def vaccum(typingctx, arr, idx, v):
    if not isinstance(v, Vec) or arr.dtype.bitwidth < v.dtype.bitwidth:
        raise numba.errors.TypingError(f"vaccum of {v} into an array of {arr.dtype}")
    wide = Vec(arr.dtype, v.lanes)

    def codegen(context, builder, sig, args):
        ptr = _pointer(context, builder, sig.args[0], args[0], args[1])
        wty = _ll(context, wide)
        ptr = builder.bitcast(ptr, wty.as_pointer())
        val = args[2]
        if wide.dtype != v.dtype:
            val = builder.fpext(val, wty)
        align = arr.dtype.bitwidth // 8
        builder.store(builder.fadd(builder.load(ptr, align=align), val), ptr, align=align)
        return context.get_dummy_value()
    return types.void(arr, types.intp, v), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    if not (isinstance(a, Vec) and a == b == c):
        raise numba.errors.TypingError(f"vfma of {a}, {b}, {c}")

    def codegen(context, builder, sig, args):
        vty = _ll(context, a)
        suffix = f"v{a.lanes}f{a.dtype.bitwidth}"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                            f"llvm.fma.{suffix}")
        return builder.call(fn, args)
    return a(a, a, a), codegen


__all__ = ["Vec", "vload", "vbload", "vzero", "vstore", "vaccum", "vfma", "host_vector_bytes",
           "host_vector_registers"]
