"""Run many one-node ONNX cases through tinyc's lowerings with a single compile.

Each case is one ONNX op on its own inputs; all cases of a test become nodes of
one Graph, every kernel they need is compiled once, and each case's output is
compared with an oracle (onnxruntime, onnx.reference or numpy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tinyc.ir import Graph, Node, TensorType
from tinyc.lower.registry import lowering_for
from tinyc.program import LowerContext
from tinyc.testing.kernel_harness import host_target
from tinyc.testing.lowered_harness import run_node_calls

_ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16,
               np.dtype(np.int64): TensorProto.INT64, np.dtype(np.int32): TensorProto.INT32,
               np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.bool_): TensorProto.BOOL,
               np.dtype(np.float64): TensorProto.DOUBLE, np.dtype(np.int8): TensorProto.INT8,
               np.dtype(np.int16): TensorProto.INT16, np.dtype(np.uint16): TensorProto.UINT16,
               np.dtype(np.uint32): TensorProto.UINT32, np.dtype(np.uint64): TensorProto.UINT64}


@dataclass
class Case:
    op: str
    inputs: list[np.ndarray | None]  # None: an omitted optional input
    attrs: dict[str, Any] = field(default_factory=dict)
    consts: tuple[int, ...] = ()  # positions of inputs that are graph constants
    opset: int = 13

    def __str__(self) -> str:
        shapes = [None if a is None else a.shape for a in self.inputs]
        return f"{self.op}{shapes} {self.attrs} opset {self.opset}"

    def onnx_model(self):
        names = self.names()
        node = helper.make_node(self.op, names, ["y"], **self.attrs)
        named = list(enumerate(zip(names, self.inputs, strict=True)))
        inits = [numpy_helper.from_array(a, n) for k, (n, a) in named
                 if k in self.consts and a is not None]
        vis = [helper.make_tensor_value_info(n, _ONNX_TYPES[a.dtype], a.shape)
               for k, (n, a) in named if k not in self.consts and a is not None]
        out = helper.make_tensor_value_info("y", _ONNX_TYPES[self.inputs[0].dtype], None)
        graph = helper.make_graph([node], "case", vis, [out], initializer=inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                 ir_version=8)

    def names(self) -> list[str]:
        return ["" if a is None else f"x{k}" for k, a in enumerate(self.inputs)]

    def feeds(self) -> dict[str, np.ndarray]:
        return {n: a for k, (n, a) in enumerate(zip(self.names(), self.inputs, strict=True))
                if k not in self.consts and a is not None}


def ort_oracle(case: Case) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(case.onnx_model().SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, case.feeds())[0]


def reference_oracle(case: Case) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(case.onnx_model()).run(None, case.feeds())[0]


def run_cases(cases: list[Case], expected: list[np.ndarray]) -> list[np.ndarray]:
    """tinyc's output of every case (whose output shape/dtype `expected` gives)."""
    nodes, types, consts, feeds = [], {}, {}, {}
    for c, (case, want) in enumerate(zip(cases, expected, strict=True)):
        names = [f"c{c}.{n}" if n else "" for n in case.names()]
        for k, (n, a) in enumerate(zip(names, case.inputs, strict=True)):
            if a is None:
                continue
            types[n] = TensorType.of(a)
            (consts if k in case.consts else feeds)[n] = a
        types[f"c{c}.y"] = TensorType.of(np.asarray(want))
        nodes.append(Node(case.op, tuple(names), (f"c{c}.y",), case.attrs, name=f"case{c}"))
    target = host_target()
    buffers = {**feeds, **consts}
    lowered = []
    for c, (node, case) in enumerate(zip(nodes, cases, strict=True)):
        g = Graph("cases", tuple(feeds), (), (node,), types, consts, {"": case.opset})
        lowered.append(lowering_for(node)(node, LowerContext(g, target)))
        t = types[f"c{c}.y"]
        buffers[f"c{c}.y"] = np.full([int(d) for d in t.shape], 7, t.dtype.numpy)  # not zeros
    run_node_calls(lowered, buffers, target)
    return [buffers[f"c{c}.y"] for c in range(len(cases))]


def check_cases(cases: list[Case], oracle: Callable[[Case], np.ndarray] | Mapping,
                rtol: float = 1e-6, atol: float = 1e-6) -> None:
    """Assert every case matches its oracle; the message lists every failing case."""
    want = [oracle(c) for c in cases] if callable(oracle) else [oracle[str(c)] for c in cases]
    got = run_cases(cases, want)
    failures = []
    for case, g, w in zip(cases, got, want, strict=True):
        w = np.asarray(w)
        if g.shape != w.shape or g.dtype != w.dtype:
            failures.append(f"{case}: got {g.dtype}{g.shape}, want {w.dtype}{w.shape}")
        elif not np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol,
                             equal_nan=True):
            err = np.abs(g.astype(np.float64) - w.astype(np.float64)).max()
            failures.append(f"{case}: max abs error {err:.3g}")
    assert not failures, f"{len(failures)} of {len(cases)} cases differ:\n" + "\n".join(failures)
