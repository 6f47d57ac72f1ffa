"""A node's tunable workload: what a tuning record is keyed by.

Any lowering with knobs calls `node_workload` to name what it computes (the
op, its operands' shapes, dtypes and constness, its attributes, the target's
hash, tinyc's version), states its knob space, and asks the context's schedule
source for a decision (`decide`). Only static shapes are tunable: a symbolic
size's decisions are guards (ir/symbolic.py), taken around its hint."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np

from .. import __version__
from ..ir import Node
from ..program import LowerContext
from ..schedule import Decision, KnobSpace, Tunable, Workload
from ..schedule.space import target_hash


def node_workload(node: Node, ctx: LowerContext, kernel: str,
                  dims: tuple[tuple[str, int], ...]) -> Workload | None:
    """None where a shape or a size is not a number (symbolic)."""
    names = [v for v in node.inputs if v] + [v for v in node.outputs if v]
    types = [ctx.graph.types[v] for v in names]
    if not all(isinstance(d, int) for t in types for d in t.shape) or \
            not all(isinstance(v, int) for _, v in dims):
        return None
    consts = tuple(ctx.graph.is_const(v) for v in node.inputs if v)
    return Workload(node.qualified_op, kernel, tuple(tuple(int(d) for d in t.shape) for t in types),
                    tuple(t.dtype.short for t in types), consts, _attrs_text(node),
                    target_hash(asdict(ctx.target)), __version__, dims)


def decide(ctx: LowerContext, node: Node, workload: Workload, space: KnobSpace) -> Decision:
    """The schedule source's decision for `node`'s workload."""
    return ctx.schedule.decide(Tunable(workload, space, node.name))


def _attrs_text(node: Node) -> str:
    def plain(v):
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, (bytes, bytearray)):
            return v.decode("utf-8", "replace")
        return v

    return json.dumps({k: plain(v) for k, v in sorted(node.attrs.items())}, sort_keys=True,
                      default=repr)
