"""Lowerings of the shared KV cache's two ops (passes/share_kv_cache.py).

The present buffer is [outer..., capacity, inner]: row r of outer index o at
element (o * capacity + r) * inner, `capacity` a run-time size. Only rows
below past + new are ever written or read.

    tinyc.KVAppend(new) -> present          present[o, past + j, :] = new[o, j, :]
    tinyc.KVMatMul(A, present) -> Y         Y[o] = A[o] @ present[o, :T, :]   (trans_b 0)
                                            Y[o] = A[o] @ present[o, :T, :]^T (trans_b 1)
"""

from __future__ import annotations

import math

from ..codegen.kernels.gemm_epilogue import Epilogue
from ..errors import NotLowerable
from ..ir import Node
from ..ir.sum_order import k_block
from ..ir.symbolic import same
from ..program import Buf, LowerContext, LoweredNode
from .broadcast import shape_of
from .elementwise import require_f32
from .indexing import elem_bytes
from .matmul import NO_TAIL, Operand, _gemm_call, _lowered, _plan
from .misc import copy_call
from .registry import lowers


@lowers("tinyc.KVAppend")
def lower_kv_append(node: Node, ctx: LowerContext) -> LoweredNode:
    (new,), (present,) = node.inputs, node.outputs
    out, rows = shape_of(ctx, present), shape_of(ctx, new)
    axis, past, cap = int(node.attr("axis")), node.attr("past"), node.attr("capacity")
    if axis != len(out) - 2:
        raise NotLowerable(f"KVAppend along axis {axis} of a rank-{len(out)} cache")
    nbytes = elem_bytes(ctx, present)
    outer, inner, seq = math.prod(out[:axis]), out[-1], rows[axis]
    calls = []
    if outer and seq and inner:
        calls.append(copy_call(nbytes, Buf(new), Buf(present, past * inner * nbytes),
                               [(outer, seq * inner, cap * inner)], seq * inner, 1,
                               f"{node.name}.append"))
    return LoweredNode(node.name, node.qualified_op, node.outputs, calls,
                       semantics=f"{present}[o, {past} + j, :] = {new}[o, j, :]",
                       note=f"{outer} row copies into a buffer of {cap} rows")


@lowers("tinyc.KVMatMul")
def lower_kv_matmul(node: Node, ctx: LowerContext) -> LoweredNode:
    require_f32(node, ctx)
    (a_name, present), (y,) = node.inputs, node.outputs
    a_shape, kv = shape_of(ctx, a_name), shape_of(ctx, present)
    trans_b, cap = int(node.attr("trans_b", 0)), node.attr("capacity")
    rows, inner = kv[-2:]
    m, k = a_shape[-2:]
    n = rows if trans_b else inner
    if len(a_shape) != len(kv) or not same(k, inner if trans_b else rows):
        raise NotLowerable(f"KVMatMul: {a_shape} against the cache {kv}")
    batch = math.prod(a_shape[:-2])
    plan = _plan(ctx, "Y[b, m, n] += A[b, m, k] * B[b, k, n]", (m, n, k))
    a = Operand(Buf(a_name), False, k, 1)
    b = Operand(Buf(present), False, *((1, inner) if trans_b else (inner, 1)))
    values = dict(batch=batch, a_bstride=m * k, b_bstride=cap * inner, c_bstride=m * n)
    call, note = _gemm_call(plan, (m, n, k), a, b, Buf(y), Epilogue(), NO_TAIL,
                            node.name or y, values, ctx.target.threads, k_block(node, n, k))
    b_text = f"{present}[...,n,k]" if trans_b else f"{present}[...,k,n]"
    return _lowered(node, [call], f"{y}[...,m,n] += {a_name}[...,m,k] * {b_text}",
                    f"{note}, batch {batch}, cache rows strided by {cap}", plan)
