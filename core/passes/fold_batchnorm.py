"""fold_batchnorm: fold per-channel affine ops that follow a Conv (or a
ConvTranspose, whose output channels are W's axis 1 within each group) into its
weights.

    BatchNormalization(Conv(X, W, B))  ->  Conv(X, W * s[co], (B - mean) * s + beta)
        with s = scale / sqrt(var + eps)
    Mul(Conv(X, W, B), m)              ->  Conv(X, W * m[co], B * m)
    Add(Conv(X, W, B), a)              ->  Conv(X, W, B + a)

where m and a are constants that vary only along the channel axis ([C,1,1] as
densenet and inception_v2 write them). Only a Conv with constant W (and B) whose
output has no other reader is rewritten; the merged Conv keeps the name of the
value the folded op produced. With no Conv before it, a BN still absorbs the
Mul and Add that follow it (scale * m, bias * m + a).
"""

from __future__ import annotations

import numpy as np

from ..ir import Node, TensorType
from .base import FunctionPass
from .rewrite import GraphView, Rewrite, is_onnx, rewrite_graph


def fold_batchnorm_into_conv(view: GraphView, bn: Node) -> Rewrite | None:
    if not _is_inference_batchnorm(view, bn):
        return None
    params = [view.const(i) for i in bn.inputs[1:5]]
    if any(p is None or p.ndim != 1 for p in params):
        return None
    scale, beta, mean, var = (p.astype(np.float64) for p in params)
    s = scale / np.sqrt(var + bn.attr("epsilon", 1e-5))
    return _fold_into_conv(view, bn, bn.inputs[0], mul=s, add=beta - mean * s)


def fold_channel_mul(view: GraphView, mul: Node) -> Rewrite | None:
    if not is_onnx(mul, "Mul"):
        return None
    for src, other in _operand_orders(mul):
        m = _channel_vector(view, other, src)
        rw = _fold_affine(view, mul, src, mul=m, add=np.zeros_like(m)) if m is not None else None
        if rw is not None:
            return rw
    return None


def fold_channel_add(view: GraphView, add: Node) -> Rewrite | None:
    if not is_onnx(add, "Add"):
        return None
    for src, other in _operand_orders(add):
        a = _channel_vector(view, other, src)
        rw = _fold_affine(view, add, src, mul=np.ones_like(a), add=a) if a is not None else None
        if rw is not None:
            return rw
    return None


def _is_inference_batchnorm(view: GraphView, bn: Node) -> bool:
    if not is_onnx(bn, "BatchNormalization") or bn.attr("training_mode", 0):
        return False
    if bn.attr("spatial", 1) == 0:
        return False  # per-pixel statistics (opset < 9) are not per-channel
    # running statistics that are read mean a training graph
    return not any(view.is_used(o) for o in bn.outputs[1:] if o)


def _fold_affine(view: GraphView, anchor: Node, src: str, *, mul: np.ndarray,
                 add: np.ndarray) -> Rewrite | None:
    """Fold anchor = src * mul[c] + add[c] into the Conv or BN that produces src."""
    producer = view.producer(src)
    if producer is not None and is_onnx(producer, "BatchNormalization"):
        return _fold_into_batchnorm(view, anchor, producer, mul=mul, add=add)
    return _fold_into_conv(view, anchor, src, mul=mul, add=add)


def _fold_into_batchnorm(view: GraphView, anchor: Node, bn: Node, *, mul: np.ndarray,
                         add: np.ndarray) -> Rewrite | None:
    """BN(x) * m + a is BN with scale * m and bias * m + a: one op instead of three
    where no conv precedes (densenet's pre-activation blocks)."""
    scale, beta = view.const(bn.inputs[1]), view.const(bn.inputs[2])
    if not _is_inference_batchnorm(view, bn) or not view.has_single_use(bn.outputs[0]):
        return None
    if scale is None or beta is None or scale.shape != mul.shape or beta.shape != mul.shape:
        return None
    new_scale = (scale * mul).astype(scale.dtype)
    new_beta = (beta * mul + add).astype(beta.dtype)
    s_name, b_name = view.fresh(bn.inputs[1] + "_folded"), view.fresh(bn.inputs[2] + "_folded")
    folded = bn.with_(inputs=(bn.inputs[0], s_name, b_name, *bn.inputs[3:]),
                      outputs=(anchor.outputs[0],))
    return Rewrite(old=(bn, anchor), new=(folded,),
                   constants={s_name: new_scale, b_name: new_beta},
                   types={s_name: TensorType.of(new_scale), b_name: TensorType.of(new_beta)})


def _operand_orders(node: Node) -> list[tuple[str, str]]:
    a, b = node.inputs
    return [(a, b), (b, a)]


def _channel_vector(view: GraphView, value: str, src: str) -> np.ndarray | None:
    """`value` as one float64 per channel (axis 1) of `src`, if it is a constant
    that broadcasts against `src` along the channel axis only."""
    c, out = view.const(value), view.type_of(src)
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


def _fold_into_conv(view: GraphView, anchor: Node, conv_out: str, *, mul: np.ndarray,
                    add: np.ndarray) -> Rewrite | None:
    """Rewrite conv -> anchor, where anchor computes conv_out * mul[c] + add[c]."""
    conv = view.producer(conv_out)
    if conv is None or not is_onnx(conv, "Conv", "ConvTranspose") \
            or not view.has_single_use(conv_out):
        return None
    w = view.const(conv.inputs[1])
    b = view.const(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else None
    has_bias = len(conv.inputs) > 2 and bool(conv.inputs[2])
    if w is None or w.ndim < 3 or (has_bias and b is None):
        return None
    new_w = _scaled_output_channels(w, mul, int(conv.attr("group", 1))
                                    if conv.op == "ConvTranspose" else 0)
    if new_w is None:
        return None
    bias = b.astype(np.float64) if b is not None else np.zeros(mul.shape[0])
    new_b = (bias * mul + add).astype(w.dtype)
    w_name = view.fresh(conv.inputs[1].removesuffix("_folded") + "_folded")
    b_name = view.fresh(conv.inputs[1].removesuffix("_folded") + "_bias")
    folded = conv.with_(inputs=(conv.inputs[0], w_name, b_name), outputs=(anchor.outputs[0],))
    return Rewrite(old=(conv, anchor), new=(folded,),
                   constants={w_name: new_w, b_name: new_b},
                   types={w_name: TensorType.of(new_w), b_name: TensorType.of(new_b)})


def _scaled_output_channels(w: np.ndarray, mul: np.ndarray, group: int) -> np.ndarray | None:
    """W with output channel c scaled by mul[c]: axis 0 of a Conv's W; for a
    ConvTranspose's (group > 0), [C_in, C_out/group, ...], channel g*C_out/group + j
    is W[ci, j] for the input channels ci of group g."""
    if not group:
        if w.shape[0] != mul.shape[0]:
            return None
        return (w * mul.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
    per_group = w.shape[1]
    if group < 1 or w.shape[0] % group or per_group * group != mul.shape[0]:
        return None
    grouped = w.reshape(group, w.shape[0] // group, per_group, -1)
    return (grouped * mul.reshape(group, 1, per_group, 1)).reshape(w.shape).astype(w.dtype)


FOLD_RULES = (fold_batchnorm_into_conv, fold_channel_mul, fold_channel_add)

fold_batchnorm_pass = FunctionPass("fold_batchnorm", lambda g: rewrite_graph(g, FOLD_RULES))
