"""The disk cache key covers the helper sources a plugin builds into artifacts
(Cortex-M startup code, runtime C): editing one must not reuse a stale artifact."""

from __future__ import annotations

import shutil

import numpy as np
from onnx import TensorProto, helper

import tinyc
import tinyc.cache as cache
from tinyc.target import resolve_device


def _relu_model():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_editing_a_plugin_c_file_changes_its_fingerprint(tmp_path):
    arm = cache.plugin_package_dir(resolve_device("cortex-m4").backend)
    c_files = sorted(p.relative_to(arm) for p in arm.rglob("*.c"))
    assert c_files, f"no C helper in {arm}"
    copy = tmp_path / "tinyc_backend_arm"
    shutil.copytree(arm, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = cache.plugin_source_fingerprint(copy)
    assert before == cache.plugin_source_fingerprint(arm)
    with open(copy / c_files[0], "a") as f:
        f.write("\n/* edited */\n")
    assert cache.plugin_source_fingerprint(copy) != before


def test_a_session_recompiles_after_a_plugin_c_file_changes(tmp_path, monkeypatch):
    """x86's backend given a package folder of our own with a helper C file:
    an unchanged file reuses the entry, an edited one makes a new one."""
    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path / "cache"))
    package = tmp_path / "plugin"
    package.mkdir()
    helper_c = package / "helper.c"
    helper_c.write_text("int helper(void) { return 1; }\n")
    monkeypatch.setattr(cache, "plugin_package_dir", lambda backend: package)
    model, x = _relu_model(), np.array([-1, 2, -3, 4], np.float32)
    for _ in range(2):
        tinyc.InferenceSession(model).run(None, {"x": x})
    assert len(list((tmp_path / "cache").iterdir())) == 1
    helper_c.write_text("int helper(void) { return 2; }\n")
    (y,) = tinyc.InferenceSession(model).run(None, {"x": x})
    assert len(list((tmp_path / "cache").iterdir())) == 2
    np.testing.assert_array_equal(y, np.maximum(x, 0))
