"""Reductions (vector fast paths and the general runtime-axes kernel), ArgMax /
ArgMin and TopK against onnx.reference (see op_batch.py)."""

from __future__ import annotations

import numpy as np
import pytest
from op_batch import Case, check_cases, reference_oracle

from tinyc.codegen.kernels.ops.reduce_fast import contiguous_form
from tinyc.ir import DType, Graph, Node, TensorType
from tinyc.lower.reduce import lower_reduce
from tinyc.program import LowerContext
from tinyc.testing.kernel_harness import host_target
from tinyc.testing.lowered_harness import run_graph_nodes

OPS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
       "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp")


def _positive(rng, *shape, dtype=np.float32):
    return (rng.random(shape) + 0.5).astype(dtype)


@pytest.mark.parametrize("axes", [[1], [2, 3], [3], [0, 1, 2, 3], [1, 3], [-1, 0]],
                         ids=lambda a: str(a))
def test_every_reduction_over_constant_axes(rng, axes):
    """[1], [2, 3], [3], all: contiguous (vector kernels); [1, 3], [-1, 0]: general."""
    x = _positive(rng, 2, 3, 5, 37)
    cases = [Case(op, [x, np.array(axes, np.int64)], {"keepdims": k}, consts=(1,), opset=18)
             for op in OPS for k in (0, 1)]
    check_cases(cases, reference_oracle, rtol=2e-5, atol=1e-6)


def test_runtime_axes_and_noop(rng):
    x = _positive(rng, 3, 4, 5)
    cases = [Case(op, [x, np.array(axes, np.int64)], {"keepdims": 1}, opset=18)
             for op in OPS for axes in ([1], [-1], [0, 2])]
    cases.append(Case("ReduceSum", [x, np.array([], np.int64)], {"noop_with_empty_axes": 1},
                      opset=18))
    cases.append(Case("ReduceMean", [x], {"keepdims": 0}, opset=18))  # no axes: all
    check_cases(cases, reference_oracle, rtol=2e-5, atol=1e-6)


def test_integer_bool_and_half_reductions(rng):
    ints = rng.integers(-9, 9, (4, 6, 5))
    cases = []
    for dt in (np.int32, np.int64, np.int8, np.uint8):
        x = np.abs(ints).astype(dt) if np.issubdtype(dt, np.unsignedinteger) else ints.astype(dt)
        cases += [Case(op, [x, np.array([1], np.int64)], {"keepdims": 0}, consts=(1,), opset=18)
                  for op in ("ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1")]
    flags = rng.random((4, 6)) < 0.3
    cases += [Case(op, [flags, np.array([1], np.int64)], consts=(1,), opset=20)
              for op in ("ReduceMax", "ReduceMin")]
    half = _positive(rng, 4, 33, dtype=np.float16)
    cases += [Case(op, [half, np.array([1], np.int64)], consts=(1,), opset=18)
              for op in ("ReduceSum", "ReduceMean", "ReduceL2", "ReduceLogSumExp")]
    check_cases(cases, reference_oracle, rtol=2e-3, atol=1e-5)


def test_empty_reductions_give_the_identity():
    x = np.zeros((2, 0, 4), np.float32)
    cases = [Case(op, [x, np.array([1], np.int64)], consts=(1,), opset=18)
             for op in ("ReduceSum", "ReduceProd", "ReduceMax", "ReduceMin", "ReduceLogSumExp")]
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_contiguous_form_ignores_unit_dims():
    assert contiguous_form((2, 3, 5, 7), [1, 2]) == (2, 15, 7)
    assert contiguous_form((2, 1, 5, 7), [2, 3]) == (2, 35, 1)
    assert contiguous_form((2, 3, 1, 7), [1, 3]) == (2, 21, 1)  # adjacent once the 1 is gone
    assert contiguous_form((2, 3, 5, 7), [1, 3]) is None
    assert contiguous_form((2, 3), [0, 1]) == (1, 6, 1)


def test_wrongly_typed_output_is_not_lowerable():
    """A runtime-axes output whose type could not have been inferred is refused."""
    f32 = DType.float32
    node = Node("ReduceSum", ("x", "axes"), ("y",), {"keepdims": 1}, name="r")
    g = Graph("g", ("x", "axes"), ("y",), (node,),
              {"x": TensorType(f32, (3, 4)), "axes": TensorType(DType.int64, (1,)),
               "y": TensorType(f32, ())}, {}, {"": 18})
    from tinyc.errors import NotLowerable

    with pytest.raises(NotLowerable, match="depends on the values of runtime axes"):
        lower_reduce(node, LowerContext(g, host_target()))


def test_arg_reductions(rng):
    x = rng.integers(0, 4, (3, 7, 5)).astype(np.float32)  # many ties
    cases = [Case(op, [x.astype(dt)], {"axis": a, "keepdims": k, "select_last_index": last})
             for op in ("ArgMax", "ArgMin") for a in (0, 1, -1) for k in (0, 1)
             for last in (0, 1) for dt in (np.float32,)]
    cases += [Case("ArgMax", [x.astype(dt)], {"axis": 1}) for dt in (np.int32, np.uint8,
                                                                     np.float16)]
    check_cases(cases, reference_oracle, rtol=0, atol=0)


@pytest.mark.parametrize("largest", [1, 0])
def test_topk_sorts_and_breaks_ties_by_index(rng, largest):
    x = rng.integers(0, 5, (3, 11, 4)).astype(np.float32)
    k = 4
    node = Node("TopK", ("x", "k"), ("v", "i"), {"axis": 1, "largest": largest, "sorted": 1},
                name="topk")
    types = {"x": TensorType.of(x), "k": TensorType(DType.int64, (1,)),
             "v": TensorType(DType.float32, (3, k, 4)), "i": TensorType(DType.int64, (3, k, 4))}
    g = Graph("g", ("x", "k"), ("v", "i"), (node,), types, {}, {"": 11})
    out = run_graph_nodes(g, {"x": x, "k": np.array([k], np.int64)})
    order = np.argsort(-x if largest else x, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(out["i"], order)
    np.testing.assert_array_equal(out["v"], np.take_along_axis(x, order, axis=1))
