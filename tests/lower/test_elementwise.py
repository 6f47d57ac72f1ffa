"""Elementwise lowerings (unary, broadcasting binary, variadic, BatchNormalization)
against onnx.reference, each family compiled once (see op_batch.py)."""

from __future__ import annotations

import numpy as np
import pytest
from op_batch import Case, check_cases, reference_oracle

from tinyc.ir import DType, Graph, Node, TensorType
from tinyc.lower.elementwise import (
    broadcast_plan,
    lower_broadcasting,
    lower_unary,
)
from tinyc.program import LowerContext
from tinyc.testing.kernel_harness import host_target
from tinyc.testing.lowered_harness import run_graph_nodes


def _f(rng, *shape, scale=3.0):
    return np.asarray(rng.standard_normal(shape) * scale, np.float32)


def test_unary_ops(rng):
    x = _f(rng, 3, 5, 7, 11)  # 1155 elements: full vectors and a masked tail
    positive = np.abs(x) + 0.1
    cases = [Case(op, [x]) for op in ("Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Erf")]
    cases.append(Case("HardSwish", [x], opset=14))
    cases += [Case("Sqrt", [positive]), Case("Reciprocal", [positive]),
              Case("Log", [positive], opset=13),
              Case("LeakyRelu", [x]), Case("LeakyRelu", [x], {"alpha": 0.3}),
              Case("HardSigmoid", [x], {"alpha": 0.3, "beta": 0.4}),
              Case("Relu", [_f(rng, 5)]),  # shorter than a vector
              Case("Exp", [np.zeros((0,), np.float32)])]  # empty
    check_cases(cases, reference_oracle, rtol=2e-6, atol=1e-6)


def test_clip_attribute_and_input_forms(rng):
    x = _f(rng, 4, 33)
    lo, hi = np.array(-1.5, np.float32), np.array(2.0, np.float32)
    cases = [Case("Clip", [x], {"min": -1.0, "max": 1.0}, opset=6),
             Case("Clip", [x], {"min": 0.0}, opset=6),
             Case("Clip", [x], {}, opset=6),
             Case("Clip", [x, lo, hi], consts=(1, 2), opset=11),
             Case("Clip", [x, None, hi], consts=(2,), opset=13),
             Case("Clip", [x, lo], consts=(1,), opset=13),
             Case("Clip", [x], opset=13)]
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_clip_with_runtime_bounds_takes_the_typed_path():
    g = Graph("g", ("x", "lo"), ("y",), (Node("Clip", ("x", "lo"), ("y",), name="clip"),),
              {"x": TensorType(DType.float32, (4,)), "lo": TensorType(DType.float32, ()),
               "y": TensorType(DType.float32, (4,))}, {}, {"": 13})
    lowered = lower_unary(g.nodes[0], LowerContext(g, host_target()))
    assert [c.kernel.name for c in lowered.calls] == ["ew_clip_f32_f32_f32_to_f32_vss"]


BROADCAST_SHAPES = [
    ((2, 3, 4, 5), (2, 3, 4, 5)),  # same shape: one flat loop
    ((2, 3, 4, 5), ()),  # scalar
    ((), (2, 3, 4, 5)),  # scalar first
    ((2, 3, 4, 5), (3, 1, 1)),  # per channel
    ((1, 3, 1, 1), (2, 3, 7, 7)),  # per channel, first operand
    ((2, 3, 4, 5), (5,)),  # trailing row
    ((2, 3, 4, 5), (4, 1)),
    ((3, 1), (1, 4)),  # both broadcast: outer product
    ((2, 1, 4, 1, 3), (1, 5, 1, 6, 1)),  # alternating, rank 5
    ((2, 1, 2, 1, 2, 1), (1, 2, 1, 2, 1, 2)),  # rank 6, every dim alternating
    ((1,), (1,)),
    ((1, 1), (3,)),
    ((40,), (1, 40)),  # rank differs, same data
    ((2, 3, 1, 5), (3, 4, 1)),
]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
def test_binary_broadcasting(rng, op):
    cases = [Case(op, [_f(rng, *a), _f(rng, *b)]) for a, b in BROADCAST_SHAPES]
    cases.append(Case(op, [_f(rng, 2, 3, 4, 5), _f(rng, 3, 1, 1)], consts=(1,)))  # constant operand
    check_cases(cases, reference_oracle, rtol=1e-6, atol=0)


def test_variadic_sum_max_min_mean(rng):
    shapes = [[(2, 3, 4)], [(2, 3, 4), (2, 3, 4), (2, 3, 4)], [(1,), (1,), (3, 1, 4)],
              [(4,), (3, 1), (2, 1, 1), ()]]
    cases = [Case(op, [_f(rng, *s) for s in group], opset=13)
             for op in ("Sum", "Max", "Min", "Mean") for group in shapes]
    # onnx.reference's Sum/Max/Min accumulate in place and fail when a later
    # input widens the shape, so numpy is the oracle here
    folds = {"Sum": np.add, "Max": np.maximum, "Min": np.minimum, "Mean": np.add}

    def oracle(case: Case) -> np.ndarray:
        acc = case.inputs[0]
        for x in case.inputs[1:]:
            acc = folds[case.op](acc, x)
        if case.op == "Mean":
            acc = acc / np.float32(len(case.inputs))
        return np.asarray(acc, np.float32)

    check_cases(cases, oracle, rtol=1e-6, atol=1e-6)


