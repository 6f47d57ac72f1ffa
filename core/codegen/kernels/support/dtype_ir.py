"""Element types in kernels of any dtype: how a DType is stored, how it is
computed with, and conversions between them.

Storage is what memory holds (bool as one byte, float16 / bfloat16 as 16 raw
bits); compute is what arithmetic works on (bool as i1, float16 / bfloat16
widened to float, everything else as stored). Kernels load storage, convert
to compute, apply the op, and convert back, so each op is written once per
kind of value (signed int, unsigned int, bool, float) rather than per dtype.

Conversions avoid every path for which LLVM emits a runtime-library call
(the artifact links without libc): double -> half goes through float with
round-to-odd, bfloat16 is converted with integer operations.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....ir import DType
from ... import llvm_util as U
from . import minifloat as MF

HALF = ir.HalfType()

_STORAGE = {
    DType.bool: U.I8, DType.int8: U.I8, DType.uint8: U.I8, DType.int16: U.I16,
    DType.uint16: U.I16, DType.int32: U.I32, DType.uint32: U.I32, DType.int64: U.I64,
    DType.uint64: U.I64, DType.float16: U.I16, DType.bfloat16: U.I16,
    DType.float32: U.F32, DType.float64: U.F64,
    **{dt: U.I8 for dt in (*MF.FORMATS, DType.float8e8m0, *MF.NARROW_INTS)},
}

# int4 / int2 compute as sign-extended i8 (and their uint kin zero-extended): add,
# sub, mul wrap correctly once stored back into their bits.
SIGNED = frozenset({DType.int8, DType.int16, DType.int32, DType.int64, DType.int4, DType.int2})
UNSIGNED = frozenset({DType.uint8, DType.uint16, DType.uint32, DType.uint64, DType.uint4,
                      DType.uint2})
NARROW_FLOATS = frozenset({DType.float16, DType.bfloat16, *MF.FORMATS, DType.float8e8m0})


def is_int(dt: DType) -> bool:
    return dt in SIGNED or dt in UNSIGNED


def storage_type(dt: DType) -> ir.Type:
    if dt not in _STORAGE:
        raise TypeError(f"no kernel storage for {dt}")
    return _STORAGE[dt]


def compute_type(dt: DType) -> ir.Type:
    """The scalar IR type ops see for dt."""
    if dt is DType.bool:
        return U.I1
    if dt in NARROW_FLOATS:
        return U.F32
    return storage_type(dt)


def compute_dtype(dt: DType) -> DType:
    """The DType whose arithmetic an op on dt runs in (float16 -> float32)."""
    return DType.float32 if dt in NARROW_FLOATS else dt


def shaped(t: ir.Type, like: ir.Type) -> ir.Type:
    """Scalar type t, as a vector if `like` is one."""
    return U.vec(t, like.count) if isinstance(like, ir.VectorType) else t


def const(t: ir.Type, value: float | int) -> ir.Constant:
    """A scalar constant of t's element type, splatted when t is a vector."""
    if isinstance(t, ir.VectorType):
        return ir.Constant(t, [value] * t.count)
    return ir.Constant(t, value)


def to_compute(b: ir.IRBuilder, v: ir.Value, dt: DType) -> ir.Value:
    """A loaded storage value (scalar or vector) as dt's compute value."""
    if dt is DType.bool:
        return b.icmp_unsigned("!=", v, const(v.type, 0))
    if dt is DType.float16:
        return _half_to_float(b, v)
    if dt is DType.bfloat16:
        wide = b.shl(b.zext(v, shaped(U.I32, v.type)), const(shaped(U.I32, v.type), 16))
        return b.bitcast(wide, shaped(U.F32, v.type))
    if dt in MF.FORMATS:
        return MF.decode(b, v, MF.FORMATS[dt])
    if dt is DType.float8e8m0:
        return MF.decode_e8m0(b, v)
    if dt in MF.NARROW_INTS:
        return MF.int_from_storage(b, v, dt)
    return v


