"""Which function lowers which op. Lowering modules register with @lowers."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import NotLowerable
from ..ir import Node
from ..program import LowerContext, LoweredNode

__all__ = ["LowerContext", "LowerFn", "NotLowerable", "lowering_for", "lowers", "supported_ops"]


LowerFn = Callable[[Node, LowerContext], LoweredNode]

_LOWERINGS: dict[str, LowerFn] = {}


def lowers(*ops: str) -> Callable[[LowerFn], LowerFn]:
    """Register a lowering for ops named like Node.qualified_op ("Conv", "tinyc.Conv")."""

    def register(fn: LowerFn) -> LowerFn:
        for op in ops:
            if op in _LOWERINGS:
                raise AssertionError(f"two lowerings for {op}")
            _LOWERINGS[op] = fn
        return fn

    return register


def lowering_for(node: Node) -> LowerFn | None:
    return _LOWERINGS.get(node.qualified_op)


def supported_ops() -> list[str]:
    return sorted(_LOWERINGS)
