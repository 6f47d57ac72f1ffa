"""Broadcasting elementwise kernels of any arity and any dtypes.

y = op(x_0, ..., x_{k-1}) over a broadcast plan, like elementwise.binary_kernel
but for every dtype (typed_ops) and up to three operands (Where, Clip with
bound tensors): outer dims walked by nested loops with per-operand strides from
an i64 table, around one contiguous inner dim along which each operand is a
vector ('v', stride 1) or a scalar repeated across it ('s', stride 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import llvmlite.ir as ir

from ....ir import DType
from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.dtype_ir import storage_type, to_compute, to_storage
from ..support.typed_ops import OPS, emit_op
from ..support.vloop import define_kernel, nested_loops, vector_loop, vload, vstore

MAX_OUTER_DIMS = 5  # plans are padded in front with count-1 dims


def plan_columns(arity: int) -> int:
    """Per outer dim: count, one stride per operand, the output's stride (elements)."""
    return arity + 2


def nary_kernel(op: str, in_dtypes: Sequence[DType], out_dtype: DType, kinds: str) -> Kernel:
    """(x_0, ..., x_{k-1}, y, plan, n): plan is i64 [MAX_OUTER_DIMS, plan_columns(k)].

    kinds: one letter per operand, 'v' or 's', along the inner dim of n elements.
    y may alias an operand whose strides equal y's (in-place accumulation).
    """
    k = len(in_dtypes)
    assert op in OPS and len(kinds) == k and set(kinds) <= {"v", "s"}
    types = "_".join(d.short for d in in_dtypes)
    name = f"ew_{op}_{types}_to_{out_dtype.short}_{kinds}"
    params = (PTR,) * (k + 2) + (I64,)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        names = [f"x{j}" for j in range(k)] + ["y", "plan", "n"]
        fn, b = define_kernel(module, name, [U.PTR] * (k + 2) + [U.I64], names)
        *xs, y, plan, n = fn.args
        cols = plan_columns(k)
        counts = [U.load(b, plan, U.i64(d * cols), U.I64) for d in range(MAX_OUTER_DIMS)]
        with nested_loops(b, counts) as idx:
            offsets = [_offset(b, plan, idx, cols, c) for c in range(1, k + 2)]
            inner = _Inner(op, list(in_dtypes), out_dtype, kinds, _lanes(target, in_dtypes,
                                                                          out_dtype))
            inner.emit(b, [*xs, y], offsets, n)
        b.ret_void()
        return fn

    return Kernel(name, params, build)


def _lanes(target: CpuTarget, in_dtypes: Sequence[DType], out_dtype: DType) -> int:
    """One register's worth of the widest element involved (at least 4 lanes)."""
    widest = max(U.elem_size(storage_type(d)) for d in (*in_dtypes, out_dtype))
    return max(4, min(target.f32_lanes, target.vector_bits // (8 * widest)))


def _offset(b: ir.IRBuilder, plan: ir.Value, idx: list[ir.Value], cols: int,
            col: int) -> ir.Value:
    off = U.i64(0)
    for d, i in enumerate(idx):
        off = b.add(off, b.mul(i, U.load(b, plan, U.i64(d * cols + col), U.I64)))
    return off


class _Inner:
    """The vector loop along the inner dim for one outer position."""

    def __init__(self, op: str, in_dtypes: list[DType], out_dtype: DType, kinds: str,
                 lanes: int):
        self.op, self.in_dtypes, self.out_dtype = op, in_dtypes, out_dtype
        self.kinds, self.lanes = kinds, lanes

    def emit(self, b: ir.IRBuilder, ptrs: list[ir.Value], offsets: list[ir.Value],
             n: ir.Value) -> None:
        *xs, y = ptrs
        *x_offs, y_off = offsets
        # scalar operands are loaded and converted once, before the loop
        scalars = [self._splat(b, x, off, dt) if kind == "s" else None
                   for x, off, dt, kind in zip(xs, x_offs, self.in_dtypes, self.kinds,
                                               strict=True)]

        def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
            args = [s if s is not None else
                    to_compute(b, vload(b, x, b.add(off, i), self.lanes, count,
                                        storage_type(dt)), dt)
                    for s, x, off, dt in zip(scalars, xs, x_offs, self.in_dtypes, strict=True)]
            r = emit_op(b, self.op, args, self.in_dtypes, self.out_dtype)
            vstore(b, to_storage(b, r, self.out_dtype), y, b.add(y_off, i), count)

        vector_loop(b, n, self.lanes, body)

    def _splat(self, b: ir.IRBuilder, x: ir.Value, off: ir.Value, dt: DType) -> ir.Value:
        scalar = to_compute(b, U.load(b, x, off, storage_type(dt)), dt)
        return U.splat(b, scalar, self.lanes)
