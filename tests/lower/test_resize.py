"""Resize (opsets 10-19) and Upsample against onnxruntime: every mode, rounding
rule and coordinate transformation, up and down, scales and sizes, axes,
keep_aspect_ratio_policy, cubic options and antialias; all compiled at once."""

from __future__ import annotations

import re

import numpy as np
import pytest
from op_batch import Case, check_cases, ort_oracle

from tinyc.codegen.kernels.ops.resize import resize_kernel
from tinyc.codegen.machine import emit_assembly, new_module, optimize
from tinyc.errors import NotLowerable
from tinyc.ir import DType, Graph, Node, TensorType
from tinyc.lower.resize import Sampling, axis_taps, lower_resize
from tinyc.program import LowerContext
from tinyc.testing.kernel_harness import host_target

TRANSFORMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]
SCALES = [np.array([1, 1, 2, 3], np.float32), np.array([1, 1, 0.5, 0.6], np.float32),
          np.array([1, 1, 1.7, 1], np.float32)]


def _x(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _resize(x, scales=None, sizes=None, opset=13, **attrs) -> Case:
    inputs, consts = [x, None, scales], (2,)
    if sizes is not None:
        inputs, consts = [x, None, None, np.asarray(sizes, np.int64)], (3,)
    return Case("Resize", inputs, attrs, consts=consts, opset=opset)


def test_nearest(rng):
    x = _x(rng, 2, 3, 6, 7)
    cases = [_resize(x, s, mode="nearest", nearest_mode=n, coordinate_transformation_mode=t)
             for s in SCALES
             for n in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
             for t in TRANSFORMS + ["tf_half_pixel_for_nn"]]
    cases += [_resize(x, sizes=[2, 3, 13, 5], mode="nearest"),
              _resize(x, sizes=[2, 3, 3, 21], mode="nearest", nearest_mode="floor",
                      coordinate_transformation_mode="asymmetric")]
    check_cases(cases, ort_oracle, rtol=0, atol=0)


def test_linear_and_cubic(rng):
    x = _x(rng, 1, 2, 9, 11)
    cases = [_resize(x, s, mode=m, coordinate_transformation_mode=t)
             for s in SCALES for m in ("linear", "cubic") for t in TRANSFORMS]
    cases += [_resize(x, s, mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1)
              for s in SCALES]
    runtime_sizes = _resize(x, sizes=[1, 2, 4, 23], mode="cubic")
    runtime_sizes.consts = ()  # read from the output shape
    cases += [runtime_sizes, _resize(x, sizes=[1, 2, 20, 7], mode="linear"),
              _resize(_x(rng, 3, 5, 40), np.array([1, 1, 2.5], np.float32), mode="linear"),
              _resize(_x(rng, 2, 1, 1, 4), np.array([1, 1, 3, 2], np.float32), mode="cubic")]
    check_cases(cases, ort_oracle, rtol=1e-5, atol=1e-5)


def test_opset18_axes_policy_antialias(rng):
    x = _x(rng, 1, 2, 12, 10)
    cases = [_resize(x, sizes=[7, 7], opset=18, axes=[2, 3], mode="linear",
                     keep_aspect_ratio_policy=p) for p in ("stretch", "not_larger", "not_smaller")]
    cases += [_resize(x, np.array([2, 3], np.float32), opset=18, axes=[-2, -1], mode="nearest")]
    cases += [_resize(x, np.array([1, 1, s, s], np.float32), opset=18, mode=m, antialias=1)
              for m in ("linear", "cubic") for s in (0.5, 0.4, 2.0)]
    cases += [_resize(x, np.array([1, 1, s, 1.5], np.float32), opset=19, mode=m,
                      coordinate_transformation_mode="half_pixel_symmetric")
              for m in ("nearest", "linear") for s in (0.7, 2.0)]
    check_cases(cases, ort_oracle, rtol=1e-5, atol=1e-5)


def test_resize10_and_upsample(rng):
    x = _x(rng, 1, 3, 4, 5)
    up = np.array([1, 1, 2, 3], np.float32)
    cases = [Case("Resize", [x, up], {"mode": m}, consts=(1,), opset=10)
             for m in ("nearest", "linear")]
    cases += [Case("Upsample", [x, up], {"mode": m}, consts=(1,), opset=9)
              for m in ("nearest", "linear")]
    cases += [Case("Upsample", [x], {"mode": "nearest", "scales": [1.0, 1.0, 3.0, 2.0]},
                   opset=7),
              Case("Resize", [x, np.array([1, 1, 0.6, 0.5], np.float32)], {"mode": "nearest"},
                   consts=(1,), opset=10)]
    check_cases(cases, ort_oracle, rtol=1e-5, atol=1e-5)


def test_taps_sum_to_one_and_stay_inside():
    for mode in ("linear", "cubic"):
        for antialias in (False, True):
            s = Sampling(mode, antialias=antialias)
            index, weight = axis_taps(s, 13, 5, 5 / 13)
            assert index.min() >= 0 and index.max() < 13
            np.testing.assert_allclose(weight.sum(axis=1), 1.0, rtol=1e-6)


def test_resizing_an_outer_axis_is_not_lowerable():
    types = {"x": TensorType(DType.float32, (2, 3, 4)), "y": TensorType(DType.float32, (4, 3, 4))}
    node = Node("Resize", ("x", "", "s"), ("y",), {"mode": "nearest"}, name="r")
    g = Graph("g", ("x",), ("y",), (node,), types, {"s": np.array([2, 1, 1], np.float32)},
              {"": 13})
    with pytest.raises(NotLowerable, match="only the last two"):
        lower_resize(node, LowerContext(g, host_target()))


def test_resize_kernels_are_vector_code_without_calls():
    target = host_target(512)
    module = new_module("m", target)
    kernels = [resize_kernel(ty, tx) for ty, tx in ((1, 1), (2, 2), (4, 4), (2, 0))]
    for k in kernels:
        k.build(module, target)
    asm = emit_assembly(optimize(module, target), target)
    bodies = dict(zip(*[iter(re.split(r"^(\w+):\n", asm, flags=re.M)[1:])] * 2, strict=True))
    for k in kernels:
        assert "zmm" in bodies[k.name], k.name
        assert not re.findall(r"^\s+call\w*\s", bodies[k.name], re.M), k.name
