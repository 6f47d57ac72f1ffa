"""Lowerings of the indexing ops whose indices are tensors (usually runtime
inputs): Gather, GatherElements, GatherND, ScatterElements (and the old
Scatter), ScatterND, TensorScatter, OneHot, ReverseSequence, GridSample; and
Trilu. Kernels: codegen/kernels/ops/gather.py, scatter.py, fill.py, scan_ops.py,
grid_sample.py.

Run-time indices are checked before use, as onnxruntime does: a check kernel
(codegen/kernels/ops/check.py) makes one pass over them and an out-of-range value
stops the run with an InputError naming the node, the input and the value.
Constant indices are checked here, and shapes that no index could fit (an
empty axis, indices wider than the data) are ModelErrors at compile time.
OneHot needs no check: ONNX gives an out-of-range index an all-off row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..codegen.kernels.ops import check as CK
from ..codegen.kernels.ops import fill as F
from ..codegen.kernels.ops import gather as G
from ..codegen.kernels.ops import grid_sample as GS
from ..codegen.kernels.ops import scan_ops as S
from ..codegen.kernels.ops import scatter as SC
from ..codegen.kernels.ops.bytes_copy import COPY_BYTES
from ..errors import ModelError, NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, Const, ErrorSite, LowerContext, LoweredNode, int_table
from .broadcast import contiguous_strides, shape_of
from .registry import lowers
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


def _site(node: Node, idx: str) -> str:
    return f"{node.op} node '{node.name}': input '{idx}'"


def index_checks(node: Node, ctx: LowerContext, idx: str,
                 bounds: Sequence[tuple[int, int]]) -> list[Call]:
    """The calls checking that idx, viewed as [rows, len(bounds)], holds in each
    column t a value in [bounds[t][0], bounds[t][1]]. None for constant indices
    (checked now: a ModelError) or empty ones. An empty range with indices to
    check is refused now too: no value could pass."""
    k, count = len(bounds), math.prod(shape_of(ctx, idx))
    if not k or not count:
        return []
    empty = [t for t, (low, high) in enumerate(bounds) if low > high]
    if empty:
        raise ModelError(f"{_site(node, idx)} holds {count} indices into "
                         f"{'an empty dimension' if len(empty) == 1 else 'empty dimensions'}"
                         f" (index column {empty[0]}): every index is out of range")
    if ctx.graph is not None and ctx.graph.is_const(idx):
        _check_constant(_site(node, idx), ctx.graph.const(idx), bounds)
        return []
    table = int_table(f"{node.name}.{idx}.bounds", [v for b in bounds for v in b])
    kernel = CK.check_indices_kernel(dtype_of(ctx, idx), k)
    return [Call(kernel, (ErrorSite(_site(node, idx)), Buf(idx), count // k, table))]


def _check_constant(site: str, values: np.ndarray, bounds: Sequence[tuple[int, int]]) -> None:
    rows = np.asarray(values).reshape(-1, len(bounds))
    low, high = (np.array([b[c] for b in bounds]) for c in (0, 1))
    bad = np.flatnonzero((rows < low) | (rows > high))
    if bad.size:
        p = int(bad[0])
        raise ModelError(f"{site} (a constant) holds index {rows.flat[p]} at flat position {p}; "
                         f"valid indices are [{low[p % len(bounds)]}, {high[p % len(bounds)]}]")


def axis_bounds(n: int) -> tuple[int, int]:
    """ONNX's range of an index into a dim of n: negative ones count from the end."""
    return -n, n - 1


def _require_within(node: Node, idx: str, ishape: Sequence[int], x: str,
                    shape: Sequence[int], axis: int) -> None:
    """The *Elements ops: idx has x's rank and no larger dim off the axis (the
    kernels walk idx and address x with the same coordinates)."""
    wider = [d for d in range(len(shape)) if d != axis and ishape[d] > shape[d]]
    if len(ishape) != len(shape) or wider:
        raise ModelError(f"{node.op} node '{node.name}': indices '{idx}' of shape "
                         f"{list(ishape)} do not fit data '{x}' of shape {list(shape)}"
                         + (f" (dim {wider[0]} is wider)" if wider else " (ranks differ)"))


