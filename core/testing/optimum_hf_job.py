"""Run by optimum_models.py with the side virtualenv's python (transformers < 4.58),
never imported by tinyc: writes a randomly initialised Llama-style model as
Hugging Face saves one (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json), for `optimum-cli export onnx` to read.

    python optimum_hf_job.py OUT_DIR '{"layers": 2, "hidden": 256, ...}'

Standalone on purpose: the venv has no tinyc installed, and the model must be
made by the transformers the exporter runs with (a config saved by
transformers 5 is not one 4.57 reads back unchanged).
"""

from __future__ import annotations

import json
import os
import sys


def write_model(out: str, layers: int, hidden: int, heads: int, kv_heads: int,
                intermediate: int, vocab: int, positions: int, seed: int,
                init_std: float) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=kv_heads, max_position_embeddings=positions,
                         initializer_range=init_std, bos_token_id=1, eos_token_id=2,
                         tie_word_embeddings=False)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).eval().save_pretrained(out)
    # word-level: ids 0-2 the special tokens, then "t3".."t{vocab-1}", so every id
    # decodes and a prompt is easy to write. (Special tokens named "t1", "t2" would
    # be cut out of words such as "t244" once optimum saves them as added tokens.)
    special = ["<unk>", "<s>", "</s>"]
    words = {w: i for i, w in enumerate(special)} | {f"t{i}": i for i in range(3, vocab)}
    tokenizer = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": special[0],
                   "bos_token": special[1], "eos_token": special[2]}, f)


if __name__ == "__main__":
    write_model(sys.argv[1], **json.loads(sys.argv[2]))
