"""Direct depthwise convolution: every output channel reads one input channel,
so there is no reduction over channels and a GEMM would be all overhead.

Each input channel is first copied into a zero-padded plane (scratch, a few
KB, stays in L1/L2) big enough for every tile, so the hot code has no bounds
checks and no masks: a tile is ROWS output rows x one vector of `lanes` output
columns, one accumulator per row (independent FMA chains), straight-line code
of ROWS*kh*kw loads + FMAs with the filter size fixed at compile time (the
FMA is the step of the intrinsic the target's YAML declares, see micro_step.py,
or plain fmul + fadd). Along W,
unit stride loads contiguous vectors, stride 2 loads two and keeps the even
lanes, other strides gather. Only the stores at the right/bottom edge are
masked. The fused epilogue (bias, residual, clip) is applied before the store.

Planes narrower than a vector with unit W-stride (7x7, 14x14 on 16 lanes) skip
the padded copy: a row's taps are masked loads straight from the input (a
mask per kx, the same for every row; rows outside the image load nothing).
There the copy cost more than the FMAs: its stores are still in flight when
the overlapping, shifted tap loads want them. W-stride 2 skips it at every
width (two masked loads per tap, then their even lanes): its padded rows
would be twice as wide as the outputs.

Signature: (x, w, y, pad, N, C, mult, H, W, sh, sw, dh, dw, ph, pw, Ho, Wo, Hp, Wp,
            *epilogue) with x: [N, C, H, W], w: [C*mult, kh, kw], y (and the
residual): [N, C*mult, Ho, Wo], pad: Hp*Wp floats (see padded_plane); output
channel co reads input channel co // mult.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ...llvm_util import F32, define, for_range, gep, i64, load, load_vec, splat, store_vec, vec
from ...llvm_util import I1 as I1T
from ...llvm_util import I32 as I32T
from ...llvm_util import I64 as I64T
from ...llvm_util import PTR as PTRT
from ...parallel import define_range_fn, parallel_planes
from .gemm_epilogue import Epilogue, EpilogueValues
from .gemm_simd import (
    gather,
    in_range,
    lane_ids,
    masked_load,
    masked_store,
    prefix_mask,
    raw_gep,
    splat_i32,
)
from .micro_step import MicroStep, plain_f32_step

ROWS = 4  # output rows per tile: independent accumulators hide the FMA latency
GEOMETRY = ["N", "C", "mult", "H", "W", "ph", "pw", "Ho", "Wo", "Hp", "Wp"]


@dataclass(frozen=True)
class DepthwiseSpec:
    """Filter size, strides and dilations are compile-time: every load of a tile
    is then a fixed offset from one of a few row pointers."""

    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    lanes: int
    epi: Epilogue
    step: MicroStep | None = None  # the tensorized multiply-accumulate; None: plain
    threads: int = 1  # input channels split across the thread pool, one pad plane each
    direct: bool = False  # taps loaded from the input with masks, no padded plane
    # The GEOMETRY values of a threaded layer whose sizes are all known: compiled
    # into the code the workers run (their range function reads its arguments
    # from the pool's context, so LLVM cannot fold them as it does for the
    # caller's inlined copy; generic, that copy ran a 576-channel 14x14 -> 7x7
    # layer 6x slower, and two threads were slower than one). None: arguments.
    geometry: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.direct and self.sw not in (1, 2):
            raise ValueError("direct depthwise loads need a W-stride of 1 or 2")

    @staticmethod
    def direct_pays(sw: int, wo: int, lanes: int) -> bool:
        """No padded copy for unit-stride planes whose rows are one vector (see
        the module doc), nor at stride 2, whose padded rows are twice as long as
        the outputs (1 / 2 threads, onnxruntime in brackets: 96 channels
        112x112 -> 56x56 281 / 177 us padded, 234 / 113 direct (340 / 161);
        192 ch 28 -> 14: 51 / 29, 41 / 26 (47 / 27); 576 ch 14 -> 7: 67 / 47
        padded, 28 / 16 direct (38 / 26); 144 ch 56 -> 28 alike both ways)."""
        return (sw == 1 and wo <= lanes) or sw == 2

    @property
    def name(self) -> str:
        step = f"_{self.step.ident}" if self.step else ""
        threads = f"_t{self.threads}" if self.threads > 1 else ""
        direct = "_direct" if self.direct else ""
        sizes = "_" + "x".join(map(str, self.geometry)) if self.geometry else ""
        return (f"conv_dw_f32_{self.kh}x{self.kw}_s{self.sh}x{self.sw}_d{self.dh}x{self.dw}"
                f"_v{self.lanes}{direct}_{self.epi.tag}{step}{sizes}{threads}")

    def param_names(self) -> list[str]:
        return ["x", "w", "y", "pad"] + GEOMETRY + [n for n, _ in self.epi.params()]

    def kernel(self) -> Kernel:
        params = (PTR,) * 4 + (I64,) * len(GEOMETRY) + tuple(k for _, k in self.epi.params())
        return Kernel(self.name, params, lambda module, target: _build(module, self))

    def args(self, values: dict[str, object]) -> tuple[object, ...]:
        return tuple(values[n] for n in self.param_names())

    def padded_plane(self, ho: int, wo: int) -> tuple[int, int]:
        """(Hp, Wp): rows and columns every tile may read, the last tiles' unused
        rows and lanes (and stride 2's second vector) included; Wp is a whole
        number of vectors so the padding copy needs no masked stores. Direct
        loads need none: one row of one vector, never read."""
        if self.direct:
            return 1, self.lanes
        rows = -(-ho // ROWS) * ROWS
        cols = -(-wo // self.lanes) * self.lanes
        wp = cols * self.sw + (self.kw - 1) * self.dw + 1
        return (rows - 1) * self.sh + (self.kh - 1) * self.dh + 1, -(-wp // self.lanes) * self.lanes

    def pad_bytes(self, ho: int, wo: int) -> int:
        """The `pad` scratch: one padded plane per thread."""
        hp, wp = self.padded_plane(ho, wo)
        return 4 * hp * wp * self.threads


def _build(module: ir.Module, spec: DepthwiseSpec) -> ir.Function:
    """The kernel splits the N x C input planes across workers (range function
    below); each worker pads its planes into its own slice of `pad`."""
    kinds = {PTR: PTRT, I64: I64T, "f32": F32}
    types = [PTRT] * 4 + [I64T] * len(GEOMETRY) + [kinds[k] for _, k in spec.epi.params()]
    fn, b = define(module, spec.name, types, spec.param_names(), noalias=True)
    g = dict(zip(spec.param_names(), fn.args, strict=True))
    parallel_planes(b, g, list(fn.args), spec.kh * spec.kw, spec.threads,
                    lambda suffix: _build_planes(module, spec, types, suffix), spec.lanes, spec.sw,
                    serial_copy=spec.geometry is None)
    b.ret_void()
    return fn


def _build_planes(module: ir.Module, spec: DepthwiseSpec, types: list[ir.Type],
                  suffix: str) -> ir.Function:
    """Input planes [begin, end) of the N x C planes, padded in slice `worker`."""
    fn, b, g = define_range_fn(module, f"{spec.name}.{suffix}", types, spec.param_names(),
                               noalias=True)
    if spec.geometry:
        g.update({k: i64(v) for k, v in zip(GEOMETRY, spec.geometry, strict=True)})
    in_plane, out_plane = b.mul(g["H"], g["W"]), b.mul(g["Ho"], g["Wo"])
    taps = spec.kh * spec.kw
    g["pad"] = gep(b, g["pad"], b.mul(g["worker"], b.mul(g["Hp"], g["Wp"])))
    with for_range(b, g["begin"], g["end"], name="plane") as index:
        # plane index = n*C + ci; image n's outputs start at (index - ci) * mult planes
        ci = b.srem(index, g["C"])
        image = b.mul(b.mul(b.sub(index, ci), g["mult"]), out_plane)
        y_img = gep(b, g["y"], image)
        values = {k: g[k] for k, _ in spec.epi.params()}
        if spec.epi.residual:
            values["res"] = gep(b, g["res"], image)
        src = gep(b, g["x"], b.mul(index, in_plane))
        if not spec.direct:
            _pad_plane(b, spec.lanes, g, src)
        with for_range(b, 0, g["mult"], name="j") as j:
            co = b.add(b.mul(ci, g["mult"]), j)
            w = gep(b, g["w"], b.mul(co, i64(taps)))
            plane = _Plane(y=gep(b, y_img, b.mul(co, out_plane)), co=co,
                           weights=[splat(b, load(b, w, i64(t)), spec.lanes)
                                    for t in range(taps)],
                           epi=EpilogueValues(spec.epi, values))
            _tiles(b, spec, g, plane, src)
    b.ret_void()
    return fn


def _pad_plane(b: ir.IRBuilder, lanes: int, g: dict[str, ir.Value], src: ir.Value) -> None:
    """pad[r, c] = x[r - ph, c - pw] inside the image, else 0 (rows Hp, cols Wp)."""
    chunks = b.sdiv(g["Wp"], i64(lanes))
    width = splat_i32(b, g["W"], lanes)
    with for_range(b, 0, g["Hp"], name="pr") as pr:
        iy = b.sub(pr, g["ph"])
        row_ok = splat(b, b.icmp_unsigned("<", iy, g["H"]), lanes)
        src_row = raw_gep(b, src, b.mul(iy, g["W"]))
        dst_row = gep(b, g["pad"], b.mul(pr, g["Wp"]))
        with for_range(b, 0, chunks, name="pc") as pc:
            c0 = b.mul(pc, i64(lanes))
            ix = b.sub(c0, g["pw"])
            cols = b.add(lane_ids(lanes), splat_i32(b, ix, lanes))
            ok = b.and_(row_ok, in_range(b, cols, width))
            v = masked_load(b, raw_gep(b, src_row, ix), ok, lanes)
            store_vec(b, v, dst_row, c0)


@dataclass
class _Plane:
    """One output channel of one image."""

    y: ir.Value  # its output plane
    co: ir.Value
    weights: list[ir.Value]  # kh*kw broadcast filter taps
    epi: EpilogueValues


def _tiles(b: ir.IRBuilder, spec: DepthwiseSpec, g: dict[str, ir.Value], p: _Plane,
           src: ir.Value) -> None:
    lanes = spec.lanes
    row_blocks = b.sdiv(b.add(g["Ho"], i64(ROWS - 1)), i64(ROWS))
    chunks = b.sdiv(b.add(g["Wo"], i64(lanes - 1)), i64(lanes))
    with for_range(b, 0, row_blocks, name="yb") as yb, \
            for_range(b, 0, chunks, name="xc") as xc:
        y0, x0 = b.mul(yb, i64(ROWS)), b.mul(xc, i64(lanes))
        if spec.direct:
            accs = _direct_sums(b, spec, g, p, src, y0, x0)
        else:
            accs = _tile_sums(b, spec, g, p, y0, x0)
        full = b.and_(b.icmp_signed("<=", b.add(y0, i64(ROWS)), g["Ho"]),
                      b.icmp_signed("<=", b.add(x0, i64(lanes)), g["Wo"]))
        with b.if_else(full) as (inside, edge):
            with inside:
                for r, acc in enumerate(accs):
                    col = b.add(b.mul(b.add(y0, i64(r)), g["Wo"]), x0)
                    store_vec(b, p.epi.apply(b, acc, p.co, col), p.y, col)
            with edge:
                _edge_stores(b, g, p, accs, y0, x0, lanes)


def _tile_sums(b: ir.IRBuilder, spec: DepthwiseSpec, g: dict[str, ir.Value], p: _Plane,
               y0: ir.Value, x0: ir.Value) -> list[ir.Value]:
    """acc[r] = sum over taps of w[ky, kx] * pad[(y0+r)*sh + ky*dh, (x0+l)*sw + kx*dw]."""
    step = spec.step or plain_f32_step(spec.lanes)
    accs = [ir.Constant(vec(F32, spec.lanes), None)] * ROWS
    first = gep(b, g["pad"], b.add(b.mul(b.mul(y0, i64(spec.sh)), g["Wp"]),
                                   b.mul(x0, i64(spec.sw))))
    rows = (ROWS - 1) * spec.sh + (spec.kh - 1) * spec.dh + 1
    row_ptrs = [gep(b, first, b.mul(i64(j), g["Wp"])) for j in range(rows)]
    for r in range(ROWS):
        for ky in range(spec.kh):
            row = row_ptrs[r * spec.sh + ky * spec.dh]
            for kx in range(spec.kw):
                v = _load_taps(b, spec, row, kx * spec.dw)
                accs[r] = step.call(b, accs[r], p.weights[ky * spec.kw + kx], v)
    return accs


def _direct_sums(b: ir.IRBuilder, spec: DepthwiseSpec, g: dict[str, ir.Value], p: _Plane,
                 src: ir.Value, y0: ir.Value, x0: ir.Value) -> list[ir.Value]:
    """_tile_sums on the unpadded input plane `src`: tap (ky, kx) of output row y
    is input row y*sh + ky*dh - ph (none outside the image) at columns
    x0*sw + lane*sw + kx*dw - pw, loaded under that kx's mask of columns inside
    (stride 2: two vectors of consecutive columns, then their even lanes)."""
    step = spec.step or plain_f32_step(spec.lanes)
    lanes, loads = spec.lanes, spec.sw
    width = splat_i32(b, g["W"], lanes)
    col0 = [b.sub(b.add(b.mul(x0, i64(spec.sw)), i64(kx * spec.dw)), g["pw"])
            for kx in range(spec.kw)]
    cols = [[in_range(b, b.add(lane_ids(lanes), splat_i32(b, b.add(c, i64(h * lanes)), lanes)),
                      width) for h in range(loads)] for c in col0]
    even = ir.Constant(vec(I32T, lanes), [2 * i for i in range(lanes)])
    accs = [ir.Constant(vec(F32, lanes), None)] * ROWS
    for r in range(ROWS):
        for ky in range(spec.kh):
            iy = b.sub(b.add(b.mul(b.add(y0, i64(r)), i64(spec.sh)), i64(ky * spec.dh)),
                       g["ph"])
            inside = splat(b, b.icmp_unsigned("<", iy, g["H"]), lanes)
            row = raw_gep(b, src, b.mul(iy, g["W"]))
            for kx in range(spec.kw):
                part = [masked_load(b, raw_gep(b, row, b.add(col0[kx], i64(h * lanes))),
                                    b.and_(cols[kx][h], inside), lanes) for h in range(loads)]
                v = part[0] if loads == 1 else b.shuffle_vector(part[0], part[1], even)
                accs[r] = step.call(b, accs[r], p.weights[ky * spec.kw + kx], v)
    return accs


def _load_taps(b: ir.IRBuilder, spec: DepthwiseSpec, row: ir.Value, col: int) -> ir.Value:
    """Padded row `row` at columns col + lane*sw."""
    lanes = spec.lanes
    if spec.sw == 1:
        return load_vec(b, row, i64(col), lanes)
    if spec.sw == 2:
        pair = [load_vec(b, row, i64(col + h * lanes), lanes) for h in range(2)]
        even = ir.Constant(vec(I32T, lanes), [2 * i for i in range(lanes)])
        return b.shuffle_vector(pair[0], pair[1], even)
    cols = ir.Constant(vec(I32T, lanes), [col + i * spec.sw for i in range(lanes)])
    return gather(b, row, cols, ir.Constant(vec(I1T, lanes), [1] * lanes))


def _edge_stores(b: ir.IRBuilder, g: dict[str, ir.Value], p: _Plane, accs: list[ir.Value],
                 y0: ir.Value, x0: ir.Value, lanes: int) -> None:
    cols = prefix_mask(b, b.sub(g["Wo"], x0), lanes)
    for r, acc in enumerate(accs):
        y = b.add(y0, i64(r))
        with b.if_then(b.icmp_signed("<", y, g["Ho"])):
            col = b.add(b.mul(y, g["Wo"]), x0)
            masked_store(b, p.epi.apply(b, acc, p.co, col, cols), raw_gep(b, p.y, col), cols)
