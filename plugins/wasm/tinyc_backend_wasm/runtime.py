"""Running model.wasm in this process with wasmtime.

The module is compiled and instantiated once; the arena, the tensors and the
pointer arrays are placed once past __heap_base. Each run() writes the inputs
into linear memory, calls tinyc_run and copies the outputs out.
"""

from __future__ import annotations

import importlib.util
import os
import threading

import numpy as np

from tinyc.plugin import (
    RunError,
    ShapeGuardError,
    TargetError,
    TensorInfo,
    bind_sizes,
    checked_feeds,
    output_indices,
    read_meta,
)

ALIGN = 64
PAGE = 65536


def wasmtime_missing() -> str | None:
    if importlib.util.find_spec("wasmtime") is None:
        return "the wasm runtime is missing (pip install wasmtime)"
    return None


class WasmModel:
    """A wasm artifact loaded into wasmtime. Calls are serialized (one arena)."""

    def __init__(self, directory: str | os.PathLike):
        reason = wasmtime_missing()
        if reason:
            raise TargetError(f"cannot run wasm artifacts here: {reason}")
        import wasmtime

        d = os.fspath(directory)
        self.meta = read_meta(d)
        self.inputs = [TensorInfo(t["name"], t["shape"], t["dtype"]) for t in self.meta["inputs"]]
        self.outputs = [TensorInfo(t["name"], t["shape"], t["dtype"])
                        for t in self.meta["outputs"]]
        engine = wasmtime.Engine()
        self._store = wasmtime.Store(engine)
        module = wasmtime.Module.from_file(engine, os.path.join(d, self.meta["run"]["module"]))
        exports = wasmtime.Linker(engine).instantiate(self._store, module).exports(self._store)
        self._memory = exports["memory"]
        self._run = exports["tinyc_run"]
        self._weights = exports["tinyc_weights"].value(self._store)
        self._lock = threading.Lock()
        heap_base = exports["__heap_base"].value(self._store)
        if "symbolic" in self.meta:
            self._symbolic = SymbolicLayout(self.meta, exports, heap_base)
        else:
            self._symbolic = None
            self._layout(heap_base)

    def _layout(self, heap_base: int) -> None:
        """Arena, input and output tensors, then the two pointer arrays."""
        at = _aligned(heap_base)
        self._arena, at = at, _aligned(at + int(self.meta["arena_bytes"]))
        self._in_at, at = _place(at, self.inputs)
        self._out_at, at = _place(at, self.outputs)
        self._in_ptrs, at = at, at + 4 * max(len(self.inputs), 1)
        self._out_ptrs, at = at, at + 4 * max(len(self.outputs), 1)
        pages = -(-at // PAGE) - self._memory.size(self._store)
        if pages > 0:
            self._memory.grow(self._store, pages)
        self._memory.write(self._store, np.array(self._in_at, "<u4").tobytes(), self._in_ptrs)
        self._memory.write(self._store, np.array(self._out_at, "<u4").tobytes(), self._out_ptrs)

    def get_inputs(self) -> list[TensorInfo]:
        return list(self.inputs)

    def get_outputs(self) -> list[TensorInfo]:
        return list(self.outputs)

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self._symbolic is not None:
            wanted = output_indices(self.outputs, output_names)
            with self._lock:
                outs = self._symbolic.run(self, feeds)
            return [outs[j] for j in wanted]
        arrays = checked_feeds(self.inputs, feeds)
        wanted = output_indices(self.outputs, output_names)
        with self._lock:
            for a, at in zip(arrays, self._in_at, strict=True):
                self._memory.write(self._store, a.tobytes(), at)
            status = self._call()
            outs = [self._read(info, at) for info, at in zip(self.outputs, self._out_at,
                                                              strict=True)]
        if status != 0:
            raise RunError(f"tinyc_run returned status {status}")
        return [outs[j] for j in wanted]

    def profile(self) -> list[tuple[str, str, float]]:
        raise TargetError("per-node profiles need an artifact that runs in this process "
                          "as native code")

    def _call(self, *dims: int) -> int:
        """tinyc_run; a symbolic module takes the run's dims array too."""
        import wasmtime

        try:
            return self._run(self._store, self._in_ptrs, self._out_ptrs, self._weights,
                             self._arena, *dims)
        except wasmtime.Trap as e:
            raise RunError(f"the {self.meta['target']} model trapped in wasmtime: {e}") from None

    def _read(self, info: TensorInfo, at: int, shape=None) -> np.ndarray:
        shape = info.shape if shape is None else shape
        dtype = np.dtype(info.dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        data = self._memory.read(self._store, at, at + nbytes)
        return np.frombuffer(data, dtype).reshape(shape).copy()

    @property
    def symbols(self) -> list[str]:
        return self._symbolic.symbols if self._symbolic else []

    def accepts(self, values: tuple[int, ...]) -> bool:
        """Do these sizes pass the module's guards? (sessions pick an artifact;
        the dims go through the module's memory, which runs share: locked)"""
        if self._symbolic is None:
            return False
        with self._lock:
            return self._symbolic.accepts(self, values)

    def _grow_to(self, end: int) -> None:
        pages = -(-end // PAGE) - self._memory.size(self._store)
        if pages > 0:
            self._memory.grow(self._store, pages)


class SymbolicLayout:
    """A module compiled with symbolic dims: per run, the sizes are bound from
    the feeds, checked against the guards (tinyc_guards) and turned into the
    arena size and output shapes (tinyc_sizes); memory past the two small i64
    arrays is laid out for that run, growing as needed."""

    def __init__(self, meta: dict, exports, heap_base: int):
        sym = meta["symbolic"]
        self.symbols, self.guard_texts = list(sym["symbols"]), list(sym["guards"])
        self.minima = list(sym.get("minima") or [1] * len(self.symbols))
        self.maxima = list(sym.get("maxima") or [None] * len(self.symbols))
        self._guards, self._sizes = exports["tinyc_guards"], exports["tinyc_sizes"]
        n_sizes = 1 + sum(len(t["shape"]) for t in (*meta["outputs"], *meta["inputs"]))
        self._dims_at = _aligned(heap_base)
        self._sizes_at = _aligned(self._dims_at + 8 * max(len(self.symbols), 1))
        self._free = _aligned(self._sizes_at + 8 * n_sizes)
        self._n_sizes = n_sizes

    def out_of_range(self, values: tuple[int, ...]) -> list[str]:
        """The symbols below their minimum or above the max_shapes compiled for."""
        bad = [f"{s}={v} (at least {m})" for s, v, m in
               zip(self.symbols, values, self.minima, strict=True) if v < m]
        return bad + [f"{s}={v} (at most {m}, the max_shapes compiled for)" for s, v, m in
                      zip(self.symbols, values, self.maxima, strict=True)
                      if m is not None and v > m]

    def accepts(self, model: WasmModel, values: tuple[int, ...]) -> bool:
        if self.out_of_range(values):
            return False
        model._memory.write(model._store, np.array(values, "<i8").tobytes(), self._dims_at)
        return self._guards(model._store, self._dims_at) == 0

    def run(self, model: WasmModel, feeds: dict) -> list[np.ndarray]:
        arrays, values = bind_sizes(model.inputs, self.symbols, feeds)
        arena, shapes = self._sizes_for(model, arrays, values)
        at = self._free
        model._arena, at = at, _aligned(at + arena)
        ins, at = _place_shapes(at, [a.shape for a in arrays], model.inputs)
        outs, at = _place_shapes(at, shapes, model.outputs)
        model._in_ptrs, at = at, at + 4 * max(len(ins), 1)
        model._out_ptrs, at = at, at + 4 * max(len(outs), 1)
        model._grow_to(at)
        mem, store = model._memory, model._store
        mem.write(store, np.array(ins, "<u4").tobytes(), model._in_ptrs)
        mem.write(store, np.array(outs, "<u4").tobytes(), model._out_ptrs)
        for a, addr in zip(arrays, ins, strict=True):
            mem.write(store, a.tobytes(), addr)
        status = model._call(self._dims_at)
        if status != 0:
            raise RunError(f"tinyc_run returned status {status}")
        return [model._read(info, addr, shape)
                for info, addr, shape in zip(model.outputs, outs, shapes, strict=True)]

    def _sizes_for(self, model: WasmModel, arrays, values) -> tuple[int, list[tuple]]:
        named = ", ".join(f"{s}={v}" for s, v in zip(self.symbols, values, strict=True))
        bad = self.out_of_range(values)
        if bad:
            raise ShapeGuardError(f"symbolic dimensions out of range: {', '.join(bad)}")
        mem, store = model._memory, model._store
        mem.write(store, np.array(values, "<i8").tobytes(), self._dims_at)
        failed = self._guards(store, self._dims_at)
        if failed:
            raise ShapeGuardError(f"sizes {named} break the compiled guard "
                                  f"'{self.guard_texts[failed - 1]}'")
        self._sizes(store, self._dims_at, self._sizes_at)
        sizes = np.frombuffer(mem.read(store, self._sizes_at, self._sizes_at + 8 * self._n_sizes),
                              "<i8").tolist()
        shapes, k = [], 1
        for info in model.outputs:
            shapes.append(tuple(sizes[k:k + len(info.shape)]))
            k += len(info.shape)
        for info, a in zip(model.inputs, arrays, strict=True):  # relations between symbols
            want = tuple(sizes[k:k + a.ndim])
            k += a.ndim
            if a.shape != want:
                raise ShapeGuardError(f"input '{info.name}' has shape {list(a.shape)}, but "
                                      f"the sizes {named} make it {list(want)}")
        return int(sizes[0]), shapes


def _place_shapes(at: int, shapes, infos) -> tuple[list[int], int]:
    addresses = []
    for shape, info in zip(shapes, infos, strict=True):
        addresses.append(at)
        at = _aligned(at + int(np.prod(shape, dtype=np.int64)) * np.dtype(info.dtype).itemsize)
    return addresses, at


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _place(at: int, infos: list[TensorInfo]) -> tuple[list[int], int]:
    """Addresses of consecutive aligned tensors from `at`, and the end."""
    addresses = []
    for info in infos:
        addresses.append(at)
        nbytes = int(np.prod(info.shape, dtype=np.int64)) * np.dtype(info.dtype).itemsize
        at = _aligned(at + max(nbytes, 1))
    return addresses, at
