"""MaxUnpool: MaxPool's indices unpooled, against onnxruntime (output of the
inferred shape) and onnx.reference (a larger output_shape, where onnxruntime
reads indices differently, see core/lower/unpool.py); bad indices and shapes
are refused with clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc
from tinyc.errors import InputError, ModelError

ort = pytest.importorskip("onnxruntime")
F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _model(nodes, inputs, outputs, inits=()) -> bytes:
    graph = helper.make_graph(nodes, "unpool", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)]).SerializeToString()


def _vi(name, elem, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


_ROUND_TRIPS = [  # (input shape, pooling attributes)
    ((1, 2, 8, 10), dict(kernel_shape=[2, 2], strides=[2, 2])),
    ((2, 1, 9, 11), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ((1, 2, 4, 6, 8), dict(kernel_shape=[2, 2, 2], strides=[2, 2, 2])),
    ((2, 3, 15), dict(kernel_shape=[3], strides=[3])),
]


def test_pool_then_unpool_matches_onnxruntime(rng):
    nodes, inputs, outputs = [], [], []
    for k, (shape, attrs) in enumerate(_ROUND_TRIPS):
        nodes += [helper.make_node("MaxPool", [f"x{k}"], [f"p{k}", f"i{k}"], **attrs),
                  helper.make_node("MaxUnpool", [f"p{k}", f"i{k}"], [f"y{k}"], **attrs)]
        inputs.append(_vi(f"x{k}", F, shape))
        outputs.append(_vi(f"y{k}", F))
    model = _model(nodes, inputs, outputs)
    feeds = {f"x{k}": rng.standard_normal(s).astype(np.float32)
             for k, (s, _) in enumerate(_ROUND_TRIPS)}
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = tinyc.InferenceSession(model).run(None, feeds)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == w.shape and np.array_equal(g, w), _ROUND_TRIPS[k]


def _unpool_model(x_shape, out_shape, output_shape=None, runtime_shape=False,
                  const_indices=None) -> bytes:
    inputs = [_vi("x", F, x_shape)]
    inits, names = [], ["x", "i"]
    if const_indices is None:
        inputs.append(_vi("i", I64, x_shape))
    else:
        inits.append(numpy_helper.from_array(const_indices, "i"))
    if output_shape is not None:
        names.append("s")
        if runtime_shape:
            inputs.append(_vi("s", I64, [len(output_shape)]))
        else:
            inits.append(numpy_helper.from_array(np.array(output_shape, np.int64), "s"))
    node = helper.make_node("MaxUnpool", names, ["y"], kernel_shape=[2, 2], strides=[2, 2])
    return _model([node], inputs, [_vi("y", F, out_shape)], inits)


def test_a_larger_output_shape_keeps_the_coordinates(rng):
    from onnx.reference import ReferenceEvaluator

    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    idx = np.array([rng.choice(36, 9, replace=False) + 36 * c for c in range(2)],
                   np.int64).reshape(x.shape)
    for runtime in (False, True):
        model = _unpool_model(x.shape, (1, 2, 7, 8), (1, 2, 7, 8), runtime_shape=runtime)
        feeds = {"x": x, "i": idx} | ({"s": np.array([1, 2, 7, 8], np.int64)} if runtime else {})
        want = ReferenceEvaluator(model).run(None, feeds)[0]
        got = tinyc.InferenceSession(model).run(None, feeds)[0]
        assert np.array_equal(got, want)


def test_a_run_time_output_shape_other_than_the_compiled_one_is_refused(rng):
    model = _unpool_model((1, 1, 2, 2), (1, 1, 5, 5), (1, 1, 5, 5), runtime_shape=True)
    sess = tinyc.InferenceSession(model)
    feeds = {"x": np.ones((1, 1, 2, 2), np.float32), "i": np.zeros((1, 1, 2, 2), np.int64)}
    with pytest.raises(InputError, match="output_shape|'s'"):
        sess.run(None, feeds | {"s": np.array([1, 1, 6, 6], np.int64)})


@pytest.mark.parametrize("bad", [16, -1])
def test_an_index_outside_the_unpooled_shape_is_refused(bad):
    sess = tinyc.InferenceSession(_unpool_model((1, 1, 2, 2), (1, 1, 4, 4)))
    idx = np.array([0, 3, bad, 15], np.int64).reshape(1, 1, 2, 2)
    with pytest.raises(InputError, match=str(bad)):
        sess.run(None, {"x": np.ones((1, 1, 2, 2), np.float32), "i": idx})


def test_a_constant_index_outside_is_a_model_error():
    idx = np.array([0, 3, 99, 15], np.int64).reshape(1, 1, 2, 2)
    with pytest.raises(ModelError, match="99"):
        tinyc.InferenceSession(_unpool_model((1, 1, 2, 2), (1, 1, 4, 4), const_indices=idx))


def test_a_smaller_output_shape_is_a_model_error():
    with pytest.raises(ModelError, match="only be larger"):
        tinyc.InferenceSession(_unpool_model((1, 1, 2, 2), (1, 1, 3, 3), (1, 1, 3, 3)))
