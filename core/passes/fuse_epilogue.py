"""fuse_epilogue: fold a residual add and an activation into the Conv, Gemm or
ConvTranspose that produces their input, so the lowering applies them while the
output tile (a ConvTranspose's output plane) is still in registers (in cache).

Contract with the Conv/Gemm lowerings:

    tinyc.Conv(X, W, B | "", R | "")  attrs: the Conv's own + activation [+ clip_min, clip_max]
        = act(conv(X, W) + B + R)
    tinyc.Gemm(A, B, C | "", R | "")  attrs: alpha, beta, transA, transB (explicit)
                                             + activation [+ clip_min, clip_max]
        = act(alpha * A' B' + beta * C + R)
    tinyc.ConvTranspose(X, W, B | "", R | "")  as tinyc.Conv

activation is "", "Relu" or "Clip"; R has exactly the output's shape. The
intermediate value must have a single reader and not be a graph output; the
fused node keeps the name of the last fused op's output. MatMul(A 2-D, constant
B 2-D) + Add(constant bias along the last dim) becomes a tinyc.Gemm with C.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..ir import Node, TensorType
from .base import FunctionPass
from .rewrite import GraphView, Rewrite, is_onnx, rewrite_graph

TINYC = "tinyc"
FUSABLE = ("Conv", "Gemm", "ConvTranspose")
_GEMM_DEFAULTS = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}


def fuse_residual_add(view: GraphView, add: Node) -> Rewrite | None:
    """Conv/Gemm -> Add(out, R) (or Sum of two) -> tinyc op with R."""
    if not (is_onnx(add, "Add") or (is_onnx(add, "Sum") and len(add.inputs) == 2)):
        return None
    a, b = add.inputs
    for out, residual in ((a, b), (b, a)):
        producer = _fusable_producer(view, out)
        if producer is None or _slot(producer, 3) or producer.attr("activation"):
            continue
        if not same_static_type(view.type_of(residual), view.type_of(out)):
            continue
        if not same_static_type(view.type_of(add.outputs[0]), view.type_of(out)):
            continue
        fused = _as_tinyc(producer)
        fused = fused.with_(inputs=fused.inputs[:3] + (residual,), outputs=add.outputs)
        return Rewrite(old=(producer, add), new=(fused,))
    return None


def fuse_activation(view: GraphView, act: Node) -> Rewrite | None:
    """Conv/Gemm (possibly with R) -> Relu | Clip(constant bounds) -> tinyc op."""
    if not is_onnx(act, "Relu", "Clip"):
        return None
    producer = _fusable_producer(view, act.inputs[0])
    if producer is None or producer.attr("activation"):
        return None
    act_attrs = _activation_attrs(view, act)
    if act_attrs is None:
        return None
    fused = _as_tinyc(producer)
    fused = fused.with_(attrs={**fused.attrs, **act_attrs}, outputs=act.outputs)
    return Rewrite(old=(producer, act), new=(fused,))


def fuse_matmul_bias(view: GraphView, add: Node) -> Rewrite | None:
    """MatMul(A 2-D, constant B 2-D) -> Add(constant bias) -> tinyc.Gemm with C."""
    if not is_onnx(add, "Add"):
        return None
    a, b = add.inputs
    for out, bias in ((a, b), (b, a)):
        matmul = view.producer(out)
        if matmul is None or not is_onnx(matmul, "MatMul") or not view.has_single_use(out):
            continue
        if not _is_gemm_like_matmul(view, matmul) or not _is_row_bias(view, bias, out):
            continue
        if not same_static_type(view.type_of(add.outputs[0]), view.type_of(out)):
            continue
        attrs = {**_GEMM_DEFAULTS, "activation": ""}
        gemm = Node("Gemm", (*matmul.inputs, bias, ""), add.outputs, attrs, matmul.name, TINYC)
        return Rewrite(old=(matmul, add), new=(gemm,))
    return None


def _fusable_producer(view: GraphView, value: str) -> Node | None:
    producer = view.producer(value)
    if producer is None or not view.has_single_use(value):
        return None
    if is_onnx(producer, *FUSABLE) or (producer.domain == TINYC and producer.op in FUSABLE):
        return producer
    return None


def _as_tinyc(node: Node) -> Node:
    """The tinyc form of a Conv/Gemm, with every optional slot and attr spelled out."""
    if node.domain == TINYC:
        return node
    attrs: dict[str, Any] = dict(node.attrs)
    if node.op == "Gemm":
        attrs = {**_GEMM_DEFAULTS, **attrs}
    attrs["activation"] = ""
    inputs = (node.inputs[0], node.inputs[1], _slot(node, 2), "")
    return node.with_(domain=TINYC, inputs=inputs, attrs=attrs)


def _slot(node: Node, k: int) -> str:
    return node.inputs[k] if len(node.inputs) > k else ""


def _activation_attrs(view: GraphView, act: Node) -> Mapping[str, Any] | None:
    if act.op == "Relu":
        return {"activation": "Relu"}
    if len(act.inputs) == 1:  # opset < 11: bounds are attributes
        lo, hi = act.attr("min", -math.inf), act.attr("max", math.inf)
    else:
        lo = _clip_bound(view, _slot(act, 1), missing=-math.inf)
        hi = _clip_bound(view, _slot(act, 2), missing=math.inf)
        if lo is None or hi is None:
            return None  # bounds computed at run time
    return {"activation": "Clip", "clip_min": float(lo), "clip_max": float(hi)}


def _clip_bound(view: GraphView, value: str, *, missing: float) -> float | None:
    if not value:
        return missing
    c = view.const(value)
    return None if c is None or c.size != 1 else float(c.reshape(()))


def same_static_type(a: TensorType, b: TensorType) -> bool:
    return a.is_static and a == b


def _is_gemm_like_matmul(view: GraphView, matmul: Node) -> bool:
    weight = view.const(matmul.inputs[1])
    return view.type_of(matmul.inputs[0]).rank == 2 and weight is not None and weight.ndim == 2


def _is_row_bias(view: GraphView, value: str, matmul_out: str) -> bool:
    """A constant that broadcasts along the last dim of the product: [], [N], [1, N]."""
    c, out = view.const(value), view.type_of(matmul_out)
    if c is None or c.ndim > 2 or not out.is_static:
        return False
    n = out.shape[-1]
    return all(d == 1 for d in c.shape[:-1]) and (c.ndim == 0 or c.shape[-1] in (1, n))


FUSION_RULES = (fuse_residual_add, fuse_matmul_bias, fuse_activation)

fuse_epilogue_pass = FunctionPass("fuse_epilogue", lambda g: rewrite_graph(g, FUSION_RULES))
