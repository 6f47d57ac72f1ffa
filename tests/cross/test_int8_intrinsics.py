"""Issue 17's int8 intrinsics on Arm and RISC-V, declared in YAML and matched by
the tensorizer: i8mm's smmla (a tile of 2 rows), Helium's vmladav and the DSP's
smlad (reductions into a scalar, smlad on int8 widened to int16), RVV's
vwmacc.vx (scalable vectors). Each QLinearMatMul / QLinearConv must report the
intrinsic, run under qemu, and equal onnxruntime bit for bit (as the plain path
does: tests/cross/test_int8.py). `pytest -m int8_counts` compares each with the
plain path (the same spec with no intrinsic sets) directly, and counts the
instructions both execute (the table in docs/intrinsics.md)."""

from __future__ import annotations

import numpy as np
import pytest

import tinyc
from tinyc.compiler import CompileOptions, compile_model
from tinyc.testing.int8_gemms import qlinear_conv, qlinear_matmul, uint8_feeds

from .support import instructions, require

# target -> (the intrinsic it must choose, its instruction in the assembly)
CHOSEN = {
    "arm64-dotprod": ("neon_i8mm.smmla_2x2x8_i8i8i32", "smmla"),
    "cortex-m4": ("dsp_int16.smlad_2_i16i16i32", "smlad"),
    "cortex-m7": ("dsp_int16.smlad_2_i16i16i32", "smlad"),
    "cortex-m55": ("mve_int8.vmlava_16_i8i8i32", "vmlava"),
    "riscv64-rvv": ("rvv_int8.vwmacc_vx_16_i16i16i32", "vwmacc.vx"),
}
MODELS = {"QLinearMatMul": qlinear_matmul, "QLinearConv": qlinear_conv}


def plain_spec(tmp_path, target: str) -> str:
    """The target with its intrinsic sets left out: the plain LLVM path."""
    path = tmp_path / f"{target}-plain.yaml"
    path.write_text(f"name: {target}-plain\nextends: {target}\nintrinsics: []\n")
    return str(path)


def gemm_report(art, op: str) -> dict:
    (entry,) = [r for r in art.report if r["op"] == op]
    return entry


@pytest.mark.parametrize("op", sorted(MODELS))
@pytest.mark.parametrize("target", sorted(CHOSEN))
def test_intrinsic_chosen_and_bit_exact(target, op, ort_run, tmp_path):
    require(target)
    intrinsic, instruction = CHOSEN[target]
    model = MODELS[op]()
    art = compile_model(model, target, CompileOptions(emit=("asm",)))
    assert gemm_report(art, op)["intrinsic"] == intrinsic
    assert instruction in art.listings["s"]
    feeds = uint8_feeds(model)
    (got,) = tinyc.InferenceSession(model, target=target).run(None, feeds)
    (want,) = ort_run(model, feeds)
    np.testing.assert_array_equal(got, want)


@pytest.mark.int8_counts
@pytest.mark.parametrize("op", sorted(MODELS))
@pytest.mark.parametrize("target", sorted(CHOSEN))
def test_bit_exact_with_the_plain_path(target, op, tmp_path):
    require(target)
    model = MODELS[op](m=33, k=72, n=45) if op == "QLinearMatMul" else MODELS[op](5, 11, 21)
    feeds = uint8_feeds(model, seed=9)
    plain = plain_spec(tmp_path, target)
    assert gemm_report(compile_model(model, plain), op)["intrinsic"] == ""
    (got,) = tinyc.InferenceSession(model, target=target).run(None, feeds)
    (unmatched,) = tinyc.InferenceSession(model, target=plain).run(None, feeds)
    np.testing.assert_array_equal(got, unmatched)


def test_report_names_the_intrinsic(tmp_path, capsys):
    """`tinyc compile --report` prints the chosen intrinsic of each GEMM."""
    import onnx

    from tinyc.cli import main

    require("cortex-m4")
    path = tmp_path / "mm.onnx"
    onnx.save(qlinear_matmul(), path)
    assert main(["compile", str(path), "--target", "cortex-m4", "--report",
                 "-o", str(tmp_path / "art")]) == 0
    assert "intrinsic dsp_int16.smlad_2_i16i16i32" in capsys.readouterr().out


@pytest.mark.int8_counts
@pytest.mark.parametrize("op", sorted(MODELS))
@pytest.mark.parametrize("target", sorted(CHOSEN))
def test_the_intrinsic_pays(target, op, tmp_path):
    """Instructions executed per run (the whole program under qemu) with the
    intrinsic and on the plain path; bench/int8_intrinsics.py prints the table."""
    require(target)
    model = qlinear_matmul(16, 256, 64) if op == "QLinearMatMul" else qlinear_conv(16, 12, 32)
    feeds = uint8_feeds(model)
    counts = [instructions(tinyc.compile(model, target=t), feeds)
              for t in (target, plain_spec(tmp_path, target))]
    print(f"{target} {op}: {counts[0]} / {counts[1]} = {counts[0] / counts[1]:.3f}")
    # the M55's conv gains least (0.82: its im2col packer loads one pixel per
    # row for one-lane steps, docs/intrinsics.md); every other case is <= 0.59
    assert counts[0] < (0.85 if (target, op) == ("cortex-m55", "QLinearConv") else 0.8) * counts[1]
