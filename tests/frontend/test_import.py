from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinyc.errors import ModelError
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


def _unknown_rank_model(limit: str = "four", inputs=()) -> onnx.ModelProto:
    """ones = ConstantOfShape(Range(2, limit, 1)); y = x + ones. ONNX inference does not
    follow data through Div or Range, so neither 'ones' nor 'y' gets a rank."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.array(v, np.int64), n)
             for n, v in (("two", 2), ("eight", 8), ("one", 1))]
    nodes = [helper.make_node("Div", ["eight", "two"], ["four"]),
             helper.make_node("Range", ["two", limit, "one"], ["dims"]),
             helper.make_node("ConstantOfShape", ["dims"], ["ones"],
                              value=numpy_helper.from_array(np.array([1.0], np.float32))),
             helper.make_node("Add", ["x", "ones"], ["y"])]
    return _model(nodes, [x, *inputs], [y], inits=inits)


def test_unknown_rank_resolved_by_constant_folding():
    g = import_model(_unknown_rank_model())
    assert g.type_of("y").shape == (2, 3)
    assert [n.op for n in g.nodes] == ["Add"]
    np.testing.assert_array_equal(g.const("ones"), np.ones((2, 3)))


def test_unknown_rank_that_stays_unknown_is_rejected_by_name():
    n = helper.make_tensor_value_info("n", TensorProto.INT64, [])
    with pytest.raises(ModelError, match=r"rank of 'ones' \(output of ConstantOfShape "
                                         r"'ConstantOfShape_2'\).* is unknown"):
        import_model(_unknown_rank_model(limit="n", inputs=[n]))


def test_input_without_a_shape_is_rejected_by_name():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, None)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    with pytest.raises(ModelError, match="input 'x' is declared without a shape"):
        import_model(_model([helper.make_node("Relu", ["x"], ["y"])], [x], [y]))


def test_sequence_values_are_rejected_by_name():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    s = helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, [2])
    nodes = [helper.make_node("SequenceConstruct", ["x", "x"], ["s"])]
    with pytest.raises(ModelError, match="value 's' is a sequence"):
        import_model(_model(nodes, [x], [s]))
