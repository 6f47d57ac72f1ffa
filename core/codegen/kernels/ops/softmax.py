"""Softmax and LogSoftmax along one axis of a tensor viewed as [outer, n, inner].

Two kernels, by where the vectors go:
- rows (inner == 1): each row of n contiguous elements is reduced with vectors
  along the row (max; exp stored and summed; scale in place);
- strided (inner > 1): vectors run along inner, and the three passes walk the
  n slices of a vector-wide column, keeping max and sum in registers.
Both subtract the max first, so exp never overflows.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ...parallel import parallel_loop
from ..support import mathfn as M
from ..support.vloop import (
    define_kernel,
    entry_alloca,
    fold,
    max_nnan,
    reduce,
    vector_loop,
    vload,
    vstore,
)

KINDS = ("softmax", "logsoftmax")
EXP_COST = 4  # work units per element (three passes, one exp), for the thread split


def softmax_rows_kernel(kind: str) -> Kernel:
    """(x, y, rows, n): kind over each contiguous row of n elements."""
    assert kind in KINDS
    name = f"{kind}_rows_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR, U.PTR, U.I64, U.I64], ["x", "y", "rows", "n"])
        rows, n = fn.args[2], fn.args[3]
        work = b.mul(b.mul(rows, n), U.i64(EXP_COST))
        parallel_loop(b, target.threads, name, list(fn.args), rows, work,
                      lambda b, args, r: _softmax_row(b, kind, lanes, args, r))
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR, I64, I64), build)


def _softmax_row(b: ir.IRBuilder, kind: str, lanes: int, args: list[ir.Value],
                 r: ir.Value) -> None:
    x, y, _, n = args
    vt = U.vec(U.F32, lanes)
    acc = entry_alloca(b, vt, "acc")
    base = b.mul(r, n)
    at = (lambda b, i: b.add(base, i))  # noqa: E731

    def accumulate(init: float, combine) -> ir.Value:
        """Fold combine(b, acc, x slice, i, count) over the row; lanes past
        its end read as -inf."""
        b.store(ir.Constant(vt, [init] * lanes), acc)

        def body(b, i, count):
            v = vload(b, x, at(b, i), lanes, count, fill=float("-inf"))
            b.store(combine(b, b.load(acc, typ=vt), v, i, count), acc)

        vector_loop(b, n, lanes, body)
        return b.load(acc, typ=vt)

    m = reduce(b, "fmax", accumulate(float("-inf"),
                                     lambda b, acc, v, i, count: max_nnan(b, acc, v)))
    vm = U.splat(b, m, lanes)

    def exp_sum(b, acc_v, v, i, count):
        # masked-off lanes hold -inf and add exp(-inf) = 0 (strict fsub: 'fast'
        # would make an infinite operand poison)
        e = M.exp_f32(b, b.fsub(v, vm))
        if kind == "softmax":
            vstore(b, e, y, at(b, i), count)  # scaled in place below
        return U.fadd(b, acc_v, e)

    total = reduce(b, "fadd", accumulate(0.0, exp_sum))
    if kind == "softmax":
        scale = U.splat(b, b.fdiv(U.f32(1.0), total), lanes)

        def write(b, i, count):
            e = vload(b, y, at(b, i), lanes, count)
            vstore(b, U.fmul(b, e, scale), y, at(b, i), count)
    else:
        shift = U.splat(b, U.fadd(b, m, M.log_f32(b, total)), lanes)

        def write(b, i, count):
            d = U.fsub(b, vload(b, x, at(b, i), lanes, count), shift)
            vstore(b, d, y, at(b, i), count)

    vector_loop(b, n, lanes, write, name="w")


def softmax_strided_kernel(kind: str) -> Kernel:
    """(x, y, outer, n, inner): kind along the middle axis of [outer, n, inner]."""
    assert kind in KINDS
    name = f"{kind}_strided_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        fn, b = define_kernel(module, name, [U.PTR, U.PTR, U.I64, U.I64, U.I64],
                              ["x", "y", "outer", "n", "inner"])
        outer, n, inner = fn.args[2:]
        work = b.mul(b.mul(outer, b.mul(n, inner)), U.i64(EXP_COST))
        parallel_loop(b, target.threads, name, list(fn.args), outer, work,
                      lambda b, args, o: _softmax_columns(b, kind, lanes, args, o))
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR, I64, I64, I64), build)


def _softmax_columns(b: ir.IRBuilder, kind: str, lanes: int, args: list[ir.Value],
                     o: ir.Value) -> None:
    """Slice o of [outer, n, inner]: softmax along n for every inner column."""
    x, y, _, n, inner = args
    vt = U.vec(U.F32, lanes)
    base = b.mul(o, b.mul(n, inner))

    def column(b: ir.IRBuilder, j: ir.Value, count: ir.Value | None) -> None:
        def at(b, k):
            return b.add(base, b.add(b.mul(k, inner), j))

        def slice_(b, k):
            return vload(b, x, at(b, k), lanes, count)

        m = fold(b, n, ir.Constant(vt, [float("-inf")] * lanes),
                 lambda b, k, acc: max_nnan(b, acc, slice_(b, k)))
        def exp_sum(b, k, acc):
            e = M.exp_f32(b, U.fsub(b, slice_(b, k), m))
            if kind == "softmax":
                vstore(b, e, y, at(b, k), count)  # scaled in place below
            return U.fadd(b, acc, e)

        total = fold(b, n, ir.Constant(vt, [0.0] * lanes), exp_sum)
        if kind == "softmax":
            scale = b.fdiv(ir.Constant(vt, [1.0] * lanes), total)
            with U.for_range(b, U.i64(0), n, name="k") as k:
                e = vload(b, y, at(b, k), lanes, count)
                vstore(b, U.fmul(b, e, scale), y, at(b, k), count)
        else:
            shift = U.fadd(b, m, M.log_f32(b, total))
            with U.for_range(b, U.i64(0), n, name="k") as k:
                vstore(b, U.fsub(b, slice_(b, k), shift), y, at(b, k), count)

    vector_loop(b, inner, lanes, column, name="j")
