"""Int8 GEMMs with a symbolic batch (issue 11): one compile serves every M, on
the tensorized path (the host's VNNI, x86-avx2's vpmaddwd) and on the plain
one (the same spec without intrinsic sets), bit for bit like onnxruntime.
The plain path once read A's zero points from a constant of `hint` entries (a
silent wrong result for M > hint); the tensorized one was specialized to
M == hint, so a session recompiled for every new batch size."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc
from tinyc.target.machine import host_features

K, N = 40, 19
SIZES = (8, 1, 2, 3, 17)  # the first feed's size is the compile's hint


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", "off")


def _model(nodes, inits: dict, x: tuple, y: tuple) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "int8_sym", [helper.make_tensor_value_info(*x)],
        [helper.make_tensor_value_info(*y)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _weights() -> np.ndarray:
    return np.random.default_rng(3).integers(-128, 128, (K, N)).astype(np.int8)


def qlinear_matmul() -> onnx.ModelProto:
    """uint8 A [M, K] (zero point 5) @ int8 B, requantized to uint8."""
    inits = {"as": np.float32(0.02), "az": np.uint8(5), "b": _weights(), "bs": np.float32(0.01),
             "bz": np.int8(0), "ys": np.float32(0.7), "yz": np.uint8(3)}
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                            ["y"])
    return _model([node], inits, ("a", TensorProto.UINT8, ["M", K]),
                  ("y", TensorProto.UINT8, ["M", N]))


def matmul_integer() -> onnx.ModelProto:
    """int8 A [M, 3, K] (zero point -3: rows of A are M * 3) @ int8 B (zero point 2)."""
    inits = {"b": _weights(), "az": np.int8(-3), "bz": np.int8(2)}
    node = helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
    return _model([node], inits, ("a", TensorProto.INT8, ["M", 3, K]),
                  ("y", TensorProto.INT32, ["M", 3, N]))


def matmul_integer_runtime_b() -> onnx.ModelProto:
    """uint8 A [M, K] (zero point 7) @ an int8 B given at run time (zero point -2):
    the packers sum both operands' runs (both outer-product corrections)."""
    node = helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
    model = _model([node], {"az": np.uint8(7), "bz": np.int8(-2)},
                   ("a", TensorProto.UINT8, ["M", K]), ("y", TensorProto.INT32, ["M", N]))
    model.graph.input.append(helper.make_tensor_value_info("b", TensorProto.INT8, [K, N]))
    return model


