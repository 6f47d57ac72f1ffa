"""MaxPool's Indices output against onnxruntime: 1-D to 3-D, both storage
orders, padding, strides, dilations, ceil_mode and ties. All cases are nodes of
one model, compiled once."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import tinyc

ort = pytest.importorskip("onnxruntime")


def _model(cases: list[tuple[tuple[int, ...], dict]]) -> bytes:
    nodes, inputs, outputs = [], [], []
    for k, (shape, attrs) in enumerate(cases):
        nodes.append(helper.make_node("MaxPool", [f"x{k}"], [f"y{k}", f"i{k}"], **attrs))
        inputs.append(helper.make_tensor_value_info(f"x{k}", TensorProto.FLOAT, shape))
        outputs += [helper.make_tensor_value_info(f"y{k}", TensorProto.FLOAT, None),
                    helper.make_tensor_value_info(f"i{k}", TensorProto.INT64, None)]
    graph = helper.make_graph(nodes, "maxpool_indices", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    return model.SerializeToString()


def _check(cases: list[tuple[tuple[int, ...], dict]], feeds: dict[str, np.ndarray]) -> None:
    model = _model(cases)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    want = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = tinyc.InferenceSession(model).run(None, feeds)
    failures = [f"output {k // 2} of case {cases[k // 2]}"
                for k, (g, w) in enumerate(zip(got, want, strict=True))
                if g.shape != w.shape or g.dtype != w.dtype or not np.array_equal(g, w)]
    assert not failures, "differ: " + "; ".join(failures)


_CASES = [
    ((2, 3, 23), dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    ((1, 2, 9, 21), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ((1, 2, 9, 21), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         storage_order=1)),
    ((2, 1, 8, 19), dict(kernel_shape=[2, 3], dilations=[2, 2], pads=[0, 2, 1, 1])),
    ((1, 3, 7, 11), dict(kernel_shape=[3, 2], strides=[2, 3], ceil_mode=1)),
    ((1, 2, 17, 40), dict(kernel_shape=[9, 9], strides=[1, 1], pads=[4, 4, 4, 4])),
    ((1, 2, 5, 6, 19), dict(kernel_shape=[2, 3, 3], strides=[1, 2, 2], pads=[1, 1, 0, 0, 1, 1])),
    ((1, 2, 5, 6, 19), dict(kernel_shape=[2, 2, 3], strides=[2, 1, 2], dilations=[2, 2, 1])),
]


def test_indices_of_random_inputs(rng):
    feeds = {f"x{k}": rng.standard_normal(shape).astype(np.float32)
             for k, (shape, _) in enumerate(_CASES)}
    _check(_CASES, feeds)


def test_ties_go_to_the_first_tap(rng):
    # few distinct values: most windows hold their maximum more than once
    feeds = {f"x{k}": rng.integers(0, 3, shape).astype(np.float32)
             for k, (shape, _) in enumerate(_CASES)}
    _check(_CASES, feeds)


def test_storage_order_1_in_3d(rng):
    cases = [((1, 2, 4, 5, 6), dict(kernel_shape=[2, 2, 2], storage_order=1))]
    _check(cases, {"x0": rng.standard_normal(cases[0][0]).astype(np.float32)})
