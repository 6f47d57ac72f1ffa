"""Kernels for dynamic quantization (quantize_dynamic's graphs):

DynamicQuantizeLinear, as onnxruntime computes it (float32 throughout):
    lo = min(0, min(x)), hi = max(0, max(x))
    scale = (hi - lo) / 255            (1 when hi == lo)
    zp = round_half_even(clamp(0 - lo / scale, 0, 255))
    y = saturate(round_half_even(x / scale) + zp)          (uint8)

and the correction of an int32 product computed with a zero point of 0 for a
zero point known only at run time:  C[m, n] -= zp * colsum[n].
"""

from __future__ import annotations

import llvmlite.ir as ir

from ...ir import DType
from .. import llvm_util as U
from ..kernel import I64, PTR, Kernel
from ..machine import CpuTarget
from .dtype_ir import SIGNED, storage_type
from .quant import round_saturate, roundeven, store_i32_as
from .vloop import define_kernel, entry_alloca, max_nnan, min_nnan, vector_loop, vload


def dynamic_quantize_kernel() -> Kernel:
    """(x f32, y u8, y_scale f32[1], y_zp u8[1], n)."""
    name = "dynamic_quantize_f32_u8"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR] * 4 + [U.I64],
                              ["x", "y", "y_scale", "y_zp", "n"])
        x, y, y_scale, y_zp, n = fn.args
        lo, hi = _min_max(b, x, n, lanes)
        scale, zp = _scale_and_zero_point(b, lo, hi)
        U.store(b, scale, y_scale, U.i64(0))
        U.store(b, b.trunc(zp, U.I8), y_zp, U.i64(0))
        sv, zv = U.splat(b, scale, lanes), U.splat(b, zp, lanes)

        def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
            q = round_saturate(b, b.fdiv(vload(b, x, i, lanes, count), sv), zv, DType.uint8)
            store_i32_as(b, q, y, i, count, DType.uint8)

        vector_loop(b, n, lanes, body)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 4 + (I64,), build)


def _min_max(b: ir.IRBuilder, x: ir.Value, n: ir.Value, lanes: int) -> tuple[ir.Value, ir.Value]:
    """(min(0, x...), max(0, x...)): the accumulators start at 0, which also
    fills the masked lanes of the last step."""
    vt = U.vec(U.F32, lanes)
    lo_slot, hi_slot = entry_alloca(b, vt, "lo"), entry_alloca(b, vt, "hi")
    zero = ir.Constant(vt, None)
    b.store(zero, lo_slot)
    b.store(zero, hi_slot)

    def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
        v = vload(b, x, i, lanes, count)
        b.store(min_nnan(b, b.load(lo_slot), v), lo_slot)
        b.store(max_nnan(b, b.load(hi_slot), v), hi_slot)

    vector_loop(b, n, lanes, body)
    return _reduce(b, "fmin", b.load(lo_slot)), _reduce(b, "fmax", b.load(hi_slot))


def _reduce(b: ir.IRBuilder, kind: str, v: ir.Value) -> ir.Value:
    fn = U.intrinsic(b.module, f"llvm.vector.reduce.{kind}.v{v.type.count}f32", U.F32, [v.type])
    return b.call(fn, [v], fastmath=("nnan",))


def _scale_and_zero_point(b: ir.IRBuilder, lo: ir.Value, hi: ir.Value
                          ) -> tuple[ir.Value, ir.Value]:
    same = b.fcmp_ordered("==", hi, lo)
    scale = b.select(same, U.f32(1.0), b.fdiv(b.fsub(hi, lo), U.f32(255.0)))
    initial = b.fsub(U.f32(0.0), b.fdiv(lo, scale))
    clamped = b.select(b.fcmp_ordered("<", initial, U.f32(255.0)), initial, U.f32(255.0))
    clamped = b.select(b.fcmp_ordered(">", clamped, U.f32(0.0)), clamped, U.f32(0.0))
    return scale, b.fptosi(roundeven(b, clamped), U.I32)


def zero_point_correction_kernel(zp_dtype: DType) -> Kernel:
    """C[m, n] -= zp * colsum[n] (int32, wrapping): (c, colsum i32[N], zp, M, N)."""
    name = f"int_gemm_zp_correction_{zp_dtype.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR] * 3 + [U.I64] * 2,
                              ["c", "colsum", "zp", "M", "N"])
        c, colsum, zp_ptr, m, n = fn.args
        raw = U.load(b, zp_ptr, U.i64(0), storage_type(zp_dtype))
        zp = b.sext(raw, U.I32) if zp_dtype in SIGNED else b.zext(raw, U.I32)
        zv = U.splat(b, zp, lanes)
        with U.for_range(b, 0, m, name="row") as row:
            base = b.mul(row, n)

            def body(b: ir.IRBuilder, j: ir.Value, count: ir.Value | None) -> None:
                at = b.add(base, j)
                cv = vload(b, c, at, lanes, count, U.I32)
                sv = vload(b, colsum, j, lanes, count, U.I32)
                store_i32_as(b, b.sub(cv, b.mul(zv, sv)), c, at, count, DType.int32)

            vector_loop(b, n, lanes, body)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3 + (I64,) * 2, build)
