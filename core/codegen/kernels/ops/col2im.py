"""col2im: scatter-add of per-tap planes into NC(D)HW output planes, the second
half of a transposed convolution (ConvTranspose, core/lower/conv_transpose.py)
and the whole of ONNX Col2Im.

Each output plane p (of `planes`, c = p % channels, item = p / channels) is
first filled with bias[c]; then for every kernel tap t = (kz, ky, kx)
the tap's source plane -- input positions (iz, iy, ix) -- is added at

    (iz*sd + kz*dd - pd,  iy*sh + ky*dh - ph,  ix*sw + kx*dw - pw)

skipping positions outside the output. The source of tap t is
- src[(p * taps + t) * in_plane ...], the rows of a GEMM's result (cols), or
- direct (a depthwise ConvTranspose, one input channel per group):
  wt[c * taps + t] * src[(p / mult) * in_plane ...], the input plane itself.
The valid input range of each tap is computed per axis once, so the inner loop
has no bounds tests. Along x it runs as vectors (a masked last step): with
unit x-stride, source and output rows are both contiguous; with a stride
sx <= MAX_SPREAD_SX known at compile time, a vector of source values is spread
by a shuffle into sx times as many lanes, zeros between them, and added to the
contiguous output positions it covers (sx-fold output traffic, but vector
loads, adds and stores instead of a scalar read-modify-write per element);
larger strides run a scalar loop.

tinyc.ConvTranspose's fused epilogue (a residual R of the output's shape, a
clip: Relu / Clip) runs over each plane once its taps are in, while the plane
is still in cache.

Threads split the planes: each plane is written by one thread only, so the
scatter-add needs no atomics and gives the same bits on any thread count.
1-D and 2-D geometries pass D = 1 (and H = 1) with unit kernel, stride and
dilation there.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import ERR, F32, I64, PTR, Kernel
from ....runtime.status import INT_FIELDS, STATUS_SIZE_RANGE
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...kernel import get_or_build
from ...parallel import parallel_loop
from ..support.vloop import define_kernel, max_nnan, min_nnan, vector_loop, vload, vstore

AXES = ("d", "h", "w")
# planes: output planes to write; channels: planes per item (bias index c = p %
# channels); ychannels: planes per item of y (the whole output when the call
# writes one group); mult: output planes per source plane (direct only)
GEOMETRY = ("planes", "channels", "ychannels", "mult",
            "Di", "Hi", "Wi", "Do", "Ho", "Wo", "kd", "kh", "kw",
            "sd", "sh", "sw", "dd", "dh", "dw", "pd", "ph", "pw")


MAX_SPREAD_SX = 8  # x-strides up to this are vectorized by spreading (module doc)


def x_stride_variant(sw) -> int:
    """The x-stride a kernel is specialized for: sw itself up to MAX_SPREAD_SX,
    else 0 (any stride, scalar)."""
    return sw if isinstance(sw, int) and 1 <= sw <= MAX_SPREAD_SX else 0


def col2im_kernel(sx: int, direct: bool, residual: bool = False,
                  clip: bool = False) -> Kernel:
    """(src, y, bias, [wt], [res], *GEOMETRY, [lo, hi]): see the module doc.
    sx: the x-stride the caller promises (argument sw then equals it), 0 for
    any. No bias is a bias of zeros: a fill with a constant 0 would become a
    memset call, which bare-metal targets do not have."""
    name = (f"col2im_f32_{f'sx{sx}' if sx else 'sxn'}{'_direct' if direct else ''}"
            f"{'_res' if residual else ''}{'_clip' if clip else ''}")
    ptrs = ["src", "y", "bias"] + (["wt"] if direct else []) + (["res"] if residual else [])
    bounds = ["lo", "hi"] if clip else []
    params = (PTR,) * len(ptrs) + (I64,) * len(GEOMETRY) + (F32,) * len(bounds)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * len(ptrs) + [U.I64] * len(GEOMETRY)
                              + [U.F32] * len(bounds), ptrs + list(GEOMETRY) + bounds)
        g = dict(zip(GEOMETRY, fn.args[len(ptrs):len(ptrs) + len(GEOMETRY)], strict=True))
        taps = b.mul(b.mul(g["kd"], g["kh"]), g["kw"])
        in_plane = b.mul(b.mul(g["Di"], g["Hi"]), g["Wi"])
        out_plane = b.mul(b.mul(g["Do"], g["Ho"]), g["Wo"])
        work = b.mul(g["planes"], b.add(b.mul(taps, in_plane), out_plane))

        def plane(b: ir.IRBuilder, args: list[ir.Value], p: ir.Value) -> None:
            _PlaneBuilder(ptrs, args, sx, target.f32_lanes).emit(b, p)

        parallel_loop(b, target.threads, name, list(fn.args), g["planes"], work, plane)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


class _PlaneBuilder:
    def __init__(self, ptrs: list[str], args: list[ir.Value], sx: int, lanes: int):
        self.p = dict(zip(ptrs, args[:len(ptrs)], strict=True))
        self.g = dict(zip(GEOMETRY, args[len(ptrs):len(ptrs) + len(GEOMETRY)], strict=True))
        self.bounds = args[len(ptrs) + len(GEOMETRY):]  # (lo, hi) of a clip, or none
        self.sx, self.lanes = sx, lanes

    def emit(self, b: ir.IRBuilder, p: ir.Value) -> None:
        g = self.g
        c, item = b.srem(p, g["channels"]), b.sdiv(p, g["channels"])
        out_plane = b.mul(b.mul(g["Do"], g["Ho"]), g["Wo"])
        yplane = U.gep(b, self.p["y"], b.mul(b.add(b.mul(item, g["ychannels"]), c), out_plane))
        init = U.load(b, self.p["bias"], c)
        fill = U.splat(b, init, self.lanes)
        vector_loop(b, out_plane, self.lanes,
                    lambda b, i, count: vstore(b, fill, yplane, i, count), name="fill")
        self.taps(b, p, c, yplane)
        if "res" in self.p or self.bounds:
            offset = b.mul(b.add(b.mul(item, g["ychannels"]), c), out_plane)
            self.epilogue(b, yplane, U.gep(b, self.p["res"], offset) if "res" in self.p
                          else None, out_plane)

    def epilogue(self, b: ir.IRBuilder, yplane: ir.Value, rplane: ir.Value | None,
                 n: ir.Value) -> None:
        """y = clip(y + r, lo, hi) over the plane."""
        lanes = self.lanes
        lo, hi = (U.splat(b, v, lanes) for v in self.bounds) if self.bounds else (None, None)

        def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
            v = vload(b, yplane, i, lanes, count)
            if rplane is not None:
                v = U.fadd(b, v, vload(b, rplane, i, lanes, count))
            if lo is not None:
                v = min_nnan(b, max_nnan(b, v, lo), hi)
            vstore(b, v, yplane, i, count)

        vector_loop(b, n, lanes, body, name="epi")

    def taps(self, b: ir.IRBuilder, p: ir.Value, c: ir.Value, yplane: ir.Value) -> None:
        g = self.g
        in_plane = b.mul(b.mul(g["Di"], g["Hi"]), g["Wi"])
        ntaps = b.mul(b.mul(g["kd"], g["kh"]), g["kw"])
        with U.for_range(b, 0, g["kd"], name="kz") as kz, \
                U.for_range(b, 0, g["kh"], name="ky") as ky, \
                U.for_range(b, 0, g["kw"], name="kx") as kx:
            t = b.add(b.mul(b.add(b.mul(kz, g["kh"]), ky), g["kw"]), kx)
            if "wt" in self.p:  # direct: the input plane times the tap's weight
                src = U.gep(b, self.p["src"], b.mul(b.sdiv(p, g["mult"]), in_plane))
                scale = U.load(b, self.p["wt"], b.add(b.mul(c, ntaps), t))
            else:
                src = U.gep(b, self.p["src"], b.mul(b.add(b.mul(p, ntaps), t), in_plane))
                scale = None
            self.tap(b, (kz, ky, kx), src, scale, yplane)

    def valid(self, b: ir.IRBuilder, axis: str, k: ir.Value) -> tuple[ir.Value, ir.Value,
                                                                       ir.Value]:
        """(first input index, end, output index of the first) of the inputs whose
        output o = i*s + k*d - pad lies in [0, O): lo = ceil(-off / s) if off < 0,
        hi = min(I, floor((O - 1 - off) / s) + 1), hi >= lo."""
        g, a = self.g, axis.upper()
        s = g[f"s{axis}"]
        off = b.sub(b.mul(k, g[f"d{axis}"]), g[f"p{axis}"])
        neg = b.icmp_signed("<", off, U.i64(0))
        lo = b.select(neg, b.sdiv(b.add(b.neg(off), b.sub(s, U.i64(1))), s), U.i64(0))
        room = b.sub(b.sub(g[f"{a}o"], U.i64(1)), off)
        hi = U.smin(b, g[f"{a}i"], b.add(b.sdiv(room, s), U.i64(1)))
        hi = b.select(b.icmp_signed("<", room, U.i64(0)), U.i64(0), hi)
        hi = b.select(b.icmp_signed("<", hi, lo), lo, hi)
        return lo, hi, b.add(b.mul(lo, s), off)

    def tap(self, b: ir.IRBuilder, k: tuple[ir.Value, ...], src: ir.Value,
            scale: ir.Value | None, yplane: ir.Value) -> None:
        g = self.g
        (zlo, zhi, _), (ylo, yhi, _) = self.valid(b, "d", k[0]), self.valid(b, "h", k[1])
        xlo, xhi, ox0 = self.valid(b, "w", k[2])
        count = b.sub(xhi, xlo)
        zoff = b.sub(b.mul(k[0], g["dd"]), g["pd"])
        yoff = b.sub(b.mul(k[1], g["dh"]), g["ph"])
        with U.for_range(b, zlo, zhi, name="iz") as iz, \
                U.for_range(b, ylo, yhi, name="iy") as iy:
            oz = b.add(b.mul(iz, g["sd"]), zoff)
            oy = b.add(b.mul(iy, g["sh"]), yoff)
            yrow = U.gep(b, yplane, b.add(b.mul(b.add(b.mul(oz, g["Ho"]), oy), g["Wo"]), ox0))
            srow = U.gep(b, src, b.add(b.mul(b.add(b.mul(iz, g["Hi"]), iy), g["Wi"]), xlo))
            if self.sx == 1:
                self.add_row_vectors(b, srow, yrow, count, scale)
            elif self.sx:
                self.add_row_spread(b, srow, yrow, count, scale)
            else:
                self.add_row_strided(b, srow, yrow, count, scale)

    def add_row_vectors(self, b: ir.IRBuilder, srow: ir.Value, yrow: ir.Value,
                        count: ir.Value, scale: ir.Value | None) -> None:
        lanes = self.lanes
        factor = U.splat(b, scale, lanes) if scale is not None else None

        def body(b: ir.IRBuilder, j: ir.Value, rest: ir.Value | None) -> None:
            v = vload(b, srow, j, lanes, rest)
            if factor is not None:
                v = U.fmul(b, v, factor)
            vstore(b, U.fadd(b, vload(b, yrow, j, lanes, rest), v), yrow, j, rest)

        vector_loop(b, count, lanes, body, name="ix")

    def add_row_spread(self, b: ir.IRBuilder, srow: ir.Value, yrow: ir.Value,
                       count: ir.Value, scale: ir.Value | None) -> None:
        """yrow[j*sx] += srow[j] for j < count, `lanes` sources a step spread over
        sx*lanes output lanes; a step's last sx-1 lanes are zeros past its last
        source, so the store is masked to (sources-1)*sx+1 lanes where the step
        ends the row (no write past the tap's last output)."""
        sx = self.sx
        lanes = self.lanes if sx <= 4 else max(1, self.lanes // 2)  # <= 4 registers wide
        wide = sx * lanes
        spread = ir.Constant(U.vec(U.I32, wide),
                             [m // sx if m % sx == 0 else lanes for m in range(wide)])
        zeros = ir.Constant(U.vec(U.F32, lanes), [0.0] * lanes)
        factor = U.splat(b, scale, lanes) if scale is not None else None
        with U.for_range(b, 0, count, step=lanes, name="ix") as j:
            left = b.sub(count, j)
            full = b.icmp_signed(">", left, U.i64(lanes))  # not the row's last step
            sources = U.smin(b, left, U.i64(lanes))
            v = vload(b, srow, j, lanes, sources)
            if factor is not None:
                v = U.fmul(b, v, factor)
            v = b.shuffle_vector(v, zeros, spread)
            at = b.mul(j, U.i64(sx))
            with b.if_else(full) as (inner, last):
                with inner:
                    vstore(b, U.fadd(b, vload(b, yrow, at, wide), v), yrow, at)
                with last:
                    outs = b.add(b.mul(b.sub(sources, U.i64(1)), U.i64(sx)), U.i64(1))
                    old = vload(b, yrow, at, wide, outs)
                    vstore(b, U.fadd(b, old, v), yrow, at, outs)

    def add_row_strided(self, b: ir.IRBuilder, srow: ir.Value, yrow: ir.Value,
                        count: ir.Value, scale: ir.Value | None) -> None:
        with U.for_range(b, 0, count, name="ix") as j:
            v = U.load(b, srow, j)
            if scale is not None:
                v = U.fmul(b, v, scale)
            at = b.mul(j, self.g["sw"])
            U.store(b, U.fadd(b, U.load(b, yrow, at), v), yrow, at)


# The geometry a Col2Im with a run-time block_shape checks and passes on: the
# output planes, the block count and the attributes per axis (d, h, w).
BLOCK_GEOMETRY = ("planes", "channels", "taps", "blocks", "Do", "Ho", "Wo",
                  "sd", "sh", "sw", "dd", "dh", "dw", "pd", "ph", "pw", "qd", "qh", "qw")


def col2im_block_kernel(rank: int, sx: int) -> Kernel:
    """(err, block, src, y, zeros, *BLOCK_GEOMETRY) -> status: Col2Im whose block_shape
    (int64[rank], the last `rank` axes) is run-time data. Each block size must
    lie in [1, what fits the padded image] (qd..: trailing pads) and the sizes
    must give `taps` rows per channel and `blocks` blocks, as the input's shape
    was compiled; then the col2im kernel runs on that geometry."""
    name = f"col2im_block{rank}_f32_{f'sx{sx}' if sx else 'sxn'}"
    params = (ERR, PTR, PTR, PTR, PTR) + (I64,) * len(BLOCK_GEOMETRY)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = U.define(module, name, [U.PTR] * 5 + [U.I64] * len(BLOCK_GEOMETRY),
                         ["err", "block", "src", "y", "zeros", *BLOCK_GEOMETRY], ret=U.I32)
        fn.attributes.add("noinline")
        err, block, src, y, zeros = fn.args[:5]
        g = dict(zip(BLOCK_GEOMETRY, fn.args[5:], strict=True))
        kernel, grid = [], []
        for i, axis in enumerate(AXES):
            if i < 3 - rank:
                kernel.append(U.i64(1))
                grid.append(U.i64(1))
                continue
            k = U.load(b, block, U.i64(i - (3 - rank)), U.I64)
            room = b.add(b.add(g[f"{axis.upper()}o"], g[f"p{axis}"]), g[f"q{axis}"])
            most = b.add(b.sdiv(b.sub(room, U.i64(1)), g[f"d{axis}"]), U.i64(1))
            _fail_unless(b, err, b.and_(b.icmp_signed(">=", k, U.i64(1)),
                                        b.icmp_signed("<=", k, most)),
                         k, U.i64(i - (3 - rank)), U.i64(1), most)
            span = b.add(b.mul(b.sub(k, U.i64(1)), g[f"d{axis}"]), U.i64(1))
            kernel.append(k)
            grid.append(b.add(b.sdiv(b.sub(room, span), g[f"s{axis}"]), U.i64(1)))
        for got, want in ((_product(b, kernel), g["taps"]), (_product(b, grid), g["blocks"])):
            _fail_unless(b, err, b.icmp_signed("==", got, want), got, U.i64(-1), want, want)
        body = get_or_build(module, col2im_kernel(sx, False), target)
        values = dict(planes=g["planes"], channels=g["channels"], ychannels=g["channels"],
                      mult=U.i64(1), Di=grid[0], Hi=grid[1], Wi=grid[2], kd=kernel[0],
                      kh=kernel[1], kw=kernel[2])
        b.call(body, [src, y, zeros] + [values.get(n, g.get(n)) for n in GEOMETRY])
        b.ret(ir.Constant(U.I32, 0))
        return fn

    return Kernel(name, params, build)


def _product(b: ir.IRBuilder, values: list[ir.Value]) -> ir.Value:
    return b.mul(b.mul(values[0], values[1]), values[2])


def _fail_unless(b: ir.IRBuilder, err: ir.Value, ok: ir.Value, value: ir.Value,
                 position: ir.Value, low: ir.Value, high: ir.Value) -> None:
    with b.if_then(b.not_(ok), likely=False):
        fields = {"value": value, "position": position, "low": low, "high": high}
        for field, v in fields.items():
            U.store(b, v, err, U.i64(INT_FIELDS.index(field)))
        b.ret(ir.Constant(U.I32, STATUS_SIZE_RANGE))
