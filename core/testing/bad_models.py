"""Small ONNX models that break a rule, for the contract tests and the fuzz
corpus (tests/fuzz): each builder returns the model and a regex its error
message must match. These are the cases issue 15 lists as uncaught exceptions,
crashes or silent garbage.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def model(nodes, inputs, inits=(), opset: int = 18, outputs=None) -> onnx.ModelProto:
    """A one-graph model; inputs as (name, shape) floats, outputs 'y' of unknown shape."""
    vis = [helper.make_tensor_value_info(n, F, s) for n, s in inputs]
    outs = outputs or [helper.make_tensor_value_info("y", F, None)]
    inits = [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in inits]
    g = helper.make_graph(nodes, "bad", vis, outs, initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def node(op: str, inputs: list[str], **attrs) -> onnx.NodeProto:
    return helper.make_node(op, inputs, ["y"], name="the_node", **attrs)


def _ones(*shape: int) -> np.ndarray:
    return np.ones(shape, np.float32)


def conv(group: int = 1, cin: int = 4, w_cin: int = 4):
    return model([node("Conv", ["x", "w"], group=group)], [("x", [1, cin, 5, 5])],
                 [("w", _ones(4, w_cin, 3, 3))])


def conv_transpose(group: int = 1, bias: int = 6):
    return model([node("ConvTranspose", ["x", "w", "b"], group=group)], [("x", [1, 4, 5, 5])],
                 [("w", _ones(4, 3, 3, 3)), ("b", _ones(bias))])


def lrn(size: int):
    return model([node("LRN", ["x"], size=size)], [("x", [1, 4, 5, 5])])


def group_norm(groups: int):
    out = [helper.make_tensor_value_info("y", F, [1, 4, 5, 5])]
    return model([node("GroupNormalization", ["x", "s", "b"], num_groups=groups)],
                 [("x", [1, 4, 5, 5])], [("s", _ones(4)), ("b", _ones(4))], 21, out)


def instance_norm(scale: int):
    return model([node("InstanceNormalization", ["x", "s", "b"])], [("x", [1, 4, 5, 5])],
                 [("s", _ones(scale)), ("b", _ones(4))])


def einsum(k2: int):
    return model([node("Einsum", ["a", "b"], equation="ij,jk->ik")],
                 [("a", [2, 3]), ("b", [k2, 5])])


def _recurrent(op: str, gates: int, hidden: int, w_hidden: int):
    h = w_hidden
    return model([node(op, ["x", "w", "r"], hidden_size=hidden)], [("x", [2, 1, 5])],
                 [("w", _ones(1, gates * h, 5)), ("r", _ones(1, gates * h, h))])


def lstm(hidden: int, w_hidden: int):
    return _recurrent("LSTM", 4, hidden, w_hidden)


def attention(k_len: int, v_len: int):
    return model([node("Attention", ["q", "k", "v"])],
                 [("q", [1, 2, 3, 4]), ("k", [1, 2, k_len, 4]), ("v", [1, 2, v_len, 4])],
                 opset=23)


def global_max_pool(h: int, w: int):
    return model([node("GlobalMaxPool", ["x"])], [("x", [1, 2, h, w])])


def constant_of_shape(n: int):
    shape = numpy_helper.from_array(np.array([n], np.int64), "s")
    g = helper.make_graph([node("ConstantOfShape", ["s"])], "bad", [],
                          [helper.make_tensor_value_info("y", F, None)], initializer=[shape])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def string_initializer():
    s = helper.make_tensor("s", TensorProto.STRING, [1], [b"ab"])
    g = helper.make_graph([node("Identity", ["s"])], "bad", [],
                          [helper.make_tensor_value_info("y", TensorProto.STRING, None)], [s])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


CONTRACT_CASES: dict[str, Callable[[], tuple[onnx.ModelProto, str]]] = {
    "conv group=0": lambda: (conv(group=0), "group=0 must be at least 1"),
    "conv channels": lambda: (conv(cin=3), "3 channels"),
    "conv group split": lambda: (conv(group=2, w_cin=4), "group=2"),
    "conv transpose bias": lambda: (conv_transpose(group=2, bias=3),
                                    "W \\[4, 3, 3, 3\\] with group=2"),
    "lrn size=0": lambda: (lrn(0), "size=0"),
    "group norm num_groups=0": lambda: (group_norm(0), "num_groups=0"),
    "group norm num_groups=3": lambda: (group_norm(3), "num_groups=3"),
    "instance norm short scale": lambda: (instance_norm(2), "shape \\[2\\]; expected \\[4\\]"),
    "einsum mismatched dims": lambda: (einsum(4), "index 'j' is 3"),
    "lstm hidden_size": lambda: (lstm(3, 4), "hidden_size=3"),
    "gru hidden_size": lambda: (_recurrent("GRU", 3, 3, 4), "hidden_size=3"),
    "rnn hidden_size": lambda: (_recurrent("RNN", 1, 5, 4), "hidden_size=5"),
    "attention k/v lengths": lambda: (attention(5, 6), "K has 5 positions but V has 6"),
    "global max pool 0x0": lambda: (global_max_pool(0, 0), "no elements"),
    "constant of shape 2^40": lambda: (constant_of_shape(1 << 40), "GiB"),
    "string initializer": lambda: (string_initializer(), "element type object"),
}


def _renamed(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) >= 1
    return data.replace(old, new)


def _external(location: str) -> bytes:
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [("x", [2])], [("w", [1, 2])])
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    return m.SerializeToString()


def _relu_named(name: str) -> bytes:
    m = model([helper.make_node("Relu", ["x"], [name])], [("x", [2])],
              outputs=[helper.make_tensor_value_info(name, F, [2])])
    return m.SerializeToString()


FRONTEND_CASES: dict[str, Callable[[], tuple[bytes, str]]] = {
    "non-UTF-8 name": lambda: (_renamed(_relu_named("yyyy"), b"yyyy", b"y\xffy\xfe"),
                               "not valid UTF-8"),
    "missing external file": lambda: (_external("missing.bin"), "cannot read external data"),
    "NUL in external location": lambda: (_external("a\0b.bin"), "NUL"),
}


def _matmul_k0():
    m = model([node("MatMul", ["x", "w"])], [("x", [2, 0])], [("w", np.ones((0, 3)))])
    return m, {"x": np.ones((2, 0), np.float32)}, (2, 3)


def _gemm_k0():
    m = model([node("Gemm", ["x", "w"], transB=1)], [("x", [2, 0])], [("w", np.ones((3, 0)))])
    return m, {"x": np.ones((2, 0), np.float32)}, (2, 3)


def _matmul_k0_inputs():
    m = model([node("MatMul", ["x", "w"])], [("x", [2, 0]), ("w", [0, 3])])
    return m, {"x": np.ones((2, 0), np.float32), "w": np.ones((0, 3), np.float32)}, (2, 3)


EMPTY_PRODUCTS = {"MatMul K=0": _matmul_k0, "Gemm K=0": _gemm_k0,
                  "MatMul K=0, both inputs fed": _matmul_k0_inputs}
