"""Outputs whose size depends on input values (NonZero, Compress, Unique,
NonMaxSuppression, TopK with a run-time k), and the nodes after them: one
compile serves every data pattern (empty, full, random), checked against
onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h

import tinyc
from tinyc.compiler import CompileOptions, compile_model
from tinyc.errors import TinycError
from tinyc.session import InferenceSession

V = h.make_tensor_value_info


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", "off")


def _model(nodes, inputs, outputs, inits=(), opset: int = 17) -> onnx.ModelProto:
    g = h.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return h.make_model(g, opset_imports=[h.make_opsetid("", opset)])


def _patterns(shape, rng) -> list[np.ndarray]:
    """All zeros (an empty result), none zero (the bound), and sparse random."""
    dense = rng.standard_normal(shape).astype(np.float32)
    return [np.zeros(shape, np.float32), np.abs(dense) + 1,
            (dense * (rng.random(shape) > 0.6)).astype(np.float32), dense]


def _same_as_ort(model: onnx.ModelProto, feeds_list: list[dict]) -> InferenceSession:
    sess = InferenceSession(model.SerializeToString())
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for feeds in feeds_list:
        for got, want in zip(sess.run(None, feeds), ref.run(None, feeds), strict=True):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert sess.compile_count == 1  # one compile served every pattern and size
    return sess


def test_nonzero_then_gathernd_and_reducesum_with_a_symbolic_batch():
    """The count's symbol flows into GatherND and ReduceSum, whose sizes are
    read from the slot NonZero wrote; the empty case runs another variant."""
    model = _model([h.make_node("NonZero", ["x"], ["nz"]),
                    h.make_node("Transpose", ["nz"], ["idx"], perm=[1, 0]),
                    h.make_node("GatherND", ["x", "idx"], ["vals"]),
                    h.make_node("ReduceSum", ["vals"], ["total"], keepdims=0)],
                   [V("x", T.FLOAT, ["N", 4])],
                   [V("nz", T.INT64, None), V("vals", T.FLOAT, None), V("total", T.FLOAT, None)])
    rng = np.random.default_rng(0)
    feeds = [{"x": x} for n in (1, 3, 7) for x in _patterns((n, 4), rng)]
    _same_as_ort(model, feeds)


def test_compress_with_a_computed_condition_then_reduce():
    model = _model([h.make_node("Greater", ["c", "zero"], ["cond"]),
                    h.make_node("Compress", ["x", "cond"], ["y"], axis=1),
                    h.make_node("Relu", ["y"], ["r"]),
                    h.make_node("ReduceMax", ["r"], ["m"], axes=[1], keepdims=0)],
                   [V("x", T.FLOAT, [3, 6]), V("c", T.FLOAT, [6])],
                   [V("r", T.FLOAT, None), V("m", T.FLOAT, None)],
                   [h.make_tensor("zero", T.FLOAT, [], [0.0])])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6)).astype(np.float32)
    feeds = [{"x": x, "c": c} for c in _patterns((6,), rng)]
    # ReduceMax of an empty axis has no value: onnxruntime and tinyc give -inf
    _same_as_ort(model, feeds)


def test_compress_without_axis_of_int64():
    model = _model([h.make_node("Compress", ["x", "cond"], ["y"])],
                   [V("x", T.INT64, [2, 3]), V("cond", T.BOOL, [5])], [V("y", T.INT64, None)])
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    conds = [np.zeros(5, bool), np.ones(5, bool), np.array([0, 1, 1, 0, 1], bool)]
    _same_as_ort(model, [{"x": x, "cond": c} for c in conds])


def test_topk_with_a_run_time_k_from_zero_to_the_axis_length():
    model = _model([h.make_node("TopK", ["x", "k"], ["v", "i"], axis=1, largest=0),
                    h.make_node("ReduceSum", ["v"], ["s"], keepdims=0)],
                   [V("x", T.FLOAT, [3, 6]), V("k", T.INT64, [1])],
                   [V("v", T.FLOAT, None), V("i", T.INT64, None), V("s", T.FLOAT, None)])
    x = np.random.default_rng(2).standard_normal((3, 6)).astype(np.float32)
    sess = _same_as_ort(model, [{"x": x, "k": np.array([k], np.int64)} for k in (0, 1, 4, 6)])
    for bad in (7, -1):  # k outside [0, 6] is refused before TopK runs, naming the input
        with pytest.raises(tinyc.InputError, match=r"k input 'k'.*must lie in \[0, 6\]"):
            sess.run(None, {"x": x, "k": np.array([bad], np.int64)})


@pytest.mark.parametrize("axis", [None, 0])
def test_unique_every_output_and_a_gather_by_its_inverse(axis):
    kw = {} if axis is None else {"axis": axis}
    model = _model([h.make_node("Unique", ["x"], ["y", "first", "inverse", "counts"],
                                sorted=1, **kw),
                    h.make_node("Gather", ["y", "inverse"], ["back"], axis=axis or 0),
                    h.make_node("Mul", ["counts", "two"], ["twice"])],
                   [V("x", T.INT64, [6, 2])],
                   [V("y", T.INT64, None), V("first", T.INT64, None),
                    V("inverse", T.INT64, None), V("counts", T.INT64, None),
                    V("back", T.INT64, None), V("twice", T.INT64, None)],
                   [h.make_tensor("two", T.INT64, [], [2])])
    rng = np.random.default_rng(3)
    xs = [np.zeros((6, 2), np.int64), np.arange(12, dtype=np.int64).reshape(6, 2),
          rng.integers(0, 2, (6, 2)), rng.integers(-3, 3, (6, 2))]
    _same_as_ort(model, [{"x": x} for x in xs])


def test_unique_unsorted_floats_keep_first_occurrence_order():
    model = _model([h.make_node("Unique", ["x"], ["y", "first", "inverse", "counts"],
                                sorted=0)],
                   [V("x", T.FLOAT, [7])], [V(n, T.INT64 if n != "y" else T.FLOAT, None)
                                            for n in ("y", "first", "inverse", "counts")])
    xs = [np.array([3, 1, 3, 2, 1, 0, 2], np.float32), np.zeros(7, np.float32),
          np.arange(7, dtype=np.float32)[::-1].copy()]
    _same_as_ort(model, [{"x": x} for x in xs])


def test_nonmaxsuppression_with_every_optional_input():
    model = _model([h.make_node("NonMaxSuppression", ["boxes", "scores", "max", "iou", "smin"],
                                ["sel"]),
                    h.make_node("Gather", ["sel", "col"], ["box_ids"], axis=1)],
                   [V("boxes", T.FLOAT, [2, 8, 4]), V("scores", T.FLOAT, [2, 3, 8]),
                    V("max", T.INT64, [1]), V("iou", T.FLOAT, [1]), V("smin", T.FLOAT, [1])],
                   [V("sel", T.INT64, None), V("box_ids", T.INT64, None)],
                   [h.make_tensor("col", T.INT64, [], [2])])
    rng = np.random.default_rng(4)
    corners = rng.random((2, 8, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + rng.random((2, 8, 2)).astype(np.float32)], -1)
    scores = rng.random((2, 3, 8)).astype(np.float32)
    feeds = [{"boxes": boxes, "scores": scores, "max": np.array([m], np.int64),
              "iou": np.array([iou], np.float32), "smin": np.array([smin], np.float32)}
             for m, iou, smin in ((0, 0.5, 0.0), (3, 0.5, 0.2), (8, 1.0, -1.0), (8, 0.1, 0.5),
                                  (2, 0.5, 2.0))]
    _same_as_ort(model, feeds)


def test_the_artifact_records_its_data_dependent_sizes_and_their_bounds(tmp_path):
    model = _model([h.make_node("NonZero", ["x"], ["nz"])], [V("x", T.FLOAT, ["N", 4])],
                   [V("nz", T.INT64, None)])
    art = compile_model(model, "x86", CompileOptions(shape_hints={"N": 2}))
    sym = art.meta["symbolic"]
    assert sym["symbols"] == ["N"] and sym["guards"] == []
    assert sym["unbacked"] == [{"name": "nonzero0", "bound": "4*N"}]
    assert art.meta["outputs"][0]["shape"] == [2, "nonzero0"]
    loaded = tinyc.runtime.load(art.save(tmp_path / "nz"))
    x = np.eye(5, 4, dtype=np.float32)
    (nz,) = loaded.run(None, {"x": x})
    np.testing.assert_array_equal(nz, np.array(np.nonzero(x)))


def test_outputs_sized_by_data_are_not_bound_to_caller_buffers():
    model = _model([h.make_node("NonZero", ["x"], ["nz"])], [V("x", T.FLOAT, [4])],
                   [V("nz", T.INT64, None)])
    sess = InferenceSession(model.SerializeToString())
    binding = sess.io_binding()
    binding.bind_cpu_input("x", np.ones(4, np.float32))
    binding.bind_output("nz", "cpu", element_type=np.int64, shape=(1, 4),
                        buffer_ptr=np.empty((1, 4), np.int64).ctypes.data)
    with pytest.raises(tinyc.InputError, match="depend on input values"):
        sess.run_with_iobinding(binding)


def test_a_target_that_packages_static_code_refuses_them_by_name():
    model = _model([h.make_node("NonZero", ["x"], ["nz"])], [V("x", T.FLOAT, [4])],
                   [V("nz", T.INT64, None)])
    with pytest.raises(TinycError, match="NonZero.*depends on input values"):
        compile_model(model, "wasm32-simd")


@pytest.mark.parametrize("keepdims", [1, 0])
def test_a_reduction_over_run_time_axes_then_elementwise(keepdims):
    """The expanded ReduceL2 shape: ONNX cannot rank or size the sum; its dims
    are written by a kernel that reads the axes, and one compile serves every
    choice of axes."""
    model = _model([h.make_node("Mul", ["x", "x"], ["sq"]),
                    h.make_node("ReduceSum", ["sq", "axes"], ["s"], keepdims=keepdims),
                    h.make_node("Sqrt", ["s"], ["y"])],
                   [V("x", T.FLOAT, [3, 4, 5]), V("axes", T.INT64, [1])], [V("y", T.FLOAT, None)])
    x = np.random.default_rng(5).standard_normal((3, 4, 5)).astype(np.float32)
    sess = _same_as_ort(model, [{"x": x, "axes": np.array([a], np.int64)}
                                for a in (0, 1, 2, -1, -3)])
    for bad in (3, -4):
        with pytest.raises(tinyc.InputError, match=r"axes input 'axes'.*valid.*\[-3, 2\]"):
            sess.run(None, {"x": x, "axes": np.array([bad], np.int64)})


def test_repeated_run_time_axes_are_refused():
    model = _model([h.make_node("ReduceMax", ["x", "axes"], ["y"], keepdims=0)],
                   [V("x", T.FLOAT, [3, 4, 5]), V("axes", T.INT64, [2])], [V("y", T.FLOAT, None)],
                   opset=18)
    sess = InferenceSession(model.SerializeToString())
    x = np.ones((3, 4, 5), np.float32)
    assert sess.run(None, {"x": x, "axes": np.array([2, 0], np.int64)})[0].shape == (4,)
    with pytest.raises(tinyc.InputError, match="axes input 'axes'"):
        sess.run(None, {"x": x, "axes": np.array([1, -2], np.int64)})


def test_a_size_the_data_makes_impossible_for_a_later_node_fails_that_run_only():
    """Gather index 0 of Compress's result is fine unless nothing was picked:
    that variant of the Gather fails the run with the reason."""
    model = _model([h.make_node("Compress", ["x", "c"], ["y"], axis=0),
                    h.make_node("Gather", ["y", "i"], ["z"], axis=0)],
                   [V("x", T.FLOAT, [4, 2]), V("c", T.BOOL, [4])], [V("z", T.FLOAT, None)],
                   [h.make_tensor("i", T.INT64, [1], [0])])
    sess = InferenceSession(model.SerializeToString())
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    (z,) = sess.run(None, {"x": x, "c": np.array([0, 1, 1, 0], bool)})
    np.testing.assert_array_equal(z, [[2, 3]])
    with pytest.raises(tinyc.InputError, match="Gather node .*empty dimension"):
        sess.run(None, {"x": x, "c": np.zeros(4, bool)})


def test_broadcasting_a_data_dependent_size_against_a_number_is_refused_clearly():
    model = _model([h.make_node("NonZero", ["x"], ["nz"]), h.make_node("Add", ["nz", "w"], ["y"])],
                   [V("x", T.FLOAT, [5]), V("w", T.INT64, [1, 3])], [V("y", T.INT64, None)])
    with pytest.raises(TinycError, match="nonzero0 and 3 would broadcast by a size computed"):
        compile_model(model)


@pytest.mark.parametrize(("dtype", "shape"), [(np.bool_, (3, 4)), (np.int32, (2, 3, 4)),
                                              (np.uint8, (7,)), (np.float16, (2, 2, 2, 2)),
                                              (np.float64, (1, 5))])
def test_nonzero_of_every_dtype_and_rank_matches_numpy(dtype, shape):
    elem = h.np_dtype_to_tensor_dtype(np.dtype(dtype))
    model = _model([h.make_node("NonZero", ["x"], ["nz"])], [V("x", elem, list(shape))],
                   [V("nz", T.INT64, None)])
    sess = InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(6)
    for density in (0.0, 0.3, 1.0):
        x = ((rng.random(shape) < density) * rng.integers(1, 5, shape)).astype(dtype)
        if np.dtype(dtype).kind == "f":
            x[rng.random(shape) < 0.2] = -0.0  # a negative zero is a zero
        (nz,) = sess.run(None, {"x": x})
        np.testing.assert_array_equal(nz, np.array(np.nonzero(x)))
    assert sess.compile_count == 1


def test_a_slice_by_run_time_parameters_onnx_cannot_size_is_honoured():
    """Each output dim is a data-dependent length (at most the input's), set
    by the kernel that reads starts/ends/axes/steps; ReduceSum then decides on
    two such sizes at once (variants nested on both sides)."""
    model = _model([h.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"]),
                    h.make_node("ReduceSum", ["y"], ["t"], keepdims=0)],
                   [V("x", T.FLOAT, ["N", 6]), V("s", T.INT64, [2]), V("e", T.INT64, [2]),
                    V("a", T.INT64, [2]), V("st", T.INT64, [2])],
                   [V("y", T.FLOAT, None), V("t", T.FLOAT, None)])
    rng = np.random.default_rng(7)
    cases = [(4, [1, 0], [3, 6], [0, 1], [1, 1]), (5, [0, -4], [5, -1], [0, 1], [2, 1]),
             (3, [2, 2], [2, 2], [1, 0], [1, 1]), (6, [-1, 5], [-100, 0], [0, 1], [-1, -2]),
             (2, [0, 0], [1, 1], [1, 0], [1, 1])]
    _same_as_ort(model, [{"x": rng.standard_normal((n, 6)).astype(np.float32),
                          "s": np.array(s), "e": np.array(e), "a": np.array(a),
                          "st": np.array(st)} for n, s, e, a, st in cases])


def test_a_reshape_to_a_run_time_shape_onnx_cannot_size_is_honoured_and_checked():
    model = _model([h.make_node("Reshape", ["x", "s"], ["y"]),
                    h.make_node("ReduceSum", ["y", "ax"], ["t"], keepdims=0)],
                   [V("x", T.FLOAT, ["N", 6]), V("s", T.INT64, [3])],
                   [V("y", T.FLOAT, None), V("t", T.FLOAT, None)],
                   [h.make_tensor("ax", T.INT64, [1], [1])])
    rng = np.random.default_rng(8)
    cases = [(4, [2, -1, 3]), (2, [0, 3, 2]), (1, [6, 1, 1]), (3, [-1, 1, 2])]
    sess = _same_as_ort(model, [{"x": rng.standard_normal((n, 6)).astype(np.float32),
                                 "s": np.array(s)} for n, s in cases])
    x = np.ones((4, 6), np.float32)
    for bad, why in (([5, -1, 1], "holds 20, but it must lie in \\[24, 24\\]"),
                     ([-1, -1, 2], "holds -1"), ([25, 1, 1], "holds 25")):
        with pytest.raises(tinyc.InputError, match=f"shape input 's'.*{why}"):
            sess.run(None, {"x": x, "s": np.array(bad)})


def test_a_run_time_k_the_model_declares_sizes_for_is_checked_against_them():
    """Where the model declares TopK's output sizes, it is compiled for them
    (any target can run it), and a k that disagrees is refused, not used."""
    model = _model([h.make_node("TopK", ["x", "k"], ["v", "i"], axis=1)],
                   [V("x", T.FLOAT, [2, 5]), V("k", T.INT64, [1])],
                   [V("v", T.FLOAT, [2, 3]), V("i", T.INT64, [2, 3])])
    art = compile_model(model)
    assert "unbacked" not in (art.meta.get("symbolic") or {})
    sess = InferenceSession(model.SerializeToString())
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    np.testing.assert_array_equal(sess.run(None, {"x": x, "k": np.array([3])})[0],
                                  [[4, 3, 2], [9, 8, 7]])
    with pytest.raises(tinyc.InputError, match="TopK node .* holds 2 .* compiled for 3"):
        sess.run(None, {"x": x, "k": np.array([2])})
