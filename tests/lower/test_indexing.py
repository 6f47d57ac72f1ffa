"""Gather / Scatter families, OneHot, Trilu and ReverseSequence against
onnx.reference, indices as runtime inputs (see op_batch.py)."""

from __future__ import annotations

import numpy as np
from op_batch import Case, check_cases, reference_oracle


def _x(rng, *shape, dtype=np.float32):
    return (rng.standard_normal(shape) * 10).astype(dtype)


def test_gather_every_axis_dtype_and_index_type(rng):
    x = _x(rng, 4, 5, 6)
    cases = [Case("Gather", [x, np.array(idx, it)], {"axis": a})
             for a in (0, 1, 2, -1) for it in (np.int64, np.int32)
             for idx in ([0, 3, -1], [[1, 1], [2, -2]])]
    cases += [Case("Gather", [_x(rng, 7, 9, dtype=dt), np.array([6, 0, -3], np.int64)])
              for dt in (np.int8, np.float16, np.int64, np.bool_)]
    cases.append(Case("Gather", [x, np.array(2, np.int64)], {"axis": 1}))  # scalar index
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_gather_elements_and_nd(rng):
    x = _x(rng, 3, 4, 5)
    idx = rng.integers(-4, 4, (3, 2, 5)).astype(np.int64)
    cases = [Case("GatherElements", [x, idx], {"axis": 1}),
             Case("GatherElements", [x, rng.integers(0, 3, (2, 4, 5)).astype(np.int32)],
                  {"axis": 0}),
             Case("GatherND", [x, np.array([[0, 1], [2, -1]], np.int64)]),
             Case("GatherND", [x, np.array([[[1]], [[0]]], np.int64)]),
             Case("GatherND", [x, np.array([[1, 2], [0, 3], [3, 3]], np.int64)],
                  {"batch_dims": 1}),
             Case("GatherND", [_x(rng, 2, 3, dtype=np.int32), np.array([[1, 2]], np.int64)])]
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_scatters_apply_updates_in_order(rng):
    x = _x(rng, 4, 5)
    cases = [Case("ScatterElements", [x, np.array([[1, 1, -1], [0, 3, 2]], np.int64),
                                      _x(rng, 2, 3)], {"axis": a, "reduction": r}, opset=18)
             for a in (0, 1) for r in ("none", "add", "mul", "max", "min")]
    cases += [Case("ScatterND", [_x(rng, 4, 3, 2), np.array([[1], [-1], [1]], np.int64),
                                 _x(rng, 3, 3, 2)], {"reduction": r}, opset=18)
              for r in ("none", "add", "mul", "max", "min")]
    cases += [Case("ScatterND", [_x(rng, 4, 3, dtype=np.int32), np.array([[0, 2], [3, 1]],
                                                                          np.int64),
                                 np.array([7, 8], np.int32)])]
    check_cases(cases, reference_oracle, rtol=1e-6, atol=1e-6)


def test_one_hot_trilu_reverse_sequence(rng):
    cases = [Case("OneHot", [np.array([[1, -1], [9, 3]], np.int64), np.array(5, np.int64),
                             np.array([0, 2], np.int32)], {"axis": a}) for a in (0, 1, -1)]
    cases.append(Case("OneHot", [np.array([1.0, -2.0], np.float32), np.array(3, np.float32),
                                 np.array([-1.0, 1.0], np.float32)]))
    m = _x(rng, 2, 5, 7)
    cases += [Case("Trilu", [m, np.array(k, np.int64)], {"upper": u}, opset=14)
              for u in (0, 1) for k in (-6, -1, 0, 2, 9)]
    cases.append(Case("Trilu", [_x(rng, 4, 3, dtype=np.int64)], opset=14))
    lens = np.array([4, 1, 3, 0], np.int64)
    cases += [Case("ReverseSequence", [_x(rng, 4, 4, 3), lens], {"time_axis": 0,
                                                                 "batch_axis": 1}),
              Case("ReverseSequence", [_x(rng, 4, 5), lens], {"time_axis": 1, "batch_axis": 0})]
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_grid_sample_modes_and_padding(rng):
    x = _x(rng, 2, 3, 5, 6)
    grid = rng.uniform(-1.4, 1.4, (2, 4, 7, 2)).astype(np.float32)  # some points outside
    cases = [Case("GridSample", [x, grid], {"mode": m, "padding_mode": p, "align_corners": a},
                  opset=20)
             for m in ("nearest", "linear", "cubic") for p in ("zeros", "border", "reflection")
             for a in (0, 1)]
    volume = _x(rng, 1, 2, 3, 4, 5)
    grid3 = rng.uniform(-1.2, 1.2, (1, 2, 3, 4, 3)).astype(np.float32)
    cases += [Case("GridSample", [volume, grid3], {"mode": m}, opset=20)
              for m in ("nearest", "linear")]
    check_cases(cases, reference_oracle, rtol=1e-5, atol=1e-5)
