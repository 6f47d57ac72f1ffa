"""Kernels that write patterns rather than transform data: constant fill
(ConstantOfShape), identity-like diagonals (EyeLike), Range, triangles of a
matrix (Trilu), one-hot rows (OneHot) and cosine windows (Hann, Hamming,
Blackman). Scalars that ONNX passes as tensors
(Range's start / delta, Trilu's k, OneHot's values) are read at run time.
"""

from __future__ import annotations

import math

import llvmlite.ir as ir

from ....ir import DType
from ....program import F32, I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support import mathfn_trig as T
from ..support.dtype_ir import cast, load_index, storage_type, to_compute, to_storage
from ..support.vloop import define_kernel, nested_loops, vector_loop, vstore
from .gather import copy_elems, elem_type


def _fill_range(b: ir.IRBuilder, target: CpuTarget, y: ir.Value, start: ir.Value,
                stop: ir.Value, value: ir.Value) -> None:
    """y[start:stop] = value (an iN scalar), as vectors."""
    lanes = max(1, target.vector_bits // value.type.width)
    splat = U.splat(b, value, lanes)
    n = b.sub(stop, start)
    n = b.select(b.icmp_signed("<", n, U.i64(0)), U.i64(0), n)
    vector_loop(b, n, lanes, lambda b, j, count: vstore(b, splat, y, b.add(start, j), count),
                name="fill")


def _bits(b: ir.IRBuilder, value: ir.Value, elem: ir.IntType) -> ir.Value:
    return b.trunc(value, elem) if elem.width < 64 else value


def fill_kernel(elem_bytes: int) -> Kernel:
    """(y, n, bits): y[i] = the element whose raw bits are `bits`, for i < n."""
    name = f"fill_b{elem_bytes}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = elem_type(elem_bytes)
        fn, b = define_kernel(module, name, [U.PTR, U.I64, U.I64], ["y", "n", "bits"])
        y, n, bits = fn.args
        _fill_range(b, target, y, U.i64(0), n, _bits(b, bits, elem))
        b.ret_void()
        return fn

    return Kernel(name, (PTR, I64, I64), build)


def eye_kernel(elem_bytes: int) -> Kernel:
    """(y, rows, cols, k, one): y = 0 but y[i, i + k] = the element with bits `one`."""
    name = f"eye_b{elem_bytes}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = elem_type(elem_bytes)
        fn, b = define_kernel(module, name, [U.PTR] + [U.I64] * 4,
                              ["y", "rows", "cols", "k", "one"])
        y, rows, cols, k, one = fn.args
        _fill_range(b, target, y, U.i64(0), b.mul(rows, cols), ir.Constant(elem, 0))
        with U.for_range(b, U.i64(0), rows, name="r") as r:
            c = b.add(r, k)
            inside = b.and_(b.icmp_signed(">=", c, U.i64(0)), b.icmp_signed("<", c, cols))
            with b.if_then(inside):
                U.store(b, _bits(b, one, elem), y, b.add(b.mul(r, cols), c))
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) + (I64,) * 4, build)


def range_kernel(dtype: DType) -> Kernel:
    """(start, delta, y, n): y[i] = start + i * delta, start and delta 1-element
    tensors; computed in double for floats (exact for the counts Range makes)."""
    name = f"range_{dtype.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 3 + [U.I64], ["start", "delta", "y", "n"])
        start_p, delta_p, y, n = fn.args
        st = storage_type(dtype)
        work = DType.float64 if dtype.is_float else DType.int64
        start, delta = (cast(b, to_compute(b, U.load(b, p, U.i64(0), st), dtype), dtype, work)
                        for p in (start_p, delta_p))
        with U.for_range(b, U.i64(0), n, name="i") as i:
            if dtype.is_float:
                v = b.fadd(start, b.fmul(b.sitofp(i, U.F64), delta))
            else:
                v = b.add(start, b.mul(i, delta))
            U.store(b, to_storage(b, cast(b, v, work, dtype), dtype), y, i)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3 + (I64,), build)


