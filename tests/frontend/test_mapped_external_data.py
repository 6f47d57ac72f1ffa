"""External data (model.onnx + model.onnx.data) stays in its file: the session
keeps no copy of it, the importer maps it read-only, the cache key follows the
file's content, and the folder checks still hold for mapped tensors."""

from __future__ import annotations

import mmap
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc
from tinyc.frontend.mapped import MAP_MIN_BYTES, load_mapped
from tinyc.frontend.onnx_import import import_model

K, N = 128, 160  # w: 80 KiB, above MAP_MIN_BYTES; b stays small


def _save_dense(folder, w: np.ndarray, b: np.ndarray, location: str = "model.onnx.data") -> str:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, K])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, N])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]),
             helper.make_node("Add", ["xw", "b"], ["y"])]
    g = helper.make_graph(nodes, "dense", [x], [y], [numpy_helper.from_array(w, "w"),
                                                      numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model.onnx")
    onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return path


@pytest.fixture
def weights(rng):
    return (rng.standard_normal((K, N)).astype(np.float32),
            rng.standard_normal(N).astype(np.float32))


def _mmap_base(a: np.ndarray) -> bool:
    """Whether the array's memory is a mapping (an mmap, through a memoryview)."""
    while isinstance(a, np.ndarray):
        a = a.base
    return isinstance(getattr(a, "obj", a), mmap.mmap)


def test_large_external_tensors_are_mapped_small_ones_read_in(tmp_path, weights):
    assert weights[0].nbytes >= MAP_MIN_BYTES > weights[1].nbytes
    mapped = load_mapped(_save_dense(tmp_path / "m", *weights))
    by_name = {t.name: t for t in mapped.proto.graph.initializer}
    assert by_name["w"].data_location == TensorProto.EXTERNAL and not by_name["w"].raw_data
    assert by_name["b"].data_location == TensorProto.DEFAULT  # for shape inference
    g = import_model(mapped)
    w = g.constants["w"]
    assert _mmap_base(w) and not w.flags.writeable
    np.testing.assert_array_equal(w, weights[0])


def test_session_on_external_data_matches_numpy(tmp_path, weights, rng):
    sess = tinyc.InferenceSession(_save_dense(tmp_path / "m", *weights))
    x = rng.standard_normal((2, K)).astype(np.float32)
    (y,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, x @ weights[0] + weights[1], rtol=1e-5, atol=1e-5)
    assert sess._proto.ByteSize() < weights[0].nbytes  # the session holds no copy


def test_the_cache_key_follows_the_external_file_content(tmp_path, weights, rng, monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", str(tmp_path / "cache"))
    w, b = weights
    path = _save_dense(tmp_path / "m", w, b)
    x = rng.standard_normal((2, K)).astype(np.float32)
    first = tinyc.InferenceSession(path)
    again = tinyc.InferenceSession(path)
    assert (first.compile_count, again.compile_count) == (1, 0)  # a cache hit
    _save_dense(tmp_path / "m", 2 * w, b)  # same model.onnx bytes, new data
    changed = tinyc.InferenceSession(path)
    assert changed.compile_count == 1
    np.testing.assert_allclose(changed.run(None, {"x": x})[0], x @ (2 * w) + b,
                               rtol=1e-5, atol=1e-4)


def test_a_data_file_changed_after_loading_is_not_compiled(tmp_path, weights):
    path = _save_dense(tmp_path / "m", *weights)
    mapped = load_mapped(path)
    data = tmp_path / "m" / "model.onnx.data"
    data.write_bytes(data.read_bytes()[::-1])  # the key hashed the old content
    with pytest.raises(tinyc.ModelError, match="changed since the model was loaded"):
        import_model(mapped)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin",
                                      "link.bin"])
def test_mapped_external_data_may_not_escape_the_model_folder(tmp_path, weights, location):
    secret = tmp_path / "secret.bin"
    path = _save_dense(tmp_path / "m", *weights)
    secret.write_bytes((tmp_path / "m" / "model.onnx.data").read_bytes())
    os.symlink(secret, tmp_path / "m" / "link.bin")
    proto = onnx.load(path, load_external_data=False)
    for t in proto.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    onnx.save_model(proto, path)
    with pytest.raises(tinyc.ModelError, match="outside"):
        load_mapped(path)
    with pytest.raises(tinyc.ModelError, match="outside"):
        tinyc.InferenceSession(path)


@pytest.mark.parametrize("offset, length", [(0, 1 << 30), (1 << 30, 4), (-4, 4)])
def test_an_extent_outside_the_data_file_is_refused(tmp_path, weights, offset, length):
    path = _save_dense(tmp_path / "m", *weights)
    proto = onnx.load(path, load_external_data=False)
    (w,) = [t for t in proto.graph.initializer if t.name == "w"]
    info = {e.key: e for e in w.external_data}
    info["offset"].value, info["length"].value = str(offset), str(length)
    onnx.save_model(proto, path)
    with pytest.raises(tinyc.ModelError, match="external data at bytes"):
        tinyc.InferenceSession(path)


def test_an_extent_that_does_not_fit_the_shape_is_refused(tmp_path, weights):
    path = _save_dense(tmp_path / "m", *weights)
    proto = onnx.load(path, load_external_data=False)
    (w,) = [t for t in proto.graph.initializer if t.name == "w"]
    {e.key: e for e in w.external_data}["length"].value = str(weights[0].nbytes - 4)
    onnx.save_model(proto, path)
    with pytest.raises(tinyc.ModelError, match="needs"):
        tinyc.InferenceSession(path)
