"""2-D pooling over NCHW planes: max / average windows, and global pooling.

Window geometry is decided at compile time (core/lower/pool.py) and passed as
small tables, so one kernel per (kind, x-stride) serves every pooling layer:
- rows[oy] = (first input row, number of rows) of the window clipped to the input;
- cols[ox] = (first input column, number of columns), likewise;
- ox in [ox_lo, ox_hi): windows lying wholly inside the input, computed `lanes`
  outputs at a time; the few border outputs outside that range use the tables.
Padding is never materialized: clipped taps are simply skipped, and averages
multiply by 1/count factors that are separable into rscale[oy] * cscale[ox].

The x-stride is a compile-time constant so that strided windows are read by
one wide contiguous load plus a shuffle (vloop.strided_vload), not a gather.
"""

from __future__ import annotations

import llvmlite.ir as ir

from .. import llvm_util as U
from ..kernel import F32, I64, PTR, Kernel
from ..machine import CpuTarget
from .vloop import (
    entry_alloca,
    fold,
    max_nnan,
    nested_loops,
    reduce,
    strided_vload,
    vector_loop,
    vload,
    vstore,
)

GEOMETRY = ("planes", "H", "W", "OH", "OW", "kw", "dh", "dw", "pw", "ox_lo", "ox_hi")


def pool2d_kernel(kind: str, stride_x: int) -> Kernel:
    """kind 'max': (x, y, rows, cols, *GEOMETRY);
    kind 'avg': (x, y, rows, cols, rscale, cscale, *GEOMETRY), scales as f32 tables."""
    assert kind in ("max", "avg")
    name = f"pool2d_{kind}_sx{stride_x}_f32"
    ptrs = ["x", "y", "rows", "cols"] + (["rscale", "cscale"] if kind == "avg" else [])
    params = (PTR,) * len(ptrs) + (I64,) * len(GEOMETRY)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = U.define(module, name, [U.PTR] * len(ptrs) + [U.I64] * len(GEOMETRY),
                         ptrs + list(GEOMETRY))
        _PoolBuilder(kind, stride_x, target.f32_lanes, fn.args).emit(b)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


