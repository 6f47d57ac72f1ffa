"""Bad input gets a clear tinyc error, never a crash."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc


def _relu_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_truncated_file_is_a_model_error(tmp_path):
    data = _relu_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(tinyc.ModelError, match="cut.onnx"):
        tinyc.InferenceSession(str(path))


def test_garbage_file_is_a_model_error(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\xff\xfe not a protobuf at all" * 10)
    with pytest.raises(tinyc.ModelError):
        tinyc.InferenceSession(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(tinyc.ModelError, match="no such model file"):
        tinyc.InferenceSession(str(tmp_path / "nope.onnx"))


def test_all_unsupported_ops_listed_at_once():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="ok"),
        helper.make_node("Frobnicate", ["a"], ["b"], name="first_bad", domain="com.example"),
        helper.make_node("Wobble", ["b"], ["y"], name="second_bad", domain="com.example"),
    ]
    g = helper.make_graph(nodes, "g", [x], [y],
                          value_info=[helper.make_tensor_value_info(n, TensorProto.FLOAT, [4])
                                      for n in ("a", "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.example", 1)], ir_version=8)
    with pytest.raises(tinyc.UnsupportedOpsError) as e:
        tinyc.InferenceSession(m)
    msg = str(e.value)
    assert "first_bad" in msg and "second_bad" in msg
    assert {p[1] for p in e.value.problems} == {"first_bad", "second_bad"}


@pytest.mark.parametrize("feeds, match", [
    ({"wrong": np.zeros((2, 8), np.float32)}, "unknown \\['wrong'\\]"),
    ({"x": np.zeros((2, 8), np.float64)}, "dtype float64; expected float32"),
    ({"x": np.zeros((3, 8), np.float32)}, "shape \\[3, 8\\]; expected \\[2, 8\\]"),
    ({}, "missing \\['x'\\]"),
])
def test_wrong_feeds_are_rejected_before_native_code(feeds, match):
    sess = tinyc.InferenceSession(_relu_model())
    with pytest.raises(tinyc.InputError, match=match):
        sess.run(None, feeds)


def test_unknown_output_name():
    sess = tinyc.InferenceSession(_relu_model())
    with pytest.raises(tinyc.InputError, match="unknown output names"):
        sess.run(["nope"], {"x": np.zeros((2, 8), np.float32)})


def _model_with_external(tmp_path, location: str) -> str:
    w = numpy_helper.from_array(np.ones(4, np.float32), "w")
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    entry = w.external_data.add()
    entry.key, entry.value = "location", location
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    path = tmp_path / "model" / "m.onnx"
    path.parent.mkdir()
    path.write_bytes(m.SerializeToString())
    return str(path)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_may_not_escape_the_model_folder(tmp_path, location):
    (tmp_path / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    path = _model_with_external(tmp_path, location)
    with pytest.raises(tinyc.ModelError, match="outside"):
        tinyc.InferenceSession(path)


def test_external_data_symlink_out_of_folder_is_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    path = _model_with_external(tmp_path, "link.bin")
    os.symlink(tmp_path / "secret.bin", os.path.join(os.path.dirname(path), "link.bin"))
    with pytest.raises(tinyc.ModelError, match="outside"):
        tinyc.InferenceSession(path)


def test_external_data_inside_the_folder_loads(tmp_path):
    path = _model_with_external(tmp_path, "w.bin")
    (tmp_path / "model" / "w.bin").write_bytes(np.full(4, 2.0, np.float32).tobytes())
    sess = tinyc.InferenceSession(path)
    (y,) = sess.run(None, {"x": np.arange(4, dtype=np.float32)})
    np.testing.assert_array_equal(y, np.arange(4) + 2.0)


def test_unknown_target_names_the_known_ones():
    with pytest.raises(tinyc.TargetError, match="known targets: .*x86"):
        tinyc.InferenceSession(_relu_model(), target="z80")


def test_declared_output_shape_contradicting_inference_is_a_model_error():
    m = _relu_model()
    del m.graph.output[0].type.tensor_type.shape.dim[:]  # declares a scalar
    with pytest.raises(tinyc.ModelError, match="inconsistent"):
        tinyc.InferenceSession(m)


def _one_node_model(node, x_shape, inits):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)  # shape left to inference
    g = helper.make_graph([node], "g", [x], [y], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_outputs_declared_without_shape_are_accepted_like_onnxruntime():
    m = _one_node_model(helper.make_node("Relu", ["x"], ["y"]), [2, 3], [])
    (y,) = tinyc.InferenceSession(m).run(None, {"x": -np.ones((2, 3), np.float32)})
    assert y.shape == (2, 3) and not y.any()


def test_conv_bias_of_the_wrong_size_is_a_model_error():
    inits = [numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w"),
             numpy_helper.from_array(np.ones(2, np.float32), "b")]
    m = _one_node_model(helper.make_node("Conv", ["x", "w", "b"], ["y"]), [1, 3, 8, 8], inits)
    with pytest.raises(tinyc.ModelError, match="input 2 \\(bias\\) 'b' has shape \\[2\\]"):
        tinyc.InferenceSession(m)


def test_batchnorm_statistics_of_the_wrong_size_are_a_model_error():
    inits = [numpy_helper.from_array(np.ones(2, np.float32), n) for n in "sbmv"]
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])
    with pytest.raises(tinyc.ModelError, match="expected 3 elements"):
        tinyc.InferenceSession(_one_node_model(node, [1, 3, 4, 4], inits))
