"""ONNX DequantizeLinear / QuantizeLinear with block_size (opset 21) and int4 / uint4 weights,
against onnxruntime: with a MatMul (-> MatMulNBits, the weight kept 4-bit), on
other constants (dequantized at compile time) and at run time."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from tests_support import need_modules

import tinyc

rng = np.random.default_rng(2)
F = TensorProto.FLOAT


@pytest.fixture(autouse=True)
def _ort():
    need_modules("onnxruntime")


def _codes(dtype, shape) -> np.ndarray:
    info = {ml_dtypes.int4: (-8, 8), ml_dtypes.uint4: (0, 16), np.int8: (-128, 128),
            np.uint8: (0, 256)}[dtype]
    return rng.integers(*info, size=shape).astype(dtype)


def _dq_matmul_model(dtype, k: int, n: int, block: int, zero_point: bool, rows: int = 3):
    """Y = A @ DequantizeLinear(W) with W [K, N] blocked along K."""
    blocks = -(-k // block)
    inits = [numpy_helper.from_array(_codes(dtype, (k, n)), "w"),
             numpy_helper.from_array((rng.random((blocks, n)) * 0.1 + 0.01).astype(np.float32),
                                     "scale")]
    if zero_point:
        inits.append(numpy_helper.from_array(_codes(dtype, (blocks, n)), "zp"))
    nodes = [helper.make_node("DequantizeLinear", ["w", "scale"] + ["zp"] * zero_point, ["wf"],
                              axis=0, block_size=block),
             helper.make_node("MatMul", ["a", "wf"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", F, [rows, k])],
                              [helper.make_tensor_value_info("y", F, None)], inits)
    return _model(graph), {"a": rng.standard_normal((rows, k)).astype(np.float32)}


def _model(graph):
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    proto.ir_version = 10
    return proto


def _both(proto, feeds):
    import onnxruntime as ort

    data = proto.SerializeToString()
    so = ort.SessionOptions()
    # onnxruntime's own DQ + MatMul -> MatMulNBits fusion defaults to accuracy_level 4
    # (A quantized to int8); unfused it computes the float product tinyc does
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = tinyc.InferenceSession(data, target="x86").run(None, feeds)
    return want, got


@pytest.mark.parametrize("dtype,zp,k", [(ml_dtypes.int4, False, 128), (ml_dtypes.int4, True, 128),
                                        (ml_dtypes.uint4, True, 96), (np.uint8, True, 128),
                                        (np.int8, False, 96)],
                         ids=["int4", "int4_zp", "uint4_zp_odd_blocks", "uint8_zp", "int8"])
def test_dequantize_matmul_becomes_matmul_nbits(dtype, zp, k):
    n, block = 40, 32
    proto, feeds = _dq_matmul_model(dtype, k, n, block, zp)
    art = tinyc.compile(proto.SerializeToString(), target="x86")
    bits = 4 if dtype in (ml_dtypes.int4, ml_dtypes.uint4) else 8
    [(kernel,)] = [r["kernels"] for r in art.report]
    assert kernel.startswith(f"matmul_nbits_q{bits}_b{block}_"), kernel
    assert len(art.weights) < k * n * bits // 8 + 4096  # the codes, not k * n floats
    want, got = _both(proto, feeds)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k,block", [(100, 32), (64, 8)], ids=["partial_block", "block8"])
def test_weights_matmul_nbits_cannot_take_are_dequantized_at_compile_time(k, block):
    proto, feeds = _dq_matmul_model(ml_dtypes.int4, k, 24, block, True)
    want, got = _both(proto, feeds)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_run_time_blocked_dequantize(dtype):
    x = _codes(dtype, (2, 7, 3))
    scale = (rng.random((2, 3, 3)) + 0.1).astype(np.float32)
    zp = _codes(dtype, (2, 3, 3))
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=-2, block_size=3)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, x.shape),
                                            helper.make_tensor_value_info("s", F, scale.shape),
                                            helper.make_tensor_value_info("z", elem, zp.shape)],
                              [helper.make_tensor_value_info("y", F, None)])
    want, got = _both(_model(graph), {"x": x, "s": scale, "z": zp})
    np.testing.assert_array_equal(got[0], want[0])


def test_int4_constant_dequantized_for_another_consumer():
    w = _codes(ml_dtypes.uint4, (6, 64))
    scale = (rng.random((6, 4)) + 0.1).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(scale, "s")]
    nodes = [helper.make_node("DequantizeLinear", ["w", "s"], ["wf"], axis=1, block_size=16),
             helper.make_node("Add", ["x", "wf"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [6, 64])],
                              [helper.make_tensor_value_info("y", F, None)], inits)
    feeds = {"x": rng.standard_normal((6, 64)).astype(np.float32)}
    want, got = _both(_model(graph), feeds)
    np.testing.assert_array_equal(got[0], want[0])


def test_a_weight_shared_by_two_matmuls_is_packed_once():
    k, n = 64, 32
    proto, feeds = _dq_matmul_model(ml_dtypes.int4, k, n, 32, True)
    g = proto.graph
    g.node.append(helper.make_node("MatMul", ["a", "wf"], ["y2"]))
    g.output.append(helper.make_tensor_value_info("y2", F, None))
    art = tinyc.compile(proto.SerializeToString(), target="x86")
    assert len(art.weights) < k * n // 2 * 1.5 + 4096
    want, got = _both(proto, feeds)
    for w, g_ in zip(want, got, strict=True):
        np.testing.assert_allclose(g_, w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype,zp", [(np.uint8, True), (np.int8, False), (np.int8, True)])
def test_run_time_blocked_quantize(dtype, zp):
    scale = (rng.random((3, 2, 4)) + 0.5).astype(np.float32)
    x = rng.standard_normal((3, 7, 4)).astype(np.float32) * 200
    x[0, :4, 0] = np.array([0.5, 1.5, 2.5, -0.5]) * scale[0, 0, 0]  # ties: to even
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    ins = [helper.make_tensor_value_info("x", F, x.shape),
           helper.make_tensor_value_info("s", F, scale.shape)]
    feeds = {"x": x, "s": scale}
    attrs = {"axis": 1, "block_size": 4}
    if zp:
        feeds["z"] = _codes(dtype, scale.shape)
        ins.append(helper.make_tensor_value_info("z", elem, scale.shape))
    else:
        attrs["output_dtype"] = elem
    node = helper.make_node("QuantizeLinear", list(feeds), ["y"], **attrs)
    graph = helper.make_graph([node], "g", ins, [helper.make_tensor_value_info("y", elem, None)])
    want, got = _both(_model(graph), feeds)
    np.testing.assert_array_equal(got[0], want[0])


def test_onnxruntime_quantizer_qdq_int4_model_runs_on_matmul_nbits():
    """onnxruntime's MatMulNBitsQuantizer in QDQ format (DequantizeLinear of int4
    blocks + MatMul, what it writes for other runtimes) compiles to tinyc's
    weight-only kernel."""
    from onnxruntime.quantization import matmul_nbits_quantizer as mq
    from onnxruntime.quantization.quant_utils import QuantFormat

    w1 = numpy_helper.from_array(rng.standard_normal((64, 96)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((96, 32)).astype(np.float32), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", F, ["b", 64])],
                              [helper.make_tensor_value_info("y", F, ["b", 32])], [w1, w2])
    config = mq.DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True,
                                             quant_format=QuantFormat.QDQ)
    quantizer = mq.MatMulNBitsQuantizer(_model(graph), algo_config=config)
    quantizer.process()
    proto = quantizer.model.model
    assert [n.op_type for n in proto.graph.node].count("DequantizeLinear") == 2
    art = tinyc.compile(proto.SerializeToString(), target="x86")
    kinds = [[k.split("_w")[0] for k in r["kernels"]] for r in art.report]
    assert kinds == [["matmul_nbits_q4_b32"], ["unary_relu_f32"], ["matmul_nbits_q4_b32"]]
    feeds = {"x": rng.standard_normal((5, 64)).astype(np.float32)}
    want, got = _both(proto, feeds)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-4 * np.abs(want[0]).max())
