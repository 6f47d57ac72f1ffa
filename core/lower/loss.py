"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (log-softmax along the
class axis, into the optional log_prob output or scratch, then the NLL).
Kernels: codegen/kernels/ops/loss.py.
"""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels.ops import loss as K
from ..errors import NotLowerable
from ..ir import Node
from ..program import Buf, Call, Const, LowerContext, LoweredNode, Scratch
from .broadcast import shape_of
from .registry import lowers
from .typed_elementwise import dtype_of

NO_IGNORE = np.iinfo(np.int64).min  # a target no class index can equal


def _nll_call(node: Node, ctx: LowerContext, logp: Buf | Scratch, scores: str) -> Call:
    """The NLL of log-probabilities laid out like `scores` ([N, C, d...])."""
    target, y = node.inputs[1], node.outputs[0]
    weight = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else ""
    shape = shape_of(ctx, scores)
    if len(shape) < 2 or shape_of(ctx, target) != shape[:1] + shape[2:]:
        raise NotLowerable(f"target {list(shape_of(ctx, target))} does not fit {list(shape)}")
    reduction = node.attr("reduction", "mean")
    if reduction not in K.REDUCTIONS:
        raise NotLowerable(f"reduction {reduction!r}")
    want = shape[:1] + shape[2:] if reduction == "none" else ()
    if shape_of(ctx, y) != want:
        raise NotLowerable(f"{y} has shape {list(shape_of(ctx, y))}, expected {list(want)}")
    dt = dtype_of(ctx, scores)
    if not dt.is_float:
        raise NotLowerable(f"loss of {dt.name}")
    ignore = node.attr("ignore_index")
    kernel = K.nll_kernel(dt, dtype_of(ctx, target), reduction, bool(weight))
    w = Buf(weight) if weight else Const(f"{node.name}.no_weight", np.zeros(1, dt.numpy))
    return Call(kernel, (logp, Buf(target), w, Buf(y), shape[0], shape[1],
                         math.prod(shape[2:]), NO_IGNORE if ignore is None else int(ignore)))


@lowers("NegativeLogLikelihoodLoss")
def lower_nll(node: Node, ctx: LowerContext) -> LoweredNode:
    x = node.inputs[0]
    call = _nll_call(node, ctx, Buf(x), x)
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics="loss[n, d] = -x[n, t[n, d], d] * w[t[n, d]] (0 if ignored), "
                                 f"reduced by {node.attr('reduction', 'mean')}",
                       note=f"{call.kernel.name}: one pass over the targets")


@lowers("SoftmaxCrossEntropyLoss")
def lower_softmax_cross_entropy(node: Node, ctx: LowerContext) -> LoweredNode:
    x = node.inputs[0]
    shape = shape_of(ctx, x)
    dt = dtype_of(ctx, x)
    log_prob = node.outputs[1] if len(node.outputs) > 1 and node.outputs[1] else ""
    logp = Buf(log_prob) if log_prob else Scratch("log_prob", max(8, ctx.graph.type_of(x).nbytes))
    softmax = Call(K.log_softmax_kernel(dt), (Buf(x), logp, shape[0], shape[1],
                                              math.prod(shape[2:])))
    nll = _nll_call(node, ctx, logp, x)
    return LoweredNode(node.name, node.op, node.outputs, [softmax, nll],
                       semantics="log_prob = log_softmax(x, axis 1); loss = NLL(log_prob, t, w)",
                       note=f"{softmax.kernel.name} then {nll.kernel.name}")
