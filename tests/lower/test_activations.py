"""Activation lowerings (Gelu, Elu, Selu, Celu, Softplus, Softsign, Mish,
ThresholdedRelu, Shrink) against onnxruntime, all compiled at once, and their
kernels as full-width vector code without calls."""

from __future__ import annotations

import re

import numpy as np
from op_batch import Case, check_cases, ort_oracle

from tinyc.codegen.kernels.ops.activations import ACTIVATIONS, activation_kernel
from tinyc.codegen.machine import emit_assembly, new_module, optimize
from tinyc.testing.kernel_harness import host_target


def _x(rng, *shape, scale=4.0):
    return np.asarray(rng.standard_normal(shape) * scale, np.float32)


def test_activations_match_onnxruntime(rng):
    x = _x(rng, 3, 5, 7, 11)  # 1155 elements: full vectors and a masked tail
    wide = np.concatenate([x.ravel(), np.float32([-100, -30, -20, -1e-6, 0, 1e-6, 20, 30, 100])])
    cases = [Case(op, [wide], opset=opset) for op, opset in
             [("Softplus", 13), ("Softsign", 13), ("Mish", 18), ("Elu", 13), ("Selu", 13),
              ("Celu", 13), ("ThresholdedRelu", 13), ("Shrink", 13), ("Gelu", 20)]]
    cases += [Case("Gelu", [x], {"approximate": "tanh"}, opset=20),
              Case("Elu", [x], {"alpha": 0.5}), Case("Selu", [x], {"alpha": 1.5, "gamma": 2.0}),
              Case("Celu", [x], {"alpha": 2.5}), Case("ThresholdedRelu", [x], {"alpha": 0.7}),
              Case("Shrink", [x], {"bias": 0.3, "lambd": 1.2}),
              Case("Softplus", [_x(rng, 5)]),  # shorter than a vector
              Case("Mish", [np.zeros((0,), np.float32)], opset=18)]  # empty
    check_cases(cases, ort_oracle, rtol=2e-6, atol=2e-6)


def test_activation_kernels_are_vector_code_without_calls():
    target = host_target(512)
    module = new_module("m", target)
    kernels = [activation_kernel(op) for op in ACTIVATIONS]
    for k in kernels:
        k.build(module, target)
    asm = emit_assembly(optimize(module, target), target)
    bodies = dict(zip(*[iter(re.split(r"^(\w+):\n", asm, flags=re.M)[1:])] * 2, strict=True))
    for k in kernels:
        assert "zmm" in bodies[k.name], k.name
        assert not re.findall(r"^\s+call\w*\s", bodies[k.name], re.M), k.name
