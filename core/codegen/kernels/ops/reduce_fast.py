"""Float32 reductions over one contiguous block of axes, the input viewed as
[outer, r, inner] (what LayerNorm-style means, global pooling and most model
reductions are):

- rows (inner == 1): each row of r contiguous elements is folded into one
  vector accumulator, then reduced horizontally;
- columns (inner > 1): vectors run along inner and the r slices are folded
  into them, so every load is contiguous and no horizontal step is needed.

Masked tail lanes read the reduction's identity, so one vector body serves all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support import mathfn as M
from ..support.vloop import (
    define_kernel,
    entry_alloca,
    like,
    max_nnan,
    min_nnan,
    vector_loop,
    vload,
    vstore,
)

# kind -> (identity, combine, pre) on float vectors; post-processing in _post
_Combine = Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]
_SPECS: dict[str, tuple[float, _Combine, str | None]] = {
    "sum": (0.0, U.fadd, None), "mean": (0.0, U.fadd, None), "logsum": (0.0, U.fadd, None),
    "max": (float("-inf"), max_nnan, None), "min": (float("inf"), min_nnan, None),
    "prod": (1.0, U.fmul, None), "l1": (0.0, U.fadd, "abs"), "l2": (0.0, U.fadd, "square"),
    "sumsquare": (0.0, U.fadd, "square"), "logsumexp": (0.0, U.fadd, "exp"),
}
KINDS = frozenset(_SPECS)
_HORIZONTAL = {"sum": "fadd", "mean": "fadd", "logsum": "fadd", "l1": "fadd", "l2": "fadd",
               "sumsquare": "fadd", "logsumexp": "fadd", "max": "fmax", "min": "fmin",
               "prod": "fmul"}


def contiguous_form(shape: Sequence[int], reduced: Sequence[int]) -> tuple[int, int, int] | None:
    """(outer, r, inner) if the reduced dims are adjacent once size-1 dims are ignored.
    Symbolic dims count as not 1 first (no guard: the products are right for any
    size); only if that fails is each compared with 1 (guarded)."""
    static = [d for d in range(len(shape)) if not (isinstance(shape[d], int) and shape[d] == 1)]
    form = _form(shape, reduced, static)
    if form is not None or all(isinstance(d, int) for d in shape):
        return form
    return _form(shape, reduced, [d for d in range(len(shape)) if shape[d] != 1])


def _form(shape: Sequence[int], reduced: Sequence[int],
          kept: list[int]) -> tuple[int, int, int] | None:
    red = [d for d in kept if d in reduced]
    if not red:
        return math.prod(shape), 1, 1
    pos = [kept.index(d) for d in red]
    if pos != list(range(pos[0], pos[0] + len(pos))):
        return None
    first, last = red[0], red[-1]
    return (math.prod(shape[:first]), math.prod(shape[first:last + 1]),
            math.prod(shape[last + 1:]))


def _pre(b: ir.IRBuilder, pre: str | None, v: ir.Value, shift: ir.Value | None) -> ir.Value:
    if pre == "abs":
        return M.fabs(b, v)
    if pre == "square":
        return U.fmul(b, v, v)
    if pre == "exp":  # strict: 'fast' would make the -inf fill of tail lanes poison
        return M.exp_f32(b, b.fsub(v, shift))
    return v


def _post(b: ir.IRBuilder, kind: str, v: ir.Value, r: ir.Value,
          shift: ir.Value | None) -> ir.Value:
    if kind == "mean":
        return b.fdiv(v, _splat_like(b, b.sitofp(r, U.F32), v.type))
    if kind == "l2":
        return M.sqrt_f32(b, v)
    if kind == "logsum":
        return M.log_f32(b, v)
    if kind == "logsumexp":
        return b.fadd(M.log_f32(b, v), shift)
    return v


def _splat_like(b: ir.IRBuilder, s: ir.Value, t: ir.Type) -> ir.Value:
    return U.splat(b, s, t.count) if isinstance(t, ir.VectorType) else s


def _finite_or_zero(b: ir.IRBuilder, m: ir.Value) -> ir.Value:
    """The max used as a shift: 0 when it is -inf (an empty or all -inf slice)."""
    return b.select(b.fcmp_ordered("==", m, like(m.type, float("-inf"))), like(m.type, 0.0), m)


def rows_kernel(kind: str) -> Kernel:
    """(x, y, rows, r): y[o] = kind over x[o, 0:r]."""
    name = f"reduce_rows_{kind}_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        vt = U.vec(U.F32, lanes)
        fn, b = define_kernel(module, name, [U.PTR, U.PTR, U.I64, U.I64], ["x", "y", "rows", "r"])
        x, y, rows, r = fn.args
        acc = entry_alloca(b, vt, "acc")
        with U.for_range(b, U.i64(0), rows, name="o") as o:
            base = b.mul(o, r)
            shift = None
            if kind == "logsumexp":
                m = _fold_row(b, x, base, r, acc, lanes, float("-inf"), max_nnan, None, None)
                shift = _finite_or_zero(b, _horizontal(b, "fmax", m))
            init, combine, pre = _SPECS[kind]
            fill = float("-inf") if kind == "logsumexp" else init
            vshift = None if shift is None else U.splat(b, shift, lanes)
            total = _horizontal(b, _HORIZONTAL[kind],
                                _fold_row(b, x, base, r, acc, lanes, init, combine, pre, vshift,
                                          fill))
            U.store(b, _post(b, kind, total, r, shift), y, o)
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR, I64, I64), build)


def _fold_row(b: ir.IRBuilder, x: ir.Value, base: ir.Value, r: ir.Value, acc: ir.Value,
              lanes: int, init: float, combine: _Combine, pre: str | None,
              shift: ir.Value | None, fill: float | None = None) -> ir.Value:
    vt = U.vec(U.F32, lanes)
    b.store(ir.Constant(vt, [init] * lanes), acc)

    def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
        v = vload(b, x, b.add(base, i), lanes, count, fill=init if fill is None else fill)
        b.store(combine(b, b.load(acc, typ=vt), _pre(b, pre, v, shift)), acc)

    vector_loop(b, r, lanes, body)
    return b.load(acc, typ=vt)


def _horizontal(b: ir.IRBuilder, which: str, v: ir.Value) -> ir.Value:
    vt = v.type
    name = f"llvm.vector.reduce.{which}.v{vt.count}f32"
    if which in ("fadd", "fmul"):
        fn = U.intrinsic(b.module, name, U.F32, [U.F32, vt])
        start = U.f32(-0.0 if which == "fadd" else 1.0)
        return b.call(fn, [start, v], fastmath=U.FAST)
    fn = U.intrinsic(b.module, name, U.F32, [vt])
    return b.call(fn, [v], fastmath=("nnan",))


def columns_kernel(kind: str) -> Kernel:
    """(x, y, outer, r, inner): y[o, i] = kind over x[o, 0:r, i]."""
    name = f"reduce_columns_{kind}_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR, U.PTR] + [U.I64] * 3,
                              ["x", "y", "outer", "r", "inner"])
        x, y, outer, r, inner = fn.args
        with U.for_range(b, U.i64(0), outer, name="o") as o:
            base = b.mul(b.mul(o, r), inner)
            out_base = b.mul(o, inner)

            def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
                column = _Column(x, b.add(base, i), inner, r, lanes, count)
                shift = None
                if kind == "logsumexp":
                    shift = _finite_or_zero(b, column.fold(b, float("-inf"), max_nnan, None,
                                                           None))
                init, combine, pre = _SPECS[kind]
                v = column.fold(b, init, combine, pre, shift)
                vstore(b, _post(b, kind, v, r, shift), y, b.add(out_base, i), count)

            vector_loop(b, inner, lanes, body)
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR, I64, I64, I64), build)


class _Column:
    """`lanes` adjacent inner positions (the first `count` valid) over r slices."""

    def __init__(self, x: ir.Value, start: ir.Value, inner: ir.Value, r: ir.Value, lanes: int,
                 count: ir.Value | None):
        self.x, self.start, self.inner, self.r, self.lanes, self.count = (
            x, start, inner, r, lanes, count)

    def fold(self, b: ir.IRBuilder, init: float, combine: _Combine, pre: str | None,
             shift: ir.Value | None) -> ir.Value:
        acc = entry_alloca(b, U.vec(U.F32, self.lanes), "col")
        b.store(like(U.vec(U.F32, self.lanes), init), acc)
        with U.for_range(b, U.i64(0), self.r, name="k") as k:
            at = b.add(self.start, b.mul(k, self.inner))
            v = vload(b, self.x, at, self.lanes, self.count)
            vt = U.vec(U.F32, self.lanes)
            b.store(combine(b, b.load(acc, typ=vt), _pre(b, pre, v, shift)), acc)
        return b.load(acc, typ=U.vec(U.F32, self.lanes))
