"""Graph nodes -> engine jobs. A node the engine cannot run raises Unsupported
with the reason, which the partitioner shows (tinyc explain).

Quantized convolutions and matrix products (ONNX QLinearConv / QLinearMatMul)
become one GemmJob each; a Relu or Clip right after one folds into its output
clamp (the fused post-op).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .engine import EngineConfig
from .jobs import RANGES, ConvGeometry, GemmJob

# every op tinyc's CPU path lowers onto one int8 GEMM (QGemm: onnxruntime's contrib op)
GEMM_OPS = ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "com.microsoft.QGemm")


class Unsupported(ValueError):
    """The node does not map onto the engine; the message says why."""


def job_for(node: Node, graph: Graph) -> GemmJob:
    """The job tinyc's CPU lowering describes for the node (the same constants, so
    the same bits), or where tinyc has no CPU lowering for it, one read from the
    ONNX node here."""
    if node.qualified_op not in GEMM_OPS:
        raise Unsupported(f"{node.qualified_op} is not a layer the engine computes")
    from .cpu_lowering import job_from_cpu_lowering

    job = job_from_cpu_lowering(node, graph)
    return job if job is not None else _job_from_onnx(node, graph)


def _job_from_onnx(node: Node, graph: Graph) -> GemmJob:
    if node.qualified_op == "QLinearConv":
        return _qlinear_conv(node, graph)
    if node.qualified_op == "QLinearMatMul":
        return _qlinear_matmul(node, graph)
    raise Unsupported(f"{node.qualified_op} needs tinyc's CPU lowering to describe its GEMM")


def fold_activation(job: GemmJob, node: Node, graph: Graph) -> GemmJob:
    """A Relu or Clip applied to the job's 8-bit output, as its fused clamp."""
    if job.scale is None or node.qualified_op not in ("Relu", "Clip"):
        raise Unsupported(f"{node.qualified_op} after {job.name} is not a fused post-op")
    lo, hi = RANGES[job.out_dtype]
    if node.qualified_op == "Relu":
        bounds = (max(lo, 0), hi)
    else:
        bounds = (_const_int(graph, node, 1, lo), _const_int(graph, node, 2, hi))
    if job.clamp is not None:
        bounds = (max(bounds[0], job.clamp[0]), min(bounds[1], job.clamp[1]))
    return _replace(job, clamp=bounds, dest=node.outputs[0])


def check_limits(job: GemmJob, e: EngineConfig) -> str | None:
    lim = e.limits
    g = job.geometry
    if job.k > lim.max_channels * (g.kh * g.kw if g else 1) or job.n > lim.max_channels:
        return f"{job.k} x {job.n} channels exceed the engine's limit of {lim.max_channels}"
    if g is None:
        return None
    if max(g.kh, g.kw) > lim.max_kernel:
        return f"a {g.kh}x{g.kw} kernel exceeds the engine's limit of {lim.max_kernel}"
    if max(g.sh, g.sw) > lim.max_stride:
        return f"stride {max(g.sh, g.sw)} exceeds the engine's limit of {lim.max_stride}"
    if max(g.dh, g.dw) > lim.max_dilation:
        return f"dilation {max(g.dh, g.dw)} exceeds the engine's limit of {lim.max_dilation}"
    return None


# ---- ONNX QLinearConv: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp[, B]


def _qlinear_conv(node: Node, graph: Graph) -> GemmJob:
    x, xs, xz, w, ws, wz, ys, yz = node.inputs[:8]
    bias = node.inputs[8] if len(node.inputs) > 8 and node.inputs[8] else None
    if int(node.attr("group", 1)) != 1:
        raise Unsupported("grouped convolutions do not map onto the GEMM array")
    xt, yt = graph.type_of(x), graph.type_of(node.outputs[0])
    if xt.rank != 4:
        raise Unsupported(f"only 2-D convolutions run on the engine (input rank {xt.rank})")
    weights = _const(graph, w, node)
    co, ci, kh, kw = weights.shape
    n, _, h, wd = (int(d) for d in xt.shape)
    ho, wo = int(yt.shape[2]), int(yt.shape[3])
    pads = list(node.attr("pads") or [0, 0, 0, 0])
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise Unsupported(f"asymmetric padding {pads} is not supported by the im2col DMA")
    sh, sw = node.attr("strides") or [1, 1]
    dh, dw = node.attr("dilations") or [1, 1]
    geometry = ConvGeometry(ci, h, wd, kh, kw, sh, sw, dh, dw, pads[0], pads[1], ho, wo)
    scale = _requant_scale(graph, node, xs, ws, ys, co)
    return GemmJob(
        node.name, ho * wo, co, ci * kh * kw, x, node.outputs[0],
        weights.reshape(co, -1).T.copy(), xt.dtype.name, _scalar_int(graph, xz, node),
        _per_channel_int(graph, wz, co, node), _bias(graph, bias, co, node), scale,
        _scalar_int(graph, yz, node), yt.dtype.name, None, n, geometry, True)


# ---- ONNX QLinearMatMul: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp


def _qlinear_matmul(node: Node, graph: Graph) -> GemmJob:
    a, as_, az, b, bs, bz, ys, yz = node.inputs[:8]
    weights = _const(graph, b, node)
    if weights.ndim != 2:
        raise Unsupported("the right operand must be a constant matrix (rank 2)")
    k, n = weights.shape
    at, yt = graph.type_of(a), graph.type_of(node.outputs[0])
    return GemmJob(node.name, at.numel // k, n, k, a, node.outputs[0], weights.copy(),
                   at.dtype.name, _scalar_int(graph, az, node),
                   _per_channel_int(graph, bz, n, node), None,
                   _requant_scale(graph, node, as_, bs, ys, n), _scalar_int(graph, yz, node),
                   yt.dtype.name)


def _requant_scale(graph: Graph, node: Node, xs: str, ws: str, ys: str, n: int) -> np.ndarray:
    """x_scale * w_scale / y_scale in float32, as onnxruntime computes it."""
    x = np.float32(_const(graph, xs, node).reshape(()))
    w = _const(graph, ws, node).astype(np.float32).reshape(-1)
    y = np.float32(_const(graph, ys, node).reshape(()))
    return np.ascontiguousarray(np.broadcast_to((x * w) / y, (n,)).astype(np.float32))


def _const(graph: Graph, value: str, node: Node) -> np.ndarray:
    if not graph.is_const(value):
        raise Unsupported(f"{value} of {node.name} is not a constant; the engine needs "
                          "weights, scales and zero points known when compiling")
    return graph.const(value)


def _scalar_int(graph: Graph, value: str, node: Node) -> int:
    if not value:
        return 0
    arr = _const(graph, value, node)
    if arr.size != 1:
        raise Unsupported(f"{value}: per-channel activation zero points are not supported")
    return int(arr.reshape(()))


def _per_channel_int(graph: Graph, value: str, n: int, node: Node) -> np.ndarray:
    if not value:
        return np.zeros(n, np.int32)
    arr = _const(graph, value, node).astype(np.int32).reshape(-1)
    return np.ascontiguousarray(np.broadcast_to(arr, (n,)))


def _bias(graph: Graph, value: str | None, n: int, node: Node) -> np.ndarray | None:
    return None if value is None else _per_channel_int(graph, value, n, node)


def _const_int(graph: Graph, node: Node, index: int, default: int) -> int:
    if len(node.inputs) <= index or not node.inputs[index]:
        return default
    return int(_const(graph, node.inputs[index], node).reshape(()))


def _replace(job: GemmJob, **changes) -> GemmJob:
    import dataclasses

    return dataclasses.replace(job, **changes)
