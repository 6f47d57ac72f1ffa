"""ScatterElements and ScatterND: the output is the data with elements (or
slices) at runtime indices replaced by, or combined with, the updates.

The data is copied to the output first (by the lowering); then the updates are
applied in order, so with duplicate indices the last one wins ('none') or all
are combined ('add', 'mul', 'max', 'min', done in the dtype's arithmetic).
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....ir import DType
from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.dtype_ir import load_index, storage_type, to_compute, to_storage, wrap_index
from ..support.typed_ops import emit_op
from ..support.vloop import define_kernel, nested_loops
from .gather import MAX_RANK, copy_elems, elem_type, element_walk, load_table, nd_offset

REDUCTIONS = {"none": None, "add": "add", "mul": "mul", "max": "max", "min": "min"}


def _apply(b: ir.IRBuilder, y: ir.Value, at: ir.Value, update: ir.Value, dtype: DType,
           reduction: str) -> None:
    """y[at] = update, or combine(y[at], update)."""
    op = REDUCTIONS[reduction]
    if op is not None:
        old = to_compute(b, U.load(b, y, at, update.type), dtype)
        new = to_compute(b, update, dtype)
        update = to_storage(b, emit_op(b, op, [old, new], [dtype, dtype], dtype), dtype)
    U.store(b, update, y, at)


def scatter_elements_kernel(dtype: DType, index: DType, reduction: str) -> Kernel:
    """(idx, upd, y, dims, strides, axis_n, axis_stride): for every position i of
    idx / upd, y[i with i_axis replaced by idx[i]] (op)= upd[i]. Tables as for
    gather.gather_elements_kernel, with y's strides."""
    name = f"scatter_elements_{reduction}_{dtype.short}_{index.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = storage_type(dtype)
        fn, b = define_kernel(module, name, [U.PTR] * 5 + [U.I64] * 2,
                              ["idx", "upd", "y", "dims", "strides", "axis_n", "axis_stride"])
        idx, upd, y, dims_p, strides_p, axis_n, axis_stride = fn.args
        dims, strides = load_table(b, dims_p, MAX_RANK), load_table(b, strides_p, MAX_RANK)
        with element_walk(b, dims, strides) as (flat, off):
            k = wrap_index(b, load_index(b, idx, flat, index), axis_n)
            at = b.add(off, b.mul(k, axis_stride))
            _apply(b, y, at, U.load(b, upd, flat, elem), dtype, reduction)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 5 + (I64,) * 2, build)


def scatter_nd_kernel(dtype: DType, index: DType, k: int, reduction: str) -> Kernel:
    """(idx, upd, y, dims, m, slice): for each of the m index rows (k coordinates
    each), y[idx[j, :], :slice] (op)= upd[j, :slice]. dims: i64[k, 2] of (size,
    element stride) of y's indexed dims."""
    name = f"scatter_nd{k}_{reduction}_{dtype.short}_{index.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = storage_type(dtype)
        fn, b = define_kernel(module, name, [U.PTR] * 4 + [U.I64] * 2,
                              ["idx", "upd", "y", "dims", "m", "slice"])
        idx, upd, y, dims_p, m, size = fn.args
        table = load_table(b, dims_p, 2 * k)
        with U.for_range(b, U.i64(0), m, name="j") as j:
            dst = nd_offset(b, idx, j, k, table, index)
            with U.for_range(b, U.i64(0), size, name="s") as s:
                update = U.load(b, upd, b.add(b.mul(j, size), s), elem)
                _apply(b, y, b.add(dst, s), update, dtype, reduction)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 4 + (I64,) * 2, build)


def tensor_scatter_kernel(elem_bytes: int, circular: bool) -> Kernel:
    """TensorScatter (a KV-cache write): (upd, y, widx, batch, mid, seq, max_seq, inner):
    y[b, m, widx[b] + s, :] = upd[b, m, s, :] for s < seq, the position taken modulo
    max_seq when circular (else clamped into the cache)."""
    name = f"tensor_scatter_b{elem_bytes}{'_circular' if circular else ''}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = elem_type(elem_bytes)
        fn, b = define_kernel(module, name, [U.PTR] * 3 + [U.I64] * 5,
                              ["upd", "y", "widx", "batch", "mid", "seq", "max_seq", "inner"])
        upd, y, widx, batch, mid, seq, max_seq, inner = fn.args
        with nested_loops(b, [batch, mid, seq]) as (bi, m, s):
            t = b.add(load_index(b, widx, bi, DType.int64), s)
            if circular:
                t = b.srem(t, max_seq)
                t = b.select(b.icmp_signed("<", t, U.i64(0)), b.add(t, max_seq), t)
            t = wrap_index(b, t, max_seq)
            row = b.add(b.mul(bi, mid), m)
            copy_elems(b, target, upd, b.mul(b.add(b.mul(row, seq), s), inner), y,
                       b.mul(b.add(b.mul(row, max_seq), t), inner), inner, elem)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3 + (I64,) * 5, build)
