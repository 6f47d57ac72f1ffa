"""Lowerings of QuantizeLinear and DequantizeLinear (opsets 10-21: per tensor and
per axis; not blocked), with onnxruntime's rounding (codegen/kernels/quant.py).

The quantized operators live in quant_gemm.py (convolutions, matrix products)
and quant_eltwise.py (adds, pooling); DynamicQuantizeLinear in quant_dynamic.py.
"""

from __future__ import annotations

import numpy as np

from ..codegen.kernels import quant as K
from ..ir import DType, Node
from .broadcast import shape_of
from .program import Buf, Call, Const, LoweredNode
from .quant_params import QParams, channel_layout, linear_qparams
from .registry import LowerContext, NotLowerable, lowers


@lowers("QuantizeLinear")
def lower_quantize(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    g = ctx.graph
    if g.type_of(x).dtype != DType.float32:
        raise NotLowerable(f"QuantizeLinear of {g.type_of(x).dtype.short} (float32 is supported)")
    out = g.type_of(y).dtype
    if out not in K.INT_RANGES or out == DType.int32:
        raise NotLowerable(f"QuantizeLinear to {out.short} is not supported")
    q = linear_qparams(g, node, 1, 2, y)
    call = _channel_call(K.quantize_kernel(out), x, y, q, shape_of(ctx, x), node.name)
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"{y}[i] = saturate(round_half_even({x}[i] / scale[c]) + zp[c])",
                       note=f"{call.kernel.name}: {_how(q)}, division as onnxruntime does")


@lowers("DequantizeLinear")
def lower_dequantize(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    g = ctx.graph
    src = g.type_of(x).dtype
    if src not in K.INT_RANGES:
        raise NotLowerable(f"DequantizeLinear of {src.short} is not supported")
    if g.type_of(y).dtype != DType.float32:
        raise NotLowerable(f"DequantizeLinear to {g.type_of(y).dtype.short} (float32 is "
                           "supported)")
    q = linear_qparams(g, node, 1, 2, x)
    call = _channel_call(K.dequantize_kernel(src), x, y, q, shape_of(ctx, x), node.name)
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"{y}[i] = float({x}[i] - zp[c]) * scale[c]",
                       note=f"{call.kernel.name}: {_how(q)}")


def _channel_call(kernel, x: str, y: str, q: QParams, shape: tuple[int, ...], tag: str) -> Call:
    outer, channels, inner = channel_layout(shape, q)
    scale = Const(f"{tag}.scale", np.ascontiguousarray(q.scale.reshape(-1), np.float32))
    zp = Const(f"{tag}.zp", np.ascontiguousarray(q.zero_point.reshape(-1), np.int32))
    return Call(kernel, (Buf(x), Buf(y), scale, zp, outer, channels, inner))


def _how(q: QParams) -> str:
    return "per tensor" if q.per_tensor else f"per axis {q.axis} ({q.scale.size} channels)"
