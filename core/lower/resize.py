"""Lowering of Resize (opset 10-19) and Upsample (7-9) onto codegen/kernels/ops/resize.py.

All of Resize's coordinate arithmetic happens here, at compile time: for each
resized axis, each output index gets the input indices it reads and their
weights (`axis_taps`). Coordinates are computed in float32, as onnxruntime
does, so nearest-neighbour ties round the same way. Taps outside the input
clamp to the edge (the spec's edge padding); exclude_outside drops them and
renormalizes instead.

Supported: modes nearest (all four rounding rules), linear and cubic (with
antialias); every coordinate_transformation_mode except tf_crop_and_resize;
scales or sizes, `axes` and keep_aspect_ratio_policy. Only the last two axes
may change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..codegen.kernels.ops.resize import resize_kernel
from ..errors import NotLowerable
from ..ir import Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from .elementwise import require_f32, shape_of
from .registry import lowers

TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
              "asymmetric", "tf_half_pixel_for_nn")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@dataclass(frozen=True)
class Sampling:
    """How Resize maps output coordinates to input taps along every axis."""

    mode: str = "nearest"  # nearest | linear | cubic
    transform: str = "half_pixel"
    nearest_mode: str = "round_prefer_floor"
    cubic_a: float = -0.75
    exclude_outside: bool = False
    antialias: bool = False


def source_coordinates(s: Sampling, n_in: int, n_out: int, scale: float) -> np.ndarray:
    """The input coordinate of every output index, in float32 like onnxruntime."""
    f = np.float32
    x = np.arange(n_out, dtype=f)
    scale_f = f(scale)
    if s.transform == "align_corners":
        return np.zeros(n_out, f) if n_out == 1 else x * f(n_in - 1) / f(n_out - 1)
    if s.transform == "asymmetric":
        return x / scale_f
    if s.transform == "tf_half_pixel_for_nn":
        return (x + f(0.5)) / scale_f
    if s.transform == "pytorch_half_pixel" and n_out == 1:
        return np.full(n_out, -0.5, f)
    offset = f(0)
    if s.transform == "half_pixel_symmetric":
        offset = f(n_in / 2) * (f(1) - f(n_out) / (scale_f * f(n_in)))
    return offset + (x + f(0.5)) / scale_f - f(0.5)


def axis_taps(s: Sampling, n_in: int, n_out: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32 [n_out, taps], weights float32 [n_out, taps]) along one axis.
    An axis neither scaled nor resized is left alone whatever the transformation."""
    if scale == 1.0 and n_in == n_out:
        return np.arange(n_out, dtype=np.int32)[:, None], np.ones((n_out, 1), np.float32)
    x = source_coordinates(s, n_in, n_out, scale).astype(np.float64)
    if s.mode == "nearest":
        index = np.clip(_round(x, s.nearest_mode, scale), 0, n_in - 1)
        return index[:, None].astype(np.int32), np.ones((n_out, 1), np.float32)
    stretch = min(scale, 1.0) if s.antialias else 1.0  # antialiasing widens the filter
    support = 1.0 if s.mode == "linear" else 2.0
    taps = 2 * math.ceil(support / stretch)
    # taps are the `taps` indices around x (the lower one on ties), weighted by the
    # filter at their distance from x
    index = np.ceil(x)[:, None] - taps // 2 + np.arange(taps)[None, :]
    weight = _filter(s, (index - x[:, None]) * stretch)
    if s.antialias:
        weight /= weight.sum(axis=1, keepdims=True)
    if s.exclude_outside:
        weight = np.where((index < 0) | (index >= n_in), 0.0, weight)
        total = weight.sum(axis=1, keepdims=True)
        weight /= np.where(total == 0, 1.0, total)
    return np.clip(index, 0, n_in - 1).astype(np.int32), weight.astype(np.float32)


def _round(x: np.ndarray, mode: str, scale: float) -> np.ndarray:
    if mode == "simple":  # Upsample and Resize-10: ceil when downscaling, else floor
        mode = "ceil" if scale < 1 else "floor"
    if mode == "floor":
        return np.floor(x)
    if mode == "ceil":
        return np.ceil(x)
    tie = x - np.floor(x) == 0.5
    rounded = np.floor(x + 0.5)
    return np.where(tie, np.floor(x) if mode == "round_prefer_floor" else np.ceil(x), rounded)


def _filter(s: Sampling, d: np.ndarray) -> np.ndarray:
    d = np.abs(d)
    if s.mode == "linear":
        return np.clip(1.0 - d, 0.0, 1.0)
    a = s.cubic_a  # Keys' cubic convolution
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


# ---------------------------------------------------------------------------
# Attributes and inputs


def _const_input(ctx: LowerContext, node: Node, k: int) -> np.ndarray | None:
    """Input k as a constant array; None when omitted or empty."""
    name = node.inputs[k] if len(node.inputs) > k else ""
    if not name:
        return None
    if not ctx.graph.is_const(name):
        raise NotLowerable(f"{name} is not a constant")
    value = np.asarray(ctx.graph.const(name))
    return value if value.size else None


