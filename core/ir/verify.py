"""IR invariants, checked after every pass in tests (and on demand)."""

from __future__ import annotations

from .graph import Graph


class IRError(Exception):
    pass


def verify(g: Graph) -> None:
    defined = set(g.inputs) | set(g.constants)
    problems: list[str] = []
    for n in g.nodes:
        for i in n.inputs:
            if i and i not in defined:
                problems.append(f"{n.op} '{n.name}' uses '{i}' before it is defined")
        for o in n.outputs:
            if not o:
                continue
            if o in defined:
                problems.append(f"'{o}' is defined twice (again by {n.op} '{n.name}')")
            defined.add(o)
            if o not in g.types:
                problems.append(f"'{o}' (from {n.op} '{n.name}') has no type")
    for o in g.outputs:
        if o not in defined:
            problems.append(f"graph output '{o}' is never defined")
    for c, arr in g.constants.items():
        t = g.types.get(c)
        if t is not None and tuple(arr.shape) != tuple(t.shape):
            problems.append(f"constant '{c}' has shape {arr.shape} but type {t}")
    if problems:
        raise IRError("invalid graph:\n  " + "\n  ".join(problems))
