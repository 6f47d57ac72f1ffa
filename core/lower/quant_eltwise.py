"""Lowerings of quantized elementwise ops and pooling (kernels:
codegen/kernels/int8/quant_eltwise.py):

    com.microsoft.QLinearAdd                 onnxruntime's MLAS formula
    tinyc.QLinearAdd                         the same inputs; attrs `formula`
        ("mlas" or "float": an Add onnxruntime runs in float between QDQ pairs)
        and `flip` (1: int8 data computed as onnxruntime's uint8 conversion does)
    com.microsoft.QLinearGlobalAveragePool   (NCHW)
    com.microsoft.QLinearAveragePool         when the window is the whole image
    com.microsoft.QLinearConcat              copies, or requantization per input
    tinyc.MaxPool8                           MaxPool of 8-bit data (quant_canonicalize
                                             renames MaxPool so; exact, as max commutes
                                             with quantization)
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..codegen.kernels.int8 import quant_eltwise as K
from ..codegen.kernels.int8.quant import requantize_kernel
from ..codegen.kernels.int8.quant_dwconv import QDepthwiseSpec
from ..errors import NotLowerable
from ..ir import DType, Node
from ..ir.quant import (
    F32,
    QParams,
    average_scale,
    graph_consts,
    read_qparams,
    require_quant_dtype,
    slot,
)
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from .broadcast import broadcast_output, index_expr, nary_plan, same_shape, shape_of
from .misc import copy_call
from .pool_windows import AxisWindows, axis_windows
from .registry import lowers


@lowers("com.microsoft.QLinearAdd", "tinyc.QLinearAdd")
def lower_qlinear_add(node: Node, ctx: LowerContext) -> LoweredNode:
    a, b, y = node.inputs[0], node.inputs[3], node.outputs[0]
    aq, bq, yq = _params(ctx, node, (a, 1, 2), (b, 4, 5), (y, 6, 7))
    if not aq.dtype == bq.dtype == yq.dtype:
        raise NotLowerable("QLinearAdd's inputs and output must share one dtype")
    formula = str(node.attr("formula", "mlas"))
    flip = bool(node.attr("flip", 0)) and aq.dtype == DType.int8
    if formula not in K.ADD_FORMULAS:
        raise NotLowerable(f"unknown QLinearAdd formula {formula!r}")
    out = broadcast_output(ctx, [a, b], y)
    plan = nary_plan(out, [shape_of(ctx, a), shape_of(ctx, b)])
    kinds = "sv" if plan.kinds == "ss" else plan.kinds  # MLAS: a scalar A with a 1-long B
    if len(plan.outer) > K.MAX_OUTER_DIMS:
        raise NotLowerable(f"broadcast needs {len(plan.outer)} outer dims")
    pad = [(1, 0, 0, 0)] * (K.MAX_OUTER_DIMS - len(plan.outer))
    table = Const(f"{node.name}.plan", np.array(pad + list(plan.outer), np.int64))
    shift = 128 if flip else 0
    params = _mlas_params(aq, bq, yq, shift) if formula == "mlas" else _float_params(aq, bq, yq)
    kernel = K.qadd_kernel(formula, aq.dtype, kinds, flip)
    call = Call(kernel, (Buf(a), Buf(b), Buf(y), table, plan.inner, *params))
    how = {"mlas": "MLAS's fused multiply-adds", "float": "dequantize, add, quantize in float"}
    idx = ",".join(f"i{k}" for k in range(len(out)))
    terms = [f"{v}[{index_expr(shape_of(ctx, v), out)}]" for v in (a, b)]
    return LoweredNode(
        node.name, node.qualified_op, node.outputs, [call],
        semantics=f"{y}[{idx}] = requantized {terms[0]} + {terms[1]}",
        in_place=tuple(v for v in (a, b) if same_shape(shape_of(ctx, v), out)),
        note=f"{kernel.name}: {how[formula]}{', as uint8 (x ^ 0x80)' if flip else ''}")


def _mlas_params(aq: QParams, bq: QParams, yq: QParams, shift: int) -> tuple[float, ...]:
    """r_ac, r_bc, fixed = c_zp - fma(r_ac, a_zp, r_bc * b_zp) (MLAS's order; a C
    compiler contracts the expression into that FMA), zero points shifted by `shift`."""
    r_ac = F32(aq.scalar_scale / yq.scalar_scale)
    r_bc = F32(bq.scalar_scale / yq.scalar_scale)
    zc, za, zb = (F32(q.scalar_zp + shift) for q in (yq, aq, bq))
    fixed = F32(zc - fma_f32(r_ac, za, F32(r_bc * zb)))
    return float(r_ac), float(r_bc), float(fixed)


def _float_params(aq: QParams, bq: QParams, yq: QParams) -> tuple[float | int, ...]:
    return (float(aq.scalar_scale), aq.scalar_zp, float(bq.scalar_scale), bq.scalar_zp,
            float(yq.scalar_scale), yq.scalar_zp)


def fma_f32(a: np.float32, b: np.float32, c: np.float32) -> np.float32:
    """a * b + c rounded once to float32 (what a hardware FMA gives)."""
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    near = np.float32(float(exact))  # may be one float32 off: two roundings
    candidates = [np.nextafter(near, F32(-np.inf)), near, np.nextafter(near, F32(np.inf))]
    return min(candidates, key=lambda v: (abs(Fraction(float(v)) - exact),
                                          int(np.array(v).view(np.int32)) & 1))


@lowers("com.microsoft.QLinearGlobalAveragePool", "com.microsoft.QLinearAveragePool")
def lower_qlinear_global_average(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    xq, yq = _params(ctx, node, (x, 1, 2), (y, 3, 4))
    shape = shape_of(ctx, x)
    if len(shape) < 3 or int(node.attr("channels_last", 0)):
        raise NotLowerable("only NCHW (channels_last=0) average pooling is supported")
    if node.op == "QLinearAveragePool" and not _whole_image_window(node, shape):
        raise NotLowerable("QLinearAveragePool is supported when its window is the image")
    count = math.prod(shape[2:])
    scale = average_scale(xq.scalar_scale, yq.scalar_scale, count)
    kernel = K.global_average_kernel(xq.dtype, yq.dtype)
    call = Call(kernel, (Buf(x), Buf(y), shape[0] * shape[1], count, -xq.scalar_zp * count,
                         float(scale), yq.scalar_zp))
    return LoweredNode(node.name, node.qualified_op, node.outputs, [call],
                       semantics=f"{y}[n,c] = saturate(round_half_even((sum_i {x}[n,c,i] - "
                                 f"x_zp*{count}) * x_scale/(y_scale*{count})) + y_zp)",
                       note=f"{kernel.name}: int32 plane sums, MLAS's requantization")


def _whole_image_window(node: Node, shape: tuple[int, ...]) -> bool:
    spatial = list(shape[2:])
    pads = list(node.attr("pads", [0] * 2 * len(spatial)))
    auto_pad = node.attr("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    return list(node.attr("kernel_shape", [])) == spatial and not any(pads) \
        and auto_pad in ("NOTSET", "VALID", "")


def _params(ctx: LowerContext, node: Node, *specs: tuple[str, int, int]) -> list[QParams]:
    g = ctx.graph
    out = []
    for value, s_k, z_k in specs:
        dt = g.type_of(value).dtype
        require_quant_dtype(dt, value)
        q = read_qparams(graph_consts(g), node.inputs[s_k], slot(node, z_k), dt)
        if not q.per_tensor:
            raise NotLowerable(f"{value} must be quantized per tensor")
        out.append(q)
    return out


@lowers("tinyc.MaxPool8")
def lower_max_pool8(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    dt = ctx.graph.type_of(x).dtype
    require_quant_dtype(dt, x)
    if len(node.outputs) > 1 and node.outputs[1]:
        raise NotLowerable("MaxPool's Indices output is not supported")
    shape, out_shape = shape_of(ctx, x), shape_of(ctx, y)
    rows, cols = _pool_windows(node, shape, out_shape)
    spec = QDepthwiseSpec(rows.kernel, cols.kernel, rows.stride, cols.stride, rows.dilation,
                          cols.dilation, ctx.target.f32_lanes, dt, dt, reduce="max",
                          threads=ctx.target.threads)
    hp, wp = spec.padded_plane(rows.out, cols.out)
    channels = shape[1]
    unused = Const(f"{node.name}.unused", np.zeros(channels, np.int32))
    pad = Scratch(f"{node.name}.pad", spec.pad_bytes(rows.out, cols.out))
    call = Call(spec.kernel(), (Buf(x), unused, unused, unused, Buf(y), pad, shape[0],
                                channels, 1, rows.size, cols.size, rows.pad_begin,
                                cols.pad_begin, rows.out, cols.out, hp, wp, 0, 0))
    return LoweredNode(node.name, node.qualified_op, node.outputs, [call],
                       semantics=f"{y}[n,c,oy,ox] = max_(ky,kx) {x}[n,c,oy*{rows.stride}-"
                                 f"{rows.pad_begin}+ky*{rows.dilation},ox*{cols.stride}-"
                                 f"{cols.pad_begin}+kx*{cols.dilation}]",
                       note=f"{spec.name}: padded plane (-inf outside), vector max over taps")


def _pool_windows(node: Node, shape: tuple[int, ...], out_shape: tuple[int, ...]
                  ) -> tuple[AxisWindows, AxisWindows]:
    if len(shape) != 4:
        raise NotLowerable("MaxPool of 8-bit data is supported in 2-D")
    kernel = list(node.attr("kernel_shape"))
    strides = list(node.attr("strides", [1, 1]))
    dilations = list(node.attr("dilations", [1, 1]))
    pads = list(node.attr("pads", [0, 0, 0, 0]))
    auto_pad = node.attr("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    ceil = bool(node.attr("ceil_mode", 0))
    axes = tuple(axis_windows(shape[2 + a], kernel[a], strides[a], dilations[a],
                              (pads[a], pads[2 + a]), auto_pad, ceil, out_shape[2 + a])
                 for a in range(2))
    if tuple(a.out for a in axes) != tuple(out_shape[2:]):
        raise NotLowerable(f"output shape {out_shape} differs from the pool's")
    return axes


@lowers("com.microsoft.QLinearConcat")
def lower_qlinear_concat(node: Node, ctx: LowerContext) -> LoweredNode:
    """(y_scale, y_zp, then x, x_scale, x_zp per input). onnxruntime maps an input
    whose parameters differ from the output's through a table of
    quantize(dequantize(v)), the requantize kernel's formula; equal ones are copied."""
    y = node.outputs[0]
    out = shape_of(ctx, y)
    axis = int(node.attr("axis", 0))
    axis = axis + len(out) if axis < 0 else axis
    (yq,) = _params(ctx, node, (y, 0, 1))
    outer, inner = math.prod(out[:axis]), math.prod(out[axis + 1:])
    calls, start = [], 0
    for k in range(2, len(node.inputs), 3):
        x = node.inputs[k]
        (xq,) = _params(ctx, node, (x, k + 1, k + 2))
        part = shape_of(ctx, x)[axis] * inner
        calls += _concat_part(node, x, xq, yq, outer, part, out[axis] * inner, start, k)
        start += part
    return LoweredNode(node.name, node.qualified_op, node.outputs, calls,
                       semantics=f"{y}[..., offset_k + j, ...] = requantized x_k[..., j, ...] "
                                 f"along axis {axis}",
                       note="copies where parameters agree, quantize(dequantize(x)) elsewhere")


def _concat_part(node: Node, x: str, xq: QParams, yq: QParams, outer: int, part: int,
                 row: int, start: int, k: int) -> list[Call]:
    if xq.dtype != yq.dtype:
        raise NotLowerable("QLinearConcat's inputs and output must share one dtype")
    if xq.same_as(yq):
        return [copy_call(1, Buf(x), Buf(node.outputs[0], start), [(outer, part, row)], part, 1,
                          f"{node.name}.part{k}")]
    kernel = requantize_kernel(xq.dtype, yq.dtype)
    params = (float(xq.scalar_scale), xq.scalar_zp, float(yq.scalar_scale), yq.scalar_zp)
    if isinstance(outer, int):
        return [Call(kernel, (Buf(x, o * part), Buf(node.outputs[0], o * row + start), part,
                              *params)) for o in range(outer)]
    # a run-time count of rows (a symbolic batch): one call per row is not possible;
    # all of x is requantized into scratch, then its rows are copied into place
    tmp = Scratch(f"{node.name}.part{k}", outer * part)
    return [Call(kernel, (Buf(x), tmp, outer * part, *params)),
            copy_call(1, tmp, Buf(node.outputs[0], start), [(outer, part, row)], part, 1,
                      f"{node.name}.part{k}")]
