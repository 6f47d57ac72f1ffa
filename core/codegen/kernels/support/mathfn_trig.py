"""Trigonometric and hyperbolic float32 functions from plain IR (no libm), for
scalars and vectors alike: sin, cos, tan, asin, acos, atan, sinh, cosh, asinh,
acosh, atanh.

The polynomials are Cephes' single-precision ones (sinf, cosf, atanf, asinf,
sinhf); argument reduction for sin/cos is Cody-Waite with three constants,
accurate for |x| up to a few thousand. The inverse hyperbolics use log1p so
they keep full relative precision near 0 (and acosh near 1).
"""

from __future__ import annotations

import math

import llvmlite.ir as ir

from . import mathfn as M
from .vloop import int_like, int_type_like, like

FOUR_OVER_PI = 1.27323954473516
_DP = (0.78515625, 2.4187564849853515625e-4, 3.77489497744594108e-8)  # pi/4 in three parts
_SIN_P = (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)
_COS_P = (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)
_ATAN_P = (8.05374449538e-2, -1.38776856032e-1, 1.99777106478e-1, -3.33329491539e-1)
_ASIN_P = (4.2163199048e-2, 2.4181311049e-2, 4.5470025998e-2, 7.4953002686e-2,
           1.6666752422e-1)
_SINH_P = (2.03721912945e-4, 8.33028376239e-3, 1.66667160211e-1)


