from __future__ import annotations

import numpy as np

from tinyc.ir import DType, assert_structurally_equal
from tinyc.passes import fuse_swish_pass

from .graph_builder import GraphBuilder, run_pass

S = (2, 8)


def swish_graph(alpha: float):
    e = GraphBuilder(opset=24)
    y = e.op("Swish", e.input("x", S), shape=S, out="y", alpha=alpha)
    return e.build(y)


def test_x_times_sigmoid_x_becomes_swish():
    b = GraphBuilder()
    x = b.input("x", S)
    y = b.op("Mul", b.op("Sigmoid", x, shape=S), x, shape=S, out="y")  # either operand order
    before = b.build(y)
    after = run_pass(fuse_swish_pass, before)
    assert_structurally_equal(after, swish_graph(1.0))


def test_the_compiled_silu_is_one_swish_kernel_and_exact_enough():
    import onnx
    from onnx import TensorProto, helper

    import tinyc

    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])]
    x_info, y_info = (helper.make_tensor_value_info(n, TensorProto.FLOAT, S) for n in "xy")
    graph = helper.make_graph(nodes, "silu", [x_info], [y_info])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    sess = tinyc.InferenceSession(model.SerializeToString(), target="x86")
    assert [r["kernels"] for r in sess.artifact.report] == [["act_swish_f32"]]
    x = np.linspace(-30, 30, 16, dtype=np.float32).reshape(S)
    (y,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, x / (1 + np.exp(-x.astype(np.float64))), rtol=2e-6, atol=1e-30)


def test_quick_gelu_form_carries_alpha():
    b = GraphBuilder()
    x = b.input("x", S)
    scaled = b.op("Mul", x, b.const("alpha", 1.702), shape=S)
    y = b.op("Mul", x, b.op("Sigmoid", scaled, shape=S), shape=S, out="y")
    after = run_pass(fuse_swish_pass, b.build(y))
    assert_structurally_equal(after, swish_graph(float(np.float32(1.702))))


def test_a_sigmoid_read_elsewhere_or_an_int_stays():
    b = GraphBuilder()
    x = b.input("x", S)
    s = b.op("Sigmoid", x, shape=S)
    y = b.op("Mul", x, s, shape=S, out="y")
    before = b.build(y, s)  # the sigmoid is also an output
    assert_structurally_equal(run_pass(fuse_swish_pass, before), before)
    b = GraphBuilder()
    x = b.input("x", S, DType.float64)
    y = b.op("Mul", x, b.op("Sigmoid", x, shape=S), shape=S, out="y")
    before = b.build(y)
    assert_structurally_equal(run_pass(fuse_swish_pass, before), before)