@lowers("Gather")
def lower_gather(node: Node, ctx: LowerContext) -> LoweredNode:
    x, idx = node.inputs[:2]
    y = node.outputs[0]
    shape, ishape, out = shape_of(ctx, x), shape_of(ctx, idx), shape_of(ctx, y)
    axis = normalized_axis(node, len(shape))
    _expect_shape(y, out, shape[:axis] + ishape + shape[axis + 1:])
    outer, n, inner = math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])
    calls = index_checks(node, ctx, idx, [axis_bounds(n)])
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
    dims = int_table(f"{node.name}.dims", [1] * pad + list(ishape))
    table = int_table(f"{node.name}.strides", [0] * pad + strides)
    return dims, table, shape[axis], axis_stride


@lowers("GatherElements")
def lower_gather_elements(node: Node, ctx: LowerContext) -> LoweredNode:
    x, idx = node.inputs[:2]
    y = node.outputs[0]
    shape, ishape = shape_of(ctx, x), shape_of(ctx, idx)
    _expect_shape(y, shape_of(ctx, y), ishape)
    axis = normalized_axis(node, len(shape))
    _require_within(node, idx, ishape, x, shape, axis)
    dims, strides, axis_n, axis_stride = _elements_tables(node, shape, ishape, axis)
    calls = index_checks(node, ctx, idx, [axis_bounds(axis_n)])
    if math.prod(ishape):
        kernel = G.gather_elements_kernel(elem_bytes(ctx, x), dtype_of(ctx, idx))
        calls.append(Call(kernel, (Buf(x), Buf(idx), Buf(y), dims, strides, axis_n, axis_stride)))
    return _node(node, calls, f"y[i] = x[i with i{axis} = idx[i]]",
                 "one element per index, scalar loop over the index tensor")


def _nd_table(node: Node, shape: Sequence[int], first: int, k: int) -> Const:
    """(size, element stride) of dims first .. first+k-1 of a contiguous `shape`."""
    strides = contiguous_strides(shape)
    rows = [(shape[first + t], strides[first + t]) for t in range(k)]
    return int_table(f"{node.name}.nd", [v for row in rows or [(1, 0)] for v in row])


@lowers("GatherND")
def lower_gather_nd(node: Node, ctx: LowerContext) -> LoweredNode:
    x, idx = node.inputs[:2]
    y = node.outputs[0]
    shape, ishape = shape_of(ctx, x), shape_of(ctx, idx)
    bd = int(node.attr("batch_dims", 0))
    k = ishape[-1]
    if bd + k > len(shape):
        raise NotLowerable(f"index rows of {k} into rank {len(shape)} after {bd} batch dims")
    if ishape[:bd] != shape[:bd]:
        raise ModelError(f"GatherND node '{node.name}': the {bd} batch dims of indices "
                         f"'{idx}' {list(ishape[:bd])} differ from those of data '{x}' "
                         f"{list(shape[:bd])}")
    _expect_shape(y, shape_of(ctx, y), ishape[:-1] + shape[bd + k:])
    batch, m = math.prod(ishape[:bd]), math.prod(ishape[bd:-1])
    size, batch_stride = math.prod(shape[bd + k:]), math.prod(shape[bd:])
    calls = index_checks(node, ctx, idx, [axis_bounds(n) for n in shape[bd:bd + k]])
    if batch * m * size:
        kernel = G.gather_nd_kernel(elem_bytes(ctx, x), dtype_of(ctx, idx), k)
        calls.append(Call(kernel, (Buf(x), Buf(idx), Buf(y), _nd_table(node, shape, bd, k),
                                   batch, m, size, batch_stride)))
    return _node(node, calls, f"y[b, j, :] = x[b, idx[b, j, 0:{k}], :] ({bd} batch dims)",
                 f"slices of {size} elements at runtime coordinates")


def _reduction(node: Node) -> str:
    reduction = node.attr("reduction", "none")
    if reduction not in SC.REDUCTIONS:
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
    _require_within(node, idx, ishape, x, shape, axis)
    reduction = _reduction(node)
    dims, strides, axis_n, axis_stride = _elements_tables(node, shape, ishape, axis)
    calls = index_checks(node, ctx, idx, [axis_bounds(axis_n)]) + _copy_data(node, ctx, x, y)
    if math.prod(ishape):
        kernel = SC.scatter_elements_kernel(dtype_of(ctx, x), dtype_of(ctx, idx), reduction)
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
    calls = index_checks(node, ctx, idx, [axis_bounds(n) for n in shape[:k]])
    calls += _copy_data(node, ctx, x, y)
    if m * size:
        kernel = SC.scatter_nd_kernel(dtype_of(ctx, x), dtype_of(ctx, idx), k, reduction)
        calls.append(Call(kernel, (Buf(idx), Buf(upd), Buf(y), _nd_table(node, shape, 0, k),
                                   m, size)))
    return _node(node, calls, f"y = x; y[idx[j, 0:{k}], :] {reduction}= upd[j, :]",
                 f"copy, then slices of {size} elements in index order")