def _scales(ctx: LowerContext, node: Node, shape: tuple[int, ...],
            out: tuple[int, ...]) -> list[float]:
    """The scale of every axis as the coordinate transformation uses it."""
    rank = len(shape)
    if node.op == "Upsample" or ctx.graph.opsets.get("", 13) < 11:
        scales = _const_input(ctx, node, 1)
        given = node.attr("scales") if scales is None else scales
        return [float(v) for v in np.asarray(given).ravel()]
    axes = [int(a) % rank for a in (node.attr("axes") or range(rank))]
    full = [1.0] * rank
    scales = _const_input(ctx, node, 2)
    if scales is not None:
        for a, v in zip(axes, scales.ravel(), strict=True):
            full[a] = float(v)
        return full
    policy = node.attr("keep_aspect_ratio_policy", "stretch")
    sizes_name = node.inputs[3] if len(node.inputs) > 3 else ""
    if sizes_name and not ctx.graph.is_const(sizes_name) and policy == "stretch":
        sizes = np.array([out[a] for a in axes])  # runtime sizes: the output shape says them
    else:
        sizes = _const_input(ctx, node, 3)
    if sizes is None:
        raise NotLowerable("Resize needs scales or sizes")
    for a, v in zip(axes, sizes.ravel(), strict=True):
        full[a] = int(v) / shape[a]
    if policy != "stretch":
        pick = min if policy == "not_larger" else max
        common = pick(full[a] for a in axes)
        full = [common if a in axes else 1.0 for a in range(rank)]
    return full


def _sampling(node: Node, opset: int) -> Sampling:
    a = node.attr
    mode = a("mode", "nearest")
    if node.op == "Upsample" or opset < 11:
        # Upsample, and Resize before opset 11, which had no transformation attribute
        if mode not in ("nearest", "linear", "bilinear"):
            raise NotLowerable(f"{node.op} mode {mode!r}")
        return Sampling("nearest" if mode == "nearest" else "linear", "asymmetric", "simple")
    transform = a("coordinate_transformation_mode", "half_pixel")
    if transform not in TRANSFORMS:
        raise NotLowerable(f"coordinate_transformation_mode {transform!r}")
    nearest_mode = a("nearest_mode", "round_prefer_floor")
    if mode not in ("nearest", "linear", "cubic") or nearest_mode not in NEAREST_MODES:
        raise NotLowerable(f"mode {mode!r} with nearest_mode {nearest_mode!r}")
    antialias = bool(a("antialias", 0)) and mode != "nearest"
    return Sampling(mode, transform, nearest_mode, float(a("cubic_coeff_a", -0.75)),
                    bool(a("exclude_outside", 0)), antialias)


@lowers("Resize", "Upsample")
def lower_resize(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    require_f32(node, ctx, [x, y])
    shape, out = shape_of(ctx, x), shape_of(ctx, y)
    sampling = _sampling(node, ctx.graph.opsets.get("", 13))
    scales = _scales(ctx, node, shape, out)
    if len(scales) != len(shape):
        raise NotLowerable(f"{len(scales)} scales for rank {len(shape)}")
    for k in range(len(shape) - 2):
        if out[k] != shape[k] or (shape[k] > 1 and scales[k] != 1.0):
            raise NotLowerable(f"axis {k} is resized (scale {scales[k]}): only the last two "
                               f"axes can be")
    (hin, win), (hout, wout) = ((1, 1) + shape)[-2:], ((1, 1) + out)[-2:]
    sy, sx = ([1.0, 1.0] + scales)[-2:]
    yi, yw = axis_taps(sampling, hin, hout, sy)
    xi, xw = axis_taps(sampling, win, wout, sx)
    x_identity = win == wout and _is_identity(xi, xw)
    x_taps = 0 if x_identity else xi.shape[1]
    tag = node.name or y
    args = (Buf(x), Buf(y), Scratch(f"{tag}.rows", 4 * max(1, hin * wout)),
            Const(f"{tag}.yi", yi), Const(f"{tag}.yw", yw),
            Const(f"{tag}.xi", np.ascontiguousarray(xi.T)),
            Const(f"{tag}.xw", np.ascontiguousarray(xw.T)),
            math.prod(out[:-2]), hin, win, hout, wout)
    call = Call(resize_kernel(yi.shape[1], x_taps), args)
    return LoweredNode(
        node.name, node.op, node.outputs, [call],
        semantics=f"y[o,i,j] = sum_(a,b) wy[i,a] * wx[j,b] * x[o, iy[i,a], ix[j,b]] "
                  f"({sampling.mode}, {sampling.transform})",
        note=f"{call.kernel.name}: compile-time tap tables, "
             + ("rows combined directly" if x_identity else "gathers along W, then rows"))


def _is_identity(index: np.ndarray, weight: np.ndarray) -> bool:
    """True when every output reads exactly its own input position."""
    n = index.shape[0]
    hit = (index == np.arange(n)[:, None]) & (weight != 0)
    return bool(np.all(weight[hit] == 1.0) and hit.sum() == n and np.all(weight[~hit] == 0))
