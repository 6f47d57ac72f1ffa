"""Maximal convex regions: group units (nodes, or pattern chains run as one) of
the same device so that the graph of regions stays a DAG.

Merging two regions A and B is legal only if no path leaves one and re-enters
the other through a third region: A -> X -> B would make X wait for A and B
wait for X, so A+B could run neither before nor after X. Units are grouped in
two steps: in topological order, a unit joins a region of one of its producers
when that is legal (chains), then same-device regions merge pairwise while legal
(siblings, e.g. the two branches of a residual block). Every choice is ordered
by unit index, so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class UnitGraph:
    """Units 0..n-1 in a topological order, with their producers and devices."""

    preds: tuple[frozenset[int], ...]
    devices: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.devices)

    def succs(self) -> list[set[int]]:
        out: list[set[int]] = [set() for _ in range(self.size)]
        for u, ps in enumerate(self.preds):
            for p in ps:
                out[p].add(u)
        return out


def form_regions(units: UnitGraph) -> list[list[int]]:
    """Regions as sorted unit lists, in an order that runs every producer first."""
    groups = _grow_chains(units)
    groups = _merge_siblings(units, groups)
    return _topological(units, groups)


def _grow_chains(units: UnitGraph) -> list[list[int]]:
    region_of: dict[int, int] = {}
    groups: list[list[int]] = []
    succs = units.succs()
    for u in range(units.size):
        producers = sorted({region_of[p] for p in units.preds[u]})
        home = next((r for r in producers if units.devices[groups[r][0]] == units.devices[u]
                     and not _reaches(r, set(producers) - {r}, groups, region_of, succs)), None)
        if home is None:
            home = len(groups)
            groups.append([])
        groups[home].append(u)
        region_of[u] = home
    return groups


def _reaches(start: int, targets: set[int], groups: list[list[int]], region_of: dict[int, int],
             succs: list[set[int]]) -> bool:
    """Whether a region in `targets` can be reached from region `start` (over units
    placed so far)."""
    if not targets:
        return False
    seen, stack = {start}, [start]
    while stack:
        r = stack.pop()
        for u in groups[r]:
            for s in succs[u]:
                nxt = region_of.get(s)
                if nxt is None or nxt in seen:
                    continue
                if nxt in targets:
                    return True
                seen.add(nxt)
                stack.append(nxt)
    return False


def _merge_siblings(units: UnitGraph, groups: list[list[int]]) -> list[list[int]]:
    groups = [sorted(g) for g in groups]
    while True:
        pair = _first_legal_merge(units, groups)
        if pair is None:
            return groups
        a, b = pair
        groups[a] = sorted(groups[a] + groups[b])
        del groups[b]


def _first_legal_merge(units: UnitGraph, groups: list[list[int]]) -> tuple[int, int] | None:
    succ = _region_succs(units, groups)
    reach = _reachability(succ)
    for a in range(len(groups)):
        for b in range(a + 1, len(groups)):
            if units.devices[groups[a][0]] != units.devices[groups[b][0]]:
                continue
            if not _via_third(a, b, succ, reach) and not _via_third(b, a, succ, reach):
                return a, b
    return None


def _via_third(a: int, b: int, succ: list[set[int]], reach: list[int]) -> bool:
    """A path a -> x -> ... -> b with x != b."""
    return any(reach[x] >> b & 1 for x in succ[a] if x != b)


def _region_succs(units: UnitGraph, groups: list[list[int]]) -> list[set[int]]:
    region_of = {u: r for r, g in enumerate(groups) for u in g}
    succ: list[set[int]] = [set() for _ in groups]
    for u, ps in enumerate(units.preds):
        for p in ps:
            if region_of[p] != region_of[u]:
                succ[region_of[p]].add(region_of[u])
    return succ


def _reachability(succ: list[set[int]]) -> list[int]:
    """reach[r]: bit set of the regions reachable from r, r included (regions form a DAG)."""
    order = _topo_order(succ)
    reach = [1 << r for r in range(len(succ))]
    for r in reversed(order):
        for s in succ[r]:
            reach[r] |= reach[s]
    return reach


def _topo_order(succ: list[set[int]]) -> list[int]:
    indegree = [0] * len(succ)
    for ss in succ:
        for s in ss:
            indegree[s] += 1
    ready = sorted(r for r, d in enumerate(indegree) if d == 0)
    order: list[int] = []
    while ready:
        r = ready.pop(0)
        order.append(r)
        for s in sorted(succ[r]):
            indegree[s] -= 1
            if indegree[s] == 0:
                ready.append(s)
        ready.sort()
    if len(order) != len(succ):
        raise AssertionError("regions form a cycle")  # the merge rules exclude this
    return order


def _topological(units: UnitGraph, groups: Sequence[list[int]]) -> list[list[int]]:
    """Order regions so producers run first; among ready regions, the lowest unit first."""
    keyed = sorted(groups, key=lambda g: g[0])
    succ = _region_succs(units, keyed)
    return [keyed[r] for r in _topo_order(succ)]
