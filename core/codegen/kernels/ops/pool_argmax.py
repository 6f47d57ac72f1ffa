"""MaxPool with its Indices output: each output's maximum and where it was.

The index is the input position flattened over the whole tensor (planes
included), row-major or, with storage_order 1, column-major over the spatial
axes: the lowering passes the multiplier of each axis. Like onnxruntime, the
first tap in row-major window order wins a tie (a later tap must be strictly
greater), and a NaN never replaces a number.

Outputs along the last axis are computed `lanes` at a time, with the same
masked loads as the other pools (pool.PlaneWalker); the window is walked at run
time: Indices is a training / unpooling feature, not a hot inference path.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import parallel_loop
from ..support.vloop import define_kernel, entry_alloca, nested_loops, vector_loop, vstore
from .pool import PlaneWalker, geometry

POINTERS = ["x", "y", "indices"]


def multipliers(outer: int) -> tuple[str, ...]:
    """Names of the index multipliers: the plane's, each outer axis's, the last axis's."""
    return ("mplane", *[f"m{a}" for a in range(outer)], "mx")


def max_pool_indices_kernel(stride_x: int, outer: int = 1) -> Kernel:
    """(x, y, indices, *geometry(outer), *multipliers(outer)): y as the max pool
    kernel computes it, indices[o] = sum of the winning tap's coordinates (plane,
    outer axes, last axis) times their multipliers."""
    name = f"pool{outer + 1}d_argmax_sx{stride_x}_f32"
    names = [*geometry(outer), *multipliers(outer)]
    params = (PTR,) * len(POINTERS) + (I64,) * len(names)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * len(POINTERS) + [U.I64] * len(names),
                              POINTERS + names)
        g = dict(zip(names, fn.args[len(POINTERS):], strict=True))
        rows, taps = g["planes"], g["kw"]
        for a in range(outer):
            rows, taps = b.mul(rows, g[f"OH{a}"]), b.mul(taps, g[f"kh{a}"])
        work = b.mul(b.mul(rows, g["OW"]), taps)

        def row(b: ir.IRBuilder, args: list[ir.Value], r: ir.Value) -> None:
            _ArgmaxBuilder(stride_x, outer, target.f32_lanes, args).emit_row(b, r)

        parallel_loop(b, target.threads, name, list(fn.args), rows, work, row)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


class _ArgmaxBuilder(PlaneWalker):
    def __init__(self, stride_x: int, outer: int, lanes: int, args) -> None:
        self.x, self.y, self.indices = args[:3]
        names = [*geometry(outer), *multipliers(outer)]
        g = dict(zip(names, args[3:], strict=True))
        super().__init__(outer, lanes, g, float("-inf"))
        self.sx = stride_x

    def emit_row(self, b: ir.IRBuilder, r: ir.Value) -> None:
        g, lanes = self.g, self.lanes
        p, coords = self.split_row(b, r)
        strides = self.row_strides(b)
        xplane = U.gep(b, self.x, b.mul(p, strides[0]))
        starts = self.first_taps(b, coords)
        best_slot = entry_alloca(b, U.vec(U.F32, lanes), "best")
        where_slot = entry_alloca(b, U.vec(U.I64, lanes), "where")

        def block(b: ir.IRBuilder, ox: ir.Value, count: ir.Value | None) -> None:
            b.store(ir.Constant(best_slot.allocated_type, [self.fill] * lanes), best_slot)
            b.store(ir.Constant(where_slot.allocated_type, [-1] * lanes), where_slot)
            x0 = b.sub(b.mul(ox, U.i64(self.sx)), g["pw"])  # column of the first tap
            counts = [g[f"kh{a}"] for a in range(self.outer)] + [g["kw"]]
            with nested_loops(b, counts, name="k") as taps:
                self.visit_tap(b, xplane, p, starts, strides, x0, taps, best_slot, where_slot)
            out = b.add(b.mul(r, g["OW"]), ox)
            vstore(b, b.load(best_slot), self.y, out, count)
            vstore(b, b.load(where_slot), self.indices, out, count)

        vector_loop(b, g["OW"], lanes, block, name="ox")

    def visit_tap(self, b: ir.IRBuilder, xplane: ir.Value, p: ir.Value,
                  starts: list[ir.Value], strides: list[ir.Value], x0: ir.Value,
                  taps: list[ir.Value], best_slot: ir.Value, where_slot: ir.Value) -> None:
        """Compare the tap at window position `taps` with the best so far, per lane."""
        g, lanes, wide = self.g, self.lanes, self.sx * self.lanes
        row, flat = (None, None), b.mul(p, g["mplane"])
        for a in range(self.outer):
            index = b.add(starts[a], b.mul(taps[a], g[f"dh{a}"]))
            row = self.input_row(b, a, index, strides, row)
            flat = b.add(flat, b.mul(index, g[f"m{a}"]))
        ix = b.add(x0, b.mul(taps[-1], g["dw"]))
        inside = self.inside_columns(b, ix, wide)
        v = self.load_inside(b, xplane, row, ix, inside)
        mask = b.and_(inside, U.splat(b, row[1], wide))
        if self.sx > 1:  # the taps of `lanes` outputs are every sx-th column
            keep = ir.Constant(U.vec(U.I32, lanes), [self.sx * j for j in range(lanes)])
            v = b.shuffle_vector(v, ir.Constant(v.type, ir.Undefined), keep)
            mask = b.shuffle_vector(mask, ir.Constant(mask.type, ir.Undefined), keep)
        columns = b.add(U.splat(b, ix, lanes),
                        ir.Constant(U.vec(U.I64, lanes), [self.sx * j for j in range(lanes)]))
        where = b.add(U.splat(b, flat, lanes), b.mul(columns, U.splat(b, g["mx"], lanes)))
        best, found = b.load(best_slot), b.load(where_slot)
        # strictly greater: the first of equal maxima wins; the first tap inside the
        # input is taken whatever its value, so a window of -inf still has an index
        unset = b.icmp_signed("<", found, ir.Constant(found.type, [0] * lanes))
        take = b.or_(b.fcmp_ordered(">", v, best), b.and_(mask, unset))
        b.store(b.select(take, v, best), best_slot)
        b.store(b.select(take, where, found), where_slot)
