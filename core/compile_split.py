"""Compiling for a composed target (`x86,accel_sim`): split-graph deployment.

import -> passes -> partition -> per region: the host's regions through the
usual lowering, memory plan and entry codegen (one entry function per region,
`tinyc_run_region_K`, all in one shared library sharing one arena), each
accelerator's regions through its backend's `compile_region` -> SplitArtifact.

The artifact's plan lists the regions in run order, and for each accelerator
region which tensors to copy to the device before it and back after it, so
the runtime (runtime/hetero.py) moves data explicitly and only when needed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field

from .codegen.build import link_shared
from .codegen.entry import build_entry
from .codegen.machine import emit_object, new_module, optimize
from .compiler import VERSION, CompileOptions, _bind_outputs, _plugin_passes, _require_static
from .errors import TargetError
from .frontend.onnx_import import import_model
from .ir import Graph
from .link.artifact import cpu_meta
from .link.memory_plan import ALIGN, plan_memory
from .lower import lower_graph
from .partition import Partition, PartitionOptions, Region, partition_for
from .passes import run_default_pipeline
from .runtime.hetero import SPLIT_FORMAT, HeteroModel
from .runtime.validate import SIDECAR, meta_digest_file
from .target import Deployment, Device
from .target.accelerator import AcceleratorBackend, RegionProgram


@dataclass
class SplitArtifact:
    library: bytes  # the host regions' entry functions and kernels
    weights: bytes  # the host regions' constants, one aligned block per region
    meta: dict  # model.json: inputs, outputs, arena, the region plan
    programs: dict[str, dict[str, RegionProgram]]  # device -> region stem -> program
    partition: Partition
    report: list[dict] = field(default_factory=list)

    def save(self, directory: str | os.PathLike) -> str:
        import json

        d = os.fspath(directory)
        os.makedirs(d, exist_ok=True)
        for name, data in (("model.so", self.library), ("weights.bin", self.weights)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        for device, programs in self.programs.items():
            for stem, program in programs.items():
                program.save(os.path.join(d, "devices", device), stem)
        # checksums of every file, as an Artifact has, so a cache can verify a stored entry
        meta = {**self.meta, "checksums": _checksums(d)}
        data = json.dumps(meta, indent=1, sort_keys=True).encode()
        for name, content in (("model.json", data), (SIDECAR, meta_digest_file(data))):
            with open(os.path.join(d, name), "wb") as f:
                f.write(content)
        return d

    def load(self, directory: str | os.PathLike) -> HeteroModel:
        self.save(directory)
        return HeteroModel(os.fspath(directory))


def _checksums(directory: str) -> dict[str, str]:
    """sha256 of each file under `directory` but model.json (and its own checksum),
    by relative path."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, directory).replace(os.sep, "/")
            if rel not in ("model.json", SIDECAR):
                with open(path, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return dict(sorted(out.items()))


def compile_split(model, deployment: Deployment, options: CompileOptions | None = None,
                  input_shapes: dict[str, list[int]] | None = None) -> SplitArtifact:
    opts = options or CompileOptions()
    g, partition = partition_model(model, deployment, opts, input_shapes)
    host = deployment.host
    module = new_module(g.name, host.cpu)
    blob = bytearray()
    arena = 0
    regions, programs = [], {}
    for region in partition.regions:
        sub = region_graph(g, region)
        if region.kind == "cpu":
            offset, arena_k = _build_host_region(module, sub, region, host, blob)
            arena = max(arena, arena_k)
            regions.append(_region_meta(region, entry=f"tinyc_run_region_{region.index}",
                                        weights_offset=offset))
        else:
            device = _device(deployment, region.device)
            stem = f"region_{region.index}"
            programs.setdefault(region.device, {})[stem] = _build_accel_region(sub, device)
            regions.append(_region_meta(region, program=stem, backend=device.spec.backend))
    _add_copies(g, regions)
    library = _link(module, host)
    meta = _meta(g, deployment, regions, arena, bytes(blob), partition)
    return SplitArtifact(library, bytes(blob), meta, programs, partition)


def partition_model(model, deployment: Deployment, opts: CompileOptions,
                    input_shapes: dict[str, list[int]] | None = None) -> tuple[Graph, Partition]:
    """Import, run the passes, partition: what `tinyc explain` shows."""
    backend = deployment.host.spec.backend
    g = import_model(model, input_shapes)
    g = _plugin_passes(g, "after_import", backend)
    g = run_default_pipeline(g, fuse=opts.fuse)
    g = _plugin_passes(g, "before_partition", backend)
    _require_static(g)
    pins = PartitionOptions(dict(getattr(opts, "pin", {}) or {}),
                            dict(getattr(opts, "avoid", {}) or {}))
    return g, partition_for(g, deployment, pins)


def region_graph(g: Graph, region: Region) -> Graph:
    """A region as a graph of its own: its inputs, outputs, nodes and constants."""
    wanted = set(region.nodes)
    nodes = [n for n in g.nodes if n.name in wanted]
    return g.with_nodes(nodes).replace(name=f"{g.name}_region_{region.index}",
                                       inputs=region.inputs, outputs=region.outputs)


def _build_host_region(module, sub: Graph, region: Region, host: Device,
                       blob: bytearray) -> tuple[int, int]:
    """Lower and plan one host region into `module`; append its weights to `blob`.
    Returns the weights' offset in the blob and the arena the region needs."""
    sub = _plugin_passes(sub, "before_lower", host.spec.backend)
    lowered = lower_graph(sub, host.cpu, host.intrinsics)
    lowered, slots = _bind_outputs(sub, lowered)
    plan = plan_memory(sub, lowered, slots)
    build_entry(module, lowered, plan, len(sub.inputs), len(sub.outputs), host.cpu,
                name=f"tinyc_run_region_{region.index}")
    offset = -len(blob) % ALIGN + len(blob)
    blob.extend(b"\0" * (offset - len(blob)) + plan.weights)
    return offset, plan.arena_bytes


def _build_accel_region(sub: Graph, device: Device) -> RegionProgram:
    backend = device.backend
    if not isinstance(backend, AcceleratorBackend):
        raise TargetError(f"backend '{backend.name}' cannot compile regions (it has no "
                          "compile_region)")
    sub = _plugin_passes(sub, "before_lower", device.spec.backend)
    return backend.compile_region(sub, device.spec)


def _device(deployment: Deployment, name: str) -> Device:
    return next(d for d in deployment.accelerators if d.spec.name == name)


def _region_meta(region: Region, **extra) -> dict:
    return {"index": region.index, "device": region.device, "kind": region.kind,
            "inputs": list(region.inputs), "outputs": list(region.outputs),
            "nodes": list(region.nodes), **extra}


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


def _link(module, host: Device) -> bytes:
    obj = emit_object(optimize(module, host.cpu), host.cpu)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.so")
        link_shared(obj, path)
        with open(path, "rb") as f:
            return f.read()


def _meta(g: Graph, deployment: Deployment, regions: list[dict], arena: int, weights: bytes,
          partition: Partition) -> dict:
    def tensor(v: str) -> dict:
        t = g.types[v]
        return {"name": v, "dtype": t.dtype.numpy.name, "shape": list(t.shape)}

    crossing = {v for r in regions for v in (*r["inputs"], *r["outputs"])} | set(g.outputs)
    return {"format": SPLIT_FORMAT, "kind": "split", "tinyc_version": VERSION,
            "target": ",".join(d.spec.name for d in deployment.devices),
            "host": deployment.host.spec.name, **cpu_meta(deployment.host.cpu),
            "arena_bytes": arena, "weights_bytes": len(weights),
            "inputs": [tensor(v) for v in g.inputs], "outputs": [tensor(v) for v in g.outputs],
            "tensors": {v: tensor(v) for v in sorted(crossing) if v in g.types},
            "constants_out": [v for v in g.outputs if g.is_const(v)],
            "regions": regions, "partition": partition.to_json()}
