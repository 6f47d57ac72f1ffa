"""Kernels on targets with narrow or no vectors (Cortex-M, wasm32, riscv64):
ops that once crashed LLVM or computed wrong values there, run and compared
bit for bit with numpy."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from onnx import TensorProto, helper

import tinyc

from .support import require

NP_OF = {TensorProto.DOUBLE: np.float64, TensorProto.FLOAT: np.float32,
         TensorProto.FLOAT16: np.float16, TensorProto.INT8: np.int8,
         TensorProto.INT64: np.int64}


def one_node(op: str, inputs: dict[str, tuple[int, list[int]]], out: tuple[int, list[int]],
             **attrs):
    node = helper.make_node(op, list(inputs), ["out"], **attrs)
    graph = helper.make_graph(
        [node], op, [helper.make_tensor_value_info(n, t, s) for n, (t, s) in inputs.items()],
        [helper.make_tensor_value_info("out", *out)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def same_bits(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Elementwise: equal bits, or both NaN."""
    as_int = {2: np.uint16, 4: np.uint32, 8: np.uint64}[want.itemsize]
    return (got.view(as_int) == want.view(as_int)) | (np.isnan(got) & np.isnan(want))


def fmod_operands(np_dtype) -> tuple[np.ndarray, np.ndarray]:
    """Quotients that round to an integer (3 * 0.1 / 0.1), quotients far beyond the
    mantissa, subnormals, infinities, NaNs and signed zeros."""
    rng = np.random.default_rng(1)
    n = 1024
    big = 30 if np_dtype == np.float32 else 200
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-5, big, n)
    y = rng.standard_normal(n) * 10.0 ** rng.integers(-5, 5, n)
    x[:100], y[:100] = np.arange(100) * 0.1 * 3, 0.1
    info = np.finfo(np_dtype)
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, info.max, info.smallest_subnormal,
                        -3.0, 2.5])
    sx, sy = np.meshgrid(special, special)
    x[100:100 + sx.size], y[100:100 + sy.size] = sx.ravel(), sy.ravel()
    return x.astype(np_dtype), y.astype(np_dtype)


@pytest.mark.parametrize("target", ["x86", "cortex-m4", "wasm32"])
@pytest.mark.parametrize("dtype", [TensorProto.DOUBLE, TensorProto.FLOAT])
def test_fmod_matches_numpy_bit_for_bit(target, dtype):
    if target != "x86":
        require(target)
    x, y = fmod_operands(NP_OF[dtype])
    model = one_node("Mod", {"x": (dtype, [x.size]), "y": (dtype, [y.size])}, (dtype, [x.size]),
                     fmod=1)
    got = tinyc.InferenceSession(model, target=target).run(None, {"x": x, "y": y})[0]
    with np.errstate(all="ignore"):
        want = np.fmod(x, y)
    wrong = ~same_bits(got, want)
    assert not wrong.any(), (f"{wrong.sum()} wrong, e.g. fmod({x[wrong][:3]}, {y[wrong][:3]}) = "
                             f"{got[wrong][:3]}, numpy {want[wrong][:3]}")


