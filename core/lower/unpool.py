"""MaxUnpool: the inverse of MaxPool with Indices; y is zero but at the indices,
which receive the pooled values (kernel: codegen/kernels/ops/unpool.py).

The indices are flat positions in the shape the attributes infer, (in - 1) *
stride + kernel - pads per spatial axis. An output_shape may make y larger: as
in ONNX's reference (and its node test), the values keep their coordinates and
the extra positions are zero. onnxruntime instead reads the indices as
positions in output_shape (its PR #2193); the two agree when output_shape is the
inferred shape. y has the shape the graph was compiled for: a constant
output_shape is that shape, and one fed at run time is checked against it
before the node runs (shape_checks.py), so y is never reallocated.
"""

from __future__ import annotations

import math

from ..codegen.kernels.ops import fill as F
from ..codegen.kernels.ops import unpool as K
from ..errors import ModelError, NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, LowerContext, LoweredNode, int_table
from .elementwise import require_f32, shape_of
from .indexing import index_checks
from .pool_windows import int_attr
from .registry import lowers


def _default_shape(node: Node, shape: tuple[int, ...]) -> tuple[int, ...]:
    rank = len(shape) - 2
    kernel = int_attr(node, "kernel_shape", None, rank, minimum=1)
    strides = int_attr(node, "strides", [1] * rank, rank, minimum=1)
    pads = int_attr(node, "pads", [0] * 2 * rank, 2 * rank, minimum=0)
    return (*shape[:2], *[(shape[2 + a] - 1) * strides[a] + kernel[a] - pads[a] - pads[rank + a]
                          for a in range(rank)])


@lowers("MaxUnpool")
def lower_max_unpool(node: Node, ctx: LowerContext) -> LoweredNode:
    x, idx, y = node.inputs[0], node.inputs[1], node.outputs[0]
    require_f32(node, ctx, [x, y])
    if ctx.graph.type_of(idx).dtype != DType.int64:
        raise NotLowerable(f"{idx} is {ctx.graph.type_of(idx).dtype.short}, MaxUnpool's "
                           "indices are int64")
    shape, out = shape_of(ctx, x), shape_of(ctx, y)
    if len(shape) < 3 or shape_of(ctx, idx) != shape:
        raise ModelError(f"MaxUnpool node '{node.name}': X of shape {list(shape)} and I of "
                         f"shape {list(shape_of(ctx, idx))}: both need the same shape, "
                         "with N, C and at least one spatial axis")
    inferred = _default_shape(node, shape)
    given = len(node.inputs) > 2 and node.inputs[2]
    smaller = len(out) != len(shape) or any(o < i for o, i in zip(out, inferred, strict=True))
    if smaller or (not given and tuple(out) != inferred):
        raise ModelError(f"MaxUnpool node '{node.name}': output of shape {list(out)}, but the "
                         f"attributes give {list(inferred)}"
                         + (" (an output_shape may only be larger)" if given else ""))
    size = math.prod(inferred)
    calls = index_checks(node, ctx, idx, [(0, size - 1)]) if size else []
    calls.append(Call(F.fill_kernel(4), (Buf(y), math.prod(out), 0)))
    placement = _placement(inferred, out)
    kernel = K.unpool_scatter_kernel(len(placement) // 2)
    placement = int_table(f"{node.name}.placement", placement)
    calls.append(Call(kernel, (Buf(x), Buf(idx), Buf(y), placement, math.prod(shape), size)))
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=f"y = zeros{list(out)}; y[coordinates of I[i] in "
                                 f"{list(inferred)}] = X.flat[i]",
                       note=f"indices checked in [0, {size}); then a serial scatter")


def _placement(inferred: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    """The kernel's (extent, y stride) table: one axis when y is the inferred shape."""
    if tuple(out) == tuple(inferred):
        return [math.prod(out), 1]
    strides = [math.prod(out[d + 1:]) for d in range(len(out))]
    return [v for d in range(len(out)) for v in (inferred[d], strides[d])]
