"""Issue 12: "the same Hugging Face model exported through optimum also runs,
matching onnxruntime". A transformers LlamaForCausalLM (random weights, GQA
8/2 heads, 2 layers, hidden 256) exported by `optimum-cli export onnx --task
text-generation-with-past` (tinyc.testing.optimum_models: optimum-onnx needs
transformers < 4.58, so it runs in a side venv made once), decoded greedily by
tinyc from one compile: onnxruntime's tokens on the same file (16 tokens after
32; `pytest -m llm_full`: 64 on 8 layers, hidden 1024), the logits within
1e-3 of their range; `tinyc generate` streams the folder's text.

Without a package index the venv cannot be made and these tests skip, saying so.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from tests_support import need_modules

PROMPT = [int(t) for t in np.random.default_rng(0).integers(3, 900, 32)]
# std 0.1, not transformers' 0.02: with tiny weights the logits are nearly flat and
# greedy decoding repeats one or two tokens, a weak check of the attention
INIT_STD = 0.1
STEPS = 16


def _optimum_folder(**size) -> str:
    need_modules("torch", "transformers", "tokenizers", "onnxruntime")
    from tinyc.testing.optimum_models import OptimumUnavailable, llama_optimum

    try:
        return llama_optimum(init_std=INIT_STD, **size)
    except OptimumUnavailable as e:
        pytest.skip(f"optimum's exporter is unavailable: {e}")


def _onnxruntime_decode(path: str, steps: int):
    """onnxruntime's greedy decode of the export, one thread (its logits kept)."""
    import onnxruntime as ort

    from tinyc.testing.optimum_models import optimum_greedy_decode

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ref = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return optimum_greedy_decode(ref, path, PROMPT, steps)


def _decodes_like_onnxruntime(path: str, want, steps: int) -> None:
    import tinyc
    from tinyc.testing.optimum_models import optimum_greedy_decode

    sess = tinyc.InferenceSession(path, target="x86")
    got = optimum_greedy_decode(sess, path, PROMPT, steps)
    assert len(set(want.tokens)) > steps // 2  # a decode that attends, not one token
    assert got.tokens == want.tokens
    # within 1e-3 of the logits' range, the bound of the other exporters' tests:
    # the same float32 arithmetic summed in other orders (tinyc's GEMM panels and
    # attention kernel, onnxruntime's MLAS) differs by ~1e-6 of it here
    worst = max(float(np.abs(a - b).max()) / float(b.max() - b.min())
                for a, b in zip(got.logits, want.logits, strict=True))
    print(f"max |tinyc - onnxruntime| over {steps} steps: {worst:.2e} of the logits' range")
    assert worst <= 1e-3
    # the 32-token prefill compiled the one artifact every decode step runs
    assert sess.symbolic_fallback is None and sess.compile_count == 1


@pytest.fixture(scope="module")
def folder() -> str:
    return _optimum_folder()


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory) -> str:
    """One fresh disk cache: the decode test compiles into it, the CLI reads it."""
    return str(tmp_path_factory.mktemp("optimum_cache"))


@pytest.fixture(scope="module")
def reference(folder):
    return _onnxruntime_decode(os.path.join(folder, "model.onnx"), STEPS)


def test_the_export_has_optimums_io(folder):
    from tinyc.testing.optimum_models import optimum_decoder_io

    io = optimum_decoder_io(os.path.join(folder, "model.onnx"))
    assert (io.input_ids, io.attention_mask, io.position_ids) == (
        "input_ids", "attention_mask", "position_ids")
    assert [(c.past, c.present) for c in io.cache[:2]] == [
        ("past_key_values.0.key", "present.0.key"), ("past_key_values.0.value", "present.0.value")]
    assert len(io.cache) == 4 and io.cache[0].dims == ("batch_size", 2, "past_sequence_length", 32)


def test_optimum_llama_decodes_like_onnxruntime(folder, reference, compile_cache,
                                                monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", compile_cache)  # empty: this compiles
    _decodes_like_onnxruntime(os.path.join(folder, "model.onnx"), reference, STEPS)


@pytest.mark.llm_full
def test_bigger_optimum_llama_decodes_64_tokens_like_onnxruntime(monkeypatch):
    """Issue 12's size: 8 layers, hidden 1024, GQA 16/4."""
    monkeypatch.setenv("TINYC_CACHE_DIR", "off")  # count compiles, not cache hits
    path = os.path.join(_optimum_folder(layers=8, hidden=1024, heads=16, kv_heads=4,
                                        intermediate=2816, vocab=4000), "model.onnx")
    _decodes_like_onnxruntime(path, _onnxruntime_decode(path, 64), 64)


def test_generate_streams_the_optimum_folder(folder, reference, compile_cache, monkeypatch):
    """`tinyc generate` on optimum's folder as it is (config.json, tokenizer.json,
    model.onnx): the words it streams to stdout are onnxruntime's greedy tokens,
    and so are tinyc.generate's token ids."""
    import tinyc

    prompt = " ".join(f"t{t}" for t in PROMPT)  # the word-level tokenizer's words
    monkeypatch.setenv("TINYC_CACHE_DIR", compile_cache)
    proc = subprocess.Popen([sys.executable, "-m", "tinyc", "generate", folder, "--prompt",
                             prompt, "--max-new-tokens", str(STEPS), "--target", "x86"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    want = _until_eos(reference.tokens)  # generate stops at eos (id 2, config.json's)
    assert len(want) > STEPS // 2
    assert out.decode().split() == [f"t{t}" for t in want]
    assert "stopped: max_new_tokens" in err.decode() and "tokens/s" in err.decode()

    generation = tinyc.generate(folder, prompt, STEPS, token_ids=True, target="x86")
    assert list(generation) == want
    assert generation.stats["compiles"] == 0  # the artifact from the disk cache


def test_without_a_package_index_the_venv_is_a_clear_error(tmp_path, monkeypatch):
    """What the tests above skip with when pip cannot install optimum-onnx."""
    from tinyc.testing.optimum_models import OptimumUnavailable, optimum_python

    monkeypatch.setenv("PIP_NO_INDEX", "1")  # no index, and no wheel folder either
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no_wheels"))
    venv = tmp_path / "venv"
    with pytest.raises(OptimumUnavailable, match=r"pip install transformers<4.58 optimum-onnx "
                                                 r"into .*venv failed: ERROR: Could not find"):
        optimum_python(venv)
    assert not venv.exists()


def _until_eos(tokens: list[int], eos: int = 2) -> list[int]:
    return tokens[:tokens.index(eos)] if eos in tokens else tokens
