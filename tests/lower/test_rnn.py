"""LSTM, GRU and RNN against onnxruntime: every direction, both layouts, initial
states, sequence_lens, clip, peepholes, input_forget, linear_before_reset,
non-default activations and omitted outputs. All cases are nodes of one model,
compiled once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc
from tinyc.codegen.kernels.ops.rnn import CellSpec
from tinyc.codegen.machine import emit_assembly, new_module, optimize
from tinyc.ir import Node
from tinyc.lower.recurrent import activations
from tinyc.target.machine import CpuTarget
from tinyc.testing.kernel_harness import host_target
from tinyc.testing.reference import reference_outputs

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


@dataclass
class RnnCase:
    op: str
    direction: str = "forward"
    seq: int = 5
    batch: int = 3
    n_in: int = 7
    hidden: int = 20  # not a multiple of the vector width: masked tails
    layout: int = 0
    bias: bool = True
    init: bool = False  # initial_h (and initial_c)
    lens: tuple[int, ...] | None = None
    peephole: bool = False
    outputs: tuple[bool, bool, bool] = (True, True, True)  # Y, Y_h, Y_c
    runtime_weights: bool = False  # W, R, B, P as graph inputs
    attrs: dict = field(default_factory=dict)

    def build(self, k: int, rng: np.random.Generator):
        """(node, inits, graph inputs, feeds, graph outputs) named c{k}.*"""
        dirs = 2 if self.direction == "bidirectional" else 1
        g, h = GATES[self.op], self.hidden
        p = f"c{k}."
        weights = {p + "W": _w(rng, dirs, g * h, self.n_in), p + "R": _w(rng, dirs, g * h, h)}
        names = [p + "X", p + "W", p + "R", "", "", "", "", ""]
        x_shape = (self.batch, self.seq, self.n_in) if self.layout else \
            (self.seq, self.batch, self.n_in)
        feeds = {p + "X": rng.standard_normal(x_shape).astype(np.float32)}
        if self.bias:
            weights[p + "B"] = _w(rng, dirs, 2 * g * h)
            names[3] = p + "B"
        if self.lens is not None:
            feeds[p + "lens"] = np.array(self.lens, np.int32)
            names[4] = p + "lens"
        state_shape = (self.batch, dirs, h) if self.layout else (dirs, self.batch, h)
        if self.init:
            for slot, s in ((5, "h0"), (6, "c0"))[:2 if self.op == "LSTM" else 1]:
                feeds[p + s] = rng.standard_normal(state_shape).astype(np.float32)
                names[slot] = p + s
        if self.peephole:
            weights[p + "P"] = _w(rng, dirs, 3 * h)
            names[7] = p + "P"
        inits = [] if self.runtime_weights else \
            [numpy_helper.from_array(a, n) for n, a in weights.items()]
        if self.runtime_weights:
            feeds.update(weights)
        while names and not names[-1]:
            names.pop()
        n_out = 3 if self.op == "LSTM" else 2
        outs = [p + o if on else "" for o, on in
                zip(("Y", "Y_h", "Y_c"), self.outputs, strict=True)][:n_out]
        node = helper.make_node(self.op, names, outs, direction=self.direction, hidden_size=h,
                                **({"layout": 1} if self.layout else {}), **self.attrs)
        vis = [helper.make_tensor_value_info(n, _onnx_type(a), a.shape) for n, a in feeds.items()]
        y_shape = (self.batch, self.seq, dirs, h) if self.layout else \
            (self.seq, dirs, self.batch, h)
        out_vis = [helper.make_tensor_value_info(o, TensorProto.FLOAT, s)
                   for o, s in zip(outs, (y_shape, state_shape, state_shape)[:n_out], strict=True)
                   if o]
        return node, inits, vis, feeds, out_vis


def _w(rng, *shape):
    return (rng.standard_normal(shape) * 0.4).astype(np.float32)


def _onnx_type(a: np.ndarray) -> int:
    return TensorProto.INT32 if a.dtype == np.int32 else TensorProto.FLOAT


def _model(cases: list[RnnCase]):
    nodes, inits, vis, feeds, outs = [], [], [], {}, []
    for k, case in enumerate(cases):
        node, i, v, f, o = case.build(k, np.random.default_rng(k))
        nodes.append(node)
        inits += i
        vis += v
        feeds.update(f)
        outs += o
    graph = helper.make_graph(nodes, "rnn_cases", vis, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    return model, feeds, [o.name for o in outs]


def _reference(cases: list[RnnCase], feeds: dict[str, np.ndarray], names: list[str]):
    """onnxruntime's outputs. It has no batch-first layout, so layout-1 cases run as
    their layout-0 twins (same weights) on transposed inputs."""
    twin, _, _ = _model([replace(c, layout=0) for c in cases])
    batch_first = {f"c{k}." for k, c in enumerate(cases) if c.layout}
    twin_feeds = {n: a.transpose(1, 0, 2) if n[:n.index(".") + 1] in batch_first and
                  n.endswith((".X", ".h0", ".c0")) else a for n, a in feeds.items()}
    want, _ = reference_outputs(twin, twin_feeds, names)
    return [w.transpose((2, 0, 1, 3) if w.ndim == 4 else (1, 0, 2))
            if n[:n.index(".") + 1] in batch_first else w
            for n, w in zip(names, want, strict=True)]


def check(cases: list[RnnCase], atol: float = 2e-5) -> None:
    model, feeds, names = _model(cases)
    got = tinyc.InferenceSession(model, target="x86").run(names, feeds)
    want = _reference(cases, feeds, names)
    failures = [f"{n} ({cases[int(n[1:n.index('.')])]}): max error {np.abs(g - w).max():.3g}"
                for n, g, w in zip(names, got, want, strict=True)
                if not np.allclose(g, w, rtol=1e-4, atol=atol)]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_directions_layouts_and_states(op):
    cases = [RnnCase(op, d, layout=layout, init=init)
             for d in ("forward", "reverse", "bidirectional")
             for layout, init in ((0, False), (1, True))]
    cases += [RnnCase(op, "bidirectional", bias=False, init=True, batch=1, seq=1),
              RnnCase(op, "forward", hidden=32, n_in=40, batch=9, seq=4),  # M > one tile
              RnnCase(op, "reverse", outputs=(False, True, True)),
              RnnCase(op, "forward", outputs=(True, False, False))]
    check(cases)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_sequence_lens(op):
    lens = (5, 2, 0, 3)
    check([RnnCase(op, d, batch=4, lens=lens, init=True, layout=layout)
           for d in ("forward", "reverse", "bidirectional") for layout in (0, 1)])


def test_lstm_options():
    check([RnnCase("LSTM", "bidirectional", peephole=True, init=True),
           RnnCase("LSTM", "forward", attrs={"clip": 0.5}),
           RnnCase("LSTM", "forward", peephole=True, attrs={"input_forget": 1}),
           RnnCase("LSTM", "reverse", attrs={"activations": ["HardSigmoid", "Softsign", "Relu"],
                                             "activation_alpha": [0.3], "activation_beta": [0.4]}),
           RnnCase("LSTM", "bidirectional", attrs={
               "activations": ["Sigmoid", "ScaledTanh", "Tanh", "HardSigmoid", "Affine", "Elu"],
               "activation_alpha": [0.9, 0.25, 0.8, 1.1], "activation_beta": [1.2, 0.5, 0.1]})])


def test_gru_and_rnn_options():
    check([RnnCase("GRU", d, init=True, attrs={"linear_before_reset": 1})
           for d in ("forward", "reverse", "bidirectional")]
          + [RnnCase("GRU", "forward", attrs={"clip": 0.3, "linear_before_reset": 1}),
             RnnCase("GRU", "forward", lens=(3, 5, 1), attrs={"clip": 0.3}),
             RnnCase("GRU", "forward", attrs={"activations": ["HardSigmoid", "Softplus"]}),
             RnnCase("RNN", "bidirectional", attrs={"activations": ["Relu", "LeakyRelu"],
                                                    "activation_alpha": [0.2]}),
             RnnCase("RNN", "forward", attrs={"activations": ["ThresholdedRelu"],
                                              "activation_alpha": [0.1]})])


def test_activation_parameters_are_consumed_in_order():
    node = Node("LSTM", (), (), {"activations": ["HardSigmoid", "Tanh", "LeakyRelu"],
                                 "activation_alpha": [0.3, 0.05], "activation_beta": [0.6]})
    (acts,) = activations(node, "lstm", 1)
    assert acts == (("hard_sigmoid", (0.3, 0.6)), ("tanh", ()), ("leaky_relu", (0.05,)))


def test_weights_given_at_run_time():
    check([RnnCase("LSTM", "bidirectional", peephole=True, init=True, runtime_weights=True),
           RnnCase("GRU", "forward", lens=(3, 5, 1), runtime_weights=True),
           RnnCase("GRU", "reverse", attrs={"linear_before_reset": 1}, runtime_weights=True),
           RnnCase("RNN", "bidirectional", bias=False, runtime_weights=True, layout=1),
           RnnCase("GRU", "forward", hidden=40, n_in=50, runtime_weights=True)])  # > 1 panel


@pytest.mark.parametrize("target", [
    host_target(512),
    CpuTarget("aarch64-unknown-linux-gnu", "generic", "+neon", 128),
    CpuTarget("wasm32-unknown-unknown", "generic", "+simd128", 128),
], ids=["host-avx512", "aarch64", "wasm32"])
def test_cell_kernels_call_only_the_gemm(target):
    lanes = target.f32_lanes
    acts = {"lstm": (("sigmoid", ()), ("tanh", ()), ("tanh", ())),
            "gru": (("sigmoid", ()), ("tanh", ())), "rnn": (("relu", ()),)}
    specs = [CellSpec(kind, a, lanes, (8, 2), (2, 2), peephole=kind == "lstm")
             for kind, a in acts.items()]
    specs.append(CellSpec("gru", acts["gru"], lanes, (8, 2), (2, 2), linear_before_reset=True))
    module = new_module("m", target)
    for s in specs:
        s.kernel().build(module, target)
    asm = emit_assembly(optimize(module, target), target)
    bodies = dict(zip(*[iter(re.split(r"^(\w+):\n", asm, flags=re.M)[1:])] * 2, strict=True))
    for s in specs:
        calls = re.findall(r"^\s+(?:callq?|bl|call)\s+(\S+)", bodies[s.name], re.M)
        assert calls and all(c.startswith("gemm_f32_") for c in calls), (s.name, calls)
