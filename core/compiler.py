"""The compile driver: one way through the stages of DESIGN.md.

import -> passes -> partition (one region for one device) -> per region:
before_lower passes; CPU regions: lower -> (bind outputs) -> memory plan ->
entry codegen, all into one module; accelerator regions: the backend's
compile_region -> LLVM optimize + object -> link -> Artifact.

A single target is a deployment with one device: its one region is the whole
graph, its entry `tinyc_run`, and the runtime runs it with one call.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from .codegen.build import host_threads, link_shared
from .codegen.entry import build_entry
from .codegen.machine import emit_assembly, emit_object, new_module, optimize
from .codegen.memory_plan import ALIGN
from .codegen.symbolic_ir import build_capacities, build_guards, build_sizes
from .errors import TinycError
from .frontend.onnx_import import import_model
from .ir import Graph, IRError, verify
from .ir.bind import UnboundSymbol, bind_symbols, input_symbols
from .ir.symbolic import DataDependentDecision, SymDim, Tracer, poly_text, tracing
from .ir.unbacked import upper_bound
from .link.artifact import Artifact, artifact_meta, cpu_meta
from .partition import Partition, PartitionOptions, partition_for
from .passes import run_default_pipeline
from .passes.sample_loop import sample_loop_symbol, with_one_sample
from .passes.share_kv_cache import CAPACITY, KVPair, share_kv_cache
from .passes.symbolic_shapes import data_dependent_nodes, infer_symbolic
from .program import LoweredNode
from .region_compile import (
    HostRegion,
    compile_accel_region,
    entry_name,
    is_whole_graph,
    lower_host_region,
    program_stem,
    region_graph,
    region_plan,
)
from .runtime.memory import give_back_freed_memory
from .runtime.regions import is_split
from .schedule import ScheduleSource
from .schedule.logs import schedule_for
from .target import Deployment, Device, registry, resolve_devices
from .target.accelerator import RegionProgram
from .target.backend import CompiledModel, Packager, runs_symbolic
from .tensorize.report import left_out_sets, tensorize_entry

VERSION = "0.1.0"


@dataclass
class CompileOptions:
    emit: tuple[str, ...] = ()  # "llvm" and/or "asm"
    fuse: bool = True
    profile: bool = False  # count cycles per node (see NativeModel.profile)
    # split deployment: node name -> device it must run on; device -> nodes kept off it
    pin: dict[str, str] = field(default_factory=dict)
    avoid: dict[str, list[str]] = field(default_factory=dict)
    # worker threads: kernels are built for this many (per-thread scratch) and
    # InferenceSession runs with it; None: every core (or TINYC_NUM_THREADS)
    threads: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # symbolic dimensions (ir/symbolic.py): the sizes each symbol's decisions are
    # taken around; a symbol not named here gets 1. The artifact serves every
    # size that passes the guards those decisions recorded.
    shape_hints: dict[str, int] = field(default_factory=dict)
    # optional upper bounds per symbol ({"past_sequence_length": 4096}): the
    # runtime allocates the arena for them once, and refuses larger sizes
    max_shapes: dict[str, int] = field(default_factory=dict)
    # a KV cache's past input and present output (present = Concat(past, new))
    # may share one caller buffer: a decode step writes only the new rows
    # (passes/share_kv_cache.py, runtime/kv_share.py). Off by default: the
    # shared attention reads the cache with row kernels, which are slower than
    # the GEMM attention when a plain run copies the cache anyway
    share_kv_cache: bool = False
    # autotuning (schedule/): a tuning log whose best record per workload is
    # applied, on top of the default database in the cache folder (unless
    # default_tuning is False); `schedule` gives a source directly (the tuner's
    # candidates) and replaces both
    tuning_log: str | None = None
    default_tuning: bool = True
    schedule: ScheduleSource | None = None


def compile_model(model, target: str = "x86", options: CompileOptions | None = None,
                  input_shapes: dict[str, list[int]] | None = None) -> Artifact:
    """Compile for a deployment: a target name (one device) or a comma list (one
    CPU and accelerators). `input_shapes` pins symbolic input dimensions."""
    artifact = _compile(model, target, options or CompileOptions(), input_shapes)
    give_back_freed_memory()  # what LLVM and the stages freed: glibc would keep it
    return artifact


def _compile(model, target: str, opts: CompileOptions,
             input_shapes: dict[str, list[int]] | None) -> Artifact:
    deployment = deployment_for(target, opts)
    host = deployment.host
    t = _Timer(opts.timings)
    g, partition = partition_model(model, deployment, opts, input_shapes, t)
    _check_profile(opts, partition)
    schedule = schedule_source(opts)
    with t("passes"):
        subs = lowering_graphs(g, partition, deployment)
    data_dependent = data_dependent_nodes(g)
    symbols, tracer = _symbolic_graph(g, opts, host, data_dependent, deployment)
    batched = None  # the symbolic graph of a batch compiled for one sample
    kv_pairs: list[KVPair] = []
    with tracing(tracer):
        if symbols or data_dependent:  # one region, the whole graph
            subs[0] = infer_symbolic(subs[0], {s: SymDim.symbol(s, h)
                                               for s, h in tracer.hints.items()})
            if tracer.unbacked and isinstance(host.backend, Packager):
                _refuse_data_dependent(data_dependent,
                                       f"target {host.spec.name} packages static-shape code")
            if symbols and sample_loop_symbol(subs[0]) == symbols[0] and len(symbols) == 1 \
                    and not tracer.unbacked:
                batched, subs[0] = subs[0], with_one_sample(subs[0], symbols[0])
            elif opts.share_kv_cache and not isinstance(host.backend, Packager):
                # in-process models only: a packaged runtime (wasm) binds no capacity
                subs[0], kv_pairs, symbols = _shared_kv_cache(subs[0], symbols, tracer)
        with t("lower"):
            hosts = {r.index: lower_host_region(subs[r.index], r, entry_name(r, partition), host,
                                                schedule)
                     for r in partition.regions if r.kind == "cpu"}
        with t("codegen"):
            module, weights = _host_module(g.name, hosts, host, opts, symbols, tracer, batched)
    with t("accelerators"):
        programs = _accelerator_programs(partition, subs, deployment, schedule)
    with t("llvm"):
        ref = optimize(module, host.cpu)
        obj = emit_object(ref, host.cpu)
    listings = {}
    if "llvm" in opts.emit:
        listings["ll"] = str(ref)
    if "asm" in opts.emit:
        listings["s"] = emit_assembly(ref, host.cpu)
    devices = {d.spec.name: d for d in deployment.devices}
    regions = region_plan(g, partition, hosts, devices)
    arena = max((hr.plan.arena_bytes for hr in hosts.values()), key=_hint, default=0)
    # outputs sized by data are named by their data-dependent symbols ("nonzero0")
    out_graph = subs[0] if tracer.unbacked else g
    tensors = ([_tensor_meta(g, v) for v in g.inputs],
               [_tensor_meta(out_graph, v) for v in g.outputs])
    names = ",".join(d.spec.name for d in deployment.devices)
    facts = (names, host.cpu.triple, _hint(arena), *tensors, VERSION)
    sym = {"symbolic": _symbolic_meta(symbols, tracer, arena) | {
        "per_sample": batched is not None}  # per_sample: a loop over the batch
        | _kv_meta(kv_pairs, tracer)} if symbols or tracer.unbacked else {}
    with t("link"):
        library, files, extra = _link(obj, host, weights,
                                      artifact_meta(*facts, b"", weights, host.spec.backend)
                                      | sym)
    meta = (artifact_meta(*facts, library, weights, host.spec.backend, files,
                          extra.get("weights_in"))
            | cpu_meta(host.cpu) | extra | {"host": host.spec.name, "regions": regions} | sym)
    if is_split(meta):  # accelerators in the deployment that took part of the graph
        meta |= _split_meta(g, regions, partition)
    if opts.profile:
        meta["profile_nodes"] = [[ln.node_name, ln.op] for hr in hosts.values()
                                 for ln in hr.lowered]
    report = [row for hr in hosts.values() for row in _report(hr.lowered, left_out_sets(host))]
    return Artifact(library, weights, meta, listings, report, files, programs,
                    partition if deployment.accelerators else None)


def partition_model(model, deployment: Deployment, opts: CompileOptions,
                    input_shapes: dict[str, list[int]] | None = None,
                    timer: _Timer | None = None) -> tuple[Graph, Partition]:
    """Import, run the passes, partition (trivially for one device): what
    `tinyc explain` shows."""
    t = timer or _Timer({})
    backend = deployment.host.spec.backend
    with t("import"):  # a Graph: already imported (the tuner's one-node models)
        g = model if isinstance(model, Graph) else import_model(model, input_shapes)
    with t("passes"):
        g = _plugin_passes(g, "after_import", backend)
        g = run_default_pipeline(g, fuse=opts.fuse)
        g = _plugin_passes(g, "before_partition", backend)
    if deployment.accelerators:
        _require_static_split(g, deployment)
    pins = PartitionOptions(dict(opts.pin or {}), dict(opts.avoid or {}))
    with t("partition"):
        return g, partition_for(g, deployment, pins)


def schedule_source(opts: CompileOptions) -> ScheduleSource:
    """Where tunable lowerings get their configurations for this compile."""
    if opts.schedule is not None:
        return opts.schedule
    return schedule_for(opts.tuning_log, opts.default_tuning)


def deployment_for(target: str, opts: CompileOptions) -> Deployment:
    """The devices `target` names, the host's code built for the threads it may use."""
    deployment = resolve_devices(target)
    host = deployment.host
    if deployment.accelerators and isinstance(host.backend, Packager):
        raise TinycError(f"'{target}': split deployment runs its host regions in this "
                         f"process; {host.spec.name} packages its artifacts for another "
                         "machine, so it cannot host accelerators")
    cpu = replace(host.cpu, threads=code_threads(host, opts))
    return replace(deployment, host=replace(host, cpu=cpu))


