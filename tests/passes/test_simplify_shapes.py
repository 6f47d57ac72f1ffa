from __future__ import annotations

import numpy as np

from tinyc.ir import DType, assert_structurally_equal
from tinyc.passes import Sequential, dead_code_pass, fold_constants_pass, simplify_shapes_pass

from .graph_builder import GraphBuilder, run_pass

I64 = DType.int64


def unchanged(before) -> None:
    assert_structurally_equal(run_pass(simplify_shapes_pass, before), before)


def test_identity_is_bypassed():
    b = GraphBuilder()
    x = b.input("x", (2,))
    i = b.op("Identity", b.op("Neg", x, shape=(2,)), shape=(2,))
    y = b.op("Relu", i, shape=(2,))
    after = run_pass(simplify_shapes_pass, b.build(y))

    e = GraphBuilder()
    y = e.op("Relu", e.op("Neg", e.input("x", (2,)), shape=(2,)), shape=(2,))
    assert_structurally_equal(after, e.build(y))


def test_identity_chain_is_bypassed():
    b = GraphBuilder()
    x = b.input("x", (2,))
    i = b.op("Identity", b.op("Identity", x, shape=(2,)), shape=(2,))
    y = b.op("Relu", i, shape=(2,))
    after = run_pass(simplify_shapes_pass, b.build(y))
    assert [n.op for n in after.nodes] == ["Relu"] and after.nodes[0].inputs == ("x",)


def test_identity_producing_a_graph_output_keeps_the_output_name():
    b = GraphBuilder()
    x = b.input("x", (2,))
    n = b.op("Neg", x, shape=(2,))
    side = b.op("Relu", n, shape=(2,), out="side")
    y = b.op("Identity", n, shape=(2,), out="y")
    after = run_pass(simplify_shapes_pass, b.build(y, side))

    e = GraphBuilder()
    n = e.op("Neg", e.input("x", (2,)), shape=(2,), out="y")
    side = e.op("Relu", n, shape=(2,), out="side")
    assert_structurally_equal(after, e.build(n, side))
    assert after.outputs == ("y", "side")


def test_identity_that_must_define_an_output_stays():
    b = GraphBuilder()
    x = b.input("x", (2,))
    unchanged(b.build(b.op("Identity", x, shape=(2,))))  # of a graph input

    b = GraphBuilder()
    b.input("x", (2,))
    unchanged(b.build(b.op("Identity", b.const("c", [1, 2]), shape=(2,))))  # of a constant

    b = GraphBuilder()
    n = b.op("Neg", b.input("x", (2,)), shape=(2,))
    unchanged(b.build(n, b.op("Identity", n, shape=(2,))))  # of another output


def dropout_graph(opset: int, mask_read: bool = False, training: object = None):
    b = GraphBuilder(opset=opset)
    x = b.input("x", (2, 3))
    inputs = [x]
    if training is not None:
        inputs += ["", training if isinstance(training, str) else
                   b.const("t", training, np.bool_)]
    y, mask = b.op_multi("Dropout", inputs, [(None, (2, 3), None),
                                             (None, (2, 3) if mask_read else None, DType.bool)])
    return b.build(b.op("Relu", y, shape=(2, 3)), *([mask] if mask_read else []))


def test_inference_dropout_is_bypassed():
    e = GraphBuilder()
    expected = e.build(e.op("Relu", e.input("x", (2, 3)), shape=(2, 3)))
    for before in (dropout_graph(9), dropout_graph(13, training=False)):
        assert_structurally_equal(run_pass(simplify_shapes_pass, before), expected)


def test_dropout_with_an_unread_mask_is_bypassed():
    b = GraphBuilder(opset=9)
    y, _ = b.op_multi("Dropout", [b.input("x", (2,))], [(None, (2,), None),
                                                        (None, (2,), DType.bool)])
    after = run_pass(simplify_shapes_pass, b.build(b.op("Relu", y, shape=(2,))))
    assert [n.op for n in after.nodes] == ["Relu"] and set(after.types) == {"x", *after.outputs}


