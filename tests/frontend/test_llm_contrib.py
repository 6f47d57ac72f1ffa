"""frontend/llm_contrib.py alone: which standard ops each LLM op becomes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tinyc.frontend.llm_contrib import decompose_llm_ops


def _model(node, inputs, outputs, inits=(), opset=22):
    g = helper.make_graph([node], "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset),
                                               helper.make_opsetid("com.microsoft", 1)])


def _ops(proto):
    return [(n.domain, n.op_type) for n in proto.graph.node]


def test_rms_norm_becomes_mean_of_squares_sqrt_div_mul():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 8])
    node = helper.make_node("SimplifiedLayerNormalization", ["x", "w"], ["y"], epsilon=1e-6)
    before = _model(node, [x], [y], [numpy_helper.from_array(np.ones(8, np.float32), "w")])
    after = decompose_llm_ops(before)
    assert _ops(after) == [("", "Mul"), ("", "ReduceMean"), ("", "Add"), ("", "Sqrt"),
                           ("", "Div"), ("", "Mul")]
    assert after.graph.node[-1].output == ["y"] and after.graph.node[0].input == ["x", "x"]
    onnx.checker.check_model(after)
    assert decompose_llm_ops(after) is after  # nothing left to rewrite


def test_gqa_becomes_onnx_attention_with_its_cache_and_pinned_head_size():
    qkv = helper.make_tensor_value_info("qkv", TensorProto.FLOAT, ["b", "s", 64])
    past = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", 1, "p", "kv_dim"])
            for n in ("pk", "pv")]
    lens = helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, ["b"])
    total = helper.make_tensor_value_info("total", TensorProto.INT32, [])
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", 32])] + [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", 1, "t", "kv_dim"])
        for n in ("k", "v")]
    node = helper.make_node("GroupQueryAttention", ["qkv", "", "", "pk", "pv", "seqlens_k",
                                                    "total"], ["y", "k", "v"],
                            domain="com.microsoft", num_heads=2, kv_num_heads=1)
    after = decompose_llm_ops(_model(node, [qkv, *past, lens, total], outs))
    ops = [op for _, op in _ops(after)]
    assert "GroupQueryAttention" not in ops and ops.count("Attention") == 1
    assert ops.count("Concat") == 2  # present = concat(past, new)
    assert [o.version for o in after.opset_import if o.domain == ""] == [25]
    for vi in (*after.graph.input[1:3], *after.graph.output[1:]):
        assert vi.type.tensor_type.shape.dim[3].dim_value == 16
    onnx.checker.check_model(after)


def _caches(half: int) -> list:
    return [numpy_helper.from_array(np.ones((32, half), np.float32), n) for n in ("cos", "sin")]


def test_gqa_rotary_is_one_onnx_rotary_embedding_per_q_and_k():
    qkv = helper.make_tensor_value_info("qkv", TensorProto.FLOAT, ["b", "s", 64])
    lens = helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, ["b"])
    total = helper.make_tensor_value_info("total", TensorProto.INT32, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", 32])
    node = helper.make_node("GroupQueryAttention", ["qkv", "", "", "", "", "seqlens_k", "total",
                                                    "cos", "sin"], ["y"],
                            domain="com.microsoft", num_heads=2, kv_num_heads=1, do_rotary=1,
                            rotary_interleaved=1)
    after = decompose_llm_ops(_model(node, [qkv, lens, total], [y], _caches(4)))
    rotary = [n for n in after.graph.node if n.op_type == "RotaryEmbedding"]
    assert [(n.domain, list(n.input[1:3])) for n in rotary] == [("", ["cos", "sin"])] * 2
    attrs = [{a.name: helper.get_attribute_value(a) for a in n.attribute} for n in rotary]
    assert attrs == [{"num_heads": 2, "interleaved": 1, "rotary_embedding_dim": 8},
                     {"num_heads": 1, "interleaved": 1, "rotary_embedding_dim": 8}]
    ops = [op for _, op in _ops(after)]
    assert not {"Slice", "Mul", "Gather"} & set(ops)  # no rotary arithmetic left as ops
    onnx.checker.check_model(after)


def test_contrib_rotary_becomes_onnx_rotary_and_onnx_rotary_is_kept():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", 64])
    pos = helper.make_tensor_value_info("pos", TensorProto.INT64, ["b", "s"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", 64])
    contrib = helper.make_node("RotaryEmbedding", ["x", "pos", "cos", "sin"], ["y"],
                               domain="com.microsoft", interleaved=1)
    after = decompose_llm_ops(_model(contrib, [x, pos], [y], _caches(8)))
    (node,) = after.graph.node
    assert (node.domain, node.op_type, list(node.input)) == ("", "RotaryEmbedding",
                                                             ["x", "cos", "sin", "pos"])
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert attrs == {"interleaved": 1, "rotary_embedding_dim": 16, "num_heads": 4}
    onnx.checker.check_model(after)
    assert decompose_llm_ops(after) is after  # ONNX's op: lowered as it is
