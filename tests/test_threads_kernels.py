"""Kernels split across the runtime's thread pool: the same bits with 1, 2 and
more threads than the kernel has scratch slices for, and the IR shape of a
parallel loop (serial targets never call the pool)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from tinyc.codegen.kernels.gemm import GemmSpec, default_tile
from tinyc.codegen.kernels.gemm_bench import GemmRun
from tinyc.codegen.kernels.gemm_epilogue import Epilogue
from tinyc.codegen.machine import new_module
from tinyc.codegen.parallel import POOL_FOR
from tinyc.testing.kernel_harness import CompiledKernels, host_target

TARGET = host_target(512)
SOURCES = [(a, b) for a in ("packed", "strided") for b in ("packed", "strided")]
# (M, N, K): tall, wide, one row (a fully-connected layer), few panels, several blocks
SHAPES = [(256, 600, 300), (40, 3136, 64), (1, 1000, 512), (300, 20, 100), (9, 50, 700)]


def gemm_spec(m: int, a_src: str, b_src: str, threads: int) -> GemmSpec:
    mr, nv = default_tile(TARGET.f32_lanes, m)
    return GemmSpec(mr, nv, TARGET.f32_lanes, a_src, b_src, Epilogue("row", clip=True),
                    threads=threads)


@pytest.fixture(scope="module")
def lib():
    specs = {gemm_spec(m, a, b, 2) for m in (1, 9, 40) for a, b in SOURCES}
    return CompiledKernels([s.kernel() for s in specs], TARGET)


def set_threads(lib: CompiledKernels, n: int) -> None:
    fn = lib.lib.tinyc_set_num_threads
    fn.argtypes, fn.restype = [ctypes.c_int64], None
    fn(n)


def run(lib, spec: GemmSpec, a, b, bias, threads: int) -> np.ndarray:
    set_threads(lib, threads)
    r = GemmRun.make(spec, a, b)
    r.values.update(bias=bias, ldbias=1, bias_bstride=0, lo=-3.0, hi=3.0)
    lib(spec.name, *spec.args(r.values))
    return r.c


@pytest.mark.parametrize("a_src,b_src", SOURCES)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_same_bits_for_any_thread_count(lib, m, n, k, a_src, b_src):
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((m, k), np.float32)
    b = rng.standard_normal((k, n), np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    spec = gemm_spec(min(m, 40), a_src, b_src, 2)
    one = run(lib, spec, a, b, bias, 1)
    np.testing.assert_allclose(one, np.clip(a @ b + bias[:, None], -3, 3), rtol=1e-4,
                               atol=1e-3)
    for threads in (2, 3):  # 3: more than the kernel's 2 scratch slices
        np.testing.assert_array_equal(run(lib, spec, a, b, bias, threads), one)


def test_batched_gemm_splits_across_items(lib):
    """A batch of 3 small GEMMs: a worker's range may start inside one item and
    end inside the next."""
    rng = np.random.default_rng(3)
    m, n, k, batch = 40, 100, 64, 3
    a = rng.standard_normal((batch, m, k), np.float32)
    b = rng.standard_normal((batch, k, n), np.float32)
    spec = gemm_spec(40, "strided", "strided", 2)
    outs = []
    for threads in (1, 2):
        set_threads(lib, threads)
        r = GemmRun.make(spec, a[0], b[0])
        c = np.full((batch, m, n), np.nan, np.float32)
        r.values.update(a=a, b=b, c=c, batch=batch, a_bstride=m * k, b_bstride=k * n,
                        c_bstride=m * n, bias=np.zeros(m, np.float32), ldbias=1,
                        bias_bstride=0, lo=-1e9, hi=1e9)
        lib(spec.name, *spec.args(r.values))
        outs.append(c)
    np.testing.assert_allclose(outs[0], a @ b, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(outs[1], outs[0])


def test_serial_target_never_calls_the_pool():
    module = new_module("m", TARGET)
    gemm_spec(40, "strided", "strided", 1).kernel().build(module, TARGET)
    assert POOL_FOR not in str(module)


def test_threaded_kernel_calls_the_pool_through_a_task():
    module = new_module("m", TARGET)
    spec = gemm_spec(40, "strided", "strided", 2)
    spec.kernel().build(module, TARGET)
    text = str(module)
    assert f"declare void @\"{POOL_FOR}\"" in text or f"declare void @{POOL_FOR}" in text
    assert f"{spec.name}.range.task" in text
