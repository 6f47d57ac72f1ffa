from __future__ import annotations

import functools

import numpy as np

from tinyc.ir import DType, assert_structurally_equal
from tinyc.passes import FunctionPass, fold_constants, fold_constants_pass

from .graph_builder import GraphBuilder, run_pass

I64 = DType.int64


def test_add_of_two_constants_becomes_a_constant():
    b = GraphBuilder()
    x = b.input("x", (2,))
    s = b.op("Add", b.const("a", [1, 2]), b.const("c", [10, 20]), shape=(2,))
    y = b.op("Mul", x, s, shape=(2,))
    after = run_pass(fold_constants_pass, b.build(y))

    e = GraphBuilder()
    x = e.input("x", (2,))
    y = e.op("Mul", x, e.const("s", [11, 22]), shape=(2,))
    assert_structurally_equal(after, e.build(y))


def test_folded_graph_output_stays_an_output():
    b = GraphBuilder()
    b.input("x", (1,))
    y = b.op("Neg", b.const("a", [1.5]), shape=(1,), out="y")
    after = run_pass(fold_constants_pass, b.build(y))

    assert after.outputs == ("y",) and after.nodes == ()
    np.testing.assert_array_equal(after.const("y"), [-1.5])


def test_constant_of_shape_weight_folds_into_conv_operand():
    b = GraphBuilder(opset=9)
    x = b.input("x", (1, 2, 4, 4))
    shape = b.const("w_shape", [3, 2, 1, 1], np.int64)
    w = b.op("ConstantOfShape", shape, shape=(3, 2, 1, 1), dtype=DType.float32,
             value=np.array([0.02], np.float32))
    y = b.op("Conv", x, w, shape=(1, 3, 4, 4), kernel_shape=[1, 1])
    after = run_pass(fold_constants_pass, b.build(y))

    e = GraphBuilder(opset=9)
    x = e.input("x", (1, 2, 4, 4))
    y = e.op("Conv", x, e.const("w", np.full((3, 2, 1, 1), 0.02)), shape=(1, 3, 4, 4),
             kernel_shape=[1, 1])
    assert_structurally_equal(after, e.build(y))


def test_shape_and_size_of_static_value_fold():
    b = GraphBuilder()
    x = b.input("x", (2, 3, 5))
    s = b.op("Shape", x, shape=(3,), dtype=I64)
    tail = b.op("Shape", x, shape=(2,), dtype=I64, start=1)
    n = b.op("Size", x, shape=(), dtype=I64)
    after = run_pass(fold_constants_pass, b.build(s, tail, n))

    assert after.nodes == ()
    np.testing.assert_array_equal(after.const(s), [2, 3, 5])
    np.testing.assert_array_equal(after.const(tail), [3, 5])
    assert after.const(n) == 30 and after.const(n).dtype == np.int64


def test_shape_of_symbolic_value_stays():
    b = GraphBuilder()
    x = b.input("x", ("batch", 3))
    s = b.op("Shape", x, shape=(2,), dtype=I64)
    n = b.op("Size", x, shape=(), dtype=I64)
    before = b.build(s, n)
    assert_structurally_equal(run_pass(fold_constants_pass, before), before)


def test_constant_node_becomes_a_constant():
    b = GraphBuilder()
    x = b.input("x", (2,))
    c = b.op("Constant", shape=(2,), dtype=DType.float32, value=np.array([3, 4], np.float32))
    f = b.op("Constant", shape=(), dtype=DType.float32, value_float=0.5)
    y = b.op("Mul", b.op("Add", x, c, shape=(2,)), f, shape=(2,))
    after = run_pass(fold_constants_pass, b.build(y))

    e = GraphBuilder()
    x = e.input("x", (2,))
    y = e.op("Mul", e.op("Add", x, e.const("c", [3, 4]), shape=(2,)), e.const("f", 0.5),
             shape=(2,))
    assert_structurally_equal(after, e.build(y))


def test_unsqueeze_folds_at_the_graph_opset():
    old = GraphBuilder(opset=9)  # axes is an attribute before opset 13
    y9 = old.op("Unsqueeze", old.const("a", [1, 2]), shape=(2, 1, 1), axes=[1, 2])
    new = GraphBuilder(opset=13)  # and an input from 13 on
    y13 = new.op("Unsqueeze", new.const("a", [1, 2]), new.const("axes", [1, 2], np.int64),
                 shape=(2, 1, 1))
    for b, y in ((old, y9), (new, y13)):
        after = run_pass(fold_constants_pass, b.build(y))
        assert after.const(y).shape == (2, 1, 1)


