"""Per-element semantics of elementwise ops for every dtype.

An op is `emit(b, args, dtypes, out) -> value`: `args` are compute values
(see dtype_ir: ints as iN, bool as i1, float16 as float), scalars or vectors,
`dtypes` their DTypes and `out` the result's DType; it returns a compute value
of `out`. Integer ops follow numpy / onnx.reference: wrapping arithmetic,
division truncating toward zero, and nothing that could trap (a zero divisor
gives 0 instead of SIGFPE). Transcendental functions run in float32 (double
inputs are narrowed for them; the suite's tolerance is 1e-3 relative).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import llvmlite.ir as ir

from ....ir import DType
from ... import llvm_util as U
from . import mathfn as M
from . import mathfn_trig as T
from .dtype_ir import SIGNED, UNSIGNED, cast, compute_dtype, const, shaped
from .fmod import fmod_float

Emit = Callable[[ir.IRBuilder, Sequence[ir.Value], Sequence[DType], DType], ir.Value]


def _is_float(v: ir.Value) -> bool:
    t = v.type.element if isinstance(v.type, ir.VectorType) else v.type
    return t in (U.F32, U.F64)


def _suffix(t: ir.Type) -> str:
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{_suffix(t.element)}"
    return {U.F32: "f32", U.F64: "f64"}.get(t) or f"i{t.width}"


def call_intrinsic(b: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
    """llvm.<name>.<type of the first arg>(args), returning that type."""
    t = args[0].type
    fn = U.intrinsic(b.module, f"llvm.{name}.{_suffix(t)}", t, [a.type for a in args])
    return b.call(fn, list(args))


def via_f32(b: ir.IRBuilder, fn: Callable[..., ir.Value], *args: ir.Value) -> ir.Value:
    """Apply a float32 math function to float or double values."""
    t = args[0].type
    f32 = shaped(U.F32, t)
    if f32 == t:
        return fn(b, *args)
    return b.fpext(fn(b, *(b.fptrunc(a, f32) for a in args)), t)


# ---------------------------------------------------------------------------
# Arithmetic


def _arith(int_op: str, float_op: str) -> Emit:
    def emit(b, args, dts, out):
        x, y = args
        return getattr(b, float_op if _is_float(x) else int_op)(x, y)

    return emit


def _div(b, args, dts, out):
    x, y = args
    if _is_float(x):
        return b.fdiv(x, y)
    safe = _nonzero(b, y)
    if dts[0] in UNSIGNED:
        return b.udiv(x, safe)
    # x / -1 is -x (wrapping): INT_MIN / -1 would trap
    minus_one = b.icmp_signed("==", y, const(y.type, -1))
    q = b.sdiv(x, b.select(minus_one, const(y.type, 1), safe))
    q = b.select(minus_one, b.sub(const(x.type, 0), x), q)
    return b.select(b.icmp_signed("==", y, const(y.type, 0)), const(x.type, 0), q)


def _nonzero(b: ir.IRBuilder, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("==", y, const(y.type, 0)), const(y.type, 1), y)


def _int_rem(b: ir.IRBuilder, x: ir.Value, y: ir.Value, signed: bool) -> ir.Value:
    """C's x % y, 0 for y == 0 (and for y == -1, where srem could trap)."""
    if not signed:
        r = b.urem(x, _nonzero(b, y))
    else:
        trivial = b.or_(b.icmp_signed("==", y, const(y.type, 0)),
                        b.icmp_signed("==", y, const(y.type, -1)))
        r = b.srem(x, b.select(trivial, const(y.type, 1), y))
    return b.select(b.icmp_signed("==", y, const(y.type, 0)), const(x.type, 0), r)


def _mod(b, args, dts, out):
    """Python's % (numpy.mod): the result takes the divisor's sign, zero included."""
    x, y = args
    if _is_float(x):
        r = fmod_float(b, x, y)
        zero = const(r.type, 0.0)
        fix = b.and_(b.fcmp_ordered("!=", r, zero),
                     b.xor(b.fcmp_ordered("<", r, zero), b.fcmp_ordered("<", y, zero)))
        r = b.select(fix, b.fadd(r, y), r)
        return b.select(b.fcmp_ordered("==", r, zero), call_intrinsic(b, "copysign", zero, y), r)
    r = _int_rem(b, x, y, dts[0] in SIGNED)
    if dts[0] in UNSIGNED:
        return r
    zero = const(r.type, 0)
    fix = b.and_(b.icmp_signed("!=", r, zero),
                 b.xor(b.icmp_signed("<", r, zero), b.icmp_signed("<", y, zero)))
    return b.select(fix, b.add(r, y), r)


