"""Kernels whose output size depends on input values: NonZero, Compress,
Unique, and the read of a size given as run-time data (TopK's k).

Each counts first, writes the count into its slot of the run's dims array
(program.DimSlot; an "unbacked" symbol, ir/symbolic.py), then writes the
output laid out for that count: a [rank, count] NonZero result has rows
`count` apart. The buffers are planned for the count's upper bound, which
the count never exceeds (it counts elements of the input), so no write can
leave them.

Scalar loops: these ops are rare and their cost is in the data, not in
vector width. Unique compares slices pairwise (O(n^2) for n slices).
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....ir import DType
from ....program import ERR, I64, PTR, Kernel
from ....runtime.status import INT_FIELDS, STATUS_DATA_SIZE, STATUS_INDEX_RANGE, STATUS_SIZE_RANGE
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.dtype_ir import load_index, storage_type, to_compute
from ..support.typed_ops import emit_op
from ..support.vloop import define_kernel, entry_alloca, nested_loops
from .gather import copy_elems, elem_type, load_table


def _is_nonzero(b: ir.IRBuilder, x: ir.Value, i: ir.Value, dt: DType) -> ir.Value:
    v = to_compute(b, U.load(b, x, i, storage_type(dt)), dt)
    if v.type in (U.F32, U.F64):  # NaN counts, -0.0 does not (as numpy)
        return b.fcmp_unordered("!=", v, ir.Constant(v.type, 0.0))
    return b.icmp_unsigned("!=", v, ir.Constant(v.type, 0))


def _count(b: ir.IRBuilder, n: ir.Value, pred) -> ir.Value:
    """How many t < n satisfy pred(t)."""
    total = entry_alloca(b, U.I64, "count")
    b.store(U.i64(0), total)
    with U.for_range(b, U.i64(0), n, name="c") as t:
        b.store(b.add(b.load(total), b.zext(pred(t), U.I64)), total)
    return b.load(total)


def nonzero_kernel(dtype: DType, rank: int) -> Kernel:
    """(x, y, total, dims, slot): y[d, j] = coordinate d of the j-th nonzero
    element of x (row-major order), for x of `rank` dims (dims: i64[rank]);
    the count goes to *slot."""
    name = f"nonzero_{dtype.short}_r{rank}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR, U.PTR, U.I64, U.PTR, U.PTR],
                              ["x", "y", "total", "dims", "slot"])
        x, y, total, dims_ptr, slot = fn.args
        dims = load_table(b, dims_ptr, rank)
        count = _count(b, total, lambda i: _is_nonzero(b, x, i, dtype))
        U.store(b, count, slot, U.i64(0))
        j = entry_alloca(b, U.I64, "j")
        b.store(U.i64(0), j)
        with U.for_range(b, U.i64(0), total, name="i") as i:
            with b.if_then(_is_nonzero(b, x, i, dtype)):
                rest, at = i, b.load(j)
                for d in reversed(range(rank)):
                    U.store(b, b.urem(rest, dims[d]), y, b.add(b.mul(U.i64(d), count), at))
                    rest = b.udiv(rest, dims[d])
                b.store(b.add(at, U.i64(1)), j)
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR, I64, PTR, PTR), build)


def compress_kernel(elem_bytes: int) -> Kernel:
    """(x, cond, y, outer, n, inner, m, slot): y[o, j, i] = x[o, t_j, i] for the
    indices t_j < m where cond[t] (bools) is set, in order; m <= n. The count
    goes to *slot."""
    name = f"compress_{8 * elem_bytes}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 3 + [U.I64] * 4 + [U.PTR],
                              ["x", "cond", "y", "outer", "n", "inner", "m", "slot"])
        x, cond, y, outer, n, inner, m, slot = fn.args
        picked = lambda t: b.icmp_unsigned("!=", U.load(b, cond, t, U.I8), ir.Constant(U.I8, 0))  # noqa: E731
        count = _count(b, m, picked)
        U.store(b, count, slot, U.i64(0))
        j = entry_alloca(b, U.I64, "j")
        with U.for_range(b, U.i64(0), outer, name="o") as o:
            b.store(U.i64(0), j)
            with U.for_range(b, U.i64(0), m, name="t") as t, b.if_then(picked(t)):
                at = b.load(j)
                src = b.mul(b.add(b.mul(o, n), t), inner)
                dst = b.mul(b.add(b.mul(o, count), at), inner)
                copy_elems(b, target, x, src, y, dst, inner, elem_type(elem_bytes))
                b.store(b.add(at, U.i64(1)), j)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3 + (I64,) * 4 + (PTR,), build)


def read_size_kernel(index: DType) -> Kernel:
    """(err, v, slot, low, high) -> status: *slot = v[0] if low <= v[0] <= high,
    else the error record gets the value and range (STATUS_SIZE_RANGE)."""
    name = f"read_size_{index.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = U.define(module, name, [U.PTR, U.PTR, U.PTR, U.I64, U.I64],
                         ["err", "v", "slot", "low", "high"], ret=U.I32)
        fn.attributes.add("noinline")
        err, v_ptr, slot, low, high = fn.args
        v = load_index(b, v_ptr, U.i64(0), index)
        bad = b.or_(b.icmp_signed("<", v, low), b.icmp_signed(">", v, high))
        with b.if_then(bad, likely=False):
            for field, x in {"value": v, "position": U.i64(0), "low": low, "high": high}.items():
                U.store(b, x, err, U.i64(INT_FIELDS.index(field)))
            b.ret(ir.Constant(U.I32, STATUS_SIZE_RANGE))
        U.store(b, v, slot, U.i64(0))
        b.ret(ir.Constant(U.I32, 0))
        return fn

    return Kernel(name, (ERR, PTR, PTR, I64, I64), build)


class _Slices:
    """Slice t of x viewed as [outer, n, inner]: the elements x[o, t, i] in
    (o, i) order, compared as numpy's unique compares them."""

    def __init__(self, b: ir.IRBuilder, x: ir.Value, outer, n, inner, dtype: DType):
        self.b, self.x, self.outer, self.n, self.inner, self.dt = b, x, outer, n, inner, dtype
        self.order = entry_alloca(b, U.I64, "order")

    def _elem(self, t, o, i) -> ir.Value:
        b = self.b
        at = b.add(b.mul(b.add(b.mul(o, self.n), t), self.inner), i)
        return to_compute(b, U.load(b, self.x, at, storage_type(self.dt)), self.dt)

    def compare(self, s: ir.Value, t: ir.Value) -> ir.Value:
        """-1, 0 or 1 as slice s is below, equal to or above slice t
        (lexicographically by element)."""
        b, dt = self.b, [self.dt, self.dt]
        b.store(U.i64(0), self.order)
        with nested_loops(b, [self.outer, self.inner], name="e") as (o, i):
            a, c = self._elem(s, o, i), self._elem(t, o, i)
            less = emit_op(b, "lt", [a, c], dt, DType.bool)
            more = emit_op(b, "gt", [a, c], dt, DType.bool)
            here = b.select(less, U.i64(-1), b.select(more, U.i64(1), U.i64(0)))
            if a.type in (U.F32, U.F64):  # NaN: above every number, equal to NaN (numpy)
                nan_a, nan_c = U.is_nan(b, a), U.is_nan(b, c)
                here = b.select(nan_a, b.select(nan_c, U.i64(0), U.i64(1)),
                                b.select(nan_c, U.i64(-1), here))
            now = b.load(self.order)
            b.store(b.select(b.icmp_signed("==", now, U.i64(0)), here, now), self.order)
        return b.load(self.order)


