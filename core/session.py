"""tinyc.InferenceSession: onnxruntime's API over compiled models.

`InferenceSession(path_or_bytes, sess_options, providers)` as in onnxruntime:
the providers list is the ordered device list (providers.py), SessionOptions
and RunOptions are read as session_options.py says, io_binding() binds host
buffers (io_binding.py) and enable_profiling writes a Chrome trace
(session_profiler.py). `target=` and `options=` (CompileOptions) name a
tinyc target and compile options directly.

A model whose inputs have symbolic dimensions (a batch or sequence length) is
compiled with those dimensions symbolic (ir/symbolic.py): the first feed's
sizes are the hints, and the artifact serves every size that passes the guards
its compile recorded. A size outside them (say M < 8 where the GEMM tiles were
chosen for M >= 8) compiles one more specialization; there are a few at most.
Where a model cannot be compiled symbolically yet (an op whose lowering needs
static shapes, a dim shape inference cannot relate to the inputs), the session
compiles once per concrete shape instead, as a fallback, and says why in
`symbolic_fallback`. Artifacts are kept in memory and in the disk cache
(tinyc.cache).

Initializers that are also graph inputs are overridable, as in onnxruntime:
a run that feeds one uses a second compile of the model in which the fed
initializers are inputs (made once per set of names fed); runs that feed none
keep the model whose weights are constants.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import replace

import numpy as np

from .compiler import CompileOptions, compile_model
from .errors import InputError, TinycError
from .frontend.mapped import load_mapped
from .frontend.onnx_import import symbolic_inputs
from .io_binding import IOBinding
from .model_meta import (
    ModelMetadata,
    apply_session_options,
    branch_flags,
    model_metadata,
    overridable_initializers,
    with_fed_initializers,
    with_fixed_flags,
)
from .providers import host_target, normalize_providers, target_for
from .runtime.native import NativeModel, TensorInfo, output_indices
from .session_models import CompiledModels, declared_inputs, declared_outputs
from .session_options import GraphOptimizationLevel, RunOptions, SessionOptions
from .session_profiler import SessionProfiler
from .target import resolve_devices
from .target.backend import Packager, runs_symbolic


class InferenceSession(CompiledModels):
    """Compile a model (a path, bytes or onnx.ModelProto) and run it.

    >>> sess = tinyc.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
    >>> (probs,) = sess.run(None, {"input": x})
    """

    def __init__(self, path_or_bytes, sess_options: SessionOptions | None = None,
                 providers=None, provider_options=None, *, target: str | None = None,
                 options: CompileOptions | None = None):
        if isinstance(sess_options, str):  # tinyc's first signature: (model, target, options)
            target, sess_options = sess_options, None
            if isinstance(providers, CompileOptions):
                options, providers = providers, None
        self._given = (path_or_bytes, options)
        self._sess_options = sess_options or SessionOptions()
        names, opts = normalize_providers(providers, provider_options)
        if target is not None and names:
            raise InputError("give providers= or target=, not both")
        self.target = target or (target_for(names) if names else host_target())
        self._providers = _provider_names(names, self.target)
        self._provider_options = {n: (opts[k] if k < len(opts) else {})
                                  for k, n in enumerate(self._providers)}
        self.options = _merged_options(options or CompileOptions(), self._sess_options)
        self._profiler = (SessionProfiler(self._sess_options.profile_file_prefix, self.target)
                          if self._sess_options.enable_profiling else None)
        t0 = self._profiler.now_us() if self._profiler else 0.0
        # the weights stay in their external data files (frontend/mapped.py):
        # the session keeps the model's graph, a compile maps the files
        self._mapped = load_mapped(path_or_bytes)
        proto = self._mapped.proto
        self._meta = model_metadata(proto)
        self._proto = apply_session_options(proto, self._sess_options.initializers,
                                            self._sess_options.free_dimension_overrides)
        self._overridable = overridable_initializers(self._proto)
        self._variants: dict[frozenset, InferenceSession] = {}
        self._flags = branch_flags(self._proto)  # If conditions fed at run time
        self._flag_variants: dict[tuple, InferenceSession] = {}
        self._saved = False
        self._start(self._proto)
        if self._profiler:
            self._profiler.add("session_initialization", "Session", t0,
                               self._profiler.now_us() - t0)

    def _start(self, proto) -> None:
        """Resolve the devices and compile a static model now (a symbolic one
        compiles at its first run, when the sizes are known)."""
        target = self.target
        self._model_bytes = self._mapped.with_proto(proto).key_bytes()
        deployment = resolve_devices(target)  # a comma list composes devices (split)
        self._split = bool(deployment.accelerators)
        self._devices = deployment.devices
        self._device = deployment.host
        self._symbolic = symbolic_inputs(proto)
        self._compiled: dict[tuple, NativeModel] = {}
        self._tmp: list[tempfile.TemporaryDirectory] = []
        self._entry_dir = None  # the cache entry the last model was loaded from
        self.artifact = None  # the last artifact compiled in this process, if any
        self.compile_count = 0  # compiles this session ran (cache hits excluded)
        self._specializations: list = []  # symbolic artifacts, tried in order
        # why the model is compiled per shape instead (None: symbolic, or static)
        self.symbolic_fallback: str | None = None
        if self._split or (isinstance(self._device.backend, Packager)
                           and not runs_symbolic(self._device.backend, self._device.cpu)):
            self.symbolic_fallback = f"target {target} compiles static shapes only"
        if not self._symbolic and not self._flags:
            self._static = self._model_for({})
        else:
            self._static = None
            self._inputs = declared_inputs(proto)
            self._outputs = declared_outputs(proto)

    def _compile(self, options: CompileOptions, shapes: dict | None):
        """Every compile this session runs (one place, which tests count)."""
        return compile_model(self._mapped.with_proto(self._proto), self.target, options, shapes)

    # ---- onnxruntime's introspection

    def get_inputs(self) -> list[TensorInfo]:
        return list(self._static.inputs if self._static else self._inputs)

    def get_outputs(self) -> list[TensorInfo]:
        return list(self._static.outputs if self._static else self._outputs)

    def get_overridable_initializers(self) -> list[TensorInfo]:
        return list(self._overridable)

    def get_modelmeta(self) -> ModelMetadata:
        return self._meta

    def get_providers(self) -> list[str]:
        return list(self._providers)

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        return {k: dict(v) for k, v in self._provider_options.items()}

    def get_session_options(self) -> SessionOptions:
        return self._sess_options

    def set_providers(self, providers=None, provider_options=None) -> None:
        """Recompile for another provider list (cache hits make it cheap)."""
        model, options = self._given
        self.__init__(model, self._sess_options, providers, provider_options, options=options)

    # ---- profiling

    def profile(self) -> list[tuple[str, str, float]]:
        """Per node, its share of the run time so far (compile with profile=True)."""
        if not hasattr(self._last, "profile"):
            raise TinycError("per-node profiles are recorded for single-target artifacts; a "
                             "split deployment records a timeline: use trace()")
        return self._last.profile()

    def trace(self) -> dict:
        """The last run's timeline in Chrome's trace format (split deployment only)."""
        if not self._split:
            raise TinycError("a timeline is recorded for split deployments "
                             "(providers=['accel_sim', 'x86'])")
        return self._last.trace()

    def end_profiling(self) -> str:
        """Write the profile (SessionOptions.enable_profiling) as a Chrome trace
        JSON file and return its path; "" when profiling is off. Profiling stops."""
        if self._profiler is None:
            return ""
        path, self._profiler = self._profiler.write(), None
        return path

    def get_profiling_start_time_ns(self) -> int:
        return self._profiler.start_time_ns if self._profiler else 0

    # ---- running

    def run(self, output_names: list[str] | None, input_feed: dict,
            run_options: RunOptions | None = None) -> list[np.ndarray]:
        """Outputs named (all of them for None or []) for these feeds."""
        return self._run(output_names, input_feed, {}, run_options)

    def run_async(self, output_names, input_feed, callback, user_data,
                  run_options: RunOptions | None = None) -> None:
        """run() on a worker thread, then callback(outputs, user_data, error_text)."""
        def work():
            try:
                outputs, err = self.run(output_names, input_feed, run_options), ""
            except Exception as e:  # reported to the callback, as onnxruntime does
                outputs, err = [], f"{type(e).__name__}: {e}"
            callback(outputs, user_data, err)

        threading.Thread(target=work, daemon=True).start()

    def io_binding(self) -> IOBinding:
        return IOBinding(self)

    def run_with_iobinding(self, iobinding: IOBinding,
                           run_options: RunOptions | None = None) -> None:
        """Run on the binding's inputs; outputs bound to buffers are written there."""
        bound = iobinding.outputs
        buffers = {k: v for k, v in bound.items() if v is not None}
        iobinding.set_results(self._run(list(bound) or None, iobinding.inputs, buffers,
                                        run_options))

    def _run(self, output_names, input_feed: dict, buffers: dict,
             run_options: RunOptions | None) -> list[np.ndarray]:
        if run_options is not None and run_options.terminate:
            raise TinycError("run cancelled: RunOptions.terminate is set")
        model, feeds = self._resolve(input_feed)
        self._last = model
        names = list(output_names) if output_names else None
        profiler = self._profiler
        before = profiler.counters(model) if profiler else None
        t0 = profiler.now_us() if profiler else 0.0
        outputs = _run_model(model, names, feeds, buffers)
        if profiler:
            profiler.record_run(model, t0, profiler.now_us() - t0, before)
        return outputs

    def _resolve(self, input_feed: dict) -> tuple[NativeModel, dict]:
        """The model that serves these feeds (a compiled variant when they
        override initializers), and the feeds as arrays."""
        if not isinstance(input_feed, dict):
            raise InputError("input_feed must be a dict mapping input names to arrays")
        if self._flags:
            return self._flag_variant(input_feed)
        overridable = {i.name for i in self._overridable}
        overrides = frozenset(k for k in input_feed if k in overridable)
        if overrides:
            variant = self._variants.get(overrides)
            if variant is None:
                variant = InferenceSession(self._mapped.with_proto(
                                               with_fed_initializers(self._proto, overrides)),
                                           target=self.target, options=self.options)
                self._variants[overrides] = variant
            return variant._resolve(input_feed)
        feeds = self._as_arrays(input_feed)
        return (self._static or self._model_for_feeds(feeds)), feeds

    def _flag_variant(self, input_feed: dict) -> tuple[NativeModel, dict]:
        """The compile for these values of the If flags (model_meta.branch_flags):
        made once per combination fed, the flags constants in it."""
        missing = [f for f in self._flags if f not in input_feed]
        if missing:
            raise InputError(f"missing inputs {missing}: the model's If nodes branch on them")
        key = tuple(bool(np.asarray(input_feed[f]).reshape(-1)[0]) for f in self._flags)
        variant = self._flag_variants.get(key)
        if variant is None:
            fixed = with_fixed_flags(self._proto, dict(zip(self._flags, key, strict=True)))
            variant = InferenceSession(self._mapped.with_proto(fixed), target=self.target,
                                       options=self.options)
            self._flag_variants[key] = variant
        return variant._resolve({k: v for k, v in input_feed.items() if k not in self._flags})

    def _as_arrays(self, feeds: dict) -> dict:
        """Lists and scalars become arrays of the input's declared dtype, as
        onnxruntime converts them; arrays are checked as they are."""
        dtypes = {i.name: i.dtype for i in self.get_inputs()}
        return {k: v if isinstance(v, np.ndarray) or k not in dtypes
                else np.asarray(v, dtype=dtypes[k]) for k, v in feeds.items()}


