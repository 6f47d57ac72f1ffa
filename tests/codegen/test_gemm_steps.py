"""The micro-kernels' multiply-accumulate step comes from the intrinsic's YAML:
the fp32 GEMM calls whatever `emit.llvm` names (and no llvm.fma when plain),
and the int8 step broadcasts A's 4 bytes as one i32 for vpdpbusd."""

from __future__ import annotations

import numpy as np

from tinyc.codegen.kernels.gemm.gemm import GemmSpec
from tinyc.codegen.kernels.gemm.micro_step import k_loop, llvm_type
from tinyc.codegen.llvm_util import I64, PTR, define
from tinyc.codegen.machine import new_module
from tinyc.target import resolve_device
from tinyc.tensorize.gemm_form import gemm_form
from tinyc.tensorize.select import choose
from tinyc.tensorize.steps import micro_step
from tinyc.testing.gemm_bench import GemmRun
from tinyc.testing.kernel_harness import CompiledKernels, host_target

F32 = {"A": "float32", "B": "float32", "C": "float32"}


def step_for(dtypes: dict[str, str], target: str = "x86-avx512-vnni"):
    device = resolve_device(target)
    form = gemm_form("C[m, n] += A[m, k] * B[k, n]", dtypes, "A")
    return micro_step(choose(form, device.intrinsics, device.cpu, (64, 64, 64)).match)


def test_fp32_gemm_calls_the_declared_intrinsic():
    step = step_for(F32)
    assert step.llvm == "llvm.fma.v16f32" and (step.n, step.k) == (16, 1)
    spec = GemmSpec(8, 3, 16, "packed", "strided", step=step)
    lib = CompiledKernels([spec.kernel()], host_target())
    assert 'call <16 x float> @"llvm.fma.v16f32"' in lib.ir
    plain = CompiledKernels([GemmSpec(8, 3, 16, "packed", "strided").kernel()], host_target())
    assert "llvm.fma" not in plain.ir and "fmul fast <16 x float>" in plain.ir


def test_fp32_gemm_with_the_avx2_step_is_correct():
    step = step_for(F32, "x86-avx2")
    assert step.tag == "avx2_fma.fma_f32_1x8"
    spec = GemmSpec(6, 2, 8, "packed", "packed", step=step)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((29, 70), np.float32), rng.standard_normal((70, 45), np.float32)
    run = GemmRun.make(spec, a, b)
    lib = CompiledKernels([spec.kernel()], host_target(256))
    lib(spec.name, *spec.args(run.values))
    np.testing.assert_allclose(run.c, a @ b, rtol=1e-4, atol=1e-4)


def test_vnni_step_ir():
    step = step_for({"A": "uint8", "B": "int8", "C": "int32"})
    assert step.b_order == ("n", "k") and (step.n, step.k) == (16, 4)
    assert llvm_type("<64 x i8>") == step.type_of("B")
    module = new_module("m", host_target())
    fn, b = define(module, "k", [PTR, PTR, I64], ["a", "b", "ksteps"])
    k_loop(b, step, 2, 1, 1, fn.args[0], fn.args[1], fn.args[2])
    b.ret_void()
    text = str(module)
    assert text.count('call <16 x i32> @"llvm.x86.avx512.vpdpbusd.512"') == 2
    assert "load i32" in text and "bitcast <16 x i32>" in text  # 4 bytes of A, broadcast
