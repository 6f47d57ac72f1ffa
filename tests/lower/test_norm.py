"""Normalization lowerings against onnxruntime: LayerNormalization (any axis, its
optional outputs), InstanceNormalization, GroupNormalization (opset 18 and 21),
MeanVarianceNormalization and LpNormalization."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from op_batch import Case, check_cases, ort_oracle

import tinyc
from tinyc.codegen.kernels.ops.norm import AFFINES, lp_norm_kernel, normalize_kernel
from tinyc.codegen.machine import emit_assembly, new_module, optimize
from tinyc.errors import NotLowerable
from tinyc.ir import DType, Graph, Node, TensorType
from tinyc.lower.norm import lower_mvn
from tinyc.program import LowerContext
from tinyc.testing.kernel_harness import host_target
from tinyc.testing.reference import reference_outputs


def _x(rng, *shape, scale=2.0, shift=0.0):
    return np.asarray(rng.standard_normal(shape) * scale + shift, np.float32)


def test_layer_norm(rng):
    cases = []
    for shape, axis in [((2, 64, 128), -1), ((3, 5, 37), -1), ((4, 6, 7), 1), ((2, 3, 4, 5), 0),
                        ((7,), 0), ((5, 1), -1)]:
        x = _x(rng, *shape, shift=3.0)  # a mean far from 0
        norm_shape = shape[axis % len(shape):]
        scale, bias = _x(rng, *norm_shape), _x(rng, *norm_shape)
        cases += [Case("LayerNormalization", [x, scale, bias], {"axis": axis}, consts=(1, 2),
                       opset=17),
                  Case("LayerNormalization", [x, scale], {"axis": axis, "epsilon": 1e-3},
                       opset=17)]  # scale as a runtime input, no bias
    x = _x(rng, 2, 3, 8)
    cases.append(Case("LayerNormalization", [x, _x(rng, 1, 8), _x(rng, 8)], consts=(1, 2),
                      opset=17))  # scale broadcast from [1, 8]
    check_cases(cases, ort_oracle, rtol=1e-4, atol=1e-5)


def test_layer_norm_mean_and_inv_std_dev_outputs(rng):
    x, scale, bias = _x(rng, 3, 4, 50, shift=-2), _x(rng, 4, 50), _x(rng, 4, 50)
    node = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y", "mean", "istd"],
                            axis=1, epsilon=1e-4)
    graph = helper.make_graph(
        [node], "ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
         for n, s in (("y", x.shape), ("mean", (3, 1, 1)), ("istd", (3, 1, 1)))],
        [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    got = tinyc.InferenceSession(model, target="x86").run(None, {"x": x})
    want, _ = reference_outputs(model, {"x": x}, ["y", "mean", "istd"])
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_instance_and_group_norm(rng):
    cases = []
    for shape in [(2, 3, 5, 7), (1, 4, 33), (2, 8, 4, 4, 3)]:
        x, c = _x(rng, *shape, shift=1.0), shape[1]
        cases.append(Case("InstanceNormalization", [x, _x(rng, c), _x(rng, c)], consts=(1, 2)))
        cases.append(Case("InstanceNormalization", [x, _x(rng, c), _x(rng, c)],
                          {"epsilon": 0.1}))
        for groups in sorted({1, 2 if c % 2 == 0 else 1, c}):
            cases.append(Case("GroupNormalization", [x, _x(rng, c), _x(rng, c)],
                              {"num_groups": groups}, consts=(1, 2), opset=21))
    x = _x(rng, 2, 6, 9)
    cases.append(Case("GroupNormalization", [x, _x(rng, 3), _x(rng, 3)],
                      {"num_groups": 3, "epsilon": 1e-3}, consts=(1, 2), opset=18))
    check_cases(cases, ort_oracle, rtol=1e-4, atol=1e-5)


def test_mean_variance_norm(rng):
    cases = [Case("MeanVarianceNormalization", [_x(rng, 2, 3, 5, 7, shift=4.0)]),
             Case("MeanVarianceNormalization", [_x(rng, 2, 3, 5, 7)], {"axes": [2, 3]}),
             Case("MeanVarianceNormalization", [_x(rng, 2, 3, 5, 7)], {"axes": [1, 2, 3]}),
             Case("MeanVarianceNormalization", [_x(rng, 4, 19)], {"axes": [0]}),
             Case("MeanVarianceNormalization", [_x(rng, 2, 3, 40)], {"axes": [0, 2]})]
    check_cases(cases, ort_oracle, rtol=1e-4, atol=2e-5)


def test_mvn_with_kept_axes_apart_is_not_lowerable():
    types = {v: TensorType(DType.float32, (2, 3, 4)) for v in ("x", "y")}
    node = Node("MeanVarianceNormalization", ("x",), ("y",), {"axes": [1]}, name="mvn")
    g = Graph("g", ("x",), ("y",), (node,), types, {}, {"": 13})
    with pytest.raises(NotLowerable, match="not adjacent"):
        lower_mvn(node, LowerContext(g, host_target()))


def test_lp_norm(rng):
    cases = []
    for shape in [(3, 37), (2, 5, 17), (4, 1000)]:
        x = _x(rng, *shape)
        for p in (1, 2):
            cases += [Case("LpNormalization", [x], {"axis": a, "p": p})
                      for a in range(-len(shape), len(shape))]
    cases.append(Case("LpNormalization", [np.zeros((2, 5), np.float32)]))  # zero norm
    check_cases(cases, ort_oracle, rtol=1e-5, atol=1e-6)


def test_norm_kernels_are_vector_code_without_calls():
    target = host_target(512)
    module = new_module("m", target)
    kernels = [normalize_kernel(a) for a in AFFINES]
    kernels += [lp_norm_kernel(p, s) for p in (1, 2) for s in (False, True)]
    for k in kernels:
        k.build(module, target)
    asm = emit_assembly(optimize(module, target), target)
    bodies = dict(zip(*[iter(re.split(r"^(\w+):\n", asm, flags=re.M)[1:])] * 2, strict=True))
    for k in kernels:
        assert "zmm" in bodies[k.name], k.name
        assert not re.findall(r"^\s+call\w*\s", bodies[k.name], re.M), k.name
