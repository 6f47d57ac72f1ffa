"""A strided batched contraction for the dtypes the float32 GEMM does not take
(float64, and integers, which wrap as ONNX's do): the Einsum lowering's
y[b, m, n] = sum_k A[b, m, k] * B[b, k, n] read through element strides.

Scalar code, in the order (b, m, k, n): the innermost loop walks a row of B and
of y, which LLVM's vectorizer takes when B's n stride is 1 (it versions the
loop on that). The sum is exact for integers and in the dtype's own order for
float64 (no reassociation), so results match a naive reference closely.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....ir import DType
from ....program import I64, PTR, Kernel
from ....program.einsum import TYPED_CONTRACTION
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.dtype_ir import storage_type
from ..support.vloop import define_kernel

ARG_NAMES = ["a", "b", "y", "batch", "m", "n", "k", "sab", "sam", "sak", "sbb", "sbk", "sbn",
             "syb", "sym"]


def contract_kernel(dtype: DType) -> Kernel:
    """(a, b, y, batch, m, n, k, sab, sam, sak, sbb, sbk, sbn, syb, sym):
    y[t*syb + i*sym + j] = sum_s a[t*sab + i*sam + s*sak] * b[t*sbb + s*sbk + j*sbn]."""
    if dtype not in TYPED_CONTRACTION:  # whole-byte ints: int4 / int2 need sign extension
        raise ValueError(f"no strided contraction for {dtype}")
    name = f"contract_{dtype.short}"
    elem = storage_type(dtype)

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 3 + [U.I64] * 12, ARG_NAMES)
        a, bm, y, batch, m, n, k, sab, sam, sak, sbb, sbk, sbn, syb, sym = fn.args
        zero = ir.Constant(elem, 0.0 if dtype is DType.float64 else 0)
        with U.for_range(b, U.i64(0), batch, name="t") as t:
            with U.for_range(b, U.i64(0), m, name="i") as i:
                row = b.add(b.mul(t, syb), b.mul(i, sym))
                with U.for_range(b, U.i64(0), n, name="z") as j:
                    U.store(b, zero, y, b.add(row, j))
                a_row = b.add(b.mul(t, sab), b.mul(i, sam))
                with U.for_range(b, U.i64(0), k, name="s") as s:
                    x = U.load(b, a, b.add(a_row, b.mul(s, sak)), elem)
                    b_row = b.add(b.mul(t, sbb), b.mul(s, sbk))
                    with U.for_range(b, U.i64(0), n, name="j") as j:
                        w = U.load(b, bm, b.add(b_row, b.mul(j, sbn)), elem)
                        at = b.add(row, j)
                        old = U.load(b, y, at, elem)
                        U.store(b, _mul_add(b, dtype, x, w, old), y, at)
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 3 + (I64,) * 12, build)


def _mul_add(b: ir.IRBuilder, dtype: DType, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    if dtype is DType.float64:
        return b.fadd(acc, b.fmul(x, w))
    return b.add(acc, b.mul(x, w))  # no nsw/nuw: integer products wrap
