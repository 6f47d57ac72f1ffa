"""Reading a model folder (folder.read_model_folder): both config formats,
and a clear error for each missing or bad piece."""

from __future__ import annotations

import json

import pytest

from tinyc.errors import ModelFolderError
from tinyc.llm.folder import read_model_folder

GENAI = {"model": {"bos_token_id": 1, "context_length": 4096, "eos_token_id": [2, 32007],
                   "pad_token_id": 0, "type": "llama",
                   "decoder": {"filename": "model.onnx", "num_hidden_layers": 8,
                               "head_size": 64, "num_key_value_heads": 2,
                               "inputs": {"input_ids": "input_ids",
                                          "attention_mask": "attention_mask",
                                          "past_key_names": "past_key_values.%d.key",
                                          "past_value_names": "past_key_values.%d.value"},
                               "outputs": {"logits": "logits",
                                           "present_key_names": "present.%d.key",
                                           "present_value_names": "present.%d.value"}}}}


def _folder(tmp_path, files: dict):
    for name, content in files.items():
        (tmp_path / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return tmp_path


def test_genai_config_gives_the_file_names_and_token_ids(tmp_path):
    folder = read_model_folder(_folder(tmp_path, {"genai_config.json": GENAI, "model.onnx": "",
                                                  "tokenizer.json": "{}"}))
    assert folder.model_path == str(tmp_path / "model.onnx")
    assert folder.eos_ids == {2, 32007} and folder.bos_id == 1 and folder.pad_id == 0
    assert folder.context_length == 4096 and folder.layers == 8
    assert (folder.head_size, folder.kv_heads) == (64, 2)
    assert folder.names.past_key == "past_key_values.%d.key"
    assert folder.names.position_ids is None  # fed when the model has it (kv_cache.py)


def test_hf_config_with_generation_config_and_the_one_onnx(tmp_path):
    folder = read_model_folder(_folder(tmp_path, {
        "config.json": {"n_layer": 2, "n_positions": 1024, "eos_token_id": 50256,
                        "n_embd": 256, "n_head": 4},
        "generation_config.json": {"eos_token_id": [50256, 7]},
        "decoder.onnx": "", "tokenizer.json": "{}"}))
    assert folder.model_path.endswith("decoder.onnx")
    assert folder.eos_ids == {50256, 7} and folder.context_length == 1024 and folder.layers == 2
    assert folder.names.past_key is None  # read off the model
    assert (folder.head_size, folder.kv_heads) == (64, 4)


def test_an_onnx_path_picks_that_model_in_its_folder(tmp_path):
    _folder(tmp_path, {"config.json": {}, "a.onnx": "", "b.onnx": "", "tokenizer.json": "{}"})
    with pytest.raises(ModelFolderError, match="several .onnx models"):
        read_model_folder(tmp_path)
    assert read_model_folder(tmp_path / "b.onnx").model_path == str(tmp_path / "b.onnx")


@pytest.mark.parametrize("files, message", [
    ({}, "no tokenizer.json"),
    ({"tokenizer.json": "{}", "model.onnx": ""}, "neither genai_config.json .* nor config.json"),
    ({"tokenizer.json": "{}", "config.json": {}}, "no .onnx model"),
    ({"tokenizer.json": "{}", "config.json": "{oops"}, "not a readable JSON file"),
    ({"tokenizer.json": "{}", "genai_config.json": {"model": {}}}, "no 'decoder' section"),
    ({"tokenizer.json": "{}", "genai_config.json": GENAI}, "names the model file model.onnx"),
])
def test_what_is_missing_is_named(tmp_path, files, message):
    with pytest.raises(ModelFolderError, match=message):
        read_model_folder(_folder(tmp_path, files))


def test_a_missing_folder(tmp_path):
    with pytest.raises(ModelFolderError, match="no such model folder"):
        read_model_folder(tmp_path / "nope")
