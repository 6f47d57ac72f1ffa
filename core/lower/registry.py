"""Which function lowers which op. Lowering modules register with @lowers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..codegen.machine import CpuTarget
from ..ir import Graph, Node
from ..target.intrinsics import IntrinsicSet
from .program import LoweredNode


class NotLowerable(Exception):
    """Raised by a lowering for a node it cannot handle; the message says why."""


@dataclass(frozen=True)
class LowerContext:
    graph: Graph
    target: CpuTarget
    # the target's intrinsic sets its features allow (Device.intrinsics), for the tensorizer
    intrinsics: tuple[IntrinsicSet, ...] = ()
    # Replaces the tensorizer's int8 GEMM planner for this lowering only: a device
    # that runs the GEMM itself (accel_sim) records the IntGemm the CPU would compute.
    int_gemm_planner: Callable | None = None


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
