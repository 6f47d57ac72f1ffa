"""The sequence acceptance models (core/testing/seq_models.py): a transformer
encoder (2 layers, hidden 128, 4 heads, seq 64), stacked bidirectional LSTM and
GRU networks, compiled by tinyc and compared with onnxruntime within 1e-3 of the
output range."""

from __future__ import annotations

import numpy as np
import pytest

import tinyc
from tinyc.testing import seq_models
from tinyc.testing.compare import assert_close_to_range


def _check(model, feeds, ort_run, what):
    got = tinyc.InferenceSession(model, target="x86").run(None, feeds)
    want = ort_run(model, feeds)
    assert len(got) == len(want)
    for out, g, w in zip(model.graph.output, got, want, strict=True):
        assert_close_to_range(g, w, 1e-3, f"{what}:{out.name}")


def test_transformer_encoder_matches_onnxruntime(ort_run):
    cfg = seq_models.EncoderConfig()
    model = seq_models.transformer_encoder(cfg)
    ids = np.random.default_rng(3).integers(0, cfg.vocab, (1, cfg.seq)).astype(np.int64)
    _check(model, {"input_ids": ids}, ort_run, "transformer")


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_recurrent_network_matches_onnxruntime(cell, ort_run):
    cfg = seq_models.RecurrentConfig(cell=cell)
    model = seq_models.recurrent_network(cfg)
    x = np.random.default_rng(5).standard_normal((cfg.seq, cfg.batch, cfg.inputs))
    _check(model, {"features": x.astype(np.float32)}, ort_run, cell)
