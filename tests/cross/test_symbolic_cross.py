"""Symbolic shapes on cross targets (issue 11): the wasm module exports
tinyc_sizes and tinyc_guards and the wasmtime runtime lays its memory out per
run; Linux targets (aarch64) link an allocating runner that sizes its buffers
per run. One compile serves every batch; Cortex-M stays static and says so."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnxruntime as ort
import pytest

import tinyc
from tinyc.testing.models import mobilenet_v2


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", "off")


def test_a_cnn_with_a_symbolic_batch_runs_on_wasm_from_one_compile():
    if importlib.util.find_spec("wasmtime") is None:
        pytest.skip("wasmtime is not installed (pip install wasmtime)")
    model = mobilenet_v2(batch="N", resolution=32, width=0.35, classes=10)
    sess = tinyc.InferenceSession(model, target="wasm32-simd")
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for n in (1, 2, 9):
        x = np.random.default_rng(n).standard_normal((n, 3, 32, 32)).astype(np.float32)
        (y,) = sess.run(None, {"input": x})
        np.testing.assert_allclose(y, ref.run(None, {"input": x})[0], rtol=1e-4, atol=1e-4)
    assert sess.symbolic_fallback is None and sess.compile_count == 1
    assert "tinyc_sizes" in sess.artifact.meta["run"]["exports"]


def test_a_cnn_with_a_symbolic_batch_runs_on_aarch64_under_qemu_from_one_compile():
    import shutil

    if shutil.which("qemu-aarch64") is None:
        pytest.skip("qemu-aarch64 is not installed (Debian: qemu-user)")
    model = mobilenet_v2(batch="N", resolution=32, width=0.35, classes=10)
    sess = tinyc.InferenceSession(model, target="aarch64")
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for n in (1, 9):
        x = np.random.default_rng(n).standard_normal((n, 3, 32, 32)).astype(np.float32)
        (y,) = sess.run(None, {"input": x})
        np.testing.assert_allclose(y, ref.run(None, {"input": x})[0], rtol=1e-4, atol=1e-4)
    assert sess.symbolic_fallback is None and sess.compile_count == 1
    with pytest.raises(tinyc.InputError, match="'N' is 2 in one input|rank"):
        sess.run(None, {"input": np.zeros((2, 3, 32), np.float32)})


def test_a_cortex_m_target_says_it_compiles_static_shapes_only():
    model = mobilenet_v2(batch="N", resolution=32, width=0.35, classes=10)
    with pytest.raises(tinyc.TinycError, match="compiles static shapes only"):
        tinyc.compile(model, target="cortex-m55")


def test_gpt2_decodes_on_wasm_like_onnxruntime_from_one_compile():
    for needed in ("wasmtime", "torch", "transformers", "onnxscript"):
        if importlib.util.find_spec(needed) is None:
            pytest.skip(f"{needed} is not installed")
    from tinyc.testing.llm_models import empty_past, gpt2_with_kv_cache, greedy_decode

    path = gpt2_with_kv_cache(layers=2, hidden=64, heads=4, vocab=1000, exporter="dynamo")
    sess = tinyc.InferenceSession(path, target="wasm32-simd")
    ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = greedy_decode(sess, [11, 400, 27], 12, past=empty_past(path))
    want = greedy_decode(ref, [11, 400, 27], 12, past=empty_past(path))
    assert got.tokens == want.tokens
    assert sess.symbolic_fallback is None and sess.compile_count == 1