def lowering_graphs(g: Graph, partition: Partition, deployment: Deployment) -> dict[int, Graph]:
    """Each region's graph as its device lowers it: after its backend's
    before_lower passes."""
    return {r.index: _plugin_passes(region_graph(g, r, partition), "before_lower",
                                    _device_named(deployment, r.device).spec.backend)
            for r in partition.regions}


def _device_named(deployment: Deployment, name: str) -> Device:
    return next(d for d in deployment.devices if d.spec.name == name)


def _check_profile(opts: CompileOptions, partition: Partition) -> None:
    if opts.profile and not is_whole_graph(partition):
        raise TinycError("profile=True counts cycles per node of a model compiled for one "
                         "device; a split deployment's timeline is InferenceSession.trace()")


def _host_module(name: str, hosts: dict[int, HostRegion], host: Device, opts: CompileOptions,
                 symbols: tuple[str, ...], tracer: Tracer, batched: Graph | None = None):
    """One LLVM module holding every CPU region's entry, and one weights blob
    with each region's constants at an aligned offset. `batched`: the symbolic
    graph of a model compiled for one sample, run per sample (passes/sample_loop.py)."""
    module = new_module(name, host.cpu)
    unbacked = tuple(tracer.unbacked)
    all_symbols = symbols + unbacked  # the dims array: the inputs' sizes, then the data's
    blob, size = [], 0  # joined once at the end (one region: its blob, no copy)
    for hr in hosts.values():
        hr.weights_offset = -size % ALIGN + size
        blob += [bytes(hr.weights_offset - size)] if hr.weights_offset > size else []
        blob.append(hr.plan.weights)
        size = hr.weights_offset + len(hr.plan.weights)
        sample_bytes = None if batched is None else (
            [hr.graph.types[v].nbytes for v in hr.graph.inputs],
            [hr.graph.types[v].nbytes for v in hr.graph.outputs])
        build_entry(module, hr.lowered, hr.plan, len(hr.graph.inputs), len(hr.graph.outputs),
                    host.cpu, profile=opts.profile, name=hr.entry, symbols=all_symbols,
                    sample_bytes=sample_bytes, unbacked=unbacked)
    if all_symbols:
        (hr,) = hosts.values()
        g = batched or hr.graph
        dims = [hr.plan.arena_bytes] + [d for v in (*g.outputs, *g.inputs)
                                        for d in g.types[v].shape]
        build_sizes(module, all_symbols, dims)
        try:  # guards are checked before a run: on the inputs' sizes only
            tracer.refuse_data_dependent(tracer.guards)
        except DataDependentDecision as e:
            raise TinycError(f"cannot compile this model's data-dependent sizes: {e} (a "
                             "shape rule or the memory plan needs it)") from None
        build_guards(module, all_symbols, tracer.guards)
        if unbacked:
            build_capacities(module, all_symbols, unbacked,
                             [upper_bound(math.prod(g.types[v].shape)) for v in g.outputs])
    return module, b"".join(blob)


