"""Reductions (ReduceSum, ReduceMean, ..., ReduceLogSumExp) over any set of axes
of a tensor of any dtype, the axes read at run time.

ONNX lets `axes` be a runtime input, so this kernel decides which dims it
reduces while running: it turns the axes into a bit mask over the (front-padded)
dims, derives the output strides (0 along reduced dims; the output layout is the
same with or without keepdims), then makes one pass over the input
accumulating into a scratch array in the accumulation type (float for
float16, the dtype itself otherwise), and a final pass applying the
reduction's epilogue (mean, sqrt, log) while converting to the output dtype.
Float32 reductions over constant contiguous axes take reduce_fast.py instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir
import numpy as np

from ....ir import DType
from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.dtype_ir import compute_dtype, compute_type, storage_type, to_compute, to_storage
from ..support.typed_ops import emit_op
from ..support.vloop import define_kernel, entry_alloca, nested_loops

MAX_RANK = 8  # dims tables are padded in front with 1s


@dataclass(frozen=True)
class Reduction:
    identity: str  # "zero", "one", "lowest" or "highest" of the accumulation type
    combine: str  # a typed_ops binary op
    pre: str | None = None  # applied to each element first: "abs", "square", "exp"
    post: str | None = None  # applied to each result: "mean", "sqrt", "log"


REDUCTIONS = {
    "sum": Reduction("zero", "add"), "mean": Reduction("zero", "add", post="mean"),
    "max": Reduction("lowest", "max"), "min": Reduction("highest", "min"),
    "prod": Reduction("one", "mul"), "l1": Reduction("zero", "add", pre="abs"),
    "l2": Reduction("zero", "add", pre="square", post="sqrt"),
    "sumsquare": Reduction("zero", "add", pre="square"),
    "logsum": Reduction("zero", "add", post="log"),
    # log(sum(exp(x - m))) + m with m the max: a first pass finds m
    "logsumexp": Reduction("zero", "add", pre="exp", post="log"),
}


def accumulator_dtype(dt: DType) -> DType:
    return compute_dtype(dt)


def reduce_kernel(kind: str, in_dtype: DType, out_dtype: DType) -> Kernel:
    """(x, y, acc, dims, axes, naxes, rank, noop, out_numel).

    dims: i64[MAX_RANK], the input shape padded in front with 1s; axes: i64[naxes],
    the axes as given (negative ones count from the end of the `rank` real dims);
    naxes == 0 reduces every dim, unless `noop` is set. acc: scratch for out_numel
    accumulators (twice that for logsumexp, which keeps the maxima there too).
    """
    spec = REDUCTIONS[kind]
    name = f"reduce_{kind}_{in_dtype.short}_to_{out_dtype.short}"
    params = (PTR,) * 5 + (I64,) * 4

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 5 + [U.I64] * 4,
                              ["x", "y", "acc", "dims", "axes", "naxes", "rank", "noop",
                               "out_numel"])
        x, y, acc, dims_p, axes, naxes, rank, noop, out_numel = fn.args
        dims = [U.load(b, dims_p, U.i64(d), U.I64) for d in range(MAX_RANK)]
        mask = _axes_mask(b, axes, naxes, rank, noop)
        out_strides, count = _output_strides(b, dims, mask)
        walk = _Walk(b, x, in_dtype, dims, out_strides)
        acc_dt = accumulator_dtype(in_dtype)
        shift = None
        if kind == "logsumexp":
            shift = b.gep(acc, [b.mul(out_numel, U.i64(U.elem_size(storage_type(acc_dt))))],
                          source_etype=U.I8)
            _fill(b, shift, acc_dt, out_numel, "lowest")
            walk.accumulate(shift, acc_dt, "max", None, None)
        _fill(b, acc, acc_dt, out_numel, spec.identity)
        walk.accumulate(acc, acc_dt, spec.combine, spec.pre, shift)
        _finish(b, acc, y, acc_dt, out_dtype, out_numel, spec.post, count, shift)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


def _axes_mask(b: ir.IRBuilder, axes: ir.Value, naxes: ir.Value, rank: ir.Value,
               noop: ir.Value) -> ir.Value:
    """Bit d set when padded dim d is reduced."""
    pad = b.sub(U.i64(MAX_RANK), rank)
    slot = entry_alloca(b, U.I64, "mask")
    b.store(U.i64(0), slot)
    with U.for_range(b, U.i64(0), naxes, name="ax") as k:
        a = U.load(b, axes, k, U.I64)
        a = b.select(b.icmp_signed("<", a, U.i64(0)), b.add(a, rank), a)
        bit = b.shl(U.i64(1), b.add(a, pad))
        b.store(b.or_(b.load(slot, typ=U.I64), bit), slot)
    every = b.shl(b.sub(b.shl(U.i64(1), rank), U.i64(1)), pad)
    none_given = b.icmp_signed("==", naxes, U.i64(0))
    all_dims = b.select(b.icmp_signed("!=", noop, U.i64(0)), U.i64(0), every)
    return b.select(none_given, all_dims, b.load(slot, typ=U.I64))


def _output_strides(b: ir.IRBuilder, dims: list[ir.Value],
                    mask: ir.Value) -> tuple[list[ir.Value], ir.Value]:
    """Per dim, the output stride (0 if reduced); and how many elements each output
    reduces."""
    strides: list[ir.Value] = [U.i64(0)] * MAX_RANK
    running, count = U.i64(1), U.i64(1)
    for d in reversed(range(MAX_RANK)):
        reduced = b.icmp_signed("!=", b.and_(mask, U.i64(1 << d)), U.i64(0))
        strides[d] = b.select(reduced, U.i64(0), running)
        running = b.select(reduced, running, b.mul(running, dims[d]))
        count = b.select(reduced, b.mul(count, dims[d]), count)
    return strides, count


class _Walk:
    """One pass over every input element, in order, with its output index."""

    def __init__(self, b: ir.IRBuilder, x: ir.Value, dtype: DType, dims: list[ir.Value],
                 out_strides: list[ir.Value]):
        self.b, self.x, self.dtype, self.dims, self.out_strides = b, x, dtype, dims, out_strides

    def accumulate(self, acc: ir.Value, acc_dt: DType, combine: str, pre: str | None,
                   shift: ir.Value | None) -> None:
        """acc[o] = combine(acc[o], pre(x[i] - shift[o])) for every input element i."""
        b = self.b
        st = storage_type(acc_dt)
        flat = entry_alloca(b, U.I64, "flat")
        b.store(U.i64(0), flat)
        with nested_loops(b, self.dims) as idx:
            o = U.i64(0)
            for i, s in zip(idx, self.out_strides, strict=True):
                o = b.add(o, b.mul(i, s))
            p = b.load(flat, typ=U.I64)
            v = to_compute(b, U.load(b, self.x, p, storage_type(self.dtype)), self.dtype)
            v = _convert(b, v, self.dtype, acc_dt)
            if shift is not None:
                m = to_compute(b, U.load(b, shift, o, st), acc_dt)
                m = b.select(b.fcmp_ordered("==", m, ir.Constant(m.type, float("-inf"))),
                             ir.Constant(m.type, 0.0), m)
                v = b.fsub(v, m)
            if pre == "square":
                v = emit_op(b, "mul", [v, v], [acc_dt] * 2, acc_dt)
            elif pre is not None:
                v = emit_op(b, pre, [v], [acc_dt], acc_dt)
            old = to_compute(b, U.load(b, acc, o, st), acc_dt)
            U.store(b, to_storage(b, emit_op(b, combine, [old, v], [acc_dt] * 2, acc_dt),
                                  acc_dt), acc, o)
            b.store(b.add(p, U.i64(1)), flat)


def _convert(b: ir.IRBuilder, v: ir.Value, src: DType, dst: DType) -> ir.Value:
    return v if compute_dtype(src) == dst else emit_op(b, "cast", [v], [src], dst)


def _fill(b: ir.IRBuilder, acc: ir.Value, dt: DType, n: ir.Value, which: str) -> None:
    value = to_storage(b, identity_value(dt, which), dt)
    with U.for_range(b, U.i64(0), n, name="init") as o:
        U.store(b, value, acc, o)


def identity_value(dt: DType, which: str) -> ir.Constant:
    """The identity element `which` as a compute value of dt."""
    t = compute_type(dt)
    if dt.is_float:
        values = {"zero": 0.0, "one": 1.0, "lowest": float("-inf"), "highest": float("inf")}
        return ir.Constant(t, values[which])
    if dt is DType.bool:
        return ir.Constant(t, {"zero": 0, "one": 1, "lowest": 0, "highest": 1}[which])
    info = np.iinfo(dt.numpy)
    values = {"zero": 0, "one": 1, "lowest": int(info.min), "highest": int(info.max)}
    return ir.Constant(t, values[which])


def _finish(b: ir.IRBuilder, acc: ir.Value, y: ir.Value, acc_dt: DType, out_dt: DType,
            n: ir.Value, post: str | None, count: ir.Value, shift: ir.Value | None) -> None:
    st = storage_type(acc_dt)
    with U.for_range(b, U.i64(0), n, name="out") as o:
        v = to_compute(b, U.load(b, acc, o, st), acc_dt)
        if post == "mean":
            v = emit_op(b, "div", [v, _count_as(b, count, acc_dt)], [acc_dt] * 2, acc_dt)
        elif post is not None:
            v = emit_op(b, post, [v], [acc_dt], acc_dt)
        if shift is not None:
            m = to_compute(b, U.load(b, shift, o, st), acc_dt)
            finite = b.fcmp_ordered("!=", m, ir.Constant(m.type, float("-inf")))
            v = b.select(finite, b.fadd(v, m), v)
        U.store(b, to_storage(b, emit_op(b, "cast", [v], [acc_dt], out_dt), out_dt), y, o)


def _count_as(b: ir.IRBuilder, count: ir.Value, dt: DType) -> ir.Value:
    return emit_op(b, "cast", [count], [DType.int64], dt)
