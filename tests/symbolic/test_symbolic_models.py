"""One compile serves many sizes: symbolic batch dims through lowering, the
memory plan, the entry and the runtime, checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import tinyc
from tinyc.compiler import CompileOptions, compile_model
from tinyc.runtime.symbolic import ShapeGuardError
from tinyc.testing.models import mobilenet_v2


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    monkeypatch.setenv("TINYC_CACHE_DIR", "off")


def _mlp() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = {"w1": rng.standard_normal((64, 128)), "b1": rng.standard_normal(128),
             "w2": rng.standard_normal((128, 10))}
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]),
             helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    g = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _ort(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_one_artifact_serves_every_batch_its_guards_admit(tmp_path):
    model = _mlp()
    art = compile_model(model, "x86", CompileOptions(shape_hints={"N": 8}))
    sym = art.meta["symbolic"]
    # the GEMMs' tiles differ for M < 8 and M >= 8: both variants are compiled
    # in, chosen at run time, so no guard is left
    assert sym["symbols"] == ["N"] and sym["guards"] == []
    assert art.meta["inputs"][0]["shape"] == ["N", 64]
    whens = [r["variants"]["when"] for r in art.report if "variants" in r]
    assert whens == ["N >= 8", "N >= 8"]  # both MatMuls
    loaded = tinyc.runtime.load(art.save(tmp_path / "mlp"))
    ref = _ort(model)
    rng = np.random.default_rng(1)
    for n in (1, 3, 7, 8, 9, 17, 31, 64, 100):  # both variants, and not only whole tiles
        x = rng.standard_normal((n, 64)).astype(np.float32)
        (y,) = loaded.run(None, {"x": x})
        np.testing.assert_allclose(y, ref.run(None, {"x": x})[0], rtol=1e-5, atol=1e-4)
    with pytest.raises(tinyc.InputError, match="at least 1; compile with --hint N=0"):
        loaded.run(None, {"x": np.zeros((0, 64), np.float32)})


def test_a_guard_that_fails_is_refused_before_native_code(tmp_path):
    """A symbol compiled as a number elsewhere in the graph (here a Reshape to
    a fixed 8 rows) is a guard; the runtime refuses other sizes by name."""
    g = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "r",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [32])],
        [numpy_helper.from_array(np.array([32], np.int64), "shape")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    art = compile_model(model, "x86", CompileOptions(shape_hints={"N": 8}))
    assert art.meta["symbolic"]["guards"] == ["4*N == 32"]
    loaded = tinyc.runtime.load(art.save(tmp_path / "r"))
    x = np.arange(32, dtype=np.float32).reshape(8, 4)
    np.testing.assert_array_equal(loaded.run(None, {"x": x})[0], x.reshape(-1))
    with pytest.raises(ShapeGuardError, match="4\\*N == 32"):
        loaded.run(None, {"x": np.zeros((3, 4), np.float32)})


def test_inputs_that_disagree_on_a_symbol_are_refused_before_native_code():
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"])], "add",
        [helper.make_tensor_value_info(v, TensorProto.FLOAT, ["N", 16]) for v in "ab"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    sess = tinyc.InferenceSession(model)
    a = np.ones((4, 16), np.float32)
    (y,) = sess.run(None, {"a": a, "b": a})
    np.testing.assert_array_equal(y, a + a)
    with pytest.raises(tinyc.InputError, match="'N' is 4 in one input and 5"):
        sess.run(None, {"a": a, "b": np.ones((5, 16), np.float32)})
    (y,) = sess.run(None, {"a": a[:3], "b": a[:3]})
    assert y.shape == (3, 16) and sess.compile_count == 1


def test_cnn_with_symbolic_batch_compiles_once_per_guard_region():
    model = mobilenet_v2(batch="N", resolution=64, width=0.35, classes=100)
    sess = tinyc.InferenceSession(model)
    ref = _ort(model)
    rng = np.random.default_rng(2)
    for n in (1, 2, 3, 8, 11):
        x = rng.standard_normal((n, 3, 64, 64)).astype(np.float32)
        (y,) = sess.run(None, {"input": x})
        np.testing.assert_allclose(y, ref.run(None, {"input": x})[0], rtol=1e-4, atol=1e-4)
    # one artifact: the classifier's GEMM has a variant for M < 8 and one for M >= 8
    assert sess.symbolic_fallback is None and sess.compile_count == 1


def test_max_shapes_reserve_the_arena_once_and_bound_the_sizes(tmp_path):
    model = _mlp()
    art = compile_model(model, "x86", CompileOptions(shape_hints={"N": 8},
                                                     max_shapes={"N": 64}))
    assert art.meta["symbolic"]["maxima"] == [64]
    loaded = tinyc.runtime.load(art.save(tmp_path / "mlp"))
    reserved = loaded._arena.size  # allocated at load, for N = 64
    assert reserved >= 1024 * 64 + 8192
    ref = _ort(model)
    for n in (64, 1, 33):
        x = np.ones((n, 64), np.float32)
        (y,) = loaded.run(None, {"x": x})
        np.testing.assert_allclose(y, ref.run(None, {"x": x})[0], rtol=1e-5, atol=1e-4)
        assert loaded._arena.size == reserved  # never reallocated
    with pytest.raises(ShapeGuardError, match="at most 64"):
        loaded.run(None, {"x": np.ones((65, 64), np.float32)})
    with pytest.raises(tinyc.TinycError, match="not symbolic dims"):
        compile_model(model, "x86", CompileOptions(max_shapes={"batch": 4}))


def test_a_batched_cnn_with_large_activations_runs_sample_by_sample():
    """Its activations per sample outgrow the cache: compiled for one sample and
    run per sample (passes/sample_loop.py); the MLP keeps its batched GEMMs."""
    model = mobilenet_v2(batch="N", resolution=224, width=0.35, classes=10)
    sess = tinyc.InferenceSession(model)
    ref = _ort(model)
    rng = np.random.default_rng(3)
    for n in (1, 3):
        x = rng.standard_normal((n, 3, 224, 224)).astype(np.float32)
        (y,) = sess.run(None, {"input": x})
        np.testing.assert_allclose(y, ref.run(None, {"input": x})[0], rtol=1e-4, atol=1e-4)
    assert sess.compile_count == 1 and sess.artifact.meta["symbolic"]["per_sample"]
    art = compile_model(_mlp(), "x86", CompileOptions(shape_hints={"N": 8}))
    assert not art.meta["symbolic"]["per_sample"]


def test_sample_loop_needs_every_node_to_work_per_sample():
    from tinyc.ir import DType, Graph, Node, TensorType
    from tinyc.ir.symbolic import SymDim, Tracer, tracing
    from tinyc.passes.sample_loop import sample_loop_symbol

    with tracing(Tracer(hints={"N": 2})):
        n = SymDim.symbol("N", 2)
        big = TensorType(DType.float32, (n, 64, 64, 64))
        w = TensorType(DType.float32, (64, 64, 1, 1))
        conv = Node("Conv", ("x", "w"), ("y",), name="c")
        g = Graph("g", ("x",), ("y",), (conv,), {"x": big, "w": w, "y": big},
                  {"w": np.zeros((64, 64, 1, 1), np.float32)})
        assert sample_loop_symbol(g) == "N"
        mixes = Node("Softmax", ("y",), ("z",), {"axis": 0}, name="s")  # across samples
        g2 = Graph("g", ("x",), ("z",), (conv, mixes), {**g.types, "z": big}, g.constants)
        assert sample_loop_symbol(g2) is None


def _key_transpose() -> onnx.ModelProto:
    """torch.onnx dynamo's sdpa key transpose on a KV cache: k = Concat(past, new)
    is [B, 8, P + S, 32]; Reshape(k, [-1, P + S, 32]) needs 256*B*(P + S) divided
    by 32*(P + S), then Transpose and Reshape to [B, 8, 32, P + S]."""
    c = {"m1": [-1], "m2": [-2], "zero": [0], "big": [2 ** 62]}
    nodes = [helper.make_node("Concat", ["past", "new"], ["k"], axis=2),
             helper.make_node("Shape", ["k"], ["shape"]),
             helper.make_node("Slice", ["shape", "m1", "big"], ["last"]),
             helper.make_node("Slice", ["shape", "m2", "m1"], ["length"]),
             helper.make_node("Slice", ["shape", "zero", "m2"], ["lead"]),
             helper.make_node("Concat", ["m1", "length", "last"], ["flat_shape"], axis=0),
             helper.make_node("Reshape", ["k", "flat_shape"], ["flat"]),
             helper.make_node("Transpose", ["flat"], ["kt"], perm=[0, 2, 1]),
             helper.make_node("Concat", ["lead", "last", "length"], ["out_shape"], axis=0),
             helper.make_node("Reshape", ["kt", "out_shape"], ["y"])]
    g = helper.make_graph(
        nodes, "key_transpose",
        [helper.make_tensor_value_info("past", TensorProto.FLOAT, ["B", 8, "P", 32]),
         helper.make_tensor_value_info("new", TensorProto.FLOAT, ["B", 8, "S", 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in c.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def test_a_reshape_dividing_by_a_sum_of_sizes_compiles_once_for_every_length():
    model = _key_transpose()
    sess = tinyc.InferenceSession(model.SerializeToString(), target="x86")
    ref = _ort(model)
    rng = np.random.default_rng(0)
    for b, p, s in ((1, 0, 5), (1, 5, 1), (2, 9, 3), (1, 31, 1)):
        feeds = {"past": rng.standard_normal((b, 8, p, 32)).astype(np.float32),
                 "new": rng.standard_normal((b, 8, s, 32)).astype(np.float32)}
        (y,) = sess.run(None, feeds)
        np.testing.assert_array_equal(y, ref.run(None, feeds)[0])
    # the first feed's sizes compiled the artifact every later one runs: the
    # division is exact for every size, so it left no guard on P + S
    assert sess.symbolic_fallback is None and sess.compile_count == 1
    assert sess._specializations[0].guard_texts == []


def _mask_cut_to_the_cache() -> onnx.ModelProto:
    """optimum's Llama export: the causal mask [B, 1, S, T] (T the mask's length)
    is cut to the keys' length P + S by a Slice whose starts, axes and steps are
    constants and whose ends come from the keys' Shape."""
    c = {"zero": [0], "two": 2, "axis": [3], "one": [1]}
    nodes = [helper.make_node("Concat", ["past", "new"], ["k"], axis=2),
             helper.make_node("Shape", ["k"], ["shape"]),
             helper.make_node("Gather", ["shape", "two"], ["length"], axis=0),
             helper.make_node("Unsqueeze", ["length", "zero"], ["ends"]),
             helper.make_node("Slice", ["mask", "zero", "ends", "axis", "one"], ["y"])]
    g = helper.make_graph(
        nodes, "mask_cut",
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["B", 1, "S", "T"]),
         helper.make_tensor_value_info("past", TensorProto.FLOAT, ["B", 2, "P", 4]),
         helper.make_tensor_value_info("new", TensorProto.FLOAT, ["B", 2, "S", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in c.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def test_a_slice_to_a_length_from_a_shape_compiles_once_for_every_length():
    model = _mask_cut_to_the_cache()
    sess = tinyc.InferenceSession(model.SerializeToString(), target="x86")
    ref = _ort(model)
    rng = np.random.default_rng(0)
    for b, p, s, extra in ((1, 0, 4, 0), (1, 4, 1, 0), (2, 7, 3, 2), (1, 30, 1, 5)):
        feeds = {"mask": rng.standard_normal((b, 1, s, p + s + extra)).astype(np.float32),
                 "past": np.zeros((b, 2, p, 4), np.float32),
                 "new": np.zeros((b, 2, s, 4), np.float32)}
        (y,) = sess.run(None, feeds)
        np.testing.assert_array_equal(y, ref.run(None, feeds)[0])
    assert sess.symbolic_fallback is None and sess.compile_count == 1
