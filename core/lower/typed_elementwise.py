"""Elementwise ops on any dtype: Cast, comparisons, logic and bit ops, Mod,
BitShift, Where, Sign, rounding, IsNaN / IsInf, trigonometry, and the integer /
bool / float16 / double forms of the arithmetic ops whose float32 fast paths
live in elementwise.py. Kernels: codegen/kernels/ops/nary.py over typed_ops.py.
"""

from __future__ import annotations

import math

import numpy as np

from ..codegen.kernels.ops import nary as K
from ..codegen.kernels.support.dtype_ir import storage_type
from ..errors import NotLowerable
from ..ir import DType, Node
from ..program import Buf, Call, Const, DimTable, LowerContext, LoweredNode, Scratch, int_table
from .broadcast import NaryPlan, broadcast_output, index_expr, nary_plan, shape_of
from .registry import lowers

Operand = Buf | Const | Scratch

_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Max": "max",
           "Min": "min", "Sum": "add", "Mean": "add", "Equal": "eq", "Less": "lt",
           "LessOrEqual": "le", "Greater": "gt", "GreaterOrEqual": "ge", "And": "and",
           "Or": "or", "Xor": "xor", "BitwiseAnd": "and", "BitwiseOr": "or",
           "BitwiseXor": "xor"}

_UNARY = {"Neg": "neg", "Abs": "abs", "Sign": "sign", "Floor": "floor", "Ceil": "ceil",
          "Round": "round", "IsNaN": "isnan", "Not": "not", "BitwiseNot": "not",
          "Sqrt": "sqrt", "Reciprocal": "reciprocal", "Exp": "exp", "Log": "log",
          "Tanh": "tanh", "Sigmoid": "sigmoid", "Erf": "erf", "Relu": "relu", "Sin": "sin",
          "Cos": "cos", "Tan": "tan", "Asin": "asin", "Acos": "acos", "Atan": "atan",
          "Sinh": "sinh", "Cosh": "cosh", "Asinh": "asinh", "Acosh": "acosh",
          "Atanh": "atanh", "Cast": "cast", "CastLike": "cast", "Identity": "identity"}


def dtype_of(ctx: LowerContext, name: str) -> DType:
    dt = ctx.graph.type_of(name).dtype
    try:
        storage_type(dt)
    except TypeError:
        raise NotLowerable(f"{name}: no kernels for {dt.name} elements") from None
    return dt


def nary_calls(op: str, operands: list[tuple[Operand, DType, tuple[int, ...]]],
               y: str | Buf | Scratch, out_dtype: DType, out: tuple[int, ...],
               tag: str) -> list[Call]:
    """The call computing y = op(operands) with broadcasting (none for an empty y);
    y is a value's name or a buffer (scratch for an intermediate)."""
    plan = nary_plan(out, [shape for _, _, shape in operands])
    if plan.numel == 0:
        return []
    if len(plan.outer) > K.MAX_OUTER_DIMS:
        raise NotLowerable(f"broadcast needs {len(plan.outer)} outer dims, "
                           f"at most {K.MAX_OUTER_DIMS} are supported")
    kernel = K.nary_kernel(op, [dt for _, dt, _ in operands], out_dtype, plan.kinds)
    dst = Buf(y) if isinstance(y, str) else y
    return [Call(kernel, (*[o for o, _, _ in operands], dst, _table(plan, len(operands), tag),
                          plan.inner))]


def _table(plan: NaryPlan, arity: int, tag: str) -> Const | DimTable:
    pad = [(1,) + (0,) * (arity + 1)] * (K.MAX_OUTER_DIMS - len(plan.outer))
    return int_table(tag, [v for row in pad + list(plan.outer) for v in row])


def _operand(ctx: LowerContext, name: str) -> tuple[Operand, DType, tuple[int, ...]]:
    return Buf(name), dtype_of(ctx, name), shape_of(ctx, name)