def unique_kernel(dtype: DType, sorted_: bool, elem_bytes: int) -> Kernel:
    """(x, y, indices, inverse, counts, outer, n, inner, first, pos, slot):
    the distinct slices of x along n (first: i64[n] scratch, the first slice
    equal to each; pos: i64[n] scratch, each distinct slice's output
    position), ascending if `sorted_`, else in order of first occurrence.
    y[o, p, i], indices[p] (first occurrence), counts[p], inverse[t] as ONNX
    Unique; the number of distinct slices goes to *slot."""
    name = f"unique_{dtype.short}_{'sorted' if sorted_ else 'first'}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        names = ["x", "y", "indices", "inverse", "counts", "outer", "n", "inner",
                 "first", "pos", "slot"]
        fn, b = define_kernel(module, name, [U.PTR] * 5 + [U.I64] * 3 + [U.PTR] * 3, names)
        x, y, indices, inverse, counts, outer, n, inner, first, pos, slot = fn.args
        sl = _Slices(b, x, outer, n, inner, dtype)
        _mark_firsts(b, sl, n, first)
        is_first = lambda t: b.icmp_signed("==", U.load(b, first, t, U.I64), t)  # noqa: E731
        count = _count(b, n, is_first)
        U.store(b, count, slot, U.i64(0))
        with U.for_range(b, U.i64(0), n, name="t") as t, b.if_then(is_first(t)):
            def before(s):
                ahead = sl.compare(s, t) if sorted_ else b.sub(s, t)
                return b.and_(is_first(s), b.icmp_signed("<", ahead, U.i64(0)))
            p = _count(b, n, before)
            U.store(b, p, pos, t)
            U.store(b, t, indices, p)
            U.store(b, U.i64(0), counts, p)
            with U.for_range(b, U.i64(0), outer, name="o") as o:
                copy_elems(b, target, x, b.mul(b.add(b.mul(o, n), t), inner), y,
                           b.mul(b.add(b.mul(o, count), p), inner), inner, elem_type(elem_bytes))
        with U.for_range(b, U.i64(0), n, name="t") as t:
            p = U.load(b, pos, U.load(b, first, t, U.I64), U.I64)
            U.store(b, p, inverse, t)
            U.store(b, b.add(U.load(b, counts, p, U.I64), U.i64(1)), counts, p)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 5 + (I64,) * 3 + (PTR,) * 3, build)


