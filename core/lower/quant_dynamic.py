"""Dynamic quantization (onnxruntime.quantization.quantize_dynamic's graphs):
DynamicQuantizeLinear, and MatMulInteger whose A zero point is computed at run
time (by DynamicQuantizeLinear): the int8 GEMM runs with a zero point of 0 and
C[m, n] -= a_zp * colsum[n] follows, with B's column sums from compile time.
Kernels: codegen/kernels/int8/quant_dynamic.py.
"""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels.int8 import quant_dynamic as K
from ..errors import NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode
from .broadcast import shape_of
from .registry import lowers


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


# input slots of (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp) per op ("" for none)
RUNTIME_SLOTS = {"QLinearMatMul": (0, 1, 2, 3, 4, 5, 6, 7), "MatMulInteger": (0, -1, 2, 1, -1, 3,
                                                                              -1, -1)}


def has_runtime_params(ctx: LowerContext, node: Node) -> bool:
    slots = RUNTIME_SLOTS[node.op]
    params = [slots[k] for k in (1, 2, 4, 5, 6, 7) if slots[k] >= 0]
    return any(_slot(node, k) and not ctx.graph.is_const(_slot(node, k)) for k in params)


def lower_runtime_qmatmul(node: Node, ctx: LowerContext) -> LoweredNode:
    """QLinearMatMul / MatMulInteger with scales or zero points given at run time."""
    g = ctx.graph
    names = [_slot(node, k) if k >= 0 else "" for k in RUNTIME_SLOTS[node.op]]
    a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp = names
    y = node.outputs[0]
    a_shape, b_shape = shape_of(ctx, a), shape_of(ctx, b)
    if len(a_shape) < 2 or len(b_shape) < 2 or a_shape[-1] != b_shape[-2]:
        raise NotLowerable(f"quantized MatMul of {a_shape} and {b_shape} is not supported")
    m, k, n = a_shape[-2], a_shape[-1], b_shape[-1]
    batch, a_bs, b_bs = _batching(a_shape, b_shape)
    dts = [g.type_of(v).dtype for v in (a, b, y)]
    for v in (a_s, b_s, y_s):
        if v and g.type_of(v).dtype != DType.float32:
            raise NotLowerable(f"scale {v} is {g.type_of(v).dtype.short} (float32 is supported)")
    per_col = bool(b_s and g.type_of(b_s).numel > 1) or bool(b_zp and g.type_of(b_zp).numel > 1)
    args = [_param(a_s, np.float32, node, "a_s", 1), _param(a_zp, dts[0].numpy, node, "a_zp", 1),
            _param(b_s, np.float32, node, "b_s", n if per_col else 1),
            _param(b_zp, dts[1].numpy, node, "b_zp", n if per_col else 1),
            _param(y_s, np.float32, node, "y_s", 1), _param(y_zp, dts[2].numpy, node, "y_zp", 1)]
    kernel = K.runtime_qmatmul_kernel(dts[0], dts[1], dts[2], per_col)
    call = Call(kernel, (Buf(a), Buf(b), Buf(y), *args, batch, m, n, k, a_bs, b_bs, m * n))
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"{y}[..,m,n] = sum_k ({a}[..,m,k] - a_zp) * ({b}[..,k,n] - "
                                 "b_zp[n]), requantized with parameters read at run time",
                       note=f"{kernel.name}: parameters are model inputs, plain loop nest")


def _slot(node: Node, k: int) -> str:
    return node.inputs[k] if len(node.inputs) > k else ""


def _batching(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, int, int]:
    """(batch, A's stride, B's stride) in elements: B 2-D is shared by every item."""
    items = math.prod(a[:-2])
    if len(b) == 2:
        return items, a[-2] * a[-1], 0
    if a[:-2] != b[:-2]:
        raise NotLowerable(f"batch dimensions {a[:-2]} and {b[:-2]} differ")
    return items, a[-2] * a[-1], b[-2] * b[-1]


def _param(name: str, dtype, node: Node, what: str, size: int) -> Buf | Const:
    """A model input or constant as is; an absent one as zero (scales: unused)."""
    if name:
        return Buf(name)
    return Const(f"{node.name}.{what}", np.zeros(size, dtype))
