"""N-D pooling over NC(D)HW planes: max / average / Lp windows, and global pooling.

The last spatial axis is the vector axis: `lanes` outputs along x are computed
at once, from masked loads that read only input positions inside the plane, so
padding is never materialized and borders need no scalar code. The spatial
axes before it (`outer` of them: 1 for 1-D and 2-D pools, the 1-D ones seen as
planes one row high, 2 for 3-D) are walked per output row: a window's rows are
the product of its taps along those axes, each row a run of input columns.

Averages multiply by 1/count factors that are separable, rscale[output row
within the plane] * cscale[ox], computed at compile time (core/lower/pool.py)
with ONNX's counting rules. Lp pools sum |x|^p (p an integer attribute) and
take the p-th root at the end.

The x-stride, and unless it is large the window, are compile-time constants (one
kernel per pooling configuration, a handful per network): the window's rows are
combined first, on contiguous vectors of input columns, and the taps along x
(strided or not) are then shuffles of those vectors, with no gather.
"""

from __future__ import annotations

import itertools
import math

import llvmlite.ir as ir

from ....program import F32, I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import parallel_loop
from ..support.mathfn import fabs, pow_f32, sqrt_f32
from ..support.vloop import (
    define_kernel,
    entry_alloca,
    fold,
    masked_vload,
    max_nnan,
    reduce,
    vector_loop,
    vload,
    vstore,
)

MAX_UNROLLED_TAPS = 64  # larger windows loop over their taps at run time
MAX_MULTIPLIED_POWER = 4  # Lp's |x|^p by multiplications up to this p, pow beyond
ROW_FIELDS = ("H", "OH", "kh", "sh", "dh", "ph")  # per outer axis: extent, output extent,
# window, stride, dilation, leading padding
COLUMN_FIELDS = ("W", "OW", "kw", "dw", "pw")  # the same for the vector axis (its stride
# is compiled in)


def geometry(outer: int) -> tuple[str, ...]:
    """Names of a pool kernel's i64 arguments, after its pointers."""
    rows = [f"{field}{a}" for a in range(outer) for field in ROW_FIELDS]
    return ("planes", *rows, *COLUMN_FIELDS)


def pointer_args(kind: str) -> list[str]:
    return ["x", "y"] + (["rscale", "cscale"] if kind == "avg" else [])


def lp_order(kind: str) -> int | None:
    """p of an 'lp<p>' kind, None for max / avg."""
    return int(kind[2:]) if kind.startswith("lp") else None


def pool_kernel(kind: str, stride_x: int, window: tuple[int, ...] | None = None,
                dw: int | None = None, outer: int = 1) -> Kernel:
    """kind 'max', 'avg' or 'lp<p>' (p >= 1); arguments (*pointer_args(kind),
    *geometry(outer)).

    window (outer + 1 extents, the vector axis last) and dw: the window and
    x-dilation the code is specialized for, their arguments then being ignored;
    None for a kernel taking any window at run time.
    """
    assert kind in ("max", "avg") or (lp_order(kind) or 0) >= 1, kind
    if window is None or dw is None or math.prod(window) > MAX_UNROLLED_TAPS:
        window = dw = None
    assert window is None or len(window) == outer + 1
    tag = f"{'x'.join(map(str, window))}_dx{dw}" if window else "any"
    name = f"pool{outer + 1}d_{kind}_{tag}_sx{stride_x}_f32"
    ptrs, names = pointer_args(kind), geometry(outer)
    params = (PTR,) * len(ptrs) + (I64,) * len(names)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * len(ptrs) + [U.I64] * len(names),
                              ptrs + list(names))
        g = dict(zip(names, fn.args[len(ptrs):], strict=True))
        rows = g["planes"]  # output rows: the units split across threads
        for a in range(outer):
            rows = b.mul(rows, g[f"OH{a}"])
        taps = U.i64(math.prod(window)) if window else _runtime_taps(b, g, outer)
        work = b.mul(b.mul(rows, g["OW"]), taps)

        def row(b: ir.IRBuilder, args: list[ir.Value], r: ir.Value) -> None:
            builder = _PoolBuilder(kind, stride_x, window, dw, outer, target.f32_lanes, args)
            builder.emit_row(b, r)

        parallel_loop(b, target.threads, name, list(fn.args), rows, work, row)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


