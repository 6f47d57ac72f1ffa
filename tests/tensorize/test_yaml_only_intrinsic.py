"""Acceptance: an intrinsic declared only in a YAML file (a new tile shape: 32 fp32
lanes per call via llvm.fma.v32f32), listed by a user's spec that extends
x86-avx512, is found by the matcher, used by the micro-kernel, named in the
compile report, and the model still matches onnxruntime."""

from __future__ import annotations

import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinyc.cli import main
from tinyc.runtime import load
from tinyc.testing.compare import assert_close_to_range

WIDE_FMA = """\
    set: wide_fma
    description: fp32 FMA on 32 lanes (two zmm registers per value)
    requires: [+avx512f]
    intrinsics:
      fma_f32_1x32:
        compute: Acc[r, c] += X[r, s] * Y[s, c]
        tile: {r: 1, c: 32, s: 1}
        dtypes: {X: float32, Y: float32, Acc: float32}
        emit:
          llvm: llvm.fma.v32f32
          returns: <32 x float>
          operands:
            - {tensor: X, type: <32 x float>, layout: broadcast}
            - {tensor: Y, type: <32 x float>}
            - {tensor: Acc, type: <32 x float>}
"""
SPEC = """\
    name: my-avx512
    extends: x86-avx512
    description: x86-avx512 with a 32-lane FMA tile declared in YAML only
    intrinsics: [wide_fma.yaml]
"""


def write_target(tmp_path) -> str:
    (tmp_path / "wide_fma.yaml").write_text(textwrap.dedent(WIDE_FMA))
    spec = tmp_path / "my-avx512.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    return str(spec)


def mlp_and_conv(path) -> str:
    """MatMul (+ Add) and a 3x3 conv with constant weights."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((48, 100)).astype(np.float32), "w1")
    wc = numpy_helper.from_array(rng.standard_normal((40, 3, 3, 3)).astype(np.float32), "wc")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]),
             helper.make_node("Relu", ["h"], ["y1"]),
             helper.make_node("Conv", ["img", "wc"], ["y2"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [37, 48]),
         helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 3, 20, 21])],
        [helper.make_tensor_value_info("y1", TensorProto.FLOAT, [37, 100]),
         helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 40, 20, 21])],
        [w1, wc])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, path)
    return str(path)


def test_new_intrinsic_from_yaml_is_used_and_correct(tmp_path, capsys, ort_run):
    spec = write_target(tmp_path)
    model_path = mlp_and_conv(tmp_path / "m.onnx")
    out = tmp_path / "art"
    assert main(["compile", model_path, "--target", spec, "-o", str(out),
                 "--report=all"]) == 0
    report = capsys.readouterr().out
    lines = [ln for ln in report.splitlines() if "MatMul" in ln or "Conv" in ln]
    assert len(lines) == 2
    for line in lines:
        assert "intrinsic wide_fma.fma_f32_1x32" in line, report
    # the spec lists only the new set, so nothing else was considered
    assert "not avx512_fma" not in report

    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((37, 48)).astype(np.float32),
             "img": rng.standard_normal((1, 3, 20, 21)).astype(np.float32)}
    got = load(out).run(None, feeds)
    want = ort_run(onnx.load(model_path), feeds)
    for g, w, name in zip(got, want, ("y1", "y2"), strict=True):
        assert_close_to_range(g, w, 1e-5, name)


def test_the_new_intrinsic_is_in_the_assembly(tmp_path):
    """v32f32 FMAs are two zmm vfmadd each; the micro-kernel's name carries the intrinsic."""
    spec = write_target(tmp_path)
    out = tmp_path / "art"
    assert main(["compile", mlp_and_conv(tmp_path / "m.onnx"), "--target", spec, "-o",
                 str(out), "--emit", "llvm,asm"]) == 0
    ll = (out / "model.ll").read_text()
    assert "llvm.fma.v32f32" in ll and "wide_fma_fma_f32_1x32" in ll
    assert "vfmadd231ps\t%zmm" in (out / "model.s").read_text()


@pytest.mark.parametrize("priority", [0, 10])
def test_priority_decides_between_sets(tmp_path, capsys, priority):
    """With avx512_fma listed too, the native 16-lane one wins unless the YAML
    gives the new one a higher priority... which still loses to a native fit."""
    (tmp_path / "wide_fma.yaml").write_text(textwrap.dedent(WIDE_FMA).replace(
        "      fma_f32_1x32:\n", f"      fma_f32_1x32:\n        priority: {priority}\n"))
    spec = tmp_path / "s.yaml"
    spec.write_text(textwrap.dedent(SPEC).replace("[wide_fma.yaml]",
                                                  "[avx512_fma, wide_fma.yaml]"))
    assert main(["compile", mlp_and_conv(tmp_path / "m.onnx"), "--target", str(spec), "-o",
                 str(tmp_path / "art"), "--report=all"]) == 0
    report = capsys.readouterr().out
    assert "intrinsic avx512_fma.fma_f32_1x16" in report
    assert "not wide_fma.fma_f32_1x32: ranked below avx512_fma.fma_f32_1x16 (its vectors " \
           "are wider than the target's 512 bits)" in report