def to_storage(b: ir.IRBuilder, v: ir.Value, dt: DType) -> ir.Value:
    """A compute value of dt as the bits to store."""
    if dt is DType.bool:
        return b.zext(v, shaped(U.I8, v.type))
    if dt is DType.float16:
        return b.bitcast(b.fptrunc(v, shaped(HALF, v.type)), shaped(U.I16, v.type))
    if dt is DType.bfloat16:
        return _f32_to_bf16_bits(b, v)
    if dt in MF.FORMATS:
        return MF.encode(b, v, MF.FORMATS[dt])
    if dt is DType.float8e8m0:
        return MF.encode_e8m0(b, v)
    if dt in MF.NARROW_INTS:
        return MF.int_to_storage(b, v, dt)
    return v


def _f32_to_bf16_bits(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """Round to nearest even on the raw bits; NaN stays a (quiet) NaN."""
    i32 = shaped(U.I32, v.type)
    bits = b.bitcast(v, i32)
    lsb = b.and_(b.lshr(bits, const(i32, 16)), const(i32, 1))
    rounded = b.lshr(b.add(bits, b.add(lsb, const(i32, 0x7FFF))), const(i32, 16))
    is_nan = b.fcmp_unordered("uno", v, v)
    return b.trunc(b.select(is_nan, const(i32, 0x7FC0), rounded), shaped(U.I16, v.type))


def cast(b: ir.IRBuilder, v: ir.Value, src: DType, dst: DType,
         saturate: bool = True) -> ir.Value:
    """Convert a compute value of src to a compute value of dst with the semantics
    of docs/casts.md (numpy's astype for in-range values; float -> int truncates
    toward zero). `saturate` (ONNX Cast's attribute) clamps values for float8
    types to their finite range."""
    r = _cast(b, v, src, dst, saturate)
    if dst in MF.NARROW_INTS and src is not dst:
        # the compute value of a 2/4-bit int is its stored bits sign- (zero-) extended,
        # so that a fused consumer sees -7, not 9
        r = MF.int_from_storage(b, MF.int_to_storage(b, r, dst), dst)
    return r


def _cast(b: ir.IRBuilder, v: ir.Value, src: DType, dst: DType, saturate: bool) -> ir.Value:
    to = shaped(compute_type(dst), v.type)
    if dst in MF.FORMATS and src is not dst:
        v = v if v.type == to else _cast(b, v, src, DType.float32, saturate)
        return MF.clamp_to_finite(b, v, MF.FORMATS[dst]) if saturate else v
    if dst is DType.float8e8m0 and not saturate and src is not dst:
        v = v if v.type == to else _cast(b, v, src, DType.float32, saturate)
        # beyond 2^127 rounds up past E8M0's largest: NaN (0xFF) unless saturating
        past = b.fcmp_ordered(">", _fabs(b, v), const(v.type, 2.0 ** 127))
        return b.select(past, const(v.type, float("nan")), v)
    if v.type == to:
        if dst is DType.float16 and src is not DType.float16:
            return _round_through_half(b, v)
        return v
    if dst is DType.bool:
        if src in SIGNED or src in UNSIGNED:
            return b.icmp_unsigned("!=", v, const(v.type, 0))
        return b.fcmp_unordered("!=", v, const(v.type, 0.0))  # NaN is true, as in numpy
    if src is DType.bool:
        return b.zext(v, to) if isinstance(compute_type(dst), ir.IntType) else b.uitofp(v, to)
    if is_int(src) and is_int(dst):
        return _resize_int(b, v, to, src in SIGNED)
    if is_int(src):
        return b.sitofp(v, to) if src in SIGNED else b.uitofp(v, to)
    if is_int(dst):
        return _float_to_int(b, v, to, dst)
    if dst is DType.float16 and compute_type(src) == U.F64:
        return _double_to_half_exact(b, v)
    return b.fpext(v, to) if _width(to) > _width(v.type) else b.fptrunc(v, to)


def _width(t: ir.Type) -> int:
    scalar = t.element if isinstance(t, ir.VectorType) else t
    return 64 if scalar == U.F64 else 32 if scalar == U.F32 else scalar.width


def _resize_int(b: ir.IRBuilder, v: ir.Value, to: ir.Type, signed: bool) -> ir.Value:
    if _width(to) < _width(v.type):
        return b.trunc(v, to)
    return b.sext(v, to) if signed else b.zext(v, to)


def _float_to_int(b: ir.IRBuilder, v: ir.Value, to: ir.Type, dst: DType) -> ir.Value:
    """float -> int as docs/casts.md defines it: truncate toward zero (round half to
    even for 2- and 4-bit types, as ONNX's int4/int2 notes say), convert through a
    32-bit (64 for 64-bit types) integer where out of range, NaN and inf give its
    minimum, then wrap to the width. That is what onnxruntime and numpy give on
    x86-64 (cvttss2si); LLVM's plain fptosi would be poison there instead."""
    # fptosi truncates by itself; llvm.trunc would be a libm call on Cortex-M4
    t = _float_unary(b, "roundeven", v) if dst in MF.NARROW_INTS else v
    bits = 64 if _width(to) == 64 else 32
    wide = shaped(ir.IntType(bits), v.type)
    if dst in (DType.uint32, DType.uint64):
        r = _to_unsigned_x86(b, t, wide, bits)
    else:
        r = _to_signed_x86(b, t, wide, bits)
    return r if _width(to) == bits else b.trunc(r, to)


def _to_signed_x86(b: ir.IRBuilder, t: ir.Value, wide: ir.Type, bits: int) -> ir.Value:
    """A float truncated to a `bits`-bit int; where that is out of range (NaN, inf
    too) the minimum, as x86's cvtt* give ("integer indefinite"). The select keeps
    fptosi's poison for those lanes out of the result."""
    return b.select(_truncates_into(b, t, bits), b.fptosi(t, wide),
                    const(wide, -(1 << (bits - 1))))


def _truncates_into(b: ir.IRBuilder, t: ir.Value, bits: int) -> ir.Value:
    """trunc(t) in [-2^(bits-1), 2^(bits-1)): t > -2^(bits-1) - 1 where the float
    type holds that bound, else t >= -2^(bits-1) (the floats between are none)."""
    limit = 2.0 ** (bits - 1)
    mantissa = 53 if _width(t.type) == 64 else 24
    below = (b.fcmp_ordered(">", t, const(t.type, -limit - 1)) if bits - 1 < mantissa
             else b.fcmp_ordered(">=", t, const(t.type, -limit)))
    return b.and_(below, b.fcmp_ordered("<", t, const(t.type, limit)))


def _to_unsigned_x86(b: ir.IRBuilder, t: ir.Value, wide: ir.Type, bits: int) -> ir.Value:
    """uint32 / uint64 as compilers convert on x86-64: values from 2^(bits-1) up are
    converted less 2^(bits-1) and get the top bit back; everything else goes through
    the signed conversion (negative values wrap, NaN gives 2^(bits-1), +inf 0)."""
    half = 2.0 ** (bits - 1)
    high = b.fcmp_ordered(">=", t, const(t.type, half))
    low_part = b.select(high, b.fsub(t, const(t.type, half)), t)
    r = _to_signed_x86(b, low_part, wide, bits)
    return b.select(high, b.xor(r, const(wide, -(1 << (bits - 1)))), r)


def _float_unary(b: ir.IRBuilder, name: str, v: ir.Value) -> ir.Value:
    fn = U.intrinsic(b.module, f"llvm.{name}.{_suffix(v.type)}", v.type, [v.type])
    return b.call(fn, [v])


def _suffix(t: ir.Type) -> str:
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{_suffix(t.element)}"
    return {U.F32: "f32", U.F64: "f64"}.get(t) or f"i{t.width}"


def _round_through_half(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """A float32 compute value rounded to what float16 can hold (values that are
    produced as float16 are kept exactly representable)."""
    half = b.fptrunc(v, shaped(HALF, v.type))
    return _half_to_float(b, b.bitcast(half, shaped(U.I16, v.type)))


def _half_to_float(b: ir.IRBuilder, bits: ir.Value) -> ir.Value:
    """float16 bits (i16, scalar or vector) as float32, exactly."""
    if not _converts_half_by_bits(b.module):
        return b.fpext(b.bitcast(bits, shaped(HALF, bits.type)), shaped(U.F32, bits.type))
    i32, f32 = shaped(U.I32, bits.type), shaped(U.F32, bits.type)
    h = b.zext(bits, i32)
    sign = b.shl(b.and_(h, const(i32, 0x8000)), const(i32, 16))
    magnitude = b.and_(h, const(i32, 0x7FFF))
    exponent = b.lshr(magnitude, const(i32, 10))
    # rebias the exponent: 15 -> 127 for normal numbers, 31 -> 255 for inf / NaN
    moved = b.shl(magnitude, const(i32, 13))
    special = b.icmp_unsigned("==", exponent, const(i32, 31))
    normal = b.add(moved, b.select(special, const(i32, 224 << 23), const(i32, 112 << 23)))
    # zero and subnormals: mantissa * 2^-24, exact in float32
    small = b.fmul(b.uitofp(b.and_(magnitude, const(i32, 0x3FF)), f32), const(f32, 2.0 ** -24))
    mag = b.select(b.icmp_unsigned("==", exponent, const(i32, 0)), b.bitcast(small, i32), normal)
    return b.bitcast(b.or_(mag, sign), f32)


def _converts_half_by_bits(module: ir.Module) -> bool:
    """Targets without half-precision conversion instructions (wasm, riscv without
    Zfh): LLVM calls __extendhfsf2 per element, and folds compares of extended
    halves into half compares that wasm's SIMD legalizer loops on forever."""
    return U.arch(module).startswith(("wasm", "riscv"))


def _double_to_half_exact(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """double -> float (rounded to odd) -> half: one correct rounding, where a plain
    double -> float -> half could round twice. Returns the float compute value."""
    f32 = shaped(U.F32, v.type)
    i32 = shaped(U.I32, v.type)
    near = b.fptrunc(v, f32)
    back = b.fpext(near, v.type)
    exact = b.fcmp_ordered("==", back, v)
    # the value toward zero from `v`: `near` if it did not round away, else one ulp less
    away = b.fcmp_ordered(">", _fabs(b, back), _fabs(b, v))
    bits = b.bitcast(near, i32)
    toward_zero = b.select(away, b.sub(bits, const(i32, 1)), bits)
    odd = b.bitcast(b.or_(toward_zero, const(i32, 1)), f32)
    keep = b.or_(exact, b.fcmp_unordered("uno", v, v))
    return _round_through_half(b, b.select(keep, near, odd))


def _fabs(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    fn = U.intrinsic(b.module, f"llvm.fabs.{_suffix(v.type)}", v.type, [v.type])
    return b.call(fn, [v])


def load_index(b: ir.IRBuilder, base: ir.Value, i: ir.Value, dt: DType) -> ir.Value:
    """base[i] of an index tensor of dtype dt (any int, or a float holding an
    integer value) as an i64."""
    v = to_compute(b, U.load(b, base, i, storage_type(dt)), dt)
    return cast(b, v, dt, DType.int64)


def wrap_index(b: ir.IRBuilder, k: ir.Value, n: ir.Value) -> ir.Value:
    """A possibly negative index into a dim of n, wrapped, then clamped to [0, n-1]:
    ONNX calls an index outside [-n, n) an error; reading out of bounds would be worse."""
    k = b.select(b.icmp_signed("<", k, U.i64(0)), b.add(k, n), k)
    k = b.select(b.icmp_signed("<", k, U.i64(0)), U.i64(0), k)
    last = b.sub(n, U.i64(1))
    return b.select(b.icmp_signed(">", k, last), last, k)