def _accelerator_programs(partition: Partition, subs: dict[int, Graph],
                          deployment: Deployment, schedule: ScheduleSource
                          ) -> dict[str, dict[str, RegionProgram]]:
    """device -> region stem -> the program its backend compiled (its tunable
    choices from `schedule`, as the host's lowerings)."""
    programs: dict[str, dict[str, RegionProgram]] = {}
    for r in partition.regions:
        if r.kind != "cpu":
            device = _device_named(deployment, r.device)
            programs.setdefault(r.device, {})[program_stem(r)] = compile_accel_region(
                subs[r.index], device, schedule)
    return programs


def _split_meta(g: Graph, regions: list[dict], partition: Partition) -> dict:
    """What running regions on several devices needs beyond one entry call: the
    shapes of the tensors crossing regions; the partition, for the record."""
    crossing = {v for r in regions for v in (*r["inputs"], *r["outputs"])} | set(g.outputs)
    return {"kind": "split", "entry": None, "partition": partition.to_json(),
            "tensors": {v: _tensor_meta(g, v) for v in sorted(crossing) if v in g.types}}


def code_threads(device: Device, options: CompileOptions) -> int:
    """Threads the model's kernels are built for. A host library links the
    runtime's thread pool and its loader picks the count actually used, up to
    this; a target that packages its own artifacts (cross, bare metal) gets
    serial code."""
    if isinstance(device.backend, Packager):
        return 1
    return max(1, options.threads) if options.threads else host_threads()


