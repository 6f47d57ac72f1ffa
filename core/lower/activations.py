"""Lowerings of the activation functions of codegen/kernels/ops/activations.py:
one vector loop per node, the op's attributes passed as f32 arguments."""

from __future__ import annotations

import math

from ..codegen.kernels.ops.activations import activation_kernel
from ..errors import NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, LowerContext, LoweredNode
from .elementwise import shape_of
from .registry import lowers

FLOATS = (DType.float32, DType.float16, DType.bfloat16)  # float32 arithmetic on each
SELU_ALPHA = 1.67326319217681884765625
SELU_GAMMA = 1.05070102214813232421875


def _kernel_op(node: Node) -> tuple[str, tuple[float, ...], str]:
    """(kernel op, f32 params, semantics of y[i] in terms of x[i])."""
    op, a = node.op, node.attr
    if op == "Gelu":
        approximate = a("approximate", "none")
        if approximate == "tanh":
            return "gelu_tanh", (), "x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))"
        if approximate != "none":
            raise NotLowerable(f"Gelu approximate={approximate!r}")
        return "gelu", (), "x/2 * (1 + erf(x / sqrt(2)))"
    if op == "Elu":
        alpha = float(a("alpha", 1.0))
        return "elu", (alpha,), f"x < 0 ? {alpha} * (exp(x) - 1) : x"
    if op == "Selu":
        alpha, gamma = float(a("alpha", SELU_ALPHA)), float(a("gamma", SELU_GAMMA))
        return "selu", (alpha, gamma), f"{gamma} * (x <= 0 ? {alpha} * (exp(x) - 1) : x)"
    if op == "Celu":
        alpha = float(a("alpha", 1.0))
        if alpha == 0:
            raise NotLowerable("Celu with alpha 0")
        return "celu", (alpha,), f"max(0, x) + min(0, {alpha} * (exp(x / {alpha}) - 1))"
    if op == "ThresholdedRelu":
        alpha = float(a("alpha", 1.0))
        return "thresholded_relu", (alpha,), f"x > {alpha} ? x : 0"
    if op == "Shrink":
        bias, lambd = float(a("bias", 0.0)), float(a("lambd", 0.5))
        return "shrink", (bias, lambd), \
            f"x < -{lambd} ? x + {bias} : x > {lambd} ? x - {bias} : 0"
    if op == "Swish":
        alpha = float(a("alpha", 1.0))
        return "swish", (alpha,), f"x * sigmoid({alpha} * x)"
    simple = {"Softplus": ("softplus", "log(1 + exp(x))"),
              "Softsign": ("softsign", "x / (1 + |x|)"),
              "Mish": ("mish", "x * tanh(log(1 + exp(x)))")}
    kop, sem = simple[op]
    return kop, (), sem


@lowers("Gelu", "Elu", "Selu", "Celu", "Softplus", "Softsign", "Mish", "ThresholdedRelu",
        "Shrink", "Swish")
def lower_activation(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    dtype = ctx.graph.type_of(x).dtype
    if dtype not in FLOATS:
        raise NotLowerable(f"{x} is {dtype.short}: {node.op} is computed for float32, "
                           f"float16 and bfloat16")
    kop, params, sem = _kernel_op(node)
    n = math.prod(shape_of(ctx, y))
    call = Call(activation_kernel(kop, dtype), (Buf(x), Buf(y), n, *params))
    return LoweredNode(node.name, node.op, node.outputs, [call],
                       semantics=f"y[i] = f(x[i]), f(x) = {sem}",
                       note=f"{call.kernel.name}: one vector loop over {n} elements")
