"""Separable resampling of the last two axes (Resize, Upsample).

Every output coordinate along an axis reads a few taps of the input with fixed
weights: 1 tap for nearest, 2 for linear, 4 for cubic, more when antialiasing
a downscale. Lowering computes these (index, weight) tables at compile time, so
the coordinate transformation and rounding rules never reach the kernel. The
kernel resamples in two passes per image:

    tmp[h, xo] = sum_k xw[k, xo] * x[h, xi[k, xo]]      rows, gathers along W
    y[yo, xo]  = sum_k yw[yo, k] * tmp[yi[yo, k], xo]    whole rows of tmp

With W not resized (x_taps == 0) the first pass is skipped and the second reads
x directly. Tables: xi i32 / xw f32 as [x_taps, wout] (vectors along xo), yi i32
/ yw f32 as [hout, y_taps].
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..gemm.gemm_simd import gather
from ..support import mathfn as M
from ..support.vloop import define_kernel, nested_loops, tail_mask, vector_loop, vload, vstore

PARAMS = ("x", "y", "tmp", "yi", "yw", "xi", "xw", "outer", "hin", "win", "hout", "wout")


def resize_kernel(y_taps: int, x_taps: int) -> Kernel:
    """(x, y, tmp, yi, yw, xi, xw, outer, hin, win, hout, wout): x [outer, hin, win]
    -> y [outer, hout, wout]; tmp holds hin * wout floats (unused if x_taps == 0)."""
    assert y_taps >= 1 and x_taps >= 0
    name = f"resize_f32_y{y_taps}_x{x_taps}"
    params = (PTR,) * 7 + (I64,) * 5

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR] * 7 + [U.I64] * 5, list(PARAMS))
        v = dict(zip(PARAMS, fn.args, strict=True))
        with nested_loops(b, [v["outer"]], name="o") as (o,):
            x_image = U.gep(b, v["x"], b.mul(o, b.mul(v["hin"], v["win"])))
            if x_taps:
                _horizontal(b, v, x_image, x_taps, lanes)
                rows, row_len = v["tmp"], v["wout"]
            else:
                rows, row_len = x_image, v["win"]
            y_image = U.gep(b, v["y"], b.mul(o, b.mul(v["hout"], v["wout"])))
            _vertical(b, v, rows, row_len, y_image, y_taps, lanes)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


def _horizontal(b: ir.IRBuilder, v: dict[str, ir.Value], image: ir.Value, taps: int,
                lanes: int) -> None:
    """tmp[h, :] = the W-resampled row h of the image, for every input row."""
    with U.for_range(b, U.i64(0), v["hin"], name="h") as h:
        src = U.gep(b, image, b.mul(h, v["win"]))
        dst_at = b.mul(h, v["wout"])

        def body(b: ir.IRBuilder, j: ir.Value, count: ir.Value | None) -> None:
            mask = (ir.Constant(U.vec(U.I1, lanes), [1] * lanes) if count is None
                    else tail_mask(b, count, lanes))
            acc = None
            for k in range(taps):
                at = b.add(b.mul(U.i64(k), v["wout"]), j)
                index = vload(b, v["xi"], at, lanes, count, elem=U.I32)
                term = U.fmul(b, vload(b, v["xw"], at, lanes, count), gather(b, src, index, mask))
                acc = term if acc is None else U.fadd(b, acc, term)
            vstore(b, acc, v["tmp"], b.add(dst_at, j), count)

        vector_loop(b, v["wout"], lanes, body)


def _vertical(b: ir.IRBuilder, v: dict[str, ir.Value], rows: ir.Value, row_len: ir.Value,
              y_image: ir.Value, taps: int, lanes: int) -> None:
    """y[yo, :] = sum_k yw[yo, k] * rows[yi[yo, k], :]."""
    with U.for_range(b, U.i64(0), v["hout"], name="yo") as yo:
        sources, weights = [], []
        for k in range(taps):
            at = b.add(b.mul(yo, U.i64(taps)), U.i64(k))
            row = b.sext(U.load(b, v["yi"], at, U.I32), U.I64)
            sources.append(U.gep(b, rows, b.mul(row, row_len)))
            weights.append(U.splat(b, U.load(b, v["yw"], at), lanes))
        dst = U.gep(b, y_image, b.mul(yo, v["wout"]))

        def body(b: ir.IRBuilder, j: ir.Value, count: ir.Value | None) -> None:
            acc = U.fmul(b, weights[0], vload(b, sources[0], j, lanes, count))
            for src, w in zip(sources[1:], weights[1:], strict=True):
                acc = M.fmuladd(b, w, vload(b, src, j, lanes, count), acc)
            vstore(b, acc, dst, j, count)

        vector_loop(b, v["wout"], lanes, body)
