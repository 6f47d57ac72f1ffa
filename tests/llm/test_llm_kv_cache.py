"""The decoder's IO read off its inputs and outputs (kv_cache.decoder_io):
names from a genai config or inferred, cache shapes, and the step feeds."""

from __future__ import annotations

import numpy as np
import pytest

from tinyc.errors import ModelFolderError
from tinyc.llm.folder import IONames
from tinyc.llm.kv_cache import decoder_io
from tinyc.runtime.native import TensorInfo


def _io(cache_inputs: dict, cache_outputs: list[str], extra=()):
    ins = [TensorInfo("input_ids", ["batch", "seq"], "int64"),
           TensorInfo("attention_mask", ["batch", "total"], "int64"), *extra,
           *(TensorInfo(n, dims, "float32") for n, dims in cache_inputs.items())]
    outs = [TensorInfo("logits", ["batch", "seq", 50], "float32"),
            *(TensorInfo(n, [], "float32") for n in cache_outputs)]
    return ins, outs


def test_transformers_names_pair_past_key_values_with_present():
    ins, outs = _io({f"past_key_values.{i}.{kv}": ["batch", 2, "past", 8]
                     for i in range(2) for kv in ("key", "value")},
                    [f"present.{i}.{kv}" for i in range(2) for kv in ("key", "value")])
    io = decoder_io(ins, outs, layers=2)
    assert [(c.past, c.present) for c in io.cache][:2] == [
        ("past_key_values.0.key", "present.0.key"), ("past_key_values.0.value", "present.0.value")]
    assert io.output_names[0] == "logits" and io.position_ids is None
    empty = io.empty_cache()
    assert {a.shape for a in empty.values()} == {(1, 2, 0, 8)}
    assert io.empty_cache(length=3)["past_key_values.1.value"].shape == (1, 2, 3, 8)


def test_older_exports_past_n_present_n_with_stacked_key_value():
    # GPT-2's older exports: past_0 is key and value stacked, [2, batch, heads, past, head]
    ins, outs = _io({f"past_{i}": [2, "batch", 4, "past_seq_len", 16] for i in range(3)},
                    [f"present_{i}" for i in range(3)])
    io = decoder_io(ins, outs, layers=3)  # one cache tensor per layer is accepted
    assert [c.present for c in io.cache] == ["present_0", "present_1", "present_2"]
    assert io.cache[0].length_axis == 3
    assert io.empty_cache(length=5)["past_2"].shape == (2, 1, 4, 5, 16)


def test_a_cache_input_without_its_output_is_named():
    ins, outs = _io({"past_key_0": ["batch", 2, "past", 8]}, ["present_value_0"])
    with pytest.raises(ModelFolderError, match="past_key_0.*no matching output"):
        decoder_io(ins, outs)


def test_a_layer_count_that_contradicts_the_model_is_refused():
    ins, outs = _io({"past_key_values.0.key": ["batch", 2, "past", 8],
                     "past_key_values.0.value": ["batch", 2, "past", 8]},
                    ["present.0.key", "present.0.value"])
    with pytest.raises(ModelFolderError, match="3 layers"):
        decoder_io(ins, outs, layers=3)


def test_genai_names_are_templates_over_the_layers_and_position_ids_are_fed():
    pos = TensorInfo("position_ids", ["batch", "seq"], "int64")
    ins, outs = _io({f"cache.{kv}.{i}": ["batch_size", 2, "past_sequence_length", 8]
                     for i in range(2) for kv in ("k", "v")},
                    [f"out.{kv}.{i}" for i in range(2) for kv in ("k", "v")], extra=[pos])
    names = IONames(input_ids="input_ids", position_ids="position_ids", logits="logits",
                    past_key="cache.k.%d", past_value="cache.v.%d", present_key="out.k.%d",
                    present_value="out.v.%d")
    io = decoder_io(ins, outs, names, layers=2)
    assert [c.past for c in io.cache] == ["cache.k.0", "cache.v.0", "cache.k.1", "cache.v.1"]
    assert io.attention_mask == "attention_mask"  # the model has it, the config does not say
    feeds = io.feeds([7], [0, 1, 1, 1], io.empty_cache(length=3))
    # the new token's position counts the real tokens before it, not the masked row
    assert feeds["position_ids"].tolist() == [[2]] and feeds["position_ids"].dtype == np.int64
    assert feeds["attention_mask"].tolist() == [[0, 1, 1, 1]]
    with pytest.raises(ModelFolderError, match="no cache input 'cache.k.2'"):
        decoder_io(ins, outs, names, layers=3)
    with pytest.raises(ModelFolderError, match="num_hidden_layers"):
        decoder_io(ins, outs, names, layers=None)


def test_a_configured_name_the_model_lacks_is_refused():
    ins, outs = _io({}, [])
    with pytest.raises(ModelFolderError, match="no input 'tokens'"):
        decoder_io(ins, outs, IONames(input_ids="tokens"))
    with pytest.raises(ModelFolderError, match="no output 'scores'"):
        decoder_io(ins, outs, IONames(logits="scores"))
    with pytest.raises(ModelFolderError, match="%d"):
        decoder_io(ins + [TensorInfo("k", ["b", 1, "p", 2], "float32")], outs,
                   IONames(past_key="k", past_value="v", present_key="pk",
                           present_value="pv"), layers=1)


def test_an_input_generation_cannot_feed_is_named_up_front():
    extra = TensorInfo("token_type_ids", ["batch", "seq"], "int64")
    ins, outs = _io({"past_key_values.0.key": ["batch", 2, "past", 8]}, ["present.0.key"],
                    extra=[extra])
    with pytest.raises(ModelFolderError, match=r"does not know how to feed: \['token_type_ids'\]"):
        decoder_io(ins, outs)


def test_a_symbolic_head_size_comes_from_the_config():
    # onnxruntime-genai's builder: [batch_size, kv_heads, past_sequence_length, kv_cache_dim]
    ins, outs = _io({"past_key_values.0.key": ["batch_size", 2, "past_sequence_length",
                                               "kv_cache_dim"]}, ["present.0.key"])
    io = decoder_io(ins, outs, head_size=32, kv_heads=2)
    assert io.empty_cache(length=4)["past_key_values.0.key"].shape == (1, 2, 4, 32)
    with pytest.raises(ModelFolderError, match="'kv_cache_dim' at axis 3; the config gives no "
                                               "head_size"):
        decoder_io(ins, outs)
    ins, outs = _io({"past_key_values.0.key": ["b", "kv_heads", "past", "d"]}, ["present.0.key"])
    assert decoder_io(ins, outs, head_size=8, kv_heads=3).cache[0].dims == ("b", 3, "past", 8)
