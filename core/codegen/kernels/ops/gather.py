"""Gather, GatherElements and GatherND: reads at indices known only at run time.

Kernels move raw elements (iN for N-byte elements), so one kernel serves every
dtype of a size; indices may be of any integer type, negative ones count from
the end, and out-of-range ones are clamped (never a read outside the input).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import llvmlite.ir as ir

from ....ir import DType
from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.dtype_ir import load_index, wrap_index
from ..support.vloop import define_kernel, nested_loops, vector_loop, vload, vstore

MAX_RANK = 8


def elem_type(elem_bytes: int) -> ir.IntType:
    assert elem_bytes in (1, 2, 4, 8)
    return ir.IntType(8 * elem_bytes)


def copy_elems(b: ir.IRBuilder, target: CpuTarget, src: ir.Value, src_at: ir.Value,
               dst: ir.Value, dst_at: ir.Value, n: ir.Value, elem: ir.IntType) -> None:
    """dst[dst_at + j] = src[src_at + j] for j < n, as vectors."""
    lanes = max(1, target.vector_bits // elem.width)

    def body(b: ir.IRBuilder, j: ir.Value, count: ir.Value | None) -> None:
        v = vload(b, src, b.add(src_at, j), lanes, count, elem)
        vstore(b, v, dst, b.add(dst_at, j), count)

    vector_loop(b, n, lanes, body, name="cp")


def gather_kernel(elem_bytes: int, index: DType) -> Kernel:
    """Gather along one axis of x viewed as [outer, n, inner]: (x, idx, y, outer, n,
    m, inner) with y[o, j, :] = x[o, idx[j], :] for the m indices."""
    name = f"gather_b{elem_bytes}_{index.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = elem_type(elem_bytes)
        fn, b = define_kernel(module, name, [U.PTR] * 3 + [U.I64] * 4,
                              ["x", "idx", "y", "outer", "n", "m", "inner"])
        x, idx, y, outer, n, m, inner = fn.args
        with nested_loops(b, [outer, m]) as (o, j):
            k = wrap_index(b, load_index(b, idx, j, index), n)
            src = b.mul(b.add(b.mul(o, n), k), inner)
            dst = b.mul(b.add(b.mul(o, m), j), inner)
            copy_elems(b, target, x, src, y, dst, inner, elem)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3 + (I64,) * 4, build)


def load_table(b: ir.IRBuilder, table: ir.Value, count: int, col: int = 0,
               cols: int = 1) -> list[ir.Value]:
    return [U.load(b, table, U.i64(d * cols + col), U.I64) for d in range(count)]


@contextlib.contextmanager
def element_walk(b: ir.IRBuilder, dims: list[ir.Value],
                 strides: list[ir.Value]) -> Iterator[tuple[ir.Value, ir.Value]]:
    """Nested loops over dims; gives (flat index in the walked tensor, the offset
    sum(i_d * strides[d]) in another)."""
    with nested_loops(b, dims) as idx:
        flat, off = U.i64(0), U.i64(0)
        for i, d, s in zip(idx, dims, strides, strict=True):
            flat = b.add(b.mul(flat, d), i)
            off = b.add(off, b.mul(i, s))
        yield flat, off


def gather_elements_kernel(elem_bytes: int, index: DType) -> Kernel:
    """(x, idx, y, dims, strides, axis_n, axis_stride): y[i] = x[i with i_axis replaced
    by idx[i]] for every position i of idx / y.

    dims: i64[MAX_RANK] of idx (front-padded with 1s); strides: x's element strides
    for those dims with the axis' stride zeroed; axis_n / axis_stride: x's size and
    stride along the axis.
    """
    name = f"gather_elements_b{elem_bytes}_{index.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = elem_type(elem_bytes)
        fn, b = define_kernel(module, name, [U.PTR] * 5 + [U.I64] * 2,
                              ["x", "idx", "y", "dims", "strides", "axis_n", "axis_stride"])
        x, idx, y, dims_p, strides_p, axis_n, axis_stride = fn.args
        dims, strides = load_table(b, dims_p, MAX_RANK), load_table(b, strides_p, MAX_RANK)
        with element_walk(b, dims, strides) as (flat, off):
            k = wrap_index(b, load_index(b, idx, flat, index), axis_n)
            v = U.load(b, x, b.add(off, b.mul(k, axis_stride)), elem)
            U.store(b, v, y, flat)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 5 + (I64,) * 2, build)


def nd_offset(b: ir.IRBuilder, idx: ir.Value, row: ir.Value, k: int, table: list[ir.Value],
              index: DType) -> ir.Value:
    """sum_t wrap(idx[row*k + t], dim_t) * stride_t; table holds (dim, stride) pairs."""
    off = U.i64(0)
    for t in range(k):
        i = load_index(b, idx, b.add(b.mul(row, U.i64(k)), U.i64(t)), index)
        off = b.add(off, b.mul(wrap_index(b, i, table[2 * t]), table[2 * t + 1]))
    return off


def gather_nd_kernel(elem_bytes: int, index: DType, k: int) -> Kernel:
    """(x, idx, y, dims, batch, m, slice, batch_stride): for each batch b and index
    row j (of k coordinates), y[b, j, :slice] = x[b, idx[b, j, :], :slice].

    dims: i64[k, 2], the (size, element stride) of each indexed dim of x.
    """
    name = f"gather_nd{k}_b{elem_bytes}_{index.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = elem_type(elem_bytes)
        fn, b = define_kernel(module, name, [U.PTR] * 4 + [U.I64] * 4,
                              ["x", "idx", "y", "dims", "batch", "m", "slice", "batch_stride"])
        x, idx, y, dims_p, batch, m, size, batch_stride = fn.args
        table = load_table(b, dims_p, 2 * k)
        with nested_loops(b, [batch, m]) as (bi, j):
            row = b.add(b.mul(bi, m), j)
            src = b.add(b.mul(bi, batch_stride), nd_offset(b, idx, row, k, table, index))
            copy_elems(b, target, x, src, y, b.mul(row, size), size, elem)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 4 + (I64,) * 4, build)
