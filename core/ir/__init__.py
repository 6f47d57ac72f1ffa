"""Graph IR of tinyc."""

from .dtypes import DType
from .equality import assert_structurally_equal, canonical_text, structurally_equal
from .graph import Dim, Graph, Node, TensorType
from .printer import print_graph
from .verify import IRError, verify

__all__ = [
    "DType", "Dim", "Graph", "IRError", "Node", "TensorType", "assert_structurally_equal",
    "canonical_text", "print_graph", "structurally_equal", "verify",
]
