"""A picture of a partitioned graph: nodes coloured by device, boxed by region.

Written directly as SVG with a simple layered layout (a node's row is its depth
in the graph), so `tinyc explain --svg` needs no Graphviz. Deterministic: the
same partition gives the same file.
"""

from __future__ import annotations

from html import escape

from ..ir import Graph
from .model import Partition

PALETTE = ("#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc", "#fc9272", "#fdd0a2")
BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 34, 20, 26, 20


def partition_svg(graph: Graph, partition: Partition) -> str:
    rows = _layers(graph)
    colours = {d: PALETTE[i % len(PALETTE)]
               for i, d in enumerate((partition.host, *partition.accelerators))}
    pos = {}
    for depth, names in enumerate(rows):
        for col, name in enumerate(names):
            pos[name] = (MARGIN + col * (BOX_W + GAP_X), MARGIN + 30 + depth * (BOX_H + GAP_Y))
    width = MARGIN * 2 + max(len(r) for r in rows) * (BOX_W + GAP_X) if rows else 200
    height = MARGIN * 2 + 30 + len(rows) * (BOX_H + GAP_Y)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">', _legend(colours)]
    parts += _edges(graph, pos)
    for node in graph.nodes:
        placement = partition.placements[node.name]
        x, y = pos[node.name]
        parts.append(_box(x, y, colours[placement.device], node.qualified_op, node.name,
                          placement.region, placement.why))
    parts.append("</svg>")
    return "\n".join(parts)


def _layers(graph: Graph) -> list[list[str]]:
    producers = graph.producers()
    depth: dict[str, int] = {}
    for node in graph.nodes:
        ins = [depth[producers[v].name] + 1 for v in node.inputs if v in producers]
        depth[node.name] = max(ins, default=0)
    rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in graph.nodes:
        rows[depth[node.name]].append(node.name)
    return rows


def _edges(graph: Graph, pos: dict[str, tuple[int, int]]) -> list[str]:
    producers = graph.producers()
    lines = []
    for node in graph.nodes:
        x1, y1 = pos[node.name]
        for v in node.inputs:
            if v in producers:
                x0, y0 = pos[producers[v].name]
                lines.append(f'<line x1="{x0 + BOX_W // 2}" y1="{y0 + BOX_H}" '
                             f'x2="{x1 + BOX_W // 2}" y2="{y1}" stroke="#888"/>')
    return lines


def _box(x: int, y: int, colour: str, op: str, name: str, region: int, why: str) -> str:
    label = escape(op if len(op) <= 22 else op[:21] + "~")
    sub = escape(f"r{region} {name}"[:24])
    return (f'<g><title>{escape(name)}: {escape(why)}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="4" fill="{colour}" '
            f'stroke="#333"/><text x="{x + 6}" y="{y + 14}">{label}</text>'
            f'<text x="{x + 6}" y="{y + 27}" fill="#444">{sub}</text></g>')


def _legend(colours: dict[str, str]) -> str:
    items = []
    for i, (device, colour) in enumerate(colours.items()):
        x = MARGIN + i * 160
        items.append(f'<rect x="{x}" y="{MARGIN}" width="14" height="14" fill="{colour}" '
                     f'stroke="#333"/><text x="{x + 20}" y="{MARGIN + 11}">{escape(device)}'
                     '</text>')
    return "<g>" + "".join(items) + "</g>"
