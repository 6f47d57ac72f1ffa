"""The Attention kernel with its query rows split across threads and its key
range cut at the causal frontier and the sliding window: big enough for two
workers, against onnx.reference."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import tinyc
from tinyc.compiler import CompileOptions


@pytest.mark.parametrize("attrs", [
    {"is_causal": 1},
    {"is_causal": 1, "q_num_heads": 8, "kv_num_heads": 2},  # 3-D inputs, grouped heads
    {"is_causal": 0, "softcap": 5.0},
])
@pytest.mark.parametrize("past", [0, 24])
def test_attention_split_across_threads_matches_the_reference(attrs, past, rng):
    f = np.float32
    three_d = "q_num_heads" in attrs
    heads, kv_heads, s, d = 8, 8 if not three_d else 2, 48, 64
    if three_d:
        q = rng.standard_normal((1, s, heads * d)).astype(f)
        k = rng.standard_normal((1, s, kv_heads * d)).astype(f)
        v = rng.standard_normal((1, s, kv_heads * d)).astype(f)
    else:
        q, k, v = (rng.standard_normal((1, heads, s, d)).astype(f) for _ in range(3))
    feeds = {"Q": q, "K": k, "V": v}
    names = ["Q", "K", "V"]
    if past:
        feeds["past_key"] = rng.standard_normal((1, kv_heads, past, d)).astype(f)
        feeds["past_value"] = rng.standard_normal((1, kv_heads, past, d)).astype(f)
        names += ["", "past_key", "past_value"]  # no mask
    outputs = ["Y", "present_key", "present_value"] if past else ["Y"]
    node = helper.make_node("Attention", names, outputs, **attrs)
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape)
              for n, a in feeds.items()]
    graph = helper.make_graph([node], "g", inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                               for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    want = ReferenceEvaluator(model).run(None, feeds)
    sess = tinyc.InferenceSession(model.SerializeToString(), target="x86",
                                  options=CompileOptions(threads=2))
    for g, w in zip(sess.run(None, feeds), want, strict=True):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("s,d,attrs", [
    (19, 40, {"is_causal": 1, "left_window_size": 7}),   # a window, a head of 40
    (5, 24, {"is_causal": 1}),                           # fewer keys than a vector
    (70, 16, {"is_causal": 0, "softcap": 3.0}),          # keys past a block of 64
    (1, 64, {"is_causal": 1}),                           # one row: scored directly
    (23, 64, {"is_causal": 1, "left_window_size": 5}),   # blocks of 4 rows and a rest
    (37, 128, {"is_causal": 1, "softcap": 2.0}),         # two register blocks per row
])
def test_transposed_keys_path_matches_the_reference(s, d, attrs, rng):
    """Prefills (q_len x heads per kv head >= 16) score from keys transposed once
    per call (attention_keys.py), rows in blocks of 4 where the value head is a
    multiple of 64; a single row does not."""
    f = np.float32
    heads, kv_heads = 8, 2
    feeds = {"Q": rng.standard_normal((1, heads, s, d)).astype(f),
             "K": rng.standard_normal((1, kv_heads, s, d)).astype(f),
             "V": rng.standard_normal((1, kv_heads, s, d)).astype(f)}
    node = helper.make_node("Attention", ["Q", "K", "V"], ["Y"], **attrs)
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape)
              for n, a in feeds.items()]
    graph = helper.make_graph([node], "g", inputs,
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])
    (want,) = ReferenceEvaluator(model).run(None, feeds)
    sess = tinyc.InferenceSession(model.SerializeToString(), target="x86")
    assert sess.artifact.report[-1]["kernels"][-1].endswith("_kt")
    np.testing.assert_allclose(sess.run(None, feeds)[0], want, rtol=2e-5, atol=2e-5)
