"""Lowering of Gemm, tinyc.Gemm (Gemm + fused residual/activation) and MatMul
onto the GEMM driver of codegen/kernels/gemm/gemm.py.

Constant operands (weights) are packed into micro-kernel panels at compile
time, with Gemm's alpha folded in; runtime operands are packed block by block
inside the kernel. Gemm's C becomes the epilogue's bias (per row, per column,
or a full matrix), pre-scaled by beta when it is constant. MatMul follows
numpy: 1-D operands, broadcast batch dimensions; a batch of A against a 2-D B
is one tall GEMM. The tensorizer picks the micro-kernel's intrinsic from the
target's YAML sets for the contraction each op states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..codegen.kernels.gemm.gemm import GemmSpec, scratch_bytes
from ..codegen.kernels.gemm.gemm_epilogue import Epilogue
from ..codegen.kernels.gemm.pack import pack_a_const, pack_b_const
from ..errors import NotLowerable
from ..ir import Node
from ..ir.sum_order import k_block
from ..ir.symbolic import same
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from ..tensorize.fp32 import Fp32Plan, plan_fp32_gemm
from .broadcast import broadcast_shapes, is_one, same_dim
from .conv import F32_BYTES, FusedTail, fused_tail
from .elementwise import require_f32, shape_of
from .gemm_schedule import GemmSchedule, schedule_gemm, tuned_text
from .registry import lowers

NO_TAIL = FusedTail("", "", -math.inf, math.inf)
F32_ROLES = {"A": "float32", "B": "float32", "Y": "float32"}


@dataclass
class Operand:
    """A GEMM operand as the driver sees it: a value (or packed constant) plus
    how to read element (row, col) of its logical matrix."""

    arg: Buf | Const
    packed: bool
    row_stride: int = 0  # for unpacked operands
    col_stride: int = 0


@lowers("Gemm", "tinyc.Gemm")
def lower_gemm(node: Node, ctx: LowerContext) -> LoweredNode:
    require_f32(node, ctx)
    a_name, b_name, y = node.inputs[0], node.inputs[1], node.outputs[0]
    trans_a, trans_b = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    a_shape, b_shape = shape_of(ctx, a_name), shape_of(ctx, b_name)
    if len(a_shape) != 2 or len(b_shape) != 2:
        raise NotLowerable(f"Gemm needs 2-D A and B, got {a_shape} and {b_shape}")
    m, k = a_shape[::-1] if trans_a else a_shape
    n = b_shape[0] if trans_b else b_shape[1]
    tail = fused_tail(node)
    if tail.residual and shape_of(ctx, tail.residual) != (m, n):
        raise NotLowerable(f"residual {tail.residual} must have shape {(m, n)}")
    tag = node.name or y
    statement = (f"Y[m, n] += A[{'k, m' if trans_a else 'm, k'}] * "
                 f"B[{'n, k' if trans_b else 'k, n'}]")
    sched = schedule_gemm(ctx, node, _plan(ctx, statement, (m, n, k)), (m, n, k),
                          k_block(node, n, k))
    plan = sched.plan
    a = _matrix_operand(ctx, a_name, trans_a, 0, (m, k), "a", plan.mr, tag, alpha)
    b = _matrix_operand(ctx, b_name, trans_b, 0, (k, n), "b", plan.nr, tag,
                        1.0 if a.packed else alpha)
    scaled_alpha = 1.0 if (a.packed or b.packed) else alpha
    bias = _gemm_bias(ctx, tail.bias, beta, (m, n), tag)
    scaled = scaled_alpha != 1.0 or (bias is not None and bias.beta != 1.0)
    epi = Epilogue(bias.kind if bias else "none", bool(tail.residual), tail.clip, scaled)
    values: dict[str, object] = {}
    if bias is not None:
        values.update(bias=bias.arg, ldbias=bias.ld, bias_bstride=0)
    if scaled:
        values.update(alpha=scaled_alpha, beta=bias.beta if bias else 0.0)
    call, note = _gemm_call(sched, a, b, Buf(y), epi, tail, tag, values, ctx.target.threads)
    text = f"{y}[m,n] += {alpha}*{a_name}[{'k,m' if trans_a else 'm,k'}]*" \
           f"{b_name}[{'n,k' if trans_b else 'k,n'}]"
    if bias is not None:
        text += f"; + {beta}*{tail.bias}"
    return _lowered(node, [call], text + _tail_text(tail), note, sched)


def _plan(ctx: LowerContext, statement: str, shape: tuple[int, int, int]) -> Fp32Plan:
    return plan_fp32_gemm(statement, F32_ROLES, "A", shape, ctx.target, ctx.intrinsics)


def _lowered(node: Node, calls: list[Call], semantics: str, note: str,
             sched: GemmSchedule) -> LoweredNode:
    plan = sched.plan
    chosen = plan.choice.match.name if plan.choice and plan.step and plan.choice.match else ""
    return LoweredNode(node.name, node.qualified_op, node.outputs, calls,
                       semantics=semantics, note=note, intrinsic=chosen,
                       rejected=plan.rejected, schedule=sched.decision)


@lowers("MatMul")
def lower_matmul(node: Node, ctx: LowerContext) -> LoweredNode:
    require_f32(node, ctx)
    a_name, b_name, y = node.inputs[0], node.inputs[1], node.outputs[0]
    a_shape, b_shape = shape_of(ctx, a_name), shape_of(ctx, b_name)
    a3 = (1,) + a_shape if len(a_shape) == 1 else a_shape  # numpy: 1-D A is a row
    b3 = b_shape + (1,) if len(b_shape) == 1 else b_shape  # ... and 1-D B a column
    (m, k), (k2, n) = a3[-2:], b3[-2:]
    if k != k2:
        raise NotLowerable(f"MatMul inner dimensions differ: {a_shape} @ {b_shape}")
    batch_a, batch_b = a3[:-2], b3[:-2]
    try:
        batch = broadcast_shapes(batch_a, batch_b)
    except ValueError as e:
        raise NotLowerable(f"MatMul batch dimensions do not broadcast: {e}") from e
    if len(batch) > 1 and len(batch_a) == len(batch_b) == len(batch) and \
            all(same(x, y) for x, y in zip(batch_a, batch_b, strict=True)):
        # no broadcasting: the batch dims are one run of equal strides, so the
        # kernel walks them as one (no call per outer index, symbolic ones too)
        batch = batch_a = batch_b = (math.prod(batch),)
    tag = node.name or y
    semantics = f"{y}[...,m,n] += {a_name}[...,m,k] * {b_name}[...,k,n]"
    if len(b3) == 2:  # every batch item of A against one B: one tall GEMM
        m_all = m * math.prod(batch_a)
        sched = schedule_gemm(ctx, node, _plan(ctx, "Y[m, n] += A[m, k] * B[k, n]",
                                               (m_all, n, k)), (m_all, n, k), k_block(node, n, k))
        a = Operand(Buf(a_name), False, k, 1)
        b = _matrix_operand(ctx, b_name, 0, 0, (k, n), "b", sched.plan.nr, tag, 1.0)
        call, note = _gemm_call(sched, a, b, Buf(y), Epilogue(), NO_TAIL, tag, {},
                                ctx.target.threads)
        return _lowered(node, [call], semantics, note, sched)
    sched = schedule_gemm(ctx, node, _plan(ctx, "Y[b, m, n] += A[b, m, k] * B[b, k, n]",
                                           (m, n, k)), (m, n, k), k_block(node, n, k))
    calls, note = _batched(sched, node, batch, batch_a, batch_b, ctx.target.threads)
    return _lowered(node, calls, semantics, note, sched)


def _batched(sched: GemmSchedule, node: Node, batch: tuple[int, ...],
             batch_a: tuple[int, ...], batch_b: tuple[int, ...],
             threads: int) -> tuple[list[Call], str]:
    """One call per index of the outer batch dims; the kernel loops over the last
    one (stride 0 where an operand is broadcast)."""
    a_name, b_name, y = node.inputs[0], node.inputs[1], node.outputs[0]
    m, n, k = sched.mnk
    if not batch:
        batch = (1,)
    a_strides = _batch_strides(batch_a, batch, m * k)
    b_strides = _batch_strides(batch_b, batch, k * n)
    c_strides = _batch_strides(batch, batch, m * n)
    calls, note = [], ""
    for outer in np.ndindex(*batch[:-1]):
        def offset(strides: list[int], idx: tuple[int, ...] = outer) -> int:
            return F32_BYTES * sum(i * s for i, s in zip(idx, strides, strict=False))

        a = Operand(Buf(a_name, offset(a_strides)), False, k, 1)
        b = Operand(Buf(b_name, offset(b_strides)), False, n, 1)
        values = dict(batch=batch[-1], a_bstride=a_strides[-1], b_bstride=b_strides[-1],
                      c_bstride=c_strides[-1])
        call, note = _gemm_call(sched, a, b, Buf(y, offset(c_strides)), Epilogue(),
                                NO_TAIL, node.name or y, values, threads)
        calls.append(call)
    return calls, f"{note}, batch {batch}"


def _batch_strides(shape: tuple[int, ...], out: tuple[int, ...], item: int) -> list[int]:
    """Element strides of `shape`'s batch dims aligned to `out`'s (0 where broadcast)."""
    shape = (1,) * (len(out) - len(shape)) + tuple(shape)
    strides, step = [], item
    for d in reversed(shape):
        strides.append(step if d != 1 else 0)
        step *= d
    return strides[::-1] or [0]


def _matrix_operand(ctx: LowerContext, name: str, trans: int, offset: int,
                    shape: tuple[int, int], role: str, panel: int, tag: str,
                    scale: float) -> Operand:
    """A (role "a", rows m) or B (role "b", cols n); constants are packed with
    `scale` folded in, other values are read through strides."""
    if ctx.graph.is_const(name):
        stored = shape[::-1] if trans else shape
        mat = ctx.graph.const(name).astype(np.float32).reshape(stored)
        mat = (mat.T if trans else mat) * np.float32(scale)
        packed = pack_a_const(mat, panel) if role == "a" else pack_b_const(mat, panel)
        return Operand(Const(f"{tag}.{role}.packed", packed), True)
    stored_cols = shape[0] if trans else shape[1]
    row_stride, col_stride = (1, stored_cols) if trans else (stored_cols, 1)
    return Operand(Buf(name, offset), False, row_stride, col_stride)


@dataclass
class _Bias:
    arg: Buf | Const
    kind: str  # Epilogue bias kind
    ld: int
    beta: float  # still to apply at run time (1.0 when folded)


def _gemm_bias(ctx: LowerContext, name: str, beta: float, mn: tuple[int, int],
               tag: str) -> _Bias | None:
    if not name or beta == 0.0:
        return None
    m, n = mn
    shape = shape_of(ctx, name)
    if len(shape) > 2:
        raise NotLowerable(f"Gemm's C has rank {len(shape)}")
    cm, cn = ((1, 1) + shape)[-2:]
    rows, cols = same_dim(cm, m), same_dim(cn, n)  # else C is broadcast along them
    if not (rows or is_one(cm)) or not (cols or is_one(cn)):
        raise NotLowerable(f"Gemm's C {shape} does not broadcast to {mn}")
    kind, ld = ("mat", n) if cols and rows else ("col", 0) if cols and n > 1 else \
        ("row", 1 if rows else 0)
    if ctx.graph.is_const(name):
        data = (ctx.graph.const(name).astype(np.float32) * np.float32(beta)).reshape(-1)
        return _Bias(Const(f"{tag}.c", np.ascontiguousarray(data)), kind, ld, 1.0)
    return _Bias(Buf(name), kind, ld, beta)


def _gemm_call(sched: GemmSchedule, a: Operand, b: Operand, c: Buf,
               epi: Epilogue, tail: FusedTail, tag: str,
               extra: dict[str, object], threads: int) -> tuple[Call, str]:
    """The call; packed operands must have been packed for the schedule's tile.
    `threads`: the target's, so the scratch holds a packing slice per thread."""
    plan, (m, n, k) = sched.plan, sched.mnk
    spec = GemmSpec(plan.mr, plan.nv, plan.lanes, "packed" if a.packed else "strided",
                    "packed" if b.packed else "strided", epi, plan.step, threads,
                    split=sched.split, prefetch=sched.prefetch)
    blk = sched.blocking()
    values: dict[str, object] = dict(
        a=a.arg, b=b.arg, c=c, scratch=Scratch(f"{tag}.pack", scratch_bytes(spec, blk)),
        M=m, N=n, K=k, ldc=n, kc=blk.kc, mc=blk.mc, nc=blk.nc,
        batch=1, a_bstride=0, b_bstride=0, c_bstride=0)
    if not a.packed:
        values.update(sam=a.row_stride, sak=a.col_stride)
    if not b.packed:
        values.update(sbk=b.row_stride, sbn=b.col_stride)
    if tail.residual:
        values.update(res=Buf(tail.residual), ldres=n, res_bstride=0)
    if tail.clip:
        values.update(lo=tail.lo, hi=tail.hi)
    values.update(extra)
    packed = [name for name, op in (("A", a), ("B", b)) if op.packed]
    note = (f"GEMM {m}x{n}x{k}: {plan.summary}; "
            f"{' and '.join(packed) + ' packed at compile time' if packed else 'runtime packing'}"
            f", KC={blk.kc}, epilogue {epi.tag}{tuned_text(sched.decision)}")
    return Call(spec.kernel(), spec.args(values)), note


def _tail_text(tail: FusedTail) -> str:
    text = f"; + {tail.residual}[m,n]" if tail.residual else ""
    return text + (f"; clip({tail.lo}, {tail.hi})" if tail.clip else "")