@pytest.mark.parametrize("target", ["wasm32-simd", "riscv64"])
def test_every_float16_converts_exactly(target):
    """float16 is widened with integer operations where the target has no half
    conversions: all 65536 bit patterns, IsNaN on them, and double -> float16."""
    require(target)
    n = 1 << 16
    nodes = [helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("IsNaN", ["x"], ["nan"]),
             helper.make_node("Cast", ["w"], ["h"], to=TensorProto.FLOAT16)]
    graph = helper.make_graph(
        nodes, "half", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [n]),
                        helper.make_tensor_value_info("w", TensorProto.DOUBLE, [n])],
        [helper.make_tensor_value_info("f", TensorProto.FLOAT, [n]),
         helper.make_tensor_value_info("nan", TensorProto.BOOL, [n]),
         helper.make_tensor_value_info("h", TensorProto.FLOAT16, [n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    x = np.arange(n, dtype=np.uint16).view(np.float16)
    rng = np.random.default_rng(0)
    w = rng.standard_normal(n) * 10.0 ** rng.integers(-9, 6, n)
    f, nan, h = tinyc.InferenceSession(model, target=target).run(None, {"x": x, "w": w})
    assert same_bits(f, x.astype(np.float32)).all()
    np.testing.assert_array_equal(nan, np.isnan(x))
    with np.errstate(over="ignore"):
        assert same_bits(h, w.astype(np.float16)).all()


@pytest.mark.parametrize("target", ["cortex-m4", "wasm32"])
@pytest.mark.parametrize("dtype,shape,perm", [(TensorProto.FLOAT, [9, 13], [1, 0]),
                                              (TensorProto.INT8, [3, 5, 7], [2, 0, 1]),
                                              (TensorProto.DOUBLE, [2, 6, 5], [0, 2, 1])])
def test_transpose_where_a_vector_holds_one_element(target, dtype, shape, perm):
    """vector_bits 32: one float lane (the tile kernel once built empty shuffles)."""
    require(target)
    x = (np.arange(np.prod(shape)) % 120 - 60).reshape(shape).astype(NP_OF[dtype])
    out = [shape[p] for p in perm]
    model = one_node("Transpose", {"x": (dtype, shape)}, (dtype, out), perm=perm)
    got = tinyc.InferenceSession(model, target=target).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, x.transpose(perm))


# Each of these aborted the whole Python process inside LLVM (or, float16 IsNaN on
# wasm32-simd, made it loop forever); compiled in a child process so that a
# regression fails this test instead of killing the test run.
ONCE_FATAL = [("cortex-m4", "Max", TensorProto.DOUBLE), ("cortex-m4", "Min", TensorProto.DOUBLE),
              ("cortex-m55", "Max", TensorProto.DOUBLE),
              ("cortex-m4", "ReduceLogSumExp", TensorProto.DOUBLE),
              ("wasm32-simd", "IsNaN", TensorProto.FLOAT16),
              ("wasm32", "IsNaN", TensorProto.FLOAT16)]

CHILD = textwrap.dedent("""
    import sys
    from onnx import helper, TensorProto
    import tinyc
    target, op, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3])
    inputs = ["a", "b"] if op in ("Max", "Min") else ["a"]
    out_type = TensorProto.BOOL if op == "IsNaN" else dtype
    out_shape = [1, 1] if op.startswith("Reduce") else [4, 6]
    node = helper.make_node(op, inputs, ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, dtype, [4, 6]) for n in inputs],
        [helper.make_tensor_value_info("y", out_type, out_shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    tinyc.compile(model, target)
    print("compiled")
""")


@pytest.mark.parametrize("target,op,dtype", ONCE_FATAL)
def test_compiling_once_fatal_ops_survives(target, op, dtype, tmp_path):
    require(target)
    try:
        p = subprocess.run([sys.executable, "-c", CHILD, target, op, str(dtype)],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"compiling {op} for {target} hangs")
    assert p.returncode == 0 and "compiled" in p.stdout, (
        f"compiling {op} ({TensorProto.DataType.Name(dtype)}) for {target}: exit "
        f"{p.returncode}\n{p.stderr[-2000:]}")


@pytest.mark.parametrize("target", ["cortex-m55", "cortex-m4"])
@pytest.mark.parametrize("dtype", [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16])
def test_isnan_finds_every_nan(target, dtype):
    """On the Cortex-M55, LLVM's unordered compare of MVE vectors found no NaN (IsNaN
    all false, NaN cast to float8 as its largest value); NaNs are now found by bits."""
    require(target)
    np_dtype = NP_OF[dtype]
    x = np.array([np.nan, 1.0, -np.nan, np.inf, -np.inf, 0.0, -0.0, np.nan] * 3, np_dtype)
    all_ones = np.array([-1], np.int64).tobytes()[:x.itemsize]
    x[5] = np.frombuffer(all_ones, np_dtype)[0]  # a NaN with every bit set
    model = one_node("IsNaN", {"x": (dtype, [x.size])}, (TensorProto.BOOL, [x.size]))
    got = tinyc.InferenceSession(model, target=target).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, np.isnan(x))


@pytest.mark.parametrize("target", ["cortex-m4", "wasm32-simd", "riscv64"])
def test_float_to_int_casts_give_the_documented_values(target):
    """Out-of-range, NaN and inf floats cast to integers as docs/casts.md says on
    targets whose conversion instructions differ from x86's (Arm and RISC-V
    saturate, wasm traps without the _sat forms)."""
    from tinyc.ir import DType
    from tinyc.ir.casts import float_to_int

    require(target)
    x = np.array([2.5, -2.5, 9.0, -300.0, 255.9, 3e9, -3e9, 1e10, 2.0 ** 63, np.nan, np.inf,
                  -np.inf, 7.5, -8.5, 0.5, 1e30], np.float32)
    outs = {"i8": (TensorProto.INT8, DType.int8), "i32": (TensorProto.INT32, DType.int32),
            "u32": (TensorProto.UINT32, DType.uint32), "i64": (TensorProto.INT64, DType.int64)}
    nodes = [helper.make_node("Cast", ["x"], [n], to=t) for n, (t, _) in outs.items()]
    # int4 comes back as int8, so the runner needs no 4-bit outputs
    nodes += [helper.make_node("Cast", ["x"], ["q"], to=TensorProto.INT4),
              helper.make_node("Cast", ["q"], ["i4"], to=TensorProto.INT8)]
    outs["i4"] = (TensorProto.INT8, DType.int4)
    graph = helper.make_graph(nodes, "casts", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [x.size])], [helper.make_tensor_value_info(n, t, [x.size])
                                             for n, (t, _) in outs.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)], ir_version=11)
    got = tinyc.InferenceSession(model, target=target).run(list(outs), {"x": x})
    for (name, (_, dtype)), g in zip(outs.items(), got, strict=True):
        want = float_to_int(x, dtype).astype(np.int64)
        np.testing.assert_array_equal(g.astype(np.int64), want, err_msg=f"{target} {name}")
