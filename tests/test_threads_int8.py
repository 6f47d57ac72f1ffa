"""8-bit kernels split across the runtime's thread pool: the same bits on 1 and
2 threads, and onnxruntime's bits (each case big enough for two workers)."""

from __future__ import annotations

import numpy as np
import pytest
from quant.helpers import F32, one_node, ort_run  # tests/ is on sys.path

import tinyc

U8 = np.uint8


def _depthwise_conv():
    rng = np.random.default_rng(1)
    c, h = 96, 56
    consts = {"x_s": np.array(F32(0.02)), "x_z": np.array(7, U8),
              "w": rng.integers(-127, 128, (c, 1, 3, 3)).astype(np.int8),
              "w_s": rng.uniform(0.001, 0.02, c).astype(F32), "w_z": np.zeros(c, np.int8),
              "y_s": np.array(F32(0.3)), "y_z": np.array(3, U8),
              "b": rng.integers(-5000, 5000, c).astype(np.int32)}
    m = one_node("QLinearConv", [("x", U8, [1, c, h, h]), ("x_s", F32, []), ("x_z", U8, []),
                                 ("w", np.int8, [c, 1, 3, 3]), ("w_s", F32, [c]),
                                 ("w_z", np.int8, [c]), ("y_s", F32, []), ("y_z", U8, []),
                                 ("b", np.int32, [c])], [("y", U8, [1, c, h, h])], consts,
                 kernel_shape=[3, 3], pads=[1] * 4, group=c)
    return m, {"x": rng.integers(0, 256, (1, c, h, h)).astype(U8)}


def _max_pool():
    rng = np.random.default_rng(2)
    m = one_node("MaxPool", [("x", U8, [1, 64, 112, 112])], [("y", U8, [1, 64, 56, 56])], {},
                 kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    return m, {"x": rng.integers(0, 256, (1, 64, 112, 112)).astype(U8)}


def _quantize_per_channel():
    rng = np.random.default_rng(3)
    shape = [1, 64, 112, 112]
    consts = {"s": rng.uniform(0.01, 0.1, 64).astype(F32),
              "z": rng.integers(0, 256, 64).astype(U8)}
    m = one_node("QuantizeLinear", [("x", F32, shape), ("s", F32, [64]), ("z", U8, [64])],
                 [("y", U8, shape)], consts, axis=1)
    return m, {"x": (rng.standard_normal(shape) * 3).astype(F32)}


def _dequantize():
    rng = np.random.default_rng(4)
    n = 3 * 300_001  # rows of one tensor-wide channel, cut into blocks with a tail
    m = one_node("DequantizeLinear", [("x", np.int8, [n]), ("s", F32, []), ("z", np.int8, [])],
                 [("y", F32, [n])], {"s": np.array(F32(0.0371)), "z": np.array(-3, np.int8)})
    return m, {"x": rng.integers(-128, 128, n).astype(np.int8)}


def _qlinear_add(b_shape):
    def make():
        rng = np.random.default_rng(5)
        a_shape = [2, 64, 72, 72]
        consts = {"sa": np.array(F32(0.031)), "za": np.array(120, U8), "sb": np.array(F32(0.017)),
                  "zb": np.array(131, U8), "sc": np.array(F32(0.045)), "zc": np.array(128, U8)}
        inputs = [("a", U8, a_shape), ("sa", F32, []), ("za", U8, []), ("b", U8, b_shape),
                  ("sb", F32, []), ("zb", U8, []), ("sc", F32, []), ("zc", U8, [])]
        m = one_node("QLinearAdd", inputs, [("c", U8, a_shape)], consts, domain="com.microsoft")
        return m, {"a": rng.integers(0, 256, a_shape).astype(U8),
                   "b": rng.integers(0, 256, b_shape).astype(U8)}
    return make


# case -> (model and feeds, the kernel that runs it, whether its name ends in _t2:
# scratch slices for two threads)
CASES = {"depthwise_qlinear_conv": (_depthwise_conv, "qconv_dw_u8_u8_3x3", True),
         "uint8_max_pool": (_max_pool, "maxpool_u8_u8_3x3_s2x2", True),
         "quantize_per_channel": (_quantize_per_channel, "quantize_f32_to_u8", False),
         "dequantize": (_dequantize, "dequantize_i8_to_f32", False),
         "qlinear_add": (_qlinear_add([2, 64, 72, 72]), "qadd_mlas_u8_vv", False),
         "qlinear_add_per_channel": (_qlinear_add([1, 64, 1, 1]), "qadd_mlas_u8_vs", False)}


@pytest.mark.parametrize("case", list(CASES))
def test_int8_kernels_same_bits_on_one_and_two_threads(tmp_path, case):
    make, kernel, sliced = CASES[case]
    model, feeds = make()
    artifact = tinyc.compile(model, target="x86", options=tinyc.CompileOptions(threads=2))
    kernels = {k for row in artifact.report for k in row["kernels"]}
    assert any(k.startswith(kernel) and k.endswith("_t2") == sliced for k in kernels), kernels
    artifact.save(tmp_path)
    loaded = tinyc.runtime.load(tmp_path)
    (want,) = ort_run(model, feeds)
    for threads in (1, 2, 2):  # twice: the second job finds the workers awake
        loaded.set_num_threads(threads)
        (got,) = loaded.run(None, feeds)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
