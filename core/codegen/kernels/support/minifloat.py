"""The narrow element types held one per byte: float8 (E4M3FN, E4M3FNUZ, E5M2,
E5M2FNUZ, E8M0), float4 (E2M1), int4 / uint4, int2 / uint2. Kernels compute
with them as float (or int8), converting on load and store with integer
operations on the bits, as numpy / ml_dtypes do:

- decode is exact (every narrow value is a float32);
- encode rounds to nearest even; values beyond the largest finite one become
  inf where the format has one, else NaN (float4 saturates). ONNX Cast's
  `saturate` clamps to the largest finite value first (see clamp_to_finite).
- E8M0 (a bare exponent) rounds up, as ONNX Cast's default round_mode says.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ....ir import DType
from ... import llvm_util as U


@dataclass(frozen=True)
class MiniFloat:
    ebits: int
    mbits: int
    bias: int
    max_code: int  # magnitude bits of the largest finite value
    max_value: float
    inf_code: int | None  # magnitude bits of infinity, if the format has it
    nan_code: int | None  # full code of NaN (None: no NaN, overflow saturates)
    fnuz: bool = False  # no negative zero; NaN is the code of -0

    @property
    def sign_bit(self) -> int:
        return 1 << (self.ebits + self.mbits)


FORMATS = {
    DType.float8e4m3fn: MiniFloat(4, 3, 7, 0x7E, 448.0, None, 0x7F),
    DType.float8e4m3fnuz: MiniFloat(4, 3, 8, 0x7F, 240.0, None, 0x80, fnuz=True),
    DType.float8e5m2: MiniFloat(5, 2, 15, 0x7B, 57344.0, 0x7C, 0x7F),
    DType.float8e5m2fnuz: MiniFloat(5, 2, 16, 0x7F, 57344.0, None, 0x80, fnuz=True),
    DType.float4e2m1: MiniFloat(2, 1, 1, 0x7, 6.0, None, None),
}
NARROW_INTS = {DType.int4: (4, True), DType.uint4: (4, False), DType.int2: (2, True),
               DType.uint2: (2, False)}


def _c(t: ir.Type, v: int | float) -> ir.Constant:
    return ir.Constant(t, [v] * t.count) if isinstance(t, ir.VectorType) else ir.Constant(t, v)


def _like(elem: ir.Type, t: ir.Type) -> ir.Type:
    return U.vec(elem, t.count) if isinstance(t, ir.VectorType) else elem


def _pow2(b: ir.IRBuilder, k: ir.Value, f32: ir.Type) -> ir.Value:
    """2^k as float for an i32 k within float's normal range."""
    i32 = _like(U.I32, f32)
    return b.bitcast(b.shl(b.add(k, _c(i32, 127)), _c(i32, 23)), f32)


def decode(b: ir.IRBuilder, v: ir.Value, fmt: MiniFloat) -> ir.Value:
    """i8 codes -> float."""
    i32, f32 = _like(U.I32, v.type), _like(U.F32, v.type)
    code = b.and_(b.zext(v, i32), _c(i32, 2 * fmt.sign_bit - 1))
    e = b.and_(b.lshr(code, _c(i32, fmt.mbits)), _c(i32, (1 << fmt.ebits) - 1))
    m = b.and_(code, _c(i32, (1 << fmt.mbits) - 1))
    normal = b.fmul(b.uitofp(b.or_(m, _c(i32, 1 << fmt.mbits)), f32),
                    _pow2(b, b.sub(e, _c(i32, fmt.bias + fmt.mbits)), f32))
    sub = b.fmul(b.uitofp(m, f32), _c(f32, 2.0 ** (1 - fmt.bias - fmt.mbits)))
    value = b.select(b.icmp_unsigned("==", e, _c(i32, 0)), sub, normal)
    magnitude = b.and_(code, _c(i32, fmt.sign_bit - 1))
    if fmt.inf_code is not None:
        value = b.select(b.icmp_unsigned("==", magnitude, _c(i32, fmt.inf_code)),
                         _c(f32, float("inf")), value)
        is_nan = b.icmp_unsigned(">", magnitude, _c(i32, fmt.inf_code))
    elif fmt.nan_code is not None:  # FNUZ: only 0x80; FN: both signs of 0x7F
        is_nan = b.icmp_unsigned("==", code if fmt.fnuz else magnitude, _c(i32, fmt.nan_code))
    else:
        is_nan = None
    negative = b.icmp_unsigned("!=", b.and_(code, _c(i32, fmt.sign_bit)), _c(i32, 0))
    value = b.select(negative, b.fneg(value), value)
    return value if is_nan is None else b.select(is_nan, _c(f32, float("nan")), value)


