from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

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


@pytest.fixture(scope="session")
def tinyc_venv(tmp_path_factory) -> Path:
    """A fresh venv (seeing this interpreter's site packages) with tinyc and its x86
    backend installed from this checkout, editable, without dependencies: the
    scaffold tests install the plugins they generate into it."""
    from tests_support import build_flags, run_checked

    repo = Path(__file__).resolve().parents[1]
    where = tmp_path_factory.mktemp("venv")
    run_checked(sys.executable, "-m", "venv", "--system-site-packages", where)
    run_checked(where / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps",
                *build_flags(), "-e", repo, "-e", repo / "plugins" / "x86")
    return where
