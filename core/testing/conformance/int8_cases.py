"""The int8 models of the accelerator checks: a QDQ convolution and a QDQ matrix
product, as onnxruntime's quantizer writes them (uint8 activations with a zero
point, int8 weights, int32 bias; QuantizeLinear / DequantizeLinear around the
float op). tinyc's QDQ canonicalization turns each into QLinearConv /
QLinearMatMul, which keeps the float op's node name (`layer`): the name the
checks look up in the partition.

Shapes are large enough that a GEMM array is worth its transfers, and small
enough to fit an 8x8 array's buffers after tiling.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .cases import OPSET, Case

LAYER = "layer"  # the name of the quantized op in every int8 case


class _QdqGraph:
    def __init__(self, shape: list[int]):
        self.rng = np.random.default_rng(11)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def qdq(self, value: str, scale: float, zero: int) -> str:
        """Quantize to uint8 and back, as the quantizer does around every activation."""
        s = self.const(f"{value}.s", np.array(scale, np.float32))
        z = self.const(f"{value}.z", np.array(zero, np.uint8))
        self.nodes.append(helper.make_node("QuantizeLinear", [value, s, z], [f"{value}.q"]))
        self.nodes.append(helper.make_node("DequantizeLinear", [f"{value}.q", s, z],
                                           [f"{value}.dq"]))
        return f"{value}.dq"

    def weights(self, name: str, values: np.ndarray, scale: np.ndarray, axis: int) -> str:
        """Constant int8 (or int32 bias) weights behind a DequantizeLinear."""
        zero = np.zeros(scale.shape, values.dtype)
        self.nodes.append(helper.make_node(
            "DequantizeLinear", [self.const(name, values), self.const(f"{name}.s", scale),
                                 self.const(f"{name}.z", zero)], [f"{name}.dq"], axis=axis))
        return f"{name}.dq"

    def model(self, layer_out: str) -> onnx.ModelProto:
        y = self.qdq(layer_out, 0.05, 128)
        self.nodes.append(helper.make_node("Identity", [y], ["y"]))
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        g = helper.make_graph(self.nodes, "int8_conformance", [self.x], [out], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
        return onnx.shape_inference.infer_shapes(m, strict_mode=True)


X_SCALE = 0.025  # standard normal inputs stay within uint8 around zero point 128


def _qdq_conv() -> onnx.ModelProto:
    cin, cout = 16, 32
    g = _QdqGraph([1, cin, 20, 20])
    ws = g.rng.uniform(0.002, 0.006, cout).astype(np.float32)  # per output channel
    w = g.weights("w", g.rng.integers(-127, 128, (cout, cin, 3, 3)).astype(np.int8), ws, 0)
    b = g.weights("b", g.rng.integers(-2000, 2000, cout).astype(np.int32),
                  (ws * np.float32(X_SCALE)).astype(np.float32), 0)
    g.nodes.append(helper.make_node("Conv", [g.qdq("x", X_SCALE, 128), w, b], ["conv"],
                                    name=LAYER, kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    return g.model("conv")


def _qdq_matmul() -> onnx.ModelProto:
    k, n = 64, 48
    g = _QdqGraph([32, k])
    w = g.weights("w", g.rng.integers(-127, 128, (k, n)).astype(np.int8),
                  np.array(0.004, np.float32), 1)
    g.nodes.append(helper.make_node("MatMul", [g.qdq("x", X_SCALE, 128), w], ["mm"], name=LAYER))
    return g.model("mm")


INT8_CASES: tuple[Case, ...] = (
    Case("QDQ-Conv-3x3", "QLinearConv", _qdq_conv),
    Case("QDQ-MatMul", "QLinearMatMul", _qdq_matmul),
)
