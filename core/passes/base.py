"""Passes: small named Graph -> Graph functions, composed with Sequential.

A pass never mutates its input. Running under a PassContext adds instruments:
verify after each pass, record time, keep a text dump after each pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..ir import Graph, print_graph, verify


@dataclass
class PassContext:
    verify: bool = False
    dump: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    dumps: list[tuple[str, str]] = field(default_factory=list)


class Pass:
    """Subclasses set `name` and implement `run`."""

    name: str = "pass"

    def run(self, g: Graph) -> Graph:
        raise NotImplementedError

    def __call__(self, g: Graph, ctx: PassContext | None = None) -> Graph:
        ctx = ctx or PassContext()
        t0 = time.perf_counter()
        out = self.run(g)
        ctx.timings[self.name] = ctx.timings.get(self.name, 0.0) + time.perf_counter() - t0
        if ctx.verify:
            verify(out)
        if ctx.dump:
            ctx.dumps.append((self.name, print_graph(out)))
        return out


class FunctionPass(Pass):
    """A pass made from a plain function."""

    def __init__(self, name: str, fn: Callable[[Graph], Graph]):
        self.name = name
        self._fn = fn

    def run(self, g: Graph) -> Graph:
        return self._fn(g)


class Sequential(Pass):
    name = "sequential"

    def __init__(self, passes: Sequence[Pass], name: str = "sequential"):
        self.passes = list(passes)
        self.name = name

    def __call__(self, g: Graph, ctx: PassContext | None = None) -> Graph:
        ctx = ctx or PassContext()
        for p in self.passes:
            g = p(g, ctx)
        return g
