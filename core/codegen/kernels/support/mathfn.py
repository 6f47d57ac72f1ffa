"""Vectorized float32 math built from plain IR: exp, log, tanh, sigmoid, erf, pow, sqrt.

Each function takes a builder and a float or <n x float> value and returns a
value of the same type, so it inlines into any vector loop. Nothing here calls
libm: the generated code links on bare-metal and wasm targets.

Precision-critical steps (range reduction, the round-to-integer shifter) use
strict IR instructions and llvm.fmuladd: under 'fast' flags LLVM would be free
to reassociate x - n*ln2_hi - n*ln2_lo into x - n*ln2 and lose the digits the
two-constant split exists for. Polynomials use llvm.fmuladd, which fuses into
FMA where the target has it and never becomes a library call.

Measured max relative error against float64 (see tests/codegen/test_mathfn.py):
exp 1.2e-7, log 0.8e-7, tanh 3e-7, sigmoid 1.4e-7, erf 3.3e-7.
"""

from __future__ import annotations

from collections.abc import Sequence

import llvmlite.ir as ir

from ... import llvm_util as U
from .vloop import int_like, int_type_like, like, max_nnan, min_nnan

LOG2E = 1.44269504088896341
LN2_HI = 0.693359375  # few mantissa bits: n * LN2_HI is exact for |n| < 2^15
LN2_LO = -2.12194440e-4
SHIFTER = 12582912.0  # 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits

# Cephes expf: exp(r) ~ 1 + r + r^2 * P(r) on |r| <= ln2/2
_EXP_P = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
          1.6666665459e-1, 5.0000001201e-1)
# Cephes logf: log(1+m) ~ m - m^2/2 + m^3 * P(m) on sqrt(1/2)-1 <= m < sqrt(2)-1
_LOG_P = (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
          1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
          3.3333331174e-1)
# tanh(x) ~ x * P(x^2) / Q(x^2) on [-9, 9], a relative-error least-squares fit made
# for tinyc (max relative error 3.2e-7 in float32); tanh is +-1 in f32 beyond
_TANH_P = (1.3705674234421039e-08, 2.0865157353969817e-05, 3.5112774201091616e-03,
           1.339428236679507e-01, 9.999999941834259e-01)
_TANH_Q = (7.921023032209096e-07, 3.311201071433034e-04, 2.5936811279817215e-02,
           4.672760425103886e-01, 1.0)
# Eigen's rational erf: x * P(x^2) / Q(x^2) on [-4, 4]; erf is +-1 in f32 beyond
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
          -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
          -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
          -7.37332916720468e-03, -1.42647390514189e-02)


def exp_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """e^x: 2^n * exp(r) with n = round(x / ln2), r = x - n*ln2.

    Inputs are clamped to [-104, 88.8] so n fits in [-150, 129]; 2^n is applied
    as two exponent-field multiplies so the result under- and overflows
    gradually to 0 / inf exactly like expf. exp(-inf) = 0, exp(inf) = inf.
    """
    t = x.type
    x = min_nnan(b, max_nnan(b, x, like(t, -104.0)), like(t, 88.8))
    shifted = b.fadd(b.fmul(x, like(t, LOG2E)), like(t, SHIFTER))
    n_float = b.fsub(shifted, like(t, SHIFTER))
    it = int_type_like(t)
    n = b.sub(b.bitcast(shifted, it), b.bitcast(like(t, SHIFTER), it))
    r = fmuladd(b, n_float, like(t, -LN2_HI), x)
    r = fmuladd(b, n_float, like(t, -LN2_LO), r)
    p = horner(b, r, _EXP_P)
    p = fmuladd(b, p, b.fmul(r, r), b.fadd(r, like(t, 1.0)))
    half = b.ashr(n, int_like(t, 1))
    return b.fmul(b.fmul(p, _pow2(b, half, t)), _pow2(b, b.sub(n, half), t))


def _pow2(b: ir.IRBuilder, n: ir.Value, t: ir.Type) -> ir.Value:
    """2^n as a float for integer n in [-126, 127], built in the exponent field."""
    return b.bitcast(b.shl(b.add(n, int_like(t, 127)), int_like(t, 23)), t)


