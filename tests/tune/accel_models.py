"""A small int8 model for the accelerator tuning tests: two QLinearConvs (a
3x3, then a 1x1) with a Clip at the zero point (a quantized ReLU) between,
uint8 activations, int8 weights per output channel; sized so
accel_sim_small's buffers tile it along m, n and k. Both convolutions are
pinned to the device (beside x86 the partitioner would keep layers this small
on the CPU); the Clip, alone, stays on the CPU."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TARGET = "x86,accel_sim_small"
DEVICE = "accel_sim_small"
PINS = {"conv3x3": DEVICE, "conv1x1": DEVICE}


def _conv(rng, name: str, x: str, y: str, ci: int, co: int, k: int):
    inits = [numpy_helper.from_array(v, f"{name}_{n}") for n, v in (
        ("w", rng.integers(-128, 128, (co, ci, k, k)).astype(np.int8)),
        ("ws", rng.uniform(0.002, 0.01, co).astype(np.float32)),
        ("wz", np.zeros(co, np.int8)),
        ("b", rng.integers(-3000, 3000, co).astype(np.int32)))]
    pad = k // 2
    node = helper.make_node("QLinearConv", [x, "s", "z", f"{name}_w", f"{name}_ws",
                                            f"{name}_wz", "s", "z", f"{name}_b"], [y],
                            name=name, pads=[pad] * 4)
    return node, inits


def two_conv_model(c: int = 24, size: int = 14, co: int = 40) -> onnx.ModelProto:
    rng = np.random.default_rng(7)
    shared = [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
              numpy_helper.from_array(np.uint8(110), "z"),
              numpy_helper.from_array(np.uint8(255), "top")]
    a, ia = _conv(rng, "conv3x3", "x", "h", c, co, 3)
    b, ib = _conv(rng, "conv1x1", "r", "y", co, c, 1)
    relu = helper.make_node("Clip", ["h", "z", "top"], ["r"], name="clip")
    graph = helper.make_graph(
        [a, relu, b], "two_qconv",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, c, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, c, size, size])],
        shared + ia + ib)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def feeds(model: onnx.ModelProto, seed: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {vi.name: rng.integers(0, 256, [d.dim_value for d in vi.type.tensor_type.shape.dim])
            .astype(np.uint8) for vi in model.graph.input}
