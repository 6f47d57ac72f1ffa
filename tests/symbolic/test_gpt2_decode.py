"""Issue 11's acceptance model: a GPT-2 from `transformers` (random weights,
4 layers, hidden 256) exported by torch with its KV cache, decoded greedily by
tinyc from one compile, token for token like onnxruntime. Decode speed is
measured by bench/llm_decode.py, not here."""

from __future__ import annotations

import numpy as np
import pytest
from tests_support import need_modules

PROMPT = [11, 400, 27, 3, 999, 5, 77, 12]
STEPS = 128


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", "off")  # count compiles, not cache hits


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_greedy_decode_matches_onnxruntime_from_one_compile(exporter):
    extra = ["onnxscript"] if exporter == "dynamo" else []
    need_modules("torch", "transformers", "onnxruntime", *extra)
    import onnxruntime as ort

    import tinyc
    from tinyc.testing.llm_models import empty_past, gpt2_with_kv_cache, greedy_decode

    path = gpt2_with_kv_cache(layers=4, hidden=256, heads=4, vocab=1000, seed=0,
                              exporter=exporter)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ref = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    sess = tinyc.InferenceSession(path, target="x86")
    want = greedy_decode(ref, PROMPT, STEPS, past=empty_past(path), keep_logits=True)
    got = greedy_decode(sess, PROMPT, STEPS, past=empty_past(path), keep_logits=True)
    assert got.tokens == want.tokens
    worst = max(float(np.abs(a - b).max()) for a, b in zip(got.logits, want.logits, strict=True))
    assert worst < 1e-3, worst
    # the prefill (8 tokens, empty past) compiled the one artifact every
    # decode step (1 token, past 8 .. 134) runs: no compile after the first call
    assert sess.symbolic_fallback is None and sess.compile_count == 1
