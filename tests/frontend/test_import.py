from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from tinyc.frontend.onnx_import import import_model
from tinyc.ir import DType


def _model(nodes, inputs, outputs, opset=13, inits=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def test_attribute_defaults_follow_the_opset():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    g11 = import_model(_model([helper.make_node("Softmax", ["x"], ["y"])], [x], [y], opset=11))
    g13 = import_model(_model([helper.make_node("Softmax", ["x"], ["y"])], [x], [y], opset=13))
    assert g11.nodes[0].attr("axis") == 1
    assert g13.nodes[0].attr("axis") == -1
    assert g13.opsets[""] == 13


def test_constant_nodes_and_initializers_become_constants():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    w = helper.make_tensor("w", TensorProto.FLOAT, [3], [1, 2, 3])
    nodes = [helper.make_node("Constant", [], ["c"], value_floats=[4.0, 5.0, 6.0]),
             helper.make_node("Add", ["x", "w"], ["t"]),
             helper.make_node("Mul", ["t", "c"], ["y"])]
    g = import_model(_model(nodes, [x], [y], inits=[w]))
    assert [n.op for n in g.nodes] == ["Add", "Mul"]
    np.testing.assert_array_equal(g.const("c"), [4, 5, 6])
    assert g.inputs == ("x",)
    assert g.type_of("t").shape == (3,) and g.type_of("t").dtype is DType.float32


def test_symbolic_dimensions_are_kept():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    g = import_model(_model([helper.make_node("Relu", ["x"], ["y"])], [x], [y]))
    assert g.type_of("x").shape == ("batch", 4)
    assert not g.type_of("x").is_static
