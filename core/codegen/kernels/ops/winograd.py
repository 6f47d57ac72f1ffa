"""The two transforms of a Winograd convolution F(m x m, 3 x 3) (Lavin & Gray,
"Fast Algorithms for Convolutional Neural Networks"), m = 2 or 4; the n x n
products between them (n = m + 2) are one batched fp32 GEMM
(core/lower/conv_winograd.py).

A 3x3, stride-1 conv computes its output in m x m tiles. Tile (ty, tx) of
plane (n, c) reads the n x n input patch d at rows m ty - ph .. + n - 1 and
columns m tx - pw .. + n - 1 (zero outside the input), and

    input transform   V = B^T d B
    products          M[xi][co] = sum_c U[xi][co][c] * V[xi][c]   (xi = n i + j:
                      n^2 GEMMs; U = G g G^T of the weights, at compile time)
    output transform  Y = A^T M A

The matrices (WinogradTile) are data: the kernels are generated from them,
a coefficient of +-1 becoming an add or subtract, any other an FMA. Both
scratch matrices are laid out for the GEMM: V[xi][c][col] and M[xi][co][col],
col = n * tiles + ty * tw + tx (tiles = th * tw per image), so V[xi] is the
GEMM's B (K = channels, N = tile columns) and M[xi] its C.

Vectors run along tx. The input transform loads the m * lanes input values a
vector of tiles starts at and splits them by column modulo m (patch columns
j >= m come from the next load, m columns on); one mask per load zeroes both
the padding and rows outside the input, so the loop has no bounds branches.
The output transform interleaves the tiles' m output columns back into m *
lanes contiguous values, adds bias, and fuses tinyc.Conv's residual and clip
as the GEMM epilogue would. Threads split the planes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import llvmlite.ir as ir
import numpy as np

from ....program import F32, I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import parallel_loop
from ..support.vloop import (
    define_kernel,
    masked_vload,
    masked_vstore,
    max_nnan,
    min_nnan,
    vector_loop,
    vload,
    vstore,
)

INPUT_GEOMETRY = ("planes", "C", "H", "W", "ph", "pw", "th", "tw", "cols")
OUTPUT_GEOMETRY = ("planes", "Co", "Ho", "Wo", "th", "tw", "cols")


@dataclass(frozen=True)
class WinogradTile:
    """F(m x m, 3 x 3): its transform matrices (exact in float64)."""

    m: int

    @property
    def n(self) -> int:
        return self.m + 2

    @cached_property
    def bt(self) -> np.ndarray:  # n x n
        return BT[self.m]

    @cached_property
    def at(self) -> np.ndarray:  # m x n
        return AT[self.m]

    @cached_property
    def g(self) -> np.ndarray:  # n x 3
        return GM[self.m]


# Interpolation points 0, +-1 (m = 2) and 0, +-1, +-2 (m = 4), plus infinity.
BT = {2: np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float),
      4: np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                   [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float)}
AT = {2: np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float),
      4: np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                   [0, 1, -1, 8, -8, 1]], float)}
GM = {2: np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
      4: np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                   [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])}


def input_transform_kernel(tile: WinogradTile) -> Kernel:
    """(x, v, *INPUT_GEOMETRY): planes = N * C; cols = N * th * tw."""
    return _plane_kernel(f"winograd_f{tile.m}x3_input", tile, ["x", "v"], INPUT_GEOMETRY, [],
                         lambda b, args, p, lanes: _input_plane(b, tile, args, p, lanes))


def _plane_kernel(name: str, tile: WinogradTile, ptrs: list[str], geometry: tuple[str, ...],
                  bounds: list[str], plane) -> Kernel:
    """A kernel (*ptrs, *geometry, *bounds) running plane(b, args, p, lanes) for
    every plane p < planes, the planes split across threads."""
    params = (PTR,) * len(ptrs) + (I64,) * len(geometry) + (F32,) * len(bounds)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * len(ptrs) + [U.I64] * len(geometry)
                              + [U.F32] * len(bounds), ptrs + list(geometry) + bounds)
        g = dict(zip(geometry, fn.args[len(ptrs):], strict=False))
        work = b.mul(g["planes"], b.mul(b.mul(g["th"], g["tw"]), U.i64(16 * tile.n * tile.n)))
        parallel_loop(b, target.threads, name, list(fn.args), g["planes"], work,
                      lambda b, args, p: plane(b, args, p, target.f32_lanes))
        b.ret_void()
        return fn

    return Kernel(name, params, build)


def _input_plane(b: ir.IRBuilder, tile: WinogradTile, args: list[ir.Value], p: ir.Value,
                 lanes: int) -> None:
    x, v = args[:2]
    g = dict(zip(INPUT_GEOMETRY, args[2:], strict=True))
    n, c = b.sdiv(p, g["C"]), b.srem(p, g["C"])
    xplane = U.gep(b, x, b.mul(p, b.mul(g["H"], g["W"])))
    col0 = b.mul(n, b.mul(g["th"], g["tw"]))
    with U.for_range(b, 0, g["th"], name="ty") as ty:
        def body(b: ir.IRBuilder, tx: ir.Value, count: ir.Value | None) -> None:
            top = b.sub(b.mul(ty, U.i64(tile.m)), g["ph"])
            rows = [lincombs(b, tile.bt, _patch_row(b, tile, g, xplane, b.add(top, U.i64(i)),
                                                    tx, lanes))
                    for i in range(tile.n)]
            col = b.add(col0, b.add(b.mul(ty, g["tw"]), tx))
            for j in range(tile.n):
                for i, value in enumerate(lincombs(b, tile.bt, [r[j] for r in rows])):
                    row = b.add(b.mul(U.i64(i * tile.n + j), g["C"]), c)
                    vstore(b, value, v, b.add(b.mul(row, g["cols"]), col), count)

        vector_loop(b, g["tw"], lanes, body, name="tx")


def _patch_row(b: ir.IRBuilder, tile: WinogradTile, g: dict[str, ir.Value],
               xplane: ir.Value, r: ir.Value, tx: ir.Value, lanes: int) -> list[ir.Value]:
    """Input row r at patch columns 0 .. n-1 of the tiles tx .. tx + lanes - 1."""
    m, width = tile.m, tile.m * lanes
    row_ok = b.and_(b.icmp_signed(">=", r, U.i64(0)), b.icmp_signed("<", r, g["H"]))
    x0 = b.sub(b.mul(tx, U.i64(m)), g["pw"])
    out = []
    for group in range(-(-tile.n // m)):
        start = b.add(x0, U.i64(group * m))
        mask = b.and_(range_mask(b, start, g["W"], width), U.splat(b, row_ok, width))
        # not 'inbounds': the address may lie before the plane (masked lanes)
        address = b.gep(xplane, [b.add(b.mul(r, g["W"]), start)], source_etype=U.F32)
        loaded = masked_vload(b, address, mask)
        out += [_every(b, loaded, k, m) for k in range(min(m, tile.n - group * m))]
    return out


def lincombs(b: ir.IRBuilder, matrix: np.ndarray, values: list[ir.Value]) -> list[ir.Value]:
    """matrix @ values, one vector per row: a +-1 coefficient is an add or a
    subtract, another an FMA, a 0 nothing."""
    out = []
    for row in matrix:
        acc = None
        for coef, v in zip(row, values, strict=True):
            if coef == 0:
                continue
            if acc is None:
                acc = v if coef == 1 else b.fneg(v) if coef == -1 else \
                    U.fmul(b, v, _const_like(v, coef))
            elif coef in (1, -1):
                acc = U.fadd(b, acc, v) if coef == 1 else U.fsub(b, acc, v)
            else:
                acc = U.fma(b, v, _const_like(v, coef), acc)
        out.append(acc)
    return out


def _const_like(v: ir.Value, value: float) -> ir.Constant:
    return ir.Constant(v.type, [float(value)] * v.type.count)


def range_mask(b: ir.IRBuilder, start: ir.Value, end: ir.Value, width: int) -> ir.Value:
    """<width x i1>: lane j is true when 0 <= start + j < end."""
    iota = ir.Constant(U.vec(U.I64, width), list(range(width)))
    pos = b.add(U.splat(b, start, width), iota)
    return b.and_(b.icmp_signed(">=", pos, ir.Constant(U.vec(U.I64, width), [0] * width)),
                  b.icmp_signed("<", pos, U.splat(b, end, width)))


def _every(b: ir.IRBuilder, v: ir.Value, first: int, step: int) -> ir.Value:
    """Lanes first, first + step, ... of v: the patch column `first` of each tile."""
    lanes = v.type.count // step
    return b.shuffle_vector(v, ir.Constant(v.type, None), ir.Constant(
        U.vec(U.I32, lanes), list(range(first, lanes * step, step))))


def _interleave(b: ir.IRBuilder, vs: list[ir.Value]) -> ir.Value:
    """One vector of len(vs) * lanes: tile t's values vs[0][t], vs[1][t], ..."""
    lanes, parts = vs[0].type.count, list(vs)
    while len(parts) > 1:  # concatenate pairwise (len(vs) is 2 or 4)
        w = parts[0].type.count
        parts = [b.shuffle_vector(parts[k], parts[k + 1], ir.Constant(
            U.vec(U.I32, 2 * w), list(range(2 * w)))) for k in range(0, len(parts), 2)]
    whole, k = parts[0], len(vs)
    order = [j * lanes + t for t in range(lanes) for j in range(k)]
    return b.shuffle_vector(whole, ir.Constant(whole.type, None),
                            ir.Constant(U.vec(U.I32, k * lanes), order))


