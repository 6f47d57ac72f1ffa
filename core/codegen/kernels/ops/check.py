"""Checks of run-time values, run before the kernel that relies on them.

A check is one pass over a tensor that returns a status (runtime/status.py):
0 when every value is in range, else it fills the error record's value,
position and range and returns the failure's code; the entry function adds
the node and returns. Kernels after a check need no test in their loops.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....ir import DType
from ....program import ERR, I64, PTR, Kernel
from ....runtime.status import (
    INT_FIELDS,
    STATUS_INDEX_RANGE,
    STATUS_SHAPE_VALUE,
    STATUS_SLICE_LENGTH,
)
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.dtype_ir import load_index
from ..support.vloop import entry_alloca
from .gather import load_table


def check_indices_kernel(index: DType, k: int) -> Kernel:
    """(err, idx, rows, bounds) -> status: idx is [rows, k] and each idx[r, t]
    must lie in [bounds[t, 0], bounds[t, 1]] (bounds: i64[k, 2]). On failure the
    record gets the first offending value and its flat position."""
    name = f"check_indices{k}_{index.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = U.define(module, name, [U.PTR, U.PTR, U.I64, U.PTR],
                         ["err", "idx", "rows", "bounds"], ret=U.I32)
        fn.attributes.add("noinline")
        err, idx, rows, bounds = fn.args
        table = load_table(b, bounds, 2 * k)
        bad = entry_alloca(b, U.I1, "bad")
        b.store(ir.Constant(U.I1, 0), bad)
        # The common case: an or-reduction without early exit, which LLVM vectorizes.
        with U.for_range(b, U.i64(0), rows, name="r") as r:
            for t in range(k):
                v = load_index(b, idx, b.add(b.mul(r, U.i64(k)), U.i64(t)), index)
                b.store(b.or_(b.load(bad), _outside(b, v, table[2 * t], table[2 * t + 1])), bad)
        with b.if_then(b.load(bad), likely=False):
            _report_first(b, err, idx, b.mul(rows, U.i64(k)), bounds, k, index)
            b.ret(ir.Constant(U.I32, STATUS_INDEX_RANGE))
        b.ret(ir.Constant(U.I32, 0))
        return fn

    return Kernel(name, (ERR, PTR, I64, PTR), build)


def _outside(b: ir.IRBuilder, v: ir.Value, low: ir.Value, high: ir.Value) -> ir.Value:
    return b.or_(b.icmp_signed("<", v, low), b.icmp_signed(">", v, high))


def _bound(b: ir.IRBuilder, bounds: ir.Value, p: ir.Value, k: int, col: int) -> ir.Value:
    """bounds[p % k, col]: the range of the coordinate flat position p holds."""
    return U.load(b, bounds, b.add(b.mul(b.urem(p, U.i64(k)), U.i64(2)), U.i64(col)), U.I64)


def _report_first(b: ir.IRBuilder, err: ir.Value, idx: ir.Value, n: ir.Value,
                  bounds: ir.Value, k: int, index: DType) -> None:
    """A second, slow pass (only after a failure): the first bad position, into the record."""
    first = entry_alloca(b, U.I64, "first")
    b.store(U.i64(-1), first)
    with U.for_range(b, U.i64(0), n, name="p") as p:
        v = load_index(b, idx, p, index)
        out = _outside(b, v, _bound(b, bounds, p, k, 0), _bound(b, bounds, p, k, 1))
        unset = b.icmp_signed("<", b.load(first), U.i64(0))
        b.store(b.select(b.and_(out, unset), p, b.load(first)), first)
    p = b.load(first)
    fields = {"value": load_index(b, idx, p, index), "position": p,
              "low": _bound(b, bounds, p, k, 0), "high": _bound(b, bounds, p, k, 1)}
    for field, v in fields.items():
        U.store(b, v, err, U.i64(INT_FIELDS.index(field)))


def check_values_kernel(index: DType, k: int) -> Kernel:
    """(err, v, expected) -> status: v holds k values and each v[t] must equal
    one of expected[t, 0..2] (expected: i64[k, 3]); for a shape given as
    run-time data, which must be the one the model was compiled for. On
    failure the record gets the first offending value, its position and the
    value compiled (low = high = expected[t, 0])."""
    name = f"check_values{k}_{index.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = U.define(module, name, [U.PTR, U.PTR, U.PTR], ["err", "v", "expected"],
                         ret=U.I32)
        fn.attributes.add("noinline")
        err, values, expected = fn.args
        table = load_table(b, expected, 3 * k)
        for t in range(k):  # k is a shape's rank: unrolled, first failure reported
            v = load_index(b, values, U.i64(t), index)
            ok = b.icmp_signed("==", v, table[3 * t])
            for j in (1, 2):
                ok = b.or_(ok, b.icmp_signed("==", v, table[3 * t + j]))
            with b.if_then(b.not_(ok), likely=False):
                fields = {"value": v, "position": U.i64(t), "low": table[3 * t],
                          "high": table[3 * t]}
                for field, x in fields.items():
                    U.store(b, x, err, U.i64(INT_FIELDS.index(field)))
                b.ret(ir.Constant(U.I32, STATUS_SHAPE_VALUE))
        b.ret(ir.Constant(U.I32, 0))
        return fn

    return Kernel(name, (ERR, PTR, PTR), build)


def check_slice_kernel(index: DType, max_rank: int, write: bool = False) -> Kernel:
    """(err, in_dims, out_dims, starts, ends, steps, axes, naxes, rank) -> status:
    a Slice whose parameters are run-time data must give every axis the length
    the model was compiled for (dims tables: i64[max_rank], front-padded); an
    axis not sliced keeps its length. The length follows ONNX: negative
    starts/ends count from the end, then are clamped ([0, n] forward, [0, n-1]
    and [-1, n-1] backward); a step of 0 gives no elements. A bad axis is an
    index out of range. With `write`, out_dims is where the lengths go
    instead (i64[rank], not padded: the slots of the output's data-dependent
    dims, kernels/data_dependent.py), and any lengths are accepted."""
    name = f"{'slice_lengths' if write else 'check_slice'}_{index.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = U.define(module, name, [U.PTR] * 7 + [U.I64] * 2,
                         ["err", "in_dims", "out_dims", "starts", "ends", "steps", "axes",
                          "naxes", "rank"], ret=U.I32)
        fn.attributes.add("noinline")
        err, in_dims, out_dims, starts, ends, steps, axes, naxes, rank = fn.args
        with b.goto_entry_block():
            lengths = b.alloca(U.I64, size=U.i64(max_rank), name="lengths")
        given = load_table(b, in_dims, max_rank)
        for d in range(max_rank):
            U.store(b, given[d], lengths, U.i64(d))
        pad = b.sub(U.i64(max_rank), rank)
        with U.for_range(b, U.i64(0), naxes, name="k") as k:
            a = load_index(b, axes, k, index)
            axis = b.select(b.icmp_signed("<", a, U.i64(0)), b.add(a, rank), a)
            with b.if_then(_outside(b, axis, U.i64(0), b.sub(rank, U.i64(1))), likely=False):
                _record(b, err, a, k, b.neg(rank), b.sub(rank, U.i64(1)))
                b.ret(ir.Constant(U.I32, STATUS_INDEX_RANGE))
            d = b.add(axis, pad)
            params = (load_index(b, p, k, index) for p in (starts, ends, steps))
            U.store(b, _slice_length(b, U.load(b, in_dims, d, U.I64), *params), lengths, d)
        if write:
            for d in range(max_rank):
                with b.if_then(b.icmp_signed(">=", U.i64(d), pad)):
                    U.store(b, U.load(b, lengths, U.i64(d), U.I64), out_dims,
                            b.sub(U.i64(d), pad))
            b.ret(ir.Constant(U.I32, 0))
            return fn
        wanted = load_table(b, out_dims, max_rank)
        for d in range(max_rank):  # padded dims are 1 in both
            got = U.load(b, lengths, U.i64(d), U.I64)
            with b.if_then(b.icmp_signed("!=", got, wanted[d]), likely=False):
                _record(b, err, got, b.sub(U.i64(d), pad), wanted[d], wanted[d])
                b.ret(ir.Constant(U.I32, STATUS_SLICE_LENGTH))
        b.ret(ir.Constant(U.I32, 0))
        return fn

    return Kernel(name, (ERR, PTR, PTR, PTR, PTR, PTR, PTR, I64, I64), build)


def _slice_length(b: ir.IRBuilder, n: ir.Value, start: ir.Value, end: ir.Value,
                  step: ir.Value) -> ir.Value:
    """len(range(start, end, step)) over a dim of n, as ONNX normalizes them;
    written as (dist - 1) / |step| + 1 so that no sum can overflow."""
    forward = b.icmp_signed(">", step, U.i64(0))
    start = b.select(b.icmp_signed("<", start, U.i64(0)), b.add(start, n), start)
    end = b.select(b.icmp_signed("<", end, U.i64(0)), b.add(end, n), end)
    last = b.select(forward, n, b.sub(n, U.i64(1)))
    start = _clamp(b, start, U.i64(0), last)
    end = _clamp(b, end, b.select(forward, U.i64(0), U.i64(-1)), last)
    dist = b.select(forward, b.sub(end, start), b.sub(start, end))
    size = b.select(forward, step, b.neg(step))
    none = b.or_(b.icmp_signed("<=", dist, U.i64(0)), b.icmp_signed("==", step, U.i64(0)))
    safe = b.select(none, U.i64(1), size)  # no division by a zero step
    length = b.add(b.sdiv(b.sub(dist, U.i64(1)), safe), U.i64(1))
    return b.select(none, U.i64(0), length)


def _clamp(b: ir.IRBuilder, v: ir.Value, low: ir.Value, high: ir.Value) -> ir.Value:
    v = b.select(b.icmp_signed("<", v, low), low, v)
    return b.select(b.icmp_signed(">", v, high), high, v)


def _record(b: ir.IRBuilder, err: ir.Value, value: ir.Value, position: ir.Value,
            low: ir.Value, high: ir.Value) -> None:
    fields = {"value": value, "position": position, "low": low, "high": high}
    for field, x in fields.items():
        U.store(b, x, err, U.i64(INT_FIELDS.index(field)))
