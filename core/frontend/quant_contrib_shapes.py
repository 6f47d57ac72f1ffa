"""Types for the outputs of onnxruntime's quantized contrib ops (com.microsoft
QLinearAdd, QLinearGlobalAveragePool, QGemm, ...), which ONNX shape inference
does not know: without them everything downstream of the first one is untyped.

Inference runs in rounds on a copy of the graph whose large initializers are
replaced by typed inputs (inference serializes the model; weights would make
each round slow): infer, type the contrib outputs whose inputs are now known,
repeat. The result is the original model with those types added as value_info.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, shape_inference

CONTRIB = "com.microsoft"
MAX_ROUNDS = 256
KEEP_INITIALIZER_BYTES = 1024  # shape operands and the like stay (data propagation)

Shape = list[int | str]
TypeOf = Callable[[str], "tuple[int, Shape] | None"]


def with_contrib_types(proto: onnx.ModelProto) -> onnx.ModelProto:
    if not any(n.domain == CONTRIB and n.op_type in _RULES for n in proto.graph.node):
        return proto
    skeleton = without_weights(proto)
    added: dict[str, onnx.ValueInfoProto] = {}
    for _ in range(MAX_ROUNDS):
        inferred = shape_inference.infer_shapes(skeleton, data_prop=True)
        new = _type_contrib_outputs(inferred.graph, added)
        if not new:
            break
        added.update(new)
        skeleton.graph.value_info.extend(new.values())
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    out.graph.value_info.extend(added.values())
    return out


def without_weights(proto: onnx.ModelProto) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    g = m.graph
    keep, typed = [], []
    for t in g.initializer:
        if t.data_location != TensorProto.EXTERNAL and len(t.raw_data) + 8 * len(t.int64_data) \
                <= KEEP_INITIALIZER_BYTES:
            keep.append(t)
        else:
            typed.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    del g.initializer[:]
    g.initializer.extend(keep)
    names = {i.name for i in g.input}
    g.input.extend(v for v in typed if v.name not in names)
    return m


def _type_contrib_outputs(g: onnx.GraphProto, done: dict) -> dict[str, onnx.ValueInfoProto]:
    types = _known_types(g)
    new = {}
    for node in g.node:
        rule = _RULES.get(node.op_type) if node.domain == CONTRIB else None
        out = node.output[0] if node.output else ""
        if rule is None or not out or out in types or out in done:
            continue
        result = rule(node, types.get)
        if result is not None:
            elem, shape = result
            new[out] = helper.make_tensor_value_info(out, elem, shape)
    return new


def _known_types(g: onnx.GraphProto) -> dict[str, tuple[int, Shape]]:
    types: dict[str, tuple[int, Shape]] = {}
    for t in g.initializer:
        types[t.name] = (t.data_type, list(t.dims))
    for vi in (*g.input, *g.value_info, *g.output):
        tt = vi.type.tensor_type
        if tt.elem_type and tt.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                    for d in tt.shape.dim]
            types[vi.name] = (tt.elem_type, dims)
    return types


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _same_as_input(node: onnx.NodeProto, type_of: TypeOf):
    return type_of(node.input[0])


def _broadcast(node: onnx.NodeProto, type_of: TypeOf):
    a, b = type_of(node.input[0]), type_of(node.input[3])
    if a is None or b is None or not _static(a[1]) or not _static(b[1]):
        return None
    return a[0], list(np.broadcast_shapes(tuple(a[1]), tuple(b[1])))


def _global_pool(node: onnx.NodeProto, type_of: TypeOf):
    x = type_of(node.input[0])
    if x is None:
        return None
    shape = list(x[1])
    if _attr(node, "channels_last", 0):
        return x[0], [shape[0]] + [1] * (len(shape) - 2) + [shape[-1]]
    return x[0], shape[:2] + [1] * (len(shape) - 2)


def _average_pool(node: onnx.NodeProto, type_of: TypeOf):
    x = type_of(node.input[0])
    if x is None or not _static(x[1]) or _attr(node, "channels_last", 0):
        return None
    shape = list(x[1])
    spatial = shape[2:]
    kernel = list(_attr(node, "kernel_shape", []))
    strides = list(_attr(node, "strides", [1] * len(spatial)))
    pads = list(_attr(node, "pads", [0] * 2 * len(spatial)))
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    ceil = _attr(node, "ceil_mode", 0)
    out = []
    for i, size in enumerate(spatial):
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-size // strides[i]))
            continue
        room = size + (0 if auto_pad == "VALID" else pads[i] + pads[i + len(spatial)]) \
            - kernel[i]
        out.append((math.ceil(room / strides[i]) if ceil else room // strides[i]) + 1)
    return x[0], shape[:2] + out


def _qgemm(node: onnx.NodeProto, type_of: TypeOf):
    a, b = type_of(node.input[0]), type_of(node.input[3])
    if a is None or b is None:
        return None
    m = a[1][1] if _attr(node, "transA", 0) else a[1][0]
    n = b[1][0] if _attr(node, "transB", 0) else b[1][1]
    y_zp = type_of(node.input[8]) if len(node.input) > 8 and node.input[8] else None
    return (y_zp[0] if y_zp else TensorProto.FLOAT), [m, n]


def _concat(node: onnx.NodeProto, type_of: TypeOf):
    parts = [type_of(node.input[k]) for k in range(2, len(node.input), 3)]
    if any(p is None or not _static(p[1]) for p in parts):
        return None
    axis = int(_attr(node, "axis", 0))
    shape = list(parts[0][1])
    axis = axis + len(shape) if axis < 0 else axis
    shape[axis] = sum(int(p[1][axis]) for p in parts)
    return parts[0][0], shape


def _matmul_to_float(node: onnx.NodeProto, type_of: TypeOf):
    a, b = type_of(node.input[0]), type_of(node.input[1])
    if a is None or b is None or not _static(a[1]) or not _static(b[1]):
        return None
    return TensorProto.FLOAT, list(a[1][:-1]) + [b[1][-1]]


def _matmul_nbits(node: onnx.NodeProto, type_of: TypeOf):
    """Y = A @ W^T, W [N, K]: A's type and dims with N last (symbolic dims kept)."""
    a = type_of(node.input[0])
    if a is None or "?" in a[1]:
        return None
    return a[0], list(a[1][:-1]) + [int(_attr(node, "N", 0))]


def _static(shape: Sequence) -> bool:
    return all(isinstance(d, int) and d > 0 for d in shape)


_RULES = {
    "QLinearAdd": _broadcast, "QLinearMul": _broadcast,
    "QLinearGlobalAveragePool": _global_pool, "QLinearAveragePool": _average_pool,
    "QGemm": _qgemm, "QLinearConcat": _concat,
    "QLinearSigmoid": _same_as_input, "QLinearLeakyRelu": _same_as_input,
    "QLinearSoftmax": _same_as_input, "DynamicQuantizeMatMul": _matmul_to_float,
    "MatMulNBits": _matmul_nbits,  # kept for the weight-only kernel (frontend/llm_contrib.py)
}
