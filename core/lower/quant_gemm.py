"""Lowerings of the quantized convolutions and matrix products onto the int8
GEMM (lower/igemm.py):

    QLinearConv, ConvInteger                  (ONNX)
    QLinearMatMul, MatMulInteger              (ONNX)
    QGemm                                     (com.microsoft, alpha 1)

acc = sum_k (x - x_zp) * (w - w_zp) in int32, exact; + int32 bias; then for the
QLinear forms onnxruntime's requantization

    y = saturate(round_half_even(float(acc) * ((x_scale * w_scale) / y_scale)) + y_zp)

with the multiplier computed in float32 in that order (per output channel for
per-channel weights). The Integer forms store acc. Weights are packed at compile
time by the GEMM; depthwise convolutions have their own kernel
(codegen/kernels/int8/quant_dwconv.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..codegen.kernels.int8.quant_dwconv import MAX_EXACT_TAPS, QDepthwiseSpec
from ..codegen.parallel import compiled_in_sizes
from ..errors import NotLowerable
from ..ir import DType, Node
from ..ir.quant import QParams, graph_consts, read_qparams, requant_scale, require_quant_dtype, slot
from ..program import (
    Buf,
    Call,
    Const,
    Im2col,
    IntGemm,
    IntMatrix,
    LowerContext,
    LoweredNode,
    Requant,
    Scratch,
)
from .broadcast import shape_of
from .conv import ConvShape, conv_shape
from .igemm import int_gemm_calls
from .quant_dynamic import (
    has_runtime_params,
    lower_runtime_qmatmul,
    runtime_zero_point_correction,
)
from .registry import lowers


@dataclass(frozen=True)
class QuantProduct:
    """One quantized conv or matmul, whatever op it came from."""

    x: str
    x_zp: int | np.ndarray
    w: str
    w_zp: int | np.ndarray
    y: str
    bias: np.ndarray | None  # int32 per output channel
    requant: Requant | None  # None: int32 output


# ---------------------------------------------------------------------------
# Convolutions


@lowers("QLinearConv")
def lower_qlinear_conv(node: Node, ctx: LowerContext) -> LoweredNode:
    g = ctx.graph
    x, w, y = node.inputs[0], node.inputs[3], node.outputs[0]
    xq, wq, yq = _qlinear_params(ctx, node, (x, 1, 2), (w, 4, 5), (y, 6, 7))
    bias = _bias(ctx, slot(node, 8))
    scale = requant_scale(xq.scalar_scale, wq.scale, yq.scalar_scale)
    rq = Requant(scale, yq.scalar_zp, g.type_of(y).dtype.name, "row")
    p = QuantProduct(x, xq.scalar_zp, w, _zp(wq), y, bias, rq)
    return _lower_conv(node, ctx, p)


@lowers("ConvInteger")
def lower_conv_integer(node: Node, ctx: LowerContext) -> LoweredNode:
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    xz, wz = _integer_zero_points(ctx, node, x, w)
    return _lower_conv(node, ctx, QuantProduct(x, xz, w, wz, y, None, None))


def _lower_conv(node: Node, ctx: LowerContext, p: QuantProduct) -> LoweredNode:
    s = conv_shape(node, shape_of(ctx, p.x), shape_of(ctx, p.w))
    if math.prod(shape_of(ctx, p.y)) != s.n * s.co * s.ho * s.wo:
        raise NotLowerable(f"output shape {shape_of(ctx, p.y)} disagrees with the conv")
    weights = ctx.graph.constants.get(p.w)
    if weights is None:
        raise NotLowerable(f"conv weights {p.w} are not a constant")
    if s.depthwise and s.kh * s.kw <= MAX_EXACT_TAPS:
        calls, note = _depthwise_calls(ctx, node.name, s, p, weights)
        return _node(node, calls, _conv_text(p, s), note)
    calls, notes, lowering = [], [], None
    for grp in range(s.group):
        gemm = _conv_group_gemm(ctx, s, p, weights, grp)
        lowering = int_gemm_calls(ctx, gemm, f"{node.name}.g{grp}")
        calls += lowering.calls
        notes.append(lowering.note)
    note = f"int8 GEMM per group ({s.group}), {'rows of X' if s.pointwise else 'im2col'}: " \
           f"{notes[0]}"
    return _node(node, calls, _conv_text(p, s), note, lowering)


def _conv_group_gemm(ctx: LowerContext, s: ConvShape, p: QuantProduct, weights: np.ndarray,
                     grp: int) -> IntGemm:
    """Y[co, pixel] = W[co, (ci, ky, kx)] @ im2col(X) for one group."""
    g = ctx.graph
    rows = slice(grp * s.cog, (grp + 1) * s.cog)
    x_dt, w_dt = g.type_of(p.x).dtype, g.type_of(p.w).dtype
    out_size = 4 if p.requant is None else 1
    pixels = s.ho * s.wo
    a = IntMatrix(w_dt.name, const=weights.reshape(s.co, s.k)[rows],
                  zero_point=_rows(p.w_zp, rows))
    x_buf = Buf(p.x, grp * s.cig * s.h * s.w * x_dt.itemsize)
    if s.pointwise:
        b = IntMatrix(x_dt.name, buf=x_buf, row_stride=s.h * s.w, col_stride=1,
                      zero_point=p.x_zp)
    else:
        geo = Im2col(s.cig, s.h, s.w, s.kh, s.kw, s.sh, s.sw, s.dh, s.dw, s.ph, s.pw, s.ho, s.wo)
        b = IntMatrix(x_dt.name, buf=x_buf, zero_point=p.x_zp, im2col=geo)
    rq = p.requant
    if rq is not None and np.ndim(rq.scale):
        rq = Requant(rq.scale[rows], rq.zero_point, rq.dtype, "row")
    return IntGemm(s.cog, pixels, s.k, a, b, Buf(p.y, grp * s.cog * pixels * out_size), pixels,
                   bias=None if p.bias is None else p.bias[rows], bias_axis="row", requant=rq,
                   batch=s.n, b_bstride=s.c * s.h * s.w, c_bstride=s.co * pixels)


def _depthwise_calls(ctx: LowerContext, tag: str, s: ConvShape, p: QuantProduct,
                     weights: np.ndarray) -> tuple[list[Call], str]:
    g = ctx.graph
    taps = s.kh * s.kw
    w_zp = np.broadcast_to(np.asarray(p.w_zp, np.int64).reshape(-1, 1), (s.co, 1))
    w = (weights.reshape(s.co, taps).astype(np.int64) - w_zp).astype(np.float32)
    bias = p.bias if p.bias is not None else np.zeros(s.co, np.int32)
    rq = p.requant
    scale = np.broadcast_to(np.asarray(rq.scale if rq else 1.0, np.float32), (s.co,))
    out = g.type_of(p.y).dtype
    spec = QDepthwiseSpec(s.kh, s.kw, s.sh, s.sw, s.dh, s.dw, ctx.target.f32_lanes,
                          g.type_of(p.x).dtype, out, threads=ctx.target.threads)
    hp, wp = spec.padded_plane(s.ho, s.wo)
    sizes = (s.n, s.c, s.co // s.c, s.h, s.w, s.ph, s.pw, s.ho, s.wo, hp, wp, int(p.x_zp),
             int(rq.zero_point) if rq else 0)
    spec = replace(spec, geometry=compiled_in_sizes(sizes, spec.threads))
    args = (Buf(p.x), Const(f"{tag}.w", np.ascontiguousarray(w)),
            Const(f"{tag}.bias", np.ascontiguousarray(bias, np.int32)),
            Const(f"{tag}.scale", np.ascontiguousarray(scale)), Buf(p.y),
            Scratch(f"{tag}.pad", spec.pad_bytes(s.ho, s.wo)), *sizes)
    note = (f"{spec.name}: direct depthwise, exact integer sums in float32 FMAs over a "
            f"padded plane, {4}-row tiles")
    return [Call(spec.kernel(), args)], note


def _rows(zp: int | np.ndarray, rows: slice) -> int | np.ndarray:
    return zp[rows] if np.ndim(zp) else zp


def _conv_text(p: QuantProduct, s: ConvShape) -> str:
    acc = (f"acc[n,co,y,x] = sum (x[n,ci,y*{s.sh}+ky*{s.dh}-{s.ph},x*{s.sw}+kx*{s.dw}-{s.pw}]"
           f" - x_zp) * (w[co,ci,ky,kx] - w_zp[co])")
    return acc + _tail_text(p)


def _tail_text(p: QuantProduct) -> str:
    text = " + bias[co]" if p.bias is not None else ""
    if p.requant is None:
        return text + "; y = acc (int32)"
    return text + "; y = saturate(round_half_even(acc * (x_scale*w_scale/y_scale)) + y_zp)"


# ---------------------------------------------------------------------------
# Matrix products


@lowers("QLinearMatMul")
def lower_qlinear_matmul(node: Node, ctx: LowerContext) -> LoweredNode:
    if has_runtime_params(ctx, node):
        return lower_runtime_qmatmul(node, ctx)
    a, b, y = node.inputs[0], node.inputs[3], node.outputs[0]
    aq, bq, yq = _qlinear_params(ctx, node, (a, 1, 2), (b, 4, 5), (y, 6, 7))
    scale = requant_scale(aq.scalar_scale, bq.scale, yq.scalar_scale)
    rq = Requant(scale, yq.scalar_zp, ctx.graph.type_of(y).dtype.name, "col")
    return _lower_matmul(node, ctx, QuantProduct(a, aq.scalar_zp, b, _zp(bq), y, None, rq))


@lowers("MatMulInteger")
def lower_matmul_integer(node: Node, ctx: LowerContext) -> LoweredNode:
    """A zero point of A computed at run time (DynamicQuantizeLinear) is applied
    after the product, from B's column sums (quant_dynamic.py)."""
    a, b, y = node.inputs[0], node.inputs[1], node.outputs[0]
    a_zp = slot(node, 2)
    runtime_zp = bool(a_zp) and not ctx.graph.is_const(a_zp)
    if has_runtime_params(ctx, node) and not (runtime_zp and ctx.graph.is_const(b)):
        return lower_runtime_qmatmul(node, ctx)
    az, bz = _integer_zero_points(ctx, node, a, b, skip_a=runtime_zp)
    if np.ndim(az):
        raise NotLowerable("per-row zero points of A are not supported")
    weights = ctx.graph.constants.get(b)
    if runtime_zp and weights is None:
        raise NotLowerable("a run-time zero point of A needs a constant B")
    ln = _lower_matmul(node, ctx, QuantProduct(a, az, b, bz, y, None, None))
    if runtime_zp:
        m = math.prod(shape_of(ctx, a)[:-1])
        ln.calls.append(runtime_zero_point_correction(ctx, a_zp, weights, bz, y, m, node.name))
        ln.semantics += f"; - {a_zp} * sum_k (b[k,n] - b_zp[n])"
        ln.note += "; run-time zero point of A subtracted with compile-time column sums of B"
    return ln


