from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from tinyc.errors import ModelError
from tinyc.ir import DType, Graph, assert_structurally_equal
from tinyc.passes import fold_and_infer_pass, infer_shapes_pass

from .graph_builder import GraphBuilder, run_pass

I64 = DType.int64


def test_reshape_by_a_constant_shape_becomes_static_and_so_do_its_readers():
    b = GraphBuilder()
    x = b.input("x", (2, 6))
    r = b.op("Reshape", x, b.const("s", [3, 4], np.int64), shape=("?0", "?1"))
    y = b.op("Relu", r, shape=("?0", "?1"))
    after = run_pass(infer_shapes_pass, b.build(y))

    e = GraphBuilder()
    x = e.input("x", (2, 6))
    r = e.op("Reshape", x, e.const("s", [3, 4], np.int64), shape=(3, 4))
    assert_structurally_equal(after, e.build(e.op("Relu", r, shape=(3, 4))))


def test_symbolic_input_dimension_stays_symbolic():
    b = GraphBuilder()
    x = b.input("x", ("batch", 6))
    y = b.op("Reshape", x, b.const("s", [-1, 2, 3], np.int64), shape=("?0", "?1", "?2"))
    after = run_pass(infer_shapes_pass, b.build(y))

    assert after.type_of(y).shape == ("?0", 2, 3)


def test_shape_from_a_runtime_value_stays_unknown():
    b = GraphBuilder()
    x = b.input("x", (2, 6))
    s = b.input("s", (2,), DType.int64)
    before = b.build(b.op("Reshape", x, s, shape=("?0", "?1")))
    assert_structurally_equal(run_pass(infer_shapes_pass, before), before)


def test_value_of_unknown_rank_gets_a_type():
    b = GraphBuilder()
    b.input("x", (1,))
    y = b.op("ConstantOfShape", b.const("dims", [2, 3], np.int64), shape=(), dtype=DType.float32,
             value=np.array([1.0], np.float32))
    g = b.build(y)
    untyped = g.replace(types={k: v for k, v in g.types.items() if k != y})
    after = infer_shapes_pass(untyped)

    assert after.type_of(y).shape == (2, 3) and after.type_of(y).dtype is DType.float32


def test_shape_contradicting_the_declared_one_is_an_error():
    b = GraphBuilder()
    x = b.input("x", (2, 6))
    b.op("Reshape", x, b.const("s", [3, 4], np.int64), shape=(4, "?1"), out="r")
    with pytest.raises(ModelError, match=r"'r' \(output of Reshape .*declared f32\[4,\?1\] "
                                         r"but its inputs make it f32\[3,4\]"):
        infer_shapes_pass(b.build("r"))


def test_rank_contradicting_the_declared_one_is_an_error():
    b = GraphBuilder()
    x = b.input("x", (2, 6))
    b.op("Reshape", x, b.const("s", [12], np.int64), shape=("?0", "?1"), out="r")
    with pytest.raises(ModelError, match="'r'.*declared f32"):
        infer_shapes_pass(b.build("r"))


def test_inconsistent_constant_inputs_are_a_model_error():
    b = GraphBuilder()
    x = b.input("x", (2, 6))
    b.op("Expand", x, b.const("s", [3, 6], np.int64), shape=("?0", "?1"), out="r")
    with pytest.raises(ModelError, match="Expand 'Expand_0': its shapes are inconsistent"):
        infer_shapes_pass(b.build("r"))


def test_ops_without_an_onnx_schema_are_left_alone():
    b = GraphBuilder()
    x = b.input("x", (2,))
    before = b.build(b.op("Mystery", x, shape=("?0",), domain="tinyc"))
    assert_structurally_equal(run_pass(infer_shapes_pass, before), before)


def _shape_chain() -> Graph:
    """r = Reshape(x, 12 / 2 = 6, 1); y = r + Expand(1, Shape(r)): Shape(r) folds only
    once r's shape is inferred, and y's shape needs the folded Expand."""
    b = GraphBuilder()
    x = b.input("x", (2, 3))
    dims = b.op("Div", b.const("n", [12, 1], np.int64), b.const("d", [2, 1], np.int64),
                shape=(2,))
    r = b.op("Reshape", x, dims, shape=("?0", "?1"))
    ones = b.op("Expand", b.const("one", 1.0), b.op("Shape", r, shape=(2,), dtype=I64),
                shape=("?2", "?3"))
    return b.build(b.op("Add", r, ones, shape=("?4", "?5")))


def test_fold_and_infer_alternates_until_shapes_are_static():
    after = run_pass(fold_and_infer_pass, _shape_chain())

    e = GraphBuilder()
    x = e.input("x", (2, 3))
    r = e.op("Reshape", x, e.const("dims", [6, 1], np.int64), shape=(6, 1))
    y = e.op("Add", r, e.const("ones", np.ones((6, 1))), shape=(6, 1))
    assert_structurally_equal(after, e.build(y))


def test_a_graph_with_static_types_is_unchanged():
    b = GraphBuilder()
    x = b.input("x", (2, 3))
    before = b.build(b.op("Relu", x, shape=(2, 3)))
    assert_structurally_equal(run_pass(fold_and_infer_pass, before), before)


def test_control_flow_nodes_are_left_alone():
    """Their bodies read values of the enclosing graph, whose types the node
    alone does not give onnx: even a branch declaring its type is not trusted."""
    out = helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])
    body = helper.make_graph([helper.make_node("Identity", ["x"], ["c"])], "body", [], [out])
    b = GraphBuilder()
    b.input("x", (2,))
    cond = b.input("cond", (), DType.bool)
    before = b.build(b.op("If", cond, shape=("?0",), dtype=DType.float32, then_branch=body,
                          else_branch=body))
    assert_structurally_equal(infer_shapes_pass(before), before)
