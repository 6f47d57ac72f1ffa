"""Direct depthwise convolution: every output channel reads one input channel,
so there is no reduction over channels and a GEMM would be all overhead.

Vectorized along output x (one vector = `lanes` output pixels of a row). A
block of ROWS output rows is computed at once with one accumulator each, so
the FMA chains are independent. Padding and the right edge are handled by
masked loads (unit W-stride) or masked gathers (W-stride > 1); the fused
epilogue (bias, residual, clip) is applied before the masked store.

Signature: (x, w, y, N, C, mult, H, W, kh, kw, sh, sw, dh, dw, ph, pw, Ho, Wo,
            *epilogue) with x: [N, C, H, W], w: [C*mult, kh, kw],
            y (and the residual): [N, C*mult, Ho, Wo]; output channel co reads
            input channel co // mult.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from ..kernel import I64, PTR, Kernel
from ..llvm_util import F32, define, fma, for_range, gep, i64, load, splat, vec
from ..llvm_util import I64 as I64T
from ..llvm_util import PTR as PTRT
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

ROWS = 4  # output rows per block: independent accumulators hide the FMA latency
GEOMETRY = ["N", "C", "mult", "H", "W", "kh", "kw", "sh", "sw", "dh", "dw", "ph", "pw", "Ho",
            "Wo"]


def depthwise_kernel(lanes: int, epi: Epilogue) -> Kernel:
    name = f"conv_dw_f32_v{lanes}_{epi.tag}"
    params = (PTR, PTR, PTR) + (I64,) * len(GEOMETRY) + tuple(k for _, k in epi.params())

    def build(module: ir.Module, target: object) -> ir.Function:
        return _build(module, name, lanes, epi)

    return Kernel(name, params, build)


def depthwise_args(values: dict[str, object], epi: Epilogue) -> tuple[object, ...]:
    names = ["x", "w", "y"] + GEOMETRY + [n for n, _ in epi.params()]
    return tuple(values[n] for n in names)


def _build(module: ir.Module, name: str, lanes: int, epi: Epilogue) -> ir.Function:
    names = ["x", "w", "y"] + GEOMETRY + [n for n, _ in epi.params()]
    kinds = {PTR: PTRT, I64: I64T, "f32": F32}
    types = [PTRT] * 3 + [I64T] * len(GEOMETRY) + [kinds[k] for _, k in epi.params()]
    fn, b = define(module, name, types, names, noalias=True)
    g = dict(zip(names, fn.args, strict=True))
    accs = [b.alloca(vec(F32, lanes), name=f"acc{r}") for r in range(ROWS)]  # -> registers
    with b.if_else(b.icmp_signed("==", g["sw"], i64(1))) as (unit, strided):
        with unit:
            _images(b, g, lanes, epi, accs, unit_stride=True)
        with strided:
            _images(b, g, lanes, epi, accs, unit_stride=False)
    b.ret_void()
    return fn


def _images(b: ir.IRBuilder, g: dict[str, ir.Value], lanes: int, epi: Epilogue,
            accs: list[ir.Value], unit_stride: bool) -> None:
    co_count = b.mul(g["C"], g["mult"])
    in_plane = b.mul(g["H"], g["W"])
    out_plane = b.mul(g["Ho"], g["Wo"])
    with for_range(b, 0, g["N"], name="n") as n:
        x_img = gep(b, g["x"], b.mul(n, b.mul(g["C"], in_plane)))
        y_img = gep(b, g["y"], b.mul(n, b.mul(co_count, out_plane)))
        values = {k: g[k] for k, _ in epi.params()}
        if epi.residual:
            values["res"] = gep(b, g["res"], b.mul(n, b.mul(co_count, out_plane)))
        epi_img = EpilogueValues(epi, values)
        with for_range(b, 0, co_count, name="co") as co:
            plane = _Plane(x=gep(b, x_img, b.mul(b.sdiv(co, g["mult"]), in_plane)),
                           w=gep(b, g["w"], b.mul(co, b.mul(g["kh"], g["kw"]))),
                           y=gep(b, y_img, b.mul(co, out_plane)), co=co)
            _plane(b, g, lanes, epi_img, accs, plane, unit_stride)


@dataclass
class _Plane:
    """One output channel of one image: its input plane, filter and output plane."""

    x: ir.Value
    w: ir.Value
    y: ir.Value
    co: ir.Value


def _plane(b: ir.IRBuilder, g: dict[str, ir.Value], lanes: int, epi: EpilogueValues,
           accs: list[ir.Value], p: _Plane, unit_stride: bool) -> None:
    row_blocks = b.sdiv(b.add(g["Ho"], i64(ROWS - 1)), i64(ROWS))
    chunks = b.sdiv(b.add(g["Wo"], i64(lanes - 1)), i64(lanes))
    zero = ir.Constant(vec(F32, lanes), None)
    with for_range(b, 0, row_blocks, name="yb") as yb, \
            for_range(b, 0, chunks, name="xc") as xc:
        y0 = b.mul(yb, i64(ROWS))
        x0 = b.mul(xc, i64(lanes))
        for acc in accs:
            b.store(zero, acc)
        with for_range(b, 0, g["kh"], name="ky") as ky, \
                for_range(b, 0, g["kw"], name="kx") as kx:
            _tap(b, g, lanes, accs, p, y0, x0, ky, kx, unit_stride)
        out_cols = prefix_mask(b, b.sub(g["Wo"], x0), lanes)
        for r, acc in enumerate(accs):
            y = b.add(y0, i64(r))
            with b.if_then(b.icmp_signed("<", y, g["Ho"])):
                col = b.add(b.mul(y, g["Wo"]), x0)
                v = b.load(acc, typ=vec(F32, lanes))
                v = epi.apply(b, v, p.co, col, out_cols)
                masked_store(b, v, raw_gep(b, p.y, col), out_cols)


def _tap(b: ir.IRBuilder, g: dict[str, ir.Value], lanes: int, accs: list[ir.Value],
         p: _Plane, y0: ir.Value, x0: ir.Value, ky: ir.Value, kx: ir.Value,
         unit_stride: bool) -> None:
    """acc[r] += w[ky, kx] * x[(y0 + r)*sh + ky*dh - ph, (x0 + lane)*sw + kx*dw - pw]."""
    weight = splat(b, load(b, p.w, b.add(b.mul(ky, g["kw"]), kx)), lanes)
    ix0 = b.sub(b.add(b.mul(x0, g["sw"]), b.mul(kx, g["dw"])), g["pw"])
    lane_x = b.mul(lane_ids(lanes), splat_i32(b, g["sw"], lanes))
    ix = b.add(lane_x, splat_i32(b, ix0, lanes))
    cols = b.and_(in_range(b, ix, splat_i32(b, g["W"], lanes)),
                  prefix_mask(b, b.sub(g["Wo"], x0), lanes))
    for r, acc in enumerate(accs):
        iy = b.sub(b.add(b.mul(b.add(y0, i64(r)), g["sh"]), b.mul(ky, g["dh"])), g["ph"])
        row_ok = b.icmp_unsigned("<", iy, g["H"])
        mask = b.and_(cols, splat(b, row_ok, lanes))
        row = raw_gep(b, p.x, b.mul(iy, g["W"]))
        if unit_stride:
            v = masked_load(b, raw_gep(b, row, ix0), mask, lanes)
        else:
            v = gather(b, row, ix, mask)
        b.store(fma(b, weight, v, b.load(acc, typ=vec(F32, lanes))), acc)
