"""Elementwise float32 kernels: unary maps, broadcasting binary ops, per-channel affine.

The per-element math lives in two tables, UNARY and BINARY, of functions
`(builder, value(s), params) -> value` that work on scalars and vectors alike;
other kernels (e.g. a GEMM epilogue applying a fused activation) can call
`emit_unary` directly.

Binary ops take a broadcast *plan* (see core/lower/elementwise.py): outer dims
walked by nested loops with per-operand strides read from a small i64 table, and
one contiguous inner dim in which each operand is either a vector ('v', stride
1) or a scalar repeated across it ('s', stride 0). Same-shape, scalar-operand
and per-channel ([C,1,1] against [N,C,H,W]) operands all reduce to that form.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import llvmlite.ir as ir

from ....program import F32, I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import parallel_loop, parallel_rows
from ..support import mathfn as M
from ..support.vloop import define_kernel, like, vector_loop, vload, vstore

# ---------------------------------------------------------------------------
# Unary maps

Emit1 = Callable[[ir.IRBuilder, ir.Value, Sequence[ir.Value]], ir.Value]


@dataclass(frozen=True)
class UnaryOp:
    params: tuple[str, ...]  # names of the op's f32 scalar parameters, passed at run time
    emit: Emit1


def _splat_like(b: ir.IRBuilder, s: ir.Value, t: ir.Type) -> ir.Value:
    return U.splat(b, s, t.count) if isinstance(t, ir.VectorType) else s


def _relu(b, x, p):
    return U.fmax(b, x, like(x.type, 0.0))


def _leaky_relu(b, x, p):
    alpha = _splat_like(b, p[0], x.type)
    neg = b.fcmp_ordered("<", x, like(x.type, 0.0))
    return b.select(neg, U.fmul(b, x, alpha), x)


def _clip(b, x, p):
    lo, hi = (_splat_like(b, v, x.type) for v in p)
    return U.fmin(b, U.fmax(b, x, lo), hi)


def _hard_sigmoid(b, x, p):
    alpha, beta = (_splat_like(b, v, x.type) for v in p)
    y = U.fadd(b, U.fmul(b, x, alpha), beta)
    return U.fmin(b, U.fmax(b, y, like(x.type, 0.0)), like(x.type, 1.0))


def _hard_swish(b, x, p):
    y = U.fadd(b, U.fmul(b, x, like(x.type, 1.0 / 6.0)), like(x.type, 0.5))
    return U.fmul(b, x, U.fmin(b, U.fmax(b, y, like(x.type, 0.0)), like(x.type, 1.0)))


UNARY: dict[str, UnaryOp] = {
    "identity": UnaryOp((), lambda b, x, p: x),
    "relu": UnaryOp((), _relu),
    "leaky_relu": UnaryOp(("alpha",), _leaky_relu),
    "clip": UnaryOp(("min", "max"), _clip),
    "hard_sigmoid": UnaryOp(("alpha", "beta"), _hard_sigmoid),
    "hard_swish": UnaryOp((), _hard_swish),
    "sigmoid": UnaryOp((), lambda b, x, p: M.sigmoid_f32(b, x)),
    "tanh": UnaryOp((), lambda b, x, p: M.tanh_f32(b, x)),
    "exp": UnaryOp((), lambda b, x, p: M.exp_f32(b, x)),
    "log": UnaryOp((), lambda b, x, p: M.log_f32(b, x)),
    "erf": UnaryOp((), lambda b, x, p: M.erf_f32(b, x)),
    "neg": UnaryOp((), lambda b, x, p: b.fneg(x)),
    "abs": UnaryOp((), lambda b, x, p: M.fabs(b, x)),
    "sqrt": UnaryOp((), lambda b, x, p: M.sqrt_f32(b, x)),
    "square": UnaryOp((), lambda b, x, p: U.fmul(b, x, x)),
    "cube": UnaryOp((), lambda b, x, p: U.fmul(b, U.fmul(b, x, x), x)),  # as onnxruntime
    # strict division: 'fast' would allow an approximate reciprocal
    "reciprocal": UnaryOp((), lambda b, x, p: b.fdiv(like(x.type, 1.0), x)),
}


def emit_unary(b: ir.IRBuilder, op: str, x: ir.Value, params: Sequence[ir.Value] = ()) -> ir.Value:
    """Apply UNARY[op] to a float or float vector; params are f32 scalars."""
    return UNARY[op].emit(b, x, params)


def unary_kernel(op: str) -> Kernel:
    """y[i] = op(x[i], params...) for i < n: (x, y, n, *params). x may equal y."""
    nparams = len(UNARY[op].params)
    name = f"unary_{op}_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR, U.PTR, U.I64] + [U.F32] * nparams,
                              ["x", "y", "n"] + list(UNARY[op].params))

        def block(b: ir.IRBuilder, args: list[ir.Value], start: ir.Value,
                  length: ir.Value) -> None:
            x, y, _, *params = args
            x, y = U.gep(b, x, start), U.gep(b, y, start)

            def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
                vstore(b, emit_unary(b, op, vload(b, x, i, lanes, count), params), y, i, count)

            vector_loop(b, length, lanes, body)

        split_flat(b, target.threads, name, list(fn.args), 2, block, UNARY_COST.get(op, 1))
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR, I64) + (F32,) * nparams, build)


# Work per element, in GRAIN's units (a simple vector op = 1): the polynomial
# functions cost ~10 vector operations, so an LLM's [32, 2816] Sigmoid is worth a
# second thread while a ReLU of that size is not.
UNARY_COST = {"sigmoid": 8, "tanh": 8, "exp": 8, "log": 8, "erf": 8, "sqrt": 2}
BINARY_COST = 2  # two loads and a store per element


# A flat loop is split across threads in blocks of this many elements (a
# multiple of every vector width, so only the very last block has a tail).
FLAT_BLOCK = 4096
FlatBlock = Callable[[ir.IRBuilder, list[ir.Value], ir.Value, ir.Value], None]


def split_flat(b: ir.IRBuilder, threads: int, name: str, args: list[ir.Value], n_arg: int,
               block: FlatBlock, cost: int = 1) -> None:
    """block(b, args, start, length) over [0, args[n_arg]) in FLAT_BLOCK pieces,
    the pieces split across workers when there is enough work (`cost` per element)."""
    n = args[n_arg]
    blocks = b.sdiv(b.add(n, U.i64(FLAT_BLOCK - 1)), U.i64(FLAT_BLOCK))

    def piece(b: ir.IRBuilder, args: list[ir.Value], i: ir.Value) -> None:
        start = b.mul(i, U.i64(FLAT_BLOCK))
        rest = b.sub(args[n_arg], start)
        block(b, args, start, b.select(b.icmp_signed("<", rest, U.i64(FLAT_BLOCK)), rest,
                                       U.i64(FLAT_BLOCK)))

    work = b.mul(n, U.i64(cost)) if cost != 1 else n
    parallel_loop(b, threads, name, args, blocks, work, piece)


# ---------------------------------------------------------------------------
# Binary ops with broadcasting

Emit2 = Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]


def _prelu(b, x, slope):
    return b.select(b.fcmp_ordered("<", x, like(x.type, 0.0)), U.fmul(b, x, slope), x)


BINARY: dict[str, Emit2] = {
    "add": lambda b, x, y: U.fadd(b, x, y),
    "sub": lambda b, x, y: U.fsub(b, x, y),
    "mul": lambda b, x, y: U.fmul(b, x, y),
    "div": lambda b, x, y: b.fdiv(x, y),  # strict, see "reciprocal"
    "max": lambda b, x, y: U.fmax(b, x, y),
    "min": lambda b, x, y: U.fmin(b, x, y),
    "pow": lambda b, x, y: M.pow_f32(b, x, y),
    "prelu": _prelu,
}

MAX_OUTER_DIMS = 5  # outer loops of the nd kernel; plans are padded with size-1 dims
PLAN_COLUMNS = 4  # per outer dim: count, a stride, b stride, y stride (elements)


def binary_kernel(op: str, kinds: str, nd: bool) -> Kernel:
    """y = op(a, b) over a broadcast plan.

    kinds: two letters, 'v' or 's', for a and b along the inner dim.
    flat (nd=False): (a, b, y, n), one inner dim of n elements.
    nd: (a, b, y, plan, n) where plan is an i64 [MAX_OUTER_DIMS, PLAN_COLUMNS] table.
    y may alias a or b when their strides equal y's (in-place accumulation).
    """
    assert op in BINARY and len(kinds) == 2 and set(kinds) <= {"v", "s"}
    name = f"binary_{op}_{kinds}{'_nd' if nd else ''}_f32"
    params = (PTR, PTR, PTR, PTR, I64) if nd else (PTR, PTR, PTR, I64)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        irtypes = [U.PTR if p == PTR else U.I64 for p in params]
        names = ["a", "b", "y", "plan", "n"] if nd else ["a", "b", "y", "n"]
        fn, b = define_kernel(module, name, irtypes, names)
        if not nd:
            def block(b: ir.IRBuilder, args: list[ir.Value], start: ir.Value,
                      length: ir.Value) -> None:
                offsets = [start if k == "v" else U.i64(0) for k in kinds] + [start]
                _binary_inner(b, op, kinds, args[:3], offsets, length, target.f32_lanes)

            split_flat(b, target.threads, name, list(fn.args), 3, block, BINARY_COST)
        else:
            def row(b: ir.IRBuilder, args: list[ir.Value], idx: list[ir.Value],
                    start: ir.Value, count: ir.Value) -> None:
                offsets = [_outer_offset(b, args[3], idx, col) for col in (1, 2, 3)]
                # vector operands and y start at this piece; a scalar operand stays put
                offsets = [b.add(o, start) if k == 2 or kinds[k] == "v" else o
                           for k, o in enumerate(offsets)]
                _binary_inner(b, op, kinds, args[:3], offsets, count, target.f32_lanes)

            parallel_rows(b, target.threads, name, list(fn.args), _plan_counts, fn.args[4], row,
                          BINARY_COST)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


def _plan_counts(b: ir.IRBuilder, args: list[ir.Value]) -> list[ir.Value]:
    return [U.load(b, args[3], U.i64(d * PLAN_COLUMNS), U.I64) for d in range(MAX_OUTER_DIMS)]


def _outer_offset(b: ir.IRBuilder, plan: ir.Value, idx: list[ir.Value], col: int) -> ir.Value:
    off = U.i64(0)
    for d, i in enumerate(idx):
        stride = U.load(b, plan, U.i64(d * PLAN_COLUMNS + col), U.I64)
        off = b.add(off, b.mul(i, stride))
    return off


def _binary_inner(b: ir.IRBuilder, op: str, kinds: str, ptrs: Sequence[ir.Value],
                  offsets: Sequence[ir.Value], n: ir.Value, lanes: int) -> None:
    a, bb, y = ptrs
    oa, ob, oy = offsets
    # scalar operands are loaded once, before the inner loop
    sa = U.splat(b, U.load(b, a, oa), lanes) if kinds[0] == "s" else None
    sb = U.splat(b, U.load(b, bb, ob), lanes) if kinds[1] == "s" else None

    def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
        va = sa if sa is not None else vload(b, a, b.add(oa, i), lanes, count)
        vb = sb if sb is not None else vload(b, bb, b.add(ob, i), lanes, count)
        vstore(b, BINARY[op](b, va, vb), y, b.add(oy, i), count)

    vector_loop(b, n, lanes, body)


# ---------------------------------------------------------------------------
# Per-channel affine (inference BatchNormalization)


def channel_affine_kernel() -> Kernel:
    """y[o, c, i] = x[o, c, i] * scale[c] + shift[c]: (x, scale, shift, y, outer, C, inner)."""
    name = "channel_affine_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR] * 4 + [U.I64] * 3,
                              ["x", "scale", "shift", "y", "outer", "channels", "inner"])
        _, _, _, _, outer, channels, inner = fn.args
        planes = b.mul(outer, channels)  # the units split across threads

        def plane(b: ir.IRBuilder, args: list[ir.Value], p: ir.Value) -> None:
            x, scale, shift, y, _, channels, inner = args
            c = b.srem(p, channels)
            a = U.splat(b, U.load(b, scale, c), lanes)
            s = U.splat(b, U.load(b, shift, c), lanes)
            base = b.mul(p, inner)

            def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
                at = b.add(base, i)
                vstore(b, M.fmuladd(b, vload(b, x, at, lanes, count), a, s), y, at, count)

            vector_loop(b, inner, lanes, body)

        parallel_loop(b, target.threads, name, list(fn.args), planes, b.mul(planes, inner),
                      plane)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 4 + (I64,) * 3, build)
