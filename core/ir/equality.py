"""Structural equality: two graphs are equal when they print the same after
values are renamed canonically (inputs, constants and node results in order).
"""

from __future__ import annotations

import difflib

from .graph import Graph
from .printer import _consts_in_use_order, print_graph


def canonical_names(g: Graph) -> dict[str, str]:
    names: dict[str, str] = {}
    for i, v in enumerate(g.inputs):
        names[v] = f"in{i}"
    for i, c in enumerate(_consts_in_use_order(g)):
        names.setdefault(c, f"c{i}")
    k = 0
    for n in g.nodes:
        for o in n.outputs:
            if o and o not in names:
                names[o] = f"v{k}"
                k += 1
    return names


def canonical_text(g: Graph) -> str:
    return print_graph(g.replace(name="g"), canonical_names(g))


def structurally_equal(a: Graph, b: Graph) -> bool:
    return canonical_text(a) == canonical_text(b)


def assert_structurally_equal(actual: Graph, expected: Graph) -> None:
    ta, te = canonical_text(actual), canonical_text(expected)
    if ta != te:
        diff = "\n".join(difflib.unified_diff(te.splitlines(), ta.splitlines(),
                                              "expected", "actual", lineterm=""))
        raise AssertionError("graphs differ structurally:\n" + diff)
