"""Lowerings of Softmax / LogSoftmax, LRN, and the data-movement ops Concat,
Transpose and Pad (these three for any element type)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..codegen.kernels.ops import copy as C
from ..codegen.kernels.ops import lrn as L
from ..codegen.kernels.ops import softmax as S
from ..errors import NotLowerable
from ..ir import Node
from ..ir.symbolic import same
from ..program import Buf, Call, Const, LowerContext, LoweredNode, int_table
from .broadcast import is_one
from .elementwise import require_f32, shape_of
from .registry import lowers

# ---------------------------------------------------------------------------
# Softmax, LogSoftmax


@lowers("Softmax", "LogSoftmax")
def lower_softmax(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    require_f32(node, ctx, [x, y])
    shape = shape_of(ctx, x)
    rank = max(1, len(shape))
    opset = ctx.graph.opsets.get("", 13)
    axis = int(node.attr("axis", -1 if opset >= 13 else 1))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise NotLowerable(f"axis {node.attr('axis')} out of range for rank {rank}")
    outer = math.prod(shape[:axis])
    if opset >= 13:  # one axis
        n, inner = shape[axis], math.prod(shape[axis + 1:])
    else:  # the input flattened to 2-D at axis
        n, inner = math.prod(shape[axis:]), 1
    kind = node.op.lower()
    if inner == 1:
        call = Call(S.softmax_rows_kernel(kind), (Buf(x), Buf(y), outer, n))
        note = f"{call.kernel.name}: vectors along each row of {n}"
    else:
        call = Call(S.softmax_strided_kernel(kind), (Buf(x), Buf(y), outer, n, inner))
        note = f"{call.kernel.name}: vectors across the {inner} inner positions"
    fmt = "x[o,k,i] - m - log(s)" if kind == "logsoftmax" else "exp(x[o,k,i] - m) / s"
    return LoweredNode(node.name, node.op, node.outputs, [call], note=note,
                       semantics=f"y[o,k,i] = {fmt}, m = max_k x[o,k,i], "
                                 f"s = sum_k exp(x[o,k,i] - m) over [{outer},{n},{inner}]")


# ---------------------------------------------------------------------------
# LRN


@lowers("LRN")
def lower_lrn(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    require_f32(node, ctx, [x, y])
    shape = shape_of(ctx, x)
    if len(shape) < 2:
        raise NotLowerable(f"LRN needs a channel dim, input is {shape}")
    size = int(node.attr("size"))
    alpha, beta = float(node.attr("alpha", 1e-4)), float(node.attr("beta", 0.75))
    bias = float(node.attr("bias", 1.0))
    before, after = (size - 1) // 2, size // 2  # floor and ceil of (size - 1) / 2
    call = Call(L.lrn_kernel(beta), (Buf(x), Buf(y), shape[0], shape[1], math.prod(shape[2:]),
                                 before, after, alpha / size, beta, bias))
    return LoweredNode(
        node.name, node.op, node.outputs, [call],
        semantics=f"y[n,c,i] = x[n,c,i] * ({bias} + {alpha}/{size} * "
                  f"sum_(c-{before}<=k<=c+{after}) x[n,k,i]^2) ^ -{beta}",
        note=f"{call.kernel.name}: vectors along the spatial index, the power by "
             + ("square roots" if beta == 0.75 else "exp/log"))


# ---------------------------------------------------------------------------
# Concat, Transpose: strided copies


def _elem_bytes(ctx: LowerContext, name: str) -> int:
    size = ctx.graph.type_of(name).dtype.itemsize
    if size not in (1, 2, 4, 8):
        raise NotLowerable(f"{name}: no copy kernel for {size}-byte elements")
    return size


def _plan_table(dims: Sequence[tuple[int, int, int]], what: str, tag: str) -> Const:
    """The kernels' [MAX_OUTER_DIMS, 3] i64 table, padded in front with unit dims."""
    if len(dims) > C.MAX_OUTER_DIMS:
        raise NotLowerable(f"{what} needs {len(dims)} outer dims, at most "
                           f"{C.MAX_OUTER_DIMS} are supported")
    rows = [(1, 0, 0)] * (C.MAX_OUTER_DIMS - len(dims)) + list(dims)
    return int_table(tag, [v for row in rows for v in row])


