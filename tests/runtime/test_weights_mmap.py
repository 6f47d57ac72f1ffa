"""A loaded artifact's weights are weights.bin mapped read-only (issue 12:
"Do not keep a second copy"): not a copy in the process, shared through the
page cache by every process that loads the artifact, and a write to them
would fault. A saved Artifact keeps a mapping of the file it wrote, not its blob.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc
from tinyc.runtime.native import load


def _dense_model(w: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, w.shape[0]])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, w.shape[1]])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]),
             helper.make_node("Add", ["xw", "b"], ["y"])]
    g = helper.make_graph(nodes, "dense", [x], [y], [numpy_helper.from_array(w, "w"),
                                                      numpy_helper.from_array(b, "b")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _mappings(path) -> list[str]:
    """The lines of /proc/self/maps that map `path`."""
    with open("/proc/self/maps") as f:
        return [line for line in f if line.rstrip().endswith(str(path))]


@pytest.fixture
def dense(rng):
    w = rng.standard_normal((64, 48)).astype(np.float32)
    b = rng.standard_normal(48).astype(np.float32)
    return _dense_model(w, b), w, b


def test_loaded_weights_are_a_read_only_mapping_of_weights_bin(tmp_path, dense, rng):
    model, w, b = dense
    tinyc.compile(model, "x86").save(tmp_path / "art")
    loaded = load(tmp_path / "art")
    weights = tmp_path / "art" / "weights.bin"
    assert isinstance(loaded._weights, np.memmap) and not loaded._weights.flags.writeable
    assert loaded._weights.ctypes.data % 64 == 0  # the plan's alignment holds
    maps = _mappings(weights.resolve())
    assert maps and all(line.split()[1].startswith("r-") for line in maps), maps
    x = rng.standard_normal((2, 64)).astype(np.float32)
    (y,) = loaded.run(None, {"x": x})
    np.testing.assert_allclose(y, x @ w + b, rtol=1e-5, atol=1e-5)


def test_a_saved_artifact_keeps_a_mapping_of_its_weights_not_the_blob(tmp_path, dense):
    model, _, _ = dense
    art = tinyc.compile(model, "x86")
    blob = bytes(art.weights)
    assert isinstance(art.weights, bytes)
    art.save(tmp_path / "art")
    assert isinstance(art.weights, memoryview) and art.weights.readonly
    assert art.weights == blob == (tmp_path / "art" / "weights.bin").read_bytes()
    assert _mappings((tmp_path / "art" / "weights.bin").resolve())
    art.save(tmp_path / "again")  # a second save writes from the mapping
    assert (tmp_path / "again" / "weights.bin").read_bytes() == blob


def test_a_model_without_weights_loads(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    tinyc.compile(m, "x86").save(tmp_path / "art")
    assert (tmp_path / "art" / "weights.bin").stat().st_size == 0
    (out,) = load(tmp_path / "art").run(None, {"x": np.array([-1, 2, -3, 4], np.float32)})
    np.testing.assert_array_equal(out, [0, 2, 0, 4])


def test_changed_weights_are_still_refused_by_their_checksum(tmp_path, dense):
    model, _, _ = dense
    tinyc.compile(model, "x86").save(tmp_path / "art")
    path = tmp_path / "art" / "weights.bin"
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(tinyc.ArtifactError, match="checksum"):
        load(tmp_path / "art")


def test_saving_over_a_loaded_artifact_replaces_its_files(tmp_path, dense, rng, monkeypatch):
    """A loaded artifact's weights.bin is never rewritten in place (truncating
    a mapped file faults its reader): a session saving into the folder, from
    its compile or from the cache, writes new files and renames them."""
    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path / "cache"))
    model, w, b = dense
    so = tinyc.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "saved")
    weights = tmp_path / "saved" / "weights.bin"
    assert tinyc.InferenceSession(model.SerializeToString(), so).compile_count == 1
    loaded, inode = load(tmp_path / "saved"), weights.stat().st_ino
    assert tinyc.InferenceSession(model.SerializeToString(), so).compile_count == 0  # copied
    assert weights.stat().st_ino != inode
    x = rng.standard_normal((2, 64)).astype(np.float32)
    np.testing.assert_allclose(loaded.run(None, {"x": x})[0], x @ w + b, rtol=1e-5, atol=1e-5)
