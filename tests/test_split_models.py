"""Acceptance of split deployment on a real network: an int8 MobileNet-v2
(onnxruntime's static quantization, QLinearConv form) compiled for
x86,accel_sim gives the all-CPU run's bits, stays within one quantization step
of onnxruntime, and explains where each layer ran."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import tinyc
from tinyc.compiler import CompileOptions, partition_model
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


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_int8_qdq_network_split_is_the_cpu_run_and_onnxruntime(name, ort_run, record_property):
    """Acceptance (#6): quantize_static's default QDQ form, full size. The split
    run gives the all-CPU bits and, like it, onnxruntime's (within one step:
    measured 0). Every int8 conv the accelerator can take runs there; every
    node left on the CPU says why."""
    from tinyc.partition.devices import CATEGORIES
    from tinyc.testing.quant_models import quantized_model

    model = quantized_model(name, "qdq")
    feeds = {model.graph.input[0].name: np.random.default_rng(3).standard_normal(
        (1, 3, 224, 224), dtype=np.float32)}
    split = tinyc.InferenceSession(model, target="x86,accel_sim")
    (got,) = split.run(None, feeds)
    (host,) = tinyc.InferenceSession(model, target="x86").run(None, feeds)
    np.testing.assert_array_equal(got, host)
    (want,) = ort_run(model, feeds)
    steps = float(np.abs(got - want).max()) / _output_step(model)
    record_property("max_steps_from_onnxruntime", steps)
    assert steps <= 1.0001

    g, p = partition_model(model, resolve_devices("x86,accel_sim"), CompileOptions())
    for n in g.nodes:
        x = p.placements[n.name]
        if x.device == "x86":
            assert x.category in CATEGORIES and x.why, (n.name, x)
        if n.op == "QLinearConv" and int(n.attr("group", 1)) == 1:
            assert x.device == "accel_sim", (n.name, x)
    regions = [e["args"] for e in split.trace()["traceEvents"]
               if e.get("cat") == "region" and "utilization" in e.get("args", {})]
    used = sum(r["utilization"] * r["cycles"] for r in regions) / sum(r["cycles"] for r in regions)
    record_property("mac_utilization", used)
    print(f"{name}: {len(regions)} accelerator regions, MAC utilization {used:.1%}, "
          f"{steps:.0f} steps from onnxruntime")
    if name == "resnet50":
        assert used >= 0.7
