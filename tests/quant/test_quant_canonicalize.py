"""quant_canonicalize on small Before graphs: which units become integer ops,
with which formula, and what stays float."""

from __future__ import annotations

import numpy as np
from passes.graph_builder import GraphBuilder, run_pass  # tests/ is on sys.path

from tinyc.ir import DType
from tinyc.passes import FunctionPass
from tinyc.passes.quant_canonicalize import canonicalize_qdq

I8, U8 = DType.int8, DType.uint8
X, Y = (1, 4, 6, 6), (1, 8, 6, 6)


class QDQ:
    """Before graphs in onnxruntime.quantization's QDQ style."""

    def __init__(self, dt: DType = I8):
        self.b = GraphBuilder(13)
        self.dt = dt
        self.zp = 0 if dt == U8 else -3
        self.k = 0

    def params(self, scale: float, zp: int | None = None) -> tuple[str, str]:
        self.k += 1
        return (self.b.const(f"s{self.k}", np.float32(scale)),
                self.b.const(f"z{self.k}", self.zp if zp is None else zp, self.dt.numpy))

    def q(self, x: str, p: tuple[str, str], shape=X) -> str:
        return self.b.op("QuantizeLinear", x, *p, shape=shape, dtype=self.dt)

    def dq(self, q: str, p: tuple[str, str], shape=X) -> str:
        return self.b.op("DequantizeLinear", q, *p, shape=shape, dtype=DType.float32)

    def qdq(self, x: str, p: tuple[str, str], shape=X) -> str:
        return self.dq(self.q(x, p, shape), p, shape)

    def conv_weights(self) -> tuple[str, str]:
        w = self.b.const("wq", np.ones((8, 4, 3, 3)), np.int8)
        ws = self.b.const("ws", np.float32(0.01))
        wz = self.b.const("wz", 0, np.int8)
        wd = self.b.op("DequantizeLinear", w, ws, wz, shape=(8, 4, 3, 3), dtype=DType.float32)
        bq = self.b.const("bq", np.arange(8), np.int32)
        bs = self.b.const("bs", np.float32(0.5 * 0.01))
        bd = self.b.op("DequantizeLinear", bq, bs, shape=(8,), dtype=DType.float32)
        return wd, bd


def canon(g, mirror_ort: bool = True):
    """The pass, verified before and after and checked not to mutate its input."""
    return run_pass(FunctionPass("quant_canonicalize",
                                 lambda x: canonicalize_qdq(x, mirror_ort)), g)


def _ops(g) -> list[str]:
    return [n.qualified_op for n in g.nodes]


def _conv_unit(t: QDQ, x: str) -> str:
    wd, bd = t.conv_weights()
    y = t.b.op("Conv", x, wd, bd, shape=Y, kernel_shape=[3, 3], pads=[1] * 4)
    return t.q(y, t.params(0.2), Y)


def test_private_int8_conv_becomes_qlinear_conv():
    t = QDQ()
    xin = t.b.input("x", X)
    out = t.dq(_conv_unit(t, t.qdq(xin, t.params(0.5))), (f"s{t.k}", f"z{t.k}"), Y)
    g = canon(t.b.build(out))
    assert _ops(g) == ["QuantizeLinear", "QLinearConv", "DequantizeLinear"]
    conv = g.nodes[1]
    assert conv.inputs[3] == "wq" and conv.inputs[8] == "bq"
    assert conv.attrs["kernel_shape"] == [3, 3]


def test_shared_int8_pair_keeps_the_conv_float_like_onnxruntime():
    t = QDQ()
    xin = t.b.input("x", X)
    x = t.qdq(xin, t.params(0.5))
    y = t.dq(_conv_unit(t, x), (f"s{t.k}", f"z{t.k}"), Y)
    relu = t.b.op("Relu", x, shape=X)  # a second reader of the same DequantizeLinear
    g = t.b.build(y, relu)
    mirrored = canon(g)
    assert "Conv" in _ops(mirrored) and "QLinearConv" not in _ops(mirrored)
    conv = next(n for n in mirrored.nodes if n.op == "Conv")
    assert mirrored.constants[conv.inputs[1]].dtype == np.float32  # weights dequantized
    assert "QLinearConv" in _ops(canon(g, mirror_ort=False))


