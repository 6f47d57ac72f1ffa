"""Compiling the regions of a partition, each for its device.

A CPU region is lowered, its outputs bound and its memory planned here; its
entry function is generated into the host module by the driver (compiler.py),
so every CPU region lives in one library and shares one arena. The entry of a
region that is the whole graph (a single-device deployment) is `tinyc_run`,
which packaged targets' runners call; in a split deployment region K's is
`tinyc_run_region_K`. An accelerator region is compiled by its backend's
`compile_region` into a program saved next to the library.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from .codegen.kernels.ops.bytes_copy import COPY_BYTES
from .codegen.memory_plan import MemoryPlan, plan_memory
from .errors import TargetError
from .ir import Graph
from .lower import lower_graph
from .partition import Partition, Region
from .program import Buf, Call, LoweredNode
from .schedule import DEFAULT_SCHEDULE, ScheduleSource
from .target import Device
from .target.accelerator import AcceleratorBackend, RegionProgram

WHOLE_GRAPH_ENTRY = "tinyc_run"


@dataclass
class HostRegion:
    region: Region
    graph: Graph
    entry: str
    lowered: list[LoweredNode]
    plan: MemoryPlan
    weights_offset: int = 0


def is_whole_graph(partition: Partition) -> bool:
    return len(partition.regions) == 1


def region_graph(g: Graph, region: Region, partition: Partition) -> Graph:
    """A region as a graph of its own: its inputs, outputs, nodes and constants."""
    if is_whole_graph(partition):
        return g
    wanted = set(region.nodes)
    nodes = [n for n in g.nodes if n.name in wanted]
    return g.with_nodes(nodes).replace(name=f"{g.name}_region_{region.index}",
                                       inputs=region.inputs, outputs=region.outputs)


def entry_name(region: Region, partition: Partition) -> str:
    return WHOLE_GRAPH_ENTRY if is_whole_graph(partition) else f"tinyc_run_region_{region.index}"


def lower_host_region(sub: Graph, region: Region, entry: str, host: Device,
                      schedule: ScheduleSource = DEFAULT_SCHEDULE) -> HostRegion:
    """Lower a CPU region, bind its outputs to the caller's buffers, plan its memory;
    tunable lowerings take their configurations from `schedule`."""
    lowered = lower_graph(sub, host.cpu, host.intrinsics, schedule)
    lowered, slots = bind_outputs(sub, lowered)
    return HostRegion(region, sub, entry, lowered, plan_memory(sub, lowered, slots))


def compile_accel_region(sub: Graph, device: Device,
                         schedule: ScheduleSource = DEFAULT_SCHEDULE) -> RegionProgram:
    """A backend whose compile_region takes a `schedule` gets the compile's
    schedule source (its tunable choices, e.g. tiles); others compile as before."""
    backend = device.backend
    if not isinstance(backend, AcceleratorBackend):
        raise TargetError(f"backend '{backend.name}' cannot compile regions (it has no "
                          "compile_region)")
    if "schedule" in inspect.signature(backend.compile_region).parameters:
        return backend.compile_region(sub, device.spec, schedule=schedule)
    return backend.compile_region(sub, device.spec)


def bind_outputs(g: Graph, lowered: list[LoweredNode]) -> tuple[list[LoweredNode], dict[str, int]]:
    """Decide how each graph output reaches its caller buffer: produced there
    directly, or copied (outputs that are views, inputs, constants or repeated)."""
    views = {o for ln in lowered if ln.alias_of is not None for o in ln.outputs}
    slots: dict[str, int] = {}
    copies: list[LoweredNode] = []
    for j, v in enumerate(g.outputs):
        direct = v not in views and v not in g.inputs and v not in g.constants and v not in slots
        if direct:
            slots[v] = j
            continue
        dst = f"@output{j}"
        slots[dst] = j
        call = Call(COPY_BYTES, (Buf(dst), Buf(v), g.types[v].nbytes))
        copies.append(LoweredNode(f"bind_output_{j}", "Copy", (), [call],
                                  semantics=f"out{j}[i] = {v}[i]"))
    return lowered + copies, slots


def region_plan(g: Graph, partition: Partition, hosts: dict[int, HostRegion],
                devices: dict[str, Device]) -> list[dict]:
    """model.json's regions, in run order: what each runs and with which entry,
    weights or program; an accelerator region also lists its copies."""
    plan = []
    for r in partition.regions:
        meta = {"index": r.index, "device": r.device, "kind": r.kind,
                "inputs": list(r.inputs), "outputs": list(r.outputs), "nodes": list(r.nodes)}
        if r.index in hosts:
            meta |= {"entry": hosts[r.index].entry,
                     "weights_offset": hosts[r.index].weights_offset}
        else:
            meta |= {"program": program_stem(r), "backend": devices[r.device].spec.backend}
        plan.append(meta)
    _add_copies(g, plan)
    return plan


def program_stem(region: Region) -> str:
    return f"region_{region.index}"


def _add_copies(g: Graph, regions: list[dict]) -> None:
    """Per accelerator region: tensors to copy in (not already in that device's
    memory) and out (read later by another device, or a graph output)."""
    where: dict[str, str] = {v: "host" for v in g.inputs}
    for k, r in enumerate(regions):
        if r["kind"] == "cpu":
            where.update(dict.fromkeys(r["outputs"], "host"))
            continue
        r["copy_in"] = [v for v in r["inputs"] if where.get(v) != r["device"]]
        later = [x for x in regions[k + 1:] if x["device"] != r["device"]]
        needed = {v for x in later for v in x["inputs"]} | set(g.outputs)
        r["copy_out"] = [v for v in r["outputs"] if v in needed]
        where.update(dict.fromkeys(r["outputs"], r["device"]))
