"""Lower every node of a graph, reporting all unsupported nodes at once."""

from __future__ import annotations

from ..errors import NotLowerable, UnsupportedOpsError
from ..ir import Graph
from ..program import LowerContext, LoweredNode
from ..target.intrinsics import IntrinsicSet
from ..target.machine import CpuTarget
from .registry import lowering_for


def lower_graph(g: Graph, target: CpuTarget,
                intrinsics: tuple[IntrinsicSet, ...] = ()) -> list[LoweredNode]:
    ctx = LowerContext(g, target, intrinsics)
    lowered: list[LoweredNode] = []
    problems: list[tuple[str, str, str]] = []
    for node in g.nodes:
        fn = lowering_for(node)
        if fn is None:
            problems.append((node.qualified_op, node.name, "no lowering for this op"))
            continue
        try:
            lowered.append(fn(node, ctx))
        except NotLowerable as e:
            problems.append((node.qualified_op, node.name, str(e)))
    if problems:
        raise UnsupportedOpsError(problems)
    return lowered
