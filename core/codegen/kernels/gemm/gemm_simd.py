"""Vector building blocks shared by the GEMM, packing and direct-conv kernels:
lane masks, masked loads/stores and gathers through the portable llvm.masked.*
intrinsics (vmovups{k} / vgatherdps on AVX-512, vmaskmov / vgatherdps on AVX2).
"""

from __future__ import annotations

import llvmlite.ir as ir

from ...llvm_util import F32, I1, I32, I64, PTR, i64, intrinsic, splat, vec


def lane_ids(n: int, elem: ir.IntType = I32) -> ir.Constant:
    """<0, 1, ..., n-1>."""
    return ir.Constant(vec(elem, n), list(range(n)))


def prefix_mask(b: ir.IRBuilder, count: ir.Value, n: int) -> ir.Value:
    """Mask of the first `count` lanes (count is an i64; <= 0 gives none, >= n all)."""
    clamped = b.select(b.icmp_signed("<", count, i64(n)), count, i64(n))
    limit = splat(b, b.trunc(clamped, I32), n)
    return b.icmp_signed("<", lane_ids(n), limit)


def masked_load(b: ir.IRBuilder, ptr: ir.Value, mask: ir.Value, n: int) -> ir.Value:
    """Load lanes where mask is set, zeros elsewhere; masked-off lanes are never touched."""
    vt = vec(F32, n)
    fn = intrinsic(b.module, f"llvm.masked.load.v{n}f32.p0", vt, [PTR, I32, vec(I1, n), vt])
    return b.call(fn, [ptr, ir.Constant(I32, 4), mask, ir.Constant(vt, None)])


def masked_store(b: ir.IRBuilder, value: ir.Value, ptr: ir.Value, mask: ir.Value) -> None:
    n = value.type.count
    fn = intrinsic(b.module, f"llvm.masked.store.v{n}f32.p0", ir.VoidType(),
                   [value.type, PTR, I32, vec(I1, n)])
    b.call(fn, [value, ptr, ir.Constant(I32, 4), mask])


def gather(b: ir.IRBuilder, base: ir.Value, index: ir.Value, mask: ir.Value) -> ir.Value:
    """base[index[l]] for lanes where mask is set, zeros elsewhere (index: <n x i32>)."""
    n = index.type.count
    ptrs = b.gep(base, [index], source_etype=F32)  # no inbounds: masked lanes may point anywhere
    ptrs.type = vec(PTR, n)  # llvmlite types a vector GEP as a scalar pointer
    vt = vec(F32, n)
    fn = intrinsic(b.module, f"llvm.masked.gather.v{n}f32.v{n}p0", vt,
                   [vec(PTR, n), I32, vec(I1, n), vt])
    return b.call(fn, [ptrs, ir.Constant(I32, 4), mask, ir.Constant(vt, None)])


def in_range(b: ir.IRBuilder, index: ir.Value, limit: ir.Value) -> ir.Value:
    """0 <= index < limit, lane-wise, as one unsigned compare (limit is a splat)."""
    return b.icmp_unsigned("<", index, limit)


def splat_i32(b: ir.IRBuilder, value: ir.Value, n: int) -> ir.Value:
    """Broadcast an i64 scalar (known to fit) as an <n x i32> vector."""
    return splat(b, b.trunc(value, I32), n)


def zeros(n: int) -> ir.Constant:
    return ir.Constant(vec(F32, n), None)


def as_i64(b: ir.IRBuilder, flag: ir.Value) -> ir.Value:
    return b.zext(flag, I64) if flag.type != I64 else flag


def raw_gep(b: ir.IRBuilder, base: ir.Value, index: ir.Value) -> ir.Value:
    """&base[index] (f32) without `inbounds`: for addresses of masked accesses that
    may lie outside the buffer (padding) and must not become poison."""
    return b.gep(base, [index], source_etype=F32)


def stack_floats(b: ir.IRBuilder, count: int, name: str) -> ir.Value:
    """An aligned stack array of `count` f32, as the opaque `ptr` the kernels use
    (llvmlite types an alloca as a typed pointer, which its store() rejects for
    vector values; the alloca's text does not depend on that type)."""
    slot = b.alloca(ir.ArrayType(F32, count), name=name)
    slot.align = 64
    slot.type = PTR
    return slot
