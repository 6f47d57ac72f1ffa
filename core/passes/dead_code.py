"""dead_code: drop nodes whose results reach no graph output, and the
constants and types only they used. ONNX ops have no side effects, so a node
nobody reads can always go.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..ir import Graph, Node
from .base import FunctionPass


def eliminate_dead_code(g: Graph) -> Graph:
    live = set(g.outputs)
    kept: list[Node] = []
    for node in reversed(g.nodes):
        if any(o in live for o in node.outputs if o):
            kept.append(node)
            live.update(i for i in node.inputs if i)
            live.update(_captured_values(node))
    return g.with_nodes(reversed(kept))


def _captured_values(node: Node) -> Iterator[str]:
    """Outer values read by the bodies of control-flow nodes (If, Loop, Scan)."""
    for body in node.attrs.values():
        if isinstance(body, Graph):
            defined = set(body.inputs) | set(body.constants)
            defined.update(o for n in body.nodes for o in n.outputs)
            for n in body.nodes:
                yield from (i for i in n.inputs if i and i not in defined)
                yield from _captured_values(n)


dead_code_pass = FunctionPass("dead_code", eliminate_dead_code)
