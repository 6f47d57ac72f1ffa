"""Lowerings of the indexing ops whose indices are tensors (usually runtime
inputs): Gather, GatherElements, GatherND, ScatterElements (and the old
Scatter), ScatterND. Kernels: codegen/kernels/gather.py and scatter.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..codegen.kernels import gather as G
from ..codegen.kernels import scatter as S
from ..codegen.kernels.bytes_copy import COPY_BYTES
from ..ir import Node
from .broadcast import contiguous_strides, shape_of
from .program import Buf, Call, Const, LoweredNode
from .registry import LowerContext, NotLowerable, lowers
from .typed_elementwise import dtype_of


def elem_bytes(ctx: LowerContext, name: str) -> int:
    size = ctx.graph.type_of(name).dtype.itemsize
    if size not in (1, 2, 4, 8):
        raise NotLowerable(f"{name}: no kernels for {size}-byte elements")
    return size


def normalized_axis(node: Node, rank: int, default: int = 0) -> int:
    axis = int(node.attr("axis", default))
    if not -rank <= axis < max(rank, 1):
        raise NotLowerable(f"axis {axis} out of range for rank {rank}")
    return axis % max(rank, 1)


def _node(node: Node, calls: list[Call], semantics: str, note: str) -> LoweredNode:
    return LoweredNode(node.name, node.op, node.outputs, calls, semantics=semantics, note=note)


def _expect_shape(y: str, got: Sequence[int], want: Sequence[int]) -> None:
    if tuple(got) != tuple(want):
        raise NotLowerable(f"{y} has shape {list(got)}, expected {list(want)}")


@lowers("Gather")
def lower_gather(node: Node, ctx: LowerContext) -> LoweredNode:
    x, idx = node.inputs[:2]
    y = node.outputs[0]
    shape, ishape, out = shape_of(ctx, x), shape_of(ctx, idx), shape_of(ctx, y)
    axis = normalized_axis(node, len(shape))
    _expect_shape(y, out, shape[:axis] + ishape + shape[axis + 1:])
    outer, n, inner = math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])
    calls = []
    if math.prod(out):
        kernel = G.gather_kernel(elem_bytes(ctx, x), dtype_of(ctx, idx))
        calls.append(Call(kernel, (Buf(x), Buf(idx), Buf(y), outer, n, math.prod(ishape),
                                   inner)))
    return _node(node, calls, f"y[o, j, i] = x[o, idx[j], i] over [{outer}, {n}, {inner}]",
                 "rows of the input at runtime indices, copied as vectors")


def _elements_tables(node: Node, shape: tuple[int, ...], ishape: tuple[int, ...],
                     axis: int) -> tuple[Const, Const, int, int]:
    """(dims, strides with the axis zeroed, axis size, axis stride) for the
    *_elements kernels: idx's dims walk, the data's strides locate."""
    rank = len(shape)
    if rank > G.MAX_RANK:
        raise NotLowerable(f"rank {rank}: at most {G.MAX_RANK} is supported")
    strides = contiguous_strides(shape)
    axis_stride = strides[axis]
    strides[axis] = 0
    pad = G.MAX_RANK - rank
    dims = Const(f"{node.name}.dims", np.array([1] * pad + list(ishape), np.int64))
    table = Const(f"{node.name}.strides", np.array([0] * pad + strides, np.int64))
    return dims, table, shape[axis], axis_stride


@lowers("GatherElements")
def lower_gather_elements(node: Node, ctx: LowerContext) -> LoweredNode:
    x, idx = node.inputs[:2]
    y = node.outputs[0]
    shape, ishape = shape_of(ctx, x), shape_of(ctx, idx)
    _expect_shape(y, shape_of(ctx, y), ishape)
    axis = normalized_axis(node, len(shape))
    dims, strides, axis_n, axis_stride = _elements_tables(node, shape, ishape, axis)
    calls = []
    if math.prod(ishape):
        kernel = G.gather_elements_kernel(elem_bytes(ctx, x), dtype_of(ctx, idx))
        calls.append(Call(kernel, (Buf(x), Buf(idx), Buf(y), dims, strides, axis_n, axis_stride)))
    return _node(node, calls, f"y[i] = x[i with i{axis} = idx[i]]",
                 "one element per index, scalar loop over the index tensor")


def _nd_table(node: Node, shape: Sequence[int], first: int, k: int) -> Const:
    """(size, element stride) of dims first .. first+k-1 of a contiguous `shape`."""
    strides = contiguous_strides(shape)
    rows = [(shape[first + t], strides[first + t]) for t in range(k)]
    return Const(f"{node.name}.nd", np.array(rows or [(1, 0)], np.int64))


@lowers("GatherND")
def lower_gather_nd(node: Node, ctx: LowerContext) -> LoweredNode:
    x, idx = node.inputs[:2]
    y = node.outputs[0]
    shape, ishape = shape_of(ctx, x), shape_of(ctx, idx)
    bd = int(node.attr("batch_dims", 0))
    k = ishape[-1]
    if bd + k > len(shape):
        raise NotLowerable(f"index rows of {k} into rank {len(shape)} after {bd} batch dims")
    _expect_shape(y, shape_of(ctx, y), ishape[:-1] + shape[bd + k:])
    batch, m = math.prod(ishape[:bd]), math.prod(ishape[bd:-1])
    size, batch_stride = math.prod(shape[bd + k:]), math.prod(shape[bd:])
    calls = []
    if batch * m * size:
        kernel = G.gather_nd_kernel(elem_bytes(ctx, x), dtype_of(ctx, idx), k)
        calls.append(Call(kernel, (Buf(x), Buf(idx), Buf(y), _nd_table(node, shape, bd, k),
                                   batch, m, size, batch_stride)))
    return _node(node, calls, f"y[b, j, :] = x[b, idx[b, j, 0:{k}], :] ({bd} batch dims)",
                 f"slices of {size} elements at runtime coordinates")


def _reduction(node: Node) -> str:
    reduction = node.attr("reduction", "none")
    if reduction not in S.REDUCTIONS:
        raise NotLowerable(f"reduction {reduction!r}")
    return reduction


def _copy_data(node: Node, ctx: LowerContext, x: str, y: str) -> list[Call]:
    nbytes = ctx.graph.type_of(x).nbytes
    return [Call(COPY_BYTES, (Buf(y), Buf(x), nbytes))] if nbytes else []


@lowers("ScatterElements", "Scatter")
def lower_scatter_elements(node: Node, ctx: LowerContext) -> LoweredNode:
    x, idx, upd = node.inputs[:3]
    y = node.outputs[0]
    shape, ishape = shape_of(ctx, x), shape_of(ctx, idx)
    _expect_shape(y, shape_of(ctx, y), shape)
    _expect_shape(upd, shape_of(ctx, upd), ishape)
    axis = normalized_axis(node, len(shape))
    reduction = _reduction(node)
    dims, strides, axis_n, axis_stride = _elements_tables(node, shape, ishape, axis)
    calls = _copy_data(node, ctx, x, y)
    if math.prod(ishape):
        kernel = S.scatter_elements_kernel(dtype_of(ctx, x), dtype_of(ctx, idx), reduction)
        calls.append(Call(kernel, (Buf(idx), Buf(upd), Buf(y), dims, strides, axis_n,
                                   axis_stride)))
    return _node(node, calls, f"y = x; y[i with i{axis} = idx[i]] {reduction}= upd[i]",
                 "copy, then one element per update in order")


@lowers("ScatterND")
def lower_scatter_nd(node: Node, ctx: LowerContext) -> LoweredNode:
    x, idx, upd = node.inputs[:3]
    y = node.outputs[0]
    shape, ishape = shape_of(ctx, x), shape_of(ctx, idx)
    k = ishape[-1]
    if k > len(shape):
        raise NotLowerable(f"index rows of {k} into rank {len(shape)}")
    _expect_shape(y, shape_of(ctx, y), shape)
    _expect_shape(upd, shape_of(ctx, upd), ishape[:-1] + shape[k:])
    m, size = math.prod(ishape[:-1]), math.prod(shape[k:])
    reduction = _reduction(node)
    calls = _copy_data(node, ctx, x, y)
    if m * size:
        kernel = S.scatter_nd_kernel(dtype_of(ctx, x), dtype_of(ctx, idx), k, reduction)
        calls.append(Call(kernel, (Buf(idx), Buf(upd), Buf(y), _nd_table(node, shape, 0, k),
                                   m, size)))
    return _node(node, calls, f"y = x; y[idx[j, 0:{k}], :] {reduction}= upd[j, :]",
                 f"copy, then slices of {size} elements in index order")
