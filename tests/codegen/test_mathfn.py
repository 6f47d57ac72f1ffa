"""mathfn: accuracy of the libm-free exp/log/tanh/sigmoid/erf/pow against float64,
special values, and that the generated code is vector code with no calls."""

from __future__ import annotations

import math
import re

import llvmlite.ir as ir
import numpy as np
import pytest

from tinyc.codegen import llvm_util as U
from tinyc.codegen.kernels.ops.elementwise import binary_kernel, unary_kernel
from tinyc.codegen.kernels.support import mathfn as M
from tinyc.codegen.machine import emit_assembly, new_module, optimize
from tinyc.program import PTR, Kernel
from tinyc.testing.kernel_harness import CompiledKernels, host_target

FUNCS = ["exp", "log", "tanh", "sigmoid", "erf"]
REFERENCE = {"exp": np.exp, "log": np.log, "tanh": np.tanh,
             "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "erf": np.vectorize(math.erf)}
# max relative error allowed over the test ranges (measured: 0.8e-7 .. 3.3e-7)
MAX_REL_ERROR = {"exp": 3e-7, "log": 3e-7, "tanh": 5e-7, "sigmoid": 3e-7, "erf": 5e-7}


@pytest.fixture(scope="module")
def lib():
    return CompiledKernels([unary_kernel(f) for f in FUNCS] + [binary_kernel("pow", "vv", False)],
                           host_target())


def _inputs(name: str) -> np.ndarray:
    if name == "exp":
        x = np.linspace(-87, 88, 200_003)
    elif name == "log":
        x = np.geomspace(1.2e-38, 3e38, 200_003)
    else:
        x = np.concatenate([np.linspace(-12, 12, 200_003), np.geomspace(1e-7, 1, 1001),
                            -np.geomspace(1e-7, 1, 1001)])
    return x.astype(np.float32)


def _apply(lib, name: str, x: np.ndarray) -> np.ndarray:
    y = np.empty_like(x)
    lib(f"unary_{name}_f32", x, y, x.size)
    return y


@pytest.mark.parametrize("name", FUNCS)
def test_relative_accuracy(lib, name):
    x = _inputs(name)
    want = REFERENCE[name](x.astype(np.float64))
    rel = np.abs(_apply(lib, name, x) - want) / np.maximum(np.abs(want), 1e-37)
    assert rel.max() <= MAX_REL_ERROR[name], f"{name}: {rel.max():.3g} at x={x[rel.argmax()]}"


def test_special_values(lib):
    inf, nan = np.inf, np.nan
    cases = {
        "exp": ([-inf, -200, -103, 0, 88.7, 89, 100, inf],
                [0, 0, np.exp(np.float32(-103)), 1, np.exp(np.float32(88.7)), inf, inf, inf]),
        "log": ([0, -1, inf, 1], [-inf, nan, inf, 0]),
        "tanh": ([-inf, -20, 0, 1e-30, 20, inf], [-1, -1, 0, 1e-30, 1, 1]),
        "sigmoid": ([-inf, -100, 0, 100, inf], [0, 0, 0.5, 1, 1]),
        "erf": ([-inf, -5, 0, 1e-30, 5, inf], [-1, -1, 0, 1.1283791e-30, 1, 1]),
    }
    for name, (x, want) in cases.items():
        got = _apply(lib, name, np.array(x, np.float32))
        np.testing.assert_allclose(got, np.array(want, np.float32), rtol=1e-6, atol=0,
                                   err_msg=name)


def test_pow_sign_and_zero_rules(lib):
    x = np.array([2, 2, -2, -2, -2, 0, 0, 5, 0.5, -8], np.float32)
    y = np.array([10, -0.5, 3, 2, 0.5, 2, -1, 0, 3.3, 1 / 3], np.float32)
    got = np.empty_like(x)
    lib("binary_pow_vv_f32", x, y, got, x.size)
    with np.errstate(all="ignore"):
        want = np.power(x.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=2e-6, equal_nan=True)


def _exp_kernel() -> Kernel:
    """exp of one 16-lane vector, to inspect the code mathfn emits."""
    def build(module: ir.Module, target) -> ir.Function:
        fn, b = U.define(module, "exp16", [U.PTR, U.PTR], ["x", "y"])
        v = U.load_vec(b, fn.args[0], U.i64(0), 16)
        U.store_vec(b, M.exp_f32(b, v), fn.args[1], U.i64(0))
        b.ret_void()
        return fn
    return Kernel("exp16", (PTR, PTR), build)


@pytest.mark.parametrize("fn", [M.exp_f32, M.log_f32, M.tanh_f32, M.sigmoid_f32, M.erf_f32])
def test_scalar_and_vector_values_are_accepted(fn):
    module = new_module("m", host_target())
    f, b = U.define(module, "k", [U.F32, U.vec(U.F32, 8)], ret=U.F32)
    scalar = fn(b, f.args[0])
    vector = fn(b, f.args[1])
    assert scalar.type == U.F32 and vector.type == U.vec(U.F32, 8)
    b.ret(scalar)
    optimize(module, host_target())  # verifies


def test_generated_code_is_vector_code_without_calls():
    target = host_target(512)
    module = new_module("m", target)
    _exp_kernel().build(module, target)
    asm = emit_assembly(optimize(module, target), target)
    assert "zmm" in asm
    assert "vfmadd" in asm  # polynomials fused
    assert not re.search(r"\bcall", asm), "mathfn must not call libm"
