"""If nodes on a condition known when compiling (frontend/static_if.py): the
branch taken replaces the node; a condition on run-time values stays an If,
which the lowering refuses with a reason."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc
from tinyc.frontend.static_if import inline_static_ifs


def _branches():
    then = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    bias = numpy_helper.from_array(np.full(4, 0.5, np.float32), "bias")
    other = helper.make_graph([helper.make_node("Add", ["x", "bias"], ["e0"]),
                               helper.make_node("Relu", ["e0"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)],
                              [bias])
    return then, other


def _model(batch, cond: str) -> onnx.ModelProto:
    """y = x * 2 if cond else relu(x + 0.5); cond: batch == 1 ("shape"), a
    constant ("const") or sum(x) > 0 ("values")."""
    if cond == "shape":
        nodes = [helper.make_node("Shape", ["x"], ["s"]),
                 helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
                 helper.make_node("Equal", ["b", "one"], ["c"])]
    elif cond == "const":
        nodes = [helper.make_node("Constant", [], ["c"], value=helper.make_tensor(
            "c", TensorProto.BOOL, [], [False]))]
    else:
        nodes = [helper.make_node("ReduceSum", ["x"], ["r"], keepdims=0),
                 helper.make_node("Greater", ["r", "zero_f"], ["c"])]
    then, other = _branches()
    nodes.append(helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then,
                                  else_branch=other))
    inits = [numpy_helper.from_array(np.array(2.0, np.float32), "two"),
             numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array(1, np.int64), "one"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero_f")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("batch,taken", [(1, ["Mul"]), (3, ["Add", "Relu"])])
def test_an_if_on_a_static_shape_becomes_its_branch(batch, taken):
    before = _model(batch, "shape")
    after = inline_static_ifs(before)
    ops = [n.op_type for n in after.graph.node]
    assert ops == ["Shape", "Gather", "Equal", *taken, "Identity"]
    assert after.graph.node[-1].output[0] == "y"
    assert [n.op_type for n in before.graph.node][-1] == "If"  # the input is not changed
    if batch != 1:  # the else branch's initializer, renamed into the graph
        assert "branch/else/bias" in {t.name for t in after.graph.initializer}
        assert after.graph.node[3].input[1] == "branch/else/bias"


@pytest.mark.parametrize("batch,cond", [(1, "shape"), (3, "shape"), (2, "const")])
def test_inlined_branches_compute_what_onnxruntime_does(batch, cond):
    model = _model(batch, cond)
    x = np.random.default_rng(0).standard_normal((batch, 4)).astype(np.float32)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    ref = ort.InferenceSession(model.SerializeToString(), so,
                               providers=["CPUExecutionProvider"])
    (want,) = ref.run(None, {"x": x})
    (got,) = tinyc.InferenceSession(model, target="x86").run(None, {"x": x})
    np.testing.assert_array_equal(got, want)


def test_an_if_on_run_time_values_is_refused_with_a_reason():
    model = _model(2, "values")
    assert inline_static_ifs(model) is model
    with pytest.raises(tinyc.UnsupportedOpsError, match="control flow on run-time values"):
        tinyc.compile(model, target="x86")


def test_a_symbolic_dim_is_not_a_known_condition():
    model = _model("N", "shape")
    assert inline_static_ifs(model) is model


def _flag_model(batch="N") -> onnx.ModelProto:
    """y = If(use_cache) x * 2 else relu(x + 0.5), as optimum's merged decoders
    branch on `use_cache_branch`."""
    then, other = _branches()
    graph = helper.make_graph(
        [helper.make_node("If", ["use_cache"], ["y"], then_branch=then, else_branch=other)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4]),
         helper.make_tensor_value_info("use_cache", TensorProto.BOOL, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])],
        [numpy_helper.from_array(np.array(2.0, np.float32), "two")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("batch", ["N", 2])
def test_a_session_compiles_once_per_flag_value(batch):
    model = _flag_model(batch)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    ref = ort.InferenceSession(model.SerializeToString(), so,
                               providers=["CPUExecutionProvider"])
    sess = tinyc.InferenceSession(model, target="x86")
    assert [i.name for i in sess.get_inputs()] == ["x", "use_cache"]
    rng = np.random.default_rng(1)
    for flag in (True, False, True, False):
        x = rng.standard_normal((2, 4)).astype(np.float32)
        feeds = {"x": x, "use_cache": np.array([flag])}
        np.testing.assert_array_equal(sess.run(None, feeds)[0], ref.run(None, feeds)[0])
    assert sorted(sess._flag_variants) == [(False,), (True,)]  # one compile per value
    with pytest.raises(tinyc.InputError, match="use_cache"):
        sess.run(None, {"x": x})
