"""A partition: which device runs each node, in which region, and why.

It prints as text (the `tinyc explain` report), converts to JSON, and is what
the split compiler follows: regions run in the order listed, each on one device.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from .cost import RegionCost
from .devices import CATEGORIES


@dataclass(frozen=True)
class Placement:
    node: str
    op: str
    device: str
    region: int
    why: str  # for an offloaded node: the gain; for a CPU node: why no accelerator took it
    category: str = ""  # a CPU fallback's kind (devices.CATEGORIES); "" otherwise
    pinned: bool = False


@dataclass(frozen=True)
class Region:
    index: int
    device: str
    kind: str  # "cpu" or "accelerator"
    nodes: tuple[str, ...]  # node names, in an order that runs producers first
    inputs: tuple[str, ...]  # values read from outside the region (no constants)
    outputs: tuple[str, ...]  # values read by later regions or the graph's outputs
    cost: RegionCost
    cpu_cost_s: float = 0.0  # the same nodes on the host, for comparison


@dataclass(frozen=True)
class Partition:
    graph: str
    host: str
    accelerators: tuple[str, ...]
    regions: tuple[Region, ...]
    placements: dict[str, Placement]  # by node name, in graph order
    notes: tuple[str, ...] = field(default=())

    @property
    def fallbacks(self) -> Counter:
        """CPU fallbacks by reason category (every node an accelerator did not take)."""
        return Counter(p.category for p in self.placements.values() if p.category)

    def nodes_on(self, device: str) -> list[str]:
        return [p.node for p in self.placements.values() if p.device == device]

    def text(self) -> str:
        return "\n".join(_summary(self) + _region_lines(self) + _fallback_lines(self)
                         + _node_lines(self))

    def to_json(self) -> dict:
        return {
            "graph": self.graph, "host": self.host, "accelerators": list(self.accelerators),
            "regions": [_region_json(r) for r in self.regions],
            "nodes": [asdict(p) for p in self.placements.values()],
            "fallbacks": {c: self.fallbacks.get(c, 0) for c in CATEGORIES},
        }


def _region_json(r: Region) -> dict:
    return {"index": r.index, "device": r.device, "kind": r.kind, "nodes": list(r.nodes),
            "inputs": list(r.inputs), "outputs": list(r.outputs),
            "estimate_us": round(r.cost.total_s * 1e6, 3),
            "compute_us": round(r.cost.compute_s * 1e6, 3),
            "transfer_us": round(r.cost.transfer_s * 1e6, 3),
            "bytes_in": r.cost.bytes_in, "bytes_out": r.cost.bytes_out,
            "cpu_estimate_us": round(r.cpu_cost_s * 1e6, 3)}


def _summary(p: Partition) -> list[str]:
    n = len(p.placements)
    devices = [p.host, *p.accelerators]
    counts = ", ".join(f"{len(p.nodes_on(d))} on {d}" for d in devices)
    return [f"partition of '{p.graph}' over {' + '.join(devices)}: {n} nodes ({counts}), "
            f"{len(p.regions)} regions", *p.notes]


def _region_lines(p: Partition) -> list[str]:
    lines = ["", "regions (in run order):"]
    for r in p.regions:
        ops = Counter(p.placements[n].op for n in r.nodes)
        shown = ", ".join(f"{op} x{k}" if k > 1 else op for op, k in ops.most_common(4))
        more = ", ..." if len(ops) > 4 else ""
        line = f"  {r.index:>3} {r.device:<16} {len(r.nodes):>4} nodes  {shown}{more}"
        if r.kind == "accelerator":
            line += (f"\n        est {r.cost.total_s * 1e6:.1f} us (compute "
                     f"{r.cost.compute_s * 1e6:.1f} + transfers {r.cost.transfer_s * 1e6:.1f}"
                     f", {_kb(r.cost.bytes_in)} in, {_kb(r.cost.bytes_out)} out) vs "
                     f"{r.cpu_cost_s * 1e6:.1f} us on {p.host}")
        lines.append(line)
    return lines


def _fallback_lines(p: Partition) -> list[str]:
    if not p.accelerators:
        return []
    counts = p.fallbacks
    total = sum(counts.values())
    lines = ["", f"CPU fallbacks: {total} nodes"]
    for category in CATEGORIES:
        ops = Counter(x.op for x in p.placements.values() if x.category == category)
        if ops:
            shown = ", ".join(f"{op} x{k}" for op, k in sorted(ops.items()))
            lines.append(f"  {category:<24} {counts[category]:>4}  ({shown})")
    return lines


def _node_lines(p: Partition) -> list[str]:
    lines = ["", "per node:"]
    for x in p.placements.values():
        lines.append(f"  {x.node:<36} {x.op:<22} {x.device:<14} r{x.region:<3} {x.why}")
    return lines


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KiB"
