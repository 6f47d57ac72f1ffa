"""A partitioned graph as Graphviz `dot` source: what `tinyc explain --svg/--png` draws.

Ranks run left to right, each region is a cluster coloured by its device, and
every edge is directed. A run of nodes that hand one tensor straight to the
next (a Conv -> Relu -> Conv chain) becomes one box: it has one way in and one
way out, so the collapsed picture shows exactly the connections of the graph.
Deterministic: the same partition gives the same text.

    text = partition_dot(graph, partition)
"""

from __future__ import annotations

import math

from ..ir import Graph, Node
from .model import Partition

PALETTE = ("#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc", "#fc9272", "#fdd0a2")
CLUSTER_TINT = ("#eef5fb", "#fff2e5", "#eef8ec", "#f3f3f9", "#feeceb", "#fff6ec")
MIN_CHAIN = 2  # collapse runs of this many nodes or more
SHOWN_OPS = 3  # a collapsed box names this many ops, then an ellipsis
MIN_RANKS_PER_ROW = 8


def partition_dot(graph: Graph, partition: Partition, min_chain: int = MIN_CHAIN,
                  ranks_per_row: int | None = None) -> str:
    groups = collapse_chains(graph, partition, min_chain)
    ids = {n.name: f"g{i}" for i, group in enumerate(groups) for n in group}
    edges = _edges(graph, groups, ids)
    depth = _depths(edges)
    per_row = ranks_per_row or _ranks_per_row(max(depth.values(), default=0) + 1)
    row = {box: d // per_row for box, d in depth.items()}
    devices = (partition.host, *partition.accelerators)
    colour = {d: i % len(PALETTE) for i, d in enumerate(devices)}
    lines = [f'digraph "{_esc(graph.name or "graph")}" {{',
             "  rankdir=LR; newrank=true; nodesep=0.15; ranksep=0.3;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
             '  edge [dir=forward, arrowhead=normal, arrowsize=0.6, color="#555555"];',
             *_legend(devices, colour)]
    rows = sorted(set(row.values()) | {0})
    for r in rows:
        lines += _row(r, row, groups, ids, graph, partition, colour)
    lines += _row_order(rows)
    lines += _ends(graph)
    lines += [_edge(a, b, row) for a, b in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def collapse_chains(graph: Graph, partition: Partition, min_chain: int) -> list[list[Node]]:
    """The graph's nodes in order, grouped: a group is a chain to draw as one box, or
    a single node. A node joins its producer's chain when it reads only that
    producer's one output, nothing else reads it, and both sit in one region."""
    producers, consumers = graph.producers(), graph.consumers()
    region = {name: p.region for name, p in partition.placements.items()}
    chains: list[list[Node]] = []
    chain_of: dict[str, list[Node]] = {}
    for node in graph.nodes:
        prev = _sole_producer(graph, node, producers, consumers)
        if prev is not None and region[prev.name] == region[node.name]:
            chain = chain_of[prev.name]
        else:
            chain = []
            chains.append(chain)
        chain.append(node)
        chain_of[node.name] = chain
    groups: list[list[Node]] = []
    for chain in chains:  # short chains stay as single nodes: their ops say more
        groups += [chain] if len(chain) >= min_chain else [[n] for n in chain]
    return groups


def _sole_producer(graph: Graph, node: Node, producers: dict, consumers: dict) -> Node | None:
    data = _data_inputs(graph, node)
    if len(data) != 1 or data[0] not in producers or data[0] in graph.outputs:
        return None
    prev = producers[data[0]]
    if [o for o in prev.outputs if o] != [data[0]] or len(consumers[data[0]]) != 1:
        return None
    return prev


def _data_inputs(graph: Graph, node: Node) -> list[str]:
    """The tensors a node reads that are not weights or other constants, once each."""
    return list(dict.fromkeys(v for v in node.inputs if v and not graph.is_const(v)))


def _ranks_per_row(ranks: int) -> int:
    """Wrap a long graph into rows, as text wraps, so the picture stays near 3:2
    rather than one strip. A rank is about as wide as a row is tall (~200 px at
    these labels), so r ranks per row over ranks/r rows is 3:2 at r*r = 1.5 ranks."""
    return max(MIN_RANKS_PER_ROW, math.isqrt(3 * ranks // 2))


def _depths(edges: list[tuple[str, str]]) -> dict[str, int]:
    """The longest path from an input to each box (edges come in producer order)."""
    depth: dict[str, int] = {}
    for a, b in edges:
        depth.setdefault(a, 0)
        depth[b] = max(depth.get(b, 0), depth[a] + 1)
    return depth


def _edge(a: str, b: str, row: dict[str, int]) -> str:
    if row[a] == row[b]:
        return f"  {a} -> {b};"
    # from the end of one row to the start of the next: drawn, but must not
    # push the next row's ranks to the right, or the rows would not wrap
    return f'  {a} -> {b} [constraint=false, color="#8888cc", style=dashed];'


def _row(r: int, row, groups, ids, graph: Graph, partition: Partition, colour) -> list[str]:
    """One row of the wrapped picture: its pieces of the regions, each a cluster."""
    lines = [f'  subgraph cluster_row{r} {{ label=""; style=invis;',
             f"    row{r} [shape=point, style=invis, width=0];"]
    for region in partition.regions:
        inside = set(region.nodes)
        mine = [(row.get(ids[g[0].name], 0), g) for g in groups if g[0].name in inside]
        here = [g for at, g in mine if at == r]
        if here:
            title = f"region {region.index}: {region.device}"
            if r > min(at for at, _ in mine):
                title += " (cont.)"
            lines += _cluster(f"r{region.index}_{r}", title, colour[region.device], here, ids,
                              graph, partition)
    lines.append("  }")
    return lines


def _row_order(rows: list[int]) -> list[str]:
    """Rows top to bottom in order: each row holds an invisible anchor, the anchors
    share the first rank, and an edge within a rank fixes its ends' order."""
    if len(rows) < 2:
        return []
    anchors = "; ".join(f"row{r}" for r in rows)
    chain = " -> ".join(f"row{r}" for r in rows)
    return [f"  {{ rank=same; {anchors}; }}", f"  {chain} [style=invis];"]


def _cluster(key: str, title: str, c: int, groups, ids, graph: Graph,
             partition: Partition) -> list[str]:
    lines = [f"    subgraph cluster_{key} {{",
             f'      label="{_esc(title)}"; fontname="Helvetica"; fontsize=11;'
             f' style="rounded,filled"; color="{PALETTE[c]}"; fillcolor="{CLUSTER_TINT[c]}";']
    for group in groups:
        why = partition.placements[group[0].name].why
        lines.append(f'      {ids[group[0].name]} [label="{_label(group, graph)}", '
                     f'fillcolor="{PALETTE[c]}", tooltip="{_esc(_tooltip(group, why))}"];')
    lines.append("    }")
    return lines


def _label(group: list[Node], graph: Graph) -> str:
    """Op (or the chain's first ops) over the output shape; a chain's node count
    goes on the second line to keep boxes, and so ranks, narrow."""
    ops = [n.qualified_op for n in group]
    if len(ops) > SHOWN_OPS:
        ops = [*ops[:SHOWN_OPS - 1], "…"]
    out = next((v for v in group[-1].outputs if v), "")
    below = [f"{len(group)} nodes"] if len(group) > 1 else []
    if _shape(graph, out):
        below.append(_shape(graph, out))
    head = " → ".join(_esc(op) for op in ops)
    return f"{head}\\n{' · '.join(below)}" if below else head


def _shape(graph: Graph, value: str) -> str:
    t = graph.types.get(value)
    if t is None:
        return ""
    return "×".join(str(d) for d in t.shape) or "scalar"


def _tooltip(group: list[Node], why: str) -> str:
    names = ", ".join(n.name for n in group)
    return f"{names}: {why}" if why else names


def _ends(graph: Graph) -> list[str]:
    """Graph inputs and outputs as plain ovals outside every cluster."""
    lines = []
    for i, v in enumerate(graph.inputs):
        lines.append(f'  in{i} [label="{_esc(v)}\\n{_shape(graph, v)}", shape=oval, '
                     'style=filled, fillcolor="#ffffff"];')
    for i, v in enumerate(graph.outputs):
        lines.append(f'  out{i} [label="{_esc(v)}\\n{_shape(graph, v)}", shape=oval, '
                     'style=filled, fillcolor="#ffffff"];')
    return lines


def _edges(graph: Graph, groups: list[list[Node]], ids: dict[str, str]) -> list[tuple[str, str]]:
    """One edge per pair of connected boxes (a box read twice draws one arrow)."""
    producers = graph.producers()
    source = {v: f"in{i}" for i, v in enumerate(graph.inputs)}
    source.update({v: ids[n.name] for v, n in producers.items()})
    edges: dict[tuple[str, str], None] = {}
    for group in groups:
        for node in group:
            for v in _data_inputs(graph, node):
                if v in source and source[v] != ids[node.name]:
                    edges[(source[v], ids[node.name])] = None
    for i, v in enumerate(graph.outputs):
        if v in source:
            edges[(source[v], f"out{i}")] = None
    return list(edges)


def _legend(devices, colour) -> list[str]:
    cells = "".join(f'<td bgcolor="{PALETTE[colour[d]]}">{_esc(d)}</td>' for d in devices)
    return ['  legend [shape=plain, style="", label=<<table border="0" cellspacing="2" '
            f'cellborder="1"><tr><td border="0">devices</td>{cells}</tr></table>>];']


def _esc(text: str) -> str:
    """Safe inside a double-quoted dot string and an HTML-like label."""
    return (text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
            .replace("<", "&lt;").replace(">", "&gt;"))
