"""Quantize, dequantize and requantize kernels, with onnxruntime's arithmetic
step for step (MLAS), so that results match it bit for bit:

    quantize     y = saturate(round_half_even(x / scale) + zp)
                 (a true division, as MlasQuantizeLinear: x * (1 / scale) differs)
    dequantize   y = float(x - zp) * scale
    requantize   y = quantize(dequantize(x)), one pass (Q(DQ(x)) with other parameters)

Tensors are walked as [outer, channels, inner] with one scale and zero point per
channel (per-axis quantization); a per-tensor one has a single channel. Vectors
run along `inner`. Float math is strict (no fast-math flags): contracting a
multiply and an add into an FMA would change roundings onnxruntime does not.
"""

from __future__ import annotations

from collections.abc import Callable

import llvmlite.ir as ir

from ....ir import DType
from ....program import F32, I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import parallel_rows
from ..ops.elementwise import split_flat
from ..support import minifloat as MF
from ..support.dtype_ir import SIGNED, cast, shaped, storage_type, to_compute, to_storage
from ..support.vloop import define_kernel, vector_loop, vload, vstore

# integer dtypes a quantized tensor may have, with their saturation ranges (int4 /
# int2 and their unsigned kin are stored one per byte, as ml_dtypes holds them)
INT_RANGES = {DType.uint8: (0, 255), DType.int8: (-128, 127), DType.uint16: (0, 65535),
              DType.int16: (-32768, 32767), DType.int32: (-2**31, 2**31 - 1),
              DType.int4: (-8, 7), DType.uint4: (0, 15), DType.int2: (-2, 1), DType.uint2: (0, 3)}
# float types quantization may target (opset 19+): converted with round to nearest
# even, saturated to the finite range unless the node says saturate=0
FLOAT_TARGETS = frozenset(MF.FORMATS)


def _splat(b: ir.IRBuilder, v: ir.Value, like: ir.Type) -> ir.Value:
    return U.splat(b, v, like.count) if isinstance(like, ir.VectorType) else v


def _const(t: ir.Type, value: float | int) -> ir.Constant:
    if isinstance(t, ir.VectorType):
        return ir.Constant(t, [value] * t.count)
    return ir.Constant(t, value)


