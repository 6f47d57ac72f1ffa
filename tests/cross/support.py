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


def instructions(artifact, feeds: dict[str, np.ndarray]) -> int:
    """Instructions one run executes under qemu: -icount on a Cortex-M board,
    qemu-user's single-step log on Linux targets."""
    if artifact.meta["run"]["runner"] == "qemu-semihosting":
        from tinyc_backend_arm.icount import instructions_per_inference

        return instructions_per_inference(artifact, feeds)
    from tinyc.runtime.icount import user_mode_instructions

    return user_mode_instructions(artifact, feeds)


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


def qdq_mlp() -> onnx.ModelProto:
    """An int8 MLP in QDQ form, as onnxruntime's quantizer writes it: activations
    and weights quantized to int8 (per tensor), dequantized before each MatMul /
    Add / Relu, the output quantized and dequantized once more."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    nodes, inits = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def qdq(x: str, scale: float, zero: int, name: str) -> str:
        s, z = const(f"{name}_s", np.array(scale, np.float32)), const(f"{name}_z", np.int8(zero))
        nodes.append(helper.make_node("QuantizeLinear", [x, s, z], [f"{name}_q"]))
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", s, z], [f"{name}_dq"]))
        return f"{name}_dq"

    def weight(shape: tuple[int, ...], name: str) -> str:
        q = const(f"{name}_q", rng.integers(-127, 128, shape).astype(np.int8))
        s, z = const(f"{name}_s", np.array(0.01, np.float32)), const(f"{name}_z", np.int8(0))
        nodes.append(helper.make_node("DequantizeLinear", [q, s, z], [f"{name}_dq"]))
        return f"{name}_dq"

    def dense(x: str, k: int, n: int, name: str) -> str:
        nodes.append(helper.make_node("MatMul", [x, weight((k, n), f"{name}_w")], [f"{name}_mm"]))
        bias = const(f"{name}_b", (rng.standard_normal(n) * 0.1).astype(np.float32))
        nodes.append(helper.make_node("Add", [f"{name}_mm", bias], [f"{name}_out"]))
        return f"{name}_out"

    h = dense(qdq("x", 0.03, 0, "in"), 20, 32, "fc1")
    nodes.append(helper.make_node("Relu", [qdq(h, 0.05, -10, "h1")], ["relu"]))
    y = dense(qdq("relu", 0.05, -128, "h2"), 32, 10, "fc2")
    nodes.append(helper.make_node("Identity", [qdq(y, 0.08, 3, "y")], ["y"]))
    graph = helper.make_graph(
        nodes, "qdq_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 20])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def qlinear_matmul() -> onnx.ModelProto:
    """uint8 x int8 QLinearMatMul with zero points and requantization (integer kernels)."""
    from tinyc.testing.int8_gemms import qlinear_matmul as model

    return model(m=5, k=40, n=19)
