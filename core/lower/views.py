"""Ops that only reinterpret memory: their output aliases their input."""

from __future__ import annotations

from ..errors import NotLowerable
from ..ir import Node
from ..program import LowerContext, LoweredNode
from .registry import lowers


@lowers("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout")
def lower_view(node: Node, ctx: LowerContext) -> LoweredNode:
    src = node.inputs[0]
    out = node.outputs[0]
    g = ctx.graph
    if g.type_of(src).numel != g.type_of(out).numel:
        raise NotLowerable("output and input differ in element count")
    if node.op == "Dropout" and len(node.outputs) > 1 and node.outputs[1]:
        raise NotLowerable("Dropout's mask output is not supported")
    return LoweredNode(node.name, node.op, node.outputs, alias_of=src,
                       semantics=f"{out} = view({src})")
