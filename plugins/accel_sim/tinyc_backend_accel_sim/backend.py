"""The accel_sim backend: compiles partition regions into command streams."""

from __future__ import annotations

from tinyc.plugin import Graph, Node, TargetError, TargetSpec

from .engine import engine_of
from .layers import Unsupported, check_limits, job_for
from .program import Program, compile_region


class AccelSimBackend:
    name = "accel_sim"
    kind = "accelerator"

    def not_buildable_reason(self, spec: TargetSpec) -> str | None:
        try:
            engine_of(spec)
        except ValueError as e:
            return str(e)
        return None

    def cpu_target(self, spec: TargetSpec):
        raise TargetError(f"'{spec.name}' is an accelerator: it has no CPU target")

    def why_not(self, node: Node, graph: Graph, spec: TargetSpec) -> str | None:
        """Limits of this instance (its spec), beyond what the op support says."""
        if node.qualified_op in ("Relu", "Clip"):
            return None  # only ever taken as a fused post-op of a pattern
        try:
            job = job_for(node, graph)
        except Unsupported as e:
            return str(e)
        return check_limits(job, engine_of(spec))

    def compile_region(self, graph: Graph, spec: TargetSpec) -> Program:
        return compile_region(graph, engine_of(spec))
