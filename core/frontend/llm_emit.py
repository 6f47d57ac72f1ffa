"""A small helper for the LLM decompositions (llm_contrib.py): it writes the
standard ONNX nodes and constants that replace one contrib node, with names
derived from that node's so that dumps and errors still point at it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import UnsupportedOpsError


def attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def refuse(node: onnx.NodeProto, why: str) -> UnsupportedOpsError:
    return UnsupportedOpsError([(node.op_type, node.name or node.output[0], why)])


def inputs(node: onnx.NodeProto, count: int) -> list[str]:
    """The node's inputs padded with "" (absent optional inputs) to `count`."""
    return (list(node.input) + [""] * count)[:count]


class Emitter:
    """Collects the nodes and initializers that stand for one contrib node."""

    def __init__(self, node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]):
        self.node = node
        self.prefix = (node.name or node.output[0]) + "/tinyc"
        self.nodes: list[onnx.NodeProto] = []
        self.initializers = initializers  # name -> tensor, shared with the whole rewrite
        self.new_initializers: list[onnx.TensorProto] = []
        self._count = 0

    def keep(self) -> None:
        """Keep the node itself (a kernel computes it as it is)."""
        self.nodes.append(self.node)

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}/{hint}_{self._count}"

    def op(self, op_type: str, ins: Sequence[str], out: str | None = None, **attrs) -> str:
        """Add a one-output node; returns its output name (`out` or a fresh one)."""
        out = out or self.fresh(op_type)
        self.nodes.append(helper.make_node(op_type, list(ins), [out], name=self.fresh(op_type),
                                           **attrs))
        return out

    def op_n(self, op_type: str, ins: Sequence[str], outs: Sequence[str], **attrs) -> None:
        self.nodes.append(helper.make_node(op_type, list(ins), list(outs),
                                           name=self.fresh(op_type), **attrs))

    def const(self, value, dtype=None, hint: str = "const") -> str:
        array = np.asarray(value, dtype=dtype)
        name = self.fresh(hint)
        tensor = numpy_helper.from_array(array, name)
        self.new_initializers.append(tensor)
        self.initializers[name] = tensor
        return name

    def constant_value(self, name: str) -> np.ndarray | None:
        """The value of an initializer (None if `name` is computed at run time)."""
        t = self.initializers.get(name)
        return None if t is None else numpy_helper.to_array(t)


def heads_first(em: Emitter, x: str, heads: int, head: int) -> str:
    """[B, S, heads * head] -> [B, heads, S, head]."""
    x4 = em.op("Reshape", [x, em.const([0, 0, heads, head], np.int64, "shape")])
    return em.op("Transpose", [x4], perm=[0, 2, 1, 3])


def with_past(em: Emitter, new: str, past: str, present: str) -> str:
    """present = concat(past, new) along the sequence (the cache the keys come from)."""
    if not past:
        return em.op("Identity", [new], present or None)
    return em.op("Concat", [past, new], present or None, axis=2)
