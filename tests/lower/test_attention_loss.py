"""Attention, LinearAttention, CausalConvWithState and the losses against
onnx.reference: a few configurations each (the ONNX node suite covers every
attribute; see tests/onnx_backend)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from tinyc.ir import Graph, Node, TensorType
from tinyc.testing.lowered_harness import run_graph_nodes


def _run_both(op: str, inputs: dict[str, np.ndarray], outputs: list[str], attrs: dict,
              opset: int) -> tuple[dict, list]:
    """tinyc's and onnx.reference's outputs of one node."""
    node = helper.make_node(op, list(inputs), outputs, **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    want = ReferenceEvaluator(model).run(None, inputs)
    types = {n: TensorType.of(a) for n, a in inputs.items()}
    types.update({o: TensorType.of(np.asarray(w)) for o, w in zip(outputs, want, strict=True)})
    g = Graph("g", tuple(inputs), tuple(outputs),
              (Node(op, tuple(inputs), tuple(outputs), attrs, name="n"),), types, {},
              {"": opset})
    return run_graph_nodes(g, inputs), want


def test_attention_gqa_causal_with_mask_and_cache(rng):
    f = np.float32
    inputs = {"Q": rng.standard_normal((2, 4, 3, 8)).astype(f),
              "K": rng.standard_normal((2, 2, 3, 8)).astype(f),
              "V": rng.standard_normal((2, 2, 3, 6)).astype(f),
              "attn_mask": rng.standard_normal((3, 7)).astype(f),
              "past_key": rng.standard_normal((2, 2, 4, 8)).astype(f),
              "past_value": rng.standard_normal((2, 2, 4, 6)).astype(f)}
    outs = ["Y", "present_key", "present_value", "qk"]
    got, want = _run_both("Attention", inputs, outs,
                          {"is_causal": 1, "softcap": 3.0, "qk_matmul_output_mode": 3}, 23)
    for name, w in zip(outs, want, strict=True):
        np.testing.assert_allclose(got[name], w, rtol=1e-5, atol=1e-6, err_msg=name)


def test_attention_3d_inputs_and_boolean_mask(rng):
    f = np.float32
    inputs = {"Q": rng.standard_normal((2, 5, 12)).astype(f),
              "K": rng.standard_normal((2, 4, 12)).astype(f),
              "V": rng.standard_normal((2, 4, 9)).astype(f),
              "attn_mask": rng.random((2, 1, 5, 4)) < 0.7}
    got, want = _run_both("Attention", inputs, ["Y"],
                          {"q_num_heads": 3, "kv_num_heads": 3, "scale": 0.3}, 23)
    np.testing.assert_allclose(got["Y"], want[0], rtol=1e-5, atol=1e-6)


def test_losses(rng):
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    target = rng.integers(0, 5, (3, 4)).astype(np.int64)
    weight = rng.random(5).astype(np.float32)
    for reduction in ("none", "sum", "mean"):
        inputs = {"x": x, "t": target, "w": weight}
        got, want = _run_both("SoftmaxCrossEntropyLoss", inputs, ["loss", "log_prob"],
                              {"reduction": reduction, "ignore_index": 2}, 13)
        np.testing.assert_allclose(got["loss"], want[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got["log_prob"], want[1], rtol=1e-5, atol=1e-6)
        got, want = _run_both("NegativeLogLikelihoodLoss", {"x": x, "t": target}, ["loss"],
                              {"reduction": reduction}, 13)
        np.testing.assert_allclose(got["loss"], want[0], rtol=1e-5, atol=1e-6)


def test_linear_attention_gated_delta_grouped(rng):
    f = np.float32
    inputs = {"q": rng.standard_normal((2, 3, 16)).astype(f),
              "k": rng.standard_normal((2, 3, 8)).astype(f) * 0.3,
              "v": rng.standard_normal((2, 3, 8)).astype(f),
              "past": rng.standard_normal((2, 2, 4, 4)).astype(f),
              "decay": -rng.random((2, 3, 8)).astype(f),
              "beta": rng.random((2, 3, 2)).astype(f)}
    got, want = _run_both("LinearAttention", inputs, ["y", "state"],
                          {"q_num_heads": 4, "kv_num_heads": 2}, 27)
    for name, w in zip(["y", "state"], want, strict=True):
        np.testing.assert_allclose(got[name], w, rtol=1e-5, atol=1e-5, err_msg=name)


def test_causal_conv_with_state_and_silu(rng):
    f = np.float32
    inputs = {"x": rng.standard_normal((2, 3, 7)).astype(f),
              "w": rng.standard_normal((3, 1, 4)).astype(f),
              "b": rng.standard_normal(3).astype(f),
              "past": rng.standard_normal((2, 3, 3)).astype(f)}
    got, want = _run_both("CausalConvWithState", inputs, ["y", "state"],
                          {"activation": "silu"}, 27)
    for name, w in zip(["y", "state"], want, strict=True):
        np.testing.assert_allclose(got[name], w, rtol=1e-5, atol=1e-6, err_msg=name)
