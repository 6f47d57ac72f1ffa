"""Hand-built graphs and devices for partitioner tests: no plugin, no compiler."""

from __future__ import annotations

import numpy as np

from tinyc.ir import DType, Graph, Node, TensorType
from tinyc.partition import (
    DeviceProfile,
    accelerator_profile,
    cpu_profile,
    judge_from_support,
)
from tinyc.target import OpSupport

F32 = DType.float32


class Net:
    """n = Net(); x = n.input("x", (64, 64)); y = n.op("MatMul", "mm", x, n.weight(64, 64))"""

    def __init__(self) -> None:
        self.inputs: list[str] = []
        self.nodes: list[Node] = []
        self.types: dict[str, TensorType] = {}
        self.constants: dict[str, np.ndarray] = {}

    def input(self, name: str, shape: tuple[int, ...]) -> str:
        self.inputs.append(name)
        self.types[name] = TensorType(F32, shape)
        return name

    def weight(self, *shape: int) -> str:
        name = f"w{len(self.constants)}"
        self.constants[name] = np.zeros(shape, np.float32)
        self.types[name] = TensorType(F32, shape)
        return name

    def op(self, op: str, name: str, *inputs: str, shape: tuple[int, ...] | None = None) -> str:
        """A node named `name` whose output is `name` too (shape: the first input's)."""
        self.types[name] = TensorType(F32, shape or self.types[inputs[0]].shape)
        self.nodes.append(Node(op, inputs, (name,), {}, name=name))
        return name

    def mm(self, name: str, x: str, n: int = 256) -> str:
        """x[m, k] @ W[k, n]."""
        m, k = self.types[x].shape
        return self.op("MatMul", name, x, self.weight(k, n), shape=(m, n))

    def build(self, *outputs: str) -> Graph:
        return Graph("net", tuple(self.inputs), outputs, tuple(self.nodes), dict(self.types),
                     dict(self.constants))


def host() -> DeviceProfile:
    return cpu_profile("cpu", 256)


def npu(name: str = "npu", ops: tuple[str, ...] = ("MatMul", "Add"), rows: int = 16,
        clock_mhz: float = 1000, bytes_per_cycle: int = 64, setup_cycles: int = 200,
        patterns: tuple = ()) -> DeviceProfile:
    support = OpSupport(backend=name, ops=frozenset(ops), dtypes=frozenset({"float32"}),
                        patterns=patterns)
    params = {"array": {"rows": rows, "cols": rows}, "clock_mhz": clock_mhz,
              "dma": {"bytes_per_cycle": bytes_per_cycle, "setup_cycles": setup_cycles}}
    return accelerator_profile(name, params, judge_from_support([support]), patterns)
