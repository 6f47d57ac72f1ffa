"""Deterministic text form of a Graph, used in dumps and structural comparisons."""

from __future__ import annotations

import hashlib

import numpy as np

from .graph import Graph, Node

_INLINE_CONST_ELEMS = 8


def format_attr(value: object) -> str:
    if isinstance(value, float):
        return str(np.float32(value))
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_attr(v) for v in value) + "]"
    if isinstance(value, np.ndarray):
        return format_const(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Graph):
        return "{" + print_graph(value).replace("\n", " ") + "}"
    return str(value)


def format_const(a: np.ndarray) -> str:
    if a.size <= _INLINE_CONST_ELEMS:
        return "dense<[" + ",".join(_scalar(x) for x in a.reshape(-1)) + "]>"
    digest = hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()[:12]
    return f"dense<sha1:{digest}>"


def _scalar(x: object) -> str:
    if isinstance(x, (np.floating, float)):
        return str(np.float32(x)) if np.asarray(x).dtype != np.float64 else repr(float(x))
    return str(x.item() if isinstance(x, np.generic) else x)


def format_node(n: Node, g: Graph, rename: dict[str, str] | None = None) -> str:
    r = rename or {}

    def ref(v: str) -> str:
        return "%" + r.get(v, v) if v else "_"

    outs = ", ".join(f"{ref(o)}: {g.types[o]}" if o in g.types else ref(o) for o in n.outputs)
    args = ", ".join(ref(i) for i in n.inputs)
    attrs = ""
    if n.attrs:
        attrs = " {" + ", ".join(f"{k}={format_attr(n.attrs[k])}" for k in sorted(n.attrs)) + "}"
    return f"{outs} = {n.qualified_op}({args}){attrs}"


def print_graph(g: Graph, rename: dict[str, str] | None = None) -> str:
    r = rename or {}

    def ref(v: str) -> str:
        return "%" + r.get(v, v)

    params = ", ".join(f"{ref(i)}: {g.types[i]}" for i in g.inputs)
    lines = [f"graph {g.name}({params}) {{"]
    for c in _consts_in_use_order(g):
        lines.append(f"  {ref(c)}: {g.types[c]} = const {format_const(g.constants[c])}")
    for n in g.nodes:
        lines.append("  " + format_node(n, g, r))
    lines.append("  return " + ", ".join(ref(o) for o in g.outputs))
    lines.append("}")
    return "\n".join(lines)


def _consts_in_use_order(g: Graph) -> list[str]:
    seen: dict[str, None] = {}
    for n in g.nodes:
        for i in n.inputs:
            if i in g.constants:
                seen.setdefault(i)
    for o in g.outputs:
        if o in g.constants:
            seen.setdefault(o)
    return list(seen)
