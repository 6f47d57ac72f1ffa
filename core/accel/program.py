"""A compiled region: the jobs, their command stream, and the device tensors.

Saved as region_K.json (engine, jobs, commands, each job's schedule) +
region_K.npz (weights and per-channel parameters), loaded by the device
runtime without the compiler. Each job's tiles and buffer split come from the
schedule source (schedule.py): the defaults, or a tuning record.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Node
from ..schedule import DEFAULT_SCHEDULE, ScheduleSource
from .commands import KINDS, Command, Emitter
from .engine import EngineConfig, Limits
from .jobs import ConvGeometry, GemmJob
from .layers import Unsupported, fold_activation, job_for
from .schedule import decision_json, scheduled_job
from .tiling import emit_job

_ARRAYS = ("weights", "weight_zero", "bias", "scale")


@dataclass
class Program:
    engine: EngineConfig
    jobs: list[GemmJob]
    commands: list[Command]
    inputs: list[str]  # tensors copied in from the host before a run
    outputs: list[str]  # tensors copied back after it
    tensors: dict[str, tuple[tuple[int, ...], str]]  # every device tensor: shape, dtype
    # per job: {"job", "tuned", "config"}, what its tiles and buffer split came from
    schedules: list[dict] = dataclasses.field(default_factory=list)

    def save(self, folder: str, stem: str) -> None:
        os.makedirs(folder, exist_ok=True)
        arrays = {f"{i}.{a}": getattr(j, a) for i, j in enumerate(self.jobs) for a in _ARRAYS
                  if getattr(j, a) is not None}
        np.savez(os.path.join(folder, f"{stem}.npz"), **arrays)
        doc = {"engine": _engine_json(self.engine), "inputs": self.inputs,
               "outputs": self.outputs,
               "tensors": {k: [list(s), d] for k, (s, d) in self.tensors.items()},
               "jobs": [_job_json(j) for j in self.jobs], "schedules": self.schedules,
               "commands": [[type(c).__name__, *_fields(c)] for c in self.commands]}
        with open(os.path.join(folder, f"{stem}.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f)

    @staticmethod
    def load(folder: str, stem: str) -> Program:
        with open(os.path.join(folder, f"{stem}.json"), encoding="utf-8") as f:
            doc = json.load(f)
        with np.load(os.path.join(folder, f"{stem}.npz")) as data:
            arrays = {k: data[k] for k in data.files}
        engine = EngineConfig(**{**doc["engine"], "post_ops": tuple(doc["engine"]["post_ops"]),
                                 "limits": Limits(**doc["engine"]["limits"])})
        jobs = [_job_from(j, i, arrays) for i, j in enumerate(doc["jobs"])]
        commands = [_command_from(c) for c in doc["commands"]]
        tensors = {k: (tuple(s), d) for k, (s, d) in doc["tensors"].items()}
        return Program(engine, jobs, commands, doc["inputs"], doc["outputs"], tensors,
                       doc.get("schedules", []))


def compile_region(graph: Graph, engine: EngineConfig,
                   schedule: ScheduleSource = DEFAULT_SCHEDULE) -> Program:
    """The region's nodes (its graph: inputs, outputs, constants) as one command
    stream; each job's tiles and buffer split as `schedule` decides."""
    ops = {n.name: n.qualified_op for n in graph.nodes}
    jobs, schedules = [], []
    out = Emitter()
    written: set[str] = set()
    for index, job in enumerate(_jobs(graph)):
        job, tiles, decision = scheduled_job(job, ops[job.name], engine, schedule)
        if job.source in written:
            out.sync()  # the layer reads what an earlier one stores
        emit_job(index, job, engine, out, tiles)
        written.add(job.dest)
        jobs.append(job)
        schedules.append(decision_json(job, decision))
    tensors = {v: (tuple(int(d) for d in graph.type_of(v).shape), graph.type_of(v).dtype.name)
               for v in {*graph.inputs, *graph.outputs, *(j.dest for j in jobs)}}
    return Program(engine, jobs, out.commands, list(graph.inputs), list(graph.outputs), tensors,
                   schedules)


def _jobs(graph: Graph) -> list[GemmJob]:
    jobs: list[GemmJob] = []
    by_dest: dict[str, int] = {}
    for node in graph.nodes:
        if node.qualified_op in ("Relu", "Clip") and node.inputs[0] in by_dest:
            k = by_dest.pop(node.inputs[0])
            jobs[k] = fold_activation(jobs[k], node, graph)
            by_dest[jobs[k].dest] = k
            continue
        jobs.append(job_for(node, graph))
        by_dest[jobs[-1].dest] = len(jobs) - 1
    return jobs


def check_node(node: Node, graph: Graph) -> str | None:
    try:
        job_for(node, graph)
    except Unsupported as e:
        return str(e)
    return None


def _engine_json(e: EngineConfig) -> dict:
    return dataclasses.asdict(e)


def _job_json(j: GemmJob) -> dict:
    doc = {f.name: getattr(j, f.name) for f in dataclasses.fields(j) if f.name not in _ARRAYS}
    doc["geometry"] = dataclasses.asdict(j.geometry) if j.geometry else None
    doc["has_bias"], doc["has_scale"] = j.bias is not None, j.scale is not None
    return doc


def _job_from(doc: dict, i: int, arrays: dict[str, np.ndarray]) -> GemmJob:
    doc = dict(doc)
    has_bias, has_scale = doc.pop("has_bias"), doc.pop("has_scale")
    geometry, clamp = doc.pop("geometry"), doc.pop("clamp")
    geometry = ConvGeometry(**geometry) if geometry else None
    clamp = tuple(clamp) if clamp else None
    doc["slots"] = tuple(doc.get("slots", (2, 2, 2)))  # programs saved before it: double
    return GemmJob(**doc, geometry=geometry, clamp=clamp, weights=arrays[f"{i}.weights"],
                   weight_zero=arrays[f"{i}.weight_zero"],
                   bias=arrays[f"{i}.bias"] if has_bias else None,
                   scale=arrays[f"{i}.scale"] if has_scale else None)


def _fields(c: Command) -> list:
    return [list(v) if isinstance(v, tuple) else v
            for v in (getattr(c, f.name) for f in dataclasses.fields(c))]


def _command_from(row: list) -> Command:
    kind = KINDS[row[0]]
    values = [tuple(v) if isinstance(v, list) else v for v in row[1:]]
    return kind(*values)
