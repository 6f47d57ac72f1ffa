"""What the registration hooks other than backends, specs and intrinsics take.

Plain frozen dataclasses, so a plugin depends on data shapes, not on the
internals of the partitioner, the pass pipeline or the runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..ir import Graph, Node

# Where a registered pass runs in the pipeline (DESIGN.md):
PASS_PHASES = (
    "after_import",  # on the imported graph, before tinyc's own passes
    "before_partition",  # after tinyc's default pipeline, on the whole graph
    "before_lower",  # on a region assigned to the pass's backend, before lowering
)


@dataclass(frozen=True)
class OpPattern:
    """A chain of ops (producer first) that the device runs as one unit, e.g. Conv, Relu."""

    name: str
    ops: tuple[str, ...]


@dataclass(frozen=True)
class OpSupport:
    """What a backend can run, for the partitioner: ops, dtypes, a finer check, patterns."""

    backend: str
    ops: frozenset[str]  # op types as Node.qualified_op spells them ("Conv", "tinyc.Conv")
    dtypes: frozenset[str] = frozenset()  # dtype names of inputs and outputs; empty: any
    check: Callable[[Node, Graph], str | None] | None = None  # why a node is not supported
    patterns: tuple[OpPattern, ...] = ()

    def why_not(self, node: Node, graph: Graph) -> str | None:
        """None when this backend can run `node`; else the reason, for the partition report."""
        if node.qualified_op not in self.ops:
            return f"{self.backend} does not run {node.qualified_op}"
        if self.dtypes:
            for v in (*node.inputs, *node.outputs):
                dtype = graph.type_of(v).dtype.name if v else None
                if dtype is not None and dtype not in self.dtypes:
                    return f"{self.backend} does not take {dtype} ({v})"
        return self.check(node, graph) if self.check else None


@dataclass(frozen=True)
class PassRegistration:
    """A Graph -> Graph pass (a tinyc.passes.Pass or any callable with a `name`)."""

    phase: str  # one of PASS_PHASES
    run: Callable[[Graph], Graph]
    name: str
    backend: str | None = None  # only for graphs or regions of this backend; None: all


@dataclass(frozen=True)
class RuntimeDevice:
    """How to load and run artifacts of some backends: in process, emulator, simulator."""

    name: str
    backends: tuple[str, ...]
    load: Callable[[str], object]  # artifact folder -> an object with .run(names, feeds)
    not_available_reason: Callable[[], str | None] = lambda: None
    description: str = ""
