"""tinyc.backend as an onnx.backend.base.Backend: prepare / run / run_model /
run_node / supports_device, and the errors a caller can make."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import tinyc
import tinyc.backend as backend


def _model():
    """y = x + b, z = x * b (two outputs), b an initializer."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("y", "z")]
    b = helper.make_tensor("b", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    nodes = [helper.make_node("Add", ["x", "b"], ["y"]), helper.make_node("Mul", ["x", "b"], ["z"])]
    graph = helper.make_graph(nodes, "g", [x], outs, initializer=[b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_prepare_once_run_positional_or_by_name():
    rep = backend.prepare(_model(), "CPU")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1, 2, 3], np.float32)
    y, z = rep.run([x])
    np.testing.assert_allclose(y, x + b)
    np.testing.assert_allclose(rep.run({"x": x}).z, x * b)  # outputs by name too
    np.testing.assert_allclose(backend.run_model(_model(), x)[0], x + b)


def test_run_node_types_inputs_from_arrays():
    node = helper.make_node("Gather", ["data", "idx"], ["out"], axis=1)
    data = np.arange(12, dtype=np.int32).reshape(3, 4)
    idx = np.array([3, -1, 0], np.int64)
    (out,) = backend.run_node(node, [data, idx])
    np.testing.assert_array_equal(out, data[:, [3, 3, 0]])


def test_devices():
    assert backend.supports_device("CPU")
    assert not backend.supports_device("CUDA")
    assert not backend.supports_device("nonsense")
    with pytest.raises(ValueError, match="CPU only"):
        backend.prepare(_model(), "CUDA")


def test_wrong_inputs_are_reported():
    rep = backend.prepare(_model())
    with pytest.raises(ValueError, match="expected 1 inputs"):
        rep.run([np.zeros((2, 3), np.float32)] * 2)
    with pytest.raises(tinyc.InputError):
        rep.run([np.zeros((2, 3), np.float64)])


def test_is_importable_as_an_attribute():
    assert tinyc.backend is backend
