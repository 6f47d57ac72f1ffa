"""The ways in: tinyc compile / run DIR / run MODEL --check, tinyc.runtime.load
and InferenceSession with the compile cache, for cross targets."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import tinyc
from tinyc.cli import main

from .support import conformance_model, feeds_for, require


@pytest.fixture
def mlp_path(tmp_path) -> str:
    path = tmp_path / "mlp.onnx"
    onnx.save(conformance_model("mlp"), path)
    return str(path)


@pytest.mark.parametrize("target", ["aarch64", "cortex-m55", "wasm32-simd"])
def test_compile_then_run_the_folder(target, mlp_path, tmp_path, capsys):
    require(target)
    out = tmp_path / "art"
    assert main(["compile", mlp_path, "--target", target, "-o", str(out)]) == 0
    assert main(["run", str(out), "--outputs", str(tmp_path / "o.npz")]) == 0
    with np.load(tmp_path / "o.npz") as o:
        np.testing.assert_allclose(next(iter(o.values())).sum(axis=-1), 1, rtol=1e-5)
    assert "ran in" in capsys.readouterr().out


def test_run_with_check_compares_with_onnxruntime(mlp_path, capsys):
    require("riscv64-rvv")
    assert main(["run", mlp_path, "--target", "riscv64-rvv", "--check"]) == 0
    assert "check: PASS" in capsys.readouterr().out


def test_runtime_load_runs_a_saved_wasm_module(tmp_path, ort_run):
    require("wasm32-simd")
    model = conformance_model("small_cnn")
    tinyc.compile(model, target="wasm32-simd").save(tmp_path)
    loaded = tinyc.runtime.load(tmp_path)
    feeds = feeds_for(model)
    (got,) = loaded.run(None, feeds)
    (want,) = ort_run(model, feeds)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    (again,) = loaded.run(None, feeds)  # the module's memory is reused
    np.testing.assert_array_equal(got, again)


def test_session_reloads_a_cross_artifact_from_the_cache(tmp_path, monkeypatch):
    require("cortex-m4")
    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path))  # empty: the first session compiles
    model = conformance_model("mlp")
    first = tinyc.InferenceSession(model, target="cortex-m4")
    second = tinyc.InferenceSession(model, target="cortex-m4")
    assert first.artifact is not None and second.artifact is None  # loaded from the cache
    feeds = feeds_for(model)
    np.testing.assert_array_equal(first.run(None, feeds)[0], second.run(None, feeds)[0])


def test_bad_feeds_are_refused_before_the_emulator_starts(tmp_path):
    require("aarch64")
    tinyc.compile(conformance_model("mlp"), target="aarch64").save(tmp_path)
    with pytest.raises(tinyc.InputError, match="shape"):
        tinyc.runtime.load(tmp_path).run(None, {"x": np.zeros((1, 20), np.float32)})