@lowers("com.microsoft.QGemm")
def lower_qgemm(node: Node, ctx: LowerContext) -> LoweredNode:
    if float(node.attr("alpha", 1.0)) != 1.0 or int(node.attr("transA", 0)):
        raise NotLowerable("QGemm with alpha != 1 or transA is not supported")
    if not slot(node, 7):
        raise NotLowerable("QGemm with a float output (no y_scale) is not supported")
    a, b, y = node.inputs[0], node.inputs[3], node.outputs[0]
    aq, bq, yq = _qlinear_params(ctx, node, (a, 1, 2), (b, 4, 5), (y, 7, 8))
    scale = requant_scale(aq.scalar_scale, bq.scale, yq.scalar_scale)
    rq = Requant(scale, yq.scalar_zp, ctx.graph.type_of(y).dtype.name, "col")
    p = QuantProduct(a, aq.scalar_zp, b, _zp(bq), y, _bias(ctx, slot(node, 6)), rq)
    return _lower_matmul(node, ctx, p, trans_b=bool(node.attr("transB", 0)))


def _lower_matmul(node: Node, ctx: LowerContext, p: QuantProduct,
                  trans_b: bool = False) -> LoweredNode:
    g = ctx.graph
    a_shape, b_shape = shape_of(ctx, p.x), shape_of(ctx, p.w)
    if len(b_shape) != 2 or len(a_shape) < 1:
        raise NotLowerable(f"quantized MatMul needs a 2-D B, got {b_shape}")
    k, n = b_shape[::-1] if trans_b else b_shape
    if a_shape[-1] != k:
        raise NotLowerable(f"inner dimensions differ: {a_shape} @ {b_shape}")
    m = math.prod(a_shape[:-1])  # a batch of A against one B is one tall GEMM
    x_dt, w_dt = g.type_of(p.x).dtype, g.type_of(p.w).dtype
    a = IntMatrix(x_dt.name, buf=Buf(p.x), row_stride=k, col_stride=1, zero_point=p.x_zp)
    weights = g.constants.get(p.w)
    if weights is not None:
        b = IntMatrix(w_dt.name, const=weights.T if trans_b else weights, zero_point=p.w_zp)
    else:
        strides = (1, k) if trans_b else (n, 1)
        b = IntMatrix(w_dt.name, buf=Buf(p.w), row_stride=strides[0], col_stride=strides[1],
                      zero_point=p.w_zp)
    gemm = IntGemm(m, n, k, a, b, Buf(p.y), n, bias=p.bias, bias_axis="col", requant=p.requant)
    lowering = int_gemm_calls(ctx, gemm, node.name)
    text = "acc[m,n] = sum_k (a[m,k] - a_zp) * (b[k,n] - b_zp[n])" + _tail_text(p)
    return _node(node, lowering.calls, text, f"int8 GEMM {m}x{n}x{k}: {lowering.note}",
                 lowering)


