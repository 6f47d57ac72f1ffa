"""Whole models on 1 and 2 threads: one artifact serves any thread count, set at
load (TINYC_NUM_THREADS) or later (set_num_threads), with the same output bits.

Bit-for-bit, not within a tolerance: a parallel kernel only splits its outer
loop, each output element is computed by the same code in the same order
whichever thread runs it (see gemm_parallel.py)."""

from __future__ import annotations

import numpy as np
import pytest

import tinyc


def _proto(name: str):
    from tinyc.testing.models import light_model, mobilenet_v2
    from tinyc.testing.quant_models import quantized_model
    from tinyc.testing.seq_models import transformer_encoder

    if name.endswith("_int8"):
        return quantized_model(name.removesuffix("_int8"), "qdq")
    if name == "encoder":
        return transformer_encoder()
    return mobilenet_v2() if name == "mobilenet_v2" else light_model(name)


def _feeds(model) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    feeds = {}
    for inp in model.get_inputs():
        if inp.dtype.startswith("int"):  # token ids
            feeds[inp.name] = rng.integers(0, 100, inp.shape).astype(inp.dtype)
        else:
            feeds[inp.name] = rng.standard_normal(inp.shape).astype(inp.dtype)
    return feeds


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """name -> (loaded model, its folder, feeds), compiled once per module."""
    cache = {}

    def get(name: str):
        if name not in cache:
            folder = tmp_path_factory.mktemp(name)
            tinyc.compile(_proto(name), target="x86").save(folder)
            model = tinyc.runtime.load(folder)
            cache[name] = (model, folder, _feeds(model))
        return cache[name]

    return get


# fp32 CNNs; the encoder's attention splits a batch of GEMMs; int8 (QDQ) GEMMs are split too
@pytest.mark.parametrize("name", ["squeezenet", "mobilenet_v2", "resnet50", "encoder",
                                  "mlp_int8", "mobilenet_v2_int8"])
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


def test_session_option_builds_serial_code(model_zoo, tmp_path, monkeypatch):
    """CompileOptions(threads=1): kernels without per-thread scratch or pool calls.
    Its own cache folder: a session that loads from the cache has no artifact to read."""
    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path / "cache"))
    sess = tinyc.InferenceSession(model_zoo("squeezenet"), target="x86",
                                  options=tinyc.CompileOptions(threads=1))
    kernels = {k for row in sess.artifact.report for k in row["kernels"]}
    assert any(k.startswith("gemm_f32") for k in kernels)
    assert not any(k.endswith("_t2") for k in kernels)
    threaded = tinyc.InferenceSession(model_zoo("squeezenet"), target="x86",
                                      options=tinyc.CompileOptions(threads=2))
    assert any(k.endswith("_t2") for row in threaded.artifact.report for k in row["kernels"])


def test_a_dropped_model_leaves_no_worker_threads(loaded):
    """Each loaded model has its own pool; collecting the model ends its workers
    (a process loading one model after another kept a thread per model)."""
    import gc
    import os

    _, folder, feeds = loaded("mlp_int8")
    before = len(os.listdir("/proc/self/task"))
    for _ in range(3):
        model = tinyc.runtime.load(folder)
        model.set_num_threads(2)
        model.run(None, feeds)
        assert len(os.listdir("/proc/self/task")) == before + 1  # its one worker
        del model
        gc.collect()
    assert len(os.listdir("/proc/self/task")) == before
