"""C's fmod, exact for every float32 and float64 operand (as numpy.fmod).

x - trunc(x / y) * y is exact only while the quotient fits the mantissa and
x / y does not round up to the next integer. Here |x| is reduced by multiples
of |y| scaled by a power of two, so that each step's quotient stays below 2^53:

    q = trunc(r / ys)              q is the true quotient or one more
    r = fma(-q, ys, r)             exact: the true remainder is representable
    if r < 0: r += ys              exact for the same reason

and since ys is an integer multiple of |y|, r mod ys mod |y| is r mod |y|.
One step does when the quotient is below 2^52 (nearly always); each further
step removes 52 bits of the exponent gap. float32 operands are reduced in
double (exact: their remainder is a float32).
"""

from __future__ import annotations

import llvmlite.ir as ir

from ... import llvm_util as U
from .dtype_ir import const, shaped

MANTISSA_BITS = 52


def fmod_float(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """fmod(x, y) for float / double scalars or vectors: the dividend's sign; NaN for
    an infinite x, a zero y or a NaN; x for an infinite y."""
    f64 = shaped(U.F64, x.type)
    xd, yd = (a if a.type == f64 else b.fpext(a, f64) for a in (x, y))
    ax, ay = _call(b, "fabs", xd), _call(b, "fabs", yd)
    inf = const(f64, float("inf"))
    invalid = b.or_(b.fcmp_unordered("uno", xd, yd),
                    b.or_(b.fcmp_ordered("==", ax, inf), b.fcmp_ordered("==", ay, const(f64, 0.0))))
    r = _reduce(b, b.select(invalid, const(f64, 0.0), ax), ay)
    r = b.select(invalid, const(f64, float("nan")), _call(b, "copysign", r, xd))
    return r if r.type == x.type else b.fptrunc(r, x.type)


def _reduce(b: ir.IRBuilder, r0: ir.Value, ay: ir.Value) -> ir.Value:
    """r0 mod ay for finite r0 >= 0 and ay > 0 (ay may be infinite), lanes at once."""
    pre = b.block
    loop = b.append_basic_block("fmod.step")
    done = b.append_basic_block("fmod.done")
    b.branch(loop)
    b.position_at_end(loop)
    r = b.phi(r0.type, name="fmod.r")
    r.add_incoming(r0, pre)
    active = b.fcmp_ordered(">=", r, ay)
    r_next = b.select(active, _step(b, r, ay), r)
    r.add_incoming(r_next, b.block)
    b.cbranch(_any(b, b.fcmp_ordered(">=", r_next, ay)), loop, done)
    b.position_at_end(done)
    return r_next


def _step(b: ir.IRBuilder, r: ir.Value, ay: ir.Value) -> ir.Value:
    """r mod (ay * 2^k) with k chosen so that the quotient is below 2^53."""
    i64 = shaped(U.I64, r.type)
    gap = b.sub(b.sub(_ilogb(b, r), _ilogb(b, ay)), const(i64, MANTISSA_BITS))
    k = b.select(b.icmp_signed(">", gap, const(i64, 0)), gap, const(i64, 0))
    # 2^k in two exact factors (k reaches 2045 for a subnormal ay): ys stays below r
    k1 = b.select(b.icmp_signed(">", k, const(i64, 1023)), const(i64, 1023), k)
    ys = b.fmul(b.fmul(ay, _pow2(b, k1)), _pow2(b, b.sub(k, k1)))
    q = _call(b, "trunc", b.fdiv(r, ys))
    rem = _call(b, "fma", b.fneg(q), ys, r)
    return b.select(b.fcmp_ordered("<", rem, const(r.type, 0.0)), b.fadd(rem, ys), rem)


def _ilogb(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """floor(log2(v)) for finite v > 0, subnormals included, from the bits."""
    i64 = shaped(U.I64, v.type)
    bits = b.bitcast(v, i64)
    biased = b.lshr(bits, const(i64, MANTISSA_BITS))
    ctlz = U.intrinsic(b.module, f"llvm.ctlz.{_suffix(i64)}", i64, [i64, U.I1])
    # a subnormal's exponent is that of its leading mantissa bit
    sub = b.sub(const(i64, -1074 + 63), b.call(ctlz, [bits, ir.Constant(U.I1, 0)]))
    return b.select(b.icmp_signed("==", biased, const(i64, 0)), sub,
                    b.sub(biased, const(i64, 1023)))


def _pow2(b: ir.IRBuilder, k: ir.Value) -> ir.Value:
    """2.0^k for 0 <= k <= 1023, built from its exponent bits."""
    return b.bitcast(b.shl(b.add(k, const(k.type, 1023)), const(k.type, MANTISSA_BITS)),
                     shaped(U.F64, k.type))


def _any(b: ir.IRBuilder, cond: ir.Value) -> ir.Value:
    if not isinstance(cond.type, ir.VectorType):
        return cond
    fn = U.intrinsic(b.module, f"llvm.vector.reduce.or.v{cond.type.count}i1", U.I1, [cond.type])
    return b.call(fn, [cond])


def _suffix(t: ir.Type) -> str:
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{_suffix(t.element)}"
    return {U.F64: "f64"}.get(t) or f"i{t.width}"


def _call(b: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
    t = args[0].type
    fn = U.intrinsic(b.module, f"llvm.{name}.{_suffix(t)}", t, [a.type for a in args])
    return b.call(fn, list(args))