def _mark_firsts(b: ir.IRBuilder, sl: _Slices, n: ir.Value, first: ir.Value) -> None:
    """first[t] = the lowest s <= t whose slice equals slice t (only earlier
    distinct slices need comparing)."""
    with U.for_range(b, U.i64(0), n, name="t") as t:
        U.store(b, t, first, t)
        with U.for_range(b, U.i64(0), t, name="s") as s:
            unset = b.icmp_signed("==", U.load(b, first, t, U.I64), t)
            distinct = b.icmp_signed("==", U.load(b, first, s, U.I64), s)
            with b.if_then(b.and_(unset, distinct)):
                with b.if_then(b.icmp_signed("==", sl.compare(s, t), U.i64(0))):
                    U.store(b, s, first, t)


def fail_kernel() -> Kernel:
    """(err) -> STATUS_DATA_SIZE: a node variant for sizes the data made
    impossible for it; the site says why."""
    name = "fail_data_size"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = U.define(module, name, [U.PTR], ["err"], ret=U.I32)
        fn.attributes.add("noinline")
        b.ret(ir.Constant(U.I32, STATUS_DATA_SIZE))
        return fn

    return Kernel(name, (ERR,), build)


def reduce_dims_kernel(index: DType, rank: int, naxes: int, keep: bool) -> Kernel:
    """(err, axes, dims, slot_0 .. slot_{m-1}) -> status: the output dims of a
    reduction of a rank-`rank` input (dims: i64[rank]) over `naxes` axes read
    at run time, into m slots (rank of them with keepdims, else rank - naxes).
    Each axis must lie in [-rank, rank - 1] and appear once (numpy refuses a
    repeated axis, and it would change the output's rank); else the record
    gets the first bad axis (STATUS_INDEX_RANGE)."""
    kept = rank if keep else rank - naxes
    name = f"reduce_dims_{index.short}_r{rank}_a{naxes}_{'keep' if keep else 'drop'}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = U.define(module, name, [U.PTR] * (3 + kept),
                         ["err", "axes", "dims"] + [f"slot{j}" for j in range(kept)], ret=U.I32)
        fn.attributes.add("noinline")
        err, axes, dims_ptr, *slots = fn.args
        dims = load_table(b, dims_ptr, rank)
        mask = U.i64(0)
        for k in range(naxes):
            a = load_index(b, axes, U.i64(k), index)
            outside = b.or_(b.icmp_signed("<", a, U.i64(-rank)),
                            b.icmp_signed(">=", a, U.i64(rank)))
            a = b.select(b.icmp_signed("<", a, U.i64(0)), b.add(a, U.i64(rank)), a)
            bit = b.shl(U.i64(1), b.select(outside, U.i64(0), a))
            twice = b.icmp_unsigned("!=", b.and_(mask, bit), U.i64(0))
            with b.if_then(b.or_(outside, twice), likely=False):
                fields = {"value": load_index(b, axes, U.i64(k), index), "position": U.i64(k),
                          "low": U.i64(-rank), "high": U.i64(rank - 1)}
                for field, x in fields.items():
                    U.store(b, x, err, U.i64(INT_FIELDS.index(field)))
                b.ret(ir.Constant(U.I32, STATUS_INDEX_RANGE))
            mask = b.or_(mask, bit)
        before = U.i64(0)  # dims kept before d
        for d in range(rank):
            reduced = b.icmp_unsigned("!=", b.and_(b.lshr(mask, U.i64(d)), U.i64(1)), U.i64(0))
            if keep:
                U.store(b, b.select(reduced, U.i64(1), dims[d]), slots[d], U.i64(0))
                continue
            for j in range(kept):
                here = b.and_(b.not_(reduced), b.icmp_signed("==", before, U.i64(j)))
                with b.if_then(here):
                    U.store(b, dims[d], slots[j], U.i64(0))
            before = b.add(before, b.zext(b.not_(reduced), U.I64))
        b.ret(ir.Constant(U.I32, 0))
        return fn

    return Kernel(name, (ERR,) + (PTR,) * (2 + kept), build)


