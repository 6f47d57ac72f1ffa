"""Units: what the partitioner places as a whole. A unit is one node, or a chain
of nodes matching a pattern an accelerator runs as one (QLinearConv then Relu),
whose intermediate values nobody else reads."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..ir import Graph, Node
from ..target.registrations import OpPattern

Unit = tuple[int, ...]  # node indices, producer first


def group_units(graph: Graph, patterns: Sequence[OpPattern],
                keep_single: Collection[str] = ()) -> list[Unit]:
    """Units in graph order. Nodes named in `keep_single` (pinned or avoided by the
    user) are never part of a chain."""
    index = {id(n): i for i, n in enumerate(graph.nodes)}
    consumers = graph.consumers()
    producers = graph.producers()
    taken: set[int] = set()
    units: list[Unit] = []
    for i, node in enumerate(graph.nodes):
        if i in taken:
            continue
        chain = _longest_match(graph, node, patterns, consumers, producers, keep_single)
        unit = tuple(index[id(n)] for n in chain) if chain else (i,)
        taken.update(unit)
        units.append(unit)
    return sorted(units)


def order_units(graph: Graph, units: Sequence[Unit]) -> tuple[list[Unit], list[frozenset[int]]]:
    """Units in a topological order (lowest first node first among the ready ones:
    a chain's side input may come from a node after its head) and their producers."""
    preds = _unit_preds(graph, units)
    succs: list[set[int]] = [set() for _ in units]
    for u, ps in enumerate(preds):
        for p in ps:
            succs[p].add(u)
    indegree = [len(ps) for ps in preds]
    ready = [u for u in range(len(units)) if indegree[u] == 0]
    order: list[int] = []
    while ready:
        ready.sort(key=lambda u: units[u][0])
        u = ready.pop(0)
        order.append(u)
        for s in succs[u]:
            indegree[s] -= 1
            if indegree[s] == 0:
                ready.append(s)
    position = {u: k for k, u in enumerate(order)}
    return ([units[u] for u in order],
            [frozenset(position[p] for p in preds[u]) for u in order])


def _unit_preds(graph: Graph, units: Sequence[Unit]) -> list[frozenset[int]]:
    producers = graph.producers()
    index = {id(n): i for i, n in enumerate(graph.nodes)}
    unit_of = {i: u for u, members in enumerate(units) for i in members}
    preds = []
    for u, members in enumerate(units):
        ps = {unit_of[index[id(producers[v])]] for i in members for v in graph.nodes[i].inputs
              if v in producers}
        preds.append(frozenset(ps - {u}))
    return preds


def _longest_match(graph: Graph, head: Node, patterns: Sequence[OpPattern], consumers: dict,
                   producers: dict, keep_single: Collection[str]) -> list[Node] | None:
    best: list[Node] | None = None
    for pattern in patterns:
        chain = _match(graph, head, pattern, consumers, producers, keep_single)
        if chain and (best is None or len(chain) > len(best)):
            best = chain
    return best


def _match(graph: Graph, head: Node, pattern: OpPattern, consumers: dict, producers: dict,
           keep_single: Collection[str]) -> list[Node] | None:
    if len(pattern.ops) < 2 or head.qualified_op != pattern.ops[0]:
        return None
    chain = [head]
    for op in pattern.ops[1:]:
        out = chain[-1].outputs[0]
        users = consumers.get(out, [])
        if len(users) != 1 or out in graph.outputs or users[0].qualified_op != op:
            return None
        chain.append(users[0])
    if any(n.name in keep_single for n in chain):
        return None
    return chain if _side_inputs_independent(chain, producers) else None


def _side_inputs_independent(chain: list[Node], producers: dict) -> bool:
    """A later node's other inputs must not depend on the head: the chain would
    then wait for itself."""
    head_out = set(chain[0].outputs)
    for prev, node in zip(chain, chain[1:], strict=False):
        for v in node.inputs:
            if v and v not in prev.outputs and _depends_on(v, head_out, producers):
                return False
    return True


def _depends_on(value: str, targets: set[str], producers: dict) -> bool:
    seen, stack = set(), [value]
    while stack:
        v = stack.pop()
        if v in targets:
            return True
        node = producers.get(v)
        if node is None or v in seen:
            continue
        seen.add(v)
        stack.extend(i for i in node.inputs if i)
    return False
