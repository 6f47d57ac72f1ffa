"""im2col straight into packed B panels, one (K block x N block) at a time.

For a conv, B[k, n] with k = (ci, ky, kx) and n = (y, x) is
    X[ci, y*sh + ky*dh - ph, x*sw + kx*dw - pw]   (0 outside the image).
A panel column vector covers `lanes` consecutive output pixels. It spans a
few output rows (two when Wo >= lanes, three when 2*Wo >= lanes: 14x14 images
on 16 lanes, ...), each a run of one input row: with W-stride 1 a contiguous
run (one masked vector load per row; the masks do the padding), with W-stride 2
every other element of a run twice as long (two masked loads and an even-lane
shuffle per row). Narrower images (more rows per vector) use one masked gather
per vector, which costs several times more. The per-pixel (y, x) decomposition
is done once per panel and the masks once per tap (ky, kx), so the inner loop,
over channels, has no divisions and no mask arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import llvmlite.ir as ir

from ...llvm_util import I32, I64, PTR, define, for_range, gep, i64, splat, store_vec, vec
from .gemm_simd import (
    gather,
    in_range,
    lane_ids,
    masked_load,
    raw_gep,
    splat_i32,
)

IM2COL_GEOMETRY = ["H", "W", "kh", "kw", "sh", "sw", "dh", "dw", "ph", "pw", "Wo"]
_PARAMS = ["dst", "x", "kcur", "ncur", "k0", "n0"] + IM2COL_GEOMETRY


def get_pack_im2col(module: ir.Module, nv: int, lanes: int) -> ir.Function:
    """pack(dst, x, kcur, ncur, k0, n0, H, W, kh, kw, sh, sw, dh, dw, ph, pw, Wo).

    x points at channel 0 of one image (of one group); the block is rows
    [k0, k0+kcur) and columns [n0, n0+ncur) of the virtual im2col matrix."""
    name = f"pack_im2col_f32_{nv}v{lanes}"
    if name in module.globals:
        return module.globals[name]
    fn, b = define(module, name, [PTR, PTR] + [I64] * (len(_PARAMS) - 2), _PARAMS, noalias=True)
    fn.linkage = "internal"
    g = dict(zip(_PARAMS, fn.args, strict=True))
    # (rows, W-stride, joined): joined when the runs of a vector are one run of
    # the input (W-stride 1 and H-stride * W == Wo: a same-padded stride-1 conv),
    # so one masked load serves all of them
    variants = [(rows, stride, False) for rows in range(2, MAX_ROW_RUNS + 1) for stride in (1, 2)]
    _variant_chain(b, g, nv, lanes, [(MAX_ROW_RUNS, 1, True)] + variants)
    b.ret_void()
    return fn


MAX_ROW_RUNS = 4  # output rows a vector may span and still be packed with row runs


def _variant_chain(b: ir.IRBuilder, g: dict[str, ir.Value], nv: int, lanes: int,
                   variants: list[tuple[int, int]]) -> None:
    """The first (row runs, W-stride, joined) variant that fits the geometry, else
    gathers. A vector of `lanes` pixels spans at most `rows` output rows when
    (rows - 1) * Wo >= lanes - 1."""
    if not variants:
        _panels(b, g, nv, lanes, stride=0, rows=0)
        return
    rows, stride, joined = variants[0]
    fits = b.and_(b.icmp_signed(">=", b.mul(g["Wo"], i64(rows - 1)), i64(lanes - 1)),
                  b.icmp_signed("==", g["sw"], i64(stride)))
    if joined:
        fits = b.and_(fits, b.icmp_signed("==", b.mul(g["sh"], g["W"]), g["Wo"]))
    with b.if_else(fits) as (this, other):
        with this:
            _panels(b, g, nv, lanes, stride=stride, rows=rows, joined=joined)
        with other:
            _variant_chain(b, g, nv, lanes, variants[1:])


@dataclass
class _Pixels:
    """Per-panel facts about one vector of output pixels."""

    valid: ir.Value  # lanes inside the block
    iy: ir.Value | None  # input row of each lane for ky = 0 (<lanes x i32>; gathers only)
    ix: ir.Value | None  # input column of each lane for kx = 0
    runs: list[ir.Value]  # row-run modes: lanes on the vector's first output row, next...
    iy0: ir.Value  # scalar input row of the first run (i64)
    ix0: ir.Value  # scalar input column of lane 0 (i64)


def _pixels(b: ir.IRBuilder, g: dict[str, ir.Value], n_first: ir.Value, lanes: int,
            rows: int) -> _Pixels:
    """rows > 0: the vector spans that many output rows at most, told apart by
    comparing columns; no per-lane division (x86 has no vector integer
    division: LLVM would emit one idiv per lane, which costs more than packing
    the panel when K is small, e.g. a network's first conv)."""
    n = b.add(lane_ids(lanes), splat_i32(b, n_first, lanes))
    valid = b.icmp_signed("<", n, splat_i32(b, b.add(g["n0"], g["ncur"]), lanes))
    y0 = b.sdiv(n_first, g["Wo"])
    x0 = b.sub(n_first, b.mul(y0, g["Wo"]))
    iy0 = b.sub(b.mul(y0, g["sh"]), g["ph"])
    ix0 = b.sub(b.mul(x0, g["sw"]), g["pw"])
    if rows:
        columns = b.add(lane_ids(lanes), splat_i32(b, x0, lanes))
        runs, before = [], None  # `before`: lanes on an earlier run
        for r in range(rows):
            if r == rows - 1:
                on = valid if before is None else b.and_(valid, b.not_(before))
            else:
                end = splat_i32(b, b.mul(g["Wo"], i64(r + 1)), lanes)
                upto = b.icmp_signed("<", columns, end)
                on = b.and_(valid, upto if before is None else b.and_(upto, b.not_(before)))
                before = upto
            runs.append(on)
        return _Pixels(valid, None, None, runs, iy0, ix0)
    wo = splat_i32(b, g["Wo"], lanes)
    y = b.sdiv(n, wo)
    x = b.sub(n, b.mul(y, wo))
    iy = b.sub(b.mul(y, splat_i32(b, g["sh"], lanes)), splat_i32(b, g["ph"], lanes))
    ix = b.sub(b.mul(x, splat_i32(b, g["sw"], lanes)), splat_i32(b, g["pw"], lanes))
    return _Pixels(valid, iy, ix, [], iy0, ix0)


def _panels(b: ir.IRBuilder, g: dict[str, ir.Value], nv: int, lanes: int,
            stride: int, rows: int, joined: bool = False) -> None:
    """All panels of the block; `stride` is the W-stride the row-run loads are
    built for (1 or 2) and `rows` the runs per vector, or 0 for gathers.

    Rows k = (ci, ky, kx) are visited tap by tap (ky, kx), then channel by
    channel: the masks and offsets of a tap's loads are the same for every
    channel, so they are built once per tap and the channel loop only loads,
    blends and stores (a 3x3 conv: 9 setups instead of one per k)."""
    nr = nv * lanes
    taps = b.mul(g["kh"], g["kw"])
    plane = b.mul(g["H"], g["W"])
    panels = b.sdiv(b.add(g["ncur"], i64(nr - 1)), i64(nr))
    with for_range(b, 0, panels, name="p") as p:
        n_panel = b.add(g["n0"], b.mul(p, i64(nr)))
        pixels = [_pixels(b, g, b.add(n_panel, i64(v * lanes)), lanes, rows)
                  for v in range(nv)]
        panel_dst = gep(b, g["dst"], b.mul(b.mul(p, i64(nr)), g["kcur"]))
        with for_range(b, 0, taps, name="tap") as tap:
            ky = b.sdiv(tap, g["kw"])
            oy, ox = b.mul(ky, g["dh"]), b.mul(b.sub(tap, b.mul(ky, g["kw"])), g["dw"])
            loads = [_tap_loads(b, g, px, oy, ox, lanes, stride, joined) for px in pixels]
            # the channels whose row ci * taps + tap lies in [k0, k0 + kcur)
            first = _ceil_div_nonneg(b, b.sub(g["k0"], tap), taps)
            stop = _ceil_div_nonneg(b, b.sub(b.add(g["k0"], g["kcur"]), tap), taps)
            with for_range(b, first, stop, name="ci") as ci:
                chan = raw_gep(b, g["x"], b.mul(ci, plane))
                k = b.sub(b.add(b.mul(ci, taps), tap), g["k0"])
                for v, load in enumerate(loads):
                    store_vec(b, load(chan), panel_dst, b.add(b.mul(k, i64(nr)), i64(v * lanes)))


def _ceil_div_nonneg(b: ir.IRBuilder, x: ir.Value, d: ir.Value) -> ir.Value:
    """ceil(max(x, 0) / d) for d > 0."""
    x = b.select(b.icmp_signed("<", x, i64(0)), i64(0), x)
    return b.sdiv(b.add(x, b.sub(d, i64(1))), d)


Load = Callable[[ir.Value], ir.Value]  # channel base pointer -> the vector of this tap


def _tap_loads(b: ir.IRBuilder, g: dict[str, ir.Value], px: _Pixels, oy: ir.Value,
               ox: ir.Value, lanes: int, stride: int, joined: bool) -> Load:
    """How to load one vector of the tap (oy, ox) from any channel: masks and
    offsets built here, once per tap. `joined`: the runs' loads share one address."""
    if not stride:
        return _gather_load(b, g, px, oy, ox, lanes)
    col = b.add(px.ix0, ox)
    runs = []  # per output row the vector spans: ([(mask, offset)] loads, its lanes)
    for r, lanes_on in enumerate(px.runs):
        in_row = b.add(b.add(px.iy0, oy), b.mul(g["sh"], i64(r)))
        on = b.and_(lanes_on, splat(b, b.icmp_unsigned("<", in_row, g["H"]), lanes))
        # Lanes on output row r continue at input column col - r*stride*Wo of its row.
        start = b.sub(col, b.mul(g["Wo"], i64(r * stride)))
        runs.append((_row_run(b, g, b.mul(in_row, g["W"]), start, on, lanes, stride), lanes_on))

    if joined:  # every lane is in exactly one run: its mask bit is that run's
        mask = runs[0][0][0][0]
        for (((run_mask, _),), _) in runs[1:]:
            mask = b.or_(mask, run_mask)
        offset = runs[0][0][0][1]
        return lambda chan: masked_load(b, raw_gep(b, chan, offset), mask, lanes)
    even = ir.Constant(vec(I32, lanes), [2 * e for e in range(lanes)])

    def load(chan: ir.Value) -> ir.Value:
        value = None
        for parts, lanes_on in runs:
            halves = [masked_load(b, raw_gep(b, chan, offset), mask, lanes)
                      for mask, offset in parts]
            run = halves[0] if stride == 1 else b.shuffle_vector(halves[0], halves[1], even)
            value = run if value is None else b.select(lanes_on, run, value)
        return value

    return load


def _row_run(b: ir.IRBuilder, g: dict[str, ir.Value], row: ir.Value, col: ir.Value,
             lanes_on: ir.Value, lanes: int, stride: int) -> list[tuple[ir.Value, ir.Value]]:
    """(mask, element offset from the channel) of the loads giving lane l (where
    lanes_on) = row[col + stride*l], 0 outside the row: one load for stride 1;
    for stride 2 two, the 2*lanes elements under the vector, every other one kept."""
    width = splat_i32(b, g["W"], lanes)
    if stride == 1:
        inside = in_range(b, b.add(lane_ids(lanes), splat_i32(b, col, lanes)), width)
        return [(b.and_(lanes_on, inside), b.add(row, col))]
    parts = []
    for h in range(2):
        start = b.add(col, i64(h * lanes))
        inside = in_range(b, b.add(lane_ids(lanes), splat_i32(b, start, lanes)), width)
        owner = ir.Constant(vec(I32, lanes), [(h * lanes + e) // 2 for e in range(lanes)])
        wanted = b.shuffle_vector(lanes_on, ir.Constant(lanes_on.type, None), owner)
        parts.append((b.and_(wanted, inside), b.add(row, start)))
    return parts


def _gather_load(b: ir.IRBuilder, g: dict[str, ir.Value], px: _Pixels, oy: ir.Value,
                 ox: ir.Value, lanes: int) -> Load:
    iy = b.add(px.iy, splat_i32(b, oy, lanes))
    ix = b.add(px.ix, splat_i32(b, ox, lanes))
    ok = b.and_(px.valid, b.and_(in_range(b, iy, splat_i32(b, g["H"], lanes)),
                                 in_range(b, ix, splat_i32(b, g["W"], lanes))))
    index = b.add(b.mul(iy, splat_i32(b, g["W"], lanes)), ix)
    return lambda chan: gather(b, chan, index, ok)
