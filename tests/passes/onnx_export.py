"""Test-only: turn a Graph back into an ONNX model so a reference runtime can
check that the passes preserved its meaning. tinyc.Conv / tinyc.Gemm are
spelled out again as plain ONNX ops (op, then Add of R, then Relu or Clip).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from tinyc.ir import Graph, Node, TensorType
from tinyc.passes.fold_constants import to_onnx_attrs

_EPILOGUE_ATTRS = ("activation", "clip_min", "clip_max")


def to_onnx(g: Graph) -> onnx.ModelProto:
    opset = g.opsets.get("", 13)
    nodes: list[onnx.NodeProto] = []
    for n in g.nodes:
        nodes.extend(_expand(n, opset) if n.domain == "tinyc" else [_plain(n)])
    used = {i for n in nodes for i in n.input} | set(g.outputs)
    graph = helper.make_graph(
        nodes, g.name,
        [_value_info(i, g.types[i]) for i in g.inputs],
        [_value_info(o, g.types[o]) for o in g.outputs],
        initializer=[numpy_helper.from_array(a, k) for k, a in g.constants.items() if k in used])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)  # accepted by older onnxruntime too
    return model


def _plain(n: Node) -> onnx.NodeProto:
    node = helper.make_node(n.op, list(n.inputs), list(n.outputs), name=n.name, domain=n.domain)
    node.attribute.extend(to_onnx_attrs(n.op, n.attrs))
    return node


def _expand(n: Node, opset: int) -> list[onnx.NodeProto]:
    x, w, bias, residual = n.inputs
    attrs = {k: v for k, v in n.attrs.items() if k not in _EPILOGUE_ATTRS}
    out = n.outputs[0]
    steps = [_plain(Node(n.op, (x, w, bias) if bias else (x, w), (out + "/core",), attrs))]
    value = out + "/core"
    if residual:
        steps.append(helper.make_node("Add", [value, residual], [out + "/res"]))
        value = out + "/res"
    activation = n.attrs["activation"]
    if activation == "Relu":
        steps.append(helper.make_node("Relu", [value], [out + "/act"]))
        value = out + "/act"
    elif activation == "Clip":
        steps.extend(_clip(value, out + "/act", n.attrs, opset))
        value = out + "/act"
    steps.append(helper.make_node("Identity", [value], [out]))
    return steps


def _clip(src: str, dst: str, attrs: dict, opset: int) -> list[onnx.NodeProto]:
    lo, hi = float(attrs["clip_min"]), float(attrs["clip_max"])
    if opset < 11:
        return [helper.make_node("Clip", [src], [dst], min=lo, max=hi)]
    bounds = [helper.make_node("Constant", [], [dst + "/lo"], value=numpy_helper.from_array(
        np.array(lo, np.float32))), helper.make_node("Constant", [], [dst + "/hi"],
        value=numpy_helper.from_array(np.array(hi, np.float32)))]
    return [*bounds, helper.make_node("Clip", [src, dst + "/lo", dst + "/hi"], [dst])]


def _value_info(name: str, t: TensorType) -> onnx.ValueInfoProto:
    elem = helper.np_dtype_to_tensor_dtype(t.dtype.numpy)
    return helper.make_tensor_value_info(name, elem, list(t.shape))


def run_model(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Evaluate with onnxruntime: onnx's reference evaluator gets some opset < 13
    ops wrong (Softmax without axis, BatchNormalization with momentum)."""
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3  # unused initializers are expected here
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def run_graph(g: Graph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return run_model(to_onnx(g), feeds)


def random_feeds(g: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {i: rng.standard_normal(g.types[i].shape).astype(g.types[i].dtype.numpy)
            for i in g.inputs}


def assert_same_results(before: Graph, after: Graph, rtol: float = 1e-5) -> None:
    feeds = random_feeds(before)
    for want, got in zip(run_graph(before, feeds), run_graph(after, feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))
