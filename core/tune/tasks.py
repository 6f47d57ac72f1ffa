"""A model's tuning tasks: the workloads its lowerings ask a schedule source
about (recorded while lowering, so the tuner knows no kernel), each with a
one-node model of the node that asked, compiled and timed alone to measure it.
Nodes with the same workload (the same layer shape) share one task. An
accelerator region's compiler asks too (tiles, buffers): its one-node model is
pinned to that device, so it is measured there (in the cycles it simulates)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..compiler import CompileOptions, deployment_for, lowering_graphs, partition_model
from ..errors import TinycError
from ..ir import Graph, Node
from ..ir.bind import input_symbols
from ..lower import lower_graph
from ..region_compile import compile_accel_region
from ..schedule import RecordingSchedule, Tunable
from ..target.backend import Packager


@dataclass
class Task:
    tunable: Tunable
    graph: Graph  # the one-node model that measures it
    nodes: list[str] = field(default_factory=list)  # every node with this workload
    pin: dict[str, str] = field(default_factory=dict)  # node -> the device it is measured on

    @property
    def key(self) -> str:
        return self.tunable.key

    @property
    def work(self) -> float:
        """How much the task weighs in the model: its size times its nodes."""
        return math.prod(v for _, v in self.tunable.workload.dims) * len(self.nodes)


def extract_tasks(model, target: str, options: CompileOptions,
                  input_shapes: dict[str, list[int]] | None = None) -> list[Task]:
    """The tunable workloads of `model` compiled for `target`, heaviest first."""
    deployment = deployment_for(target, options)
    if isinstance(deployment.host.backend, Packager):
        raise TinycError(f"target {deployment.host.spec.name} builds for another machine; "
                         "tuning times native runs: tune on that machine")
    g, partition = partition_model(model, deployment, options, input_shapes)
    if input_symbols(g):
        raise TinycError(f"tuning needs static shapes: pass --shape for the symbolic "
                         f"dimensions of {list(input_symbols(g))}")
    subs = lowering_graphs(g, partition, deployment)
    host = deployment.host
    devices = {d.spec.name: d for d in deployment.devices}
    tasks: dict[str, Task] = {}
    for r in partition.regions:
        recorder = RecordingSchedule()
        if r.kind == "cpu":
            lower_graph(subs[r.index], host.cpu, host.intrinsics, recorder)
        else:
            compile_accel_region(subs[r.index], devices[r.device], recorder)
        nodes = {n.name: n for n in subs[r.index].nodes}
        for tunable in recorder.asked:
            node = nodes[tunable.node]
            if tunable.key in tasks:
                tasks[tunable.key].nodes.append(node.name)
                continue
            one = one_node_graph(subs[r.index], node)
            if one is not None:
                pin = {} if r.kind == "cpu" else {node.name: r.device}
                tasks[tunable.key] = Task(tunable, one, [node.name], pin)
    return sorted(tasks.values(), key=lambda t: -t.work)


def one_node_graph(g: Graph, node: Node) -> Graph | None:
    """`node` alone: its constant inputs stay constants (packed as in the
    model), the others become the graph's inputs. None if it has no input."""
    inputs = tuple(v for v in node.inputs if v and not g.is_const(v))
    if not inputs:
        return None
    outputs = tuple(v for v in node.outputs if v)
    sub = g.replace(name=f"tune_{node.op}", inputs=inputs, outputs=outputs, dim_values={})
    return sub.with_nodes([node])
