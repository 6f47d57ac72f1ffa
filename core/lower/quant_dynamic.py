"""Dynamic quantization (onnxruntime.quantization.quantize_dynamic's graphs):
DynamicQuantizeLinear, and MatMulInteger whose A zero point is computed at run
time (by DynamicQuantizeLinear): the int8 GEMM runs with a zero point of 0 and
C[m, n] -= a_zp * colsum[n] follows, with B's column sums from compile time.
Kernels: codegen/kernels/quant_dynamic.py.
"""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels import quant_dynamic as K
from ..ir import DType, Node
from .broadcast import shape_of
from .program import Buf, Call, Const, LoweredNode
from .registry import LowerContext, NotLowerable, lowers


@lowers("DynamicQuantizeLinear")
def lower_dynamic_quantize(node: Node, ctx: LowerContext) -> LoweredNode:
    x = node.inputs[0]
    y, scale, zp = (list(node.outputs) + ["", "", ""])[:3]
    g = ctx.graph
    if g.type_of(x).dtype != DType.float32 or g.type_of(y).dtype != DType.uint8:
        raise NotLowerable("DynamicQuantizeLinear from float32 to uint8 is supported")
    if not (scale and zp):
        raise NotLowerable("DynamicQuantizeLinear needs its scale and zero-point outputs")
    n = math.prod(shape_of(ctx, x))
    call = Call(K.dynamic_quantize_kernel(), (Buf(x), Buf(y), Buf(scale), Buf(zp), n))
    return LoweredNode(
        node.name, node.op, node.outputs, [call],
        semantics=f"{scale} = (max(0, max {x}) - min(0, min {x})) / 255; {zp} = round(-min / "
                  f"{scale}); {y}[i] = saturate(round_half_even({x}[i] / {scale}) + {zp})",
        note=f"{call.kernel.name}: one min/max pass, then quantization as onnxruntime does")


def runtime_zero_point_correction(ctx: LowerContext, zp: str, weights: np.ndarray,
                                  w_zp: int | np.ndarray, c: str, m: int, tag: str) -> Call:
    """The call subtracting zp * colsum[n] from the int32 product c ([m, n])."""
    dt = ctx.graph.type_of(zp).dtype
    if ctx.graph.type_of(zp).numel != 1:
        raise NotLowerable("a zero point computed at run time must be a scalar")
    zb = np.broadcast_to(np.asarray(w_zp, np.int64).reshape(-1), (weights.shape[1],))
    colsum = (weights.astype(np.int64) - zb).sum(axis=0)
    colsum = np.ascontiguousarray(colsum.astype(np.int32))
    return Call(K.zero_point_correction_kernel(dt),
                (Buf(c), Const(f"{tag}.colsum", colsum), Buf(zp), m, weights.shape[1]))
