"""Llama-style LLMs built by onnxruntime-genai's model builder (issue 12), for
tests and benchmarks:

    folder = llama_genai(precision="int4", layers=2, hidden=256)   # cached
    sess = onnxruntime.InferenceSession(folder + "/model.onnx")
    result = genai_greedy_decode(sess, folder, prompt_ids=list(range(3, 35)), steps=16)

The model is `transformers.LlamaForCausalLM(LlamaConfig(...))` with seeded
random weights and grouped-query attention (kv_heads < heads), saved with a
small word-level `tokenizers` tokenizer, then converted by
`python -m onnxruntime_genai.models.builder -i HF -o OUT -p fp32|int4 -e cpu`.
The builder's graph: Gather (embedding), SimplifiedLayerNormalization,
MatMul or com.microsoft MatMulNBits, GroupQueryAttention (rotary inside),
SkipSimplifiedLayerNormalization, Sigmoid/Mul (SiLU), and a mask subgraph
(ReduceSum, Sub, Shape, Gather, Cast) computing seqlens_k and
total_sequence_length. Its inputs are

    input_ids                  int64 [batch_size, sequence_length]
    attention_mask             int64 [batch_size, total_sequence_length]
    past_key_values.{i}.key    float [batch_size, kv_heads, past_sequence_length, kv_cache_dim]
    past_key_values.{i}.value  (likewise)

and its outputs logits and present.{i}.key / value (total_sequence_length rows).
`kv_cache_dim` is a dim_param (the head size, in genai_config.json); plain
onnxruntime.InferenceSession runs the model like onnxruntime-genai does when fed
the presents back as the pasts.

int4 weights: the builder's default accuracy_level for CPU is 4 (onnxruntime
then quantizes the activations to int8 per block, and so does tinyc, with the
same rounding but other float summation orders: docs/quantization.md);
`accuracy_level=0` keeps them in float, where tinyc's tokens equal
onnxruntime's.

Builds take ~15 s (minutes for 8 layers), so folders are kept keyed by the
arguments, the versions and this file's text ($TINYC_LLM_MODEL_CACHE, default
~/.cache/tinyc-llm-models: not inside ~/.cache/tinyc, the compile cache, whose
size cap evicts any folder there, these included, least recently used first).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence

import numpy as np

from .llm_models import DecodeResult, greedy_decode

PRECISIONS = ("fp32", "int4")
BUILDER_VERSION = "0.18.0"  # the onnxruntime-genai scripts/setup installs


def llama_genai(precision: str = "fp32", layers: int = 2, hidden: int = 256, heads: int = 8,
                kv_heads: int = 2, intermediate: int = 512, vocab: int = 1000,
                accuracy_level: int | None = 0, block_size: int = 32, seed: int = 0,
                init_std: float = 0.02, tied: bool = False,
                folder: str | os.PathLike | None = None) -> str:
    """The folder of the built model (model.onnx, model.onnx.data, genai_config.json,
    tokenizer.json). `accuracy_level=None` keeps the builder's default. `tied`:
    the embedding is the LM head's weight (at int4, a GatherBlockQuantized of it)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    args = dict(precision=precision, layers=layers, hidden=hidden, heads=heads,
                kv_heads=kv_heads, intermediate=intermediate, vocab=vocab,
                accuracy_level=accuracy_level, block_size=block_size, seed=seed,
                init_std=init_std)
    if tied:
        args["tied"] = True  # (absent otherwise: the cache keys of untied models stay)
    root = os.fspath(folder) if folder is not None else _default_folder()
    os.makedirs(root, exist_ok=True)
    name = (f"llama_genai_{precision}_l{layers}_h{hidden}_a{heads}_kv{kv_heads}_v{vocab}"
            f"_s{seed}_{_key(args)}")
    out = os.path.join(root, name)
    if os.path.exists(os.path.join(out, "genai_config.json")):
        return out
    tmp = tempfile.mkdtemp(dir=root, prefix=name + ".tmp")
    try:
        _build(tmp, **args)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, out)  # atomic: concurrent workers never read half a folder
        except OSError:  # another worker finished first
            if not os.path.exists(os.path.join(out, "genai_config.json")):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _default_folder() -> str:
    return os.environ.get("TINYC_LLM_MODEL_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "tinyc-llm-models")


def genai_config(folder: str) -> dict:
    with open(os.path.join(folder, "genai_config.json")) as f:
        return json.load(f)["model"]


def empty_genai_past(folder: str, batch: int = 1) -> dict[str, np.ndarray]:
    """Zero-length past_key_values.* feeds, in the model's input order."""
    import onnx

    decoder = genai_config(folder)["decoder"]
    kv, head = decoder["num_key_value_heads"], decoder["head_size"]
    proto = onnx.load(os.path.join(folder, "model.onnx"), load_external_data=False)
    return {vi.name: np.zeros((batch, kv, 0, head), np.float32) for vi in proto.graph.input
            if vi.name.startswith("past_key_values.")}


def genai_greedy_decode(session, folder: str, prompt_ids: Sequence[int], steps: int,
                        keep_logits: bool = True) -> DecodeResult:
    """llm_models.greedy_decode over a builder model: presents are fed back as the
    pasts of the same names (asked for by name: the output order is the builder's)."""
    past = empty_genai_past(folder)
    outputs = ["logits"] + [n.replace("past_key_values.", "present.") for n in past]

    def step(feeds):
        return session.run(outputs, feeds)
    return greedy_decode(step, prompt_ids, steps, past=past, keep_logits=keep_logits)


def genai_forced_logits(session, folder: str, prompt_ids: Sequence[int],
                        tokens: Sequence[int]) -> list[np.ndarray]:
    """The last position's logits of each step when the token fed after step i
    is tokens[i] (another engine's greedy choice), not this engine's argmax: two
    engines compared step by step, a near-tie at one step not derailing the rest."""
    forced = iter(tokens)
    past = empty_genai_past(folder)
    outputs = ["logits"] + [n.replace("past_key_values.", "present.") for n in past]

    def step(feeds):
        return session.run(outputs, feeds)
    return greedy_decode(step, prompt_ids, len(tokens), past=past, keep_logits=True,
                         pick=lambda _: next(forced)).logits


def _build(out: str, precision: str, layers: int, hidden: int, heads: int, kv_heads: int,
           intermediate: int, vocab: int, accuracy_level: int | None, block_size: int,
           seed: int, init_std: float, tied: bool = False) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM

    hf = os.path.join(out, "hf")
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=kv_heads, max_position_embeddings=2048,
                         initializer_range=init_std, bos_token_id=1, eos_token_id=2,
                         tie_word_embeddings=tied)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).eval().save_pretrained(hf)
    tokenizer = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(os.path.join(hf, "tokenizer.json"))
    with open(os.path.join(hf, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "t1",
                   "eos_token": "t2", "unk_token": "t0"}, f)
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", hf, "-o", out,
           "-p", precision, "-e", "cpu", "-c", os.path.join(out, "cache")]
    extra = [f"block_size={block_size}"] if precision == "int4" else []
    if precision == "int4" and accuracy_level is not None:
        extra.append(f"accuracy_level={accuracy_level}")
    if extra:
        cmd += ["--extra_options", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not os.path.exists(os.path.join(out, "model.onnx")):
        raise RuntimeError(f"the onnxruntime-genai builder failed:\n{done.stderr[-2000:]}")
    shutil.rmtree(hf, ignore_errors=True)
    shutil.rmtree(os.path.join(out, "cache"), ignore_errors=True)


def _key(args: dict) -> str:
    import onnxruntime_genai
    import torch
    import transformers

    with open(__file__, "rb") as f:
        text = f.read()
    versions = [torch.__version__, transformers.__version__, onnxruntime_genai.__version__]
    h = hashlib.sha256(text + json.dumps([args, versions], sort_keys=True).encode())
    return h.hexdigest()[:12]
