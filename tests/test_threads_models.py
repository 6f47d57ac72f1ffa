"""Whole CNNs on 1 and 2 threads: one artifact serves any thread count, set at
load (TINYC_NUM_THREADS) or later (set_num_threads), with the same output bits.

Bit-for-bit, not within a tolerance: a parallel kernel only splits its outer
loop, each output element is computed by the same code in the same order
whichever thread runs it (see gemm_parallel.py)."""

from __future__ import annotations

import numpy as np
import pytest

import tinyc


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """name -> (loaded model, feeds), compiled once per module."""
    from tinyc.testing.models import light_model, mobilenet_v2

    cache = {}

    def get(name: str):
        if name not in cache:
            proto = mobilenet_v2() if name == "mobilenet_v2" else light_model(name)
            folder = tmp_path_factory.mktemp(name)
            tinyc.compile(proto, target="x86").save(folder)
            model = tinyc.runtime.load(folder)
            inp = model.get_inputs()[0]
            x = np.random.default_rng(5).standard_normal(inp.shape).astype(np.float32)
            cache[name] = (model, folder, {inp.name: x})
        return cache[name]

    return get


@pytest.mark.parametrize("name", ["squeezenet", "mobilenet_v2", "resnet50"])
def test_same_bits_on_one_and_two_threads(loaded, name):
    model, _, feeds = loaded(name)
    model.set_num_threads(1)
    assert model.num_threads == 1
    one = model.run(None, feeds)
    model.set_num_threads(2)
    for _ in range(2):  # twice: the pool's second job reuses awake workers
        two = model.run(None, feeds)
        for a, b in zip(one, two, strict=True):
            np.testing.assert_array_equal(a, b)


def test_thread_count_from_the_environment(loaded, monkeypatch):
    _, folder, feeds = loaded("squeezenet")
    monkeypatch.setenv("TINYC_NUM_THREADS", "1")
    assert tinyc.runtime.load(folder).num_threads == 1
    monkeypatch.setenv("TINYC_NUM_THREADS", "3")
    model = tinyc.runtime.load(folder)
    assert model.num_threads == 3  # more than the kernels' slices: they use what they have
    first = model.run(None, feeds)
    model.set_num_threads(None)  # back to the environment's count
    assert model.num_threads == 3
    np.testing.assert_array_equal(model.run(None, feeds)[0], first[0])


def test_session_option_builds_serial_code(model_zoo):
    """CompileOptions(threads=1): kernels without per-thread scratch or pool calls."""
    sess = tinyc.InferenceSession(model_zoo("squeezenet"), target="x86",
                                  options=tinyc.CompileOptions(threads=1))
    kernels = {k for row in sess.artifact.report for k in row["kernels"]}
    assert any(k.startswith("gemm_f32") for k in kernels)
    assert not any(k.endswith("_t2") for k in kernels)
    threaded = tinyc.InferenceSession(model_zoo("squeezenet"), target="x86",
                                      options=tinyc.CompileOptions(threads=2))
    assert any(k.endswith("_t2") for row in threaded.artifact.report for k in row["kernels"])