def plugin_fingerprint(backend: str) -> list:
    """What the installed plugins contribute to a compile for `backend`, for
    cache keys: every plugin's version and the passes that would run."""
    reg = registry()
    versions = sorted((p.name, p.distribution, p.version) for p in reg.plugins.values())
    passes = [(phase, [p.name for p in reg.passes_for(phase, backend)])
              for phase in ("after_import", "before_partition", "before_lower")]
    return [versions, passes]


def _plugin_passes(g: Graph, phase: str, backend: str) -> Graph:
    """Run the passes plugins registered for this phase; a pass that breaks the
    IR is named in the error rather than failing somewhere downstream."""
    for reg in registry().passes_for(phase, backend):
        out = reg.run(g)
        try:
            verify(out)
        except IRError as e:
            raise TinycError(f"plugin pass '{reg.name}' ({phase}) produced an invalid "
                             f"graph: {e}") from None
        g = out
    return g


def _link(obj: bytes, device: Device, weights: bytes, meta: dict
          ) -> tuple[bytes, dict[str, bytes], dict]:
    """The host's shared library; or, for a backend that packages its own artifacts
    (a cross target), its files and what it adds to model.json (how to run them)."""
    if isinstance(device.backend, Packager):
        package = device.backend.package(CompiledModel(obj, weights, meta, device.cpu, device.spec))
        inside = {"weights_in": package.weights_in} if package.weights_in else {}
        return b"", package.files, package.meta | inside
    return _link_shared(obj), {}, {}


