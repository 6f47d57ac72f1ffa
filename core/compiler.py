"""The compile driver: one way through the stages of DESIGN.md.

import -> passes -> lower -> (bind outputs) -> memory plan -> entry codegen
-> LLVM optimize + object -> link -> Artifact.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from .codegen.build import host_threads, link_shared
from .codegen.entry import build_entry
from .codegen.kernels.bytes_copy import COPY_BYTES
from .codegen.machine import emit_assembly, emit_object, new_module, optimize
from .codegen.symbolic_ir import build_guards, build_sizes
from .errors import TinycError
from .frontend.onnx_import import import_model
from .ir import Graph, IRError, verify
from .ir.bind import UnboundSymbol, bind_symbols, input_symbols
from .ir.symbolic import SymDim, Tracer, tracing
from .link.artifact import Artifact, artifact_meta, cpu_meta
from .link.memory_plan import plan_memory
from .lower import Buf, Call, LoweredNode, lower_graph
from .passes import run_default_pipeline
from .passes.symbolic_shapes import infer_symbolic
from .target import Device, registry, resolve_device
from .target.backend import CompiledModel, Packager
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


def compile_model(model, target: str = "x86", options: CompileOptions | None = None,
                  input_shapes: dict[str, list[int]] | None = None) -> Artifact:
    """Compile for one target. `input_shapes` pins symbolic input dimensions."""
    opts = options or CompileOptions()
    if "," in target:  # devices composed for split deployment: see compile_split.py
        from .compile_split import compile_split
        from .target import resolve_devices

        return compile_split(model, resolve_devices(target), opts, input_shapes)
    device = resolve_device(target)
    device = replace(device, cpu=replace(device.cpu, threads=code_threads(device, opts)))
    t = _Timer(opts.timings)
    with t("import"):
        g = import_model(model, input_shapes)
    backend = device.spec.backend
    with t("passes"):
        g = _plugin_passes(g, "after_import", backend)
        g = run_default_pipeline(g, fuse=opts.fuse)
        g = _plugin_passes(g, "before_partition", backend)
        # one device for now: the whole graph is the CPU's region
        g = _plugin_passes(g, "before_lower", backend)
    symbols, tracer = _symbolic_graph(g, opts, device)
    with tracing(tracer):
        if symbols:
            g = infer_symbolic(g, {s: SymDim.symbol(s, h) for s, h in tracer.hints.items()})
        with t("lower"):
            lowered = lower_graph(g, device.cpu, device.intrinsics)
            lowered, slots = _bind_outputs(g, lowered)
            plan = plan_memory(g, lowered, slots)
        with t("codegen"):
            module = new_module(g.name, device.cpu)
            build_entry(module, lowered, plan, len(g.inputs), len(g.outputs), device.cpu,
                        profile=opts.profile, symbols=symbols)
            if symbols:
                dims = [plan.arena_bytes] + [d for v in (*g.outputs, *g.inputs)
                                             for d in g.types[v].shape]
                build_sizes(module, symbols, dims)
                build_guards(module, symbols, tracer.guards)
    with t("llvm"):
        ref = optimize(module, device.cpu)
        obj = emit_object(ref, device.cpu)
    listings = {}
    if "llvm" in opts.emit:
        listings["ll"] = str(ref)
    if "asm" in opts.emit:
        listings["s"] = emit_assembly(ref, device.cpu)
    tensors = ([_tensor_meta(g, v) for v in g.inputs], [_tensor_meta(g, v) for v in g.outputs])
    facts = (device.spec.name, device.cpu.triple, _hint(plan.arena_bytes), *tensors, VERSION)
    with t("link"):
        library, files, extra = _link(obj, device, plan.weights,
                                      artifact_meta(*facts, b"", plan.weights, device.spec.backend))
    meta = (artifact_meta(*facts, library, plan.weights, device.spec.backend, files)
            | cpu_meta(device.cpu) | extra)
    if symbols:
        meta["symbolic"] = _symbolic_meta(symbols, tracer, plan.arena_bytes)
        meta["arena_bytes"] = _hint(plan.arena_bytes)
    if opts.profile:
        meta["profile_nodes"] = [[ln.node_name, ln.op] for ln in lowered]
    report = _report(lowered, left_out_sets(device))
    return Artifact(library, plan.weights, meta, listings, report, files)


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
        return b"", package.files, package.meta
    return _link_shared(obj), {}, {}


def _link_shared(obj: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.so")
        link_shared(obj, path)
        with open(path, "rb") as f:
            return f.read()


def _symbolic_graph(g: Graph, opts: CompileOptions, device: Device
                    ) -> tuple[tuple[str, ...], Tracer]:
    """The graph's symbols (its inputs' named dims) and a tracer with their
    hints; no symbols for a static graph."""
    symbols = tuple(input_symbols(g))
    if not symbols:
        _require_static(g)
    if symbols and isinstance(device.backend, Packager):
        raise TinycError(f"target {device.spec.name} compiles static shapes only; pass "
                         f"input_shapes for the symbolic dimensions {list(symbols)}")
    hints = {s: int(opts.shape_hints.get(s, 1)) for s in symbols}
    bad = [s for s, h in hints.items() if h < 0]
    if bad:
        raise TinycError(f"shape hints must not be negative: {bad}")
    # a symbol compiled at 0 (an empty KV cache) may be 0; the others are >= 1
    return symbols, Tracer(hints=hints, lows={s: 0 for s, h in hints.items() if h == 0})


def _hint(d: int | SymDim) -> int:
    return d.hint if isinstance(d, SymDim) else int(d)


def _symbolic_meta(symbols: tuple[str, ...], tracer: Tracer, arena) -> dict:
    """What the runtime needs to bind a run's sizes: the symbols in dims-array
    order, the hints, the guards (to name the one that fails) and the arena size."""
    return {"symbols": list(symbols), "hints": [tracer.hints[s] for s in symbols],
            "minima": [tracer.lows.get(s, 1) for s in symbols],
            "guards": [g.text for g in tracer.guards], "arena_bytes": str(arena)}


def _require_static(g: Graph) -> None:
    """Every dimension is a number or one of the inputs' symbols."""
    try:
        bind_symbols(g, {s: 1 for s in input_symbols(g)})
    except UnboundSymbol as e:
        raise TinycError(f"could not relate every shape to the inputs' sizes: {e}; pass "
                         "input_shapes to compile for concrete sizes") from None


def _bind_outputs(g: Graph, lowered: list[LoweredNode]) -> tuple[list[LoweredNode], dict[str, int]]:
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


def _tensor_meta(g: Graph, v: str) -> dict:
    t = g.types[v]
    return {"name": v, "dtype": t.dtype.numpy.name,
            "shape": [str(d) if isinstance(d, SymDim) else d for d in t.shape]}


def _report(lowered: list[LoweredNode], left_out: tuple[tuple[str, str], ...]) -> list[dict]:
    return [{"node": ln.node_name, "op": ln.op, "semantics": ln.semantics, "note": ln.note,
             "kernels": sorted({c.kernel.name for c in ln.every_call}),
             "view_of": ln.alias_of} | _variant_entry(ln)
            | tensorize_entry(ln.intrinsic, ln.rejected, left_out)
            for ln in lowered]


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

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.sink[stage] = time.perf_counter() - t0