def _add_graph(dt: DType, shared: bool, const_b: bool = False):
    t = QDQ(dt)
    a = t.qdq(t.b.input("a", X), t.params(0.5))
    if const_b:
        p = t.params(0.25)
        b = t.dq(t.b.const("bq", np.ones(X), dt.numpy), p)
    else:
        b = t.qdq(t.b.input("b", X), t.params(0.25))
    p = t.params(0.7)
    out = t.dq(t.q(t.b.op("Add", a, b, shape=X), p), p)
    outs = (out, t.b.op("Relu", a, shape=X)) if shared else (out,)
    return canon(t.b.build(*outs))


def _add_attrs(g) -> dict:
    add = next(n for n in g.nodes if n.qualified_op == "tinyc.QLinearAdd")
    return {k: add.attrs[k] for k in ("formula", "flip")}


def test_add_formula_follows_onnxruntime():
    assert _add_attrs(_add_graph(I8, shared=False)) == {"formula": "mlas", "flip": 1}
    assert _add_attrs(_add_graph(I8, shared=True)) == {"formula": "float", "flip": 0}
    assert _add_attrs(_add_graph(I8, shared=False, const_b=True)) == {"formula": "float",
                                                                      "flip": 0}
    assert _add_attrs(_add_graph(U8, shared=True)) == {"formula": "mlas", "flip": 0}


def test_data_movement_runs_on_the_quantized_tensor():
    t = QDQ()
    p = t.params(0.5)
    x = t.qdq(t.b.input("x", X), p)
    flat = t.b.op("Flatten", x, shape=(1, 144), axis=1)
    pooled = t.b.op("MaxPool", t.qdq(flat, p, (1, 144)), shape=(1, 144))  # float: 2-D input
    q = t.q(t.b.op("MaxPool", x, shape=(1, 4, 3, 3), kernel_shape=[2, 2], strides=[2, 2]),
            p, (1, 4, 3, 3))
    g = canon(t.b.build(pooled, t.dq(q, p, (1, 4, 3, 3))))
    flatten = next(n for n in g.nodes if n.op == "Flatten")
    assert g.type_of(flatten.inputs[0]).dtype == I8 and g.type_of(flatten.outputs[0]).dtype == I8
    assert "tinyc.MaxPool8" in _ops(g)


def test_identical_quantize_copies_merge_into_the_fused_op():
    """DedicatedQDQPair graphs quantize one output several times alike."""
    t = QDQ(U8)
    x = t.qdq(t.b.input("x", X), t.params(0.5))
    wd, bd = t.conv_weights()
    y = t.b.op("Conv", x, wd, bd, shape=Y, kernel_shape=[3, 3], pads=[1] * 4)
    p = t.params(0.2)
    q1, q2 = t.q(y, p, Y), t.q(y, p, Y)
    g = canon(t.b.build(t.dq(q1, p, Y), t.dq(q2, p, Y)))
    assert _ops(g).count("QLinearConv") == 1 and "QuantizeLinear" in _ops(g)
    dqs = [n for n in g.nodes if n.op == "DequantizeLinear" and n.outputs[0] in g.outputs]
    assert {n.inputs[0] for n in dqs} == {q1}


def test_relu_before_a_saturating_quantize_goes():
    """Q(relu(x)) = Q(x) when Q's zero point is the range minimum: the conv fuses."""
    t = QDQ(U8)
    x = t.qdq(t.b.input("x", X), t.params(0.5))
    wd, bd = t.conv_weights()
    y = t.b.op("Relu", t.b.op("Conv", x, wd, bd, shape=Y, kernel_shape=[3, 3], pads=[1] * 4),
               shape=Y)
    p = t.params(0.2, zp=0)
    g = canon(t.b.build(t.dq(t.q(y, p, Y), p, Y)))
    assert _ops(g) == ["QuantizeLinear", "QLinearConv", "DequantizeLinear"]
    t2 = QDQ(U8)  # a zero point inside the range: the Relu clips more than Q does
    x = t2.qdq(t2.b.input("x", X), t2.params(0.5))
    r = t2.b.op("Relu", x, shape=X)
    p = t2.params(0.2, zp=10)
    assert "Relu" in _ops(canon(t2.b.build(t2.dq(t2.q(r, p), p))))
