"""Lowerings of LayerNormalization, InstanceNormalization, GroupNormalization,
MeanVarianceNormalization (all by codegen/kernels/ops/norm.py's normalize_kernel,
which walks the tensor as rows of statistics) and LpNormalization."""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels.ops import norm as K
from ..errors import NotLowerable
from ..ir import Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from .elementwise import require_f32, shape_of
from .registry import lowers

# MeanVarianceNormalization divides by sqrt(var) + 1e-9; the kernel adds its eps
# under the root, where 1e-18 does the same job: no division by zero.
MVN_EPS = 1e-18


def _normalize_call(affine: str, values: dict[str, object]) -> Call:
    names = [n for n, _ in K.normalize_params(affine)]
    return Call(K.normalize_kernel(affine), tuple(values[n] for n in names))


def _stat_buffers(rows: int, mean: str = "", rstd: str = "") -> dict[str, Buf | Scratch]:
    """Where the kernel stores each row's mean and 1/std: the named outputs, else scratch."""
    return {key: Buf(name) if name else Scratch(key, 4 * rows)
            for key, name in (("mean_out", mean), ("rstd_out", rstd))}


def _per_element(ctx: LowerContext, name: str, shape: tuple[int, ...], fill: float,
                 tag: str) -> Buf | Const:
    """A scale/bias operand over the normalized `shape`, flattened: the same
    elements (up to unit dims), or for constants anything that broadcasts to it;
    a missing one is `fill`."""
    n = math.prod(shape)
    if not name:
        return Const(tag, np.full(n, fill, np.float32))
    own = shape_of(ctx, name)
    if math.prod(own) == n:
        return Buf(name)
    if ctx.graph.is_const(name):
        try:
            data = np.broadcast_to(ctx.graph.const(name).astype(np.float32), shape)
        except ValueError as e:
            raise NotLowerable(f"{name} {own} does not broadcast to {shape}") from e
        return Const(tag, np.ascontiguousarray(data).ravel())
    raise NotLowerable(f"{name} {own} is a runtime value of another shape than {shape}")


@lowers("LayerNormalization")
def lower_layer_norm(node: Node, ctx: LowerContext) -> LoweredNode:
    x, scale = node.inputs[0], node.inputs[1]
    bias = node.inputs[2] if len(node.inputs) > 2 else ""
    require_f32(node, ctx, [x, scale, node.outputs[0]])
    shape = shape_of(ctx, x)
    axis = int(node.attr("axis", -1))
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis < len(shape):
        raise NotLowerable(f"axis {node.attr('axis')} out of range for rank {len(shape)}")
    rows, n = math.prod(shape[:axis]), math.prod(shape[axis:])
    eps = float(node.attr("epsilon", 1e-5))
    values = dict(x=Buf(x), y=Buf(node.outputs[0]),
                  scale=_per_element(ctx, scale, shape[axis:], 1.0, "scale"),
                  bias=_per_element(ctx, bias, shape[axis:], 0.0, "bias"),
                  rows=rows, row_stride=n, segs=1, seg_stride=0, seg_len=n, eps=eps,
                  **_stat_buffers(rows, *node.outputs[1:3]))
    call = _normalize_call("elem", values)
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y[r,j] = (x[r,j] - mean_r) / sqrt(var_r + {eps}) * scale[j] "
                                 f"+ bias[j] over [{rows},{n}]",
                       note=f"{call.kernel.name}: two-pass statistics, vectors along each row")


@lowers("InstanceNormalization")
def lower_instance_norm(node: Node, ctx: LowerContext) -> LoweredNode:
    x, scale, bias = node.inputs[:3]
    require_f32(node, ctx)
    shape = shape_of(ctx, x)
    if len(shape) < 3:
        raise NotLowerable(f"InstanceNormalization needs [N, C, spatial...], got {shape}")
    n, c, plane = shape[0], shape[1], math.prod(shape[2:])
    eps = float(node.attr("epsilon", 1e-5))
    values = dict(x=Buf(x), y=Buf(node.outputs[0]), scale=Buf(scale), bias=Buf(bias),
                  rows=n * c, row_stride=plane, segs=1, seg_stride=0, seg_len=plane,
                  blocks=1, inner=plane, chans=c, eps=eps, **_stat_buffers(n * c))
    call = _normalize_call("block", values)
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y[n,c,i] = (x[n,c,i] - mean_nc) / sqrt(var_nc + {eps}) "
                                 f"* scale[c] + bias[c]",
                       note=f"{call.kernel.name}: one row per (n, c) plane of {plane}")


