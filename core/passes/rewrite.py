"""A small local-rewrite engine shared by the Graph -> Graph passes.

A rule looks at one anchor node (the last node of the pattern it matches) and
may return a Rewrite: which nodes go, which come instead, and what new values
they need. `rewrite_graph` applies non-overlapping rewrites in sweeps over the
node list until a sweep changes nothing, so chains (Conv -> BN -> Mul -> Add)
fold one link per sweep without a rule having to know about the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..ir import Graph, Node, TensorType


class GraphView:
    """Read-only lookups a rule needs (producers, users), plus fresh value names."""

    def __init__(self, g: Graph):
        self.graph = g
        self.outputs = set(g.outputs)
        self._producer = g.producers()
        self._users = g.consumers()
        self._taken = set(g.types) | set(g.constants) | set(g.inputs) | set(self._producer)

    def producer(self, value: str) -> Node | None:
        return self._producer.get(value)

    def users(self, value: str) -> list[Node]:
        """Consuming nodes, one entry per use (Add(x, x) uses x twice)."""
        return self._users.get(value, [])

    def is_used(self, value: str) -> bool:
        return value in self.outputs or bool(self.users(value))

    def has_single_use(self, value: str) -> bool:
        """True when exactly one input slot reads `value` and it is not a graph output,
        i.e. the value may disappear into its user."""
        return value not in self.outputs and len(self.users(value)) == 1

    def const(self, value: str) -> np.ndarray | None:
        return self.graph.constants.get(value) if value else None

    def type_of(self, value: str) -> TensorType:
        return self.graph.types[value]

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self._taken:
            k += 1
            name = f"{base}_{k}"
        self._taken.add(name)
        return name


@dataclass
class Rewrite:
    """Replace the `old` nodes by `new`, emitted where `at` stood (default: the
    last of `old`, so every value the old nodes read is already defined there).

    `renames` substitutes value names in every node input and is how a node
    that merely forwards its input is removed. New values need `types`.
    """

    old: Sequence[Node]
    new: Sequence[Node] = ()
    constants: Mapping[str, np.ndarray] = field(default_factory=dict)
    types: Mapping[str, TensorType] = field(default_factory=dict)
    renames: Mapping[str, str] = field(default_factory=dict)
    at: Node | None = None


Rule = Callable[[GraphView, Node], Rewrite | None]


def rewrite_graph(g: Graph, rules: Sequence[Rule], max_sweeps: int = 1000) -> Graph:
    for _ in range(max_sweeps):
        rewrites = _match_sweep(GraphView(g), rules)
        if not rewrites:
            return g
        g = _apply(g, rewrites)
    raise RuntimeError(f"rewrite did not converge after {max_sweeps} sweeps")


def _match_sweep(view: GraphView, rules: Sequence[Rule]) -> list[Rewrite]:
    claimed: set[int] = set()
    found: list[Rewrite] = []
    for node in view.graph.nodes:
        if id(node) in claimed:
            continue
        for rule in rules:
            rw = rule(view, node)
            if rw is None or any(id(n) in claimed for n in rw.old):
                continue
            claimed.update(id(n) for n in rw.old)
            found.append(rw)
            break
    return found


def _apply(g: Graph, rewrites: list[Rewrite]) -> Graph:
    removed = {id(n) for rw in rewrites for n in rw.old}
    emitted_at = {id(rw.at or rw.old[-1]): rw for rw in rewrites}
    nodes: list[Node] = []
    for n in g.nodes:
        if id(n) in emitted_at:
            nodes.extend(emitted_at[id(n)].new)
        elif id(n) not in removed:
            nodes.append(n)
    types, constants = dict(g.types), dict(g.constants)
    renames: dict[str, str] = {}
    for rw in rewrites:
        types.update(rw.types)
        constants.update(rw.constants)
        renames.update(rw.renames)
    if renames:
        nodes = rename_inputs(nodes, resolve_renames(renames))
    return g.with_nodes(nodes, types=types, constants=constants)


def resolve_renames(renames: Mapping[str, str]) -> dict[str, str]:
    """Follow chains (a -> b, b -> c gives a -> c) so one substitution suffices."""
    resolved: dict[str, str] = {}
    for src in renames:
        dst, seen = renames[src], {src}
        while dst in renames and dst not in seen:
            seen.add(dst)
            dst = renames[dst]
        resolved[src] = dst
    return resolved


def rename_inputs(nodes: Iterable[Node], renames: Mapping[str, str]) -> list[Node]:
    out = []
    for n in nodes:
        if any(i in renames for i in n.inputs):
            n = n.with_(inputs=tuple(renames.get(i, i) for i in n.inputs))
        out.append(n)
    return out


def is_onnx(node: Node, *ops: str) -> bool:
    """True for a default-domain node, optionally restricted to the given op names."""
    return node.domain in ("", "ai.onnx") and (not ops or node.op in ops)
