"""3x3 stride-1 convs as Winograd F(m x m, 3x3), m = 2 or 4: input transform,
(m + 2)^2 GEMMs, output transform (the kernels and the algebra:
codegen/kernels/ops/winograd.py).

An m x m output tile costs (m + 2)^2 multiplies per (input, output) channel
pair instead of 9 m^2: the GEMMs do 2.25x (m = 2) or 4x (m = 4) less work
than im2col's. The transforms pass over the input and the output once each.
Which m (or im2col) a layer gets is a tunable choice; untuned, default_tile
picks from the measurements it cites.

Rounding, max error against float64 over the output's range: im2col 2.0e-7,
F(2x2) 3.1e-7 (its transforms only add), F(4x4) 2-4e-6 on one layer (its
transforms scale by up to 8 and its weights by 1/24).

Not used where the summation order must be onnxruntime's (a QDQ unit run in
float, ir/sum_order.py), for a run-time W (U is computed at compile time),
for groups, for images of fewer than MIN_TILES 2x2 tiles, on targets without
float vectors (the transforms are vectorized across tiles), or on
microcontrollers (winograd_applies).
"""

from __future__ import annotations

import numpy as np

from ..codegen.kernels.gemm.gemm import GemmSpec, scratch_bytes
from ..codegen.kernels.gemm.gemm_epilogue import Epilogue
from ..codegen.kernels.gemm.pack import pack_a_const
from ..codegen.kernels.ops import winograd as K
from ..ir import Node
from ..ir.sum_order import SUM_ORDER
from ..ir.symbolic import hint_of
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from ..schedule import Knob, KnobSpace
from ..tensorize.fp32 import plan_fp32_gemm
from .gemm_schedule import schedule_gemm, tuned_text
from .tunable import decide, node_workload

STATEMENT = "Y[m, n] += A[m, k] * B[k, n]"
F32_ROLES = {"A": "float32", "B": "float32", "Y": "float32"}
MIN_TILES = 9  # per image: 7x7 (16 tiles) measured 0.57 of im2col; smaller images unmeasured
MIN_CHANNELS = 16  # fewer: the GEMMs' K or M is too small to gain over the transforms
F32_BYTES = 4
ALGORITHM_KERNEL = "conv3x3_f32_algorithm"
ALGORITHMS = ("im2col", "winograd2", "winograd4")  # winograd<m>: F(m x m, 3 x 3)
BIG_TILE_COLUMNS = 36  # F(4x4) tiles (over the batch) that make it the default
# V and M hold (m + 2)^2 / m^2 values per pixel and channel (4 for F(2x2), 2.25
# for F(4x4)), for the whole batch: a large batch of large images would need
# gigabytes where im2col packs L2-sized panels. Past this, F(4x4) or im2col.
SCRATCH_LIMIT = 256 << 20


def choose_winograd(node: Node, ctx: LowerContext, s) -> K.WinogradTile | None:
    """The Winograd tile to lower conv `s` (a conv.ConvShape) with, None for
    im2col. Where Winograd applies, a tunable choice ("algorithm": im2col,
    winograd2 or winograd4; untuned default_tile), so a tuning log can keep
    another for a layer it measured faster."""
    if not winograd_applies(node, ctx, s):
        return None
    dims = (("n", s.n), ("c", s.c), ("co", s.co), ("ho", s.ho), ("wo", s.wo))
    workload = node_workload(node, ctx, ALGORITHM_KERNEL, dims)
    default = f"winograd{default_tile(s)}"
    choice = default if workload is None else decide(
        ctx, node, workload, KnobSpace((Knob("algorithm", ALGORITHMS, default),))
    ).config["algorithm"]
    return None if choice == "im2col" else K.WinogradTile(int(choice[len("winograd"):]))


def default_tile(s) -> int:
    """F(4x4) where its GEMMs still get enough tile columns; else F(2x2). Measured,
    1 thread, c -> c channels, time against im2col's (F(2x2) / F(4x4)): 64 at 56x56
    0.61 / 0.36; 128 at 28x28 0.53 / 0.38; 256 at 14x14 0.57 / 0.47; 32 at 112x112
    0.75 / 0.50; but 512 at 7x7 0.55 / 1.17 (4 tile columns) and 64 at 14x14
    0.67 / 0.91 (16 columns, too little work per GEMM)."""
    if transform_bytes(s, 2) > SCRATCH_LIMIT:
        return 4
    cols = tile_columns(s, 4)
    return 4 if cols >= BIG_TILE_COLUMNS or (cols >= 16 and min(s.c, s.co) >= 128) else 2


