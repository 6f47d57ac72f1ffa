"""tinyc backend for WebAssembly: wasm32, with and without SIMD128.

Registers the `wasm` backend (LLVM code for wasm32, linked with zig's wasm-ld
into one self-contained module, model.wasm: no imports, no libm), its
intrinsic sets, and a runtime device that runs the module in this process
with wasmtime.
"""

from __future__ import annotations

from collections.abc import Callable

from tinyc.plugin import (
    CompiledModel,
    CrossCpuBackend,
    Package,
    RuntimeDevice,
    hookimpl,
    yaml_files,
)

from . import package as wasm_package
from .runtime import WasmModel, wasmtime_missing


class WasmBackend(CrossCpuBackend):
    name = "wasm"
    arches = ("wasm32",)
    symbolic_shapes = True  # the module runs in this process: sizes bound per run

    def package(self, model: CompiledModel) -> Package:
        return wasm_package.package(model)


@hookimpl
def tinyc_register_backends(register: Callable) -> None:
    register(WasmBackend())


@hookimpl
def tinyc_register_intrinsics(register: Callable) -> None:
    for path in yaml_files(__name__, "intrinsics"):
        register(path)


@hookimpl
def tinyc_register_runtime_devices(register: Callable) -> None:
    register(RuntimeDevice("wasmtime", ("wasm",), WasmModel, not_available_reason=wasmtime_missing,
                           description="wasmtime, in this process"))
