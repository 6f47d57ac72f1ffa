"""Lowerings of ops whose output size depends on input values: NonZero,
Compress, Unique, NonMaxSuppression (passes/data_dependent_shapes.py gave each such size an
"unbacked" symbol with an upper bound).

Each kernel counts, writes the count into the symbol's dims slot (DimSlot)
and lays the output out for that count; buffers are planned at the bound,
and later nodes read the size from the slot. A size that shape inference
could compute (a constant condition) is written to scratch instead.
"""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels.ops import data_dependent as K
from ..codegen.kernels.ops import nms as NMS
from ..errors import NotLowerable
from ..ir import DType, Node
from ..ir.unbacked import unbacked_symbol
from ..program import Buf, Call, Const, DimSlot, LowerContext, LoweredNode, Scratch, int_table
from .broadcast import shape_of
from .registry import lowers
from .typed_elementwise import dtype_of


def count_slot(size, tag: str) -> DimSlot | Scratch:
    """Where a kernel writes a count: its symbol's slot, or scratch when the
    count was known at compile time (the kernel's count then equals it)."""
    name = unbacked_symbol(size)
    return DimSlot(name) if name else Scratch(tag, 8)


@lowers("NonZero")
def lower_nonzero(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    dims = shape_of(ctx, x) or (1,)
    out = shape_of(ctx, y)
    total = math.prod(dims)
    kernel = K.nonzero_kernel(dtype_of(ctx, x), len(dims))
    call = Call(kernel, (Buf(x), Buf(y), total, int_table(f"{node.name}.dims", dims),
                         count_slot(out[1], "count")))
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y[d, j] = coordinate d of the j-th nonzero of x, "
                                 f"j < {out[1]} <= {total}",
                       note=f"{kernel.name}: count, then write the coordinates")


def _axis_form(node: Node, shape: tuple) -> tuple:
    """(outer, n, inner) around Compress / Unique's axis; the flattened input
    when the node has no axis."""
    if node.attr("axis", None) is None:
        return 1, math.prod(shape), 1
    axis = int(node.attr("axis")) % len(shape)
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


@lowers("Compress")
def lower_compress(node: Node, ctx: LowerContext) -> LoweredNode:
    x, cond, y = node.inputs[0], node.inputs[1], node.outputs[0]
    if dtype_of(ctx, cond) != DType.bool or len(shape_of(ctx, cond)) != 1:
        raise NotLowerable(f"Compress needs a 1-D bool condition; '{cond}' is not")
    outer, n, inner = _axis_form(node, shape_of(ctx, x))
    (length,) = shape_of(ctx, cond)
    if length > n:  # as onnx.reference (numpy): a longer condition is an error
        raise NotLowerable(f"Compress: the condition has {length} entries for an axis "
                           f"of {n}")
    picked = shape_of(ctx, y)[0 if node.attr("axis", None) is None else
                              int(node.attr("axis")) % len(shape_of(ctx, x))]
    itemsize = ctx.graph.type_of(x).dtype.itemsize
    if itemsize not in (1, 2, 4, 8):
        raise NotLowerable(f"Compress of {itemsize}-byte elements")
    kernel = K.compress_kernel(itemsize)
    call = Call(kernel, (Buf(x), Buf(cond), Buf(y), outer, n, inner, length,
                         count_slot(picked, "count")))
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y[o, j, i] = x[o, t_j, i], t_j the {picked} set entries "
                                 f"of cond over [{outer}, {n}, {inner}]",
                       note=f"{kernel.name}: count, then copy the picked slices")


@lowers("Unique")
def lower_unique(node: Node, ctx: LowerContext) -> LoweredNode:
    x = node.inputs[0]
    outs = list(node.outputs) + [""] * (4 - len(node.outputs))
    shape, dt = shape_of(ctx, x), dtype_of(ctx, x)
    outer, n, inner = _axis_form(node, shape)
    itemsize = dt.itemsize
    if itemsize not in (1, 2, 4, 8) or not outs[0]:
        raise NotLowerable(f"Unique of {dt.name} (or without its first output)")
    flat = node.attr("axis", None) is None
    u = shape_of(ctx, outs[0])[0 if flat else int(node.attr("axis")) % len(shape)]
    sizes = [None, 8 * u, 8 * n, 8 * u]
    bufs = [Buf(o) if o else Scratch(f"out{k}", sizes[k]) for k, o in enumerate(outs)]
    kernel = K.unique_kernel(dt, bool(node.attr("sorted", 1)), itemsize)
    call = Call(kernel, (Buf(x), *bufs, outer, n, inner, Scratch("first", 8 * n),
                         Scratch("pos", 8 * n), count_slot(u, "count")))
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"the {u} distinct slices of x over [{outer}, {n}, {inner}]",
                       note=f"{kernel.name}: pairwise slice comparisons, O(n^2)")


def _optional(node: Node, k: int, ctx: LowerContext, dt: DType, default):
    """Input k, or a constant default where the node omits it; checked to be
    one value of dtype dt."""
    name = node.inputs[k] if k < len(node.inputs) else ""
    if not name:
        return Const(f"{node.name}.default{k}", np.array([default], dt.numpy)), False
    if dtype_of(ctx, name) != dt or math.prod(shape_of(ctx, name)) != 1:
        raise NotLowerable(f"NonMaxSuppression: input '{name}' must hold one {dt.name}")
    return Buf(name), True


@lowers("NonMaxSuppression")
def lower_nms(node: Node, ctx: LowerContext) -> LoweredNode:
    boxes, scores, y = node.inputs[0], node.inputs[1], node.outputs[0]
    (batches, n, four), (batches2, classes, n2) = shape_of(ctx, boxes), shape_of(ctx, scores)
    if dtype_of(ctx, boxes) != DType.float32 or dtype_of(ctx, scores) != DType.float32 \
            or four != 4 or batches != batches2 or n != n2:
        raise NotLowerable(f"NonMaxSuppression of boxes {list(shape_of(ctx, boxes))} and "
                           f"scores {list(shape_of(ctx, scores))} (float32 [B, n, 4], [B, C, n])")
    max_out, _ = _optional(node, 2, ctx, DType.int64, 0)
    iou, _ = _optional(node, 3, ctx, DType.float32, 0.0)
    score_min, has_score_min = _optional(node, 4, ctx, DType.float32, 0.0)
    kernel = NMS.nms_kernel(bool(node.attr("center_point_box", 0)))
    call = Call(kernel, (Buf(boxes), Buf(scores), max_out, iou, score_min, Buf(y), batches,
                         classes, n, int(has_score_min), Scratch("order", 8 * n),
                         Scratch("kept", 8 * n), count_slot(shape_of(ctx, y)[0], "count")))
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"(batch, class, box) of the boxes kept per class, "
                                 f"[{batches}, {classes}, {n}]",
                       note=f"{kernel.name}: insertion sort by score, IoU against the kept")
