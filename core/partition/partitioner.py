"""Place every node of a graph on one device of a deployment.

1. Each unit (a node, or a chain an accelerator runs as one) goes to the
   accelerator that runs it fastest among those that take it (ties: by name),
   unless the user pinned it elsewhere or kept that device off it; otherwise to
   the host.
2. Units of one device form maximal convex regions (regions.py).
3. Every accelerator region is priced on each device that could run all of it,
   transfers included (cost.py); a region moves to the cheapest, the host when
   offloading does not pay. Steps 2-3 repeat until nothing moves.

Nothing depends on dict or set iteration order, so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import TinycError
from ..ir import Graph, Node
from .cost import Estimator, RegionCost
from .devices import AVOIDED, NOT_WORTH_IT, DeviceProfile, Verdict
from .model import Partition, Placement, Region
from .regions import UnitGraph, form_regions
from .units import Unit, group_units, order_units


@dataclass(frozen=True)
class PartitionOptions:
    pin: Mapping[str, str] = field(default_factory=dict)  # node name -> device name
    avoid: Mapping[str, Sequence[str]] = field(default_factory=dict)  # device -> node names


def partition_graph(graph: Graph, profiles: Sequence[DeviceProfile],
                    options: PartitionOptions | None = None) -> Partition:
    """`profiles[0]` is the host CPU, the rest accelerators."""
    return _Partitioner(graph, profiles, options or PartitionOptions()).run()


def one_region(graph: Graph, host: str) -> Partition:
    """The partition of a deployment with one device: the whole graph is its region.
    Nothing is priced, so it holds for symbolic shapes too."""
    names = tuple(n.name for n in graph.nodes)
    region = Region(0, host, "cpu", names, tuple(graph.inputs), tuple(graph.outputs),
                    RegionCost(host, 0.0, 0.0, 0, 0))
    placements = {n.name: Placement(n.name, n.qualified_op, host, 0, "host only")
                  for n in graph.nodes}
    return Partition(graph.name, host, (), (region,), placements)


class _Partitioner:
    def __init__(self, graph: Graph, profiles: Sequence[DeviceProfile],
                 options: PartitionOptions):
        self.graph = graph
        self.host = profiles[0]
        self.accels = sorted(profiles[1:], key=lambda p: p.name)
        self.devices = {p.name: p for p in profiles}
        self.options = options
        _check_options(graph, self.devices, options)
        self.est = Estimator(graph)
        patterns = [p for a in self.accels for p in a.patterns]
        user_named = set(options.pin) | {n for ns in options.avoid.values() for n in ns}
        self.units, self.preds = order_units(graph, group_units(graph, patterns, user_named))
        self.verdicts = [{a.name: self._verdict(u, a) for a in self.accels}
                         for u in range(len(self.units))]
        self.rejected: dict[int, str] = {}  # unit -> why offloading it did not pay

    def run(self) -> Partition:
        choice = [self._first_choice(u) for u in range(len(self.units))]
        for _ in range(2 * len(self.units) + 2):  # each round moves units; bounded for safety
            groups = form_regions(UnitGraph(tuple(self.preds), tuple(choice)))
            moved = self._reprice(groups, choice)
            if not moved:
                return self._result(groups, choice)
        raise AssertionError("partitioning did not settle")

    # ---- step 1

    def _verdict(self, unit: Unit, accel: DeviceProfile) -> Verdict | None:
        nodes = self._nodes(unit)
        if any(n.name in self.options.avoid.get(accel.name, ()) for n in nodes):
            return Verdict(AVOIDED, f"kept off {accel.name} by the user")
        verdict = accel.judge(nodes[0], self.graph)
        if verdict is None and len(nodes) > 1:
            ops = tuple(n.qualified_op for n in nodes)
            if not any(p.ops == ops for p in accel.patterns):
                return Verdict("unsupported op", f"{accel.name} does not fuse {' + '.join(ops)}")
        return verdict

    def _first_choice(self, u: int) -> str:
        pinned = self._pin(u)
        if pinned:
            return pinned
        host_s = self._unit_seconds(u, self.host)
        takers = [a for a in self.accels if self.verdicts[u][a.name] is None]
        if not takers:
            if self._host_avoided(u):
                raise TinycError(f"'{self._nodes(u)[0].name}' is kept off {self.host.name} and "
                                 "no accelerator runs it")
            return self.host.name
        best = min(takers, key=lambda a: (self._unit_seconds(u, a), a.name))
        if self._unit_seconds(u, best) >= host_s and not self._host_avoided(u):
            self.rejected[u] = (f"not worth offloading: no faster on {best.name} "
                                f"({_us(self._unit_seconds(u, best))}) than on {self.host.name} "
                                f"({_us(host_s)}) even before moving data")
            return self.host.name
        return best.name

    def _host_avoided(self, u: int) -> bool:
        kept_off = self.options.avoid.get(self.host.name, ())
        return any(n.name in kept_off for n in self._nodes(u))

    def _pin(self, u: int) -> str | None:
        return next((self.options.pin[n.name] for n in self._nodes(u)
                     if n.name in self.options.pin), None)

    # ---- step 3

    def _reprice(self, groups: list[list[int]], choice: list[str]) -> bool:
        moved = False
        for group in groups:
            device = choice[group[0]]
            if device == self.host.name or any(self._pin(u) for u in group):
                continue
            costs = {name: self._cost_on(group, name, choice) for name in self._able(group)}
            best = min(costs, key=lambda d: (costs[d].total_s, d != self.host.name, d))
            if best == device or costs[best].total_s >= costs[device].total_s:
                continue
            for u in group:
                choice[u] = best
                if best == self.host.name:
                    self.rejected[u] = _not_worth(costs[device], costs[best])
            moved = True
        return moved

    def _able(self, group: list[int]) -> list[str]:
        able = [] if any(self._host_avoided(u) for u in group) else [self.host.name]
        able += [a.name for a in self.accels
                 if all(self.verdicts[u][a.name] is None for u in group)]
        return able

    def _cost_on(self, group: list[int], device: str, choice: list[str]) -> RegionCost:
        nodes = [n for u in group for n in self._nodes(u)]
        profile = self.devices[device]
        if profile.kind == "cpu":
            return self.est.region_cost(nodes, profile)
        crossing_in, crossing_out = self._crossings(group, device, choice)
        size = lambda vs: sum(self.graph.type_of(v).nbytes for v in vs)  # noqa: E731
        return self.est.region_cost(nodes, profile, size(crossing_in), size(crossing_out),
                                    len(crossing_in) + len(crossing_out))

    def _crossings(self, group: list[int], device: str,
                   choice: list[str]) -> tuple[list[str], list[str]]:
        """Values that must cross the link if `group` ran on `device`."""
        members = set(group)
        inside = {v for u in group for n in self._nodes(u) for v in n.outputs if v}
        device_of = {v: choice[u] for u in range(len(self.units)) for n in self._nodes(u)
                     for v in n.outputs if v}
        ins = sorted({v for u in group for n in self._nodes(u) for v in n.inputs
                      if v and v not in inside and not self.graph.is_const(v)
                      and device_of.get(v) != device})
        readers = {v: choice[u] for u in range(len(self.units)) if u not in members
                   for n in self._nodes(u) for v in n.inputs if v in inside}
        outs = sorted(v for v in inside
                      if v in self.graph.outputs or (v in readers and readers[v] != device))
        return ins, outs

    # ---- results

    def _result(self, groups: list[list[int]], choice: list[str]) -> Partition:
        regions = [self._region(k, g, choice) for k, g in enumerate(groups)]
        region_of = {n: r.index for r in regions for n in r.nodes}
        placements = {}
        for u in range(len(self.units)):
            for n in self._nodes(u):
                placements[n.name] = self._placement(u, n, choice[u], region_of[n.name])
        ordered = {n.name: placements[n.name] for n in self.graph.nodes}
        return Partition(self.graph.name, self.host.name, tuple(a.name for a in self.accels),
                         tuple(regions), ordered)

    def _region(self, index: int, group: list[int], choice: list[str]) -> Region:
        device = choice[group[0]]
        profile = self.devices[device]
        nodes = sorted(i for u in group for i in self.units[u])
        names = tuple(self.graph.nodes[i].name for i in nodes)
        ins, outs = _boundary(self.graph, [self.graph.nodes[i] for i in nodes])
        cost = self._cost_on(group, device, choice)
        cpu_s = self._cost_on(group, self.host.name, choice).total_s
        return Region(index, device, profile.kind, names, ins, outs, cost, cpu_s)

    def _placement(self, u: int, node: Node, device: str, region: int) -> Placement:
        pinned = self._pin(u) is not None
        if device != self.host.name:
            others = "".join(f", {_us(self._unit_seconds(u, a))} on {a.name}" for a in self.accels
                             if a.name != device and self.verdicts[u][a.name] is None)
            why = "pinned by the user" if pinned else (
                f"offloaded: {_us(self._unit_seconds(u, self.devices[device]))} vs "
                f"{_us(self._unit_seconds(u, self.host))} on {self.host.name}{others}")
            return Placement(node.name, node.qualified_op, device, region, why, "", pinned)
        if not self.accels:
            return Placement(node.name, node.qualified_op, device, region, "host only")
        category, why = self._fallback(u, pinned)
        return Placement(node.name, node.qualified_op, device, region, why, category, pinned)

    def _fallback(self, u: int, pinned: bool) -> tuple[str, str]:
        if pinned:
            return AVOIDED, f"pinned to {self.host.name} by the user"
        if u in self.rejected:
            return NOT_WORTH_IT, self.rejected[u]
        verdicts = [(a, self.verdicts[u][a]) for a in sorted(self.verdicts[u])]
        first = next(v for _, v in verdicts if v is not None)
        why = "; ".join(f"{a}: {v.reason}" for a, v in verdicts if v is not None)
        return first.category, why

    def _nodes(self, u: int) -> list[Node]:
        return [self.graph.nodes[i] for i in self.units[u]]

    def _unit_seconds(self, u: int, device: DeviceProfile) -> float:
        return sum(self.est.node_seconds(n, device) for n in self._nodes(u))


def _boundary(graph: Graph, nodes: list[Node]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A region's inputs (read, produced elsewhere, not constants) and outputs (read
    by other nodes or graph outputs), each in first-use order."""
    inside = {v for n in nodes for v in n.outputs if v}
    members = {id(n) for n in nodes}
    ins = [v for n in nodes for v in n.inputs if v and v not in inside and not graph.is_const(v)]
    read_outside = {v for n in graph.nodes if id(n) not in members for v in n.inputs}
    outs = [v for n in nodes for v in n.outputs
            if v and (v in read_outside or v in graph.outputs)]
    return tuple(dict.fromkeys(ins)), tuple(dict.fromkeys(outs))


