"""fold_batchnorm: fold per-channel affine ops that follow a Conv into its weights.

    BatchNormalization(Conv(X, W, B))  ->  Conv(X, W * s[co], (B - mean) * s + beta)
        with s = scale / sqrt(var + eps)
    Mul(Conv(X, W, B), m)              ->  Conv(X, W * m[co], B * m)
    Add(Conv(X, W, B), a)              ->  Conv(X, W, B + a)

where m and a are constants that vary only along the channel axis ([C,1,1] as
densenet and inception_v2 write them). Only a Conv with constant W (and B) whose
output has no other reader is rewritten; the merged Conv keeps the name of the
value the folded op produced.
"""

from __future__ import annotations

import numpy as np

from ..ir import Node, TensorType
from .base import FunctionPass
from .rewrite import GraphView, Rewrite, is_onnx, rewrite_graph


def fold_batchnorm_into_conv(view: GraphView, bn: Node) -> Rewrite | None:
    if not is_onnx(bn, "BatchNormalization") or bn.attr("training_mode", 0):
        return None
    if bn.attr("spatial", 1) == 0:
        return None  # per-pixel statistics (opset < 9) are not per-channel
    if any(view.is_used(o) for o in bn.outputs[1:] if o):
        return None  # running statistics are read: this is a training graph
    params = [view.const(i) for i in bn.inputs[1:5]]
    if any(p is None or p.ndim != 1 for p in params):
        return None
    scale, beta, mean, var = (p.astype(np.float64) for p in params)
    s = scale / np.sqrt(var + bn.attr("epsilon", 1e-5))
    return _fold_affine(view, bn, bn.inputs[0], mul=s, add=beta - mean * s)


def fold_mul_into_conv(view: GraphView, mul: Node) -> Rewrite | None:
    if not is_onnx(mul, "Mul"):
        return None
    for conv_out, other in _operand_orders(mul):
        m = _channel_vector(view, other, conv_out)
        if m is not None:
            return _fold_affine(view, mul, conv_out, mul=m, add=np.zeros_like(m))
    return None


def fold_add_into_conv(view: GraphView, add: Node) -> Rewrite | None:
    if not is_onnx(add, "Add"):
        return None
    for conv_out, other in _operand_orders(add):
        a = _channel_vector(view, other, conv_out)
        if a is not None:
            return _fold_affine(view, add, conv_out, mul=np.ones_like(a), add=a)
    return None


def _operand_orders(node: Node) -> list[tuple[str, str]]:
    a, b = node.inputs
    return [(a, b), (b, a)]


def _channel_vector(view: GraphView, value: str, conv_out: str) -> np.ndarray | None:
    """`value` as one float64 per output channel of `conv_out`, if it is a constant
    that broadcasts against it along the channel axis only."""
    c, out = view.const(value), view.type_of(conv_out)
    if c is None or out.rank < 2 or c.ndim > out.rank or not isinstance(out.shape[1], int):
        return None
    channel_axis = c.ndim - (out.rank - 1)  # axis 1 of the output, right-aligned into c
    for axis, dim in enumerate(c.shape):
        if dim != 1 and axis != channel_axis:
            return None
    channels = out.shape[1]
    if c.size not in (1, channels):
        return None
    return np.broadcast_to(c.reshape(-1), (channels,)).astype(np.float64)


def _fold_affine(view: GraphView, anchor: Node, conv_out: str, *, mul: np.ndarray,
                 add: np.ndarray) -> Rewrite | None:
    """Rewrite conv -> anchor, where anchor computes conv_out * mul[c] + add[c]."""
    conv = view.producer(conv_out)
    if conv is None or not is_onnx(conv, "Conv") or not view.has_single_use(conv_out):
        return None
    w = view.const(conv.inputs[1])
    b = view.const(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else None
    has_bias = len(conv.inputs) > 2 and bool(conv.inputs[2])
    if w is None or (has_bias and b is None) or w.shape[0] != mul.shape[0]:
        return None
    bias = b.astype(np.float64) if b is not None else np.zeros(w.shape[0])
    new_w = (w * mul.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
    new_b = (bias * mul + add).astype(w.dtype)
    w_name = view.fresh(conv.inputs[1].removesuffix("_folded") + "_folded")
    b_name = view.fresh(conv.inputs[1].removesuffix("_folded") + "_bias")
    folded = conv.with_(inputs=(conv.inputs[0], w_name, b_name), outputs=(anchor.outputs[0],))
    return Rewrite(old=(conv, anchor), new=(folded,),
                   constants={w_name: new_w, b_name: new_b},
                   types={w_name: TensorType.of(new_w), b_name: TensorType.of(new_b)})


FOLD_RULES = (fold_batchnorm_into_conv, fold_mul_into_conv, fold_add_into_conv)

fold_batchnorm_pass = FunctionPass("fold_batchnorm", lambda g: rewrite_graph(g, FOLD_RULES))
