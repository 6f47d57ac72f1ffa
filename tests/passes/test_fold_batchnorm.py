from __future__ import annotations

import numpy as np

from tinyc.ir import assert_structurally_equal
from tinyc.passes import Sequential, fold_batchnorm_pass

from .graph_builder import GraphBuilder, run_pass
from .onnx_export import assert_same_results

X = (1, 2, 5, 5)
Y = (1, 2, 5, 5)
# Integer-valued weights and BN parameters with var + eps a perfect square keep
# the folded constants exact, so Expected can spell them out.
W = np.arange(2 * 2 * 3 * 3, dtype=np.float32).reshape(2, 2, 3, 3)
CONV_ATTRS = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
BN_PARAMS = {"scale": [2, 6], "beta": [1, -1], "mean": [3, 1], "var": [4, 9]}  # s = [1, 2]


def conv_bn(bias: bool = True, extra_user: bool = False, conv_is_output: bool = False,
            **bn_attrs: object):
    b = GraphBuilder()
    x = b.input("x", X)
    inputs = [x, b.const("w", W)] + ([b.const("b", [10, 20])] if bias else [])
    c = b.op("Conv", *inputs, shape=Y, **CONV_ATTRS)
    bn_inputs = [b.const(k, v) for k, v in BN_PARAMS.items()]
    y = b.op("BatchNormalization", c, *bn_inputs, shape=Y, out="y",
             **{"epsilon": 0.0, **bn_attrs})
    outputs = [y, b.op("Relu", c, shape=Y)] if extra_user else [y]
    return b.build(*outputs, *([c] if conv_is_output else []))


def single_conv(w: np.ndarray, bias: list[float]):
    e = GraphBuilder()
    x = e.input("x", X)
    y = e.op("Conv", x, e.const("w", w), e.const("b", bias), shape=Y, out="y", **CONV_ATTRS)
    return e.build(y)


def test_batchnorm_folds_into_conv():
    after = run_pass(fold_batchnorm_pass, conv_bn())
    s = np.array([1, 2], np.float32).reshape(2, 1, 1, 1)
    # B' = (B - mean) * s + beta
    assert_structurally_equal(after, single_conv(W * s, [(10 - 3) * 1 + 1, (20 - 1) * 2 - 1]))
    assert after.outputs == ("y",)


def test_batchnorm_folds_into_conv_without_bias():
    after = run_pass(fold_batchnorm_pass, conv_bn(bias=False))
    s = np.array([1, 2], np.float32).reshape(2, 1, 1, 1)
    assert_structurally_equal(after, single_conv(W * s, [-3 * 1 + 1, -1 * 2 - 1]))


def test_folded_conv_computes_the_same_with_inexact_values():
    rng = np.random.default_rng(1)
    before = conv_bn(epsilon=1e-5)
    consts = {k: rng.uniform(0.5, 1.5, v.shape).astype(np.float32)
              for k, v in before.constants.items()}
    before = before.replace(constants=consts)
    assert_same_results(before, run_pass(fold_batchnorm_pass, before))


def test_conv_read_elsewhere_is_not_folded():
    before = conv_bn(extra_user=True)
    assert_structurally_equal(run_pass(fold_batchnorm_pass, before), before)


def test_conv_output_that_is_a_graph_output_is_not_folded():
    before = conv_bn(conv_is_output=True)
    assert_structurally_equal(run_pass(fold_batchnorm_pass, before), before)


def test_runtime_weight_or_statistics_are_not_folded():
    b = GraphBuilder()
    x, w = b.input("x", X), b.input("w", W.shape)
    c = b.op("Conv", x, w, shape=Y, **CONV_ATTRS)
    y = b.op("BatchNormalization", c, *[b.const(k, v) for k, v in BN_PARAMS.items()], shape=Y)
    runtime_weight = b.build(y)

    b = GraphBuilder()
    x, mean = b.input("x", X), b.input("mean", (2,))
    c = b.op("Conv", x, b.const("w", W), shape=Y, **CONV_ATTRS)
    p = BN_PARAMS
    y = b.op("BatchNormalization", c, b.const("scale", p["scale"]), b.const("beta", p["beta"]),
             mean, b.const("var", p["var"]), shape=Y)
    runtime_mean = b.build(y)
    for before in (runtime_weight, runtime_mean):
        assert_structurally_equal(run_pass(fold_batchnorm_pass, before), before)