def _fmod(b, args, dts, out):
    """C's fmod: the result takes the dividend's sign."""
    x, y = args
    if _is_float(x):
        return fmod_float(b, x, y)
    return _int_rem(b, x, y, dts[0] in SIGNED)


def _pow(b, args, dts, out):
    """Float bases: powf semantics. Integer results: the float power rounded, exact
    while it fits float32's 24-bit mantissa."""
    x, y = args
    f32 = shaped(U.F32, x.type)
    xf = cast(b, x, dts[0], DType.float32) if not _is_float(x) else x
    yf = cast(b, y, dts[1], DType.float32) if not _is_float(y) else y
    if _is_float(x):
        yf = yf if yf.type == x.type else (b.fpext(yf, x.type) if x.type != f32
                                          else b.fptrunc(yf, x.type))
        return via_f32(b, M.pow_f32, x, yf)
    r = M.pow_f32(b, xf, yf if yf.type == f32 else b.fptrunc(yf, f32))
    return cast(b, call_intrinsic(b, "roundeven", r), DType.float32, out)


def _minmax(which: str) -> Emit:
    def emit(b, args, dts, out):
        x, y = args
        if _is_float(x):
            return U.minmax(b, "maximum" if which == "max" else "minimum", x, y)
        if dts[0] is DType.bool:
            return b.or_(x, y) if which == "max" else b.and_(x, y)
        prefix = "s" if dts[0] in SIGNED else "u"
        return call_intrinsic(b, f"{prefix}{which}", x, y)

    return emit


# ---------------------------------------------------------------------------
# Comparisons, logic, bits

