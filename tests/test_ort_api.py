"""onnxruntime's own Python API tests (onnxruntime_test_python.py and
onnxruntime_test_python_iobinding.py), ported to tinyc: same scenarios, models
rebuilt with onnx.helper (ort_api_models.py), our own code. Each test names
the onnxruntime test it ports. Where onnxruntime's answer is the contract
(shapes, overridable initializers), it is asked too."""

from __future__ import annotations

import json
import os
import pathlib
import threading

import numpy as np
import onnxruntime as ort
import pytest
from ort_api_models import (
    X_SQUARED,
    X,
    identity,
    logical_and,
    matmul,
    mul_1,
    passthrough,
    with_metadata,
)

import tinyc
from tinyc import GraphOptimizationLevel, RunOptions, SessionOptions
from tinyc.providers import normalize_providers

CPU = ["CPUExecutionProvider"]


def _ort(model) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=CPU)


@pytest.fixture(scope="module")
def mul_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ort") / "mul_1.onnx"
    path.write_bytes(mul_1().SerializeToString())
    return str(path)


@pytest.fixture(scope="module")
def mul_sess(mul_path):
    return tinyc.InferenceSession(mul_path, providers=CPU)


# ---- onnxruntime_test_python.py


def test_model_serialization(mul_path, tmp_path):  # optimized_model_filepath: our artifact
    so = SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimized")
    tinyc.InferenceSession(mul_path, sess_options=so, providers=CPU)
    (y,) = tinyc.runtime.load(so.optimized_model_filepath).run(None, {"X": X})
    np.testing.assert_allclose(y, X_SQUARED)


def test_get_providers(mul_path):
    assert "CPUExecutionProvider" in tinyc.get_available_providers()
    assert tinyc.get_available_providers()[-1] == "CPUExecutionProvider"
    sess = tinyc.InferenceSession(mul_path, providers=tinyc.get_available_providers()[-1:])
    assert "CPUExecutionProvider" in sess.get_providers()


def test_deserialization_from_path_object(mul_path):
    tinyc.InferenceSession(pathlib.Path(mul_path), providers=CPU)


def test_invalid_set_providers(mul_sess):  # onnxruntime: RuntimeError; tinyc: TargetError
    sess = tinyc.InferenceSession(mul_1(), providers=CPU)
    with pytest.raises(tinyc.TargetError, match="InvalidProvider"):
        sess.set_providers(["InvalidProvider"])


def test_session_providers(mul_sess):
    assert mul_sess.get_providers() == ["CPUExecutionProvider"]


def test_run_model(mul_sess):
    inputs, outputs = mul_sess.get_inputs(), mul_sess.get_outputs()
    assert [(i.name, i.shape) for i in inputs] == [("X", [3, 2])]
    assert [(o.name, o.shape) for o in outputs] == [("Y", [3, 2])]
    (y,) = mul_sess.run([outputs[0].name], {inputs[0].name: X})
    np.testing.assert_allclose(y, X_SQUARED, rtol=1e-5, atol=1e-8)


def test_run_async(mul_path):
    so = SessionOptions()
    so.intra_op_num_threads = 2
    sess = tinyc.InferenceSession(mul_path, so, providers=CPU)
    done, seen = threading.Event(), {}

    def callback(res, data, err):
        seen.update(res=res, data=data, err=err)
        done.set()

    sess.run_async(["Y"], {"X": X}, callback, 123456)
    assert done.wait(10)
    assert seen["err"] == "" and seen["data"] == 123456
    np.testing.assert_allclose(seen["res"][0], X_SQUARED)


def test_run_model_from_bytes():
    sess = tinyc.InferenceSession(mul_1().SerializeToString(), providers=CPU)
    assert sess.get_inputs()[0].shape == [3, 2] and sess.get_outputs()[0].name == "Y"
    np.testing.assert_allclose(sess.run(["Y"], {"X": X})[0], X_SQUARED)


def test_run_model2():
    sess = tinyc.InferenceSession(matmul(), providers=CPU)
    assert sess.get_outputs()[0].shape == [3, 1]
    np.testing.assert_allclose(sess.run(["Y"], {"X": X})[0], [[5.0], [11.0], [17.0]])


