"""The graph IR: typed values, nodes with attributes, constants.

A Graph is treated as immutable: passes build a new one with `replace`, so a
pass can never corrupt its input (TVM's IRModule => IRModule discipline).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dtypes import DType
from .symbolic import SymDim

# str: a symbolic dimension as imported ("batch"); SymDim: an expression of
# such symbols with a hint, as lowering sees them (ir/symbolic.py)
Dim = int | str | SymDim


@dataclass(frozen=True)
class TensorType:
    dtype: DType
    shape: tuple[Dim, ...]

    @property
    def is_static(self) -> bool:
        """Every dimension has a value when the model runs: a number, or an
        expression of the input sizes (a SymDim)."""
        return all(isinstance(d, (int, SymDim)) for d in self.shape)

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        if not self.is_static:
            raise ValueError(f"shape {self.shape} is not static")
        return math.prod(self.shape)  # type: ignore[arg-type]

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    def __str__(self) -> str:
        return f"{self.dtype.short}[{','.join(str(d) for d in self.shape)}]"

    @staticmethod
    def of(array: np.ndarray) -> TensorType:
        return TensorType(DType.from_numpy(array.dtype), tuple(int(d) for d in array.shape))


@dataclass(frozen=True)
class Node:
    """One operator application. An empty string in `inputs` is an omitted optional input."""

    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    domain: str = ""  # "" is the default ONNX domain; tinyc's own ops use "tinyc"

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def with_(self, **changes: Any) -> Node:
        return dataclasses.replace(self, **changes)

    @property
    def qualified_op(self) -> str:
        return f"{self.domain}.{self.op}" if self.domain else self.op


@dataclass(frozen=True)
class Graph:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    nodes: tuple[Node, ...]
    types: Mapping[str, TensorType]
    constants: Mapping[str, np.ndarray] = field(default_factory=dict)
    # Which opset each domain was imported at; lowering may need it.
    opsets: Mapping[str, int] = field(default_factory=dict)
    # Contents of small integer tensors known as expressions of the symbolic
    # dims (passes/symbolic_shapes.py): a Reshape's target, a Range's limit.
    dim_values: Mapping[str, tuple] = field(default_factory=dict)

    def replace(self, **changes: Any) -> Graph:
        return dataclasses.replace(self, **changes)

    def type_of(self, name: str) -> TensorType:
        return self.types[name]

    def is_const(self, name: str) -> bool:
        return name in self.constants

    def const(self, name: str) -> np.ndarray:
        return self.constants[name]

    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    users.setdefault(i, []).append(n)
        return users

    def with_nodes(self, nodes: Iterable[Node], types: Mapping[str, TensorType] | None = None,
                   constants: Mapping[str, np.ndarray] | None = None) -> Graph:
        """A copy with new nodes, dropping types and constants nothing refers to any more."""
        nodes = tuple(nodes)
        types = dict(self.types if types is None else types)
        constants = dict(self.constants if constants is None else constants)
        used = set(self.inputs) | set(self.outputs)
        for n in nodes:
            used.update(i for i in n.inputs if i)
            used.update(o for o in n.outputs if o)
        return self.replace(
            nodes=nodes,
            types={k: v for k, v in types.items() if k in used},
            constants={k: v for k, v in constants.items() if k in used},
        )
