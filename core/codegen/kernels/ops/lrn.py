"""Local response normalization across channels of NCHW (AlexNet, GoogLeNet v1).

y[n,c,i] = x[n,c,i] * (bias + alpha/size * sum_{c' in window(c)} x[n,c',i]^2) ^ -beta

Vectors run along the spatial index i; the power uses mathfn's exp and log.
"""

from __future__ import annotations

import llvmlite.ir as ir

from ....program import F32, I64, PTR, Kernel
from ....target.machine import CpuTarget
from ... import llvm_util as U
from ..support import mathfn as M
from ..support.vloop import define_kernel, fold, nested_loops, vector_loop, vload, vstore

PARAMS = ("N", "C", "inner", "before", "after")  # window(c) = [c - before, c + after]


def lrn_kernel(beta: float | None = None) -> Kernel:
    """(x, y, N, C, inner, before, after, alpha_over_size, beta, bias).

    beta=0.75 (AlexNet, GoogLeNet, CaffeNet) builds a kernel for that value alone:
    d^-0.75 = 1 / (sqrt(d) * sqrt(sqrt(d))), two square roots instead of exp and
    log, about twice as fast. Otherwise the beta argument is used.
    """
    special = beta == 0.75
    name = "lrn_beta075_f32" if special else "lrn_f32"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        lanes = target.f32_lanes
        vt = U.vec(U.F32, lanes)
        fn, b = define_kernel(module, name, [U.PTR, U.PTR] + [U.I64] * 5 + [U.F32] * 3,
                              ["x", "y", *PARAMS, "alpha_over_size", "beta", "bias"])
        x, y, N, C, inner, before, after, alpha_over_size, beta, bias = fn.args
        scale, neg_beta, bias_v = (U.splat(b, v, lanes)
                                   for v in (alpha_over_size, b.fneg(beta), bias))
        with nested_loops(b, [N, C], name="nc") as (n, c):
            lo = _max(b, b.sub(c, before), U.i64(0))
            hi = U.smin(b, b.add(b.add(c, after), U.i64(1)), C)
            plane0 = b.mul(b.mul(n, C), inner)

            def body(b: ir.IRBuilder, i: ir.Value, count: ir.Value | None) -> None:
                def square_add(b, k, acc):
                    v = vload(b, x, b.add(b.add(plane0, b.mul(k, inner)), i), lanes, count)
                    return M.fmuladd(b, v, v, acc)

                sq = fold(b, hi, ir.Constant(vt, [0.0] * lanes), square_add, start=lo)
                base = M.fmuladd(b, sq, scale, bias_v)
                if special:
                    root = M.sqrt_f32(b, base)
                    factor = b.fdiv(ir.Constant(vt, [1.0] * lanes),
                                    b.fmul(root, M.sqrt_f32(b, root)))
                else:
                    factor = M.exp_f32(b, U.fmul(b, neg_beta, M.log_f32(b, base)))
                at = b.add(b.add(plane0, b.mul(c, inner)), i)
                vstore(b, U.fmul(b, vload(b, x, at, lanes, count), factor), y, at, count)

            vector_loop(b, inner, lanes, body)
        b.ret_void()
        return fn

    return Kernel(name, (PTR, PTR) + (I64,) * 5 + (F32,) * 3, build)


def _max(b: ir.IRBuilder, p: ir.Value, q: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed(">", p, q), p, q)