def output_transform_kernel(tile: WinogradTile, bias: bool, residual: bool,
                            clip: bool) -> Kernel:
    """(m, y, [bias], [res], *OUTPUT_GEOMETRY, [lo, hi]): planes = N * Co."""
    name = (f"winograd_f{tile.m}x3_output{'_bias' if bias else ''}"
            f"{'_res' if residual else ''}{'_clip' if clip else ''}")
    ptrs = ["m", "y"] + (["bias"] if bias else []) + (["res"] if residual else [])
    return _plane_kernel(name, tile, ptrs, OUTPUT_GEOMETRY, ["lo", "hi"] if clip else [],
                         lambda b, args, p, lanes: _OutputPlane(tile, ptrs, args, lanes).emit(b, p))


class _OutputPlane:
    def __init__(self, tile: WinogradTile, ptrs: list[str], args: list[ir.Value], lanes: int):
        self.tile = tile
        self.p = dict(zip(ptrs, args, strict=False))
        self.g = dict(zip(OUTPUT_GEOMETRY, args[len(ptrs):], strict=False))
        self.bounds = args[len(ptrs) + len(OUTPUT_GEOMETRY):]
        self.lanes = lanes

    def emit(self, b: ir.IRBuilder, p: ir.Value) -> None:
        g, t = self.g, self.tile
        n, co = b.sdiv(p, g["Co"]), b.srem(p, g["Co"])
        out_plane = b.mul(p, b.mul(g["Ho"], g["Wo"]))
        bias = U.splat(b, U.load(b, self.p["bias"], co), self.lanes) \
            if "bias" in self.p else None
        col0 = b.mul(n, b.mul(g["th"], g["tw"]))
        with U.for_range(b, 0, g["th"], name="ty") as ty:
            def body(b: ir.IRBuilder, tx: ir.Value, count: ir.Value | None) -> None:
                col = b.add(col0, b.add(b.mul(ty, g["tw"]), tx))
                rows = [lincombs(b, t.at, [self.point(b, i * t.n + j, co, col, count)
                                           for j in range(t.n)]) for i in range(t.n)]
                # A^T down each output column x: out[x][a] is output row a, column x
                out = [lincombs(b, t.at, [r[x] for r in rows]) for x in range(t.m)]
                for a in range(t.m):
                    oy = b.add(b.mul(ty, U.i64(t.m)), U.i64(a))
                    self.store_row(b, out_plane, oy, tx, [o[a] for o in out], bias)

            vector_loop(b, g["tw"], self.lanes, body, name="tx")

    def point(self, b: ir.IRBuilder, xi: int, co: ir.Value, col: ir.Value,
              count: ir.Value | None) -> ir.Value:
        g = self.g
        row = b.add(b.mul(U.i64(xi), g["Co"]), co)
        return vload(b, self.p["m"], b.add(b.mul(row, g["cols"]), col), self.lanes, count)

    def store_row(self, b: ir.IRBuilder, out_plane: ir.Value, oy: ir.Value, tx: ir.Value,
                  ys: list[ir.Value], bias: ir.Value | None) -> None:
        """Output row oy (if inside the image): the tiles' columns interleaved."""
        g, width = self.g, self.tile.m * self.lanes
        with b.if_then(b.icmp_signed("<", oy, g["Ho"])):
            value = _interleave(b, [U.fadd(b, y, bias) if bias is not None else y for y in ys])
            x0 = b.mul(tx, U.i64(self.tile.m))
            mask = range_mask(b, x0, g["Wo"], width)
            index = b.add(out_plane, b.add(b.mul(oy, g["Wo"]), x0))
            if "res" in self.p:
                value = U.fadd(b, value, masked_vload(b, U.gep(b, self.p["res"], index), mask))
            if self.bounds:
                lo, hi = (U.splat(b, v, width) for v in self.bounds)
                value = min_nnan(b, max_nnan(b, value, lo), hi)
            masked_vstore(b, value, U.gep(b, self.p["y"], index), mask)