def _provider_names(given: list[str], target: str) -> list[str]:
    """What get_providers reports: the names as given, then the CPU target that
    was added for them; without a list, the target's devices."""
    if not given:
        return target.split(",")
    return [*given, *[t for t in target.split(",")[len(given):]]]


def _merged_options(options: CompileOptions, so: SessionOptions) -> CompileOptions:
    """CompileOptions with what the SessionOptions change: threads, fusion,
    per-node cycle counters for profiling."""
    changes: dict = {}
    if so.intra_op_num_threads and so.intra_op_num_threads > 0 and options.threads is None:
        changes["threads"] = int(so.intra_op_num_threads)
    if so.graph_optimization_level == GraphOptimizationLevel.ORT_DISABLE_ALL:
        changes["fuse"] = False
    if so.enable_profiling:
        changes["profile"] = True
    return replace(options, **changes) if changes else options


def _run_model(model, names: list[str] | None, feeds: dict, buffers: dict) -> list[np.ndarray]:
    """Run; outputs with a caller buffer are written into it by the native code
    where the runtime can (in-process models), else copied into it."""
    if not buffers:
        return model.run(names, feeds)
    wanted = output_indices(model.get_outputs(), names)
    if hasattr(model, "run_into"):
        outs = model.run_into(feeds, buffers)
        return [outs[j] for j in wanted]
    all_names = [o.name for o in model.get_outputs()]
    outs = model.run(None, feeds)
    for k, name in enumerate(all_names):
        buf = buffers.get(name)
        if buf is not None:
            if buf.shape != outs[k].shape or buf.dtype != outs[k].dtype:
                raise InputError(f"output buffer '{name}' is {buf.dtype}{list(buf.shape)}; "
                                 f"this run writes {outs[k].dtype}{list(outs[k].shape)}")
            np.copyto(buf, outs[k])
            outs[k] = buf
    return [outs[j] for j in wanted]
