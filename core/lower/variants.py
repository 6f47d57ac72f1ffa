"""Variants of a node for data-dependent sizes (ir/symbolic.py,
Tracer.unbacked): a lowering's decision on such a size ("is NonZero's count
0?") cannot be checked before the run, so the node is lowered for each
outcome and the entry picks the variant when the node runs, from the size
the earlier kernel wrote. A variant the lowering refuses as a malformed model
(a Gather into an axis that would be empty) becomes a call that fails the run
with that message, when and only when that outcome happens.
"""

from __future__ import annotations

from dataclasses import replace

from ..codegen.kernels.ops.data_dependent import fail_kernel
from ..errors import ModelError
from ..ir.symbolic import DataDependentDecision, Guard, Tracer
from ..program import Call, ErrorSite, LowerContext, LoweredNode

MAX_DEPTH = 4  # decisions on data-dependent sizes one node may take (16 variants)


def split_on_data(fn, node, ctx: LowerContext, tracer: Tracer, depth: int = 0) -> LoweredNode:
    """The node lowered for both outcomes of its first data-dependent decision
    (and, recursively, of its later ones). A variant that has variants of its
    own stands in the calls of its side as one LoweredNode item."""
    mark = tracer.mark()
    ln = fn(node, ctx)
    dd = [g for g in tracer.since(mark) if tracer.data_dependent(g)]
    if not dd:
        return ln
    if depth >= MAX_DEPTH:
        tracer.refuse_data_dependent(dd)
    guard = dd[0]
    tracer.rollback(mark)
    this, other = (_lowered_if(fn, node, ctx, tracer, depth, guard, outcome)
                   for outcome in (guard.holds, not guard.holds))
    setup = this.setup or other.setup  # the same calls: run once, before the choice
    this, other = replace(this, setup=[]), replace(other, setup=[])
    if this.alt is not None and other.alt is None:  # variants on the `else` side
        this, other, guard = other, this, Guard(guard.kind, guard.poly, not guard.holds)
    if this.alt is not None:  # on both sides: the `then` side is one nested item
        this = replace(this, calls=[this], alt=None)
    return replace(this, setup=setup, alt=(guard, other, other.note or "variant"))


def _lowered_if(fn, node, ctx, tracer: Tracer, depth: int, guard: Guard,
                outcome: bool) -> LoweredNode:
    """The node lowered where the guard has this outcome."""
    with tracer.forcing(guard, outcome):
        try:
            return split_on_data(fn, node, ctx, tracer, depth + 1)
        except ModelError as e:
            return _failing(node, Guard(guard.kind, guard.poly, outcome), str(e))


def _failing(node, where_true: Guard, why: str) -> LoweredNode:
    """A variant for the outcome `where_true` states: it fails the run."""
    where = f"{node.op} node '{node.name}'"
    text = why if why.startswith(where) else f"{where}: {why}"
    site = ErrorSite(f"{text} (sizes computed from this run's data give "
                     f"{where_true.text})")
    return LoweredNode(node.name, node.op, node.outputs, [Call(fail_kernel(), (site,))],
                       note="fails the run: the data gave sizes this node cannot take")


def with_checks(ln: LoweredNode, checks: list[Call]) -> LoweredNode:
    """The node with its shape-input checks run first, in every variant."""
    if ln.alt is None:
        return replace(ln, calls=checks + ln.calls)
    guard, other, note = ln.alt
    other = with_checks(other, checks) if isinstance(other, LoweredNode) else checks + list(other)
    return replace(ln, calls=checks + ln.calls, alt=(guard, other, note))


__all__ = ["DataDependentDecision", "split_on_data", "with_checks"]
