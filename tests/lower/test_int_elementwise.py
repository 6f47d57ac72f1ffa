"""Typed elementwise lowerings (integers, bool, float16, double; Cast, comparisons,
logic, bit ops, Mod, rounding, trigonometry) against onnx.reference, each
family compiled once (see op_batch.py)."""

from __future__ import annotations

import numpy as np
import pytest
from op_batch import Case, check_cases, reference_oracle

INTS = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)


def _ints(rng, dtype, *shape, lo=-100, hi=100):
    if np.issubdtype(dtype, np.unsignedinteger):
        lo = max(lo, 0)
    return rng.integers(lo, hi, shape).astype(dtype)


def test_integer_arithmetic_wraps_and_divides_toward_zero(rng):
    cases = []
    for dt in INTS:
        a, b = _ints(rng, dt, 3, 37), _ints(rng, dt, 37, lo=1, hi=9)
        cases += [Case(op, [a, b]) for op in ("Add", "Sub", "Mul", "Div", "Max", "Min")]
        cases.append(Case("Sum", [a, b, _ints(rng, dt, 3, 1)]))
    big = np.array([120, -128, 127, 64], np.int8)
    cases.append(Case("Mul", [big, np.array([2, 2, 2, -2], np.int8)]))  # wraps
    cases.append(Case("Div", [np.array([-7, 7, -7, 7], np.int32), np.array([2, -2, -2, 2],
                                                                          np.int32)]))
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_integer_division_by_zero_gives_zero_not_a_trap(rng):
    x = np.array([5, -5, np.iinfo(np.int32).min, 0], np.int32)
    y = np.array([0, 0, -1, 0], np.int32)
    want = {str(Case("Div", [x, y])): np.array([0, 0, np.iinfo(np.int32).min, 0], np.int32),
            str(Case("Mod", [x, y])): np.zeros(4, np.int32)}
    check_cases([Case("Div", [x, y]), Case("Mod", [x, y])], want, rtol=0, atol=0)


@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_signs(rng, fmod):
    x = np.array([-4, 7, 5, 4, -7, 8, -3, 3], np.int64)
    y = np.array([2, -3, 8, -2, 3, 5, 2, -2], np.int64)
    cases = [Case("Mod", [x.astype(dt), y.astype(dt)], {"fmod": fmod})
             for dt in (np.int8, np.int32, np.int64)]
    if fmod:
        xf = (rng.standard_normal(50) * 10).astype(np.float32)
        yf = (rng.standard_normal(50) * 3).astype(np.float32)
        cases += [Case("Mod", [xf.astype(dt), yf.astype(dt)], {"fmod": 1})
                  for dt in (np.float16, np.float32, np.float64)]
    else:
        cases.append(Case("Mod", [np.array([4, 7, 5], np.uint8), np.array([3, 3, 2], np.uint8)]))
    check_cases(cases, reference_oracle, rtol=1e-6, atol=1e-6)