@lowers("GroupNormalization")
def lower_group_norm(node: Node, ctx: LowerContext) -> LoweredNode:
    x, scale, bias = node.inputs[:3]
    require_f32(node, ctx)
    shape = shape_of(ctx, x)
    groups = int(node.attr("num_groups"))
    if len(shape) < 2 or shape[1] % groups:
        raise NotLowerable(f"{groups} groups do not divide the channels of {shape}")
    n, c, plane = shape[0], shape[1], math.prod(shape[2:])
    per_group = c // groups * plane
    # opset 21: scale and bias per channel; opset 18: per group
    params = math.prod(shape_of(ctx, scale))
    if params == c:
        blocks, inner, chans = c // groups, plane, c
    elif params == groups:
        blocks, inner, chans = 1, per_group, groups
    else:
        raise NotLowerable(f"scale has {params} elements for {c} channels in {groups} groups")
    eps = float(node.attr("epsilon", 1e-5))
    values = dict(x=Buf(x), y=Buf(node.outputs[0]), scale=Buf(scale), bias=Buf(bias),
                  rows=n * groups, row_stride=per_group, segs=1, seg_stride=0,
                  seg_len=per_group, blocks=blocks, inner=inner, chans=chans, eps=eps,
                  **_stat_buffers(n * groups))
    call = _normalize_call("block", values)
    which = "c" if chans == c else "g"
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y[n,g,c,i] = (x[n,g,c,i] - mean_ng) / sqrt(var_ng + {eps}) "
                                 f"* scale[{which}] + bias[{which}], {groups} groups",
                       note=f"{call.kernel.name}: one row per (n, group) of {per_group}")


@lowers("MeanVarianceNormalization")
def lower_mvn(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    require_f32(node, ctx)
    shape = shape_of(ctx, x)
    axes = sorted({int(a) % len(shape) for a in node.attr("axes", [0, 2, 3])})
    lead, kept, trail = _reduced_around_kept(shape, axes)
    values = dict(x=Buf(x), y=Buf(y), rows=kept, row_stride=trail, segs=lead,
                  seg_stride=kept * trail, seg_len=trail, eps=MVN_EPS,
                  **_stat_buffers(kept))
    call = _normalize_call("none", values)
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y = (x - mean) / sqrt(var), statistics over axes {axes}",
                       note=f"{call.kernel.name}: {kept} rows of {lead} segments of {trail}")


def _reduced_around_kept(shape: tuple[int, ...], axes: list[int]) -> tuple[int, int, int]:
    """(leading reduced, kept, trailing reduced) element counts: the kept axes must
    be one run, every reduced axis before or after it."""
    kept_axes = [k for k in range(len(shape)) if k not in axes and shape[k] != 1]
    if kept_axes and kept_axes[-1] - kept_axes[0] + 1 != len(kept_axes):
        raise NotLowerable(f"statistics over axes {axes} of {shape}: the kept axes "
                           f"{kept_axes} are not adjacent")
    first, last = (kept_axes[0], kept_axes[-1] + 1) if kept_axes else (len(shape), len(shape))
    return math.prod(shape[:first]), math.prod(shape[first:last]), math.prod(shape[last:])


@lowers("LpNormalization")
def lower_lp_norm(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    require_f32(node, ctx)
    shape = shape_of(ctx, x)
    p = int(node.attr("p", 2))
    if p not in (1, 2):
        raise NotLowerable(f"LpNormalization with p={p}")
    axis = int(node.attr("axis", -1)) % max(1, len(shape))
    outer, n, inner = math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])
    strided = inner > 1
    args = (Buf(x), Buf(y), outer, n) + ((inner,) if strided else ())
    call = Call(K.lp_norm_kernel(p, strided), args)
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y[o,k,i] = x[o,k,i] / ||x[o,:,i]||_{p} over "
                                 f"[{outer},{n},{inner}]",
                       note=f"{call.kernel.name}: vectors "
                            + (f"across the {inner} inner positions" if strided else "along rows"))
