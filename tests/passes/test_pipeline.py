from __future__ import annotations

import numpy as np

from tinyc.ir import DType, assert_structurally_equal
from tinyc.passes import PassContext, default_pipeline, run_default_pipeline

from .graph_builder import GraphBuilder, run_pass
from .onnx_export import assert_same_results

X, Y = (1, 2, 3, 3), (1, 4, 3, 3)
CONV = {"kernel_shape": [1, 1]}


def exported_block(opset: int = 9):
    """What an exporter writes for conv-bn-relu-dropout-flatten-fc."""
    b = GraphBuilder(opset)
    x = b.input("x", X)
    w = b.op("ConstantOfShape", b.const("w_shape", [4, 2, 1, 1], np.int64), shape=(4, 2, 1, 1),
             dtype=DType.float32, value=np.array([0.5], np.float32))
    c = b.op("Conv", x, w, shape=Y, **CONV)
    bn = b.op("BatchNormalization", c, *(b.const(k, v) for k, v in
              {"s": [1, 2, 3, 4], "b": [0, 1, 0, 1], "m": [1, 1, 0, 0], "v": [1, 1, 4, 4]}.items()),
              shape=Y, epsilon=0.0)
    r = b.op("Relu", b.op("Identity", bn, shape=Y), shape=Y)
    d = b.op("Dropout", r, shape=Y, ratio=0.5)
    flat = b.op("Reshape", b.op("Flatten", d, shape=(1, 36), axis=1),
                b.const("s2", [1, 36], np.int64), shape=(1, 36))
    fc_w = b.op("Constant", shape=(36, 5), dtype=DType.float32,
                value=np.ones((36, 5), np.float32) / 36)
    m = b.op("MatMul", flat, fc_w, shape=(1, 5))
    return b.build(b.op("Add", m, b.const("fc_b", [1, 2, 3, 4, 5]), shape=(1, 5), out="logits"))


def test_pipeline_order_and_fusion_switch():
    names = [p.name for p in default_pipeline().passes]
    assert names == ["quant_canonicalize", "fold_and_infer", "check_contracts", "decompose_einsum",
                     "simplify_shapes", "fold_constants", "fold_batchnorm", "dead_code",
                     "fuse_swish", "fuse_epilogue"]
    unfused = [p.name for p in default_pipeline(fuse=False).passes]
    assert "fuse_epilogue" not in unfused and "fuse_swish" not in unfused


def test_pipeline_on_an_exported_block():
    before = exported_block()
    after = run_pass(default_pipeline(), before)

    e = GraphBuilder(9)
    x = e.input("x", X)
    s = np.array([1, 2, 1.5, 2], np.float32).reshape(4, 1, 1, 1)  # scale / sqrt(var)
    c = e.op("Conv", x, e.const("w", 0.5 * s * np.ones((4, 2, 1, 1), np.float32)),
             e.const("b", [-1, -1, 0, 1]), "", shape=Y, domain="tinyc", **CONV,
             activation="Relu")
    flat = e.op("Flatten", c, shape=(1, 36), axis=1)  # the Reshape after it was a no-op
    y = e.op("Gemm", flat, e.const("fc_w", np.ones((36, 5)) / 36), e.const("fc_b", [1, 2, 3, 4, 5]),
             "", shape=(1, 5), domain="tinyc", out="logits", alpha=1.0, beta=1.0, transA=0,
             transB=0, activation="")
    assert_structurally_equal(after, e.build(y))
    assert after.outputs == ("logits",)
    assert_same_results(before, after)


def test_pipeline_without_fusion_keeps_plain_ops():
    after = run_default_pipeline(exported_block(), PassContext(verify=True), fuse=False)
    assert [n.op for n in after.nodes] == ["Conv", "Relu", "Flatten", "MatMul", "Add"]
    assert all(n.domain == "" for n in after.nodes)


def test_context_records_timings_and_dumps():
    ctx = PassContext(verify=True, dump=True)
    run_default_pipeline(exported_block(), ctx)
    assert set(ctx.timings) == {p.name for p in default_pipeline().passes}
    assert ctx.dumps[-1][0] == "fuse_epilogue" and "tinyc.Gemm" in ctx.dumps[-1][1]
