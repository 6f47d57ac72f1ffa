"""The tiny runtime: loads a saved artifact and runs it.

Needs only numpy and the C library (ctypes): no onnx, no llvmlite, no compiler.
Memory is set up once at load: the weights mapped read-only from weights.bin
(map_weights), the arena allocated. run() validates the feeds before any
native code is called, then makes one call into the model.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
import threading
import weakref
from dataclasses import dataclass

import numpy as np

from ..errors import ArtifactError, InputError
from . import validate
from .cpu_check import check_can_run
from .fastpath import FeedSpecs, address
from .status import status_error

FORMAT_VERSION = 1
ALIGN = 64


@dataclass(frozen=True)
class TensorInfo:
    """Mirrors onnxruntime's NodeArg: name, shape, type ('tensor(float)')."""

    name: str
    shape: list
    dtype: str  # numpy dtype name

    @property
    def type(self) -> str:
        return f"tensor({_ONNX_TYPE_NAMES.get(self.dtype, self.dtype)})"


_ONNX_TYPE_NAMES = {"float32": "float", "float64": "double", "bool": "bool", "float16": "float16",
                    "int8": "int8", "uint8": "uint8", "int16": "int16", "int32": "int32",
                    "int64": "int64"}


def aligned_empty(nbytes: int) -> np.ndarray:
    raw = np.empty(nbytes + ALIGN, np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start:start + nbytes]


def map_weights(path: str) -> np.ndarray:
    """weights.bin mapped read-only (shared, backed by the page cache): every
    process that loads the artifact reads the same pages, and none copies them.

    The generated code only reads its constants (the memory plan places
    activations, scratch and in-place outputs in the arena, never in the
    weights), so a write there is a compiler bug and faults instead of
    diverging silently. mmap returns a page-aligned address, which keeps the
    plan's 64-byte alignment. The file must not be changed in place while it
    is loaded (a truncated mapping faults): tinyc writes artifacts to a new
    file and renames it, and evicts cache entries by unlinking them, both of
    which leave a mapping intact. An empty file cannot be mapped: a byte of
    ordinary memory stands for it.
    """
    try:
        if os.path.getsize(path) == 0:
            return aligned_empty(1)
        return np.memmap(path, np.uint8, mode="r")
    except (OSError, ValueError) as e:
        raise ArtifactError(f"cannot map {path}: {e}") from None


