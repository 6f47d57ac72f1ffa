"""Kernels walking one axis of a tensor viewed as [outer, n, inner]: CumSum /
CumProd (axis read at run time), ArgMax / ArgMin, TopK, ReverseSequence; and
Slice with starts / ends / axes / steps read at run time.

These are scalar loops (one element at a time): the ops are rare in the hot
path of real models, and correctness across dtypes and runtime parameters
matters more here than vector width.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....ir import DType
from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.dtype_ir import compute_dtype, load_index, storage_type, to_compute, to_storage
from ..support.typed_ops import emit_op
from ..support.vloop import define_kernel, entry_alloca, nested_loops
from .gather import MAX_RANK, copy_elems, elem_type, load_table
from .reduce import identity_value


def _element(b: ir.IRBuilder, x: ir.Value, i: ir.Value, dt: DType) -> ir.Value:
    return to_compute(b, U.load(b, x, i, storage_type(dt)), dt)


def split_at_axis(b: ir.IRBuilder, dims: list[ir.Value],
                   axis: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """(outer, n, inner) of padded dims around a runtime axis position."""
    outer, n, inner = U.i64(1), U.i64(1), U.i64(1)
    for d, size in enumerate(dims):
        before = b.icmp_signed(">", axis, U.i64(d))
        at = b.icmp_signed("==", axis, U.i64(d))
        outer = b.select(before, b.mul(outer, size), outer)
        n = b.select(at, size, n)
        inner = b.select(b.or_(before, at), inner, b.mul(inner, size))
    return outer, n, inner


def cumulative_kernel(op: str, dtype: DType, axis_dtype: DType) -> Kernel:
    """CumSum (op 'add') / CumProd ('mul'): (x, y, axis, dims, rank, exclusive, reverse).
    dims: i64[MAX_RANK] front-padded; axis: a 1-element tensor, negative from the end."""
    name = f"cum{op}_{dtype.short}_{axis_dtype.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 4 + [U.I64] * 3,
                              ["x", "y", "axis", "dims", "rank", "exclusive", "reverse"])
        x, y, axis_p, dims_p, rank, exclusive, reverse = fn.args
        a = load_index(b, axis_p, U.i64(0), axis_dtype)
        a = b.select(b.icmp_signed("<", a, U.i64(0)), b.add(a, rank), a)
        outer, n, inner = split_at_axis(b, load_table(b, dims_p, MAX_RANK),
                                         b.add(a, b.sub(U.i64(MAX_RANK), rank)))
        acc_dt = compute_dtype(dtype)
        acc = entry_alloca(b, storage_type(acc_dt), "acc")
        is_excl = b.icmp_signed("!=", exclusive, U.i64(0))
        is_rev = b.icmp_signed("!=", reverse, U.i64(0))
        with nested_loops(b, [outer, inner]) as (o, i):
            b.store(to_storage(b, identity_value(acc_dt, "zero" if op == "add" else "one"),
                               acc_dt), acc)
            with U.for_range(b, U.i64(0), n, name="t") as t:
                j = b.select(is_rev, b.sub(b.sub(n, U.i64(1)), t), t)
                at = b.add(b.mul(b.add(b.mul(o, n), j), inner), i)
                before = to_compute(b, b.load(acc, typ=storage_type(acc_dt)), acc_dt)
                v = emit_op(b, "cast", [_element(b, x, at, dtype)], [dtype], acc_dt)
                after = emit_op(b, op, [before, v], [acc_dt] * 2, acc_dt)
                b.store(to_storage(b, after, acc_dt), acc)
                out = emit_op(b, "cast", [b.select(is_excl, before, after)], [acc_dt], dtype)
                U.store(b, to_storage(b, out, dtype), y, at)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 4 + (I64,) * 3, build)


def _better(b: ir.IRBuilder, largest: bool, v: ir.Value, w: ir.Value, dt: DType) -> ir.Value:
    """v strictly before w in the order: larger first if `largest`, else smaller."""
    return emit_op(b, "gt" if largest else "lt", [v, w], [dt, dt], DType.bool)


def arg_kernel(largest: bool, dtype: DType, last: bool) -> Kernel:
    """ArgMax / ArgMin along n: (x, y, outer, n, inner), y int64; ties go to the
    first index, or the last with `last`."""
    name = f"arg{'max' if largest else 'min'}_{dtype.short}{'_last' if last else ''}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 2 + [U.I64] * 3,
                              ["x", "y", "outer", "n", "inner"])
        x, y, outer, n, inner = fn.args
        best_v = entry_alloca(b, storage_type(dtype), "best")
        best_i = entry_alloca(b, U.I64, "best_i")
        with nested_loops(b, [outer, inner]) as (o, i):
            base = b.add(b.mul(b.mul(o, n), inner), i)
            b.store(U.load(b, x, base, storage_type(dtype)), best_v)
            b.store(U.i64(0), best_i)
            with U.for_range(b, U.i64(1), n, name="t") as t:
                raw = U.load(b, x, b.add(base, b.mul(t, inner)), storage_type(dtype))
                v, w = to_compute(b, raw, dtype), _element(b, best_v, U.i64(0), dtype)
                take = _better(b, largest, v, w, dtype)
                if last:
                    take = b.or_(take, emit_op(b, "eq", [v, w], [dtype, dtype], DType.bool))
                with b.if_then(take):
                    b.store(raw, best_v)
                    b.store(t, best_i)
            U.store(b, b.load(best_i, typ=U.I64), y, b.add(b.mul(o, inner), i))
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 2 + (I64,) * 3, build)


def topk_kernel(largest: bool, dtype: DType) -> Kernel:
    """(x, values, indices, outer, n, inner, k): the k first elements along n in the
    order (value, then lower index first), sorted. One pass per slice keeps the
    best k so far, sorted, in the outputs themselves: an element better than the
    current k-th is inserted by shifting the worse ones down (ties keep the
    earlier, lower index first), so random data costs about n compares."""
    name = f"topk_{'largest' if largest else 'smallest'}_{dtype.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 3 + [U.I64] * 4,
                              ["x", "values", "indices", "outer", "n", "inner", "k"])
        x, values, indices, outer, n, inner, k = fn.args
        st = storage_type(dtype)
        filled = entry_alloca(b, U.I64, "filled")
        with b.if_then(b.icmp_signed(">", k, U.i64(0))), \
                nested_loops(b, [outer, inner]) as (o, i):  # k = 0 (run-time k): no slots
            base = b.add(b.mul(b.mul(o, n), inner), i)
            slots = _Slots(b, values, indices, b.add(b.mul(b.mul(o, k), inner), i), inner, st)
            b.store(U.i64(0), filled)
            with U.for_range(b, U.i64(0), n, name="t") as t:
                raw = U.load(b, x, b.add(base, b.mul(t, inner)), st)
                v = to_compute(b, raw, dtype)
                count = b.load(filled, typ=U.I64)
                full = b.icmp_signed("==", count, k)
                last = b.sub(count, U.i64(1))
                worst = to_compute(b, slots.value(b.select(full, last, U.i64(0))), dtype)
                enters = b.or_(b.not_(full), _better(b, largest, v, worst, dtype))
                with b.if_then(enters):
                    start = b.select(full, last, count)
                    pos = _sift_up(b, slots, start, lambda w: _better(
                        b, largest, v, to_compute(b, w, dtype), dtype))
                    slots.put(pos, raw, t)
                    b.store(b.select(full, count, b.add(count, U.i64(1))), filled)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3 + (I64,) * 4, build)


class _Slots:
    """The k (value, index) output slots of one slice, `step` elements apart."""

    def __init__(self, b: ir.IRBuilder, values: ir.Value, indices: ir.Value, base: ir.Value,
                 step: ir.Value, st: ir.Type):
        self.b, self.values, self.indices, self.base, self.step, self.st = (
            b, values, indices, base, step, st)

    def _at(self, p: ir.Value) -> ir.Value:
        return self.b.add(self.base, self.b.mul(p, self.step))

    def value(self, p: ir.Value) -> ir.Value:
        return U.load(self.b, self.values, self._at(p), self.st)

    def put(self, p: ir.Value, raw: ir.Value, index: ir.Value) -> None:
        U.store(self.b, raw, self.values, self._at(p))
        U.store(self.b, index, self.indices, self._at(p))

    def move_down(self, p: ir.Value) -> None:
        """slot p = slot p - 1."""
        above = self.b.sub(p, U.i64(1))
        self.put(p, self.value(above), U.load(self.b, self.indices, self._at(above), U.I64))


def _sift_up(b: ir.IRBuilder, slots: _Slots, start: ir.Value, beats) -> ir.Value:
    """Move slots down from `start` while the new element beats the one above; the
    position where it belongs."""
    pos = entry_alloca(b, U.I64, "pos")
    b.store(start, pos)
    head, body, done = (b.append_basic_block(f"sift.{s}") for s in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    p = b.load(pos, typ=U.I64)
    more = b.icmp_signed(">", p, U.i64(0))
    above = b.select(more, b.sub(p, U.i64(1)), U.i64(0))  # slot 0 always exists
    b.cbranch(b.and_(more, beats(slots.value(above))), body, done)
    b.position_at_end(body)
    slots.move_down(p)
    b.store(b.sub(p, U.i64(1)), pos)
    b.branch(head)
    b.position_at_end(done)
    return b.load(pos, typ=U.I64)


def reverse_sequence_kernel(elem_bytes: int, lens_dtype: DType) -> Kernel:
    """(x, y, lens, steps, batch, step_stride, batch_stride, inner): for each batch
    entry b, its first lens[b] time steps are reversed, the rest copied."""
    name = f"reverse_sequence_b{elem_bytes}_{lens_dtype.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = elem_type(elem_bytes)
        fn, b = define_kernel(module, name, [U.PTR] * 3 + [U.I64] * 5,
                              ["x", "y", "lens", "steps", "batch", "step_stride",
                               "batch_stride", "inner"])
        x, y, lens, steps, batch, ts, bs, inner = fn.args
        with U.for_range(b, U.i64(0), batch, name="b") as bi:
            n = load_index(b, lens, bi, lens_dtype)
            n = b.select(b.icmp_signed(">", n, steps), steps, n)
            with U.for_range(b, U.i64(0), steps, name="t") as t:
                rev = b.icmp_signed("<", t, n)
                src_t = b.select(rev, b.sub(b.sub(n, U.i64(1)), t), t)
                row = b.mul(bi, bs)
                copy_elems(b, target, x, b.add(row, b.mul(src_t, ts)), y,
                           b.add(row, b.mul(t, ts)), inner, elem)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3 + (I64,) * 5, build)


def slice_kernel(elem_bytes: int, index: DType) -> Kernel:
    """(x, y, in_dims, out_dims, starts, steps, axes, naxes, rank): Slice with its
    parameters read at run time; the output's (static) shape gives the counts.
    Dims tables are i64[MAX_RANK], front-padded; every source index is clamped
    into its dim, so inconsistent parameters cannot read out of bounds."""
    name = f"slice_b{elem_bytes}_{index.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = elem_type(elem_bytes)
        fn, b = define_kernel(module, name, [U.PTR] * 7 + [U.I64] * 2,
                              ["x", "y", "in_dims", "out_dims", "starts", "steps", "axes",
                               "naxes", "rank"])
        x, y, in_p, out_p, starts, steps, axes, naxes, rank = fn.args
        dims, out_dims = load_table(b, in_p, MAX_RANK), load_table(b, out_p, MAX_RANK)
        first, step = _slice_params(b, dims, (starts, steps, axes), naxes, rank, index)
        strides = [U.i64(1)] * MAX_RANK
        for d in reversed(range(MAX_RANK - 1)):
            strides[d] = b.mul(strides[d + 1], dims[d + 1])
        with nested_loops(b, out_dims) as idx:
            src, flat = U.i64(0), U.i64(0)
            for d, i in enumerate(idx):
                pos = b.add(U.load(b, first, U.i64(d), U.I64),
                            b.mul(i, U.load(b, step, U.i64(d), U.I64)))
                pos = _clamp(b, pos, b.sub(dims[d], U.i64(1)))
                src = b.add(src, b.mul(pos, strides[d]))
                flat = b.add(b.mul(flat, out_dims[d]), i)
            U.store(b, U.load(b, x, src, elem), y, flat)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 7 + (I64,) * 2, build)


def _clamp(b: ir.IRBuilder, v: ir.Value, hi: ir.Value) -> ir.Value:
    v = b.select(b.icmp_signed("<", v, U.i64(0)), U.i64(0), v)
    return b.select(b.icmp_signed(">", v, hi), hi, v)


def _stack_array(b: ir.IRBuilder, name: str) -> ir.Value:
    """i64[MAX_RANK] on the stack, indexable at run time."""
    with b.goto_entry_block():
        return b.alloca(U.I64, size=U.i64(MAX_RANK), name=name)


def _slice_params(b: ir.IRBuilder, dims: list[ir.Value], arrays: tuple[ir.Value, ...],
                  naxes: ir.Value, rank: ir.Value, index: DType) -> tuple[ir.Value, ir.Value]:
    """Per padded dim, the first source index and the step (stack arrays), from the
    runtime starts / steps / axes normalized as ONNX says (negative values count
    from the end; starts clamped to [0, n] or, stepping backwards, [0, n - 1])."""
    starts, steps, axes = arrays
    first, step, dims_arr = (_stack_array(b, name) for name in ("first", "step", "dims"))
    for d in range(MAX_RANK):
        U.store(b, U.i64(0), first, U.i64(d))
        U.store(b, U.i64(1), step, U.i64(d))
        U.store(b, dims[d], dims_arr, U.i64(d))
    pad = b.sub(U.i64(MAX_RANK), rank)
    with U.for_range(b, U.i64(0), naxes, name="ax") as k:
        a = load_index(b, axes, k, index)
        d = b.add(b.select(b.icmp_signed("<", a, U.i64(0)), b.add(a, rank), a), pad)
        n = U.load(b, dims_arr, d, U.I64)
        s, st = load_index(b, starts, k, index), load_index(b, steps, k, index)
        s = b.select(b.icmp_signed("<", s, U.i64(0)), b.add(s, n), s)
        top = b.select(b.icmp_signed(">", st, U.i64(0)), n, b.sub(n, U.i64(1)))
        U.store(b, _clamp(b, s, top), first, d)
        U.store(b, st, step, d)
    return first, step
