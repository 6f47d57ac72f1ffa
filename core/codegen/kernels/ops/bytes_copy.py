"""memcpy as a kernel: binds graph outputs that are views, inputs or constants."""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as u


def _build(module: ir.Module, target: CpuTarget) -> ir.Function:
    fn, b = u.define(module, "copy_bytes", [u.PTR, u.PTR, u.I64], ["dst", "src", "n"],
                     noalias=True)
    dst, src, n = fn.args
    memcpy = u.intrinsic(module, "llvm.memcpy.p0.p0.i64", u.VOID, [u.PTR, u.PTR, u.I64, u.I1])
    b.call(memcpy, [dst, src, n, ir.Constant(u.I1, 0)])
    b.ret_void()
    return fn


COPY_BYTES = Kernel("copy_bytes", (PTR, PTR, I64), _build)
