"""What a model folder holds for text generation: the .onnx decoder, its
config and tokenizer.json.

Two config formats are read:
- `genai_config.json`, written by onnxruntime-genai's model builder: the model
  file name (model.decoder.filename), the names of the decoder's inputs and
  outputs (model.decoder.inputs / outputs, the cache names as templates such
  as "past_key_values.%d.key"), the layer count, eos/bos/pad token ids and
  the context length.
- otherwise Hugging Face's `config.json` (with `generation_config.json` when
  present, for its eos ids) next to one `*.onnx`: token ids and context
  length only; the decoder's names are read off the model (kv_cache.py).
  The folder `optimum-cli export onnx --task text-generation-with-past`
  writes is one of these.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..errors import ModelFolderError

GENAI_CONFIG = "genai_config.json"
HF_CONFIG = "config.json"
TOKENIZER = "tokenizer.json"


@dataclass(frozen=True)
class IONames:
    """The decoder's input and output names as a config gives them; None:
    read it off the model. Cache names are templates with %d for the layer."""

    input_ids: str | None = None
    attention_mask: str | None = None
    position_ids: str | None = None
    logits: str | None = None
    past_key: str | None = None
    past_value: str | None = None
    present_key: str | None = None
    present_value: str | None = None


@dataclass(frozen=True)
class ModelFolder:
    root: str
    model_path: str
    tokenizer_path: str
    config_file: str  # the config read: genai_config.json or config.json
    names: IONames = field(default_factory=IONames)
    layers: int | None = None
    eos_ids: frozenset[int] = frozenset()
    bos_id: int | None = None
    pad_id: int | None = None
    context_length: int | None = None
    # the cache's sizes, for a model that leaves them symbolic (the builder's
    # "kv_cache_dim"): needed to make the empty past of the first step
    head_size: int | None = None
    kv_heads: int | None = None


def read_model_folder(path: str | os.PathLike) -> ModelFolder:
    """The folder's files and settings; `path` is the folder or its .onnx file."""
    path = os.fspath(path)
    model_file = None
    if os.path.isfile(path) and path.endswith(".onnx"):
        model_file, path = path, os.path.dirname(path) or "."
    if not os.path.isdir(path):
        raise ModelFolderError(f"{path}: no such model folder")
    tokenizer = os.path.join(path, TOKENIZER)
    if not os.path.isfile(tokenizer):
        raise ModelFolderError(f"{path} has no {TOKENIZER} (the Hugging Face tokenizers file: "
                               f"tokenizer.save(...) or AutoTokenizer.save_pretrained writes it)")
    genai = os.path.join(path, GENAI_CONFIG)
    if os.path.isfile(genai):
        return _from_genai_config(path, genai, tokenizer, model_file)
    hf = os.path.join(path, HF_CONFIG)
    if os.path.isfile(hf):
        return _from_hf_config(path, hf, tokenizer, model_file)
    raise ModelFolderError(f"{path} has neither {GENAI_CONFIG} (onnxruntime-genai's model "
                           f"builder writes it) nor {HF_CONFIG} (Hugging Face's model config)")


def _from_genai_config(root: str, config_path: str, tokenizer: str,
                       model_file: str | None) -> ModelFolder:
    config = _read_json(config_path)
    model = _section(config, "model", config_path)
    decoder = _section(model, "decoder", config_path)
    inputs, outputs = decoder.get("inputs", {}), decoder.get("outputs", {})
    names = IONames(input_ids=inputs.get("input_ids"), attention_mask=inputs.get("attention_mask"),
                    position_ids=inputs.get("position_ids"), logits=outputs.get("logits"),
                    past_key=inputs.get("past_key_names"),
                    past_value=inputs.get("past_value_names"),
                    present_key=outputs.get("present_key_names"),
                    present_value=outputs.get("present_value_names"))
    if model_file is None:
        filename = decoder.get("filename")
        if not filename:
            raise ModelFolderError(f"{config_path}: model.decoder.filename is missing")
        model_file = os.path.join(root, filename)
        if not os.path.isfile(model_file):
            raise ModelFolderError(f"{config_path} names the model file {filename}, which "
                                   f"{root} does not have")
    return ModelFolder(root, model_file, tokenizer, config_path, names,
                       layers=_int_or_none(decoder.get("num_hidden_layers")),
                       eos_ids=_ids(model.get("eos_token_id")),
                       bos_id=_int_or_none(model.get("bos_token_id")),
                       pad_id=_int_or_none(model.get("pad_token_id")),
                       context_length=_int_or_none(model.get("context_length")),
                       head_size=_int_or_none(decoder.get("head_size")),
                       kv_heads=_int_or_none(decoder.get("num_key_value_heads")))


def _from_hf_config(root: str, config_path: str, tokenizer: str,
                    model_file: str | None) -> ModelFolder:
    config = _read_json(config_path)
    generation = os.path.join(root, "generation_config.json")
    eos = _ids(config.get("eos_token_id"))
    if os.path.isfile(generation):
        eos |= _ids(_read_json(generation).get("eos_token_id"))
    context = _first_int(config, "max_position_embeddings", "n_positions", "n_ctx")
    layers = _first_int(config, "num_hidden_layers", "n_layer")
    heads = _first_int(config, "num_attention_heads", "n_head")
    hidden = _first_int(config, "hidden_size", "n_embd")
    head_size = _first_int(config, "head_dim") or (hidden // heads if hidden and heads else None)
    return ModelFolder(root, model_file or _the_onnx_file(root), tokenizer, config_path,
                       layers=layers, eos_ids=eos, bos_id=_int_or_none(config.get("bos_token_id")),
                       pad_id=_int_or_none(config.get("pad_token_id")), context_length=context,
                       head_size=head_size,
                       kv_heads=_first_int(config, "num_key_value_heads") or heads)


def _the_onnx_file(root: str) -> str:
    found = sorted(f for f in os.listdir(root) if f.endswith(".onnx"))
    if "model.onnx" in found:
        return os.path.join(root, "model.onnx")
    if len(found) == 1:
        return os.path.join(root, found[0])
    if not found:
        raise ModelFolderError(f"{root} has no .onnx model")
    raise ModelFolderError(f"{root} has several .onnx models {found} and none is model.onnx: "
                           f"give the one to run as MODEL_DIR/NAME.onnx")


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFolderError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(data, dict):
        raise ModelFolderError(f"{path}: a JSON object was expected")
    return data


def _section(config: dict, key: str, path: str) -> dict:
    value = config.get(key)
    if not isinstance(value, dict):
        raise ModelFolderError(f"{path}: no '{key}' section")
    return value


def _ids(value) -> frozenset[int]:
    """eos_token_id is an int, a list of ints (several stop tokens) or absent."""
    if isinstance(value, int) and not isinstance(value, bool):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, int) and not isinstance(v, bool))
    return frozenset()


def _first_int(config: dict, *keys: str) -> int | None:
    """The first of `keys` that the config sets to an integer (names differ by model)."""
    return next((config[k] for k in keys if _int_or_none(config.get(k)) is not None), None)


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
