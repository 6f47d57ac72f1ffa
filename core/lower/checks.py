"""Checks of operand shapes that ONNX shape inference does not make.

Inference checks what determines output shapes; per-channel operands (a
Conv's bias, BatchNormalization's statistics) are not among them, yet a
kernel reads as many of them as there are channels. A mismatch is a malformed
model: it is reported as such, before any code is generated.
"""

from __future__ import annotations

import math

from ..errors import ModelError
from ..ir import Node
from ..program import LowerContext


def require_elements(ctx: LowerContext, node: Node, index: int, count: int, what: str) -> None:
    """Input `index` of `node` must hold exactly `count` elements."""
    name = node.inputs[index] if len(node.inputs) > index else ""
    if not name:
        return
    shape = ctx.graph.type_of(name).shape
    if math.prod(int(d) for d in shape) != count:
        raise ModelError(f"{node.op} node '{node.name}': input {index} ({what}) '{name}' has "
                         f"shape {list(shape)}; expected {count} elements")
