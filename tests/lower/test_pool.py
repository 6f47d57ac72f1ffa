"""MaxPool / AveragePool / global pooling against onnxruntime.

onnxruntime is the oracle: onnx.reference mis-sizes stride-1 MaxPool with
padding and shifts ceil_mode windows when stride > 2.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from op_batch import Case, check_cases, ort_oracle

from tinyc.errors import ModelError
from tinyc.ir import DType, Graph, Node, TensorType
from tinyc.lower.pool import lower_pool
from tinyc.lower.pool_windows import axis_windows
from tinyc.program import LowerContext
from tinyc.testing.kernel_harness import host_target

pytest.importorskip("onnxruntime")


def _x(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _pool_cases(rng, op: str) -> list[Case]:
    cases = []
    combos = itertools.product([(3, 3), (2, 2), (3, 2)], [(1, 1), (2, 2), (2, 1), (3, 3)],
                               [(0, 0, 0, 0), (1, 1, 1, 1), (0, 1, 1, 2)], [0, 1])
    for k, (kernel, strides, pads, ceil) in enumerate(combos):
        if any(p >= kk for p, kk in zip(pads, kernel + kernel, strict=True)):
            continue  # ONNX requires pads smaller than the kernel
        attrs = dict(kernel_shape=list(kernel), strides=list(strides), pads=list(pads),
                     ceil_mode=ceil)
        if op == "AveragePool":
            attrs["count_include_pad"] = k % 2
        # 37 wide: interior vectors, a masked tail and scalar borders
        cases.append(Case(op, [_x(rng, 1, 2, 11, 37) if k % 3 else _x(rng, 2, 1, 7, 9)],
                          attrs, opset=19))
    return cases


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_attribute_combinations(rng, op):
    check_cases(_pool_cases(rng, op), ort_oracle, rtol=1e-5, atol=1e-6)


def test_pool_auto_pad_dilations_1d_and_real_layers(rng):
    x = _x(rng, 1, 3, 17, 20)
    cases = [Case(op, [x], dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad=mode), opset=19)
             for op in ("MaxPool", "AveragePool")
             for mode in ("SAME_UPPER", "SAME_LOWER", "VALID")]
    cases += [Case("MaxPool", [x], dict(kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 2, 2, 2]),
                   opset=19),
              Case("MaxPool", [x], dict(kernel_shape=[2, 3], dilations=[1, 2], strides=[2, 2]),
                   opset=19),
              Case("AveragePool", [x],
                   dict(kernel_shape=[3, 3], dilations=[2, 1], pads=[1, 1, 1, 1]), opset=19),
              Case("MaxPool", [_x(rng, 2, 3, 50)], dict(kernel_shape=[3], strides=[2], pads=[1, 1]),
                   opset=13),
              Case("AveragePool", [_x(rng, 2, 3, 50)], dict(kernel_shape=[4], strides=[1]),
                   opset=13),
              # resnet stem and googlenet-style layers
              Case("MaxPool", [_x(rng, 1, 4, 112, 112)],
                   dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), opset=13),
              Case("MaxPool", [_x(rng, 1, 4, 28, 28)],
                   dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]), opset=13),
              Case("AveragePool", [_x(rng, 1, 4, 8, 8)], dict(kernel_shape=[8, 8]), opset=13),
              # more than MAX_UNROLLED_TAPS: taps looped at run time
              Case("AveragePool", [_x(rng, 1, 2, 12, 40)],
                   dict(kernel_shape=[5, 20], pads=[2, 3, 2, 3], count_include_pad=1), opset=13),
              Case("MaxPool", [_x(rng, 1, 2, 12, 40)],
                   dict(kernel_shape=[9, 9], strides=[2, 2], pads=[4, 4, 4, 4]), opset=13),
              Case("MaxPool", [_x(rng, 1, 4, 55, 55)],
                   dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), opset=13)]
    check_cases(cases, ort_oracle, rtol=1e-5, atol=1e-6)


def test_global_pools(rng):
    cases = [Case(op, [_x(rng, *shape)]) for op in ("GlobalAveragePool", "GlobalMaxPool")
             for shape in [(2, 3, 7, 7), (1, 5, 1, 1), (1, 2, 33, 3), (2, 3, 19)]]
    check_cases(cases, ort_oracle, rtol=1e-5, atol=1e-6)


def test_ceil_mode_accepts_the_onnx_shape_inference_extent():
    # onnx shape inference omits "the last window starts inside the input":
    # in 5, k 2, s 2, pad 1 gives 4 (ONNX) or 3 (onnxruntime); both are accepted
    strict = axis_windows(5, 2, 2, 1, (1, 1), "NOTSET", True)
    assert strict.out == 3
    assert axis_windows(5, 2, 2, 1, (1, 1), "NOTSET", True, declared=4).out == 4


def test_maxpool_indices_with_a_bad_storage_order_is_a_model_error():
    f32 = DType.float32
    node = Node("MaxPool", ("x",), ("y", "i"), {"kernel_shape": [2, 2], "storage_order": 2},
                name="mp")
    g = Graph("g", ("x",), ("y",), (node,),
              {"x": TensorType(f32, (1, 1, 4, 4)), "y": TensorType(f32, (1, 1, 3, 3)),
               "i": TensorType(DType.int64, (1, 1, 3, 3))}, {}, {"": 13})
    with pytest.raises(ModelError, match="storage_order"):
        lower_pool(node, LowerContext(g, host_target()))