def copy_call(elem_bytes: int, src: Buf, dst: Buf, outer: Sequence[tuple[int, int, int]],
              n: int, src_inner_stride: int, tag: str) -> Call:
    """A strided_copy_kernel call; outer = (count, src stride, dst stride) per dim."""
    kernel = C.strided_copy_kernel(elem_bytes, gather=src_inner_stride != 1)
    return Call(kernel, (src, dst, _plan_table(outer, "copy", tag), n, src_inner_stride))


def _tiles_call(elem_bytes: int, src: Buf, dst: Buf, batch: Sequence[tuple[int, int, int]],
                rows: int, cols: int, src_col_stride: int, tag: str) -> Call:
    return Call(C.transpose_tiles_kernel(elem_bytes),
                (src, dst, _plan_table(batch, "transpose", tag), rows, cols, src_col_stride))


@lowers("Concat")
def lower_concat(node: Node, ctx: LowerContext) -> LoweredNode:
    y = node.outputs[0]
    out = shape_of(ctx, y)
    axis = int(node.attr("axis"))
    axis = axis + len(out) if axis < 0 else axis
    nbytes = _elem_bytes(ctx, y)
    outer, inner = math.prod(out[:axis]), math.prod(out[axis + 1:])
    row = out[axis] * inner  # one output row: every input's slice of the axis
    calls, start = [], 0
    for k, x in enumerate(node.inputs):
        if ctx.graph.type_of(x).dtype != ctx.graph.type_of(y).dtype:
            raise NotLowerable(f"{x} has another dtype than the output")
        part = shape_of(ctx, x)[axis] * inner
        if part and outer:
            calls.append(copy_call(nbytes, Buf(x), Buf(y, start * nbytes),
                                   [(outer, part, row)], part, 1, f"{node.name}.part{k}"))
        start += part
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=f"y[..., offset_k + j, ...] = x_k[..., j, ...] along axis {axis}",
                       note=f"one row copy per input ({outer} rows each)")


def transpose_plan(shape: Sequence[int], perm: Sequence[int]) -> list[tuple[int, int, int]]:
    """Output dims (count, src stride, dst stride), size-1 dims dropped and dims
    merged where they stay adjacent in the input; the last one is the inner dim."""
    src_strides = [math.prod(shape[k + 1:]) for k in range(len(shape))]
    dims: list[list[int]] = []  # [count, src stride]
    for p in perm:
        count, stride = shape[p], src_strides[p]
        if is_one(count):
            continue
        if dims and same(dims[-1][1], stride * count):
            dims[-1] = [dims[-1][0] * count, stride]
        else:
            dims.append([count, stride])
    dims = dims or [[1, 1]]
    dst_strides = [math.prod(d[0] for d in dims[k + 1:]) for k in range(len(dims))]
    return [(d[0], d[1], s) for d, s in zip(dims, dst_strides, strict=True)]


@lowers("Transpose")
def lower_transpose(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    shape = shape_of(ctx, x)
    perm = [int(p) for p in node.attr("perm", list(range(len(shape)))[::-1])]
    plan = transpose_plan(shape, perm)
    (n, inner_stride, _), outer = plan[-1], plan[:-1]
    nbytes = _elem_bytes(ctx, x)
    if inner_stride != 1 and outer and outer[-1][1] == 1:
        # the last two dims swap: a batched 2-D transpose done in register tiles
        (rows, _, _), batch = outer[-1], outer[:-1]
        call = _tiles_call(nbytes, Buf(x), Buf(y), batch, rows, n, inner_stride,
                           f"{node.name}.plan")
        how = f"{rows} x {n} transposes in register tiles"
    else:
        call = copy_call(nbytes, Buf(x), Buf(y), outer, n, inner_stride, f"{node.name}.plan")
        how = "row copies" if inner_stride == 1 else f"gathers with stride {inner_stride}"
    idx = [f"i{k}" for k in range(len(shape))]
    src_idx = [""] * len(shape)
    for k, p in enumerate(perm):
        src_idx[p] = idx[k]
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y[{','.join(idx)}] = x[{','.join(src_idx)}]",
                       note=f"{call.kernel.name}: {len(plan)} dims after merging, {how}")