def typed_elementwise(node: Node, ctx: LowerContext, op: str, inputs: list[str]) -> LoweredNode:
    """y = op(inputs...) elementwise with broadcasting; variadic ops fold left."""
    y = node.outputs[0]
    out, out_dtype = broadcast_output(ctx, inputs, y), dtype_of(ctx, y)
    operands = [_operand(ctx, x) for x in inputs]
    arity = 2 if len(operands) > 2 and node.op in ("Sum", "Mean", "Max", "Min") else len(operands)
    calls = nary_calls(op, operands[:arity], y, out_dtype, out, f"{node.name}.plan0")
    for k, extra in enumerate(operands[arity:], start=1):
        acc = (Buf(y), out_dtype, out)
        calls += nary_calls(op, [acc, extra], y, out_dtype, out, f"{node.name}.plan{k}")
    if node.op == "Mean" and len(operands) > 1:
        count = Const(f"{node.name}.count", np.array(len(operands), out_dtype.numpy))
        calls += nary_calls("div", [(Buf(y), out_dtype, out), (count, out_dtype, ())], y,
                            out_dtype, out, f"{node.name}.mean")
    terms = ", ".join(f"{x}[{index_expr(shape_of(ctx, x), out)}]" for x in inputs)
    idx = ",".join(f"i{k}" for k in range(len(out)))
    kernels = ", ".join(sorted({c.kernel.name for c in calls})) or "nothing (empty output)"
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics=f"y[{idx}] = {op}({terms}) as {out_dtype.short}",
                       note=f"{kernels}: typed broadcasting, outer loops around a vector loop")


def typed_op_name(node: Node) -> str:
    """The typed_ops name for an ONNX elementwise node."""
    if node.op in _BINARY:
        return _BINARY[node.op]
    if node.op in ("Cast", "CastLike") and not node.attr("saturate", 1):
        return "cast_nosat"
    if node.op in _UNARY:
        return _UNARY[node.op]
    if node.op == "Mod":
        return "fmod" if node.attr("fmod", 0) else "mod"
    if node.op == "BitShift":
        return "shl" if node.attr("direction") == "LEFT" else "shr"
    if node.op == "IsInf":
        pos, neg = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
        if not (pos or neg):
            raise NotLowerable("IsInf detecting neither infinity")
        return "isinf" if pos and neg else "isposinf" if pos else "isneginf"
    if node.op == "Where":
        return "where"
    raise NotLowerable(f"{node.op} is not an elementwise op")


@lowers("Cast", "CastLike", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual",
        "And", "Or", "Xor", "Not", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot",
        "BitShift", "Mod", "Where", "Sign", "Floor", "Ceil", "Round", "IsNaN", "IsInf",
        "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh")
def lower_typed(node: Node, ctx: LowerContext) -> LoweredNode:
    inputs = [i for i in node.inputs if i]
    if node.op == "CastLike":
        inputs = inputs[:1]  # the second input only gives the type
    if ctx.graph.type_of(node.outputs[0]).dtype is DType.float8e8m0 and \
            node.attr("round_mode", "up") != "up":
        raise NotLowerable(f"rounding to float8e8m0 {node.attr('round_mode')!r}: only 'up'")
    return typed_elementwise(node, ctx, typed_op_name(node), inputs)


def typed_clip(node: Node, ctx: LowerContext) -> LoweredNode:
    """Clip of any dtype, its bounds constants or tensors (an omitted bound is the
    dtype's limit)."""
    x, y = node.inputs[0], node.outputs[0]
    dt = dtype_of(ctx, x)
    operands = [_operand(ctx, x)]
    for k, name in enumerate((list(node.inputs[1:3]) + ["", ""])[:2]):
        if name:
            operands.append(_operand(ctx, name))
        else:
            limit = _dtype_limits(dt)[k]
            operands.append((Const(f"{node.name}.bound{k}", np.array(limit, dt.numpy)), dt, ()))
    out = broadcast_output(ctx, [x], y)
    calls = nary_calls("clip", operands, y, dtype_of(ctx, y), out, f"{node.name}.plan")
    return LoweredNode(node.name, node.op, node.outputs, calls,
                       semantics="y[i] = min(max(x[i], lo), hi)",
                       note=f"{', '.join(c.kernel.name for c in calls)}: typed clip")


def _dtype_limits(dt: DType) -> tuple[float | int, float | int]:
    if dt.is_float:
        return -math.inf, math.inf
    info = np.iinfo(dt.numpy)
    return int(info.min), int(info.max)
