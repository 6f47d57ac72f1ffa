"""RoiAlign (kernel: codegen/kernels/ops/roi_align.py).

The batch indices are run-time data: checked to lie in [0, N) before the
kernel reads images by them (an InputError otherwise, as in onnxruntime). So
are the rois' sizes when the sampling grid adapts to them (sampling_ratio 0):
a bin of more than MAX_GRID pixels along an axis is refused rather than
sampled billions of times (onnxruntime runs out of memory on such rois).
Opset 10 has no coordinate_transformation_mode and behaves as
'output_half_pixel'; from opset 16 the default is 'half_pixel'.
"""

from __future__ import annotations

from ..codegen.kernels.ops import roi_align as K
from ..errors import ModelError, NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, ErrorSite, LowerContext, LoweredNode
from .elementwise import require_f32, shape_of
from .indexing import index_checks
from .registry import lowers


def _text(node: Node, name: str, default: str) -> str:
    value = node.attr(name, default)
    return value.decode() if isinstance(value, bytes) else value


def _modes(node: Node, ctx: LowerContext) -> tuple[str, bool]:
    """(mode, half_pixel), checked."""
    mode = _text(node, "mode", "avg")
    default = "half_pixel" if ctx.graph.opsets.get("", 16) >= 16 else "output_half_pixel"
    transform = _text(node, "coordinate_transformation_mode", default)
    if mode not in ("avg", "max") or transform not in ("half_pixel", "output_half_pixel"):
        raise ModelError(f"RoiAlign node '{node.name}': mode {mode!r} / "
                         f"coordinate_transformation_mode {transform!r}: expected avg or max / "
                         "half_pixel or output_half_pixel")
    return mode, transform == "half_pixel"


@lowers("RoiAlign")
def lower_roi_align(node: Node, ctx: LowerContext) -> LoweredNode:
    x, rois, batch = node.inputs[:3]
    y = node.outputs[0]
    require_f32(node, ctx, [x, rois, y])
    if ctx.graph.type_of(batch).dtype != DType.int64:
        raise NotLowerable(f"{batch} is {ctx.graph.type_of(batch).dtype.short}, "
                           "RoiAlign's batch_indices are int64")
    shape, rshape, bshape, out = (shape_of(ctx, v) for v in (x, rois, batch, y))
    mode, half_pixel = _modes(node, ctx)
    count = rshape[0] if len(rshape) == 2 else -1
    oh, ow = int(node.attr("output_height", 1)), int(node.attr("output_width", 1))
    if (len(shape) != 4 or len(rshape) != 2 or rshape[1] != 4 or tuple(bshape) != (count,)
            or tuple(out) != (count, shape[1], oh, ow) or min(oh, ow) < 1):
        raise ModelError(f"RoiAlign node '{node.name}': X {list(shape)}, rois {list(rshape)}, "
                         f"batch_indices {list(bshape)} and Y {list(out)} do not agree "
                         f"(expected X [N, C, H, W], rois [R, 4], batch_indices [R], "
                         f"Y [R, C, {oh}, {ow}])")
    if shape[2] * shape[3] == 0 and count * shape[1]:
        raise NotLowerable(f"RoiAlign over an empty image {list(shape)}")
    sampling = int(node.attr("sampling_ratio", 0))
    if sampling < 0:
        raise ModelError(f"RoiAlign node '{node.name}': sampling_ratio {sampling} is negative")
    calls = index_checks(node, ctx, batch, [(0, shape[0] - 1)]) if count else []
    scale = float(node.attr("spatial_scale", 1.0))
    if count and not sampling:  # an adaptive grid: bounded, so a bin's work is
        site = f"RoiAlign node '{node.name}': the sampling grid of a bin of input '{rois}'"
        calls.append(Call(K.check_roi_grid_kernel(half_pixel),
                          (ErrorSite(site), Buf(rois), count, oh, ow, scale)))
    geometry = dict(rois_count=count, C=shape[1], H=shape[2], W=shape[3], OH=oh, OW=ow,
                    sampling_ratio=sampling)
    kernel = K.roi_align_kernel(mode, half_pixel)
    calls.append(Call(kernel, (Buf(x), Buf(rois), Buf(batch), Buf(y),
                               *[geometry[n] for n in K.GEOMETRY], scale)))
    return LoweredNode(
        node.name, node.op, node.outputs, calls,
        semantics=f"y[r, c] = {mode} of bilinear samples of x[batch[r], c] over the {oh}x{ow} "
                  f"bins of roi r ({'half_pixel' if half_pixel else 'output_half_pixel'})",
        note=f"{kernel.name}: one (roi, channel) plane of bins per unit of work")