def test_pow_and_prelu(rng):
    base = np.abs(_f(rng, 2, 3, 17)) + 0.1
    signed = _f(rng, 2, 3, 17)
    cases = [Case("Pow", [base, np.array(e, np.float32)], consts=(1,))
             for e in (2.0, 0.5, -1.0, 1.0, 1.7, -0.3)]
    cases += [Case("Pow", [base, _f(rng, 3, 1)]),  # runtime exponent, broadcast
              Case("Pow", [signed, np.array([2.0, 3.0, -1.0], np.float32).reshape(1, 3, 1)]),
              Case("Pow", [base, np.array(2, np.int64)], consts=(1,), opset=15),
              Case("PRelu", [signed, np.abs(_f(rng, 3, 1))], consts=(1,)),
              Case("PRelu", [signed, np.array([0.25], np.float32)])]
    check_cases(cases, reference_oracle, rtol=3e-6, atol=1e-6)


def test_batchnorm_inference(rng):
    cases = []
    for shape, opset in [((2, 5, 7, 9), 9), ((1, 16, 3, 3), 15), ((4, 6), 14), ((2, 3, 11), 9)]:
        c = shape[1]
        params = [rng.uniform(0.5, 2, c), rng.standard_normal(c), rng.standard_normal(c),
                  rng.uniform(0.5, 2, c)]
        cases.append(Case("BatchNormalization", [_f(rng, *shape)]
                          + [p.astype(np.float32) for p in params],
                          {"epsilon": 1e-3}, consts=(1, 2, 3, 4), opset=opset))
    def oracle(case: Case) -> np.ndarray:  # onnx.reference's opset 9 applies momentum
        x, scale, bias, mean, var = case.inputs
        ch = (-1,) + (1,) * (x.ndim - 2)
        y = (x - mean.reshape(ch)) / np.sqrt(var.reshape(ch) + 1e-3) * scale.reshape(ch)
        return (y + bias.reshape(ch)).astype(np.float32)

    check_cases(cases, oracle, rtol=1e-5, atol=1e-5)


def test_training_mode_batchnorm_uses_batch_statistics(rng):
    x = _f(rng, 4, 3, 5)
    s, b = _f(rng, 3), _f(rng, 3)
    m, v = _f(rng, 3), np.abs(_f(rng, 3)) + 0.5
    f32, c = TensorType(DType.float32, (4, 3, 5)), TensorType(DType.float32, (3,))
    node = Node("BatchNormalization", ("x", "s", "b", "m", "v"), ("y", "rm", "rv"),
                {"training_mode": 1, "momentum": 0.8, "epsilon": 1e-3}, name="bn")
    g = Graph("g", ("x", "s", "b", "m", "v"), ("y", "rm", "rv"), (node,),
              {"x": f32, "y": f32, "rm": c, "rv": c, **{n: c for n in "sbmv"}}, {}, {"": 15})
    out = run_graph_nodes(g, {"x": x, "s": s, "b": b, "m": m, "v": v})
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    want = (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-3) * s[:, None] + b[:, None]
    np.testing.assert_allclose(out["y"], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["rm"], m * 0.8 + mean * 0.2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["rv"], v * 0.8 + var * 0.2, rtol=1e-5, atol=1e-6)


def test_broadcast_plans_merge_dims():
    assert broadcast_plan((2, 3, 4, 5), (2, 3, 4, 5), (2, 3, 4, 5)).outer == ()
    per_channel = broadcast_plan((2, 3, 4, 5), (2, 3, 4, 5), (1, 3, 1, 1))
    assert (per_channel.kinds, per_channel.inner) == ("vs", 20)
    assert per_channel.outer == ((2, 60, 0, 60), (3, 20, 1, 20))  # h and w merged
    row = broadcast_plan((2, 3, 4, 5), (2, 3, 4, 5), (5,))
    assert (row.kinds, row.inner, row.outer) == ("vv", 5, ((24, 5, 0, 5),))
    outer = broadcast_plan((3, 4), (3, 1), (1, 4))
    assert (outer.kinds, outer.inner, outer.outer) == ("sv", 4, ((3, 1, 0, 4),))


def test_non_float_binary_takes_the_typed_path():
    i64 = TensorType(DType.int64, (4,))
    g = Graph("g", ("a", "b"), ("y",), (Node("Add", ("a", "b"), ("y",), name="add"),),
              {"a": i64, "b": i64, "y": i64}, {}, {"": 13})
    lowered = lower_broadcasting(g.nodes[0], LowerContext(g, host_target()))
    assert [c.kernel.name for c in lowered.calls] == ["ew_add_i64_i64_to_i64_vv"]


def test_pow_by_three_is_a_cube_bit_for_bit_like_onnxruntime():
    """GELU's tanh form computes x^3: onnxruntime multiplies (x * x) * x, which
    differs from powf in the last bit; tinyc does the same."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from tinyc.compiler import compile_model

    g = helper.make_graph(
        [helper.make_node("Pow", ["x", "e"], ["y"])], "p",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4096])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4096])],
        [numpy_helper.from_array(np.array(3.0, np.float32), "e")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = (np.random.default_rng(0).standard_normal(4096) * 10).astype(np.float32)
    art = compile_model(m)
    assert any("unary_cube" in k for r in art.report for k in r["kernels"])
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        (got,) = art.load(d).run(None, {"x": x})
    (want,) = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})
    np.testing.assert_array_equal(got, want)
