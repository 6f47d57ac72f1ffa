"""Measure the int8 GEMM: GOP/s (2 ops per multiply-accumulate) of C_i32 = A_u8 @ B_i8,
A runtime, B constant (weights), on each path the host allows.

    python -m tinyc.codegen.kernels.igemm_bench [MxNxK ...]
"""

from __future__ import annotations

import argparse
import ctypes
import time

import numpy as np

from ...lower.igemm import IntGemm, IntMatrix, int_gemm_calls
from ...lower.program import Buf, Const
from ...lower.registry import LowerContext
from ...target.intrinsics import IntrinsicSet
from ...target.targets import resolve_device
from ...tensorize.sets import sets_for_features
from ...testing.kernel_harness import CompiledKernels, host_target
from ..kernel import I64, PTR
from ..machine import CpuTarget

DEFAULT_SHAPES = ["256x3136x576", "64x3136x64", "128x768x768", "1x1000x2048"]
PATHS = {"vnni512": 512, "vnni256": 256, "plain": 0, "avx2": -1}  # -1: the x86-avx2 spec


def gops(path: str, m: int, n: int, k: int, seconds: float = 0.5) -> tuple[float, str]:
    """(GOP/s, the intrinsic used) of one int8 GEMM, best of 15 timed batches."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    c = np.zeros((m, n), np.int32)
    target, sets = _target(path)
    gemm = IntGemm(m, n, k, IntMatrix("uint8", buf=Buf("a"), row_stride=k, col_stride=1,
                                      zero_point=3), IntMatrix("int8", const=b), Buf("c"), n)
    plan = int_gemm_calls(LowerContext(None, target, sets), gemm, "bench")  # type: ignore[arg-type]
    (call,) = plan.calls
    lib = CompiledKernels([call.kernel], target)
    fn = getattr(lib.lib, call.kernel.name)
    fn.restype = None
    keep: list[np.ndarray] = []
    args = [_arg(p, v, {"a": a, "c": c}, keep) for p, v in zip(call.kernel.params, call.args,
                                                                 strict=True)]
    fn(*args)
    want = (a.astype(np.int64) - 3) @ b.astype(np.int64)
    assert np.array_equal(c, want), "int8 GEMM result differs from numpy"
    reps = max(1, int(seconds / 15 * 200e9 / (2 * m * n * k)))
    best = float("inf")
    for _ in range(15):
        start = time.perf_counter()
        for _ in range(reps):
            fn(*args)
        best = min(best, (time.perf_counter() - start) / reps)
    return 2 * m * n * k / best / 1e9, plan.intrinsic or "plain"


def _target(path: str) -> tuple[CpuTarget, tuple[IntrinsicSet, ...]]:
    """The host at a vector width (all the sets its features allow, none for plain),
    or a target spec's CPU and sets (avx2: compiled for x86-avx2, run here)."""
    if PATHS[path] < 0:
        device = resolve_device(f"x86-{path}")
        assert device.cpu is not None
        return device.cpu, device.intrinsics
    target = host_target(PATHS[path] or 512)
    return target, sets_for_features(target) if PATHS[path] else ()


def _arg(kind: str, value: object, buffers: dict[str, np.ndarray],
         keep: list[np.ndarray]) -> object:
    if kind == I64:
        return ctypes.c_int64(int(value))  # type: ignore[arg-type]
    assert kind == PTR
    if isinstance(value, Buf):
        return ctypes.c_void_p(buffers[value.value].ctypes.data)
    arr = np.ascontiguousarray(value.array) if isinstance(value, Const) else \
        np.zeros(value.nbytes + 64, np.uint8)  # type: ignore[union-attr]
    keep.append(arr)
    return ctypes.c_void_p(arr.ctypes.data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shapes", nargs="*", default=DEFAULT_SHAPES)
    parser.add_argument("--paths", default=",".join(PATHS), help=",".join(PATHS))
    args = parser.parse_args()
    for shape in args.shapes:
        m, n, k = (int(d) for d in shape.split("x"))
        for path in args.paths.split(","):
            rate, used = gops(path, m, n, k)
            print(f"{shape:>14} {path:8}: {rate:7.1f} GOP/s  ({used})")


if __name__ == "__main__":
    main()
