"""The models the conformance kit compiles: one per op check, a few whole models.

Each case builds a small ONNX model with seeded random weights; inputs are
seeded too, so a failure reproduces. Shapes are small and odd on purpose (tails
of vector loops, edge tiles), and every case compiles in well under a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


@dataclass(frozen=True)
class Case:
    name: str  # the test id, e.g. Conv-3x3
    op: str  # the op it checks ("model" for whole models)
    build: Callable[[], onnx.ModelProto]
    tolerance: float = 1e-4  # of the output range

    def feeds(self, model: onnx.ModelProto) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(7)
        out = {}
        for vi in model.graph.input:
            shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            out[vi.name] = rng.standard_normal(shape).astype(np.float32)
        return out


class _Graph:
    """A tiny builder: x is the float32 input; weights are seeded random initializers."""

    def __init__(self, shape: list[int]):
        self.rng = np.random.default_rng(3)
        self.inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def weight(self, shape: list[int], scale: float = 0.5, positive: bool = False) -> str:
        self.count += 1
        name = f"w{self.count}"
        values = self.rng.uniform(0.5, 1.5, shape) if positive else \
            self.rng.standard_normal(shape) * scale
        self.inits.append(numpy_helper.from_array(values.astype(np.float32), name))
        return name

    def op(self, op: str, inputs: list[str], **attrs: object) -> str:
        self.count += 1
        out = f"t{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.count}", **attrs))
        return out

    def model(self, out: str) -> onnx.ModelProto:
        y = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
        g = helper.make_graph(self.nodes, "conformance", self.inputs, [y], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
        return onnx.shape_inference.infer_shapes(m, strict_mode=True)


def _unary(op: str, shape: list[int] | None = None, **attrs: object) -> Callable:
    def build() -> onnx.ModelProto:
        g = _Graph(shape or [2, 3, 5, 7])
        return g.model(g.op(op, ["x"], **attrs))
    return build


def _binary(op: str, wshape: list[int], positive: bool = False) -> Callable:
    def build() -> onnx.ModelProto:
        g = _Graph([2, 3, 5, 7])
        return g.model(g.op(op, ["x", g.weight(wshape, positive=positive)]))
    return build


def _conv(cin: int, cout: int, k: int, stride: int = 1, group: int = 1) -> Callable:
    def build() -> onnx.ModelProto:
        g = _Graph([1, cin, 11, 13])
        w = g.weight([cout, cin // group, k, k])
        return g.model(g.op("Conv", ["x", w, g.weight([cout])], kernel_shape=[k, k],
                            strides=[stride, stride], pads=[k // 2] * 4, group=group))
    return build


def _gemm() -> onnx.ModelProto:
    g = _Graph([3, 37])
    return g.model(g.op("Gemm", ["x", g.weight([19, 37]), g.weight([19])], transB=1))


def _matmul() -> onnx.ModelProto:
    g = _Graph([2, 5, 33])
    return g.model(g.op("MatMul", ["x", g.weight([33, 17])]))


def _batchnorm() -> onnx.ModelProto:
    g = _Graph([2, 3, 5, 7])
    params = [g.weight([3], positive=True), g.weight([3]), g.weight([3]),
              g.weight([3], positive=True)]
    return g.model(g.op("BatchNormalization", ["x", *params]))


def _concat() -> onnx.ModelProto:
    g = _Graph([2, 3, 5, 7])
    return g.model(g.op("Concat", ["x", g.weight([2, 4, 5, 7])], axis=1))


def _reshape() -> onnx.ModelProto:
    g = _Graph([2, 3, 5, 7])
    g.inits.append(numpy_helper.from_array(np.array([6, 35], np.int64), "shape"))
    return g.model(g.op("Relu", [g.op("Reshape", ["x", "shape"])]))


OP_CASES: tuple[Case, ...] = (
    Case("Conv-3x3", "Conv", _conv(3, 8, 3)),
    Case("Conv-3x3-stride2", "Conv", _conv(4, 6, 3, stride=2)),
    Case("Conv-1x1", "Conv", _conv(8, 5, 1)),
    Case("Conv-depthwise", "Conv", _conv(6, 6, 3, group=6)),
    Case("Gemm", "Gemm", _gemm),
    Case("MatMul-batched", "MatMul", _matmul),
    Case("Relu", "Relu", _unary("Relu")),
    Case("LeakyRelu", "LeakyRelu", _unary("LeakyRelu", alpha=0.1)),
    Case("Sigmoid", "Sigmoid", _unary("Sigmoid")),
    Case("Tanh", "Tanh", _unary("Tanh")),
    Case("Exp", "Exp", _unary("Exp")),
    Case("HardSwish", "HardSwish", _unary("HardSwish")),
    Case("Add-broadcast", "Add", _binary("Add", [3, 1, 7])),
    Case("Mul-broadcast", "Mul", _binary("Mul", [1, 5, 1])),
    Case("Sub", "Sub", _binary("Sub", [2, 3, 5, 7])),
    Case("Div", "Div", _binary("Div", [7], positive=True)),
    Case("BatchNormalization", "BatchNormalization", _batchnorm),
    Case("MaxPool-3x3-stride2", "MaxPool",
         _unary("MaxPool", [1, 4, 11, 13], kernel_shape=[3, 3], strides=[2, 2])),
    Case("AveragePool-2x2", "AveragePool",
         _unary("AveragePool", [1, 4, 10, 12], kernel_shape=[2, 2], strides=[2, 2])),
    Case("GlobalAveragePool", "GlobalAveragePool", _unary("GlobalAveragePool")),
    Case("Softmax", "Softmax", _unary("Softmax", [3, 37], axis=-1)),
    Case("Transpose", "Transpose", _unary("Transpose", perm=[0, 2, 3, 1])),
    Case("Concat", "Concat", _concat),
    Case("Reshape", "Reshape", _reshape),
    Case("Flatten", "Flatten", _unary("Flatten", axis=1)),
)


def _small_cnn() -> onnx.ModelProto:
    g = _Graph([1, 3, 24, 24])
    x = g.op("Relu", [g.op("Conv", ["x", g.weight([8, 3, 3, 3]), g.weight([8])],
                           kernel_shape=[3, 3], pads=[1, 1, 1, 1])])
    x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    skip = x
    x = g.op("Conv", [x, g.weight([8, 8, 3, 3], 0.2)], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = g.op("Relu", [g.op("Add", [x, skip])])
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    return g.model(g.op("Gemm", [x, g.weight([10, 8]), g.weight([10])], transB=1))


def _mlp() -> onnx.ModelProto:
    g = _Graph([4, 20])
    x = g.op("Relu", [g.op("Add", [g.op("MatMul", ["x", g.weight([20, 32])]), g.weight([32])])])
    x = g.op("Add", [g.op("MatMul", [x, g.weight([32, 10])]), g.weight([10])])
    return g.model(g.op("Softmax", [x], axis=-1))


MODEL_CASES: tuple[Case, ...] = (
    Case("small_cnn", "model", _small_cnn, tolerance=1e-3),
    Case("mlp", "model", _mlp, tolerance=1e-3),
)