def test_run_model2_contiguous():
    sess = tinyc.InferenceSession(matmul(), providers=CPU)
    x = np.array([[2.0, 1.0], [4.0, 3.0], [6.0, 5.0]], np.float32)[:, [1, 0]]
    x = np.asfortranarray(x)  # not C-contiguous: the session makes it so
    assert not x.flags.c_contiguous
    np.testing.assert_allclose(sess.run(["Y"], {"X": x})[0], [[5.0], [11.0], [17.0]])
    np.testing.assert_allclose(sess.run(["Y"], {"X": np.ascontiguousarray(x)})[0],
                               [[5.0], [11.0], [17.0]])


def test_run_model_multiple_threads(mul_sess):
    errors = []

    def work(logid):
        ro = RunOptions()
        ro.logid = logid
        try:
            for _ in range(20):
                np.testing.assert_allclose(mul_sess.run([], {"X": X}, run_options=ro)[0],
                                           X_SQUARED)
        except Exception as e:  # surfaced below: a thread's assert would be lost
            errors.append(e)

    threads = [threading.Thread(target=work, args=(f"thread{k}",)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_list_as_input(mul_sess):
    np.testing.assert_allclose(mul_sess.run([], {"X": X.tolist()})[0], X_SQUARED)


def test_run_model_symbolic_input():
    sess = tinyc.InferenceSession(matmul(symbolic=True), providers=CPU)
    ref = _ort(matmul(symbolic=True))
    assert sess.get_inputs()[0].shape == ref.get_inputs()[0].shape == ["N", 2]
    assert sess.get_outputs()[0].shape == ref.get_outputs()[0].shape == ["N", 1]
    np.testing.assert_allclose(sess.run(["Y"], {"X": X})[0], [[5.0], [11.0], [17.0]])


def test_boolean_inputs():
    sess = tinyc.InferenceSession(logical_and(), providers=CPU)
    a = np.array([[True, True], [False, False]])
    b = np.array([[True, False], [True, False]])
    ins, out = sess.get_inputs(), sess.get_outputs()[0]
    assert [i.name for i in ins] == ["input1:0", "input:0"]  # the protobuf's order
    assert [i.type for i in ins] == ["tensor(bool)"] * 2 and out.type == "tensor(bool)"
    assert out.name == "output:0" and out.shape == [2, 2]
    (y,) = sess.run([out.name], {ins[0].name: a, ins[1].name: b})
    np.testing.assert_array_equal(y, [[True, False], [False, False]])


def test_raise_wrong_num_inputs():
    sess = tinyc.InferenceSession(logical_and(), providers=CPU)
    with pytest.raises(ValueError, match=r"missing \['input1:0'\]"):
        sess.run([], {"input:0": np.array([[True, True], [False, False]])})


def test_model_meta():
    meta = tinyc.InferenceSession(with_metadata(), providers=CPU).get_modelmeta()
    want = _ort(with_metadata()).get_modelmeta()
    for field in ("producer_name", "graph_name", "domain", "description", "graph_description",
                  "version", "custom_metadata_map"):
        assert getattr(meta, field) == getattr(want, field), field
    assert meta.producer_name == "onnx-caffe2" and meta.graph_name == "squeezenet_old"


def test_profiler_with_session_options(mul_path, tmp_path):
    so = SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "prof")
    sess = tinyc.InferenceSession(mul_path, sess_options=so, providers=CPU)
    sess.run([], {"X": X})
    path = sess.end_profiling()
    lines = open(path).read().splitlines()
    assert "[" in lines[0] and "]" in lines[-1]
    for line in lines[1:-1]:
        for tag in ("pid", "dur", "ts", "ph", "X", "name", "args"):
            assert tag in line
    events = json.loads("\n".join(lines))
    names = [e["name"] for e in events]
    assert "model_run" in names and "session_initialization" in names
    assert any(e["cat"] == "Node" for e in events)  # per node, from the cycle counters
    assert sess.end_profiling() == ""  # profiling has ended


def test_profiler_get_start_time_ns(mul_path, tmp_path):
    def start_time():
        so = SessionOptions()
        so.enable_profiling = True
        so.profile_file_prefix = str(tmp_path / "p")
        sess = tinyc.InferenceSession(mul_path, sess_options=so, providers=CPU)
        t = sess.get_profiling_start_time_ns()
        os.remove(sess.end_profiling())
        return t

    t1, t2, t3 = start_time(), start_time(), start_time()
    assert 0 < t1 <= t2 <= t3


def test_graph_optimization_level():
    opt = SessionOptions()
    assert opt.graph_optimization_level == GraphOptimizationLevel.ORT_ENABLE_ALL
    opt.graph_optimization_level = GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = tinyc.InferenceSession(logical_and(), sess_options=opt, providers=CPU)
    assert sess.options.fuse is False
    a = np.array([[True, True], [False, False]])
    sess.run([], {"input1:0": a, "input:0": a})


def test_ort_execution_mode():
    opt = SessionOptions()
    assert opt.execution_mode == tinyc.ExecutionMode.ORT_SEQUENTIAL
    opt.execution_mode = tinyc.ExecutionMode.ORT_PARALLEL
    assert opt.execution_mode == tinyc.ExecutionMode.ORT_PARALLEL


def test_session_options_add_free_dimension_override_by_name():
    so = SessionOptions()
    so.add_free_dimension_override_by_name("N", 4)
    sess = tinyc.InferenceSession(matmul(symbolic=True), sess_options=so, providers=CPU)
    assert sess.get_inputs()[0].shape == [4, 2]
    x = np.ones((4, 2), np.float32)
    np.testing.assert_allclose(sess.run(None, {"X": x})[0], np.full((4, 1), 3.0))
    with pytest.raises(ValueError):
        sess.run(None, {"X": X})  # 3 rows: the dim is pinned to 4


def test_session_options_add_config_entry():
    so = SessionOptions()
    so.add_session_config_entry("CONFIG_KEY", "CONFIG_VAL")
    assert so.get_session_config_entry("CONFIG_KEY") == "CONFIG_VAL"


def test_invalid_session_options_config_entry():  # onnxruntime: RuntimeError; tinyc: KeyError
    with pytest.raises(KeyError, match="does not have configuration with key: INVALID_KEY"):
        SessionOptions().get_session_config_entry("INVALID_KEY")


def test_session_options_add_initializer(mul_path):
    so = SessionOptions()
    so.add_initializer("W", np.array([[2.0, 1.0], [4.0, 3.0], [6.0, 5.0]], np.float32))
    sess = tinyc.InferenceSession(mul_path, sess_options=so, providers=CPU)
    (y,) = sess.run(["Y"], {"X": X})
    np.testing.assert_array_equal(y, [[2.0, 2.0], [12.0, 12.0], [30.0, 30.0]])


def test_run_output_does_not_alias_input_passthrough():
    sess = tinyc.InferenceSession(passthrough(), providers=CPU)
    kept = []
    for k in range(7):
        x = np.full([1, 2, 2, 2], float(k), np.float32)
        plus, same = sess.run(None, {"input_0": x})
        np.testing.assert_array_equal(plus, x + 10)
        np.testing.assert_array_equal(same, x)
        assert not np.shares_memory(same, x)
        kept.append((plus, same))
    for k, (plus, same) in enumerate(kept):  # no later run overwrote an earlier result
        np.testing.assert_array_equal(plus, np.full([1, 2, 2, 2], k + 10.0))
        np.testing.assert_array_equal(same, np.full([1, 2, 2, 2], float(k)))


def test_memory_arena_shrinkage(mul_sess):  # run config entries are kept and read back
    ro = RunOptions()
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    assert ro.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"
    np.testing.assert_allclose(mul_sess.run([], {"X": X}, ro)[0], X_SQUARED)


def test_check_and_normalize_provider_args():
    def ok(providers, options, names, opts):
        assert normalize_providers(providers, options) == (names, opts)

    ok(None, None, [], [])
    ok(["a"], None, ["a"], [{}])
    ok(["a", "b"], None, ["a", "b"], [{}, {}])
    ok([("a", {1: 2}), "b"], None, ["a", "b"], [{"1": "2"}, {}])
    ok(["a", "b"], [{1: 2}, {}], ["a", "b"], [{"1": "2"}, {}])
    with pytest.warns(UserWarning):
        ok(["a", "b", "a"], [{"x": 1}, {}, {"y": 2}], ["a", "b"], [{"x": "1"}, {}])
    for providers, options in ((3, None), ([3], None), (["a"], 3), (["a"], ["not dict"]),
                               (["a", "b"], [{1: 2}]), ([("a", {1: 2})], [{3: 4}])):
        with pytest.raises(ValueError):
            normalize_providers(providers, options)


# ---- onnxruntime_test_python_iobinding.py (device "cpu" where it says "cuda")


def test_bind_input_to_cpu_arr(mul_sess):
    binding = mul_sess.io_binding()
    binding.bind_cpu_input("X", X)
    binding.bind_output("Y")
    mul_sess.run_with_iobinding(binding)
    binding.synchronize_outputs()
    np.testing.assert_array_equal(binding.copy_outputs_to_cpu()[0], X_SQUARED)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint32, np.int64,
                                   np.uint64, np.int16, np.uint16, np.int8, np.uint8,
                                   np.float16, np.bool_])