def _link_shared(obj: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.so")
        link_shared(obj, path)
        with open(path, "rb") as f:
            return f.read()


def _symbolic_graph(g: Graph, opts: CompileOptions, device: Device,
                    data_dependent: list[str] = (), deployment: Deployment | None = None
                    ) -> tuple[tuple[str, ...], Tracer]:
    """The graph's symbols (its inputs' named dims) and a tracer with their
    hints; no symbols for a static graph. Nodes whose output sizes depend on
    data (`data_dependent`) add symbols of their own while shapes are inferred."""
    symbols = tuple(input_symbols(g))
    if data_dependent and deployment is not None and deployment.accelerators:
        _refuse_data_dependent(data_dependent, "a split deployment runs static shapes")
    elif not data_dependent and not symbols:
        _require_static(g)
    if symbols and isinstance(device.backend, Packager) \
            and not runs_symbolic(device.backend, device.cpu):
        raise TinycError(f"target {device.spec.name} compiles static shapes only; pass "
                         f"input_shapes for the symbolic dimensions {list(symbols)}")
    hints = {s: int(opts.shape_hints.get(s, 1)) for s in symbols}
    bad = [s for s, h in hints.items() if h < 0]
    if bad:
        raise TinycError(f"shape hints must not be negative: {bad}")
    unknown = sorted(set(opts.max_shapes) - set(symbols))
    if unknown:
        raise TinycError(f"max_shapes names {unknown}, which are not symbolic dims of the "
                         f"inputs ({list(symbols)})")
    low = [s for s, m in opts.max_shapes.items() if int(m) < hints[s]]
    if low:
        raise TinycError(f"max_shapes below the sizes compiled for: {low}")
    # a symbol compiled at 0 (an empty KV cache) may be 0; the others are >= 1
    return symbols, Tracer(hints=hints, lows={s: 0 for s, h in hints.items() if h == 0},
                           highs={s: int(m) for s, m in opts.max_shapes.items()})


def _refuse_data_dependent(nodes: list[str], where: str) -> None:
    """Outputs sized by data are trimmed by the host runtime (runtime/unbacked.py)
    only. A split deployment is refused before shapes are inferred; a packaging
    target once inference made a data-dependent size (most run-time Reshapes an
    exporter writes turn out to be sized by the inputs' dims)."""
    raise TinycError(f"{where}; nodes {nodes[:4]} have outputs whose size depends on "
                     "input values, which only the host CPU runtime serves")


def _shared_kv_cache(g: Graph, symbols: tuple[str, ...], tracer: Tracer
                     ) -> tuple[Graph, list[KVPair], tuple[str, ...]]:
    """The graph with its KV cache pairs sharing storage, and the symbols with
    the buffers' capacity last (the runtime binds it from the caller's arrays)."""
    if CAPACITY in symbols:  # the model's own dim of that name: leave it alone
        return g, [], symbols
    hint = 1 + sum(tracer.hints.values())  # holds past + new rows at the hints
    g, pairs = share_kv_cache(g, SymDim.symbol(CAPACITY, hint))
    if not pairs:
        return g, [], symbols
    tracer.hints[CAPACITY] = hint
    return g, pairs, (*symbols, CAPACITY)


def _kv_meta(pairs: list[KVPair], tracer: Tracer) -> dict:
    """model.json's record of the shared pairs. The capacity is only ever a
    stride: a guard on it would be checked against a placeholder, so none may exist."""
    if not pairs:
        return {}
    if any(CAPACITY in g.text for g in tracer.guards):
        raise TinycError(f"a lowering took a decision on '{CAPACITY}' (a KV cache's row "
                         "capacity), which the runtime does not check; compile with "
                         "CompileOptions(share_kv_cache=False)")
    return {"kv_share": {"symbol": CAPACITY,
                         "pairs": [[p.past, p.present, p.axis] for p in pairs]}}


def _hint(d: int | SymDim) -> int:
    return d.hint if isinstance(d, SymDim) else int(d)


def _symbolic_meta(symbols: tuple[str, ...], tracer: Tracer, arena) -> dict:
    """What the runtime needs to bind a run's sizes: the symbols in dims-array
    order, the hints, the guards (to name the one that fails) and the arena size."""
    meta = {"symbols": list(symbols), "hints": [tracer.hints[s] for s in symbols],
            "minima": [tracer.lows.get(s, 1) for s in symbols],
            "maxima": [tracer.highs.get(s) for s in symbols],
            "guards": [g.text for g in tracer.guards], "arena_bytes": str(arena)}
    if tracer.unbacked:  # the sizes kernels set, after the symbols in the dims array
        meta["unbacked"] = [{"name": u, "bound": poly_text(b)} for u, b in tracer.unbacked.items()]
    return meta


def _require_static_split(g: Graph, deployment: Deployment) -> None:
    symbols = input_symbols(g)
    if symbols:
        names = ",".join(d.spec.name for d in deployment.devices)
        raise TinycError(f"split deployment ({names}) compiles static shapes only; pass "
                         f"input_shapes for the symbolic dimensions {list(symbols)}")
    _require_static(g)


def _require_static(g: Graph) -> None:
    """Every dimension is a number or one of the inputs' symbols."""
    try:
        bind_symbols(g, {s: 1 for s in input_symbols(g)})
    except UnboundSymbol as e:
        raise TinycError(f"could not relate every shape to the inputs' sizes: {e}; pass "
                         "input_shapes to compile for concrete sizes") from None


def _tensor_meta(g: Graph, v: str) -> dict:
    t = g.types[v]
    return {"name": v, "dtype": t.dtype.numpy.name,
            "shape": [str(d) if isinstance(d, SymDim) else d for d in t.shape]}


def _report(lowered: list[LoweredNode], left_out: tuple[tuple[str, str], ...]) -> list[dict]:
    return [{"node": ln.node_name, "op": ln.op, "semantics": ln.semantics, "note": ln.note,
             "kernels": sorted({c.kernel.name for c in ln.every_call}),
             "view_of": ln.alias_of} | _variant_entry(ln) | _schedule_entry(ln)
            | tensorize_entry(ln.intrinsic, ln.rejected, left_out)
            for ln in lowered]


def _schedule_entry(ln: LoweredNode) -> dict:
    """A tunable node: its knobs and whether a tuning record chose them."""
    if ln.schedule is None:
        return {}
    return {"tuned": ln.schedule.tuned, "schedule": ln.schedule.config}


def _variant_entry(ln: LoweredNode) -> dict:
    """A node compiled twice for symbolic sizes: which variant runs when."""
    if ln.alt is None:
        return {}
    guard, _, note = ln.alt
    return {"variants": {"when": guard.text, "else": note}}


class _Timer:
    """`with timer("stage"):` records the stage's wall time in CompileOptions.timings."""

    def __init__(self, sink: dict[str, float]):
        self.sink = sink
        self.seen: set[str] = set()  # stages timed in this compile: later times add up

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        before = self.sink.get(stage, 0.0) if stage in self.seen else 0.0
        self.sink[stage] = before + time.perf_counter() - t0
        self.seen.add(stage)
