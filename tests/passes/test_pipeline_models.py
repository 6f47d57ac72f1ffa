"""The default pipeline on the CNNs shipped in onnx's wheel (opset 9, weights
built by ConstantOfShape), checked for structure and, through onnxruntime, for
meaning: the optimized graph must compute what the original model computes."""

from __future__ import annotations

import collections
import functools

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from tinyc.frontend.onnx_import import import_model
from tinyc.ir import Graph
from tinyc.passes import PassContext, run_default_pipeline
from tinyc.testing.models import light_model_path

from .onnx_export import run_model, to_onnx

ALL_LIGHT = ["resnet50", "squeezenet", "inception_v1", "inception_v2", "densenet121",
             "shufflenet", "vgg19", "bvlc_alexnet", "zfnet512"]
NEVER_LEFT = {"ConstantOfShape", "Identity", "Dropout", "Constant"}


@functools.lru_cache(maxsize=2)
def optimized_raw(name: str) -> tuple[Graph, Graph]:
    before = import_model(onnx.load(light_model_path(name)))
    return before, run_default_pipeline(before, PassContext(verify=True))


def op_counts(g: Graph) -> collections.Counter:
    return collections.Counter(n.qualified_op for n in g.nodes)


@pytest.mark.parametrize("name", ALL_LIGHT)
def test_pipeline_leaves_no_constant_builders_or_no_ops(name):
    _, after = optimized_raw(name)
    left = NEVER_LEFT & set(op_counts(after))
    assert not left, f"{name}: {sorted(left)} survived the pipeline"


def test_resnet50_is_all_fused_convs():
    before, after = optimized_raw("resnet50")
    counts = op_counts(after)
    assert "BatchNormalization" not in counts
    assert counts["tinyc.Conv"] + counts["Conv"] == op_counts(before)["Conv"] == 53
    # every BN-Relu pair and every residual Sum went into a conv epilogue
    assert "Relu" not in counts and "Sum" not in counts and "Add" not in counts
    assert after.outputs == before.outputs


def test_densenet_conv_bn_mul_add_relu_is_one_op():
    before, after = optimized_raw("densenet121")
    counts = op_counts(after)
    assert counts["tinyc.Conv"] + counts["Conv"] == op_counts(before)["Conv"] == 121
    # Conv -> BN -> Mul -> Add -> Relu became one tinyc.Conv, and a pre-activation
    # BN -> Mul -> Add (after a Concat or a pool) one BatchNormalization
    assert "Mul" not in counts and "Add" not in counts
    producers = after.producers()
    for n in after.nodes:
        if n.op == "BatchNormalization":
            assert producers[n.inputs[0]].op in ("Concat", "MaxPool", "AveragePool")


def logits_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its final Softmax dropped: random weights saturate the
    softmax, and the logits make the comparison sharp."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    out = m.graph.output[0]
    last = next(n for n in m.graph.node if n.output[0] == out.name)
    if last.op_type == "Softmax":
        out.name = last.input[0]
        m.graph.node.remove(last)
    return m


def with_random_weights(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """Each ConstantOfShape weight times a random constant of its shape, so that
    folding still has ConstantOfShape to fold but every channel differs: He-normal
    for kernels, U(0.5, 1.5) for per-channel vectors (BN variances stay positive)."""
    rng = np.random.default_rng(seed)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.ir_version = max(m.ir_version, 4)  # initializers need not be listed as inputs
    shapes = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    nodes = []
    for node in m.graph.node:
        nodes.append(node)
        if node.op_type != "ConstantOfShape":
            continue
        shape = tuple(int(d) for d in shapes[node.input[0]])
        fill = numpy_helper.to_array(node.attribute[0].t).item()
        target = (rng.uniform(0.5, 1.5, shape) if len(shape) == 1 else
                  rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:])))
        weight, filled = node.output[0], node.output[0] + "/filled"
        node.output[0] = filled
        m.graph.initializer.append(
            numpy_helper.from_array((target / fill).astype(np.float32), weight + "/factor"))
        nodes.append(helper.make_node("Mul", [filled, weight + "/factor"], [weight]))
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    return m


def assert_same_outputs(model: onnx.ModelProto, optimized: Graph) -> None:
    initialized = {t.name for t in model.graph.initializer}
    inp = next(i for i in model.graph.input if i.name not in initialized)
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    feeds = {inp.name: np.random.default_rng(7).standard_normal(shape).astype(np.float32)}
    want = run_model(model, feeds)
    got = run_model(to_onnx(optimized), feeds)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-4 * float(np.abs(w).max()))


@pytest.mark.parametrize("name", ["resnet50", "squeezenet"])
def test_raw_model_computes_the_same(name):
    """Through ConstantOfShape folding, on the models exactly as shipped."""
    model = logits_model(onnx.load(light_model_path(name)))
    assert_same_outputs(model, run_default_pipeline(import_model(model)))


@pytest.mark.parametrize("name", ["resnet50", "squeezenet", "densenet121", "inception_v2"])
def test_random_weight_model_computes_the_same(name):
    """With random weights (and the logits exposed), every channel differs, so a
    wrongly folded scale or bias cannot hide."""
    model = logits_model(with_random_weights(onnx.load(light_model_path(name))))
    assert_same_outputs(model, run_default_pipeline(import_model(model),
                                                    PassContext(verify=True)))