def test_bitshift_and_bitwise(rng):
    cases = []
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int32):
        x, s = _ints(rng, dt, 40, lo=0, hi=100), _ints(rng, dt, 40, lo=0, hi=8)
        cases += [Case("BitShift", [x, s], {"direction": d}, opset=11) for d in ("LEFT", "RIGHT")]
        cases += [Case(op, [x, s], opset=18) for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor")]
        cases.append(Case("BitwiseNot", [x], opset=18))
    negative = np.array([-8, -1, -128, 64], np.int8)
    cases.append(Case("BitShift", [negative, np.array([1, 1, 1, 9], np.int8)],
                      {"direction": "RIGHT"}, opset=11))
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_comparisons_and_logic_broadcast(rng):
    cases = []
    for dt in (np.float32, np.float16, np.float64, np.int8, np.int64, np.uint32):
        a = _ints(rng, np.int64, 2, 3, 17, lo=0, hi=5).astype(dt)
        b = _ints(rng, np.int64, 3, 1, lo=0, hi=5).astype(dt)
        cases += [Case(op, [a, b], opset=16) for op in
                  ("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual")]
    p, q = rng.random((4, 33)) < 0.5, rng.random((33,)) < 0.5
    cases += [Case(op, [p, q]) for op in ("And", "Or", "Xor", "Equal")]
    cases.append(Case("Not", [p]))
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_where_broadcasts_three_operands(rng):
    cond = rng.random((3, 1, 20)) < 0.5
    cases = [Case("Where", [cond, _ints(rng, dt, 4, 20), _ints(rng, dt, 3, 4, 1)])
             for dt in (np.int32, np.int64, np.uint8)]
    cases += [Case("Where", [cond, rng.standard_normal((4, 20)).astype(dt),
                             np.array(2.5, dt)]) for dt in (np.float16, np.float32, np.float64)]
    check_cases(cases, reference_oracle, rtol=0, atol=0)


CAST_TYPES = (np.float32, np.float16, np.float64, np.int8, np.int64, np.uint8, np.bool_)


def test_cast_between_every_pair():
    values = np.array([0, 1, -1, 2.5, -2.5, 3.75, 100, -100, 0.5, 65000], np.float64)
    cases = []
    for src in CAST_TYPES:
        x = values.astype(src) if src is not np.bool_ else values != 0
        if np.issubdtype(src, np.integer):
            x = np.trunc(values).astype(np.int64).astype(src)
        for dst in CAST_TYPES:
            if np.issubdtype(dst, np.integer) and not np.issubdtype(src, np.integer) \
                    and src is not np.bool_:
                x_in = np.clip(x, -100, 100) if dst not in (np.uint8, np.uint16) else np.abs(
                    np.clip(x, -100, 100))
            else:
                x_in = x
            from onnx import helper

            to = helper.np_dtype_to_tensor_dtype(np.dtype(dst))
            cases.append(Case("Cast", [np.asarray(x_in, src)], {"to": to}))
    check_cases(cases, reference_oracle, rtol=0, atol=0)


def test_double_to_half_rounds_once():
    # 1 + 2^-11 + 2^-40 lies just above the midpoint of two halfs: double -> float
    # -> half would round to even (1.0); the correct rounding is up
    x = np.array([1 + 2.0 ** -11 + 2.0 ** -40, 1 + 2.0 ** -11, 70000.0, -1e-9], np.float64)
    from onnx import TensorProto

    check_cases([Case("Cast", [x], {"to": TensorProto.FLOAT16})],
                {str(Case("Cast", [x], {"to": TensorProto.FLOAT16})): x.astype(np.float16)},
                rtol=0, atol=0)


def test_rounding_sign_and_classification(rng):
    x = np.concatenate([rng.standard_normal(40) * 5, [0.5, 1.5, 2.5, -0.5, -2.5, 0.0, -0.0]])
    special = np.array([1.0, np.inf, -np.inf, np.nan, 0.0, -3.0], np.float32)
    cases = []
    for dt in (np.float32, np.float16, np.float64):
        cases += [Case(op, [x.astype(dt)]) for op in ("Floor", "Ceil", "Round", "Sign", "Abs",
                                                      "Neg")]
        cases += [Case("IsNaN", [special.astype(dt)]), Case("IsInf", [special.astype(dt)])]
    cases += [Case("IsInf", [special], {"detect_negative": 0}),
              Case("IsInf", [special], {"detect_positive": 0})]
    cases += [Case(op, [_ints(rng, dt, 30)]) for dt in (np.int8, np.int64, np.uint8)
              for op in ("Sign", "Abs", "Neg")]
    check_cases(cases, reference_oracle, rtol=0, atol=0)


TRIG = {"Sin": (-20, 20), "Cos": (-20, 20), "Tan": (-1.5, 1.5), "Asin": (-1, 1),
        "Acos": (-1, 1), "Atan": (-30, 30), "Sinh": (-8, 8), "Cosh": (-8, 8),
        "Asinh": (-50, 50), "Acosh": (1, 50), "Atanh": (-0.999, 0.999)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_trigonometry_is_accurate(rng, dtype):
    """float32 within a few ulps; double runs the float32 code (rounding the input)."""
    cases = []
    for op, (lo, hi) in TRIG.items():
        x = np.concatenate([rng.uniform(lo, hi, 300), np.linspace(lo, hi, 50)])
        cases.append(Case(op, [x.astype(dtype)]))
    cases += [Case(op, [np.array([1e-4, -3e-6, 0.0], dtype)])
              for op in ("Sin", "Tan", "Asin", "Atan", "Sinh", "Asinh", "Atanh")]
    tol = (2e-6, 2e-7) if dtype == np.float32 else (1e-5, 3e-6)
    check_cases(cases, reference_oracle, rtol=tol[0], atol=tol[1])


def test_float16_and_double_arithmetic(rng):
    cases = []
    for dt in (np.float16, np.float64):
        a = (rng.standard_normal((4, 19)) + 3).astype(dt)
        b = (rng.standard_normal(19) + 3).astype(dt)
        cases += [Case(op, [a, b]) for op in ("Add", "Sub", "Mul", "Div", "Max", "Min", "Pow")]
        cases += [Case(op, [a]) for op in ("Sqrt", "Exp", "Log", "Reciprocal", "Tanh", "Relu")]
        cases.append(Case("Mean", [a, b, a]))
    check_cases(cases, reference_oracle, rtol=2e-3, atol=1e-5)


def test_clip_with_tensor_bounds_and_integer_pow(rng):
    x = _ints(rng, np.int32, 50)
    cases = [Case("Clip", [x, np.array(-10, np.int32), np.array(20, np.int32)]),
             Case("Clip", [x, np.array(-10, np.int32)]),
             Case("Clip", [rng.standard_normal(50).astype(np.float32), np.array(-0.5, np.float32),
                           np.array(0.5, np.float32)]),
             Case("Pow", [_ints(rng, np.int64, 20, lo=-5, hi=6), _ints(rng, np.int64, 20, lo=0,
                                                                       hi=4)], opset=15),
             Case("Pow", [rng.standard_normal(20).astype(np.float32),
                          np.array([2], np.int64)], opset=15)]
    check_cases(cases, reference_oracle, rtol=1e-6, atol=1e-6)


NARROW = ("FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT4E2M1",
          "INT4", "UINT4", "INT2", "UINT2")


def test_narrow_types_round_trip_like_ml_dtypes(rng):
    """float -> narrow type (nearest even, saturating by default) -> float, against
    numpy/ml_dtypes; float8 values beyond range clamp, NaN stays NaN. The 2- and
    4-bit ints get values 0..7, out of range for int2 / uint2: ml_dtypes' answer is
    then the host CPU's (undefined in C++), so tinyc.ir.casts gives the expected
    bits (docs/casts.md: they wrap)."""
    from onnx import TensorProto, helper
    from onnx.numpy_helper import saturate_cast

    from tinyc.ir import DType
    from tinyc.ir.casts import float_to_int

    x = np.concatenate([rng.standard_normal(200) * 4, rng.standard_normal(50) * 1e3,
                        [0.0, -0.0, 1e-7, -1e-7, 1e6, -1e6, np.inf, -np.inf, np.nan]])
    x = x.astype(np.float32)
    cases, want = [], {}
    for name in NARROW:
        to = getattr(TensorProto, name)
        np_type = helper.tensor_dtype_to_np_dtype(to)
        values = x if name.startswith("FLOAT") else np.trunc(np.nan_to_num(x) % 8)
        if name.startswith("FLOAT8"):
            narrow = saturate_cast(values, np_type)
        elif name.startswith("FLOAT"):
            narrow = values.astype(np_type)
        else:
            narrow = float_to_int(values, DType.from_numpy(np_type))
        there = Case("Cast", [values], {"to": to}, opset=25)
        back = Case("Cast", [narrow], {"to": TensorProto.FLOAT}, opset=25)
        want[id(there)], want[id(back)] = narrow, narrow.astype(np.float32)
        cases += [there, back]
    check_cases(cases, lambda case: want[id(case)], rtol=0, atol=0)
