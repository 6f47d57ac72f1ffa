"""Lowerings of elementwise ops: unary maps, broadcasting binary and variadic ops,
inference BatchNormalization. These are the float32 fast paths (kernels in
codegen/kernels/ops/elementwise.py); other dtypes, and bounds or exponents only
known at run time, go to typed_elementwise.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..codegen.kernels.ops import elementwise as K
from ..errors import NotLowerable
from ..ir import DType, Node
from ..ir.symbolic import same
from ..program import Buf, Call, Const, LowerContext, LoweredNode, int_table
from .batchnorm_stats import runtime_batchnorm, training_batchnorm
from .broadcast import (
    broadcast_output,
    broadcast_strides,
    contiguous_strides,
    index_expr,
    is_one,
    same_shape,
    shape_of,
)
from .checks import require_elements
from .registry import lowers
from .typed_elementwise import typed_clip, typed_elementwise, typed_op_name

__all__ = ["BroadcastPlan", "broadcast_call", "broadcast_plan", "require_f32", "shape_of",
           "unary_node"]

F32_MIN, F32_MAX = float(np.finfo(np.float32).min), float(np.finfo(np.float32).max)


def require_f32(node: Node, ctx: LowerContext, names: Sequence[str] | None = None) -> None:
    """NotLowerable unless every named value (default: all inputs and outputs) is float32."""
    for v in names if names is not None else (*node.inputs, *node.outputs):
        if v and ctx.graph.type_of(v).dtype != DType.float32:
            raise NotLowerable(f"{v} is {ctx.graph.type_of(v).dtype.short}, only f32 is supported")


# ---------------------------------------------------------------------------
# Unary


def _unary_params(node: Node, ctx: LowerContext) -> tuple[str, tuple[float, ...], str]:
    """(kernel op, f32 params, semantics of y[i] in terms of x[i])."""
    op = node.op
    simple = {"Relu": ("relu", "max(x[i], 0)"), "Sigmoid": ("sigmoid", "1 / (1 + exp(-x[i]))"),
              "Tanh": ("tanh", "tanh(x[i])"), "Exp": ("exp", "exp(x[i])"),
              "Log": ("log", "log(x[i])"), "Erf": ("erf", "erf(x[i])"),
              "Neg": ("neg", "-x[i]"), "Abs": ("abs", "|x[i]|"), "Sqrt": ("sqrt", "sqrt(x[i])"),
              "Reciprocal": ("reciprocal", "1 / x[i]"),
              "HardSwish": ("hard_swish", "x[i] * clip(x[i] / 6 + 1/2, 0, 1)")}
    if op in simple:
        kop, sem = simple[op]
        return kop, (), sem
    if op == "LeakyRelu":
        alpha = float(node.attr("alpha", 0.01))
        return "leaky_relu", (alpha,), f"x[i] < 0 ? {alpha} * x[i] : x[i]"
    if op == "HardSigmoid":
        alpha, beta = float(node.attr("alpha", 0.2)), float(node.attr("beta", 0.5))
        return "hard_sigmoid", (alpha, beta), f"clip({alpha} * x[i] + {beta}, 0, 1)"
    if op == "Clip":
        lo, hi = _clip_bounds(node, ctx)
        return "clip", (lo, hi), f"min(max(x[i], {lo}), {hi})"
    raise AssertionError(op)


def _clip_bounds(node: Node, ctx: LowerContext) -> tuple[float, float]:
    if ctx.graph.opsets.get("", 13) < 11:
        return float(node.attr("min", F32_MIN)), float(node.attr("max", F32_MAX))
    bounds = [F32_MIN, F32_MAX]
    for k, name in enumerate(node.inputs[1:3]):
        if not name:
            continue
        bounds[k] = float(np.asarray(ctx.graph.const(name)).reshape(()))
    return bounds[0], bounds[1]


@lowers("Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Exp", "Log", "Erf", "Neg", "Abs",
        "Sqrt", "Reciprocal", "HardSigmoid", "HardSwish")
def lower_unary(node: Node, ctx: LowerContext) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    if not _all_f32(node, ctx, [x, y]):
        if node.op == "Clip":
            return typed_clip(node, ctx)
        return typed_elementwise(node, ctx, typed_op_name(node), [x])
    if node.op == "Clip" and not _constant_bounds(node, ctx):
        return typed_clip(node, ctx)
    kop, params, sem = _unary_params(node, ctx)
    return unary_node(node, ctx, kop, params, sem)


def _all_f32(node: Node, ctx: LowerContext, names: Sequence[str] | None = None) -> bool:
    names = names if names is not None else [*node.inputs, *node.outputs]
    return all(ctx.graph.type_of(v).dtype == DType.float32 for v in names if v)


def _constant_bounds(node: Node, ctx: LowerContext) -> bool:
    return ctx.graph.opsets.get("", 13) < 11 or all(
        ctx.graph.is_const(b) for b in node.inputs[1:3] if b)


def unary_node(node: Node, ctx: LowerContext, kop: str, params: tuple[float, ...],
               sem: str) -> LoweredNode:
    x, y = node.inputs[0], node.outputs[0]
    n = math.prod(broadcast_output(ctx, [x], y))
    call = Call(K.unary_kernel(kop), (Buf(x), Buf(y), n, *params))
    return LoweredNode(node.name, node.op, node.outputs, [call], semantics=f"y[i] = {sem}",
                       in_place=(x,), note=f"unary_{kop}: one vector loop over {n} elements")


# ---------------------------------------------------------------------------
# Broadcasting


@dataclass(frozen=True)
class BroadcastPlan:
    """op(a, b) -> y as outer dims (count, a stride, b stride, y stride) around one
    contiguous inner dim where each operand is a vector ('v') or a scalar ('s')."""

    kinds: str
    inner: int
    outer: tuple[tuple[int, int, int, int], ...]


def broadcast_plan(out: Sequence[int], a: Sequence[int], b: Sequence[int]) -> BroadcastPlan:
    """Numpy broadcasting of a and b to `out`, with size-1 dims dropped and adjacent
    dims merged wherever both operands walk them the same way."""
    sa, sb, sy = broadcast_strides(a, out), broadcast_strides(b, out), contiguous_strides(out)
    dims: list[list[int]] = []  # [count, a stride, b stride, y stride], outer to inner
    for k, count in enumerate(out):
        if is_one(count):
            continue
        d = [count, sa[k], sb[k], sy[k]]
        if dims and all(same(dims[-1][j], d[j] * count) for j in (1, 2, 3)):
            dims[-1] = [dims[-1][0] * count, *d[1:]]
        else:
            dims.append(d)
    if not dims:
        dims = [[1, 0, 0, 0]]
    inner = dims[-1]
    kinds = "".join("v" if s == 1 else "s" for s in inner[1:3])
    return BroadcastPlan(kinds, inner[0], tuple(tuple(d) for d in dims[:-1]))


def broadcast_call(op: str, a: Buf | Const, b: Buf | Const, y: Buf, plan: BroadcastPlan,
                   tag: str) -> Call:
    if not plan.outer:
        return Call(K.binary_kernel(op, plan.kinds, nd=False), (a, b, y, plan.inner))
    if len(plan.outer) > K.MAX_OUTER_DIMS:
        raise NotLowerable(f"broadcast needs {len(plan.outer)} outer dims, "
                           f"at most {K.MAX_OUTER_DIMS} are supported")
    pad = [(1, 0, 0, 0)] * (K.MAX_OUTER_DIMS - len(plan.outer))
    table = int_table(tag, [v for row in pad + list(plan.outer) for v in row])
    kernel = K.binary_kernel(op, plan.kinds, nd=True)
    return Call(kernel, (a, b, y, table, plan.inner))


# ---------------------------------------------------------------------------
# Binary and variadic

_BINARY = {"Add": ("add", "{a} + {b}"), "Sub": ("sub", "{a} - {b}"), "Mul": ("mul", "{a} * {b}"),
           "Div": ("div", "{a} / {b}"), "Pow": ("pow", "{a} ^ {b}"),
           "PRelu": ("prelu", "{a} < 0 ? {b} * {a} : {a}"),
           "Sum": ("add", "{a} + {b}"), "Mean": ("add", "{a} + {b}"),
           "Max": ("max", "max({a}, {b})"), "Min": ("min", "min({a}, {b})")}

# Pow with a constant scalar exponent that has a cheaper exact form
_POW_SPECIAL = {2.0: ("square", "x[i] * x[i]"), 3.0: ("cube", "x[i] * x[i] * x[i]"),
                0.5: ("sqrt", "sqrt(x[i])"),
                -1.0: ("reciprocal", "1 / x[i]"), 1.0: ("identity", "x[i]")}


@lowers("Add", "Sub", "Mul", "Div", "Pow", "PRelu", "Sum", "Mean", "Max", "Min")
def lower_broadcasting(node: Node, ctx: LowerContext) -> LoweredNode:
    inputs = [i for i in node.inputs if i]
    y = node.outputs[0]
    out = broadcast_output(ctx, inputs, y)
    if _all_f32(node, ctx, [inputs[0], y]) and node.op == "Pow" and (
            special := _pow_special(node, ctx, out)):
        return special  # the exponent may be an integer constant here
    if not _all_f32(node, ctx):
        if node.op == "PRelu":
            raise NotLowerable("PRelu is lowered for float32 only")
        return typed_elementwise(node, ctx, typed_op_name(node), inputs)
    if len(inputs) == 1:
        return unary_node(node, ctx, "identity", (), "x[i]")
    kop, fmt = _BINARY[node.op]
    calls, terms = [], []
    for k in range(1, len(inputs)):
        a = inputs[0] if k == 1 else y
        a_shape = shape_of(ctx, a) if k == 1 else out
        b_shape = shape_of(ctx, inputs[k])
        plan = broadcast_plan(out, a_shape, b_shape)
        calls.append(broadcast_call(kop, Buf(a), Buf(inputs[k]), Buf(y), plan,
                                    f"{node.name}.bcast{k}"))
        if k == 1:
            terms.append(f"x0[{index_expr(a_shape, out)}]")
        terms.append(f"x{k}[{index_expr(b_shape, out)}]")
    sem = terms[0]
    for t in terms[1:]:
        sem = fmt.format(a=sem, b=t)
    if node.op == "Mean":
        scale = Const(f"{node.name}.inv_count", np.array([1.0 / len(inputs)], np.float32))
        n = math.prod(out)
        calls.append(Call(K.binary_kernel("mul", "vs", nd=False), (Buf(y), scale, Buf(y), n)))
        sem = f"({sem}) / {len(inputs)}"
    idx = ",".join(f"i{k}" for k in range(len(out)))
    kinds = ", ".join(c.kernel.name for c in calls)
    # the first two inputs are read before y is written over them (later calls read y)
    overwritable = tuple(v for v in inputs[:2] if same_shape(shape_of(ctx, v), out))
    return LoweredNode(node.name, node.op, node.outputs, calls, semantics=f"y[{idx}] = {sem}",
                       in_place=overwritable,
                       note=f"{kinds}: broadcasting as outer loops around a vector inner loop")


def _pow_special(node: Node, ctx: LowerContext, out: tuple[int, ...]) -> LoweredNode | None:
    base, exponent = node.inputs[0], node.inputs[1]
    if shape_of(ctx, base) != out or not ctx.graph.is_const(exponent):
        return None
    e = np.asarray(ctx.graph.const(exponent))
    if e.size != 1 or float(e.reshape(())) not in _POW_SPECIAL:
        return None
    kop, sem = _POW_SPECIAL[float(e.reshape(()))]
    return unary_node(node, ctx, kop, (), sem)


# ---------------------------------------------------------------------------
# BatchNormalization (inference)


@lowers("BatchNormalization")
def lower_batchnorm(node: Node, ctx: LowerContext) -> LoweredNode:
    x, scale, bias, mean, var = node.inputs[:5]
    y = node.outputs[0]
    if node.attr("training_mode", 0) or any(node.outputs[1:]):
        return training_batchnorm(node, ctx)
    params = [scale, bias, mean, var]
    if node.attr("spatial", 1):  # one statistic per channel (always, from opset 9)
        channels = int(shape_of(ctx, x)[1])
        for i, what in enumerate(("scale", "bias", "mean", "var"), start=1):
            require_elements(ctx, node, i, channels, what)
    if not all(ctx.graph.is_const(p) for p in params) or not _all_f32(node, ctx, [x, y]):
        return runtime_batchnorm(node, ctx)
    s, b, m, v = (np.asarray(ctx.graph.const(p), np.float64) for p in params)
    eps = float(node.attr("epsilon", 1e-5))
    a = s / np.sqrt(v + eps)
    shift = b - m * a
    shape = shape_of(ctx, x)
    outer = shape[0]
    # spatial=0 (opsets < 9) normalizes every element of a sample with its own statistics
    channels = a.size
    inner = math.prod(shape[1:]) // channels
    if outer * channels * inner != math.prod(shape):
        raise NotLowerable(f"statistics of shape {s.shape} do not match input {shape}")
    a_const = Const(f"{node.name}.scale", a.astype(np.float32).ravel())
    b_const = Const(f"{node.name}.shift", shift.astype(np.float32).ravel())
    sem = "y[n,c,i] = x[n,c,i] * a[c] + b[c], a = scale / sqrt(var + eps), b = bias - mean * a"
    if inner == 1:  # [N, C]: vectors along C instead, in two broadcasting passes
        plan = broadcast_plan((outer, channels), (outer, channels), (channels,))
        calls = [broadcast_call("mul", Buf(x), a_const, Buf(y), plan, f"{node.name}.mul"),
                 broadcast_call("add", Buf(y), b_const, Buf(y), plan, f"{node.name}.add")]
        return LoweredNode(node.name, node.op, node.outputs, calls, semantics=sem,
                           note="x * a then + b along C, scale/shift folded at compile time")
    call = Call(K.channel_affine_kernel(),
                (Buf(x), a_const, b_const, Buf(y), outer, channels, inner))
    return LoweredNode(node.name, node.op, node.outputs, [call], semantics=sem,
                       note="channel_affine: per-channel scale/shift folded at compile time")
