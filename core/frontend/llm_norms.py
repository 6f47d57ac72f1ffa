"""RMS and skip layer norms of LLM exporters, written as standard ONNX ops:

    SimplifiedLayerNormalization (default domain, as onnxruntime-genai emits it)
    RMSNormalization (ONNX opset 23)
    com.microsoft SkipSimplifiedLayerNormalization, SkipLayerNormalization

RMS norm in float32, as onnxruntime's CPU kernels compute it:
    rms = sqrt(mean(x^2) + epsilon);  y = x / rms * scale
(a division, as SkipSimplifiedLayerNormalization does; onnxruntime 1.32's
SimplifiedLayerNormalization multiplies by 1 / rms instead. Neither sum of
squares is in tinyc's order - onnxruntime's are sequential and 8-lane FMA -
so results differ in the last bit: docs/quantization.md). The skip variants
first form s = input + skip (+ bias), which is also their 4th output.
"""

from __future__ import annotations

import numpy as np

from .llm_emit import Emitter, attr, inputs, refuse


def decompose_rms_norm(em: Emitter) -> None:
    node = em.node
    x, scale = node.input[0], node.input[1]
    y, inv_std = inputs_out(node, 2)
    axis = int(attr(node, "axis", -1))
    eps = float(attr(node, "epsilon", 1e-5))
    if axis < 0:
        _rms(em, x, scale, list(range(axis, 0)), eps, y, inv_std)
        return
    if inv_std:
        raise refuse(node, f"axis={axis} with an inv_std_var output")
    # A positive axis counts from the front; the rank may not be known here, so
    # normalize the rows of Flatten(x, axis) and give the result x's shape back.
    flat = em.op("Flatten", [x], axis=axis)
    normed = em.fresh("rms_rows")
    _rms(em, flat, None, [-1], eps, normed, "")
    em.op("Mul", [em.op("Reshape", [normed, em.op("Shape", [x])]), scale], y)


def decompose_skip_simplified(em: Emitter) -> None:
    node = em.node
    x, skip, gamma, bias = inputs(node, 4)
    y, mean, inv_std, total = inputs_out(node, 4)
    if mean:
        raise refuse(node, "the mean output (an RMS norm has no mean)")
    s = _skip_sum(em, x, skip, bias, total)
    _rms(em, s, gamma, [-1], float(attr(node, "epsilon", 1e-5)), y, inv_std)


def decompose_skip_layer_norm(em: Emitter) -> None:
    node = em.node
    x, skip, gamma, beta, bias = inputs(node, 5)
    y, mean, inv_std, total = inputs_out(node, 4)
    s = _skip_sum(em, x, skip, bias, total)
    ins = [s, gamma] + ([beta] if beta else [])
    em.op_n("LayerNormalization", ins, [y, mean, inv_std], axis=-1,
            epsilon=float(attr(node, "epsilon", 1e-12)))


def inputs_out(node, count: int) -> list[str]:
    return (list(node.output) + [""] * count)[:count]


def _skip_sum(em: Emitter, x: str, skip: str, bias: str, out: str) -> str:
    if not bias:
        return em.op("Add", [x, skip], out or None)
    return em.op("Add", [em.op("Add", [x, skip]), bias], out or None)


def _rms(em: Emitter, x: str, scale: str | None, axes: list[int], eps: float, y: str,
         inv_std: str) -> None:
    square = em.op("Mul", [x, x])
    mean = em.op("ReduceMean", [square, em.const(axes, np.int64, "axes")], keepdims=1)
    rms = em.op("Sqrt", [em.op("Add", [mean, em.const(eps, np.float32, "epsilon")])])
    if scale is None:  # the caller scales after reshaping
        em.op("Div", [x, rms], y)
    else:
        em.op("Mul", [em.op("Div", [x, rms]), scale], y)
    if inv_std:
        em.op("Reciprocal", [rms], inv_std)
