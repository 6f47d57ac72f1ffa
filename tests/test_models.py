"""The acceptance models: real CNN architectures with seeded random weights,
compiled by tinyc and compared with onnxruntime within 1e-3 of the output range."""

from __future__ import annotations

import numpy as np
import pytest

import tinyc
from tinyc.testing.compare import assert_close_to_range

MODELS = ["squeezenet", "resnet50", "inception_v1", "densenet121", "shufflenet", "vgg19",
          "mobilenet_v2"]


@pytest.mark.parametrize("name", MODELS)
def test_model_matches_onnxruntime(name, model_zoo, ort_run):
    model = model_zoo(name)
    sess = tinyc.InferenceSession(model, target="x86")
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(7).standard_normal(inp.shape).astype(np.float32)
    got = sess.run(None, {inp.name: x})
    want = ort_run(model, {inp.name: x})
    assert len(got) == len(want)
    for out, g, w in zip(sess.get_outputs(), got, want, strict=True):
        assert_close_to_range(g, w, 1e-3, f"{name}:{out.name}")
