"""Lowerings of data-movement and shape-producing ops: Slice, Split, Expand, Tile,
DepthToSpace, SpaceToDepth, CenterCropPad (strided copies); ConstantOfShape,
EyeLike, Range, Hann / Hamming / Blackman windows (patterns); CumSum / CumProd;
BitCast (a view); Shape / Size (constants from the static types).

Parameters that ONNX passes as tensors (Slice's starts, Expand's shape, Tile's
repeats, Range's bounds...) are often runtime inputs. Where the static output
shape already says everything (Expand, Tile, Split, ConstantOfShape) they are
not read at all; where values matter (Slice, Range, CumSum's axis) the kernels
read them at run time, and constant ones are folded into compile-time plans.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..codegen.kernels.ops import fill as F
from ..codegen.kernels.ops import scan_ops as S
from ..codegen.kernels.ops.bytes_copy import COPY_BYTES
from ..codegen.kernels.ops.check import check_slice_kernel
from ..codegen.kernels.ops.copy import MAX_OUTER_DIMS
from ..errors import NotLowerable
from ..ir import DType, Node
from ..ir.symbolic import same
from ..ir.unbacked import data_dependent_run
from ..program import (
    Buf,
    Call,
    Const,
    DimSlot,
    DimTable,
    ErrorSite,
    LowerContext,
    LoweredNode,
    int_table,
)
from .broadcast import broadcast_shapes, contiguous_strides, is_one, shape_of
from .indexing import elem_bytes, normalized_axis
from .misc import copy_call
from .registry import lowers
from .typed_elementwise import dtype_of, nary_calls

# ---------------------------------------------------------------------------
# Strided copies


def strided_copy_calls(tag: str, nbytes: int, x: str, y: str, dims: Sequence[tuple[int, int]],
                       src_start: int = 0, dst_start: int = 0) -> list[Call]:
    """y[dst_start + flat(i)] = x[src_start + sum i_d * stride_d] for the (count,
    source stride) dims, y contiguous in their order."""
    dst_strides = contiguous_strides([c for c, _ in dims])
    return strided_copies(tag, nbytes, x, y, [(c, s, d) for (c, s), d in
                                              zip(dims, dst_strides, strict=True)],
                          src_start, dst_start)


def strided_copies(tag: str, nbytes: int, x: str, y: str, dims: Sequence[tuple[int, int, int]],
                   src_start: int = 0, dst_start: int = 0) -> list[Call]:
    """y[dst_start + sum i_d * dst_d] = x[src_start + sum i_d * src_d] over (count, src
    stride, dst stride) dims (the last must have dst stride 1). Dims are merged where
    they can be; beyond what one copy kernel walks, the leading dim is unrolled here."""
    if math.prod(c for c, _, _ in dims) == 0:
        return []
    merged: list[list[int]] = []
    for count, src, dst in dims:
        if is_one(count):
            continue
        if merged and same(merged[-1][1], src * count) and same(merged[-1][2], dst * count):
            merged[-1] = [merged[-1][0] * count, src, dst]
        else:
            merged.append([count, src, dst])
    merged = merged or [[1, 1, 1]]
    if merged[-1][2] != 1:
        merged.append([1, 1, 1])  # the kernels' inner dim is contiguous in y
    if len(merged) - 1 > MAX_OUTER_DIMS:
        (count, src, dst), rest = merged[0], merged[1:]
        return [call for k in range(count) for call in strided_copies(
            f"{tag}.{k}", nbytes, x, y, [tuple(d) for d in rest], src_start + k * src,
            dst_start + k * dst)]
    n, inner_stride, _ = merged[-1]
    return [copy_call(nbytes, Buf(x, src_start * nbytes), Buf(y, dst_start * nbytes),
                      [tuple(d) for d in merged[:-1]], n, inner_stride, tag)]


def _node(node: Node, calls: list[Call], semantics: str, note: str) -> LoweredNode:
    return LoweredNode(node.name, node.op, node.outputs, calls, semantics=semantics, note=note)


def _expect(y: str, got: Sequence[int], want: Sequence[int]) -> None:
    if tuple(got) != tuple(want):
        raise NotLowerable(f"{y} has shape {list(got)}, expected {list(want)}")


# ---------------------------------------------------------------------------
# Slice


def _slice_inputs(node: Node, ctx: LowerContext) -> list[str | np.ndarray | None]:
    """starts, ends, axes, steps: a constant array, a runtime tensor name, or None."""
    if ctx.graph.opsets.get("", 13) < 10:
        return [None if node.attr(k) is None else np.asarray(node.attr(k), np.int64)
                for k in ("starts", "ends", "axes")] + [None]
    names = (list(node.inputs[1:5]) + ["", "", "", ""])[:4]
    return [None if not n else np.asarray(ctx.graph.const(n)).astype(np.int64).ravel()
            if ctx.graph.is_const(n) else n for n in names]


@lowers("Slice")
def lower_slice(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    shape, out = shape_of(ctx, x), shape_of(ctx, y)
    if len(shape) != len(out):
        raise NotLowerable(f"{y} has rank {len(out)}, not {len(shape)}")
    params = _slice_inputs(node, ctx)
    if any(isinstance(p, str) for p in params):
        return _runtime_slice(node, ctx, params, shape, out)
    starts, ends, axes, steps = params
    axes = np.arange(len(starts)) if axes is None else axes
    steps = np.ones(len(starts), np.int64) if steps is None else steps
    first, step = [0] * len(shape), [1] * len(shape)
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        a = int(a) % len(shape)
        lo, hi, st = slice(int(s), int(e), int(st)).indices(shape[a])
        if len(range(lo, hi, st)) != out[a]:
            raise NotLowerable(f"slice of axis {a} gives {len(range(lo, hi, st))}, "
                               f"{y} has {out[a]}")
        first[a], step[a] = lo, st
    strides = contiguous_strides(shape)
    src = sum(f * s for f, s in zip(first, strides, strict=True))
    dims = [(o, st * s) for o, st, s in zip(out, step, strides, strict=True)]
    calls = strided_copy_calls(f"{node.name}.plan", elem_bytes(ctx, x), x, y, dims, src)
    return _node(node, calls, f"y[i] = x[{first} + i * {step}]",
                 "constant parameters: strided copy")


def _runtime_slice(node: Node, ctx: LowerContext, params: list, shape: tuple[int, ...],
                   out: tuple[int, ...]) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    # the parameters share one index type and length (ONNX's Tind): read them off
    # a run-time one; constant starts (a mask cut to a length computed from a
    # symbolic Shape, as optimum's Llama export does) become a table like the others
    runtime = next(p for p in params if isinstance(p, str))
    index = dtype_of(ctx, runtime)
    n = math.prod(shape_of(ctx, runtime))
    rank = len(shape)
    if rank > S.MAX_RANK:
        raise NotLowerable(f"Slice of rank {rank}: at most {S.MAX_RANK} is supported")

    def operand(p, default: np.ndarray, tag: str):
        if isinstance(p, str):
            return Buf(p)
        return Const(f"{node.name}.{tag}", (default if p is None else p).astype(index.numpy))

    starts = operand(params[0], np.zeros(n, np.int64), "starts")
    ends = operand(params[1], np.zeros(n, np.int64), "ends")  # ends are required
    axes = operand(params[2], np.arange(n), "axes")
    steps = operand(params[3], np.ones(n, np.int64), "steps")
    pad = [1] * (S.MAX_RANK - rank)
    dims_in = int_table(f"{node.name}.in", pad + list(shape))
    dims_out = int_table(f"{node.name}.out", pad + list(out))
    site = ErrorSite(f"Slice node '{node.name}': run-time starts/ends/axes/steps")
    first = data_dependent_run(out)
    lengths = (site, dims_in, DimSlot(first) if first else dims_out, starts, ends,
               steps, axes, n, rank)
    # the kernel copies the compiled lengths: parameters giving others are refused;
    # or, where the output's dims are data-dependent sizes, it sets them
    setup = [Call(check_slice_kernel(index, S.MAX_RANK, write=True), lengths)] if first else []
    calls = [] if first else [Call(check_slice_kernel(index, S.MAX_RANK), lengths)]
    if math.prod(out):
        call = Call(S.slice_kernel(elem_bytes(ctx, x), index),
                    (Buf(x), Buf(y), dims_in, dims_out, starts, steps, axes, n, rank))
        calls.append(call)
    ln = _node(node, calls, "y[i] = x[start + i * step], start/step from runtime inputs",
               "runtime parameters: decoded by the kernel, one element at a time")
    return replace(ln, setup=setup)


# ---------------------------------------------------------------------------
# Split, Expand, Tile, DepthToSpace, SpaceToDepth


@lowers("Split")
def lower_split(node: Node, ctx: LowerContext) -> LoweredNode:
    """The parts' sizes come from the outputs' static shapes (the `split` input
    or attribute, or num_outputs, decided them)."""
    x = node.inputs[0]
    shape = shape_of(ctx, x)
    axis = normalized_axis(node, len(shape))
    nbytes = elem_bytes(ctx, x)
    outer, inner = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    calls, start = [], 0
    for k, o in enumerate(node.outputs):
        part_shape = shape_of(ctx, o)
        _expect(o, part_shape, shape[:axis] + (part_shape[axis],) + shape[axis + 1:])
        part = part_shape[axis]
        calls += strided_copy_calls(f"{node.name}.part{k}", nbytes, x, o,
                                    [(outer, shape[axis] * inner), (part * inner, 1)],
                                    start * inner)
        start += part
    if start != shape[axis]:
        raise NotLowerable(f"parts of {start} along axis {axis} of {shape[axis]}")
    return _node(node, calls, f"y_k = x[..., offset_k : offset_k + size_k, ...] (axis {axis})",
                 "one row copy per output")


@lowers("Expand")
def lower_expand(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    shape, out = shape_of(ctx, x), shape_of(ctx, y)
    if broadcast_shapes(shape, out) != tuple(out):
        raise NotLowerable(f"{list(shape)} does not broadcast to {y}'s {list(out)}")
    dt = dtype_of(ctx, x)
    calls = nary_calls("identity", [(Buf(x), dt, shape)], y, dt, out, f"{node.name}.plan")
    return _node(node, calls, "y[i] = x[broadcast(i)]", "broadcasting copy")


@lowers("Tile")
def lower_tile(node: Node, ctx: LowerContext) -> LoweredNode:
    """y[r * n + i] = x[i] per dim: each dim becomes (repeat, stride 0) around
    (n, x's stride); the repeat counts come from the static output shape."""
    x, y = node.inputs[0], node.outputs[0]
    shape, out = shape_of(ctx, x), shape_of(ctx, y)
    if len(shape) != len(out) or any(n and o % n for n, o in zip(shape, out, strict=True)):
        raise NotLowerable(f"{y}'s shape {list(out)} is no tiling of {list(shape)}")
    strides = contiguous_strides(shape)
    dims = [d for n, o, s in zip(shape, out, strides, strict=True)
            for d in ((o // n if n else 0, 0), (n, s))]
    calls = strided_copy_calls(f"{node.name}.plan", elem_bytes(ctx, x), x, y, dims)
    return _node(node, calls, "y[i] = x[i mod shape(x)]", "strided copy, repeats as stride 0")


def _permuted_copy(node: Node, ctx: LowerContext, shape: Sequence[int],
                   perm: Sequence[int]) -> list[Call]:
    """y = transpose(reshape(x, shape), perm), as one strided copy."""
    x, y = node.inputs[0], node.outputs[0]
    if math.prod(shape) != math.prod(shape_of(ctx, y)):
        raise NotLowerable(f"{y} does not hold {list(shape)}")
    strides = contiguous_strides(shape)
    return strided_copy_calls(f"{node.name}.plan", elem_bytes(ctx, x), x, y,
                              [(shape[p], strides[p]) for p in perm])


def _blocks(node: Node, ctx: LowerContext) -> tuple[int, int, int, int, int, str]:
    n, c, h, w = shape_of(ctx, node.inputs[0])
    mode = node.attr("mode", "DCR")
    return n, c, h, w, int(node.attr("blocksize")), mode


@lowers("DepthToSpace")
def lower_depth_to_space(node: Node, ctx: LowerContext) -> LoweredNode:
    n, c, h, w, bs, mode = _blocks(node, ctx)
    cc = c // (bs * bs)
    if mode == "DCR":
        calls = _permuted_copy(node, ctx, (n, bs, bs, cc, h, w), (0, 3, 4, 1, 5, 2))
    else:
        calls = _permuted_copy(node, ctx, (n, cc, bs, bs, h, w), (0, 1, 4, 2, 5, 3))
    return _node(node, calls, f"y[n, c, h*{bs}+i, w*{bs}+j] = x[n, ({mode}) c, i, j, h, w]",
                 "a 6-d transposition as one strided copy")


@lowers("SpaceToDepth")
def lower_space_to_depth(node: Node, ctx: LowerContext) -> LoweredNode:
    n, c, h, w, bs, mode = _blocks(node, ctx)
    shape = (n, c, h // bs, bs, w // bs, bs)
    perm = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
    calls = _permuted_copy(node, ctx, shape, perm)
    return _node(node, calls, f"y[n, ({mode}) c, i, j, h, w] = x[n, c, h*{bs}+i, w*{bs}+j]",
                 "a 6-d transposition as one strided copy")


# ---------------------------------------------------------------------------
# ConstantOfShape, EyeLike, Range


def _bits(value: np.ndarray | float | int, dt: DType) -> int:
    raw = np.asarray(value).astype(dt.numpy).reshape(1).view(f"u{dt.itemsize}")[0]
    return int(np.int64(np.uint64(raw)))


@lowers("ConstantOfShape")
def lower_constant_of_shape(node: Node, ctx: LowerContext) -> LoweredNode:
    y = node.outputs[0]
    dt = ctx.graph.type_of(y).dtype
    value = node.attr("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    n = math.prod(shape_of(ctx, y))
    calls = [Call(F.fill_kernel(elem_bytes(ctx, y)), (Buf(y), n, _bits(value, dt)))] if n else []
    return _node(node, calls, f"y[i] = {value.ravel()[0]}", "vector fill")


@lowers("EyeLike")
def lower_eye_like(node: Node, ctx: LowerContext) -> LoweredNode:
    y = node.outputs[0]
    out = shape_of(ctx, y)
    if len(out) != 2:
        raise NotLowerable(f"EyeLike of rank {len(out)}")
    dt = ctx.graph.type_of(y).dtype
    k = int(node.attr("k", 0))
    calls = [Call(F.eye_kernel(elem_bytes(ctx, y)), (Buf(y), out[0], out[1], k, _bits(1, dt)))]
    return _node(node, calls, f"y[i, j] = (j - i == {k})", "zero fill, then the diagonal")


@lowers("Range")
def lower_range(node: Node, ctx: LowerContext) -> LoweredNode:
    start, _, delta = node.inputs[:3]
    y = node.outputs[0]
    dt = dtype_of(ctx, y)
    n = math.prod(shape_of(ctx, y))
    calls = [Call(F.range_kernel(dt), (Buf(start), Buf(delta), Buf(y), n))] if n else []
    return _node(node, calls, "y[i] = start + i * delta", f"{n} values (from y's shape)")


# ---------------------------------------------------------------------------
# CumSum, CumProd


@lowers("CumSum", "CumProd")
def lower_cumulative(node: Node, ctx: LowerContext) -> LoweredNode:
    x, axis = node.inputs[:2]
    y = node.outputs[0]
    shape = shape_of(ctx, x)
    if len(shape) > S.MAX_RANK:
        raise NotLowerable(f"rank {len(shape)}: at most {S.MAX_RANK} is supported")
    dims = Const(f"{node.name}.dims", np.array([1] * (S.MAX_RANK - len(shape)) + list(shape),
                                               np.int64))
    op = "add" if node.op == "CumSum" else "mul"
    calls = []
    if math.prod(shape):
        kernel = S.cumulative_kernel(op, dtype_of(ctx, x), dtype_of(ctx, axis))
        calls.append(Call(kernel, (Buf(x), Buf(y), Buf(axis), dims, len(shape),
                                   int(node.attr("exclusive", 0)), int(node.attr("reverse", 0)))))
    return _node(node, calls, f"y[.., t, ..] = {op} of x[.., s, ..] for s up to t",
                 "axis read at run time; running accumulator per line")


# ---------------------------------------------------------------------------
# CenterCropPad, BitCast, cosine windows


@lowers("CenterCropPad")
def lower_center_crop_pad(node: Node, ctx: LowerContext) -> LoweredNode:
    """Per axis the centered overlap of input and output (crop or zero padding, the
    odd element going to the end); the sizes come from the static output shape."""
    x, y = node.inputs[0], node.outputs[0]
    shape, out = shape_of(ctx, x), shape_of(ctx, y)
    if len(shape) != len(out):
        raise NotLowerable(f"{y} has rank {len(out)}, not {len(shape)}")
    nbytes = elem_bytes(ctx, x)
    calls = []
    if any(m > n for n, m in zip(shape, out, strict=True)) and math.prod(out):
        calls.append(Call(F.fill_kernel(nbytes), (Buf(y), math.prod(out), 0)))
    src_strides, dst_strides = contiguous_strides(shape), contiguous_strides(out)
    dims, src, dst = [], 0, 0
    for n, m, ss, ds in zip(shape, out, src_strides, dst_strides, strict=True):
        dims.append((min(n, m), ss, ds))
        src += max(n - m, 0) // 2 * ss
        dst += max(m - n, 0) // 2 * ds
    calls += strided_copies(f"{node.name}.plan", nbytes, x, y, dims, src, dst)
    return _node(node, calls, "y = centered crop / zero pad of x", "fill, then strided copy")


@lowers("BitCast")
def lower_bitcast(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    if ctx.graph.type_of(x).nbytes != ctx.graph.type_of(y).nbytes:
        raise NotLowerable("BitCast between tensors of different byte sizes")
    return LoweredNode(node.name, node.op, node.outputs, alias_of=x,
                       semantics=f"{y} = bits of {x}, reinterpreted")


_WINDOWS = {"HannWindow": (0.5, 0.5, 0.0), "HammingWindow": (25 / 46, 21 / 46, 0.0),
            "BlackmanWindow": (0.42, 0.5, 0.08)}


@lowers(*_WINDOWS)
def lower_window(node: Node, ctx: LowerContext) -> LoweredNode:
    """The length is the output's static size (the size input decided it)."""
    y = node.outputs[0]
    n = math.prod(shape_of(ctx, y))
    period = n if node.attr("periodic", 1) else n - 1
    a0, a1, a2 = _WINDOWS[node.op]
    calls = [Call(F.window_kernel(dtype_of(ctx, y)), (Buf(y), n, float(max(period, 1)), a0, a1,
                                                       a2))] if n else []
    return _node(node, calls, f"y[i] = {a0:.4g} - {a1:.4g} cos(2 pi i / {period}) + "
                              f"{a2:.4g} cos(4 pi i / {period})", "one pass")


# ---------------------------------------------------------------------------
# Shape, Size (normally folded away; lowered for pipelines that keep them)


@lowers("tinyc.DimValues")
def lower_dim_values(node: Node, ctx: LowerContext) -> LoweredNode:
    """A shape tensor whose contents are expressions of the run's sizes
    (passes/symbolic_shapes.py): the entry computes them and this copies them."""
    y = node.outputs[0]
    dt = ctx.graph.type_of(y).dtype
    if dt not in (DType.int64, DType.int32):
        raise NotLowerable(f"{y}: symbolic values of {dt.name} elements")
    values = tuple(node.attr("values"))
    table = DimTable(f"{node.name}.values", values, bits=8 * dt.itemsize)
    calls = [Call(COPY_BYTES, (Buf(y), table, len(values) * dt.itemsize))] if values else []
    return _node(node, calls, f"y = [{', '.join(str(v) for v in values)}]",
                 "computed from the run's sizes")


@lowers("Shape", "Size")
def lower_shape(node: Node, ctx: LowerContext) -> LoweredNode:
    """The input's static shape (or element count) is a compile-time constant,
    copied into the output."""
    x, y = node.inputs[0], node.outputs[0]
    shape = shape_of(ctx, x)
    if node.op == "Size":
        value = np.array(math.prod(shape), np.int64)
    else:
        rank = len(shape)
        start, end = int(node.attr("start", 0)), int(node.attr("end", rank))
        value = np.array(shape[slice(start, end)], np.int64)  # slice clamps like ONNX
    if tuple(value.shape) != shape_of(ctx, y):
        raise NotLowerable(f"{y} has shape {list(shape_of(ctx, y))}, not {list(value.shape)}")
    calls = [Call(COPY_BYTES, (Buf(y), Const(f"{node.name}.value", value), value.nbytes))] \
        if value.size else []
    return _node(node, calls, f"y = {value.tolist()}", "a constant (the static shape)")