def qdq_matmul() -> onnx.ModelProto:
    """Float in and out, quantized around the MatMul as onnxruntime's quantizer writes it."""
    inits = {"xs": np.float32(0.03), "xz": np.uint8(10), "w": _weights(), "ws": np.float32(0.01),
             "wz": np.int8(0), "ys": np.float32(0.08), "yz": np.uint8(3)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"]),
             helper.make_node("MatMul", ["xd", "wd"], ["mm"]),
             helper.make_node("QuantizeLinear", ["mm", "ys", "yz"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    return _model(nodes, inits, ("x", TensorProto.FLOAT, ["M", K]),
                  ("y", TensorProto.FLOAT, ["M", N]))


def qlinear_conv() -> onnx.ModelProto:
    """A 3x3 conv (padding 1) of a batch of M uint8 images, per-channel int8 weights."""
    rng = np.random.default_rng(4)
    inits = {"xs": np.float32(0.03), "xz": np.uint8(7),
             "w": rng.integers(-128, 128, (12, 8, 3, 3)).astype(np.int8),
             "ws": rng.uniform(0.005, 0.02, 12).astype(np.float32), "wz": np.zeros(12, np.int8),
             "ys": np.float32(0.5), "yz": np.uint8(100),
             "bias": rng.integers(-2000, 2000, 12).astype(np.int32)}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz",
                                            "bias"], ["y"], pads=[1, 1, 1, 1])
    return _model([node], inits, ("x", TensorProto.UINT8, ["M", 8, 9, 9]),
                  ("y", TensorProto.UINT8, ["M", 12, 9, 9]))


MODELS = {"QLinearMatMul": qlinear_matmul, "MatMulInteger": matmul_integer,
          "MatMulInteger-runtime-B": matmul_integer_runtime_b,
          "QDQ-MatMul": qdq_matmul, "QLinearConv": qlinear_conv}


def _feed(model: onnx.ModelProto, m: int, seed: int) -> dict[str, np.ndarray]:
    """Random values for every input, of `m` where a dim is the symbol."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in model.graph.input:
        shape = [m if d.dim_param else d.dim_value for d in vi.type.tensor_type.shape.dim]
        kind = vi.type.tensor_type.elem_type
        if kind == TensorProto.FLOAT:
            feeds[vi.name] = (rng.standard_normal(shape) * 2).astype(np.float32)
            continue
        dtype = np.uint8 if kind == TensorProto.UINT8 else np.int8
        info = np.iinfo(dtype)
        feeds[vi.name] = rng.integers(info.min, info.max + 1, shape).astype(dtype)
    return feeds


def plain_spec(tmp_path, target: str) -> str:
    """`target` with its intrinsic sets left out: the plain int8 GEMM."""
    path = tmp_path / f"{target}-plain.yaml"
    path.write_text(f"name: {target}-plain\nextends: {target}\nintrinsics: []\n")
    return str(path)


def serves_every_size(model: onnx.ModelProto, target: str) -> tinyc.InferenceSession:
    """Runs every size of SIZES from the one compile of the first, equal to onnxruntime."""
    sess = tinyc.InferenceSession(model, target=target)
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for seed, m in enumerate(SIZES):
        feeds = _feed(model, m, seed)
        (got,) = sess.run(None, feeds)
        np.testing.assert_array_equal(got, ref.run(None, feeds)[0], err_msg=f"M={m}")
    assert sess.symbolic_fallback is None
    assert sess.artifact.meta["symbolic"]["guards"] == []
    assert sess.compile_count == 1
    return sess


def _gemm_notes(sess: tinyc.InferenceSession) -> str:
    return " ".join(r.get("note", "") for r in sess.artifact.report)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_plain_int8_gemm_serves_every_batch(name, tmp_path):
    sess = serves_every_size(MODELS[name](), plain_spec(tmp_path, "x86"))
    assert "no intrinsic matched" in _gemm_notes(sess)


def _needs(feature: str):
    return pytest.mark.skipif(feature not in host_features(), reason=f"host lacks {feature}")


@pytest.mark.parametrize("target", [pytest.param("x86"),
                                    pytest.param("x86-avx2", marks=_needs("+avx2"))])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_tensorized_int8_gemm_serves_every_batch(name, target):
    sess = serves_every_size(MODELS[name](), target)
    notes = _gemm_notes(sess)
    if "+avx2" in host_features() or target == "x86-avx2":
        assert "intrinsic avx" in notes


@pytest.mark.parametrize("target", ["aarch64", "arm64-dotprod"])  # plain, smmla
def test_int8_matmul_with_a_symbolic_batch_on_arm_under_qemu(target):
    import shutil

    if shutil.which("qemu-aarch64") is None:
        pytest.skip("qemu-aarch64 is not installed (Debian: qemu-user)")
    serves_every_size(qlinear_matmul(), target)


def qlinear_concat() -> onnx.ModelProto:
    """Three uint8 inputs along channels: two requantized, one copied (its
    parameters are the output's)."""
    q = {"s": np.float32(0.05), "z": np.uint8(10), "s2": np.float32(0.07),
         "z2": np.uint8(120), "ys": np.float32(0.1), "yz": np.uint8(128)}
    node = helper.make_node("QLinearConcat", ["ys", "yz", "x", "s", "z", "x", "s2", "z2",
                                              "x", "ys", "yz"], ["y"], domain="com.microsoft",
                            axis=1)
    model = _model([node], q, ("x", TensorProto.UINT8, ["M", 4, 3]),
                   ("y", TensorProto.UINT8, ["M", 12, 3]))
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def test_qlinear_concat_serves_every_batch():
    """It requantized one call per batch item (range(M): M compiled as a number);
    the other variant of that guard once reused the hint and corrupted memory for
    M > hint. Now a symbolic batch is requantized whole, then copied into place."""
    serves_every_size(qlinear_concat(), "x86")
