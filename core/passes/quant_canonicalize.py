"""quant_canonicalize: QDQ patterns -> integer ops.

A QDQ model (onnxruntime.quantization's default format) keeps float ops between
DequantizeLinear and QuantizeLinear nodes. This pass turns each such node unit
into the quantized op onnxruntime fuses it into, computing on the 8-bit tensors:

    DQ(x), DQ(w)[, DQ(bias)] -> Conv -> Q          QLinearConv
    DQ(a), DQ(b) -> MatMul -> Q                      QLinearMatMul
    DQ(a), DQ(b)[, DQ(c)] -> Gemm -> Q               com.microsoft.QGemm
    DQ(a), DQ(b) -> Add -> Q                         tinyc.QLinearAdd
    DQ(x) -> GlobalAveragePool (or a whole-image AveragePool) -> Q
                                                     com.microsoft.QLinearGlobalAveragePool
    DQ(x) -> Reshape / Flatten / Squeeze / Unsqueeze / Transpose / Concat / MaxPool
            -> Q with the same parameters on both sides
                                                     the op on the 8-bit tensor
    Relu / Clip -> Q whose saturation clips as much  Q (the activation goes)
    MaxPool of 8-bit data                            tinyc.MaxPool8
    DequantizeLinear of a constant                   a float constant

The integer forms compute what onnxruntime computes after its own QDQ fusion,
bit for bit. onnxruntime leaves some units in float (int8 data whose
QuantizeLinear / DequantizeLinear pairs are shared, see quant_qdq.py). By
default (Policy.mirror_ort) the pass does the same for a Conv, MatMul, Gemm or
pooling there, and marks a Conv (or a MatMul of two activations) to sum in
MLAS's order (ir/sum_order.py), so it computes what onnxruntime computes; an integer
form would differ by the roundings of the dequantized operands (measured on
int8 QDQ mobilenet_v2: every output equal, instead of 71%). An Add is fused
either way, with onnxruntime's float arithmetic exactly (formula "float")
where onnxruntime does not fuse it.

Anything else stays as it is: float ops between real Quantize / Dequantize
kernels. The pass must run before fold_constants, which would turn the
DequantizeLinear of constant weights into float weights.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..ir import DType, Graph, Node, TensorType
from ..ir.quant import F32, slot
from ..ir.sum_order import SUM_ORDER
from .base import FunctionPass
from .dead_code import eliminate_dead_code
from .quant_cleanup import drop_activation_before_quantize, fold_dequantize, rename_int_max_pool
from .quant_qdq import (
    Dequantized,
    Quantized,
    activation,
    ort_fuses,
    private_pairs,
    quantized_output,
    weight,
)
from .rewrite import GraphView, Rewrite, is_onnx, rewrite_graph

CONTRIB = "com.microsoft"
TINYC = "tinyc"
_VIEW_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose")
_BIAS_SCALE_RTOL = 1e-6  # a bias quantized with scale x_scale * w_scale (as the quantizer does)


@dataclass(frozen=True)
class Policy:
    """Which node units become integer ops. `mirror_ort`: only those onnxruntime
    fuses (the rest run in float as onnxruntime runs them, which keeps results
    closest to it); otherwise every unit that can be."""

    private: frozenset[str]  # pairs onnxruntime converts (quant_qdq.private_pairs)
    mirror_ort: bool = True

    def ort_fuses(self, inputs: list[Dequantized], out: Quantized) -> bool:
        return ort_fuses(inputs, out, self.private)

    def integer(self, inputs: list[Dequantized], out: Quantized) -> bool:
        return not self.mirror_ort or self.ort_fuses(inputs, out)


ALL_INTEGER = Policy(frozenset(), mirror_ort=False)


def _unit(view: GraphView, q: Node, *ops: str) -> tuple[Node, Quantized] | None:
    """(op, its output quantization) when `q` quantizes the single output of one of `ops`."""
    if not is_onnx(q, "QuantizeLinear"):
        return None
    op = view.producer(q.inputs[0])
    if op is None or not is_onnx(op, *ops):
        return None
    out = quantized_output(view, op.outputs[0])
    return (op, out) if out is not None and out.q is q else None


def _replace(op: Node, out: Quantized, node: Node, f: _Fused | None = None) -> Rewrite:
    """op and its QuantizeLinear(s) -> node, which produces the first one's output."""
    copies = {c.outputs[0]: out.out for c in out.copies}
    constants = f.constants if f else {}
    types = {k: TensorType.of(v) for k, v in constants.items()}
    return Rewrite(old=(op, out.q, *out.copies), new=(node,), constants=constants, types=types,
                   renames=copies, at=out.q)  # before any reader of the copies


