"""What an accelerator backend adds to the Backend protocol for split deployment.

The partitioner asks `why_not(node, graph, spec)` for limits that depend on the
instance (a spec's array and buffer sizes), beyond the op support registered;
the split compiler calls `compile_region(graph, spec)` with the region as a
graph of its own (its inputs, outputs and constants) and saves the program it
returns (a backend whose compile_region also takes `schedule=` gets the
compile's schedule source: tunable choices as tinyc.schedule describes them);
at run time, the RuntimeDevice registered for the backend loads the saved
programs and returns an `AcceleratorSession`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..ir import Graph, Node
from .spec import TargetSpec


@runtime_checkable
class RegionProgram(Protocol):
    def save(self, folder: str, stem: str) -> None:
        """Write the program as files `stem.*` in `folder` (one folder per device)."""
        ...


@runtime_checkable
class AcceleratorBackend(Protocol):
    name: str
    kind: str  # "accelerator"

    def why_not(self, node: Node, graph: Graph, spec: TargetSpec) -> str | None:
        """None when this instance runs `node`; else why not (shown by tinyc explain)."""
        ...

    def compile_region(self, graph: Graph, spec: TargetSpec) -> RegionProgram:
        ...


@runtime_checkable
class AcceleratorSession(Protocol):
    """A device at run time: its memory, and the region programs loaded on it."""

    def write(self, name: str, array: np.ndarray) -> None:
        """Copy a host tensor into device memory."""
        ...

    def read(self, name: str) -> np.ndarray:
        """Copy a tensor from device memory to the host."""
        ...

    def run(self, region: str) -> dict:
        """Run a region on what is in device memory; returns at least `seconds`
        (device time) and anything else worth a timeline (cycles, utilization)."""
        ...

    def transfer_seconds(self, nbytes: int) -> float:
        """Device time to move `nbytes` between host and device memory."""
        ...
