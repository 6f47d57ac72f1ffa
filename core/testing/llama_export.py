"""A Llama-style decoder from `transformers` exported by torch.onnx (dynamo)
with its KV cache as flat inputs and outputs (issue 12: "the same Hugging Face
model exported through torch.onnx also runs"):

    path = llama_with_kv_cache()                 # 2 layers, hidden 256, GQA 8/2, cached
    folder = llama_folder("out/llama")           # + config.json, tokenizer.json
    result = greedy_decode(sess, PROMPT, 16, past=empty_past(path))   # llm_models

The model is `transformers.LlamaForCausalLM(LlamaConfig(...))` with seeded random
weights: grouped-query attention (kv_heads < heads, the keys and values
repeated per query group), rotary position embeddings, RMSNorm and a SiLU-gated
MLP; attention="eager" (MatMul, Softmax) or "sdpa" (transformers' default:
torch's scaled_dot_product_attention, which the exporters decompose, dynamo
with a Reshape of the keys beside the symbolic total length). It goes through
the wrapper and exporter of llm_models.py, so the IO is GPT-2's there (input_ids,
attention_mask, past_key_values.{i}.key/value -> logits, present.{i}.key/value)
with the cache [batch, kv_heads, past, head_dim]; llm_models' greedy_decode,
empty_past and prefill_logits apply unchanged.

Hugging Face optimum's exporter (`optimum-onnx`, which requires transformers
< 4.58) runs in a side venv instead: optimum_models.py.

Exports are kept keyed by the arguments, the versions and the text of this file
and llm_models.py ($TINYC_LLM_MODEL_CACHE, default ~/.cache/tinyc-llm-models: not
inside ~/.cache/tinyc, whose size cap may evict folders there).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from . import llm_models
from .llm_models import _key, _valid, export_with_kv_cache


def llama_with_kv_cache(layers: int = 2, hidden: int = 256, heads: int = 8, kv_heads: int = 2,
                        intermediate: int = 512, vocab: int = 1000, positions: int = 2048,
                        seed: int = 0, init_std: float = 0.02, exporter: str = "dynamo",
                        attention: str = "eager", folder: str | os.PathLike | None = None) -> str:
    """The path of the exported .onnx, in `folder` (default: the cache above)."""
    if hidden % heads or heads % kv_heads:
        raise ValueError(f"hidden {hidden}, heads {heads}, kv_heads {kv_heads}: hidden must be "
                         "a multiple of heads and heads of kv_heads")
    args = dict(layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
                intermediate=intermediate, vocab=vocab, positions=positions, seed=seed,
                init_std=init_std, exporter=exporter, attention=attention)
    root = os.fspath(folder) if folder is not None else default_cache_dir()
    os.makedirs(root, exist_ok=True)
    name = (f"llama_{exporter}_{attention}_l{layers}_h{hidden}_a{heads}_kv{kv_heads}"
            f"_v{vocab}_s{seed}_{_key(args, (__file__, llm_models.__file__))}.onnx")
    cached = os.path.join(root, name)
    if _valid(cached):
        return cached
    fd, tmp = tempfile.mkstemp(dir=root, suffix=".onnx.tmp")
    os.close(fd)
    try:
        model = _build(**{k: v for k, v in args.items() if k != "exporter"})
        export_with_kv_cache(tmp, model, layers=layers, kv_heads=kv_heads,
                             head_dim=hidden // heads, vocab=vocab, positions=positions,
                             seed=seed, exporter=exporter, batch_dim=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, cached)  # atomic: concurrent workers never read half a file
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return cached


def llama_folder(folder: str | os.PathLike, eos: int | None = 0, **size) -> str:
    """A `tinyc generate` folder: model.onnx (llama_with_kv_cache(**size)), the
    Hugging Face config.json of the model and a tokenizer.json of its vocab."""
    from .llm_folders import train_tokenizer

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(llama_with_kv_cache(**size), os.path.join(folder, "model.onnx"))
    config = _config(**{k: v for k, v in size.items() if k not in ("seed", "exporter")})
    config.eos_token_id = eos
    config.save_pretrained(folder)  # config.json, as Hugging Face writes it
    train_tokenizer(os.path.join(folder, "tokenizer.json"), config.vocab_size)
    return folder


def default_cache_dir() -> str:
    return os.environ.get("TINYC_LLM_MODEL_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "tinyc-llm-models")


def _config(layers: int = 2, hidden: int = 256, heads: int = 8, kv_heads: int = 2,
            intermediate: int = 512, vocab: int = 1000, positions: int = 2048,
            init_std: float = 0.02, attention: str = "eager"):
    from transformers import LlamaConfig

    config = LlamaConfig(num_hidden_layers=layers, hidden_size=hidden,
                         num_attention_heads=heads, num_key_value_heads=kv_heads,
                         intermediate_size=intermediate, vocab_size=vocab,
                         max_position_embeddings=positions, initializer_range=init_std,
                         bos_token_id=0, eos_token_id=0, tie_word_embeddings=False)
    # eager: MatMul + Softmax; sdpa: torch's scaled_dot_product_attention, as exported
    # by default (the exporter decomposes it at opset 18)
    config._attn_implementation = attention
    return config


def _build(seed: int, **size):
    import torch
    from transformers import LlamaForCausalLM

    config = _config(**size)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()
