"""Sequence models for tests and benchmarks, built with onnx.helper and seeded
random weights: a BERT-style transformer encoder, BERT-tiny (the same layers
with BERT-tiny's sizes and the three int64 inputs of a Hugging Face export) and
stacked bidirectional LSTM / GRU networks.

The encoder is written the way exporters emit it: embedding Gather plus a
position add, MatMul + Add projections, heads split by Reshape/Transpose, a
scaled Q @ K^T with Softmax, GELU as x * 0.5 * (1 + Erf(x / sqrt 2)),
residual adds and post-LayerNormalization (opset 17).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8  # what onnxruntime releases of the last years all load


@dataclass(frozen=True)
class EncoderConfig:
    layers: int = 2
    hidden: int = 128
    heads: int = 4
    seq: int = 64
    vocab: int = 1000
    ffn: int = 512


class _Builder:
    """Collects nodes and initializers; every helper returns its output's name."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: np.ndarray) -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, hint: str, shape: tuple[int, ...], std: float) -> str:
        return self.const(hint, (self.rng.standard_normal(shape) * std).astype(np.float32))

    def op(self, op: str, inputs: list[str], hint: str = "", n_out: int = 1,
           names: list[str] | None = None, **attrs) -> str | list[str]:
        """Add a node; `names` fixes output names (graph outputs), else they are made up."""
        outs = names or [self.name(hint or op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.name(op), **attrs))
        return outs[0] if len(outs) == 1 else outs

    def model(self, name: str, inputs: list[onnx.ValueInfoProto],
              outputs: list[onnx.ValueInfoProto], opset: int) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  ir_version=IR_VERSION)
        onnx.checker.check_model(model)
        return model


# ---------------------------------------------------------------------------
# Transformer encoder


def transformer_encoder(cfg: EncoderConfig = EncoderConfig(), seed: int = 0) -> onnx.ModelProto:
    """input_ids int64 [1, seq] -> hidden states float [1, seq, hidden]."""
    m = _Builder(seed)
    ids = "input_ids"
    table = m.weight("word_embeddings", (cfg.vocab, cfg.hidden), 1.0)
    x = m.op("Gather", [table, ids], "embedded", axis=0)
    x = m.op("Add", [x, m.weight("position_embeddings", (cfg.seq, cfg.hidden), 0.5)])
    x = _layer_norm(m, x, cfg.hidden)
    for layer in range(cfg.layers):
        x = _encoder_layer(m, x, cfg, "last_hidden_state" if layer == cfg.layers - 1 else "")
    inp = helper.make_tensor_value_info(ids, TensorProto.INT64, [1, cfg.seq])
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                        [1, cfg.seq, cfg.hidden])
    return m.model("transformer_encoder", [inp], [out], opset=17)


# google/bert_uncased_L-2_H-128_A-2's sizes
BERT_TINY = EncoderConfig(layers=2, hidden=128, heads=2, seq=128, vocab=30522, ffn=512)


