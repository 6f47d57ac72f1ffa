"""Slice, Split, Expand, Tile, DepthToSpace / SpaceToDepth, ConstantOfShape,
EyeLike, Range, CumSum against onnx.reference; shape tensors are runtime inputs
unless marked constant (see op_batch.py)."""

from __future__ import annotations

import numpy as np
from op_batch import Case, check_cases, reference_oracle

from tinyc.ir import DType, Graph, Node, TensorType
from tinyc.testing.lowered_harness import run_graph_nodes


def _x(rng, *shape, dtype=np.float32):
    return (rng.standard_normal(shape) * 10).astype(dtype)


SLICES = [([1, 0], [3, 10], [0, 1], [1, 2]), ([-1], [-100], [1], [-2]),
          ([0, 0, 3], [20, 10, 4], None, None), ([5], [1000], [-1], [1]),
          ([-3, 8], [0, 1], [0, 1], [-1, -3])]


def test_slice_constant_and_runtime_parameters(rng):
    x = _x(rng, 6, 10, 5)
    cases = []
    for starts, ends, axes, steps in SLICES:
        params = [np.array(p, np.int64) for p in (starts, ends, axes, steps) if p is not None]
        const = tuple(range(1, 1 + len(params)))
        cases += [Case("Slice", [x, *params], consts=const), Case("Slice", [x, *params])]
    cases.append(Case("Slice", [_x(rng, 7, 9, dtype=np.int8), np.array([1], np.int32),
                                np.array([-1], np.int32)]))
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_split_expand_tile(rng):
    x = _x(rng, 2, 6, 3)
    cases = [Case("Expand", [_x(rng, 3, 1), np.array(s, np.int64)]) for s in ([2, 3, 4], [3, 1])]
    cases += [Case("Expand", [_x(rng, 1, 4, dtype=np.int64), np.array([3, 1], np.int64)])]
    cases += [Case("Tile", [x, np.array(r, np.int64)]) for r in ([1, 2, 3], [3, 1, 1], [2, 2, 2])]
    cases.append(Case("Tile", [_x(rng, 5, dtype=np.uint8), np.array([4], np.int64)]))
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_split_parts(rng):
    """Several outputs (op_batch's cases have one): the parts must give x back."""
    x = _x(rng, 2, 7, 3)
    node = Node("Split", ("x",), ("a", "b", "c"), {"axis": 1, "num_outputs": 3}, name="split")
    types = {"x": TensorType.of(x), "a": TensorType(DType.float32, (2, 3, 3)),
             "b": TensorType(DType.float32, (2, 3, 3)), "c": TensorType(DType.float32, (2, 1, 3))}
    out = run_graph_nodes(Graph("g", ("x",), ("a", "b", "c"), (node,), types, {}, {"": 18}),
                          {"x": x})
    np.testing.assert_array_equal(np.concatenate([out["a"], out["b"], out["c"]], axis=1), x)


def test_depth_space_rearrangements(rng):
    cases = [Case("DepthToSpace", [_x(rng, 2, 8, 3, 2)], {"blocksize": 2, "mode": m})
             for m in ("DCR", "CRD")]
    cases += [Case("SpaceToDepth", [_x(rng, 2, 3, 4, 6)], {"blocksize": 2})]
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_patterns(rng):
    cases = [Case("ConstantOfShape", [np.array([5], np.int64)]),
             Case("EyeLike", [_x(rng, 4, 6)], {"k": 1}),
             Case("EyeLike", [_x(rng, 5, 3)], {"k": -2, "dtype": 7}),
             Case("Range", [np.array(1, np.int32), np.array(20, np.int32), np.array(3, np.int32)]),
             Case("Range", [np.array(5.0, np.float32), np.array(-1.0, np.float32),
                            np.array(-0.75, np.float32)])]
    check_cases(cases, reference_oracle, rtol=1e-6, atol=1e-6)


def test_cumulative_sums(rng):
    x = _x(rng, 3, 4, 5)
    cases = [Case("CumSum", [x, np.array(a, it)], {"exclusive": e, "reverse": r})
             for a in (0, 1, -1) for e in (0, 1) for r in (0, 1) for it in (np.int64,)]
    cases += [Case("CumSum", [_x(rng, 2, 9, dtype=dt), np.array(1, np.int32)])
              for dt in (np.int32, np.float64, np.int64)]
    check_cases(cases, reference_oracle, rtol=1e-5, atol=1e-5)


def test_shape_and_size_are_the_static_shape(rng):
    x = _x(rng, 2, 3, 4)
    cases = [Case("Shape", [x]), Case("Shape", [x], {"start": 1}, opset=15),
             Case("Shape", [x], {"start": -2, "end": -1}, opset=15), Case("Size", [x])]
    check_cases(cases, reference_oracle, rtol=0, atol=0)
