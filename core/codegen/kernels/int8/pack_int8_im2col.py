"""im2col of an NCHW int8 image straight into the int8 micro-kernel's B panels.

B[k, p] = X[ci, y*sh + ky*dh - ph, x*sw + kx*dw - pw] with k = (ci, ky, kx),
p = (y, x); outside the image the image's zero point `pad`. A panel's row of
NR pixels is loaded at once, then cut into the step's vectors. A vector of `lanes`
consecutive pixels covers up to RUNS output rows; on each, the lanes read one
run of an input row: with W-stride 1 one masked byte load, with W-stride 2 two
and an even-lane shuffle (masks do the padding). Images too narrow for RUNS
rows, and other strides, load lane by lane. The per-pixel decomposition is
done once per panel and (ci, ky, kx) is carried along k: no divisions inside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import llvmlite.ir as ir

from ...llvm_util import I8, I32, I64, for_range, gep, i64, splat, vec
from ..gemm.gemm_simd import in_range, lane_ids, splat_i32
from ..gemm.micro_step import MicroStep
from .pack_int8_tile import ByteFeed, masked_load_i8, store_tile


@dataclass
class _Pixels:
    valid: ir.Value  # lanes inside the block (<lanes x i1>)
    dy: ir.Value  # output row of each lane minus the first lane's (<lanes x i32>)
    iy: ir.Value  # input row of each lane for ky = 0 (<lanes x i32>)
    ix: ir.Value  # input column of each lane for kx = 0
    iy0: ir.Value  # input row of the first lane's output row (i64)
    ix0: ir.Value  # input column of the first lane (i64)


def im2col_panels(b: ir.IRBuilder, g: dict[str, ir.Value], step: MicroStep, nv: int,
                  feed: ByteFeed, totals_for: Callable, finish: Callable) -> None:
    """All panels; the load mode is chosen once per call from stride and width.
    totals_for(b) gives a panel's column-sum slots (or Nones), finish(b, totals,
    col0) stores them; `feed` says how bytes are loaded and turned into B's elements."""
    lanes = load_lanes(step.n, nv)
    wide = b.icmp_signed(">=", g["Wo"], i64(lanes - 1))
    narrow = b.icmp_signed(">=", b.mul(g["Wo"], i64(3)), i64(lanes - 1))
    modes = [(1, 2, wide), (2, 2, wide), (1, 4, narrow), (2, 4, narrow)]
    done = b.append_basic_block("im2col.done")
    for stride, runs, fits in modes:
        here = b.and_(fits, b.icmp_signed("==", g["sw"], i64(stride)))
        then = b.append_basic_block(f"im2col.s{stride}r{runs}")
        other = b.append_basic_block(f"im2col.not_s{stride}r{runs}")
        b.cbranch(here, then, other)
        b.position_at_end(then)
        _panels(b, g, step, nv, feed, totals_for, finish, (stride, runs))
        b.branch(done)
        b.position_at_end(other)
    _panels(b, g, step, nv, feed, totals_for, finish, None)
    b.branch(done)
    b.position_at_end(done)


