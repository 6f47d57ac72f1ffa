"""onnxruntime's GELU-family contrib ops written as standard ONNX ops, with
onnxruntime's formulas (float32):

    QuickGelu(x)       = x * sigmoid(alpha * x)                     alpha default 1.702
    BiasGelu(a, b)     = 0.5 * x * (1 + erf(x / sqrt(2))),          x = a + b
    FastGelu(x[, b])   = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))),  x = x + b

and ONNX's SwiGLU (opset 28), the gated MLP activation of Llama-style models:

    SwiGLU(a, b)       = Swish_alpha(a) * b,  Swish_alpha(a) = a * sigmoid(alpha * a)
"""

from __future__ import annotations

import math

import numpy as np

from .llm_emit import Emitter, attr, inputs


def decompose_quick_gelu(em: Emitter) -> None:
    x = em.node.input[0]
    alpha = float(attr(em.node, "alpha", 1.702))
    scaled = em.op("Mul", [x, em.const(alpha, np.float32, "alpha")])
    em.op("Mul", [x, em.op("Sigmoid", [scaled])], em.node.output[0])


def decompose_bias_gelu(em: Emitter) -> None:
    a, b = inputs(em.node, 2)
    x = em.op("Add", [a, b])
    inner = em.op("Erf", [em.op("Mul", [x, em.const(1 / math.sqrt(2), np.float32, "rsqrt2")])])
    _half_x_times_one_plus(em, x, inner)


def decompose_fast_gelu(em: Emitter) -> None:
    x, bias = inputs(em.node, 2)
    if bias:
        x = em.op("Add", [x, bias])
    cube = em.op("Mul", [em.op("Mul", [x, x]), x])
    poly = em.op("Add", [x, em.op("Mul", [cube, em.const(0.044715, np.float32, "c")])])
    root = em.const(math.sqrt(2 / math.pi), np.float32, "sqrt_2_over_pi")
    _half_x_times_one_plus(em, x, em.op("Tanh", [em.op("Mul", [poly, root])]))


def _half_x_times_one_plus(em: Emitter, x: str, t: str) -> None:
    one_plus = em.op("Add", [t, em.const(1.0, np.float32, "one")])
    half_x = em.op("Mul", [x, em.const(0.5, np.float32, "half")])
    em.op("Mul", [half_x, one_plus], em.node.output[0])


def decompose_swiglu(em: Emitter) -> None:
    a, b = inputs(em.node, 2)
    gate = em.op("Swish", [a], alpha=float(attr(em.node, "alpha", 1.0)))
    em.op("Mul", [gate, b], em.node.output[0])
