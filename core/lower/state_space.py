"""CausalConvWithState and LinearAttention (opset 27): sequence ops carrying a
state. Kernels: codegen/kernels/ops/state_space.py.
"""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels.ops import state_space as K
from ..errors import NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from .broadcast import shape_of
from .registry import lowers
from .typed_elementwise import dtype_of

FLOATS = (DType.float32, DType.float16, DType.bfloat16)


def _optional(node: Node, k: int) -> str:
    return node.inputs[k] if len(node.inputs) > k and node.inputs[k] else ""


@lowers("CausalConvWithState")
def lower_causal_conv(node: Node, ctx: LowerContext) -> LoweredNode:
    x, w = node.inputs[:2]
    bias, past = _optional(node, 2), _optional(node, 3)
    y, present = (list(node.outputs) + [""])[:2]
    (batch, channels, length), (wc, one, k) = shape_of(ctx, x), shape_of(ctx, w)
    dt = dtype_of(ctx, x)
    if dt not in FLOATS or (wc, one) != (channels, 1) or not present:
        raise NotLowerable(f"CausalConvWithState of {dt.name}, weight {[wc, one, k]}")
    activation = node.attr("activation", "none")
    if activation not in ("none", "silu", "swish"):
        raise NotLowerable(f"activation {activation!r}")
    spec = K.CausalConvSpec(dt, bool(bias), bool(past), activation != "none")
    unused = Const(f"{node.name}.unused", np.zeros(1, np.int64))
    plan = Const(f"{node.name}.plan", np.array([batch, channels, length, k], np.int64))
    call = Call(K.causal_conv_kernel(spec), (Buf(x), Buf(w), Buf(bias) if bias else unused,
                                             Buf(past) if past else unused, Buf(y),
                                             Buf(present), plan))
    return LoweredNode(node.name, node.op, node.outputs, [call] if batch * channels else [],
                       semantics="y[b, c, t] = act(bias[c] + sum_j w[c, j] [past ++ x][t + j]);"
                                 " present = last k-1 of [past ++ x]",
                       note=f"{spec.name}: per channel, one pass")


@lowers("LinearAttention")
def lower_linear_attention(node: Node, ctx: LowerContext) -> LoweredNode:
    q, k, v = node.inputs[:3]
    past, decay, beta = _optional(node, 3), _optional(node, 4), _optional(node, 5)
    y, present = (list(node.outputs) + [""])[:2]
    hq, hk = int(node.attr("q_num_heads", 0)), int(node.attr("kv_num_heads", 0))
    (batch, steps, qw), kw, vw = shape_of(ctx, q), shape_of(ctx, k)[2], shape_of(ctx, v)[2]
    rule = node.attr("update_rule", "gated_delta")
    gated, delta = rule in ("gated", "gated_delta"), rule in ("delta", "gated_delta")
    dt = dtype_of(ctx, q)
    if not hq or not hk or hq % hk or dt not in FLOATS or \
            {dtype_of(ctx, x) for x in (q, k, v, y, present, past, decay, beta) if x} != {dt}:
        raise NotLowerable("LinearAttention needs float inputs of one dtype and grouped heads")
    if gated != bool(decay) or delta != bool(beta) or not present:
        raise NotLowerable(f"update rule {rule!r} with these inputs")
    dk, dv = qw // hq, vw // hk
    spec = K.LinearAttentionSpec(dt, gated, delta, gated and shape_of(ctx, decay)[2] == hk,
                                 delta and shape_of(ctx, beta)[2] == 1, bool(past))
    if kw != hk * dk:
        raise NotLowerable(f"key width {kw} is not {hk} heads of {dk}")
    scale = float(node.attr("scale", 0.0)) or 1.0 / math.sqrt(dk)
    unused = Const(f"{node.name}.unused", np.zeros(1, np.float32))
    plan = Const(f"{node.name}.plan", np.array([batch, steps, hq, hk, dk, dv], np.int64))
    args = (Buf(q), Buf(k), Buf(v), *(Buf(t) if t else unused for t in (past, decay, beta)),
            Buf(y), Buf(present), Scratch("state", 4 * (dk * dv + dv) + 8), plan, scale)
    call = Call(K.linear_attention_kernel(spec), args)
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"S = decay S; v' = beta (v - S^T k); S += k v'^T; "
                                 f"y = scale S^T q per step ({rule})",
                       note=f"{spec.name}: one state per batch entry and kv head")