def trilu_kernel(elem_bytes: int, upper: bool) -> Kernel:
    """(x, y, k, batch, rows, cols): per matrix, keep x[i, j] where j - i >= k
    (upper) or j - i <= k (lower), zero elsewhere; k is an i64 tensor."""
    name = f"trilu_{'upper' if upper else 'lower'}_b{elem_bytes}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = elem_type(elem_bytes)
        fn, b = define_kernel(module, name, [U.PTR] * 3 + [U.I64] * 3,
                              ["x", "y", "k", "batch", "rows", "cols"])
        x, y, k_p, batch, rows, cols = fn.args
        k = U.load(b, k_p, U.i64(0), U.I64)
        zero = ir.Constant(elem, 0)
        with nested_loops(b, [batch, rows]) as (m, r):
            row = b.mul(b.add(b.mul(m, rows), r), cols)
            edge = _clamp(b, b.add(r, k) if upper else b.add(b.add(r, k), U.i64(1)), cols)
            lo, hi = (edge, cols) if upper else (U.i64(0), edge)
            _fill_range(b, target, y, row, b.add(row, lo), zero)
            copy_elems(b, target, x, b.add(row, lo), y, b.add(row, lo), b.sub(hi, lo), elem)
            _fill_range(b, target, y, b.add(row, hi), b.add(row, cols), zero)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3 + (I64,) * 3, build)


def _clamp(b: ir.IRBuilder, v: ir.Value, hi: ir.Value) -> ir.Value:
    v = b.select(b.icmp_signed("<", v, U.i64(0)), U.i64(0), v)
    return b.select(b.icmp_signed(">", v, hi), hi, v)


def onehot_kernel(elem_bytes: int, index: DType) -> Kernel:
    """(idx, values, y, outer, depth, inner): y[o, d, i] = values[1] if idx[o, i]
    (negative: from the end) == d else values[0]."""
    name = f"onehot_b{elem_bytes}_{index.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        elem = elem_type(elem_bytes)
        fn, b = define_kernel(module, name, [U.PTR] * 3 + [U.I64] * 3,
                              ["idx", "values", "y", "outer", "depth", "inner"])
        idx, values, y, outer, depth, inner = fn.args
        off, on = (U.load(b, values, U.i64(j), elem) for j in (0, 1))
        with nested_loops(b, [outer, inner]) as (o, i):
            k = load_index(b, idx, b.add(b.mul(o, inner), i), index)
            k = b.select(b.icmp_signed("<", k, U.i64(0)), b.add(k, depth), k)
            base = b.add(b.mul(b.mul(o, depth), inner), i)
            with U.for_range(b, U.i64(0), depth, name="d") as d:
                v = b.select(b.icmp_signed("==", k, d), on, off)
                U.store(b, v, y, b.add(base, b.mul(d, inner)))
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3 + (I64,) * 3, build)


def window_kernel(dtype: DType) -> Kernel:
    """(y, n, period, a0, a1, a2): y[i] = a0 - a1 cos(2 pi i / period) + a2 cos(4 pi i /
    period) for i < n, the generalized cosine windows (Hann, Hamming, Blackman)."""
    name = f"cosine_window_{dtype.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR, U.I64] + [U.F32] * 4,
                              ["y", "n", "period", "a0", "a1", "a2"])
        y, n, period, a0, a1, a2 = fn.args
        step = b.fdiv(U.f32(2 * math.pi), period)
        with U.for_range(b, U.i64(0), n, name="i") as i:
            angle = b.fmul(b.sitofp(i, U.F32), step)
            v = b.fsub(a0, b.fmul(a1, T.cos_f32(b, angle)))
            v = b.fadd(v, b.fmul(a2, T.cos_f32(b, b.fadd(angle, angle))))
            U.store(b, to_storage(b, cast(b, v, DType.float32, dtype), dtype), y, i)
        b.ret_void()
        return fn

    return Kernel(name, (PTR, I64) + (F32,) * 4, build)
