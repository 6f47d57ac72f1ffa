"""Symbolic input dimensions compile once per guard region, not per shape
(ir/symbolic.py); artifacts are cached in memory and on disk, atomically, and
a corrupt entry is rebuilt."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tinyc


def _dynamic_mlp() -> onnx.ModelProto:
    w = onnx.numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])]
    g = helper.make_graph(nodes, "g", [x], [y], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _expected(model, x):
    return np.maximum(x @ onnx.numpy_helper.to_array(model.graph.initializer[0]), 0)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_symbolic_batch_runs_with_any_batch(cache_dir):
    model = _dynamic_mlp()
    sess = tinyc.InferenceSession(model)
    assert sess.get_inputs()[0].shape == ["batch", 16]
    for batch in (1, 7, 1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
        (y,) = sess.run(None, {"x": x})
        np.testing.assert_allclose(y, _expected(model, x), rtol=1e-5, atol=1e-5)
    for batch in (8, 64, 9):  # M >= 8: the GEMM's other variant, in the same artifact
        x = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
        (y,) = sess.run(None, {"x": x})
        np.testing.assert_allclose(y, _expected(model, x), rtol=1e-5, atol=1e-5)
    assert sess.compile_count == 1 and sess.symbolic_fallback is None
    assert len(list(cache_dir.iterdir())) == 1


def test_disk_cache_is_reused_by_a_new_session(cache_dir, monkeypatch):
    model = _dynamic_mlp()
    x = np.ones((2, 16), np.float32)
    tinyc.InferenceSession(model).run(None, {"x": x})
    calls = []
    import tinyc.session as session_module

    real = session_module.compile_model

    def counting_compile(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(session_module, "compile_model", counting_compile)
    (y,) = tinyc.InferenceSession(model).run(None, {"x": x})
    assert calls == []
    np.testing.assert_allclose(y, _expected(model, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("damage", ["truncate_weights", "garble_library", "drop_meta"])
def test_corrupt_cache_entry_is_rebuilt(cache_dir, damage):
    model = _dynamic_mlp()
    x = np.ones((2, 16), np.float32)
    tinyc.InferenceSession(model).run(None, {"x": x})
    (entry,) = list(cache_dir.iterdir())
    if damage == "truncate_weights":
        (entry / "weights.bin").write_bytes((entry / "weights.bin").read_bytes()[:10])
    elif damage == "garble_library":
        (entry / "model.so").write_bytes(b"\0" * 100)
    else:
        (entry / "model.json").unlink()
    (y,) = tinyc.InferenceSession(model).run(None, {"x": x})
    np.testing.assert_allclose(y, _expected(model, x), rtol=1e-5, atol=1e-5)
    assert (entry / "model.json").exists()


def test_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", "off")
    monkeypatch.setenv("HOME", str(tmp_path))
    tinyc.InferenceSession(_dynamic_mlp()).run(None, {"x": np.ones((1, 16), np.float32)})
    assert not (tmp_path / ".cache").exists()


def test_wrong_rank_or_dtype_on_a_dynamic_model_is_an_input_error(cache_dir):
    sess = tinyc.InferenceSession(_dynamic_mlp())
    with pytest.raises(tinyc.InputError, match="rank"):
        sess.run(None, {"x": np.ones((2, 16, 1), np.float32)})
    with pytest.raises(tinyc.InputError, match="dimension 16"):
        sess.run(None, {"x": np.ones((2, 15), np.float32)})
    with pytest.raises(tinyc.InputError, match="dtype"):
        sess.run(None, {"x": np.ones((2, 16), np.int32)})
