"""The wasm artifact: one self-contained module, model.wasm.

It exports `memory`, `tinyc_run`, `tinyc_weights` (the address of the weights,
a data segment of the module) and `__heap_base` (where free memory starts),
and imports nothing: the few C library functions the generated code calls
(fmaf, fmaxf, memcpy...) are linked in from tinyc_rt.c; there is no libm.

The host places the arena, the tensors and two pointer arrays past __heap_base
(growing memory as needed) and calls
    tinyc_run(input_pointers, output_pointers, tinyc_weights, arena).

A model with symbolic dims also exports tinyc_sizes and tinyc_guards, and
tinyc_run takes a fifth argument, the run's dims (runtime.py lays memory out
per run from tinyc_sizes' answer).

Beside it, web.py writes the folder's web package: model.js (an ES module
that lays memory out the same way), model.d.ts, package.json and index.html.
"""

from __future__ import annotations

from tinyc.plugin import RUNTIME_C, CompiledModel, CrossBuild, Package

from .web import web_files

EXPORTS = ("tinyc_run", "tinyc_weights", "__heap_base")
SYMBOLIC_EXPORTS = ("tinyc_sizes", "tinyc_guards")
STACK_BYTES = 1 << 20  # the generated code's stack: small frames, but no guard page


def package(model: CompiledModel) -> Package:
    simd = "+simd128" in model.cpu.features.split(",")
    flags = ["-ffreestanding", "-fno-builtin", "-msimd128" if simd else "-mno-simd128"]
    exports = EXPORTS + (SYMBOLIC_EXPORTS if "symbolic" in model.meta else ())
    with CrossBuild(model, "wasm32-freestanding", flags) as build:
        rt = build.compile_c(RUNTIME_C)
        # zig's C driver over wasm-ld adds compiler-rt (half-float conversions,
        # 128-bit multiplies) and no libc
        build.link(["-Wl,--no-entry", *(f"-Wl,--export={name}" for name in exports),
                    "-Wl,--gc-sections", f"-Wl,-z,stack-size={STACK_BYTES}", "-o", "model.wasm",
                    "model.o", "weights.o", rt], "the wasm module")
        module = build.read("model.wasm")
    run = {"runner": "wasmtime", "module": "model.wasm", "exports": list(exports)}
    files = {"model.wasm": module, **web_files(model.meta, module)}
    # the module holds the weights (a data segment): no weights.bin beside it
    return Package(files, {"run": run, "sizes": module_sizes(module)}, weights_in="model.wasm")


# Section ids of the wasm binary format that matter for size and for imports.
SECTIONS = {2: "imports", 10: "code", 11: "data"}


def module_sizes(module: bytes) -> dict[str, int]:
    """Bytes of the module and of its code, data (weights) and import sections."""
    sizes = {"module": len(module), "code": 0, "data": 0, "imports": 0}
    at = 8  # magic and version
    while at < len(module):
        section = module[at]
        size, at = _leb128(module, at + 1)
        if section in SECTIONS:
            sizes[SECTIONS[section]] += size
        at += size
    return sizes


def _leb128(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7
