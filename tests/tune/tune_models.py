"""Small models for the tuning tests: a MatMul with constant weights (packed
at compile time, a tunable GEMM) and a two-layer MLP."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def matmul_model(m: int = 64, k: int = 96, n: int = 80, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "W")
    node = helper.make_node("MatMul", ["X", "W"], ["Y"], name="mm")
    graph = helper.make_graph([node], "tiny_matmul",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [m, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
                              [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def mlp_model(m: int = 32, sizes: tuple[int, ...] = (64, 96, 64), seed: int = 0
              ) -> onnx.ModelProto:
    """MatMuls with a Relu between: layers of different shapes, plus one repeated."""
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "X"
    for i, (k, n) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        inits.append(numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32),
                                             f"W{i}"))
        nodes.append(helper.make_node("MatMul", [x, f"W{i}"], [f"h{i}"], name=f"mm{i}"))
        nodes.append(helper.make_node("Relu", [f"h{i}"], [f"r{i}"], name=f"relu{i}"))
        x = f"r{i}"
    graph = helper.make_graph(nodes, "tiny_mlp",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT,
                                                             [m, sizes[0]])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT,
                                                             [m, sizes[-1]])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
