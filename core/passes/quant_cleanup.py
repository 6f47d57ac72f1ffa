"""The rules of quant_canonicalize.py that fuse nothing: they clear the way
(an activation a QuantizeLinear makes redundant), give an 8-bit MaxPool its
integer op, and fold the DequantizeLinear of constants the fusions left.
"""

from __future__ import annotations

import numpy as np

from ..ir import DType, Node, TensorType
from ..ir.quant import F32, QParams, int_range, slot
from .quant_qdq import dequantized, quantized_output
from .rewrite import GraphView, Rewrite, is_onnx

TINYC = "tinyc"


def drop_activation_before_quantize(view: GraphView, act: Node) -> Rewrite | None:
    """Relu / Clip -> QuantizeLinear whose saturation already clips: Q(act(x)) =
    Q(x) when the bounds quantize to the range's ends (Q is monotone), so the
    activation goes and the unit before it can fuse (onnxruntime removes it too).
    """
    if not is_onnx(act, "Relu", "Clip") or not view.has_single_use(act.outputs[0]):
        return None
    out = quantized_output(view, act.outputs[0])
    bounds = _activation_bounds(view, act)
    if out is None or bounds is None:
        return None
    lo, hi = int_range(out.params.dtype)
    if _quantize(bounds[0], out.params) > lo or _quantize(bounds[1], out.params) < hi:
        return None
    return Rewrite(old=(act,), renames={act.outputs[0]: act.inputs[0]})


def _activation_bounds(view: GraphView, act: Node) -> tuple[float, float] | None:
    if act.op == "Relu":
        return 0.0, np.inf
    values = []
    for k, default in ((1, -np.inf), (2, np.inf)):
        name = slot(act, k)
        c = view.const(name) if name else None
        if name and (c is None or c.size != 1):
            return None
        values.append(float(c.reshape(())) if c is not None else
                      float(act.attr("min" if k == 1 else "max", default)))
    return values[0], values[1]


def _quantize(v: float, q: QParams) -> float:
    """onnxruntime's QuantizeLinear of one value, before saturation."""
    if np.isinf(v):
        return v
    return float(np.rint(F32(v) / q.scalar_scale)) + q.scalar_zp


def rename_int_max_pool(view: GraphView, op: Node) -> Rewrite | None:
    """MaxPool of 8-bit data (QOperator models have it) -> tinyc.MaxPool8, which
    has an integer lowering; MaxPool's own is float32."""
    if not is_onnx(op, "MaxPool") or view.type_of(op.inputs[0]).dtype not in (
            DType.uint8, DType.int8):
        return None
    return Rewrite(old=(op,), new=(op.with_(op="MaxPool8", domain=TINYC),))


def fold_dequantize(view: GraphView, dq: Node) -> Rewrite | None:
    """A DequantizeLinear of a constant becomes a float constant, computed as
    onnxruntime does (float(x - zp) * scale in float32: onnx's reference
    evaluator, which fold_constants uses, has no DequantizeLinear before opset 19).
    Runs after the fusions, for the weights of units left in float."""
    if not is_onnx(dq, "DequantizeLinear") or view.const(dq.inputs[0]) is None:
        return None
    d = dequantized(view, dq.outputs[0])
    if d is None or dq.outputs[0] in view.outputs:
        return None
    value = dequantize_array(view.const(d.q), d.params)
    return Rewrite(old=(dq,), constants={dq.outputs[0]: value},
                   types={dq.outputs[0]: TensorType.of(value)})


def dequantize_array(x: np.ndarray, q: QParams) -> np.ndarray:
    """float(x - zp) * scale in float32, per tensor or along q.axis."""
    shape = [1] * x.ndim
    if not q.per_tensor:
        shape[q.axis or 0] = q.scale.size
    zp = q.zero_point.reshape(shape if not q.per_tensor else ())
    scale = q.scale.reshape(shape if not q.per_tensor else ()).astype(F32)
    return ((x.astype(np.int64) - zp).astype(np.int32).astype(F32) * scale).astype(F32)