_CMP = {"eq": "==", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _compare(which: str) -> Emit:
    def emit(b, args, dts, out):
        x, y = args
        if _is_float(x):
            return b.fcmp_ordered(_CMP[which], x, y)
        if dts[0] in SIGNED:
            return b.icmp_signed(_CMP[which], x, y)
        return b.icmp_unsigned(_CMP[which], x, y)

    return emit


def _shift(left: bool) -> Emit:
    """Shifts of a signed value right are arithmetic. A shift by a negative amount
    or by the width or more gives what numpy gives: 0, or -1 where an arithmetic
    right shift fills with the sign bit (LLVM would give poison)."""

    def emit(b, args, dts, out):
        x, y = args
        width = (x.type.element if isinstance(x.type, ir.VectorType) else x.type).width
        signed = dts[0] in SIGNED
        r = b.shl(x, y) if left else b.ashr(x, y) if signed else b.lshr(x, y)
        overflow = const(x.type, 0)
        if signed and not left:
            overflow = b.ashr(x, const(x.type, width - 1))
        return b.select(b.icmp_unsigned(">=", y, const(y.type, width)), overflow, r)

    return emit


def _not(b, args, dts, out):
    return b.xor(args[0], const(args[0].type, -1 if dts[0] is not DType.bool else 1))


# ---------------------------------------------------------------------------
# Unary


def _float_unary(fn: Callable[[ir.IRBuilder, ir.Value], ir.Value], native: bool = False) -> Emit:
    """A float function; `native` ones work on double directly (LLVM instructions)."""

    def emit(b, args, dts, out):
        x = args[0]
        if not _is_float(x):
            raise TypeError(f"{fn.__name__} of {dts[0]}")
        return fn(b, x) if native else via_f32(b, fn, x)

    return emit


def _neg(b, args, dts, out):
    x = args[0]
    return b.fneg(x) if _is_float(x) else b.sub(const(x.type, 0), x)


def _abs(b, args, dts, out):
    x = args[0]
    if _is_float(x):
        return call_intrinsic(b, "fabs", x)
    if dts[0] in UNSIGNED:
        return x
    fn = U.intrinsic(b.module, f"llvm.abs.{_suffix(x.type)}", x.type, [x.type, U.I1])
    return b.call(fn, [x, ir.Constant(U.I1, 0)])


def _sign(b, args, dts, out):
    x = args[0]
    zero = const(x.type, 0.0 if _is_float(x) else 0)
    one, minus = (const(x.type, v) for v in ((1.0, -1.0) if _is_float(x) else (1, -1)))
    cmp = b.fcmp_ordered if _is_float(x) else (
        b.icmp_signed if dts[0] in SIGNED else b.icmp_unsigned)
    return b.select(cmp(">", x, zero), one, b.select(cmp("<", x, zero), minus, x))


def _relu(b, args, dts, out):
    x = args[0]
    if _is_float(x):
        return U.minmax(b, "maxnum", x, const(x.type, 0.0))
    if dts[0] in UNSIGNED:
        return x
    return call_intrinsic(b, "smax", x, const(x.type, 0))


def _rounding(intrinsic: str) -> Emit:
    def emit(b, args, dts, out):
        x = args[0]
        return call_intrinsic(b, intrinsic, x) if _is_float(x) else x

    return emit


def _isinf(positive: bool, negative: bool) -> Emit:
    def emit(b, args, dts, out):
        x = args[0]
        r = ir.Constant(shaped(U.I1, x.type), None)
        if positive:
            r = b.or_(r, b.fcmp_ordered("==", x, const(x.type, float("inf"))))
        if negative:
            r = b.or_(r, b.fcmp_ordered("==", x, const(x.type, float("-inf"))))
        return r

    return emit


def _cast(b, args, dts, out):
    return cast(b, args[0], dts[0], out)


def _cast_unsaturated(b, args, dts, out):
    return cast(b, args[0], dts[0], out, saturate=False)


def _where(b, args, dts, out):
    return b.select(args[0], args[1], args[2])


def _clip(b, args, dts, out):
    """min(max(x, lo), hi) with NaN kept (numpy.clip)."""
    x, lo, hi = args
    lower, upper = _minmax("max"), _minmax("min")
    r = upper(b, [lower(b, [x, lo], dts[:2], out), hi], dts[:2], out)
    if _is_float(x):
        r = b.select(b.fcmp_unordered("uno", x, x), x, r)
    return r


OPS: dict[str, Emit] = {
    "add": _arith("add", "fadd"), "sub": _arith("sub", "fsub"), "mul": _arith("mul", "fmul"),
    "div": _div, "mod": _mod, "fmod": _fmod, "pow": _pow,
    "max": _minmax("max"), "min": _minmax("min"),
    "eq": _compare("eq"), "lt": _compare("lt"), "le": _compare("le"), "gt": _compare("gt"),
    "ge": _compare("ge"),
    "and": lambda b, a, d, o: b.and_(*a), "or": lambda b, a, d, o: b.or_(*a),
    "xor": lambda b, a, d, o: b.xor(*a), "not": _not,
    "shl": _shift(True), "shr": _shift(False),
    "neg": _neg, "abs": _abs, "sign": _sign, "relu": _relu,
    "floor": _rounding("floor"), "ceil": _rounding("ceil"), "round": _rounding("roundeven"),
    "isnan": lambda b, a, d, o: U.is_nan(b, a[0]),
    "isinf": _isinf(True, True), "isposinf": _isinf(True, False),
    "isneginf": _isinf(False, True),
    "cast": _cast, "cast_nosat": _cast_unsaturated, "identity": lambda b, a, d, o: a[0],
    "where": _where, "clip": _clip,
    "sqrt": _float_unary(lambda b, x: call_intrinsic(b, "sqrt", x), native=True),
    "reciprocal": _float_unary(lambda b, x: b.fdiv(const(x.type, 1.0), x), native=True),
    "exp": _float_unary(M.exp_f32), "log": _float_unary(M.log_f32),
    "tanh": _float_unary(M.tanh_f32), "sigmoid": _float_unary(M.sigmoid_f32),
    "erf": _float_unary(M.erf_f32),
    "sin": _float_unary(T.sin_f32), "cos": _float_unary(T.cos_f32),
    "tan": _float_unary(T.tan_f32), "asin": _float_unary(T.asin_f32),
    "acos": _float_unary(T.acos_f32), "atan": _float_unary(T.atan_f32),
    "sinh": _float_unary(T.sinh_f32), "cosh": _float_unary(T.cosh_f32),
    "asinh": _float_unary(T.asinh_f32), "acosh": _float_unary(T.acosh_f32),
    "atanh": _float_unary(T.atanh_f32),
}


BOOL_RESULTS = frozenset({"eq", "lt", "le", "gt", "ge", "isnan", "isinf", "isposinf",
                          "isneginf"})


def emit_op(b: ir.IRBuilder, op: str, args: Sequence[ir.Value], dtypes: Sequence[DType],
            out: DType) -> ir.Value:
    """OPS[op] on compute values; the result is a compute value of `out`."""
    r = OPS[op](b, args, dtypes, out)
    natural = _natural_dtype(op, dtypes, out)
    return r if compute_dtype(natural) == compute_dtype(out) else cast(b, r, natural, out)


def _natural_dtype(op: str, dtypes: Sequence[DType], out: DType) -> DType:
    """The dtype an op's emitter produces, before any final conversion to `out`."""
    if op in BOOL_RESULTS:
        return DType.bool
    if op in ("cast", "cast_nosat", "pow"):
        return out
    return dtypes[1] if op == "where" else dtypes[0]
