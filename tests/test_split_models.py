"""Acceptance of split deployment on a real network: an int8 MobileNet-v2
(onnxruntime's static quantization, QLinearConv form) compiled for
x86,accel_sim gives the all-CPU run's bits, stays within one quantization step
of onnxruntime, and explains where each layer ran."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import tinyc
from tinyc.compile_split import partition_model
from tinyc.compiler import CompileOptions
from tinyc.target import resolve_devices

ort_quant = pytest.importorskip("onnxruntime.quantization")


@pytest.fixture(scope="module")
def int8_mobilenet(tmp_path_factory) -> str:
    from tinyc.testing.models import mobilenet_v2

    folder = tmp_path_factory.mktemp("int8")
    f32, q = folder / "mbv2.onnx", folder / "mbv2_int8.onnx"
    onnx.save(mobilenet_v2(resolution=64, width=0.5, classes=100), f32)

    class Calibration(ort_quant.CalibrationDataReader):
        def __init__(self) -> None:
            self.left = [_image(s) for s in (1, 2)]

        def get_next(self):
            return self.left.pop() if self.left else None

    ort_quant.quantize_static(str(f32), str(q), Calibration(),
                              quant_format=ort_quant.QuantFormat.QOperator,
                              activation_type=ort_quant.QuantType.QInt8,
                              weight_type=ort_quant.QuantType.QInt8,
                              op_types_to_quantize=["Conv", "MatMul"])
    return str(q)


def _image(seed: int) -> dict:
    return {"input": np.random.default_rng(seed).standard_normal((1, 3, 64, 64),
                                                                  dtype=np.float32)}


def _output_step(model: onnx.ModelProto) -> float:
    """The quantization step of the logits: the scale of the DequantizeLinear before them."""
    producer = {o: n for n in model.graph.node for o in n.output}
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    node = producer[model.graph.output[0].name]
    while node.op_type != "DequantizeLinear":
        node = producer[node.input[0]]
    return float(consts[node.input[1]])


def test_int8_mobilenet_split_is_the_cpu_run_and_near_onnxruntime(int8_mobilenet, ort_run):
    feeds = _image(7)
    split = tinyc.InferenceSession(int8_mobilenet, target="x86,accel_sim")
    (logits,) = split.run(None, feeds)
    (host,) = tinyc.InferenceSession(int8_mobilenet, target="x86").run(None, feeds)
    np.testing.assert_array_equal(logits, host)
    model = onnx.load(int8_mobilenet)
    (want,) = ort_run(model, feeds)
    assert np.abs(logits - want).max() <= _output_step(model) * 1.0001
    devices = {e["pid"] for e in split.trace()["traceEvents"] if e.get("cat") == "region"}
    assert devices == {0, 1}


def test_int8_mobilenet_explains_its_split(int8_mobilenet):
    g, p = partition_model(onnx.load(int8_mobilenet), resolve_devices("x86,accel_sim"),
                           CompileOptions())
    convs = {n.name: int(n.attr("group", 1)) for n in g.nodes if n.op == "QLinearConv"}
    for name, group in convs.items():
        x = p.placements[name]
        if group > 1:
            assert x.device == "x86" and x.category == "unsupported shape"
            assert "grouped convolutions" in x.why
        else:
            assert x.device == "accel_sim" or x.category == "not worth the transfer", x
    dense = [n for n, group in convs.items() if group == 1]
    assert sum(p.placements[n].device == "accel_sim" for n in dense) > len(dense) // 2
    assert sum(p.fallbacks.values()) == len(p.nodes_on("x86"))
