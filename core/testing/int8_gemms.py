"""Int8 GEMM-shaped models for the intrinsic checks of the cross targets
(tests/cross/test_int8_intrinsics.py, bench/int8_intrinsics.py): a
QLinearMatMul and a QLinearConv, uint8 activations with a zero point and int8
weights, requantized to uint8, seeded random values."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def qlinear_matmul(m: int = 6, k: int = 40, n: int = 19) -> onnx.ModelProto:
    """a (m x k, uint8) @ b (k x n, int8 constant), output uint8."""
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(v, name) for name, v in (
        ("as", np.array(0.02, np.float32)), ("az", np.uint8(5)),
        ("b", rng.integers(-128, 128, (k, n)).astype(np.int8)),
        ("bs", np.array(0.01, np.float32)), ("bz", np.int8(0)),
        ("ys", np.array(0.7, np.float32)), ("yz", np.uint8(3)))]
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                            ["y"])
    graph = helper.make_graph(
        [node], "qlinear_matmul", [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [m, n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def qlinear_conv(c: int = 8, size: int = 9, co: int = 12) -> onnx.ModelProto:
    """A 3x3 convolution, padding 1, of a 1 x c x size x size uint8 image by int8
    weights per output channel (zero point 0), with an int32 bias; output uint8."""
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array(v, name) for name, v in (
        ("xs", np.array(0.03, np.float32)), ("xz", np.uint8(7)),
        ("w", rng.integers(-128, 128, (co, c, 3, 3)).astype(np.int8)),
        ("ws", rng.uniform(0.005, 0.02, co).astype(np.float32)),
        ("wz", np.zeros(co, np.int8)),
        ("ys", np.array(0.5, np.float32)), ("yz", np.uint8(100)),
        ("bias", rng.integers(-2000, 2000, co).astype(np.int32)))]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz",
                                            "bias"], ["y"], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node], "qlinear_conv",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, c, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, co, size, size])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def uint8_feeds(model: onnx.ModelProto, seed: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {vi.name: rng.integers(0, 256, [d.dim_value for d in vi.type.tensor_type.shape.dim])
            .astype(np.uint8) for vi in model.graph.input}
