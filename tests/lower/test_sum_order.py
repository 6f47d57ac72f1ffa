"""sum_order="mlas": a Conv / MatMul marked so sums each output in the order of
onnxruntime's float kernels (MLAS SGEMM), bit for bit.

onnxruntime runs these ops on MLAS's plain NCHW path when the weights are not
constant (here: a DequantizeLinear output, as in a QDQ model), so that is how
the oracle models are built. Operands are multiples of a quantization scale,
as dequantized int8 tensors are. The control test shows the order matters:
unmarked, tinyc's own K blocks differ from onnxruntime in the last bit.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinyc.ir import DType, Graph, Node, TensorType
from tinyc.ir.sum_order import SUM_ORDER, mlas_k_block
from tinyc.testing.lowered_harness import run_graph_nodes

F32 = np.float32
W_SCALE, X_SCALE = F32(0.0037), F32(0.0213)

# (x shape, w shape, Conv attributes): 1x1 with N >= K, N < K, N <= 16, strided;
# 3x3 padded and strided (im2col); grouped; a 7x7 image (computed transposed).
CONVS = {
    "1x1-wide": ((1, 256, 28, 28), (64, 256, 1, 1), {}),
    "1x1-deep": ((1, 1024, 14, 14), (128, 1024, 1, 1), {}),
    "1x1-tiny": ((1, 512, 4, 4), (32, 512, 1, 1), {}),
    "1x1-stride2": ((1, 256, 28, 28), (128, 256, 1, 1), {"strides": [2, 2]}),
    "3x3": ((1, 64, 20, 20), (48, 64, 3, 3), {"pads": [1, 1, 1, 1]}),
    "3x3-stride2": ((1, 32, 21, 21), (40, 32, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "grouped": ((1, 64, 12, 12), (64, 32, 3, 3), {"pads": [1, 1, 1, 1], "group": 2}),
    "7x7-image": ((1, 2048, 7, 7), (256, 2048, 1, 1), {}),
}
MATMULS = {"2d": ((96, 300), (300, 80)), "3d-by-2d": ((2, 30, 700), (700, 40)),
           "batched": ((3, 20, 260), (3, 260, 24))}


def _quantized(rng: np.random.Generator, shape, scale) -> np.ndarray:
    return (rng.integers(-127, 128, shape).astype(F32) * scale).astype(F32)


def _onnxruntime(node: Node, feeds: dict[str, np.ndarray], weights: np.ndarray,
                 bias: np.ndarray | None, out_shape) -> np.ndarray:
    """`node`, its weight input (if any) produced by a DequantizeLinear at run time."""
    inits, nodes = [], []
    if weights is not None:
        q = np.rint(weights / W_SCALE).astype(np.int8)
        inits += [numpy_helper.from_array(q, "wq"),
                  numpy_helper.from_array(np.array(W_SCALE), "ws")]
        nodes.append(helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"]))
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "b"))
    attrs = {k: v for k, v in node.attrs.items() if k != SUM_ORDER}
    nodes.append(helper.make_node(node.op, list(node.inputs), ["y"], **attrs))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape)
                     for k, v in feeds.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.log_severity_level = 1, 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def _tinyc(node: Node, feeds: dict[str, np.ndarray], weights: np.ndarray,
           bias: np.ndarray | None, out_shape) -> np.ndarray:
    constants = ({"w": weights} if weights is not None else {}) | \
        ({"b": bias} if bias is not None else {})
    types = {k: TensorType.of(v) for k, v in (feeds | constants).items()}
    types["y"] = TensorType(DType.float32, tuple(out_shape))
    g = Graph("g", tuple(feeds), ("y",), (node,), types, constants, {"": 17})
    return run_graph_nodes(g, feeds)["y"]


def _conv_case(name: str, marked: bool):
    x_shape, w_shape, attrs = CONVS[name]
    rng = np.random.default_rng(7)
    x, w = _quantized(rng, x_shape, X_SCALE), _quantized(rng, w_shape, W_SCALE)
    bias = (rng.standard_normal(w_shape[0]) * 0.1).astype(F32)
    attrs = {"kernel_shape": list(w_shape[2:]), **attrs} | ({SUM_ORDER: "mlas"} if marked else {})
    node = Node("Conv", ("x", "w", "b"), ("y",), attrs, name="conv")
    pads, strides = attrs.get("pads", [0] * 4), attrs.get("strides", [1, 1])
    spatial = [(x_shape[2 + i] + pads[i] + pads[i + 2] - w_shape[2 + i]) // strides[i] + 1
               for i in range(2)]
    out_shape = (x_shape[0], w_shape[0], *spatial)
    return node, {"x": x}, w, bias, out_shape


@pytest.mark.parametrize("name", CONVS)
def test_marked_conv_sums_as_onnxruntime(name):
    case = _conv_case(name, marked=True)
    np.testing.assert_array_equal(_tinyc(*case), _onnxruntime(*case))


@pytest.mark.parametrize("name", MATMULS)
def test_marked_matmul_of_activations_sums_as_onnxruntime(name):
    """Both operands at run time (with a constant B onnxruntime runs MatMulNBits)."""
    a_shape, b_shape = MATMULS[name]
    rng = np.random.default_rng(3)
    feeds = {"a": _quantized(rng, a_shape, X_SCALE), "b": _quantized(rng, b_shape, W_SCALE)}
    node = Node("MatMul", ("a", "b"), ("y",), {SUM_ORDER: "mlas"}, name="mm")
    out_shape = np.matmul(feeds["a"], feeds["b"]).shape
    np.testing.assert_array_equal(_tinyc(node, feeds, None, None, out_shape),
                                  _onnxruntime(node, feeds, None, None, out_shape))


def test_unmarked_order_differs():
    """The control: tinyc's own K blocks (256 balanced) are not MLAS's (128 here)."""
    case = _conv_case("1x1-wide", marked=False)
    assert (_tinyc(*case) != _onnxruntime(*case)).any()


@pytest.mark.parametrize("n, k, block", [(3136, 64, 64), (3136, 256, 128), (196, 1024, 128),
                                         (49, 2048, 256), (16, 512, 1024), (200, 40, 64)])
def test_mlas_k_block(n, k, block):
    assert mlas_k_block(n, k) == block
