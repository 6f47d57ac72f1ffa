"""3-D MaxPool / AveragePool and LpPool (1-D to 3-D) against onnxruntime, and
the errors malformed pooling attributes give."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from op_batch import Case, check_cases, ort_oracle

from tinyc.errors import ModelError, NotLowerable
from tinyc.ir import DType, Graph, Node, TensorType
from tinyc.lower.pool import lower_pool
from tinyc.program import LowerContext
from tinyc.testing.kernel_harness import host_target

pytest.importorskip("onnxruntime")


def _x(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _pool3d_cases(rng, op: str) -> list[Case]:
    cases = []
    combos = itertools.product([(2, 2, 2), (3, 2, 3)], [(1, 1, 1), (2, 1, 2)],
                               [(1, 1, 1), (2, 1, 2)], [(0,) * 6, (1, 0, 1, 1, 1, 0)], [0, 1])
    for k, (kernel, strides, dilations, pads, ceil) in enumerate(combos):
        attrs = dict(kernel_shape=list(kernel), strides=list(strides), pads=list(pads),
                     dilations=list(dilations), ceil_mode=ceil)
        if op == "AveragePool":
            attrs["count_include_pad"] = k % 2
        # 21 wide: a full vector, a masked tail and borders
        cases.append(Case(op, [_x(rng, 1, 2, 5, 6, 21) if k % 2 else _x(rng, 2, 1, 6, 7, 9)],
                          attrs, opset=19))
    return cases


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool3d_attribute_combinations(rng, op):
    check_cases(_pool3d_cases(rng, op), ort_oracle, rtol=1e-5, atol=1e-6)


def test_pool3d_auto_pad_and_large_windows(rng):
    x = _x(rng, 1, 3, 6, 7, 19)
    cases = [Case(op, [x], dict(kernel_shape=[3, 2, 3], strides=[2, 2, 2], auto_pad=mode),
                  opset=19)
             for op in ("MaxPool", "AveragePool") for mode in ("SAME_UPPER", "SAME_LOWER")]
    # more than MAX_UNROLLED_TAPS: taps looped at run time, strided along x
    cases += [Case(op, [x], dict(kernel_shape=[3, 4, 6], strides=[1, 2, 3], pads=[1, 2, 2] * 2,
                                 count_include_pad=1) if op == "AveragePool" else
                   dict(kernel_shape=[3, 4, 6], strides=[1, 2, 3], pads=[1, 2, 2] * 2,
                        dilations=[2, 1, 1]), opset=19)
              for op in ("MaxPool", "AveragePool")]
    check_cases(cases, ort_oracle, rtol=1e-5, atol=1e-6)


def test_lppool_orders_and_ranks(rng):
    cases = []
    shapes = {1: (2, 3, 30), 2: (1, 2, 9, 21), 3: (1, 2, 5, 6, 11)}
    for (rank, shape), p in itertools.product(shapes.items(), [1, 2, 3, 5]):
        kernel, strides = [3, 2, 3][:rank], [2, 1, 2][:rank]
        pads = ([1, 0, 1] * 2)[:rank] * 2
        cases.append(Case("LpPool", [_x(rng, *shape)],
                          dict(kernel_shape=kernel, strides=strides, pads=pads, p=p), opset=18))
    cases.append(Case("LpPool", [_x(rng, 1, 2, 9, 12)],
                      dict(kernel_shape=[9, 9], p=3, auto_pad="SAME_UPPER"), opset=18))
    # the p-th root of 0 (an all-zero window) is 0, not NaN; powers past f32 are inf
    big = np.zeros((1, 1, 4, 20), np.float32)
    big[0, 0, 3, 10:] = 1e30
    cases += [Case("LpPool", [big], dict(kernel_shape=[2, 2], p=p), opset=18) for p in (3, 5)]
    check_cases(cases, ort_oracle, rtol=1e-5, atol=1e-5)


def _lower(attrs: dict, x_shape, y_shape, op: str = "MaxPool", outputs=("y",)):
    f32 = DType.float32
    node = Node(op, ("x",), outputs, attrs, name="pool")
    types = {"x": TensorType(f32, x_shape), "y": TensorType(f32, y_shape),
             "i": TensorType(DType.int64, y_shape)}
    g = Graph("g", ("x",), outputs[:1], (node,), types, {}, {"": 19})
    return lower_pool(node, LowerContext(g, host_target()))


@pytest.mark.parametrize("attrs, match", [
    (dict(kernel_shape=[2, 2]), "kernel_shape .* 3 spatial axes"),
    (dict(kernel_shape=[2, 2, 2], strides=[1, 1]), "strides"),
    (dict(kernel_shape=[2, 2, 2], pads=[0, 0, 0]), "pads"),
    (dict(kernel_shape=[2, 0, 2]), "below 1"),
    (dict(kernel_shape=[2, 2, 2], dilations=[1, -1, 1]), "below 1"),
    (dict(kernel_shape=[2, 2, 2], pads=[0, 0, -1, 0, 0, 0]), "below 0"),
    (dict(strides=[1, 1, 1]), "no kernel_shape"),
    (dict(kernel_shape=[2, 2, 2], auto_pad="SAME"), "auto_pad"),
])
def test_malformed_attributes_are_model_errors(attrs, match):
    with pytest.raises(ModelError, match=match):
        _lower(attrs, (1, 1, 4, 4, 4), (1, 1, 3, 3, 3))


def test_lppool_with_a_non_integer_order_is_not_lowerable():
    with pytest.raises(NotLowerable, match="p="):
        _lower(dict(kernel_shape=[2, 2], p=0), (1, 1, 4, 4), (1, 1, 3, 3), op="LpPool")
