"""tinyc.InferenceSession: onnxruntime's API over compiled models.

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
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace

import numpy as np

from . import cache
from .compiler import CompileOptions, code_threads, compile_model, plugin_fingerprint
from .errors import InputError, TinycError
from .frontend.load import load_model
from .frontend.onnx_import import symbolic_inputs
from .ir import DType
from .runtime.native import NativeModel, TensorInfo, check_feed_names
from .target import resolve_devices
from .target.backend import Packager


class InferenceSession:
    """Compile `model` (a path, bytes or onnx.ModelProto) for `target` and run it.

    >>> sess = tinyc.InferenceSession("model.onnx", target="x86")
    >>> (probs,) = sess.run(None, {"input": x})
    """

    def __init__(self, model, target: str = "x86", options: CompileOptions | None = None):
        self.target = target
        self.options = options or CompileOptions()
        self._proto = load_model(model)
        self._model_bytes = self._proto.SerializeToString()
        deployment = resolve_devices(target)  # a comma list composes devices (split)
        self._split = bool(deployment.accelerators)
        self._devices = deployment.devices
        self._device = deployment.host
        self._symbolic = symbolic_inputs(self._proto)
        self._compiled: dict[tuple, NativeModel] = {}
        self._tmp: list[tempfile.TemporaryDirectory] = []
        self.artifact = None  # the last artifact compiled in this process, if any
        self.compile_count = 0  # compiles this session ran (cache hits excluded)
        self._specializations: list = []  # symbolic artifacts, tried in order
        # why the model is compiled per shape instead (None: symbolic, or static)
        self.symbolic_fallback: str | None = None
        if self._split or isinstance(self._device.backend, Packager):
            self.symbolic_fallback = f"target {target} compiles static shapes only"
        if not self._symbolic:
            self._static = self._model_for({})
        else:
            self._static = None
            self._inputs = _declared_inputs(self._proto)
            self._outputs = _declared_outputs(self._proto)

    def get_inputs(self) -> list[TensorInfo]:
        return list(self._static.inputs if self._static else self._inputs)

    def get_outputs(self) -> list[TensorInfo]:
        return list(self._static.outputs if self._static else self._outputs)

    def profile(self) -> list[tuple[str, str, float]]:
        """Per node, its share of the run time so far (compile with profile=True)."""
        return self._last.profile()

    def trace(self) -> dict:
        """The last run's timeline in Chrome's trace format (split deployment only)."""
        if not self._split:
            raise ValueError("a timeline is recorded for split deployments (target='x86,...')")
        return self._last.trace()

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        model = self._static or self._model_for_feeds(feeds)
        self._last = model
        return model.run(output_names, feeds)

    def _model_for_feeds(self, feeds: dict) -> NativeModel:
        shapes = self._shapes_of(feeds)
        if self.symbolic_fallback is None:
            values = self._symbol_values(shapes)
            for model in self._specializations:
                if model.accepts(tuple(values[s] for s in model.symbols)):
                    return model
            try:
                return self._specialize(values)
            except InputError:
                raise
            except TinycError as e:  # not symbolic yet: compile per shape instead
                self.symbolic_fallback = str(e).splitlines()[0]
        return self._model_for(shapes)

    def _symbol_values(self, shapes: dict[str, list[int]]) -> dict[str, int]:
        """Each symbol's size in these feeds; one symbol with two sizes is an error."""
        values: dict[str, int] = {}
        for info in self._inputs:
            for d, n in zip(info.shape, shapes.get(info.name, ()), strict=False):
                if isinstance(d, str):
                    if values.setdefault(d, n) != n:
                        raise InputError(f"dimension '{d}' is {values[d]} in one input and "
                                         f"{n} in '{info.name}'")
        return values

    def _specialize(self, values: dict[str, int]) -> NativeModel:
        """A symbolic artifact whose guards admit these sizes: from the disk
        cache if an earlier process compiled one, else compiled with them as hints."""
        root, base = cache.cache_root(), self._cache_key({"symbolic": True})
        slot = 0
        while root is not None and (hit := cache.load_entry(root, f"{base}-{slot}")) is not None:
            slot += 1
            if hit.accepts(tuple(values[s] for s in hit.symbols)):
                return self._keep(hit)
        opts = replace(self.options, shape_hints=values)
        self.artifact = compile_model(self._proto, self.target, opts)
        self.compile_count += 1
        if "symbolic" not in self.artifact.meta:
            raise TinycError("the model compiled without symbols")
        model = None
        if root is not None:
            try:
                model = cache.store_entry(root, f"{base}-{slot}", self.artifact)
            except OSError:
                pass  # an unwritable cache folder must not stop inference
        return self._keep(model or self._load_here())

    def _keep(self, model: NativeModel) -> NativeModel:
        if self.options.threads and hasattr(model, "set_num_threads"):
            model.set_num_threads(self.options.threads)
        self._specializations.append(model)
        return model

    def _shapes_of(self, feeds: dict) -> dict[str, list[int]]:
        """Concrete shapes of the symbolic inputs, checked before anything is compiled."""
        check_feed_names(feeds, [i.name for i in self._inputs])
        shapes = {}
        for info in self._inputs:
            a = feeds[info.name]
            dtype = getattr(a, "dtype", None)
            if dtype != np.dtype(info.dtype):
                raise InputError(f"input '{info.name}' has dtype {dtype}; expected {info.dtype}")
            shape = [int(d) for d in np.shape(a)]
            _check_declared_dims(info, shape)
            if info.name in self._symbolic:
                shapes[info.name] = shape
        return shapes

    def _model_for(self, shapes: dict[str, list[int]]) -> NativeModel:
        key = tuple(sorted((k, tuple(v)) for k, v in shapes.items()))
        if key in self._compiled:
            return self._compiled[key]
        model = self._load_or_compile(shapes)
        if self.options.threads and hasattr(model, "set_num_threads"):
            model.set_num_threads(self.options.threads)
        self._compiled[key] = self._last = model
        return model

    def _cache_key(self, shapes: dict) -> str:
        opts = {"emit": self.options.emit, "fuse": self.options.fuse,
                "profile": self.options.profile,
                "threads": code_threads(self._device, self.options),
                "pin": self.options.pin, "avoid": self.options.avoid,
                "plugins": [plugin_fingerprint(d.spec.backend) for d in self._devices]}
        fields = [cache.device_fields(d) for d in self._devices]
        return cache.cache_key(self._model_bytes, fields, shapes, opts)

    def _load_or_compile(self, shapes: dict[str, list[int]]) -> NativeModel:
        root = cache.cache_root()
        key = self._cache_key(shapes)
        if root is not None and (hit := cache.load_entry(root, key)) is not None:
            return hit
        self.artifact = compile_model(self._proto, self.target, self.options, shapes or None)
        self.compile_count += 1
        if root is not None:
            try:
                return cache.store_entry(root, key, self.artifact)
            except OSError:
                pass  # an unwritable cache folder must not stop inference
        return self._load_here()

    def _load_here(self):
        tmp = tempfile.TemporaryDirectory(prefix="tinyc-")
        self._tmp.append(tmp)
        return self.artifact.load(os.path.join(tmp.name, "artifact"))


def _check_declared_dims(info: TensorInfo, shape: list[int]) -> None:
    """Rank and fixed dims as declared, before anything is compiled for a feed."""
    if len(shape) != len(info.shape):
        raise InputError(f"input '{info.name}' has rank {len(shape)} (shape {shape}); "
                         f"expected rank {len(info.shape)} ({info.shape})")
    for k, (d, want) in enumerate(zip(shape, info.shape, strict=True)):
        if isinstance(want, int) and d != want:
            raise InputError(f"input '{info.name}' needs dimension {want} at axis {k}; "
                             f"got shape {shape}")


def _declared_inputs(proto) -> list[TensorInfo]:
    inits = {t.name for t in proto.graph.initializer}
    return [_info(vi) for vi in proto.graph.input if vi.name not in inits]


def _declared_outputs(proto) -> list[TensorInfo]:
    return [_info(vi) for vi in proto.graph.output]


def _info(vi) -> TensorInfo:
    tt = vi.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tt.shape.dim]
    return TensorInfo(vi.name, dims, DType.from_onnx(tt.elem_type).numpy.name)
