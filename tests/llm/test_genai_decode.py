"""Issue 12's model: a Llama-style LLM (grouped-query attention, rotary) built by
onnxruntime-genai's model builder from random weights, at fp32 and int4
(accuracy_level 0), decoded greedily by tinyc from one compile, token for token
like onnxruntime, logits within 1e-3 of their range. The default run decodes 16
tokens on a 2-layer model; `pytest -m llm_full` decodes 64 on a bigger one, and
checks accuracy_level 4 there (see the comment above BIG)."""

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


# Issue 12's size. Weights at init_std 0.02, transformers' default initializer_range.
# (0.1 is no less degenerate at accuracy_level 4: its logits are less flat, median
# top-2 gap 2.9e-2 of their range against 1.8e-2, but level 4's int8 rounding moves
# them more, onnxruntime's level 4 against its float32 result 8e-2 of the range
# against 1e-2, and as many tokens are near-ties.)
BIG = dict(layers=8, hidden=1024, heads=16, kv_heads=4, intermediate=2816, vocab=4000)


@pytest.mark.llm_full
@pytest.mark.parametrize("precision", ["fp32", "int4"])
def test_bigger_builder_model_decodes_64_tokens_like_onnxruntime(precision):
    _decode_and_compare(precision, 64, **BIG)


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
        reference = _at_accuracy_level_0(folder, tmp_path)
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


def _level_4_sessions(tmp_path):
    """onnxruntime on the level-4 model and on a copy at level 0 (same weights), and
    tinyc on the level-4 one; skips where tinyc has no u8 x s8 dot step (it then
    computes level 4 in float32, which the level-0 tests cover)."""
    need_modules("torch", "transformers", "tokenizers", "onnxruntime", "onnxruntime_genai")
    import onnxruntime as ort

    import tinyc
    from tinyc.target.machine import host_features
    from tinyc.testing.genai_models import llama_genai

    if not {"+avx512vnni", "+avxvnni"} & set(host_features().split(",")):
        pytest.skip("no VNNI on this CPU: tinyc computes accuracy_level 4 in float32")
    folder = llama_genai("int4", accuracy_level=4, **BIG)
    float_folder = _at_accuracy_level_0(folder, tmp_path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    refs = [ort.InferenceSession(f"{f}/model.onnx", so, providers=["CPUExecutionProvider"])
            for f in (folder, float_folder)]
    return folder, float_folder, refs, tinyc.InferenceSession(f"{folder}/model.onnx", target="x86")


def _at_accuracy_level_0(folder: str, out) -> str:
    import shutil

    import onnx

    proto = onnx.load(f"{folder}/model.onnx", load_external_data=False)
    for n in proto.graph.node:
        for a in n.attribute:
            if a.name == "accuracy_level":
                a.i = 0
    onnx.save(proto, out / "model.onnx")
    shutil.copyfile(f"{folder}/model.onnx.data", out / "model.onnx.data")
    (out / "genai_config.json").write_text(open(f"{folder}/genai_config.json").read())
    return str(out)


@pytest.mark.llm_full
def test_level_4_8_layer_model_is_as_close_to_onnxruntime_as_its_int8_rounding_allows(
        tmp_path):
    """accuracy_level 4 rounds activations to int8 per block: a float difference of
    one ulp upstream (every op sums in another order than onnxruntime's kernels)
    can move a code by one, and the logits drift ~1e-2 of their range from
    onnxruntime's after 8 layers, about as far as onnxruntime's own level 4 is
    from float32 (docs/quantization.md). Fed onnxruntime's tokens step by step,
    tinyc's logits stay closer to onnxruntime's than those are to float32, as
    close to float32 as onnxruntime's, and pick the same token but at near-ties."""
    from statistics import median

    from tinyc.testing.genai_models import genai_forced_logits, genai_greedy_decode

    folder, float_folder, (ref, ref_float), sess = _level_4_sessions(tmp_path)
    want = genai_greedy_decode(ref, folder, PROMPT, 64)
    got = genai_forced_logits(sess, folder, PROMPT, want.tokens)
    flt = genai_forced_logits(ref_float, float_folder, PROMPT, want.tokens)
    span = [float(w.max() - w.min()) for w in want.logits]

    def distance(a, b):  # per step, max |a - b| / the range of onnxruntime's logits
        return [float(np.abs(x - y).max()) / s for x, y, s in zip(a, b, span, strict=True)]
    tinyc_ort, ort_float, tinyc_float = (distance(got, want.logits), distance(flt, want.logits),
                                         distance(got, flt))
    print(f"median max|diff| / range: tinyc-onnxruntime {median(tinyc_ort):.2e}, "
          f"onnxruntime-float32 {median(ort_float):.2e}, tinyc-float32 {median(tinyc_float):.2e}")
    # measured at init_std 0.02: 7.9e-3, 1.0e-2, 9.8e-3; the same token at 61 of 64 steps
    assert median(tinyc_ort) <= median(ort_float)
    assert median(tinyc_float) <= 1.25 * median(ort_float)
    same = sum(int(np.argmax(g)) == t for g, t in zip(got, want.tokens, strict=True))
    assert same >= 0.9 * len(want.tokens)


@pytest.mark.llm_full
@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "issue 12's acceptance at accuracy_level 4: needs every op bit-exact with "
    "onnxruntime's kernels (MLAS's int8 kernel accumulates 8-value partial dots in "
    "16-lane float accumulators); the first of 64 tokens to differ is at a near-tie, "
    "top-2 gap below the int8 rounding's drift (docs/quantization.md)"))
def test_level_4_8_layer_model_decodes_64_tokens_like_onnxruntime(tmp_path):
    from tinyc.testing.genai_models import genai_greedy_decode

    folder, _, (ref, _), sess = _level_4_sessions(tmp_path)
    want = genai_greedy_decode(ref, folder, PROMPT, 64, keep_logits=False)
    got = genai_greedy_decode(sess, folder, PROMPT, 64, keep_logits=False)
    assert got.tokens == want.tokens
