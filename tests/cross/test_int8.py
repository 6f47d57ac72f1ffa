"""int8 models under emulation: an int8 QDQ MLP on aarch64 and Cortex-M (issue 7's
acceptance) and a QLinearMatMul, whose integer kernels must equal onnxruntime
bit for bit on every target."""

from __future__ import annotations

import numpy as np
import pytest

import tinyc

from .support import qdq_mlp, qlinear_matmul, require

OUTPUT_SCALE = 0.08  # of qdq_mlp's last QuantizeLinear


@pytest.mark.parametrize("target", ["aarch64", "cortex-m55", "cortex-m4"])
def test_qdq_mlp_matches_onnxruntime(target, ort_run):
    """onnxruntime fuses QDQ into integer ops and tinyc computes them in float
    between quantize steps, so a value may land one quantization step apart
    (as on x86); most must be equal."""
    require(target)
    model = qdq_mlp()
    feeds = {"x": np.random.default_rng(5).standard_normal((4, 20)).astype(np.float32)}
    (got,) = tinyc.InferenceSession(model, target=target).run(None, feeds)
    (want,) = ort_run(model, feeds)
    steps = np.abs(got - want) / OUTPUT_SCALE
    assert steps.max() <= 1 + 1e-5, f"{target}: {steps.max():.2f} quantization steps apart"
    assert (got == want).mean() >= 0.8


@pytest.mark.parametrize("target", ["aarch64", "cortex-m55", "cortex-m4", "riscv64-rvv",
                                    "wasm32-simd"])
def test_qlinear_matmul_is_bit_exact(target, ort_run):
    require(target)
    model = qlinear_matmul()
    feeds = {"a": np.random.default_rng(6).integers(0, 256, (5, 40)).astype(np.uint8)}
    (got,) = tinyc.InferenceSession(model, target=target).run(None, feeds)
    (want,) = ort_run(model, feeds)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