class _PoolBuilder:
    def __init__(self, kind: str, stride_x: int, lanes: int, args) -> None:
        self.kind, self.sx, self.lanes = kind, stride_x, lanes
        nptr = 6 if kind == "avg" else 4
        self.x, self.y, self.rows, self.cols = args[:4]
        self.rscale, self.cscale = args[4:nptr] if kind == "avg" else (None, None)
        self.g = dict(zip(GEOMETRY, args[nptr:], strict=True))

    def combine(self, b: ir.IRBuilder, acc: ir.Value, v: ir.Value) -> ir.Value:
        return max_nnan(b, acc, v) if self.kind == "max" else U.fadd(b, acc, v)

    def init(self, t: ir.Type) -> ir.Constant:
        value = float("-inf") if self.kind == "max" else 0.0
        return ir.Constant(t, [value] * t.count if isinstance(t, ir.VectorType) else value)

    def emit(self, b: ir.IRBuilder) -> None:
        g = self.g
        with nested_loops(b, [g["planes"], g["OH"]], name="p") as (p, oy):
            xplane = U.gep(b, self.x, b.mul(p, b.mul(g["H"], g["W"])))
            yrow = U.gep(b, self.y, b.mul(b.add(b.mul(p, g["OH"]), oy), g["OW"]))
            first_row = U.load(b, self.rows, b.mul(oy, U.i64(2)), U.I64)
            nrows = U.load(b, self.rows, b.add(b.mul(oy, U.i64(2)), U.i64(1)), U.I64)
            rscale = U.load(b, self.rscale, oy) if self.kind == "avg" else None
            win = (xplane, yrow, first_row, nrows, rscale)
            with U.for_range(b, U.i64(0), g["ox_lo"], name="left") as ox:
                self.border_output(b, win, ox)
            self.interior(b, win)
            with U.for_range(b, g["ox_hi"], g["OW"], name="right") as ox:
                self.border_output(b, win, ox)

    def rows_of(self, b: ir.IRBuilder, win, body) -> ir.Value:
        """Fold body(b, row pointer, acc) over the window's rows."""
        xplane, _, first_row, nrows, _ = win
        return fold(b, nrows, body.init, lambda b, t, acc: body(
            b, U.gep(b, xplane, b.mul(b.add(first_row, b.mul(t, self.g["dh"])), self.g["W"])),
            acc))

    def border_output(self, b: ir.IRBuilder, win, ox: ir.Value) -> None:
        first_col = U.load(b, self.cols, b.mul(ox, U.i64(2)), U.I64)
        ncols = U.load(b, self.cols, b.add(b.mul(ox, U.i64(2)), U.i64(1)), U.I64)

        def row(b, xrow, acc):
            return fold(b, ncols, acc, lambda b, u, acc: self.combine(
                b, acc, U.load(b, xrow, b.add(first_col, b.mul(u, self.g["dw"])))))

        row.init = self.init(U.F32)
        acc = self.rows_of(b, win, row)
        if self.kind == "avg":
            # strict multiply: under 'fast', 0 * scale folds to 0 for empty windows and
            # LLVM turns the border loop into a memset call
            acc = b.fmul(acc, U.fmul(b, win[4], U.load(b, self.cscale, ox)))
        U.store(b, acc, win[1], ox)

    def interior(self, b: ir.IRBuilder, win) -> None:
        g, lanes = self.g, self.lanes
        n = b.sub(g["ox_hi"], g["ox_lo"])

        def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
            ox = b.add(g["ox_lo"], i)
            x0 = b.sub(b.mul(ox, U.i64(self.sx)), g["pw"])

            def row(b, xrow, acc):
                return fold(b, g["kw"], acc, lambda b, kx, acc: self.combine(
                    b, acc, strided_vload(b, xrow, b.add(x0, b.mul(kx, g["dw"])), lanes,
                                          self.sx, count)))

            row.init = self.init(U.vec(U.F32, lanes))
            acc = self.rows_of(b, win, row)
            if self.kind == "avg":
                scale = U.fmul(b, U.splat(b, win[4], lanes),
                               vload(b, self.cscale, ox, lanes, count, fill=0.0))
                acc = b.fmul(acc, scale)
            vstore(b, acc, win[1], ox, count)

        vector_loop(b, n, lanes, body, name="ox")


def global_pool_kernel(kind: str) -> Kernel:
    """y[p] = max or scale * sum of x[p, 0:n] for p < planes: (x, y, planes, n, scale)."""
    assert kind in ("max", "avg")
    name = f"global_pool_{kind}_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = U.define(module, name, [U.PTR, U.PTR, U.I64, U.I64, U.F32],
                         ["x", "y", "planes", "n", "scale"])
        x, y, planes, n, scale = fn.args
        fill = float("-inf") if kind == "max" else 0.0
        vt = U.vec(U.F32, lanes)
        with U.for_range(b, U.i64(0), planes, name="p") as p:
            acc = entry_alloca(b, vt, "acc")
            b.store(ir.Constant(vt, [fill] * lanes), acc)
            base = b.mul(p, n)

            def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
                v = vload(b, x, b.add(base, i), lanes, count, fill=fill)
                old = b.load(acc, typ=vt)
                b.store(max_nnan(b, old, v) if kind == "max" else U.fadd(b, old, v), acc)

            vector_loop(b, n, lanes, body)
            total = b.load(acc, typ=vt)
            if kind == "max":
                U.store(b, reduce(b, "fmax", total), y, p)
            else:
                U.store(b, U.fmul(b, reduce(b, "fadd", total), scale), y, p)
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR, I64, I64, F32), build)
