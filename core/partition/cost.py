"""The cost model: does running a region on an accelerator pay for moving its data?

Per device, a node costs its multiply-accumulates over the device's MAC rate
(an accelerator: rows x cols MACs per cycle at its clock; a CPU: its vector
FMA rate), or for other ops its elements over an element rate. On an
accelerator the data a node touches also streams between device memory and the
on-chip buffers, overlapped with compute, so a node costs the larger of the two.
A region placed on an accelerator pays, in addition, the bytes that cross
between host and device memory over the link bandwidth, plus a setup latency
per transfer and per launch. All figures are estimates in seconds; the
simulator measures the real cycle counts afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..ir import Graph, Node
from .devices import DeviceProfile
from .work import bytes_of, element_ops, macs


@dataclass(frozen=True)
class RegionCost:
    device: str
    compute_s: float  # the nodes' own time on the device
    transfer_s: float  # host <-> device copies and launch latency
    bytes_in: int
    bytes_out: int

    @property
    def total_s(self) -> float:
        return self.compute_s + self.transfer_s


class Estimator:
    def __init__(self, graph: Graph):
        self.graph = graph
        self._node_s: dict[tuple[int, str], float] = {}

    def node_seconds(self, node: Node, device: DeviceProfile) -> float:
        key = (id(node), device.name)
        if key not in self._node_s:
            self._node_s[key] = self._node_time(node, device)
        return self._node_s[key]

    def _node_time(self, node: Node, device: DeviceProfile) -> float:
        work = macs(node, self.graph)
        if work == 0:
            return element_ops(node, self.graph) / device.elements_per_s
        rate = device.macs_per_s
        if device.int8_macs_per_s and self._is_8bit(node):
            rate = device.int8_macs_per_s
        compute = work / rate
        if device.kind == "cpu":
            return compute
        touched = sum(bytes_of(self.graph, v) for v in (*node.inputs, *node.outputs) if v)
        return max(compute, touched / device.dma_bytes_per_s)

    def _is_8bit(self, node: Node) -> bool:
        return bool(node.inputs) and self.graph.type_of(node.inputs[0]).dtype.itemsize == 1

    def region_cost(self, nodes: Iterable[Node], device: DeviceProfile,
                    bytes_in: int = 0, bytes_out: int = 0, transfers: int = 0) -> RegionCost:
        """`transfers`: how many tensors cross the link (each pays the setup latency)."""
        compute = sum(self.node_seconds(n, device) for n in nodes)
        if device.kind == "cpu":
            return RegionCost(device.name, compute, 0.0, 0, 0)
        link = (bytes_in + bytes_out) / device.link_bytes_per_s
        latency = (transfers + 1) * device.link_latency_s  # +1: launching the region
        return RegionCost(device.name, compute, link + latency, bytes_in, bytes_out)
