"""The schema of a target spec file (target_specs/*.yaml, or the user's own).

docs/spec-schema.md documents every field; a test checks that it does.
`expected` texts are quoted by error messages; `key` names the keys of a mapping
chosen by the author (documented as caches.<level>.size). jsonschema ignores both.
"""

from __future__ import annotations

from ..ir.dtypes import DType

DTYPE_NAMES = sorted(d.name for d in DType)

NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$",
        "expected": "a name of letters, digits and _ . + - (no spaces)"}
DTYPE = {"enum": DTYPE_NAMES, "expected": "a dtype name: " + ", ".join(DTYPE_NAMES)}
SIZE = {"oneOf": [{"type": "integer", "minimum": 1},
                  {"type": "string", "pattern": r"^\d+(\.\d+)?\s*(B|KiB|MiB|GiB|kB|MB|GB)$"}],
        "expected": "a size: a number of bytes or text like 48KiB, 2MiB, 1GB"}
POSITIVE_INT = {"type": "integer", "minimum": 1, "expected": "a positive integer"}
POSITIVE_NUMBER = {"type": "number", "exclusiveMinimum": 0, "expected": "a positive number"}

CACHE = {
    "type": "object", "additionalProperties": False, "required": ["size"],
    "expected": "a cache: {size, line_bytes, ways, shared}",
    "properties": {
        "size": SIZE,
        "line_bytes": POSITIVE_INT,
        "ways": POSITIVE_INT,
        "shared": {"type": "boolean", "expected": "true if shared between cores"},
    },
}

MEMORY = {
    "type": "object", "additionalProperties": False, "required": ["size"],
    "expected": "a memory: {size, kind, bandwidth_gbps, latency_cycles}",
    "properties": {
        "size": SIZE,
        "kind": {"enum": ["dram", "sram", "flash", "tcm", "hbm"],
                 "expected": "one of dram, sram, flash, tcm, hbm"},
        "bandwidth_gbps": POSITIVE_NUMBER,
        "latency_cycles": POSITIVE_INT,
    },
}

ACCELERATOR = {
    "type": "object", "additionalProperties": False, "required": ["kind"],
    "expected": "accelerator parameters: {kind, array, dtypes, clock_mhz, dma, ops, post_ops, "
                "limits}",
    "properties": {
        "kind": {"enum": ["gemm"], "expected": "the engine kind: gemm"},
        "array": {
            "type": "object", "additionalProperties": False, "required": ["rows", "cols"],
            "expected": "the MAC array: {rows, cols}",
            "properties": {"rows": POSITIVE_INT, "cols": POSITIVE_INT},
        },
        "dtypes": {
            "type": "object", "additionalProperties": False,
            "expected": "{input, weight, accumulator, output} dtype names",
            "properties": {k: DTYPE for k in ("input", "weight", "accumulator", "output")},
        },
        "clock_mhz": POSITIVE_NUMBER,
        "dma": {
            "type": "object", "additionalProperties": False,
            "expected": "the DMA engine: {bytes_per_cycle, setup_cycles}",
            "properties": {"bytes_per_cycle": POSITIVE_INT, "setup_cycles": POSITIVE_INT},
        },
        "ops": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z][\w.]*$"},
                "expected": "a list of ONNX op types the engine runs, e.g. [Conv, Gemm]"},
        "post_ops": {"type": "array",
                     "items": {"enum": ["bias", "requantize", "relu", "clip"],
                               "expected": "one of bias, requantize, relu, clip"},
                     "expected": "the post-ops fused after the array, e.g. [bias, requantize]"},
        "limits": {
            "type": "object", "additionalProperties": False,
            "expected": "shape limits: {max_kernel, max_stride, max_dilation, max_channels}",
            "properties": {k: POSITIVE_INT for k in ("max_kernel", "max_stride", "max_dilation",
                                                     "max_channels")},
        },
    },
}

FEATURE = {"type": "string", "pattern": r"^[+-][A-Za-z0-9_.-]+$",
           "expected": "an LLVM feature like +avx2 or -sse4a"}

SPEC_SCHEMA: dict = {
    "type": "object", "additionalProperties": False, "required": ["name"],
    "expected": "a target spec",
    "properties": {
        "name": NAME | {"expected": "the target's name, e.g. x86-avx2"},
        "extends": NAME | {"expected": "the name of the target spec this one refines"},
        "backend": NAME | {"expected": "the name of a backend plugin, e.g. x86"},
        "description": {"type": "string", "expected": "one line of text"},
        "triple": {"type": "string", "pattern": r"^[a-z0-9_.]+(-[a-z0-9_.]+){1,4}$",
                   "expected": "an LLVM target triple such as x86_64-unknown-linux-gnu"},
        "cpu": {"type": "string", "pattern": r"^[a-z0-9_.+-]+$",
                "expected": "an LLVM cpu name such as skylake-avx512, or 'host'"},
        "features": {"oneOf": [{"const": "host"}, {"type": "array", "items": FEATURE}],
                     "expected": "a list of LLVM features like [+avx2, +fma], or 'host'"},
        "vector_bits": {"oneOf": [{"const": "host"},
                                  {"enum": [32, 64, 128, 256, 512, 1024, 2048]}],
                        "expected": "the widest SIMD register in bits (128, 256, 512...), "
                                    "or 'host'"},
        "caches": {"type": "object", "key": "level",
                   "propertyNames": {"pattern": r"^l[1-4][di]?$"},
                   "additionalProperties": CACHE,
                   "expected": "caches by level: {l1d: {size: 48KiB, line_bytes: 64}, l2: ...}"},
        "memories": {"type": "object", "key": "name", "propertyNames": NAME,
                     "additionalProperties": MEMORY,
                     "expected": "memories by name: {dram: {size: 16GiB, kind: dram}, ...}"},
        "intrinsics": {"type": "array", "items": {"type": "string", "minLength": 1},
                       "expected": "a list of intrinsic set names (or .yaml paths relative "
                                   "to this file)"},
        "accelerator": ACCELERATOR,
    },
}
