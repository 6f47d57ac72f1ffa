"""Lower every node of a graph, reporting all unsupported nodes at once."""

from __future__ import annotations

from dataclasses import replace

from ..errors import NotLowerable, UnsupportedOpsError
from ..ir import Graph
from ..ir.symbolic import current_tracer
from ..program import LowerContext, LoweredNode
from ..schedule import DEFAULT_SCHEDULE, ScheduleSource
from ..target.intrinsics import IntrinsicSet
from ..target.machine import CpuTarget
from .registry import lowering_for
from .shape_checks import shape_input_checks
from .variants import split_on_data, with_checks


def _lower_node(fn, node, ctx: LowerContext) -> LoweredNode:
    """With symbolic sizes, a node whose lowering took one decision that is
    not the same for every size (a guard) is lowered once more with the
    other outcome, and the entry picks the variant at run time: one artifact
    then serves both sides (decode's M = 1 and prefill's M >= 8). A node that
    took several such decisions keeps them as the artifact's guards.
    Decisions on data-dependent sizes are always made into variants
    (lower/variants.py)."""
    checks = shape_input_checks(node, ctx)
    ln = _lower_variants(fn, node, ctx)
    return with_checks(ln, checks) if checks else ln


def _lower_variants(fn, node, ctx: LowerContext) -> LoweredNode:
    tracer = current_tracer()
    if tracer is None:
        return fn(node, ctx)
    mark = tracer.mark()
    ln = fn(node, ctx)
    new = tracer.since(mark)
    if any(tracer.data_dependent(g) for g in new):
        tracer.rollback(mark)
        return split_on_data(fn, node, ctx, tracer)
    if len(new) != 1 or ln.alt is not None:
        return ln
    (guard,) = new
    tracer.rollback(mark)
    try:
        with tracer.forcing(guard, not guard.holds):
            other = fn(node, ctx)
    except NotLowerable:
        other = None
    if other is None or tracer.since(mark) or other.alt is not None:
        tracer.rollback(mark)
        tracer.add(guard)
        return ln
    return replace(ln, alt=(guard, other.calls, other.note))


# Why an op without a lowering has none, where there is more to say
_MISSING = {
    "If": "control flow on run-time values is not compiled (an If whose condition follows "
          "from constants and static shapes is replaced by its branch: pin symbolic dims "
          "with --shape / input_shapes)",
    "Loop": "control flow (Loop) is not compiled",
    "Scan": "control flow (Scan) is not compiled",
}


def lower_graph(g: Graph, target: CpuTarget, intrinsics: tuple[IntrinsicSet, ...] = (),
                schedule: ScheduleSource = DEFAULT_SCHEDULE) -> list[LoweredNode]:
    ctx = LowerContext(g, target, intrinsics, schedule)
    lowered: list[LoweredNode] = []
    problems: list[tuple[str, str, str]] = []
    for node in g.nodes:
        fn = lowering_for(node)
        if fn is None:
            problems.append((node.qualified_op, node.name, _MISSING.get(node.qualified_op,
                                                                        "no lowering for this op")))
            continue
        try:
            lowered.append(_lower_node(fn, node, ctx))
        except NotLowerable as e:
            problems.append((node.qualified_op, node.name, str(e)))
    if problems:
        raise UnsupportedOpsError(problems)
    return lowered
