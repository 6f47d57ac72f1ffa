"""Cross targets run under emulators: what each needs, and models to run.

A test whose toolchain or emulator is missing is skipped with the reason (shown
by pytest -ra); scripts/setup installs all of them, so CI runs every test.
"""

from __future__ import annotations

import functools
import shutil

import numpy as np
import onnx
import pytest

from tinyc.link.zig import zig_missing_reason

# What runs each family of targets, and how to install it.
EMULATORS = (
    (("aarch64", "arm64"), "qemu-aarch64", "apt-get install qemu-user"),
    (("riscv64",), "qemu-riscv64", "apt-get install qemu-user"),
    (("cortex-m",), "qemu-system-arm", "apt-get install qemu-system-arm"),
)


def missing_for(target: str) -> str | None:
    """None when `target` can be compiled and run here; else what is missing."""
    reason = zig_missing_reason()
    if reason:
        return reason
    if target.startswith("wasm32"):
        try:
            import wasmtime  # noqa: F401
        except ImportError:
            return "wasmtime is missing (pip install wasmtime)"
        return None
    for prefixes, tool, install in EMULATORS:
        if target.startswith(prefixes) and shutil.which(tool) is None:
            return f"{tool} is not installed ({install})"
    return None


def require(target: str) -> None:
    reason = missing_for(target)
    if reason:
        pytest.skip(f"{target}: {reason}")


def feeds_for(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    return {vi.name: rng.standard_normal([d.dim_value for d in vi.type.tensor_type.shape.dim])
            .astype(np.float32) for vi in model.graph.input if vi.name not in inits}


@functools.cache
def squeezenet() -> onnx.ModelProto:
    from tinyc.testing.models import expose_softmax_input, light_model

    return expose_softmax_input(light_model("squeezenet"))


@functools.cache
def conformance_model(name: str) -> onnx.ModelProto:
    from tinyc.testing.conformance.cases import MODEL_CASES

    return next(c for c in MODEL_CASES if c.name == name).build()


def model_named(name: str) -> onnx.ModelProto:
    return squeezenet() if name == "squeezenet" else conformance_model(name)