def bert_tiny(seq: int = BERT_TINY.seq, seed: int = 0) -> onnx.ModelProto:
    """BERT-tiny as exporters emit it: input_ids, token_type_ids and attention_mask
    (int64 [1, seq]) -> last_hidden_state [1, seq, 128] and pooler_output [1, 128]."""
    cfg = EncoderConfig(**{**BERT_TINY.__dict__, "seq": seq})
    m = _Builder(seed)
    words = m.op("Gather", [m.weight("word_embeddings", (cfg.vocab, cfg.hidden), 1.0),
                            "input_ids"], axis=0)
    types = m.op("Gather", [m.weight("token_type_embeddings", (2, cfg.hidden), 0.5),
                            "token_type_ids"], axis=0)
    x = m.op("Add", [m.op("Add", [words, types]),
                     m.weight("position_embeddings", (cfg.seq, cfg.hidden), 0.5)])
    x = _layer_norm(m, x, cfg.hidden)
    # attention_mask: 1 attends, 0 is padding -> 0 or -10000 added to every
    # head's scores, broadcast as [1, 1, 1, seq]
    mask = m.op("Unsqueeze", [m.op("Cast", ["attention_mask"], to=TensorProto.FLOAT),
                              m.const("axes", np.array([1, 2]))])
    keep = m.op("Sub", [m.const("one", np.array(1.0, np.float32)), mask])
    bias = m.op("Mul", [keep, m.const("masked", np.array(-10000.0, np.float32))], "mask_bias")
    for layer in range(cfg.layers):
        x = _encoder_layer(m, x, cfg, "last_hidden_state" if layer == cfg.layers - 1 else "",
                           bias)
    first = m.op("Gather", [x, m.const("first", np.array(0))], "cls", axis=1)  # [1, hidden]
    m.op("Tanh", [_linear(m, first, cfg.hidden, cfg.hidden)], names=["pooler_output"])
    info = helper.make_tensor_value_info
    inputs = [info(name, TensorProto.INT64, [1, cfg.seq])
              for name in ("input_ids", "token_type_ids", "attention_mask")]
    outputs = [info("last_hidden_state", TensorProto.FLOAT, [1, cfg.seq, cfg.hidden]),
               info("pooler_output", TensorProto.FLOAT, [1, cfg.hidden])]
    return m.model("bert_tiny", inputs, outputs, opset=17)