# ---------------------------------------------------------------------------
# Pad


def pad_index_map(size: int, before: int, out: int, mode: str) -> np.ndarray:
    """For each output index along one axis, the input index it copies (-1: the constant)."""
    i = np.arange(out, dtype=np.int64) - before
    if mode == "constant":
        return np.where((i >= 0) & (i < size), i, -1)
    if mode == "edge":
        return np.clip(i, 0, size - 1)
    if mode == "wrap":
        return np.mod(i, size)
    if mode == "reflect":
        if size == 1:
            return np.zeros(out, np.int64)
        period = 2 * (size - 1)
        i = np.mod(i, period)
        return np.where(i < size, i, period - i)
    raise NotLowerable(f"unknown Pad mode {mode!r}")


def _pad_attrs(node: Node, ctx: LowerContext, rank: int) -> tuple[list[int], float, str]:
    mode = node.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if ctx.graph.opsets.get("", 13) < 11:
        return list(node.attr("pads")), float(node.attr("value", 0.0)), mode
    inputs = list(node.inputs) + [""] * 4
    pads_name, value_name, axes_name = inputs[1], inputs[2], inputs[3]
    for name in (pads_name, value_name, axes_name):
        if name and not ctx.graph.is_const(name):
            raise NotLowerable(f"Pad input {name} is not a constant")
    pads = [int(p) for p in np.asarray(ctx.graph.const(pads_name)).ravel()]
    value = float(np.asarray(ctx.graph.const(value_name)).ravel()[0]) if value_name else 0.0
    if axes_name:  # opset 18: pads for the listed axes only
        axes = [int(a) % rank for a in np.asarray(ctx.graph.const(axes_name)).ravel()]
        full = [0] * (2 * rank)
        for k, a in enumerate(axes):
            full[a], full[rank + a] = pads[k], pads[len(axes) + k]
        pads = full
    return pads, value, mode


@lowers("Pad")
def lower_pad(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    shape, out = shape_of(ctx, x), shape_of(ctx, y)
    rank = len(shape)
    pads, value, mode = _pad_attrs(node, ctx, rank)
    expected = tuple(shape[k] + pads[k] + pads[rank + k] for k in range(rank))
    if expected != out or rank == 0:
        raise NotLowerable(f"output shape {out} differs from the padded {expected}")
    if any(s == 0 for s in shape) and mode != "constant":
        raise NotLowerable(f"{mode} padding of an empty tensor")
    if rank - 1 > C.MAX_OUTER_DIMS:
        raise NotLowerable(f"Pad of rank {rank}: at most {C.MAX_OUTER_DIMS + 1} is supported")
    dtype = ctx.graph.type_of(x).dtype
    nbytes = _elem_bytes(ctx, x)
    maps = [pad_index_map(shape[k], pads[k], out[k], mode) for k in range(rank)]
    plan, flat, src_strides = [], [], [math.prod(shape[k + 1:]) for k in range(rank)]
    for k in range(rank - 1):
        plan.append((out[k], sum(len(m) for m in flat), src_strides[k]))
        flat.append(maps[k])
    flat_maps = np.concatenate(flat + [np.zeros(1, np.int64)])
    unused_dim = (1, len(flat_maps) - 1, 0)  # maps its one index to that trailing 0
    plan = [unused_dim] * (C.MAX_OUTER_DIMS - len(plan)) + plan
    w_in, w_out, left = shape[-1], out[-1], pads[rank - 1]
    copy_lo = min(max(left, 0), w_out)
    copy_hi = min(max(left + w_in, copy_lo), w_out)
    bits = np.array([value], dtype.numpy).view(f"u{nbytes}")[0]
    args = (Buf(x), Buf(y), Const(f"{node.name}.maps", flat_maps),
            Const(f"{node.name}.plan", np.array(plan, np.int64)),
            Const(f"{node.name}.last_map", maps[-1]), w_out, copy_lo, copy_hi, left,
            int(np.int64(np.uint64(bits))))
    call = Call(C.pad_kernel(nbytes), args)
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y[i] = x[map_{mode}(i - pads_begin)] (or {value} outside)",
                       note=f"{call.kernel.name}: rows by index maps, contiguous middle "
                            f"[{copy_lo},{copy_hi}) of each row as vectors")
