"""Lowerings of MaxPool, AveragePool and LpPool (1-D, 2-D, 3-D...), GlobalAveragePool,
GlobalMaxPool.

ONNX's window rules are resolved per axis at compile time (pool_windows.py);
the kernel (codegen/kernels/ops/pool.py) only walks the windows. MaxPool with its
Indices output is lowered by pool_indices.py.
"""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels.ops import pool as K
from ..errors import ModelError, NotLowerable
from ..ir import Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode
from .elementwise import require_f32, shape_of
from .pool_indices import lower_max_pool_with_indices
from .pool_windows import AxisWindows, kernel_geometry, pool_windows, vector_axis_layout
from .registry import lowers


def _kind(node: Node) -> str:
    if node.op == "MaxPool":
        return "max"
    if node.op == "AveragePool":
        return "avg"
    p = node.attr("p", 2)
    if isinstance(p, float) and p.is_integer():  # opset 1 declared p a float
        p = int(p)
    if not isinstance(p, int) or p < 1:
        raise NotLowerable(f"LpPool with p={p!r}: only integer p >= 1 is supported")
    return f"lp{p}"


def _row_scales(outer: list[AxisWindows], include_pad: bool) -> np.ndarray:
    """1/count of each output row within a plane: the outer axes' factors multiplied
    (a window is a box, so its tap count is the product of per-axis counts)."""
    scales = np.ones(1, np.float32)
    for ax in outer:
        scales = np.outer(scales, ax.inv_counts(include_pad)).reshape(-1)
    return scales.astype(np.float32)


@lowers("MaxPool", "AveragePool", "LpPool")
def lower_pool(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    require_f32(node, ctx, [x, y])
    shape, out_shape = shape_of(ctx, x), shape_of(ctx, y)
    spatial = pool_windows(node, shape, out_shape)
    if len(node.outputs) > 1 and node.outputs[1]:
        if node.op != "MaxPool":
            raise ModelError(f"{node.op} node '{node.name}' has a second output")
        return lower_max_pool_with_indices(node, ctx, spatial)
    kind = _kind(node)
    axes = vector_axis_layout(spatial)
    *outer, cols = axes
    ptrs = [Buf(x), Buf(y)]
    if kind == "avg":
        include_pad = bool(node.attr("count_include_pad", 0))
        ptrs += [Const(f"{node.name}.rscale", _row_scales(outer, include_pad)),
                 Const(f"{node.name}.cscale", cols.inv_counts(include_pad))]
    geometry = kernel_geometry(shape[0] * shape[1], axes)
    kernel = K.pool_kernel(kind, cols.stride, tuple(a.kernel for a in axes), cols.dilation,
                           outer=len(outer))
    call = Call(kernel, (*ptrs, *[geometry[g] for g in K.geometry(len(outer))]))
    return LoweredNode(
        node.name, node.op, node.outputs, [call], semantics=_semantics(kind, spatial),
        note=f"{kernel.name}: vectors along the last axis, window rows combined first, "
             "loads masked to the input plane")


def _semantics(kind: str, axes: list[AxisWindows]) -> str:
    taps = ",".join(f"k{a}<{ax.kernel}" for a, ax in enumerate(axes))
    at = ",".join(f"o{a}*{ax.stride}-{ax.pad_begin}+k{a}*{ax.dilation}"
                  for a, ax in enumerate(axes))
    outs = ",".join(f"o{a}" for a in range(len(axes)))
    if kind.startswith("lp"):
        p = kind[2:]
        return (f"y[n,c,{outs}] = (sum_({taps}) |x[n,c,{at}]|^{p})^(1/{p}) "
                "(taps outside x skipped)")
    reduce_ = "max" if kind == "max" else "mean"
    return f"y[n,c,{outs}] = {reduce_}_({taps}) x[n,c,{at}] (taps outside x skipped)"


@lowers("GlobalAveragePool", "GlobalMaxPool")
def lower_global_pool(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    require_f32(node, ctx, [x, y])
    shape = shape_of(ctx, x)
    if len(shape) < 3:
        raise NotLowerable(f"global pooling needs a spatial dim, input is {shape}")
    kind = "max" if node.op == "GlobalMaxPool" else "avg"
    n = math.prod(shape[2:])
    call = Call(K.global_pool_kernel(kind), (Buf(x), Buf(y), shape[0] * shape[1], n, 1.0 / n))
    reduce_ = "max" if kind == "max" else "mean"
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y[n,c] = {reduce_}_i x[n,c,i]",
                       note=f"{call.kernel.name}: vector accumulation over {n} elements per plane")