# ---------------------------------------------------------------------------
# Parameters


def _qlinear_params(ctx: LowerContext, node: Node, *specs: tuple[str, int, int]
                    ) -> list[QParams]:
    """(value, scale slot, zero-point slot) -> checked parameters, in order x, w, y."""
    g = ctx.graph
    out = []
    for value, s_k, z_k in specs:
        dt = g.type_of(value).dtype
        require_quant_dtype(dt, value)
        out.append(read_qparams(graph_consts(g), node.inputs[s_k], slot(node, z_k), dt))
    x, _, y = out
    if not (x.per_tensor and y.per_tensor):
        raise NotLowerable("input and output must be quantized per tensor")
    return out


def _integer_zero_points(ctx: LowerContext, node: Node, x: str, w: str, skip_a: bool = False
                         ) -> tuple[int | np.ndarray, int | np.ndarray]:
    """The constant zero points of x and w (0 when absent or, with skip_a, for x)."""
    g = ctx.graph
    for v in (x, w):
        require_quant_dtype(g.type_of(v).dtype, v)
    if g.type_of(node.outputs[0]).dtype != DType.int32:
        raise NotLowerable("the integer forms output int32")
    zps = []
    for k in (2, 3):
        name = "" if (k == 2 and skip_a) else slot(node, k)
        z = g.constants.get(name) if name else np.zeros(())
        if z is None:
            raise NotLowerable(f"zero point {name} is not a constant")
        z = np.asarray(z).astype(np.int64)
        zps.append(int(z.reshape(-1)[0]) if z.size == 1 else z.reshape(-1))
    return zps[0], zps[1]


def _zp(q: QParams) -> int | np.ndarray:
    return q.scalar_zp if q.per_tensor else q.zero_point


def _bias(ctx: LowerContext, name: str) -> np.ndarray | None:
    if not name:
        return None
    b = ctx.graph.constants.get(name)
    if b is None:
        raise NotLowerable(f"bias {name} is not a constant")
    if b.dtype != np.int32 or b.ndim > 1:
        raise NotLowerable(f"bias {name} must be a 1-D int32 constant")
    return b.reshape(-1)


def _node(node: Node, calls: list[Call], semantics: str, note: str,
          lowering=None) -> LoweredNode:
    ln = LoweredNode(node.name, node.qualified_op, node.outputs, calls, semantics=semantics,
                     note=note)
    if lowering is not None:
        ln.intrinsic, ln.rejected = lowering.intrinsic, lowering.rejected
    return ln
