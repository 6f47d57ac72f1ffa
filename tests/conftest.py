from __future__ import annotations

import functools
import os
import tempfile

import numpy as np
import pytest

from tinyc.testing.reference import reference_outputs

# Tests compile for real: never reuse artifacts cached by earlier runs or the user.
os.environ["TINYC_CACHE_DIR"] = tempfile.mkdtemp(prefix="tinyc-test-cache-")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@functools.lru_cache(maxsize=4)
def _cached(name: str):
    from tinyc.testing.models import expose_softmax_input, light_model, mobilenet_v2

    model = mobilenet_v2() if name == "mobilenet_v2" else light_model(name)
    return expose_softmax_input(model)


@pytest.fixture
def model_zoo():
    """model_zoo(name) -> ModelProto with seeded random weights (cached per session)."""
    return _cached


@pytest.fixture
def ort_run():
    """ort_run(model, feeds) -> (outputs, oracle name); single thread onnxruntime."""

    def run(model, feeds, names=None):
        if names is None:
            names = [o.name for o in model.graph.output]
        return reference_outputs(model, feeds, names)[0]

    return run
