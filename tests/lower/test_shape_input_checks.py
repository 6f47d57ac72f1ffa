"""A shape given as run-time data is the one the model was compiled for, or
the run is refused with an InputError naming it: never the old shape silently."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc
from tinyc.compiler import compile_model


def _model(node, inputs, out_shape, inits=(), outputs=("y",)):
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape)
            for o, shape in zip(outputs, [out_shape] if len(outputs) == 1 else out_shape,
                                strict=True)]
    g = helper.make_graph([node], "g", inputs, outs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def _vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def _load(model, tmp_path):
    return compile_model(model).load(tmp_path / "a")


CASES = {  # op: (node, x's shape, output shape, good shapes, bad shape, its first bad value)
    "Reshape": (helper.make_node("Reshape", ["x", "s"], ["y"]), [3, 4], [2, 6],
                [[2, 6], [2, -1], [-1, 6]], [6, 2], 6),
    "Expand": (helper.make_node("Expand", ["x", "s"], ["y"]), [3, 1], [2, 3, 6],
               [[2, 3, 6], [2, 1, 6]], [2, 3, 5], 5),
    "Tile": (helper.make_node("Tile", ["x", "s"], ["y"]), [3, 4], [6, 4], [[2, 1]], [1, 2], 1),
    "Resize": (helper.make_node("Resize", ["x", "", "", "s"], ["y"]), [1, 1, 4, 6],
               [1, 1, 8, 12], [[1, 1, 8, 12]], [1, 1, 8, 10], 10),
    "CenterCropPad": (helper.make_node("CenterCropPad", ["x", "s"], ["y"]), [4, 6], [2, 8],
                      [[2, 8]], [3, 8], 3),
}


@pytest.mark.parametrize("op", sorted(CASES))
def test_a_runtime_shape_is_checked_against_the_compiled_one(op, tmp_path):
    node, xshape, out, goods, bad, first_bad = CASES[op]
    model = _model(node, [_vi("x", xshape), _vi("s", [len(bad)], TensorProto.INT64)], out)
    loaded = _load(model, tmp_path)
    x = np.arange(np.prod(xshape), dtype=np.float32).reshape(xshape)
    for good in goods:
        (y,) = loaded.run(None, {"x": x, "s": np.array(good, np.int64)})
        assert y.shape == tuple(out)
    with pytest.raises(tinyc.InputError, match=f"shape input 's': holds {first_bad} "):
        loaded.run(None, {"x": x, "s": np.array(bad, np.int64)})


def test_constant_of_shape_from_a_runtime_shape(tmp_path):
    node = helper.make_node("ConstantOfShape", ["s"], ["y"],
                            value=numpy_helper.from_array(np.array([1.5], np.float32)))
    loaded = _load(_model(node, [_vi("s", [2], TensorProto.INT64)], [2, 3]), tmp_path)
    (y,) = loaded.run(None, {"s": np.array([2, 3], np.int64)})
    np.testing.assert_array_equal(y, np.full((2, 3), 1.5, np.float32))
    with pytest.raises(tinyc.InputError, match="compiled for 3"):
        loaded.run(None, {"s": np.array([2, 4], np.int64)})


def test_a_constant_shape_needs_no_check():
    node = helper.make_node("Reshape", ["x", "s"], ["y"])
    model = _model(node, [_vi("x", [3, 4])], [2, 6],
                   [numpy_helper.from_array(np.array([2, 6], np.int64), "s")])
    art = compile_model(model)
    assert not any("check_values" in k for r in art.report for k in r["kernels"])


def test_split_sizes_from_a_runtime_input(tmp_path):
    node = helper.make_node("Split", ["x", "s"], ["a", "b"], axis=1)
    model = _model(node, [_vi("x", [4, 6]), _vi("s", [2], TensorProto.INT64)],
                   [[4, 2], [4, 4]], outputs=("a", "b"))
    loaded = _load(model, tmp_path)
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    a, b = loaded.run(None, {"x": x, "s": np.array([2, 4], np.int64)})
    np.testing.assert_array_equal(a, x[:, :2])
    np.testing.assert_array_equal(b, x[:, 2:])
    with pytest.raises(tinyc.InputError, match="shape input 's': holds 3 at position 0, but "
                                               "the model was compiled for 2"):
        loaded.run(None, {"x": x, "s": np.array([3, 3], np.int64)})


@pytest.mark.parametrize("depth_shape", [[], [1]])
def test_one_hot_depth_from_a_runtime_input(tmp_path, depth_shape):
    node = helper.make_node("OneHot", ["i", "d", "v"], ["y"])
    model = _model(node, [_vi("i", [3], TensorProto.INT64),
                          _vi("d", depth_shape, TensorProto.INT64), _vi("v", [2])], [3, 4])
    loaded = _load(model, tmp_path)
    feeds = {"i": np.array([0, 3, 1], np.int64), "v": np.array([0, 1], np.float32)}
    (y,) = loaded.run(None, {**feeds, "d": np.full(depth_shape, 4, np.int64)})
    np.testing.assert_array_equal(y, np.eye(4, dtype=np.float32)[[0, 3, 1]])
    with pytest.raises(tinyc.InputError, match="OneHot node .*shape input 'd': holds 5 at "
                                               "position 0, but the model was compiled for 4"):
        loaded.run(None, {**feeds, "d": np.full(depth_shape, 5, np.int64)})


def _runtime_slice(tmp_path, out_shape):
    node = helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])
    ints = [_vi(n, [1], TensorProto.INT64) for n in ("st", "en", "ax", "sp")]
    return _load(_model(node, [_vi("x", [4, 6]), *ints], out_shape), tmp_path)


def _slice_feeds(x, start, end, axis, step):
    return {"x": x, **{k: np.array([v], np.int64) for k, v in
                       (("st", start), ("en", end), ("ax", axis), ("sp", step))}}


@pytest.mark.parametrize(("start", "end", "axis", "step"), [
    (1, 3, 1, 1), (3, 5, 1, 1), (-1, -100, 1, -3), (0, 1 << 62, 1, 4), (-(1 << 62), 2, 1, 1)])
def test_slice_parameters_giving_the_compiled_length_are_honoured(tmp_path, start, end, axis,
                                                                 step):
    loaded = _runtime_slice(tmp_path, [4, 2])
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    (y,) = loaded.run(None, _slice_feeds(x, start, end, axis, step))
    np.testing.assert_array_equal(y, x[:, start:end:step])


@pytest.mark.parametrize(("start", "end", "axis", "step", "message"), [
    (1, 4, 1, 1, "they give 3 elements along axis 1, but the model was compiled for 2"),
    (0, 6, 1, 2, "they give 3 elements along axis 1"),
    (5, 0, 1, -1, "they give 5 elements along axis 1"),
    (1, 3, 1, 0, "they give 0 elements along axis 1"),
    (0, 4, 0, 1, "they give 6 elements along axis 1"),  # axis 1 no longer sliced
    (1, 3, 2, 1, "index 2 \\(at flat position 0\\) is out of range; valid indices are \\[-2, 1\\]"),
])
def test_slice_parameters_giving_another_shape_are_refused(tmp_path, start, end, axis, step,
                                                           message):
    loaded = _runtime_slice(tmp_path, [4, 2])
    x = np.zeros((4, 6), np.float32)
    with pytest.raises(tinyc.InputError, match="Slice node .*: run-time starts/ends/axes/steps: "
                                               + message):
        loaded.run(None, _slice_feeds(x, start, end, axis, step))


def _slice_with_constant_starts(tmp_path):
    """starts and axes constant, ends run-time data (ONNX's Tind: one type for all)."""
    node = helper.make_node("Slice", ["x", "st", "en", "ax"], ["y"])
    inits = [numpy_helper.from_array(np.array([1], np.int64), "st"),
             numpy_helper.from_array(np.array([1], np.int64), "ax")]
    model = _model(node, [_vi("x", [4, 6]), _vi("en", [1], TensorProto.INT64)], [4, 2], inits)
    return _load(model, tmp_path)


def test_slice_with_constant_starts_and_run_time_ends(tmp_path):
    loaded = _slice_with_constant_starts(tmp_path)
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    for end in (3, -3):
        (y,) = loaded.run(None, {"x": x, "en": np.array([end], np.int64)})
        np.testing.assert_array_equal(y, x[:, 1:end])
    with pytest.raises(tinyc.InputError, match="Slice node .*: run-time starts/ends/axes/steps: "
                                               "they give 4 elements along axis 1, but the "
                                               "model was compiled for 2"):
        loaded.run(None, {"x": x, "en": np.array([5], np.int64)})