class _Fused:
    """Builds the fused node's inputs, adding zero-point constants where a
    DequantizeLinear / QuantizeLinear left its zero point implicit."""

    def __init__(self, view: GraphView):
        self.view = view
        self.constants: dict[str, np.ndarray] = {}

    def zp(self, name: str, dtype: DType, shape: tuple[int, ...] = ()) -> str:
        if name:
            return name
        fresh = self.view.fresh("zero_point")
        self.constants[fresh] = np.zeros(shape, dtype.numpy)
        return fresh

    def triple(self, d: Dequantized) -> tuple[str, str, str]:
        return d.q, d.scale, self.zp(d.zero_point, d.params.dtype, d.params.scale.shape)

    def out_pair(self, out: Quantized) -> tuple[str, str]:
        return out.q.inputs[1], self.zp(slot(out.q, 2), out.params.dtype)


def fuse_conv(view: GraphView, q: Node, policy: Policy = ALL_INTEGER) -> Rewrite | None:
    unit = _unit(view, q, "Conv")
    if unit is None:
        return None
    op, out = unit
    x, w = activation(view, op.inputs[0]), _weights(view, op.inputs[1], axis=0)
    if x is None or w is None:
        return None
    if not policy.integer([x], out):
        return _sum_as_onnxruntime(op)
    bias = _bias(view, slot(op, 2), x, w)
    if bias is None:
        return None
    f = _Fused(view)
    inputs = (*f.triple(x), *f.triple(w), *f.out_pair(out), bias)
    return _replace(op, out, Node("QLinearConv", inputs, (out.out,), dict(op.attrs), op.name), f)


def fuse_matmul(view: GraphView, q: Node, policy: Policy = ALL_INTEGER) -> Rewrite | None:
    unit = _unit(view, q, "MatMul")
    if unit is None:
        return None
    op, out = unit
    a = activation(view, op.inputs[0])
    b = activation(view, op.inputs[1]) or _weights(view, op.inputs[1], axis=1)
    if a is None or b is None or view.type_of(op.inputs[1]).rank != 2:
        return None
    b_runtime = view.const(b.q) is None
    if not policy.integer([a] + ([b] if b_runtime else []), out):
        # constant weights: onnxruntime computes DQ -> MatMul as MatMulNBits (not mirrored)
        return _sum_as_onnxruntime(op) if b_runtime else None
    f = _Fused(view)
    inputs = (*f.triple(a), *f.triple(b), *f.out_pair(out))
    return _replace(op, out, Node("QLinearMatMul", inputs, (out.out,), {}, op.name), f)


def fuse_gemm(view: GraphView, q: Node, policy: Policy = ALL_INTEGER) -> Rewrite | None:
    unit = _unit(view, q, "Gemm")
    if unit is None:
        return None
    op, out = unit
    trans_b = int(op.attr("transB", 0))
    if float(op.attr("alpha", 1.0)) != 1.0 or int(op.attr("transA", 0)) \
            or (slot(op, 2) and float(op.attr("beta", 1.0)) != 1.0):
        return None
    a, b = activation(view, op.inputs[0]), _weights(view, op.inputs[1], axis=0 if trans_b else 1)
    if a is None or b is None or not policy.integer([a], out):
        return None  # onnxruntime's float Gemm adds C first: an order not mirrored
    bias = _bias(view, slot(op, 2), a, b)
    if bias is None:
        return None
    f = _Fused(view)
    inputs = (*f.triple(a), *f.triple(b), bias, *f.out_pair(out))
    attrs = {"alpha": 1.0, "transA": 0, "transB": trans_b}
    return _replace(op, out, Node("QGemm", inputs, (out.out,), attrs, op.name, CONTRIB), f)


def _sum_as_onnxruntime(op: Node) -> Rewrite | None:
    """A unit onnxruntime runs in float stays float here too, marked to sum in
    MLAS's order (ir/sum_order.py): the QuantizeLinear after it then rounds
    as onnxruntime's does."""
    if op.attr(SUM_ORDER) == "mlas":
        return None
    return Rewrite(old=(op,), new=(op.with_(attrs={**op.attrs, SUM_ORDER: "mlas"}),))


