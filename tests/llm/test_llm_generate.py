"""tinyc.generate on a GPT-2 export with its KV cache: the same greedy tokens
as a plain onnxruntime loop, from one compile; seeded sampling; the stops."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

import tinyc
from tinyc.errors import InputError
from tinyc.llm import LanguageModel

PROMPT = "Once upon a time there was"


def ort_greedy(model_path: str, prompt_ids: list[int], steps: int, eos: set[int]) -> list[int]:
    """Greedy decoding driven by onnxruntime alone: the oracle."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    layers = sum(i.name.startswith("past_key_values.") for i in
                 onnx.load(model_path, load_external_data=False).graph.input) // 2
    past = {f"past_key_values.{i}.{kv}": np.zeros((1, 4, 0, 16), np.float32)
            for i in range(layers) for kv in ("key", "value")}
    ids, total, out = list(prompt_ids), len(prompt_ids), []
    for _ in range(steps):
        outs = sess.run(None, {"input_ids": np.array([ids], np.int64),
                               "attention_mask": np.ones((1, total), np.int64), **past})
        token = int(np.argmax(outs[0][0, -1]))
        if token in eos:
            break
        out.append(token)
        past = dict(zip(past, outs[1:], strict=True))
        ids, total = [token], total + 1
    return out


def test_greedy_tokens_match_onnxruntime_from_one_compile(gpt2_lm):
    g = tinyc.generate(gpt2_lm, PROMPT, 40, token_ids=True)
    tokens = list(g)
    assert tokens == g.tokens and len(tokens) == 40 and g.stop_reason == "max_new_tokens"
    want = ort_greedy(gpt2_lm.folder.model_path, gpt2_lm.encode(PROMPT), 40,
                      set(gpt2_lm.folder.eos_ids))
    assert tokens == want
    assert g.text == gpt2_lm.tokenizer.decode(tokens)
    stats = g.stats
    # one compile (at load) serves the prefill and every past length
    assert stats["compiles"] == 1 == gpt2_lm.session.compile_count
    assert stats["prompt_tokens"] == len(gpt2_lm.encode(PROMPT)) and stats["new_tokens"] == 40
    assert stats["prefill_tokens_per_s"] > 0 and stats["decode_tokens_per_s"] > 0


def test_text_pieces_add_up_to_the_decoded_tokens(gpt2_lm):
    g = gpt2_lm.generate(PROMPT, 24)
    pieces = list(g)
    assert len(pieces) > 1 and "".join(pieces) == g.text == gpt2_lm.tokenizer.decode(g.tokens)


