"""Lowering: graph nodes -> kernel calls. Importing this package registers every lowering."""

from . import conv, elementwise, matmul, misc, pool, views  # noqa: F401  (registration)
from .lowering import lower_graph
from .program import Buf, Call, Const, LoweredNode, Scratch
from .registry import LowerContext, NotLowerable, lowering_for, lowers, supported_ops

__all__ = [
    "Buf", "Call", "Const", "LowerContext", "LoweredNode", "NotLowerable", "Scratch",
    "lower_graph", "lowering_for", "lowers", "supported_ops",
]
