"""Lowerings of MaxPool, AveragePool (1-D and 2-D), GlobalAveragePool, GlobalMaxPool.

ONNX's window rules (auto_pad, ceil_mode, count_include_pad, dilations) are
resolved here, per axis, into tables of clipped windows; the kernel
(codegen/kernels/ops/pool.py) only walks them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..codegen.kernels.ops import pool as K
from ..errors import NotLowerable
from ..ir import Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode
from .elementwise import require_f32, shape_of
from .registry import lowers


@dataclass(frozen=True)
class AxisWindows:
    """Pooling windows along one spatial axis."""

    size: int  # input extent
    kernel: int
    stride: int
    dilation: int
    pad_begin: int
    pad_end: int
    out: int

    def taps(self, o: int) -> range:
        """Input indices the window of output o covers, padding included."""
        start = o * self.stride - self.pad_begin
        return range(start, start + self.kernel * self.dilation, self.dilation)

    def inv_counts(self, include_pad: bool) -> np.ndarray:
        """1 / the number of taps an average divides by (ONNX: padding counts only
        with count_include_pad, and never the extra taps ceil_mode adds)."""
        lo, hi = (-self.pad_begin, self.size + self.pad_end) if include_pad else (0, self.size)
        counts = [sum(lo <= i < hi for i in self.taps(o)) for o in range(self.out)]
        return 1.0 / np.maximum(np.array(counts, np.float32), 1.0)


def axis_windows(size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int],
                 auto_pad: str, ceil_mode: bool, declared: int | None = None) -> AxisWindows:
    """The windows ONNX defines; `declared` is the output extent the graph states,
    accepted when it is what ceil_mode gives before onnxruntime's (and PyTorch's)
    rule that the last window start inside the input: onnx shape inference omits
    that rule, so graphs may carry either extent."""
    span = (kernel - 1) * dilation + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = -(-size // stride)
        total = max(0, (out - 1) * stride + span - size)
        begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        return AxisWindows(size, kernel, stride, dilation, begin, total - begin, out)
    if auto_pad == "VALID":
        pads = (0, 0)
    elif auto_pad not in ("NOTSET", ""):
        raise NotLowerable(f"unknown auto_pad {auto_pad!r}")
    room = size + pads[0] + pads[1] - span
    out = (-(-room // stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pads[0] and declared != out:
        out -= 1  # the last window must start inside the input or its leading padding
    return AxisWindows(size, kernel, stride, dilation, pads[0], pads[1], out)


def _windows(node: Node, shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[AxisWindows]:
    spatial = shape[2:]
    if len(spatial) not in (1, 2):
        raise NotLowerable(f"{len(spatial)}-D pooling is not supported (1-D and 2-D are)")
    rank = len(spatial)
    kernel = list(node.attr("kernel_shape"))
    strides = list(node.attr("strides", [1] * rank))
    dilations = list(node.attr("dilations", [1] * rank))
    pads = list(node.attr("pads", [0] * 2 * rank))
    auto_pad = node.attr("auto_pad", "NOTSET")
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    ceil_mode = bool(node.attr("ceil_mode", 0))
    return [axis_windows(spatial[a], kernel[a], strides[a], dilations[a],
                         (pads[a], pads[rank + a]), auto_pad, ceil_mode, out_shape[2 + a])
            for a in range(rank)]


@lowers("MaxPool", "AveragePool")
def lower_pool(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    require_f32(node, ctx, [x, y])
    if len(node.outputs) > 1 and node.outputs[1]:
        raise NotLowerable("MaxPool's Indices output is not supported")
    shape, out_shape = shape_of(ctx, x), shape_of(ctx, y)
    axes = _windows(node, shape, out_shape)
    if len(axes) == 1:  # 1-D: a 2-D pool over planes one row high
        axes = [AxisWindows(1, 1, 1, 1, 0, 0, 1), *axes]
    rows, cols = axes
    expected = (*shape[:2], *[a.out for a in axes[2 - (len(shape) - 2):]])
    if expected != out_shape:
        raise NotLowerable(f"output shape {out_shape} differs from the pool's {expected}")
    kind = "max" if node.op == "MaxPool" else "avg"
    tag = node.name
    ptrs = [Buf(x), Buf(y)]
    if kind == "avg":
        include_pad = bool(node.attr("count_include_pad", 0))
        ptrs += [Const(f"{tag}.rscale", rows.inv_counts(include_pad)),
                 Const(f"{tag}.cscale", cols.inv_counts(include_pad))]
    geometry = dict(planes=shape[0] * shape[1], H=rows.size, W=cols.size, OH=rows.out,
                    OW=cols.out, kh=rows.kernel, kw=cols.kernel, sh=rows.stride,
                    dh=rows.dilation, dw=cols.dilation, ph=rows.pad_begin, pw=cols.pad_begin)
    kernel = K.pool2d_kernel(kind, cols.stride, rows.kernel, cols.kernel, cols.dilation)
    call = Call(kernel, (*ptrs, *[geometry[g] for g in K.GEOMETRY]))
    reduce_ = "max" if kind == "max" else "mean"
    return LoweredNode(
        node.name, node.op, node.outputs, [call],
        semantics=f"y[n,c,oy,ox] = {reduce_}_(ky<{rows.kernel},kx<{cols.kernel}) "
                  f"x[n,c,oy*{rows.stride}-{rows.pad_begin}+ky*{rows.dilation},"
                  f"ox*{cols.stride}-{cols.pad_begin}+kx*{cols.dilation}] (taps outside x skipped)",
        note=f"{kernel.name}: vectors along ox, window rows combined first, loads masked "
             "to the input plane")


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
