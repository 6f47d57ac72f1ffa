"""Direct depthwise convolution on 8-bit data (QLinearConv / ConvInteger with
one input channel per group), requantized as MLAS does; and, with the same
tiles, max pooling of 8-bit data (reduce "max": exact, values are small integers).

A GEMM per group would be all overhead (one output channel, K = kh*kw). The
integer products are computed in float32 FMAs instead, which is exact: the
operands (x - x_zp) and (w - w_zp) are integers of at most 9 bits, so every
product and partial sum stays an integer below 2^24 as long as the filter has
at most 258 taps (the lowering checks). The float accumulator then converts to
the int32 accumulator exactly, and the epilogue is the int8 GEMM's:

    y = saturate(round_half_even(float(acc + bias[c]) * scale[c]) + y_zp)

Each input channel is first copied into a zero-padded float plane of (x - x_zp)
(scratch that stays in L1/L2; one plane per thread: the N x C input planes are
split across the thread pool), so the hot loop has no bounds checks: a tile is
ROWS output rows x one vector of output columns; unit stride loads vectors,
stride 2 keeps the even lanes of two, other strides gather. Edge stores are
masked.

Signature: (x, w, bias, scale, y, pad, N, C, mult, H, W, ph, pw, Ho, Wo, Hp, Wp,
            x_zp, y_zp); w: f32 [C*mult, kh*kw] holding (w - w_zp); bias: i32
[C*mult]; scale: f32 [C*mult]; output channel co reads input channel co // mult.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ....ir import DType
from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import define_range_fn, parallel_planes
from ..gemm.gemm_simd import gather, in_range, lane_ids, prefix_mask, splat_i32
from ..support.dtype_ir import storage_type
from ..support.vloop import define_kernel, masked_vload, max_nnan
from .quant import round_saturate

ROWS = 4  # output rows per tile: independent FMA chains
GEOMETRY = ["N", "C", "mult", "H", "W", "ph", "pw", "Ho", "Wo", "Hp", "Wp", "x_zp", "y_zp"]
MAX_EXACT_TAPS = 258  # 258 * 255 * 255 < 2^24: float32 sums of products stay exact


@dataclass(frozen=True)
class QDepthwiseSpec:
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    lanes: int
    src: DType  # uint8 / int8 input
    out: DType  # uint8 / int8 output, or int32 (ConvInteger: no requantization)
    reduce: str = "fma"  # "fma": the convolution; "max": max pooling (w, bias, scale unused)
    threads: int = 1  # input planes split across the thread pool, one pad plane each
    # The GEOMETRY values of a threaded layer whose sizes are all known, compiled
    # into the workers' code (see conv_direct.DepthwiseSpec.geometry). None: arguments.
    geometry: tuple[int, ...] | None = None

    @property
    def name(self) -> str:
        kind = "qconv_dw" if self.reduce == "fma" else "maxpool"
        threads = f"_t{self.threads}" if self.threads > 1 else ""
        sizes = "_" + "x".join(map(str, self.geometry)) if self.geometry else ""
        return (f"{kind}_{self.src.short}_{self.out.short}_{self.kh}x{self.kw}"
                f"_s{self.sh}x{self.sw}_d{self.dh}x{self.dw}_v{self.lanes}{sizes}{threads}")

    def kernel(self) -> Kernel:
        return Kernel(self.name, (PTR,) * 6 + (I64,) * len(GEOMETRY),
                      lambda module, target: _build(module, target, self))

    def padded_plane(self, ho: int, wo: int) -> tuple[int, int]:
        """(Hp, Wp): rows and columns any tile may read; Wp a whole number of vectors."""
        rows = -(-ho // ROWS) * ROWS
        cols = -(-wo // self.lanes) * self.lanes
        wp = cols * self.sw + (self.kw - 1) * self.dw + 1
        return (rows - 1) * self.sh + (self.kh - 1) * self.dh + 1, -(-wp // self.lanes) * self.lanes

    def pad_bytes(self, ho: int, wo: int) -> int:
        """The `pad` scratch: one padded float plane per thread."""
        hp, wp = self.padded_plane(ho, wo)
        return 4 * hp * wp * self.threads


_NAMES = ["x", "w", "bias", "scale", "y", "pad"] + GEOMETRY


def _build(module: ir.Module, target: CpuTarget, spec: QDepthwiseSpec) -> ir.Function:
    """The kernel splits the N x C input planes across workers (range function
    below); each worker pads its planes into its own slice of `pad`."""
    types = [U.PTR] * 6 + [U.I64] * len(GEOMETRY)
    if spec.threads <= 1:
        fn, b = define_kernel(module, spec.name, types, _NAMES)
    else:  # inlined where it is called, so that its serial copy sees the layer's shape
        fn, b = U.define(module, spec.name, types, _NAMES)
    g = dict(zip(_NAMES, fn.args, strict=True))
    parallel_planes(b, g, list(fn.args), spec.kh * spec.kw, spec.threads,
                    lambda suffix: _build_planes(module, spec, types, suffix), spec.lanes, spec.sw,
                    serial_copy=spec.geometry is None)
    b.ret_void()
    return fn


def _build_planes(module: ir.Module, spec: QDepthwiseSpec, types: list[ir.Type],
                  suffix: str) -> ir.Function:
    """Input planes [begin, end) of the N x C planes, padded in slice `worker`."""
    fn, b, g = define_range_fn(module, f"{spec.name}.{suffix}", types, _NAMES, noalias=True)
    if spec.geometry:
        g.update({k: U.i64(v) for k, v in zip(GEOMETRY, spec.geometry, strict=True)})
    in_plane, out_plane = b.mul(g["H"], g["W"]), b.mul(g["Ho"], g["Wo"])
    taps = spec.kh * spec.kw
    elem = storage_type(spec.out)
    g["pad"] = U.gep(b, g["pad"], b.mul(g["worker"], b.mul(g["Hp"], g["Wp"])))
    with U.for_range(b, g["begin"], g["end"], name="plane") as index:
        # plane index = n*C + ci; image n's outputs start at (index - ci) * mult planes
        ci = b.srem(index, g["C"])
        y_img = U.gep(b, g["y"], b.mul(b.mul(b.sub(index, ci), g["mult"]), out_plane), elem)
        _pad_plane(b, spec, g, U.gep(b, g["x"], b.mul(index, in_plane), storage_type(spec.src)))
        with U.for_range(b, 0, g["mult"], name="j") as j:
            co = b.add(b.mul(ci, g["mult"]), j)
            w = U.gep(b, g["w"], b.mul(co, U.i64(taps)))
            weights = [U.splat(b, U.load(b, w, U.i64(t)), spec.lanes)
                       for t in range(taps)] if spec.reduce == "fma" else []
            plane = _Plane(U.gep(b, y_img, b.mul(co, out_plane), elem), co, weights)
            _tiles(b, spec, g, plane)
    b.ret_void()
    return fn


def _pad_plane(b: ir.IRBuilder, spec: QDepthwiseSpec, g: dict[str, ir.Value],
               src: ir.Value) -> None:
    """pad[r, c] = float(x[r - ph, c - pw] - x_zp) inside the image, else 0
    (-inf for max pooling: padding never wins)."""
    lanes = spec.lanes
    chunks = b.sdiv(g["Wp"], U.i64(lanes))
    width = splat_i32(b, g["W"], lanes)
    zp = splat_i32(b, g["x_zp"], lanes)
    byte = storage_type(spec.src)
    with U.for_range(b, 0, g["Hp"], name="pr") as pr:
        iy = b.sub(pr, g["ph"])
        row_ok = U.splat(b, b.icmp_unsigned("<", iy, g["H"]), lanes)
        src_row = b.gep(src, [b.mul(iy, g["W"])], source_etype=byte)  # may point outside
        dst_row = U.gep(b, g["pad"], b.mul(pr, g["Wp"]))
        with U.for_range(b, 0, chunks, name="pc") as pc:
            c0 = b.mul(pc, U.i64(lanes))
            ix = b.sub(c0, g["pw"])
            cols = b.add(lane_ids(lanes), splat_i32(b, ix, lanes))
            ok = b.and_(row_ok, in_range(b, cols, width))
            raw = masked_vload(b, b.gep(src_row, [ix], source_etype=byte), ok, byte)
            v = _widen(b, raw, spec.src)
            outside = ir.Constant(U.vec(U.F32, lanes), [_neutral(spec)] * lanes)
            v = b.select(ok, b.sitofp(b.sub(v, zp), U.vec(U.F32, lanes)), outside)
            U.store_vec(b, v, dst_row, c0)


def _neutral(spec: QDepthwiseSpec) -> float:
    return 0.0 if spec.reduce == "fma" else float("-inf")


def _widen(b: ir.IRBuilder, raw: ir.Value, dt: DType) -> ir.Value:
    i32 = U.vec(U.I32, raw.type.count)
    return b.sext(raw, i32) if dt == DType.int8 else b.zext(raw, i32)


@dataclass
class _Plane:
    y: ir.Value  # the output plane
    co: ir.Value
    weights: list[ir.Value]  # kh*kw splatted (w - w_zp)


def _tiles(b: ir.IRBuilder, spec: QDepthwiseSpec, g: dict[str, ir.Value], p: _Plane) -> None:
    lanes = spec.lanes
    row_blocks = b.sdiv(b.add(g["Ho"], U.i64(ROWS - 1)), U.i64(ROWS))
    chunks = b.sdiv(b.add(g["Wo"], U.i64(lanes - 1)), U.i64(lanes))
    bias = U.splat(b, U.load(b, g["bias"], p.co, U.I32), lanes)
    scale = U.splat(b, U.load(b, g["scale"], p.co, U.F32), lanes)
    yzp = splat_i32(b, g["y_zp"], lanes)
    with U.for_range(b, 0, row_blocks, name="yb") as yb, \
            U.for_range(b, 0, chunks, name="xc") as xc:
        y0, x0 = b.mul(yb, U.i64(ROWS)), b.mul(xc, U.i64(lanes))
        outs = [_epilogue(b, spec, acc, bias, scale, yzp) for acc in _tile_sums(b, spec, g, p,
                                                                                y0, x0)]
        cols = prefix_mask(b, b.sub(g["Wo"], x0), lanes)
        for r, v in enumerate(outs):
            y = b.add(y0, U.i64(r))
            with b.if_then(b.icmp_signed("<", y, g["Ho"])):
                at = b.add(b.mul(y, g["Wo"]), x0)
                _masked_store(b, v, U.gep(b, p.y, at, v.type.element), cols)


def _epilogue(b: ir.IRBuilder, spec: QDepthwiseSpec, acc: ir.Value, bias: ir.Value,
              scale: ir.Value, yzp: ir.Value) -> ir.Value:
    """float acc (an exact integer) -> the stored value (8-bit or int32)."""
    if spec.reduce == "max":
        return b.trunc(b.fptosi(acc, bias.type), U.vec(storage_type(spec.out), spec.lanes))
    total = b.add(b.fptosi(acc, bias.type), bias)
    if spec.out == DType.int32:
        return total
    q = round_saturate(b, b.fmul(b.sitofp(total, scale.type), scale), yzp, spec.out)
    return b.trunc(q, U.vec(storage_type(spec.out), spec.lanes))


def _masked_store(b: ir.IRBuilder, v: ir.Value, ptr: ir.Value, mask: ir.Value) -> None:
    vt = v.type
    sfx = f"v{vt.count}i{vt.element.width}"
    fn = U.intrinsic(b.module, f"llvm.masked.store.{sfx}.p0", U.VOID,
                     [vt, U.PTR, U.I32, mask.type])
    b.call(fn, [v, ptr, ir.Constant(U.I32, vt.element.width // 8), mask])


def _tile_sums(b: ir.IRBuilder, spec: QDepthwiseSpec, g: dict[str, ir.Value], p: _Plane,
               y0: ir.Value, x0: ir.Value) -> list[ir.Value]:
    """acc[r] = sum over taps of w[ky, kx] * pad[(y0+r)*sh + ky*dh, (x0+l)*sw + kx*dw]."""
    accs = [ir.Constant(U.vec(U.F32, spec.lanes), [_neutral(spec)] * spec.lanes)] * ROWS
    first = U.gep(b, g["pad"], b.add(b.mul(b.mul(y0, U.i64(spec.sh)), g["Wp"]),
                                     b.mul(x0, U.i64(spec.sw))))
    rows = (ROWS - 1) * spec.sh + (spec.kh - 1) * spec.dh + 1
    row_ptrs = [U.gep(b, first, b.mul(U.i64(j), g["Wp"])) for j in range(rows)]
    for r in range(ROWS):
        for ky in range(spec.kh):
            row = row_ptrs[r * spec.sh + ky * spec.dh]
            for kx in range(spec.kw):
                v = _load_taps(b, spec, row, kx * spec.dw)
                if spec.reduce == "max":
                    accs[r] = max_nnan(b, accs[r], v)
                else:
                    accs[r] = U.fma(b, p.weights[ky * spec.kw + kx], v, accs[r])
    return accs


def _load_taps(b: ir.IRBuilder, spec: QDepthwiseSpec, row: ir.Value, col: int) -> ir.Value:
    """Padded row `row` at columns col + lane*sw."""
    lanes = spec.lanes
    if spec.sw == 1:
        return U.load_vec(b, row, U.i64(col), lanes)
    if spec.sw == 2:
        pair = [U.load_vec(b, row, U.i64(col + h * lanes), lanes) for h in range(2)]
        even = ir.Constant(U.vec(U.I32, lanes), [2 * i for i in range(lanes)])
        return b.shuffle_vector(pair[0], pair[1], even)
    cols = ir.Constant(U.vec(U.I32, lanes), [col + i * spec.sw for i in range(lanes)])
    return gather(b, row, cols, ir.Constant(U.vec(U.I1, lanes), [1] * lanes))

