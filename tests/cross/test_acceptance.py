"""Models compiled for cross targets, run under emulation, match onnxruntime.

squeezenet (random weights) and an MLP on aarch64, riscv64-rvv and wasm32-simd
(the acceptance of issue 7); the MLP and a small CNN on every Cortex-M board;
the targets without vectors (riscv64, wasm32) and an older core (cortex-a72).
"""

from __future__ import annotations

import pytest

import tinyc
from tinyc.testing.compare import assert_close_to_range

from .support import feeds_for, model_named, require

CASES = [
    ("aarch64", "squeezenet"), ("aarch64", "mlp"), ("aarch64", "small_cnn"),
    ("riscv64-rvv", "squeezenet"), ("riscv64-rvv", "mlp"), ("riscv64-rvv", "small_cnn"),
    ("wasm32-simd", "squeezenet"), ("wasm32-simd", "mlp"), ("wasm32-simd", "small_cnn"),
    ("cortex-m4", "mlp"), ("cortex-m4", "small_cnn"),
    ("cortex-m7", "mlp"), ("cortex-m7", "small_cnn"),
    ("cortex-m55", "mlp"), ("cortex-m55", "small_cnn"),
    ("riscv64", "mlp"), ("wasm32", "mlp"), ("aarch64-cortex-a72", "mlp"), ("aarch64-sve", "mlp"),
]


@pytest.mark.parametrize("target,model_name", CASES, ids=[f"{t}-{m}" for t, m in CASES])
def test_matches_onnxruntime_under_emulation(target, model_name, ort_run):
    require(target)
    model = model_named(model_name)
    feeds = feeds_for(model)
    names = [o.name for o in model.graph.output]
    got = tinyc.InferenceSession(model, target=target).run(names, feeds)
    for name, g, w in zip(names, got, ort_run(model, feeds, names), strict=True):
        assert_close_to_range(g, w, 1e-4, f"{model_name} on {target}: {name}")
