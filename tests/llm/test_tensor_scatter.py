"""ONNX TensorScatter (opset 24, the KV-cache write) against onnxruntime; the
bounds checks of its run-time write indices are in tests/lower/test_indexing_bounds.py."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from tests_support import need_modules

import tinyc

rng = np.random.default_rng(3)


@pytest.fixture(autouse=True)
def _ort():
    need_modules("onnxruntime")


def _case(c: int, cache: tuple, update: tuple, attrs: dict, widx: np.ndarray | None):
    names = [f"c{c}_cache", f"c{c}_update"] + ([f"c{c}_widx"] if widx is not None else [])
    feeds = {names[0]: rng.standard_normal(cache).astype(np.float32),
             names[1]: rng.standard_normal(update).astype(np.float32)}
    ins = [helper.make_tensor_value_info(names[0], TensorProto.FLOAT, cache),
           helper.make_tensor_value_info(names[1], TensorProto.FLOAT, update)]
    if widx is not None:
        feeds[names[2]] = widx
        ins.append(helper.make_tensor_value_info(names[2], TensorProto.INT64, widx.shape))
    node = helper.make_node("TensorScatter", names, [f"c{c}_y"], **attrs)
    return node, ins, feeds


def test_tensor_scatter_matches_onnxruntime():
    import onnxruntime as ort

    cases = [((2, 3, 8, 4), (2, 3, 2, 4), {}, np.array([0, 6])),  # axis -2, the default
             ((2, 3, 8, 4), (2, 3, 3, 4), {"mode": "circular"}, np.array([6, 7])),
             ((2, 6, 5), (2, 1, 5), {"axis": 1}, np.array([5, 2])),
             ((3, 4, 2), (3, 2, 2), {"axis": 1, "mode": "circular"}, np.array([3, 0, 1])),
             ((2, 5, 4), (2, 2, 4), {"axis": 1}, None)]  # no indices: write at 0
    nodes, ins, feeds = [], [], {}
    for c, (cache, update, attrs, widx) in enumerate(cases):
        node, case_ins, case_feeds = _case(c, cache, update, attrs, widx)
        nodes.append(node)
        ins += case_ins
        feeds |= case_feeds
    outs = [helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, None) for n in nodes]
    proto = helper.make_model(helper.make_graph(nodes, "g", ins, outs),
                              opset_imports=[helper.make_opsetid("", 24)])
    proto.ir_version = 10
    data = proto.SerializeToString()
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = tinyc.InferenceSession(data, target="x86").run(None, feeds)
    for k, (w, g) in enumerate(zip(want, got, strict=True)):
        np.testing.assert_array_equal(g, w, err_msg=f"case {k}")
