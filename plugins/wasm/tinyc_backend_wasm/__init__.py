"""tinyc backend for WebAssembly with 128-bit SIMD (wasm32, simd128).

Registers the `wasm` backend and its intrinsic sets. Code generation is not
there yet, so the wasm target says so instead of building something wrong.
"""

from __future__ import annotations

from collections.abc import Callable

from tinyc.target import PendingBackend, hookimpl, yaml_files

MISSING = ("code generation for wasm32 is not implemented yet: tinyc cannot link a wasm "
           "module (wasm-ld from lld) nor run one (wasmtime)")


@hookimpl
def tinyc_register_backends(register: Callable) -> None:
    register(PendingBackend("wasm", "cpu", MISSING))


@hookimpl
def tinyc_register_intrinsics(register: Callable) -> None:
    for path in yaml_files(__name__, "intrinsics"):
        register(path)