def test_training_batchnorm_is_not_folded():
    before = conv_bn(training_mode=1)
    assert_structurally_equal(run_pass(fold_batchnorm_pass, before), before)


def test_batchnorm_whose_running_mean_is_read_is_not_folded():
    b = GraphBuilder(opset=9)
    x = b.input("x", X)
    c = b.op("Conv", x, b.const("w", W), shape=Y, **CONV_ATTRS)
    y, mean = b.op_multi("BatchNormalization", [c, *[b.const(k, v) for k, v in BN_PARAMS.items()]],
                         [(None, Y, None), (None, (2,), None)], epsilon=0.0)
    before = b.build(y, mean)
    assert_structurally_equal(run_pass(fold_batchnorm_pass, before), before)


def densenet_block(mul_shape: tuple[int, ...] = (2, 1, 1), swap_mul: bool = False):
    """Conv -> BN -> Mul([C,1,1]) -> Add([C,1,1]) -> Relu, as densenet121 writes it."""
    b = GraphBuilder()
    x = b.input("x", X)
    c = b.op("Conv", x, b.const("w", W), shape=Y, **CONV_ATTRS)
    bn = b.op("BatchNormalization", c, *[b.const(k, v) for k, v in BN_PARAMS.items()],
              shape=Y, epsilon=0.0)
    m = b.const("m", np.arange(1, 1 + np.prod(mul_shape)).reshape(mul_shape))
    scaled = b.op("Mul", *((m, bn) if swap_mul else (bn, m)), shape=Y)
    shifted = b.op("Add", scaled, b.const("a", [[[5]], [[7]]]), shape=Y)
    return b.build(b.op("Relu", shifted, shape=Y, out="y"))


def test_batchnorm_mul_add_chain_folds_into_one_conv():
    for swap_mul in (False, True):
        after = run_pass(fold_batchnorm_pass, densenet_block(swap_mul=swap_mul))

        e = GraphBuilder()
        x = e.input("x", X)
        s = np.array([1 * 1, 2 * 2], np.float32).reshape(2, 1, 1, 1)  # BN scale times Mul
        bias = [(-3 * 1 + 1) * 1 + 5, (-1 * 2 - 1) * 2 + 7]
        c = e.op("Conv", x, e.const("w", W * s), e.const("b", bias), shape=Y, **CONV_ATTRS)
        assert_structurally_equal(after, e.build(e.op("Relu", c, shape=Y, out="y")))


def test_scalar_mul_folds_too():
    after = run_pass(fold_batchnorm_pass, densenet_block(mul_shape=(1,)))
    assert [n.op for n in after.nodes] == ["Conv", "Relu"]


def test_mul_varying_along_width_is_not_folded():
    after = run_pass(fold_batchnorm_pass, densenet_block(mul_shape=(1, 1, 5)))
    assert [n.op for n in after.nodes] == ["Conv", "Mul", "Add", "Relu"]


def test_depthwise_conv_folds_per_output_channel():
    b = GraphBuilder()
    x = b.input("x", X)
    w = np.random.default_rng(0).standard_normal((2, 1, 3, 3)).astype(np.float32)
    c = b.op("Conv", x, b.const("w", w), shape=Y, group=2, **CONV_ATTRS)
    y = b.op("BatchNormalization", c, *[b.const(k, v) for k, v in BN_PARAMS.items()], shape=Y,
             epsilon=1e-3)
    before = b.build(y)
    after = run_pass(Sequential([fold_batchnorm_pass]), before)
    assert [n.op for n in after.nodes] == ["Conv"]
    assert_same_results(before, after)


