"""Acceptance: quantized MatMuls compiled for x86-avx512-vnni run on vpdpbusd (from
the avx512_vnni YAML) and equal onnxruntime bit for bit; for x86-avx2, which has
no VNNI, on vpmaddwd (the avx2_int16 YAML: bytes widened to int16), exactly too."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc
from tinyc.cli import main
from tinyc.compiler import CompileOptions, compile_model

ONNX_TYPE = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8}
M, K, N = 33, 200, 70


def _const(rng, name: str, dtype: str, shape) -> onnx.TensorProto:
    lo, hi = (0, 256) if dtype == "uint8" else (-128, 128)
    return numpy_helper.from_array(rng.integers(lo, hi, shape).astype(dtype), name)


def _model(nodes, inits, a_dtype: str, out_name: str, out_type: int) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "q", [helper.make_tensor_value_info("a", ONNX_TYPE[a_dtype], [M, K])],
        [helper.make_tensor_value_info(out_name, out_type, [M, N])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def qlinear_matmul(a_dtype: str, b_dtype: str) -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    scale = lambda name, v: numpy_helper.from_array(np.array(v, np.float32), name)  # noqa: E731
    zp = lambda name, dt, v: numpy_helper.from_array(np.array(v, dt), name)  # noqa: E731
    inits = [scale("as", 0.02), zp("az", a_dtype, 5), _const(rng, "b", b_dtype, (K, N)),
             scale("bs", 0.01), zp("bz", b_dtype, 0 if b_dtype == "int8" else 130),
             scale("ys", 0.7), zp("yz", a_dtype, 3)]
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                            ["y"])
    return _model([node], inits, a_dtype, "y", ONNX_TYPE[a_dtype])


def matmul_integer() -> onnx.ModelProto:
    rng = np.random.default_rng(4)
    inits = [_const(rng, "b", "int8", (K, N)),
             numpy_helper.from_array(np.array(9, np.uint8), "az"),
             numpy_helper.from_array(rng.integers(-4, 4, N).astype(np.int8), "bz")]
    node = helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
    return _model([node], inits, "uint8", "y", TensorProto.INT32)


MODELS = {"qlinear_u8i8": lambda: qlinear_matmul("uint8", "int8"),
          "qlinear_u8u8": lambda: qlinear_matmul("uint8", "uint8"),
          "matmul_integer": matmul_integer}


def _feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    dtype = "uint8" if model.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8 \
        else "int8"
    lo, hi = (0, 256) if dtype == "uint8" else (-128, 128)
    return {"a": np.random.default_rng(5).integers(lo, hi, (M, K)).astype(dtype)}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(("target", "intrinsic", "instruction"), [
    ("x86-avx512-vnni", "avx512_vnni.dot_16x4_u8i8i32", "vpdpbusd"),
    ("x86-avx2", "avx2_int16.madd_8x2_i16i16i32", "vpmaddwd")])
def test_bit_exact_with_onnxruntime(name, target, intrinsic, instruction, ort_run):
    model = MODELS[name]()
    art = compile_model(model, target, CompileOptions(emit=("asm",)))
    (gemm,) = [r for r in art.report if r["op"] in ("QLinearMatMul", "MatMulInteger")]
    assert gemm["intrinsic"] == intrinsic, gemm["note"]
    assert instruction in art.listings["s"]
    rejected = dict(gemm["rejected"])  # the fp32 step: by its dtypes
    assert rejected["avx2_fma.fma_f32_1x8"].startswith("dtype"), rejected
    feeds = _feeds(model)
    got = tinyc.InferenceSession(model, target=target).run(None, feeds)[0]
    want = ort_run(model, feeds)[0]
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_cli_emit_asm_has_vpdpbusd(tmp_path):
    path = tmp_path / "q.onnx"
    onnx.save(MODELS["qlinear_u8i8"](), path)
    out = tmp_path / "art"
    assert main(["compile", str(path), "--target", "x86-avx512-vnni", "--emit", "asm",
                 "-o", str(out)]) == 0
    assert "vpdpbusd" in (out / "model.s").read_text()


def test_arm_sdot_matched_by_semantics_and_exact(ort_run, tmp_path):
    """NEON's sdot is declared elementwise in its lanes (C[i] += A[i, k] * B[i, k]);
    fed A's 4 bytes replicated it is the GEMM tile. Runs under qemu-aarch64. The
    spec leaves out i8mm's set, whose smmla arm64-dotprod prefers."""
    from tinyc.errors import TargetError
    from tinyc.target import resolve_device

    try:
        resolve_device("arm64-dotprod")
    except TargetError as e:
        pytest.skip(str(e))
    spec = tmp_path / "sdot-only.yaml"
    spec.write_text("name: sdot-only\nextends: arm64-dotprod\n"
                    "intrinsics: [neon_f32, neon_dotprod]\n")
    model = MODELS["qlinear_u8i8"]()
    art = compile_model(model, str(spec), CompileOptions(emit=("asm",)))
    (gemm,) = [r for r in art.report if r["op"] == "QLinearMatMul"]
    assert gemm["intrinsic"] == "neon_dotprod.sdot_4x4_i8i8i32"
    assert "sdot" in art.listings["s"]
    feeds = _feeds(model)
    got = tinyc.InferenceSession(model, target=str(spec)).run(None, feeds)[0]
    np.testing.assert_array_equal(got, ort_run(model, feeds)[0])