def _panels(b: ir.IRBuilder, g: dict[str, ir.Value], step: MicroStep, nv: int,
            feed: ByteFeed, totals_for: Callable, finish: Callable,
            mode: tuple[int, int] | None) -> None:
    lanes, kk, size = step.n, step.k, step.b_bits // 8
    nr = nv * lanes
    ksteps = b.sdiv(b.add(g["kcur"], i64(kk - 1)), i64(kk))
    panels = b.sdiv(b.add(g["ncur"], i64(nr - 1)), i64(nr))
    with for_range(b, 0, panels, name="p") as p:
        col0 = b.mul(p, i64(nr))
        panel = gep(b, g["dst"], b.mul(col0, b.mul(ksteps, i64(kk * size))), I8)
        width = load_lanes(step.n, nv)
        groups = [(v0, min(nv, v0 + width // lanes)) for v0 in range(0, nv, width // lanes)]
        pixels = [_pixels(b, g, b.add(col0, i64(v0 * lanes)), width) for v0, _ in groups]
        totals = totals_for(b)
        with _k_walk(b, g, ksteps, kk) as walk:
            rows: list[list[ir.Value]] = [[] for _ in range(nv)]
            k_ok = []
            for r in range(kk):
                k, chan, oy, ox = walk.row(r)
                live = b.icmp_signed("<", k, g["kcur"])
                k_ok.append(live)
                for (v0, v1), px in zip(groups, pixels, strict=True):
                    row = _load(b, g, chan, px, oy, ox, live, width, mode, feed.split_masks)
                    for v in range(v0, v1):
                        rows[v].append(_lanes_of(b, row, (v - v0) * lanes, lanes))
            for v in range(nv):
                at = b.add(b.mul(walk.ks, i64(nr * kk * size)), i64(v * lanes * kk * size))
                store_tile(b, step, rows[v], k_ok, feed, gep(b, panel, at, I8), totals[v])
        finish(b, totals, col0)


def load_lanes(n: int, nv: int) -> int:
    """Pixels per load: the step's n lanes, or for steps narrower than 8 (sdot's
    4, smmla's 2, a one-lane reduction) the panel's NR rounded up to a power of
    two, at most 8: a few wider loads cost less than many narrow ones (lanes
    past the panel are read and dropped). Measured on aarch64 under qemu, 16
    lanes for sdot's 12-pixel panel cost more than 8."""
    if n >= 8:
        return n
    width = n
    while width < min(8, n * nv):
        width *= 2
    return width


def _lanes_of(b: ir.IRBuilder, row: ir.Value, first: int, lanes: int) -> ir.Value:
    """lanes consecutive lanes of a panel row: one vector of the step's B tile."""
    if row.type.count == lanes:
        return row
    return b.shuffle_vector(row, ir.Constant(row.type, None),
                            ir.Constant(vec(I32, lanes), list(range(first, first + lanes))))


def _pixels(b: ir.IRBuilder, g: dict[str, ir.Value], first: ir.Value, lanes: int) -> _Pixels:
    n_first = b.add(g["n0"], first)
    n = b.add(lane_ids(lanes), splat_i32(b, n_first, lanes))
    valid = b.icmp_signed("<", n, splat_i32(b, b.add(g["n0"], g["ncur"]), lanes))
    wo = splat_i32(b, g["Wo"], lanes)
    y = b.sdiv(n, wo)
    x = b.sub(n, b.mul(y, wo))
    y0 = b.sdiv(n_first, g["Wo"])
    x0 = b.sub(n_first, b.mul(y0, g["Wo"]))
    iy = b.sub(b.mul(y, splat_i32(b, g["sh"], lanes)), splat_i32(b, g["ph"], lanes))
    ix = b.sub(b.mul(x, splat_i32(b, g["sw"], lanes)), splat_i32(b, g["pw"], lanes))
    return _Pixels(valid, b.sub(y, splat_i32(b, y0, lanes)), iy, ix,
                   b.sub(b.mul(y0, g["sh"]), g["ph"]), b.sub(b.mul(x0, g["sw"]), g["pw"]))


def _load(b: ir.IRBuilder, g: dict[str, ir.Value], chan: ir.Value, px: _Pixels, oy: ir.Value,
          ox: ir.Value, live: ir.Value, lanes: int, mode: tuple[int, int] | None,
          split: bool) -> ir.Value:
    pad = splat(b, b.trunc(g["pad"], I8), lanes)
    if mode is None:
        return _lane_by_lane(b, g, chan, px, oy, ox, live, lanes, pad)
    stride, runs = mode
    out = pad
    for r in range(runs):
        on = b.and_(px.valid, b.icmp_signed("==", px.dy, ir.Constant(vec(I32, lanes),
                                                                     [r] * lanes)))
        row = b.add(b.add(px.iy0, b.mul(g["sh"], i64(r))), oy)
        row_ok = b.and_(live, b.icmp_unsigned("<", row, g["H"]))
        on = b.and_(on, splat(b, row_ok, lanes))
        col = b.sub(b.add(px.ix0, ox), b.mul(g["Wo"], i64(r * stride)))
        row_ptr = b.gep(chan, [b.mul(b.select(row_ok, row, i64(0)), g["W"])], source_etype=I8)
        run = _run(b, g, row_ptr, col, on, lanes, stride, pad, split)
        out = b.select(on, run, out)
    return out


def _run(b: ir.IRBuilder, g: dict[str, ir.Value], row: ir.Value, col: ir.Value,
         on: ir.Value, lanes: int, stride: int, pad: ir.Value, split: bool) -> ir.Value:
    """Lane l (where on) = row[col + stride*l], pad outside the row."""
    width = splat_i32(b, g["W"], lanes)
    if stride == 1:
        inside = in_range(b, b.add(lane_ids(lanes), splat_i32(b, col, lanes)), width)
        return masked_load_i8(b, b.gep(row, [col], source_etype=I8), b.and_(on, inside), pad,
                              split)
    halves = []
    for h in range(2):  # the 2*lanes bytes under the vector, every other one kept
        start = b.add(col, i64(h * lanes))
        inside = in_range(b, b.add(lane_ids(lanes), splat_i32(b, start, lanes)), width)
        owner = ir.Constant(vec(I32, lanes), [(h * lanes + e) // 2 for e in range(lanes)])
        wanted = b.shuffle_vector(on, ir.Constant(on.type, None), owner)
        halves.append(masked_load_i8(b, b.gep(row, [start], source_etype=I8),
                                     b.and_(wanted, inside), pad, split))
    even = ir.Constant(vec(I32, lanes), [2 * e for e in range(lanes)])
    return b.shuffle_vector(halves[0], halves[1], even)


def _lane_by_lane(b: ir.IRBuilder, g: dict[str, ir.Value], chan: ir.Value, px: _Pixels,
                  oy: ir.Value, ox: ir.Value, live: ir.Value, lanes: int,
                  pad: ir.Value) -> ir.Value:
    iy = b.add(px.iy, splat_i32(b, oy, lanes))
    ix = b.add(px.ix, splat_i32(b, ox, lanes))
    ok = b.and_(b.and_(px.valid, splat(b, live, lanes)),
                b.and_(in_range(b, iy, splat_i32(b, g["H"], lanes)),
                       in_range(b, ix, splat_i32(b, g["W"], lanes))))
    offset = b.add(b.mul(iy, splat_i32(b, g["W"], lanes)), ix)
    out = pad
    for lane in range(lanes):
        at = ir.Constant(I32, lane)
        lane_ok = b.extract_element(ok, at)
        where = b.select(lane_ok, b.sext(b.extract_element(offset, at), I64), i64(0))
        value = b.load(b.gep(chan, [where], source_etype=I8), typ=I8)
        out = b.insert_element(out, b.select(lane_ok, value, b.extract_element(pad, at)), at)
    return out


class _k_walk:
    """`for ks in range(ksteps)` carrying (ci, ky, kx) of row ks*kk as phis;
    row(r) gives (k, channel pointer, ky*dh, kx*dw) of row ks*kk + r."""

    def __init__(self, b: ir.IRBuilder, g: dict[str, ir.Value], ksteps: ir.Value, kk: int):
        self.b, self.g, self.ksteps, self.kk = b, g, ksteps, kk

    def __enter__(self) -> _k_walk:
        b = self.b
        pre = b.block
        self.body = b.append_basic_block("ks.body")
        b.branch(self.body)
        b.position_at_end(self.body)
        self.phis = [b.phi(I64, name=n) for n in ("ks", "ci", "ky", "kx")]
        for phi in self.phis:
            phi.add_incoming(i64(0), pre)
        self.ks = self.phis[0]
        self.state = list(self.phis[1:])
        self.rows = []
        ci, ky, kx = self.state
        for _ in range(self.kk):  # the rows of this step, then the next step's start
            self.rows.append((ci, ky, kx))
            ci, ky, kx = self._advance(ci, ky, kx)
        self.next_state = (ci, ky, kx)
        return self

    def row(self, r: int) -> tuple[ir.Value, ir.Value, ir.Value, ir.Value]:
        b, g = self.b, self.g
        ci, ky, kx = self.rows[r]
        k = b.add(b.mul(self.ks, i64(self.kk)), i64(r))
        chan = b.gep(g["src"], [b.mul(ci, b.mul(g["H"], g["W"]))], source_etype=I8)
        return k, chan, b.mul(ky, g["dh"]), b.mul(kx, g["dw"])

    def _advance(self, ci: ir.Value, ky: ir.Value, kx: ir.Value) -> tuple[ir.Value, ...]:
        b, g = self.b, self.g
        kx1 = b.add(kx, i64(1))
        wrap_x = b.icmp_signed("==", kx1, g["kw"])
        ky1 = b.add(ky, b.zext(wrap_x, I64))
        wrap_y = b.icmp_signed("==", ky1, g["kh"])
        return (b.add(ci, b.zext(wrap_y, I64)), b.select(wrap_y, i64(0), ky1),
                b.select(wrap_x, i64(0), kx1))

    def __exit__(self, *exc: object) -> None:
        b = self.b
        nxt = b.add(self.ks, i64(1))
        latch = b.block
        for phi, value in zip(self.phis, (nxt, *self.next_state), strict=True):
            phi.add_incoming(value, latch)
        done = b.append_basic_block("ks.done")
        b.cbranch(b.icmp_signed("<", nxt, self.ksteps), self.body, done)
        b.position_at_end(done)
