"""DFT (opsets 17-20: axis and length as attributes or runtime tensors; forward,
inverse, one-sided real transforms) and STFT. Kernels: codegen/kernels/ops/dft.py.
"""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels.ops import dft as K
from ..codegen.kernels.ops.gather import MAX_RANK
from ..errors import NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode
from .broadcast import shape_of
from .registry import lowers
from .typed_elementwise import dtype_of


def _scalar(node: Node, ctx: LowerContext, name: str, value: int, tag: str) -> Buf | Const:
    """A runtime 1-element int64 tensor, or a constant holding `value`."""
    if name:
        if dtype_of(ctx, name) != DType.int64:
            raise NotLowerable(f"{name} must be int64")
        return Buf(name)
    return Const(f"{node.name}.{tag}", np.array([value], np.int64))


@lowers("DFT")
def lower_dft(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    length_name = node.inputs[1] if len(node.inputs) > 1 else ""
    shape, out = shape_of(ctx, x), shape_of(ctx, y)
    if {dtype_of(ctx, x), dtype_of(ctx, y)} != {DType.float32} or len(shape) - 1 > MAX_RANK:
        raise NotLowerable("DFT of float32 tensors up to rank 9 only")
    inverse, onesided = bool(node.attr("inverse", 0)), bool(node.attr("onesided", 0))
    spec = K.DftSpec(inverse, onesided, shape[-1] == 2, not (inverse and onesided))
    if ctx.graph.opsets.get("", 20) >= 20:
        axis_name = node.inputs[2] if len(node.inputs) > 2 else ""
        axis = _scalar(node, ctx, axis_name, -2, "axis")
    else:
        axis = _scalar(node, ctx, "", int(node.attr("axis", 1)), "axis")
    n_out = _transformed_length(shape, out)
    dims = Const(f"{node.name}.dims", np.array([1] * (MAX_RANK + 1 - len(shape)) +
                                               list(shape[:-1]), np.int64))
    length = _scalar(node, ctx, length_name, 0, "length")
    call = Call(K.dft_kernel(spec), (Buf(x), Buf(y), axis, length, dims, len(shape), n_out,
                                     int(bool(length_name))))
    return LoweredNode(node.name, node.op, node.outputs, [call] if math.prod(out) else [],
                       semantics=f"y[.., k, ..] = sum_t x[.., t, ..] e^({'+' if inverse else '-'}"
                                 "2 pi i k t / L)" + (" / L" if inverse else ""),
                       note=f"{spec.name}: direct sums, axis read at run time")


def _transformed_length(shape: tuple[int, ...], out: tuple[int, ...]) -> int:
    """The output's length along the transformed axis: the one dim (components
    excluded) where output and input differ; -1 (the input's length, whichever
    axis it is) when none does."""
    differing = [o for s, o in zip(shape[:-1], out[:-1], strict=True) if s != o]
    if len(out) != len(shape) or len(differing) > 1:
        raise NotLowerable(f"output {list(out)} is no DFT of {list(shape)}")
    return differing[0] if differing else -1


@lowers("STFT")
def lower_stft(node: Node, ctx: LowerContext) -> LoweredNode:
    x, step = node.inputs[:2]
    window = node.inputs[2] if len(node.inputs) > 2 else ""
    y = node.outputs[0]
    shape, out = shape_of(ctx, x), shape_of(ctx, y)
    if len(shape) != 3 or shape[2] != 1 or dtype_of(ctx, x) != DType.float32:
        raise NotLowerable("STFT of a real float32 signal [batch, length, 1] only")
    if not node.attr("onesided", 1):
        raise NotLowerable("two-sided STFT")
    batch, frames, bins = out[0], out[1], out[2]
    frame_len = shape_of(ctx, window)[0] if window else 2 * (bins - 1)
    if frame_len // 2 + 1 != bins:
        raise NotLowerable(f"{bins} bins do not fit frames of {frame_len}")
    unused = Const(f"{node.name}.no_window", np.zeros(1, np.float32))
    call = Call(K.stft_kernel(bool(window)), (Buf(x), Buf(y), Buf(window) if window else unused,
                                              Buf(step), batch, shape[1], frames, bins,
                                              frame_len))
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics="y[b, f, k] = sum_t x[b, f*step + t] w[t] e^(-2 pi i k t / n)",
                       note=f"{call.kernel.name}: direct sums per frame")
