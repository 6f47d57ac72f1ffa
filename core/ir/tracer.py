"""The tracer of a symbolic compile: the guards lowering's decisions on
symbolic sizes record (see ir/symbolic.py for the design), the decisions
forced while one variant of a node is lowered, and the data-dependent
("unbacked") sizes. One tracer per compile, found through a context variable.
"""

from __future__ import annotations

import contextvars
import math
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import NotLowerable
from .poly import (
    Poly,
    decide_bounded,
    decide_eq0,
    decide_ge0,
    evaluate_poly,
    poly_const,
    poly_substitute,
    poly_symbols,
    poly_text,
)

if TYPE_CHECKING:
    from .symbolic import SymDim


class SymbolicError(Exception):
    """A SymDim used where no tracer records its guards (a bug in tinyc)."""


class DataDependentDecision(NotLowerable):
    """A lowering decided something on a data-dependent size (an unbacked
    symbol, see Tracer.unbacked) that its bounds do not settle: no guard
    checked before the run could make that decision safe."""


# ---- guards -----------------------------------------------------------------------


@dataclass(frozen=True)
class Guard:
    """`poly >= 0` (kind "ge") or `poly == 0` (kind "eq") must be `holds`."""

    kind: str
    poly: Poly
    holds: bool

    def check(self, env: Mapping[str, int]) -> bool:
        v = evaluate_poly(self.poly, env)
        return ((v >= 0) if self.kind == "ge" else (v == 0)) == self.holds

    @property
    def text(self) -> str:
        """The relation as a person writes it: "N >= 8", "4*N == 32"."""
        op = {("ge", True): ">=", ("ge", False): "<", ("eq", True): "==",
              ("eq", False): "!="}[(self.kind, self.holds)]
        const = dict(self.poly).get((), 0)
        rest = tuple((m, c) for m, c in self.poly if m)
        return f"{poly_text(rest)} {op} {-const}"


@dataclass
class Tracer:
    """Collects the guards of one compile; `hints` are the symbols' values the
    compile is specialized around."""

    hints: dict[str, int] = field(default_factory=dict)
    # the smallest value each symbol may take (1 unless named here)
    lows: dict[str, int] = field(default_factory=dict)
    # the largest, where the user bounds it (CompileOptions.max_shapes); recorded
    # for the runtime, not used in decisions
    highs: dict[str, int] = field(default_factory=dict)
    guards: list[Guard] = field(default_factory=list)
    # for tinyc's developers: where each guard was taken (a few stack frames)
    record_origins: bool = False
    origins: list[list[str]] = field(default_factory=list)
    # decisions taken as given while one branch of a node is lowered (see
    # lower/lowering.py: a node may compile both outcomes of its guard)
    forced: dict[tuple[str, Poly], bool] = field(default_factory=dict)
    # "unbacked" symbols (PyTorch's term): sizes a kernel computes from data
    # during the run (NonZero's count, TopK's run-time k), each with an upper
    # bound in the input symbols; buffers are planned at the bound, and a
    # decision on one must hold for every value from 0 to the bound
    unbacked: dict[str, Poly] = field(default_factory=dict)
    _seen: set = field(default_factory=set)

    def mark(self) -> int:
        return len(self.guards)

    def since(self, mark: int) -> list[Guard]:
        return self.guards[mark:]

    def rollback(self, mark: int) -> None:
        """Forget the guards recorded after `mark`."""
        for g in self.guards[mark:]:
            self._seen.discard(g)
        del self.guards[mark:]
        del self.origins[mark:]

    def add(self, g: Guard) -> None:
        if g not in self._seen:
            self._seen.add(g)
            self.guards.append(g)

    @contextmanager
    def forcing(self, g: Guard, outcome: bool) -> Iterator[None]:
        self.forced[(g.kind, g.poly)] = outcome
        try:
            yield
        finally:
            del self.forced[(g.kind, g.poly)]

    def new_unbacked(self, bound: int | SymDim, what: str) -> SymDim:
        """A fresh data-dependent size in [0, bound]; `what` names it ("nonzero")."""
        from .symbolic import SymDim, dim, hint_of  # SymDim's decisions ask the tracer

        name = f"{what}{len(self.unbacked)}"
        if isinstance(bound, SymDim):  # in the input symbols only
            p = poly_substitute(bound.poly, self.unbacked)
            bound = dim(p, evaluate_poly(p, self.hints))
        self.unbacked[name] = bound.poly if isinstance(bound, SymDim) else poly_const(bound)
        self.lows[name] = 0
        self.hints[name] = hint_of(bound)  # heuristics (threads, tiles) plan for the most
        return SymDim.symbol(name, hint_of(bound))

    def data_dependent(self, g: Guard) -> bool:
        """Does the guard's outcome depend on a size only the run computes?"""
        return bool(self.unbacked) and bool(poly_symbols(g.poly) & self.unbacked.keys())

    def refuse_data_dependent(self, guards: list[Guard]) -> None:
        bad = [g for g in guards if self.data_dependent(g)]
        if bad:
            raise DataDependentDecision(
                f"the lowering decides '{bad[0].text}', which depends on a size computed "
                "from data during the run, and cannot be compiled for both outcomes")

    def decide(self, kind: str, p: Poly, hint_outcome: bool) -> bool:
        if kind == "eq" and self.unbacked and poly_symbols(p) & self.unbacked.keys():
            p = _primitive(p)  # 2*u == 0 is u == 0: one variant for both
        known = decide_ge0(p, self.lows) if kind == "ge" else decide_eq0(p, self.lows)
        if known is not None:
            return known
        if (kind, p) in self.forced:
            return self.forced[(kind, p)]
        if self.unbacked and poly_symbols(p) & self.unbacked.keys():
            known = decide_bounded(kind, p, self.lows, self.unbacked)
            if known is not None:
                return known
            # else a guard like any other, which lowering must turn into two
            # variants picked during the run (lower/lowering.py), as no check
            # before the run can know its outcome
        g = Guard(kind, p, hint_outcome)
        if g not in self._seen:
            self._seen.add(g)
            self.guards.append(g)
            if self.record_origins:
                frames = traceback.extract_stack()[-12:-3]
                self.origins.append([f"{f.filename.split('/')[-1]}:{f.lineno} {f.line}"
                                     for f in frames])
        return hint_outcome


def _primitive(p: Poly) -> Poly:
    """p divided by the gcd of its coefficients, its last term positive."""
    g = 0
    for _, c in p:
        g = math.gcd(g, c)
    if not p or g == 0:
        return p
    g = -g if p[-1][1] < 0 else g
    return tuple((m, c // g) for m, c in p)


_TRACER: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar("tinyc_tracer",
                                                                       default=None)


@contextmanager
def tracing(tracer: Tracer) -> Iterator[Tracer]:
    token = _TRACER.set(tracer)
    try:
        yield tracer
    finally:
        _TRACER.reset(token)


def current_tracer() -> Tracer | None:
    """The tracer of the compile in progress (None for a static model)."""
    return _TRACER.get()


def _tracer() -> Tracer:
    t = _TRACER.get()
    if t is None:
        raise SymbolicError("a symbolic dimension was compared outside a compile")
    return t
