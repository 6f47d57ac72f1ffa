"""int8 models for tests and benchmarks, made by onnxruntime.quantization from
the float models of models.py (seeded random weights): resnet50, mobilenet_v2
and an MLP.

    quantized_model("resnet50")                          QDQ, int8 activations
    quantized_model("mlp", "qoperator", activations="uint8", per_channel=True)
    quantized_model("mlp", "dynamic")                    quantize_dynamic (MatMulInteger)

The float models are prepared as onnxruntime's quant_pre_process would, only
cheaper: BatchNormalization folded into the convolutions, the light zoo's
Sum of two turned into Add (the quantizer quantizes Add, not Sum), a final
Softmax dropped (logits out), opset 13 (per-axis quantization). Calibration
uses two random samples. quantize_static defaults to int8 activations and
weights, per tensor; that is the default here too.

Quantizing resnet50 takes seconds, so results are kept on disk, keyed by the
onnx / onnxruntime versions and this file's text ($TINYC_QUANT_MODEL_CACHE,
default ~/.cache/tinyc/quant_models); onnxruntime is needed to build them only.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .models import light_model, mobilenet_v2

FORMATS = ("qdq", "qoperator", "dynamic")
MLP_SIZES = (256, 512, 512, 10)
MLP_BATCH = 8
CALIBRATION_SAMPLES = 2


def quantized_model(name: str, fmt: str = "qdq", activations: str = "int8",
                    per_channel: bool = False) -> onnx.ModelProto:
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {FORMATS}")
    return _cached(name, fmt, activations, per_channel)


def float_model(name: str) -> onnx.ModelProto:
    """The prepared float model that quantized_model(name, ...) quantizes."""
    if name == "mlp":
        return mlp()
    model = mobilenet_v2() if name == "mobilenet_v2" else light_model(name)
    return prepare(model)


@functools.lru_cache(maxsize=16)
def _cached(name: str, fmt: str, activations: str, per_channel: bool) -> onnx.ModelProto:
    path = os.path.join(_cache_dir(), f"{name}_{fmt}_{activations}_"
                                      f"{'pc' if per_channel else 'pt'}_{_key()}.onnx")
    if os.path.exists(path):
        try:
            return onnx.load(path)
        except Exception:  # a broken cache entry is rebuilt
            pass
    model = _quantize(float_model(name), fmt, activations, per_channel)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    os.close(fd)
    onnx.save(model, tmp)
    os.replace(tmp, path)  # atomic: concurrent test workers never read half a file
    return model


def _cache_dir() -> str:
    d = os.environ.get("TINYC_QUANT_MODEL_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "tinyc", "quant_models")
    os.makedirs(d, exist_ok=True)
    return d


@functools.cache
def source_key(source_file: str = __file__) -> str:
    """Cached quantized models are keyed by the builder's source and the onnx
    and onnxruntime versions (the quantizer), so a change rebuilds them."""
    import onnxruntime

    with open(source_file, "rb") as f:
        text = f.read()
    h = hashlib.sha256(text + onnx.__version__.encode() + onnxruntime.__version__.encode())
    return h.hexdigest()[:12]


def _key() -> str:
    return source_key(__file__)


def _quantize(model: onnx.ModelProto, fmt: str, activations: str,
              per_channel: bool) -> onnx.ModelProto:
    import onnxruntime
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    onnxruntime.set_default_logger_severity(3)
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" and the like
    try:
        with tempfile.TemporaryDirectory() as d:
            src, dst = os.path.join(d, "float.onnx"), os.path.join(d, "int8.onnx")
            onnx.save(model, src)
            if fmt == "dynamic":
                quantize_dynamic(src, dst, per_channel=per_channel)
            else:
                quantize_static(
                    src, dst, _Calibration(model), per_channel=per_channel,
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8 if activations == "uint8" else
                    QuantType.QInt8, weight_type=QuantType.QInt8)
            return onnx.load(dst)
    finally:
        logging.getLogger().setLevel(quiet)


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol: a few seeded random inputs."""

    def __init__(self, model: onnx.ModelProto):
        inp = model.graph.input[0]
        shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        rng = np.random.default_rng(1)
        self._feeds = iter([{inp.name: rng.standard_normal(shape).astype(np.float32)}
                            for _ in range(CALIBRATION_SAMPLES)])

    def get_next(self) -> dict | None:
        return next(self._feeds, None)


# ---- float models


def mlp(sizes: tuple[int, ...] = MLP_SIZES, batch: int = MLP_BATCH,
        seed: int = 0) -> onnx.ModelProto:
    """MatMul + Add (+ Relu between layers): the form quantizers see from PyTorch."""
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "x"
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        inits += [numpy_helper.from_array(w.astype(np.float32), f"w{i}"),
                  numpy_helper.from_array((rng.standard_normal(fan_out) * 0.1)
                                          .astype(np.float32), f"b{i}")]
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"mm{i}"]),
                  helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"add{i}"])]
        x = f"add{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [x], [f"relu{i}"]))
            x = f"relu{i}"
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, sizes[0]])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [batch, sizes[-1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def prepare(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fold BatchNormalization into the Conv before it, Sum of two -> Add, drop a
    final Softmax, opset 13."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    nodes = []
    for n in g.node:
        if n.op_type == "BatchNormalization" and _fold_into_conv(n, producers, inits):
            continue
        if n.op_type == "Sum" and len(n.input) == 2:
            n.op_type = "Add"
        nodes.append(n)
    _drop_final_softmax(g, nodes)
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    del g.initializer[:]
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in inits.items() if k in used)
    inputs = [i for i in g.input if i.name not in inits]
    del g.input[:]
    g.input.extend(inputs)
    del g.value_info[:]
    for op in m.opset_import:
        if op.domain in ("", "ai.onnx"):
            op.version = max(op.version, 13)
    onnx.checker.check_model(m)
    return m


def _fold_into_conv(bn: onnx.NodeProto, producers: dict, inits: dict) -> bool:
    """Rewrite the Conv producing bn's input to produce bn's output instead."""
    conv = producers.get(bn.input[0])
    if conv is None or conv.op_type != "Conv" or conv.input[1] not in inits \
            or not all(i in inits for i in bn.input[1:5]):
        return False
    scale, shift, mean, var = (inits[i].astype(np.float64) for i in bn.input[1:5])
    eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
    a = scale / np.sqrt(var + eps)
    w = inits[conv.input[1]].astype(np.float64)
    b = inits[conv.input[2]].astype(np.float64) if len(conv.input) > 2 else 0.0
    wname, bname = conv.input[1] + "_bnfold", bn.output[0] + "_bias"
    inits[wname] = (w * a[:, None, None, None]).astype(np.float32)
    inits[bname] = ((b - mean) * a + shift).astype(np.float32)
    conv.input[:] = [conv.input[0], wname, bname]
    conv.output[0] = bn.output[0]
    return True


def _drop_final_softmax(g: onnx.GraphProto, nodes: list) -> None:
    for n in [n for n in nodes if n.op_type == "Softmax"]:
        for out in g.output:
            if out.name == n.output[0]:
                nodes.remove(n)
                out.name = n.input[0]