def preactivation_block(bn_read_twice: bool = False):
    """BN -> Mul -> Add -> Relu after a pool, as densenet's dense layers start."""
    b = GraphBuilder()
    x = b.input("x", X)
    bn = b.op("BatchNormalization", x, *[b.const(k, v) for k, v in BN_PARAMS.items()],
              shape=Y, epsilon=1e-5)
    scaled = b.op("Mul", bn, b.const("m", [[[2]], [[3]]]), shape=Y)
    shifted = b.op("Add", scaled, b.const("a", [[[5]], [[7]]]), shape=Y)
    y = b.op("Relu", shifted, shape=Y, out="y")
    return b.build(y, bn) if bn_read_twice else b.build(y)


def test_mul_and_add_after_a_lone_batchnorm_fold_into_its_scale_and_bias():
    before = preactivation_block()
    after = run_pass(fold_batchnorm_pass, before)

    e = GraphBuilder()
    x = e.input("x", X)
    p = BN_PARAMS
    bn = e.op("BatchNormalization", x, e.const("scale", [2 * 2, 6 * 3]),
              e.const("beta", [1 * 2 + 5, -1 * 3 + 7]), e.const("mean", p["mean"]),
              e.const("var", p["var"]), shape=Y, epsilon=1e-5)
    assert_structurally_equal(after, e.build(e.op("Relu", bn, shape=Y, out="y")))
    assert_same_results(before, after)


def test_batchnorm_read_twice_keeps_its_mul():
    before = preactivation_block(bn_read_twice=True)
    assert_structurally_equal(run_pass(fold_batchnorm_pass, before), before)


def conv_transpose_bn(w: np.ndarray, bn: dict, bias: list | None = None):
    """ConvTranspose (group 2: W [4, 3, 2, 2], 6 output channels) then BN."""
    b = GraphBuilder()
    x = b.input("x", (1, 4, 3, 3))
    inputs = [x, b.const("w", w)] + ([b.const("b", bias)] if bias is not None else [])
    c = b.op("ConvTranspose", *inputs, shape=(1, 6, 6, 6), group=2, strides=[2, 2])
    y = b.op("BatchNormalization", c, *[b.const(k, v) for k, v in bn.items()],
             shape=(1, 6, 6, 6), out="y", epsilon=0.0)
    return b.build(y)


def test_batchnorm_folds_into_conv_transpose_per_group():
    w = np.arange(4 * 3 * 2 * 2, dtype=np.float32).reshape(4, 3, 2, 2)
    s = [1, 2, 3, 4, 5, 6]  # scale / sqrt(var) with var = 1: exact
    bn = {"scale": s, "beta": [0] * 6, "mean": [1] * 6, "var": [1] * 6}
    after = run_pass(fold_batchnorm_pass, conv_transpose_bn(w, bn))
    e = GraphBuilder()
    x = e.input("x", (1, 4, 3, 3))
    # output channel g*3 + j is W[2g:2g+2, j]
    scaled = w * np.array([[1, 2, 3]] * 2 + [[4, 5, 6]] * 2, np.float32).reshape(4, 3, 1, 1)
    y = e.op("ConvTranspose", x, e.const("w", scaled), e.const("b", [-v for v in s]),
             shape=(1, 6, 6, 6), out="y", group=2, strides=[2, 2])
    assert_structurally_equal(after, e.build(y))


def test_folded_conv_transpose_computes_the_same():
    rng = np.random.default_rng(2)
    bn = {k: rng.uniform(0.5, 1.5, 6) for k in ("scale", "beta", "mean", "var")}
    before = conv_transpose_bn(rng.standard_normal((4, 3, 2, 2)), bn, list(rng.random(6)))
    assert_same_results(before, run_pass(fold_batchnorm_pass, before))
