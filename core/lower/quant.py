"""Lowerings of QuantizeLinear and DequantizeLinear (opsets 10-21: per tensor and
per axis; not blocked), with onnxruntime's rounding (codegen/kernels/int8/quant.py).

The quantized operators live in quant_gemm.py (convolutions, matrix products)
and quant_eltwise.py (adds, pooling); DynamicQuantizeLinear in quant_dynamic.py.
"""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels.int8 import quant as K
from ..errors import NotLowerable
from ..ir import DType, Node
from ..ir.quant import QParams, channel_layout, linear_qparams, slot
from ..program import Buf, Call, Const, LowerContext, LoweredNode
from .broadcast import shape_of
from .registry import lowers


@lowers("QuantizeLinear")
def lower_quantize(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    g = ctx.graph
    if g.type_of(x).dtype != DType.float32:
        raise NotLowerable(f"QuantizeLinear of {g.type_of(x).dtype.short} (float32 is supported)")
    out = g.type_of(y).dtype
    if (out not in K.INT_RANGES and out not in K.FLOAT_TARGETS) or out == DType.int32:
        raise NotLowerable(f"QuantizeLinear to {out.short} is not supported")
    kernel = K.quantize_kernel(out, bool(node.attr("saturate", 1)))
    call, how = _channel_call(ctx, node, kernel, x, y, y)
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"{y}[i] = saturate(round_half_even({x}[i] / scale[c]) + zp[c])",
                       note=f"{call.kernel.name}: {how}, division as onnxruntime does")


@lowers("DequantizeLinear")
def lower_dequantize(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    g = ctx.graph
    src = g.type_of(x).dtype
    if src not in K.INT_RANGES and src not in K.FLOAT_TARGETS:
        raise NotLowerable(f"DequantizeLinear of {src.short} is not supported")
    if g.type_of(y).dtype != DType.float32:
        raise NotLowerable(f"DequantizeLinear to {g.type_of(y).dtype.short} (float32 is "
                           "supported)")
    call, how = _channel_call(ctx, node, K.dequantize_kernel(src), x, y, x)
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"{y}[i] = float({x}[i] - zp[c]) * scale[c]",
                       note=f"{call.kernel.name}: {how}")


def _channel_call(ctx: LowerContext, node: Node, kernel, x: str, y: str,
                  quantized: str) -> tuple[Call, str]:
    """The call walking x per channel of the node's scale / zero point, which are
    compile-time constants or, as the ONNX node tests have them, model inputs."""
    g = ctx.graph
    shape = shape_of(ctx, x)
    scale, zp = node.inputs[1], slot(node, 2)
    if g.is_const(scale) and (not zp or g.is_const(zp)):
        q = linear_qparams(g, node, 1, 2, quantized)
        dt = g.type_of(quantized).dtype
        args = (Const(f"{node.name}.scale", np.ascontiguousarray(q.scale.reshape(-1), np.float32)),
                Const(f"{node.name}.zp", np.ascontiguousarray(q.zero_point.reshape(-1), dt.numpy)))
        return Call(kernel, (Buf(x), Buf(y), *args, *channel_layout(shape, q))), _how(q)
    return _runtime_params_call(ctx, node, kernel, x, y, quantized)


def _runtime_params_call(ctx: LowerContext, node: Node, kernel, x: str, y: str,
                         quantized: str) -> tuple[Call, str]:
    g = ctx.graph
    scale, zp = node.inputs[1], slot(node, 2)
    if g.type_of(scale).dtype != DType.float32:
        raise NotLowerable(f"scale {scale} is {g.type_of(scale).dtype.short} (float32 is "
                           "supported)")
    if int(node.attr("block_size", 0) or 0):
        raise NotLowerable("blocked quantization (block_size) is not supported")
    channels = g.type_of(scale).numel
    dt = g.type_of(quantized).dtype
    if zp and (g.type_of(zp).dtype != dt or g.type_of(zp).numel != channels):
        raise NotLowerable(f"zero point {zp} does not match {quantized} and the scale")
    zp_arg = Buf(zp) if zp else Const(f"{node.name}.zp", np.zeros(channels, dt.numpy))
    shape = shape_of(ctx, x)
    layout = (1, 1, math.prod(shape))
    if channels > 1:
        axis = int(node.attr("axis", 1))
        axis = axis + len(shape) if axis < 0 else axis
        if not 0 <= axis < len(shape) or shape[axis] != channels:
            raise NotLowerable(f"{channels} scales do not match axis {axis} of {x}")
        fake = QParams(np.zeros(channels, np.float32), np.zeros(channels, np.int64), dt, axis)
        layout = channel_layout(shape, fake)
    return Call(kernel, (Buf(x), Buf(y), Buf(scale), zp_arg, *layout)), \
        f"{'per tensor' if channels == 1 else f'{channels} channels'}, parameters read at run time"


def _how(q: QParams) -> str:
    return "per tensor" if q.per_tensor else f"per axis {q.axis} ({q.scale.size} channels)"
