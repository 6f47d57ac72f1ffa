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

from ..codegen.kernels.ops.kv_rows import kv_rows_kernel
from ..errors import NotLowerable
from ..ir import Node
from ..ir.symbolic import same
from ..program import Buf, Call, LowerContext, LoweredNode
from .broadcast import shape_of
from .elementwise import require_f32
from .indexing import elem_bytes
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
    """kv_rows kernels, whatever M: a decode step's M = 1 is what they are for;
    a prefill's larger M re-reads the cache rows per query row (from cache)."""
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
    calls = []
    if batch and m and n:
        calls.append(Call(kv_rows_kernel("dot" if trans_b else "axpy"),
                          (Buf(a_name), Buf(present), Buf(y), batch, m, n, k, m * k,
                           cap * inner, m * n, inner)))
    b_text = f"{present}[...,n,k]" if trans_b else f"{present}[...,k,n]"
    return LoweredNode(node.name, node.qualified_op, node.outputs, calls,
                       semantics=f"{y}[...,m,n] += {a_name}[...,m,k] * {b_text}",
                       note=f"{'dot products with' if trans_b else 'weighted sums of'} the "
                            f"cache rows in place (rows {cap} apart per head), batch {batch}")
