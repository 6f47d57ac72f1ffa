"""The small models onnxruntime's Python API tests use (its testdata files),
rebuilt with onnx.helper so the ported tests need no data files."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=np.float32)
X_SQUARED = np.array([[1.0, 4.0], [9.0, 16.0], [25.0, 36.0]], dtype=np.float32)


def _model(nodes, name, inputs, outputs, inits=(), ir_version=8, **meta) -> onnx.ModelProto:
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=ir_version,
                          **meta)
    onnx.checker.check_model(m)
    return m


def mul_1(w_is_input: bool = False) -> onnx.ModelProto:
    """Y = X * W with W = X's values: onnxruntime's mul_1.onnx. w_is_input lists W
    among the graph inputs too (an overridable initializer)."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 2])
    w = helper.make_tensor_value_info("W", TensorProto.FLOAT, [3, 2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3, 2])
    inputs = [x, w] if w_is_input else [x]
    return _model([helper.make_node("Mul", ["X", "W"], ["Y"])], "mul_1", inputs, [y],
                  [numpy_helper.from_array(X, "W")])


def matmul(symbolic: bool = False) -> onnx.ModelProto:
    """Y = X @ [[1], [2]]: matmul_1.onnx, or matmul_2.onnx with X's rows symbolic."""
    rows = "N" if symbolic else 3
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [rows, 2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [rows, 1])
    w = numpy_helper.from_array(np.array([[1.0], [2.0]], np.float32), "W")
    return _model([helper.make_node("MatMul", ["X", "W"], ["Y"])], "matmul", [x], [y], [w])


def logical_and() -> onnx.ModelProto:
    """logicaland.onnx: two bool inputs, in this order."""
    a = helper.make_tensor_value_info("input1:0", TensorProto.BOOL, [2, 2])
    b = helper.make_tensor_value_info("input:0", TensorProto.BOOL, [2, 2])
    out = helper.make_tensor_value_info("output:0", TensorProto.BOOL, [2, 2])
    node = helper.make_node("And", ["input1:0", "input:0"], ["output:0"])
    return _model([node], "logicaland", [a, b], [out])


def identity(dtype: np.dtype) -> onnx.ModelProto:
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    x = helper.make_tensor_value_info("X", elem, ["N", 2])
    y = helper.make_tensor_value_info("Y", elem, ["N", 2])
    return _model([helper.make_node("Identity", ["X"], ["Y"])], "lr", [x], [y])


def passthrough() -> onnx.ModelProto:
    """An input that is also an output, beside input + 10."""
    shape = [1, 2, 2, 2]
    x = helper.make_tensor_value_info("input_0", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("plus_10", TensorProto.FLOAT, shape)
    ten = numpy_helper.from_array(np.array(10, np.float32), "ten")
    return _model([helper.make_node("Add", ["input_0", "ten"], ["plus_10"])], "passthrough",
                  [x], [y, x], [ten])


def with_metadata() -> onnx.ModelProto:
    m = mul_1()
    m.producer_name, m.producer_version = "onnx-caffe2", "1.0"
    m.domain, m.doc_string, m.model_version = "ai.tinyc.test", "squares X", 7
    m.graph.name, m.graph.doc_string = "squeezenet_old", "the graph"
    helper.set_model_props(m, {"author": "tinyc", "license": "MIT"})
    return m
