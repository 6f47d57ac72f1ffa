"""A folder made by onnxruntime-genai's model builder (genai_config.json, a
Llama-style decoder with grouped-query attention, its head size left symbolic
as "kv_cache_dim"): the decode loop reads it and gives onnxruntime-genai's
own greedy tokens. Behind the llm_full marker (the builder takes seconds)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from tests_support import need_modules

import tinyc
from tinyc.errors import ModelError, UnsupportedOpsError

pytestmark = pytest.mark.llm_full
PROMPT = "Once upon a time there was"
STEPS = 20


@pytest.fixture(scope="module")
def hf_llama(tmp_path_factory) -> str:
    need_modules("torch", "transformers", "onnxruntime_genai", "tokenizers")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tinyc.testing.llm_folders import train_tokenizer

    root = tmp_path_factory.mktemp("llama") / "hf"
    config = LlamaConfig(vocab_size=1000, hidden_size=128, intermediate_size=256,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    LlamaForCausalLM(config).eval().save_pretrained(root)
    train_tokenizer(str(root / "tokenizer.json"), 1000)
    (root / "tokenizer_config.json").write_text('{"tokenizer_class": "PreTrainedTokenizerFast"}')
    return str(root)


def _build(hf_dir: str, precision: str) -> str:
    out = f"{hf_dir}_{precision}"
    if os.path.isfile(os.path.join(out, "genai_config.json")):
        return out  # built by an earlier test of this module
    subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", hf_dir,
                    "-o", out, "-p", precision, "-e", "cpu", "-c", f"{hf_dir}_cache"],
                   check=True, capture_output=True, timeout=600)
    return out


def _genai_greedy(folder: str, prompt_ids: list[int]) -> list[int]:
    import onnxruntime_genai as og

    model = og.Model(folder)
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=len(prompt_ids) + STEPS)
    generator = og.Generator(model, params)
    generator.append_tokens(prompt_ids)
    tokens = []
    while not generator.is_done():
        generator.generate_next_token()
        tokens.append(int(generator.get_next_tokens()[0]))
    return tokens


@pytest.mark.parametrize("precision", ["fp32", "int4"])
def test_the_decode_loop_gives_onnxruntime_genai_tokens(hf_llama, precision):
    import onnx
    import onnxruntime as ort

    from tinyc.llm.folder import read_model_folder
    from tinyc.llm.kv_cache import decoder_io
    from tinyc.llm.loop import decode_steps, step_fn
    from tinyc.llm.tokenizer import load_tokenizer
    from tinyc.session_models import declared_inputs, declared_outputs

    folder = read_model_folder(_build(hf_llama, precision))
    proto = onnx.load(folder.model_path, load_external_data=False)
    io = decoder_io(declared_inputs(proto), declared_outputs(proto), folder.names,
                    folder.layers, folder.head_size, folder.kv_heads)
    assert io.cache[0].dims == ("batch_size", 2, "past_sequence_length", 32)
    ids = load_tokenizer(folder.tokenizer_path).encode(PROMPT).ids
    sess = ort.InferenceSession(folder.model_path, providers=["CPUExecutionProvider"])
    steps = decode_steps(step_fn(sess), io, ids, lambda logits: int(np.argmax(logits)))
    got = []
    for _, step in zip(range(STEPS), steps, strict=False):
        if step.token in folder.eos_ids:
            break
        got.append(step.token)
    assert got == _genai_greedy(folder.root, ids)[:len(got)] and len(got) > 3


def test_tinyc_generate_on_a_builder_folder(hf_llama):
    folder = _build(hf_llama, "fp32")
    try:
        generation = tinyc.generate(folder, PROMPT, STEPS, token_ids=True, target="x86")
    except (ModelError, UnsupportedOpsError) as e:
        pytest.skip(f"the builder's ops do not import yet (issue 12, item 1): {e}")
    got = list(generation)
    assert got == _genai_greedy(folder, generation.prompt_ids)[:len(got)]
    assert generation.stats["compiles"] <= 1