def bert_feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Token ids, two segments, and the last eighth of the sequence padded."""
    seq = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    rng = np.random.default_rng(seed)
    types = (np.arange(seq) >= seq // 2).astype(np.int64)[None]
    mask = (np.arange(seq) < seq - seq // 8).astype(np.int64)[None]
    return {"input_ids": rng.integers(0, BERT_TINY.vocab, (1, seq), dtype=np.int64),
            "token_type_ids": types, "attention_mask": mask}


def _linear(m: _Builder, x: str, n_in: int, n_out: int) -> str:
    w = m.weight("weight", (n_in, n_out), 1.0 / math.sqrt(n_in))
    return m.op("Add", [m.op("MatMul", [x, w]), m.weight("bias", (n_out,), 0.1)])


def _layer_norm(m: _Builder, x: str, hidden: int, out: str = "") -> str:
    scale = m.const("ln_scale", (1.0 + 0.1 * m.rng.standard_normal(hidden)).astype(np.float32))
    bias = m.weight("ln_bias", (hidden,), 0.1)
    return m.op("LayerNormalization", [x, scale, bias], "ln", names=[out] if out else None,
                axis=-1, epsilon=1e-12)


def _heads(m: _Builder, x: str, cfg: EncoderConfig, perm: list[int]) -> str:
    """[1, S, H] -> [1, heads, S, H/heads] (or [1, heads, H/heads, S] for keys)."""
    shape = m.const("shape", np.array([1, cfg.seq, cfg.heads, cfg.hidden // cfg.heads]))
    return m.op("Transpose", [m.op("Reshape", [x, shape])], perm=perm)


def _encoder_layer(m: _Builder, x: str, cfg: EncoderConfig, out: str,
                   mask_bias: str = "") -> str:
    q = _heads(m, _linear(m, x, cfg.hidden, cfg.hidden), cfg, [0, 2, 1, 3])
    k = _heads(m, _linear(m, x, cfg.hidden, cfg.hidden), cfg, [0, 2, 3, 1])
    v = _heads(m, _linear(m, x, cfg.hidden, cfg.hidden), cfg, [0, 2, 1, 3])
    scale = m.const("scale", np.array(math.sqrt(cfg.hidden // cfg.heads), np.float32))
    scores = m.op("Div", [m.op("MatMul", [q, k]), scale], "scores")
    if mask_bias:
        scores = m.op("Add", [scores, mask_bias], "masked_scores")
    probs = m.op("Softmax", [scores], "probs", axis=-1)
    context = m.op("Transpose", [m.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    merged = m.op("Reshape", [context, m.const("shape", np.array([1, cfg.seq, cfg.hidden]))])
    attn = _linear(m, merged, cfg.hidden, cfg.hidden)
    x = _layer_norm(m, m.op("Add", [x, attn]), cfg.hidden)
    h = _erf_gelu(m, _linear(m, x, cfg.hidden, cfg.ffn))
    return _layer_norm(m, m.op("Add", [x, _linear(m, h, cfg.ffn, cfg.hidden)]), cfg.hidden, out)


def _erf_gelu(m: _Builder, x: str) -> str:
    """x * 0.5 * (1 + Erf(x / sqrt 2)), as torch.onnx exports nn.GELU()."""
    erf = m.op("Erf", [m.op("Div", [x, m.const("sqrt2", np.array(math.sqrt(2), np.float32))])])
    one_plus = m.op("Add", [erf, m.const("one", np.array(1.0, np.float32))])
    half_x = m.op("Mul", [x, m.const("half", np.array(0.5, np.float32))])
    return m.op("Mul", [half_x, one_plus], "gelu")


# ---------------------------------------------------------------------------
# Stacked bidirectional LSTM / GRU


@dataclass(frozen=True)
class RecurrentConfig:
    cell: str = "LSTM"  # or "GRU"
    layers: int = 2
    hidden: int = 64
    inputs: int = 32
    seq: int = 32
    batch: int = 2
    classes: int = 10


def recurrent_network(cfg: RecurrentConfig = RecurrentConfig(), seed: int = 0) -> onnx.ModelProto:
    """features float [seq, batch, inputs] -> logits [seq, batch, classes] and
    final_hidden [2, batch, hidden] (the last layer's Y_h).

    Bidirectional layers stacked as exporters do (Y [seq, 2, batch, hidden] ->
    Transpose -> Reshape [seq, batch, 2 * hidden]); the last layer starts from
    given initial states. GRU layers alternate linear_before_reset 1 (torch's
    form) and 0 (the ONNX default)."""
    m = _Builder(seed)
    gates = {"LSTM": 4, "GRU": 3}[cfg.cell]
    x, n_in, h = "features", cfg.inputs, cfg.hidden
    for layer in range(cfg.layers):
        std = 1.0 / math.sqrt(h)
        inputs = [x, m.weight("W", (2, gates * h, n_in), std),
                  m.weight("R", (2, gates * h, h), std), m.weight("B", (2, 2 * gates * h), std), ""]
        last = layer == cfg.layers - 1
        if last:
            inputs += [m.weight("initial_h", (2, cfg.batch, h), 0.5)]
            if cfg.cell == "LSTM":
                inputs += [m.weight("initial_c", (2, cfg.batch, h), 0.5)]
        attrs = {"linear_before_reset": 1 - layer % 2} if cfg.cell == "GRU" else {}
        names = [m.name("Y"), "final_hidden" if last else m.name("Y_h")]
        y, _ = m.op(cfg.cell, inputs, names=names, direction="bidirectional", hidden_size=h,
                    **attrs)
        y = m.op("Transpose", [y], perm=[0, 2, 1, 3])  # [seq, batch, 2, hidden]
        x = m.op("Reshape", [y, m.const("shape", np.array([cfg.seq, cfg.batch, 2 * h]))])
        n_in = 2 * h
    m.op("Add", [m.op("MatMul", [x, m.weight("head", (n_in, cfg.classes), 0.2)]),
                 m.weight("head_bias", (cfg.classes,), 0.1)], names=["logits"])
    inp = helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                        [cfg.seq, cfg.batch, cfg.inputs])
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                             [cfg.seq, cfg.batch, cfg.classes]),
               helper.make_tensor_value_info("final_hidden", TensorProto.FLOAT, [2, cfg.batch, h])]
    return m.model(f"{cfg.cell.lower()}_network", [inp], outputs, opset=14)