def _sincos(b: ir.IRBuilder, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(sin x, cos x): |x| = q * pi/2 + r with |r| <= pi/4; the quadrant q picks
    which polynomial of r each result uses and its sign."""
    t = x.type
    ax = M.fabs(b, x)
    j = b.fptosi(b.fmul(ax, like(t, FOUR_OVER_PI)), int_type_like(t))
    j = b.and_(b.add(j, int_like(t, 1)), int_like(t, -2))  # even: r = ax - j * pi/4
    y = b.sitofp(j, t)
    r = ax
    for part in _DP:
        r = M.fmuladd(b, y, like(t, -part), r)
    z = b.fmul(r, r)
    sin_r = M.fmuladd(b, b.fmul(M.horner(b, z, _SIN_P), z), r, r)
    cos_r = M.fmuladd(b, b.fmul(M.horner(b, z, _COS_P), z), z,
                      M.fmuladd(b, z, like(t, -0.5), like(t, 1.0)))
    swap = _bit_set(b, j, 2)
    sin_mag, cos_mag = b.select(swap, cos_r, sin_r), b.select(swap, sin_r, cos_r)
    sin_neg = b.xor(_bit_set(b, j, 4), b.fcmp_ordered("<", x, like(t, 0.0)))
    cos_neg = _bit_set(b, b.add(j, int_like(t, 2)), 4)
    return (b.select(sin_neg, b.fneg(sin_mag), sin_mag),
            b.select(cos_neg, b.fneg(cos_mag), cos_mag))


def _bit_set(b: ir.IRBuilder, j: ir.Value, bit: int) -> ir.Value:
    return b.icmp_signed("!=", b.and_(j, int_like(j.type, bit)), int_like(j.type, 0))


def sin_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return _sincos(b, x)[0]


def cos_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return _sincos(b, x)[1]


def tan_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    s, c = _sincos(b, x)
    return b.fdiv(s, c)


def atan_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Reduce |x| to [0, tan(pi/8)] by atan(x) = pi/2 - atan(1/x) and
    atan(x) = pi/4 + atan((x-1)/(x+1))."""
    t = x.type
    ax = M.fabs(b, x)
    big = b.fcmp_ordered(">", ax, like(t, 2.414213562373095))
    mid = b.fcmp_ordered(">", ax, like(t, 0.4142135623730950))
    one = like(t, 1.0)
    arg = b.select(big, b.fdiv(like(t, -1.0), ax),
                   b.select(mid, b.fdiv(b.fsub(ax, one), b.fadd(ax, one)), ax))
    base = b.select(big, like(t, math.pi / 2), b.select(mid, like(t, math.pi / 4), like(t, 0.0)))
    z = b.fmul(arg, arg)
    y = M.fmuladd(b, b.fmul(M.horner(b, z, _ATAN_P), z), arg, arg)
    return M.copysign(b, b.fadd(y, base), x)


def _asin_small(b: ir.IRBuilder, a: ir.Value) -> ir.Value:
    """asin(a) for 0 <= a <= sqrt(1/2)."""
    z = b.fmul(a, a)
    return M.fmuladd(b, b.fmul(M.horner(b, z, _ASIN_P), z), a, a)


def asin_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """Beyond |x| = 1/2: asin(a) = pi/2 - 2 asin(sqrt((1 - a) / 2)). NaN outside [-1, 1]."""
    t = x.type
    a = M.fabs(b, x)
    high = b.fcmp_ordered(">", a, like(t, 0.5))
    arg = b.select(high, M.sqrt_f32(b, b.fmul(b.fsub(like(t, 1.0), a), like(t, 0.5))), a)
    s = _asin_small(b, arg)
    r = b.select(high, b.fsub(like(t, math.pi / 2), b.fadd(s, s)), s)
    return M.copysign(b, r, x)


def acos_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """acos(x) = 2 asin(sqrt((1 - x) / 2)) for x > 1/2, pi - 2 asin(sqrt((1 + x) / 2))
    for x < -1/2, pi/2 - asin(x) between: full precision near x = 1."""
    t = x.type
    high = b.fcmp_ordered(">", x, like(t, 0.5))
    low = b.fcmp_ordered("<", x, like(t, -0.5))
    half_gap = b.fmul(b.fsub(like(t, 1.0), M.fabs(b, x)), like(t, 0.5))
    arg = b.select(b.or_(high, low), M.sqrt_f32(b, half_gap), M.fabs(b, x))
    s = _asin_small(b, arg)
    s = b.select(b.or_(high, low), s, M.copysign(b, s, x))
    twice = b.fadd(s, s)
    return b.select(high, twice, b.select(low, b.fsub(like(t, math.pi), twice),
                                          b.fsub(like(t, math.pi / 2), s)))


def sinh_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """A polynomial for |x| <= 1 (no cancellation), (e^|x| - e^-|x|) / 2 beyond."""
    t = x.type
    a = M.fabs(b, x)
    z = b.fmul(x, x)
    small = M.fmuladd(b, b.fmul(M.horner(b, z, _SINH_P), z), x, x)
    e = M.exp_f32(b, a)
    large = b.fmul(b.fsub(e, b.fdiv(like(t, 1.0), e)), like(t, 0.5))
    return b.select(b.fcmp_ordered("<=", a, like(t, 1.0)), small, M.copysign(b, large, x))


def cosh_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    e = M.exp_f32(b, M.fabs(b, x))
    return b.fmul(b.fadd(e, b.fdiv(like(x.type, 1.0), e)), like(x.type, 0.5))


def asinh_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """sign(x) * log1p(a + a^2 / (1 + sqrt(1 + a^2))), a = |x|."""
    t = x.type
    a = M.fabs(b, x)
    one = like(t, 1.0)
    a2 = b.fmul(a, a)
    r = M.log1p_f32(b, b.fadd(a, b.fdiv(a2, b.fadd(one, M.sqrt_f32(b, b.fadd(one, a2))))))
    return M.copysign(b, r, x)


def acosh_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """log1p(u + sqrt(u * (u + 2))), u = x - 1; NaN below 1."""
    t = x.type
    u = b.fsub(x, like(t, 1.0))
    return M.log1p_f32(b, b.fadd(u, M.sqrt_f32(b, b.fmul(u, b.fadd(u, like(t, 2.0))))))


def atanh_f32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """sign(x) * log1p(2a / (1 - a)) / 2, a = |x|."""
    t = x.type
    a = M.fabs(b, x)
    r = M.log1p_f32(b, b.fdiv(b.fadd(a, a), b.fsub(like(t, 1.0), a)))
    return M.copysign(b, b.fmul(r, like(t, 0.5)), x)
