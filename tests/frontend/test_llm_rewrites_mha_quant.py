"""frontend rewrites alone (llm_mha.py, blocked_quant.py): which standard ops
MultiHeadAttention and blocked (de)quantization become."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tinyc.frontend.llm_contrib import decompose_llm_ops

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=(), opset=21, ms=True):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid("com.microsoft", 1)] * ms
    return helper.make_model(g, opset_imports=opsets)


def _ops(proto):
    return [(n.domain, n.op_type) for n in proto.graph.node]


def test_mha_with_a_cache_becomes_causal_onnx_attention():
    x = [helper.make_tensor_value_info(n, F, ["b", "s", 32]) for n in ("q", "k_in", "v_in")]
    past = [helper.make_tensor_value_info(n, F, ["b", 4, "p", "head"]) for n in ("pk", "pv")]
    outs = [helper.make_tensor_value_info("y", F, ["b", "s", 32])] + [
        helper.make_tensor_value_info(n, F, ["b", 4, "t", "head"]) for n in ("k", "v")]
    node = helper.make_node("MultiHeadAttention", ["q", "k_in", "v_in", "", "", "", "pk", "pv"],
                            ["y", "k", "v"], domain="com.microsoft", num_heads=4,
                            unidirectional=1)
    after = decompose_llm_ops(_model([node], [*x, *past], outs))
    ops = [op for _, op in _ops(after)]
    assert "MultiHeadAttention" not in ops and ops.count("Attention") == 1
    assert ops.count("Concat") == 2  # present = concat(past, new)
    attention = next(n for n in after.graph.node if n.op_type == "Attention")
    assert any(a.name == "is_causal" and a.i == 1 for a in attention.attribute)
    assert attention.input[3] == "" and attention.input[6]  # no mask; T-long entries
    assert [o.version for o in after.opset_import if o.domain == ""] == [25]
    for vi in (*after.graph.input[3:5], *after.graph.output[1:]):
        assert vi.type.tensor_type.shape.dim[3].dim_value == 8
    onnx.checker.check_model(after)


def test_blocked_int4_weight_and_matmul_become_matmul_nbits():
    w = rng_codes((64, 24))
    inits = [numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(np.full((2, 24), 0.5, np.float32), "s")]
    nodes = [helper.make_node("DequantizeLinear", ["w", "s"], ["wf"], axis=0, block_size=32),
             helper.make_node("MatMul", ["a", "wf"], ["y"])]
    before = _model(nodes, [helper.make_tensor_value_info("a", F, ["m", 64])],
                    [helper.make_tensor_value_info("y", F, ["m", 24])], inits, ms=False)
    after = decompose_llm_ops(before)
    assert _ops(after) == [("com.microsoft", "MatMulNBits")]
    node = after.graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert attrs == {"K": 64, "N": 24, "bits": 4, "block_size": 32}
    inits = {t.name: numpy_helper.to_array(t) for t in after.graph.initializer}
    b, scales, zp = (inits[name] for name in node.input[1:])
    assert b.dtype == np.uint8 and b.shape == (24, 2, 16)
    assert scales.shape == (48,) and np.all(scales == 0.5)
    assert np.all(zp == 0x88)  # signed int4: codes + 8, zero point 8 (two per byte)
    # column 0, k = 0 and 1: the low nibble is k = 0
    assert b[0, 0, 0] == (int(w[0, 0]) + 8) | ((int(w[1, 0]) + 8) << 4)
    assert "w" not in inits  # the int4 original is gone: one copy of the weight
    assert any(o.domain == "com.microsoft" for o in after.opset_import)


def test_run_time_blocked_dequantize_gathers_scale_per_block():
    ins = [helper.make_tensor_value_info("x", TensorProto.UINT8, [2, 6]),
           helper.make_tensor_value_info("s", F, [2, 3]),
           helper.make_tensor_value_info("z", TensorProto.UINT8, [2, 3])]
    node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=1, block_size=2)
    after = decompose_llm_ops(_model([node], ins, [helper.make_tensor_value_info("y", F, [2, 6])],
                                     ms=False))
    ops = [op for _, op in _ops(after)]
    assert "DequantizeLinear" not in ops
    assert ops.count("Gather") == 2 and ops[-1] == "Mul" and "Sub" in ops
    onnx.checker.check_model(after)


def rng_codes(shape):
    return np.random.default_rng(0).integers(-8, 8, size=shape).astype(ml_dtypes.int4)


def test_act_order_g_idx_in_whole_blocks_becomes_a_column_gather():
    """Before: MatMulNBits with a permuted g_idx. Expected: Gather(A, order along
    K) then MatMulNBits without g_idx, on codes sorted by block."""
    k, n, block = 64, 4, 32
    g_idx = np.array([1, 0] * (k // 2), np.int32)
    codes = np.random.default_rng(3).integers(0, 16, (n, k), dtype=np.uint8)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).reshape(n, k // block, block // 2)
    inits = [numpy_helper.from_array(packed, "q"),
             numpy_helper.from_array(np.ones(n * 2, np.float32), "s"),
             numpy_helper.from_array(g_idx, "g")]
    node = helper.make_node("MatMulNBits", ["a", "q", "s", "", "g"], ["y"],
                            domain="com.microsoft", K=k, N=n, bits=4, block_size=block)
    after = decompose_llm_ops(_model([node], [helper.make_tensor_value_info("a", F, ["m", k])],
                                     [helper.make_tensor_value_info("y", F, ["m", n])], inits))
    assert _ops(after) == [("", "Gather"), ("com.microsoft", "MatMulNBits")]
    gather, matmul = after.graph.node
    values = {t.name: numpy_helper.to_array(t) for t in after.graph.initializer}
    order = values[gather.input[1]]
    np.testing.assert_array_equal(order, np.argsort(g_idx, kind="stable"))
    assert matmul.input[0] == gather.output[0] and matmul.input[4] == ""
    sorted_q = values[matmul.input[1]].reshape(n, -1)
    np.testing.assert_array_equal(sorted_q & 15, codes[:, order][:, 0::2])
    np.testing.assert_array_equal(sorted_q >> 4, codes[:, order][:, 1::2])


def test_swiglu_becomes_swish_times_the_value():
    """Before: SwiGLU(a, b) (opset 28). Expected: Mul(Swish(a, alpha), b)."""
    vi = [helper.make_tensor_value_info(n, F, [2, 8]) for n in ("a", "b", "y")]
    node = helper.make_node("SwiGLU", ["a", "b"], ["y"], alpha=1.5)
    after = decompose_llm_ops(_model([node], vi[:2], vi[2:], opset=28, ms=False))
    assert _ops(after) == [("", "Swish"), ("", "Mul")]
    swish, mul = after.graph.node
    assert list(swish.input) == ["a"] and helper.get_attribute_value(swish.attribute[0]) == 1.5
    assert list(mul.input) == [swish.output[0], "b"] and list(mul.output) == ["y"]
