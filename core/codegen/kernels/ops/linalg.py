"""Small dense linear algebra: the determinant (Det) by Gaussian elimination
with partial pivoting, one matrix at a time in double precision (a scratch copy
of the matrix is reduced in place)."""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.typed_ops import call_intrinsic
from ..support.vloop import define_kernel, entry_alloca


def det_kernel() -> Kernel:
    """(x, y, work, batch, m): y[k] = det(x[k]) for batch float32 m x m matrices;
    work: scratch for m*m doubles."""
    name = "det_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 3 + [U.I64] * 2,
                              ["x", "y", "work", "batch", "m"])
        x, y, work, batch, m = fn.args
        det = entry_alloca(b, U.F64, "det")
        with U.for_range(b, U.i64(0), batch, name="k") as k:
            size = b.mul(m, m)
            with U.for_range(b, U.i64(0), size, name="c") as c:
                v = U.load(b, x, b.add(b.mul(k, size), c))
                U.store(b, b.fpext(v, U.F64), work, c)
            b.store(ir.Constant(U.F64, 1.0), det)
            with U.for_range(b, U.i64(0), m, name="col") as col:
                _eliminate(b, work, m, col, det)
            U.store(b, b.fptrunc(b.load(det, typ=U.F64), U.F32), y, k)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3 + (I64,) * 2, build)


def _at(b: ir.IRBuilder, m: ir.Value, row: ir.Value, col: ir.Value) -> ir.Value:
    return b.add(b.mul(row, m), col)


def _eliminate(b: ir.IRBuilder, a: ir.Value, m: ir.Value, col: ir.Value, det: ir.Value) -> None:
    """Pivot the largest |a[r, col]| (r >= col) into row col, fold it into det (with
    the swap's sign), and clear the column below it."""
    best = entry_alloca(b, U.I64, "pivot")
    b.store(col, best)
    with U.for_range(b, b.add(col, U.i64(1)), m, name="r") as r:
        cand = call_intrinsic(b, "fabs", U.load(b, a, _at(b, m, r, col), U.F64))
        cur = call_intrinsic(b, "fabs", U.load(b, a, _at(b, m, b.load(best, typ=U.I64), col),
                                               U.F64))
        with b.if_then(b.fcmp_ordered(">", cand, cur)):
            b.store(r, best)
    p = b.load(best, typ=U.I64)
    with b.if_then(b.icmp_signed("!=", p, col)):
        with U.for_range(b, U.i64(0), m, name="s") as s:
            u, v = U.load(b, a, _at(b, m, p, s), U.F64), U.load(b, a, _at(b, m, col, s), U.F64)
            U.store(b, u, a, _at(b, m, col, s))
            U.store(b, v, a, _at(b, m, p, s))
        b.store(b.fneg(b.load(det, typ=U.F64)), det)
    pivot = U.load(b, a, _at(b, m, col, col), U.F64)
    b.store(b.fmul(b.load(det, typ=U.F64), pivot), det)
    nonzero = b.fcmp_ordered("!=", pivot, ir.Constant(U.F64, 0.0))
    with b.if_then(nonzero):
        with U.for_range(b, b.add(col, U.i64(1)), m, name="r2") as r:
            f = b.fdiv(U.load(b, a, _at(b, m, r, col), U.F64), pivot)
            with U.for_range(b, col, m, name="s2") as s:
                v = b.fsub(U.load(b, a, _at(b, m, r, s), U.F64),
                           b.fmul(f, U.load(b, a, _at(b, m, col, s), U.F64)))
                U.store(b, v, a, _at(b, m, r, s))
