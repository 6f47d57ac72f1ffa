"""RoiAlign: each region of interest of an NCHW image pooled to OH x OW bins,
each bin the average (or max) of a grid of bilinear samples, as onnxruntime
and ONNX's reference compute it:

- a roi (x1, y1, x2, y2) is scaled by spatial_scale and, in 'half_pixel' mode,
  shifted by -0.5; in 'output_half_pixel' mode it is at least 1 x 1;
- a bin has grid_h x grid_w samples: sampling_ratio each way, or (0) the
  bin's size rounded up, so the grid depends on the roi's values;
- a sample more than one pixel outside the image is 0; otherwise it is
  clamped into the image and interpolated from its 4 neighbours;
- 'avg' is the samples' mean; 'max' the largest weighted neighbour
  (w * x, not the interpolated value) over all samples, onnxruntime's rule.

The arithmetic is strict IEEE, not 'fast': a NaN or infinite roi must fail
the inside-the-image test, not be assumed away. One unit of work is one roi:
per bin, the samples' neighbours and weights are found once (in a stack table
when the bin has few samples) and then applied to every channel, in scalar
code; the batch indices were checked before (ops/check.py).
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import ERR, F32, I64, PTR, Kernel
from ....runtime.status import INT_FIELDS, STATUS_SIZE_RANGE
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import parallel_loop
from ..support.vloop import define_kernel, entry_alloca

GEOMETRY = ("rois_count", "C", "H", "W", "OH", "OW", "sampling_ratio")
MAX_GRID = 1024  # samples per bin axis with an adaptive grid: larger ones are refused
CACHED_SAMPLES = 64  # a bin with at most this many samples (sampling_ratio <= 8) has
# their neighbours and weights computed once for all channels, as onnxruntime does
SAMPLE_COST = 16  # rough work units of one sample, for the parallel split


def roi_align_kernel(mode: str, half_pixel: bool) -> Kernel:
    """(x, rois, batch, y, *GEOMETRY, spatial_scale): y[r, c, oh, ow] from image
    batch[r] of x; rois is f32[rois_count, 4], batch i64[rois_count]."""
    assert mode in ("avg", "max")
    name = f"roi_align_{mode}_{'half_pixel' if half_pixel else 'output_half_pixel'}_f32"
    params = (PTR,) * 4 + (I64,) * len(GEOMETRY) + (F32,)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 4 + [U.I64] * len(GEOMETRY) + [U.F32],
                              ["x", "rois", "batch", "y", *GEOMETRY, "spatial_scale"])
        g = dict(zip(GEOMETRY, fn.args[4:4 + len(GEOMETRY)], strict=True))
        bins = b.mul(b.mul(g["rois_count"], g["C"]), b.mul(g["OH"], g["OW"]))
        work = b.mul(bins, U.i64(SAMPLE_COST))

        def roi(b: ir.IRBuilder, args: list[ir.Value], r: ir.Value) -> None:
            _RoiBuilder(mode, half_pixel, args).emit_roi(b, r)

        parallel_loop(b, target.threads, name, list(fn.args), g["rois_count"], work, roi)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


def _f(v: float) -> ir.Constant:
    return ir.Constant(U.F32, v)


def _ceil_to_int(b: ir.IRBuilder, v: ir.Value, cap: float) -> ir.Value:
    """ceil(v) as an i64, v first clamped into [0, cap] (NaN to 0): the clamp keeps
    fptosi defined, and integer arithmetic needs no libm ceilf on any target."""
    v = b.select(b.fcmp_ordered(">", v, _f(0.0)), v, _f(0.0))
    v = b.select(b.fcmp_ordered("<", v, _f(cap)), v, _f(cap))
    whole = b.fptosi(v, U.I64)
    return b.add(whole, b.zext(b.fcmp_ordered("<", b.sitofp(whole, U.F32), v), U.I64))


def roi_bins(b: ir.IRBuilder, rois: ir.Value, r: ir.Value, scale: ir.Value,
             bins: tuple[ir.Value, ir.Value],
             half_pixel: bool) -> tuple[tuple[ir.Value, ir.Value], tuple[ir.Value, ir.Value]]:
    """((top, left), (bin height, bin width)) of roi r in image coordinates."""
    start_w, start_h, end_w, end_h = (
        b.fmul(U.load(b, rois, b.add(b.mul(r, U.i64(4)), U.i64(k))), scale) for k in range(4))
    if half_pixel:
        start_w, start_h, end_w, end_h = (b.fsub(v, _f(0.5))
                                          for v in (start_w, start_h, end_w, end_h))
    sizes = []
    for extent, n in ((b.fsub(end_h, start_h), bins[0]), (b.fsub(end_w, start_w), bins[1])):
        if not half_pixel:  # malformed rois become 1 x 1 (max(size, 1), NaN kept)
            extent = b.select(b.fcmp_ordered("<", extent, _f(1.0)), _f(1.0), extent)
        sizes.append(b.fdiv(extent, b.sitofp(n, U.F32)))
    return (start_h, start_w), (sizes[0], sizes[1])


def check_roi_grid_kernel(half_pixel: bool) -> Kernel:
    """(err, rois, count, OH, OW, spatial_scale) -> status: with an adaptive
    sampling grid (sampling_ratio 0), each roi's bins may be at most MAX_GRID
    pixels each way, so a bin takes at most MAX_GRID^2 samples; on failure the
    record gets the first roi's grid, its roi index and the range."""
    name = f"check_roi_grid_{'half_pixel' if half_pixel else 'output_half_pixel'}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = U.define(module, name, [U.PTR, U.PTR, U.I64, U.I64, U.I64, U.F32],
                         ["err", "rois", "count", "OH", "OW", "spatial_scale"], ret=U.I32)
        fn.attributes.add("noinline")
        err, rois, count, oh, ow, scale = fn.args
        with U.for_range(b, U.i64(0), count, name="r") as r:
            _, (bin_h, bin_w) = roi_bins(b, rois, r, scale, (oh, ow), half_pixel)
            # ceil(size) > MAX_GRID exactly when size > MAX_GRID (NaN passes: no samples)
            tall = b.fcmp_ordered(">", bin_h, _f(MAX_GRID))
            wide = b.fcmp_ordered(">", bin_w, _f(MAX_GRID))
            with b.if_then(b.or_(tall, wide), likely=False):
                grid = _ceil_to_int(b, b.select(tall, bin_h, bin_w), 2.0 ** 62)
                fields = {"value": grid, "position": r, "low": U.i64(0),
                          "high": U.i64(MAX_GRID)}
                for field, v in fields.items():
                    U.store(b, v, err, U.i64(INT_FIELDS.index(field)))
                b.ret(ir.Constant(U.I32, STATUS_SIZE_RANGE))
        b.ret(ir.Constant(U.I32, 0))
        return fn

    return Kernel(name, (ERR, PTR, I64, I64, I64, F32), build)


