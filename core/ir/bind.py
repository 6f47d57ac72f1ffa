"""Turn a graph's symbolic dimensions (names as imported) into SymDims.

The symbols are the names that appear as whole dimensions of the graph's
inputs; a run's sizes bind them. Any other named dimension is one ONNX shape
inference could not relate to the inputs (an "unk__" dim, or a name only an
output declares), so nothing at run time could give its value: such a graph
cannot be compiled symbolically.
"""

from __future__ import annotations

from collections.abc import Mapping

from .graph import Graph, TensorType
from .symbolic import SymDim


class UnboundSymbol(ValueError):
    pass


def input_symbols(g: Graph) -> list[str]:
    """Symbol names in order of first appearance among the inputs' dims."""
    seen: dict[str, None] = {}
    for v in g.inputs:
        for d in g.types[v].shape:
            if isinstance(d, str):
                seen.setdefault(d, None)
    return list(seen)


def bind_symbols(g: Graph, hints: Mapping[str, int]) -> Graph:
    """A copy whose str dims are SymDims with the given hints."""
    dims = {name: SymDim.symbol(name, int(h)) for name, h in hints.items()}
    types = {}
    for v, t in g.types.items():
        if any(isinstance(d, str) for d in t.shape):
            types[v] = TensorType(t.dtype, tuple(_bound(d, dims, v) for d in t.shape))
        else:
            types[v] = t
    return g.replace(types=types)


def _bound(d, dims: Mapping[str, SymDim], value: str):
    if not isinstance(d, str):
        return d
    if d not in dims:
        raise UnboundSymbol(f"dimension '{d}' of '{value}' is not a size of any input")
    return dims[d]
