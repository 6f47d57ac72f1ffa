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

from ....ir import DType
from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.dtype_ir import SIGNED, storage_type
from ..support.vloop import (
    define_kernel,
    entry_alloca,
    fold,
    max_nnan,
    min_nnan,
    vector_loop,
    vload,
)
from .quant import load_int_as_i32, round_saturate, roundeven, store_i32_as


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


def runtime_qmatmul_kernel(a_dt: DType, b_dt: DType, out: DType, per_col: bool) -> Kernel:
    """A quantized matrix product whose scales and zero points are read at run
    time (QLinearMatMul / MatMulInteger as the ONNX node tests give them):

        acc[m, n] = sum_k (a[m, k] - a_zp) * (b[k, n] - b_zp[n])
        y = acc (int32 out), or saturate(round_half_even(acc * ((a_s * b_s[n]) / y_s)) + y_zp)

    (a, b, y, a_s, a_zp, b_s, b_zp, y_s, y_zp, batch, M, N, K, a_bstride,
    b_bstride, y_bstride); b_s and b_zp hold N values with per_col, else one. A
    plain loop nest with vectors along n: models have constant parameters and
    take the int8 GEMM.
    """
    name = f"qmatmul_runtime_{a_dt.short}_{b_dt.short}_to_{out.short}{'_pc' if per_col else ''}"
    names = ["a", "b", "y", "a_s", "a_zp", "b_s", "b_zp", "y_s", "y_zp", "batch", "M", "N", "K",
             "a_bstride", "b_bstride", "y_bstride"]

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR] * 9 + [U.I64] * 7, names)
        v = dict(zip(names, fn.args, strict=True))
        az = U.splat(b, _scalar_i32(b, v["a_zp"], U.i64(0), a_dt), lanes)
        with U.for_range(b, 0, v["batch"], name="item") as item, \
                U.for_range(b, 0, v["M"], name="m") as m:
            a_row = b.add(b.mul(item, v["a_bstride"]), b.mul(m, v["K"]))
            b_base = b.mul(item, v["b_bstride"])
            y_row = b.add(b.mul(item, v["y_bstride"]), b.mul(m, v["N"]))

            def body(b: ir.IRBuilder, n: ir.Value, count: ir.Value | None) -> None:
                bz = _per_column(b, v["b_zp"], n, count, per_col, lanes, b_dt)
                acc = _dot(b, v, a_row, b_base, n, count, az, bz, lanes, (a_dt, b_dt))
                if out != DType.int32:
                    acc = _requant(b, v, n, count, per_col, lanes, acc, out)
                store_i32_as(b, acc, v["y"], b.add(y_row, n), count, out)

            vector_loop(b, v["N"], lanes, body)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 9 + (I64,) * 7, build)


def _scalar_i32(b: ir.IRBuilder, ptr: ir.Value, at: ir.Value, dt: DType) -> ir.Value:
    raw = U.load(b, ptr, at, storage_type(dt))
    if raw.type == U.I32:
        return raw
    return b.sext(raw, U.I32) if dt in SIGNED else b.zext(raw, U.I32)


def _per_column(b: ir.IRBuilder, ptr: ir.Value, n: ir.Value, count: ir.Value | None,
                per_col: bool, lanes: int, dt: DType) -> ir.Value:
    """ptr[n + lane] when per column, else ptr[0] in every lane (i32)."""
    if per_col:
        return load_int_as_i32(b, ptr, n, lanes, count, dt)
    return U.splat(b, _scalar_i32(b, ptr, U.i64(0), dt), lanes)


def _dot(b: ir.IRBuilder, v: dict, a_row: ir.Value, b_base: ir.Value, n: ir.Value,
         count: ir.Value | None, az: ir.Value, bz: ir.Value, lanes: int,
         dts: tuple[DType, DType]) -> ir.Value:
    def step(b: ir.IRBuilder, k: ir.Value, acc: ir.Value) -> ir.Value:
        a = U.splat(b, _scalar_i32(b, v["a"], b.add(a_row, k), dts[0]), lanes)
        bv = load_int_as_i32(b, v["b"], b.add(b_base, b.add(b.mul(k, v["N"]), n)), lanes,
                             count, dts[1])
        return b.add(acc, b.mul(b.sub(a, az), b.sub(bv, bz)))

    return fold(b, v["K"], ir.Constant(U.vec(U.I32, lanes), None), step)


def _requant(b: ir.IRBuilder, v: dict, n: ir.Value, count: ir.Value | None, per_col: bool,
             lanes: int, acc: ir.Value, out: DType) -> ir.Value:
    """onnxruntime's multiplier (a_s * b_s) / y_s, then MLAS's rounding."""
    a_s = U.splat(b, U.load(b, v["a_s"], U.i64(0)), lanes)
    y_s = U.splat(b, U.load(b, v["y_s"], U.i64(0)), lanes)
    b_s = vload(b, v["b_s"], n, lanes, count) if per_col else \
        U.splat(b, U.load(b, v["b_s"], U.i64(0)), lanes)
    scale = b.fdiv(b.fmul(a_s, b_s), y_s)
    zp = U.splat(b, _scalar_i32(b, v["y_zp"], U.i64(0), out), lanes)
    return round_saturate(b, b.fmul(b.sitofp(acc, scale.type), scale), zp, out)
