"""The GEMM driver and micro-kernel against numpy: edge tiles, several K/M/N
blocks, every operand source and epilogue term, batches, AVX2 and AVX-512."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tinyc.codegen.kernels.gemm.gemm import Blocking, GemmSpec, default_tile
from tinyc.codegen.kernels.gemm.gemm_epilogue import Epilogue
from tinyc.codegen.kernels.gemm.pack import pack_a_const, pack_b_const
from tinyc.codegen.machine import emit_assembly, new_module, optimize
from tinyc.target.machine import CpuTarget, host_triple
from tinyc.testing.gemm_bench import GemmRun
from tinyc.testing.kernel_harness import CompiledKernels, host_target

AVX512 = host_target(512)
# A real AVX2 machine: no AVX-512 registers or masks to fall back on.
AVX2 = CpuTarget(host_triple(), "x86-64-v3", "", 256)

SOURCES = [(a, b) for a in ("packed", "strided") for b in ("packed", "strided")]
EPILOGUES = [
    Epilogue(),
    Epilogue("row", residual=True, clip=True),
    Epilogue("col", clip=True, scaled=True),
    Epilogue("mat", residual=True, scaled=True),
]


def spec_for(target: CpuTarget, m: int, a_src: str, b_src: str,
             epi: Epilogue | None = None) -> GemmSpec:
    epi = epi or Epilogue()
    mr, nv = default_tile(target.f32_lanes, m)
    return GemmSpec(mr, nv, target.f32_lanes, a_src, b_src, epi)


@pytest.fixture(scope="module", params=[AVX512, AVX2], ids=["avx512", "avx2"])
def compiled(request):
    """Every spec the tests below use, compiled into one library per target."""
    target = request.param
    specs = {spec_for(target, m, a, b, e) for m in (1, 37) for a, b in SOURCES for e in EPILOGUES}
    return target, CompiledKernels([s.kernel() for s in specs], target)


def run_gemm(compiled, m, n, k, a_src, b_src, epi=None, blk=None, rng=None):
    epi = epi or Epilogue()
    target, lib = compiled
    rng = rng or np.random.default_rng(7)
    a = rng.standard_normal((m, k), np.float32)
    b = rng.standard_normal((k, n), np.float32)
    spec = spec_for(target, min(m, 37), a_src, b_src, epi)
    run = GemmRun.make(spec, a, b, blk)
    expected = a @ b
    values = run.values
    if epi.scaled:
        values.update(alpha=0.5, beta=-2.0)
        expected *= 0.5
    beta = -2.0 if epi.scaled else 1.0
    if epi.bias != "none":
        bias = rng.standard_normal({"row": m, "col": n, "mat": m * n}[epi.bias], np.float32)
        ld = {"row": 1, "col": 0, "mat": n}[epi.bias]
        values.update(bias=bias, ldbias=ld, bias_bstride=0)
        expected += beta * (bias.reshape(m, n) if epi.bias == "mat" else
                            bias[:, None] if epi.bias == "row" else bias[None, :])
    if epi.residual:
        res = rng.standard_normal((m, n), np.float32)
        values.update(res=res, ldres=n, res_bstride=0)
        expected += res
    if epi.clip:
        values.update(lo=-0.75, hi=1.25)
        expected = np.clip(expected, -0.75, 1.25)
    lib(spec.name, *spec.args(values))
    np.testing.assert_allclose(run.c, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("a_src,b_src", SOURCES)
@pytest.mark.parametrize("m,n,k", [(37, 101, 29), (16, 96, 16), (1, 50, 300), (40, 17, 3)])
def test_sizes_and_sources(compiled, a_src, b_src, m, n, k):
    run_gemm(compiled, m, n, k, a_src, b_src)


@pytest.mark.parametrize("epi", EPILOGUES, ids=lambda e: e.tag)
@pytest.mark.parametrize("a_src,b_src", [("packed", "strided"), ("strided", "packed")])
def test_epilogue_after_several_k_blocks(compiled, epi, a_src, b_src):
    """Small runtime block sizes: three K blocks (first / middle / last stores),
    several M and N blocks, edge tiles in both directions."""
    target, _ = compiled
    nr = spec_for(target, 37, a_src, b_src).nr
    run_gemm(compiled, 37, 3 * nr + 5, 70, a_src, b_src, epi, Blocking(kc=24, mc=16, nc=2 * nr))


@pytest.mark.parametrize("a_src,b_src", [("packed", "strided"), ("strided", "packed")])
def test_constants_packed_k_block_by_k_block(a_src, b_src):
    """GemmSpec.kblocked: the constant operand's panels [K/KC][panels][KC][width],
    with a short last K block, edge panels and several M and N blocks."""
    rng = np.random.default_rng(3)
    spec = GemmSpec(*default_tile(AVX512.f32_lanes, 37), AVX512.f32_lanes, a_src, b_src,
                    Epilogue("row", clip=True), kblocked=True)
    a = rng.standard_normal((37, 70), np.float32)
    b = rng.standard_normal((70, 3 * spec.nr + 5), np.float32)
    run = GemmRun.make(spec, a, b, Blocking(kc=24, mc=16, nc=2 * spec.nr))
    bias = rng.standard_normal(37).astype(np.float32)
    run.values.update(bias=bias, ldbias=1, bias_bstride=0, lo=-2.0, hi=2.0)
    CompiledKernels([spec.kernel()], AVX512)(spec.name, *spec.args(run.values))
    expected = np.clip(a @ b + bias[:, None], -2.0, 2.0)
    np.testing.assert_allclose(run.c, expected, rtol=1e-4, atol=1e-4)


def test_batch_strides(compiled):
    """batch items of A and C with their own strides; B shared (stride 0)."""
    target, lib = compiled
    rng = np.random.default_rng(3)
    spec = spec_for(target, 37, "strided", "strided")
    a = rng.standard_normal((3, 5, 9), np.float32)
    b = rng.standard_normal((9, 20), np.float32)
    run = GemmRun.make(spec, a[0], b)
    c = np.full((3, 5, 20), np.nan, np.float32)
    run.values.update(a=a, c=c, batch=3, a_bstride=45, c_bstride=100)
    lib(spec.name, *spec.args(run.values))
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


def test_transposed_b_is_gathered(compiled):
    target, lib = compiled
    rng = np.random.default_rng(4)
    spec = spec_for(target, 37, "strided", "strided")
    a = rng.standard_normal((11, 19), np.float32)
    bt = rng.standard_normal((41, 19), np.float32)  # B stored as N x K
    run = GemmRun.make(spec, a, np.ascontiguousarray(bt.T))
    run.values.update(b=bt, sbk=1, sbn=19)
    lib(spec.name, *spec.args(run.values))
    np.testing.assert_allclose(run.c, a @ bt.T, rtol=1e-5, atol=1e-5)


def test_constant_packing_layouts():
    a = np.arange(15, dtype=np.float32).reshape(3, 5)  # M=3, K=5
    pa = pack_a_const(a, 2)
    assert pa.shape == (2, 5, 2)
    assert pa[0, 4].tolist() == [4, 9] and pa[1, 4].tolist() == [14, 0]
    pb = pack_b_const(a, 4)  # K=3, N=5
    assert pb.shape == (2, 3, 4)
    assert pb[1, 2].tolist() == [14, 0, 0, 0]
    # K blocks of 3 and 2: [block][panel][k][MR], the block before k=3 is full
    blocked = pack_a_const(a, 2, kc=3)
    assert blocked.shape == (2 * 3 * 2 + 2 * 2 * 2,)
    assert blocked[12:14].tolist() == [3, 8] and blocked[-2:].tolist() == [14, 0]


def micro_kernel_loop(target: CpuTarget) -> list[str]:
    """The assembly of the full-width micro-kernel's innermost loop."""
    spec = spec_for(target, 37, "packed", "im2col", Epilogue("row", True, True))
    module = new_module("asm", target)
    spec.kernel().build(module, target)
    asm = emit_assembly(optimize(module, target), target)
    name = f"gemm_uk_f32_{spec.mr}x{spec.nv}v{spec.lanes}p{spec.nv}_{spec.epi.tag}"
    body = asm[asm.index(f"{name}:"):]
    body = body[:body.index(".Lfunc_end")].splitlines()
    for i, line in enumerate(body):
        label = re.match(r"^(\.LBB\w+):", line)
        if not label:
            continue
        for j in range(i + 1, len(body)):
            if re.search(rf"\sj\w+\s+{re.escape(label.group(1))}$", body[j]):
                return body[i:j + 1]
    raise AssertionError("no loop found")


@pytest.mark.parametrize("target,reg", [(AVX512, "zmm"), (AVX2, "ymm")], ids=["avx512", "avx2"])
def test_micro_kernel_is_fmas_in_registers(target, reg):
    loop = micro_kernel_loop(target)
    fmas = [x for x in loop if "vfmadd" in x]
    mr, nv = default_tile(target.f32_lanes, 37)
    assert fmas and len(fmas) % (mr * nv) == 0
    assert all(reg in x for x in fmas)
    assert not any("rsp" in x or "rbp" in x for x in loop), "accumulators spilled"
    if reg == "ymm":
        assert not any("zmm" in x for x in loop)
