"""fuse_swish: the SiLU / Swish that exporters write as two ops, one kernel.

    Mul(x, Sigmoid(x))               ->  Swish(x)            (Llama's SiLU)
    Mul(x, Sigmoid(Mul(x, alpha)))   ->  Swish(x, alpha)     (QuickGelu's form)

One pass over x instead of two (or three), and no [rows, hidden] temporary:
an LLM's MLP activation is a large elementwise tensor in a prefill. Only
float x, and only when the sigmoid (and the scaling Mul) feed nothing else.
"""

from __future__ import annotations

from ..ir import DType, Node
from .base import FunctionPass
from .rewrite import GraphView, Rewrite, is_onnx, rewrite_graph

FLOATS = (DType.float32, DType.float16, DType.bfloat16)  # what the Swish kernel computes


def fuse_swish(view: GraphView, mul: Node) -> Rewrite | None:
    if not is_onnx(mul, "Mul") or len(mul.inputs) != 2:
        return None
    for x, gate in (mul.inputs, mul.inputs[::-1]):
        sigmoid = view.producer(gate)
        if sigmoid is None or not is_onnx(sigmoid, "Sigmoid") or not view.has_single_use(gate):
            continue
        if view.type_of(x).dtype not in FLOATS or view.type_of(x) != view.type_of(mul.outputs[0]):
            continue
        if sigmoid.inputs[0] == x:
            alpha, old = 1.0, [sigmoid, mul]
        else:
            alpha = _scale(view, sigmoid.inputs[0], x)
            if alpha is None:
                continue
            old = [view.producer(sigmoid.inputs[0]), sigmoid, mul]
        swish = Node("Swish", (x,), mul.outputs, {"alpha": alpha}, name=mul.name)
        return Rewrite(old=old, new=[swish])
    return None


def _scale(view: GraphView, value: str, x: str) -> float | None:
    """alpha when `value` = Mul(x, alpha) with a scalar constant alpha, used once."""
    node = view.producer(value)
    if node is None or not is_onnx(node, "Mul") or not view.has_single_use(value):
        return None
    for a, b in (node.inputs, node.inputs[::-1]):
        c = view.const(b)
        if a == x and c is not None and c.size == 1:
            return float(c.reshape(-1)[0])
    return None


fuse_swish_pass = FunctionPass("fuse_swish", lambda g: rewrite_graph(g, [fuse_swish]))