def test_omitted_optional_input_and_several_outputs():
    b = GraphBuilder(opset=18)
    clipped = b.op("Clip", b.const("a", [-5, 0, 5]), "", b.const("hi", 1.0), shape=(3,))
    lo, hi = b.op_multi("Split", [clipped], [(None, (2,), None), (None, (1,), None)],
                        axis=0, num_outputs=2)
    after = run_pass(fold_constants_pass, b.build(lo, hi))

    np.testing.assert_array_equal(after.const(lo), [-5, 0])
    np.testing.assert_array_equal(after.const(hi), [1])


def test_node_reading_a_runtime_value_stays():
    b = GraphBuilder()
    x = b.input("x", (2,))
    y = b.op("Add", x, b.const("a", [1, 2]), shape=(2,))
    before = b.build(y)
    assert_structurally_equal(run_pass(fold_constants_pass, before), before)


def test_random_ops_are_never_folded():
    b = GraphBuilder()
    b.input("x", (1,))
    y = b.op("RandomNormalLike", b.const("a", [1.0, 2.0]), shape=(2,))
    before = b.build(y)
    assert_structurally_equal(run_pass(fold_constants_pass, before), before)


def test_tinyc_domain_nodes_are_never_folded():
    b = GraphBuilder()
    b.input("x", (1,))
    y = b.op("Mystery", b.const("a", [1.0]), shape=(1,), domain="tinyc")
    before = b.build(y)
    assert_structurally_equal(run_pass(fold_constants_pass, before), before)


def test_op_onnx_cannot_evaluate_stays():
    b = GraphBuilder()
    b.input("x", (1,))
    y = b.op("NoSuchOp", b.const("a", [1.0]), shape=(1,))
    before = b.build(y)
    assert_structurally_equal(run_pass(fold_constants_pass, before), before)


def _small_limit_pass() -> FunctionPass:
    return FunctionPass("fold_constants", functools.partial(fold_constants, max_bytes=64))


def test_large_result_is_not_materialized():
    b = GraphBuilder()
    x = b.input("x", (4, 8))
    big = b.op("Expand", b.const("a", [1.0]), b.const("s", [4, 8], np.int64), shape=(4, 8))
    y = b.op("Add", x, big, shape=(4, 8))
    before = b.build(y)
    assert_structurally_equal(run_pass(_small_limit_pass(), before), before)


def test_large_weight_is_materialized_anyway():
    b = GraphBuilder()
    x = b.input("x", (1, 8, 2, 2))
    w = b.op("ConstantOfShape", b.const("s", [8, 8, 1, 1], np.int64), shape=(8, 8, 1, 1),
             dtype=DType.float32, value=np.array([1.0], np.float32))
    y = b.op("Conv", x, w, shape=(1, 8, 2, 2), kernel_shape=[1, 1])
    after = run_pass(_small_limit_pass(), b.build(y))

    assert [n.op for n in after.nodes] == ["Conv"] and after.is_const(after.nodes[0].inputs[1])


def test_castlike_of_a_constant_folds_whatever_its_runtime_target():
    b = GraphBuilder(opset=25)  # and the importer spells out round_mode, new in 25
    x = b.input("x", (2,), DType.float16)
    c = b.op("CastLike", b.const("a", [1.5, -2.0]), x, shape=(2,), dtype=DType.float16,
             round_mode="up", saturate=1)
    after = run_pass(fold_constants_pass, b.build(b.op("Add", x, c, shape=(2,))))

    e = GraphBuilder(opset=25)
    x = e.input("x", (2,), DType.float16)
    assert_structurally_equal(after, e.build(e.op("Add", x, e.const("c", [1.5, -2.0],
                                                                     np.float16), shape=(2,))))


def test_float_to_int_cast_folds_to_what_the_kernel_computes():
    """onnx's reference would cast out-of-range values as the host CPU does, and
    truncate 3.5 to 3 where int4 rounds it to 4: folding uses docs/casts.md instead."""
    from onnx import TensorProto

    from tinyc.ir.casts import float_to_int

    values = [3.5, 9.0, -9.0, 300.0, 3e9, float("nan"), float("inf")]
    for dtype, to in ((DType.int4, TensorProto.INT4), (DType.int8, TensorProto.INT8),
                      (DType.int32, TensorProto.INT32)):
        b = GraphBuilder(opset=25)
        b.input("x", (1,))
        y = b.op("Cast", b.const("a", values), shape=(7,), dtype=dtype, out="y", to=to)
        after = run_pass(fold_constants_pass, b.build(y))

        want = float_to_int(np.array(values, np.float32), dtype)
        assert after.nodes == ()
        np.testing.assert_array_equal(after.const("y").astype(np.int64), want.astype(np.int64))
