"""How InferenceSession gets a compiled model for a feed: the static model
compiled once, a symbolic artifact per guard region (the first feed's sizes
are the hints), or, where the model cannot be compiled symbolically yet, one
compile per concrete shape; each from the disk cache when an earlier process
compiled it (tinyc.cache). session.py says when each applies.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace

import numpy as np

from . import cache
from .compiler import code_threads, plugin_fingerprint, schedule_source
from .errors import InputError, TinycError
from .ir import DType
from .runtime.fastpath import SizeBinder
from .runtime.native import NativeModel, TensorInfo, check_feed_names


class CompiledModels:
    """The compiling half of InferenceSession (a mixin: it uses the session's
    target, options, _proto, _devices, _inputs, _sess_options and _compile)."""

    def _model_for_feeds(self, feeds: dict) -> NativeModel:
        if self.symbolic_fallback is None and (quick := self._quick_values(feeds)) is not None:
            for model in self._specializations:  # a decode step: its past is one row longer
                if model.accepts(tuple(quick[s] for s in model.symbols)):
                    return model
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

    def _quick_values(self, feeds: dict) -> dict[str, int] | None:
        """The symbols' sizes when the feeds are plainly right (runtime/fastpath.py);
        None sends them through _shapes_of's checks and clear errors."""
        binder = getattr(self, "_binder", None)
        if binder is None:
            symbols = sorted({d for i in self._inputs for d in i.shape if isinstance(d, str)})
            binder = self._binder = SizeBinder(self._inputs, symbols)
        bound = binder.bind(feeds)
        return None if bound is None else dict(zip(binder.symbols, bound[1], strict=True))

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
                self._entry_dir = root / f"{base}-{slot - 1}"
                return self._keep(hit)
        opts = replace(self.options, shape_hints=values)
        self.artifact = self._compile(opts, None)
        self.compile_count += 1
        if "symbolic" not in self.artifact.meta:
            raise TinycError("the model compiled without symbols")
        model = None
        if root is not None:
            try:
                model = cache.store_entry(root, f"{base}-{slot}", self.artifact)
            except OSError:
                pass  # an unwritable cache folder must not stop inference
        self._save_optimized()
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
        self._save_optimized()
        if self.options.threads and hasattr(model, "set_num_threads"):
            model.set_num_threads(self.options.threads)
        self._compiled[key] = self._last = model
        return model

    def _cache_key(self, shapes: dict) -> str:
        opts = {"emit": self.options.emit, "fuse": self.options.fuse,
                "profile": self.options.profile,
                "threads": code_threads(self._device, self.options),
                "pin": self.options.pin, "avoid": self.options.avoid,
                # the tuning records applied: a new best record, a new artifact
                "tuning": schedule_source(self.options).fingerprint,
                "plugins": [plugin_fingerprint(d.spec.backend) for d in self._devices]}
        if self.options.share_kv_cache:  # keys of the default stay as they were
            opts["share_kv_cache"] = True
        fields = [cache.device_fields(d) for d in self._devices]
        return cache.cache_key(self._model_bytes, fields, shapes, opts)

    def _load_or_compile(self, shapes: dict[str, list[int]]) -> NativeModel:
        root = cache.cache_root()
        key = self._cache_key(shapes)
        self._entry_dir = root / key if root is not None else None
        if root is not None and (hit := cache.load_entry(root, key)) is not None:
            return hit
        self._entry_dir = None
        self.artifact = self._compile(self.options, shapes or None)
        self.compile_count += 1
        if root is not None:
            try:
                return cache.store_entry(root, key, self.artifact)
            except OSError:
                pass  # an unwritable cache folder must not stop inference
        return self._load_here()

    def _save_optimized(self) -> None:
        """SessionOptions.optimized_model_filepath: the first artifact this
        session has (compiled, or the cache entry it loaded) is copied there."""
        path = self._sess_options.optimized_model_filepath
        if not path or self._saved:
            return
        try:
            if self.artifact is not None:
                self.artifact.save(path)
            elif self._entry_dir is not None:
                shutil.copytree(self._entry_dir, path, dirs_exist_ok=True,
                                copy_function=_copy_replacing)
            else:
                return
        except OSError as e:
            raise TinycError(f"cannot write the artifact to optimized_model_filepath "
                             f"{path}: {e.strerror or e}") from None
        self._saved = True

    def _load_here(self):
        tmp = tempfile.TemporaryDirectory(prefix="tinyc-")
        self._tmp.append(tmp)
        return self.artifact.load(os.path.join(tmp.name, "artifact"))

def _copy_replacing(src: str, dst: str) -> None:
    """shutil.copy2 into a new file renamed over `dst`: a process that has the
    old weights.bin mapped keeps it (truncating a mapped file faults its reader)."""
    tmp = os.path.join(os.path.dirname(dst), f".{os.path.basename(dst)}.{os.getpid()}.tmp")
    shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def _check_declared_dims(info: TensorInfo, shape: list[int]) -> None:
    """Rank and fixed dims as declared, before anything is compiled for a feed."""
    if len(shape) != len(info.shape):
        raise InputError(f"input '{info.name}' has rank {len(shape)} (shape {shape}); "
                         f"expected rank {len(info.shape)} ({info.shape})")
    for k, (d, want) in enumerate(zip(shape, info.shape, strict=True)):
        if isinstance(want, int) and d != want:
            raise InputError(f"input '{info.name}' needs dimension {want} at axis {k}; "
                             f"got shape {shape}")


def declared_inputs(proto) -> list[TensorInfo]:
    inits = {t.name for t in proto.graph.initializer}
    return [_info(vi) for vi in proto.graph.input if vi.name not in inits]


def declared_outputs(proto) -> list[TensorInfo]:
    return [_info(vi) for vi in proto.graph.output]


def _info(vi) -> TensorInfo:
    tt = vi.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tt.shape.dim]
    return TensorInfo(vi.name, dims, DType.from_onnx(tt.elem_type).numpy.name)

