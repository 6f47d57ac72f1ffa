"""Measure the GEMM kernels: GFLOP/s of chosen shapes and operand sources.

    python -m tinyc.testing.gemm_bench [--bits 256] [--plain] [MxNxK ...]

The micro-kernel step is the intrinsic the tensorizer picks from the host's
intrinsic sets for the vector width (--plain: fmul + fadd, LLVM's choice).

Also used by tests to run one GEMM spec on numpy arrays.
"""

from __future__ import annotations

import argparse
import ctypes
import time
from dataclasses import dataclass

import numpy as np

from ..codegen.kernels.gemm.gemm import (
    Blocking,
    GemmSpec,
    choose_blocking,
    default_tile,
    scratch_bytes,
)
from ..codegen.kernels.gemm.micro_step import MicroStep
from ..codegen.kernels.gemm.pack import pack_a_const, pack_b_const
from ..target.machine import CpuTarget
from .kernel_harness import CompiledKernels, host_target

DEFAULT_SHAPES = ["256x3136x576", "64x3136x64", "1x1000x2048", "512x512x512"]


@dataclass
class GemmRun:
    """Arguments of one GEMM call on numpy arrays (C = A @ B, no epilogue)."""

    spec: GemmSpec
    values: dict[str, object]
    c: np.ndarray

    @staticmethod
    def make(spec: GemmSpec, a: np.ndarray, b: np.ndarray,
             blk: Blocking | None = None) -> GemmRun:
        (m, k), n = a.shape, b.shape[1]
        blk = blk or choose_blocking(spec, m, n, k)
        kc = blk.kc if spec.kblocked else None
        c = np.full((m, n), np.nan, np.float32)
        values: dict[str, object] = dict(
            a=pack_a_const(a, spec.mr, kc) if spec.a_src == "packed" else a,
            b=pack_b_const(b, spec.nr, kc) if spec.b_src == "packed" else b,
            c=c, scratch=np.zeros(scratch_bytes(spec, blk) // 4 + 16, np.float32),
            M=m, N=n, K=k, ldc=n, kc=blk.kc, mc=blk.mc, nc=blk.nc,
            batch=1, a_bstride=0, b_bstride=0, c_bstride=0)
        if spec.a_src == "strided":
            values.update(sam=k, sak=1)
        if spec.b_src == "strided":
            values.update(sbk=n, sbn=1)
        return GemmRun(spec, values, c)

    def ctypes_args(self) -> list[object]:
        out: list[object] = []
        for v in self.spec.args(self.values):
            out.append(ctypes.c_void_p(v.ctypes.data) if isinstance(v, np.ndarray)
                       else ctypes.c_int64(v))
        return out


def tensorized_tile(target: CpuTarget, m: int, n: int, k: int
                    ) -> tuple[int, int, int, MicroStep | None]:
    """(MR, NV, lanes, step) the tensorizer picks for an fp32 GEMM on the host's sets."""
    from ..tensorize.fp32 import plan_fp32_gemm
    from ..tensorize.sets import sets_for_features

    f32 = {"A": "float32", "B": "float32", "C": "float32"}
    plan = plan_fp32_gemm("C[m, n] += A[m, k] * B[k, n]", f32, "A", (m, n, k), target,
                          sets_for_features(target))
    return plan.mr, plan.nv, plan.lanes, plan.step


def gflops(target: CpuTarget, m: int, n: int, k: int, a_src: str = "packed",
           b_src: str = "strided", seconds: float = 0.5,
           plain: bool = False) -> tuple[float, float]:
    """(GFLOP/s, max relative error) of C = A @ B, best of 15 timed batches."""
    rng = np.random.default_rng(0)
    if plain:
        mr, nv = default_tile(target.f32_lanes, m)
        spec = GemmSpec(mr, nv, target.f32_lanes, a_src, b_src)
    else:
        mr, nv, lanes, step = tensorized_tile(target, m, n, k)
        spec = GemmSpec(mr, nv, lanes, a_src, b_src, step=step)
    a = rng.standard_normal((m, k), np.float32)
    b = rng.standard_normal((k, n), np.float32)
    run = GemmRun.make(spec, a, b)
    lib = CompiledKernels([spec.kernel()], target)
    fn = getattr(lib.lib, spec.name)
    fn.restype = None
    args = run.ctypes_args()
    fn(*args)  # warm up: page faults, clocks
    ref = a @ b
    err = float(np.abs(run.c - ref).max() / np.abs(ref).max())
    # Many short batches, best one: robust to other processes sharing the cores.
    reps = max(1, int(seconds / 15 * 100e9 / (2 * m * n * k)))
    best = float("inf")
    for _ in range(15):
        start = time.perf_counter()
        for _ in range(reps):
            fn(*args)
        best = min(best, (time.perf_counter() - start) / reps)
    return 2 * m * n * k / best / 1e9, err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shapes", nargs="*", default=DEFAULT_SHAPES)
    parser.add_argument("--bits", type=int, default=512, help="vector width (256: AVX2 tiles)")
    parser.add_argument("--plain", action="store_true", help="no intrinsic: fmul + fadd")
    args = parser.parse_args()
    target = host_target(args.bits)
    for shape in args.shapes:
        m, n, k = (int(d) for d in shape.split("x"))
        for a_src, b_src in (("packed", "strided"), ("packed", "packed"),
                             ("strided", "packed")):
            rate, err = gflops(target, m, n, k, a_src, b_src, plain=args.plain)
            print(f"{shape:>14} A {a_src:7} B {b_src:7}: {rate:6.1f} GFLOP/s  (rel err {err:.1e})")


if __name__ == "__main__":
    main()
