"""tinyc: a bring-your-own-target ML compiler. ONNX in, native code out.

The compiler API is imported lazily, so `tinyc.runtime` (which runs saved
artifacts) works where onnx and llvmlite are not installed.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    ArtifactError,
    InputError,
    ModelError,
    SpecError,
    TargetError,
    TinycError,
    UnsupportedOpsError,
)

__version__ = "0.1.0"

_LAZY = {
    "InferenceSession": ("tinyc.session", "InferenceSession"),
    "compile": ("tinyc.compiler", "compile_model"),
    "CompileOptions": ("tinyc.compiler", "CompileOptions"),
    "Artifact": ("tinyc.link.artifact", "Artifact"),
    # onnxruntime's names, so its scripts port by changing the import
    "SessionOptions": ("tinyc.session_options", "SessionOptions"),
    "RunOptions": ("tinyc.session_options", "RunOptions"),
    "GraphOptimizationLevel": ("tinyc.session_options", "GraphOptimizationLevel"),
    "ExecutionMode": ("tinyc.session_options", "ExecutionMode"),
    "IOBinding": ("tinyc.io_binding", "IOBinding"),
    "get_available_providers": ("tinyc.providers", "available_providers"),
    "generate": ("tinyc.llm", "generate"),  # text from an LLM folder, streamed
}


_SUBMODULES = ("runtime", "ir", "passes", "target", "testing", "frontend", "lower", "codegen",
               "backend")


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"tinyc.{name}")
    raise AttributeError(f"module 'tinyc' has no attribute {name!r}")


__all__ = ["Artifact", "ArtifactError", "CompileOptions", "ExecutionMode", "GraphOptimizationLevel",
           "IOBinding", "InferenceSession", "InputError", "ModelError", "RunOptions",
           "SessionOptions", "SpecError", "TargetError", "TinycError", "UnsupportedOpsError",
           "compile", "generate", "get_available_providers"]