def reshape_dims_kernel(index: DType, n: int, in_rank: int, allowzero: bool) -> Kernel:
    """(err, shape, in_dims, numel, slots) -> status: a Reshape's target read at
    run time (shape: n values; a 0 copies the input's dim unless `allowzero`,
    one -1 takes what is left) into n consecutive slots. The dims must
    multiply to numel and none may exceed numel (their bound: an empty input
    reshaped to a larger dim is refused); else STATUS_SIZE_RANGE with the
    offending value (a product: position -1)."""
    name = f"reshape_dims_{index.short}_n{n}_r{in_rank}{'_z' if allowzero else ''}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = U.define(module, name, [U.PTR] * 4 + [U.I64], ["err", "shape", "in_dims",
                                                             "slots", "numel"], ret=U.I32)
        fn.attributes.add("noinline")
        err, shape, in_dims_ptr, slots, numel = fn.args
        in_dims = load_table(b, in_dims_ptr, in_rank)

        def fail(value, position, low, high):
            for field, x in {"value": value, "position": position, "low": low,
                             "high": high}.items():
                U.store(b, x, err, U.i64(INT_FIELDS.index(field)))
            b.ret(ir.Constant(U.I32, STATUS_SIZE_RANGE))

        dims, known, infer_at = [], U.i64(1), U.i64(-1)
        for k in range(n):
            v = load_index(b, shape, U.i64(k), index)
            if not allowzero and k < in_rank:
                v = b.select(b.icmp_signed("==", v, U.i64(0)), in_dims[k], v)
            minus = b.icmp_signed("==", v, U.i64(-1))
            bad = b.or_(b.icmp_signed("<", v, U.i64(-1)),
                        b.and_(minus, b.icmp_signed(">=", infer_at, U.i64(0))))
            with b.if_then(b.or_(bad, b.icmp_signed(">", v, b.select(minus, v, numel))),
                           likely=False):
                fail(v, U.i64(k), U.i64(0), numel)
            infer_at = b.select(minus, U.i64(k), infer_at)
            known = b.select(minus, known, b.mul(known, v))
            dims.append(v)
        has_minus = b.icmp_signed(">=", infer_at, U.i64(0))
        safe = b.select(b.icmp_signed("==", known, U.i64(0)), U.i64(1), known)
        inferred = b.sdiv(numel, safe)
        total = b.select(has_minus, b.mul(known, inferred), known)
        with b.if_then(b.icmp_signed("!=", total, numel), likely=False):
            fail(total, U.i64(-1), numel, numel)
        for k, v in enumerate(dims):
            here = b.icmp_signed("==", infer_at, U.i64(k))
            U.store(b, b.select(here, inferred, v), slots, U.i64(k))
        b.ret(ir.Constant(U.I32, 0))
        return fn

    return Kernel(name, (ERR, PTR, PTR, PTR, I64), build)