def test_the_genai_config_folder_runs_the_same_decoder(gpt2_dirs, gpt2_lm, llm_cache,
                                                      monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", llm_cache)  # the same model: loaded, not compiled
    hf = list(gpt2_lm.generate(PROMPT, 12, token_ids=True))
    genai = tinyc.generate(gpt2_dirs["genai"], PROMPT, 12, token_ids=True, target="x86")
    assert list(genai) == hf
    assert genai.model.folder.config_file.endswith("genai_config.json")
    assert genai.stats["compiles"] == 0


def test_seeded_sampling_repeats_and_top_k_1_is_greedy(gpt2_lm):
    def sample(seed, **kw):
        kw = {"temperature": 0.9, "top_k": 50, **kw}
        return list(tinyc.generate(gpt2_lm, PROMPT, 16, seed=seed, token_ids=True, **kw))

    assert sample(5) == sample(5)
    assert sample(5) != sample(6)
    greedy = list(gpt2_lm.generate(PROMPT, 16, token_ids=True))
    assert sample(5) != greedy
    assert sample(5, temperature=1.5, top_k=1) == greedy
    assert gpt2_lm.session.compile_count == 1


def test_generation_stops_at_eos_and_at_the_context_length(gpt2_lm):
    greedy = list(gpt2_lm.generate(PROMPT, 10, token_ids=True))
    n = len(gpt2_lm.encode(PROMPT))
    # the 4th greedy token as the end of sequence: three tokens, then the stop
    eos_at_4 = dataclasses.replace(gpt2_lm.folder, eos_ids=frozenset({greedy[3]}))
    lm = LanguageModel(eos_at_4, gpt2_lm.tokenizer, gpt2_lm.session, gpt2_lm.io, 0.0)
    g = lm.generate(PROMPT, 10, token_ids=True)
    assert list(g) == greedy[:greedy.index(greedy[3])] and g.stop_reason == "eos"
    short = dataclasses.replace(gpt2_lm.folder, context_length=n + 3)
    lm = LanguageModel(short, gpt2_lm.tokenizer, gpt2_lm.session, gpt2_lm.io, 0.0)
    g = lm.generate(PROMPT, 10, token_ids=True)
    assert list(g) == greedy[:3] and g.stop_reason == "context"
    with pytest.raises(InputError, match="context"):
        lm.generate(PROMPT + " and more words than fit", 1)
    assert list(gpt2_lm.generate(PROMPT, 0)) == []


def test_an_interrupt_keeps_what_was_generated(gpt2_lm):
    class InterruptedAtRun5:
        """The session, with Ctrl-C arriving during its 5th run."""

        def __init__(self, session):
            self.session, self.runs = session, 0
            self.compile_count = session.compile_count

        def run(self, names, feeds):
            self.runs += 1
            if self.runs == 5:
                raise KeyboardInterrupt
            return self.session.run(names, feeds)

    greedy = list(gpt2_lm.generate(PROMPT, 10, token_ids=True))
    lm = LanguageModel(gpt2_lm.folder, gpt2_lm.tokenizer, InterruptedAtRun5(gpt2_lm.session),
                       gpt2_lm.io, 0.0)
    g = lm.generate(PROMPT, 10, token_ids=True)
    got = []
    with pytest.raises(KeyboardInterrupt):
        for token in g:
            got.append(token)
    assert got == g.tokens == greedy[:4] and g.stop_reason == "interrupted"
    assert g.stats["new_tokens"] == 4


def _renamed_cache(src: str, dst: str) -> str:
    """The export with older cache names: past_key_0 / present_key_0, ..."""
    import onnx

    proto = onnx.load(src)
    renames = {}
    for vi in [*proto.graph.input, *proto.graph.output]:
        parts = vi.name.split(".")
        if vi.name.startswith(("past_key_values.", "present.")):
            renames[vi.name] = f"{'past' if parts[0] != 'present' else 'present'}_{parts[2]}_" \
                               f"{parts[1]}"
            vi.name = renames[vi.name]
    for node in proto.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    onnx.save(proto, dst)
    return dst


def test_older_past_present_names_are_inferred(gpt2_lm, tmp_path):
    """The cache pairs read off a renamed export drive onnxruntime to the same tokens."""
    import onnx
    import onnxruntime as ort

    from tinyc.llm.kv_cache import decoder_io
    from tinyc.llm.loop import decode_steps, step_fn
    from tinyc.session_models import declared_inputs, declared_outputs

    path = _renamed_cache(gpt2_lm.folder.model_path, str(tmp_path / "model.onnx"))
    proto = onnx.load(path, load_external_data=False)
    io = decoder_io(declared_inputs(proto), declared_outputs(proto), layers=2)
    assert [(c.past, c.present) for c in io.cache[:2]] == [("past_key_0", "present_key_0"),
                                                            ("past_value_0", "present_value_0")]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    steps = decode_steps(step_fn(sess), io, gpt2_lm.encode(PROMPT), lambda x: int(np.argmax(x)))
    got = [s.token for _, s in zip(range(12), steps, strict=False)]
    assert got == list(gpt2_lm.generate(PROMPT, 12, token_ids=True))


@pytest.mark.llm_full
@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_generate_compiles_older_names_and_both_exporters(exporter, gpt2_lm, tmp_path):
    """tinyc.generate end to end on a folder with the renamed cache (a compile each)."""
    from tinyc.testing.llm_folders import gpt2_folder

    folder = gpt2_folder(tmp_path / "m", "hf", exporter=exporter)
    model = os.path.join(folder, "model.onnx")
    _renamed_cache(model, model)
    g = tinyc.generate(folder, PROMPT, 24, token_ids=True, target="x86")
    want = ort_greedy(_export_path(exporter), gpt2_lm.encode(PROMPT), 24,
                      set(gpt2_lm.folder.eos_ids))
    assert list(g) == want
    assert g.model.session.compile_count == g.stats["compiles"] <= 1


def _export_path(exporter: str) -> str:
    from tinyc.testing.llm_models import gpt2_with_kv_cache

    return gpt2_with_kv_cache(layers=2, hidden=64, heads=4, vocab=1000, exporter=exporter)
