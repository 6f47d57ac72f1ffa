"""Test-only helper to write small Before / Expected graphs inline.

    b = GraphBuilder()
    x = b.input("x", (1, 3, 8, 8))
    w = b.const("w", np.ones((4, 3, 3, 3), np.float32))
    y = b.op("Conv", x, w, shape=(1, 4, 6, 6), kernel_shape=[3, 3])
    g = b.build(y)

Values are named v0, v1, ... unless `out=` says otherwise; every output gets a
type (the first input's dtype unless `dtype=` says otherwise).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyc.ir import DType, Graph, Node, TensorType, canonical_text, verify
from tinyc.passes import Pass, PassContext

F32 = DType.float32


class GraphBuilder:
    def __init__(self, opset: int = 13):
        self.opset = opset
        self.inputs: list[str] = []
        self.nodes: list[Node] = []
        self.types: dict[str, TensorType] = {}
        self.constants: dict[str, np.ndarray] = {}

    def input(self, name: str, shape: tuple, dtype: DType = F32) -> str:
        self.inputs.append(name)
        self.types[name] = TensorType(dtype, tuple(shape))
        return name

    def const(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        array = np.asarray(value, dtype=dtype)
        self.constants[name] = array
        self.types[name] = TensorType.of(array)
        return name

    def op(self, op: str, *inputs: str, shape: tuple, dtype: DType | None = None,
           out: str | None = None, domain: str = "", **attrs: Any) -> str:
        """A single-output node; returns its output's name."""
        return self.op_multi(op, inputs, [(out, shape, dtype)], domain=domain, **attrs)[0]

    def op_multi(self, op: str, inputs: tuple[str, ...] | list[str],
                 outputs: list[tuple[str | None, tuple, DType | None]], domain: str = "",
                 **attrs: Any) -> list[str]:
        """A node with several outputs, each given as (name or None, shape, dtype or None);
        a shape of None leaves that output omitted ("")."""
        names = []
        for name, shape, dtype in outputs:
            if shape is None:
                names.append("")
                continue
            name = name or f"v{len(self.types)}"
            self.types[name] = TensorType(dtype or self._dtype_of(inputs), tuple(shape))
            names.append(name)
        self.nodes.append(Node(op, tuple(inputs), tuple(names), dict(attrs),
                               name=f"{op}_{len(self.nodes)}", domain=domain))
        return names

    def build(self, *outputs: str) -> Graph:
        return Graph("g", tuple(self.inputs), tuple(outputs), tuple(self.nodes), dict(self.types),
                     dict(self.constants), {"": self.opset})

    def _dtype_of(self, inputs: tuple[str, ...] | list[str]) -> DType:
        typed = [self.types[i].dtype for i in inputs if i in self.types]
        return typed[0] if typed else F32


def run_pass(p: Pass, before: Graph) -> Graph:
    """Run `p` the way tests should: verified before and after, and checked not to
    have touched its input."""
    verify(before)
    snapshot = canonical_text(before)
    after = p(before, PassContext(verify=True))
    assert canonical_text(before) == snapshot, f"{p.name} mutated its input"
    return after
