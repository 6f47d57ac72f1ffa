"""MaxUnpool's scatter: y[place(indices[i])] = x[i], over a y the lowering has zeroed.

An index is a flat position in the shape the attributes infer (what MaxPool
saw); `place` maps it to the same coordinates in y, whose output_shape may be
larger on any axis (ONNX's reference: the extra positions stay zero). With no
larger axis the table has one entry and `place` is the identity.

The indices were checked against the inferred size before (ops/check.py); the
kernel still skips any index outside it rather than write out of bounds.
Serial, in order: with repeated indices the last value wins.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support.vloop import define_kernel
from .gather import load_table


def unpool_scatter_kernel(rank: int) -> Kernel:
    """(x, indices, y, axes, n, size): for i < n with indices[i] in [0, size),
    y[sum_d c_d * axes[d, 1]] = x[i], where c are indices[i]'s coordinates in the
    inferred shape (extents axes[d, 0], d < rank)."""
    name = f"max_unpool{rank}_scatter_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 4 + [U.I64] * 2,
                              ["x", "indices", "y", "axes", "n", "size"])
        x, indices, y, axes, n, size = fn.args
        extents, strides = load_table(b, axes, rank, 0, 2), load_table(b, axes, rank, 1, 2)
        with U.for_range(b, U.i64(0), n, name="i") as i:
            flat = U.load(b, indices, i, U.I64)
            with b.if_then(b.icmp_unsigned("<", flat, size), likely=True):  # negatives too
                U.store(b, U.load(b, x, i), y, _place(b, flat, extents, strides))
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR, PTR, PTR, I64, I64), build)


def _place(b: ir.IRBuilder, flat: ir.Value, extents: list[ir.Value],
           strides: list[ir.Value]) -> ir.Value:
    if len(extents) == 1:
        return b.mul(flat, strides[0])
    at = U.i64(0)
    for extent, stride in zip(reversed(extents), reversed(strides), strict=True):
        at = b.add(at, b.mul(b.urem(flat, extent), stride))
        flat = b.udiv(flat, extent)
    return at