def test_inference_dropout_mask_is_all_true():
    after = run_pass(simplify_shapes_pass, dropout_graph(9, mask_read=True))

    e = GraphBuilder()
    x = e.input("x", (2, 3))
    shape = e.op("Shape", x, shape=(2,), dtype=I64)
    mask = e.op("Expand", e.const("true", True, np.bool_), shape, shape=(2, 3),
                dtype=DType.bool)
    assert_structurally_equal(after, e.build(e.op("Relu", x, shape=(2, 3)), mask))


def test_dropout_that_may_train_stays():
    unchanged(dropout_graph(13, training=True))
    b = GraphBuilder(opset=13)
    x, t = b.input("x", (2,)), b.input("training", (), DType.bool)
    unchanged(b.build(b.op("Dropout", x, "", t, shape=(2,))))


def test_view_chain_collapses_into_one_reshape():
    b = GraphBuilder()
    x = b.input("x", (2, 3, 4))
    r = b.op("Reshape", x, b.const("s", [6, 4], np.int64), shape=(6, 4))
    f = b.op("Flatten", r, shape=(1, 24), axis=0)
    u = b.op("Unsqueeze", f, b.const("axes", [0], np.int64), shape=(1, 1, 24))
    y = b.op("Squeeze", u, b.const("axes0", [0], np.int64), shape=(1, 24), out="y")
    after = run_pass(simplify_shapes_pass, b.build(y))

    e = GraphBuilder()
    x = e.input("x", (2, 3, 4))
    y = e.op("Reshape", x, e.const("s", [1, 24], np.int64), shape=(1, 24), out="y")
    assert_structurally_equal(after, e.build(y))
    assert after.outputs == ("y",)


def test_reshape_to_the_same_shape_goes():
    b = GraphBuilder()
    x = b.input("x", (2, 3))
    r = b.op("Reshape", b.op("Neg", x, shape=(2, 3)), b.const("s", [2, 3], np.int64),
             shape=(2, 3), out="y")
    after = run_pass(simplify_shapes_pass, b.build(r))

    e = GraphBuilder()
    y = e.op("Neg", e.input("x", (2, 3)), shape=(2, 3), out="y")
    assert_structurally_equal(after, e.build(y))


def test_view_read_twice_is_not_merged_into_the_next():
    b = GraphBuilder()
    x = b.input("x", (2, 3, 4))
    r = b.op("Reshape", x, b.const("s", [6, 4], np.int64), shape=(6, 4))
    f = b.op("Flatten", r, shape=(1, 24), axis=0)
    unchanged(b.build(f, b.op("Relu", r, shape=(6, 4))))


def test_symbolic_views_are_left_alone():
    b = GraphBuilder()
    x = b.input("x", ("n", 3, 4))
    r = b.op("Reshape", x, b.const("s", [0, 12], np.int64), shape=("n", 12))
    unchanged(b.build(b.op("Flatten", r, shape=("n", 12), axis=1)))


def test_shape_gather_concat_reshape_chain_folds_to_a_constant_shape():
    """The exporter idiom x.view(x.size(0), -1) over a static shape."""
    b = GraphBuilder(opset=11)
    x = b.input("x", (2, 3, 4))
    shape = b.op("Shape", x, shape=(3,), dtype=I64)
    batch = b.op("Gather", shape, b.const("zero", 0, np.int64), shape=(), axis=0)
    batch1 = b.op("Unsqueeze", batch, shape=(1,), axes=[0])
    target = b.op("Concat", batch1, b.const("minus1", [-1], np.int64), shape=(2,), axis=0)
    y = b.op("Reshape", x, target, shape=(2, 12), out="y")
    pipeline = Sequential([fold_constants_pass, simplify_shapes_pass, dead_code_pass])
    after = run_pass(pipeline, b.build(y))

    e = GraphBuilder(opset=11)
    x = e.input("x", (2, 3, 4))
    y = e.op("Reshape", x, e.const("s", [2, -1], np.int64), shape=(2, 12), out="y")
    assert_structurally_equal(after, e.build(y))