def _not_worth(offloaded: RegionCost, host: RegionCost) -> str:
    return (f"not worth the transfer: {_us(offloaded.total_s)} on {offloaded.device} "
            f"({_us(offloaded.compute_s)} compute + {_us(offloaded.transfer_s)} moving "
            f"{offloaded.bytes_in + offloaded.bytes_out} bytes) vs {_us(host.total_s)} "
            f"on {host.device}")


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.3g} us"


def _check_options(graph: Graph, devices: Mapping[str, DeviceProfile],
                   options: PartitionOptions) -> None:
    names = {n.name for n in graph.nodes}
    problems = [f"pin names unknown node '{n}'" for n in options.pin if n not in names]
    problems += [f"pin names unknown device '{d}' for '{n}' (devices: {', '.join(devices)})"
                 for n, d in options.pin.items() if d not in devices]
    problems += [f"avoid names unknown device '{d}'" for d in options.avoid if d not in devices]
    problems += [f"avoid names unknown node '{n}'" for ns in options.avoid.values() for n in ns
                 if n not in names]
    for n, d in options.pin.items():
        if d in devices and n in names and devices[d].kind != "cpu":
            verdict = devices[d].judge(_node_named(graph, n), graph)
            if verdict is not None:
                problems.append(f"'{n}' is pinned to {d}, which cannot run it: {verdict.reason}")
    if problems:
        raise TinycError("partition options: " + "; ".join(problems))


def _node_named(graph: Graph, name: str) -> Node:
    return next(n for n in graph.nodes if n.name == name)
