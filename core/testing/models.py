"""Models for tests, benchmarks and the bundled example.

The architectures in onnx's wheel (backend/test/data/light) build every weight
with ConstantOfShape(0.02), which makes outputs degenerate; `with_random_weights`
replaces those by seeded random initializers scaled per role (He-normal conv
and Gemm weights, sane BatchNormalization statistics) so activations stay in a
useful range through 50+ layers.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LIGHT_MODELS = ("resnet50", "squeezenet", "inception_v1", "densenet121", "shufflenet", "vgg19")


def light_model_path(name: str) -> str:
    base = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    return os.path.join(base, f"light_{name}.onnx")


def with_random_weights(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.ir_version = max(m.ir_version, 4)  # from IR 4 on, initializers need not be inputs
    g = m.graph
    rng = np.random.default_rng(seed)
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    roles = _roles(g)
    keep = []
    for node in g.node:
        shape = _constant_of_shape_target(node, inits)
        if shape is None:
            keep.append(node)
            continue
        value = _random_for(roles.get(node.output[0], ("", 0)), shape, rng)
        g.initializer.append(numpy_helper.from_array(value, node.output[0]))
    del g.node[:]
    g.node.extend(keep)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    alive = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(alive)
    inputs = [i for i in g.input if i.name in used]  # IR 3 listed initializers as inputs
    del g.input[:]
    g.input.extend(inputs)
    return m


def expose_softmax_input(model: onnx.ModelProto) -> onnx.ModelProto:
    """Add the logits feeding the final Softmax as a second output: random
    weights often saturate the softmax, and logits make comparisons sharp."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    softmax = [n for n in m.graph.node if n.op_type == "Softmax"]
    if softmax:
        logits = softmax[-1].input[0]
        inferred = onnx.shape_inference.infer_shapes(m).graph.value_info
        m.graph.output.extend(vi for vi in inferred if vi.name == logits)
    return m


def _constant_of_shape_target(node: onnx.NodeProto, inits: dict) -> tuple[int, ...] | None:
    if node.op_type != "ConstantOfShape" or node.input[0] not in inits:
        return None
    for a in node.attribute:
        if a.name == "value" and a.t.data_type != TensorProto.FLOAT:
            return None
    return tuple(int(d) for d in inits[node.input[0]])


def _roles(g: onnx.GraphProto) -> dict[str, tuple[str, int]]:
    roles: dict[str, tuple[str, int]] = {}
    for n in g.node:
        for i, name in enumerate(n.input):
            roles.setdefault(name, (n.op_type, i))
    return roles


def _random_for(role: tuple[str, int], shape: tuple[int, ...], rng) -> np.ndarray:
    op, index = role
    normal = rng.standard_normal(shape, dtype=np.float32)
    if op == "Conv" and index == 1:
        return normal * np.float32(np.sqrt(2.0 / int(np.prod(shape[1:]))))
    if op == "Gemm" and index == 1:
        fan_in = shape[1] if len(shape) == 2 else int(np.prod(shape))
        return normal * np.float32(np.sqrt(1.0 / fan_in))
    if (op == "BatchNormalization" and index in (1, 4)) or op == "Mul":
        # scale and variance: positive, near one
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return normal * np.float32(0.1)


def light_model(name: str, seed: int = 0) -> onnx.ModelProto:
    return with_random_weights(onnx.load(light_model_path(name)), seed)


# ---- MobileNet-v2, built with onnx.helper (Conv+BN+Clip(0,6), depthwise, residual Add)

# (expand t, channels c, repeats n, stride s) per stage
_MBV2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.k = 0

    def name(self, base: str) -> str:
        self.k += 1
        return f"{base}_{self.k}"

    def const(self, base: str, value: np.ndarray) -> str:
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(value, n))
        return n

    def conv_bn(self, x: str, cin: int, cout: int, k: int, stride: int, group: int,
                relu6: bool) -> str:
        fan_in = cin // group * k * k
        w = self.rng.standard_normal((cout, cin // group, k, k)) * np.sqrt(2.0 / fan_in)
        y = self.name("conv")
        self.nodes.append(helper.make_node(
            "Conv", [x, self.const("w", w.astype(np.float32))], [y], name=y,
            kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=group))
        bn = [self.rng.uniform(0.5, 1.5, cout), self.rng.standard_normal(cout) * 0.1,
              self.rng.standard_normal(cout) * 0.1, self.rng.uniform(0.5, 1.5, cout)]
        z = self.name("bn")
        self.nodes.append(helper.make_node(
            "BatchNormalization", [y] + [self.const("bn", p.astype(np.float32)) for p in bn],
            [z], name=z, epsilon=1e-5))
        if not relu6:
            return z
        r = self.name("relu6")
        lo = self.const("lo", np.array(0.0, np.float32))
        hi = self.const("hi", np.array(6.0, np.float32))
        self.nodes.append(helper.make_node("Clip", [z, lo, hi], [r], name=r))
        return r


def mobilenet_v2(seed: int = 0, batch: int = 1, resolution: int = 224,
                 width: float = 1.0, classes: int = 1000) -> onnx.ModelProto:
    b = _Builder(seed)
    ch = lambda c: max(8, int(c * width + 4) // 8 * 8)  # noqa: E731 - round to multiples of 8
    x = b.conv_bn("input", 3, ch(32), 3, 2, 1, True)
    cin = ch(32)
    for t, c, n, s in _MBV2_BLOCKS:
        for i in range(n):
            x, cin = _inverted_residual(b, x, cin, ch(c), s if i == 0 else 1, t), ch(c)
    x = b.conv_bn(x, cin, 1280, 1, 1, 1, True)
    pooled, flat, logits = b.name("pool"), b.name("flat"), "logits"
    fc_w = b.rng.standard_normal((classes, 1280)) * np.sqrt(1.0 / 1280)
    b.nodes += [
        helper.make_node("GlobalAveragePool", [x], [pooled], name=pooled),
        helper.make_node("Flatten", [pooled], [flat], name=flat, axis=1),
        helper.make_node("Gemm", [flat, b.const("fc_w", fc_w.astype(np.float32)),
                                  b.const("fc_b", np.zeros(classes, np.float32))],
                         [logits], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        b.nodes, "mobilenet_v2",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                       [batch, 3, resolution, resolution])],
        [helper.make_tensor_value_info(logits, TensorProto.FLOAT, [batch, classes])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _inverted_residual(b: _Builder, x: str, cin: int, cout: int, stride: int, t: int) -> str:
    hidden = cin * t
    y = x if t == 1 else b.conv_bn(x, cin, hidden, 1, 1, 1, True)
    y = b.conv_bn(y, hidden, hidden, 3, stride, hidden, True)
    y = b.conv_bn(y, hidden, cout, 1, 1, 1, False)
    if stride == 1 and cin == cout:
        s = b.name("add")
        b.nodes.append(helper.make_node("Add", [x, y], [s], name=s))
        return s
    return y
