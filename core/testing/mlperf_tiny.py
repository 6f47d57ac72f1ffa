"""The four MLPerf Tiny reference architectures (v1.x), built with onnx.helper
with seeded random weights, and their int8 forms made by onnxruntime's
quantizer (static, QDQ, calibrated on random data: quant_models.py's way).

    MODELS                       name -> builder of the float model
    quantized("ad")              the int8 QDQ model (cached on disk like quant_models)

| name | task                    | architecture                    | input (NCHW)  |
|------|-------------------------|---------------------------------|---------------|
| kws  | keyword spotting        | DS-CNN (small), 12 classes      | 1x1x49x10     |
| vww  | visual wake words       | MobileNetV1 0.25, 2 classes     | 1x3x96x96     |
| ic   | image classification    | ResNet-8, 10 classes            | 1x3x32x32     |
| ad   | anomaly detection       | FC autoencoder 640-128x4-8-...  | 1x640         |

BatchNormalization is folded into the layer before it (weights and biases
drawn as if folded), and the final Softmax is left out (logits out), as
quant_models.prepare does for its models.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .quant_models import _cache_dir, _Calibration, source_key

OPSET = 13


class _Builder:
    """Nodes and initializers of one float model, He-initialized for ReLU."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}{self.count}"

    def _const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def _node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: tuple[int, int], stride: int = 1,
             group: int = 1, relu: bool = True) -> str:
        """Conv with bias and "same" padding (TensorFlow's, as the references use)."""
        fan_in = cin // group * k[0] * k[1]
        w = self.rng.standard_normal((cout, cin // group, *k)) * np.sqrt(2.0 / fan_in)
        b = self.rng.standard_normal(cout) * 0.05
        name = self._name("conv")
        pads = _same_pads(k, stride)
        y = self._node("Conv", [x, self._const(f"{name}_w", w), self._const(f"{name}_b", b)],
                       kernel_shape=list(k), strides=[stride, stride], pads=pads, group=group)
        return self._node("Relu", [y]) if relu else y

    def dense(self, x: str, fan_in: int, fan_out: int, relu: bool = True) -> str:
        w = self.rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        b = self.rng.standard_normal(fan_out) * 0.05
        name = self._name("fc")
        y = self._node("MatMul", [x, self._const(f"{name}_w", w)])
        y = self._node("Add", [y, self._const(f"{name}_b", b)])
        return self._node("Relu", [y]) if relu else y

    def separable(self, x: str, cin: int, cout: int, stride: int) -> str:
        """Depthwise 3x3 (+ReLU), then pointwise 1x1 (+ReLU)."""
        x = self.conv(x, cin, cin, (3, 3), stride, group=cin)
        return self.conv(x, cin, cout, (1, 1))

    def add(self, a: str, b: str) -> str:
        return self._node("Add", [a, b])

    def relu(self, x: str) -> str:
        return self._node("Relu", [x])

    def average(self, x: str) -> str:
        return self._node("GlobalAveragePool", [x])

    def flatten(self, x: str) -> str:
        return self._node("Flatten", [x], axis=1)

    def model(self, name: str, x_shape: list[int], y: str, y_shape: list[int]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, x_shape)],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, y_shape)], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def _same_pads(k: tuple[int, int], stride: int) -> list[int]:
    """TensorFlow's "same" for an input size divisible by the stride: the extra
    padding row/column goes at the end."""
    total = [max(d - stride, 0) for d in k]
    return [t // 2 for t in total] + [t - t // 2 for t in total]


def ds_cnn(seed: int = 0) -> onnx.ModelProto:
    """Keyword spotting: DS-CNN (small): conv 10x4/2 to 64 channels, four
    depthwise-separable blocks of 64, average pool, 12 classes."""
    b = _Builder(seed)
    x = b.conv("input", 1, 64, (10, 4), stride=2)
    for _ in range(4):
        x = b.separable(x, 64, 64, 1)
    x = b.flatten(b.average(x))
    return b.model("ds_cnn", [1, 1, 49, 10], b.dense(x, 64, 12, relu=False), [1, 12])


MOBILENET_BLOCKS = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1),
                    (128, 1), (128, 1), (128, 1), (256, 2), (256, 1))  # (channels, stride) at 0.25


