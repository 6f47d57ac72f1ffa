"""Every non-GEMM kernel compiles to vector code for the target's width and calls
nothing (no libm, no memcpy/memset), on the host and on other targets."""

from __future__ import annotations

import re

import pytest

from tinyc.codegen.kernels.ops import col2im as I
from tinyc.codegen.kernels.ops import copy as C
from tinyc.codegen.kernels.ops import elementwise as E
from tinyc.codegen.kernels.ops import lrn as L
from tinyc.codegen.kernels.ops import pool as P
from tinyc.codegen.kernels.ops import softmax as S
from tinyc.codegen.machine import emit_assembly, new_module, optimize
from tinyc.program import Kernel
from tinyc.target.machine import CpuTarget
from tinyc.testing.kernel_harness import host_target


def kernels(every_op: bool = True) -> list[Kernel]:
    """One kernel of each family (every unary and binary op if every_op)."""
    unary = E.UNARY if every_op else ["exp", "log", "tanh", "sigmoid", "erf", "relu"]
    ks = [E.unary_kernel(op) for op in unary]
    ks += [E.binary_kernel(op, kinds, nd) for op in (E.BINARY if every_op else ["add", "pow"])
           for kinds, nd in (("vv", False), ("vs", True), ("sv", True))]
    ks += [E.channel_affine_kernel(), L.lrn_kernel()]
    ks += [P.pool_kernel(kind, sx, (3, 3), 1) for kind in ("max", "avg") for sx in (1, 2)]
    ks += [P.pool_kernel("avg", 1), P.global_pool_kernel("max"), P.global_pool_kernel("avg")]
    ks += [f(kind) for f in (S.softmax_rows_kernel, S.softmax_strided_kernel) for kind in S.KINDS]
    ks += [C.strided_copy_kernel(4), C.strided_copy_kernel(4, gather=True),
           C.transpose_tiles_kernel(4), C.pad_kernel(4), C.strided_copy_kernel(1)]
    ks += [I.col2im_kernel(sx, sx == 1) for sx in (1, 2, 8)]  # plain and spread
    return ks


def _functions(asm: str) -> dict[str, str]:
    parts = re.split(r"^(\w+):\n", asm, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _compile(target: CpuTarget, every_op: bool = True) -> str:
    module = new_module("m", target)
    for k in kernels(every_op):
        k.build(module, target)
    return emit_assembly(optimize(module, target), target)


@pytest.mark.parametrize("bits, register", [(512, "zmm"), (256, "ymm")])
def test_host_kernels_use_full_width_vectors(bits, register):
    every_op = bits == 512
    bodies = _functions(_compile(host_target(bits), every_op))
    names = [k.name for k in kernels(every_op)]
    missing = [n for n in names if register not in bodies[n]]
    assert not missing, f"no {register} code in {missing}"
    calls = {n: re.findall(r"^\s+call\w*\s+(\S+)", bodies[n], re.M) for n in names}
    assert not any(calls.values()), {n: c for n, c in calls.items() if c}


@pytest.mark.parametrize("target", [
    CpuTarget("x86_64-unknown-linux-gnu", "x86-64", "", 128),  # SSE2 only: no FMA, no masks
    CpuTarget("aarch64-unknown-linux-gnu", "generic", "+neon", 128),
    CpuTarget("wasm32-unknown-unknown", "generic", "+simd128", 128),
], ids=["x86-64-baseline", "aarch64", "wasm32"])
def test_kernels_need_no_library_calls_on_other_targets(target):
    # the kernels whose code could become calls: math, masked tails, gathers, copies
    sample = [E.unary_kernel(op) for op in ("exp", "log", "tanh", "erf", "sqrt")]
    sample += [E.binary_kernel("pow", "vv", False), P.pool_kernel("max", 2, (3, 3), 1),
               S.softmax_rows_kernel("softmax"), C.strided_copy_kernel(4, gather=True),
               C.pad_kernel(4), C.transpose_tiles_kernel(4)]
    sample += [I.col2im_kernel(sx, False) for sx in (1, 3, 8)]
    module = new_module("m", target)
    for k in sample:
        k.build(module, target)
    asm = emit_assembly(optimize(module, target), target)
    assert not re.findall(r"^\s+(?:callq?|bl|call)\s+(\S+)", asm, re.M)
