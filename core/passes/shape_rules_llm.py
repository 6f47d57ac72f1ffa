"""Shape rules of the LLM ops (see shape_rules.py): ONNX Attention with its KV
cache, and onnxruntime's MatMulNBits, which the frontend keeps for its kernel."""

from __future__ import annotations

from ..ir import Node
from .shape_rules import RULES, ShapeState


def _matmul_nbits(st: ShapeState, node: Node) -> list:
    return [st.shape(node.inputs[0])[:-1] + (int(node.attr("N")),)]


def _attention(st: ShapeState, node: Node) -> list:
    """Y like Q with V's head size; present = past + new keys; qk [B, Hq, S, total]."""
    q, k, v = (st.shape(i) for i in node.inputs[:3])
    past = node.inputs[4] if len(node.inputs) > 4 and node.inputs[4] else ""
    if len(q) == 4:
        y, new, kv_heads = (q[0], q[1], q[2], v[3]), k[2], k[1]
        head_k, head_v, q_heads = k[3], v[3], q[1]
    else:
        hq, hk = int(node.attr("q_num_heads", 0)), int(node.attr("kv_num_heads", 0))
        if not hq or not hk:
            return [None] * len(node.outputs)
        y, new, kv_heads = (q[0], q[1], hq * (v[2] // hk)), k[1], hk
        head_k, head_v, q_heads = k[2] // hk, v[2] // hk, hq
    total = new + st.shape(past)[2] if past else new
    return [y, (q[0], kv_heads, total, head_k), (q[0], kv_heads, total, head_v),
            (q[0], q_heads, y[2] if len(q) == 4 else q[1], total)][:len(node.outputs)]


RULES["com.microsoft.MatMulNBits"] = _matmul_nbits
RULES["Attention"] = _attention