def _runtime_taps(b: ir.IRBuilder, g: dict[str, ir.Value], outer: int) -> ir.Value:
    taps = g["kw"]
    for a in range(outer):
        taps = b.mul(taps, g[f"kh{a}"])
    return taps


class PlaneWalker:
    """Addressing shared by the pool kernels: output row r of planes x prod(OH)
    rows, and masked loads of input rows that touch only the plane."""

    def __init__(self, outer: int, lanes: int, g: dict[str, ir.Value], fill: float) -> None:
        self.outer, self.lanes, self.g = outer, lanes, g
        self.fill = fill  # what a skipped tap reads as

    def split_row(self, b: ir.IRBuilder, r: ir.Value) -> tuple[ir.Value, list[ir.Value]]:
        """(plane, output coordinates along the outer axes) of output row r."""
        coords = []
        for a in reversed(range(self.outer)):
            coords.insert(0, b.srem(r, self.g[f"OH{a}"]))
            r = b.sdiv(r, self.g[f"OH{a}"])
        return r, coords

    def row_strides(self, b: ir.IRBuilder) -> list[ir.Value]:
        """Elements between consecutive indices of each outer axis, then the plane size."""
        strides = [self.g["W"]]
        for a in reversed(range(self.outer)):
            strides.insert(0, b.mul(strides[0], self.g[f"H{a}"]))
        return strides

    def first_taps(self, b: ir.IRBuilder, coords: list[ir.Value]) -> list[ir.Value]:
        """Input index of the first tap along each outer axis."""
        g = self.g
        return [b.sub(b.mul(c, g[f"sh{a}"]), g[f"ph{a}"]) for a, c in enumerate(coords)]

    def input_row(self, b: ir.IRBuilder, a: int, index: ir.Value, strides: list[ir.Value],
                  row: tuple[ir.Value | None, ir.Value | None]) -> tuple[ir.Value, ir.Value]:
        """`row` (offset in the plane, inside?) extended by input index `index` of
        outer axis a; None parts stand for the empty prefix."""
        offset = b.mul(index, strides[a + 1])
        inside = b.icmp_unsigned("<", index, self.g[f"H{a}"])  # negatives wrap to large
        if row[0] is not None:
            offset, inside = b.add(row[0], offset), b.and_(row[1], inside)
        return offset, inside

    def inside_columns(self, b: ir.IRBuilder, first: ir.Value, lanes: int) -> ir.Value:
        """<lanes x i1>: which of the columns first, first+1, ... lie in [0, W)."""
        iota = ir.Constant(U.vec(U.I32, lanes), list(range(lanes)))
        columns = b.add(U.splat(b, b.trunc(first, U.I32), lanes), iota)
        # negative columns wrap to large unsigned values
        return b.icmp_unsigned("<", columns, U.splat(b, b.trunc(self.g["W"], U.I32), lanes))

    def load_inside(self, b: ir.IRBuilder, xplane: ir.Value, row: tuple[ir.Value, ir.Value],
                    ix: ir.Value, columns_inside: ir.Value) -> ir.Value:
        """Masked load of input row `row` (offset, inside?) from column ix, reading
        only positions inside the plane."""
        lanes = columns_inside.type.count
        mask = b.and_(columns_inside, U.splat(b, row[1], lanes))
        # no 'inbounds': masked-off positions may lie outside the plane
        address = b.gep(xplane, [b.add(row[0], ix)], source_etype=U.F32)
        return masked_vload(b, address, mask, fill=self.fill)


