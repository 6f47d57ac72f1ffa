"""Ranks for values ONNX shape inference leaves unranked because a size
depends on run-time data: a reduction whose axes are a graph input (the
expanded ReduceL2 / ReduceLogSumExp functions) and the elementwise nodes after
it. Only the rank is decided here (from the axes tensor's length, keepdims
and noop_with_empty_axes); each dim is an unknown placeholder that symbolic
shape inference replaces with a data-dependent size
(passes/data_dependent_shapes.py).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

from ..ir import DType, Graph, Node, TensorType
from ..passes.data_dependent_shapes import runtime_axes

# ops whose output has the first input's rank
SAME_RANK = frozenset({"Cast", "CastLike", "Sqrt", "Log", "Exp", "Neg", "Abs", "Relu",
                       "Identity", "Reciprocal", "Sigmoid", "Tanh", "Floor", "Ceil"})


def with_data_dependent_ranks(g: Graph, elem_types: Mapping[str, DType],
                              unknown: itertools.count) -> Graph:
    """g with a placeholder-shaped type for each unranked value whose rank is
    known from the rules above (those without one stay untyped)."""
    types = dict(g.types)
    for node in g.nodes:
        rank = _rank(node, g, types)
        out = node.outputs[0] if node.outputs else ""
        if rank is None or not out or out in types or out not in elem_types:
            continue
        types[out] = TensorType(elem_types[out], tuple(f"?{next(unknown)}" for _ in range(rank)))
    return g.replace(types=types)


def _rank(node: Node, g: Graph, types: Mapping[str, TensorType]) -> int | None:
    x = types.get(node.inputs[0]) if node.inputs else None
    if x is None or node.domain:
        return None
    if node.op in SAME_RANK:
        return len(x.shape)
    if not runtime_axes(node, g) or node.inputs[1] not in types:
        return None
    naxes = math.prod(types[node.inputs[1]].shape)
    if not isinstance(naxes, int):
        return None
    rank = len(x.shape)
    if naxes == 0:
        return rank if node.attr("noop_with_empty_axes", 0) or node.attr("keepdims", 1) else 0
    if node.attr("keepdims", 1):
        return rank
    return rank - naxes if naxes <= rank else None
