"""tinyc's own tests of the onnxruntime-compatible session: overridable
initializers, caller output buffers written by the native code, providers as
a device list, the bundled model's quick start, the older signature."""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from ort_api_models import X_SQUARED, X, matmul, mul_1

import tinyc
from tinyc.compiler import CompileOptions

CPU = ["CPUExecutionProvider"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ort(model) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=CPU)


def test_overridable_initializers_match_onnxruntime():
    model = mul_1(w_is_input=True)
    sess, ref = tinyc.InferenceSession(model, providers=CPU), _ort(model)
    got = [(i.name, i.shape, i.type) for i in sess.get_overridable_initializers()]
    assert got == [(i.name, i.shape, i.type) for i in ref.get_overridable_initializers()]
    assert [i.name for i in sess.get_inputs()] == ["X"]
    w = np.full((3, 2), 3.0, np.float32)
    np.testing.assert_allclose(sess.run(None, {"X": X, "W": w})[0],
                               ref.run(None, {"X": X, "W": w})[0])
    np.testing.assert_allclose(sess.run(None, {"X": X})[0], X_SQUARED)  # the default again


def test_overriding_an_initializer_checks_its_shape():
    sess = tinyc.InferenceSession(mul_1(w_is_input=True), providers=CPU)
    with pytest.raises(ValueError, match="W"):
        sess.run(None, {"X": X, "W": np.ones((2, 2), np.float32)})


def test_a_plain_initializer_is_not_a_feed():
    sess = tinyc.InferenceSession(mul_1(), providers=CPU)
    assert sess.get_overridable_initializers() == []
    with pytest.raises(ValueError, match="unknown"):
        sess.run(None, {"X": X, "W": X})


def test_bound_output_is_written_by_the_native_code(monkeypatch):
    sess = tinyc.InferenceSession(mul_1(), providers=CPU)
    out = np.zeros((3, 2), np.float32)
    binding = sess.io_binding()
    binding.bind_cpu_input("X", X)
    binding.bind_output("Y", buffer_ptr=out)

    def no_copy(*args, **kwargs):
        raise AssertionError("the output was copied, not written in place")

    monkeypatch.setattr(np, "copyto", no_copy)
    sess.run_with_iobinding(binding)
    assert binding.get_outputs()[0] is out
    np.testing.assert_array_equal(out, X_SQUARED)


def test_bound_output_of_a_symbolic_model():
    sess = tinyc.InferenceSession(matmul(symbolic=True), providers=CPU)
    for rows in (3, 5):
        x = np.ones((rows, 2), np.float32)
        out = np.zeros((rows, 1), np.float32)
        binding = sess.io_binding()
        binding.bind_cpu_input("X", x)
        binding.bind_output("Y", buffer_ptr=out)
        sess.run_with_iobinding(binding)
        np.testing.assert_array_equal(out, np.full((rows, 1), 3.0))


def test_bound_output_of_the_wrong_shape_is_refused():
    sess = tinyc.InferenceSession(mul_1(), providers=CPU)
    binding = sess.io_binding()
    binding.bind_cpu_input("X", X)
    binding.bind_output("Y", buffer_ptr=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"float32\[3, 2\]"):
        sess.run_with_iobinding(binding)


def test_binding_to_another_device_is_refused():
    binding = tinyc.InferenceSession(mul_1(), providers=CPU).io_binding()
    with pytest.raises(ValueError, match="host memory only"):
        binding.bind_output("Y", "cuda")


def test_run_with_keywords_and_empty_output_names():
    sess = tinyc.InferenceSession(mul_1(), providers=CPU)
    (y,) = sess.run(output_names=["Y"], input_feed={"X": X})
    np.testing.assert_allclose(y, X_SQUARED)
    assert len(sess.run([], {"X": X})) == 1  # [] means every output, as in onnxruntime
    assert len(sess.run(None, {"X": X}, tinyc.RunOptions())) == 1


def test_providers_are_an_ordered_device_list():
    sess = tinyc.InferenceSession(mul_1(), providers=["accel_sim"])
    assert sess.target == "accel_sim,x86"  # the CPU is added last, as onnxruntime does
    assert sess.get_providers() == ["accel_sim", "x86"]
    np.testing.assert_allclose(sess.run(None, {"X": X})[0], X_SQUARED)
    with pytest.raises(tinyc.InputError, match="not both"):
        tinyc.InferenceSession(mul_1(), providers=CPU, target="x86")
    with pytest.raises(tinyc.TargetError, match="CUDAExecutionProvider"):
        tinyc.InferenceSession(mul_1(), providers=["CUDAExecutionProvider"])


def test_provider_options_are_kept():
    sess = tinyc.InferenceSession(mul_1(), providers=[("CPUExecutionProvider", {"x": 1})])
    assert sess.get_provider_options() == {"CPUExecutionProvider": {"x": "1"}}


def test_the_first_signature_still_works():
    sess = tinyc.InferenceSession(mul_1(), "x86", CompileOptions(profile=True))
    assert sess.target == "x86" and sess.options.profile


def test_readme_quick_start_on_the_bundled_model():
    path = os.path.join(ROOT, "models", "squeezenet.onnx")
    sess = tinyc.InferenceSession(path, target="x86")
    assert [i.name for i in sess.get_inputs()] == ["data_0"]
    x = np.random.default_rng(0).random((1, 3, 224, 224), np.float32)
    (probs,) = sess.run(None, {"data_0": x})
    with open(path, "rb") as f:
        ref = _ort(onnx.load_from_string(f.read()))
    assert len(sess.get_overridable_initializers()) == len(ref.get_overridable_initializers())
    np.testing.assert_allclose(probs, ref.run(None, {"data_0": x})[0], atol=1e-5)
