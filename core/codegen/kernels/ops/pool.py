"""2-D pooling over NCHW planes: max / average windows, and global pooling.

Along x, `lanes` outputs are computed at once, from masked loads that read
only input positions inside the plane: padding is never materialized and
borders need no scalar code. Averages multiply by
1/count factors that are separable, rscale[oy] * cscale[ox], computed at
compile time (core/lower/pool.py) with ONNX's counting rules.

The x-stride and the window are compile-time constants (one kernel per
pooling configuration, a handful per network): the window's rows are combined
first, on contiguous vectors of input columns, and the taps along x (strided
or not) are then shuffles of those vectors, with no gather.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import F32, I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import parallel_loop
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

GEOMETRY = ("planes", "H", "W", "OH", "OW", "kh", "kw", "sh", "dh", "dw", "ph", "pw")
MAX_UNROLLED_TAPS = 64  # larger windows loop over their taps at run time


def pool2d_kernel(kind: str, stride_x: int, kh: int | None = None, kw: int | None = None,
                  dw: int | None = None) -> Kernel:
    """kind 'max': (x, y, *GEOMETRY); 'avg': (x, y, rscale, cscale, *GEOMETRY).

    kh, kw, dw: the window (and x-dilation) the code is specialized for, their
    arguments then being ignored; None for a kernel taking any window at run time.
    """
    assert kind in ("max", "avg")
    if kh is None or kw is None or dw is None or kh * kw > MAX_UNROLLED_TAPS:
        kh = kw = dw = None
    window = f"{kh}x{kw}_dx{dw}" if kh else "any"
    name = f"pool2d_{kind}_{window}_sx{stride_x}_f32"
    ptrs = ["x", "y"] + (["rscale", "cscale"] if kind == "avg" else [])
    params = (PTR,) * len(ptrs) + (I64,) * len(GEOMETRY)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * len(ptrs) + [U.I64] * len(GEOMETRY),
                              ptrs + list(GEOMETRY))
        g = dict(zip(GEOMETRY, fn.args[len(ptrs):], strict=True))
        rows = b.mul(g["planes"], g["OH"])  # output rows: the units split across threads
        taps = U.i64(kh * kw) if kh else b.mul(g["kh"], g["kw"])
        work = b.mul(b.mul(rows, g["OW"]), taps)

        def row(b: ir.IRBuilder, args: list[ir.Value], r: ir.Value) -> None:
            _PoolBuilder(kind, stride_x, (kh, kw, dw), target.f32_lanes, args).emit_row(b, r)

        parallel_loop(b, target.threads, name, list(fn.args), rows, work, row)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


class _PoolBuilder:
    def __init__(self, kind: str, stride_x: int, window: tuple[int | None, ...], lanes: int,
                 args) -> None:
        self.kind, self.sx, self.lanes = kind, stride_x, lanes
        self.kh, self.kw, self.dw = window
        nptr = 4 if kind == "avg" else 2
        self.x, self.y = args[:2]
        self.rscale, self.cscale = args[2:nptr] if kind == "avg" else (None, None)
        self.g = dict(zip(GEOMETRY, args[nptr:], strict=True))
        self.fill = float("-inf") if kind == "max" else 0.0  # what a skipped tap reads as

    def combine(self, b: ir.IRBuilder, acc: ir.Value, v: ir.Value) -> ir.Value:
        return max_nnan(b, acc, v) if self.kind == "max" else U.fadd(b, acc, v)

    def emit_row(self, b: ir.IRBuilder, r: ir.Value) -> None:
        """Output row r of all planes x OH rows."""
        g = self.g
        p, oy = b.sdiv(r, g["OH"]), b.srem(r, g["OH"])
        xplane = U.gep(b, self.x, b.mul(p, b.mul(g["H"], g["W"])))
        yrow = U.gep(b, self.y, b.mul(b.add(b.mul(p, g["OH"]), oy), g["OW"]))
        iy0 = b.sub(b.mul(oy, g["sh"]), g["ph"])  # input row of the first tap
        rscale = U.load(b, self.rscale, oy) if self.kind == "avg" else None

        def block(b: ir.IRBuilder, ox: ir.Value, count: ir.Value | None) -> None:
            x0 = b.sub(b.mul(ox, U.i64(self.sx)), g["pw"])  # column of the first tap
            if self.kh is not None:
                acc = self.rows_then_columns(b, xplane, iy0, x0)
            else:
                acc = self.tap_by_tap(b, xplane, iy0, x0)
            if self.kind == "avg":
                cscale = vload(b, self.cscale, ox, self.lanes, count)
                # strict multiply: under 'fast', 0 * scale of an empty window folds
                # to 0 and LLVM may turn the loop into a memset call
                acc = b.fmul(acc, U.fmul(b, U.splat(b, rscale, self.lanes), cscale))
            vstore(b, acc, yrow, ox, count)

        vector_loop(b, g["OW"], self.lanes, block, name="ox")

    def inside_columns(self, b: ir.IRBuilder, first: ir.Value, lanes: int) -> ir.Value:
        """<lanes x i1>: which of the columns first, first+1, ... lie in [0, W)."""
        iota = ir.Constant(U.vec(U.I32, lanes), list(range(lanes)))
        columns = b.add(U.splat(b, b.trunc(first, U.I32), lanes), iota)
        # negative columns wrap to large unsigned values
        return b.icmp_unsigned("<", columns, U.splat(b, b.trunc(self.g["W"], U.I32), lanes))

    def load_inside(self, b: ir.IRBuilder, xplane: ir.Value, iy: ir.Value, ix: ir.Value,
                    columns_inside: ir.Value) -> ir.Value:
        """Masked load of row iy from column ix, reading only positions inside the plane."""
        g, lanes = self.g, columns_inside.type.count
        row_inside = b.icmp_unsigned("<", iy, g["H"])
        mask = b.and_(columns_inside, U.splat(b, row_inside, lanes))
        # no 'inbounds': masked-off positions may lie outside the plane
        address = b.gep(xplane, [b.add(b.mul(iy, g["W"]), ix)], source_etype=U.F32)
        return masked_vload(b, address, mask, fill=self.fill)

    def rows_then_columns(self, b: ir.IRBuilder, xplane: ir.Value, iy0: ir.Value,
                          x0: ir.Value) -> ir.Value:
        """The pooled values of `lanes` outputs whose first tap is at column x0, for a
        window fixed at compile time: the kh rows of every input column the block
        needs are combined first (kh loads per vector of columns), then the kw
        taps of each output are picked from those columns by shuffles.
        """
        g, lanes, dw = self.g, self.lanes, self.dw
        span = self.sx * (lanes - 1) + (self.kw - 1) * dw + 1  # input columns needed
        columns = []
        for v in range(-(-span // lanes)):
            ix = b.add(x0, U.i64(v * lanes))
            inside = self.inside_columns(b, ix, lanes)
            acc = None
            for ky in range(self.kh):
                iy = b.add(iy0, b.mul(U.i64(ky), g["dh"]))
                row = self.load_inside(b, xplane, iy, ix, inside)
                acc = row if acc is None else self.combine(b, acc, row)
            columns.append(acc)
        merged = _concat(b, columns)
        out = None
        for kx in range(self.kw):
            taps = ir.Constant(U.vec(U.I32, lanes), [self.sx * j + kx * dw for j in range(lanes)])
            v = b.shuffle_vector(merged, ir.Constant(merged.type, ir.Undefined), taps)
            out = v if out is None else self.combine(b, out, v)
        return out

    def tap_by_tap(self, b: ir.IRBuilder, xplane: ir.Value, iy0: ir.Value,
                   x0: ir.Value) -> ir.Value:
        """The same for a window known only at run time: one masked, strided load per tap."""
        g, lanes, wide = self.g, self.lanes, self.sx * self.lanes
        keep = ir.Constant(U.vec(U.I32, lanes), [self.sx * j for j in range(lanes)])

        def tap(b: ir.IRBuilder, ky: ir.Value, kx: ir.Value, acc: ir.Value) -> ir.Value:
            ix = b.add(x0, b.mul(kx, g["dw"]))
            iy = b.add(iy0, b.mul(ky, g["dh"]))
            v = self.load_inside(b, xplane, iy, ix, self.inside_columns(b, ix, wide))
            if self.sx > 1:
                v = b.shuffle_vector(v, ir.Constant(v.type, ir.Undefined), keep)
            return self.combine(b, acc, v)

        acc = ir.Constant(U.vec(U.F32, lanes), [self.fill] * lanes)
        return fold(b, g["kh"], acc, lambda b, ky, acc: fold(
            b, g["kw"], acc, lambda b, kx, acc: tap(b, ky, kx, acc)))


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
