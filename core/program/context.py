"""What a lowering is given: the graph, the CPU, its usable intrinsic sets and
the schedule source tunable lowerings ask for their configuration."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import NotLowerable
from ..ir import Graph
from ..schedule import DEFAULT_SCHEDULE, ScheduleSource
from ..target.intrinsics import IntrinsicSet
from ..target.machine import CpuTarget

__all__ = ["LowerContext", "NotLowerable"]


@dataclass(frozen=True)
class LowerContext:
    graph: Graph
    target: CpuTarget
    # the target's intrinsic sets its features allow (Device.intrinsics), for the tensorizer
    intrinsics: tuple[IntrinsicSet, ...] = ()
    # where tunable lowerings get their knobs' values (schedule/source.py)
    schedule: ScheduleSource = DEFAULT_SCHEDULE
