"""What the QDQ rules of quant_canonicalize.py look at: DequantizeLinear /
QuantizeLinear nodes around an op, their parameters, and which of them
onnxruntime would fuse.

onnxruntime (x86) converts an int8 QuantizeLinear -> DequantizeLinear pair to
uint8 (zero point + 128) only when the pair is private to one consumer: the
QuantizeLinear feeds that single DequantizeLinear, which feeds a single node
(its pass first gives every consumer its own DequantizeLinear, and a
QuantizeLinear with several is left alone). It fuses an op with int8 data only
where all its pairs were converted; the rest runs in float between the pairs.
uint8 graphs need no conversion and are fused regardless.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NotLowerable
from ..ir import DType, Node
from ..ir.quant import QParams, read_qparams, slot
from .rewrite import GraphView, is_onnx


@dataclass(frozen=True)
class Dequantized:
    """A float value that is DequantizeLinear(q) for a quantized tensor q."""

    dq: Node
    q: str  # the quantized tensor
    params: QParams
    scale: str  # names of the parameter constants, reused by the fused node
    zero_point: str


def linear_params(view: GraphView, node: Node, quantized: str) -> QParams | None:
    """The parameters of a QuantizeLinear / DequantizeLinear, None if not constant
    or blocked."""
    if int(node.attr("block_size", 0) or 0):
        return None
    t = view.type_of(quantized)
    axis = int(node.attr("axis", 1))
    axis = axis + t.rank if axis < 0 else axis
    try:
        return read_qparams(view.const, node.inputs[1], slot(node, 2), t.dtype, axis)
    except NotLowerable:
        return None


def dequantized(view: GraphView, value: str) -> Dequantized | None:
    """How `value` was dequantized, if a DequantizeLinear produced it."""
    dq = view.producer(value)
    if dq is None or not is_onnx(dq, "DequantizeLinear"):
        return None
    q = dq.inputs[0]
    params = linear_params(view, dq, q)
    if params is None or params.dtype not in (DType.uint8, DType.int8, DType.int32):
        return None
    return Dequantized(dq, q, params, dq.inputs[1], slot(dq, 2))


def weight(view: GraphView, value: str) -> tuple[Dequantized, np.ndarray] | None:
    """A dequantized compile-time constant (weights, bias) and its integer data."""
    d = dequantized(view, value)
    if d is None:
        return None
    data = view.const(d.q)
    return (d, data) if data is not None else None


def activation(view: GraphView, value: str) -> Dequantized | None:
    """A dequantized runtime tensor, quantized per tensor to 8 bits."""
    d = dequantized(view, value)
    if d is None or view.const(d.q) is not None or not d.params.per_tensor:
        return None
    return d if d.params.dtype in (DType.uint8, DType.int8) else None


@dataclass(frozen=True)
class Quantized:
    """The QuantizeLinear that reads an op's float output; `copies` are others
    with the same parameters reading it too (their outputs equal q's)."""

    q: Node
    params: QParams
    copies: tuple[Node, ...] = ()

    @property
    def out(self) -> str:
        return self.q.outputs[0]


def quantized_output(view: GraphView, value: str) -> Quantized | None:
    users = view.users(value)
    if value in view.outputs or not users:
        return None
    q = users[0]
    if any(not is_onnx(u, "QuantizeLinear") or u.inputs[1:3] != q.inputs[1:3] for u in users):
        return None
    if len(users) > 1 and any(u.outputs[0] in view.outputs for u in users):
        return None
    params = linear_params(view, q, q.outputs[0])
    if params is None or not params.per_tensor or params.dtype not in (DType.uint8, DType.int8):
        return None
    return Quantized(q, params, tuple(users[1:]))


def private_pairs(view: GraphView) -> frozenset[str]:
    """The quantized tensors whose QuantizeLinear -> DequantizeLinear pair
    onnxruntime would convert from int8 to uint8: the pair feeds one node only.
    onnxruntime first merges identical nodes, so QuantizeLinear nodes of one
    float tensor with the same parameters count as one pair (quantize_static's
    DedicatedQDQPair copies are merged back). Computed once, on the graph before
    any rewrite (rewrites replace the QuantizeLinear nodes this looks at)."""
    groups: dict[tuple[str, ...], list[Node]] = {}
    for q in view.graph.nodes:
        if is_onnx(q, "QuantizeLinear"):
            groups.setdefault((q.inputs[0], *q.inputs[1:3]), []).append(q)
    out = set()
    for qs in groups.values():
        readers = [u for q in qs for u in view.users(q.outputs[0])]
        if any(q.outputs[0] in view.outputs for q in qs) or not readers:
            continue
        if not all(_dequantizes_like(view, u, qs[0]) for u in readers):
            continue
        final = sum(len(view.users(u.outputs[0])) + (u.outputs[0] in view.outputs)
                    for u in readers)
        if final == 1:
            out.update(q.outputs[0] for q in qs)
    return frozenset(out)


def _dequantizes_like(view: GraphView, dq: Node, q: Node) -> bool:
    if not is_onnx(dq, "DequantizeLinear"):
        return False
    qp, dqp = linear_params(view, q, q.outputs[0]), linear_params(view, dq, dq.inputs[0])
    return qp is not None and dqp is not None and qp.same_as(dqp)


def ort_fuses(inputs: list[Dequantized], out: Quantized, private: frozenset[str]) -> bool:
    """Whether onnxruntime runs this node unit as one quantized op (see the
    module docstring): uint8 always; int8 when every pair is private."""
    if out.params.dtype == DType.uint8 and all(d.params.dtype == DType.uint8 for d in inputs):
        return True
    return out.out in private and all(d.q in private for d in inputs)