def test_bind_input_types(dtype):
    x = np.arange(8).reshape((-1, 2)).astype(dtype)
    sess = tinyc.InferenceSession(identity(dtype), providers=CPU)
    binding = sess.io_binding()
    binding.bind_ortvalue_input("X", x)
    binding.bind_output("Y", "cpu")
    sess.run_with_iobinding(binding, None)
    np.testing.assert_array_equal(binding.get_outputs()[0], x)


def test_bind_input_only(mul_sess):
    x = X.copy()
    binding = mul_sess.io_binding()
    binding.bind_input("X", "cpu", 0, np.float32, [3, 2], x.ctypes.data)
    binding.bind_output("Y")
    mul_sess.run_with_iobinding(binding)
    np.testing.assert_array_equal(binding.copy_outputs_to_cpu()[0], X_SQUARED)


def test_bind_input_and_preallocated_output(mul_sess):
    x, out = X.copy(), np.zeros((3, 2), np.float32)
    binding = mul_sess.io_binding()
    binding.bind_input("X", "cpu", 0, np.float32, [3, 2], x.ctypes.data)
    binding.bind_output("Y", "cpu", 0, np.float32, [3, 2], out.ctypes.data)
    mul_sess.run_with_iobinding(binding)
    np.testing.assert_array_equal(binding.copy_outputs_to_cpu()[0], X_SQUARED)
    np.testing.assert_array_equal(out, X_SQUARED)  # written into the caller's memory


def test_bind_input_and_non_preallocated_output(mul_sess):
    binding = mul_sess.io_binding()
    binding.bind_input("X", "cpu", 0, np.float32, [3, 2], X.ctypes.data)
    binding.bind_output("Y", "cpu")
    mul_sess.run_with_iobinding(binding)
    for _ in range(2):  # as often as wanted
        (y,) = binding.get_outputs()
        np.testing.assert_array_equal(y, X_SQUARED)
    doubled = X * 2
    binding.bind_input("X", "cpu", 0, np.float32, [3, 2], doubled.ctypes.data)
    mul_sess.run_with_iobinding(binding)
    np.testing.assert_array_equal(binding.get_outputs()[0], doubled * X)


def test_bind_input_and_bind_output_with_ortvalues(mul_sess):
    out = np.empty((3, 2), np.float32)
    binding = mul_sess.io_binding()
    binding.bind_ortvalue_input("X", X)
    binding.bind_ortvalue_output("Y", out)
    mul_sess.run_with_iobinding(binding)
    np.testing.assert_array_equal(out, X_SQUARED)
    binding.bind_ortvalue_input("X", X * 2)
    mul_sess.run_with_iobinding(binding)
    np.testing.assert_array_equal(out, X * 2 * X)