@lowers("Trilu")
def lower_trilu(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    shape = shape_of(ctx, x)
    _expect_shape(y, shape_of(ctx, y), shape)
    if len(shape) < 2:
        raise NotLowerable("Trilu needs a matrix")
    upper = bool(node.attr("upper", 1))
    k_name = node.inputs[1] if len(node.inputs) > 1 else ""
    k = Buf(k_name) if k_name else Const(f"{node.name}.k", np.zeros(1, np.int64))
    if k_name and dtype_of(ctx, k_name).itemsize != 8:
        raise NotLowerable(f"Trilu k of type {dtype_of(ctx, k_name).name}")
    calls = []
    if math.prod(shape):
        calls.append(Call(F.trilu_kernel(elem_bytes(ctx, x), upper),
                          (Buf(x), Buf(y), k, math.prod(shape[:-2]), shape[-2], shape[-1])))
    keep = "j - i >= k" if upper else "j - i <= k"
    return _node(node, calls, f"y[.., i, j] = {keep} ? x[.., i, j] : 0",
                 "per row: zeros, the kept run copied as vectors, zeros")


@lowers("OneHot")
def lower_one_hot(node: Node, ctx: LowerContext) -> LoweredNode:
    idx, _, values = node.inputs[:3]
    y = node.outputs[0]
    ishape, out = shape_of(ctx, idx), shape_of(ctx, y)
    axis = int(node.attr("axis", -1)) % (len(ishape) + 1)
    depth = out[axis]
    _expect_shape(y, out, ishape[:axis] + (depth,) + ishape[axis:])
    outer, inner = math.prod(ishape[:axis]), math.prod(ishape[axis:])
    calls = []
    if math.prod(out):
        kernel = F.onehot_kernel(elem_bytes(ctx, y), dtype_of(ctx, idx))
        calls.append(Call(kernel, (Buf(idx), Buf(values), Buf(y), outer, depth, inner)))
    return _node(node, calls, f"y[o, d, i] = idx[o, i] == d ? on : off (depth {depth})",
                 "depth from the output's static shape")


@lowers("ReverseSequence")
def lower_reverse_sequence(node: Node, ctx: LowerContext) -> LoweredNode:
    x, lens = node.inputs[:2]
    y = node.outputs[0]
    shape = shape_of(ctx, x)
    _expect_shape(y, shape_of(ctx, y), shape)
    time_axis, batch_axis = int(node.attr("time_axis", 0)), int(node.attr("batch_axis", 1))
    if sorted((time_axis, batch_axis)) != [0, 1]:
        raise NotLowerable(f"time axis {time_axis}, batch axis {batch_axis}")
    strides = contiguous_strides(shape)
    kernel = S.reverse_sequence_kernel(elem_bytes(ctx, x), dtype_of(ctx, lens))
    args = (Buf(x), Buf(y), Buf(lens), shape[time_axis], shape[batch_axis], strides[time_axis],
            strides[batch_axis], math.prod(shape[2:]))
    calls = [Call(kernel, args)] if math.prod(shape) else []
    return _node(node, calls, "y[t, b] = t < len[b] ? x[len[b] - 1 - t, b] : x[t, b]",
                 "rows copied in reversed order per batch entry")


@lowers("TensorScatter")
def lower_tensor_scatter(node: Node, ctx: LowerContext) -> LoweredNode:
    cache, upd = node.inputs[:2]
    widx = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else ""
    y = node.outputs[0]
    shape, ushape = shape_of(ctx, cache), shape_of(ctx, upd)
    axis = int(node.attr("axis", -2)) % len(shape)
    if axis == 0 or ushape[:axis] != shape[:axis] or ushape[axis + 1:] != shape[axis + 1:]:
        raise NotLowerable(f"update {list(ushape)} does not fit cache {list(shape)} on axis {axis}")
    _expect_shape(y, shape_of(ctx, y), shape)
    index = Buf(widx) if widx else Const(f"{node.name}.at", np.zeros(shape[0], np.int64))
    if widx and dtype_of(ctx, widx).itemsize != 8:
        raise NotLowerable("write_indices must be int64")
    circular = node.attr("mode", "linear") == "circular"
    kernel = SC.tensor_scatter_kernel(elem_bytes(ctx, cache), circular)
    calls = _copy_data(node, ctx, cache, y)
    if math.prod(ushape):
        calls = _write_index_checks(node, ctx, widx, ushape[axis], shape[axis], circular) + calls
    if math.prod(ushape):
        calls.append(Call(kernel, (Buf(upd), Buf(y), index, shape[0], math.prod(shape[1:axis]),
                                   ushape[axis], shape[axis], math.prod(shape[axis + 1:]))))
    return _node(node, calls, f"y = cache; y[b, .., w[b] + s, ..] = update[b, .., s, ..] "
                              f"(axis {axis})", "copy, then rows of the update")


def _write_index_checks(node: Node, ctx: LowerContext, widx: str, seq: int, max_seq: int,
                        circular: bool) -> list[Call]:
    """Linear mode writes positions w .. w + seq - 1, so w must be in [0, max_seq - seq];
    circular mode takes them modulo max_seq, which only an empty cache cannot do."""
    if circular and max_seq == 0 or seq > max_seq and not circular:
        raise ModelError(f"TensorScatter node '{node.name}': an update of {seq} positions "
                         f"does not fit a {'circular ' * circular}cache of {max_seq}")
    if circular or not widx:
        return []
    return index_checks(node, ctx, widx, [(0, max_seq - seq)])


@lowers("GridSample")
def lower_grid_sample(node: Node, ctx: LowerContext) -> LoweredNode:
    x, grid = node.inputs[:2]
    y = node.outputs[0]
    shape, gshape, out = shape_of(ctx, x), shape_of(ctx, grid), shape_of(ctx, y)
    nd = len(shape) - 2
    if nd not in (2, 3) or {dtype_of(ctx, x), dtype_of(ctx, grid)} != {DType.float32}:
        raise NotLowerable(f"GridSample of {nd} spatial dims / non-float32 data")
    _expect_shape(y, out, shape[:2] + gshape[1:-1])
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(node.attr("mode", "linear"),
                                                         node.attr("mode", "linear"))
    spec = GS.GridSampleSpec(nd, mode, node.attr("padding_mode", "zeros"),
                             bool(node.attr("align_corners", 0)))
    if spec.mode not in ("nearest", "linear", "cubic"):
        raise NotLowerable(f"GridSample mode {spec.mode!r}")
    positions = math.prod(gshape[1:-1])
    plan = Const(f"{node.name}.plan", np.array([shape[0], shape[1], positions, *shape[2:]],
                                               np.int64))
    calls = [Call(GS.grid_sample_kernel(spec), (Buf(x), Buf(grid), Buf(y), plan))] \
        if math.prod(out) else []
    return _node(node, calls, f"y[n, c, o] = {spec.mode} sample of x[n, c] at grid[n, o] "
                              f"({spec.padding} padding)", f"{len(calls) and spec.name}")


@lowers("AffineGrid")
def lower_affine_grid(node: Node, ctx: LowerContext) -> LoweredNode:
    """The grid's size comes from its static shape (the size input decided it)."""
    theta = node.inputs[0]
    grid = node.outputs[0]
    out = shape_of(ctx, grid)
    nd = len(out) - 2
    if nd not in (2, 3) or out[-1] != nd or dtype_of(ctx, theta) != DType.float32:
        raise NotLowerable(f"AffineGrid to {list(out)} / non-float32")
    _expect_shape(theta, shape_of(ctx, theta), (out[0], nd, nd + 1))
    align = bool(node.attr("align_corners", 0))
    plan = Const(f"{node.name}.plan", np.array(out[:-1], np.int64))
    calls = [Call(GS.affine_grid_kernel(nd, align), (Buf(theta), Buf(grid), plan))] \
        if math.prod(out) else []
    return _node(node, calls, "grid[n, p, :] = theta[n] @ (x_p, y_p[, z_p], 1)",
                 "normalized coordinates computed per position")