def mobilenet_v1_025(seed: int = 0) -> onnx.ModelProto:
    """Visual wake words: MobileNetV1 with width 0.25 at 96x96, 2 classes."""
    b = _Builder(seed)
    x, cin = b.conv("input", 3, 8, (3, 3), stride=2), 8
    for cout, stride in MOBILENET_BLOCKS:
        x, cin = b.separable(x, cin, cout, stride), cout
    x = b.flatten(b.average(x))
    return b.model("mobilenet_v1_025", [1, 3, 96, 96], b.dense(x, 256, 2, relu=False), [1, 2])


def resnet8(seed: int = 0) -> onnx.ModelProto:
    """Image classification: ResNet-8 (three residual stacks of 16, 32, 64
    channels; 1x1 strided shortcuts), 10 classes."""
    b = _Builder(seed)
    x, cin = b.conv("input", 3, 16, (3, 3)), 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        y = b.conv(x, cin, cout, (3, 3), stride)
        y = b.conv(y, cout, cout, (3, 3), relu=False)
        short = x if stride == 1 and cin == cout else b.conv(x, cin, cout, (1, 1), stride,
                                                             relu=False)
        x, cin = b.relu(b.add(y, short)), cout
    x = b.flatten(b.average(x))
    return b.model("resnet8", [1, 3, 32, 32], b.dense(x, 64, 10, relu=False), [1, 10])


AUTOENCODER_SIZES = (640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640)


def fc_autoencoder(seed: int = 0) -> onnx.ModelProto:
    """Anomaly detection: the dense autoencoder over 640 log-mel features
    (5 frames x 128 bins), bottleneck 8; ReLU after every layer but the last."""
    b = _Builder(seed)
    x, last = "input", len(AUTOENCODER_SIZES) - 2
    for i, (fan_in, fan_out) in enumerate(zip(AUTOENCODER_SIZES[:-1], AUTOENCODER_SIZES[1:],
                                              strict=True)):
        x = b.dense(x, fan_in, fan_out, relu=i < last)
    return b.model("fc_autoencoder", [1, 640], x, [1, 640])


MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    "kws": ds_cnn, "vww": mobilenet_v1_025, "ic": resnet8, "ad": fc_autoencoder}
TITLES = {"kws": "keyword spotting (DS-CNN)", "vww": "visual wake words (MobileNetV1 0.25)",
          "ic": "image classification (ResNet-8)", "ad": "anomaly detection (FC autoencoder)"}


def issue_mlp() -> onnx.ModelProto:
    """Issue 17's acceptance MLP: 64x256 -> 512 -> 256 -> 10 (quant_models.mlp)."""
    from .quant_models import mlp

    return mlp((256, 512, 256, 10), batch=64)


_BUILDERS = {**MODELS, "mlp": issue_mlp}


@functools.lru_cache(maxsize=8)
def quantized(name: str) -> onnx.ModelProto:
    """The int8 QDQ form of MODELS[name] (or "mlp": issue_mlp) (per-tensor, int8
    activations and weights), kept on disk keyed by this file's text and the
    library versions."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; one of {sorted(_BUILDERS)}")
    path = os.path.join(_cache_dir(), f"mlperf_tiny_{name}_{_key()}.onnx")
    if os.path.exists(path):
        try:
            return onnx.load(path)
        except Exception:  # a broken cache entry is rebuilt
            pass
    model = _quantize(_BUILDERS[name]())
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    os.close(fd)
    onnx.save(model, tmp)
    os.replace(tmp, path)  # atomic: concurrent test workers never read half a file
    return model


def _quantize(model: onnx.ModelProto) -> onnx.ModelProto:
    """quantize_static, QDQ, int8 per tensor. DedicatedQDQPair gives each reader
    of a tensor its own DequantizeLinear, so onnxruntime fuses every unit into
    an integer op (a shared pair, e.g. before a residual Add, stays float in
    onnxruntime, and tinyc then mirrors it: float activations in RAM)."""
    import onnxruntime
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    onnxruntime.set_default_logger_severity(3)
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "float.onnx"), os.path.join(d, "int8.onnx")
        onnx.save(model, src)
        quantize_static(src, dst, _Calibration(model), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        extra_options={"DedicatedQDQPair": True})
        return onnx.load(dst)


def output_step(model: onnx.ModelProto) -> float:
    """The quantization step of the model's output: the scale of the
    DequantizeLinear that produces it."""
    out = model.graph.output[0].name
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and n.output[0] == out:
            return float(inits[n.input[1]])
    raise ValueError(f"{model.graph.name}: the output {out!r} is not dequantized")


def input_feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    return {inp.name: np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}


def _key() -> str:
    return source_key(__file__)
