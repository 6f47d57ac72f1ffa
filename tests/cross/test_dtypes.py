"""float64 and float16 ops on cores without double or half precision hardware:
the code calls helper routines (compiler-rt, tinyc_rt.c) whose calling
convention and names must match the generated code's (Cortex-M), and that a
wasm module must carry itself (no imports)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tinyc
from tinyc.testing.compare import assert_close_to_range

from .support import require

OPS = {TensorProto.DOUBLE: ("Sqrt", "Floor", "Round", "Div", "Mod", "Max", "Min"),
       TensorProto.FLOAT16: ("Sqrt", "Floor", "Round", "Div", "Mod", "Max", "Min")}
BINARY = ("Div", "Mod", "Max", "Min")


def unary_and_binary_ops(dtype: int) -> onnx.ModelProto:
    """One output per op, on x scaled up so that rounding has ties and fractions."""
    three = helper.make_tensor("three", dtype, [], [3.0])
    nodes = [helper.make_node("Mul", ["x", "three"], ["x3"])]
    outputs = []
    for op in OPS[dtype]:
        inputs = ["x3", "x"] if op in BINARY else ["x3"]
        attrs = {"fmod": 1} if op == "Mod" else {}
        nodes.append(helper.make_node(op, inputs, [op.lower()], **attrs))
        outputs.append(helper.make_tensor_value_info(op.lower(), dtype, [3, 7]))
    graph = helper.make_graph(nodes, "dtypes", [helper.make_tensor_value_info("x", dtype, [3, 7])],
                              outputs, [three])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("target,dtype", [("cortex-m4", TensorProto.DOUBLE),
                                          ("cortex-m4", TensorProto.FLOAT16),
                                          ("cortex-m55", TensorProto.DOUBLE),
                                          ("wasm32", TensorProto.DOUBLE),
                                          ("wasm32-simd", TensorProto.FLOAT16),
                                          ("riscv64", TensorProto.FLOAT16)])
def test_wide_and_half_floats_match_the_reference(target, dtype, ort_run):
    require(target)
    model = unary_and_binary_ops(dtype)
    np_dtype = np.float64 if dtype == TensorProto.DOUBLE else np.float16
    x = np.abs(np.random.default_rng(0).standard_normal((3, 7))) + 0.5
    x[0, :4] = [0.5, 1.5, 2.5 / 3, 7.5 / 3]  # ties for Round after scaling by 3
    feeds = {"x": x.astype(np_dtype)}
    got = tinyc.InferenceSession(model, target=target).run(None, feeds)
    for op, g, w in zip(OPS[dtype], got, ort_run(model, feeds), strict=True):
        assert_close_to_range(g, w, 1e-3 if np_dtype == np.float16 else 1e-12, f"{op} on {target}")
