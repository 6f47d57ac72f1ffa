from __future__ import annotations

import math

import numpy as np

from tinyc.ir import assert_structurally_equal
from tinyc.passes import fuse_epilogue_pass

from .graph_builder import GraphBuilder, run_pass
from .onnx_export import assert_same_results

X, Y = (1, 2, 4, 4), (1, 3, 4, 4)
CONV = {"kernel_shape": [1, 1]}
GEMM = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}
W = np.arange(6, dtype=np.float32).reshape(3, 2, 1, 1) / 10


def unchanged(before) -> None:
    assert_structurally_equal(run_pass(fuse_epilogue_pass, before), before)


class Conv:
    """Builds Before graphs that start with `x -> Conv(x, w[, b])`."""

    def __init__(self, opset: int = 13, bias: bool = True):
        self.b = GraphBuilder(opset)
        self.x = self.b.input("x", X)
        self.r = self.b.input("r", Y)
        inputs = [self.x, self.b.const("w", W)] + ([self.b.const("b", [1, 2, 3])] if bias else [])
        self.out = self.b.op("Conv", *inputs, shape=Y, **CONV)


def expected_conv(r: bool, bias: bool = True, opset: int = 13, out: str = "y", **attrs: object):
    e = GraphBuilder(opset)
    x, res = e.input("x", X), e.input("r", Y)
    inputs = (x, e.const("w", W), e.const("b", [1, 2, 3]) if bias else "", res if r else "")
    y = e.op("Conv", *inputs, shape=Y, domain="tinyc", out=out, **CONV, **attrs)
    return e.build(y)


def test_conv_relu():
    c = Conv()
    before = c.b.build(c.b.op("Relu", c.out, shape=Y, out="y"))
    after = run_pass(fuse_epilogue_pass, before)
    assert_structurally_equal(after, expected_conv(r=False, activation="Relu"))
    assert after.outputs == ("y",)
    assert_same_results(before, after)


def test_conv_add_relu():
    c = Conv()
    s = c.b.op("Add", c.out, c.r, shape=Y)
    before = c.b.build(c.b.op("Relu", s, shape=Y, out="y"))
    after = run_pass(fuse_epilogue_pass, before)
    assert_structurally_equal(after, expected_conv(r=True, activation="Relu"))
    assert_same_results(before, after)


def test_residual_first_or_summed_without_bias():
    for op, bias in (("Add", True), ("Sum", False)):
        c = Conv(bias=bias)
        before = c.b.build(c.b.op(op, c.r, c.out, shape=Y, out="y"))
        after = run_pass(fuse_epilogue_pass, before)
        assert_structurally_equal(after, expected_conv(r=True, bias=bias, activation=""))


def test_clip_bounds_from_attributes_before_opset_11():
    c = Conv(opset=9)
    before = c.b.build(c.b.op("Clip", c.out, shape=Y, out="y", min=0.0, max=6.0))
    after = run_pass(fuse_epilogue_pass, before)
    expected = expected_conv(r=False, opset=9, activation="Clip", clip_min=0.0, clip_max=6.0)
    assert_structurally_equal(after, expected)
    assert_same_results(before, after)


def test_clip_bounds_from_constant_inputs_from_opset_11():
    c = Conv()
    before = c.b.build(c.b.op("Clip", c.out, "", c.b.const("hi", 6.0), shape=Y, out="y"))
    after = run_pass(fuse_epilogue_pass, before)
    expected = expected_conv(r=False, activation="Clip", clip_min=-math.inf, clip_max=6.0)
    assert_structurally_equal(after, expected)
    assert_same_results(before, after)


def test_clip_with_runtime_bound_is_not_fused():
    c = Conv()
    lo = c.b.input("lo", ())
    unchanged(c.b.build(c.b.op("Clip", c.out, lo, shape=Y)))


def test_intermediate_graph_output_or_second_reader_blocks_fusion():
    c = Conv()
    unchanged(c.b.build(c.b.op("Relu", c.out, shape=Y), c.out))

    c = Conv()
    relu = c.b.op("Relu", c.out, shape=Y)
    unchanged(c.b.build(relu, c.b.op("Neg", c.out, shape=Y)))

    c = Conv()
    unchanged(c.b.build(c.b.op("Add", c.out, c.out, shape=Y)))