def tile_columns(s, m: int) -> int:
    """The GEMMs' columns: m x m tiles over the batch (a symbolic size by its hint,
    no guard: both algorithms are right at every size, only their speed differs)."""
    n, ho, wo = (hint_of(v) for v in (s.n, s.ho, s.wo))
    return n * -(-ho // m) * -(-wo // m)


def transform_bytes(s, m: int) -> int:
    """Bytes of the transformed input V and the products M for F(m x m)."""
    return F32_BYTES * (m + 2) ** 2 * (s.c + s.co) * tile_columns(s, m)


def winograd_applies(node: Node, ctx: LowerContext, s) -> bool:
    """s: conv.ConvShape."""
    if (s.kh, s.kw, s.sh, s.sw, s.dh, s.dw, s.group) != (3, 3, 1, 1, 1, 1, 1):
        return False
    if not (isinstance(s.c, int) and isinstance(s.co, int)) or node.attr(SUM_ORDER) is not None:
        return False
    tiles = -(-hint_of(s.ho) // 2) * -(-hint_of(s.wo) // 2)  # per image
    # Microcontrollers (thumb) keep im2col: the scratch V and M take 2-4x the
    # conv's input and output, and RAM is what limits them, not time
    return (ctx.graph.is_const(node.inputs[1]) and ctx.target.f32_lanes >= 4
            and not ctx.target.triple.startswith(("thumb", "arm"))
            and tiles >= MIN_TILES and min(s.c, s.co) >= MIN_CHANNELS
            and transform_bytes(s, 4) <= SCRATCH_LIMIT)


def transformed_weights(w: np.ndarray, tile: K.WinogradTile) -> np.ndarray:
    """U[xi][co][c] = (G g G^T)[i][j] of each 3x3 filter g = w[co, c], xi = n i + j;
    computed in float64, rounded once."""
    u = np.einsum("ij,ocjk,lk->iloc", tile.g, w.astype(np.float64), tile.g)
    return u.reshape(tile.n * tile.n, w.shape[0], w.shape[1]).astype(np.float32)


def lower_winograd(node: Node, ctx: LowerContext, s, tail,
                   tile: K.WinogradTile) -> LoweredNode:
    """s: conv.ConvShape; tail: conv.FusedTail (bias, residual, clip)."""
    x, y = node.inputs[0], node.outputs[0]
    tag, points = node.name or y, tile.n * tile.n
    th, tw = -(-s.ho // tile.m), -(-s.wo // tile.m)
    cols = s.n * th * tw
    v = Scratch(f"{tag}.winograd_v", F32_BYTES * points * s.c * cols)
    m = Scratch(f"{tag}.winograd_m", F32_BYTES * points * s.co * cols)
    gemm, note, sched = _gemm(node, ctx, s, tile, cols, (v, m))
    inp = Call(K.input_transform_kernel(tile),
               (Buf(x), v, s.n * s.c, s.c, s.h, s.w, s.ph, s.pw, th, tw, cols))
    out_kernel = K.output_transform_kernel(tile, bool(tail.bias), bool(tail.residual),
                                           tail.clip)
    ptrs = [m, Buf(y)] + ([Buf(tail.bias)] if tail.bias else []) \
        + ([Buf(tail.residual)] if tail.residual else [])
    bounds = (tail.lo, tail.hi) if tail.clip else ()
    out = Call(out_kernel, (*ptrs, s.n * s.co, s.co, s.ho, s.wo, th, tw, cols, *bounds))
    plan = sched.plan
    fused = [name for name, on in (("bias", tail.bias), ("residual", tail.residual),
                                   ("clip", tail.clip)) if on]
    note += f" + {', '.join(fused)}" if fused else ""
    return LoweredNode(node.name, node.qualified_op, node.outputs, [inp, gemm, out],
                       semantics=_semantics(node, s, tail, tile), note=note,
                       intrinsic=plan.choice.match.name if plan.step and plan.choice else "",
                       rejected=plan.rejected, schedule=sched.decision)


def _gemm(node: Node, ctx: LowerContext, s, tile: K.WinogradTile, cols: int,
          scratch: tuple[Scratch, Scratch]):
    """M[xi] = U[xi] @ V[xi], the n^2 points as the GEMM's batch."""
    v, m = scratch
    tag, points = node.name or node.outputs[0], tile.n * tile.n
    plan = plan_fp32_gemm(STATEMENT, F32_ROLES, "A", (s.co, cols, s.c), ctx.target,
                          ctx.intrinsics)
    sched = schedule_gemm(ctx, node, plan, (s.co, cols, s.c))
    plan = sched.plan
    spec = GemmSpec(plan.mr, plan.nv, plan.lanes, a_src="packed", b_src="strided",
                    epi=Epilogue(), step=plan.step, threads=ctx.target.threads, kblocked=True,
                    split=sched.split, prefetch=sched.prefetch)
    blk = sched.blocking()
    u = transformed_weights(ctx.graph.const(node.inputs[1]).reshape(s.co, s.c, 3, 3), tile)
    panels = [pack_a_const(u[xi], spec.mr, blk.kc) for xi in range(points)]
    values: dict[str, object] = dict(
        a=Const(f"{tag}.winograd_u", np.concatenate(panels)), b=v, c=m,
        scratch=Scratch(f"{tag}.pack", scratch_bytes(spec, blk)), M=s.co, N=cols, K=s.c,
        ldc=cols, kc=blk.kc, mc=blk.mc, nc=blk.nc, batch=points, a_bstride=panels[0].size,
        b_bstride=s.c * cols, c_bstride=s.co * cols, sbk=cols, sbn=1)
    note = (f"Winograd F({tile.m}x{tile.m},3x3): input transform, {points} GEMMs "
            f"{s.co}x{cols}x{s.c} ({plan.summary}; U = G W G^T packed at compile time, "
            f"KC={blk.kc} NC={blk.nc}{tuned_text(sched.decision)}), output transform")
    return Call(spec.kernel(), spec.args(values)), note, sched


def _semantics(node: Node, s, tail, tile: K.WinogradTile) -> str:
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    text = (f"{y}[n,co,y,x] += {x}[n,ci,y+ky-{s.ph},x+kx-{s.pw}] * {w}[co,ci,ky,kx] "
            f"(Winograd F({tile.m}x{tile.m},3x3))")
    return text + tail.text()
