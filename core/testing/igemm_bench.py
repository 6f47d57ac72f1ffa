"""Measure the int8 GEMM: GOP/s (2 ops per multiply-accumulate) of C_i32 = A_u8 @ B_i8,
A runtime, B constant (weights), or of a conv (conv:CO,CI,HW,KH,S: weights as A,
the image through im2col as B), on each path the host allows or for x86-avx2.

    python -m tinyc.testing.igemm_bench [MxNxK | conv:CO,CI,HW,KH,S ...]
"""

from __future__ import annotations

import argparse
import ctypes
import time

import numpy as np

from ..lower.igemm import int_gemm_calls
from ..program import I64, PTR, Buf, Const, Im2col, IntGemm, IntMatrix, LowerContext
from ..target.intrinsics import IntrinsicSet
from ..target.machine import CpuTarget
from ..target.targets import resolve_device
from ..tensorize.sets import sets_for_features
from .kernel_harness import CompiledKernels, host_target

DEFAULT_SHAPES = ["256x3136x576", "64x3136x64", "128x768x768", "1x1000x2048",
                  "conv:64,64,56,3,1", "conv:256,256,14,3,1", "conv:64,3,224,7,2"]
# vector bits on this host (0: no intrinsic); -1: compiled for the spec x86-<path>
# ("avx2plain": x86-avx2 without intrinsics, the path it took before avx2_int16)
PATHS = {"vnni512": 512, "vnni256": 256, "plain": 0, "avx2": -1, "avx2plain": -1,
         "avx512": -1, "avx512plain": -1}


def gops(path: str, shape: str, seconds: float = 0.5) -> tuple[float, str]:
    """(GOP/s, the intrinsic used) of one int8 GEMM, the best of 60 timed batches."""
    gemm, buffers, want = _problem(shape)
    target, sets = _target(path)
    plan = int_gemm_calls(LowerContext(None, target, sets), gemm, "bench")  # type: ignore[arg-type]
    (call,) = plan.calls
    lib = CompiledKernels([call.kernel], target)
    fn = getattr(lib.lib, call.kernel.name)
    fn.restype = None
    keep: list[np.ndarray] = []
    args = [_arg(p, v, buffers, keep) for p, v in zip(call.kernel.params, call.args,
                                                       strict=True)]
    fn(*args)
    assert np.array_equal(buffers["c"], want), "int8 GEMM result differs from numpy"
    ops = 2 * gemm.m * gemm.n * gemm.k
    samples = 60  # short ones (about 1 ms): the best dodges other processes on a shared machine
    reps = max(1, int(seconds / samples * 200e9 / ops / 8))
    best = float("inf")
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(reps):
            fn(*args)
        best = min(best, (time.perf_counter() - start) / reps)
    return ops / best / 1e9, plan.intrinsic or "plain"


def _problem(shape: str) -> tuple[IntGemm, dict[str, np.ndarray], np.ndarray]:
    """MxNxK: C = (A - 3) @ B, A uint8 runtime, B int8 weights; conv:CO,CI,HW,KH,S: a
    square image's conv (pad KH//2), weights as A, the uint8 image read through
    im2col as B (zero point 3)."""
    rng = np.random.default_rng(0)
    if not shape.startswith("conv:"):
        m, n, k = (int(d) for d in shape.split("x"))
        a = rng.integers(0, 256, (m, k)).astype(np.uint8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        gemm = IntGemm(m, n, k, IntMatrix("uint8", buf=Buf("a"), row_stride=k, col_stride=1,
                                          zero_point=3), IntMatrix("int8", const=b), Buf("c"), n)
        want = (a.astype(np.int64) - 3) @ b.astype(np.int64)
        return gemm, {"a": a, "c": np.zeros((m, n), np.int32)}, want
    co, ci, hw, kh, s = (int(d) for d in shape[5:].split(","))
    p = kh // 2
    ho = (hw + 2 * p - kh) // s + 1
    x = rng.integers(0, 256, (ci, hw, hw)).astype(np.uint8)
    w = rng.integers(-128, 128, (co, ci * kh * kh)).astype(np.int8)
    geo = Im2col(ci, hw, hw, kh, kh, s, s, 1, 1, p, p, ho, ho)
    gemm = IntGemm(co, ho * ho, geo.k, IntMatrix("int8", const=w),
                   IntMatrix("uint8", buf=Buf("x"), zero_point=3, im2col=geo), Buf("c"), ho * ho)
    xp = np.pad(x.astype(np.int64) - 3, ((0, 0), (p, p), (p, p)))
    cols = np.stack([xp[:, ky:ky + s * ho:s, kx:kx + s * ho:s]
                     for ky in range(kh) for kx in range(kh)], 1).reshape(geo.k, -1)
    return gemm, {"x": x, "c": np.zeros((co, ho * ho), np.int32)}, w.astype(np.int64) @ cols


def _target(path: str) -> tuple[CpuTarget, tuple[IntrinsicSet, ...]]:
    """The host at a vector width (all the sets its features allow, none for plain),
    or a target spec's CPU and sets (avx2: compiled for x86-avx2, run here)."""
    if PATHS[path] < 0:
        device = resolve_device(f"x86-{path.removesuffix('plain')}")
        assert device.cpu is not None
        return device.cpu, () if path.endswith("plain") else device.intrinsics
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
        for path in args.paths.split(","):
            rate, used = gops(path, shape)
            print(f"{shape:>14} {path:8}: {rate:7.1f} GOP/s  ({used})")


if __name__ == "__main__":
    main()
