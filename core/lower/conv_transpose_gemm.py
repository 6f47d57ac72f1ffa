"""The GEMM half of ConvTranspose: per group g, for every batch item,

    cols[(co, tap), pixel] = sum_ci W_g[ci, (co, tap)] * X_g[ci, pixel]

M = C_out/g * taps rows, N = input pixels, K = C_in/g, into `cols` (a scratch
laid out [item][row][pixel], which the col2im kernel reads). Two orientations
of the fp32 GEMM (codegen/kernels/gemm/gemm.py):
- rows of W^T: A = W_g^T (a constant W transposed and packed into A panels at
  compile time; a run-time W read by strides), B = X_g's rows;
- pixels as rows, when the input has so few pixels that vectors along them
  would be mostly padding (a generator's 1x1 or 4x4 first layer): cols^T =
  X_g^T @ W_g, W_g packed into B panels (or read by strides) and cols stored
  column-major by the transposed epilogue, so it is the same `cols`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..codegen.kernels.gemm.gemm import GemmSpec, scratch_bytes
from ..codegen.kernels.gemm.gemm_epilogue import Epilogue
from ..codegen.kernels.gemm.pack import pack_a_const, pack_b_const
from ..ir import Node
from ..program import Buf, Call, Const, LowerContext, Scratch
from ..tensorize.fp32 import Fp32Plan, plan_fp32_gemm
from .gemm_schedule import GemmSchedule, schedule_gemm, tuned_text

F32_ROLES = {"A": "float32", "B": "float32", "Y": "float32"}
STATEMENT = "Y[m, n] += A[m, k] * B[k, n]"
F32_BYTES = 4


@dataclass(frozen=True)
class GroupGemm:
    """The GEMM of one ConvTranspose node: sizes, per-group calls, and a note."""

    calls: list[Call]  # one per group, writing `cols`
    note: str
    sched: GemmSchedule


def group_gemms(node: Node, ctx: LowerContext, dims: tuple, taps: int, pixels,
                cols: Scratch) -> GroupGemm:
    """dims = (batch, C_in, C_out, group)."""
    n, c, co, group = dims
    m, k = co // group * taps, c // group
    plan = plan_fp32_gemm(STATEMENT, F32_ROLES, "A", (m, pixels, k), ctx.target,
                          ctx.intrinsics)
    rows = _pixel_rows_plan(ctx, m, pixels, k, plan)
    if rows is not None:
        return _pixels_as_rows(node, ctx, dims, taps, pixels, cols, rows)
    return _weight_rows(node, ctx, dims, taps, pixels, cols, plan)


def _padded(x: int, step: int) -> int:
    return -(-x // step) * step


def _pixel_rows_plan(ctx: LowerContext, m: int, pixels, k: int,
                     plan: Fp32Plan) -> Fp32Plan | None:
    """The plan with pixels as rows, if it wastes clearly fewer vector lanes."""
    if not isinstance(pixels, int) or pixels >= plan.lanes:
        return None
    other = plan_fp32_gemm(STATEMENT, F32_ROLES, "A", (pixels, m, k), ctx.target,
                           ctx.intrinsics)
    usual = _padded(m, plan.mr) * _padded(pixels, plan.lanes)
    return other if _padded(pixels, other.mr) * _padded(m, other.lanes) < 0.8 * usual else None


def _blocks(node: Node, ctx: LowerContext, spec: GemmSpec, sched, w_shape: tuple[int, int]):
    """(blocking, tag, packing scratch, the constant weight as [C_in, C_out/g * taps]
    or None) of one ConvTranspose GEMM."""
    blk = sched.blocking()
    tag = node.name or node.outputs[0]
    pack = Scratch(f"{tag}.pack", scratch_bytes(spec, blk))
    w = node.inputs[1]
    weights = ctx.graph.const(w).reshape(w_shape) if ctx.graph.is_const(w) else None
    return blk, tag, pack, weights


def _weight_rows(node: Node, ctx: LowerContext, dims: tuple, taps: int, pixels,
                 cols: Scratch, plan: Fp32Plan) -> GroupGemm:
    x, w = node.inputs[0], node.inputs[1]
    n, c, co, group = dims
    m, k = co // group * taps, c // group
    sched = schedule_gemm(ctx, node, plan, (m, pixels, k))
    plan, const_w = sched.plan, ctx.graph.is_const(w)
    spec = GemmSpec(plan.mr, plan.nv, plan.lanes, a_src="packed" if const_w else "strided",
                    b_src="strided", epi=Epilogue(), step=plan.step,
                    threads=ctx.target.threads, kblocked=const_w, split=sched.split,
                    prefetch=sched.prefetch)
    blk, tag, pack, weights = _blocks(node, ctx, spec, sched, (c, m))
    calls = []
    for g in range(group):
        values: dict[str, object] = dict(
            b=Buf(x, g * k * pixels * F32_BYTES), c=cols, scratch=pack, M=m, N=pixels, K=k,
            ldc=pixels, kc=blk.kc, mc=blk.mc, nc=blk.nc, batch=n, a_bstride=0,
            b_bstride=c * pixels, c_bstride=m * pixels, sbk=pixels, sbn=1)
        if weights is not None:  # A = W_g^T, [C_out/g * taps, C_in/g]
            panels = pack_a_const(np.ascontiguousarray(weights[g * k:(g + 1) * k].T),
                                  spec.mr, blk.kc)
            values["a"] = Const(f"{tag}.wt.g{g}", panels)
        else:
            values.update(a=Buf(w, g * k * m * F32_BYTES), sam=1, sak=m)
        calls.append(Call(spec.kernel(), spec.args(values)))
    wsrc = "W^T packed at compile time" if const_w else "W read by strides at run time"
    note = (f"GEMM {m}x{pixels}x{k} per group ({group}): {plan.summary}; {wsrc}, "
            f"KC={blk.kc} NC={blk.nc}{tuned_text(sched.decision)}")
    return GroupGemm(calls, note, sched)


def _pixels_as_rows(node: Node, ctx: LowerContext, dims: tuple, taps: int, pixels: int,
                    cols: Scratch, plan: Fp32Plan) -> GroupGemm:
    x, w = node.inputs[0], node.inputs[1]
    n, c, co, group = dims
    m, k = co // group * taps, c // group
    sched = schedule_gemm(ctx, node, plan, (pixels, m, k))
    plan, const_w = sched.plan, ctx.graph.is_const(w)
    spec = GemmSpec(plan.mr, plan.nv, plan.lanes, a_src="strided",
                    b_src="packed" if const_w else "strided",
                    epi=Epilogue(transposed=True), step=plan.step,
                    threads=ctx.target.threads, split=sched.split, prefetch=sched.prefetch)
    blk, tag, pack, weights = _blocks(node, ctx, spec, sched, (c, m))
    calls = []
    for g in range(group):
        values: dict[str, object] = dict(
            a=Buf(x, g * k * pixels * F32_BYTES), c=cols, scratch=pack, M=pixels, N=m, K=k,
            ldc=pixels, kc=blk.kc, mc=blk.mc, nc=blk.nc, batch=n, a_bstride=c * pixels,
            b_bstride=0, c_bstride=m * pixels, sam=1, sak=pixels)
        if weights is not None:  # B = W_g as it is, [C_in/g, C_out/g * taps]
            values["b"] = Const(f"{tag}.w.g{g}",
                                pack_b_const(np.ascontiguousarray(weights[g * k:(g + 1) * k]),
                                             spec.nr))
        else:
            values.update(b=Buf(w, g * k * m * F32_BYTES), sbk=m, sbn=1)
        calls.append(Call(spec.kernel(), spec.args(values)))
    wsrc = "W packed at compile time" if const_w else "W read by strides at run time"
    note = (f"GEMM with pixels as rows (only {pixels}), {pixels}x{m}x{k} per group "
            f"({group}): {plan.summary}; {wsrc}, cols stored transposed"
            f"{tuned_text(sched.decision)}")
    return GroupGemm(calls, note, sched)
