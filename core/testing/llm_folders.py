"""Model folders for `tinyc generate` tests: the GPT-2 export of llm_models.py
with a byte-level BPE tokenizer trained here and a config beside it.

    folder = gpt2_folder("out/gpt2", config="hf")   # model.onnx, config.json, tokenizer.json
    for piece in tinyc.generate(folder, "Once upon a time", 16): ...

The tokenizer is trained on a few sentences with accented letters, CJK and an
emoji, so characters span several byte tokens; tokens beyond its merges up to
the model's vocab are added as "<extra_N>" so every id the model can pick
decodes.
"""

from __future__ import annotations

import json
import os
import shutil

from .llm_models import gpt2_with_kv_cache

EOS = "<|endoftext|>"
TEXT = [
    "Once upon a time there was a small compiler that turned graphs into code.",
    "It read the model, planned the memory and wrote native loops for every node.",
    "Le café était très chaud; l'élève a répondu à la question en français.",
    "Grüße aus München, über die Brücke und zurück.",
    "日本語のテキストも少しあります。 東京 大阪 京都",
    "Emoji 🙂 and symbols like € and µs appear too.",
]


def train_tokenizer(path: str, vocab: int = 1000, texts: list[str] = TEXT) -> str:
    """A byte-level BPE tokenizer.json with exactly `vocab` ids (id 0 is EOS)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    missing = vocab - tok.get_vocab_size()
    if missing < 0:
        raise ValueError(f"the tokenizer has {tok.get_vocab_size()} ids, above {vocab}")
    tok.add_tokens([f"<extra_{i}>" for i in range(missing)])
    tok.save(path)
    return path


def gpt2_folder(folder: str | os.PathLike, config: str = "hf", layers: int = 2,
                hidden: int = 64, heads: int = 4, vocab: int = 1000, positions: int = 2048,
                exporter: str = "dynamo", eos: int | None = 0) -> str:
    """A model folder: model.onnx (gpt2_with_kv_cache), tokenizer.json and
    config.json (config="hf") or genai_config.json (config="genai").
    `eos`: the end-of-sequence id written in the config (None: none)."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    source = gpt2_with_kv_cache(layers=layers, hidden=hidden, heads=heads, vocab=vocab,
                                positions=positions, exporter=exporter)
    shutil.copyfile(source, os.path.join(folder, "model.onnx"))
    train_tokenizer(os.path.join(folder, "tokenizer.json"), vocab)
    if config == "hf":
        name, body = "config.json", {"model_type": "gpt2", "n_layer": layers, "n_embd": hidden,
                                     "n_head": heads, "vocab_size": vocab,
                                     "n_positions": positions, "bos_token_id": 0,
                                     "eos_token_id": eos}
    elif config == "genai":
        name, body = "genai_config.json", _genai_config(layers, hidden, heads, vocab, positions,
                                                        eos)
    else:
        raise ValueError(f"config {config!r} is not 'hf' or 'genai'")
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        json.dump(body, f, indent=1)
    return folder


def _genai_config(layers: int, hidden: int, heads: int, vocab: int, positions: int,
                  eos: int | None) -> dict:
    """onnxruntime-genai's format, as its model builder writes it for a decoder."""
    decoder = {"filename": "model.onnx", "head_size": hidden // heads, "hidden_size": hidden,
               "num_attention_heads": heads, "num_key_value_heads": heads,
               "num_hidden_layers": layers,
               "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                          "past_key_names": "past_key_values.%d.key",
                          "past_value_names": "past_key_values.%d.value"},
               "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                           "present_value_names": "present.%d.value"}}
    model = {"bos_token_id": 0, "context_length": positions, "decoder": decoder,
             "eos_token_id": [] if eos is None else eos, "pad_token_id": 0, "type": "gpt2",
             "vocab_size": vocab}
    return {"model": model, "search": {"do_sample": False, "max_length": positions,
                                       "num_beams": 1, "temperature": 1.0, "top_k": 1,
                                       "top_p": 1.0}}
