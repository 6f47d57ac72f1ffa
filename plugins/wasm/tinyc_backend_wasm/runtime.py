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

from tinyc.plugin import RunError, TargetError, TensorInfo, checked_feeds, output_indices, read_meta

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
        self._layout(exports["__heap_base"].value(self._store))
        self._lock = threading.Lock()

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

    def _call(self) -> int:
        import wasmtime

        try:
            return self._run(self._store, self._in_ptrs, self._out_ptrs, self._weights,
                             self._arena)
        except wasmtime.Trap as e:
            raise RunError(f"the {self.meta['target']} model trapped in wasmtime: {e}") from None

    def _read(self, info: TensorInfo, at: int) -> np.ndarray:
        dtype = np.dtype(info.dtype)
        nbytes = int(np.prod(info.shape, dtype=np.int64)) * dtype.itemsize
        data = self._memory.read(self._store, at, at + nbytes)
        return np.frombuffer(data, dtype).reshape(info.shape).copy()


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
