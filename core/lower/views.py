"""Ops that only reinterpret memory: their output aliases their input."""

from __future__ import annotations

import math

from ..codegen.kernels.ops.data_dependent import reshape_dims_kernel
from ..errors import NotLowerable
from ..ir import Node
from ..ir.unbacked import data_dependent_run
from ..program import Buf, Call, DimSlot, ErrorSite, LowerContext, LoweredNode, int_table
from .broadcast import shape_of
from .registry import lowers
from .typed_elementwise import dtype_of


@lowers("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout")
def lower_view(node: Node, ctx: LowerContext) -> LoweredNode:
    src = node.inputs[0]
    out = node.outputs[0]
    g = ctx.graph
    if node.op == "Reshape" and (first := data_dependent_run(g.type_of(out).shape)):
        return _reshape_by_data(node, ctx, first)
    if g.type_of(src).numel != g.type_of(out).numel:
        raise NotLowerable("output and input differ in element count")
    if node.op == "Dropout" and len(node.outputs) > 1 and node.outputs[1]:
        raise NotLowerable("Dropout's mask output is not supported")
    return LoweredNode(node.name, node.op, node.outputs, alias_of=src,
                       semantics=f"{out} = view({src})")


def _reshape_by_data(node: Node, ctx: LowerContext, first: str) -> LoweredNode:
    """A target shape that is run-time data ONNX could not size: the dims are
    data-dependent sizes a kernel reads from it (and checks) before the view
    is used."""
    src, shape_in, out = node.inputs[0], node.inputs[1], node.outputs[0]
    dims = shape_of(ctx, src)
    n = len(shape_of(ctx, out))
    kernel = reshape_dims_kernel(dtype_of(ctx, shape_in), n, len(dims),
                                 bool(node.attr("allowzero", 0)))
    site = ErrorSite(f"Reshape node '{node.name}': shape input '{shape_in}' (at most the "
                     f"element count per dim; position -1: the dims' product)")
    call = Call(kernel, (site, Buf(shape_in), int_table(f"{node.name}.in", dims or (1,)),
                         DimSlot(first), math.prod(dims)))
    return LoweredNode(node.name, node.op, node.outputs, alias_of=src, setup=[call],
                       semantics=f"{out} = view({src}), dims read from {shape_in}")
