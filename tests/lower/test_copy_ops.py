"""Concat, Transpose and Pad (every mode, pads as attribute or input) against
onnx.reference, for several element types."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from op_batch import Case, check_cases, ort_oracle, reference_oracle

from tinyc.lower.misc import pad_index_map, transpose_plan


def _x(rng, *shape, dtype=np.float32):
    return (rng.standard_normal(shape) * 10).astype(dtype)


def test_concat_axes_and_dtypes(rng):
    cases = [Case("Concat", [_x(rng, 2, 3, 4, 5) for _ in range(3)], {"axis": a})
             for a in (0, 1, 2, 3, -1, -4)]
    cases += [Case("Concat", [_x(rng, 2, 3, 4, 5), _x(rng, 2, 1, 4, 5), _x(rng, 2, 7, 4, 5)],
                   {"axis": 1}),
              Case("Concat", [_x(rng, 2, 3, 4, 5), _x(rng, 2, 3, 4, 5)], {"axis": 1}, consts=(1,)),
              Case("Concat", [_x(rng, 2, 0, 3), _x(rng, 2, 5, 3)], {"axis": 1}),  # an empty part
              Case("Concat", [_x(rng, 5)], {"axis": 0}),
              Case("Concat", [_x(rng, 2, 3, dtype=np.int64), _x(rng, 2, 2, dtype=np.int64)],
                   {"axis": 1}),
              Case("Concat", [_x(rng, 3, 70, dtype=np.uint8), _x(rng, 3, 100, dtype=np.uint8)],
                   {"axis": 1}),
              Case("Concat", [_x(rng, 2, 9, dtype=np.float16), _x(rng, 1, 9, dtype=np.float16)],
                   {"axis": 0})]
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_transpose_every_4d_perm_and_dtypes(rng):
    x = _x(rng, 2, 3, 4, 5)
    cases = [Case("Transpose", [x], {"perm": list(p)}) for p in itertools.permutations(range(4))]
    cases += [Case("Transpose", [_x(rng, 3, 40)]),  # default: reversed
              Case("Transpose", [_x(rng, 2, 16, 49)], {"perm": [0, 2, 1]}),  # NCHW -> NHWC
              Case("Transpose", [_x(rng, 37, 70)], {"perm": [1, 0]}),  # whole and edge tiles
              Case("Transpose", [_x(rng, 3, 40, 33, dtype=np.uint8)], {"perm": [0, 2, 1]}),
              Case("Transpose", [_x(rng, 2, 20, 17, dtype=np.int64)], {"perm": [0, 2, 1]}),
              Case("Transpose", [_x(rng, 2, 3, 1, 5, 1, 2)], {"perm": [5, 4, 3, 2, 1, 0]}),
              Case("Transpose", [_x(rng, 1, 2, 4, 3, 3)], {"perm": [0, 2, 1, 3, 4]}),  # shuffle
              Case("Transpose", [_x(rng, 3, 4, 5, dtype=np.int64)], {"perm": [2, 0, 1]}),
              Case("Transpose", [_x(rng, 3, 4, 5, 7, dtype=np.uint8)], {"perm": [0, 3, 1, 2]}),
              Case("Transpose", [_x(rng, 3, 4, 5, 7, dtype=np.float16)], {"perm": [0, 2, 3, 1]})]
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_transpose_plan_merges_adjacent_dims():
    # channel shuffle: [N, g, C/g, H, W] -> [N, C/g, g, H, W]; H*W stays contiguous
    assert transpose_plan((1, 2, 4, 3, 3), (0, 2, 1, 3, 4)) == [(4, 9, 18), (2, 36, 9), (9, 1, 1)]
    # NCHW -> NHWC: a batched 2-D transpose whose inner dim is strided
    assert transpose_plan((2, 16, 7, 7), (0, 2, 3, 1)) == [(2, 784, 784), (49, 1, 16), (16, 49, 1)]
    assert transpose_plan((2, 3), (0, 1)) == [(6, 1, 1)]


PAD_WIDTHS = [[0, 0, 1, 1, 0, 0, 1, 1], [0, 1, 2, 3, 0, 0, 1, 2], [0, 0, 0, 3, 0, 0, 0, 3],
              [1, 0, 0, 0, 0, 2, 0, 0], [0, 0, 3, 4, 0, 0, 3, 4]]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_modes(rng, mode):
    value = np.array(1.5, np.float32)
    opset = 19 if mode == "wrap" else 13
    cases = [Case("Pad", [_x(rng, 2, 3, 5, 6), np.array(p, np.int64), value], {"mode": mode},
                  consts=(1, 2), opset=opset) for p in PAD_WIDTHS]
    cases.append(Case("Pad", [_x(rng, 1, 2, 40, 70), np.array([0, 0, 3, 3, 0, 0, 3, 3], np.int64)],
                      {"mode": mode}, consts=(1,), opset=opset))
    if mode != "wrap":  # opset 2: pads and value as attributes
        cases.append(Case("Pad", [_x(rng, 2, 3, 4, 5)],
                          dict(mode=mode, pads=[0, 0, 1, 2, 0, 0, 2, 1], value=-2.0), opset=2))
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_pad_negative_axes_and_dtypes(rng):
    cases = [Case("Pad", [_x(rng, 2, 3, 4, 5), np.array([0, 0, -1, 2, 0, 0, 1, -2], np.int64)],
                  consts=(1,)),  # cropping
             Case("Pad", [_x(rng, 2, 3, 4, 5), np.array([1, 3, 2, 0], np.int64),
                          np.array(1.5, np.float32), np.array([1, 3], np.int64)],
                  consts=(1, 2, 3), opset=18),
             Case("Pad", [_x(rng, 3, 4, 5, dtype=np.int64), np.array([0, 1, 2, 0, 1, 2], np.int64),
                          np.array(7, np.int64)], consts=(1, 2)),
             Case("Pad", [_x(rng, 3, 4, 5, dtype=np.uint8), np.array([1, 1, 1, 1, 1, 1], np.int64),
                          np.array(9, np.uint8)], consts=(1, 2)),
             Case("Pad", [_x(rng, 7), np.array([2, 3], np.int64)], {"mode": "reflect"},
                  consts=(1,))]
    check_cases(cases, ort_oracle, rtol=0, atol=0)


def test_pad_index_maps():
    assert list(pad_index_map(4, 2, 8, "constant")) == [-1, -1, 0, 1, 2, 3, -1, -1]
    assert list(pad_index_map(4, 2, 8, "edge")) == [0, 0, 0, 1, 2, 3, 3, 3]
    assert list(pad_index_map(4, 2, 8, "reflect")) == [2, 1, 0, 1, 2, 3, 2, 1]
    assert list(pad_index_map(4, 2, 8, "wrap")) == [2, 3, 0, 1, 2, 3, 0, 1]
    assert list(pad_index_map(4, -1, 2, "constant")) == [1, 2]
