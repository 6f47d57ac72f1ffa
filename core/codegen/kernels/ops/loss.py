"""Loss kernels: log-softmax along the class axis and the negative log-likelihood
of picked classes (NegativeLogLikelihoodLoss; SoftmaxCrossEntropyLoss is the
two in sequence). Scalar loops over [N, C, inner] in the float dtype's
arithmetic (float for float16): losses are small next to the networks that
produce their inputs.
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

REDUCTIONS = ("none", "sum", "mean")


class _Typed:
    """Loads, stores and arithmetic in one float dtype's compute type."""

    def __init__(self, b: ir.IRBuilder, dtype: DType):
        self.b, self.dtype, self.acc = b, dtype, compute_dtype(dtype)

    def load(self, ptr: ir.Value, i: ir.Value) -> ir.Value:
        return to_compute(self.b, U.load(self.b, ptr, i, storage_type(self.dtype)), self.dtype)

    def store(self, v: ir.Value, ptr: ir.Value, i: ir.Value) -> None:
        U.store(self.b, to_storage(self.b, v, self.dtype), ptr, i)

    def op(self, name: str, *args: ir.Value) -> ir.Value:
        return emit_op(self.b, name, list(args), [self.acc] * len(args), self.acc)

    def const(self, v: float) -> ir.Constant:
        return ir.Constant(storage_type(self.acc), v)

    def slot(self, name: str) -> ir.Value:
        return entry_alloca(self.b, storage_type(self.acc), name)

    def get(self, slot: ir.Value) -> ir.Value:
        return self.b.load(slot, typ=storage_type(self.acc))


def log_softmax_kernel(dtype: DType) -> Kernel:
    """(x, y, outer, n, inner): y[o, :, i] = x - max - log(sum(exp(x - max))) along n."""
    name = f"log_softmax_{dtype.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 2 + [U.I64] * 3,
                              ["x", "y", "outer", "n", "inner"])
        x, y, outer, n, inner = fn.args
        t = _Typed(b, dtype)
        mx, total = t.slot("max"), t.slot("sum")
        with nested_loops(b, [outer, inner]) as (o, i):
            base = b.add(b.mul(b.mul(o, n), inner), i)
            at = (lambda k: b.add(base, b.mul(k, inner)))  # noqa: E731
            b.store(t.const(float("-inf")), mx)
            with U.for_range(b, U.i64(0), n, name="k") as k:
                b.store(t.op("max", t.get(mx), t.load(x, at(k))), mx)
            m = t.get(mx)
            b.store(t.const(0.0), total)
            with U.for_range(b, U.i64(0), n, name="k") as k:
                e = t.op("exp", t.op("sub", t.load(x, at(k)), m))
                b.store(t.op("add", t.get(total), e), total)
            shift = t.op("add", m, t.op("log", t.get(total)))
            with U.for_range(b, U.i64(0), n, name="k") as k:
                t.store(t.op("sub", t.load(x, at(k)), shift), y, at(k))
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 2 + (I64,) * 3, build)


def nll_kernel(dtype: DType, index: DType, reduction: str, weighted: bool) -> Kernel:
    """(logp, target, weight, y, n, c, inner, ignore_index): loss[b, i] =
    -logp[b, t, i] * w[t] with t = target[b, i] (0 where t == ignore_index);
    y is that [n, inner] tensor, its sum, or its sum over the sum of weights."""
    assert reduction in REDUCTIONS
    name = f"nll_{reduction}{'_weighted' if weighted else ''}_{dtype.short}_{index.short}"

    def build(module: ir.Module, target: CpuTarget) -> ir.Function:
        fn, b = define_kernel(module, name, [U.PTR] * 4 + [U.I64] * 4,
                              ["logp", "target", "weight", "y", "n", "c", "inner", "ignore"])
        logp, tgt, weight, y, n, c, inner, ignore = fn.args
        t = _Typed(b, dtype)
        total, wsum = t.slot("total"), t.slot("wsum")
        b.store(t.const(0.0), total)
        b.store(t.const(0.0), wsum)
        with nested_loops(b, [n, inner]) as (bi, i):
            row = b.add(b.mul(bi, inner), i)
            k = load_index(b, tgt, row, index)
            ignored = b.icmp_signed("==", k, ignore)
            k = b.select(b.icmp_signed("<", k, U.i64(0)), U.i64(0), k)
            k = b.select(b.icmp_signed(">=", k, c), b.sub(c, U.i64(1)), k)
            w = t.load(weight, k) if weighted else t.const(1.0)
            w = b.select(ignored, t.const(0.0), w)
            picked = t.load(logp, b.add(b.mul(b.add(b.mul(bi, c), k), inner), i))
            loss = t.op("mul", t.op("neg", picked), w)
            if reduction == "none":
                t.store(loss, y, row)
            else:
                b.store(t.op("add", t.get(total), loss), total)
                b.store(t.op("add", t.get(wsum), w), wsum)
        if reduction != "none":
            result = t.get(total)
            if reduction == "mean":
                result = t.op("div", result, t.get(wsum))
            t.store(result, y, U.i64(0))
        b.ret_void()
        return fn

    return Kernel(name, (PTR,) * 4 + (I64,) * 4, build)