def test_broadcast_residual_is_not_fused():
    c = Conv()
    per_channel = c.b.input("p", (1, 3, 1, 1))
    unchanged(c.b.build(c.b.op("Add", c.out, per_channel, shape=Y)))


def test_add_after_activation_is_not_fused():
    c = Conv()
    relu = c.b.op("Relu", c.out, shape=Y)
    after = run_pass(fuse_epilogue_pass, c.b.build(c.b.op("Add", relu, c.r, shape=Y)))
    assert [n.qualified_op for n in after.nodes] == ["tinyc.Conv", "Add"]


def test_gemm_add_relu_makes_defaults_explicit():
    b = GraphBuilder()
    a, r = b.input("a", (2, 4)), b.input("r", (2, 3))
    g = b.op("Gemm", a, b.const("w", np.ones((3, 4))), shape=(2, 3), transB=1)
    before = b.build(b.op("Relu", b.op("Add", g, r, shape=(2, 3)), shape=(2, 3), out="y"))
    after = run_pass(fuse_epilogue_pass, before)

    e = GraphBuilder()
    a, r = e.input("a", (2, 4)), e.input("r", (2, 3))
    y = e.op("Gemm", a, e.const("w", np.ones((3, 4))), "", r, shape=(2, 3), out="y",
             domain="tinyc", **{**GEMM, "transB": 1}, activation="Relu")
    assert_structurally_equal(after, e.build(y))
    assert_same_results(before, after)


def matmul_add(a_shape=(2, 4), bias=(3,), constant_b: bool = True, relu: bool = True):
    b = GraphBuilder()
    a = b.input("a", a_shape)
    w = b.const("w", np.ones((4, 3))) if constant_b else b.input("w", (4, 3))
    out = (*a_shape[:-1], 3)
    m = b.op("MatMul", a, w, shape=out)
    y = b.op("Add", m, b.const("c", np.arange(np.prod(bias)).reshape(bias)), shape=out)
    return b.build(b.op("Relu", y, shape=out, out="y") if relu else y)


def test_matmul_with_row_bias_becomes_gemm():
    before = matmul_add()
    after = run_pass(fuse_epilogue_pass, before)

    e = GraphBuilder()
    a = e.input("a", (2, 4))
    y = e.op("Gemm", a, e.const("w", np.ones((4, 3))), e.const("c", np.arange(3)), "",
             shape=(2, 3), out="y", domain="tinyc", **GEMM, activation="Relu")
    assert_structurally_equal(after, e.build(y))
    assert_same_results(before, after)


def test_matmul_that_is_not_a_gemm_stays():
    for before in (matmul_add(a_shape=(5, 2, 4), relu=False),  # batched
                   matmul_add(constant_b=False, relu=False),    # runtime weight
                   matmul_add(bias=(2, 1), relu=False)):       # bias along rows
        unchanged(before)


def test_conv_transpose_add_clip():
    """ConvTranspose (W [C_in, C_out, k...]) takes the residual and the clip too."""
    b = GraphBuilder(13)
    x, r = b.input("x", (1, 3, 2, 2)), b.input("r", (1, 2, 4, 4))
    w = np.arange(3 * 2 * 2 * 2, dtype=np.float32).reshape(3, 2, 2, 2) / 10
    c = b.op("ConvTranspose", x, b.const("w", w), shape=(1, 2, 4, 4), strides=[2, 2])
    s = b.op("Add", r, c, shape=(1, 2, 4, 4))
    lo, hi = b.const("lo", 0.5), b.const("hi", 2.0)
    before = b.build(b.op("Clip", s, lo, hi, shape=(1, 2, 4, 4), out="y"))
    after = run_pass(fuse_epilogue_pass, before)
    e = GraphBuilder(13)
    ex, er = e.input("x", (1, 3, 2, 2)), e.input("r", (1, 2, 4, 4))
    y = e.op("ConvTranspose", ex, e.const("w", w), "", er, shape=(1, 2, 4, 4), out="y",
             domain="tinyc", strides=[2, 2], activation="Clip", clip_min=0.5, clip_max=2.0)
    assert_structurally_equal(after, e.build(y))
    assert_same_results(before, after)