class _PoolBuilder(PlaneWalker):
    def __init__(self, kind: str, stride_x: int, window: tuple[int, ...] | None,
                 dw: int | None, outer: int, lanes: int, args) -> None:
        self.kind, self.p, self.sx = kind, lp_order(kind), stride_x
        self.window, self.dw = window, dw
        nptr = len(pointer_args(kind))
        self.x, self.y = args[:2]
        self.rscale, self.cscale = args[2:nptr] if kind == "avg" else (None, None)
        g = dict(zip(geometry(outer), args[nptr:], strict=True))
        super().__init__(outer, lanes, g, float("-inf") if kind == "max" else 0.0)

    def combine(self, b: ir.IRBuilder, acc: ir.Value, v: ir.Value) -> ir.Value:
        if self.kind == "max":
            return max_nnan(b, acc, v)
        # Lp's powers overflow to inf for large inputs, which 'fast' would make poison
        return b.fadd(acc, v) if self.p else U.fadd(b, acc, v)

    def tap_value(self, b: ir.IRBuilder, v: ir.Value) -> ir.Value:
        """What a loaded input contributes: itself, or |x|^p for Lp (0 stays 0)."""
        if self.p is None:
            return v
        a = fabs(b, v)
        if self.p > MAX_MULTIPLIED_POWER:
            return pow_f32(b, a, U.splat(b, U.f32(float(self.p)), a.type.count))
        power = a
        for _ in range(self.p - 1):
            power = b.fmul(power, a)  # strict, as in combine
        return power

    def finish(self, b: ir.IRBuilder, acc: ir.Value) -> ir.Value:
        """Lp's p-th root of the summed powers."""
        if self.p is None or self.p == 1:
            return acc
        if self.p == 2:
            return sqrt_f32(b, acc)
        return pow_f32(b, acc, U.splat(b, U.f32(1.0 / self.p), self.lanes))

    def emit_row(self, b: ir.IRBuilder, r: ir.Value) -> None:
        """Output row r of all planes x prod(OH) rows."""
        g = self.g
        p, coords = self.split_row(b, r)
        strides = self.row_strides(b)
        xplane = U.gep(b, self.x, b.mul(p, strides[0]))
        yrow = U.gep(b, self.y, b.mul(r, g["OW"]))
        starts = self.first_taps(b, coords)
        rscale = None
        if self.kind == "avg":
            within = coords[0]  # the row's index within its plane's output rows
            for a in range(1, self.outer):
                within = b.add(b.mul(within, g[f"OH{a}"]), coords[a])
            rscale = U.load(b, self.rscale, within)

        def block(b: ir.IRBuilder, ox: ir.Value, count: ir.Value | None) -> None:
            x0 = b.sub(b.mul(ox, U.i64(self.sx)), g["pw"])  # column of the first tap
            if self.window:
                # rows formed here, not once per output row: LLVM hoists what pays,
                # while many rows live across the loop spill (a 7x7 average ran 8%
                # slower so)
                rows = self.window_rows(b, starts, strides)
                acc = self.rows_then_columns(b, xplane, rows, x0)
            else:
                acc = self.tap_by_tap(b, xplane, starts, strides, x0)
            if self.kind == "avg":
                cscale = vload(b, self.cscale, ox, self.lanes, count)
                # strict multiply: under 'fast', 0 * scale of an empty window folds
                # to 0 and LLVM may turn the loop into a memset call
                acc = b.fmul(acc, U.fmul(b, U.splat(b, rscale, self.lanes), cscale))
            vstore(b, self.finish(b, acc), yrow, ox, count)

        vector_loop(b, g["OW"], self.lanes, block, name="ox")

    def window_rows(self, b: ir.IRBuilder, starts: list[ir.Value],
                    strides: list[ir.Value]) -> list[tuple[ir.Value, ir.Value]]:
        """(offset in the plane, inside?) of each input row of a compile-time window,
        in row-major window order."""
        rows = []
        for taps in itertools.product(*[range(k) for k in self.window[:-1]]):
            row = (None, None)
            for a, k in enumerate(taps):
                index = b.add(starts[a], b.mul(U.i64(k), self.g[f"dh{a}"]))
                row = self.input_row(b, a, index, strides, row)
            rows.append(row)
        return rows

    def rows_then_columns(self, b: ir.IRBuilder, xplane: ir.Value,
                          rows: list[tuple[ir.Value, ir.Value]], x0: ir.Value) -> ir.Value:
        """The pooled values of `lanes` outputs whose first tap is at column x0, for a
        window fixed at compile time: the window's rows of every input column the
        block needs are combined first (one load per row and vector of columns),
        then the kw taps of each output are picked from those columns by shuffles.
        """
        lanes, dw, kw = self.lanes, self.dw, self.window[-1]
        span = self.sx * (lanes - 1) + (kw - 1) * dw + 1  # input columns needed
        columns = []
        for v in range(-(-span // lanes)):
            ix = b.add(x0, U.i64(v * lanes))
            inside = self.inside_columns(b, ix, lanes)
            acc = None
            for row in rows:
                value = self.tap_value(b, self.load_inside(b, xplane, row, ix, inside))
                acc = value if acc is None else self.combine(b, acc, value)
            columns.append(acc)
        merged = _concat(b, columns)
        out = None
        for kx in range(kw):
            taps = ir.Constant(U.vec(U.I32, lanes), [self.sx * j + kx * dw for j in range(lanes)])
            v = b.shuffle_vector(merged, ir.Constant(merged.type, ir.Undefined), taps)
            out = v if out is None else self.combine(b, out, v)
        return out

    def tap_by_tap(self, b: ir.IRBuilder, xplane: ir.Value, starts: list[ir.Value],
                   strides: list[ir.Value], x0: ir.Value) -> ir.Value:
        """The same for a window known only at run time: one masked, strided load per tap."""
        g, lanes, wide = self.g, self.lanes, self.sx * self.lanes
        keep = ir.Constant(U.vec(U.I32, lanes), [self.sx * j for j in range(lanes)])

        def tap(b: ir.IRBuilder, row: tuple[ir.Value, ir.Value], kx: ir.Value,
                acc: ir.Value) -> ir.Value:
            ix = b.add(x0, b.mul(kx, g["dw"]))
            v = self.load_inside(b, xplane, row, ix, self.inside_columns(b, ix, wide))
            if self.sx > 1:
                v = b.shuffle_vector(v, ir.Constant(v.type, ir.Undefined), keep)
            return self.combine(b, acc, self.tap_value(b, v))

        def over_axes(b: ir.IRBuilder, a: int, row: tuple, acc: ir.Value) -> ir.Value:
            if a == self.outer:
                return fold(b, g["kw"], acc, lambda b, kx, acc: tap(b, row, kx, acc))

            def step(b: ir.IRBuilder, k: ir.Value, acc: ir.Value) -> ir.Value:
                index = b.add(starts[a], b.mul(k, g[f"dh{a}"]))
                return over_axes(b, a + 1, self.input_row(b, a, index, strides, row), acc)

            return fold(b, g[f"kh{a}"], acc, step)

        acc = ir.Constant(U.vec(U.F32, lanes), [self.fill] * lanes)
        return over_axes(b, 0, (None, None), acc)


def _concat(b: ir.IRBuilder, vectors: list[ir.Value]) -> ir.Value:
    """One vector holding `vectors` end to end (padded to a power-of-two count)."""
    while len(vectors) > 1:
        if len(vectors) % 2:
            vectors = [*vectors, vectors[-1]]  # padding lanes are never picked
        n = vectors[0].type.count
        joined = ir.Constant(U.vec(U.I32, 2 * n), list(range(2 * n)))
        vectors = [b.shuffle_vector(p, q, joined) for p, q in zip(vectors[::2], vectors[1::2],
                                                                  strict=True)]
    return vectors[0]


def global_pool_kernel(kind: str) -> Kernel:
    """y[p] = max or scale * sum of x[p, 0:n] for p < planes: (x, y, planes, n, scale)."""
    assert kind in ("max", "avg")
    name = f"global_pool_{kind}_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR, U.PTR, U.I64, U.I64, U.F32],
                              ["x", "y", "planes", "n", "scale"])
        planes, n = fn.args[2], fn.args[3]
        parallel_loop(b, target.threads, name, list(fn.args), planes, b.mul(planes, n),
                      lambda b, args, p: _global_pool_plane(b, kind, target.f32_lanes, args, p))
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR, I64, I64, F32), build)


def _global_pool_plane(b: ir.IRBuilder, kind: str, lanes: int, args: list[ir.Value],
                       p: ir.Value) -> None:
    x, y, _, n, scale = args
    fill = float("-inf") if kind == "max" else 0.0
    vt = U.vec(U.F32, lanes)
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