def encode(b: ir.IRBuilder, x: ir.Value, fmt: MiniFloat) -> ir.Value:
    """float -> i8 codes, rounding to nearest even."""
    i32, f32 = _like(U.I32, x.type), _like(U.F32, x.type)
    bits = b.bitcast(x, i32)
    mag = b.and_(bits, _c(i32, 0x7FFFFFFF))
    a = b.bitcast(mag, f32)
    # below the smallest normal: an integer count of the smallest subnormal step
    scaled = b.fmul(a, _c(f32, 2.0 ** (fmt.bias - 1 + fmt.mbits)))
    fn = U.intrinsic(b.module, f"llvm.roundeven.{_sfx(f32)}", f32, [f32])
    sub = b.fptoui(b.call(fn, [scaled]), i32)
    # normal: rebias float32's exponent, round the dropped mantissa bits to even
    shift = 23 - fmt.mbits
    r = b.sub(mag, _c(i32, (127 - fmt.bias) << 23))
    lsb = b.and_(b.lshr(r, _c(i32, shift)), _c(i32, 1))
    normal = b.lshr(b.add(r, b.add(lsb, _c(i32, (1 << (shift - 1)) - 1))), _c(i32, shift))
    tiny = b.fcmp_ordered("<", a, _c(f32, 2.0 ** (1 - fmt.bias)))
    code = b.select(tiny, sub, normal)
    too_big = b.or_(b.icmp_unsigned(">", code, _c(i32, fmt.max_code)),
                    b.fcmp_ordered("==", a, _c(f32, float("inf"))))
    if fmt.inf_code is not None or fmt.nan_code is None:  # to infinity, or saturate (float4)
        code = b.select(too_big, _c(i32, fmt.inf_code or fmt.max_code), code)
    sign = b.select(b.icmp_signed("<", bits, _c(i32, 0)), _c(i32, fmt.sign_bit), _c(i32, 0))
    if fmt.fnuz:
        sign = b.select(b.icmp_unsigned("==", code, _c(i32, 0)), _c(i32, 0), sign)
    code = b.or_(code, sign)
    if fmt.inf_code is None and fmt.nan_code is not None:  # no infinity: overflow is NaN
        code = b.select(too_big, _c(i32, fmt.nan_code), code)
    nan = fmt.nan_code if fmt.nan_code is not None else fmt.sign_bit  # float4: as ml_dtypes
    code = b.select(U.is_nan(b, x), _c(i32, nan), code)
    return b.trunc(code, _like(U.I8, x.type))


def _sfx(t: ir.Type) -> str:
    return f"v{t.count}f32" if isinstance(t, ir.VectorType) else "f32"


def clamp_to_finite(b: ir.IRBuilder, x: ir.Value, fmt: MiniFloat) -> ir.Value:
    """ONNX Cast's saturate: beyond +-max (infinities included) becomes +-max; NaN stays."""
    t = x.type
    hi = U.fmin(b, x, _c(t, fmt.max_value))
    r = U.fmax(b, hi, _c(t, -fmt.max_value))
    return b.select(U.is_nan(b, x), x, r)


def decode_e8m0(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """2^(code - 127); code 0 is 2^-127 (a float subnormal), 0xFF is NaN."""
    i32, f32 = _like(U.I32, v.type), _like(U.F32, v.type)
    code = b.zext(v, i32)
    bits = b.select(b.icmp_unsigned("==", code, _c(i32, 0)), _c(i32, 0x00400000),
                    b.shl(code, _c(i32, 23)))
    value = b.bitcast(bits, f32)
    return b.select(b.icmp_unsigned("==", code, _c(i32, 0xFF)), _c(f32, float("nan")), value)


def encode_e8m0(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """The float's exponent, rounded up when there is a fraction (not past the largest,
    saturating); NaN and infinity become 0xFF. The sign is ignored."""
    i32 = _like(U.I32, x.type)
    bits = b.bitcast(x, i32)
    exponent = b.and_(b.lshr(bits, _c(i32, 23)), _c(i32, 0xFF))
    fraction = b.icmp_unsigned("!=", b.and_(bits, _c(i32, 0x7FFFFF)), _c(i32, 0))
    up = b.and_(fraction, b.icmp_unsigned("<", exponent, _c(i32, 0xFE)))
    code = b.add(exponent, b.zext(up, i32))
    return b.trunc(code, _like(U.I8, x.type))


def int_from_storage(b: ir.IRBuilder, v: ir.Value, dt: DType) -> ir.Value:
    """The low 2 or 4 bits of a byte as an i8, sign-extended for signed types."""
    bits, signed = NARROW_INTS[dt]
    t = v.type
    if signed:
        return b.ashr(b.shl(v, _c(t, 8 - bits)), _c(t, 8 - bits))
    return b.and_(v, _c(t, (1 << bits) - 1))


def int_to_storage(b: ir.IRBuilder, v: ir.Value, dt: DType) -> ir.Value:
    """Wrap an i8 to the low 2 or 4 bits (numpy's cast to a narrower int wraps too)."""
    bits, _ = NARROW_INTS[dt]
    return b.and_(v, _c(v.type, (1 << bits) - 1))