class NativeModel:
    """A loaded artifact. Thread-safe: calls are serialized (they share one arena)."""

    def __init__(self, directory: str, verify: bool = False, threads: int | None = None):
        """verify=True checks the files against the checksums in model.json first;
        threads: see set_num_threads."""
        self.meta = validate.read_meta(directory, require_sidecar=verify)
        if self.meta.get("format") != FORMAT_VERSION:
            raise ArtifactError(f"{directory}: artifact format {self.meta.get('format')!r} is "
                                f"not {FORMAT_VERSION}; recompile the model")
        self._validate(directory)  # before any of its code is loaded
        check_can_run(self.meta, directory)  # a missing CPU feature: an error, not SIGILL
        self.inputs = [TensorInfo(t["name"], t["shape"], t["dtype"]) for t in self.meta["inputs"]]
        self.outputs = [TensorInfo(t["name"], t["shape"], t["dtype"]) for t in self.meta["outputs"]]
        self._lib = _load_private_copy(os.path.join(directory, "model.so"))
        self._bind_entries(directory)
        for name in ("tinyc_guards", "tinyc_sizes") if "symbolic" in self.meta else ():
            _symbol(self._lib, name, directory)  # SymbolicModel calls them
        self._weights = map_weights(os.path.join(directory, "weights.bin"))
        self._arena = aligned_empty(max(int(self.meta["arena_bytes"]), 1))
        self._in_ptrs = (ctypes.c_void_p * max(len(self.inputs), 1))()
        self._out_ptrs = (ctypes.c_void_p * max(len(self.outputs), 1))()
        self._lock = threading.Lock()
        self._feed_specs = FeedSpecs(self.inputs)
        self._out_specs = [(tuple(o.shape), np.dtype(o.dtype)) for o in self.outputs]
        self._all_outputs = list(range(len(self.outputs)))
        self._weights_ptr = self._weights.ctypes.data
        self._pool = _ThreadPool(self._lib)
        self._pool.stop_when_dropped(self)
        self.set_num_threads(threads)

    def _validate(self, directory: str) -> None:
        validate.check_host(directory, self.meta)

    def _bind_entries(self, directory: str) -> None:
        """The library's entry: one call runs the whole model."""
        self._entry = entry_function(self._lib, self.meta["entry"], directory)

    def set_num_threads(self, n: int | None) -> None:
        """Threads the next runs use; None: TINYC_NUM_THREADS, else every core.
        Kernels use at most the count the model was compiled for."""
        self._pool.set(n)

    @property
    def num_threads(self) -> int:
        return self._pool.get()

    def get_inputs(self) -> list[TensorInfo]:
        return list(self.inputs)

    def get_outputs(self) -> list[TensorInfo]:
        return list(self.outputs)

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        wanted = self._all_outputs if output_names is None else \
            self._check_output_names(output_names)
        arrays = self._feed_specs.arrays(feeds) or self._check_feeds(feeds)
        outs = [np.empty(shape, dt) for shape, dt in self._out_specs]
        with self._lock:
            self._call_locked(arrays, outs)
        return [outs[j] for j in wanted]

    def run_into(self, feeds: dict[str, np.ndarray],
                 buffers: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run with the outputs named in `buffers` written by the native code
        straight into those caller-owned arrays (IOBinding: no copy); the other
        outputs are allocated. Returns every output, in order."""
        arrays = self._feed_specs.arrays(feeds) or self._check_feeds(feeds)
        outs = output_buffers(self.outputs, [o.shape for o in self.outputs], buffers)
        with self._lock:
            self._call_locked(arrays, outs)
        return outs

    def _call_locked(self, arrays: list[np.ndarray], outs: list[np.ndarray], *extra) -> None:
        """One call into the model; the caller holds the lock (the arena is shared)."""
        for i, a in enumerate(arrays):
            self._in_ptrs[i] = address(a)
        for j, o in enumerate(outs):
            self._out_ptrs[j] = address(o)
        status = self._entry(self._in_ptrs, self._out_ptrs, self._weights_ptr,
                             self._arena.ctypes.data, *extra)
        if status != 0:  # read the error record before another run can overwrite it
            raise status_error(self._lib, status)

    def cycle_counts(self) -> list[int]:
        """Cycles counted per node so far (profile_nodes order); for artifacts
        compiled with profile=True."""
        nodes = self.meta.get("profile_nodes")
        if not nodes:
            raise ValueError("this artifact was not compiled with profiling")
        return list((ctypes.c_int64 * len(nodes)).in_dll(self._lib, "tinyc_profile_cycles"))

    def profile(self) -> list[tuple[str, str, float]]:
        """(node, op, share of run time) per node, accumulated over every run so
        far, largest first; only for models compiled with profile=True."""
        counts = self.cycle_counts()
        total = max(sum(counts), 1)
        rows = [(n, op, c / total) for (n, op), c in
                zip(self.meta["profile_nodes"], counts, strict=True)]
        return sorted(rows, key=lambda r: -r[2])

    def _check_feeds(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return checked_feeds(self.inputs, feeds)

    def _check_output_names(self, names: list[str] | None) -> list[int]:
        return output_indices(self.outputs, names)


def entry_function(lib: ctypes.CDLL, name: str, directory: str = "?"):
    """An entry point of a model library: (inputs, outputs, weights, arena) -> status."""
    fn = _symbol(lib, name, directory)
    fn.restype = ctypes.c_int32
    fn.argtypes = [ctypes.c_void_p] * 4
    return fn


def checked_feeds(inputs: list[TensorInfo], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The feeds in input order, contiguous, after checking names, dtypes and shapes."""
    check_feed_names(feeds, [i.name for i in inputs])
    arrays = []
    for info in inputs:
        a = feeds[info.name]
        if not isinstance(a, np.ndarray):
            a = np.asarray(a)
        if a.dtype != np.dtype(info.dtype):
            raise InputError(f"input '{info.name}' has dtype {a.dtype}; "
                              f"expected {info.dtype}")
        if list(a.shape) != list(info.shape):
            raise InputError(f"input '{info.name}' has shape {list(a.shape)}; "
                              f"expected {info.shape}")
        arrays.append(np.ascontiguousarray(a))
    return arrays


def output_buffers(outputs: list[TensorInfo], shapes: list, buffers: dict[str, np.ndarray],
                   strided: frozenset[str] = frozenset()) -> list[np.ndarray]:
    """Per output, the caller's array from `buffers` (checked: the output's dtype
    and shape, C-contiguous, writeable) or a new one. Outputs named in
    `strided` may be views (their layout is checked by runtime/kv_share.py)."""
    names = [o.name for o in outputs]
    unknown = [n for n in buffers if n not in names]
    if unknown:
        raise InputError(f"unknown output names {unknown}; the model's outputs are {names}")
    outs = []
    for info, shape in zip(outputs, shapes, strict=True):
        buf = buffers.get(info.name)
        if buf is None:
            outs.append(np.empty(shape, info.dtype))
            continue
        if buf.dtype != np.dtype(info.dtype) or list(buf.shape) != list(shape):
            raise InputError(f"output buffer '{info.name}' is {buf.dtype}{list(buf.shape)}; "
                             f"this run writes {info.dtype}{list(shape)}")
        if info.name not in strided and not (buf.flags.c_contiguous and buf.flags.writeable):
            raise InputError(f"output buffer '{info.name}' must be C-contiguous and writeable")
        outs.append(buf)
    return outs


def output_indices(outputs: list[TensorInfo], names: list[str] | None) -> list[int]:
    """Positions of the requested outputs (all of them for None)."""
    all_names = [o.name for o in outputs]
    if names is None:
        return list(range(len(all_names)))
    bad = [n for n in names if n not in all_names]
    if bad:
        raise InputError(f"unknown output names {bad}; the model's outputs are {all_names}")
    return [all_names.index(n) for n in names]


class _ThreadPool:
    """The library's thread pool interface (core/runtime/c); libraries built
    before it existed have none and run serially."""

    def __init__(self, lib: ctypes.CDLL):
        self._lib = lib
        self._set = getattr(lib, "tinyc_set_num_threads", None)
        self._get = getattr(lib, "tinyc_get_num_threads", None)
        if self._set is not None and self._get is not None:
            self._set.argtypes, self._set.restype = [ctypes.c_int64], None
            self._get.argtypes, self._get.restype = [], ctypes.c_int64

    def set(self, n: int | None) -> None:
        if self._set is not None:
            self._set(int(n or 0))  # 0: the pool's default, read now

    def get(self) -> int:
        return int(self._get()) if self._get is not None else 1

    def stop_when_dropped(self, owner: object) -> None:
        """End the pool's worker threads when `owner` (the model) is collected:
        the library stays loaded, its idle workers need not (a process loading
        one model after another kept one more thread per model). Not at
        interpreter exit, which ends every thread anyway."""
        stop = getattr(self._lib, "tinyc_pool_stop", None)
        if stop is not None:
            stop.argtypes, stop.restype = [], None
            weakref.finalize(owner, stop).atexit = False


def check_feed_names(feeds: object, expected: list[str]) -> None:
    if not isinstance(feeds, dict):
        raise InputError("feeds must be a dict mapping input names to numpy arrays")
    unknown = [k for k in feeds if k not in expected]
    missing = [k for k in expected if k not in feeds]
    if unknown or missing:
        raise InputError(f"wrong inputs: unknown {unknown}, missing {missing}; "
                         f"the model's inputs are {expected}")


def _load_private_copy(path: str) -> ctypes.CDLL:
    """dlopen a copy of the library under a name used once, then unlink it.

    glibc hands back the already-loaded library when a path is opened again,
    even if the file was replaced since (a cache entry rebuilt in place), and a
    loaded library that is overwritten faults; a private copy avoids both.
    """
    with open(path, "rb") as f:
        data = f.read()
    for folder in (os.path.dirname(os.path.abspath(path)), None):  # None: the temp folder
        try:
            fd, copy = tempfile.mkstemp(prefix=".tinyc-", suffix=".so", dir=folder)
        except OSError:
            continue  # a read-only artifact folder
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return ctypes.CDLL(copy)
        except OSError:
            continue  # e.g. a noexec temp folder; try the next place
        finally:
            os.unlink(copy)
    try:
        return ctypes.CDLL(path)
    except OSError as e:
        raise ArtifactError(f"cannot load {path}: {e}") from None


def verify_checksums(directory: str, meta: dict) -> None:
    validate.check_files(directory, meta, ())


def _symbol(lib: ctypes.CDLL, name: str, directory: str):
    try:
        return getattr(lib, name)
    except AttributeError:
        raise ArtifactError(f"{directory}/model.so has no function {name}") from None


def load(directory: str | os.PathLike) -> NativeModel:
    """Load a saved artifact (a folder written by Artifact.save)."""
    return NativeModel(os.fspath(directory))
