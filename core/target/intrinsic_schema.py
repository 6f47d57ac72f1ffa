"""The schema of an intrinsic set file (a plugin's intrinsics/*.yaml).

docs/intrinsics.md documents every field; a test checks that it does.
"""

from __future__ import annotations

from .spec_schema import DTYPE, FEATURE, NAME, POSITIVE_INT

LLVM_TYPE = {"type": "string",
             "pattern": r"^(<(vscale x )?\d+ x (i\d+|half|bfloat|float|double)>"
                        r"|i\d+|half|bfloat|float|double)$",
             "expected": "an LLVM value type such as <16 x i32>, <vscale x 4 x float> or i64"}

OPERAND = {
    "type": "object", "additionalProperties": False,
    "oneOf": [{"required": ["tensor"]}, {"required": ["const"]}],
    "expected": "an operand: {tensor: A, type: <64 x i8>, layout: broadcast} or "
                "{const: 0, type: i32}",
    "properties": {
        "tensor": NAME | {"expected": "a tensor named in the intrinsic's dtypes"},
        "const": {"type": "integer", "expected": "an integer immediate"},
        "type": LLVM_TYPE,
        "layout": {"enum": ["contiguous", "broadcast"],
                   "expected": "contiguous (the tile row-major, the default) or broadcast "
                               "(the tile repeated across the vector)"},
    },
}

EMIT = {
    "type": "object", "additionalProperties": False,
    "oneOf": [{"required": ["llvm"]}, {"required": ["ir"]}, {"required": ["opcode"]}],
    "expected": "how to emit: exactly one of llvm (an intrinsic name), ir (an LLVM IR "
                "template) or opcode (an accelerator command)",
    "properties": {
        "llvm": {"type": "string", "pattern": r"^llvm\.[\w.]+$",
                 "expected": "an LLVM intrinsic name such as llvm.x86.avx512.vpdpbusd.512"},
        "ir": {"type": "string", "expected": "LLVM IR instructions using %A, %B, ... for the "
                                             "operands; the last one gives the result"},
        "declare": {"type": "array", "items": {"type": "string", "pattern": r"^declare "},
                    "expected": "LLVM declarations the ir template calls"},
        "opcode": {"type": "string", "pattern": r"^[A-Z][A-Z0-9_]*$",
                   "expected": "an accelerator opcode in capitals, e.g. GEMM"},
        "returns": LLVM_TYPE,
        "accumulate": {"enum": ["operand", "add"],
                       "expected": "operand (the instruction accumulates: C is one of its "
                                   "operands, the default) or add (it returns the products "
                                   "only, which are added to C; C is no operand)"},
        "operands": {"type": "array", "items": OPERAND, "minItems": 1,
                     "expected": "the call's operands in order"},
    },
}

INTRINSIC = {
    "type": "object", "additionalProperties": False,
    "required": ["compute", "tile", "dtypes", "emit"],
    "expected": "an intrinsic: {compute, tile, dtypes, emit, description, priority}",
    "properties": {
        "description": {"type": "string", "expected": "one line of text"},
        "compute": {"type": "string", "minLength": 1,
                    "expected": "the semantics in index notation, e.g. C[i] += A[k] * B[i, k]"},
        "tile": {"type": "object", "key": "index",
                 "propertyNames": {"pattern": r"^[A-Za-z_]\w*$"},
                 "additionalProperties": POSITIVE_INT, "minProperties": 1,
                 "expected": "the extent of every index, e.g. {i: 16, k: 4}"},
        "dtypes": {"type": "object", "key": "tensor",
                   "propertyNames": {"pattern": r"^[A-Za-z_]\w*$"},
                   "additionalProperties": DTYPE, "minProperties": 1,
                   "expected": "the dtype of every tensor, e.g. {A: uint8, B: int8, C: int32}"},
        "emit": EMIT,
        "priority": {"type": "integer",
                     "expected": "an integer; among intrinsics matching an op, the highest "
                                 "priority wins (default 0), then the most MACs per call"},
    },
}

INTRINSIC_SET_SCHEMA: dict = {
    "type": "object", "additionalProperties": False, "required": ["set", "intrinsics"],
    "expected": "an intrinsic set",
    "properties": {
        "set": NAME | {"expected": "the set's name, which target specs list under intrinsics"},
        "description": {"type": "string", "expected": "one line of text"},
        "requires": {"type": "array", "items": FEATURE,
                     "expected": "the LLVM features a target needs for this set, e.g. "
                                 "[+avx512vnni]"},
        "intrinsics": {"type": "object", "key": "name", "propertyNames": NAME, "minProperties": 1,
                       "additionalProperties": INTRINSIC,
                       "expected": "intrinsics by name: {dot_16x4: {compute, tile, dtypes, "
                                   "emit}}"},
    },
}
