"""Casts whose result ONNX leaves undefined (docs/casts.md): float -> integer out of
range, NaN and infinity. The compiled kernels must give tinyc's documented answer
on every CPU, so the oracle is tinyc.ir.casts (numpy written to those rules), never
numpy's or ml_dtypes' own astype, whose answer depends on the host CPU there."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper
from op_batch import Case, check_cases

from tinyc.ir import DType
from tinyc.ir.casts import defined_mask, float_to_int

WIDE_INTS = (DType.int8, DType.uint8, DType.int16, DType.uint16, DType.int32, DType.uint32,
             DType.int64, DType.uint64)
NARROW_INTS = (DType.int4, DType.uint4, DType.int2, DType.uint2)
SOURCES = (np.float32, np.float16, np.float64, ml_dtypes.bfloat16)

# every kind of value: in range, ties, just past each width's limits, NaN, infinities
SPECIAL = [0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.7, -3.7, 7.5, -8.5, 9.0, -9.0, 15.5,
           16.0, 17.0, -17.0, 127.0, 128.0, -129.0, 255.5, 256.0, -300.0, 32768.0, 65535.0,
           65536.0, -40000.0, 2.0 ** 31, -(2.0 ** 31), -(2.0 ** 31) - 0.5, -(2.0 ** 31) - 1,
           3e9, -3e9, 2.0 ** 32, 1e10, -1e10,
           2.0 ** 63, -(2.0 ** 63), 1.5e19, 2.0 ** 64, 1e30, -1e30, np.inf, -np.inf, np.nan]


def _values(src) -> np.ndarray:
    """SPECIAL as src holds them (float16 / bfloat16 round or overflow some)."""
    with np.errstate(over="ignore"):
        return np.array(SPECIAL, np.float64).astype(src)


def _to(dst: DType) -> int:
    return helper.np_dtype_to_tensor_dtype(dst.numpy)


def _float_to_int_oracle(dst_of: dict[int, DType]):
    return lambda case: float_to_int(case.inputs[0], dst_of[id(case)])


@pytest.mark.parametrize("dsts", [WIDE_INTS, NARROW_INTS], ids=["wide", "narrow"])
def test_float_to_int_out_of_range_nan_and_inf_follow_docs(dsts):
    cases, dst_of = [], {}
    for src in SOURCES:
        x = _values(src)
        for dst in dsts:
            case = Case("Cast", [x], {"to": _to(dst)}, opset=25)
            cases.append(case)
            dst_of[id(case)] = dst
    check_cases(cases, _float_to_int_oracle(dst_of), rtol=0, atol=0)


def test_castlike_to_narrow_ints_follows_the_same_rules():
    x = _values(np.float32)
    cases, dst_of = [], {}
    for dst in NARROW_INTS:
        case = Case("CastLike", [x, np.zeros(1, dst.numpy)], opset=25)
        cases.append(case)
        dst_of[id(case)] = dst
    check_cases(cases, _float_to_int_oracle(dst_of), rtol=0, atol=0)


@pytest.mark.parametrize("dst", WIDE_INTS + NARROW_INTS, ids=lambda d: d.name)
def test_the_oracle_is_numpy_wherever_numpy_is_defined(dst):
    """Where the cast is defined, tinyc.ir.casts agrees with numpy / ml_dtypes
    (these elements do not depend on the CPU). 2- and 4-bit types round to
    nearest even where ml_dtypes truncates, so they are compared on integers."""
    x = _values(np.float64)
    if dst in NARROW_INTS:
        x = np.concatenate([np.trunc(x), np.arange(-9.0, 17.0)])
    ok = defined_mask(x, dst)
    assert ok.sum() >= 4, "too few defined values to compare"
    np.testing.assert_array_equal(float_to_int(x[ok], dst), x[ok].astype(dst.numpy))


def test_narrow_ints_round_half_to_even_then_wrap():
    """ONNX's int4 / int2 notes: round to nearest (ties to even), keep the low bits."""
    x = np.array([0.5, 1.5, 2.5, -2.5, 3.7, 7.5, 8.0, 9.0, -9.0, 15.5, np.nan, np.inf],
                 np.float32)
    int4 = [0, 2, 2, -2, 4, -8, -8, -7, 7, 0, 0, 0]
    uint2 = [0, 2, 2, 2, 0, 0, 0, 1, 3, 0, 0, 0]
    assert float_to_int(x, DType.int4).astype(np.int64).tolist() == int4
    assert float_to_int(x, DType.uint2).astype(np.int64).tolist() == uint2


def test_wide_ints_are_x86_conversions():
    """The rules written out on a few values (what cvttss2si-based code gives)."""
    x = np.array([-300.0, 3e9, -3e9, 1e10, np.nan, np.inf, -np.inf, 255.9], np.float32)
    assert float_to_int(x, DType.int8).tolist() == [-44, 0, 0, 0, 0, 0, 0, -1]
    assert float_to_int(x, DType.int32).tolist() == [-300] + [-2 ** 31] * 6 + [255]
    assert float_to_int(x, DType.uint32).tolist() == [2 ** 32 - 300, 3_000_000_000, 2 ** 31, 0,
                                                      2 ** 31, 0, 2 ** 31, 255]
    assert float_to_int(x, DType.uint64).tolist() == [2 ** 64 - 300, 3_000_000_000,
                                                      2 ** 64 - 3_000_000_000, 10 ** 10, 2 ** 63,
                                                      0, 2 ** 63, 255]


def test_a_narrow_cast_feeds_the_next_op_its_wrapped_value(tmp_path):
    """float 9 -> int4 is -7; a consumer compiled with it (maybe fused) must see -7."""
    import tinyc

    nodes = [helper.make_node("Cast", ["x"], ["q"], to=TensorProto.INT4),
             helper.make_node("Cast", ["q"], ["y"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         [6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)], ir_version=11)
    x = np.array([9.0, -9.0, 2.5, 7.5, np.nan, 100.0], np.float32)
    (y,) = tinyc.InferenceSession(model).run(None, {"x": x})
    np.testing.assert_array_equal(y, float_to_int(x, DType.int4).astype(np.float32))


@pytest.mark.parametrize("saturate", [1, 0])
def test_float8e8m0_overflow_saturates_only_when_asked(saturate):
    """Rounding up past 2^127 gives E8M0's largest value, or NaN with saturate=0
    (onnx's reference; the kernel used to saturate either way)."""
    from onnx.reference.ops.op_cast import cast_to

    x = np.array([1.0, 3.0, 2.0 ** 127, 1.5 * 2.0 ** 127, -1.5 * 2.0 ** 127, 2.0 ** -127,
                  np.inf, np.nan], np.float32)
    case = Case("Cast", [x], {"to": TensorProto.FLOAT8E8M0, "saturate": saturate}, opset=25)
    want = cast_to(x, TensorProto.FLOAT8E8M0, bool(saturate), "up")
    assert np.isnan(want[3].astype(np.float32)) == (not saturate)  # the case tells them apart
    check_cases([case], {str(case): want}, rtol=0, atol=0)
