"""BatchNormalization whose statistics are not compile-time constants:
inference with runtime scale / bias / mean / var, and training mode (batch
statistics, running averages out). Built from the typed elementwise and
reduction kernels; the constant-statistics fast path is in elementwise.py.
"""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels.ops import reduce as R
from ..errors import NotLowerable
from ..ir import Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from .broadcast import broadcast_output, shape_of
from .typed_elementwise import dtype_of, nary_calls


class _Steps:
    """Elementwise calls of one node over per-channel vectors and the full tensor."""

    def __init__(self, node: Node, ctx: LowerContext, x: str):
        self.node, self.shape, self.dt = node, shape_of(ctx, x), dtype_of(ctx, x)
        self.channels = self.shape[1] if len(self.shape) > 1 else 1
        self.c = (self.channels,)
        self.per_channel = self.c + (1,) * max(len(self.shape) - 2, 0)
        self.calls: list[Call] = []

    def vec(self, tag: str) -> Scratch:
        return Scratch(tag, 8 * self.channels + 8)

    def const(self, tag: str, value: float) -> tuple[Const, object, tuple]:
        return Const(f"{self.node.name}.{tag}", np.array(value, self.dt.numpy)), self.dt, ()

    def ch(self, operand) -> tuple:
        return operand, self.dt, self.c

    def op(self, name: str, args: list, dst, full: bool = False) -> None:
        out = self.shape if full else self.c
        tag = f"{self.node.name}.{name}{len(self.calls)}"
        self.calls += nary_calls(name, args, dst, self.dt, out, tag)

    def normalize(self, x: str, y: str, scale, bias, mean, var, eps: float) -> None:
        """y = x * a + b, a = scale / sqrt(var + eps), b = bias - mean * a."""
        a, b = self.vec("a"), self.vec("b")
        self.op("add", [self.ch(var), self.const("eps", eps)], a)
        self.op("sqrt", [self.ch(a)], a)
        self.op("div", [self.ch(scale), self.ch(a)], a)
        self.op("mul", [self.ch(mean), self.ch(a)], b)
        self.op("sub", [self.ch(bias), self.ch(b)], b)
        self.op("mul", [(Buf(x), self.dt, self.shape), (a, self.dt, self.per_channel)], y, True)
        self.op("add", [(Buf(y), self.dt, self.shape), (b, self.dt, self.per_channel)], y, True)


def _check_statistics(ctx: LowerContext, steps: _Steps, names) -> None:
    if any(shape_of(ctx, p) != steps.c for p in names):
        raise NotLowerable(f"statistics of another shape than [{steps.channels}]")


def runtime_batchnorm(node: Node, ctx: LowerContext) -> LoweredNode:
    """Inference BatchNormalization whose scale / bias / mean / var are tensors."""
    x, scale, bias, mean, var = node.inputs[:5]
    y = node.outputs[0]
    broadcast_output(ctx, [x], y)
    steps = _Steps(node, ctx, x)
    _check_statistics(ctx, steps, (scale, bias, mean, var))
    steps.normalize(x, y, Buf(scale), Buf(bias), Buf(mean), Buf(var),
                    float(node.attr("epsilon", 1e-5)))
    return LoweredNode(node.name, node.op, node.outputs, steps.calls,
                       semantics="y = x * a[c] + b[c], a = scale / sqrt(var + eps), "
                                 "b = bias - mean * a (statistics at run time)",
                       note="per-channel factors in scratch, then two broadcasting passes")


def training_batchnorm(node: Node, ctx: LowerContext) -> LoweredNode:
    """Training mode: normalize with the batch's own mean and (population) variance
    per channel; running_mean / running_var = input * momentum + batch * (1 - momentum)."""
    x, scale, bias, mean, var = node.inputs[:5]
    y, running_mean, running_var = (list(node.outputs) + ["", ""])[:3]
    steps = _Steps(node, ctx, x)
    _check_statistics(ctx, steps, (scale, bias, mean, var))
    rank = len(steps.shape)
    if rank < 2 or rank > R.MAX_RANK or not steps.dt.is_float:
        raise NotLowerable(f"training BatchNormalization of {list(steps.shape)} "
                           f"{steps.dt.name}")
    count = math.prod(steps.shape) // steps.channels
    batch_mean, batch_var = steps.vec("batch_mean"), steps.vec("batch_var")
    centered = Scratch("centered", ctx.graph.type_of(x).nbytes + 8)
    steps.calls.append(_reduce_call(node, steps, "mean", Buf(x), batch_mean))
    steps.op("sub", [(Buf(x), steps.dt, steps.shape), (batch_mean, steps.dt, steps.per_channel)],
             centered, True)
    steps.calls.append(_reduce_call(node, steps, "sumsquare", centered, batch_var))
    steps.op("div", [steps.ch(batch_var), steps.const("count", count)], batch_var)
    steps.normalize(x, y, Buf(scale), Buf(bias), batch_mean, batch_var,
                    float(node.attr("epsilon", 1e-5)))
    momentum = float(node.attr("momentum", 0.9))
    for out, given, batch in ((running_mean, mean, batch_mean), (running_var, var, batch_var)):
        if out:
            steps.op("mul", [steps.ch(Buf(given)), steps.const("m", momentum)], out)
            keep = steps.vec("update")
            steps.op("mul", [steps.ch(batch), steps.const("1-m", 1.0 - momentum)], keep)
            steps.op("add", [steps.ch(Buf(out)), steps.ch(keep)], out)
    return LoweredNode(node.name, node.op, node.outputs, steps.calls,
                       semantics="y = (x - mean_b) / sqrt(var_b + eps) * scale + bias with the "
                                 "batch's statistics; running = given * m + batch * (1 - m)",
                       note="batch statistics by the reduction kernel, then broadcasting passes")


def _reduce_call(node: Node, steps: _Steps, kind: str, src, dst) -> Call:
    """kind over every axis but the channel one, into a per-channel vector."""
    rank = len(steps.shape)
    dims = np.array([1] * (R.MAX_RANK - rank) + list(steps.shape), np.int64)
    axes = np.array([a for a in range(rank) if a != 1], np.int64)
    acc = Scratch(f"acc_{kind}", 8 * steps.channels + 8)
    return Call(R.reduce_kernel(kind, steps.dt, steps.dt),
                (src, dst, acc, Const(f"{node.name}.dims_{kind}", dims),
                 Const(f"{node.name}.axes_{kind}", axes), len(axes), rank, 0, steps.channels))
