"""Issue 12's model: a Llama-style LLM (grouped-query attention, rotary) built by
onnxruntime-genai's model builder from random weights, at fp32 and int4
(accuracy_level 0), decoded greedily by tinyc from one compile, token for token
like onnxruntime, logits within 1e-3 of their range. The default run decodes 16
tokens on a 2-layer model; `pytest -m llm_full` decodes 64 on a bigger one."""

from __future__ import annotations

import numpy as np
import pytest
from tests_support import need_modules

PROMPT = [int(t) for t in np.random.default_rng(0).integers(3, 900, 32)]


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", "off")  # count compiles, not cache hits


def _decode_and_compare(precision: str, steps: int, **size) -> None:
    need_modules("torch", "transformers", "tokenizers", "onnxruntime", "onnxruntime_genai")
    import onnxruntime as ort

    import tinyc
    from tinyc.testing.genai_models import genai_greedy_decode, llama_genai

    folder = llama_genai(precision, **size)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ref = ort.InferenceSession(f"{folder}/model.onnx", so, providers=["CPUExecutionProvider"])
    sess = tinyc.InferenceSession(f"{folder}/model.onnx", target="x86")
    want = genai_greedy_decode(ref, folder, PROMPT, steps)
    got = genai_greedy_decode(sess, folder, PROMPT, steps)
    assert got.tokens == want.tokens
    for a, b in zip(got.logits, want.logits, strict=True):
        assert float(np.abs(a - b).max()) <= 1e-3 * float(b.max() - b.min())
    # the 32-token prefill compiled the one artifact every decode step runs
    assert sess.symbolic_fallback is None and sess.compile_count == 1


@pytest.mark.parametrize("precision", ["fp32", "int4", "int4-tied"])
def test_builder_model_decodes_like_onnxruntime(precision):
    # int4-tied: the embedding is the int4 LM head (GatherBlockQuantized)
    _decode_and_compare(precision.split("-")[0], 16, tied=precision.endswith("tied"))


@pytest.mark.llm_full
@pytest.mark.parametrize("precision", ["fp32", "int4"])
def test_bigger_builder_model_decodes_64_tokens_like_onnxruntime(precision):
    _decode_and_compare(precision, 64, layers=8, hidden=1024, heads=16, kv_heads=4,
                        intermediate=2816, vocab=4000)


def test_a_past_of_another_head_size_is_refused():
    need_modules("torch", "transformers", "tokenizers", "onnxruntime_genai")
    import tinyc
    from tinyc.testing.genai_models import empty_genai_past, llama_genai

    folder = llama_genai("int4")
    sess = tinyc.InferenceSession(f"{folder}/model.onnx", target="x86")
    past = {n: np.zeros(a.shape[:3] + (a.shape[3] + 1,), np.float32)
            for n, a in empty_genai_past(folder).items()}  # kv_cache_dim is the head size
    feeds = {"input_ids": np.ones((1, 4), np.int64), "attention_mask": np.ones((1, 4), np.int64)}
    with pytest.raises(tinyc.InputError, match="past_key_values"):
        sess.run(None, feeds | past)


def test_builder_default_accuracy_level_4_decodes_like_onnxruntime(tmp_path):
    """The builder's CPU default, accuracy_level 4: activations quantized to int8 per
    block, as onnxruntime does (tests/llm/test_matmul_nbits_i8.py checks the rounding).
    On a CPU without a u8 x s8 dot step tinyc computes in float32 instead, which is
    what onnxruntime gives for the same weights at accuracy_level 0."""
    need_modules("torch", "transformers", "tokenizers", "onnxruntime", "onnxruntime_genai")
    import shutil

    import onnx
    import onnxruntime as ort

    import tinyc
    from tinyc.target.machine import host_features
    from tinyc.testing.genai_models import genai_greedy_decode, llama_genai

    folder = llama_genai("int4", accuracy_level=None)
    proto = onnx.load(f"{folder}/model.onnx", load_external_data=False)
    levels = {a.i for n in proto.graph.node for a in n.attribute if a.name == "accuracy_level"}
    assert levels == {4}
    reference = folder
    if not {"+avx512vnni", "+avxvnni"} & set(host_features().split(",")):
        print("no VNNI on this CPU: level 4 computes in float32, compared with level 0")
        for n in proto.graph.node:
            for a in n.attribute:
                if a.name == "accuracy_level":
                    a.i = 0
        onnx.save(proto, tmp_path / "model.onnx")
        shutil.copyfile(f"{folder}/model.onnx.data", tmp_path / "model.onnx.data")
        (tmp_path / "genai_config.json").write_text(open(f"{folder}/genai_config.json").read())
        reference = str(tmp_path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ref = ort.InferenceSession(f"{reference}/model.onnx", so,
                               providers=["CPUExecutionProvider"])
    sess = tinyc.InferenceSession(f"{folder}/model.onnx", target="x86")
    want = genai_greedy_decode(ref, reference, PROMPT, 8)
    got = genai_greedy_decode(sess, folder, PROMPT, 8)
    assert got.tokens == want.tokens
    for a, b in zip(got.logits, want.logits, strict=True):
        assert float(np.abs(a - b).max()) <= 1e-3 * float(b.max() - b.min())