def log_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Natural log for positive normal floats; log(0) = -inf, log(<0) = nan, log(inf) = inf.

    x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log x = e*ln2 + log(m).
    """
    t = x.type
    it = int_type_like(t)
    bits = b.bitcast(x, it)
    e_biased = b.and_(b.lshr(bits, int_like(t, 23)), int_like(t, 0xFF))
    m = b.bitcast(b.or_(b.and_(bits, int_like(t, 0x007FFFFF)), int_like(t, 0x3F000000)), t)
    e = b.sitofp(b.sub(e_biased, int_like(t, 126)), t)  # now x = m * 2^e, m in [0.5, 1)
    small = b.fcmp_ordered("<", m, like(t, 0.707106781186547524))
    e = b.select(small, b.fsub(e, like(t, 1.0)), e)
    m = b.fsub(b.select(small, b.fadd(m, m), m), like(t, 1.0))
    z = b.fmul(m, m)
    y = b.fmul(b.fmul(horner(b, m, _LOG_P), m), z)
    y = fmuladd(b, e, like(t, LN2_LO), y)
    y = fmuladd(b, z, like(t, -0.5), y)
    y = fmuladd(b, e, like(t, LN2_HI), b.fadd(m, y))
    y = b.select(b.fcmp_ordered("==", x, like(t, float("inf"))), x, y)
    y = b.select(b.fcmp_ordered("==", x, like(t, 0.0)), like(t, float("-inf")), y)
    return b.select(b.fcmp_unordered("<", x, like(t, 0.0)), like(t, float("nan")), y)


def tanh_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """An odd rational function: no exp, one division, full relative precision near 0."""
    t = x.type
    x = min_nnan(b, max_nnan(b, x, like(t, -9.0)), like(t, 9.0))
    z = b.fmul(x, x)
    y = b.fdiv(b.fmul(x, horner(b, z, _TANH_P)), horner(b, z, _TANH_Q))
    return min_nnan(b, max_nnan(b, y, like(t, -1.0)), like(t, 1.0))  # the fit overshoots 1 by 2e-7


def sigmoid_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """1 / (1 + e^-x): exact limits 0 and 1, full relative precision for x << 0."""
    t = x.type
    return b.fdiv(like(t, 1.0), b.fadd(like(t, 1.0), exp_f32(b, b.fneg(x))))


def erf_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    t = x.type
    x = min_nnan(b, max_nnan(b, x, like(t, -4.0)), like(t, 4.0))
    z = b.fmul(x, x)
    return b.fdiv(b.fmul(x, horner(b, z, _ERF_P)), horner(b, z, _ERF_Q))


def log1p_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """log(1 + x) for x > -1, accurate for tiny x: log(u) * x / (u - 1) with u = 1 + x
    cancels u's rounding error (Goldberg); where u rounds to 1 the answer is x.
    Strict IR on purpose: 'fast' could fold (1 + x) - 1 back to x."""
    t = x.type
    u = b.fadd(x, like(t, 1.0))
    d = b.fsub(u, like(t, 1.0))
    r = b.fdiv(b.fmul(log_f32(b, u), x), d)
    return b.select(b.fcmp_ordered("==", d, like(t, 0.0)), x, r)


def pow_f32(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """x^y as exp(y * log|x|), as powf for finite x and y: pow(x, 0) = 1,
    pow(0, y > 0) = 0, pow(0, y < 0) = inf, pow(x < 0, y) = nan unless y is an
    integer, where the sign follows y's parity."""
    t = x.type
    r = exp_f32(b, b.fmul(y, log_f32(b, fabs(b, x))))
    # round y with the shifter; its low mantissa bit is then the parity (|y| < 2^22)
    shifted = b.fadd(y, like(t, SHIFTER))
    is_int = b.fcmp_ordered("==", b.fsub(shifted, like(t, SHIFTER)), y)
    odd = b.trunc(b.bitcast(shifted, int_type_like(t)), int_type_like(t, 1))
    negative = b.fcmp_ordered("<", x, like(t, 0.0))
    big = b.fcmp_ordered(">=", fabs(b, y), like(t, 4194304.0))  # 2^22 and up: even integers
    r = b.select(b.and_(negative, b.and_(odd, b.not_(big))), b.fneg(r), r)
    r = b.select(b.and_(negative, b.not_(b.or_(is_int, big))), like(t, float("nan")), r)
    return b.select(b.fcmp_ordered("==", y, like(t, 0.0)), like(t, 1.0), r)


def sqrt_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """llvm.sqrt: one vsqrtps (correctly rounded)."""
    t = x.type
    return b.call(U.intrinsic(b.module, f"llvm.sqrt.{_suffix(t)}", t, [t]), [x])


def horner(b: ir.IRBuilder, x: ir.Value, coeffs: Sequence[float]) -> ir.Value:
    """c0*x^(k-1) + c1*x^(k-2) + ... + c_{k-1}, highest power first."""
    acc = like(x.type, coeffs[0])
    for c in coeffs[1:]:
        acc = fmuladd(b, acc, x, like(x.type, c))
    return acc


def fmuladd(b: ir.IRBuilder, x: ir.Value, y: ir.Value, z: ir.Value) -> ir.Value:
    """x*y + z, fused where the target has FMA; never a libm call (unlike llvm.fma)."""
    fn = U.intrinsic(b.module, f"llvm.fmuladd.{_suffix(x.type)}", x.type, [x.type] * 3)
    return b.call(fn, [x, y, z])


def fabs(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    fn = U.intrinsic(b.module, f"llvm.fabs.{_suffix(x.type)}", x.type, [x.type])
    return b.call(fn, [x])


def copysign(b: ir.IRBuilder, magnitude: ir.Value, sign: ir.Value) -> ir.Value:
    t = magnitude.type
    fn = U.intrinsic(b.module, f"llvm.copysign.{_suffix(t)}", t, [t, t])
    return b.call(fn, [magnitude, sign])


def _suffix(t: ir.Type) -> str:
    return f"v{t.count}f32" if isinstance(t, ir.VectorType) else "f32"
