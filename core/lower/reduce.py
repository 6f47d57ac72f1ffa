"""Reductions: ReduceSum / Mean / Max / Min / Prod / L1 / L2 / SumSquare / LogSum /
LogSumExp (axes as an attribute, a constant or a runtime input), ArgMax / ArgMin,
TopK, Hardmax, Det.

Float32 reductions over constant axes that are contiguous once size-1 dims are
dropped ([outer, r, inner]) use vector kernels (codegen/kernels/ops/reduce_fast.py);
everything else uses the general kernel, which reads the axes at run time
(codegen/kernels/ops/reduce.py).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..codegen.kernels.ops import data_dependent as D
from ..codegen.kernels.ops import fill as FILL
from ..codegen.kernels.ops import linalg as LA
from ..codegen.kernels.ops import reduce as R
from ..codegen.kernels.ops import reduce_fast as F
from ..codegen.kernels.ops import scan_ops as S
from ..codegen.kernels.support.dtype_ir import storage_type
from ..codegen.llvm_util import elem_size
from ..errors import NotLowerable
from ..ir import DType, Node
from ..ir.unbacked import unbacked_symbol
from ..program import (
    Buf,
    Call,
    Const,
    DimSlot,
    ErrorSite,
    LowerContext,
    LoweredNode,
    Scratch,
    int_table,
)
from .broadcast import shape_of
from .registry import lowers
from .typed_elementwise import dtype_of

KINDS = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
         "ReduceProd": "prod", "ReduceL1": "l1", "ReduceL2": "l2",
         "ReduceSumSquare": "sumsquare", "ReduceLogSum": "logsum",
         "ReduceLogSumExp": "logsumexp"}


def _axes(node: Node, ctx: LowerContext) -> tuple[np.ndarray | None, str | None]:
    """(constant axes, or None), (name of a runtime axes tensor, or None); both None
    means 'no axes given'."""
    if len(node.inputs) > 1 and node.inputs[1]:
        name = node.inputs[1]
        if ctx.graph.is_const(name):
            return np.asarray(ctx.graph.const(name), np.int64).ravel(), None
        return None, name
    axes = node.attr("axes")
    return (None if axes is None else np.asarray(axes, np.int64).ravel()), None


def reduced_dims(axes: np.ndarray | None, rank: int, noop: bool) -> list[int]:
    if axes is None or axes.size == 0:
        return [] if noop else list(range(rank))
    return sorted({int(a) % rank for a in axes})


@lowers(*KINDS)
def lower_reduce(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    kind = KINDS[node.op]
    shape, out_numel = shape_of(ctx, x), math.prod(shape_of(ctx, y))
    in_dt, out_dt = dtype_of(ctx, x), dtype_of(ctx, y)
    if kind in ("logsum", "logsumexp", "l2") and not in_dt.is_float:
        raise NotLowerable(f"{node.op} of {in_dt.name}")
    axes, axes_name = _axes(node, ctx)
    noop = bool(node.attr("noop_with_empty_axes", 0))
    setup = _output_dims_from_axes(node, ctx, shape, axes_name)
    if not setup:
        _check_output_shape(node, ctx, shape, axes, axes_name, noop)
    if out_numel == 0:
        return LoweredNode(node.name, node.op, node.outputs, [], semantics="empty output",
                           setup=setup)
    if axes_name is None and in_dt == DType.float32 == out_dt:
        dims = reduced_dims(axes, len(shape), noop)
        fast = F.contiguous_form(shape, dims)
        if fast is not None and kind in F.KINDS:
            return _fast_node(node, kind, x, y, fast, dims)
    ln = _general_node(node, ctx, kind, (x, y), (in_dt, out_dt), shape, out_numel,
                       (axes, axes_name), noop)
    return replace(ln, setup=setup)


def _output_dims_from_axes(node: Node, ctx: LowerContext, shape: tuple,
                           axes_name: str | None) -> list[Call]:
    """With axes given as run-time data, the output's dims are data-dependent
    sizes (passes/data_dependent_shapes.py): a call that checks the axes and
    writes those dims into their slots, before the node picks its variant."""
    out = shape_of(ctx, node.outputs[0])
    slots = [unbacked_symbol(d) for d in out]
    if axes_name is None or not out or not all(slots):
        return []
    naxes = int(math.prod(shape_of(ctx, axes_name)))
    kernel = D.reduce_dims_kernel(dtype_of(ctx, axes_name), len(shape), naxes,
                                  len(out) == len(shape))
    site = ErrorSite(f"{node.op} node '{node.name}': axes input '{axes_name}'")
    return [Call(kernel, (site, Buf(axes_name), int_table(f"{node.name}.in_dims", shape),
                          *(DimSlot(s) for s in slots)))]


def _check_output_shape(node: Node, ctx: LowerContext, shape: tuple[int, ...],
                        axes: np.ndarray | None, axes_name: str | None, noop: bool) -> None:
    """The output type must be what these axes give: a shape that depends on runtime
    axes values cannot be inferred, and a wrong type would mean a wrong buffer."""
    out = shape_of(ctx, node.outputs[0])
    keep = bool(node.attr("keepdims", 1))
    if axes_name is None:
        dims = reduced_dims(axes, len(shape), noop)
        want = tuple(1 if d in dims else n for d, n in enumerate(shape) if keep or d not in dims)
        ok = out == want
    else:
        naxes = math.prod(shape_of(ctx, axes_name))
        full = naxes == 0 and not noop
        rank = len(shape) if keep or (naxes == 0 and noop) else 0 if full else len(shape) - naxes
        ok = len(out) == rank and (not keep or all(o in (1, n) for o, n in zip(out, shape,
                                                                              strict=True)))
    if not ok:
        raise NotLowerable(f"output type {list(out)} does not fit input {list(shape)}; its "
                           "shape depends on the values of runtime axes and was not inferred")


def _fast_node(node: Node, kind: str, x: str, y: str, form: tuple[int, int, int],
               dims: list[int]) -> LoweredNode:
    outer, r, inner = form
    if inner == 1:
        call = Call(F.rows_kernel(kind), (Buf(x), Buf(y), outer, r))
    else:
        call = Call(F.columns_kernel(kind), (Buf(x), Buf(y), outer, r, inner))
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y[o,i] = {kind}_r x[o,r,i] over [{outer},{r},{inner}] "
                                 f"(axes {dims})",
                       note=f"{call.kernel.name}: vectors "
                            + ("along each row" if inner == 1 else "across inner positions"))


def _general_node(node: Node, ctx: LowerContext, kind: str, values: tuple[str, str],
                  dtypes: tuple[DType, DType], shape: tuple[int, ...], out_numel: int,
                  axes_spec: tuple[np.ndarray | None, str | None], noop: bool) -> LoweredNode:
    (x, y), (in_dt, out_dt), (axes, axes_name) = values, dtypes, axes_spec
    rank = len(shape)
    if rank > R.MAX_RANK:
        raise NotLowerable(f"reduction of rank {rank}: at most {R.MAX_RANK} is supported")
    dims = int_table(f"{node.name}.dims", [1] * (R.MAX_RANK - rank) + list(shape))
    if axes_name is not None:
        axes_arg, naxes = Buf(axes_name), math.prod(shape_of(ctx, axes_name))
    else:
        given = np.zeros(1, np.int64) if axes is None else axes
        axes_arg, naxes = Const(f"{node.name}.axes", given), 0 if axes is None else axes.size
    acc_bytes = elem_size(storage_type(R.accumulator_dtype(in_dt))) * out_numel
    acc_bytes *= 2 if kind == "logsumexp" else 1
    call = Call(R.reduce_kernel(kind, in_dt, out_dt),
                (Buf(x), Buf(y), Scratch("acc", max(acc_bytes, 8)), dims, axes_arg, naxes,
                 rank, int(noop), out_numel))
    where = (f"runtime axes {axes_name}" if axes_name
             else f"axes {None if axes is None else list(axes)}")
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y = {kind} of x over {where}",
                       note=f"{call.kernel.name}: one scalar pass over the input, axes "
                            "decoded at run time")


def _axis_form(node: Node, shape: tuple[int, ...], default: int = 0) -> tuple[int, int, int, int]:
    """(axis, outer, n, inner) of the tensor viewed around one attribute axis."""
    rank = len(shape)
    axis = int(node.attr("axis", default))
    if not -rank <= axis < rank:
        raise NotLowerable(f"axis {axis} out of range for rank {rank}")
    axis %= rank
    return axis, math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


@lowers("ArgMax", "ArgMin")
def lower_arg(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    shape = shape_of(ctx, x)
    axis, outer, n, inner = _axis_form(node, shape)
    if math.prod(shape_of(ctx, y)) != outer * inner or n == 0:
        raise NotLowerable(f"{y}'s shape does not fit reducing axis {axis} of {list(shape)}")
    last = bool(node.attr("select_last_index", 0))
    kernel = S.arg_kernel(node.op == "ArgMax", dtype_of(ctx, x), last)
    calls = [Call(kernel, (Buf(x), Buf(y), outer, n, inner))] if outer * inner else []
    which = "max" if node.op == "ArgMax" else "min"
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=f"y[o, i] = arg{which}_t x[o, t, i] over [{outer}, {n}, {inner}]",
                       note=f"{kernel.name}: ties to the {'last' if last else 'first'} index")


@lowers("TopK")
def lower_topk(node: Node, ctx: LowerContext) -> LoweredNode:
    """k comes from the outputs' shape: a number where the K input is a
    constant, else a data-dependent size read from K during the run."""
    x = node.inputs[0]
    values, indices = node.outputs[:2]
    shape = shape_of(ctx, x)
    axis, outer, n, inner = _axis_form(node, shape, default=-1)
    out = shape_of(ctx, values)
    k = out[axis] if len(out) == len(shape) else -1
    if out != shape[:axis] + (k,) + shape[axis + 1:] or not 0 <= k <= n:
        raise NotLowerable(f"{values}'s shape {list(out)} is no top-k of {list(shape)}")
    if not (values and indices):
        raise NotLowerable("TopK with an omitted output")
    largest = bool(node.attr("largest", 1))
    kernel = S.topk_kernel(largest, dtype_of(ctx, x))
    calls = [Call(kernel, (Buf(x), Buf(values), Buf(indices), outer, n, inner, k))]
    if unbacked_symbol(k):  # k is run-time data: read (0 <= k <= n) into its dims slot
        site = ErrorSite(f"TopK node '{node.name}': k input '{node.inputs[1]}'")
        read = Call(D.read_size_kernel(dtype_of(ctx, node.inputs[1])),
                    (site, Buf(node.inputs[1]), DimSlot(unbacked_symbol(k)), 0, n))
        calls = [read] + (calls if outer * inner else [])
    elif not outer * inner * k:
        calls = []
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=f"the {k} {'largest' if largest else 'smallest'} of each "
                                 f"x[o, :, i] over [{outer}, {n}, {inner}], sorted",
                       note=f"{kernel.name}: k scans per slice, ties by lower index")


@lowers("Hardmax")
def lower_hardmax(node: Node, ctx: LowerContext) -> LoweredNode:
    """1 at the first maximum along the axis, else 0: ArgMax into scratch, then one-hot.
    Before opset 13 the input is flattened to 2-D at the axis."""
    x, y = node.inputs[0], node.outputs[0]
    shape, dt = shape_of(ctx, x), dtype_of(ctx, x)
    if ctx.graph.opsets.get("", 13) >= 13:
        _, outer, n, inner = _axis_form(node, shape, default=-1)
    else:
        axis = int(node.attr("axis", 1)) % max(len(shape), 1)
        outer, n, inner = math.prod(shape[:axis]), math.prod(shape[axis:]), 1
    if not outer * n * inner:
        return LoweredNode(node.name, node.op, node.outputs, [], semantics="empty")
    idx = Scratch("argmax", 8 * outer * inner)
    values = Const(f"{node.name}.values", np.array([0, 1], dt.numpy))
    calls = [Call(S.arg_kernel(True, dt, False), (Buf(x), idx, outer, n, inner)),
             Call(FILL.onehot_kernel(dt.itemsize, DType.int64),
                  (idx, values, Buf(y), outer, n, inner))]
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=f"y[o, k, i] = k == argmax_t x[o, t, i] over [{outer}, {n}, "
                                 f"{inner}]", note="argmax into scratch, then one-hot")


@lowers("Det")
def lower_det(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    shape = shape_of(ctx, x)
    if len(shape) < 2 or shape[-1] != shape[-2] or dtype_of(ctx, x) != DType.float32:
        raise NotLowerable(f"Det of {list(shape)} {dtype_of(ctx, x).name}")
    m, batch = shape[-1], math.prod(shape[:-2])
    calls = [Call(LA.det_kernel(), (Buf(x), Buf(y), Scratch("work", 8 * m * m + 8), batch, m))] \
        if batch else []
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=f"y[k] = det(x[k]) for {batch} {m}x{m} matrices",
                       note="Gaussian elimination with partial pivoting, in double")
