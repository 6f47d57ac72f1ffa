"""MaxPool with its Indices output (any spatial rank, storage_order 0 or 1).

Indices are flat positions in the input tensor, as onnxruntime and the ONNX
reference define them: plane * (spatial size) + the spatial position, flattened
row-major (storage_order 0) or column-major (1) over the spatial axes.
"""

from __future__ import annotations

import math

from ..codegen.kernels.ops import pool_argmax as K
from ..errors import ModelError, NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, LowerContext, LoweredNode
from .elementwise import shape_of
from .pool_windows import AxisWindows, kernel_geometry, vector_axis_layout


def lower_max_pool_with_indices(node: Node, ctx: LowerContext,
                                axes: list[AxisWindows]) -> LoweredNode:
    x, (y, indices) = node.inputs[0], node.outputs[:2]
    if ctx.graph.type_of(indices).dtype != DType.int64:
        raise NotLowerable(f"{indices} is {ctx.graph.type_of(indices).dtype.short}, "
                           "MaxPool's Indices are int64")
    if shape_of(ctx, indices) != shape_of(ctx, y):
        raise ModelError(f"MaxPool node '{node.name}': Indices of shape "
                         f"{list(shape_of(ctx, indices))} differ from Y's {list(shape_of(ctx, y))}")
    order = node.attr("storage_order", 0)
    if order not in (0, 1):
        raise ModelError(f"MaxPool node '{node.name}': storage_order {order!r} is not 0 or 1")
    shape = shape_of(ctx, x)
    sizes = [a.size for a in axes]
    # the multiplier of spatial axis a: row-major, the axes after it; column-major, before
    factors = [math.prod(sizes[a + 1:]) if order == 0 else math.prod(sizes[:a])
               for a in range(len(sizes))]
    if len(axes) == 1:  # the kernel's leading axis of one row adds nothing to an index
        factors = [0, *factors]
    axes = vector_axis_layout(axes)
    *outer, cols = axes
    values = {**kernel_geometry(shape[0] * shape[1], axes), "mplane": math.prod(sizes),
              "mx": factors[-1], **{f"m{a}": f for a, f in enumerate(factors[:-1])}}
    kernel = K.max_pool_indices_kernel(cols.stride, outer=len(outer))
    names = (*K.geometry(len(outer)), *K.multipliers(len(outer)))
    call = Call(kernel, (Buf(x), Buf(y), Buf(indices), *[values[n] for n in names]))
    flat = "row-major" if order == 0 else "column-major"
    return LoweredNode(
        node.name, node.op, node.outputs, [call],
        semantics=f"y = MaxPool(x); indices = the {flat} flat position in x of the first "
                  "maximum of each window (planes included)",
        note=f"{kernel.name}: vectors along the last axis, taps looped at run time")