class _RoiBuilder:
    def __init__(self, mode: str, half_pixel: bool, args: list[ir.Value]) -> None:
        self.mode, self.half_pixel = mode, half_pixel
        self.x, self.rois, self.batch, self.y = args[:4]
        self.g = dict(zip(GEOMETRY, args[4:4 + len(GEOMETRY)], strict=True))
        self.scale = args[4 + len(GEOMETRY)]

    def emit_roi(self, b: ir.IRBuilder, r: ir.Value) -> None:
        """All channels' OH x OW bins of roi r."""
        g = self.g
        self.hw = b.mul(g["H"], g["W"])
        image = U.load(b, self.batch, r, U.I64)
        self.image = U.gep(b, self.x, b.mul(b.mul(image, g["C"]), self.hw))
        (start_h, start_w), size = roi_bins(b, self.rois, r, self.scale, (g["OH"], g["OW"]),
                                            self.half_pixel)
        grid = (self.grid(b, size[0]), self.grid(b, size[1]))
        self.samples = b.mul(*grid)
        self.count = b.sitofp(b.select(b.icmp_signed("<", self.samples, U.i64(1)), U.i64(1),
                                       self.samples), U.F32)
        with b.goto_entry_block():  # the cached bin's table, 4 neighbours a sample
            self.positions = b.alloca(U.I64, size=U.i64(4 * CACHED_SAMPLES), name="positions")
            self.weights = b.alloca(U.F32, size=U.i64(4 * CACHED_SAMPLES), name="weights")
        self.channel_stride = b.mul(g["OH"], g["OW"])
        out = b.mul(b.mul(r, g["C"]), self.channel_stride)
        cached = b.icmp_signed("<=", self.samples, U.i64(CACHED_SAMPLES))
        with U.for_range(b, U.i64(0), g["OH"], name="oh") as oh:
            y0 = b.fadd(start_h, b.fmul(b.sitofp(oh, U.F32), size[0]))
            with U.for_range(b, U.i64(0), g["OW"], name="ow") as ow:
                origin = (y0, b.fadd(start_w, b.fmul(b.sitofp(ow, U.F32), size[1])))
                at = b.add(out, b.add(b.mul(oh, g["OW"]), ow))
                with b.if_else(cached, likely=True) as (small, large):
                    with small:
                        self.fill_table(b, origin, size, grid)
                        self.each_channel(b, at, self.pool_cached_bin)
                    with large:
                        self.each_channel(b, at, lambda b, plane: self.pool_bin(
                            b, plane, origin, size, grid))

    def grid(self, b: ir.IRBuilder, bin_size: ir.Value) -> ir.Value:
        """Samples per bin along one axis: sampling_ratio, or ceil(bin size) when it is 0."""
        ratio = self.g["sampling_ratio"]
        # sizes over MAX_GRID were refused before (check_roi_grid_kernel); NaN gives 0
        adaptive = _ceil_to_int(b, bin_size, MAX_GRID)
        return b.select(b.icmp_signed(">", ratio, U.i64(0)), ratio, adaptive)

    def each_channel(self, b: ir.IRBuilder, at: ir.Value, pool) -> None:
        """y[at + c * OH * OW] = pool(plane c), finished (avg: / count; no samples: 0)."""
        with U.for_range(b, U.i64(0), self.g["C"], name="c") as c:
            value = pool(b, U.gep(b, self.image, b.mul(c, self.hw)))
            if self.mode == "avg":
                value = b.fdiv(value, self.count)
            else:
                value = b.select(b.icmp_signed(">", self.samples, U.i64(0)), value, _f(0.0))
            U.store(b, value, self.y, b.add(at, b.mul(c, self.channel_stride)))

    def sample_points(self, b: ir.IRBuilder, origin, size, grid, visit) -> None:
        """visit(b, sample index, y, x) for the bin's samples, row by row."""
        with U.for_range(b, U.i64(0), grid[0], name="iy") as iy:
            y = self.sample_coordinate(b, origin[0], iy, size[0], grid[0])
            with U.for_range(b, U.i64(0), grid[1], name="ix") as ix:
                x = self.sample_coordinate(b, origin[1], ix, size[1], grid[1])
                visit(b, b.add(b.mul(iy, grid[1]), ix), y, x)

    @staticmethod
    def sample_coordinate(b: ir.IRBuilder, origin: ir.Value, i: ir.Value, size: ir.Value,
                          grid: ir.Value) -> ir.Value:
        """origin + (i + 0.5) * size / grid, in onnxruntime's order of operations."""
        half = b.fadd(b.sitofp(i, U.F32), _f(0.5))
        return b.fadd(origin, b.fdiv(b.fmul(half, size), b.sitofp(grid, U.F32)))

    def fill_table(self, b: ir.IRBuilder, origin, size, grid) -> None:
        """The bin's samples' neighbours and weights, for pool_cached_bin."""
        def visit(b: ir.IRBuilder, s: ir.Value, y: ir.Value, x: ir.Value) -> None:
            positions, weights = self.neighbours(b, y, x)
            for k in range(4):
                slot = b.add(b.mul(s, U.i64(4)), U.i64(k))
                U.store(b, positions[k], self.positions, slot)
                U.store(b, weights[k], self.weights, slot)

        self.sample_points(b, origin, size, grid, visit)

    def pool_cached_bin(self, b: ir.IRBuilder, plane: ir.Value) -> ir.Value:
        acc = self.start(b)
        with U.for_range(b, U.i64(0), self.samples, name="s") as s:
            slots = [b.add(b.mul(s, U.i64(4)), U.i64(k)) for k in range(4)]
            positions = [U.load(b, self.positions, slot, U.I64) for slot in slots]
            weights = [U.load(b, self.weights, slot, U.F32) for slot in slots]
            self.accumulate(b, acc, self.sample(b, plane, positions, weights))
        return b.load(acc)

    def pool_bin(self, b: ir.IRBuilder, plane: ir.Value, origin, size, grid) -> ir.Value:
        """The same for a bin of many samples, their neighbours found per channel."""
        acc = self.start(b)

        def visit(b: ir.IRBuilder, s: ir.Value, y: ir.Value, x: ir.Value) -> None:
            self.accumulate(b, acc, self.sample(b, plane, *self.neighbours(b, y, x)))

        self.sample_points(b, origin, size, grid, visit)
        return b.load(acc)

    def start(self, b: ir.IRBuilder) -> ir.Value:
        acc = entry_alloca(b, U.F32, "acc")
        b.store(_f(0.0 if self.mode == "avg" else float("-inf")), acc)
        return acc

    def accumulate(self, b: ir.IRBuilder, acc: ir.Value, value: ir.Value) -> None:
        old = b.load(acc)
        b.store(b.fadd(old, value) if self.mode == "avg" else _std_max(b, old, value), acc)

    def sample(self, b: ir.IRBuilder, plane: ir.Value, positions: list[ir.Value],
               weights: list[ir.Value]) -> ir.Value:
        """avg: the interpolated value; max: the largest weighted neighbour."""
        value = None
        for position, weight in zip(positions, weights, strict=True):
            v = b.fmul(weight, U.load(b, plane, position))
            if value is None:
                value = v
            else:
                value = b.fadd(value, v) if self.mode == "avg" else _std_max(b, value, v)
        return value

    def neighbours(self, b: ir.IRBuilder, y: ir.Value,
                   x: ir.Value) -> tuple[list[ir.Value], list[ir.Value]]:
        """The 4 positions in the plane and bilinear weights of sample (y, x); for a
        sample more than a pixel outside the image, position 0 with weight 0."""
        g = self.g
        inside = b.and_(self.within(b, y, g["H"]), self.within(b, x, g["W"]))
        (y_low, y_high, ly), (x_low, x_high, lx) = self.axis(b, y, g["H"]), self.axis(b, x, g["W"])
        hy, hx = b.fsub(_f(1.0), ly), b.fsub(_f(1.0), lx)
        taps = [(y_low, x_low, b.fmul(hy, hx)), (y_low, x_high, b.fmul(hy, lx)),
                (y_high, x_low, b.fmul(ly, hx)), (y_high, x_high, b.fmul(ly, lx))]
        positions = [b.select(inside, b.add(b.mul(row, g["W"]), col), U.i64(0))
                     for row, col, _ in taps]
        weights = [b.select(inside, w, _f(0.0)) for _, _, w in taps]
        return positions, weights

    @staticmethod
    def within(b: ir.IRBuilder, v: ir.Value, n: ir.Value) -> ir.Value:
        """-1 <= v <= n (false for NaN)."""
        return b.and_(b.fcmp_ordered(">=", v, _f(-1.0)),
                      b.fcmp_ordered("<=", v, b.sitofp(n, U.F32)))

    @staticmethod
    def axis(b: ir.IRBuilder, v: ir.Value, n: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
        """(low index, high index, fraction) of coordinate v clamped into [0, n - 1];
        any v gives indices inside the image (the sample is discarded when v was
        outside [-1, n])."""
        last = b.sub(n, U.i64(1))
        v = b.select(b.fcmp_ordered(">", v, _f(0.0)), v, _f(0.0))  # also NaN -> 0
        v = b.select(b.fcmp_ordered("<", v, b.sitofp(n, U.F32)), v, b.sitofp(n, U.F32))
        low = b.fptosi(v, U.I64)
        at_end = b.icmp_signed(">=", low, last)
        low = b.select(at_end, last, low)
        v = b.select(at_end, b.sitofp(last, U.F32), v)
        high = b.select(at_end, last, b.add(low, U.i64(1)))
        return low, high, b.fsub(v, b.sitofp(low, U.F32))


def _std_max(b: ir.IRBuilder, a: ir.Value, v: ir.Value) -> ir.Value:
    """std::max(a, v) as onnxruntime's max mode takes it: a unless a < v."""
    return b.select(b.fcmp_ordered("<", a, v), v, a)