def fuse_add(view: GraphView, q: Node, policy: Policy = ALL_INTEGER) -> Rewrite | None:
    """Always fused: the "float" formula is onnxruntime's float Add exactly."""
    unit = _unit(view, q, "Add")
    if unit is None:
        return None
    op, out = unit
    ins = [activation(view, v) or _const_tensor(view, v) for v in op.inputs]
    if any(d is None for d in ins) or any(d.params.dtype != out.params.dtype for d in ins):
        return None
    fused = policy.ort_fuses(ins, out)
    attrs = {"formula": "mlas" if fused else "float",
             "flip": int(fused and out.params.dtype == DType.int8)}
    f = _Fused(view)
    inputs = (*f.triple(ins[0]), *f.triple(ins[1]), *f.out_pair(out))
    return _replace(op, out, Node("QLinearAdd", inputs, (out.out,), attrs, op.name, TINYC), f)


def fuse_global_average(view: GraphView, q: Node, policy: Policy = ALL_INTEGER) -> Rewrite | None:
    unit = _unit(view, q, "GlobalAveragePool", "AveragePool")
    if unit is None:
        return None
    op, out = unit
    x = activation(view, op.inputs[0])
    if x is None or (op.op == "AveragePool" and not _whole_image(view, op)):
        return None
    if not policy.integer([x], out):
        return None
    f = _Fused(view)
    inputs = (*f.triple(x), *f.out_pair(out))
    node = Node("QLinearGlobalAveragePool", inputs, (out.out,), {"channels_last": 0}, op.name,
                CONTRIB)
    return _replace(op, out, node, f)


def fuse_data_movement(view: GraphView, q: Node) -> Rewrite | None:
    """Ops that only move or select elements commute with quantization when both
    sides share their parameters: run them on the quantized tensor."""
    unit = _unit(view, q, *_VIEW_OPS, "Concat", "MaxPool")
    if unit is None:
        return None
    op, out = unit
    if op.op == "MaxPool" and len([o for o in op.outputs if o]) > 1:
        return None  # Indices
    data = op.inputs if op.op == "Concat" else op.inputs[:1]
    ins = [activation(view, v) for v in data]
    if any(d is None or not d.params.same_as(out.params) for d in ins):
        return None
    inputs = tuple(d.q for d in ins) + tuple(op.inputs[len(data):])
    return _replace(op, out, op.with_(inputs=inputs, outputs=(out.out,)))


def _weights(view: GraphView, value: str, axis: int) -> Dequantized | None:
    """Constant 8-bit weights, per tensor or per channel along `axis`."""
    found = weight(view, value)
    if found is None:
        return None
    w, _ = found
    if w.params.dtype not in (DType.uint8, DType.int8):
        return None
    if not w.params.per_tensor and w.params.axis != axis:
        return None
    return w


def _const_tensor(view: GraphView, value: str) -> Dequantized | None:
    found = weight(view, value)
    if found is None or not found[0].params.per_tensor:
        return None
    return found[0]


def _bias(view: GraphView, value: str, x: Dequantized, w: Dequantized) -> str | None:
    """The int32 bias the fused op adds as is ("" when there is none), or None
    when the bias is not an int32 tensor quantized with scale x_scale * w_scale."""
    if not value:
        return ""
    found = weight(view, value)
    if found is None:
        return None
    b, data = found
    if b.params.dtype != DType.int32 or np.any(b.params.zero_point) or data.ndim != 1:
        return None
    want = (F32(x.params.scalar_scale) * w.params.scale).astype(np.float64)
    got = b.params.scale.astype(np.float64)
    if not np.allclose(got, want, rtol=_BIAS_SCALE_RTOL, atol=0):
        return None
    return b.q


def _whole_image(view: GraphView, op: Node) -> bool:
    shape = view.type_of(op.inputs[0]).shape
    pads = list(op.attr("pads", [0] * 2 * (len(shape) - 2)))
    return list(op.attr("kernel_shape", [])) == list(shape[2:]) and not any(pads) \
        and op.attr("auto_pad", "NOTSET") in ("NOTSET", "VALID", "")


def canonicalize_qdq(g: Graph, mirror_ort: bool = True) -> Graph:
    policy = Policy(private_pairs(GraphView(g)), mirror_ort)
    rules = [functools.partial(rule, policy=policy) for rule in
             (fuse_conv, fuse_matmul, fuse_gemm, fuse_add, fuse_global_average)]
    # in phases: a fusion must still see the DequantizeLinear nodes fold_dequantize removes
    # (quant_cleanup.py holds the first and last phases' rules)
    g = rewrite_graph(g, [drop_activation_before_quantize])
    g = rewrite_graph(g, [*rules, fuse_data_movement, rename_int_max_pool])
    g = rewrite_graph(g, [fold_dequantize])
    return eliminate_dead_code(g)  # the DequantizeLinear nodes fused ops no longer read


quant_canonicalize_pass = FunctionPass("quant_canonicalize", canonicalize_qdq)