def roundeven(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """Round half to even (cvtps2dq under the default MXCSR), scalar or vector."""
    t = v.type
    sfx = f"v{t.count}f32" if isinstance(t, ir.VectorType) else "f32"
    fn = U.intrinsic(b.module, f"llvm.roundeven.{sfx}", t, [t])
    return b.call(fn, [v])


def round_saturate(b: ir.IRBuilder, v: ir.Value, zp: ir.Value, out: DType) -> ir.Value:
    """MLAS's last step: clamp v to [lo - zp, hi - zp] (a NaN becomes lo - zp, as
    MAXPS returns its second operand), round half to even, add zp. `zp` is i32
    shaped like v; returns i32."""
    lo, hi = INT_RANGES[out]
    zpf = b.sitofp(zp, v.type)
    lo_v, hi_v = b.fsub(_const(v.type, float(lo)), zpf), b.fsub(_const(v.type, float(hi)), zpf)
    v = b.select(b.fcmp_ordered(">", v, lo_v), v, lo_v)
    v = b.select(b.fcmp_ordered("<", v, hi_v), v, hi_v)
    return b.add(b.fptosi(roundeven(b, v), zp.type), zp)


def load_int_as_i32(b: ir.IRBuilder, base: ir.Value, index: ir.Value, lanes: int,
                    count: ir.Value | None, dt: DType) -> ir.Value:
    """lanes integers of dtype dt at base[index] widened to <lanes x i32>."""
    raw = vload(b, base, index, lanes, count, storage_type(dt))
    if dt in MF.NARROW_INTS:
        raw = to_compute(b, raw, dt)  # the byte holds the low bits only
    i32 = shaped(U.I32, raw.type)
    if raw.type == i32:
        return raw
    return b.sext(raw, i32) if dt in SIGNED else b.zext(raw, i32)


def store_i32_as(b: ir.IRBuilder, v: ir.Value, base: ir.Value, index: ir.Value,
                 count: ir.Value | None, dt: DType) -> None:
    """Store an i32 vector (already in dt's range) as dt."""
    st = shaped(storage_type(dt), v.type)
    v = v if st == v.type else b.trunc(v, st)
    vstore(b, to_storage(b, v, dt) if dt in MF.NARROW_INTS else v, base, index, count)


# body(builder, the kernel's arguments by name, element offset, count, scale, zp)
ChannelBody = Callable[..., None]


def _channel_walk(b: ir.IRBuilder, threads: int, name: str, fn: ir.Function, lanes: int,
                  body: ChannelBody, zp_dtype: DType) -> None:
    """for o, c: body(b, args, offset, count, scale, zp) along inner vectors; the
    zero points are stored in the quantized dtype (a constant or a model input).
    Rows (o, c) are split across workers when there are enough elements (each
    element's arithmetic is the same either way)."""
    def row(b: ir.IRBuilder, values: list[ir.Value], idx: list[ir.Value], start: ir.Value,
            count: ir.Value) -> None:
        args = dict(zip(_CHANNEL_PARAMS, values, strict=True))
        o, c = idx
        scale, zp = _channel_params(b, args, c, lanes, zp_dtype)
        base = b.add(b.mul(b.add(b.mul(o, args["channels"]), c), args["inner"]), start)

        def step(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
            body(b, args, b.add(base, i), count, scale, zp)

        vector_loop(b, count, lanes, step)

    parallel_rows(b, threads, name, list(fn.args), lambda b, args: list(args[4:6]), fn.args[6],
                  row)


def _channel_params(b: ir.IRBuilder, args: dict[str, ir.Value], c: ir.Value, lanes: int,
                    zp_dtype: DType) -> tuple[ir.Value, ir.Value]:
    """Channel c's scale (f32) and zero point (f32 for float targets, else i32), splatted."""
    scale = U.splat(b, U.load(b, args["scale"], c, U.F32), lanes)
    raw = U.load(b, args["zp"], c, storage_type(zp_dtype))
    if zp_dtype in MF.NARROW_INTS:
        raw = to_compute(b, raw, zp_dtype)
    if zp_dtype in FLOAT_TARGETS:
        zp_value = to_compute(b, raw, zp_dtype)  # float
    else:
        zp_value = raw if raw.type == U.I32 else (
            b.sext(raw, U.I32) if zp_dtype in SIGNED else b.zext(raw, U.I32))
    return scale, U.splat(b, zp_value, lanes)


_CHANNEL_PARAMS = ["x", "y", "scale", "zp", "outer", "channels", "inner"]


def quantize_kernel(out: DType, saturate: bool = True) -> Kernel:
    """y = quantize(x): (x f32, y, scale f32[C], zp out[C], outer, channels, inner).
    To a float type: y = float8(x / scale + zp)."""
    name = f"quantize_f32_to_{out.short}{'' if saturate else '_nosat'}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR] * 4 + [U.I64] * 3, _CHANNEL_PARAMS)

        def body(b, args, at, count, scale, zp):
            x = vload(b, args["x"], at, lanes, count)
            if out in FLOAT_TARGETS:
                v = cast(b, b.fadd(b.fdiv(x, scale), zp), DType.float32, out, saturate)
                vstore(b, to_storage(b, v, out), args["y"], at, count)
                return
            q = round_saturate(b, b.fdiv(x, scale), zp, out)
            store_i32_as(b, q, args["y"], at, count, out)

        _channel_walk(b, target.threads, name, fn, lanes, body, out)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 4 + (I64,) * 3, build)


def dequantize_kernel(src: DType) -> Kernel:
    """y = float(x - zp) * scale: (x, y f32, scale f32[C], zp src[C], outer, channels, inner)."""
    name = f"dequantize_{src.short}_to_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR] * 4 + [U.I64] * 3, _CHANNEL_PARAMS)

        def body(b, args, at, count, scale, zp):
            if src in FLOAT_TARGETS:
                raw = vload(b, args["x"], at, lanes, count, storage_type(src))
                y = b.fmul(b.fsub(to_compute(b, raw, src), zp), scale)
            else:
                x = load_int_as_i32(b, args["x"], at, lanes, count, src)
                y = b.fmul(b.sitofp(b.sub(x, zp), scale.type), scale)
            vstore(b, y, args["y"], at, count)

        _channel_walk(b, target.threads, name, fn, lanes, body, src)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 4 + (I64,) * 3, build)


def dequantize(b: ir.IRBuilder, x: ir.Value, zp: ir.Value, scale: ir.Value) -> ir.Value:
    """float(x - zp) * scale for i32 values x (DequantizeLinear's float)."""
    return b.fmul(b.sitofp(b.sub(x, zp), scale.type), scale)


def requantize_kernel(src: DType, out: DType) -> Kernel:
    """y = quantize(dequantize(x)) per tensor: (x, y, n, x_scale, x_zp, y_scale, y_zp)."""
    name = f"requantize_{src.short}_to_{out.short}"
    params = (PTR, PTR, I64, F32, I64, F32, I64)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR, U.PTR, U.I64, U.F32, U.I64, U.F32, U.I64],
                              ["x", "y", "n", "sx", "zx", "sy", "zy"])

        def block(b: ir.IRBuilder, args: list[ir.Value], start: ir.Value,
                  length: ir.Value) -> None:
            x, y, _, sx, zx, sy, zy = args
            x, y = U.gep(b, x, start, storage_type(src)), U.gep(b, y, start, storage_type(out))
            vt = U.vec(U.F32, lanes)
            sxv, syv = _splat(b, sx, vt), _splat(b, sy, vt)
            zxv, zyv = (U.splat(b, b.trunc(z, U.I32), lanes) for z in (zx, zy))

            def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
                v = dequantize(b, load_int_as_i32(b, x, i, lanes, count, src), zxv, sxv)
                store_i32_as(b, round_saturate(b, b.fdiv(v, syv), zyv, out), y, i, count, out)

            vector_loop(b, length, lanes, body)

        split_flat(b, target.threads, name, list(fn.args), 2, block)
        b.ret_void()
        return fn

    return Kernel(name, params, build)
